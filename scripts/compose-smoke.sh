#!/usr/bin/env bash
# Compose smoke test: the docker-compose.yml stack, run for real with podman.
#
# 1. builds static release binaries on the host (no Rust image is pulled),
# 2. packages them with Dockerfile.prebuilt under the image names
#    docker-compose.yml uses,
# 3. brings the stack up with podman-compose, waits until both containers'
#    own healthchecks pass, and checks each container reaches the other by
#    service name (podman's DNS; checked for before anything is built),
# 4. submits a job to the api from the host and polls it until `completed` —
#    which requires the mock to reach the api as http://api:8000 over the
#    compose network,
# 5. always tears the stack down (volumes included); on failure prints the
#    containers' logs and exits non-zero.
#
# Environment:
#   SMOKE_BUILD_TIMEOUT  seconds allowed for the cargo build (default 1200)
#   CARGO_TARGET_DIR     honoured (the binaries are read from there)
#   SMOKE_TIMEOUT        seconds allowed from `up` to a completed job (default 180)
#   SMOKE_USE_EXISTING_IMAGES=1  skip steps 1-2 and test the images already
#                        tagged mock-camber:local and mock-camber-api:local
#                        (e.g. built from the multi-stage Dockerfile)
#   PODMAN_COMPOSE       podman-compose to use (default: /opt/podman-compose
#                        venv if present, else the one on PATH)
#   PODMAN_RUNTIME       OCI runtime passed to podman run (default: runc if
#                        installed; empty = podman's default)
#   MOCK_CAMBER_HOST_PORT / API_HOST_PORT  host ports (default 9000/8000, or a
#                        free port when those are taken)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The host's own triple (x86_64-unknown-linux-gnu here), so the binaries run in images for this host.
TARGET=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
TARGET=${TARGET:-x86_64-unknown-linux-gnu}
PROJECT=mock-camber-smoke
BUILD_TIMEOUT=${SMOKE_BUILD_TIMEOUT:-1200}
STACK_TIMEOUT=${SMOKE_TIMEOUT:-180}

step() { printf '\n== [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
info() { printf '   %s\n' "$*"; }
die() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------
command -v podman >/dev/null || die "podman is not installed (CI installs it in .ci/run)"
if [[ -z "${PODMAN_COMPOSE:-}" ]]; then
  if [[ -x /opt/podman-compose/bin/podman-compose ]]; then
    PODMAN_COMPOSE=/opt/podman-compose/bin/podman-compose
  else
    PODMAN_COMPOSE=$(command -v podman-compose || true)
  fi
fi
[[ -n "$PODMAN_COMPOSE" ]] || die "podman-compose is not installed (CI installs it in .ci/run)"
if [[ -z "${PODMAN_RUNTIME+x}" ]]; then
  PODMAN_RUNTIME=$(command -v runc >/dev/null && echo runc || true)
fi
RUN_ARGS=()
[[ -n "$PODMAN_RUNTIME" ]] && RUN_ARGS=(--podman-run-args="--runtime $PODMAN_RUNTIME")
for t in curl python3 timeout; do command -v "$t" >/dev/null || die "$t is required"; done

# Containers must resolve each other's service names (api -> mock-camber:9000,
# mock webhooks -> api:8000). Check podman's network backend has its DNS
# component before anything is built, rather than time out on a pending job.
check_name_lookup() {
  local backend dirs d
  backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null) || die "podman info failed"
  case $backend in
    cni)
      dirs=(/usr/lib/cni /usr/libexec/cni /opt/cni/bin)
      for d in "${dirs[@]}"; do [[ -x $d/dnsname ]] && { info "network backend cni, service names by $d/dnsname"; return; }; done
      die "podman uses the CNI network backend without the dnsname plugin: containers cannot resolve service names (apt-get install golang-github-containernetworking-plugin-dnsname; .ci/run does this)" ;;
    netavark)
      dirs=(/usr/libexec/podman /usr/lib/podman /usr/local/libexec/podman)
      for d in "${dirs[@]}"; do [[ -x $d/aardvark-dns ]] && { info "network backend netavark, service names by $d/aardvark-dns"; return; }; done
      die "podman uses the netavark network backend without aardvark-dns: containers cannot resolve service names (apt-get install aardvark-dns)" ;;
    *)
      info "network backend '$backend': name lookup not checked in advance" ;;
  esac
}
step "podman name lookup between containers"
check_name_lookup

port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pick_port() { # $1 = wanted port
  if port_free "$1"; then echo "$1"; else free_port; fi
}
json() { # json <expr over `d`> ; reads JSON on stdin
  python3 -c "import json,sys; d=json.load(sys.stdin); v=$1; print(v if isinstance(v,str) else json.dumps(v))"
}

MOCK_PORT=${MOCK_CAMBER_HOST_PORT:-$(pick_port 9000)}
API_PORT=${API_HOST_PORT:-$(pick_port 8000)}
export MOCK_CAMBER_HOST_PORT=$MOCK_PORT API_HOST_PORT=$API_PORT
export CAMBER_API_KEY=smoke-key-$RANDOM WEBHOOK_SECRET=smoke-secret-$RANDOM$RANDOM
MOCK=http://127.0.0.1:$MOCK_PORT
API=http://127.0.0.1:$API_PORT

compose() {
  timeout 120 "$PODMAN_COMPOSE" -p "$PROJECT" -f "$ROOT/docker-compose.yml" "$@"
}

CTX=""
STARTED=0
cleanup() {
  local rc=$?
  set +e
  if [[ $STARTED == 1 ]]; then
    if [[ $rc != 0 ]]; then
      step "logs (the smoke test failed)"
      for svc in mock-camber api; do
        for c in $(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
                     --filter "label=com.docker.compose.service=$svc" --format '{{.Names}}'); do
          echo "----- $c"
          podman inspect "$c" --format 'state={{.State.Status}} exit={{.State.ExitCode}} health={{.State.Health.Status}}' 2>/dev/null
          podman logs --tail 200 "$c" 2>&1
        done
      done
    fi
    step "tear down"
    compose down -v -t 10 >/dev/null 2>&1 || info "podman-compose down failed"
    # Belt and braces: nothing of this project may survive the test.
    podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman rm -f >/dev/null 2>&1
    podman volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r podman volume rm -f >/dev/null 2>&1
    info "stack removed"
  fi
  [[ -n "$CTX" ]] && rm -rf "$CTX"
  if [[ $rc == 0 ]]; then echo; echo "compose smoke: PASS"; else echo; echo "compose smoke: FAIL (exit $rc)"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${SMOKE_USE_EXISTING_IMAGES:-0} == 1 ]]; then
  step "using the existing images mock-camber:local and mock-camber-api:local (SMOKE_USE_EXISTING_IMAGES=1)"
  podman image exists mock-camber:local && podman image exists mock-camber-api:local \
    || die "build them first, e.g. podman build --target mock-camber -t mock-camber:local ."
  CTX=$(mktemp -d)
else
# --- 1. static binaries ------------------------------------------------------
step "build static release binaries (cargo build --release --target $TARGET, crt-static)"
export CARGO_TERM_COLOR=never
RUSTFLAGS="-C target-feature=+crt-static" timeout "$BUILD_TIMEOUT" \
  cargo build --release --locked --target "$TARGET" -p mock-camber -p api \
  || die "static release build failed or took longer than ${BUILD_TIMEOUT}s"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release
for b in mock-camber api; do
  [[ -x $BIN/$b ]] || die "missing $BIN/$b"
  info "$b: $(file -b "$BIN/$b" 2>/dev/null | cut -d, -f1-5 || echo built)"
done

# --- 2. images ---------------------------------------------------------------
step "build images with podman (Dockerfile.prebuilt, FROM scratch)"
CTX=$(mktemp -d)
mkdir "$CTX/data"
cp "$BIN/mock-camber" "$BIN/api" "$CTX/"
podman build -q --format docker -f "$ROOT/Dockerfile.prebuilt" --target mock-camber -t mock-camber:local "$CTX" >/dev/null
podman build -q --format docker -f "$ROOT/Dockerfile.prebuilt" --target api -t mock-camber-api:local "$CTX" >/dev/null
podman images --format '   {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'mock-camber(-api)?:local' || true
fi

# --- 3. up -------------------------------------------------------------------
step "podman-compose up (project $PROJECT; host ports mock $MOCK_PORT, api $API_PORT)"
# A stack left over by an interrupted run would hold the names and ports.
compose down -v -t 5 >/dev/null 2>&1 || true
# ... and a network created before name lookup worked would keep lacking it.
podman network rm -f "${PROJECT}_default" >/dev/null 2>&1 || true
STARTED=1
compose "${RUN_ARGS[@]}" up -d --no-build >"$CTX/up.log" 2>&1 || { cat "$CTX/up.log"; die "podman-compose up failed"; }
DEADLINE=$((SECONDS + STACK_TIMEOUT))

container_of() {
  podman ps -a --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -n1
}
MOCK_C=$(container_of mock-camber)
API_C=$(container_of api)
[[ -n "$MOCK_C" && -n "$API_C" ]] || { cat "$CTX/up.log"; die "containers were not created"; }
info "containers: $MOCK_C, $API_C"

step "wait for both healthchecks (the binaries' own \`healthcheck\` subcommand, run in the containers)"
# podman runs scheduled healthchecks through systemd timers, which this
# machine lacks; `podman healthcheck run` executes the same compose-defined
# check on demand.
for c in "$MOCK_C" "$API_C"; do
  until podman healthcheck run "$c" >/dev/null 2>&1; do
    state=$(podman inspect "$c" --format '{{.State.Status}}' 2>/dev/null || echo gone)
    [[ $state == running ]] || die "container $c is $state"
    (( SECONDS < DEADLINE )) || die "container $c did not become healthy in time"
    sleep 1
  done
  info "$c: $(podman inspect "$c" --format '{{.State.Health.Status}}')"
done
curl -fsS "$MOCK/readyz" >/dev/null || die "mock-camber /readyz is not reachable from the host on $MOCK"
curl -fsS "$API/readyz" >/dev/null || die "api /readyz is not reachable from the host on $API"
info "host: $MOCK/readyz 200, $API/readyz 200"

step "each container reaches the other by service name"
# One line instead of a job pending until the time limit when they cannot.
reach() { # reach <container> <binary> <url>
  local out
  out=$(podman exec "$1" "/usr/local/bin/$2" healthcheck --url "$3" 2>&1) \
    || die "$1 cannot reach $3 over the compose network: ${out:-no output} (service name lookup needs podman's DNS: CNI dnsname plugin or aardvark-dns)"
  info "$1: $out"
}
reach "$API_C" api http://mock-camber:9000/readyz
reach "$MOCK_C" mock-camber http://api:8000/readyz

# --- 4. a job end to end -------------------------------------------------------
step "submit a job to the api from the host: POST $API/jobs"
created=$(curl -sS -w '\n%{http_code}' -X POST "$API/jobs" -H 'Content-Type: application/json' \
  -d '{"portal_schema_name":"invoice","filename":"a.pdf","mime_type":"application/pdf","file_size_bytes":1000}')
code=${created##*$'\n'}; created=${created%$'\n'*}
info "$code $created"
[[ $code == 201 ]] || die "POST /jobs answered $code"
JOB_ID=$(json 'd["job_id"]' <<<"$created")

step "poll GET $API/jobs/$JOB_ID until completed"
last=""
while :; do
  job=$(curl -sS "$API/jobs/$JOB_ID") || die "GET /jobs/$JOB_ID failed"
  status=$(json 'd["status"]' <<<"$job")
  [[ $status != "$last" ]] && info "status: $status" && last=$status
  case $status in
    completed) break ;;
    failed) die "the job failed: $(json 'd.get("error")' <<<"$job")" ;;
  esac
  (( SECONDS < DEADLINE )) || die "the job is still '$status' after the time limit: $job"
  sleep 0.5
done
CAMBER_ID=$(json 'd["camber_job_id"]' <<<"$job")
info "camber job: $CAMBER_ID"
info "events: $(json '" ; ".join("%s -> %s (%s)" % (e["from"], e["to"], e["source"]) for e in d["events"])' <<<"$job")"
info "artifacts: $(json '", ".join(a["name"] for a in d["artifacts"])' <<<"$job")"
json 'any(e["source"] == "webhook" and e["to"] == "completed" for e in d["events"])' <<<"$job" | grep -qx true \
  || die "the job did not complete through the webhook: $job"

step "the mock delivered the webhook to the api by service name"
deliveries=$(curl -sS "$MOCK/_mock/deliveries?job_id=$CAMBER_ID")
info "$(json '"; ".join("%s %s -> %s [%s] attempts: %s" % (x["id"], x["event"], x["url"], x["state"], ",".join(str(a.get("status")) for a in x["attempts"])) for x in d["deliveries"])' <<<"$deliveries")"
json 'any(x["state"] == "delivered" and x["url"].startswith("http://api:8000/") for x in d["deliveries"])' <<<"$deliveries" | grep -qx true \
  || die "no delivered webhook to http://api:8000 in $deliveries"

step "restart both containers: the job survives on the data volumes"
# (podman logs an error per container about systemd healthcheck timers, absent here.)
podman restart -t 10 "$MOCK_C" "$API_C" >"$CTX/restart.log" 2>&1 || { cat "$CTX/restart.log"; die "podman restart failed"; }
for c in "$MOCK_C" "$API_C"; do
  until podman healthcheck run "$c" >/dev/null 2>&1; do
    (( SECONDS < DEADLINE )) || die "container $c did not become healthy again after the restart"
    sleep 1
  done
done
after=$(curl -sS "$API/jobs/$JOB_ID")
info "api:  job $JOB_ID is $(json 'd["status"]' <<<"$after") with $(json 'len(d["artifacts"])' <<<"$after") artifacts"
[[ $(json 'd["status"]' <<<"$after") == completed ]] || die "the api lost the job across a restart: $after"
camber=$(curl -sS -H "Authorization: Bearer $CAMBER_API_KEY" "$MOCK/jobs/$CAMBER_ID")
info "mock: job $CAMBER_ID is $(json 'd["status"]' <<<"$camber")"
[[ $(json 'd["status"]' <<<"$camber") == completed ]] || die "the mock lost the job across a restart: $camber"

info "done in $((SECONDS)) s"
