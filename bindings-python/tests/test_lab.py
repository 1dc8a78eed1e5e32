"""The lab translator (委托检验): results into an institution's own sub-items."""

from typing import Any, Dict, List

import pytest

import yilian

CFG = {"clock_start": "2024-10-29T09:00:00+08:00"}


def lab_engine(n: int = 3) -> yilian.Engine:
    e = yilian.Engine(CFG)
    e.call("lab-std-item-upsert", {"items": [{"code": f"STD-{i}", "name": f"小项{i}", "specimen_type": "血清", "unit": "mmol/L", "ref_low": 1, "ref_high": 9} for i in range(n)]})
    e.call("lab-inst-item-upsert", {"institution_id": "C001", "items": [{"code": f"C-{i}", "name": f"本院{i}", "specimen_type": "血清", "std_code": f"STD-{i}"} for i in range(n)]})
    e.call("lab-inst-item-upsert", {"institution_id": "H001", "items": [{"code": f"L-{i}", "name": f"检验{i}", "specimen_type": "血清", "std_code": f"STD-{i}"} for i in range(n)]})
    return e


def test_translates_dicts_pairs_and_result_dicts() -> None:
    with lab_engine() as e:
        t = e.lab_translator("C001", "H001")
        assert isinstance(t, yilian.LabTranslator)
        assert t.institution_id == "C001" and t.lab_id == "H001"
        assert len(t) == 6  # three lab codes and three standard codes
        assert t.translate({"L-0": "5.1", "STD-1": 7}) == {"C-0": "5.1", "C-1": 7}
        assert t.translate([("L-2", 1.5)]) == {"C-2": 1.5}
        assert t.translate([{"item_code": "L-1", "value": "阴性"}]) == {"C-1": "阴性"}
        assert t.lookup("L-0") == ("C-0", "本院0", "STD-0", "mmol/L", "1-9")
        assert t.lookup("nope") is None


def test_the_command_layer_agrees() -> None:
    with lab_engine() as e:
        t = e.lab_translator("C001", "H001")
        data = e.call("lab-translate", {"institution_id": "C001", "lab_id": "H001", "results": {"L-0": "5.1", "L-2": "3"}})
        assert {r["inst_code"]: r["value"] for r in data["results"]} == t.translate({"L-0": "5.1", "L-2": "3"})


def test_unmapped_codes_raise_unless_not_strict() -> None:
    with lab_engine() as e:
        t = e.lab_translator("C001", "H001")
        with pytest.raises(yilian.ConflictError) as exc:
            t.translate({"L-0": "1", "X-9": "2"})
        assert exc.value.code == "LAB_ITEM_UNMAPPED"
        assert "X-9" in str(exc.value)
        assert t.translate({"L-0": "1", "X-9": "2"}, strict=False) == {"C-0": "1"}
        with pytest.raises(TypeError):
            t.translate("L-0")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            t.translate([("L-0",)])  # type: ignore[list-item]


def test_a_translator_is_a_snapshot_and_unknown_institutions_are_refused() -> None:
    with lab_engine() as e:
        t = e.lab_translator("C001")
        e.call("lab-inst-item-unmap", {"institution_id": "C001", "code": "C-0"})
        assert t.translate({"STD-0": "1"}) == {"C-0": "1"}
        assert e.lab_translator("C001").translate({"STD-0": "1"}, strict=False) == {}
        with pytest.raises(yilian.NotFoundError) as exc:
            e.lab_translator("C999")
        assert exc.value.code == "LAB_INST_ITEM_NOT_FOUND"


def test_closed_engine() -> None:
    e = lab_engine()
    e.close()
    with pytest.raises(yilian.StorageError):
        e.lab_translator("C001")
