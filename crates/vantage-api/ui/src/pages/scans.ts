// Scans: the list with filters and cursor paging, the form that starts one, a scan's page (live
// progress, grades, findings with triage and comments, observations, reports) and the comparison
// of two scans.

import { ApiProblem, call, send, seg, type Schemas } from "../api";
import { field, h, replace, when } from "../dom";
import { counts, describe, grade, refreshBell, severity, status, type Page } from "../page";

type Scan = Schemas["ScanResource"];
type Finding = Schemas["FindingView"];

const STATUSES: Array<Schemas["ScanStatus"]> = ["queued", "running", "finalizing", "completed", "failed", "cancelled"];
const TRIGGERS: Array<Schemas["Trigger"]> = ["manual", "scheduled", "post_deploy", "api"];
const TRIAGE: Array<Schemas["TriageState"]> = ["open", "acknowledged", "false_positive", "accepted_risk", "fixed"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

function select(name: string, options: string[], selected: string, blank?: string): HTMLSelectElement {
  return h(
    "select",
    { name },
    blank !== undefined ? h("option", { value: "" }, blank) : null,
    options.map((o) => h("option", { value: o, selected: o === selected }, o.replace(/_/g, " "))),
  );
}

function statusTag(value: string): HTMLElement {
  return h("span", { class: `status-tag st-${value}` }, value);
}

/** `#/scans?domain=&status=&trigger=&cursor=&limit=`: newest first, twenty a page unless `limit`
 *  (1–100) says otherwise. */
export async function scansPage(page: Page): Promise<void> {
  document.title = "Scans · Vantage";
  const p = page.params;
  const limit = Math.min(100, Math.max(1, Number(p.get("limit")) || 20));
  const result = await call<Schemas["ScanDocPage"]>("GET", "/scans", {
    query: {
      domain: p.get("domain"),
      status: p.get("status"),
      trigger: p.get("trigger"),
      cursor: p.get("cursor"),
      limit,
    },
  });
  const domain = h("input", { name: "domain", value: p.get("domain") ?? "", placeholder: "example.com" });
  const statusFilter = select("status", STATUSES, p.get("status") ?? "", "any");
  const trigger = select("trigger", TRIGGERS, p.get("trigger") ?? "", "any");
  const filters = h(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (event: Event) => {
        event.preventDefault();
        const q = new URLSearchParams();
        if (domain.value.trim()) q.set("domain", domain.value.trim());
        if (statusFilter.value) q.set("status", statusFilter.value);
        if (trigger.value) q.set("trigger", trigger.value);
        location.hash = `#/scans?${q}`;
      },
    },
    field("Domain", domain),
    field("Status", statusFilter),
    field("Trigger", trigger),
    h("button", { type: "submit" }, "Filter"),
  );
  const first = new URLSearchParams(p);
  first.delete("cursor");
  const next = new URLSearchParams(p);
  if (result.next_cursor) next.set("cursor", result.next_cursor);
  const rows = result.items.map((scan) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/scans/${scan.id}` }, scan.target)),
      h("td", {}, statusTag(scan.status)),
      h("td", {}, scan.overall?.grade ?? "—"),
      h("td", {}, scan.trigger.replace(/_/g, " ")),
      h("td", {}, when(scan.created_at)),
    ),
  );
  replace(
    page.main,
    h("h1", {}, "Scans"),
    filters,
    rows.length
      ? h(
          "table",
          { class: "list" },
          h("caption", { class: "sr-only" }, "Scans, newest first"),
          h("thead", {}, h("tr", {}, ["Target", "Status", "Grade", "Trigger", "Started"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows),
        )
      : h("p", { class: "muted" }, "No scan matches."),
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      p.has("cursor") ? h("a", { href: `#/scans?${first}` }, "First page") : null,
      result.next_cursor ? h("a", { href: `#/scans?${next}`, rel: "next" }, "Next page") : null,
    ),
  );
}

function numbers(text: string): number[] | null {
  const items = text.split(/[\s,]+/).filter(Boolean);
  return items.length ? items.map(Number) : null;
}

/** `#/scans/new`: target, ports, paths and profile; on success, the scan's page. */
export async function newScanPage(page: Page): Promise<void> {
  document.title = "New scan · Vantage";
  const target = h("input", { name: "target", required: true, placeholder: "example.com or https://example.com/", autocomplete: "off" });
  const ports = h("input", { name: "ports", placeholder: "80, 443", inputmode: "numeric" });
  const paths = h("input", { name: "paths", placeholder: "/, /login" });
  const profile = select("profile", ["quick", "standard", "deep"], "standard");
  const outcome = status();
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const body: Schemas["CreateScanRequest"] = {
          target: target.value.trim(),
          ports: numbers(ports.value),
          paths: paths.value.trim() ? paths.value.split(",").map((s) => s.trim()).filter(Boolean) : null,
          profile: profile.value as Schemas["Profile"],
          trigger: "manual",
        };
        replace(outcome, "Starting…");
        try {
          const scan = await call<Scan>("POST", "/scans", { body, idempotent: true });
          location.hash = `#/scans/${scan.id}`;
        } catch (error) {
          outcome.setAttribute("role", "alert");
          replace(outcome, describe(error));
        }
      },
    },
    h("h1", {}, "Start a scan"),
    field("Target", target, "A domain or an http(s) URL."),
    field("Ports", ports, "TCP ports, separated by commas (default 80 and 443)."),
    field("Paths", paths, "HTTP paths, separated by commas (default /)."),
    field("Profile", profile),
    h("button", { type: "submit" }, "Start scan"),
    outcome,
  );
  replace(page.main, form);
  target.focus();
}

/** Follows a running scan: its live events over SSE, or, if the stream fails, its status polled at
 *  the pace the server's Retry-After asks for. Calls `done` once the scan has ended. */
function follow(page: Page, scan: Scan, log: HTMLElement, counter: HTMLElement, done: () => void): void {
  let finished = false;
  let observations = scan.observation_count;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
  };
  const line = (text: string) => {
    log.appendChild(h("li", {}, text));
    while (log.childElementCount > 50) log.firstElementChild?.remove();
  };
  const poll = async () => {
    if (finished || !page.alive()) return;
    try {
      const response = await send("GET", `/scans/${seg(scan.id)}/status`);
      const progress = (await response.json()) as Schemas["ScanProgress"];
      counter.textContent = String(progress.observation_count);
      if (progress.terminal) return finish();
      const wait = Number(response.headers.get("Retry-After")) || 1;
      const timer = window.setTimeout(() => void poll(), wait * 1000);
      page.onLeave(() => window.clearTimeout(timer));
    } catch (error) {
      const wait = error instanceof ApiProblem && error.retryAfter ? error.retryAfter : 5;
      const timer = window.setTimeout(() => void poll(), wait * 1000);
      page.onLeave(() => window.clearTimeout(timer));
    }
  };
  const live = async () => {
    const token = await call<Schemas["EventToken"]>("POST", `/scans/${seg(scan.id)}/event-token`);
    if (!page.alive()) return;
    const source = new EventSource(token.url);
    page.onLeave(() => source.close());
    const onEvent = (event: MessageEvent<string>) => {
      const data = JSON.parse(event.data) as Schemas["LiveEvent"];
      if (data.event_type === "ProbeObserved") {
        observations += 1;
        counter.textContent = String(observations);
      }
      const detail = data.data && typeof data.data === "object" ? (data.data as Record<string, unknown>) : {};
      const probe = typeof detail.probe === "string" ? ` ${detail.probe}` : "";
      const asset = typeof detail.asset === "string" ? ` ${detail.asset}` : "";
      line(`${new Date(data.recorded_at).toLocaleTimeString()} ${data.event_type}${probe}${asset}`);
      if (["ScanCompleted", "ScanFailed", "ScanCancelled", "ScanDeleted"].includes(data.event_type)) {
        source.close();
        finish();
      }
    };
    for (const type of ["ScanRequested", "ScanStarted", "ProbeObserved", "ProbeFailed", "ScanFinalizing", "ScanCompleted", "ScanFailed", "ScanCancelled", "ScanDeleted"]) {
      source.addEventListener(type, onEvent as EventListener);
    }
    source.addEventListener("overflow", () => {
      source.close();
      line("The live stream fell behind; following the status instead.");
      void poll();
    });
    source.onerror = () => {
      if (finished) return;
      source.close();
      line("The live stream closed; following the status instead.");
      void poll();
    };
  };
  live().catch(() => {
    line("No live stream; following the status instead.");
    void poll();
  });
}

function evidence(value: unknown): HTMLElement {
  return h("pre", { class: "evidence", tabindex: 0 }, JSON.stringify(value, null, 2));
}

/** A comment as the list shows it (one just added here has no time yet). */
type ShownComment = { id: string; author: string; body: string; created_at?: string };

function commentList(comments: ShownComment[]): HTMLElement {
  return comments.length
    ? h("ul", { class: "comments" }, comments.map((c) => h("li", {}, h("p", {}, c.body), h("small", {}, c.created_at ? `${c.author} · ${when(c.created_at)}` : `${c.author} · just now`))))
    : h("p", { class: "muted" }, "No comments yet.");
}

function findingCard(finding: Finding): HTMLElement {
  const fp = seg(finding.fingerprint);
  const stateSelect = select("state", TRIAGE, finding.triage);
  const note = h("input", { name: "note", placeholder: "Why (optional)" });
  const triageOutcome = status();
  const comments = h("div", { class: "comment-list" });
  const commentBody = h("textarea", { name: "comment", rows: 2, required: true });
  const commentOutcome = status();
  const tag = h("span", { class: "triage-tag" }, finding.triage.replace(/_/g, " "));
  // Comments added here are shown at once and kept until the server's list (a read model, which
  // may lag a moment) has them; only the newest of overlapping loads is drawn.
  const added: ShownComment[] = [];
  let loads = 0;
  const loadComments = async () => {
    const load = ++loads;
    try {
      const listed = (await call<Schemas["CommentDocList"]>("GET", `/findings/${fp}/comments`)).items;
      if (load !== loads) return;
      const known = new Set(listed.map((c) => c.id));
      replace(comments, commentList([...listed, ...added.filter((c) => !known.has(c.id))]));
    } catch (error) {
      if (load === loads) replace(comments, h("p", { class: "error" }, describe(error)));
    }
  };
  const details = h(
    "details",
    { class: `finding sev-border-${finding.severity}`, "data-fingerprint": finding.fingerprint },
    h("summary", {}, severity(finding.severity), " ", h("strong", {}, finding.title), " ", h("span", { class: "muted" }, `priority ${finding.priority.score} · ${finding.asset}`), " ", tag),
    h(
      "div",
      { class: "finding-body" },
      h("p", {}, h("strong", {}, "Fix: "), finding.recommended_fix.summary, ` (about ${finding.recommended_fix.estimated_minutes} min)`),
      h("ol", {}, finding.recommended_fix.steps.map((s) => h("li", {}, s))),
      h("h3", {}, "Evidence"),
      evidence(finding.evidence),
      finding.references.length ? h("p", {}, "References: ", finding.references.map((r, i) => [i ? ", " : "", r])) : null,
      finding.compliance.length ? h("p", { class: "muted" }, "Controls: ", finding.compliance.join(", ")) : null,
      h(
        "form",
        {
          class: "inline",
          "aria-label": "Triage decision",
          onsubmit: async (event: Event) => {
            event.preventDefault();
            try {
              const body: Schemas["SetTriageRequest"] = { state: stateSelect.value as Schemas["TriageState"], note: note.value.trim() || null };
              await call("PATCH", `/findings/${fp}/state`, { body, idempotent: true });
              tag.textContent = stateSelect.value.replace(/_/g, " ");
              replace(triageOutcome, "Triage saved.");
            } catch (error) {
              replace(triageOutcome, describe(error));
            }
          },
        },
        field("Triage state", stateSelect),
        field("Note", note),
        h("button", { type: "submit" }, "Save triage"),
        triageOutcome,
      ),
      h("h3", {}, "Comments"),
      comments,
      h(
        "form",
        {
          "aria-label": "Add a comment",
          onsubmit: async (event: Event) => {
            event.preventDefault();
            try {
              const body: Schemas["AddCommentRequest"] = { body: commentBody.value };
              added.push(await call<Schemas["CommentAdded"]>("POST", `/findings/${fp}/comments`, { body }));
              commentBody.value = "";
              replace(commentOutcome, "Comment added.");
              await loadComments();
            } catch (error) {
              replace(commentOutcome, describe(error));
            }
          },
        },
        field("Comment", commentBody),
        h("button", { type: "submit" }, "Add comment"),
        commentOutcome,
      ),
    ),
  );
  details.addEventListener("toggle", () => {
    if (details.open && !comments.firstChild) void loadComments();
  });
  return details;
}

async function download(scanId: string, format: Schemas["ReportFormat"]): Promise<void> {
  const response = await send("GET", `/scans/${seg(scanId)}/report`, { query: { format } });
  const blob = await response.blob();
  const link = h("a", { href: URL.createObjectURL(blob), download: `vantage-${scanId}.${format === "sarif" ? "sarif.json" : format === "junit" ? "junit.xml" : format}` });
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

async function previousScan(scan: Scan): Promise<Schemas["ScanDoc"] | null> {
  const list = await call<Schemas["ScanDocPage"]>("GET", "/scans", { query: { domain: domainOf(scan), status: "completed", limit: 50 } });
  return list.items.find((s) => s.id !== scan.id && s.created_at < scan.created_at) ?? null;
}

function domainOf(scan: Scan): string {
  try {
    return new URL(scan.target.includes("://") ? scan.target : `http://${scan.target}`).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return scan.target;
  }
}

function headerTests(tests: Schemas["HeaderTest"][]): HTMLElement {
  return h(
    "table",
    { class: "list" },
    h("caption", {}, "Header tests"),
    h("thead", {}, h("tr", {}, ["Test", "Result", "Modifier"].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      tests.map((t) => h("tr", {}, h("td", {}, t.test), h("td", {}, t.result), h("td", { class: t.modifier < 0 ? "neg" : t.modifier > 0 ? "pos" : "" }, t.modifier > 0 ? `+${t.modifier}` : String(t.modifier)))),
    ),
  );
}

/** `#/scans/{id}`: one scan, live while it runs. */
export async function scanPage(page: Page, id: string): Promise<void> {
  const scan = await call<Scan>("GET", `/scans/${seg(id)}`);
  document.title = `${scan.target} · Vantage`;
  const domain = domainOf(scan);
  const head = h(
    "header",
    { class: "scan-head" },
    h("h1", {}, scan.target),
    h("p", {}, statusTag(scan.status), ` ${scan.profile} profile · ${scan.trigger.replace(/_/g, " ")} · started ${when(scan.created_at)} · `, h("a", { href: `#/domains/${seg(domain)}` }, `history of ${domain}`)),
  );
  if (!TERMINAL.has(scan.status)) {
    const counter = h("strong", { "data-testid": "observation-count" }, String(scan.observation_count));
    const log = h("ol", { class: "live-log", "aria-live": "polite", "aria-label": "Live events" });
    replace(page.main, head, h("section", { class: "card", "aria-labelledby": "live-h" }, h("h2", { id: "live-h" }, "In progress"), h("p", {}, "Observations so far: ", counter), log));
    follow(page, scan, log, counter, () => {
      if (page.alive()) window.setTimeout(() => void scanPageAgain(page, id), 300);
    });
    return;
  }
  const sections: HTMLElement[] = [head];
  if (scan.failure_reason) sections.push(h("p", { class: "error", role: "alert" }, `The scan failed: ${scan.failure_reason}`));
  sections.push(
    h(
      "section",
      { class: "grades", "aria-label": "Grades" },
      grade(scan.overall?.grade, "Overall"),
      grade(scan.grades?.headers?.grade, "Headers"),
      grade(scan.grades?.tls?.grade, "TLS"),
      h(
        "div",
        { class: "grade-notes" },
        scan.overall?.score !== null && scan.overall?.score !== undefined ? h("p", {}, `Score ${scan.overall.score} (${scan.overall.method})`) : null,
        scan.overall?.unreachable ? h("p", {}, scan.overall.unreachable) : null,
        scan.overall?.caps.length ? h("p", {}, "Capped by: ", scan.overall.caps.join(", ")) : null,
        scan.grades?.tls?.caps.length ? h("p", {}, "TLS caps: ", scan.grades.tls.caps.join(", ")) : null,
      ),
    ),
  );
  const actions = h("p", { class: "actions" });
  const reportStatus = status();
  for (const format of ["html", "pdf", "json", "sarif", "junit"] as Array<Schemas["ReportFormat"]>) {
    actions.appendChild(
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            download(scan.id, format).then(
              () => replace(reportStatus, `Report (${format}) downloaded.`),
              (error) => replace(reportStatus, describe(error)),
            );
          },
        },
        `Report: ${format.toUpperCase()}`,
      ),
    );
  }
  const previous = scan.status === "completed" ? await previousScan(scan).catch(() => null) : null;
  if (previous) actions.appendChild(h("a", { class: "button", href: `#/compare?a=${previous.id}&b=${scan.id}` }, "Compare with the previous scan"));
  sections.push(actions, reportStatus);

  if (scan.status === "completed") {
    const findings = await call<Schemas["Findings"]>("GET", `/scans/${seg(id)}/findings`);
    const sorted = [...findings.items].sort((a, b) => b.priority.score - a.priority.score);
    const bySeverity = { critical: 0, high: 0, medium: 0, low: 0, info: 0 } as Schemas["SeverityCounts"];
    for (const f of sorted) bySeverity[f.severity] += 1;
    sections.push(
      h(
        "section",
        { "aria-labelledby": "findings-h" },
        h("h2", { id: "findings-h" }, `Findings (${findings.count})`),
        counts(bySeverity),
        sorted.length ? h("div", { class: "findings" }, sorted.map(findingCard)) : h("p", { class: "muted" }, "No findings."),
      ),
    );
  }
  if (scan.grades?.headers) sections.push(h("section", { "aria-label": "Header grade" }, headerTests(scan.grades.headers.tests)));
  const observations = h("div", {});
  const observationDetails = h("details", { class: "card" }, h("summary", {}, `Observations (${scan.observation_count})`), observations);
  observationDetails.addEventListener("toggle", async () => {
    if (!observationDetails.open || observations.firstChild) return;
    try {
      const list = await call<Schemas["Observations"]>("GET", `/scans/${seg(id)}/observations`);
      replace(
        observations,
        h(
          "table",
          { class: "list" },
          h("thead", {}, h("tr", {}, ["Probe", "Asset", "Observed", "Data"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, list.items.map((o) => h("tr", {}, h("td", {}, o.probe), h("td", {}, o.asset), h("td", {}, when(o.observed_at)), h("td", {}, evidence(o.data))))),
        ),
      );
    } catch (error) {
      replace(observations, h("p", { class: "error" }, describe(error)));
    }
  });
  sections.push(observationDetails);
  replace(page.main, ...sections);
  void refreshBell();
}

async function scanPageAgain(page: Page, id: string): Promise<void> {
  if (!page.alive()) return;
  try {
    await scanPage(page, id);
  } catch (error) {
    replace(page.main, h("p", { class: "error", role: "alert" }, describe(error)));
  }
}

function findingList(title: string, items: Schemas["FindingDoc"][], testid: string): HTMLElement {
  return h(
    "section",
    { "data-testid": testid },
    h("h2", {}, `${title} (${items.length})`),
    items.length ? h("ul", { class: "plain" }, items.map((f) => h("li", {}, severity(f.severity), " ", f.title, h("span", { class: "muted" }, ` · ${f.asset}`)))) : h("p", { class: "muted" }, "None."),
  );
}

/** `#/compare?a=&b=`: what changed between two scans. */
export async function comparePage(page: Page): Promise<void> {
  document.title = "Compare scans · Vantage";
  const a = page.params.get("a") ?? "";
  const b = page.params.get("b") ?? "";
  const first = h("input", { name: "a", value: a, required: true, placeholder: "earlier scan id" });
  const second = h("input", { name: "b", value: b, required: true, placeholder: "later scan id" });
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (event: Event) => {
        event.preventDefault();
        location.hash = `#/compare?a=${seg(first.value.trim())}&b=${seg(second.value.trim())}`;
      },
    },
    field("Scan A", first),
    field("Scan B", second),
    h("button", { type: "submit" }, "Compare"),
  );
  if (!a || !b) {
    replace(page.main, h("h1", {}, "Compare two scans"), form);
    return;
  }
  const comparison = await call<Schemas["ScanComparison"]>("GET", "/scans/compare", { query: { scan_a: a, scan_b: b } });
  replace(
    page.main,
    h("h1", {}, "Compare two scans"),
    form,
    h("p", {}, h("a", { href: `#/scans/${seg(a)}` }, "Scan A"), " → ", h("a", { href: `#/scans/${seg(b)}` }, "Scan B"), comparison.same_target ? "" : " (different targets)"),
    h("p", { class: "summary", "data-testid": "compare-summary" }, `${comparison.summary.new} new · ${comparison.summary.fixed} fixed · ${comparison.summary.unchanged} unchanged`),
    findingList("New", comparison.new, "compare-new"),
    findingList("Fixed", comparison.fixed, "compare-fixed"),
    findingList("Unchanged", comparison.unchanged, "compare-unchanged"),
  );
}
