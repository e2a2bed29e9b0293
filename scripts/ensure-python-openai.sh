#!/usr/bin/env bash
# A Python with the official `openai` client, for the test that proves vorg's /v1 front door
# works with it unchanged. Kept in target/pyenv (ignored by git), created once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
  echo "installing the openai Python client into $venv" >&2
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openai==3.57.0"
fi
