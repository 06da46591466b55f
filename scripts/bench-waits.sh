#!/usr/bin/env bash
# What parked long-poll waits cost: opens WAITERS connections to a release
# mock-camber, each parked on `GET /_mock/requests?...&wait_ms=60000`, then
#   1. threads of the mock before and with them parked,
#   2. CPU the mock uses over IDLE_SECS while nothing changes (must be ~0),
#   3. peak RSS with them parked,
#   4. how long one change (a POST /jobs the waits match) takes to answer
#      all of them, and that every one answered 200,
#   5. submits/s (wrk) with no wait parked, then with WAITERS waits parked
#      that the submits cannot satisfy (half `GET /jobs/{id}?wait_for=
#      completed` on held jobs, half admin lists of another app): a change
#      wakes only the waits it can satisfy, so the two should be close,
# and prints each figure with the command behind it.
#
# Usage: scripts/bench-waits.sh      Knobs: WAITERS=1000 IDLE_SECS=10 DURATION=5s
# Needs: cargo, curl, wrk, python3 (stdlib). Loopback only; stops by itself.
set -euo pipefail

WAITERS=${WAITERS:-1000}
IDLE_SECS=${IDLE_SECS:-10}
DURATION=${DURATION:-5s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/scripts/lib/bench.sh"

TMP=$(mktemp -d /tmp/bench-waits.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

step "build (release)"
cargo build --release -p mock-camber --bins 2>&1 | tail -1
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=$TARGET/release/mock-camber
ulimit -n 65536 2>/dev/null || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

"$BIN" --port 0 --db :memory: --stage-ms 0 >"$TMP/mock.out" 2>"$TMP/mock.err" &
PID=$!
PIDS+=("$PID")
MOCK=$(address_of "$TMP/mock.out")
wait_ready "$MOCK"
echo "+ $BIN --port 0 --db :memory: --stage-ms 0   (pid $PID, $MOCK)"
THREADS0=$(ls /proc/"$PID"/task | wc -l)

python3 - "$MOCK" "$WAITERS" "$IDLE_SECS" "$PID" "$THREADS0" <<'PY'
import json, os, socket, sys, time, urllib.request

base, n, idle, pid, threads0 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
host, port = base.removeprefix("http://").split(":")
hz = os.sysconf("SC_CLK_TCK")

def ticks():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def waiting():
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    return int(next(l.split()[1] for l in text.splitlines() if l.startswith("mock_camber_waiting_requests ")))

path = "/_mock/requests?method=POST&path=/jobs&wait_ms=60000"
socks = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    socks.append(s)
deadline = time.time() + 30
while waiting() < n:
    if time.time() > deadline:
        sys.exit(f"only {waiting()} of {n} waits parked")
    time.sleep(0.05)
threads = len(os.listdir(f"/proc/{pid}/task"))
print(f"{n} waits parked (mock_camber_waiting_requests = {waiting()}); mock threads: {threads0} before, {threads} with them parked")

t0, c0 = time.time(), ticks()
time.sleep(idle)  # measuring idle CPU: nothing to synchronise with
c1, t1 = ticks(), time.time()
print(f"CPU of the mock over {t1 - t0:.1f} s with {n} parked waits and nothing changing: "
      f"{100 * (c1 - c0) / hz / (t1 - t0):.2f} % of one core ({c1 - c0} ticks of 1/{hz} s, /proc/PID/stat utime+stime)")
rss = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM"))
print(f"peak RSS with them parked: {int(rss) / 1024:.1f} MiB (VmHWM)")

req = urllib.request.Request(f"{base}/jobs", data=b'{"app":"w","input":{}}', method="POST",
                             headers={"Content-Type": "application/json", "Authorization": "Bearer k"})
t0 = time.perf_counter()
urllib.request.urlopen(req).read()
ok, last = 0, 0.0
for s in socks:
    s.settimeout(30)
    head = s.recv(64)
    last = time.perf_counter() - t0
    if head.startswith(b"HTTP/1.1 200"):
        ok += 1
    s.close()
print(f"one matching POST /jobs answered {ok} of {n} waits with 200; the last answer read "
      f"{last * 1000:.1f} ms after the POST was sent (includes reading {n} sockets in turn)")
if ok != n:
    sys.exit(1)
PY

step "submits/s with 0 and with $WAITERS parked waits they cannot satisfy"
"$BIN" --port 0 --db :memory: --stage-ms 0 >"$TMP/mock2.out" 2>"$TMP/mock2.err" &
PID2=$!
PIDS+=("$PID2")
MOCK2=$(address_of "$TMP/mock2.out")
wait_ready "$MOCK2"
echo "+ $BIN --port 0 --db :memory: --stage-ms 0   (pid $PID2, $MOCK2)"
cat >"$TMP/submit.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"app":"bench","input":{}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer k"
LUA
echo "+ wrk -t2 -c32 -d$DURATION -s submit.lua $MOCK2/jobs   (no wait parked)"
NONE=$(wrk -t2 -c32 -d"$DURATION" -s "$TMP/submit.lua" "$MOCK2/jobs" | awk '/Requests\/sec/ { print $2 }')
echo "submits/s with no wait parked: $NONE"

python3 - "$MOCK2" "$WAITERS" "$TMP/parked" <<'PY' &
import json, socket, sys, time, urllib.request
base, n, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = base.removeprefix("http://").split(":")
def post(body):
    req = urllib.request.Request(f"{base}/jobs", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer k"})
    return json.load(urllib.request.urlopen(req))
paths = []
for i in range(n):
    if i % 2 == 0:
        job = post({"app": "held", "input": {}, "metadata": {"mock": {"hold": True}}})
        paths.append(f"/jobs/{job['id']}?wait_for=completed&wait_ms=60000")
    else:
        paths.append("/_mock/jobs?app=nobody&wait_ms=60000")
socks = []
for p in paths:
    s = socket.create_connection((host, int(port)))
    s.sendall(f"GET {p} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer k\r\n\r\n".encode())
    socks.append(s)
open(flag, "w").close()
time.sleep(3600)  # holds the sockets until the script kills it
PY
PY_PID=$!
PIDS+=("$PY_PID")
deadline=$((SECONDS + 60))
until [[ -e $TMP/parked ]] && (( $(curl -s "$MOCK2/metrics" | metric mock_camber_waiting_requests) >= WAITERS )); do
    ((SECONDS < deadline)) || { echo "the waits never parked" >&2; exit 1; }
    sleep 0.1
done
W0=$(curl -s "$MOCK2/metrics" | metric mock_camber_wait_wakeups_total)
echo "+ wrk -t2 -c32 -d$DURATION -s submit.lua $MOCK2/jobs   ($WAITERS waits parked)"
SOME=$(wrk -t2 -c32 -d"$DURATION" -s "$TMP/submit.lua" "$MOCK2/jobs" | awk '/Requests\/sec/ { print $2 }')
W1=$(curl -s "$MOCK2/metrics" | metric mock_camber_wait_wakeups_total)
echo "submits/s with $WAITERS waits parked: $SOME ($(awk -v a="$SOME" -v b="$NONE" 'BEGIN { printf "%.0f", 100 * a / b }') % of none); waits woken meanwhile: $((W1 - W0)) (mock_camber_wait_wakeups_total); peak RSS $(( $(rss_kib "$PID2") / 1024 )) MiB"
