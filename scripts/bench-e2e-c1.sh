#!/usr/bin/env bash
# End to end, ours against the seeds' in-process design, in one run on this
# machine, with ONE driver (api/examples/drive.rs: POST /jobs, then GET
# /jobs/{id} until `completed`):
#   (a) ours: api + mock-camber as two daemons (--stage-ms 0, file dbs,
#       started as scripts/bench.sh section 3 starts them);
#   (b) seeds: scripts/bench/seeds/ (FastAPI + uvicorn, aiosqlite on a file
#       db, an asyncio task per job, an HMAC-signed webhook to itself).
# At c=1 (JOBS_1 jobs, polls every 200 µs) and c=64 (JOBS_64 jobs, polls
# backing off to 10 ms), each on new processes and new databases, after
# WARMUP unmeasured jobs; at each concurrency ROUNDS rounds, ours first in
# odd rounds and seeds first in even ones (the targets use the medians, so
# ROUNDS=3 evens out a machine whose load drifts).
# Prints one table: p50/p99 create -> completed (client side and from the
# job's own timestamps), jobs/s, CPU per job, each with the command that
# reproduces it; then issue 24's two end-to-end targets: ours/seeds at c=1
# p50 (<= 0.75) and ours at c=64 (>= 2,500 jobs/s).
#
# Knobs (env): JOBS_1=1000 JOBS_64=5000 WARMUP=20 ROUNDS=1 KEEP=1 (keep the temp dir)
#              TARGET=<cargo target dir> use its release binaries, build nothing
#              (default: cargo build --release -p api -p mock-camber --bins --examples)
# Needs: cargo (unless TARGET), curl, python3 (3.10+, with venv). Everything
# runs on 127.0.0.1 and stops by itself. Not CI pass/fail: the figures move
# with the machine's load, printed with them.
set -euo pipefail

JOBS_1=${JOBS_1:-1000}
JOBS_64=${JOBS_64:-5000}
WARMUP=${WARMUP:-20}
ROUNDS=${ROUNDS:-1}
KEY=bench-key

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "bench-e2e-c1: needs $tool" >&2; exit 1; }
done
source "$ROOT/scripts/lib/bench.sh"

TMP=$(mktemp -d /tmp/bench-e2e.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM
# A fresh secret each run, never printed: commands below show "$SECRET".
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

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
ROWS=()
row() { ROWS+=("| $1 | ${2//|/\\|} | $3 |"); printf '   %-40s %s\n' "$1" "$2"; }
# field KEY of the driver's `summary` line in file $2
field() { awk -v k="$1" '/^summary/ { for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$2"; }
# utime + stime of a whole process, threads that already ended included
# (fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends comm).
proc_ticks() { local rest; rest=$(cat "/proc/$1/stat"); rest=${rest##*) }; read -ra f <<<"$rest"; echo $((f[11] + f[12])); }

step "build (release)"
REL=$(release_dir -p api -p mock-camber --bins --examples)
MOCK_BIN=$REL/mock-camber
API_BIN=$REL/api
DRIVE=$REL/examples/drive
for b in "$MOCK_BIN" "$API_BIN" "$DRIVE"; do [[ -x $b ]] || { echo "missing $b" >&2; exit 1; }; done
echo "+ scripts/bench/seeds/run.sh --setup"
scripts/bench/seeds/run.sh --setup
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo "+changes")
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
LOAD0=$(load)
echo "build $COMMIT; binaries $REL; machine: $MACHINE; load average $LOAD0"
FSYNC=$(fsync_probe "$TMP")
row "this disk: fdatasync of a 4 KiB append" "$FSYNC" "300 \`os.write\` + \`os.fdatasync\` in the bench's temp dir (python3)"

# Starts one system on new databases; sets $SYS_API (its URL for the
# driver) and $SYS_PIDS (the processes whose CPU counts).
start_ours() { # start_ours TAG
    start "mock-$1" "$MOCK_BIN" --port 0 --db "$TMP/mock-$1.db" --stage-ms 0 --webhook-secret "$SECRET" --api-key "$KEY"
    local mock=$ADDR mock_pid=$PID
    start "api-$1" "$API_BIN" --port 0 --camber-endpoint "$mock" --camber-api-key "$KEY" --webhook-secret "$SECRET" \
        --db "$TMP/api-$1.db" --artifact-dir "$TMP/artifacts-$1"
    SYS_API=$ADDR
    SYS_PIDS=("$PID" "$mock_pid")
    wait_ready "$mock"
    wait_ready "$SYS_API"
}
OURS_CMD="\`mock-camber --port 0 --db FILE --stage-ms 0 --api-key $KEY --webhook-secret \"\$SECRET\"\`; \`api --port 0 --camber-endpoint MOCK --camber-api-key $KEY --webhook-secret \"\$SECRET\" --db FILE --artifact-dir DIR\`"
start_seeds() { # start_seeds TAG
    start "seeds-$1" env SEEDS_DB="$TMP/seeds-$1.db" ARTIFACT_DIR="$TMP/seeds-artifacts-$1" \
        WEBHOOK_SECRET="$SECRET" STAGE_MS=0 scripts/bench/seeds/run.sh
    SYS_API=$ADDR
    SYS_PIDS=("$PID")
    wait_ready "$SYS_API"
}
SEEDS_CMD="\`SEEDS_DB=FILE WEBHOOK_SECRET=\"\$SECRET\" STAGE_MS=0 scripts/bench/seeds/run.sh\`"

# run SYSTEM CONCURRENCY JOBS POLL_MAX_US ROUND: one measured run on a new
# instance; appends its figures to P50_/S50_/RATE_<system>_c<concurrency>.
run() {
    local sys=$1 c=$2 jobs=$3 poll=$4 round=$5 tag=$1-c$2-r$5 out cmd before after cpu=0 pid l0
    "start_$sys" "$tag"
    [[ $sys == ours ]] && cmd=$OURS_CMD || cmd=$SEEDS_CMD
    "$DRIVE" --api "$SYS_API" --jobs "$WARMUP" --concurrency 1 --label warmup >/dev/null
    l0=$(load)
    for pid in "${SYS_PIDS[@]}"; do proc_ticks "$pid" >"$TMP/$tag-$pid.t0"; done
    out=$TMP/drive-$tag.out
    echo "+ $DRIVE --api $SYS_API --jobs $jobs --concurrency $c --poll-max-us $poll   # $sys"
    "$DRIVE" --api "$SYS_API" --jobs "$jobs" --concurrency "$c" --poll-max-us "$poll" --label "$tag" \
        >"$out" 2>"$TMP/drive-$tag.err" || { cat "$out" "$TMP/drive-$tag.err" >&2; echo "drive failed ($sys, c=$c)" >&2; exit 1; }
    sed 's/^/     /' "$out"
    local per=()
    for pid in "${SYS_PIDS[@]}"; do
        before=$(<"$TMP/$tag-$pid.t0")
        after=$(proc_ticks "$pid")
        per+=("$(awk -v d=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$jobs" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')")
        cpu=$((cpu + after - before))
    done
    local cpu_txt
    cpu_txt=$(awk -v d="$cpu" -v hz="$(getconf CLK_TCK)" -v n="$jobs" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')
    [[ $sys == ours ]] && cpu_txt="$cpu_txt µs/job (api ${per[0]}, mock ${per[1]})" || cpu_txt="$cpu_txt µs/job (one python process)"
    eval "P50_${sys}_c${c}+=($(field client_p50_ms "$out"))"
    eval "S50_${sys}_c${c}+=($(field server_p50_ms "$out"))"
    eval "RATE_${sys}_c${c}+=($(field jobs/s "$out"))"
    row "$sys, c=$c, $jobs jobs$( ((ROUNDS > 1)) && echo ", round $round")" \
        "**$(field jobs/s "$out") jobs/s**; create -> completed **p50 $(field client_p50_ms "$out") ms**, p99 $(field client_p99_ms "$out") ms (client, polling); p50 $(field server_p50_ms "$out") / p99 $(field server_p99_ms "$out") ms (job's own timestamps); $(field failed "$out") failed; CPU $cpu_txt; load $l0 -> $(load)" \
        "$cmd; \`cargo run --release -p api --example drive -- --api URL --jobs $jobs --concurrency $c --poll-max-us $poll\`"
    for pid in "${SYS_PIDS[@]}"; do stop "$pid"; done
}

P50_ours_c1=() P50_seeds_c1=() S50_ours_c1=() S50_seeds_c1=() RATE_ours_c64=() RATE_seeds_c64=()
for spec in "1 $JOBS_1 200" "64 $JOBS_64 10000"; do
    read -r c jobs poll <<<"$spec"
    for round in $(seq "$ROUNDS"); do
        if ((round % 2)); then order=(ours seeds); else order=(seeds ours); fi
        step "c=$c: $jobs jobs, $c in flight; round $round of $ROUNDS (${order[0]} first)"
        for sys in "${order[@]}"; do run "$sys" "$c" "$jobs" "$poll" "$round"; done
    done
done

# --- issue 24's end-to-end targets ----------------------------------------------
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "le") ? v <= t : v >= t; print ok ? "met" : "missed" }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
R_ours_c1_p50=$(median "${P50_ours_c1[@]}")
R_seeds_c1_p50=$(median "${P50_seeds_c1[@]}")
R_ours_c1_s50=$(median "${S50_ours_c1[@]}")
R_seeds_c1_s50=$(median "${S50_seeds_c1[@]}")
R_ours_c64_rate=$(median "${RATE_ours_c64[@]}")
R_seeds_c64_rate=$(median "${RATE_seeds_c64[@]}")
OF=$( ((ROUNDS > 1)) && echo "medians of $ROUNDS rounds: " || true)
C1=$(div "$R_ours_c1_p50" "$R_seeds_c1_p50")
C1S=$(div "$R_ours_c1_s50" "$R_seeds_c1_s50")
row "target: ours / seeds, c=1 p50 (≤ 0.75)" \
    "**$C1** (${OF}$R_ours_c1_p50 / $R_seeds_c1_p50 ms, client side): **$(verdict "$C1" 0.75 le)**; by the job's own timestamps $C1S ($R_ours_c1_s50 / $R_seeds_c1_s50 ms)" \
    "the c=1 lines above; \`JOBS_1=$JOBS_1 ROUNDS=$ROUNDS scripts/bench-e2e-c1.sh\`"
row "target: ours at c=64 (≥ 2,500 jobs/s)" \
    "**$R_ours_c64_rate jobs/s** ($( ((ROUNDS > 1)) && echo "median of $ROUNDS rounds" || echo "one run")): **$(verdict "$R_ours_c64_rate" 2500 ge)**; $(div "$R_ours_c64_rate" "$R_seeds_c64_rate")× the seeds' $R_seeds_c64_rate jobs/s" \
    "the c=64 lines above; \`JOBS_64=$JOBS_64 ROUNDS=$ROUNDS scripts/bench-e2e-c1.sh\`"

step "table"
echo "Build $COMMIT, $(date -u '+%Y-%m-%d %H:%M') UTC, $MACHINE; load average before: $LOAD0, after: $(load)."
echo "Reproduce: \`scripts/bench-e2e-c1.sh\` (JOBS_1=$JOBS_1 JOBS_64=$JOBS_64 WARMUP=$WARMUP ROUNDS=$ROUNDS${TARGET:+ TARGET=$TARGET})."
echo
echo "| what | figure | command |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
