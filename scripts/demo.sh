#!/usr/bin/env bash
# Newcomer command 1: set up, seed the demo data on an embedded SQLite database, and serve.
# Links in documents and mail use http://HOST:PORT (set GRANTS_BASE_URL to override, e.g. when
# others reach the demo under another name); demo mail goes to a loopback catcher, shown to the
# admin at /admin/outbox and kept in instance/demo-mail/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${GRANTS_VENV:-$(pwd)/.venv}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}
export GRANTS_DEMO=1
export GRANTS_BASE_URL=${GRANTS_BASE_URL:-http://$HOST:$PORT}
"$VENV/bin/grants" demo
exec "$VENV/bin/grants" run --demo --host "$HOST" --port "$PORT"
