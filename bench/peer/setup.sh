#!/usr/bin/env bash
# Sets up spiff-arena's backend (sartography/spiff-arena at a pinned commit) for bench/peer/run.py:
# its own virtualenv outside the project, packages from PyPI only, SQLite, its built-in local
# OpenID provider for tokens, and the benchmark's two-user-task process model in its
# process-models directory. Nothing of spiff-arena is copied into this repository.
#
#   bench/peer/setup.sh            # uses $SPIFF_MIRROR (a clone of spiff-arena) or clones it
# Env: PEER_DIR (default /work/peer), PEER_VENV (default /work/peer-venv), SPIFF_COMMIT.
set -euo pipefail
SPIFF_COMMIT="${SPIFF_COMMIT:-d7678cf75bd1bc1b6dd0d05ba54c0f0dfa730952}"   # 2026-08-21, main
PEER_DIR="${PEER_DIR:-/work/peer}"
PEER_VENV="${PEER_VENV:-/work/peer-venv}"
SPIFF_MIRROR="${SPIFF_MIRROR:-/work/.mirror/sartography+spiff-arena/repo}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"

if [ ! -d "$SPIFF_MIRROR" ]; then
  git clone --bare https://github.com/sartography/spiff-arena "$SPIFF_MIRROR"
fi
mkdir -p "$PEER_DIR"
if [ "$(cat "$PEER_DIR/COMMIT" 2>/dev/null)" != "$SPIFF_COMMIT" ]; then
  rm -rf "$PEER_DIR/spiffworkflow-backend"
  git -C "$SPIFF_MIRROR" archive "$SPIFF_COMMIT" spiffworkflow-backend | tar -x -C "$PEER_DIR"
  echo "$SPIFF_COMMIT" > "$PEER_DIR/COMMIT"
fi
BACKEND="$PEER_DIR/spiffworkflow-backend"

# Requirements: the backend's own dependency list at that commit, pinned to its uv.lock, with
# substitutions because only PyPI is reachable: SpiffWorkflow 3.2.0 and sqlalchemy-stubs come from
# PyPI (uv.lock takes them from git); the MySQL and PostgreSQL drivers are left out (they need C
# headers, and this run uses SQLite); spiffworkflow-connector-command is on no registry, and the
# backend only imports one TypedDict from it (for service-task errors, which this process has
# none of), so a one-file stand-in with that TypedDict is written into the venv.
"$PY" - "$BACKEND" > "$PEER_DIR/requirements.txt" <<'PYEOF'
import sys, tomllib, pathlib, re
backend = pathlib.Path(sys.argv[1])
project = tomllib.loads((backend / "pyproject.toml").read_text())
lock = tomllib.loads((backend / "uv.lock").read_text())
pins = {p["name"]: p["version"] for p in lock["package"]
        if "registry" in p.get("source", {})}
skip = {"psycopg2", "mysqlclient"}
from_pypi = {"spiffworkflow": "SpiffWorkflow==3.2.0", "sqlalchemy-stubs": "sqlalchemy-stubs==0.4"}
skip.add("spiffworkflow-connector-command")  # not on PyPI: a stand-in is written below
def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
for dep in project["project"]["dependencies"]:
    name = re.match(r"[A-Za-z0-9_.-]+", dep).group(0)
    extras = re.search(r"\[[^\]]*\]", dep)
    key = norm(name)
    if key in skip:
        continue
    if key in from_pypi:
        print(from_pypi[key]); continue
    print(f"{name}{extras.group(0) if extras else ''}=={pins[key]}" if key in pins else dep)
PYEOF
if [ ! -x "$PEER_VENV/bin/python" ]; then "$PY" -m venv "$PEER_VENV"; fi
"$PEER_VENV/bin/pip" install -q -r "$PEER_DIR/requirements.txt"
"$PEER_VENV/bin/pip" install -q --no-deps -e "$BACKEND"
SITE="$("$PEER_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$SITE/spiffworkflow_connector_command"
touch "$SITE/spiffworkflow_connector_command/__init__.py"
cat > "$SITE/spiffworkflow_connector_command/command_interface.py" <<'PYEOF'
"""Stand-in (bench/peer/setup.sh): the one name spiff-arena's backend imports from this package."""
from typing import TypedDict


class CommandErrorDict(TypedDict):
    error_code: str
    message: str
PYEOF

# The process model: the same two-user-task process the project's side of the benchmark runs.
MODELS="$PEER_DIR/process_models"
mkdir -p "$MODELS/bench/two-tasks"
cat > "$MODELS/bench/process_group.json" <<'JSON'
{"display_name": "bench", "description": "benchmark", "display_order": 0, "admin": false}
JSON
cat > "$MODELS/bench/two-tasks/process_model.json" <<'JSON'
{"display_name": "two tasks", "description": "two user tasks", "primary_file_name": "two_tasks.bpmn",
 "primary_process_id": "two_tasks", "files": [], "fault_or_suspend_on_exception": "fault",
 "exception_notification_addresses": [], "metadata_extraction_paths": null}
JSON
cp "$HERE/two_tasks.bpmn" "$MODELS/bench/two-tasks/two_tasks.bpmn"
cp "$HERE/form-schema.json" "$MODELS/bench/two-tasks/form-schema.json"
cp "$HERE/form-uischema.json" "$MODELS/bench/two-tasks/form-uischema.json"
echo "spiff-arena backend $SPIFF_COMMIT in $BACKEND, venv $PEER_VENV, models $MODELS"
