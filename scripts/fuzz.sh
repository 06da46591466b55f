#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for SECS seconds (default
# 60) from the small corpus kept in fuzz/corpus/<target>; a crash leaves its
# input in fuzz/artifacts/<target>/ and fails the script. The sanitizer flags
# cargo-fuzz passes are nightly-only: on the stable toolchain they are
# allowed with RUSTC_BOOTSTRAP=1.
#
# Usage: scripts/fuzz.sh [target ...]      Knobs: SECS=60
# Needs: cargo-fuzz (cargo install cargo-fuzz); the first build takes ~8 min.
set -euo pipefail
SECS=${SECS:-60}
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
targets=("$@")
((${#targets[@]})) || targets=(submit_body scenario_rules webhook)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O 2>&1 | tail -1
for t in "${targets[@]}"; do
  echo "== $t: ${SECS}s"
  # A scratch copy of the corpus: new inputs stay out of the repository.
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/"
  cargo fuzz run -O "$t" "$work" -- -max_total_time="$SECS" -max_len=4096 2>&1 \
    | grep -E "^#[0-9]+ +DONE|Done [0-9]+ runs|ERROR|panicked|SUMMARY" || true
  rm -rf "$work"
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "FAIL: $t crashed; inputs in fuzz/artifacts/$t/"
    exit 1
  fi
done
echo "fuzz: no crash in ${#targets[@]} target(s), ${SECS}s each"
