"""The typed reserve path of yilian against the same logic in pure Python.

Both sides do the same work per operation: a hold (one place, for a patient,
with an expiry, an optional request id for idempotency, and one event) and its
release (one more event). yilian runs its in-memory engine through the typed
API (`Engine.hold` / `Engine.release`); the baseline is a dict + threading.Lock
pool written the way a Python integrator would. The two run in the same
process in interleaved rounds (A B, B A, ...); the figure is the median of the
per-round ratios, since absolute numbers drift on a shared 2-core box.

    python bench/bench_reserve.py [--rounds 7] [--ops 20000]

Exits 1 if the single-threaded median ratio falls below half the 3x target.
"""

import argparse
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import yilian

TARGET = 3.0  # issue 21
SLOTS = 16
CAPACITY = 1000
HOLD_TTL_MS = 900_000


# ---------------------------------------------------------------- pure-Python baseline


class SlotFull(Exception):
    pass


class DuplicateBooking(Exception):
    pass


class IdempotencyConflict(Exception):
    pass


class BookingNotFound(Exception):
    pass


class AlreadyCancelled(Exception):
    pass


class PySlot:
    __slots__ = ("slot_id", "capacity", "booked", "held", "patients")

    def __init__(self, slot_id: str, capacity: int) -> None:
        self.slot_id = slot_id
        self.capacity = capacity
        self.booked = 0
        self.held = 0
        self.patients: Dict[str, int] = {}


class PyBooking:
    __slots__ = ("booking_id", "slot", "patient_id", "clinic_id", "status", "expires_ms")

    def __init__(self, booking_id: int, slot: PySlot, patient_id: str, clinic_id: Optional[str], expires_ms: int) -> None:
        self.booking_id = booking_id
        self.slot = slot
        self.patient_id = patient_id
        self.clinic_id = clinic_id
        self.status = "held"
        self.expires_ms = expires_ms


class PyPool:
    """A slot pool in plain Python: one lock, dicts, an event list."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.slots: Dict[str, PySlot] = {}
        self.bookings: Dict[int, PyBooking] = {}
        self.answers: Dict[str, Tuple[Tuple[Any, ...], Any]] = {}
        self.events: List[Tuple[str, int, int]] = []
        self.next_id = 1

    def add_slot(self, slot_id: str, capacity: int) -> None:
        self.slots[slot_id] = PySlot(slot_id, capacity)

    def slot(self, slot_id: str) -> PySlot:
        return self.slots[slot_id]

    def hold(self, slot: PySlot, patient_id: str, request_id: Optional[str] = None, clinic_id: Optional[str] = None) -> Tuple[int, int]:
        now = time.time_ns() // 1_000_000
        with self.lock:
            if request_id is not None:
                fingerprint = ("hold", slot.slot_id, patient_id)
                seen = self.answers.get(request_id)
                if seen is not None:
                    if seen[0] != fingerprint:
                        raise IdempotencyConflict(request_id)
                    return seen[1]
            if patient_id in slot.patients:
                raise DuplicateBooking(slot.slot_id)
            if slot.booked + slot.held >= slot.capacity:
                raise SlotFull(slot.slot_id)
            booking_id = self.next_id
            self.next_id += 1
            expires = now + HOLD_TTL_MS
            slot.held += 1
            slot.patients[patient_id] = booking_id
            self.bookings[booking_id] = PyBooking(booking_id, slot, patient_id, clinic_id, expires)
            self.events.append(("held", booking_id, now))
            answer = (booking_id, expires)
            if request_id is not None:
                self.answers[request_id] = (fingerprint, answer)
            return answer

    def availability(self, slot: PySlot) -> Tuple[int, int, int, int]:
        with self.lock:
            return (slot.capacity, slot.booked, slot.held, slot.capacity - slot.booked - slot.held)

    def release(self, booking_id: int, request_id: Optional[str] = None) -> None:
        now = time.time_ns() // 1_000_000
        with self.lock:
            if request_id is not None:
                fingerprint = ("release", booking_id)
                seen = self.answers.get(request_id)
                if seen is not None:
                    if seen[0] != fingerprint:
                        raise IdempotencyConflict(request_id)
                    return
            b = self.bookings.get(booking_id)
            if b is None:
                raise BookingNotFound(booking_id)
            if b.status == "cancelled":
                raise AlreadyCancelled(booking_id)
            if b.status == "held":
                b.slot.held -= 1
            else:
                b.slot.booked -= 1
            del b.slot.patients[b.patient_id]
            b.status = "cancelled"
            self.events.append(("released", booking_id, now))
            if request_id is not None:
                self.answers[request_id] = (fingerprint, None)


# ---------------------------------------------------------------- workloads


def slot_ids() -> List[str]:
    return [f"EX-H001-DEV{d + 1:03d}-20241030-09001000" for d in range(SLOTS)]


def open_engine() -> Tuple[yilian.Engine, List[Any]]:
    engine = yilian.Engine({"clock_start": "2024-10-29T09:00:00+08:00"})
    engine.call(
        "sync-schedule",
        {
            "hospital_id": "H001",
            "schedule_data": [
                {
                    "device_id": f"DEV{d + 1:03d}",
                    "project_id": "P001",
                    "date": "2024-10-30",
                    "capacity": CAPACITY,
                    "available_slots": [{"start_time": "09:00", "end_time": "10:00"}],
                }
                for d in range(SLOTS)
            ],
        },
    )
    return engine, [engine.slot(s) for s in slot_ids()]


def open_pool() -> Tuple[PyPool, List[Any]]:
    pool = PyPool()
    for s in slot_ids():
        pool.add_slot(s, CAPACITY)
    return pool, [pool.slot(s) for s in slot_ids()]


# Single-threaded rounds are timed in thread CPU time: on a shared box the
# other tenants' load inflates wall time by whatever share they take, while
# CPU time (user + system, page faults included) counts only our work.
clock = time.thread_time


def run_native(engine: yilian.Engine, slots: List[Any], patients: List[str], req: Optional[List[str]]) -> float:
    hold, release, n = engine.hold, engine.release, len(slots)
    t0 = clock()
    if req is None:
        for i, p in enumerate(patients):
            release(hold(slots[i % n], p).booking_id)
    else:
        for i, p in enumerate(patients):
            release(hold(slots[i % n], p, request_id=req[i]).booking_id, req[i] + "r")
    return clock() - t0


def run_python(pool: PyPool, slots: List[Any], patients: List[str], req: Optional[List[str]]) -> float:
    hold, release, n = pool.hold, pool.release, len(slots)
    t0 = clock()
    if req is None:
        for i, p in enumerate(patients):
            release(hold(slots[i % n], p)[0])
    else:
        for i, p in enumerate(patients):
            release(hold(slots[i % n], p, request_id=req[i])[0], req[i] + "r")
    return clock() - t0


def read_native(engine: yilian.Engine, slots: List[Any], patients: List[str], req: Optional[List[str]]) -> float:
    availability, n = engine.availability, len(slots)
    t0 = clock()
    for i in range(len(patients)):
        availability(slots[i % n])
    return clock() - t0


def read_python(pool: PyPool, slots: List[Any], patients: List[str], req: Optional[List[str]]) -> float:
    availability, n = pool.availability, len(slots)
    t0 = clock()
    for i in range(len(patients)):
        availability(slots[i % n])
    return clock() - t0


def threaded(run: Callable[..., float], target: Any, slots: List[Any], patients: List[str], threads: int) -> float:
    """Wall time for `threads` threads each running its share on its own slots
    (wall time: the point is whether threads overlap)."""
    per = len(patients) // threads
    share = len(slots) // threads
    barrier = threading.Barrier(threads + 1)

    def body(t: int) -> None:
        barrier.wait()
        run(target, slots[t * share : (t + 1) * share], patients[t * per : (t + 1) * per], None)

    ths = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in ths:
        th.join()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ops", type=int, default=20000, help="hold+release pairs per round and side")
    args = ap.parse_args()

    engine, native_slots = open_engine()
    pool, py_slots = open_pool()
    results: Dict[str, List[Tuple[float, float]]] = {
        "1 thread": [],
        "1 thread, request ids": [],
        "2 threads": [],
        "availability (read)": [],
    }

    # Warm-up: first-touch allocations and caches on both sides.
    warm = [f"W{i}" for i in range(2000)]
    run_native(engine, native_slots, warm, None)
    run_python(pool, py_slots, warm, None)

    for r in range(args.rounds):
        patients = [f"R{r}-PAT{i:06d}" for i in range(args.ops)]
        req = [f"R{r}-REQ{i:06d}" for i in range(args.ops)]
        for name in results:
            if name == "2 threads":
                sides = [
                    ("native", lambda: threaded(run_native, engine, native_slots, [p + "t" for p in patients], 2)),
                    ("python", lambda: threaded(run_python, pool, py_slots, [p + "t" for p in patients], 2)),
                ]
            elif name == "availability (read)":
                sides = [
                    ("native", lambda: read_native(engine, native_slots, patients, None)),
                    ("python", lambda: read_python(pool, py_slots, patients, None)),
                ]
            else:
                rq = req if "request ids" in name else None
                sides = [
                    ("native", lambda rq=rq: run_native(engine, native_slots, patients, rq)),
                    ("python", lambda rq=rq: run_python(pool, py_slots, patients, rq)),
                ]
            if r % 2:
                sides.reverse()
            took = dict((side, fn()) for side, fn in sides)
            results[name].append((took["native"], took["python"]))

    engine.check_invariants()
    print(f"yilian {yilian.__version__}, Python {sys.version.split()[0]}; {args.rounds} interleaved rounds x {args.ops} hold+release pairs")
    print(f"{'workload':<24}{'yilian ns/op':>14}{'python ns/op':>14}{'yilian ops/s':>15}{'python ops/s':>15}{'ratio (median)':>16}")
    verdict = 0
    for name, rounds in results.items():
        # A hold and a release per pair; a read is one call. (Not `"read" in
        # name`: "thread" contains it, which once halved the thread rows' op count.)
        ops = args.ops if name.startswith("availability") else 2 * args.ops
        nat = statistics.median(n for n, _ in rounds)
        py = statistics.median(p for _, p in rounds)
        ratio = statistics.median(p / n for n, p in rounds)
        print(f"{name:<24}{nat / ops * 1e9:>14.0f}{py / ops * 1e9:>14.0f}{ops / nat:>15,.0f}{ops / py:>15,.0f}{ratio:>15.1f}x")
        if name == "1 thread":
            status = "meets" if ratio >= TARGET else "BELOW"
            print(f"single-threaded target >= {TARGET:.0f}x: {status} ({ratio:.1f}x)")
            if ratio < TARGET / 2:
                verdict = 1
    return verdict


if __name__ == "__main__":
    sys.exit(main())
