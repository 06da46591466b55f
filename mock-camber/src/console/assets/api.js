// The console's link to the daemon: the admin token (kept for this tab in
// sessionStorage, never in the URL), JSON calls, and the live event stream
// (Server-Sent Events read through fetch, so the token goes in a header).

const TOKEN_KEY = "mockCamberAdminToken";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = token.get();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}

// Called when the daemon refuses the token mid-session.
let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!r.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(r.status, err.code || "HTTP_" + r.status, err.message || r.statusText);
    if (r.status === 401) onUnauthorized(e);
    throw e;
  }
  return data;
}

// Whether the daemon wants a token and takes the one we hold (never 401s).
export function session() {
  return call("GET", "/_mock/session");
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// Reads /_mock/events until stopped; calls onStats(stats) for each event
// and onState("live" | "reconnecting" | "stopped"). Reconnects after a drop.
export function liveStream(onStats, onState) {
  let stopped = false;
  let ctrl = null;
  async function once() {
    ctrl = new AbortController();
    const r = await fetch("/_mock/events", { headers: headers(), signal: ctrl.signal });
    if (r.status === 401) {
      onUnauthorized(new ApiError(401, "UNAUTHENTICATED", "wrong admin token"));
      stopped = true;
      return;
    }
    if (!r.ok || !r.body) throw new Error("event stream answered " + r.status);
    onState("live");
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        let data = "";
        for (const line of chunk.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (event === "stats" && data) onStats(JSON.parse(data));
      }
    }
  }
  (async () => {
    let failures = 0;
    while (!stopped) {
      try {
        await once();
        failures = 0;
      } catch {
        failures += 1;
      }
      if (stopped) break;
      onState("reconnecting");
      // Back off while the daemon is away: 0.5 s, 1 s, 2 s … 10 s.
      await new Promise((res) => setTimeout(res, Math.min(10000, 250 * 2 ** Math.min(failures, 6))));
    }
    onState("stopped");
  })();
  return () => {
    stopped = true;
    if (ctrl) ctrl.abort();
  };
}
