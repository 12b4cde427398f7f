// What every page shares: its context, how a failure is said, small shared widgets.

import { ApiProblem, apiKey, call, type Schemas } from "./api";
import { h, replace } from "./dom";

/** What a page gets: where to draw, its route's parameters, and a way to stop its timers. */
export interface Page {
  main: HTMLElement;
  params: URLSearchParams;
  /** Called when the page is left (closes live streams, stops polling). */
  onLeave(stop: () => void): void;
  /** The page is still the one shown. */
  alive(): boolean;
}

/** One plain sentence for a failure: the problem's title and detail. */
export function describe(error: unknown): string {
  if (error instanceof ApiProblem) {
    const fields = (error.fields ?? []).map((f) => `${f.field}: ${f.reason}`).join("; ");
    const text = error.detail ? `${error.title}: ${error.detail}` : error.title;
    return fields && !text.includes(fields) ? `${text} (${fields})` : text;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A failure shown in place of the page. */
export function failure(main: HTMLElement, error: unknown): void {
  replace(
    main,
    h("div", { class: "card" }, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, describe(error))),
  );
}

/** An alert area a form writes its outcome into. */
export function status(): HTMLParagraphElement {
  return h("p", { class: "status", role: "status", "aria-live": "polite" });
}

/** Updates the notifications bell from the server. */
export async function refreshBell(): Promise<void> {
  const badge = document.getElementById("unread");
  if (!badge || !apiKey()) return;
  try {
    const count = await call<Schemas["UnreadCount"]>("GET", "/notifications/unread-count");
    badge.textContent = String(count.unread);
    badge.parentElement?.setAttribute("aria-label", `Notifications, ${count.unread} unread`);
    badge.classList.toggle("zero", count.unread === 0);
  } catch {
    // The bell is best effort; pages show real errors.
  }
}

/** A grade as a coloured badge. */
export function grade(value: string | null | undefined, label: string): HTMLElement {
  const letter = value ?? "—";
  const tone = letter.startsWith("A") ? "good" : letter.startsWith("B") ? "fair" : letter === "—" ? "none" : "poor";
  return h("div", { class: `grade ${tone}`, "data-testid": `grade-${label.toLowerCase().replace(/\W+/g, "-")}` }, h("span", { class: "letter" }, letter), h("span", { class: "label" }, label));
}

/** A severity as a tag. */
export function severity(value: Schemas["Severity"] | null | undefined): HTMLElement {
  return h("span", { class: `sev sev-${value ?? "none"}` }, value ?? "—");
}

/** Counts by severity, as a row of tags. */
export function counts(c: Schemas["SeverityCounts"]): HTMLElement {
  const order: Array<Schemas["Severity"]> = ["critical", "high", "medium", "low", "info"];
  return h("ul", { class: "counts" }, order.map((s) => h("li", {}, severity(s), " ", String(c[s]))));
}
