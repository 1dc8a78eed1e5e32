#!/usr/bin/env bash
# The database's own high availability under yilian (#17 item 3): PostgreSQL
# run by Patroni with etcd as its consensus store, all from Debian's
# packages, on loopback in a temporary directory:
#
#   etcd (1 member) ── Patroni pg1 ── PostgreSQL primary ─┐ synchronous
#                   └─ Patroni pg2 ── PostgreSQL standby ◄┘ replication
#
# The sandbox connects with a multi-host conninfo and
# `target_session_attrs=read-write`, so it always reaches whichever node is
# the primary. A storm of bookings runs over HTTP (the ignored test
# `a_postgresql_primary_killed_mid_storm_loses_no_acknowledged_booking` in
# examples/sandbox/tests/failover.rs); a third of the way in, the primary's
# node dies (Patroni and every PostgreSQL process of it, SIGKILL). Patroni
# promotes the synchronous standby once the leader key's TTL lapses; the
# sandbox's store fails, the server stands by, reopens on the promoted node
# and takes the lease; the clients' retries (same request ids) then get their
# answers. The test checks that every acknowledged booking is there and no
# slot is overbooked, and prints the failover time.
#
#   bash scripts/patroni-failover.sh          # about 1–2 min after the build
#   TTL=20 bash scripts/patroni-failover.sh   # Patroni's leader TTL (default 10 s)
#
# Run as root (PostgreSQL and Patroni run as the `postgres` user). scripts/test.sh
# runs it after the other suites.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
TTL="${TTL:-10}"
LOOP_WAIT=2
RETRY_TIMEOUT=$(( (TTL - LOOP_WAIT) / 2 )) # Patroni needs loop_wait + 2 × retry_timeout ≤ ttl

. "$root/scripts/debian.sh"
debian_install patroni:patroni etcd-server:etcd curl:curl postgresql:initdb
PGBIN="$(pg_bin)"

tmp="$(mktemp -d /tmp/yilian-patroni.XXXXXX)"
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    for n in 1 2; do
        [ -f "$tmp/pg$n/postmaster.pid" ] && su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $tmp/pg$n -m immediate stop" >/dev/null 2>&1 || true
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-}" = 1 ]; then echo "logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

base=$(( 20000 + RANDOM % 20000 ))
etcd_client=$base etcd_peer=$((base + 1))
declare -A pgport restport
for n in 1 2; do pgport[$n]=$((base + 10 + n)); restport[$n]=$((base + 20 + n)); done

# ------------------------------------------------------------------- etcd
etcd --name e1 --data-dir "$tmp/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "e1=http://127.0.0.1:$etcd_peer" >"$tmp/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$etcd_client/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$etcd_client/health" >/dev/null || { cat "$tmp/etcd.log" >&2; exit 1; }

# ---------------------------------------------------------------- Patroni
for n in 1 2; do
    mkdir -p "$tmp/sock$n"
    cat >"$tmp/patroni$n.yml" <<EOF
scope: yilian
name: pg$n
restapi:
  listen: 127.0.0.1:${restport[$n]}
  connect_address: 127.0.0.1:${restport[$n]}
etcd3:
  host: 127.0.0.1:$etcd_client
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        synchronous_commit: "on"
        max_connections: 100
        wal_log_hints: "on"
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pgport[$n]}
  connect_address: 127.0.0.1:${pgport[$n]}
  data_dir: $tmp/pg$n
  bin_dir: $PGBIN
  pgpass: $tmp/pgpass$n
  authentication:
    replication:
      username: replicator
      password: replicator-throwaway
    superuser:
      username: postgres
      password: postgres-throwaway
  parameters:
    unix_socket_directories: $tmp/sock$n
EOF
done
chown -R postgres "$tmp"
# pg1 first, so it bootstraps the cluster; pg2 then clones it.
for n in 1 2; do
    su postgres -s /bin/sh -c "exec patroni $tmp/patroni$n.yml" >"$tmp/patroni$n.log" 2>&1 &
    pids+=($!)
    echo "patroni pg$n: pid $!" >&2
    if [ "$n" = 1 ]; then
        for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:${restport[1]}/primary" >/dev/null && break; sleep 0.2; done
        curl -sf "http://127.0.0.1:${restport[1]}/primary" >/dev/null || { tail -30 "$tmp/patroni1.log" >&2; exit 1; }
    fi
done
# Ready when pg2 streams from pg1 as its synchronous standby.
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:${restport[2]}/sync" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:${restport[2]}/sync" >/dev/null || { tail -30 "$tmp/patroni2.log" >&2; exit 1; }
patronictl -c "$tmp/patroni1.yml" list >&2

# The node to kill: whichever is primary when the test asks. Its Patroni and
# all its PostgreSQL processes die at once, as with a machine that loses power.
cat >"$tmp/kill-primary" <<EOF
#!/usr/bin/env bash
set -euo pipefail
for node in 1:${restport[1]} 2:${restport[2]}; do
    n="\${node%%:*}" rest="\${node#*:}"
    if curl -sf "http://127.0.0.1:\$rest/primary" >/dev/null 2>&1; then
        patroni_pid="\$(pgrep -u postgres -f "patroni $tmp/patroni\$n.yml" | head -1)" # not su, its parent
        postmaster="\$(head -1 "$tmp/pg\$n/postmaster.pid")"
        kill -KILL "\$patroni_pid" "\$postmaster" \$(pgrep -P "\$postmaster") 2>/dev/null || true
        echo "killed the primary pg\$n (Patroni \$patroni_pid, postmaster \$postmaster)"
        exit 0
    fi
done
echo "no primary to kill" >&2
exit 1
EOF
chmod +x "$tmp/kill-primary"

export YILIAN_PATRONI_CONNINFO="host=127.0.0.1,127.0.0.1 port=${pgport[1]},${pgport[2]} user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2"
export YILIAN_PATRONI_KILL="$tmp/kill-primary"
started=$(date +%s)
# --workspace: the features the rust suite built with, so nothing is rebuilt after it.
cargo test --release -q --workspace --test failover -- --ignored --exact --nocapture \
    a_postgresql_primary_killed_mid_storm_loses_no_acknowledged_booking
echo "after the failover:" >&2
patronictl -c "$tmp/patroni2.yml" list >&2 || true
echo "patroni-failover: passed in $(( $(date +%s) - started )) s (the test, after the cluster was up)" >&2
