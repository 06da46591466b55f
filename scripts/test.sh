#!/usr/bin/env bash
# The test command of the README: builds every binary first (the process
# tests of both services start the real binaries; api's other tests run the
# mock in-process through mock-camber-testkit), then runs all tests,
# doctests included.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace "$@"
