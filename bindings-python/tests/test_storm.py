"""Many threads on few slots: no overbooking, counts that add up, and proof
that core calls run with the GIL released."""

import json
import random
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Tuple

import yilian
from conftest import CLOCK_START, schedule, slot_id

THREADS = 16
ATTEMPTS = 150
DEVICES = 4  # 4 slots x capacity 5 = 20 places for 2,400 attempts
CAPACITY = 5


def test_threaded_storm_never_overbooks() -> None:
    with yilian.Engine({"clock_start": CLOCK_START, "clock": "manual"}) as engine:
        engine.call("sync-schedule", schedule(capacity=CAPACITY, devices=DEVICES))
        slots = [engine.slot(slot_id(device=d + 1)) for d in range(DEVICES)]
        start = threading.Barrier(THREADS)
        lock = threading.Lock()
        outcome: Counter = Counter()
        kept: Dict[Tuple[int, str], int] = Counter()
        unexpected: List[BaseException] = []

        def worker(t: int) -> None:
            rng = random.Random(t)
            start.wait()
            local: Counter = Counter()
            local_kept: Counter = Counter()
            try:
                for i in range(ATTEMPTS):
                    s = slots[(t + i) % DEVICES]
                    try:
                        # Every attempt is a distinct patient: one booking per patient per slot.
                        h = engine.hold(s, f"T{t:02d}-P{i:04d}", clinic_id=f"C{t % 3}")
                    except yilian.ConflictError as err:
                        assert err.code == "SLOT_FULL", err
                        local["full"] += 1
                        continue
                    local["held"] += 1
                    roll = rng.random()
                    if roll < 0.4:
                        engine.confirm(h.booking_id)
                        local_kept[(s.index, "booked")] += 1
                    elif roll < 0.8:
                        engine.release(h.booking_id)
                        local["released"] += 1
                    else:
                        local_kept[(s.index, "held")] += 1
                    if i % 25 == 0:
                        a = engine.availability(s)
                        assert a.booked + a.held <= a.capacity, a
            except BaseException as exc:  # surfaced below; a thread must not die silently
                with lock:
                    unexpected.append(exc)
            with lock:
                outcome.update(local)
                kept.update(local_kept)

        threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not any(th.is_alive() for th in threads), "a storm thread never finished"
        assert not unexpected, unexpected

        total_booked = total_held = 0
        for s in slots:
            a = engine.availability(s)
            assert a.booked + a.held <= a.capacity, a
            assert a.capacity == a.booked + a.held + a.remaining, a
            assert a.booked == kept[(s.index, "booked")], (a, kept)
            assert a.held == kept[(s.index, "held")], (a, kept)
            info = engine.call("slot-info", {"slot_id": s.slot_id})
            assert (info["booked"], info["held"], info["remaining"]) == (a.booked, a.held, a.remaining)
            total_booked += a.booked
            total_held += a.held
        assert outcome["held"] + outcome["full"] == THREADS * ATTEMPTS
        assert outcome["held"] - outcome["released"] == total_booked + total_held
        assert outcome["full"] > 0, "the storm never filled a slot: it tested nothing"
        engine.check_invariants()


def samples_during(call: Callable[[], Any]) -> Tuple[int, float]:
    """Runs `call` on this thread while another thread samples the clock in a
    pure-Python loop; returns how many samples fell in the middle half of the
    call, and how long the call took. A thread holding the GIL throughout
    leaves no sample there."""
    stop = threading.Event()
    samples: List[float] = []
    ready = threading.Event()

    def sampler() -> None:
        last = 0.0
        ready.set()
        while not stop.is_set():
            now = time.perf_counter()
            if now - last >= 0.001:
                samples.append(now)
                last = now

    th = threading.Thread(target=sampler)
    th.start()
    ready.wait()
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    stop.set()
    th.join()
    quarter = (t1 - t0) / 4
    return sum(1 for s in samples if t0 + quarter <= s <= t1 - quarter), t1 - t0


def test_core_calls_release_the_gil() -> None:
    engine = yilian.Engine({"clock_start": CLOCK_START, "max_request_bytes": 1 << 28})
    try:
        # One long core call: a big sync-schedule as JSON text (converting text
        # costs next to nothing; parsing and creating the slots is core work).
        devices = 2000
        while True:
            request = json.dumps(schedule(devices=devices, hours=8))
            probe = yilian.Engine({"clock_start": CLOCK_START, "max_request_bytes": 1 << 28})
            t0 = time.perf_counter()
            probe.call("sync-schedule", request)
            took = time.perf_counter() - t0
            probe.close()
            if took >= 0.1 or devices >= 32000:
                break
            devices *= 2
        native, native_took = samples_during(lambda: engine.call("sync-schedule", request))

        # Control: sum() over a range is one C loop that keeps the GIL (no
        # bytecode runs, so no thread switch); the sampler must stall there.
        n = 1_000_000
        while True:
            t0 = time.perf_counter()
            sum(range(n))
            if time.perf_counter() - t0 >= native_took * 0.8 or n >= 10**10:
                break
            n *= 2
        held, held_took = samples_during(lambda: sum(range(n)))
    finally:
        engine.close()
    assert held == 0, f"control: {held} samples while sum() held the GIL for {held_took:.3f}s"
    assert native >= 3, f"only {native} samples while the core worked for {native_took:.3f}s: the GIL was not released"


def test_close_during_a_storm_is_clean(tmp_path: Any) -> None:
    """Threads calling while another thread closes: each call either works or
    raises ENGINE_CLOSED; nothing crashes; the directory is free afterwards."""
    config = {"data_dir": str(tmp_path), "clock_start": CLOCK_START, "clock": "manual", "durable_sync": "normal"}
    engine = yilian.Engine(config)
    engine.call("sync-schedule", schedule(capacity=CAPACITY, devices=DEVICES))
    slots = [engine.slot(slot_id(device=d + 1)) for d in range(DEVICES)]
    codes: Counter = Counter()
    lock = threading.Lock()
    go = threading.Event()

    def worker(t: int) -> None:
        go.wait()
        local: Counter = Counter()
        for i in range(400):
            try:
                h = engine.hold(slots[i % DEVICES], f"C{t}-{i}")
                engine.release(h.booking_id)
                local["ok"] += 1
            except yilian.YilianError as err:
                local[err.code] += 1
        with lock:
            codes.update(local)

    # Daemon threads with a bounded join: a call stuck forever fails the test
    # instead of hanging the run.
    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for th in threads:
        th.start()
    go.set()
    time.sleep(0.01)
    closer = threading.Thread(target=engine.close, daemon=True)
    closer.start()
    closer.join(timeout=60)
    assert not closer.is_alive(), "close() never returned"
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads), "a call never returned after close()"
    assert set(codes) <= {"ok", "ENGINE_CLOSED", "SLOT_FULL"}, codes
    assert codes["ENGINE_CLOSED"] > 0, f"close landed after the storm ended: {codes}"
    with yilian.Engine(config) as again:
        again.check_invariants()
        for d in range(DEVICES):
            a = again.availability(again.slot(slot_id(device=d + 1)))
            assert a.capacity == a.booked + a.held + a.remaining
