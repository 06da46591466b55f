#!/usr/bin/env bash
# Lints both OpenAPI documents with Redocly's recommended rules (redocly.yaml;
# the pinned exceptions and their reasons are in .redocly.lint-ignore.yaml).
# Fails on any error or warning. Needs node (>= 18) and npx.
set -euo pipefail
cd "$(dirname "$0")/.."
REDOCLY_VERSION=2.77.0
command -v npx >/dev/null || { echo "openapi lint: node and npx are needed" >&2; exit 1; }
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
npx --yes "@redocly/cli@${REDOCLY_VERSION}" lint --max-problems 100 \
  mock-camber/openapi.yaml api/openapi.yaml 2>&1 | tee /tmp/openapi-lint.$$.log
# Redocly exits 0 on warnings; this lint does not accept them.
if grep -qE "[1-9][0-9]* warnings?\b|Validation failed" /tmp/openapi-lint.$$.log; then
  rm -f /tmp/openapi-lint.$$.log
  echo "openapi lint: warnings or errors above" >&2
  exit 1
fi
rm -f /tmp/openapi-lint.$$.log
