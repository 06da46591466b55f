#!/usr/bin/env bash
# The bounded outbox under a dead receiver: N webhooks (default 1,000,000)
# pending for a receiver that refuses connections, in a file database.
#   1. restart: time from exec to /readyz answering 200, and the RSS then;
#   2. all N due at once: the engine pages them in and tries each (every
#      attempt is refused), for SECS seconds: attempts/s and peak RSS;
#   3. while that backlog waits, submit load with wrk (new webhooks to the
#      dead receiver park behind it): submits/s and the peak RSS at the end.
# The backlog is written straight into SQLite by python3 (the mock's own
# schema, created by a first start), which takes ~20 s for a million.
#
# Usage: scripts/bench-outbox.sh
# Knobs (env): N=1000000 SECS=20 DURATION=10s CONNECTIONS=32 KEEP=1
# Needs: cargo, curl, wrk, python3.
set -euo pipefail

N=${N:-1000000}
SECS=${SECS:-20}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/bench.sh
source scripts/lib/bench.sh
for tool in cargo curl wrk python3; do
    command -v "$tool" >/dev/null || { echo "bench-outbox: needs $tool" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bench-outbox.XXXXXX)
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

echo "+ cargo build --release -p mock-camber --bins"
cargo build --release -p mock-camber --bins 2>&1 | tail -1
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=$TARGET/release/mock-camber
DB=$TMP/mock.db
DEAD=http://127.0.0.1:9/refused   # discard port: nothing listens, connect is refused

start() { # start LOG [extra flags]: runs the mock on $DB, sets PID and ADDR
    local log=$1; shift
    "$BIN" --port 0 --db "$DB" --api-key bench --stage-ms 0 \
        --retry-schedule 1h --webhook-url "$DEAD" "$@" >"$log.out" 2>"$log.err" &
    PID=$!
    ADDR=$(address_of "$log.out")
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

step "schema (a first start), then $N pending deliveries written by python3"
start "$TMP/first"
wait_ready "$ADDR"
stop
python3 - "$DB" "$N" <<'PY'
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=OFF")
now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
due = int(time.time() * 1000) + 3600_000   # parked: due in an hour
body = b'{"camber_job_id":"cmb_x","job_id":"j","status":"success","timestamp":"' + now.encode() + b'","result":{"status":"SUCCESS","job_id":"j","result":{"fields":{"total":"0.00"},"confidence":0.9}}}'
def jobs():
    for i in range(n):
        yield (f"cmb_bench{i:012x}", "t", "t…t", "bench", "completed", "{}", "{}", "{}", "{}", now, now, now, now)
def deliveries():
    for i in range(n):
        yield (f"dlv_bench{i:012x}", f"cmb_bench{i:012x}", "job.completed", "http://127.0.0.1:9/refused",
               "{}", body, "pending", 0, 1, 0, "[]", due, now)
t0 = time.time()
c.executemany("INSERT INTO jobs (id, tenant, tenant_mask, app, status, metadata, input, plan, webhook_headers, "
              "created_at, updated_at, started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", jobs())
c.executemany("INSERT INTO deliveries (id, job_id, event, url, headers, body, state, attempts, sends_remaining, "
              "failures, fault, next_attempt_ms, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", deliveries())
c.commit(); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()
print(f"wrote {n} jobs + {n} pending deliveries in {time.time() - t0:.1f} s")
PY
ls -l "$DB" | awk '{ printf "database file: %.0f MiB\n", $5 / 1048576 }'

step "1. restart with $N pending: exec -> /readyz 200"
t0=$(date +%s%N)
start "$TMP/restart"
until curl -sf -o /dev/null "$ADDR/readyz"; do sleep 0.005; done
t1=$(date +%s%N)
READY_MS=$(( (t1 - t0) / 1000000 ))
RSS_READY=$(rss_kib "$PID")
DEPTH=$(curl -s "$ADDR/metrics" | metric mock_camber_webhook_queue_depth)
echo "ready in $READY_MS ms; RSS $((RSS_READY / 1024)) MiB; queue depth $DEPTH"
stop

step "2. all $N due now, the receiver refusing every connection, for ${SECS}s"
python3 - "$DB" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE deliveries SET next_attempt_ms = 0 WHERE state = 'pending'"); c.commit(); c.close()
PY
start "$TMP/due"
wait_ready "$ADDR"
a0=$(curl -s "$ADDR/metrics" | metric 'mock_camber_webhook_attempts_total{outcome="transport_error"}')
for _ in $(seq "$SECS"); do sleep 1; done
a1=$(curl -s "$ADDR/metrics" | metric 'mock_camber_webhook_attempts_total{outcome="transport_error"}')
RSS_DUE=$(rss_kib "$PID")
ATTEMPTS=$((a1 - a0))
echo "$ATTEMPTS refused attempts in ${SECS}s ($((ATTEMPTS / SECS))/s); peak RSS $((RSS_DUE / 1024)) MiB"

step "3. submits with wrk -c$CONNECTIONS -d$DURATION while the backlog waits"
cat >"$TMP/submit.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
wrk.body = '{"app":"bench","input":{"filename":"a.pdf"}}'
$(wrk_done_lua)
LUA
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$TMP/submit.lua" "$ADDR/jobs" | tee "$TMP/wrk.txt" | grep -E "Requests/sec|wrk:|latency ms"
RSS_END=$(rss_kib "$PID")
DEPTH=$(curl -s "$ADDR/metrics" | metric mock_camber_webhook_queue_depth)
echo "peak RSS after the submits $((RSS_END / 1024)) MiB; queue depth $DEPTH"
stop

step "summary (scripts/bench-outbox.sh, N=$N)"
printf '| pending webhooks | restart to /readyz | RSS at ready | refused attempts/s (all due) | peak RSS (all due, %ss) | submits/s meanwhile | peak RSS at the end |\n' "$SECS"
printf '|---|---|---|---|---|---|---|\n'
printf '| %s | %s ms | %s MiB | %s | %s MiB | %s | %s MiB |\n' "$N" "$READY_MS" "$((RSS_READY / 1024))" \
    "$((ATTEMPTS / SECS))" "$((RSS_DUE / 1024))" "$(awk '/Requests\/sec/ { printf "%d", $2 }' "$TMP/wrk.txt")" "$((RSS_END / 1024))"
