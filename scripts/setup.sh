#!/usr/bin/env bash
# Installs everything the app and its tests need: Debian packages (fonts, Chromium, PostgreSQL,
# poppler), a virtualenv with the project, and the bpmn-js viewer from the npm registry.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${GRANTS_VENV:-$ROOT/.venv}
DEBS="chromium fonts-noto-cjk fonts-liberation libharfbuzz-subset0 libnss3-tools poppler-utils postgresql postgresql-client"

need_debs=""
for pkg in $DEBS; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_debs="$need_debs $pkg"
done
if [ -n "$need_debs" ]; then
  echo "== Debian packages:$need_debs"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need_debs
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "== virtualenv $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.grants-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  echo "== Python packages"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".[test,postgres]"
  touch "$stamp"
fi

if [ ! -f webapp/static/vendor/node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js ]; then
  echo "== bpmn-js (npm registry)"
  npm install --silent --no-audit --no-fund --prefix webapp/static/vendor bpmn-js@18 >/dev/null
fi

if [ ! -f webapp/static/vendor/node_modules/echarts/dist/echarts.common.min.js ]; then
  echo "== echarts (npm registry)"
  npm install --silent --no-audit --no-fund --prefix webapp/static/vendor echarts@6 >/dev/null
fi

if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  echo "== oidc-provider, the OpenID Connect provider of the single sign-on tests (npm registry)"
  (cd tests/oidc && npm ci --silent --no-audit --no-fund >/dev/null)
fi

"$VENV/bin/pybabel" compile -d webapp/translations >/dev/null
echo "== set-up done"
