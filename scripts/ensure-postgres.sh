#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers on 127.0.0.1:5432, starting the local
# cluster when it is installed but stopped. Under CI=true an unreachable server is an error
# (the PostgreSQL half of the suite must never be skipped silently).
set -euo pipefail
host=127.0.0.1
if pg_isready -h "$host" -q 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    echo "starting PostgreSQL $v" >&2
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
fi
for _ in $(seq 1 30); do
  if pg_isready -h "$host" -q 2>/dev/null; then exit 0; fi
  sleep 1
done
echo "PostgreSQL is not reachable on $host:5432; the PostgreSQL half of the tests will fail." >&2
echo "Start it (pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start) or set TEST_PG_URL." >&2
exit 1
