#!/usr/bin/env bash
# End-to-end benchmark of api in front of mock-camber on this machine:
#   1. one job at a time, at rest: POST /jobs, then poll GET /jobs/{id} until
#      `completed` (create -> completed latency, client side and from the
#      job's own event timestamps);
#   2. create load through api with wrk (throughput, latency percentiles);
#   3. completion: every created job must reach `completed` (api /metrics,
#      bounded wait), none failed, completions per second;
#   4. exactly one Camber submit per api job (mock metrics, and both job
#      lists paged and matched id for id);
#   5. CPU per thread of both daemons, disk written, peak RSS.
# Both daemons run on file databases (WAL, synchronous=FULL) and api writes
# its artifact files with fsync, so the cost of durability is in every figure.
#
# Usage: scripts/bench-api.sh
# Knobs (env): DURATION=10s CONNECTIONS=64 THREADS=2 SERIAL=50 DRAIN_SECS=120
#              VERIFY=1 (page both job lists; VERIFY=0 skips it)
#              DATA_DIR=<dir> (where the two databases and the artifact dir go;
#              default: a new dir under /tmp; DATA_DIR=/dev/shm puts them on
#              tmpfs, where fsync costs nothing, to compare)
#              ARTIFACT_ROOT=<dir> (where the artifact dir alone goes; default:
#              with the databases; ARTIFACT_ROOT=/dev/shm separates the cost of
#              the artifact fsyncs from the SQLite ones)
#              KEEP=1 (keep the temp dir with logs, databases and artifacts)
# Needs: cargo, curl, wrk, python3 (stdlib only), /usr/bin/time
# (apt-get install -y wrk time).
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SERIAL=${SERIAL:-50}
DRAIN_SECS=${DRAIN_SECS:-120}
VERIFY=${VERIFY:-1}
KEY=bench-key
SECRET=bench-secret

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in cargo curl wrk python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-api: needs $tool (apt-get install -y wrk time)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/bench-api.XXXXXX)
DATA=$TMP
if [[ -n ${DATA_DIR:-} ]]; then DATA=$(mktemp -d "$DATA_DIR/bench-api.XXXXXX"); fi
ARTS=$DATA/artifacts
if [[ -n ${ARTIFACT_ROOT:-} ]]; then ARTS=$(mktemp -d "$ARTIFACT_ROOT/bench-api-artifacts.XXXXXX"); fi
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then
        echo "kept $TMP${DATA_DIR:+ and $DATA}${ARTIFACT_ROOT:+ and $ARTS}"
    else
        rm -rf "$TMP"
        [[ $DATA == "$TMP" ]] || rm -rf "$DATA"
        [[ $ARTS == "$DATA/artifacts" ]] || rm -rf "$ARTS"
    fi
}
trap cleanup EXIT INT TERM

source "$ROOT/scripts/lib/bench.sh"
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8, $5 + $6, $6 }' /proc/stat; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
# CPU per thread name between two thread_ticks files over $3 seconds; a
# thread born in between (the blocking pool) counts from zero.
thread_cpu() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" -v s="$3" 'FNR == NR { t0[$1] = $3; next }
        { d = $3 - t0[$1]; if (d > 0) { by[$2] += d; n[$2]++ } }
        END { for (k in by) printf "  %-28s %3d thread(s) %6.1f %%\n", k, n[k], 100 * by[k] / hz / s }' "$1" "$2" |
        sort -k4 -rn
}

step "build (release)"
echo "+ cargo build --release -p mock-camber -p api --bins"
cargo build --release -p mock-camber -p api --bins 2>&1 | tail -1
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
MOCK_BIN=$TARGET/release/mock-camber
API_BIN=$TARGET/release/api
CORES=$(nproc)
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "machine: $CORES cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "databases: $DATA on $(df --output=fstype "$DATA" | tail -1); artifacts: $ARTS on $(df --output=fstype "$(dirname "$ARTS")" | tail -1)"

step "start both daemons"
MOCK_CMD=("$MOCK_BIN" --port 0 --db "$DATA/mock.db" --stage-ms 0 --webhook-secret "$SECRET" --api-key "$KEY")
"${MOCK_CMD[@]}" >"$TMP/mock.out" 2>"$TMP/mock.err" &
PIDS+=($!)
MOCK_PID=$!
MOCK=$(address_of "$TMP/mock.out")
API_CMD=("$API_BIN" --port 0 --camber-endpoint "$MOCK" --camber-api-key "$KEY" --webhook-secret "$SECRET"
    --db "$DATA/api.db" --artifact-dir "$ARTS")
"${API_CMD[@]}" >"$TMP/api.out" 2>"$TMP/api.err" &
PIDS+=($!)
API_PID=$!
API=$(address_of "$TMP/api.out")
wait_ready "$MOCK"
wait_ready "$API"
echo "+ ${MOCK_CMD[*]}   (pid $MOCK_PID, $MOCK)"
echo "+ ${API_CMD[*]}   (pid $API_PID, $API)"

BODY='{"portal_schema_name":"invoice","filename":"a.pdf","mime_type":"application/pdf","file_size_bytes":1000}'

cat >"$TMP/e2e.py" <<'PY'
"""Helpers of bench-api.sh (stdlib only).

serial API N BODY   one job at a time: POST /jobs, poll GET /jobs/{id} every
                    ~1 ms until completed; prints create and create->completed
                    percentiles, client side and from the job's event times.
verify API MOCK KEY SINCE  pages GET /jobs?status=... on api and GET /jobs on the
                    mock; checks one Camber job per api job, id for id.
"""
import http.client, json, sys, time, urllib.parse
from datetime import datetime

def conn(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)

def call(c, method, path, body=None, headers=None):
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    return r.status, data

def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]

def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

def line(name, ms):
    print(f"{name}: p50 {pct(ms, 50):.1f} ms  p90 {pct(ms, 90):.1f} ms  p99 {pct(ms, 99):.1f} ms"
          f"  min {min(ms):.1f}  max {max(ms):.1f}  (n={len(ms)})")

def serial(api, n, body):
    c = conn(api)
    create, done, server, polls = [], [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        st, data = call(c, "POST", "/jobs", body, {"Content-Type": "application/json"})
        t1 = time.perf_counter()
        if st != 201:
            sys.exit(f"POST /jobs answered {st}: {data[:200]!r}")
        job_id = json.loads(data)["job_id"]
        k = 0
        deadline = t0 + 30
        while True:
            st, data = call(c, "GET", f"/jobs/{job_id}")
            k += 1
            job = json.loads(data)
            if job["status"] in ("completed", "failed"):
                break
            if time.perf_counter() > deadline:
                sys.exit(f"job {job_id} still {job['status']} after 30 s")
            time.sleep(0.001)
        t2 = time.perf_counter()
        if job["status"] != "completed":
            sys.exit(f"job {job_id} ended {job['status']}: {job.get('error')}")
        ev = job["events"]
        server.append((ts(ev[-1]["at"]) - ts(ev[0]["at"])) * 1000)
        create.append((t1 - t0) * 1000)
        done.append((t2 - t0) * 1000)
        polls.append(k)
    line("POST /jobs answered (201)", create)
    line("create -> completed seen by the client (poll every ~1 ms)", done)
    line("create -> completed from the job's events (first `at` to last `at`)", server)
    print(f"polls per job: median {pct(polls, 50)}, max {max(polls)}; events of the last job: "
          + " ".join(f"{e['from']}->{e['to']}({e['source']})" for e in ev))

def pages(c, path, headers=None):
    cursor, out, n = None, [], 0
    while True:
        sep = "&" if "?" in path else "?"
        q = f"{path}{sep}limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        st, data = call(c, "GET", q, headers=headers)
        if st != 200:
            sys.exit(f"GET {q} answered {st}: {data[:200]!r}")
        page = json.loads(data)
        out.extend(page["jobs"])
        n += 1
        cursor = page.get("next")
        if not cursor:
            return out, n

def verify(api, mock, key, since):
    t0 = time.perf_counter()
    c = conn(api)
    counts, completed = {}, None
    for status in ("pending", "processing", "completed", "failed"):
        jobs, n = pages(c, f"/jobs?status={status}")
        counts[status] = len(jobs)
        if status == "completed":
            completed = jobs
            npages = n
    ids = [j["job_id"] for j in completed]
    print(f"api GET /jobs?status=S&limit=500, all pages: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f" ({npages} pages of completed)")
    cams = [j["camber_job_id"] for j in completed]
    bad = [j["job_id"] for j in completed if not j["camber_job_id"] or len(j["artifacts"]) < 2]
    m = conn(mock)
    mjobs, mn = pages(m, "/jobs", {"Authorization": f"Bearer {key}"})
    by_ours = {}
    for j in mjobs:
        by_ours.setdefault((j.get("metadata") or {}).get("job_id"), []).append(j["id"])
    dup = {k: v for k, v in by_ours.items() if len(v) > 1}
    missing = set(ids) - set(by_ours)
    extra = set(by_ours) - set(ids)
    mismatch = sum(1 for j in completed if by_ours.get(j["job_id"], [None])[0] != j["camber_job_id"])
    mstat = {}
    for j in mjobs:
        mstat[j["status"]] = mstat.get(j["status"], 0) + 1
    print(f"mock GET /jobs?limit=500, all pages ({mn}): {len(mjobs)} Camber jobs {mstat}; "
          f"metadata.job_id: {len(by_ours)} distinct, {len(dup)} with more than one Camber job, "
          f"{len(missing)} api jobs with none, {len(extra)} not in api's completed list, "
          f"{mismatch} whose camber_job_id differs")
    print(f"api jobs without camber_job_id or without result.json+manifest.json: {len(bad)}; "
          f"distinct ids {len(set(ids))}, distinct camber ids {len(set(cams))}")
    lat = [(ts(j["events"][-1]["at"]) - ts(j["events"][0]["at"])) * 1000
           for j in completed if ts(j["created_at"]) >= since]
    if lat:
        line(f"create -> completed under the load, from each job's events ({len(lat)} jobs created since the start of wrk)", lat)
    print(f"(listing took {time.perf_counter() - t0:.1f} s)")
    ok = (counts["failed"] == 0 and counts["pending"] == 0 and counts["processing"] == 0 and not dup
          and not missing and not extra and mismatch == 0 and not bad and len(set(cams)) == len(ids))
    print("VERIFY " + ("OK" if ok else "FAILED"))
    return ok

if __name__ == "__main__":
    if sys.argv[1] == "serial":
        serial(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(0 if verify(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])) else 1)
PY

# ------------------------------------------------------------------ at rest
step "one job at a time, at rest: create -> completed ($SERIAL jobs in sequence)"
echo "+ python3 e2e.py serial $API $SERIAL '$BODY'   # POST /jobs, then GET /jobs/{id} every ~1 ms until completed"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 300 python3 "$TMP/e2e.py" serial "$API" "$SERIAL" "$BODY"

# ------------------------------------------------------------------ load
step "create load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION POST /jobs on api"
cat >"$TMP/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"

LUA
wrk_done_lua >>"$TMP/create.lua"

A0=$(curl -sf "$API/metrics")
M0=$(curl -sf "$MOCK/metrics")
CREATED0=$(metric api_jobs_created_total <<<"$A0")
COMPLETED0=$(metric 'api_jobs{status="completed"}' <<<"$A0")
SUBMITS0=$(metric mock_camber_submits_total <<<"$M0")
thread_ticks "$API_PID" >"$TMP/api.ticks0"
thread_ticks "$MOCK_PID" >"$TMP/mock.ticks0"
read -r CPU_ALL0 CPU_IDLE0 CPU_IOW0 < <(cpu_jiffies)
read -r API_IO_B0 API_IO_W0 < <(proc_io "$API_PID")
read -r MOCK_IO_B0 MOCK_IO_W0 < <(proc_io "$MOCK_PID")
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# Completed jobs once a second, from the start of wrk until all are done.
(
    while :; do
        printf '%s %s\n' "$(date +%s%N)" "$(curl -sf "$API/metrics" | metric 'api_jobs{status="completed"}')"
        sleep 1
    done
) >"$TMP/timeline" 2>/dev/null &
PIDS+=($!)
SAMPLER_PID=$!

T0=$(date +%s%N)
echo "+ wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s create.lua $API/jobs   # body $BODY"
/usr/bin/time -f "%U %S" -o "$TMP/wrk.time" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/create.lua" "$API/jobs" >"$TMP/wrk.out"
T1=$(date +%s%N)
thread_ticks "$API_PID" >"$TMP/api.ticks1"
thread_ticks "$MOCK_PID" >"$TMP/mock.ticks1"
read -r CPU_ALL1 CPU_IDLE1 CPU_IOW1 < <(cpu_jiffies)
read -r API_IO_B1 API_IO_W1 < <(proc_io "$API_PID")
read -r MOCK_IO_B1 MOCK_IO_W1 < <(proc_io "$MOCK_PID")
A1=$(curl -sf "$API/metrics")
RUN_S=$(secs "$T0" "$T1")
CREATED=$(($(metric api_jobs_created_total <<<"$A1") - CREATED0))
COMPLETED_AT_END=$(($(metric 'api_jobs{status="completed"}' <<<"$A1") - COMPLETED0))

# Completion, timed first (the report below takes time): poll until every
# job created so far is completed and none is open, at most DRAIN_SECS.
deadline=$((SECONDS + DRAIN_SECS))
A=$A1
while :; do
    done_n=$(($(metric 'api_jobs{status="completed"}' <<<"$A") - COMPLETED0))
    failed=$(metric 'api_jobs{status="failed"}' <<<"$A")
    open=$(($(metric 'api_jobs{status="pending"}' <<<"$A") + $(metric 'api_jobs{status="processing"}' <<<"$A")))
    T2=$(date +%s%N)
    ((done_n >= CREATED && open == 0)) && { DRAINED=1; break; }
    ((SECONDS < deadline)) || { DRAINED=0; break; }
    sleep 0.05
    A=$(curl -sf "$API/metrics")
done
kill "$SAMPLER_PID" 2>/dev/null || true
cat "$TMP/wrk.out"
echo
echo "jobs created (api_jobs_created_total): $CREATED in ${RUN_S}s = $(rate "$CREATED" "$RUN_S") jobs/s"
echo "completed while wrk ran (api_jobs{status=\"completed\"}): $COMPLETED_AT_END = $(rate "$COMPLETED_AT_END" "$RUN_S") jobs/s;" \
    "at the end: pending $(metric 'api_jobs{status="pending"}' <<<"$A1"), processing $(metric 'api_jobs{status="processing"}' <<<"$A1")"

step "CPU per thread during the run (100 % = one core; $CORES cores total, shared with wrk)"
echo "api:"
thread_cpu "$TMP/api.ticks0" "$TMP/api.ticks1" "$RUN_S"
echo "mock-camber:"
thread_cpu "$TMP/mock.ticks0" "$TMP/mock.ticks1" "$RUN_S"
read -r WRK_U WRK_S <"$TMP/wrk.time"
API_CPU=$(awk -v a="$(awk '{ t += $3 } END { print t }' "$TMP/api.ticks0")" -v b="$(awk '{ t += $3 } END { print t }' "$TMP/api.ticks1")" -v hz="$(getconf CLK_TCK)" -v s="$RUN_S" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / s }')
MOCK_CPU=$(awk -v a="$(awk '{ t += $3 } END { print t }' "$TMP/mock.ticks0")" -v b="$(awk '{ t += $3 } END { print t }' "$TMP/mock.ticks1")" -v hz="$(getconf CLK_TCK)" -v s="$RUN_S" 'BEGIN { printf "%.0f", 100 * (b - a) / hz / s }')
echo "totals: api $API_CPU %, mock-camber $MOCK_CPU %, wrk $(awk -v u="$WRK_U" -v k="$WRK_S" -v s="$RUN_S" 'BEGIN { printf "%.0f", 100 * (u + k) / s }') % (of $((100 * CORES)) %)"
echo "whole machine: $(awk -v a="$((CPU_ALL1 - CPU_ALL0))" -v i="$((CPU_IDLE1 - CPU_IDLE0))" -v w="$((CPU_IOW1 - CPU_IOW0))" \
    'BEGIN { printf "%.0f %% busy, %.0f %% iowait", 100 * (a - i) / a, 100 * w / a }') of $CORES cores"
echo "api wrote $(awk -v b="$((API_IO_B1 - API_IO_B0))" -v w="$((API_IO_W1 - API_IO_W0))" -v n="$CREATED" 'BEGIN {
    printf "%.0f MB to storage (%.1f KB per job), %.1f write syscalls per job", b / 1e6, b / n / 1e3, w / n }');" \
    "mock-camber $(awk -v b="$((MOCK_IO_B1 - MOCK_IO_B0))" -v w="$((MOCK_IO_W1 - MOCK_IO_W0))" -v n="$CREATED" 'BEGIN {
    printf "%.0f MB (%.1f KB per job), %.1f per job", b / 1e6, b / n / 1e3, w / n }') (/proc/PID/io; writes to sockets included in syscalls)"

# ------------------------------------------------------------------ completion
step "completion: every created job completed? (waited at most ${DRAIN_SECS}s, api /metrics polled every 50 ms)"
ALL_S=$(secs "$T0" "$T2")
if ((DRAINED)); then
    echo "all $done_n of $CREATED jobs completed $(secs "$T1" "$T2")s after wrk stopped, ${ALL_S}s after it started"
else
    echo "NOT DONE after ${DRAIN_SECS}s: $done_n of $CREATED completed, $open pending/processing, $failed failed"
fi
echo "end-to-end completion rate: $(rate "$done_n" "$ALL_S") jobs/s (jobs completed / time from the start of wrk to the last completion)"
if ((done_n > COMPLETED_AT_END)) && [[ $(secs "$T1" "$T2") != 0.00 ]]; then
    echo "after wrk stopped, the backlog of $((done_n - COMPLETED_AT_END)) completed at $(rate "$((done_n - COMPLETED_AT_END))" "$(secs "$T1" "$T2")") jobs/s"
fi
echo "completions per second (api_jobs{status=\"completed\"} sampled ~1/s):"
awk -v c0="$COMPLETED0" 'NF == 2 && $2 != "" { if (p) printf "  %+6.1fs %7d completed  %6.0f/s\n", ($1 - t0) / 1e9, $2 - c0, ($2 - pc) / (($1 - pt) / 1e9); else t0 = $1; p = 1; pt = $1; pc = $2 }' \
    "$TMP/timeline" | head -40
echo "failed jobs: $failed (api_jobs{status=\"failed\"})"
A=$(curl -sf "$API/metrics")
M=$(curl -sf "$MOCK/metrics")
echo "api /metrics: $(grep -E '^api_(jobs|camber_submits_total|webhooks_total|reconcile)' <<<"$A" | grep -v ' 0$' | tr '\n' ' ')"
echo "mock /metrics: $(grep -E '^mock_camber_(submits|jobs_total|webhook_attempts_total|webhook_queue_depth|deliveries_dead|active)' <<<"$M" | grep -v ' 0$' | tr '\n' ' ')"
SUBMITS=$(($(metric mock_camber_submits_total <<<"$M") - SUBMITS0))
TOTAL_API=$(metric api_jobs_created_total <<<"$A")
TOTAL_MOCK=$(metric mock_camber_submits_total <<<"$M")
echo "Camber submits during the load: $SUBMITS for $CREATED api jobs; in all: mock_camber_submits_total $TOTAL_MOCK," \
    "api_jobs_created_total $TOTAL_API -> $([[ $TOTAL_MOCK == "$TOTAL_API" ]] && echo 'one submit per job' || echo 'MISMATCH')"
echo "webhook latency seen by the mock (mock_camber_webhook_latency_seconds, api's answer time): mean $(awk '
    $1 == "mock_camber_webhook_latency_seconds_sum" { s = $2 } $1 == "mock_camber_webhook_latency_seconds_count" { n = $2 }
    END { if (n > 0) printf "%.2f ms", 1000 * s / n; else print "-" }' <<<"$M")"
echo "peak RSS (VmHWM): api $(rss_kib "$API_PID") KiB, mock-camber $(rss_kib "$MOCK_PID") KiB"
echo "on disk: api db $(du -ch "$DATA"/api.db* | tail -1 | cut -f1), artifacts $(du -sh "$ARTS" | cut -f1)" \
    "($(find "$ARTS" -type f | wc -l) files), mock db $(du -ch "$DATA"/mock.db* | tail -1 | cut -f1)"

if [[ $VERIFY == 1 ]]; then
    step "cross-check: both job lists, paged, matched id for id"
    SINCE=$(secs 0 "$T0")
    echo "+ python3 e2e.py verify $API $MOCK $KEY $SINCE"
    timeout 600 python3 "$TMP/e2e.py" verify "$API" "$MOCK" "$KEY" "$SINCE"
fi

# The figures above mean nothing if jobs were lost, failed or submitted twice.
((DRAINED)) || { echo "bench-api: FAILED, not every job completed" >&2; exit 1; }
[[ $failed == 0 ]] || { echo "bench-api: FAILED, $failed job(s) failed" >&2; exit 1; }
[[ $TOTAL_MOCK == "$TOTAL_API" ]] || { echo "bench-api: FAILED, $TOTAL_MOCK Camber submits for $TOTAL_API api jobs" >&2; exit 1; }
