#!/usr/bin/env bash
# The benchmark suite in one command: prints one table, each figure with the
# command that reproduces it, and writes it into BENCHMARKS.md between the
# `bench.sh` markers (WRITE=0 leaves BENCHMARKS.md alone).
#
#   1. the ceiling: a fixed-JSON actix-web server (mock-camber/examples/
#      ceiling.rs) under the same wrk command and worker count as the mock;
#   2. mock-camber submit throughput with every webhook delivered to a 204
#      sink (file db, then :memory:), p50/p99, and what was still undelivered
#      once the queue drained (must be 0); each also as a share of 1.;
#   3. the mock alone at concurrency 1: POST /jobs -> webhook received
#      (mock-camber/examples/latency.rs; file db and :memory:); then end to
#      end through api (create -> `completed` on GET /jobs/{id}) at
#      concurrency 64 (JOBS_64 jobs) and 1 (JOBS_1 jobs), api/examples/drive.rs;
#   4. peak RSS of each process, start-up to /readyz, binary sizes;
#   and µs of CPU per job for each thread (mock under submit load; api and
#   mock end to end at c=64), from /proc/PID/task/*/stat;
#   and this disk's fsync latency, the floor of the c=1 figures.
#
# Knobs (env): DURATION=10s CONNECTIONS=64 THREADS=2 JOBS_64=10000 JOBS_1=1000
#              STARTS=10 DRAIN_SECS=120 WRITE=1 KEEP=1 (keep the temp dir)
# Needs: cargo, curl, wrk (apt-get install -y wrk), python3. Everything runs on
# 127.0.0.1 and stops by itself. Not a CI pass/fail: figures move with the
# machine's load, which is printed with them.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
JOBS_64=${JOBS_64:-10000}
JOBS_1=${JOBS_1:-1000}
STARTS=${STARTS:-10}
DRAIN_SECS=${DRAIN_SECS:-120}
WRITE=${WRITE:-1}
KEY=bench-key
SECRET=bench-secret

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in cargo curl wrk; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool (apt-get install -y wrk curl)" >&2; exit 1; }
done
source "$ROOT/scripts/lib/bench.sh"

TMP=$(mktemp -d /tmp/bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 |"); printf '   %-44s %s\n' "$1" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f %%", 100 * a / b }'; }
wrk_rate() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$1"; }
wrk_pct() { sed -n 's/^latency ms: p50 \([0-9.]*\) .* p99 \([0-9.]*\) .*/p50 \1 ms, p99 \2 ms/p' "$1"; }
wrk_non2xx() { sed -n 's/^wrk: [0-9]* requests, \([0-9]*\) non-2xx, \([0-9]*\) socket.*/\1 non-2xx, \2 socket errors/p' "$1"; }
start() { # start NAME CMD... ; sets $ADDR and $PID
    local name=$1
    shift
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID=$!
    PIDS+=("$PID")
    ADDR=$(address_of "$TMP/$name.out")
}
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
rss_mib() { awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }

step "build (release)"
echo "+ cargo build --release -p mock-camber -p api --bins --examples"
cargo build --release -p mock-camber -p api --bins --examples 2>&1 | tail -1
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
MOCK_BIN=$TARGET/release/mock-camber
API_BIN=$TARGET/release/api
SINK=$TARGET/release/examples/sink
CEILING=$TARGET/release/examples/ceiling
DRIVE=$TARGET/release/examples/drive
LATENCY=$TARGET/release/examples/latency
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo "+changes")
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "build $COMMIT; machine: $MACHINE; load average $LOAD0"

submit_lua >"$TMP/submit.lua"
wrk_done_lua >>"$TMP/submit.lua"
WRK="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s submit.lua"

# --- 1. ceiling ------------------------------------------------------------------
step "1. ceiling: fixed-JSON actix-web server, 2 workers"
start ceiling "$CEILING" --port 0 --workers 2
echo "+ $CEILING --port 0 --workers 2; $WRK $ADDR/jobs"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/submit.lua" "$ADDR/jobs" >"$TMP/wrk-ceiling.out"
CEIL=$(wrk_rate "$TMP/wrk-ceiling.out")
row "ceiling: fixed-JSON actix server, POST" "**$CEIL req/s**, $(wrk_pct "$TMP/wrk-ceiling.out")" \
    "\`cargo run --release -p mock-camber --example ceiling -- --port 0 --workers 2\`; \`$WRK URL/jobs\`"
stop "$PID"

# --- 2. mock submits with webhooks drained ---------------------------------------------
start sink "$SINK" --port 0
SINK_ADDR=$ADDR
SINK_PID=$PID
mock_run() { # mock_run LABEL DB
    local label=$1 db=$2 depth active m deadline sent before
    start "mock-$label" "$MOCK_BIN" --port 0 --db "$db" --stage-ms 0 --workers 2 \
        --webhook-url "$SINK_ADDR/hook" --webhook-secret "$SECRET" --api-key "$KEY"
    local mock=$ADDR pid=$PID
    wait_ready "$mock"
    echo "+ $MOCK_BIN --port 0 --db $db --stage-ms 0 --workers 2 --webhook-url $SINK_ADDR/hook --api-key $KEY; $WRK $mock/jobs"
    before=$(curl -sf "$SINK_ADDR/count")
    local submits0
    submits0=$(curl -sf "$mock/metrics" | metric mock_camber_submits_total)
    thread_ticks "$pid" >"$TMP/ticks0-$label"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/submit.lua" "$mock/jobs" >"$TMP/wrk-$label.out"
    deadline=$((SECONDS + DRAIN_SECS))
    while :; do
        m=$(curl -sf "$mock/metrics")
        depth=$(metric mock_camber_webhook_queue_depth <<<"$m")
        active=$(metric mock_camber_active_jobs <<<"$m")
        [[ $depth == 0 && $active == 0 ]] && break
        ((SECONDS < deadline)) || break
        sleep 0.2
    done
    local submits rate
    submits=$(metric mock_camber_submits_total <<<"$m")
    sent=$(($(curl -sf "$SINK_ADDR/count") - before))
    rate=$(wrk_rate "$TMP/wrk-$label.out")
    row "mock-camber submits, $label, webhooks to a sink" \
        "**$rate submits/s** ($(ratio "$rate" "$CEIL") of the ceiling), $(wrk_pct "$TMP/wrk-$label.out"); $(wrk_non2xx "$TMP/wrk-$label.out"); $submits jobs, $sent webhooks received, **$((submits - sent)) undelivered** after the drain (queue $depth, active $active)" \
        "\`mock-camber --port 0 --db ${db/#\/*/FILE} --stage-ms 0 --workers 2 --webhook-url SINK/hook\`; \`$WRK URL/jobs\`; sink: \`cargo run --release -p mock-camber --example sink\`"
    thread_ticks "$pid" >"$TMP/ticks1-$label"
    row "CPU per job by thread, mock-camber ($label, submit load with webhooks, until drained)" \
        "$(cpu_per_job "$TMP/ticks0-$label" "$TMP/ticks1-$label" $((submits - submits0)))" \
        "\`utime + stime\` of /proc/PID/task/*/stat, before wrk and after the drain, over the jobs submitted"
    row "peak RSS mock-camber ($label, after $submits jobs)" "$(rss_mib "$pid")" "VmHWM in /proc/PID/status"
    stop "$pid"
}
step "2. mock-camber submit throughput, webhooks delivered to a 204 sink"
mock_run "file db" "$TMP/mock.db"
mock_run ":memory:" ":memory:"
stop "$SINK_PID"

# --- 3. end to end through api ------------------------------------------------------
step "3. end to end through api: create -> completed"
# One job at a time waits for five commits in a row (api insert, mock
# insert, api submitted, mock end, api end), each an fsync: this disk's
# fsync latency right now is the floor of the c=1 figures.
FSYNC=$(fsync_probe "$TMP")
row "this disk: fdatasync of a 4 KiB append" "$FSYNC" "300 \`os.write\` + \`os.fdatasync\` in the bench's temp dir (python3), just before the end-to-end runs"
# The mock's own c=1 latency: POST /jobs sent -> its webhook received, the
# receiver in the driver's process (mock-camber/examples/latency.rs).
latency_run() { # latency_run LABEL DB
    start "latency-$1" "$MOCK_BIN" --port 0 --db "$2" --stage-ms 0 --api-key "$KEY" --webhook-secret "$SECRET"
    local pid=$PID mock=$ADDR s
    wait_ready "$mock"
    echo "+ $LATENCY --mock $mock --jobs $JOBS_1"
    s=$("$LATENCY" --mock "$mock" --jobs "$JOBS_1" --key "$KEY" | tee /dev/stderr | grep '^summary')
    row "mock-camber alone, c=1, $1: POST /jobs -> webhook received ($JOBS_1 jobs)" \
        "$(sed 's/.*webhook_ms \(p50 [0-9.]*\) p90 [0-9.]* \(p99 [0-9.]*\).*created_ms \(p50 [0-9.]*\).*/**\1 ms**, \2 ms; the 201 alone \3 ms/' <<<"$s")" \
        "\`mock-camber --port 0 --db ${2/#\/*/FILE} --stage-ms 0\`; \`cargo run --release -p mock-camber --example latency -- --mock URL --jobs $JOBS_1\`"
    stop "$pid"
}
latency_run "file db" "$TMP/latency.db"
latency_run ":memory:" ":memory:"
start mock-e2e "$MOCK_BIN" --port 0 --db "$TMP/e2e-mock.db" --stage-ms 0 --webhook-secret "$SECRET" --api-key "$KEY"
E2E_MOCK=$ADDR
E2E_MOCK_PID=$PID
start api "$API_BIN" --port 0 --camber-endpoint "$E2E_MOCK" --camber-api-key "$KEY" --webhook-secret "$SECRET" \
    --db "$TMP/api.db" --artifact-dir "$TMP/artifacts"
E2E_API=$ADDR
E2E_API_PID=$PID
wait_ready "$E2E_MOCK"
wait_ready "$E2E_API"
echo "+ mock-camber --port 0 --db FILE --stage-ms 0 --api-key $KEY --webhook-secret $SECRET"
echo "+ api --port 0 --camber-endpoint MOCK --camber-api-key $KEY --webhook-secret $SECRET --db FILE --artifact-dir DIR"
e2e() { # e2e CONCURRENCY JOBS POLL_MAX_US
    echo "+ $DRIVE --api $E2E_API --jobs $2 --concurrency $1 --poll-max-us $3"
    "$DRIVE" --api "$E2E_API" --jobs "$2" --concurrency "$1" --poll-max-us "$3" --label "c$1" | tee "$TMP/drive-c$1.out"
    local s
    s=$(grep '^summary' "$TMP/drive-c$1.out")
    local f
    f() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$s"; }
    row "end to end through api, c=$1, $2 jobs" \
        "**$(f jobs/s) jobs/s**; create -> completed p50 $(f client_p50_ms) ms, p99 $(f client_p99_ms) ms (client, polling); p50 $(f server_p50_ms) / p99 $(f server_p99_ms) ms (job's own timestamps); $(f failed) failed" \
        "\`cargo run --release -p api --example drive -- --api API --jobs $2 --concurrency $1 --poll-max-us $3\`"
}
thread_ticks "$E2E_API_PID" >"$TMP/e2e-api.ticks0"
thread_ticks "$E2E_MOCK_PID" >"$TMP/e2e-mock.ticks0"
e2e 64 "$JOBS_64" 10000
thread_ticks "$E2E_API_PID" >"$TMP/e2e-api.ticks1"
thread_ticks "$E2E_MOCK_PID" >"$TMP/e2e-mock.ticks1"
row "CPU per job by thread, api (end to end, c=64)" "$(cpu_per_job "$TMP/e2e-api.ticks0" "$TMP/e2e-api.ticks1" "$JOBS_64")" \
    "/proc/PID/task/*/stat before and after the c=64 run, over its jobs"
row "CPU per job by thread, mock-camber (end to end, c=64)" "$(cpu_per_job "$TMP/e2e-mock.ticks0" "$TMP/e2e-mock.ticks1" "$JOBS_64")" \
    "the same, for the mock behind api"
e2e 1 "$JOBS_1" 200
row "peak RSS mock-camber (e2e, $((JOBS_64 + JOBS_1)) jobs)" "$(rss_mib "$E2E_MOCK_PID")" "VmHWM"
row "peak RSS api (e2e, $((JOBS_64 + JOBS_1)) jobs)" "$(rss_mib "$E2E_API_PID")" "VmHWM"
stop "$E2E_API_PID"
stop "$E2E_MOCK_PID"

# --- 4. start-up, sizes ---------------------------------------------------------------
step "4. start-up to /readyz ($STARTS runs each, new file db), binary sizes"
startup_ms() { # startup_ms NAME CMD... (a new file db each run); prints "min / median / max"
    local name=$1 i t0 t1 addr pid out=$TMP/start.out
    shift
    for i in $(seq "$STARTS"); do
        : >"$out"
        t0=$(date +%s%N)
        "$@" --db "$TMP/start-$name-$i.db" >"$out" 2>/dev/null &
        pid=$!
        addr=$(address_of "$out")
        until curl -sf -o /dev/null "$addr/readyz"; do :; done
        t1=$(date +%s%N)
        kill -9 "$pid"
        wait "$pid" 2>/dev/null || true
        echo $(((t1 - t0) / 1000))
    done | sort -n | awk '{ v[NR] = $1 } END { printf "median %.1f ms (min %.1f, max %.1f; n=%d)", v[int((NR + 1) / 2)] / 1000, v[1] / 1000, v[NR] / 1000, NR }'
}
row "start-up to /readyz, mock-camber" "$(startup_ms mock "$MOCK_BIN" --port 0)" \
    "spawn \`mock-camber --port 0 --db NEW\` until \`curl /readyz\` answers 200 (curl's own start included)"
row "start-up to /readyz, api" "$(startup_ms api "$API_BIN" --port 0 --camber-endpoint http://127.0.0.1:9 --artifact-dir "$TMP/start-arts")" \
    "spawn \`api --port 0 --db NEW\` the same way"
size() { du -b "$1" | awk '{ printf "%.1f MiB", $1 / 1048576 }'; }
row "binary sizes (release)" "mock-camber $(size "$MOCK_BIN"), api $(size "$API_BIN")" "\`du -b target/release/{mock-camber,api}\`"

# --- the table -----------------------------------------------------------------------
TABLE=$(
    echo "Build $COMMIT, $(date -u +%Y-%m-%d), $MACHINE; load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Reproduce: \`scripts/bench.sh\` (DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS JOBS_64=$JOBS_64 JOBS_1=$JOBS_1)."
    echo
    echo "| what | figure | command |"
    echo "|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
)
step "table"
echo "$TABLE"
if [[ $WRITE == 1 ]]; then
    python3 - "$ROOT/BENCHMARKS.md" "$TABLE" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
begin, end = "<!-- bench.sh: begin -->", "<!-- bench.sh: end -->"
text = open(path).read()
block = f"{begin}\n{table}\n{end}"
if begin in text and end in text:
    a, b = text.index(begin), text.index(end) + len(end)
    text = text[:a] + block + text[b:]
else:
    head, _, rest = text.partition("\n")
    text = f"{head}\n\n## Latest `scripts/bench.sh`\n\n{block}\n{rest}"
open(path, "w").write(text)
PY
    echo "(written to BENCHMARKS.md)"
fi
