#!/bin/sh
# Install PostgreSQL's server binaries (Debian's postgresql package: initdb, pg_ctl, postgres) for the tests that
# start a throwaway server (tests/conftest.py's `postgres` fixture). Idempotent and quiet: does nothing when
# initdb is on PATH or in /usr/lib/postgresql/*/bin. Needs root (or sudo) and a reachable Debian mirror.
set -eu

if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" install-postgresql postgresql
echo "install-postgresql: $(ls /usr/lib/postgresql/*/bin/initdb)"
