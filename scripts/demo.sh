#!/usr/bin/env bash
# Newcomer command 1: set up, seed the demo data on an embedded SQLite database, and serve.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${GRANTS_VENV:-$(pwd)/.venv}
"$VENV/bin/grants" demo
exec "$VENV/bin/grants" run --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}"
