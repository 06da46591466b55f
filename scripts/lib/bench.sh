# Helpers shared by the benchmark scripts (sourced, not run).
# shellcheck shell=bash

step() { printf '\n== %s\n' "$*"; }
# Prints the address a process wrote as its first line `listening on ...`.
address_of() {
    local out=$1 line="" deadline=$((SECONDS + 20))
    until [[ $line == "listening on "* ]]; do
        ((SECONDS < deadline)) || { echo "no 'listening on' in $out" >&2; return 1; }
        read -r line 2>/dev/null <"$out" || true
    done
    echo "${line#listening on }"
}
wait_ready() {
    local deadline=$((SECONDS + 20))
    until curl -sf -o /dev/null "$1/readyz"; do
        ((SECONDS < deadline)) || { echo "$1/readyz never answered 200" >&2; return 1; }
        sleep 0.05
    done
}
metric() { # metric NAME{labels} from a /metrics text on stdin
    awk -v m="$1" '$1 == m { print $2 }'
}
rss_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
# "write_bytes syscw" of a process: bytes it sent to storage, write syscalls.
proc_io() { awk '$1 == "write_bytes:" { b = $2 } $1 == "syscw:" { w = $2 } END { print b, w }' "/proc/$1/io"; }
# Per-thread CPU ticks: "tid name ticks" for every thread of a process, in
# one awk (a snapshot taken right after wrk must not cost a fork per thread).
# Fields after the ")" that ends comm: utime is 14th, stime 15th overall.
thread_ticks() {
    awk '{ l = $0; p = 0; while ((i = index(substr(l, p + 1), ")")) > 0) p += i
           o = index(l, "("); name = substr(l, o + 1, p - o - 1); gsub(/ /, "_", name)
           split(substr(l, p + 2), f, " "); print $1, name, f[12] + f[13] }' /proc/"$1"/task/*/stat 2>/dev/null
}
# The Lua `done` hook every wrk run uses: request and error counts, then
# latency percentiles in the one-line form the scripts grep for.
# The benches' submit for wrk (POST /jobs, one small job), on stdout.
submit_lua() { # submit_lua [API_KEY] (default bench-key)
    cat <<LUA
wrk.method = "POST"
wrk.body = '{"app":"rythmiq-worker","input":{"filename":"bench.pdf"},"metadata":{"job_id":"bench-1"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${1:-bench-key}"
LUA
}
wrk_done_lua() {
    cat <<'LUA'
done = function(summary, latency, requests)
  local s = summary
  io.write(string.format("wrk: %d requests, %d non-2xx, %d socket errors (connect %d, read %d, write %d, timeout %d)\n",
    s.requests, s.errors.status, s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout,
    s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout))
  io.write(string.format("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
LUA
}
# µs of CPU per job for each thread name between two thread_ticks files,
# one line: "total T µs/job: name A, name B (2 threads) …", busiest first;
# a thread born in between (tokio's blocking pool) counts from zero.
# (The ternary is parenthesised: unwrapped, mawk reads `> 1 ? ...` as a
# redirection and writes files named " (N threads)" into the current dir.)
cpu_per_job() { # cpu_per_job TICKS_BEFORE TICKS_AFTER JOBS
    awk -v hz="$(getconf CLK_TCK)" -v jobs="$3" 'FNR == NR { t0[$1] = $3; next }
        { d = $3 - t0[$1]; if (d > 0) { by[$2] += d; n[$2]++; all += d } }
        END {
            us = 1e6 / hz / jobs
            printf "total %.0f µs/job:", all * us
            while (1) { best = ""; for (k in by) if (best == "" || by[k] > by[best]) best = k
                if (best == "") break
                printf " %s %.0f%s;", best, by[best] * us, (n[best] > 1 ? " (" n[best] " threads)" : "")
                delete by[best] }
        }' "$1" "$2"
}
# The directory holding the release binaries. With TARGET set (a cargo
# target directory built elsewhere, e.g. TARGET=/work/main/target) nothing is
# built and $TARGET/release is used as it is; otherwise `cargo build
# --release ARGS...` runs here first. Prints the directory on stdout, the
# build's last line on stderr.
release_dir() {
    if [[ -n ${TARGET:-} ]]; then
        [[ -d $TARGET/release ]] || { echo "TARGET=$TARGET has no release/ directory" >&2; return 1; }
        echo "using prebuilt binaries in $TARGET/release (TARGET set; nothing built)" >&2
        echo "$TARGET/release"
        return
    fi
    echo "+ cargo build --release $*" >&2
    local log
    log=$(mktemp)
    if ! cargo build --release "$@" >"$log" 2>&1; then
        tail -20 "$log" >&2
        rm -f "$log"
        return 1
    fi
    tail -1 "$log" >&2
    rm -f "$log"
    echo "$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release"
}
# This disk's fdatasync latency for a 4 KiB append in directory $1: the
# floor of every durable commit (python3; 300 samples).
fsync_probe() {
    python3 - "$1" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT)
ts = []
for _ in range(300):
    os.write(fd, b"x" * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    ts.append((time.perf_counter() - t) * 1e3)
os.close(fd)
os.unlink(path)
ts.sort()
print(f"p50 {ts[150]:.2f} ms, p90 {ts[270]:.2f} ms, p99 {ts[297]:.2f} ms")
PY
}
