"""Release day at the county hospital, from Python.

The hospital publishes an exam slot, a community clinic pre-books it for a
patient (a hold), the patient pays (the hold becomes a booking), then cancels,
and the slot's place returns to the pool. The typed hot path holds and
releases a place too. Run it with the `yilian` wheel installed:

    python examples/python/release_day.py
"""

import yilian

SCHEDULE = {
    "hospital_id": "H001",
    "schedule_data": [
        {
            "device_id": "DEV001",
            "project_id": "P001",
            "date": "2024-10-30",
            "capacity": 5,
            "available_slots": [{"start_time": "09:00", "end_time": "10:00"}],
        }
    ],
}


def main() -> None:
    print(f"yilian {yilian.__version__}")
    with yilian.Engine({"clock_start": "2024-10-29T09:00:00+08:00"}) as engine:
        synced = engine.call("sync-schedule", SCHEDULE)
        print(f"sync-schedule: {synced['created']} slot(s) created")

        held = engine.call(
            "pre-book-slot",
            {
                "patient_id": "PAT001",
                "project_id": "P001",
                "date": "2024-10-30",
                "time_slot": "09:00-10:00",
                "device_id": "DEV001",
                "clinic_id": "C001",
            },
        )
        booking_id = held["booking_id"]
        print(f"pre-book-slot: {booking_id} {held['status']} until {held['hold_expires_at']}")

        paid = engine.call("payment-status", {"booking_id": booking_id, "payment_status": "paid"})
        print(f"payment-status: {booking_id} {paid['status']}")

        slot_id = "EX-H001-DEV001-20241030-09001000"
        info = engine.call("slot-info", {"slot_id": slot_id})
        print(f"slot-info: capacity={info['capacity']} booked={info['booked']} remaining={info['remaining']}")

        # The typed hot path: resolve the slot once, then hold and release.
        slot = engine.slot(slot_id)
        hold = engine.hold(slot, "PAT002", clinic_id="C002")
        print(f"hold: {hold!r}")
        print(f"availability: {engine.availability(slot)!r}")
        engine.release(hold.booking_id)

        cancelled = engine.call("cancel-slot", {"booking_id": booking_id})
        print(f"cancel-slot: {booking_id} {cancelled['status']}")

        try:
            engine.call("cancel-slot", {"booking_id": booking_id})
        except yilian.StateError as err:
            print(f"cancel again: {type(err).__name__} {err.code} ({err.message_zh})")

        after = engine.availability(slot)
        print(f"availability after cancel: {after!r}")
        assert after.remaining == after.capacity, "every place is back in the pool"


if __name__ == "__main__":
    main()
