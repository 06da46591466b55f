// The runtime config form: the numbers and the scenario rules, checked
// locally and by the daemon's own validation (a dry run) as the user types,
// errors shown next to the field; only changed fields are saved.

import { call } from "./api.js";

const $ = (id) => document.getElementById(id);

const NUMBERS = ["stage_ms", "failure_rate", "submit_error_rate", "latency_ms"];
let configShown = null;

export const configLoaded = () => configShown !== null;

export async function loadConfig() {
  try {
    const c = await call("GET", "/_mock/config");
    configShown = c;
    const f = $("config-form").elements;
    for (const k of NUMBERS) f[k].value = String(c[k]);
    f.rules.value = JSON.stringify(c.rules, null, 2);
    showConfigErrors({});
  } catch (e) {
    $("config-status").textContent = e.message;
  }
}

function showConfigErrors(errors) {
  document.querySelectorAll("#config-form [data-error-for]").forEach((s) => {
    const msg = errors[s.dataset.errorFor] || "";
    s.textContent = msg;
    const input = $("config-form").elements[s.dataset.errorFor];
    if (msg) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  });
}

// The changed fields of the form, or the errors found locally.
function configPatch() {
  const f = $("config-form").elements;
  const body = {};
  const errors = {};
  for (const k of NUMBERS) {
    const raw = f[k].value.trim();
    const n = Number(raw);
    if (raw === "" || Number.isNaN(n)) errors[k] = "a number is needed";
    else if (!configShown || n !== configShown[k]) body[k] = n;
  }
  try {
    const rules = JSON.parse(f.rules.value || "[]");
    if (!configShown || JSON.stringify(rules) !== JSON.stringify(configShown.rules)) body.rules = rules;
  } catch (e) {
    errors.rules = "not valid JSON: " + e.message;
  }
  return { body, errors };
}

// The daemon names the field in backticks, or the rule by its index.
function fieldOf(message) {
  return NUMBERS.find((k) => message.includes("`" + k + "`")) || "rules";
}

// Checks the form locally, then with the daemon's own validation (a dry
// run that answers 200 either way); shows what is wrong next to the field.
async function checkConfig() {
  const { body, errors } = configPatch();
  if (!Object.keys(errors).length && Object.keys(body).length) {
    const v = await call("POST", "/_mock/config/validate", body);
    if (!v.valid) errors[fieldOf(v.error.message)] = v.error.message;
  }
  showConfigErrors(errors);
  return Object.keys(errors).length ? null : body;
}

let checkTimer = null;
$("config-form").addEventListener("input", () => {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(() => checkConfig().catch((e) => ($("config-status").textContent = e.message)), 400);
});

$("config-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearTimeout(checkTimer);
  $("config-status").textContent = "checking…";
  try {
    const body = await checkConfig();
    if (!body) {
      $("config-status").textContent = "Not saved: fix the fields marked.";
      return;
    }
    if (!Object.keys(body).length) {
      $("config-status").textContent = "Nothing changed.";
      return;
    }
    configShown = await call("PUT", "/_mock/config", body);
    $("config-status").textContent = "Saved: " + Object.keys(body).join(", ");
  } catch (e) {
    showConfigErrors({ [fieldOf(e.message)]: e.message });
    $("config-status").textContent = "Not saved: " + e.message;
  }
});
$("config-reload").addEventListener("click", () => {
  loadConfig();
  $("config-status").textContent = "";
});
