"""A durable engine (data_dir) keeps what it acknowledged across close and
reopen, and refuses a second open of the same directory."""

from pathlib import Path

import pytest

import yilian
from conftest import CLOCK_START, SLOT_ID, pre_book, schedule


def config(data_dir: Path) -> dict:
    return {"data_dir": str(data_dir), "clock_start": CLOCK_START, "clock": "manual"}


def test_bookings_survive_close_and_reopen(tmp_path: Path) -> None:
    with yilian.Engine(config(tmp_path)) as e:
        e.call("sync-schedule", schedule())
        booked = e.call("pre-book-slot", pre_book("PAT001"))["booking_id"]
        e.call("payment-status", {"booking_id": booked, "payment_status": "paid"})
        slot = e.slot(SLOT_ID)
        held = e.hold(slot, "PAT002", request_id="hold-PAT002")
        released = e.hold(slot, "PAT003")
        e.release(released.booking_id)
        before = e.availability(slot)
    assert (before.booked, before.held, before.remaining) == (1, 1, 3)

    with yilian.Engine(config(tmp_path)) as e:
        slot = e.slot(SLOT_ID)
        assert e.availability(slot) == before
        assert e.call("booking-info", {"booking_id": booked})["status"] == "booked"
        assert e.call("booking-info", {"booking_id": held.booking_ref})["status"] == "pre-booked"
        assert e.call("booking-info", {"booking_id": released.booking_ref})["status"] == "cancelled"
        # The request id was stored with its answer: a retry after restart gets the same hold.
        assert e.hold(slot, "PAT002", request_id="hold-PAT002") == held
        # New bookings continue the numbering.
        assert e.hold(slot, "PAT004").booking_id > released.booking_id
        e.check_invariants()


def test_second_open_while_open_is_store_locked(tmp_path: Path) -> None:
    first = yilian.Engine(config(tmp_path))
    try:
        first.call("sync-schedule", schedule())
        with pytest.raises(yilian.StorageError) as info:
            yilian.Engine(config(tmp_path))
        assert info.value.code == "STORE_LOCKED" and info.value.numeric_code == 7002
        assert first.call("slot-info", {"slot_id": SLOT_ID})["capacity"] == 5, "the first engine is unharmed"
    finally:
        first.close()
    # Once closed, the directory opens again.
    with yilian.Engine(config(tmp_path)) as again:
        assert again.call("slot-info", {"slot_id": SLOT_ID})["remaining"] == 5


def test_dropping_an_unclosed_engine_releases_the_directory(tmp_path: Path) -> None:
    import gc

    e = yilian.Engine(config(tmp_path))
    e.call("sync-schedule", schedule())
    e.call("pre-book-slot", pre_book())
    del e
    gc.collect()
    with yilian.Engine(config(tmp_path)) as again:
        assert again.call("slot-info", {"slot_id": SLOT_ID})["held"] == 1
