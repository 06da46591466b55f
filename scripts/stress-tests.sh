#!/usr/bin/env bash
# Runs the api and mock-camber integration suites RUNS times in a row, as
# the README's test command runs them (`cargo test`), while BUSY busy loops
# load the CPUs, and counts the runs that failed. For hunting flaky tests:
# a suite that passes once can still fail on a loaded CI machine.
#
# Usage: scripts/stress-tests.sh       Knobs: RUNS=30 BUSY=2
# Prints one line per run and a summary; exits non-zero if any run failed.
# Logs of failed runs are kept in $TMPDIR/stress-tests.*.
set -euo pipefail
RUNS=${RUNS:-30}
BUSY=${BUSY:-2}
cd "$(dirname "$0")/.."
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/stress-tests.XXXXXX")
BUSY_PIDS=()
cleanup() { for p in "${BUSY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

cargo build --workspace --bins --tests -q
for _ in $(seq "$BUSY"); do (while :; do :; done) & BUSY_PIDS+=($!); done
echo "load: $BUSY busy loops on $(nproc) cores; logs of failed runs in $LOGS"

failed=0
start=$SECONDS
for i in $(seq "$RUNS"); do
  t0=$SECONDS
  status=ok
  for suite in api mock-camber; do
    if ! cargo test -q -p "$suite" --test api >"$LOGS/run-$i-$suite.log" 2>&1; then
      status="FAILED ($suite: $(grep -E '^    [a-z_:]+$|panicked' "$LOGS/run-$i-$suite.log" | head -3 | tr -s ' \n' ' '))"
    else
      rm -f "$LOGS/run-$i-$suite.log"
    fi
  done
  [[ $status == ok ]] || failed=$((failed + 1))
  echo "run $i/$RUNS: $status ($((SECONDS - t0)) s)"
done
echo "$((RUNS - failed)) of $RUNS runs passed, $failed failed, in $((SECONDS - start)) s (command: RUNS=$RUNS BUSY=$BUSY scripts/stress-tests.sh)"
[[ $failed == 0 ]]
