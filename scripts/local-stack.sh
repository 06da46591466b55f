#!/usr/bin/env bash
# Local stack: builds both services (release), starts mock-camber and api on
# loopback with a matching API key and webhook secret, waits until both are
# ready, runs one demo job end to end and prints every step, then keeps both
# running until Ctrl-C and stops them cleanly (SIGTERM: in-flight requests
# finish, pending webhooks stay in the database).
#
#   scripts/local-stack.sh              # build, start, demo, run until Ctrl-C
#   scripts/local-stack.sh --no-demo    # build, start, run until Ctrl-C
#
# Environment:
#   MOCK_CAMBER_PORT (9000), API_PORT (8000)   ports to bind on 127.0.0.1
#   LOCAL_STACK_DATA (./data/local-stack)      databases, artifacts, logs
#   CAMBER_API_KEY, WEBHOOK_SECRET             shared by both services
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DEMO=1
EXIT_AFTER_DEMO=0
for arg in "$@"; do
  case $arg in
    --no-demo) DEMO=0 ;;
    --exit-after-demo) EXIT_AFTER_DEMO=1 ;; # for scripted checks: stop after the demo
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

MOCK_PORT=${MOCK_CAMBER_PORT:-9000}
API_PORT=${API_PORT:-8000}
DATA=${LOCAL_STACK_DATA:-$ROOT/data/local-stack}
KEY=${CAMBER_API_KEY:-local-dev-key}
SECRET=${WEBHOOK_SECRET:-local-dev-webhook-secret}
MOCK=http://127.0.0.1:$MOCK_PORT
API=http://127.0.0.1:$API_PORT

say() { printf '%s\n' "$*"; }
if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD="" PLAIN=""; fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }
json() { # json <python expression over `d`> ; reads JSON on stdin
  python3 -c "import json,sys; d=json.load(sys.stdin); v=$1; print(v if isinstance(v,str) else json.dumps(v))"
}

show_deliveries() { # $1 = GET /_mock/deliveries answer
  python3 - "$1" <<'PY'
import json, sys
for x in json.loads(sys.argv[1])["deliveries"]:
    print(f'{x["event"]} {x["id"]} -> {x["url"]}: {x["state"]}')
    for a in x["attempts"]:
        line = f'  attempt {a["n"]} at {a["at"]}: HTTP {a.get("status")} in {a.get("latency_ms")} ms'
        if a.get("error"):
            line += f' - {a["error"]}'
        if a.get("response_excerpt"):
            line += f' - response: {a["response_excerpt"][:120]}'
        print(line)
PY
}
show_events() { # $1 = GET /jobs/{id} answer of the api
  python3 - "$1" <<'PY'
import json, sys
for e in json.loads(sys.argv[1])["events"]:
    print(f'{e["at"]}  {e["from"] or "-"} -> {e["to"]}  ({e["source"]})')
PY
}
show_artifacts() { # $1 = GET /jobs/{id} answer of the api
  python3 - "$1" <<'PY'
import json, sys
for a in json.loads(sys.argv[1])["artifacts"]:
    print(f'{a["name"]:<14} {a["size"]:>6} bytes  {a["url"]}')
PY
}

for t in cargo curl python3; do
  command -v "$t" >/dev/null || die "$t is required"
done

# --- ports: refuse early and clearly rather than fail half-started -----------
port_owner() {
  if command -v ss >/dev/null; then
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n1
  fi
}
check_port() { # $1 port, $2 service, $3 env var that moves it
  if ! python3 - "$1" <<'PY'; then
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
    local owner
    owner=$(port_owner "$1")
    die "port $1 (for $2) is already in use${owner:+ by $owner}.
       Stop whatever is listening there, or pick another port, e.g.:
         $3=$(( $1 + 100 )) $0"
  fi
}
check_port "$MOCK_PORT" mock-camber MOCK_CAMBER_PORT
check_port "$API_PORT" api API_PORT
[[ $MOCK_PORT != "$API_PORT" ]] || die "MOCK_CAMBER_PORT and API_PORT are both $API_PORT"

# --- build -----------------------------------------------------------------
step "Building release binaries (cargo build --release -p mock-camber -p api)"
cargo build --release -p mock-camber -p api
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
mkdir -p "$DATA"

# --- start -----------------------------------------------------------------
MOCK_PID=""
API_PID=""
stop_all() {
  local pid name
  for pid in $API_PID $MOCK_PID; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  for pid in $API_PID $MOCK_PID; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      name=$([[ $pid == "$MOCK_PID" ]] && echo mock-camber || echo api)
      say "    $name (pid $pid) did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  API_PID=""
  MOCK_PID=""
}
on_exit() {
  local rc=$?
  set +e # a service's own exit status must not replace the script's
  trap - EXIT INT TERM
  if [[ -n "$MOCK_PID$API_PID" ]]; then
    step "Stopping (SIGTERM)"
    stop_all
    info "stopped; data kept in $DATA"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() { # $1 name, $2 base url, $3 pid, $4 log
  local deadline=$((SECONDS + 20))
  until curl -fsS -o /dev/null "$2/readyz" 2>/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then
      say "    $1 exited during start-up; last lines of $4:"
      tail -n 20 "$4" | sed 's/^/      /'
      die "$1 did not start"
    fi
    (( SECONDS < deadline )) || die "$1 is not ready after 20 s (see $4)"
    sleep 0.1
  done
}

step "Starting mock-camber on $MOCK"
# Secrets go through the environment, not argv, so `ps` does not show them.
# `setsid`: the services get their own session, so Ctrl-C reaches only this
# script, which then stops them in order with SIGTERM (stop_all).
CAMBER_API_KEYS=$KEY WEBHOOK_SECRET=$SECRET \
  setsid "$BIN/mock-camber" --host 127.0.0.1 --port "$MOCK_PORT" --db "$DATA/mock-camber.db" \
  >"$DATA/mock-camber.log" 2>&1 &
MOCK_PID=$!
wait_ready mock-camber "$MOCK" "$MOCK_PID" "$DATA/mock-camber.log"
info "ready (pid $MOCK_PID) — $(grep -m1 -o 'listening on [^ ]*' "$DATA/mock-camber.log" || echo "listening on $MOCK")"

step "Starting api on $API (Camber endpoint $MOCK)"
CAMBER_API_KEY=$KEY WEBHOOK_SECRET=$SECRET \
  setsid "$BIN/api" --host 127.0.0.1 --port "$API_PORT" --camber-endpoint "$MOCK" \
  --public-url "$API" --db "$DATA/api.db" --artifact-dir "$DATA/artifacts" \
  >"$DATA/api.log" 2>&1 &
API_PID=$!
wait_ready api "$API" "$API_PID" "$DATA/api.log"
info "ready (pid $API_PID) — $(grep -m1 -o 'listening on [^ ]*' "$DATA/api.log" || echo "listening on $API")"
info "shared API key: $KEY   webhook secret: $SECRET"

# --- demo ------------------------------------------------------------------
demo() {
  local name=local-stack-demo.pdf
  local sample=$DATA/$name
  printf '%%PDF-1.4\n%% mock-camber local-stack demo\n%%%%EOF\n' >"$sample"
  local size
  size=$(wc -c <"$sample" | tr -d ' ')

  # Slow this one job down (300 ms per stage) with a one-shot scenario rule, so
  # its stages can be watched; every other job keeps the default speed.
  local rules
  rules=$(curl -fsS "$MOCK/_mock/config" | python3 -c '
import json, sys
cfg = json.load(sys.stdin)
rules = [r for r in cfg.get("rules", []) if r.get("match") != {"/input/filename": sys.argv[1]}]
rules.insert(0, {"match": {"/input/filename": sys.argv[1]}, "scenario": {"stage_ms": 300}, "times": 1})
print(json.dumps({"rules": rules}))' "$name")
  curl -fsS -X PUT "$MOCK/_mock/config" -H 'Content-Type: application/json' -d "$rules" >/dev/null \
    || die "could not set the demo's scenario rule on $MOCK/_mock/config"

  step "1. Submitted: POST $API/jobs"
  local body created job_id upload_url
  body=$(printf '{"portal_schema_name":"invoice","filename":"%s","mime_type":"application/pdf","file_size_bytes":%s}' "$name" "$size")
  info "$body"
  created=$(curl -fsS -X POST "$API/jobs" -H 'Content-Type: application/json' -d "$body") \
    || die "POST /jobs failed"
  job_id=$(json 'd["job_id"]' <<<"$created")
  upload_url=$(json 'd["upload_url"]' <<<"$created")
  info "job_id     $job_id"
  info "status     $(json 'd["status"]' <<<"$created")"
  info "upload_url $upload_url"

  step "2. Uploading the file to the signed upload_url (PUT)"
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$sample" \
    -H 'Content-Type: application/pdf' "$upload_url")
  info "PUT → $code ($size bytes stored as input)"

  step "3. Running on mock-camber"
  # The api submits in the background: wait until it has a Camber id, then
  # let the mock answer when the job has ended (a long-poll wait, no
  # polling), and show every stage from the mock's own job log.
  local deadline=$((SECONDS + 30)) job camber_id="" cj
  while :; do
    job=$(curl -fsS "$API/jobs/$job_id")
    camber_id=$(json 'd.get("camber_job_id") or ""' <<<"$job")
    [[ -n $camber_id ]] && break
    (( SECONDS < deadline )) || die "the api did not submit the demo job within 30 s: $job"
    sleep 0.05
  done
  info "submitted to Camber as $camber_id; waiting for it to end (GET /jobs/$camber_id?wait_for=terminal&wait_ms=30000)"
  cj=$(curl -sS -H "Authorization: Bearer $KEY" "$MOCK/jobs/$camber_id?wait_for=terminal&wait_ms=30000")
  curl -fsS -H "Authorization: Bearer $KEY" "$MOCK/jobs/$camber_id/logs" | sed 's/^/    /'
  info "$camber_id: $(json 'd.get("job", d)["status"]' <<<"$cj")"

  step "4. Webhook delivered (GET $MOCK/_mock/deliveries?job_id=$camber_id&state=delivered&wait_ms=15000)"
  local deliveries state
  deliveries=$(curl -sS "$MOCK/_mock/deliveries?job_id=$camber_id&state=delivered&wait_ms=15000")
  state=$(json '(d["deliveries"] or [{}])[0].get("state", "none")' <<<"$deliveries")
  if [[ $state != delivered ]]; then
    deliveries=$(curl -fsS "$MOCK/_mock/deliveries?job_id=$camber_id")
    state=$(json '(d["deliveries"] or [{}])[0].get("state", "none")' <<<"$deliveries")
  fi
  show_deliveries "$deliveries" | sed 's/^/    /'
  [[ $state == delivered ]] || die "the webhook was not delivered (state: $state)"
  info "api accepted it: its X-Webhook-Secret (hex HMAC-SHA256 of the raw body with the shared secret) verified"

  # Show that the api really checks the signature: a forged webhook is refused,
  # and the same body signed with the shared secret is accepted (as a duplicate,
  # since the job is already finished).
  local forged signed_sig
  forged=$(printf '{"camber_job_id":"%s","job_id":"%s","status":"success","timestamp":"2026-01-01T00:00:00.000000","result":{"status":"SUCCESS","job_id":"%s","result":{}}}' "$camber_id" "$job_id" "$job_id")
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$API/internal/webhooks/camber" \
    -H 'Content-Type: application/json' -H 'X-Webhook-Secret: 0000' -d "$forged")
  info "same webhook with a wrong X-Webhook-Secret → HTTP $code (refused)"
  signed_sig=$(SECRET=$SECRET python3 -c 'import hmac,hashlib,os,sys; print(hmac.new(os.environ["SECRET"].encode(), sys.argv[1].encode(), hashlib.sha256).hexdigest())' "$forged")
  info "correctly signed by this script (python hmac) → $(curl -sS -X POST "$API/internal/webhooks/camber" \
    -H 'Content-Type: application/json' -H "X-Webhook-Secret: $signed_sig" -d "$forged") (duplicate: nothing changes)"

  step "5. Completed on the api (GET $API/jobs/$job_id)"
  job=$(curl -fsS "$API/jobs/$job_id")
  info "status: $(json 'd["status"]' <<<"$job")"
  show_events "$job" | sed 's/^/    /'
  info "result.quality_score: $(json '(d.get("result") or {}).get("quality_score", (d.get("result") or {}).get("result", {}).get("quality_score", "?"))' <<<"$job")"

  step "6. Artifacts"
  show_artifacts "$job" | sed 's/^/    /'
  local dir=$DATA/artifacts/$job_id
  info "on disk: $dir/"
  if [[ -d $dir ]]; then
    ls -l "$dir" | tail -n +2 | sed 's/^/      /'
  fi
  if [[ -f $dir/result.json ]]; then
    info "result.json:"
    python3 -m json.tool "$dir/result.json" | head -n 25 | sed 's/^/      /'
  fi
  [[ $(json 'd["status"]' <<<"$job") == completed ]] || die "the demo job did not complete"
}

if [[ $DEMO == 1 ]]; then
  demo
  say
  say "Demo job done."
fi

if [[ $EXIT_AFTER_DEMO == 1 ]]; then
  exit 0
fi

step "Stack running — Ctrl-C to stop"
info "mock-camber  $MOCK        (dashboard: $MOCK/_mock/  — API key: $KEY)"
info "api          $API"
info "logs         tail -f $DATA/mock-camber.log $DATA/api.log"
info "try          curl -s -X POST $API/jobs -H 'Content-Type: application/json' \\"
info "               -d '{\"portal_schema_name\":\"invoice\",\"filename\":\"a.pdf\",\"mime_type\":\"application/pdf\",\"file_size_bytes\":1000}'"

# Returns when either service exits on its own, or at once on Ctrl-C (trap).
set +e
wait -n "$MOCK_PID" "$API_PID"
rc=$?
set -e
for pair in "mock-camber:$MOCK_PID:$DATA/mock-camber.log" "api:$API_PID:$DATA/api.log"; do
  IFS=: read -r name pid log <<<"$pair"
  if ! kill -0 "$pid" 2>/dev/null; then
    say
    say "$name exited unexpectedly (status $rc); last lines of $log:"
    tail -n 20 "$log" | sed 's/^/    /'
  fi
done
exit 1
