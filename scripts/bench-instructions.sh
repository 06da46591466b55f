#!/usr/bin/env bash
# Instructions per job, by thread, for one or more mock-camber binaries:
# each runs under `valgrind --tool=callgrind` with 8 connections of the
# bench's submit load (file db, --stage-ms 0, webhooks to a 204 sink) for
# DURATION, then the queue drains and it stops; each thread's instruction
# count is divided by the jobs submitted. Instruction counts do not move
# with the machine's load (wall-clock figures here move by ±15 %), so this
# is the A/B to trust for a change to the submit path; the seconds are
# bench.sh's. Prints the writer thread's 12 costliest functions too
# (inclusive), so a regression can be named.
#
# With TOOL=dhat, the same load runs under valgrind's heap profiler
# instead, and each binary's heap allocations (blocks and bytes) are
# divided by the jobs: the counting allocator for "fewer allocations".
# valgrind counts glibc's malloc only, so give it binaries built without
# mimalloc: `cargo build --release -p mock-camber --no-default-features`.
#
# Usage: scripts/bench-instructions.sh BIN... (DURATION=20s; TOOL=dhat;
# KEEP=1 keeps the callgrind files). Needs valgrind, wrk, and
# `cargo build --release -p mock-camber --examples` for the sink.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/bench.sh"
for tool in valgrind callgrind_annotate wrk curl; do
    command -v $tool >/dev/null || { echo "needs $tool (apt-get install -y valgrind wrk curl)" >&2; exit 2; }
done
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [[ ${KEEP:-0} == 1 ]] || rm -rf "$T"' EXIT
submit_lua > $T/submit.lua
"$ROOT/target/release/examples/sink" --port 0 > $T/sink.out 2>/dev/null & SINKPID=$!
SINK=$(address_of $T/sink.out)
# A thread's role, from what its profile runs.
role() {
    local top; top=$(callgrind_annotate --inclusive=yes "$1" 2>/dev/null)
    if grep -q -E 'writer_loop|sqlite_writer::writer::Loop' <<<"$top"; then echo sqlite-writer
    elif grep -q 'actix_http::h1::dispatcher' <<<"$top"; then echo http-worker
    elif grep -q 'mock_camber::engine' <<<"$top"; then echo engine
    else echo other; fi
}
n=0
for bin in "$@"; do
    n=$((n + 1)); out=$T/run$n; mkdir -p $out; rm -f $T/db* $T/m.out  # m.out: else the last run's address
    if [[ ${TOOL:-callgrind} == dhat ]]; then
        tool=(--tool=dhat --dhat-out-file=$out/dhat.out)
    else
        tool=(--tool=callgrind --separate-threads=yes --callgrind-out-file=$out/cg.%p)
    fi
    valgrind "${tool[@]}" \
        "$bin" --port 0 --db $T/db --stage-ms 0 --workers 2 --webhook-url $SINK/hook \
        --api-key bench-key --webhook-secret s > $T/m.out 2>$out/valgrind.err & P=$!
    A=$(address_of $T/m.out)
    # Under valgrind the start takes seconds, not milliseconds.
    for _ in $(seq 600); do curl -sf -o /dev/null $A/readyz && break; sleep 0.1; done
    wrk -t1 -c8 -d${DURATION:-20s} -s $T/submit.lua $A/jobs > /dev/null
    until [[ $(curl -sf $A/metrics | metric mock_camber_webhook_queue_depth) == 0 ]]; do sleep 0.2; done
    jobs_done=$(curl -sf $A/metrics | metric mock_camber_submits_total)
    kill -TERM $P; wait $P || true
    if [[ ${TOOL:-callgrind} == dhat ]]; then
        # "Total:     1,234 bytes in 56 blocks"
        awk -v n=$jobs_done -v bin="$bin" '/Total:/ {b=$3; k=$6; gsub(",","",b); gsub(",","",k);
            printf "%s (%d jobs): %.1f heap allocations and %.0f bytes allocated per job%s\n", bin, n, k/n, b/n,
                (k/n < 10 ? " (too few: built with mimalloc? see above)" : "")}' $out/valgrind.err
        continue
    fi
    printf '%s (%s jobs): instructions per job by thread:' "$bin" "$jobs_done"
    total=0; writer=""
    for f in $out/cg.*-*; do
        ir=$(awk '/^summary:/ {print $2}' $f)
        per=$((ir / jobs_done)); total=$((total + per))
        ((per > 1000)) || continue
        r=$(role $f); printf ' %s %d;' $r $per
        [[ $r == sqlite-writer ]] && writer=$f
    done
    printf ' total %d\n' $total
    if [[ -n $writer ]]; then
        echo "  the writer's costliest functions (inclusive, instructions per job):"
        callgrind_annotate --inclusive=yes $writer 2>/dev/null | grep -E '^ *[0-9,]+ ' \
            | grep -v -E 'PROGRAM TOTALS|clone\.S|pthread_create|thread_start|call_once|rust_begin_short' \
            | head -12 | awk -v n=$jobs_done '{g=$1; gsub(",","",g); $1=""; $2=""; sub(/ \[.*/, ""); printf "    %8.0f %s\n", g/n, $0}'
    fi
done
kill $SINKPID
