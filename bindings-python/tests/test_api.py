"""The Python API: engine lifecycle, the typed hot path, objects, errors, docs."""

import inspect
import json
import re
import typing

import pytest

import yilian
import yilian._native as native
from conftest import CLOCK_START, SLOT_ID, pre_book, schedule


def test_version_matches_the_wheel() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", yilian.__version__)
    info = yilian.Engine().call("engine-info")
    assert yilian.__version__ in json.dumps(info), "engine-info names the core version the module was built from"


def test_engine_opens_from_none_dict_text_and_bytes() -> None:
    for config in (None, {}, "{}", "", b'{"clock": "manual"}', {"clock_start": CLOCK_START, "release": {"days": 3}}):
        e = yilian.Engine(config)
        assert not e.closed
        e.close()
        assert e.closed
    assert yilian.Engine().call("engine-info") is not None


def test_context_manager_closes_and_close_is_idempotent() -> None:
    with yilian.Engine() as e:
        assert repr(e) == "<yilian.Engine open>"
        assert e.__enter__() is e
    assert e.closed and repr(e) == "<yilian.Engine closed>"
    e.close()
    e.close()
    with pytest.raises(yilian.StorageError) as info:
        e.call("engine-info")
    assert info.value.code == "ENGINE_CLOSED" and info.value.numeric_code == 7004


def test_context_manager_closes_on_exception_and_lets_it_propagate() -> None:
    with pytest.raises(KeyError):
        with yilian.Engine() as e:
            raise KeyError("boom")
    assert e.closed


def test_call_returns_python_objects(engine: yilian.Engine) -> None:
    data = engine.call("pre-book-slot", pre_book())
    assert data["booking_id"] == "B000001" and data["status"] == "pre-booked"
    info = engine.call("slot-info", {"slot_id": SLOT_ID})
    assert type(info) is dict
    assert info["capacity"] == 5 and type(info["capacity"]) is int
    assert info["held"] == 1 and info["remaining"] == 4
    assert info["tight"] is False
    assert isinstance(info["waitlist"], list)
    # JSON text and dict requests are the same request.
    assert engine.call("slot-info", json.dumps({"slot_id": SLOT_ID})) == info
    assert engine.call("slot-info", json.dumps({"slot_id": SLOT_ID}).encode()) == info


def test_call_request_conversion_keeps_types_and_unicode(engine: yilian.Engine) -> None:
    # A tuple is a JSON array; floats and bools go through unchanged; CJK and
    # emoji survive both ways (the clinic name is echoed into the booking).
    req = dict(pre_book("患者-😀"), clinic_id="社区卫生服务中心")
    data = engine.call("pre-book-slot", req)
    booking = engine.call("booking-info", {"booking_id": data["booking_id"]})
    assert "社区卫生服务中心" in json.dumps(booking, ensure_ascii=False)


def test_typed_hold_confirm_release(engine: yilian.Engine) -> None:
    slot = engine.slot(SLOT_ID)
    assert isinstance(slot, yilian.SlotHandle)
    assert slot.slot_id == SLOT_ID and slot.index == 0
    assert repr(slot) == f"SlotHandle('{SLOT_ID}', index=0)"
    assert slot == engine.slot(SLOT_ID) and hash(slot) == hash(engine.slot(SLOT_ID))

    a = engine.availability(slot)
    assert (a.capacity, a.booked, a.held, a.remaining, a.waiting, a.closed) == (5, 0, 0, 5, 0, False)
    assert repr(a) == "Availability(capacity=5, booked=0, held=0, remaining=5, reserved_quota=0, waiting=0, tight=False, closed=False)"

    h = engine.hold(slot, "PAT001", clinic_id="C001")
    assert isinstance(h, yilian.Hold)
    assert h.booking_id == 1 and h.booking_ref == "B000001"
    # The manual clock starts at 09:00 +08:00; the default hold lasts 900 s.
    assert h.expires_ms == 1730163600000 + 900_000
    assert repr(h) == "Hold(booking_id=1, booking_ref='B000001', expires_ms=1730164500000)"
    assert engine.availability(slot).held == 1

    engine.confirm(h.booking_id)
    a = engine.availability(slot)
    assert (a.booked, a.held, a.remaining) == (1, 0, 4)
    assert engine.call("booking-info", {"booking_id": h.booking_ref})["status"] == "booked"

    engine.release(h.booking_id)
    a = engine.availability(slot)
    assert (a.booked, a.held, a.remaining) == (0, 0, 5)
    assert a == engine.availability(slot)
    engine.check_invariants()


def test_typed_hold_request_id_is_idempotent(engine: yilian.Engine) -> None:
    slot = engine.slot(SLOT_ID)
    first = engine.hold(slot, "PAT001", request_id="req-1")
    again = engine.hold(slot, "PAT001", request_id="req-1")
    assert first == again
    assert engine.availability(slot).held == 1
    with pytest.raises(yilian.IdempotencyError) as info:
        engine.hold(slot, "PAT002", request_id="req-1")
    assert info.value.code == "IDEMPOTENCY_CONFLICT"
    engine.release(first.booking_id, request_id="rel-1")
    engine.release(first.booking_id, request_id="rel-1")  # a retry of the same release succeeds
    assert engine.availability(slot).remaining == 5


def test_typed_hold_priority(engine: yilian.Engine) -> None:
    slot = engine.slot(SLOT_ID)
    h = engine.hold(slot, "PAT001", priority="referral")
    assert engine.call("booking-info", {"booking_id": h.booking_ref})["booking_id"] == h.booking_ref
    with pytest.raises(yilian.InputError) as info:
        engine.hold(slot, "PAT002", priority="vip")
    assert info.value.code == "INVALID_FIELD"


def test_typed_path_and_commands_see_the_same_pool(engine: yilian.Engine) -> None:
    slot = engine.slot(SLOT_ID)
    for i in range(4):
        engine.hold(slot, f"PAT{i}")
    engine.call("pre-book-slot", pre_book("PAT9"))
    with pytest.raises(yilian.ConflictError) as info:
        engine.hold(slot, "PAT10")
    assert info.value.code == "SLOT_FULL" and info.value.numeric_code == 3001
    assert engine.call("slot-info", {"slot_id": SLOT_ID})["remaining"] == 0


def test_commands_and_error_codes_are_listed() -> None:
    names = yilian.commands()
    assert "pre-book-slot" in names and "advance-clock" in names
    codes = yilian.error_codes()
    assert ("SLOT_FULL", 3001, "conflict") in codes
    assert ("PANIC", 9002, "internal") in codes
    assert [n for _, n, _ in codes] == sorted(n for _, n, _ in codes)


FAMILY_CLASS = {
    1: ("input", yilian.InputError),
    2: ("not_found", yilian.NotFoundError),
    3: ("conflict", yilian.ConflictError),
    4: ("state", yilian.StateError),
    5: ("permission", yilian.ForbiddenError),
    6: ("idempotency", yilian.IdempotencyError),
    7: ("storage", yilian.StorageError),
    8: ("binding", yilian.BindingError),
    9: ("internal", yilian.InternalError),
}


def test_every_error_code_maps_to_its_family_class() -> None:
    codes = yilian.error_codes()
    assert len(codes) >= 30
    seen_families = set()
    for code, numeric, family in codes:
        name, cls = FAMILY_CLASS[numeric // 1000]
        assert family == name, f"{code}: family {family} but numeric {numeric}"
        with pytest.raises(yilian.YilianError) as info:
            native._raise_code(numeric)
        err = info.value
        assert type(err) is cls, f"{code} raised {type(err).__name__}, expected {cls.__name__}"
        assert (err.code, err.numeric_code) == (code, numeric)
        assert err.message and err.message_zh
        assert (err.message, err.message_zh) == (yilian.ErrorCode(numeric).message, yilian.ErrorCode(numeric).message_zh)
        assert str(err).startswith(code + ": ")
        seen_families.add(numeric // 1000)
    assert seen_families == set(FAMILY_CLASS), "every family has at least one code"


def test_generated_error_code_enum_matches_the_module() -> None:
    """yilian/_codes.py is generated from the core's table (tools/gen-bindings)."""
    codes = yilian.error_codes()
    assert [(c.name, c.value, c.family) for c in yilian.ErrorCode] == codes
    assert typing.get_args(yilian.ErrorCodeName) == tuple(code for code, _, _ in codes)
    assert set(typing.get_args(yilian.ErrorFamilyName)) == {name for name, _ in FAMILY_CLASS.values()}
    assert yilian.ErrorCode.SLOT_FULL == 3001 and yilian.ErrorCode(3001) is yilian.ErrorCode["SLOT_FULL"]
    assert yilian.ErrorCode.SLOT_FULL.family == "conflict" and yilian.ErrorCode.SLOT_FULL.message_zh == "号源已满"


def test_exception_hierarchy() -> None:
    assert issubclass(yilian.YilianError, Exception)
    for _, cls in FAMILY_CLASS.values():
        assert issubclass(cls, yilian.YilianError) and cls is not yilian.YilianError
        assert cls.__module__ == "yilian" and getattr(yilian, cls.__name__) is cls
    import builtins

    assert not any(hasattr(builtins, cls.__name__) for _, cls in FAMILY_CLASS.values()), "no builtin is shadowed"


def test_panic_becomes_internal_error_not_base_exception() -> None:
    try:
        native._test_panic()
    except Exception as err:  # noqa: BLE001 - the point: `except Exception` catches it
        assert type(err) is yilian.InternalError
        assert err.code == "PANIC" and err.numeric_code == 9002
        assert "deliberate panic" in err.message
    else:
        pytest.fail("the panic hook did not raise")
    # The module still works after a caught panic.
    with yilian.Engine() as e:
        e.call("sync-schedule", schedule())


def test_every_public_name_has_a_docstring() -> None:
    assert (yilian.__doc__ or "").strip()
    missing = []
    for name in yilian.__all__:
        obj = getattr(yilian, name)
        if name == "__version__":
            continue
        if typing.get_origin(obj) is typing.Literal:
            continue  # a type alias (ErrorCodeName, ...): documented in yilian/_codes.py; typing objects have no own docstring
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert not missing, f"no docstring: {missing}"


def test_signatures_are_introspectable() -> None:
    sig = inspect.signature(yilian.Engine.hold)
    assert list(sig.parameters) == ["self", "slot", "patient_id", "request_id", "clinic_id", "priority"]
    assert sig.parameters["request_id"].kind is inspect.Parameter.KEYWORD_ONLY
    assert str(inspect.signature(yilian.Engine.call)) == "(self, /, command, request=None, *, principal=None)"


def test_call_as_a_principal_binds_the_acting_institution() -> None:
    with yilian.Engine({"clock_start": CLOCK_START}) as e:
        e.call("sync-schedule", schedule())
        c001 = {"role": "community", "institution_id": "C001", "operator": "王护士"}
        held = e.call("pre-book-slot", {**pre_book(), "clinic_id": None}, principal=c001)
        assert held["clinic_id"] == "C001"
        with pytest.raises(yilian.ForbiddenError) as info:
            e.call("cancel-slot", {"booking_id": held["booking_id"], "institution_id": "C001"}, principal='{"role":"community","institution_id":"C002"}')
        assert info.value.code == "FORBIDDEN" and info.value.numeric_code == 5001
        assert e.call("booking-info", {"booking_id": held["booking_id"]})["status"] == "pre-booked"
        with pytest.raises(yilian.InputError):
            e.call("engine-info", principal={"role": "community"})
        assert e.call("engine-info", principal=c001)["principal"]["institution_id"] == "C001"
