#!/usr/bin/env bash
# Install the Debian PostgreSQL server (initdb, pg_ctl) for the test fixture; idempotent.
# Tests that need PostgreSQL start their own throwaway cluster on a loopback port and skip
# when no server binaries are found.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-postgres: not root, cannot apt-get install postgresql:" \
    "the PostgreSQL variants of the tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql > /dev/null
# The Debian package creates and starts a default cluster; the tests do not use it.
if command -v pg_ctlcluster > /dev/null; then
  for conf in /etc/postgresql/*/main; do
    [ -d "$conf" ] || continue
    version=$(basename "$(dirname "$conf")")
    pg_ctlcluster "$version" main stop 2> /dev/null || true
  done
fi
ls /usr/lib/postgresql/*/bin/initdb
