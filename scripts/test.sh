#!/usr/bin/env bash
# The README's test command, and CI's: install into a venv of its own, check, then test.
#
# It never changes the environment you run the server from: the package (editable, from this
# checkout) and its test extras go into .venv-test/ here, and the web app is built with npm
# into frontend/node_modules and src/vibetunnel/web by the package's build hook.
# Works on a fresh Debian machine with Python 3.11 and Node 20, as root.
# Arguments go to pytest: `bash scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Chromium for the browser tests (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

# Debian's redis-server for the cluster tests (the fixtures start it on a free port).
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
fi

VENV=.venv-test
if [ ! -x "$VENV/bin/python" ]; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV"; then
    # Debian's own python3 keeps venv (ensurepip) in a package of its own.
    rm -rf "$VENV"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    python3 -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
# Every package at the version scripts/constraints.txt names (the build's isolated environment
# too: pip reads PIP_CONSTRAINT there as well); the build hook runs `npm ci` and `npm run build`.
PIP_CONSTRAINT="$PWD/scripts/constraints.txt" "$PY" -m pip install -q -e '.[test]'

echo "== ruff (lint and format)"
"$PY" -m ruff check src tests bench
"$PY" -m ruff format --check src tests bench
echo "== mypy (strict, src)"
"$PY" -m mypy
echo "== tsc (the web app and its tests; typescript pinned by frontend/package-lock.json)"
(cd frontend && npm run --silent typecheck)
echo "== pytest"
"$PY" -m pytest -q "$@"
