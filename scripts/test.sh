#!/usr/bin/env bash
# Newcomer command 2: set up everything, start a throwaway PostgreSQL, run the whole suite
# (SQLite and PostgreSQL, browser tests in Chromium, the diagrams in bpmn-js), clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash scripts/setup.sh
VENV=${GRANTS_VENV:-$ROOT/.venv}

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGROOT=$(mktemp -d /tmp/grants-pg.XXXXXX)
PGPORT=${GRANTS_PG_PORT:-54329}
mkdir -p "$PGROOT/data" "$PGROOT/sock"
RUN_AS=""
if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$PGROOT"; RUN_AS="su postgres -s /bin/sh -c"; fi
pg() { if [ -n "$RUN_AS" ]; then $RUN_AS "$*"; else sh -c "$*"; fi; }
cleanup() { pg "$PGBIN/pg_ctl -D $PGROOT/data -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$PGROOT"; }
trap cleanup EXIT
pg "$PGBIN/initdb -D $PGROOT/data -A trust -E UTF8 -U postgres" >/dev/null
pg "$PGBIN/pg_ctl -D $PGROOT/data -l $PGROOT/log -w -o '-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGROOT/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off' start" >/dev/null
export GRANTS_TEST_POSTGRES="postgresql+psycopg://postgres@127.0.0.1:$PGPORT"

CHECKER_SRC="$ROOT/../shared/tools/bpmn-check"
if [ -d "$CHECKER_SRC" ]; then
  export GRANTS_BPMN_CHECK=/tmp/grants-bpmn-check
  if [ ! -d "$GRANTS_BPMN_CHECK/node_modules" ]; then
    rm -rf "$GRANTS_BPMN_CHECK" && cp -r "$CHECKER_SRC" "$GRANTS_BPMN_CHECK"
    (cd "$GRANTS_BPMN_CHECK" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
fi

GRANTS_VENV="$VENV" bash scripts/check.sh   # ruff, import-linter (no flask in workflows/), mypy --strict
# Coverage of workflows/ with branches (setup.cfg [coverage:*]); the whole suite (no arguments)
# fails under 90 %, a run of some tests only reports.
COVERAGE=(--cov=workflows --cov-report=term-missing:skip-covered)
if [ $# -eq 0 ]; then COVERAGE+=(--cov-fail-under=90); fi
"$VENV/bin/pytest" "${COVERAGE[@]}" "$@"
