"""The shared test vectors (tests/vectors/*.json) through Engine.call.

Rules: tests/vectors/README.md. Every case runs twice: once with requests
and config as JSON text (as the README says), once as dicts (the native
dict -> JSON conversion). `request_text` is always sent verbatim.
"""

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import yilian
from conftest import VECTOR_STATS

VECTORS_DIR = Path(os.environ.get("YILIAN_VECTORS_DIR", Path(__file__).resolve().parents[2] / "tests" / "vectors"))


def load_cases() -> List[Tuple[str, Dict[str, Any], Dict[str, Any]]]:
    """(file name, file, case) for every case of every vector file, in file order."""
    out = []
    for path in sorted(VECTORS_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            out.append((path.name, data, case))
    return out


CASES = load_cases()


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def contains(expected: Any, actual: Any, path: str) -> None:
    """Raises AssertionError unless `actual` contains `expected` (README rules)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, ev in expected.items():
            assert key in actual, f"{path}.{key}: missing"
            contains(ev, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} elements, got {len(actual)}"
        for i, (ev, av) in enumerate(zip(expected, actual)):
            contains(ev, av, f"{path}[{i}]")
    elif isinstance(expected, bool) or isinstance(actual, bool):
        # JSON true is not 1, although Python says True == 1.
        assert type(expected) is type(actual) and expected == actual, f"{path}: expected {expected!r}, got {actual!r}"
    elif is_number(expected):
        assert is_number(actual) and expected == actual, f"{path}: expected {expected!r}, got {actual!r}"
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def test_vectors_found() -> None:
    """A runner that finds no vectors must fail, not pass vacuously."""
    assert VECTORS_DIR.is_dir(), f"no vector folder at {VECTORS_DIR}"
    assert len(list(VECTORS_DIR.glob("*.json"))) > 0, f"no vector files in {VECTORS_DIR}"
    assert len(CASES) > 0, f"no cases in {VECTORS_DIR}"


def test_contains_rules() -> None:
    """The matcher itself: partial objects, exact arrays, numbers by value, bool is not int."""
    contains({"a": 1}, {"a": 1.0, "b": 2}, "data")
    contains([{"x": "y"}], [{"x": "y", "z": 0}], "data")
    for expected, actual in [({"a": 1}, {}), ([1], [1, 2]), (True, 1), (1, True), ("1", 1), (None, 0), ({"a": {"b": 1}}, {"a": {"b": 2}})]:
        with pytest.raises(AssertionError):
            contains(expected, actual, "data")


@pytest.mark.parametrize("mode", ["text", "dict"])
@pytest.mark.parametrize(
    "file_name,vector_file,case",
    CASES,
    ids=[f"{f}::{c.get('name', i)}" for i, (f, _, c) in enumerate(CASES)],
)
def test_vector(file_name: str, vector_file: Dict[str, Any], case: Dict[str, Any], mode: str) -> None:
    config = case.get("config", vector_file.get("config", {}))
    engine = yilian.Engine(json.dumps(config) if mode == "text" else config)
    try:
        steps = case["steps"]
        assert steps, "case has no steps"
        for i, step in enumerate(steps):
            command = step["command"]
            if "request_text" in step:
                request: Any = step["request_text"]
            else:
                body = step.get("request", {})
                request = body if mode == "dict" and isinstance(body, dict) else json.dumps(body, ensure_ascii=False)
            where = f"step {i} ({command})"
            # A step may state who acts (a dict in dict mode, JSON text in text mode).
            principal: Any = step.get("principal")
            if principal is not None and mode != "dict":
                principal = json.dumps(principal, ensure_ascii=False)
            if "expect_error" in step:
                with pytest.raises(yilian.YilianError) as info:
                    data = engine.call(command, request, principal=principal)
                    pytest.fail(f"{where}: expected error {step['expect_error']}, got success {data!r}")
                err = info.value
                envelope = {
                    "status": "error",
                    "code": err.code,
                    "numeric_code": err.numeric_code,
                    "message": err.message,
                    "message_zh": err.message_zh,
                }
                contains(step["expect_error"], envelope, where)
            else:
                data = engine.call(command, request, principal=principal)
                if "expect" in step:
                    contains(step["expect"], data, f"{where}: data")
    finally:
        engine.close()
    VECTOR_STATS["cases"] += 1
    VECTOR_STATS["steps"] += len(steps)
    VECTOR_STATS["files"] = len({f for f, _, _ in CASES})
