#!/usr/bin/env bash
# Benchmark of mock-camber on this machine: start-up time, submit throughput
# and latency under wrk, webhooks delivered per second to a fast sink, the
# CPU each thread of the daemon used, and peak RSS. The daemon runs on a
# file database, so the cost of durability (WAL, synchronous=FULL) is in
# every figure.
#
# Usage: scripts/bench-mock.sh
# Knobs (env): DURATION=10s CONNECTIONS=64 THREADS=2 STARTS=20 DRAIN_SECS=120
#              BACKLOG_DURATION=3s (wrk run that fills the webhook backlog)
#              MOCK_DB=<path> (default: a new file; `:memory:` = no fsync, to
#              compare), KEEP=1 (keep the temp dir with logs and the database)
# Needs: cargo, curl, wrk (apt-get install -y wrk).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
STARTS=${STARTS:-20}
DRAIN_SECS=${DRAIN_SECS:-120}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in cargo curl wrk; do
    command -v "$tool" >/dev/null || { echo "bench-mock: needs $tool (apt-get install -y wrk)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bench-mock.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM

source "$ROOT/scripts/lib/bench.sh"
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8, $5 + $6 }' /proc/stat; }
proc_ticks() { local rest; rest=$(cat "/proc/$1/stat"); rest=${rest##*) }; set -- $rest; echo $((${12} + ${13})); }

step "build (release)"
echo "+ cargo build --release -p mock-camber --bins --examples"
cargo build --release -p mock-camber --bins --examples 2>&1 | tail -1
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=$TARGET/release/mock-camber
SINK=$TARGET/release/examples/sink
CORES=$(nproc)
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "machine: $CORES cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"

# ------------------------------------------------------------------ start-up
step "start-up: process spawn until GET /readyz answers 200 (fresh file db, $STARTS runs)"
echo "+ $BIN --port 0 --db <new file> --stage-ms 0   # then curl /readyz until 200"
startup_us() { # one cold start on database $1; prints microseconds
    local db=$1 out=$TMP/start.out addr t0 t1 pid
    : >"$out"
    t0=$(date +%s%N)
    "$BIN" --port 0 --db "$db" --stage-ms 0 >"$out" 2>>"$TMP/start.err" &
    pid=$!
    addr=$(address_of "$out")
    until curl -sf -o /dev/null "$addr/readyz"; do :; done
    t1=$(date +%s%N)
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    echo $(((t1 - t0) / 1000))
}
summary_ms() { # sorted list of µs on stdin -> "min / median / max ms"
    sort -n | awk '{ v[NR] = $1 } END {
        printf "min %.1f ms, median %.1f ms, max %.1f ms (n=%d)\n", v[1] / 1000, v[int((NR + 1) / 2)] / 1000, v[NR] / 1000, NR }'
}
for i in $(seq "$STARTS"); do startup_us "$TMP/start-$i.db"; rm -f "$TMP/start-$i".db*; done | summary_ms
echo "+ $BIN --port 0 --db :memory: --stage-ms 0   # for comparison: no file to create, no fsync"
for _ in $(seq "$STARTS"); do startup_us :memory:; done | summary_ms
echo "(both include spawning curl, ~2-4 ms, for the /readyz probe)"

# ------------------------------------------------------------------ load
step "submit load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, webhooks to a 204 sink"
"$SINK" --port 0 >"$TMP/sink.out" 2>"$TMP/sink.err" &
PIDS+=($!)
SINK_PID=$!
SINK_ADDR=$(address_of "$TMP/sink.out")
DB=${MOCK_DB:-$TMP/mock.db}
"$BIN" --port 0 --db "$DB" --stage-ms 0 --webhook-url "$SINK_ADDR/hook" \
    --webhook-secret bench-secret >"$TMP/mock.out" 2>"$TMP/mock.err" &
PIDS+=($!)
MOCK_PID=$!
MOCK=$(address_of "$TMP/mock.out")
curl -sf -o /dev/null "$MOCK/readyz"
echo "sink:        $SINK --port 0                      (pid $SINK_PID, $SINK_ADDR)"
echo "mock-camber: $BIN --port 0 --db $DB --stage-ms 0 --webhook-url $SINK_ADDR/hook   (pid $MOCK_PID, $MOCK)"

submit_lua k >"$TMP/submit.lua"
wrk_done_lua >>"$TMP/submit.lua"

thread_ticks "$MOCK_PID" >"$TMP/ticks.before"
read -r CPU_ALL0 CPU_IDLE0 < <(cpu_jiffies)
SINK_TICKS0=$(proc_ticks "$SINK_PID")
read -r IO_BYTES0 IO_CALLS0 < <(proc_io "$MOCK_PID")
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
SINK_BEFORE=$(curl -sf "$SINK_ADDR/count")
T0=$(date +%s%N)
echo "+ wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s submit.lua $MOCK/jobs"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/submit.lua" "$MOCK/jobs" | tee "$TMP/wrk.out"
T1=$(date +%s%N)
thread_ticks "$MOCK_PID" >"$TMP/ticks.after"
read -r CPU_ALL1 CPU_IDLE1 < <(cpu_jiffies)
SINK_TICKS1=$(proc_ticks "$SINK_PID")
read -r IO_BYTES1 IO_CALLS1 < <(proc_io "$MOCK_PID")
SINK_AT_END=$(curl -sf "$SINK_ADDR/count")
METRICS_AT_END=$(curl -sf "$MOCK/metrics")
RUN_S=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')

SUBMITS=$(metric mock_camber_submits_total <<<"$METRICS_AT_END")
echo
echo "jobs created (mock_camber_submits_total): $SUBMITS in ${RUN_S}s = $(awk -v n="$SUBMITS" -v s="$RUN_S" 'BEGIN { printf "%.0f", n / s }') jobs/s"
echo "webhooks received by the sink during the run: $((SINK_AT_END - SINK_BEFORE)) = $(awk -v n="$((SINK_AT_END - SINK_BEFORE))" -v s="$RUN_S" 'BEGIN { printf "%.0f", n / s }')/s"
echo "mock-camber wrote $(awk -v b="$((IO_BYTES1 - IO_BYTES0))" -v w="$((IO_CALLS1 - IO_CALLS0))" -v n="$SUBMITS" 'BEGIN {
    printf "%.0f MB to storage (%.1f KB per job) in %.0f write syscalls (%.1f per job; writes to sockets included)", b / 1e6, b / n / 1e3, w, w / n }') (/proc/PID/io)"
echo "queue at the end of the run: $(metric mock_camber_webhook_queue_depth <<<"$METRICS_AT_END") deliveries waiting, $(metric mock_camber_active_jobs <<<"$METRICS_AT_END") jobs active"

step "CPU per thread of mock-camber during the run (100 % = one core; ${CORES} cores total, shared with wrk and the sink)"
HZ=$(getconf CLK_TCK)
join <(sort "$TMP/ticks.before") <(sort "$TMP/ticks.after") |
    awk -v hz="$HZ" -v s="$RUN_S" '{ d = $5 - $3; if (d > 0) { by[$2] += d; n[$2]++ } }
        END { for (k in by) printf "  %-28s %3d thread(s) %6.1f %%\n", k, n[k], 100 * by[k] / hz / s }' |
    sort -k4 -rn
echo "  (sink: $(awk -v d="$((SINK_TICKS1 - SINK_TICKS0))" -v hz="$HZ" -v s="$RUN_S" 'BEGIN { printf "%.1f", 100 * d / hz / s }') %;" \
    "whole machine busy: $(awk -v a="$((CPU_ALL1 - CPU_ALL0))" -v i="$((CPU_IDLE1 - CPU_IDLE0))" 'BEGIN { printf "%.0f", 100 * (a - i) / a }') % of $CORES cores, the rest idle or waiting on I/O)"
# Threads that started during the run (the blocking pool) count in full.
comm -13 <(cut -d' ' -f1 "$TMP/ticks.before" | sort) <(cut -d' ' -f1 "$TMP/ticks.after" | sort) >"$TMP/new.tids" || true
if [[ -s $TMP/new.tids ]]; then
    grep -Ff "$TMP/new.tids" "$TMP/ticks.after" |
        awk -v hz="$HZ" -v s="$RUN_S" '{ by[$2] += $3; n[$2]++ } END {
            for (k in by) printf "  %-28s %3d new thread(s) %6.1f %%\n", k, n[k], 100 * by[k] / hz / s }'
fi

# ------------------------------------------------------------------ drain
step "drain: until every webhook is delivered (at most ${DRAIN_SECS}s)"
deadline=$((SECONDS + DRAIN_SECS))
while :; do
    M=$(curl -sf "$MOCK/metrics")
    depth=$(metric mock_camber_webhook_queue_depth <<<"$M")
    active=$(metric mock_camber_active_jobs <<<"$M")
    [[ $depth == 0 && $active == 0 ]] && break
    ((SECONDS < deadline)) || { echo "not drained after ${DRAIN_SECS}s: $depth queued, $active active"; break; }
    sleep 0.2
done
T2=$(date +%s%N)
SINK_TOTAL=$(curl -sf "$SINK_ADDR/count")
DELIVERED=$(metric 'mock_camber_webhook_attempts_total{outcome="delivered"}' <<<"$M")
HTTP_ERR=$(metric 'mock_camber_webhook_attempts_total{outcome="http_error"}' <<<"$M")
TRANSPORT_ERR=$(metric 'mock_camber_webhook_attempts_total{outcome="transport_error"}' <<<"$M")
ALL_S=$(awk -v a="$T0" -v b="$T2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
DRAIN_S=$(awk -v a="$T1" -v b="$T2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
echo "drained ${DRAIN_S}s after wrk stopped"
echo "webhook attempts: delivered $DELIVERED, http_error $HTTP_ERR, transport_error $TRANSPORT_ERR (GET /metrics)"
echo "sink received $SINK_TOTAL webhooks for $SUBMITS jobs; end to end $(awk -v n="$SINK_TOTAL" -v s="$ALL_S" 'BEGIN { printf "%.0f", n / s }') webhooks/s over ${ALL_S}s"
if ((SINK_TOTAL > SINK_AT_END)); then
    echo "after the run, alone: $(awk -v n="$((SINK_TOTAL - SINK_AT_END))" -v s="$DRAIN_S" 'BEGIN { printf "%.0f", n / s }') webhooks/s while draining"
else
    echo "nothing was left to drain: delivery kept up with submits"
fi
echo "webhook latency (mock_camber_webhook_latency_seconds): mean $(awk '
    $1 == "mock_camber_webhook_latency_seconds_sum" { s = $2 } $1 == "mock_camber_webhook_latency_seconds_count" { n = $2 }
    END { if (n > 0) printf "%.2f ms", 1000 * s / n; else print "-" }' <<<"$M")"
echo "peak RSS of mock-camber (VmHWM): $(rss_kib "$MOCK_PID") KiB"
[[ $DB == :memory: ]] || echo "database: $(du -ch "$DB"* | tail -1 | cut -f1) on disk for $SUBMITS jobs"


# ------------------------------------------------------------------ backlog
# The rest restarts the daemon on its database, which `:memory:` does not keep.
[[ $DB == :memory: ]] && exit 0
step "webhook backlog: deliveries pending across a restart, then sent as fast as the daemon can"
echo "+ curl -X PUT $SINK_ADDR/answer/503   # the sink answers 503, Retry-After: 1"
curl -sf -X PUT "$SINK_ADDR/answer/503"
M=$(curl -sf "$MOCK/metrics")
SUBMITS0=$(metric mock_camber_submits_total <<<"$M")
echo "+ wrk -t$THREADS -c$CONNECTIONS -d${BACKLOG_DURATION:-3s} -s submit.lua $MOCK/jobs"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${BACKLOG_DURATION:-3s}" -s "$TMP/submit.lua" "$MOCK/jobs" | grep -E "requests in|Requests/sec"
deadline=$((SECONDS + DRAIN_SECS))
while :; do # every job finished and its delivery queued
    M=$(curl -sf "$MOCK/metrics")
    BACKLOG=$(( $(metric mock_camber_submits_total <<<"$M") - SUBMITS0 ))
    [[ $(metric mock_camber_active_jobs <<<"$M") == 0 && $(metric mock_camber_webhook_queue_depth <<<"$M") == "$BACKLOG" ]] && break
    ((SECONDS < deadline)) || { echo "backlog did not settle"; break; }
    sleep 0.2
done
echo "backlog: $BACKLOG deliveries pending; stopping mock-camber (SIGTERM) and waiting out Retry-After"
kill -TERM "$MOCK_PID"
wait "$MOCK_PID" 2>/dev/null || true
sleep 1.5
curl -sf -X PUT "$SINK_ADDR/answer/204"
SINK0=$(curl -sf "$SINK_ADDR/count")
: >"$TMP/mock2.out"
T3=$(date +%s%N)
"$BIN" --port 0 --db "$DB" --stage-ms 0 --webhook-url "$SINK_ADDR/hook" \
    --webhook-secret bench-secret >"$TMP/mock2.out" 2>"$TMP/mock2.err" &
PIDS+=($!)
MOCK_PID=$!
MOCK=$(address_of "$TMP/mock2.out")
until curl -sf -o /dev/null "$MOCK/readyz"; do :; done
T4=$(date +%s%N)
deadline=$((SECONDS + DRAIN_SECS))
until [[ $(curl -sf "$MOCK/metrics" | metric mock_camber_webhook_queue_depth) == 0 ]]; do
    ((SECONDS < deadline)) || { echo "backlog not drained after ${DRAIN_SECS}s"; break; }
    sleep 0.05
done
T5=$(date +%s%N)
SENT=$(( $(curl -sf "$SINK_ADDR/count") - SINK0 ))
echo "+ $BIN --port 0 --db $DB --stage-ms 0 --webhook-url $SINK_ADDR/hook   # restart on the backlog"
echo "restart with $BACKLOG pending deliveries: /readyz after $(awk -v a="$T3" -v b="$T4" 'BEGIN { printf "%.1f", (b - a) / 1e6 }') ms"
echo "backlog sent: $SENT webhooks in $(awk -v a="$T3" -v b="$T5" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')s from spawn = $(awk -v n="$SENT" -v a="$T3" -v b="$T5" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }') webhooks/s (the sink answered 2xx to each)"
echo "peak RSS of the restarted mock-camber (VmHWM): $(rss_kib "$MOCK_PID") KiB"
kill -TERM "$MOCK_PID"
wait "$MOCK_PID" 2>/dev/null || true

# ------------------------------------------------------------------ restart
step "start-up on the loaded database ($(du -ch "$DB"* | tail -1 | cut -f1); 5 runs)"
echo "+ $BIN --port 0 --db $DB --stage-ms 0   # then curl /readyz until 200"
for _ in 1 2 3 4 5; do startup_us "$DB"; done | summary_ms
