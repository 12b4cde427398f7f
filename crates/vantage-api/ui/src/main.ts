// The dashboard's shell: sign-in, the navigation with the notifications bell, and a hash router
// that renders one page at a time into <main>. Pages live in pages/*.ts.

import { ApiProblem, apiKey, call, signIn, signOut, type Schemas } from "./api";
import { describe, failure, refreshBell, type Page } from "./page";
import { field, h, replace } from "./dom";
import { commandCenter, domainPage, notificationsPage } from "./pages/insights";
import { keysPage } from "./pages/keys";
import { comparePage, newScanPage, scanPage, scansPage } from "./pages/scans";

type Render = (page: Page, ...captures: string[]) => Promise<void>;

const routes: Array<[RegExp, Render]> = [
  [/^\/?$/, async (page) => commandCenter(page)],
  [/^\/scans$/, scansPage],
  [/^\/scans\/new$/, newScanPage],
  [/^\/scans\/([0-9a-f-]{36})$/, scanPage],
  [/^\/compare$/, comparePage],
  [/^\/domains\/([^/]+)$/, domainPage],
  [/^\/notifications$/, notificationsPage],
  [/^\/keys$/, keysPage],
];

let leaving: Array<() => void> = [];
let generation = 0;

function signInPage(main: HTMLElement, message?: string): void {
  document.title = "Sign in · Vantage";
  const input = h("input", {
    type: "password",
    name: "api-key",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const error = h("p", { class: "error", role: "alert" }, message ?? "");
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        signIn(input.value.trim());
        try {
          await call<Schemas["KeySummary"]>("GET", "/keys/me");
          input.value = "";
          if (location.hash === "" || location.hash === "#/signin") location.hash = "#/";
          await render();
        } catch (e) {
          signOut();
          replace(error, describe(e));
          input.focus();
        }
      },
    },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an API key. It is kept in this tab's session storage only and sent to this server alone."),
    field("API key", input),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  replace(main, form);
  input.focus();
}

function nav(): HTMLElement {
  const link = (href: string, text: string) => h("a", { href }, text);
  return h(
    "nav",
    { "aria-label": "Main" },
    h("a", { href: "#/", class: "brand" }, "Vantage"),
    link("#/scans/new", "New scan"),
    link("#/scans", "Scans"),
    link("#/keys", "API keys"),
    h("a", { href: "#/notifications", class: "bell", "aria-label": "Notifications" }, "Notifications ", h("span", { id: "unread", class: "count zero" }, "0")),
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          signOut();
          location.hash = "#/signin";
        },
      },
      "Sign out",
    ),
  );
}

/** Draws the page the hash names. */
async function render(): Promise<void> {
  for (const stop of leaving) stop();
  leaving = [];
  const mine = ++generation;
  const header = document.getElementById("top") as HTMLElement;
  const main = document.getElementById("main") as HTMLElement;
  if (!apiKey()) {
    replace(header);
    signInPage(main);
    return;
  }
  if (!header.firstChild) replace(header, nav());
  const [path, search] = location.hash.replace(/^#/, "").split("?", 2);
  for (const [pattern, draw] of routes) {
    const match = pattern.exec(path ?? "");
    if (!match) continue;
    const page: Page = {
      main,
      params: new URLSearchParams(search ?? ""),
      onLeave: (stop) => leaving.push(stop),
      alive: () => mine === generation,
    };
    replace(main, h("p", { class: "muted", "aria-live": "polite" }, "Loading…"));
    try {
      await draw(page, ...match.slice(1).map(decodeURIComponent));
    } catch (error) {
      if (error instanceof ApiProblem && error.status === 401) {
        signOut();
        replace(header);
        signInPage(main, "The key was not accepted. Sign in again.");
        return;
      }
      if (mine === generation) failure(main, error);
    }
    // After navigating, focus moves to the new content (screen readers announce it); on the first
    // load it stays at the top, where Tab reaches the skip link first.
    if (mine > 1) main.focus({ preventScroll: true });
    void refreshBell();
    return;
  }
  replace(main, h("div", { class: "card" }, h("h1", {}, "Not found"), h("p", {}, "No page has this address. "), h("a", { href: "#/" }, "Go to the command center")));
}

window.addEventListener("hashchange", () => void render());
window.setInterval(() => void refreshBell(), 15_000);
// The mark the browser test reads: the first page is drawn and its handlers are attached.
void render().then(() => performance.mark("vantage:interactive"));
