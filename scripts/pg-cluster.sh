#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the PostgreSQL store.
#
#   scripts/pg-cluster.sh start DIR   installs Debian's postgresql if missing,
#                                     creates a cluster in DIR (trust auth,
#                                     Unix socket in DIR only, no TCP) and
#                                     prints its superuser conninfo
#   scripts/pg-cluster.sh stop DIR    stops it (DIR is left to the caller)
#
# Run as root (initdb itself runs as the `postgres` user the package makes).
# scripts/test.sh starts one for the rust suite and exports its conninfo as
# YILIAN_TEST_POSTGRES.
set -euo pipefail
cmd="${1:?start or stop}"
dir="${2:?a directory}"

. "$(dirname "$0")/debian.sh"

case "$cmd" in
start)
    debian_install postgresql:initdb
    bin="$(pg_bin)"
    mkdir -p "$dir"
    chown postgres "$dir"
    su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U postgres -E UTF8 --locale=C.UTF-8" >/dev/null
    # No TCP listener: a port number still names the socket file.
    port=$((20000 + RANDOM % 20000))
    su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -l '$dir/log' -w -o \"-p $port -k '$dir' -c listen_addresses='' -c synchronous_commit=on -c fsync=on -c max_connections=200\" start" >/dev/null
    echo "host=$dir port=$port user=postgres"
    ;;
stop)
    bin="$(pg_bin)"
    [ -f "$dir/data/postmaster.pid" ] && su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -m immediate -w stop" >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
