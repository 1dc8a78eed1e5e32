"""Translating a 50-sub-item lab report from Python (issue 7).

yilian's ``LabTranslator.translate(report)`` against the dict comprehension a
Python integrator writes with the same table, ``{table[k]: v for k, v in
report.items()}``, in the same process in interleaved rounds; the figure is
the median of the per-round ratios (absolute numbers drift on a shared box).

    python bench/bench_lab_translate.py [--rounds 7] [--ops 100000]

Exits 1 if yilian is not faster than the dict comprehension.
"""

import argparse
import statistics
import sys
import time
from typing import Any, Callable, Dict

import yilian

N = 50


def engine() -> yilian.Engine:
    e = yilian.Engine({"clock_start": "2024-10-29T09:00:00+08:00"})
    e.call("lab-std-item-upsert", {"items": [{"code": f"STD-B-{i:03d}", "name": f"小项{i}", "specimen_type": "血清"} for i in range(N)]})
    e.call("lab-inst-item-upsert", {"institution_id": "C001", "items": [{"code": f"C001-{i:04d}", "name": f"本院{i}", "specimen_type": "血清", "std_code": f"STD-B-{i:03d}"} for i in range(N)]})
    e.call("lab-inst-item-upsert", {"institution_id": "H001", "items": [{"code": f"L{i:03d}", "name": f"检验{i}", "specimen_type": "血清", "std_code": f"STD-B-{i:03d}"} for i in range(N)]})
    return e


def timed(f: Callable[[], Any], ops: int) -> float:
    t = time.perf_counter()
    for _ in range(ops):
        f()
    return (time.perf_counter() - t) / ops


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--ops", type=int, default=100_000)
    a = ap.parse_args()
    e = engine()
    tr = e.lab_translator("C001", "H001")
    report: Dict[str, str] = {f"L{i:03d}": f"{i % 9 + 1}.{i % 10}" for i in range(N)}
    # The same table as a plain dict, built once (as an integrator would: from
    # the mapping, before any report arrives). Its keys are equal to the
    # report's but not the same objects, as with any report parsed later;
    # built from the report's own keys, every lookup would be an identity hit
    # that no real report gets.
    table: Dict[str, str] = {(k + "#")[:-1]: tr.lookup(k)[0] for k in report}  # type: ignore[index]
    assert all(t is not r for t in table for r in report)
    assert tr.translate(report) == {table[k]: v for k, v in report.items()}

    def ours() -> Any:
        return tr.translate(report)

    def theirs() -> Any:
        return {table[k]: v for k, v in report.items()}

    ratios, a_ns, b_ns = [], [], []
    for r in range(a.rounds):
        pair = [("yilian", ours), ("dict", theirs)]
        if r % 2:
            pair.reverse()
        t = {name: timed(f, a.ops) for name, f in pair}
        ratios.append(t["dict"] / t["yilian"])
        a_ns.append(t["yilian"] * 1e9)
        b_ns.append(t["dict"] * 1e9)
    med = statistics.median(ratios)
    print(f"lab translate, {N} sub-items: yilian {statistics.median(a_ns):.0f} ns, dict comprehension {statistics.median(b_ns):.0f} ns; "
          f"yilian is {med:.2f}x the speed of the dict comprehension (median of {a.rounds} rounds)")
    return 0 if med > 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
