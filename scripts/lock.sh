#!/usr/bin/env bash
# Make scripts/constraints.txt anew: the newest releases pyproject.toml allows, installed into
# a scratch venv without constraints, then frozen. Review the diff, run scripts/test.sh, commit.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q hatchling
"$scratch/venv/bin/pip" install -q --no-build-isolation -e '.[test]'
{
  sed -n '/^#/p' scripts/constraints.txt
  "$scratch/venv/bin/pip" freeze --exclude-editable | grep -v '^-e ' | sort -f
} > "$scratch/constraints.txt"
mv "$scratch/constraints.txt" scripts/constraints.txt
echo "scripts/constraints.txt made anew; review it with git diff"
