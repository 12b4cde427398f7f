// What the tenant's scans add up to: the command center (health score, top priorities), a domain's
// history with its score trend, and the notifications.

import { call, seg, type Schemas } from "../api";
import { h, replace, svg, when } from "../dom";
import { counts, refreshBell, severity, status, type Page } from "../page";

/** `#/`: the health score, unresolved findings and the top priorities. */
export async function commandCenter(page: Page): Promise<void> {
  document.title = "Command center · Vantage";
  const [center, stats] = await Promise.all([
    call<Schemas["CommandCenter"]>("GET", "/dashboard/command-center"),
    call<Schemas["Stats"]>("GET", "/dashboard/stats"),
  ]);
  const tone = center.health_score >= 90 ? "good" : center.health_score >= 70 ? "fair" : "poor";
  replace(
    page.main,
    h("h1", {}, "Command center"),
    h(
      "section",
      { class: "tiles", "aria-label": "Overview" },
      h("div", { class: `tile ${tone}` }, h("span", { class: "big", "data-testid": "health-score" }, String(center.health_score)), h("span", {}, "health score")),
      h("div", { class: "tile" }, h("span", { class: "big" }, String(center.period.scans_completed)), h("span", {}, "scans completed this period")),
      h("div", { class: "tile" }, h("span", { class: "big" }, String(stats.scans_total)), h("span", {}, "scans in all")),
    ),
    h("section", { "aria-labelledby": "unresolved-h" }, h("h2", { id: "unresolved-h" }, "Unresolved findings"), counts(center.unresolved)),
    h(
      "section",
      { "aria-labelledby": "top-h" },
      h("h2", { id: "top-h" }, "Top priorities"),
      center.top_priorities.length
        ? h(
            "table",
            { class: "list" },
            h("thead", {}, h("tr", {}, ["Finding", "Severity", "Priority", "Target", "Last seen"].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              center.top_priorities.map((f) =>
                h(
                  "tr",
                  {},
                  h("td", {}, f.last_scan_id ? h("a", { href: `#/scans/${f.last_scan_id}` }, f.title ?? f.rule_id ?? f.fingerprint) : (f.title ?? f.fingerprint)),
                  h("td", {}, severity(f.severity)),
                  h("td", {}, String(f.priority)),
                  h("td", {}, f.domain ? h("a", { href: `#/domains/${seg(f.domain)}` }, f.target ?? f.domain) : (f.target ?? "—")),
                  h("td", {}, when(f.last_seen_at)),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "Nothing unresolved. Start a scan to see more."),
    ),
    h("p", {}, h("a", { class: "button", href: "#/scans/new" }, "Start a scan")),
  );
}

/** A line of the domain's daily scores, 0–100, as an accessible SVG. */
function trendChart(points: Array<{ day: string; score: number | null }>): Element {
  const scored = points.filter((p) => p.score !== null) as Array<{ day: string; score: number }>;
  if (scored.length === 0) return h("p", { class: "muted" }, "No scored scan yet.");
  const width = 600;
  const height = 160;
  const pad = 24;
  const x = (i: number) => pad + (scored.length === 1 ? (width - 2 * pad) / 2 : (i * (width - 2 * pad)) / (scored.length - 1));
  const y = (score: number) => height - pad - (score / 100) * (height - 2 * pad);
  const path = scored.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.score).toFixed(1)}`).join(" ");
  const label = `Score by day: ${scored.map((p) => `${p.day} ${p.score}`).join(", ")}`;
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart", "data-testid": "trend-chart" },
    svg("title", {}, label),
    [0, 50, 100].map((v) => [svg("line", { x1: pad, x2: width - pad, y1: y(v), y2: y(v), class: "grid" }), svg("text", { x: 2, y: y(v) + 4, class: "axis" }, String(v))]),
    svg("path", { d: path, class: "line" }),
    scored.map((p, i) => svg("circle", { cx: x(i), cy: y(p.score), r: 4, class: "dot" }, svg("title", {}, `${p.day}: ${p.score}`))),
  );
}

/** `#/domains/{domain}`: its scans, newest first, and the trend of its score. */
export async function domainPage(page: Page, domain: string): Promise<void> {
  document.title = `${domain} · Vantage`;
  const [history, trends] = await Promise.all([
    call<Schemas["DomainScanDocPage"]>("GET", `/domains/${seg(domain)}/history`, { query: { limit: 50, cursor: page.params.get("cursor") } }),
    call<Schemas["Trends"]>("GET", "/dashboard/trends", { query: { domain, days: 90 } }),
  ]);
  const next = history.next_cursor ? h("a", { href: `#/domains/${seg(domain)}?cursor=${seg(history.next_cursor)}`, rel: "next" }, "Older scans") : null;
  replace(
    page.main,
    h("h1", {}, domain),
    h("section", { class: "card", "aria-labelledby": "trend-h" }, h("h2", { id: "trend-h" }, "Score trend (90 days)"), trendChart(trends.items.map((t) => ({ day: t.day, score: t.score ?? null })))),
    h(
      "section",
      { "aria-labelledby": "history-h" },
      h("h2", { id: "history-h" }, "Scan history"),
      history.items.length
        ? h(
            "table",
            { class: "list" },
            h("thead", {}, h("tr", {}, ["Completed", "Target", "Grade", "Score", "Findings"].map((t) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              history.items.map((s) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("a", { href: `#/scans/${s.scan_id}` }, when(s.completed_at))),
                  h("td", {}, s.target),
                  h("td", {}, s.overall?.grade ?? "—"),
                  h("td", {}, s.score === null ? "—" : String(s.score)),
                  h("td", {}, counts(s.findings)),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No completed scan of this domain."),
      next,
    ),
  );
}

/** `#/notifications`: newest first, each marked read on click; mark all read. */
export async function notificationsPage(page: Page): Promise<void> {
  document.title = "Notifications · Vantage";
  const list = await call<Schemas["NotificationDocList"]>("GET", "/notifications", { query: { limit: 100 } });
  const outcome = status();
  const item = (n: Schemas["NotificationDoc"]) => {
    const row = h(
      "li",
      { class: n.read ? "read" : "unread" },
      severity(n.severity),
      " ",
      h("a", { href: `#/scans/${n.scan_id}` }, n.title),
      h("small", {}, ` ${n.kind.replace(/_/g, " ")} · ${n.domain} · ${when(n.created_at)}`),
      n.read
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "link",
              onclick: async () => {
                await call("PATCH", `/notifications/${seg(n.id)}/read`);
                row.className = "read";
                (row.querySelector("button") as HTMLButtonElement).remove();
                await refreshBell();
              },
            },
            "Mark read",
          ),
    );
    return row;
  };
  replace(
    page.main,
    h("h1", {}, "Notifications"),
    h(
      "p",
      {},
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            await call("PATCH", "/notifications/read-all");
            replace(outcome, "All marked read.");
            await refreshBell();
            await notificationsPage(page);
          },
        },
        "Mark all read",
      ),
      outcome,
    ),
    list.items.length ? h("ul", { class: "notifications" }, list.items.map(item)) : h("p", { class: "muted" }, "No notifications."),
  );
}
