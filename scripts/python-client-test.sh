#!/usr/bin/env bash
# The Python client's type check (mypy --strict) and tests (clients/python/tests: the pytest plugin through
# pytester, one run with -n 2, the views against mock-camber/openapi.yaml),
# against the real mock-camber binary. Installs the package as a user would
# (`pip install ./clients/python`) into a fresh venv under target/.
#
# Usage: scripts/python-client-test.sh [pytest args]    Knobs: BIN_DIR=target/debug
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/debug}
VENV=target/python-client-venv
# Test tools pinned (the package's own dependencies are not: it must work with what pip picks).
PYTEST_VERSION=9.2.0
XDIST_VERSION=3.8.0
PYYAML_VERSION=6.0.4
MYPY_VERSION=2.4.1

# The binary under test is current (a no-op after scripts/test.sh).
[[ $BIN_DIR != target/debug ]] || cargo build -q --bin mock-camber
if ! python3 -m venv --clear "$VENV" 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  python3 -m venv --clear "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check ./clients/python \
  "pytest==$PYTEST_VERSION" "pytest-xdist==$XDIST_VERSION" "pyyaml==$PYYAML_VERSION" "mypy==$MYPY_VERSION"
# The package says it is typed (py.typed): it must check as such.
"$VENV/bin/python" -m mypy --strict --cache-dir target/python-client-mypy-cache clients/python/src/mock_camber
# No __pycache__ or .pytest_cache left in the work tree.
export PYTHONDONTWRITEBYTECODE=1
# The tests start their own mocks; an outer MOCK_CAMBER_URL would point them elsewhere.
unset MOCK_CAMBER_URL MOCK_CAMBER_API_KEY MOCK_CAMBER_ADMIN_TOKEN MOCK_CAMBER_WEBHOOK_SECRET
MOCK_CAMBER_BIN=$(cd "$BIN_DIR" && pwd)/mock-camber "$VENV/bin/python" -m pytest -p no:cacheprovider \
  clients/python/tests -q "$@"
