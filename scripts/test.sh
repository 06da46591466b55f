#!/usr/bin/env bash
# The test command of the README: builds every binary first (api's
# end-to-end tests start the real mock-camber binary), then runs all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace "$@"
