#!/usr/bin/env bash
# The static checks of the test command (scripts/test.sh runs this first): ruff, the import
# contracts (.importlinter: workflows/ never imports flask or webapp) and mypy --strict on workflows/.
# Safe to run alone: it installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${GRANTS_VENV:-$ROOT/.venv}
"$VENV/bin/ruff" check workflows webapp tests bench
PYTHONPATH="$ROOT" "$VENV/bin/lint-imports"
"$VENV/bin/mypy"   # setup.cfg [mypy]
