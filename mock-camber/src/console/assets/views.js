// What the console draws: the overview strip, list rows and a job's
// detail, built as DOM nodes (never HTML strings, so data cannot inject
// markup). No state lives here; app.js passes the data and the actions.

export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function badge(state) {
  return el("span", { class: "badge s-" + (state || "none"), "data-state": state || "none" }, state || "—");
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// Local time of day (with the date when not today), milliseconds for
// attempt timing; the full timestamp is in the tooltip.
export function fmtTime(iso, ms) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date().toDateString() === d.toDateString();
  const day = today ? "" : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `;
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return day + t + (ms ? "." + pad(d.getMilliseconds(), 3) : "");
}

export function timeEl(iso, ms) {
  return iso ? el("time", { datetime: iso, title: iso }, fmtTime(iso, ms)) : "";
}

function duration(from, to) {
  if (!from || !to) return "";
  const ms = new Date(to) - new Date(from);
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function json(v) {
  return el("pre", { class: "json" }, JSON.stringify(v, null, 2));
}

function sparkline(values, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const w = 120;
  const h = 28;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const vals = values.length ? values : [0];
  const max = Math.max(1, ...vals);
  const step = vals.length > 1 ? w / (vals.length - 1) : w;
  const pts = vals.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.join(" "));
  svg.append(line);
  return svg;
}

function tile(label, value, opts = {}) {
  const inner = [el("span", { class: "tile-label" }, label), el("span", { class: "tile-value", "data-value": label }, value)];
  if (opts.spark) inner.push(opts.spark);
  const cls = "tile" + (opts.cls ? " " + opts.cls : "");
  return opts.href ? el("a", { class: cls, href: opts.href, title: opts.title }, inner) : el("div", { class: cls }, inner);
}

function group(label, title, tiles) {
  return el("div", { class: "group", role: "group", "aria-label": label }, el("h2", {}, title), el("div", { class: "tiles" }, tiles));
}

export function renderOverview(root, s) {
  const j = s.jobs;
  const d = s.deliveries;
  const r = s.rates;
  const rate = (x) => (x >= 10 ? x.toFixed(0) : x.toFixed(1));
  root.replaceChildren(
    group(
      "Jobs by status",
      ["Jobs ", el("span", { class: "muted" }, String(j.total))],
      ["pending", "running", "completed", "failed", "cancelled"].map((st) =>
        tile(st, j[st] || 0, { href: "#/jobs?status=" + st, cls: "s-" + st, title: `Show ${st} jobs` }),
      ),
    ),
    group("Webhooks", "Webhooks", [
      tile("queue", s.webhook_queue_depth, { title: "Deliveries waiting to be sent or retried" }),
      tile("pending", d.pending, { href: "#/deliveries?state=pending", title: "Waiting for a send; no attempt has failed" }),
      tile("failing", d.failing, { href: "#/deliveries?state=failing", cls: d.failing ? "s-failing" : "", title: "An attempt failed; retrying" }),
      tile("dead", d.dead, { href: "#/deliveries?state=dead", cls: d.dead ? "s-dead" : "", title: "Gave up: redeliver them" }),
      tile("delivered", d.delivered, { href: "#/deliveries?state=delivered" }),
    ]),
    group(`Rates over the last ${r.window_s} s`, "Last minute", [
      tile("submits/s", rate(r.submits_per_s), { spark: sparkline(r.submits, "submits per second, last minute") }),
      tile("webhooks/s", rate(r.webhooks_per_s), { spark: sparkline(r.webhooks, "webhook attempts per second, last minute") }),
      tile("failed/s", rate(r.webhook_failures_per_s), { cls: r.webhook_failures_per_s > 0 ? "s-failing" : "", title: "Webhook attempts that failed" }),
    ]),
  );
}

export function jobRow(j, selected) {
  const caller = j.metadata && j.metadata.job_id;
  const wh = j.webhook ? [badge(j.webhook.state), ` ${j.webhook.attempts}×`] : el("span", { class: "muted" }, "none");
  return el(
    "tr",
    { "data-id": j.id, "data-status": j.status, class: selected ? "selected" : "", "aria-selected": selected ? "true" : null },
    el("td", {}, el("a", { href: "#/jobs/" + j.id, class: "mono" }, j.id), caller && caller !== j.id ? el("div", { class: "muted small" }, caller) : ""),
    el("td", { class: "mono" }, j.tenant),
    el("td", {}, j.app),
    el("td", { class: "status" }, badge(j.status)),
    el("td", {}, j.stage || ""),
    el("td", {}, wh),
    el("td", {}, timeEl(j.created_at)),
  );
}

function lastAttempt(d) {
  const a = d.attempts[d.attempts.length - 1];
  if (!a) return el("span", { class: "muted" }, "not sent yet");
  return [timeEl(a.at), " ", a.status ? el("b", {}, String(a.status)) : "", " ", a.status && a.status < 300 ? "" : el("span", { class: "err" }, a.error || "")];
}

export function deliveryRow(d, onRedeliver) {
  return el(
    "tr",
    { "data-id": d.id, "data-state": d.state },
    el("td", { class: "mono" }, d.id),
    el("td", {}, el("a", { href: "#/jobs/" + d.job_id, class: "mono" }, d.job_id)),
    el("td", {}, d.event),
    el("td", {}, badge(d.state)),
    el("td", {}, String(d.attempts.length)),
    el("td", {}, lastAttempt(d)),
    el("td", {}, el("button", { type: "button", class: "small", onclick: () => onRedeliver(d) }, "Redeliver")),
  );
}

function chosenBy(c, plan) {
  if (!c) return el("span", { class: "muted" }, "not recorded (stored before the console kept it)");
  if (c.source === "rule") {
    return [el("span", {}, "scenario rule ", el("b", {}, "#" + c.rule_index), " of the runtime config "), el("details", { class: "inline" }, el("summary", {}, "rule"), json(c.rule))];
  }
  if (c.source === "defaults") {
    const failed = plan && plan.outcome === "failure" ? " — the draw failed it" : "";
    return el("span", {}, "no scenario: runtime defaults (failure_rate ", el("b", {}, String(c.failure_rate)), ")" + failed);
  }
  return [el("span", {}, "its own scenario, from ", el("code", {}, c.source), " "), el("details", { class: "inline" }, el("summary", {}, "scenario"), json(c.scenario))];
}

function attemptsTable(d) {
  if (!d.attempts.length) return el("p", { class: "muted" }, "No attempt yet.");
  const rows = d.attempts.map((a) => {
    const ok = a.status && a.status < 300;
    // "receiver answered 500" only repeats the status column.
    const error = a.error && a.error !== `receiver answered ${a.status}` ? a.error : "";
    return [
      el(
        "tr",
        { "data-attempt": a.n, class: ok ? "ok" : "bad" },
        el("td", {}, String(a.n)),
        el("td", {}, timeEl(a.at, true)),
        el("td", { class: "attempt-status" }, a.status == null ? "—" : String(a.status)),
        el("td", {}, a.latency_ms + " ms"),
        el("td", {}, error ? el("div", { class: "err" }, error) : "", a.response_excerpt ? el("code", { class: "excerpt", title: a.response_excerpt }, a.response_excerpt) : ""),
      ),
      el(
        "tr",
        { class: "attempt-headers", "data-headers-of": a.n },
        el(
          "td",
          { colspan: 5 },
          el(
            "details",
            {},
            el("summary", {}, `headers sent with attempt ${a.n} (${(a.headers || []).length})`),
            el("dl", { class: "headers" }, (a.headers || []).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
          ),
        ),
      ),
    ];
  });
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { class: "attempts" },
      el("thead", {}, el("tr", {}, ["#", "At", "Status", "Latency", "Error / response"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows),
    ),
  );
}

// One receiver audit's report (docs/receiver-audit.md): the summary, what
// failed, then a row per case with its verdict, the statuses the receiver
// answered and the reason.
function auditSection(a) {
  const done = a.state === "done";
  const s = a.summary;
  const failed = !done
    ? el("p", { class: "muted" }, "Running: the report fills in when every case was sent.")
    : a.failed.length
      ? el("p", { class: "err", "data-audit-failed": a.failed.join(" ") }, `${a.failed.length} failed: ${a.failed.join(", ")}`)
      : el("p", { class: "audit-ok", "data-audit-failed": "" }, "No case failed.");
  const rows = a.cases.map((c) =>
    el(
      "tr",
      { "data-case": c.name, class: "v-" + c.verdict },
      el("td", { class: "mono" }, c.name),
      el("td", {}, el("span", { class: "badge s-" + c.verdict }, c.verdict)),
      el("td", { class: "mono", title: c.expected }, c.observed.map((o) => (o.status == null ? "no answer" : String(o.status))).join(", ") || "—"),
      el("td", {}, c.reason),
    ),
  );
  return el(
    "section",
    { class: "audit", "data-audit": a.id, "aria-label": "Receiver audit " + a.id },
    el(
      "div",
      { class: "delivery-head" },
      el("span", { class: "mono" }, a.id),
      " ",
      badge(a.state),
      " ",
      timeEl(a.started_at, true),
      done ? el("span", { class: "muted" }, ` ${s.pass} pass, ${s.fail} fail, ${s.info} info`) : "",
    ),
    failed,
    rows.length
      ? el(
          "div",
          { class: "table-wrap" },
          el(
            "table",
            { class: "attempts audit-cases" },
            el("thead", {}, el("tr", {}, ["Case", "Verdict", "Answered", "Reason"].map((h) => el("th", {}, h)))),
            el("tbody", {}, rows),
          ),
        )
      : "",
  );
}

export function renderJobDetail(root, j, act) {
  const active = j.status === "pending" || j.status === "running";
  const dead = j.deliveries.filter((d) => d.state === "dead");
  const actions = el(
    "div",
    { class: "actions", role: "group", "aria-label": "Job actions" },
    active && el("button", { type: "button", "data-action": "advance", onclick: () => act.advance(j) }, "Advance"),
    active && el("button", { type: "button", "data-action": "complete", onclick: () => act.complete(j) }, "Complete"),
    active && el("button", { type: "button", "data-action": "fail", class: "danger", onclick: () => act.fail(j) }, "Fail…"),
    active && el("button", { type: "button", "data-action": "cancel", class: "danger", onclick: () => act.cancel(j) }, "Cancel"),
    dead.length > 0 && el("button", { type: "button", "data-action": "redeliver-dead", onclick: () => act.redeliverDead(j) }, `Redeliver ${dead.length} dead`),
    !active && !dead.length && el("span", { class: "muted" }, "Finished: no job action left."),
  );
  const summary = el(
    "dl",
    { class: "summary" },
    [
      ["Tenant", el("span", { class: "mono" }, j.tenant)],
      ["App", j.app],
      ["Caller's job id", (j.metadata && j.metadata.job_id) || "—"],
      ["Created", timeEl(j.created_at, true)],
      ["Started", timeEl(j.started_at, true) || "—"],
      ["Finished", timeEl(j.finished_at, true) || "—"],
      ["Webhook", j.webhook ? [badge(j.webhook.state), " ", el("span", { class: "mono small" }, j.webhook.url)] : "none"],
      ["Plan", j.plan ? [`${j.plan.outcome}${j.plan.hold ? ", held (advance by hand)" : ""}, ${j.plan.stage_ms} ms/stage, webhook ${j.plan.webhook_mode} `, el("details", { class: "inline" }, el("summary", {}, "JSON"), json(j.plan))] : "—"],
      ["Chosen by", chosenBy(j.chosen_by, j.plan)],
    ].map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))),
  );
  const timeline = el(
    "ol",
    { class: "timeline" },
    el("li", {}, el("b", {}, "created"), " ", timeEl(j.created_at, true)),
    j.timeline.map((t) =>
      el(
        "li",
        { class: "t-" + t.outcome },
        el("b", {}, t.stage),
        " ",
        timeEl(t.started_at, true),
        t.ended_at ? [" → ", timeEl(t.ended_at, true), ` (${duration(t.started_at, t.ended_at)})`] : " …",
        " ",
        el("span", { class: "muted" }, t.outcome),
        t.detail ? el("div", { class: "err" }, t.detail) : "",
      ),
    ),
    j.finished_at ? el("li", {}, el("b", {}, j.status), " ", timeEl(j.finished_at, true)) : "",
  );
  const outcome = j.error
    ? [el("h3", {}, "Error"), json(j.error)]
    : j.result
      ? [el("h3", {}, "Result"), el("details", {}, el("summary", {}, "result JSON"), json(j.result))]
      : [];
  const deliveries = j.deliveries.length
    ? j.deliveries.map((d) =>
        el(
          "section",
          { class: "delivery", "data-delivery": d.id, "aria-label": "Delivery " + d.id },
          el(
            "div",
            { class: "delivery-head" },
            el("span", { class: "mono" }, d.id),
            " ",
            el("span", {}, d.event),
            " ",
            badge(d.state),
            el("button", { type: "button", class: "small", "data-action": "redeliver", onclick: () => act.redeliver(d) }, "Redeliver"),
          ),
          el("div", { class: "mono small muted" }, d.url),
          attemptsTable(d),
        ),
      )
    : el("p", { class: "muted" }, j.webhook ? "No delivery yet (it is created when the job ends)." : "No webhook URL: nothing is sent.");
  const parts = [
    el(
      "div",
      { class: "detail-head" },
      el("h2", {}, el("span", { class: "mono" }, j.id)),
      el("span", { class: "status" }, badge(j.status)),
      j.stage ? el("span", { class: "muted" }, j.stage) : "",
      el("a", { href: "#/jobs", class: "close", "aria-label": "Close the job detail", title: "Close (Esc)" }, "×"),
    ),
    actions,
    summary,
    el("h3", {}, "Timeline"),
    timeline,
    outcome,
    el("h3", {}, "Deliveries"),
    deliveries,
    (j.audits || []).length ? [el("h3", {}, "Receiver audits"), j.audits.map(auditSection)] : "",
    el("h3", {}, "Metadata and input"),
    el("details", {}, el("summary", {}, "metadata"), json(j.metadata)),
    el("details", {}, el("summary", {}, "input"), json(j.input)),
    el("h3", {}, "Log"),
    el("pre", { class: "log" }, j.log.length ? j.log.join("\n") : "(no line yet)"),
  ];
  root.replaceChildren(...parts.flat(Infinity).filter((p) => p !== "" && p !== null && p !== undefined && p !== false));
}
