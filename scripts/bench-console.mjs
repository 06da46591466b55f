// How fast the QA console's reads are on a big store: starts the mock on a
// file database, submits JOBS jobs (default 100,000) over HTTP from 4
// tenants and 3 apps (1 % fail, 10 % send a webhook: half to a receiver
// answering 200, half to one answering 500 until dead), then times each
// console request RUNS times and prints median and max.
//
// Usage: node scripts/bench-console.mjs   (after cargo build --release -p mock-camber)
// Env: MOCK_CAMBER_BIN (default target/release/mock-camber), JOBS, RUNS,
//      CONCURRENCY (submits in flight, default 64), KEEP=1 (keep the db).

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = process.env.MOCK_CAMBER_BIN || path.join(ROOT, "target/release/mock-camber");
const JOBS = Number(process.env.JOBS || 100000);
const RUNS = Number(process.env.RUNS || 20);
const CONCURRENCY = Number(process.env.CONCURRENCY || 64);
const KEYS = ["sk_test_team_a_0001", "sk_test_team_b_0002", "sk_test_team_c_0003", "sk_test_team_d_0004"];
const APPS = ["rythmiq-worker", "invoice-ocr", "receipt-parse"];

const receiver = (status) =>
  new Promise((ok) => {
    const s = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(status).end());
    });
    s.listen(0, "127.0.0.1", () => ok(s));
  });
const good = await receiver(200);
const bad = await receiver(500);

const dir = mkdtempSync(path.join(tmpdir(), "bench-console-"));
const db = path.join(dir, "mock.db");
const mock = spawn(
  BIN,
  ["--port", "0", "--db", db, "--stage-ms", "0", "--failure-rate", "0.01", "--retry-schedule", "10ms",
    ...KEYS.flatMap((k) => ["--api-key", k])],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } },
);
const base = await new Promise((ok, fail) => {
  mock.on("exit", (c) => fail(new Error("mock-camber exited " + c)));
  createInterface({ input: mock.stdout }).once("line", (l) => ok(l.trim().replace("listening on ", "")));
});

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function request(method, p, body, key) {
  return new Promise((ok, fail) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(base + p, {
      method, agent,
      headers: { authorization: "Bearer " + (key || KEYS[0]), ...(data ? { "content-type": "application/json", "content-length": data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => ok({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
    });
    req.on("error", fail);
    req.end(data);
  });
}

// ---------------------------------------------------------------- seed
const t0 = Date.now();
let next = 0;
async function worker() {
  while (next < JOBS) {
    const i = next++;
    const body = { app: APPS[i % 3], input: { filename: `scan-${i}.pdf` }, metadata: { job_id: `bench-${i}`, batch: `b${i % 100}` } };
    if (i % 10 === 0) body.webhook = { url: `http://127.0.0.1:${(i % 20 === 0 ? good : bad).address().port}/hook` };
    const r = await request("POST", "/jobs", body, KEYS[i % 4]);
    if (r.status !== 201) throw new Error("submit: " + r.status + " " + r.text);
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const seedSecs = (Date.now() - t0) / 1000;
// Let the engine finish every job and the dead webhooks die.
for (;;) {
  const s = JSON.parse((await request("GET", "/_mock/stats")).text);
  if (s.jobs.pending + s.jobs.running === 0 && s.deliveries.pending === 0) break;
  await new Promise((r) => setTimeout(r, 200));
}
const settled = (Date.now() - t0) / 1000;
const stats = JSON.parse((await request("GET", "/_mock/stats")).text);
const some = JSON.parse((await request("GET", "/_mock/jobs?limit=1&q=bench-50000")).text).jobs[0];
const dead = JSON.parse((await request("GET", "/_mock/deliveries?state=dead&limit=1")).text).deliveries[0];

// ---------------------------------------------------------------- time
const cases = [
  ["jobs, first page (50)", "/_mock/jobs?limit=50"],
  ["jobs, a page deep in the middle", "/_mock/jobs?limit=50&cursor=50000"],
  ["jobs, status=failed (1 %)", "/_mock/jobs?limit=50&status=failed"],
  ["jobs, status=running (none)", "/_mock/jobs?limit=50&status=running"],
  ["jobs, tenant by mask", "/_mock/jobs?limit=50&tenant=" + encodeURIComponent("sk_t…0003")],
  ["jobs, app=invoice-ocr", "/_mock/jobs?limit=50&app=invoice-ocr"],
  ["jobs, q=id prefix", "/_mock/jobs?limit=50&q=" + some.id.slice(0, 20)],
  ["jobs, q=metadata text, 1 match (scans all)", "/_mock/jobs?limit=50&q=bench-50000%22"],
  ["jobs, q=metadata text, many matches", "/_mock/jobs?limit=50&q=b42"],
  ["job detail", "/_mock/jobs/" + dead.job_id],
  ["stats (overview)", "/_mock/stats"],
  ["deliveries, first page", "/_mock/deliveries?limit=50"],
  ["deliveries, state=dead", "/_mock/deliveries?limit=50&state=dead"],
  ["deliveries, state=failing (none)", "/_mock/deliveries?limit=50&state=failing"],
  ["deliveries, job_id=", "/_mock/deliveries?job_id=" + dead.job_id],
];
console.log(`seeded ${JOBS} jobs in ${seedSecs.toFixed(1)} s (${Math.round(JOBS / seedSecs)}/s), all settled after ${settled.toFixed(1)} s`);
console.log(`store: ${JSON.stringify(stats.jobs)} deliveries ${JSON.stringify(stats.deliveries)}; db ${(statSync(db).size / 1e6).toFixed(0)} MB`);
console.log(`\n| request (${RUNS} runs each, one at a time) | median ms | max ms |\n|---|---:|---:|`);
for (const [name, p] of cases) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    const r = await request("GET", p);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.text}`);
  }
  times.sort((a, b) => a - b);
  console.log(`| ${name} | ${times[Math.floor(RUNS / 2)].toFixed(1)} | ${times[RUNS - 1].toFixed(1)} |`);
}
mock.kill("SIGTERM");
good.close();
bad.close();
agent.destroy();
if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
else console.log("kept " + dir);
