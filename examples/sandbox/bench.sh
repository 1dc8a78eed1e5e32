#!/usr/bin/env bash
# Bookings per second over HTTP on loopback — the sandbox on its durable
# embedded store — against the same flow through Redis (a Lua
# check-and-decrement that also records the booking) and PostgreSQL (a
# conditional UPDATE that inserts the booking in the same statement), all
# three in the same run, same concurrency, all durable (the sandbox fsyncs
# each group commit, Redis `appendfsync always`, PostgreSQL
# `synchronous_commit = on`). Prints each rate and the ratios. Not part of CI.
#
#   bash examples/sandbox/bench.sh                 # 10 s per system, 32 connections
#   DURATION=30 CONNS=64 bash examples/sandbox/bench.sh
#
# Installs what is missing from Debian's packages (root): wrk, redis-server,
# postgresql. Every server runs on loopback or a Unix socket in a temporary
# directory and is stopped at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
SLOTS=100                      # 10 devices × 10 hourly windows
CAPACITY=100000                # the engine's largest; no booking is refused

. "$root/scripts/debian.sh"
debian_install wrk:wrk redis-server:redis-server postgresql:initdb
PGBIN="$(pg_bin)"

tmp="$(mktemp -d)"
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    [ -f "$tmp/pg/postmaster.pid" ] && su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $tmp/pg -m fast stop" >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the sandbox
cargo build --release -q -p yilian-sandbox
target="${CARGO_TARGET_DIR:-$root/target}"
echo '{"release": {"enabled": false}}' >"$tmp/config.json"
"$target/release/yilian-sandbox" --data-dir "$tmp/store" --config "$tmp/config.json" --listen 127.0.0.1:0 --rate-limit 0 >"$tmp/sandbox.out" 2>"$tmp/sandbox.err" &
pids+=($!)
url=""
for _ in $(seq 1 100); do
    url="$(sed -n 's/^yilian-sandbox listening on //p' "$tmp/sandbox.out")"
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/sandbox.err" >&2; exit 1; }
D="$(TZ=Asia/Shanghai date -d tomorrow +%F)"
schedule="$(python3 - "$D" "$CAPACITY" <<'EOF'
import json, sys
date, cap = sys.argv[1], int(sys.argv[2])
rows = [{"device_id": f"DEV{d:03d}", "project_id": "P001", "date": date, "capacity": cap,
         "available_slots": [{"start_time": f"{h:02d}:00", "end_time": f"{h+1:02d}:00"} for h in range(8, 18)]} for d in range(1, 11)]
print(json.dumps({"hospital_id": "H001", "schedule_data": rows}))
EOF
)"
curl -sS --fail-with-body -X POST "$url/api/v1/sync-schedule" -H 'Content-Type: application/json' -d "$schedule" >/dev/null
cat >"$tmp/book.lua" <<'EOF'
-- One book-slot per request: a random slot of the 100, a patient never seen before.
-- Each wrk thread has its own Lua state: `setup` (in the main state) numbers
-- them, and each thread's patients carry its number. (A `local` drawn from
-- math.random here would be the same in every thread, whose states all start
-- from the same seed: the threads then sent the same patients to the same
-- slots and half the requests were refused as duplicates.)
local date = os.getenv("BENCH_DATE")
local counter = 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) math.randomseed(os.time() * 100 + tid) end
request = function()
  counter = counter + 1
  local d, h = math.random(1, 10), math.random(8, 17)
  local body = string.format('{"patient_id":"BP%d-%d","project_id":"P001","date":"%s","time_slot":"%02d:00-%02d:00","device_id":"DEV%03d"}',
    tid, counter, date, h, h + 1, d)
  return wrk.format("POST", "/api/v1/book-slot", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("BOOKED %d FAILED %d SECONDS %.3f P99_MS %.3f\n",
    summary.requests - failed, failed, summary.duration / 1e6, latency:percentile(99) / 1000))
end
EOF
echo "sandbox: $url, $SLOTS slots of capacity $CAPACITY on $D; wrk $THREADS threads, $CONNS connections, ${DURATION}s" >&2
BENCH_DATE="$D" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$tmp/book.lua" "$url" >"$tmp/wrk.out"
read -r _ http_ok _ http_failed _ http_secs _ http_p99 < <(grep '^BOOKED' "$tmp/wrk.out")
http_rate="$(awk -v n="$http_ok" -v s="$http_secs" 'BEGIN{printf "%.0f", n/s}')"
# The pool agrees: it holds the bookings wrk saw succeed, plus at most one
# per connection still in flight when wrk stopped counting.
booked_in_pool="$(curl -s "$url/api/v1/real-time-slots?project_id=P001&date=$D" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(sum(s["booked"] for s in d["slots"]))')"
if [ "$booked_in_pool" -lt "$http_ok" ] || [ "$booked_in_pool" -gt $((http_ok + CONNS)) ]; then
    echo "sandbox: wrk saw $http_ok bookings, the pool has $booked_in_pool" >&2; exit 1
fi
kill -TERM "${pids[0]}"; wait "${pids[0]}" || true

# ---------------------------------------------------------------- Redis
rport=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$tmp/redis"
redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp/redis" --save '' --appendonly yes --appendfsync always --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
for i in $(seq 0 $((SLOTS - 1))); do printf 'SET slot:%012d %d\n' "$i" "$CAPACITY"; done | redis-cli -p "$rport" >/dev/null
lua='local r = tonumber(redis.call("GET", KEYS[1]) or "0")
if r > 0 then
  redis.call("DECR", KEYS[1])
  local id = redis.call("INCR", "booking:seq")
  redis.call("HSET", "booking:" .. id, "slot", KEYS[1], "patient", ARGV[1])
  return id
end
return 0'
sha="$(redis-cli -p "$rport" SCRIPT LOAD "$lua")"
# redis-benchmark runs a count, not a duration: aim at about DURATION seconds.
n=$(( http_rate * DURATION * 2 )); [ "$n" -lt 20000 ] && n=20000
redis-benchmark -p "$rport" -c "$CONNS" -n "$n" -r "$SLOTS" --csv EVALSHA "$sha" 1 "slot:__rand_int__" "patient-__rand_int__" >"$tmp/redis.csv"
redis_rate="$(awk -F'"' 'NR==2{printf "%.0f", $4}' "$tmp/redis.csv")"
redis_p99="$(awk -F'"' 'NR==2{printf "%.3f", $14}' "$tmp/redis.csv")"
redis_booked="$(redis-cli -p "$rport" GET booking:seq)"
[ "$redis_booked" = "$n" ] || { echo "redis: $n requests but $redis_booked bookings" >&2; exit 1; }

# ---------------------------------------------------------------- PostgreSQL
mkdir -p "$tmp/pg" "$tmp/pgsock"
chown postgres "$tmp/pg" "$tmp/pgsock"
su postgres -s /bin/sh -c "$PGBIN/initdb -D $tmp/pg -A trust -U postgres" >/dev/null
pport=$(( 20000 + RANDOM % 20000 ))
su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $tmp/pg -l $tmp/pg/log -o \"-p $pport -k $tmp/pgsock -c listen_addresses='' -c synchronous_commit=on -c max_connections=$((CONNS + 10))\" -w start" >/dev/null
psql=(psql -q -h "$tmp/pgsock" -p "$pport" -U postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -c "CREATE DATABASE bench" >/dev/null
"${psql[@]}" -d bench >/dev/null <<EOF
CREATE TABLE slots (id int PRIMARY KEY, remaining int NOT NULL CHECK (remaining >= 0));
CREATE TABLE bookings (id bigserial PRIMARY KEY, slot_id int NOT NULL REFERENCES slots, patient_id text NOT NULL);
INSERT INTO slots SELECT g, $CAPACITY FROM generate_series(0, $((SLOTS - 1))) g;
EOF
cat >"$tmp/book.sql" <<EOF
\\set s random(0, $((SLOTS - 1)))
\\set p random(1, 2000000000)
WITH u AS (UPDATE slots SET remaining = remaining - 1 WHERE id = :s AND remaining > 0 RETURNING id)
INSERT INTO bookings (slot_id, patient_id) SELECT id, 'P' || :p FROM u;
EOF
chmod 644 "$tmp/book.sql"
pgbench -n -h "$tmp/pgsock" -p "$pport" -U postgres -f "$tmp/book.sql" -c "$CONNS" -j "$THREADS" -T "$DURATION" -l --log-prefix="$tmp/pglog" bench >"$tmp/pgbench.out" 2>&1
pg_rate="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/pgbench.out" | head -1 | awk '{printf "%.0f", $1}')"
# pgbench's per-transaction log: the third field is the latency in microseconds.
pg_p99="$(cat "$tmp"/pglog.* | awk '{print $3}' | sort -n | awk '{v[NR]=$1} END{i=int(NR*0.99); if (i<1) i=1; printf "%.3f", v[i]/1000}')"
pg_booked="$("${psql[@]}" -d bench -At -c "SELECT count(*) FROM bookings")"
pg_sum="$("${psql[@]}" -d bench -At -c "SELECT $SLOTS::bigint * $CAPACITY - sum(remaining) FROM slots")"
[ "$pg_booked" = "$pg_sum" ] || { echo "postgres: $pg_booked bookings but $pg_sum places taken" >&2; exit 1; }

# ---------------------------------------------------------------- report
echo
printf '%-44s %12s %10s\n' "flow (durable, $CONNS connections, loopback)" "bookings/s" "p99 (ms)"
printf '%-44s %12s %10s\n' "yilian sandbox: HTTP book-slot" "$http_rate" "$http_p99"
printf '%-44s %12s %10s\n' "Redis: EVALSHA check-and-decrement" "$redis_rate" "$redis_p99"
printf '%-44s %12s %10s\n' "PostgreSQL: conditional UPDATE + INSERT" "$pg_rate" "$pg_p99"
awk -v h="$http_rate" -v r="$redis_rate" -v p="$pg_rate" 'BEGIN{
  printf "ratio sandbox/Redis      %.2f\n", h/r
  printf "ratio sandbox/PostgreSQL %.2f\n", h/p }'
echo "(checked: Redis and PostgreSQL hold exactly the bookings their clients saw succeed; the sandbox pool those wrk saw, plus at most one per connection in flight when wrk stopped)"
