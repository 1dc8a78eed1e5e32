#!/usr/bin/env bash
# The README's first command. In the foreground, so a slow fresh machine
# shows its progress and Ctrl-C stops everything:
#   1. builds the sandbox (release; cargo prints each crate as it compiles:
#      about 13 minutes on a loaded 2-core machine the first time, seconds after);
#   2. starts it with the demo network on the embedded store (./yilian-data),
#      its log on this terminal, and waits until it answers;
#   3. runs the source's example requests with curl (scripts/demo-curl.sh);
#   4. keeps serving until Ctrl-C (or SIGTERM), which stops the server
#      gracefully (in-flight requests finish, the store closes). No process
#      is left behind: the build runs in the foreground, and the server is
#      this script's child, stopped on every way out.
#
#   bash scripts/demo.sh                      # http://127.0.0.1:8080, ./yilian-data
#   bash scripts/demo.sh --demo-activity      # any further flags go to the sandbox
#   YILIAN_LISTEN=127.0.0.1:0 YILIAN_DATA_DIR=/tmp/d bash scripts/demo.sh
#   DEMO_THEN_STOP=1 bash scripts/demo.sh      # stop once the curl lines booked
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
listen="${YILIAN_LISTEN:-127.0.0.1:8080}"
data_dir="${YILIAN_DATA_DIR:-./yilian-data}"

echo "demo: building the sandbox (release) — the first build takes minutes; cargo shows each step" >&2
cargo build --release -p yilian-sandbox

target="${CARGO_TARGET_DIR:-$root/target}"
log="$(mktemp)"
pid=""
stop() {
    trap - INT TERM EXIT
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "demo: stopping the sandbox (pid $pid)" >&2
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$log"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# tee ignores SIGINT: Ctrl-C reaches the whole group, and the server must
# still have somewhere to write while it shuts down.
"$target/release/yilian-sandbox" --demo --data-dir "$data_dir" --listen "$listen" "$@" > >(trap "" INT; exec tee "$log") 2>&1 &
pid=$!
url=""
for _ in $(seq 1 600); do
    url="$(sed -n 's/^yilian-sandbox listening on //p' "$log")"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "demo: the sandbox exited (see its log above)" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "demo: the sandbox did not start listening within 60 s" >&2; exit 1; }

YILIAN_URL="$url" bash scripts/demo-curl.sh
echo "demo: booked through the sandbox at $url; the console is $url/console" >&2
[ "${DEMO_THEN_STOP:-0}" = 1 ] && exit 0
echo "demo: serving until Ctrl-C" >&2
wait "$pid"
