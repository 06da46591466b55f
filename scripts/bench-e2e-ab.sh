#!/usr/bin/env bash
# A/B of the end-to-end path with two builds: every mock × api pairing of
# OLD_DIR and NEW_DIR (each a target/release directory holding mock-camber
# and api), run in turn, then again in the reverse order, each driven at
# c=64 (J64 jobs) and c=1 (J1 jobs) by api/examples/drive.rs on file
# databases. Interleaving matters here: on a machine that slows through a
# session, "all of old, then all of new" blames the later binary.
#
# Usage: scripts/bench-e2e-ab.sh OLD_DIR NEW_DIR (J64=3000 J1=500).
# Needs `cargo build --release -p api --examples` for the driver, and curl.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib/bench.sh"
OLD=$1 NEW=$2
DRIVE=$ROOT/target/release/examples/drive
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
run() { # run LABEL MOCK_BIN API_BIN
    rm -rf "${T:?}"/*; mkdir -p $T/arts
    $2 --port 0 --db $T/m.db --stage-ms 0 --webhook-secret bench-secret --api-key bench-key > $T/m.out 2>/dev/null & MP=$!
    M=$(address_of $T/m.out); wait_ready $M
    $3 --port 0 --camber-endpoint $M --camber-api-key bench-key --webhook-secret bench-secret \
        --db $T/a.db --artifact-dir $T/arts > $T/a.out 2>/dev/null & AP=$!
    A=$(address_of $T/a.out); wait_ready $A
    c64=$($DRIVE --api $A --jobs ${J64:-3000} --concurrency 64 --poll-max-us 10000 --label c64 | grep '^summary')
    c1=$($DRIVE --api $A --jobs ${J1:-500} --concurrency 1 --poll-max-us 200 --label c1 | grep '^summary')
    echo "$1 | $c64 | $c1"
    kill $AP $MP; wait $AP $MP 2>/dev/null
}
pairs=("old old" "new old" "old new" "new new")
for order in forward reverse; do
    [[ $order == reverse ]] && pairs=("new new" "old new" "new old" "old old")
    for p in "${pairs[@]}"; do
        read -r m a <<<"$p"
        mdir=$OLD; [[ $m == new ]] && mdir=$NEW
        adir=$OLD; [[ $a == new ]] && adir=$NEW
        run "$order: mock-$m api-$a" $mdir/mock-camber $adir/api
    done
done
