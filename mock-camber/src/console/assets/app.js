// The console: the admin token, hash routes (#/jobs, #/jobs/<id>,
// #/deliveries, #/config, filters in the query part), the live stream
// driving re-reads of what is on screen, and the actions.

import { call, session, token, query, liveStream, whenUnauthorized } from "./api.js";
import { el, renderOverview, jobRow, deliveryRow, renderJobDetail } from "./views.js";
import { loadConfig, configLoaded } from "./config.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;

const st = {
  view: "jobs",
  jobId: null,
  jobFilter: {},
  deliveryFilter: {},
  // Cursor of the page shown ("" = newest) and of the next one.
  jobsCursor: "",
  jobsNext: null,
  jobsPages: [],
  deliveriesCursor: "",
  deliveriesNext: null,
  deliveriesPages: [],
  version: null,
  stopStream: null,
  tenants: [],
};

// ------------------------------------------------------------ messages

function flash(msg, kind) {
  const f = $("flash");
  f.textContent = msg;
  f.className = "flash " + (kind || "error");
  f.hidden = !msg;
}

async function act(what, f) {
  try {
    const out = await f();
    flash("");
    return out;
  } catch (e) {
    flash(`${what}: ${e.message}`);
    return null;
  } finally {
    refreshSoon();
  }
}

// ------------------------------------------------------------ token

function askToken(message) {
  const d = $("token-dialog");
  $("token-error").textContent = message || "";
  if (!d.open) d.showModal();
  d.querySelector("input").focus();
}

$("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = ev.target.elements.token;
  token.set(input.value.trim());
  const s = await session().catch((e) => ({ error: e }));
  if (s.error) {
    $("token-error").textContent = "The daemon cannot be reached: " + s.error.message;
    return;
  }
  if (!s.authorized) {
    token.clear();
    $("token-error").textContent = "Wrong admin token: the daemon refused it. Check --admin-token / MOCK_CAMBER_ADMIN_TOKEN.";
    input.select();
    return;
  }
  input.value = "";
  $("token-dialog").close();
  start();
});
$("token-dialog").addEventListener("cancel", (ev) => ev.preventDefault());

$("forget-token").addEventListener("click", () => {
  token.clear();
  stopLive();
  askToken("Token forgotten for this tab.");
});

whenUnauthorized(() => {
  token.clear();
  stopLive();
  askToken("The daemon refused the token (it may have restarted with another one).");
});

// ------------------------------------------------------------ routing

function parseHash() {
  const h = location.hash.replace(/^#\/?/, "");
  const [path, qs] = h.split("?");
  const parts = path.split("/").filter(Boolean);
  const params = Object.fromEntries(new URLSearchParams(qs || ""));
  return { parts, params };
}

function route() {
  const { parts, params } = parseHash();
  const view = ["jobs", "deliveries", "config"].includes(parts[0]) ? parts[0] : "jobs";
  const jobId = view === "jobs" && parts[1] ? decodeURIComponent(parts[1]) : null;
  const changedView = view !== st.view;
  st.view = view;
  if (view === "jobs" && !jobId && Object.keys(params).length) {
    st.jobFilter = pick(params, ["status", "tenant", "app", "q"]);
    resetPages("jobs");
  }
  if (view === "deliveries" && Object.keys(params).length) {
    st.deliveryFilter = pick(params, ["state", "event", "job_id"]);
    resetPages("deliveries");
  }
  const openedJob = jobId !== st.jobId;
  st.jobId = jobId;
  for (const v of ["jobs", "deliveries", "config"]) $("view-" + v).hidden = v !== view;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (a.dataset.nav === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  $("main").classList.toggle("with-detail", !!jobId);
  $("detail").hidden = !jobId;
  fillFilters();
  if (view === "config" && (changedView || !configLoaded())) loadConfig();
  refresh();
  if (openedJob && jobId) $("detail").replaceChildren(el("p", { class: "muted" }, "Loading " + jobId + "…"));
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k]) out[k] = obj[k];
  return out;
}

function resetPages(which) {
  st[which + "Cursor"] = "";
  st[which + "Pages"] = [];
}

function fillFilters() {
  const jf = $("job-filters").elements;
  for (const k of ["status", "app", "q"]) jf[k].value = st.jobFilter[k] || "";
  fillTenants();
  const df = $("delivery-filters").elements;
  for (const k of ["state", "event", "job_id"]) df[k].value = st.deliveryFilter[k] || "";
}

function fillTenants() {
  const sel = $("job-filters").elements.tenant;
  const want = st.jobFilter.tenant || "";
  const opts = [el("option", { value: "" }, "any")];
  const known = st.tenants.map((t) => t.tenant);
  if (want && !known.includes(want)) known.push(want);
  for (const t of known) {
    const n = (st.tenants.find((x) => x.tenant === t) || {}).jobs;
    opts.push(el("option", { value: t }, n === undefined ? t : `${t} (${n})`));
  }
  sel.replaceChildren(...opts);
  sel.value = want;
}

function formFilter(form, keys) {
  const out = {};
  for (const k of keys) {
    const v = form.elements[k].value.trim();
    if (v) out[k] = v;
  }
  return out;
}

$("job-filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  st.jobFilter = formFilter(ev.target, ["status", "tenant", "app", "q"]);
  resetPages("jobs");
  location.hash = "#/jobs" + query(st.jobFilter);
});
$("job-filters").addEventListener("change", (ev) => {
  if (ev.target.tagName === "SELECT") ev.target.form.requestSubmit();
});
$("job-filters").addEventListener("reset", () => {
  st.jobFilter = {};
  resetPages("jobs");
  setTimeout(() => (location.hash = "#/jobs"));
});
$("delivery-filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  st.deliveryFilter = formFilter(ev.target, ["state", "event", "job_id"]);
  resetPages("deliveries");
  location.hash = "#/deliveries" + query(st.deliveryFilter);
});
$("delivery-filters").addEventListener("change", (ev) => {
  if (ev.target.tagName === "SELECT") ev.target.form.requestSubmit();
});
$("delivery-filters").addEventListener("reset", () => {
  st.deliveryFilter = {};
  resetPages("deliveries");
  setTimeout(() => (location.hash = "#/deliveries"));
});

for (const which of ["jobs", "deliveries"]) {
  $(which + "-pager").addEventListener("click", (ev) => {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.page === "first") resetPages(which);
    if (b.dataset.page === "next" && st[which + "Next"]) {
      st[which + "Pages"].push(st[which + "Cursor"]);
      st[which + "Cursor"] = st[which + "Next"];
    }
    refresh();
  });
}

// ------------------------------------------------------------ loading

let loading = false;
let again = false;

// Re-reads what is on screen: the list page shown and the open job. Runs
// one at a time; a call while one runs makes it run once more after.
async function refresh() {
  if (!st.started) return;
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  try {
    do {
      again = false;
      await Promise.all([
        st.view === "jobs" ? loadJobs() : null,
        st.view === "deliveries" ? loadDeliveries() : null,
        st.jobId ? loadJob(st.jobId) : null,
      ]);
    } while (again);
  } finally {
    loading = false;
  }
}

let soon = null;
function refreshSoon() {
  if (soon) return;
  soon = Promise.resolve().then(() => {
    soon = null;
    refresh();
  });
}

function pagerLabel(which, n) {
  const page = st[which + "Pages"].length + 1;
  const p = $(which + "-pager");
  p.querySelector('[data-page="next"]').disabled = !st[which + "Next"];
  p.querySelector('[data-page="first"]').disabled = page === 1;
  p.querySelector("[data-page-label]").textContent = `page ${page} · ${n} shown, newest first`;
}

// Keeps keyboard focus on the same row when rows are redrawn.
// Rows that changed (or arrived) since the last read of the same page and
// filter are highlighted for a moment.
function redraw(tbody, rows, key) {
  const focused = document.activeElement;
  const row = focused && tbody.contains(focused) ? focused.closest("tr") : null;
  const id = row && row.dataset.id;
  const same = tbody.dataset.key === key;
  const prev = new Map([...tbody.rows].map((r) => [r.dataset.id, r.dataset.status || r.dataset.state]));
  tbody.replaceChildren(...rows);
  tbody.dataset.key = key;
  for (const r of tbody.rows) {
    const was = prev.get(r.dataset.id);
    const now = r.dataset.status || r.dataset.state;
    if (same && r.dataset.id && was !== now) r.classList.add("changed");
  }
  if (id) {
    const again = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"] a, tr[data-id="${CSS.escape(id)}"] button`);
    if (again) again.focus();
  }
}

async function loadJobs() {
  try {
    const q = query({ ...st.jobFilter, limit: PAGE, cursor: st.jobsCursor });
    const r = await call("GET", "/_mock/jobs" + q);
    st.jobsNext = r.next;
    const rows = r.jobs.map((j) => jobRow(j, j.id === st.jobId));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No job matches.")));
    redraw($("jobs"), rows, q);
    pagerLabel("jobs", r.jobs.length);
  } catch (e) {
    flash("Jobs: " + e.message);
  }
}

async function loadDeliveries() {
  try {
    const q = query({ ...st.deliveryFilter, limit: PAGE, cursor: st.deliveriesCursor });
    const r = await call("GET", "/_mock/deliveries" + q);
    st.deliveriesNext = r.next;
    const rows = r.deliveries.map((d) => deliveryRow(d, redeliver));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No delivery matches.")));
    redraw($("deliveries"), rows, q);
    pagerLabel("deliveries", r.deliveries.length);
  } catch (e) {
    flash("Deliveries: " + e.message);
  }
}

async function loadJob(id) {
  try {
    const j = await call("GET", "/_mock/jobs/" + encodeURIComponent(id));
    if (st.jobId !== id) return;
    const d = $("detail");
    const open = [...d.querySelectorAll("details")].map((x) => x.open);
    const focusAction = document.activeElement && d.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    renderJobDetail(d, j, jobActions);
    // Keep what the reader opened, and the focus on the same action.
    d.querySelectorAll("details").forEach((x, i) => (x.open = !!open[i]));
    const f = focusAction && d.querySelector(`[data-action="${focusAction}"]`);
    if (f) f.focus();
  } catch (e) {
    if (st.jobId !== id) return;
    $("detail").replaceChildren(el("p", { class: "err" }, e.status === 404 ? `No job ${id} (it may have been reset or swept).` : e.message));
  }
}

// ------------------------------------------------------------ actions

function confirmDialog(text, okLabel) {
  const d = $("confirm-dialog");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  d.returnValue = "";
  d.showModal();
  return new Promise((res) => d.addEventListener("close", () => res(d.returnValue === "ok"), { once: true }));
}

function redeliver(d) {
  return act("Redeliver", () => call("POST", `/_mock/deliveries/${encodeURIComponent(d.id)}/redeliver`));
}

const jobActions = {
  advance: (j) => act("Advance", () => call("POST", `/_mock/jobs/${j.id}/advance`)),
  complete: (j) => act("Complete", () => call("POST", `/_mock/jobs/${j.id}/complete`)),
  cancel: async (j) => {
    if (await confirmDialog(`Cancel job ${j.id}? Its webhook will say CANCELLED.`, "Cancel job")) {
      await act("Cancel", () => call("POST", `/_mock/jobs/${j.id}/cancel`));
    }
  },
  fail: (j) => {
    const d = $("fail-dialog");
    const f = $("fail-form");
    f.reset();
    f.elements.stage.placeholder = j.stage || "current stage";
    d.returnValue = "";
    d.showModal();
    d.addEventListener(
      "close",
      () => {
        if (d.returnValue !== "ok") return;
        const body = formFilter(f, ["code", "stage", "reason"]);
        act("Fail", () => call("POST", `/_mock/jobs/${j.id}/fail`, body));
      },
      { once: true },
    );
  },
  redeliver,
  redeliverDead: (j) => act("Redeliver dead", () => call("POST", `/_mock/jobs/${j.id}/redeliver`)),
};

$("reset").addEventListener("click", async () => {
  if (await confirmDialog("Forget every job, delivery and journal entry? The config stays.", "Reset")) {
    await act("Reset", () => call("POST", "/_mock/reset"));
    flash("Store reset.", "ok");
  }
});

// ------------------------------------------------------------ live

function stopLive() {
  if (st.stopStream) st.stopStream();
  st.stopStream = null;
  st.started = false;
}

function onStats(s) {
  renderOverview($("overview"), s);
  const tenants = JSON.stringify(s.tenants);
  if (tenants !== JSON.stringify(st.tenants)) {
    st.tenants = s.tenants;
    fillTenants();
  }
  if (s.version !== st.version) {
    st.version = s.version;
    refresh();
  }
}

function onLiveState(state) {
  const l = $("live");
  l.textContent = { live: "● live", reconnecting: "reconnecting…", stopped: "stopped" }[state] || state;
  l.dataset.state = state;
}

function start() {
  st.started = true;
  $("forget-token").hidden = !token.get();
  st.stopStream = liveStream(onStats, onLiveState);
  route();
}

// ------------------------------------------------------------ keys

document.addEventListener("keydown", (ev) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(ev.target.tagName);
  if (ev.key === "/" && !typing && !document.querySelector("dialog[open]")) {
    ev.preventDefault();
    location.hash.startsWith("#/deliveries") ? $("delivery-filters").elements.job_id.focus() : $("job-filters").elements.q.focus();
  } else if (ev.key === "Escape" && st.jobId && !document.querySelector("dialog[open]")) {
    location.hash = "#/jobs" + query(st.jobFilter);
  }
});

window.addEventListener("hashchange", route);

// ------------------------------------------------------------ start

(async () => {
  try {
    const s = await session();
    if (s.authorized) start();
    else askToken(s.token_sent ? "The token kept for this tab was refused." : "");
  } catch (e) {
    flash("The daemon cannot be reached: " + e.message);
  }
})();
