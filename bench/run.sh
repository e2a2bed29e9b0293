#!/usr/bin/env bash
# `make bench`: installs the load generator (wrk), the reference server (nginx) and the
# browser for the console's numbers (chromium) from Debian when missing, makes sure
# PostgreSQL answers, then runs bench/run.py against the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/ensure-postgres.sh
exec python3 bench/run.py "$@"
