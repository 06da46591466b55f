#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets) for SECS seconds (default
# 60) from the small corpus kept in fuzz/corpus/<target>; a crash leaves its
# input in fuzz/artifacts/<target>/ and fails the script. The sanitizer flags
# cargo-fuzz passes are nightly-only: on the stable toolchain they are
# allowed with RUSTC_BOOTSTRAP=1.
#
# Usage: scripts/fuzz.sh [target ...]
# Knobs: SECS=60; PROFILE=release|dev; SANITIZER=address|none.
# The defaults (release, AddressSanitizer) find the most; their first build
# takes ~9 min here. CI runs PROFILE=dev SANITIZER=none SECS=20: a ~3 min
# build, still coverage-guided, with debug assertions (overflow checks) on;
# about 55,000-120,000 runs per target.
# Needs: cargo-fuzz (installed here when missing, pinned).
set -euo pipefail
SECS=${SECS:-60}
PROFILE=${PROFILE:-release}
SANITIZER=${SANITIZER:-address}
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install -q --locked cargo-fuzz --version 0.13.2
targets=("$@")
((${#targets[@]})) || targets=(submit_body scenario_rules webhook)
export RUSTC_BOOTSTRAP=1
flags=(-s "$SANITIZER")
if [[ $PROFILE == dev ]]; then flags+=(--dev); else flags+=(-O); fi
cargo fuzz build "${flags[@]}" 2>&1 | tail -1
for t in "${targets[@]}"; do
  echo "== $t: ${SECS}s"
  # A scratch copy of the corpus: new inputs stay out of the repository.
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/"
  cargo fuzz run "${flags[@]}" "$t" "$work" -- -max_total_time="$SECS" -max_len=4096 2>&1 \
    | grep -E "^#[0-9]+ +DONE|Done [0-9]+ runs|ERROR|panicked|SUMMARY" || true
  rm -rf "$work"
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "FAIL: $t crashed; inputs in fuzz/artifacts/$t/"
    exit 1
  fi
done
echo "fuzz: no crash in ${#targets[@]} target(s), ${SECS}s each"
