#!/usr/bin/env bash
# A Python with the official `openai` client, the official MCP SDK (`mcp`) and the Standard
# Webhooks library (`standardwebhooks`), for the tests that prove vorg's /v1 front door, its
# MCP server and its signed webhooks work with them unchanged. Kept in
# target/pyenv (ignored by git), created once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/pyenv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import openai, mcp, standardwebhooks" 2>/dev/null; then
  echo "installing the openai Python client, the MCP Python SDK and standardwebhooks into $venv" >&2
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openai==3.57.0" "mcp==2.3.0" "standardwebhooks==1.3.0"
fi
