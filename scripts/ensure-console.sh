#!/usr/bin/env bash
# The console's build (console/dist, embedded by the vorg binary) from the committed
# lockfile; with `--browser`, also Debian's Chromium for the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null; then
  echo "npm is missing: install Node.js 20+ (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the console's browser tests" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
cd console
# Reinstall when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
