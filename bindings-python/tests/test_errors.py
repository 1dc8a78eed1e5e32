"""Every kind of bad input raises the right YilianError subclass and code,
and never crashes the interpreter or changes the pool."""

import math
from typing import Any, Type

import pytest

import yilian
from conftest import CLOCK_START, SLOT_ID, pre_book, schedule


def raises(cls: Type[yilian.YilianError], code: str, fn: Any, *args: Any, **kwargs: Any) -> yilian.YilianError:
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.code == code, f"expected {code}, got {err.code}: {err}"
    assert type(err) is cls
    assert err.message and err.message_zh
    return err


def assert_untouched(engine: yilian.Engine) -> None:
    info = engine.call("slot-info", {"slot_id": SLOT_ID})
    assert (info["booked"], info["held"], info["remaining"]) == (0, 0, 5)
    engine.check_invariants()


def test_malformed_json_text(engine: yilian.Engine) -> None:
    for text in ['{"patient_id": ', "{not json", "nul", '{"a":1}}', b'{"a":']:
        raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", text)
    assert_untouched(engine)


def test_json_text_that_is_not_an_object(engine: yilian.Engine) -> None:
    for text in ["[1,2]", "42", '"text"', "null"]:
        raises(yilian.InputError, "INVALID_FIELD", engine.call, "pre-book-slot", text)


@pytest.mark.parametrize("request_value", [[1, 2], ("a",), 42, 4.2, True, {1, 2}, object()], ids=type)
def test_request_that_is_neither_dict_nor_text(engine: yilian.Engine, request_value: Any) -> None:
    err = raises(yilian.InputError, "INVALID_FIELD", engine.call, "pre-book-slot", request_value)
    assert type(request_value).__name__ in err.message


@pytest.mark.parametrize(
    "bad_value",
    [{1, 2}, object(), b"bytes", math.nan, math.inf, 2**64, -(2**63) - 1, bytearray(b"x")],
    ids=["set", "object", "bytes", "nan", "inf", "int>u64", "int<i64", "bytearray"],
)
def test_dict_request_holding_a_value_json_cannot_carry(engine: yilian.Engine, bad_value: Any) -> None:
    request = dict(pre_book(), extra={"nested": [1, bad_value]})
    raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", request)
    assert_untouched(engine)


def test_dict_request_with_a_non_str_key(engine: yilian.Engine) -> None:
    err = raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", {**pre_book(), 7: "x"})
    assert "int" in err.message


def test_large_ints_within_64_bits_pass(engine: yilian.Engine) -> None:
    # u64::MAX and i64::MIN are valid JSON numbers; the core takes numeric ids
    # (HIS systems send them) as their decimal text.
    for n in (2**64 - 1, -(2**63)):
        data = engine.call("pre-book-slot", dict(pre_book(), patient_id=n))
        assert data["status"] == "pre-booked"


def test_self_referencing_and_too_deep_requests_are_refused_not_crashing(engine: yilian.Engine) -> None:
    loop: dict = {}
    loop["self"] = loop
    raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", loop)
    cycle: list = []
    cycle.append(cycle)
    raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", {"a": cycle})
    deep: Any = "leaf"
    for _ in range(200):
        deep = {"d": deep}
    raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", deep)
    # The same depth as JSON text is refused by the core's parser.
    raises(yilian.InputError, "INVALID_JSON", engine.call, "pre-book-slot", '{"d":' * 200 + "1" + "}" * 200)


def test_lone_surrogates_are_binding_errors(engine: yilian.Engine) -> None:
    bad = "PAT\ud800"
    raises(yilian.BindingError, "INVALID_UTF8", engine.call, "pre-book-slot", dict(pre_book(), patient_id=bad))
    raises(yilian.BindingError, "INVALID_UTF8", engine.call, "pre-book-slot", {bad: 1})
    raises(yilian.BindingError, "INVALID_UTF8", engine.call, "pre-book-slot", '{"patient_id":"\ud800"}')
    raises(yilian.BindingError, "INVALID_UTF8", engine.call, "pre-book\udc00", {})
    raises(yilian.BindingError, "INVALID_UTF8", engine.call, "pre-book-slot", b'{"patient_id":"\xff"}')
    slot = engine.slot(SLOT_ID)
    raises(yilian.BindingError, "INVALID_UTF8", engine.hold, slot, bad)
    raises(yilian.BindingError, "INVALID_UTF8", engine.hold, slot, "PAT001", request_id=bad)
    raises(yilian.BindingError, "INVALID_UTF8", engine.slot, bad)
    err = raises(yilian.BindingError, "INVALID_UTF8", engine.hold, slot, "PAT001", clinic_id=bad)
    assert err.numeric_code == 8002
    assert_untouched(engine)


def test_unknown_command(engine: yilian.Engine) -> None:
    err = raises(yilian.InputError, "UNKNOWN_COMMAND", engine.call, "book-a-slot", {})
    assert err.numeric_code == 1005


def test_missing_field(engine: yilian.Engine) -> None:
    request = pre_book()
    del request["patient_id"]
    raises(yilian.InputError, "MISSING_FIELD", engine.call, "pre-book-slot", request)
    raises(yilian.InputError, "MISSING_FIELD", engine.call, "sync-schedule", {"hospital_id": "H001"})
    raises(yilian.InputError, "MISSING_FIELD", engine.call, "pre-book-slot")  # None means {}
    raises(yilian.InputError, "MISSING_FIELD", engine.hold, engine.slot(SLOT_ID), "")
    assert_untouched(engine)


def test_wrong_type_and_value(engine: yilian.Engine) -> None:
    raises(yilian.InputError, "INVALID_FIELD", engine.call, "pre-book-slot", dict(pre_book(), patient_id=["x"]))
    raises(yilian.InputError, "INVALID_FIELD", engine.call, "pre-book-slot", dict(pre_book(), date="30/10/2024"))
    raises(yilian.InputError, "INVALID_FIELD", engine.call, "payment-status", {"booking_id": "B000001", "payment_status": "maybe"})
    raises(yilian.InputError, "INVALID_FIELD", engine.call, "advance-clock", {"seconds": "ten"})
    assert_untouched(engine)


def test_typed_arguments_of_the_wrong_python_type_raise_type_errors(engine: yilian.Engine) -> None:
    # The typed layer follows Python conventions for argument types.
    slot = engine.slot(SLOT_ID)
    with pytest.raises(TypeError):
        engine.hold(SLOT_ID, "PAT001")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.hold(slot, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.hold(slot, "PAT001", "req-1")  # type: ignore[misc]
    with pytest.raises(TypeError):
        engine.call(1, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.confirm("B000001")  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        engine.release(-1)
    assert_untouched(engine)


def test_unknown_slot_and_booking(engine: yilian.Engine) -> None:
    raises(yilian.NotFoundError, "SLOT_NOT_FOUND", engine.call, "slot-info", {"slot_id": "EX-NOPE"})
    raises(yilian.NotFoundError, "SLOT_NOT_FOUND", engine.slot, "EX-NOPE")
    raises(yilian.NotFoundError, "BOOKING_NOT_FOUND", engine.call, "cancel-slot", {"booking_id": "B999999"})
    raises(yilian.NotFoundError, "BOOKING_NOT_FOUND", engine.confirm, 999999)
    raises(yilian.NotFoundError, "BOOKING_NOT_FOUND", engine.release, 999999)
    assert_untouched(engine)


def test_slot_handle_of_another_engine_is_not_found(engine: yilian.Engine) -> None:
    with yilian.Engine({"clock_start": CLOCK_START, "clock": "manual"}) as big:
        big.call("sync-schedule", schedule(devices=3))
        foreign = big.slot("EX-H001-DEV003-20241030-09001000")
        assert foreign.index > 0
        raises(yilian.NotFoundError, "SLOT_NOT_FOUND", engine.availability, foreign)
        raises(yilian.NotFoundError, "SLOT_NOT_FOUND", engine.hold, foreign, "PAT001")


def test_oversized_request() -> None:
    with yilian.Engine({"clock_start": CLOCK_START, "max_request_bytes": 1024}) as e:
        e.call("sync-schedule", schedule())
        big = dict(pre_book(), note="x" * 2000)
        raises(yilian.InputError, "REQUEST_TOO_LARGE", e.call, "pre-book-slot", big)
        import json

        raises(yilian.InputError, "REQUEST_TOO_LARGE", e.call, "pre-book-slot", json.dumps(big))
        assert e.call("slot-info", {"slot_id": SLOT_ID})["remaining"] == 5


def test_wrong_state(engine: yilian.Engine) -> None:
    booking = engine.call("pre-book-slot", pre_book())["booking_id"]
    engine.call("book-slot", {"booking_id": booking})
    raises(yilian.StateError, "INVALID_STATE", engine.call, "book-slot", {"booking_id": booking})
    raises(yilian.StateError, "REFUND_NOT_ALLOWED", engine.call, "payment-status", {"booking_id": booking, "payment_status": "refunded"})
    engine.call("cancel-slot", {"booking_id": booking})
    raises(yilian.StateError, "ALREADY_CANCELLED", engine.call, "cancel-slot", {"booking_id": booking})
    h = engine.hold(engine.slot(SLOT_ID), "PAT002")
    engine.release(h.booking_id)
    raises(yilian.StateError, "ALREADY_CANCELLED", engine.release, h.booking_id)
    raises(yilian.StateError, "ALREADY_CANCELLED", engine.confirm, h.booking_id)
    assert_untouched(engine)


def test_duplicate_and_full(engine: yilian.Engine) -> None:
    slot = engine.slot(SLOT_ID)
    engine.hold(slot, "PAT001")
    raises(yilian.ConflictError, "DUPLICATE_BOOKING", engine.hold, slot, "PAT001")


def test_expired_hold(engine: yilian.Engine) -> None:
    slot = engine.slot(SLOT_ID)
    typed = engine.hold(slot, "PAT001")
    by_command = engine.call("pre-book-slot", pre_book("PAT002"))["booking_id"]
    assert engine.availability(slot).held == 2
    engine.call("advance-clock", {"seconds": 901})
    raises(yilian.StateError, "HOLD_EXPIRED", engine.confirm, typed.booking_id)
    raises(yilian.StateError, "HOLD_EXPIRED", engine.call, "payment-status", {"booking_id": by_command, "payment_status": "paid"})
    assert engine.availability(slot).remaining == 5
    engine.check_invariants()


def test_advance_clock_needs_a_manual_clock() -> None:
    with yilian.Engine({"clock_start": CLOCK_START}) as e:
        raises(yilian.StateError, "INVALID_STATE", e.call, "advance-clock", {"seconds": 10})


def test_closed_engine() -> None:
    e = yilian.Engine({"clock_start": CLOCK_START})
    e.call("sync-schedule", schedule())
    slot = e.slot(SLOT_ID)
    h = e.hold(slot, "PAT001")
    e.close()
    for fn, args in [
        (e.call, ("slot-info", {"slot_id": SLOT_ID})),
        (e.slot, (SLOT_ID,)),
        (e.hold, (slot, "PAT002")),
        (e.confirm, (h.booking_id,)),
        (e.release, (h.booking_id,)),
        (e.availability, (slot,)),
    ]:
        err = raises(yilian.StorageError, "ENGINE_CLOSED", fn, *args)
        assert err.numeric_code == 7004


@pytest.mark.parametrize(
    "config",
    ['{"data_dri": "x"}', "{", "[]", [], 42, {"clock": "sundial"}, {"role": "community"}, {"max_request_bytes": 10}],
    ids=["unknown-key", "malformed", "json-array", "list", "int", "bad-clock", "community-without-id", "tiny-limit"],
)
def test_bad_config(config: Any) -> None:
    raises(yilian.InputError, "INVALID_CONFIG", yilian.Engine, config)


def test_messages_carry_no_request_values(engine: yilian.Engine) -> None:
    # A conversion error names types and paths, never the (possibly personal) values.
    secret = "110101199003071234"
    with pytest.raises(yilian.InputError) as info:
        engine.call("pre-book-slot", dict(pre_book(), id_number={secret}))
    assert secret not in str(info.value) and secret not in info.value.message_zh
