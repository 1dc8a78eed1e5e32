#!/usr/bin/env bash
# The README's main command, second half: books a slot through the sandbox
# (started with `--demo`) with curl, using the source's example requests
# verbatim except for the date (the demo's schedules start today, Asia/Shanghai;
# the source's 2024-10-30 is replaced by tomorrow). Prints every command and
# its answer; exits non-zero unless the booking is made and paid.
#
#   bash scripts/demo-curl.sh                  # against http://127.0.0.1:8080
#   YILIAN_URL=http://127.0.0.1:9000 bash scripts/demo-curl.sh
#   PATIENT_ID=PAT002 bash scripts/demo-curl.sh   # another patient (PAT001 can hold the slot only once)
set -euo pipefail
BASE="${YILIAN_URL:-http://127.0.0.1:8080}"
PATIENT="${PATIENT_ID:-PAT001}"

# The sandbox may still be building (`cargo run … &`): wait for it, up to 10 minutes.
for _ in $(seq 1 1200); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -sf "$BASE/healthz" >/dev/null || { echo "demo-curl: no sandbox answers at $BASE/healthz" >&2; exit 1; }

run() { { printf '$'; printf ' %q' "$@"; echo; } >&2; "$@"; echo; }

D=$(TZ=Asia/Shanghai date -d tomorrow +%F)

# 实时号源查询 (real-time-slots): the CT's 09:00-10:00 window tomorrow.
run curl -s "$BASE/api/v1/real-time-slots?project_id=P001&date=$D&time_slot=09:00-10:00"

# 号源预占 (pre-book-slot): community centre C001 holds the place for its patient.
booked=$(run curl -s -X POST "$BASE/api/v1/pre-book-slot" -H 'Content-Type: application/json' \
  -d "{\"patient_id\": \"$PATIENT\", \"project_id\": \"P001\", \"date\": \"$D\", \"time_slot\": \"09:00-10:00\", \"device_id\": \"DEV001\", \"clinic_id\": \"C001\"}")
echo "$booked"
B=$(printf '%s' "$booked" | sed -n 's/.*"booking_id":"\([A-Za-z0-9]*\)".*/\1/p')
[ -n "$B" ] || { echo "demo-curl: pre-book-slot did not book (see the answer above)" >&2; exit 1; }

# 支付状态同步 (payment-status): paid, so the hold becomes a booking.
paid=$(run curl -s -X POST "$BASE/api/v1/payment-status" -H 'Content-Type: application/json' \
  -d "{\"booking_id\": \"$B\", \"payment_status\": \"paid\"}")
echo "$paid"

# The booking as the platform now has it.
info=$(run curl -s "$BASE/api/v1/booking-info?booking_id=$B")
echo "$info"
case "$info" in
    *'"status":"success"'*'"status":"booked"'* | *'"status":"booked"'*'"status":"success"'*) echo "demo-curl: booked $B for $D 09:00-10:00" >&2 ;;
    *) echo "demo-curl: booking $B is not booked" >&2; exit 1 ;;
esac
