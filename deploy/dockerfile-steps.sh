#!/usr/bin/env bash
# Runs each step of deploy/Dockerfile by hand, in a temp folder, without Docker:
# the web stage (npm ci + npm run build), the build stage (pip install . into a
# fresh venv, package-data check) and the runtime (pea serve with HOME=/tmp and
# PYTHONDONTWRITEBYTECODE=1, the HEALTHCHECK command, SIGTERM exit code).
# Usage: make dockerfile-steps
set -euo pipefail
T=$(mktemp -d /tmp/pea-docker-steps.XXXX)
trap 'rm -rf "$T"' EXIT
cd "$(dirname "$0")/.."
# context as the .dockerignore allows it
mkdir -p $T/src
tar cf - --exclude=web/node_modules --exclude=signal/pea/static --exclude='__pycache__' pyproject.toml signal web | tar xf - -C $T/src
# stage web
cd $T/src/web
npm ci --no-audit --no-fund
npm run build && test -f $T/src/signal/pea/static/index.html
# stage build
python3 -m venv $T/opt-pea
cd $T/src
PIP_NO_CACHE_DIR=1 $T/opt-pea/bin/pip install -q .
$T/opt-pea/bin/python -c "import importlib.resources as r; assert r.files('pea').joinpath('static/index.html').is_file()"
$T/opt-pea/bin/pea --help >/dev/null
# runtime: run from a read-only-like place, HOME=/tmp, no bytecode writes, healthcheck
cd /tmp
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
env -i PATH=$T/opt-pea/bin:/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 HOME=/tmp PEA_HOST=127.0.0.1 PEA_PORT=$PORT $T/opt-pea/bin/pea serve > $T/serve.log 2>&1 &
PID=$!
for i in $(seq 50); do curl -sf 127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.2; done
PEA_PORT=$PORT $T/opt-pea/bin/python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PEA_PORT', '8080'), timeout=2)"
curl -sf 127.0.0.1:$PORT/ | grep -qi "<html"
kill -TERM $PID; wait $PID  # exits 0 after draining
test -z "$(find "$T/opt-pea" -name "*.pyc" -newer "$T/serve.log")"  # nothing written at run time
echo "every deploy/Dockerfile step passed"
