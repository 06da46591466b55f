#!/usr/bin/env bash
# End-to-end test of the mock's QA console (GET /_mock/) in headless
# Chromium: Debian's chromium driven by Playwright (playwright-core, pinned
# in scripts/browser-test/package-lock.json). Starts the real daemon
# (target/debug/mock-camber, built here if missing) with an admin token and
# a webhook receiver, drives the page, fails on any console error, and
# takes screenshots into a temporary directory. UPDATE_SCREENSHOTS=1 copies
# them over docs/dashboard-overview.png and docs/dashboard-job.png; without
# it the run changes no tracked file.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium ]]; then
  echo "installing chromium (Debian)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v node >/dev/null || { echo "browser test: node (>= 18) is needed" >&2; exit 1; }

if [[ -z "${MOCK_CAMBER_BIN:-}" ]]; then
  cargo build -q -p mock-camber
  MOCK_CAMBER_BIN=target/debug/mock-camber
fi
MOCK_CAMBER_BIN=$(realpath "$MOCK_CAMBER_BIN")
export MOCK_CAMBER_BIN
[[ -x $MOCK_CAMBER_BIN ]] || { echo "browser test: no binary at $MOCK_CAMBER_BIN" >&2; exit 1; }

cd scripts/browser-test
npm ci --no-audit --no-fund --loglevel=error
# The whole run is bounded; each step waits at most 15 s on its own.
timeout 180 node console.test.mjs
