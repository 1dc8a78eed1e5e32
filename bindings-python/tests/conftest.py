"""Shared fixtures of the yilian pytest suite."""

import os
from typing import Any, Dict, Iterator

import pytest

import yilian

CLOCK_START = "2024-10-29T09:00:00+08:00"
SLOT_ID = "EX-H001-DEV001-20241030-09001000"


def schedule(capacity: int = 5, devices: int = 1, hours: int = 1) -> Dict[str, Any]:
    """A sync-schedule request: `devices` devices x `hours` one-hour slots on 2024-10-30."""
    return {
        "hospital_id": "H001",
        "schedule_data": [
            {
                "device_id": f"DEV{d + 1:03d}",
                "project_id": "P001",
                "date": "2024-10-30",
                "capacity": capacity,
                "available_slots": [
                    {"start_time": f"{9 + h:02d}:00", "end_time": f"{10 + h:02d}:00"} for h in range(hours)
                ],
            }
            for d in range(devices)
        ],
    }


def slot_id(device: int = 1, hour: int = 9) -> str:
    """The id sync-schedule gives the slot of DEV<device> at <hour>:00 on 2024-10-30."""
    return f"EX-H001-DEV{device:03d}-20241030-{hour:02d}00{hour + 1:02d}00"


def pre_book(patient_id: str = "PAT001") -> Dict[str, Any]:
    """A pre-book-slot request for the 09:00 slot of DEV001."""
    return {
        "patient_id": patient_id,
        "project_id": "P001",
        "date": "2024-10-30",
        "time_slot": "09:00-10:00",
        "device_id": "DEV001",
        "clinic_id": "C001",
    }


@pytest.fixture
def engine() -> Iterator[yilian.Engine]:
    """An in-memory engine with a manual clock and one slot of capacity 5."""
    with yilian.Engine({"clock_start": CLOCK_START, "clock": "manual"}) as e:
        e.call("sync-schedule", schedule())
        yield e


def pytest_sessionstart(session: pytest.Session) -> None:
    # run-tests.sh installs the wheel into a fresh venv; make sure that is what
    # we test, not a stray source tree on sys.path.
    if os.environ.get("YILIAN_EXPECT_INSTALLED") == "1" and "site-packages" not in (yilian.__file__ or ""):
        raise pytest.UsageError(f"yilian imported from {yilian.__file__}, not from the installed wheel")


VECTOR_STATS = {"files": 0, "cases": 0, "steps": 0}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if VECTOR_STATS["cases"]:
        terminalreporter.write_line(
            "vectors: {files} files, {cases} case runs, {steps} steps passed".format(**VECTOR_STATS)
        )
