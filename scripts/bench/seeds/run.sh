#!/usr/bin/env bash
# Starts the seeds' in-process design (app.py: FastAPI + uvicorn, SQLite
# through aiosqlite, an asyncio task per job, an HMAC-signed webhook to
# itself) on 127.0.0.1 and prints `listening on http://127.0.0.1:PORT` as
# our daemons do; the process runs in the foreground (exec) until stopped.
#
#   scripts/bench/seeds/run.sh            # port 0 = a free one
#   scripts/bench/seeds/run.sh --setup    # only make the venv and install
#
# The venv is target/seeds-venv (untracked), rebuilt when requirements.txt
# changes. Environment: PORT (default 0), SEEDS_DB (default
# target/seeds.db), ARTIFACT_DIR, WEBHOOK_SECRET, STAGE_MS (default 0),
# PYTHON (default python3, 3.10 or newer).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
VENV=$ROOT/target/seeds-venv
STAMP=$VENV/.requirements.sha256
want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)

if [[ ! -x $VENV/bin/python || $(cat "$STAMP" 2>/dev/null) != "$want" ]]; then
    echo "seeds: installing $HERE/requirements.txt into $VENV" >&2
    mkdir -p "$ROOT/target"
    "${PYTHON:-python3}" -m venv --clear "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2
    echo "$want" >"$STAMP"
fi
[[ ${1:-} == --setup ]] && exit 0

export SEEDS_DB=${SEEDS_DB:-$ROOT/target/seeds.db}
export STAGE_MS=${STAGE_MS:-0}
export PORT=${PORT:-0}
cd "$HERE"
exec "$VENV/bin/python" app.py
