// The dashboard end to end in Debian's Chromium, as a person uses it: sign in, start a scan of a
// loopback lab target, watch its progress arrive, open the findings, triage one with a comment,
// see the unread count change, compare two scans, issue and revoke a key — at desktop and phone
// width, with axe-core on every main page and any Content-Security-Policy violation failing the run.
//
// Run by tests/ui.rs, which starts the server and the lab target and passes:
//   VANTAGE_URL      the server's base URL        VANTAGE_KEY      an admin API key
//   VANTAGE_TARGET   what to scan                 VANTAGE_PATHS    its paths, comma-separated
//   VANTAGE_ARTIFACTS where screenshots go       CHROMIUM         the browser (/usr/bin/chromium)
// Prints one JSON line of measurements; exits non-zero with the reason on the first failure.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("VANTAGE_URL");
const key = env("VANTAGE_KEY");
const target = env("VANTAGE_TARGET");
const paths = env("VANTAGE_PATHS");
const artifacts = env("VANTAGE_ARTIFACTS");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const results = { interactive_ms: [], static_page_ms: [], axe: {}, screenshots: [], steps: [] };
const problems = [];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function step(name) {
  results.steps.push(name);
}

/** A fresh browser context whose pages report CSP violations and script errors as problems. */
async function context(browser, viewport, label) {
  const ctx = await browser.newContext({ viewport, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
  ctx.on("page", (page) => watch(page, label));
  return ctx;
}

function watch(page, label) {
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`${label}: CSP: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${label}: script error: ${error.message}`));
}

/** axe-core on the page as it is now; serious and critical violations fail the run. */
async function axe(page, name) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(axeSource);
  const report = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  const blocking = report.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  results.axe[name] = report.violations.map((v) => `${v.id}(${v.impact})`);
  check(
    blocking.length === 0,
    `axe: ${name}: ${blocking.map((v) => `${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`,
  );
}

async function shot(page, name, viewport) {
  const file = join(artifacts, `ui-${name}-${viewport.width}.png`);
  await page.screenshot({ path: file, fullPage: true });
  results.screenshots.push(file);
}

async function noHorizontalScroll(page, name) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `${name}: the page is ${overflow}px wider than the phone's screen`);
}

/** Loads /ui in a fresh context; the time from navigation start to the app's first render. */
async function firstPaint(browser) {
  const ctx = await context(browser, DESKTOP, "load");
  const page = await ctx.newPage();
  await page.goto(`${base}/ui`);
  await page.waitForFunction(() => performance.getEntriesByName("vantage:interactive").length > 0);
  const ms = await page.evaluate(() => performance.getEntriesByName("vantage:interactive")[0].startTime);
  await ctx.close();
  return ms;
}

/** The floor in the same run: a static page of the same server (/docs/problems, no script) loaded
 *  in a fresh context, navigation start to its load event. */
async function staticPageLoad(browser) {
  const ctx = await context(browser, DESKTOP, "baseline");
  const page = await ctx.newPage();
  await page.goto(`${base}/docs/problems`, { waitUntil: "load" });
  const ms = await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
  await ctx.close();
  return ms;
}

async function signIn(page) {
  await page.goto(`${base}/ui`);
  const input = page.locator('input[name="api-key"]');
  await input.waitFor();
  // By keyboard: the field has focus when the page opens, Enter submits.
  check(await input.evaluate((el) => el === document.activeElement), "the key field has focus on the sign-in page");
  await page.keyboard.type(key);
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: "Command center" }).waitFor();
}

async function unread(page) {
  return Number(await page.locator("#unread").textContent());
}

async function startScan(page) {
  await page.getByRole("link", { name: "New scan" }).click();
  await page.getByLabel("Target").fill(target);
  await page.getByLabel("Paths").fill(paths);
  await page.getByRole("button", { name: "Start scan" }).click();
  await page.waitForURL(/#\/scans\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop();
}

async function desktop(browser) {
  const ctx = await context(browser, DESKTOP, "desktop");
  const page = await ctx.newPage();

  await page.goto(`${base}/ui`);
  await page.locator('input[name="api-key"]').waitFor();
  await axe(page, "sign-in");
  await shot(page, "sign-in", DESKTOP);
  // A refused key is explained with the server's problem title, and nothing is kept.
  await page.locator('input[name="api-key"]').fill("vtg_default_not-a-real-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  const refusal = page.locator('[role="alert"]');
  await refusal.filter({ hasText: /\S/ }).waitFor();
  step(`refused key: ${await refusal.textContent()}`);
  check(await page.evaluate(() => sessionStorage.length === 0), "a refused key is not kept");

  await signIn(page);
  step("signed in");
  const secretShown = await page.evaluate((k) => document.documentElement.outerHTML.includes(k) || location.href.includes(k), key);
  check(!secretShown, "the API key appears in the DOM or the URL");
  check(await page.evaluate((k) => sessionStorage.getItem("vantage.api-key") === k, key), "the key is in session storage");
  const unreadBefore = await unread(page);
  // Keyboard: the first Tab from the top of the page reaches the skip link.
  await page.reload();
  await page.locator("h1", { hasText: "Command center" }).waitFor();
  await page.keyboard.press("Tab");
  check((await page.evaluate(() => document.activeElement?.textContent)) === "Skip to content", "the first Tab reaches the skip link");

  // A target the server refuses: its problem detail is shown.
  await page.getByRole("link", { name: "New scan" }).click();
  await page.getByLabel("Target").fill("not a target!");
  await page.getByRole("button", { name: "Start scan" }).click();
  const refused = page.locator('form [role="alert"]');
  await refused.filter({ hasText: /\S/ }).waitFor();
  step(`refused target: ${await refused.textContent()}`);

  const first = await startScan(page);
  step(`scan ${first} started`);
  // Progress arrives live: events in the log and a growing observation count.
  await page.locator(".live-log li", { hasText: "ProbeObserved" }).first().waitFor({ timeout: 20_000 });
  const seen = await page.locator('[data-testid="observation-count"]').textContent();
  check(Number(seen) > 0, `observations counted while running (${seen})`);
  results.live_events = await page.locator(".live-log li").count();
  await shot(page, "scan-running", DESKTOP);
  await page.locator("#findings-h").waitFor({ timeout: 30_000 });
  step("scan completed");
  await axe(page, "scan");
  await shot(page, "scan", DESKTOP);
  await page.getByText(/^Observations \(\d+\)$/).click();
  await page.locator("details.card table.list tbody tr").first().waitFor();
  const downloading = page.waitForEvent("download");
  await page.getByRole("button", { name: "Report: JSON" }).click();
  const report = JSON.parse(readFileSync(await (await downloading).path(), "utf8"));
  check(JSON.stringify(report).includes(first), "the downloaded JSON report is the scan's");
  step("observations shown, report downloaded");

  const findings = page.locator("details.finding");
  check((await findings.count()) > 0, "the lab target has findings");
  const finding = findings.first();
  await finding.locator("summary").focus();
  await page.keyboard.press("Enter");
  check(await finding.evaluate((el) => el.open), "Enter on a finding's summary opens it");
  await finding.getByLabel("Triage state").selectOption("acknowledged");
  await finding.getByLabel("Note").fill("seen in the e2e run");
  await finding.getByRole("button", { name: "Save triage" }).click();
  await finding.getByText("Triage saved.").waitFor();
  check((await finding.locator(".triage-tag").textContent()) === "acknowledged", "the triage tag shows the new state");
  await finding.getByRole("textbox", { name: "Comment", exact: true }).fill("checked by the browser test");
  await finding.getByRole("button", { name: "Add comment" }).click();
  await finding.locator(".comments li", { hasText: "checked by the browser test" }).waitFor();
  step("triaged and commented");
  await axe(page, "scan-finding-open");

  // The scan's new high findings became notifications: the bell's count goes up.
  await page.waitForFunction((before) => Number(document.getElementById("unread")?.textContent) > before, unreadBefore, { timeout: 20_000, polling: 500 }).catch(async () => {
    await page.evaluate(() => location.reload());
    await page.locator("#findings-h").waitFor();
  });
  const unreadAfterScan = await unread(page);
  check(unreadAfterScan > unreadBefore, `the unread count rose after the scan (${unreadBefore} → ${unreadAfterScan})`);
  await page.getByRole("link", { name: /Notifications/ }).click();
  await page.locator("h1", { hasText: "Notifications" }).waitFor();
  check((await page.locator(".notifications li.unread").count()) === unreadAfterScan, "the list shows every unread notification");
  await axe(page, "notifications");
  await shot(page, "notifications", DESKTOP);
  await page.getByRole("button", { name: "Mark all read" }).click();
  await page.waitForFunction(() => document.getElementById("unread")?.textContent === "0");
  step(`unread ${unreadBefore} → ${unreadAfterScan} → 0`);

  const second = await startScan(page);
  await page.locator("#findings-h").waitFor({ timeout: 30_000 });
  await page.getByRole("link", { name: "Compare with the previous scan" }).click();
  await page.waitForURL(new RegExp(`#/compare\\?a=${first}&b=${second}$`));
  const summary = await page.locator('[data-testid="compare-summary"]').textContent();
  const match = /(\d+) new · (\d+) fixed · (\d+) unchanged/.exec(summary ?? "");
  check(match && Number(match[3]) > 0 && Number(match[1]) === 0, `two scans of one unchanged target: ${summary}`);
  step(`compared: ${summary}`);
  await axe(page, "compare");
  await shot(page, "compare", DESKTOP);

  await page.goto(`${base}/ui#/scans/${second}`);
  await page.locator("#findings-h").waitFor();
  await page.getByRole("link", { name: /^history of / }).click();
  await page.locator('[data-testid="trend-chart"]').waitFor();
  check((await page.locator("table.list tbody tr").count()) >= 2, "the domain's history lists both scans");
  await axe(page, "domain");
  await shot(page, "domain", DESKTOP);

  await page.getByRole("link", { name: "Vantage" }).click();
  await page.locator('[data-testid="health-score"]').waitFor();
  await axe(page, "command-center");
  await shot(page, "command-center", DESKTOP);

  await page.getByRole("link", { name: "Scans", exact: true }).click();
  await page.getByLabel("Status").selectOption("completed");
  // The URL changes before the page is redrawn: the unfiltered rows can still be on screen when it
  // has, then give way to "Loading…" until the filtered list arrives. Wait for that list's own
  // response, then for its rows.
  const filtered = page.waitForResponse((response) => {
    const url = response.url();
    return url.includes("/api/v1/scans?") && url.includes("status=completed") && !url.includes("domain=");
  });
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/status=completed/);
  await filtered;
  await page.locator("table.list tbody tr").nth(1).waitFor();
  check((await page.locator("table.list tbody tr").count()) >= 2, "the filtered list shows the completed scans");
  await axe(page, "scans");
  await shot(page, "scans", DESKTOP);
  // Cursor paging, one scan a page: the next page shows another scan, and the first page is back.
  await page.goto(`${base}/ui#/scans?status=completed&limit=1`);
  const onFirst = await page.locator("table.list tbody a").first().textContent();
  const firstHref = await page.locator("table.list tbody a").first().getAttribute("href");
  await page.getByRole("link", { name: "Next page" }).click();
  await page.waitForURL(/cursor=/);
  const shows = (href) =>
    page
      .waitForFunction((h) => document.querySelector("table.list tbody a")?.getAttribute("href") === h, href, { timeout: 10_000 })
      .then(() => true, () => false);
  const others = (href) =>
    page
      .waitForFunction((h) => { const a = document.querySelector("table.list tbody a"); return a !== null && a.getAttribute("href") !== h; }, href, { timeout: 10_000 })
      .then(() => true, () => false);
  check(await others(firstHref), `the next page shows another scan than ${onFirst}`);
  await page.getByRole("link", { name: "First page" }).click();
  check(await shows(firstHref), "the first page shows its scan again");
  step("paged");

  // Without a live stream (refused here), the page follows the scan's status at the pace its
  // Retry-After asks and still shows the result.
  await page.route("**/events?**", (route) => route.abort());
  const third = await startScan(page);
  await page.locator(".live-log li", { hasText: "following the status instead" }).waitFor();
  await page.locator("#findings-h").waitFor({ timeout: 30_000 });
  await page.unroute("**/events?**");
  step(`scan ${third} followed by polling`);

  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByLabel("Name").fill("e2e-ci");
  await page.getByRole("button", { name: "Issue key" }).click();
  const token = await page.locator("input.token").inputValue();
  check(token.startsWith("vtg_"), "the new key's token is shown once");
  await axe(page, "keys");
  await shot(page, "keys", DESKTOP);
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: "Revoke e2e-ci" }).click();
  await page.locator("tr", { hasText: "e2e-ci" }).getByText("revoked").waitFor();
  await page.getByRole("link", { name: "Scans", exact: true }).click();
  await page.locator("h1", { hasText: "Scans" }).waitFor();
  check((await page.locator("input.token").count()) === 0, "the token is gone once the page is left");
  step("key issued and revoked");
  results.scans = [first, second];
  await ctx.close();
}

async function phone(browser) {
  const ctx = await context(browser, PHONE, "phone");
  const page = await ctx.newPage();
  await page.goto(`${base}/ui`);
  await page.locator('input[name="api-key"]').waitFor();
  await noHorizontalScroll(page, "sign-in");
  await shot(page, "sign-in", PHONE);
  await signIn(page);
  for (const [name, hash, ready] of [
    ["command-center", "#/", '[data-testid="health-score"]'],
    ["scans", "#/scans", "table.list"],
    ["scan", `#/scans/${results.scans[1]}`, "#findings-h"],
    ["compare", `#/compare?a=${results.scans[0]}&b=${results.scans[1]}`, '[data-testid="compare-summary"]'],
    ["notifications", "#/notifications", "h1"],
    ["keys", "#/keys", "table.list"],
  ]) {
    await page.goto(`${base}/ui${hash}`);
    await page.locator(ready).first().waitFor();
    await noHorizontalScroll(page, name);
    await axe(page, `phone-${name}`);
    await shot(page, name, PHONE);
  }
  step("phone width");
  await ctx.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
let failed = null;
try {
  for (let i = 0; i < 5; i++) {
    results.interactive_ms.push(Math.round((await firstPaint(browser)) * 10) / 10);
    results.static_page_ms.push(Math.round((await staticPageLoad(browser)) * 10) / 10);
  }
  await desktop(browser);
  await phone(browser);
} catch (error) {
  failed = error;
} finally {
  await browser.close();
}
if (failed === null && problems.length) failed = new Error(problems.join("\n"));
if (failed) {
  console.error(`ui e2e failed after: ${results.steps.join(" → ")}\n${failed.stack ?? failed}`);
  process.exit(1);
}
console.log(JSON.stringify(results));
