#!/usr/bin/env bash
# A/B of mock-camber binaries: submits/s (file db, webhooks to a 204 sink) and
# µs of CPU per job by thread, 8 s of wrk per binary, the binaries in turn,
# two rounds. Usage: scripts/bench-ab.sh OLD_BIN NEW_BIN... (needs wrk and
# `cargo build --release -p mock-camber --examples` for the sink).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/bench.sh"
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
submit_lua > $T/submit.lua
"$ROOT/target/release/examples/sink" --port 0 > $T/sink.out 2>/dev/null & SINKPID=$!
SINK=$(address_of $T/sink.out)
for round in 1 2; do
for bin in "$@"; do
  rm -f $T/db*
  rm -f $T/m.out  # else address_of may read the last run's address before the shell truncates it
  $bin --port 0 --db $T/db --stage-ms 0 --workers 2 --webhook-url $SINK/hook --api-key bench-key --webhook-secret s > $T/m.out 2>/dev/null & P=$!
  A=$(address_of $T/m.out); wait_ready $A
  thread_ticks $P > $T/t0
  R=$(wrk -t2 -c64 -d8s -s $T/submit.lua $A/jobs | awk '/^Requests\/sec:/ {printf "%.0f", $2}')
  while [[ $(curl -sf $A/metrics | metric mock_camber_webhook_queue_depth) != 0 ]]; do sleep 0.2; done
  N=$(curl -sf $A/metrics | metric mock_camber_submits_total)
  thread_ticks $P > $T/t1
  echo "round $round $(basename $bin): $R submits/s; $(cpu_per_job $T/t0 $T/t1 $N)"
  kill $P; wait $P 2>/dev/null || true
done; done
kill $SINKPID
