// End-to-end test of the QA console (GET /_mock/) in headless Chromium.
//
// Starts the real daemon (target/debug/mock-camber, or $MOCK_CAMBER_BIN)
// with an admin token on a free port, and a webhook receiver (below) whose
// answer the test switches from 500 to 200. Drives the page through
// Playwright's auto-waiting locators: no sleeps. Fails on any console
// error or page error. Takes dashboard-overview.png and dashboard-job.png
// (1280×800) into a temporary directory; with UPDATE_SCREENSHOTS=1 a passing
// run copies them into docs/ (so CI never changes tracked files).

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { createInterface } from "node:readline";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.MOCK_CAMBER_BIN || path.join(ROOT, "target/debug/mock-camber");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const DOCS = path.join(ROOT, "docs");
const SHOTS = fs.mkdtempSync(path.join(os.tmpdir(), "mock-camber-console-"));
const SCREENSHOTS = ["dashboard-overview.png", "dashboard-job.png"];
const ADMIN_TOKEN = "qa-console-admin-token-7f3a";
const KEY_A = "sk_test_team_a_0123456789";
const KEY_B = "sk_test_team_b_9876543210";
const WAIT = { timeout: 15000 };
const started = Date.now();

function step(what) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
}

// ---------------------------------------------------------------- receiver

let receiverStatus = 500;
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(receiverStatus, { "content-type": "text/plain" });
    res.end(receiverStatus === 200 ? "thanks, stored" : "receiver is broken: database unavailable");
  });
});
await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks/camber`;

// ---------------------------------------------------------------- daemon

const mock = spawn(
  BIN,
  [
    "--port", "0",
    "--db", ":memory:",
    "--admin-token", ADMIN_TOKEN,
    "--api-key", KEY_A,
    "--api-key", KEY_B,
    "--webhook-secret", "browser-test-webhook-secret",
    "--stage-ms", "20",
    "--retry-schedule", "50ms,50ms",
  ],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } },
);
const base = await new Promise((ok, fail) => {
  mock.on("exit", (code) => fail(new Error(`mock-camber exited (${code}) before listening`)));
  createInterface({ input: mock.stdout }).once("line", (line) => {
    const m = /^listening on (http:\/\/\S+)$/.exec(line.trim());
    m ? ok(m[1]) : fail(new Error("unexpected first line: " + line));
  });
});
step(`mock-camber on ${base}, receiver on ${hookUrl}`);

async function api(method, p, body, key = KEY_A) {
  const r = await fetch(base + p, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await r.json();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}
const submit = (body, key) => api("POST", "/jobs", body, key).then((j) => j.id);

// ---------------------------------------------------------------- the test

let browser;
let page;
const problems = [];
let failed = false;
try {
  for (let i = 1; i <= 6; i++) {
    await submit({ app: i % 2 ? "rythmiq-worker" : "invoice-ocr", input: { filename: `scan-${i}.pdf` }, metadata: { job_id: `qa-batch-${i}` } }, i % 3 ? KEY_A : KEY_B);
  }
  const held = await submit({ app: "rythmiq-worker", input: { filename: "held.pdf" }, metadata: { job_id: "qa-held-1", mock: { hold: true } } });
  const hooked = await submit({ app: "rythmiq-worker", input: { filename: "invoice.pdf" }, metadata: { job_id: "qa-hook-1" }, webhook: { url: hookUrl } });
  step(`submitted held job ${held} and webhook job ${hooked}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  // The token: asked once, a wrong one refused in words.
  await page.goto(base + "/_mock/");
  const dialog = page.locator("#token-dialog");
  await dialog.waitFor({ state: "visible", ...WAIT });
  await dialog.locator("input[name=token]").fill("not-the-token");
  await dialog.getByRole("button", { name: "Unlock" }).click();
  await page.locator("#token-error", { hasText: "Wrong admin token" }).waitFor(WAIT);
  await dialog.locator("input[name=token]").fill(ADMIN_TOKEN);
  await dialog.getByRole("button", { name: "Unlock" }).click();
  await dialog.waitFor({ state: "hidden", ...WAIT });
  step("token refused, then accepted");

  // Both rows, and the overview counting them.
  const row = (id) => page.locator(`#jobs tr[data-id="${id}"]`);
  await row(held).waitFor(WAIT);
  await row(hooked).waitFor(WAIT);
  await page.locator('#overview [data-value="running"]', { hasText: /^[1-9]/ }).waitFor(WAIT);
  // The overview while it is interesting: a held job running, a webhook dead.
  await page.locator('#overview [data-value="dead"]', { hasText: /^1$/ }).waitFor(WAIT);
  await row(hooked).locator('[data-state="dead"]').waitFor(WAIT);
  // Deliveries by the same words as the API: pending, failing, dead, delivered.
  const hooks = page.locator('#overview [role=group][aria-label="Webhooks"]');
  for (const [word, n] of [["pending", 0], ["failing", 0], ["dead", 1], ["delivered", 0]]) {
    await hooks.locator(`[data-value="${word}"]`, { hasText: new RegExp(`^${n}$`) }).waitFor(WAIT);
  }
  await page.screenshot({ path: path.join(SHOTS, "dashboard-overview.png"), animations: "disabled" });
  step("both jobs listed, the webhook dead; overview screenshot");
  // A marker a reload would wipe: every later change must arrive live.
  await page.evaluate(() => (window.__noReload = true));

  // The held job: advance it stage by stage until it completes.
  await row(held).locator("a").click();
  await page.waitForURL(`**/_mock/#/jobs/${held}`);
  const head = page.locator("#detail .detail-head");
  await head.filter({ hasText: held }).waitFor(WAIT);
  await page.locator("#detail", { hasText: "metadata.mock" }).waitFor(WAIT);
  for (let i = 0; i < 6; i++) {
    if ((await head.locator("[data-state]").getAttribute("data-state")) === "completed") break;
    const before = await page.locator("#detail .timeline").innerText();
    await page.locator('#detail [data-action="advance"]').click();
    await page.waitForFunction((b) => document.querySelector("#detail .timeline")?.innerText !== b, before, WAIT);
  }
  await head.locator('[data-state="completed"]').waitFor(WAIT);
  await row(held).and(page.locator('[data-status="completed"]')).waitFor(WAIT);
  step("held job advanced to completed; its row turned completed");

  // The failing webhook: dead after its retries; fix the receiver, redeliver.
  await row(hooked).locator("a").click();
  const delivery = page.locator("#detail section.delivery");
  await delivery.locator('.delivery-head [data-state="dead"]').waitFor(WAIT);
  const attempts = await delivery.locator("table.attempts tr[data-attempt]").count();
  await delivery.locator("table.attempts .attempt-status", { hasText: "500" }).first().waitFor(WAIT);
  receiverStatus = 200;
  await delivery.locator('[data-action="redeliver"]').click();
  await delivery.locator(`tr[data-attempt="${attempts + 1}"] .attempt-status`, { hasText: /^200$/ }).waitFor(WAIT);
  await delivery.locator('.delivery-head [data-state="delivered"]').waitFor(WAIT);
  await delivery.locator(`tr[data-headers-of="${attempts + 1}"] summary`).click();
  await delivery.locator(`tr[data-headers-of="${attempts + 1}"] dl.headers`, { hasText: "(elided)" }).waitFor(WAIT);
  const shown = await delivery.innerText();
  if (shown.includes("browser-test-webhook-secret")) throw new Error("the webhook secret is on the page");
  step(`delivery dead after ${attempts} attempts; attempt ${attempts + 1} answered 200`);
  await page.locator("#detail").evaluate((d) => d.scrollTo(0, 0));
  // A job open at 1280 px: the list beside it fits, no sideways scrolling.
  const wide = await page.locator("#view-jobs .table-wrap").evaluate((w) => [w.scrollWidth, w.clientWidth]);
  if (wide[0] > wide[1]) throw new Error(`with a job open the list scrolls sideways: ${wide[0]}px in ${wide[1]}px`);
  await page.screenshot({ path: path.join(SHOTS, "dashboard-job.png"), animations: "disabled" });

  // A receiver audit of that job (its receiver answers 200 to anything):
  // the job's page lists the report and the cases it failed.
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
  const started_audit = await fetch(`${base}/_mock/jobs/${hooked}/audit`, { method: "POST", headers: admin, body: "{}" });
  if (started_audit.status !== 202) throw new Error(`audit: ${started_audit.status} ${await started_audit.text()}`);
  const { id: auditId } = await started_audit.json();
  const report = await (await fetch(`${base}/_mock/audits/${auditId}?wait_ms=60000`, { headers: admin })).json();
  if (report.state !== "done" || !report.failed.includes("wrong_secret")) {
    throw new Error(`audit report: ${JSON.stringify(report).slice(0, 400)}`);
  }
  await page.keyboard.press("Escape");
  await row(hooked).locator("a").click();
  const audited = page.locator(`#detail [data-audit="${auditId}"]`);
  await audited.locator('[data-audit-failed~="wrong_secret"]').waitFor(WAIT);
  await audited.getByText("wrong_secret").first().waitFor(WAIT);
  step(`audit ${auditId} of ${hooked}: the page lists its ${report.failed.length} failed cases`);

  // Config: inline errors, then failure_rate 1 fails the next job.
  await page.locator('nav a[data-nav="config"]').click();
  const form = page.locator("#config-form");
  await page.waitForFunction(() => document.querySelector("#config-form [name=failure_rate]").value === "0", null, WAIT);
  await form.locator("textarea[name=rules]").fill("[{");
  await form.getByRole("button", { name: "Save config" }).click();
  await form.locator('[data-error-for="rules"]', { hasText: "not valid JSON" }).waitFor(WAIT);
  await form.locator("textarea[name=rules]").fill("[]");
  await form.locator("input[name=failure_rate]").fill("2");
  await form.getByRole("button", { name: "Save config" }).click();
  await form.locator('[data-error-for="failure_rate"]', { hasText: "from 0 to 1" }).waitFor(WAIT);
  await form.locator("input[name=failure_rate]").fill("1");
  await form.getByRole("button", { name: "Save config" }).click();
  await page.locator("#config-status", { hasText: "Saved: failure_rate" }).waitFor(WAIT);
  step("config: bad JSON and a bad rate shown inline; failure_rate 1 saved");

  const doomed = await submit({ app: "rythmiq-worker", input: { filename: "after-config.pdf" }, metadata: { job_id: "qa-after-config" } }, KEY_B);
  await page.locator('nav a[data-nav="jobs"]').click();
  await row(doomed).and(page.locator('[data-status="failed"]')).waitFor(WAIT);
  await row(doomed).locator("a").click();
  await page.locator("#detail", { hasText: "failure_rate 1" }).waitFor(WAIT);
  step(`the next job ${doomed} failed, chosen by the defaults (failure_rate 1)`);

  // Keyboard: Escape closes the detail, "/" goes to the search box.
  await page.keyboard.press("Escape");
  await page.locator("#detail").waitFor({ state: "hidden", ...WAIT });
  await page.keyboard.press("/");
  await page.keyboard.type(held);
  await page.keyboard.press("Enter");
  await page.waitForFunction((id) => {
    const rows = document.querySelectorAll("#jobs tr[data-id]");
    return rows.length === 1 && rows[0].dataset.id === id;
  }, held, WAIT);
  await page.locator("#job-filters").getByRole("button", { name: "Clear" }).click();
  await row(hooked).waitFor(WAIT);
  await page.locator('#overview [data-value="failed"]', { hasText: /^1$/ }).waitFor(WAIT);
  step("keyboard: Escape closed the job, / searched");

  // A narrow window: nothing wider than the window.
  await page.setViewportSize({ width: 420, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the page is ${overflow}px wider than a 420px window`);

  // Reset asks first, then empties the store.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.locator('nav a[data-nav="config"]').click();
  await page.locator("#reset").click();
  await page.locator("#confirm-dialog").getByRole("button", { name: "Reset" }).click();
  await page.locator('nav a[data-nav="jobs"]').click();
  await page.locator("#jobs", { hasText: "No job matches." }).waitFor(WAIT);
  if (!(await page.evaluate(() => window.__noReload))) throw new Error("the page was reloaded");
  step("narrow window fits; reset confirmed and applied, never reloaded");
} catch (e) {
  failed = true;
  console.error("FAILED:", e.message);
  if (page) {
    // What the page showed, for the CI log (and a picture outside the repo).
    const shot = path.join(process.env.TMPDIR || "/tmp", "mock-camber-browser-test-failure.png");
    await page.screenshot({ path: shot }).catch(() => {});
    const text = await page.locator("body").innerText().catch(() => "");
    console.error(`page at ${page.url()} (screenshot: ${shot}):\n${text.slice(0, 3000)}`);
  }
} finally {
  if (browser) await browser.close();
  mock.kill("SIGTERM");
  receiver.close();
}
for (const p of problems) console.error(p);
if (failed || problems.length) {
  console.error(`browser test failed (${problems.length} console/page error(s))`);
  process.exit(1);
}
if (process.env.UPDATE_SCREENSHOTS === "1") {
  for (const f of SCREENSHOTS) fs.copyFileSync(path.join(SHOTS, f), path.join(DOCS, f));
  step(`screenshots copied into ${DOCS}`);
} else {
  step(`screenshots in ${SHOTS} (UPDATE_SCREENSHOTS=1 copies them into docs/)`);
}
step("browser test passed");
