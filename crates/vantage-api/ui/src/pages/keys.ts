// API keys (admin): the tenant's keys, issuing one (its token shown once, never again), revoking.

import { call, seg, type Schemas } from "../api";
import { field, h, replace } from "../dom";
import { describe, status, type Page } from "../page";

const SCOPES: Array<Schemas["Scope"]> = ["scan:read", "scan:write", "triage:write", "audit:read", "content:read", "admin"];

/** `#/keys`. */
export async function keysPage(page: Page): Promise<void> {
  document.title = "API keys · Vantage";
  const keys = await call<Schemas["KeySummaryList"]>("GET", "/keys");
  const name = h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const boxes = SCOPES.map((scope) => h("input", { type: "checkbox", name: "scope", value: scope, checked: scope === "scan:read" }));
  const issued = h("div", { "aria-live": "polite" });
  const outcome = status();
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const body: Schemas["IssueKeyRequest"] = {
          name: name.value.trim(),
          scopes: boxes.filter((b) => b.checked).map((b) => b.value as Schemas["Scope"]),
        };
        try {
          const key = await call<Schemas["IssuedKeyView"]>("POST", "/keys", { body, idempotent: true });
          // Shown once, in a read-only field the user copies from; dropped when the page is left.
          const token = h("input", { type: "text", readonly: true, value: key.token, "aria-label": "New key's token", class: "token" });
          replace(issued, h("div", { class: "notice", role: "alert" }, h("p", {}, `Key “${key.name}” issued. Copy its token now: it is not shown again.`), token));
          token.select();
          name.value = "";
          await drawList();
        } catch (error) {
          replace(outcome, describe(error));
        }
      },
    },
    h("h2", {}, "Issue a key"),
    field("Name", name),
    h("fieldset", {}, h("legend", {}, "Scopes"), SCOPES.map((s, i) => h("label", { class: "check" }, boxes[i], ` ${s}`))),
    h("button", { type: "submit" }, "Issue key"),
    outcome,
  );
  const table = h("div", {});
  const drawList = async () => {
    const current = await call<Schemas["KeySummaryList"]>("GET", "/keys");
    replace(table, list(current.items));
  };
  const list = (items: Schemas["KeySummary"][]) =>
    h(
      "table",
      { class: "list" },
      h("caption", {}, "Keys of this tenant"),
      h("thead", {}, h("tr", {}, ["Name", "Scopes", "State"].map((t) => h("th", { scope: "col" }, t)), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
      h(
        "tbody",
        {},
        items.map((k) =>
          h(
            "tr",
            {},
            h("td", {}, k.name),
            h("td", {}, k.scopes.join(", ")),
            h("td", {}, k.revoked ? "revoked" : "active"),
            h(
              "td",
              {},
              k.revoked
                ? null
                : h(
                    "button",
                    {
                      type: "button",
                      class: "danger",
                      "aria-label": `Revoke ${k.name}`,
                      onclick: async () => {
                        if (!window.confirm(`Revoke the key “${k.name}”? Clients using it stop working at once.`)) return;
                        try {
                          await call("DELETE", `/keys/${seg(k.id)}`);
                          await drawList();
                        } catch (error) {
                          replace(outcome, describe(error));
                        }
                      },
                    },
                    "Revoke",
                  ),
            ),
          ),
        ),
      ),
    );
  replace(table, list(keys.items));
  page.onLeave(() => replace(issued));
  replace(page.main, h("h1", {}, "API keys"), issued, form, table);
}
