#!/usr/bin/env bash
# Retention under a steady load: mock-camber on a file database with
# --retention (default 30s), wrk submitting at a steady concurrency for
# MINUTES minutes (default 10) with every webhook delivered to a fast sink;
# the database size (main file + WAL) and the row counts are sampled every
# minute. With retention the file stops growing once the window is full.
#
# Usage: scripts/bench-retention.sh
# Knobs (env): MINUTES=10 RETENTION=30s CONNECTIONS=4 KEEP=1
# Needs: cargo, curl, wrk, python3.
set -euo pipefail

MINUTES=${MINUTES:-10}
RETENTION=${RETENTION:-30s}
CONNECTIONS=${CONNECTIONS:-4}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh
for tool in cargo curl wrk python3; do
    command -v "$tool" >/dev/null || { echo "bench-retention: needs $tool" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bench-retention.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

echo "+ cargo build --release -p mock-camber --bins --examples"
cargo build --release -p mock-camber --bins --examples 2>&1 | tail -1
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

"$TARGET/release/examples/sink" --port 0 >"$TMP/sink.out" 2>"$TMP/sink.err" &
PIDS+=($!)
SINK=$(address_of "$TMP/sink.out")
DB=$TMP/mock.db
"$TARGET/release/mock-camber" --port 0 --db "$DB" --api-key bench --stage-ms 0 \
    --retention "$RETENTION" --webhook-url "$SINK/hook" >"$TMP/mock.out" 2>"$TMP/mock.err" &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
ADDR=$(address_of "$TMP/mock.out")
wait_ready "$ADDR"

cat >"$TMP/submit.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
wrk.body = '{"app":"bench","input":{"filename":"a.pdf"}}'
LUA
step "load: wrk -t1 -c$CONNECTIONS for ${MINUTES} min; mock-camber --retention $RETENTION (file db, webhooks to a sink)"
wrk -t1 -c"$CONNECTIONS" -d"${MINUTES}m" --timeout 10s -s "$TMP/submit.lua" "$ADDR/jobs" >"$TMP/wrk.txt" 2>&1 &
WRK=$!
PIDS+=("$WRK")

size_mib() { du -cm "$DB" "$DB-wal" 2>/dev/null | awk 'END { print $1 }'; }
rows() {
    python3 - "$DB" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(*(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("jobs", "deliveries", "attempts")))
PY
}
printf '| minute | submits so far | db + WAL (MiB) | jobs | deliveries | attempts | jobs removed |\n|---|---|---|---|---|---|---|\n' | tee "$TMP/table.md"
for m in $(seq 1 "$MINUTES"); do
    for _ in $(seq 60); do sleep 1; done
    metrics=$(curl -s "$ADDR/metrics")
    submits=$(metric mock_camber_submits_total <<<"$metrics")
    removed=$(metric 'mock_camber_retention_removed_total{kind="jobs"}' <<<"$metrics")
    read -r jobs deliveries attempts < <(rows)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$submits" "$(size_mib)" "$jobs" "$deliveries" "$attempts" "$removed" | tee -a "$TMP/table.md"
done
wait "$WRK" || true
grep -E "Requests/sec" "$TMP/wrk.txt" || true
echo "peak RSS of mock-camber: $(( $(rss_kib "$MOCK_PID") / 1024 )) MiB"
echo "reproduce: MINUTES=$MINUTES RETENTION=$RETENTION CONNECTIONS=$CONNECTIONS scripts/bench-retention.sh"
