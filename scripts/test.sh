#!/usr/bin/env bash
# Install everything the project needs, then run the whole test suite.
# Works on a fresh Debian machine with Python 3.11 and Node 20, as root.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Chromium for the browser tests (Playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi

# The package with its test extras; the build hook bundles the web app with npm.
python3 -m pip install -q -e '.[test]'

python3 -m pytest -q "$@"
