#!/usr/bin/env bash
# Scaling with cores (issue 24): mock-camber's submit throughput with every
# webhook delivered to a 204 sink (mock-camber/examples/sink.rs), the mock
# pinned by `taskset` to one core, then to two; the same wrk command as
# scripts/bench.sh section 2 (POST /jobs, file db, --stage-ms 0). Prints
# each run's submits/s (wrk) and jobs/s until every webhook was delivered,
# µs of CPU per job by thread (cpu_per_job), and the ratio two cores / one
# core (target >= 1.6x).
#
# Where things run (printed too): the one-core run pins the mock to
# MOCK_CPUS_1 and wrk + sink to LOAD_CPUS_1; the two-core run pins the mock to
# MOCK_CPUS_2 and wrk + sink to LOAD_CPUS_2, which on a 2-core machine is
# empty = unpinned (they share the mock's two cores: there is no third).
#
# Knobs (env): DURATION=10s CONNECTIONS=64 THREADS=2 ROUNDS=1 DRAIN_SECS=120
#   MOCK_CPUS_1=1 LOAD_CPUS_1=0 MOCK_CPUS_2=0,1 LOAD_CPUS_2=(CPUs 2.. if any, else unpinned)
#   WORKERS=(default: as many as the mock's CPUs) KEEP=1 (keep the temp dir)
#   TARGET=<cargo target dir>: use its release binaries, build nothing
# Needs: cargo (unless TARGET), curl, wrk (apt-get install -y wrk), taskset.
# Everything on 127.0.0.1; stops by itself. Not CI pass/fail.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
DRAIN_SECS=${DRAIN_SECS:-120}
NCPU=$(nproc)
MOCK_CPUS_1=${MOCK_CPUS_1:-1}
LOAD_CPUS_1=${LOAD_CPUS_1-0}
MOCK_CPUS_2=${MOCK_CPUS_2:-0,1}
if ((NCPU > 2)); then LOAD_CPUS_2=${LOAD_CPUS_2-2-$((NCPU - 1))}; else LOAD_CPUS_2=${LOAD_CPUS_2-}; fi
KEY=bench-key

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in curl wrk taskset; do
    command -v "$tool" >/dev/null || { echo "bench-cores: needs $tool (apt-get install -y wrk curl util-linux)" >&2; exit 1; }
done
source "$ROOT/scripts/lib/bench.sh"

TMP=$(mktemp -d /tmp/bench-cores.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM
SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n') # never printed

start() { # start NAME CMD... ; sets $ADDR and $PID
    local name=$1
    shift
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    PID=$!
    PIDS+=("$PID")
    ADDR=$(address_of "$TMP/$name.out")
}
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# The prefix that pins a command to CPUS (taskset execs it: same PID), or
# nothing when CPUS is empty; sets the array PIN.
pin_prefix() { if [[ -n $1 ]]; then PIN=(taskset -c "$1"); else PIN=(); fi; }
cpu_count() { # CPUs in a taskset list such as 0,2-3
    awk -F, '{ n = 0; for (i = 1; i <= NF; i++) { if (split($i, r, "-") == 2) n += r[2] - r[1] + 1; else n++ } print n }' <<<"$1"
}
wrk_rate() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$1"; }
wrk_pct() { sed -n 's/^latency ms: p50 \([0-9.]*\) .* p99 \([0-9.]*\) .*/p50 \1 ms, p99 \2 ms/p' "$1"; }
wrk_non2xx() { sed -n 's/^wrk: [0-9]* requests, \([0-9]*\) non-2xx, \([0-9]*\) socket.*/\1 non-2xx, \2 socket errors/p' "$1"; }
ROWS=()
row() { ROWS+=("| $1 | ${2//|/\\|} | $3 |"); printf '   %-40s %s\n' "$1" "$2"; }

step "build (release)"
REL=$(release_dir -p mock-camber --bins --examples)
MOCK_BIN=$REL/mock-camber
SINK=$REL/examples/sink
for b in "$MOCK_BIN" "$SINK"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 1; }; done
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo "+changes")
MACHINE="$NCPU cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
LOAD0=$(load)
echo "build $COMMIT; binaries $REL; machine: $MACHINE; load average $LOAD0"

submit_lua >"$TMP/submit.lua"
wrk_done_lua >>"$TMP/submit.lua"
WRK="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s submit.lua"

# one_run LABEL MOCK_CPUS LOAD_CPUS: prints nothing, sets RATE (wrk submits/s)
# and DRAINED (jobs/s from wrk's start to the last webhook delivered).
one_run() {
    local label=$1 cpus=$2 lcpus=$3 workers mock pid sink sink_pid t0 t1 m depth active deadline
    local submits0 submits sent before placement tag
    workers=${WORKERS:-$(cpu_count "$cpus")}
    tag=$(cpu_count "$cpus")core-${label// /-} # file names: unique per run
    placement="mock on CPU $cpus ($workers HTTP worker(s)); wrk and sink $([[ -n $lcpus ]] && echo "on CPU $lcpus" || echo "unpinned (no CPU left over: they share the mock's)")"
    pin_prefix "$lcpus"
    start "sink-$tag" "${PIN[@]}" "$SINK" --port 0
    sink=$ADDR
    sink_pid=$PID
    start "mock-$tag" taskset -c "$cpus" "$MOCK_BIN" --port 0 --db "$TMP/mock-$tag.db" --stage-ms 0 \
        --workers "$workers" --webhook-url "$sink/hook" --webhook-secret "$SECRET" --api-key "$KEY"
    mock=$ADDR
    pid=$PID
    wait_ready "$mock"
    echo "+ taskset -c $cpus $MOCK_BIN --port 0 --db FILE --stage-ms 0 --workers $workers --webhook-url $sink/hook --api-key $KEY"
    echo "+ $([[ -n $lcpus ]] && echo "taskset -c $lcpus ")$WRK $mock/jobs   # $placement"
    echo "  affinity: mock $(taskset -pc "$pid" | sed 's/.*: //'), sink $(taskset -pc "$sink_pid" | sed 's/.*: //')"
    before=$(curl -sf "$sink/count")
    submits0=$(curl -sf "$mock/metrics" | metric mock_camber_submits_total)
    thread_ticks "$pid" >"$TMP/ticks0-$tag"
    local l0
    l0=$(load)
    t0=$(date +%s%N)
    "${PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/submit.lua" "$mock/jobs" >"$TMP/wrk-$tag.out"
    deadline=$((SECONDS + DRAIN_SECS))
    while :; do
        m=$(curl -sf "$mock/metrics")
        depth=$(metric mock_camber_webhook_queue_depth <<<"$m")
        active=$(metric mock_camber_active_jobs <<<"$m")
        [[ $depth == 0 && $active == 0 ]] && break
        ((SECONDS < deadline)) || break
        sleep 0.05
    done
    t1=$(date +%s%N)
    thread_ticks "$pid" >"$TMP/ticks1-$tag"
    submits=$(($(metric mock_camber_submits_total <<<"$m") - submits0))
    sent=$(($(curl -sf "$sink/count") - before))
    RATE=$(wrk_rate "$TMP/wrk-$tag.out")
    DRAINED=$(awk -v n="$sent" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    row "mock-camber on $(cpu_count "$cpus") core(s), $label" \
        "**$RATE submits/s** (wrk), $DRAINED jobs/s until the last webhook was delivered; $(wrk_pct "$TMP/wrk-$tag.out"); $(wrk_non2xx "$TMP/wrk-$tag.out"); $submits jobs, $sent webhooks received, $((submits - sent)) undelivered (queue $depth, active $active); $placement; load $l0 -> $(load)" \
        "\`taskset -c $cpus mock-camber --port 0 --db FILE --stage-ms 0 --workers $workers --webhook-url SINK/hook\`; \`$([[ -n $lcpus ]] && echo "taskset -c $lcpus ")$WRK URL/jobs\`; sink: \`$([[ -n $lcpus ]] && echo "taskset -c $lcpus ")cargo run --release -p mock-camber --example sink -- --port 0\`"
    row "CPU per job by thread, $(cpu_count "$cpus") core(s), $label" \
        "$(cpu_per_job "$TMP/ticks0-$tag" "$TMP/ticks1-$tag" "$submits")" \
        "\`utime + stime\` of /proc/PID/task/*/stat, before wrk and after the drain, over the jobs submitted"
    stop "$pid"
    stop "$sink_pid"
}

RATES1=()
RATES2=()
DRAINS1=()
DRAINS2=()
for round in $(seq "$ROUNDS"); do
    step "round $round of $ROUNDS: one core, then two"
    one_run "round $round" "$MOCK_CPUS_1" "$LOAD_CPUS_1"
    RATES1+=("$RATE")
    DRAINS1+=("$DRAINED")
    one_run "round $round" "$MOCK_CPUS_2" "$LOAD_CPUS_2"
    RATES2+=("$RATE")
    DRAINS2+=("$DRAINED")
done
sum() { local s=0 v; for v in "$@"; do s=$((s + v)); done; echo "$s"; }
R=$(awk -v a="$(sum "${RATES2[@]}")" -v b="$(sum "${RATES1[@]}")" 'BEGIN { printf "%.2f", a / b }')
RD=$(awk -v a="$(sum "${DRAINS2[@]}")" -v b="$(sum "${DRAINS1[@]}")" 'BEGIN { printf "%.2f", a / b }')
row "target: two cores / one core, mock submits (≥ 1.6×)" \
    "**${R}×** by wrk's submits/s ($(sum "${RATES2[@]}") / $(sum "${RATES1[@]}") over $ROUNDS round(s)): **$(awk -v r="$R" 'BEGIN { print (r >= 1.6) ? "met" : "missed" }')**; ${RD}× by jobs/s until drained; the two-core run's wrk and sink $([[ -n $LOAD_CPUS_2 ]] && echo "on CPU $LOAD_CPUS_2" || echo "share its two cores (unpinned), the one-core run's had CPU $LOAD_CPUS_1 to themselves")" \
    "\`scripts/bench-cores.sh\` (DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS ROUNDS=$ROUNDS)"

step "table"
echo "Build $COMMIT, $(date -u '+%Y-%m-%d %H:%M') UTC, $MACHINE; load average before: $LOAD0, after: $(load)."
echo "Reproduce: \`scripts/bench-cores.sh\` (DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS ROUNDS=$ROUNDS MOCK_CPUS_1=$MOCK_CPUS_1 LOAD_CPUS_1=$LOAD_CPUS_1 MOCK_CPUS_2=$MOCK_CPUS_2 LOAD_CPUS_2=${LOAD_CPUS_2:-unpinned}${TARGET:+ TARGET=$TARGET})."
echo
echo "| what | figure | command |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
