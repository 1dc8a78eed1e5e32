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

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

case "$cmd" in
start)
    if [ -z "$(pgbin)" ] || [ ! -x "$(pgbin)/initdb" ]; then
        echo "installing postgresql (Debian)" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin="$(pgbin)"
    mkdir -p "$dir"
    chown postgres "$dir"
    su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U postgres -E UTF8 --locale=C.UTF-8" >/dev/null
    # No TCP listener: a port number still names the socket file.
    port=$((20000 + RANDOM % 20000))
    su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -l '$dir/log' -w -o \"-p $port -k '$dir' -c listen_addresses='' -c synchronous_commit=on -c fsync=on -c max_connections=200\" start" >/dev/null
    echo "host=$dir port=$port user=postgres"
    ;;
stop)
    bin="$(pgbin)"
    [ -f "$dir/data/postmaster.pid" ] && su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -m immediate -w stop" >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
