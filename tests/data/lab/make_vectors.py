#!/usr/bin/env python3
"""Writes tests/vectors/20_lab_*.json: the shared vectors of every lab command.

The vectors are data (every runner reads the JSON); this script only keeps
the common setup steps in one place. Run it after changing a case:
    python3 tests/data/lab/make_vectors.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "vectors")
CONFIG = {"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}

# The public key and a signature of the GM/T 0003.5 example key over PDF below.
STD_PUBLIC = "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
PDF_B64 = "JVBERi0xLjQKMSAwIG9iajw8Pj5lbmRvYmoKJSB5aWxpYW4gbGFiIHJlcG9ydCBMTzAwMDAwMQolJUVPRgo="
PDF_SIG = "9175b2a9a372f363ecc983aa2aa637e9534a9cd56de4752029c414604e65e1b2007efa2bd9b51435fae34e0946a2023fe35735c9a17e8de2b747d3b6157fe148"
PDF_SM3 = "63ef588181da0effc7374f92aa0702c09e579fa27bc57a7a2ce2ab52154c1d8a"


def step(command, request=None, expect=None, error=None):
    s = {"command": command, "request": request or {}}
    if expect is not None:
        s["expect"] = expect
    if error is not None:
        s["expect_error"] = {"code": error}
    return s


STD_CSV = (
    "std_code,name_zh,abbr,specimen_type,workgroup,unit,ref_low,ref_high,ref_text,critical_low,critical_high,notifiable_infection\n"
    "STD-HEM-001,白细胞计数,WBC,全血,临检,10^9/L,3.5,9.5,,2.0,30.0,\n"
    "STD-HEM-003,血红蛋白,HGB,全血,临检,g/L,130,175,男130-175 女115-150,50,200,\n"
    "STD-CHE-001,丙氨酸氨基转移酶,ALT,血清,生化,U/L,9,50,,,,\n"
    "STD-CHE-020,葡萄糖,GLU,血清,生化,mmol/L,3.9,6.1,,2.8,22.2,\n"
    "STD-IMM-001,乙型肝炎表面抗原,HBsAg,血清,免疫,,,,阴性,,,乙型病毒性肝炎\n"
)
PANELS_CSV = (
    "panel_code,name_zh,pinyin_initials,price_yuan,sub_items\n"
    "STD-P-CBC,血常规,xcg,20,STD-HEM-001;STD-HEM-003\n"
    "STD-P-LFT,肝功能,ggn,45,STD-CHE-001\n"
    "STD-P-GLU,空腹血糖,kfxt,8,STD-CHE-020\n"
    "STD-P-HBV,乙肝表面抗原,ygbmky,30,STD-IMM-001\n"
)
C001_CSV = (
    "inst_code,inst_name,specimen_type,maps_to\n"
    "C001-0101,白细胞数,全血,STD-HEM-001\n"
    "C001-0103,血红蛋白浓度,全血,STD-HEM-003\n"
    "C001-0201,谷丙转氨酶,血清,STD-CHE-001\n"
    "C001-0401,空腹血糖,血清,STD-CHE-020\n"
    "C001-0601,乙肝表面抗原,血清,STD-IMM-001\n"
    "C001-0999,同型半胱氨酸,血清,\n"
)


def catalogue():
    return [
        step("lab-std-item-import", {"content": STD_CSV}, {"saved": 5}),
        step("lab-resource-import", {"content": PANELS_CSV}, {"saved": 4}),
    ]


def network():
    s = catalogue()
    for std, local in [("STD-P-CBC", "LIS-1001"), ("STD-P-LFT", "LIS-2001"), ("STD-P-GLU", "LIS-2010"), ("STD-P-HBV", "LIS-3001")]:
        s.append(step("lab-local-code-set", {"lab_id": "H001", "resource_code": std, "local_code": local}, {"local_code": local}))
    s.append(step("lab-mapping-import", {"institution_id": "C001", "kind": "items", "content": C001_CSV}, {"imported": 6, "mapped": 5, "unmapped": 1}))
    s.append(step("lab-inst-project-upsert", {"institution_id": "C001", "projects": [{"code": "C001-XCG", "name": "血常规", "std_code": "STD-P-CBC"}, {"code": "C001-NX", "name": "凝血四项"}]}, {"saved": 2}))
    s.append(step("lab-inst-item-upsert", {"institution_id": "H001", "items": [{"code": "WBC", "name": "白细胞", "specimen_type": "全血", "std_code": "STD-HEM-001"}, {"code": "HGB", "name": "血红蛋白", "specimen_type": "全血", "std_code": "STD-HEM-003"}]}, {"saved": 2}))
    return s


PATIENT = {"name": "张三丰", "sex": "男", "age": "45岁", "phone": "13800138000"}


def submit(items, expect=None, error=None, **extra):
    req = {"institution_id": "C001", "lab_id": "H001", "patient_id": "P001", "patient": PATIENT, "doctor_id": "D01", "doctor_name": "李医生", "diagnosis": "发热待查", "items": items}
    req.update(extra)
    return step("lab-order-submit", req, expect, error)


B1, B2, B3, B4 = "241029000001", "241029000002", "241029000003", "241029000004"


def pay(order_id, expect=None, error=None, **extra):
    """The fee, paid at the ordering institution before the specimen is taken."""
    req = {"order_id": order_id, "payment_status": "paid"}
    req.update(extra)
    return step("lab-order-payment", req, expect, error)


def printed():
    """Network, one order of four projects, paid and printed: three tubes."""
    return network() + [
        submit(["C001-XCG", "STD-P-LFT", "STD-P-GLU", "STD-P-HBV"], {"order_id": "LO000001", "status": "submitted", "payment_status": "unpaid"}),
        pay("LO000001", {"order_id": "LO000001", "payment_status": "paid", "receipt_no": "SF20241029001"}, receipt_no="SF20241029001"),
        step("specimen-print", {"order_id": "LO000001"}, {"specimens": [{"barcode": B1}, {"barcode": B2}, {"barcode": B3}]}),
    ]


def received():
    return printed() + [
        step("shipment-create", {"institution_id": "C001", "barcodes": [B1, B2, B3]}, {"shipment_id": "SH000001", "count": 3}),
        step("specimen-receive", {"barcode": B1, "receiver": "王检验", "lab_id": "H001"}, {"status": "received"}),
        step("specimen-receive", {"barcode": B2, "receiver": "王检验", "lab_id": "H001"}, {"status": "received"}),
    ]


CBC = [{"item_code": "WBC", "value": "6.1"}, {"item_code": "STD-HEM-003", "value": "45"}]


def write(name, description, cases):
    doc = {"description": description, "config": CONFIG, "cases": cases}
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")


def case(name, steps):
    return {"name": name, "steps": steps}


write("20_lab_journey.json", "Commissioned lab testing (L1–L9) end to end: order at a community centre, labels, shipment, reception or rejection, structured and signed reports, critical value acknowledged.", [
    case("order → labels → shipment → reception → reports → critical value", printed() + [
        step("specimen-label", {"barcode": B1, "format": "zpl"}, {"barcode": B1, "label": {"format": "zpl"}}),
        step("shipment-create", {"institution_id": "C001", "barcodes": [B1, B2, B3], "sender": "赵护士"}, {"shipment_id": "SH000001", "count": 3, "lab_id": "H001"}),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "shipped", "patient": {"name": "张**"}}),
        step("specimen-lookup", {"barcode": B2, "lab_id": "H001"}, {"specimen_type": "血清", "container_code": "SST", "order": {"diagnosis": "发热待查", "institution_id": "C001"}, "lab_items": [{"local_code": "LIS-2001"}, {"local_code": "LIS-2010"}]}),
        step("specimen-receive", {"barcode": B1, "receiver": "王检验", "contact": "0512-57001234", "lab_id": "H001"}, {"status": "received", "received": {"by": "王检验"}}),
        step("specimen-receive", {"barcode": B2, "receiver": "王检验", "lab_id": "H001"}, {"status": "received"}),
        step("specimen-reject", {"barcode": B3, "lab_id": "H001", "reason": "溶血", "reject_type": "样本溶血", "remark": "请重新采集", "registrar": "王检验", "contact": "0512-57001234"}, {"status": "rejected", "rejection": {"reason": "溶血", "reject_type": "样本溶血"}}),
        step("lab-order-cancel", {"order_id": "LO000001"}, error="LAB_ORDER_RECEIVED"),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "received", "items": [{"printed": True}, {"printed": True}, {"printed": True}, {"resource_code": "STD-P-HBV", "printed": False}]}),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "王检验", "reviewer": "陈主任", "results": CBC}, {"status": "final", "revision": 1, "corrected": False, "results": [{"inst_code": "C001-0101", "inst_name": "白细胞数", "lab_code": "WBC", "flag": "N", "unit": "10^9/L", "ref_range": "3.5-9.5"}, {"inst_code": "C001-0103", "flag": "LL", "critical": True}], "critical_candidates": ["C001-0103"]}),
        step("report-submit", {"barcode": B2, "order_id": "LO000001", "tester": "王检验", "reviewer": "陈主任", "results": [{"item_code": "STD-CHE-001", "value": "80"}]}, {"status": "partial", "missing": ["C001-0401"], "results": [{"inst_code": "C001-0201", "flag": "H"}]}),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "partially_reported"}),
        step("report-submit", {"barcode": B2, "order_id": "LO000001", "tester": "王检验", "reviewer": "陈主任", "results": [{"item_code": "STD-CHE-001", "value": "40"}, {"item_code": "STD-CHE-020", "value": "5.1"}]}, {"status": "final", "revision": 2, "corrected": True, "missing": []}),
        # The rejected tube's project is printed again on a new tube.
        step("specimen-print", {"order_id": "LO000001"}, {"specimens": [{"barcode": B4, "items": [{"code": "STD-P-HBV"}]}]}),
        step("shipment-create", {"institution_id": "C001", "barcodes": [B4]}, {"shipment_id": "SH000002"}),
        step("specimen-receive", {"barcode": B4, "receiver": "王检验"}, {"status": "received"}),
        step("report-submit", {"barcode": B4, "order_id": "LO000001", "tester": "王检验", "reviewer": "陈主任", "results": [{"item_code": "STD-IMM-001", "value": "阳性"}]}, {"status": "final", "results": [{"flag": "A", "notifiable_infection": "乙型病毒性肝炎"}], "notifiable_infections": [{"inst_code": "C001-0601", "disease": "乙型病毒性肝炎"}]}),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "reported"}),
        step("lab-key-register", {"lab_id": "H001", "public_key": STD_PUBLIC}, {"registered": True}),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": PDF_B64, "content_type": "application/pdf", "signature": PDF_SIG, "title": "血常规报告"}, {"document_id": "RD000001", "version": 1, "signature_verified": True, "sm3": PDF_SM3}),
        step("report-info", {"barcode": B1, "institution_id": "C001"}, {"status": "reported", "reports": [{"status": "final"}], "documents": [{"document_id": "RD000001"}]}),
        step("critical-value-publish", {"lab_id": "H001", "publisher": "陈主任", "contact": "0512-57001111", "values": [{"barcode": B1, "item_code": "HGB"}]}, {"published": 1, "critical_values": [{"critical_id": "CV000001", "value": "45", "inst_code": "C001-0103", "status": "published"}]}),
        step("critical-value-ack", {"critical_id": "CV000001", "institution_id": "C001", "receiver": "李医生", "contact": "13800138000", "readback": "45", "comment": "已通知患者"}, {"status": "acknowledged", "ack": {"receiver": "李医生", "readback": "45", "late": False}}),
        step("critical-value-query", {"institution_id": "C001", "status": "acknowledged"}, {"total": 1}),
    ]),
    case("a rejected specimen returns the order; no report for it, no receiving it again", printed() + [
        step("shipment-create", {"institution_id": "C001", "barcodes": [B1]}, {"shipment_id": "SH000001"}),
        step("specimen-reject", {"barcode": B1, "reason": "标本量不足", "reject_type": "量不足", "registrar": "王检验", "contact": "0512-57001234", "time": "2024-10-29T11:00:00+08:00"}, {"status": "rejected", "rejection": {"at": "2024-10-29T11:00:00+08:00"}}),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "a", "reviewer": "b", "results": CBC}, error="LAB_SPECIMEN_REJECTED"),
        step("specimen-receive", {"barcode": B1, "receiver": "王检验"}, error="LAB_SPECIMEN_REJECTED"),
        step("specimen-reprint", {"barcode": B1}, error="LAB_SPECIMEN_REJECTED"),
        step("specimen-reject", {"barcode": B1, "reason": "x", "reject_type": "x", "registrar": "x", "contact": "x"}, error="LAB_SPECIMEN_REJECTED"),
        step("lab-order-cancel", {"order_id": "LO000001", "reason": "患者离院"}, {"status": "cancelled", "cancel_reason": "患者离院"}),
    ]),
])

write("20_lab_catalog.json", "Lab standard catalogue (L1, L2): sub-items, projects, the lab's own codes, panels, tube rules; guarded deletes.", [
    case("sub-items: upsert, import, query, guarded delete", catalogue() + [
        step("lab-std-item-upsert", {"items": [{"code": "STD-X-001", "name": "测试小项", "specimen_type": "血清", "specimen_note": "空腹", "unit": "mmol/L", "ref_low": 1, "ref_high": 2}]}, {"saved": 1}),
        step("lab-std-item-query", {"code": "STD-X"}, {"total": 1, "items": [{"code": "STD-X-001", "specimen_note": "空腹", "ref_low": 1.0}]}),
        step("lab-std-item-query", {"specimen_type": "全血"}, {"total": 2}),
        step("lab-std-item-query", {"name": "ptt", "specimen_type": "血清"}, {"total": 1, "items": [{"code": "STD-CHE-020"}]}),
        step("lab-std-item-delete", {"code": "STD-HEM-001"}, error="LAB_IN_USE"),
        step("lab-std-item-delete", {"code": "STD-X-001"}, {"deleted": True}),
        step("lab-std-item-delete", {"code": "STD-X-001"}, error="LAB_STD_ITEM_NOT_FOUND"),
        step("lab-std-item-upsert", {"items": [{"code": "A", "name": "a", "specimen_type": "血清", "ref_low": "x"}]}, error="LAB_IMPORT_REJECTED"),
        step("lab-std-item-upsert", {"items": [{"code": "A", "name": "a"}]}, error="LAB_IMPORT_REJECTED"),
        step("lab-std-item-import", {"content": "std_code,name_zh,specimen_type\nB,b,血清\nB,b,血清\n"}, error="LAB_IMPORT_REJECTED"),
        step("lab-std-item-query", {"code": "B"}, {"total": 0}),
    ]),
    case("projects, lab codes, panels", catalogue() + [
        step("lab-resource-upsert", {"resources": [{"code": "STD-P-X", "name": "测试组合", "items": ["STD-HEM-001", "STD-NOPE"]}]}, error="LAB_IMPORT_REJECTED"),
        step("lab-resource-query", {"name": "xcg"}, {"total": 1, "resources": [{"code": "STD-P-CBC", "items": [{"code": "STD-HEM-001", "name": "白细胞计数"}, {"code": "STD-HEM-003"}]}]}),
        step("lab-local-code-set", {"lab_id": "H001", "resource_code": "STD-P-CBC", "local_code": "LIS-1001"}, {"local_code": "LIS-1001"}),
        step("lab-local-code-set", {"lab_id": "H001", "resource_code": "STD-P-LFT", "local_code": "LIS-1001"}, error="LAB_ALREADY_MAPPED"),
        step("lab-local-code-set", {"lab_id": "H001", "resource_code": "STD-P-NONE", "local_code": "X"}, error="LAB_RESOURCE_NOT_FOUND"),
        step("lab-local-code-set", {"lab_id": "H001", "resource_code": "STD-P-LFT", "local_code": "LIS-2001"}),
        step("lab-resource-query", {"lab_id": "H001"}, {"total": 2, "resources": [{"code": "STD-P-CBC", "local_codes": {"H001": "LIS-1001"}}, {"code": "STD-P-LFT"}]}),
        step("lab-panel-upsert", {"lab_id": "H001", "code": "PK-1", "name": "体检套餐", "pinyin": "tjtc", "resources": ["STD-P-CBC", "STD-P-GLU"]}, error="LAB_NOT_OFFERED"),
        step("lab-panel-upsert", {"lab_id": "H001", "code": "PK-1", "name": "体检套餐", "pinyin": "tjtc", "resources": ["STD-P-CBC", "STD-P-LFT"]}, {"code": "PK-1"}),
        step("lab-item-search", {"lab_id": "H001", "q": "tj"}, {"total": 1, "results": [{"type": "panel", "code": "PK-1"}]}),
        step("lab-resource-delete", {"code": "STD-P-CBC"}, error="LAB_IN_USE"),
        step("lab-resource-delete", {"code": "STD-P-GLU"}, {"deleted": True}),
        step("lab-resource-delete", {"code": "STD-P-GLU"}, error="LAB_RESOURCE_NOT_FOUND"),
    ]),
    case("tube rules", [
        step("lab-tube-rules", {}, {"rules": [{"specimen_type": "全血", "workgroup": "临检", "container_code": "EDTA"}, {}, {}, {}, {}, {}]}),
        step("lab-tube-rules-set", {"rules": [{"specimen_type": "全血", "workgroup": "临检", "container_code": "EDTA", "container_name": "紫头管"}, {"specimen_type": "全血", "workgroup": "临检", "container_code": "X", "container_name": "x"}]}, error="LAB_IMPORT_REJECTED"),
        step("lab-tube-rules-set", {"rules": [{"specimen_type": "全血", "workgroup": "临检", "container_code": "EDTA", "container_name": "紫头管", "cap_colour": "紫"}]}, {"saved": 1}),
        step("lab-tube-rules", {}, {"rules": [{"container_name": "紫头管"}]}),
    ]),
])

write("20_lab_mapping.json", "Institution sub-item and project mapping (L3): one-to-one, unmap/remap, all-or-nothing imports, exports, translation.", [
    case("map, unmap, remap, delete, query", catalogue() + [
        step("lab-inst-item-upsert", {"institution_id": "C001", "items": [{"code": "A", "name": "白细胞数", "specimen_type": "全血"}, {"code": "B", "name": "白细胞2", "specimen_type": "全血"}]}, {"saved": 2}),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "A", "std_code": "STD-HEM-001"}, {"status": "mapped"}),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "B", "std_code": "STD-HEM-001"}, error="LAB_ALREADY_MAPPED"),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "A", "std_code": "STD-HEM-003"}, error="LAB_ALREADY_MAPPED"),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "A", "std_code": "STD-CHE-001", "remap": True}, error="INVALID_FIELD"),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "A", "std_code": "STD-HEM-003", "remap": True}, {"std_code": "STD-HEM-003"}),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "B", "std_code": "STD-HEM-001"}, {"status": "mapped"}),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "B", "std_code": "STD-NONE"}, error="LAB_STD_ITEM_NOT_FOUND"),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "Z", "std_code": "STD-HEM-001"}, error="LAB_INST_ITEM_NOT_FOUND"),
        step("lab-inst-item-unmap", {"institution_id": "C001", "code": "A"}, {"status": "unmapped", "previous": "STD-HEM-003"}),
        step("lab-inst-item-query", {"institution_id": "C001", "mapped": False}, {"total": 1, "items": [{"code": "A", "status": "unmapped"}]}),
        step("lab-inst-item-query", {"institution_id": "C001", "std_name": "白细胞"}, {"total": 1, "items": [{"code": "B", "std_name": "白细胞计数"}]}),
        step("lab-inst-item-delete", {"institution_id": "C001", "code": "B"}, {"deleted": True}),
        step("lab-inst-item-delete", {"institution_id": "C001", "code": "B"}, error="LAB_INST_ITEM_NOT_FOUND"),
        step("lab-inst-item-map", {"institution_id": "C001", "code": "A", "std_code": "STD-HEM-001"}, {"status": "mapped"}),
        step("lab-std-item-delete", {"code": "STD-HEM-003"}, error="LAB_IN_USE"),
    ]),
    case("projects map one-to-one too", catalogue() + [
        step("lab-inst-project-upsert", {"institution_id": "C001", "projects": [{"code": "XCG", "name": "血常规", "std_code": "STD-P-CBC"}, {"code": "XCG2", "name": "血常规2", "std_code": "STD-P-CBC"}]}, error="LAB_IMPORT_REJECTED"),
        step("lab-inst-project-upsert", {"institution_id": "C001", "projects": [{"code": "XCG", "name": "血常规", "std_code": "STD-P-CBC"}, {"code": "GG", "name": "肝功"}]}, {"saved": 2}),
        step("lab-inst-project-map", {"institution_id": "C001", "code": "GG", "std_code": "STD-P-CBC"}, error="LAB_ALREADY_MAPPED"),
        step("lab-inst-project-map", {"institution_id": "C001", "code": "GG", "std_code": "STD-P-LFT"}, {"status": "mapped"}),
        step("lab-inst-project-unmap", {"institution_id": "C001", "code": "XCG"}, {"status": "unmapped"}),
        step("lab-inst-project-query", {"institution_id": "C001", "mapped": True}, {"total": 1, "projects": [{"code": "GG", "std_name": "肝功能"}]}),
        step("lab-inst-project-delete", {"institution_id": "C001", "code": "GG"}, {"deleted": True}),
        step("lab-resource-delete", {"code": "STD-P-LFT"}, {"deleted": True}),
    ]),
    case("import names every bad row and imports nothing; export; translate", catalogue() + [
        step("lab-mapping-import", {"institution_id": "C001", "content": "inst_code,inst_name,specimen_type,maps_to\nA1,a,全血,STD-HEM-001\nA2,b,全血,STD-HEM-001\nA3,c,血清,STD-NONE\n"}, error="LAB_IMPORT_REJECTED"),
        step("lab-mapping-import", {"institution_id": "C001", "content": "inst_code,inst_name,specimen_type,maps_to\nA1,a,全血,STD-HEM-001\nA2,b,全血,STD-HEM-001\nA3,c,血清,STD-NONE\n", "validate_only": True}, {"valid": False, "rejected": [{"row": 3, "code": "A2"}, {"row": 4, "code": "A3", "reason": "unknown standard code STD-NONE"}]}),
        step("lab-inst-item-query", {"institution_id": "C001"}, {"total": 0}),
        step("lab-mapping-import", {"institution_id": "C001", "kind": "items", "content": C001_CSV}, {"imported": 6, "mapped": 5}),
        step("lab-mapping-export", {"institution_id": "C001", "format": "csv"}, {"rows": 6, "content": "inst_code,inst_name,specimen_type,specimen_note,maps_to,std_name,status\nC001-0101,白细胞数,全血,,STD-HEM-001,白细胞计数,mapped\nC001-0103,血红蛋白浓度,全血,,STD-HEM-003,血红蛋白,mapped\nC001-0201,谷丙转氨酶,血清,,STD-CHE-001,丙氨酸氨基转移酶,mapped\nC001-0401,空腹血糖,血清,,STD-CHE-020,葡萄糖,mapped\nC001-0601,乙肝表面抗原,血清,,STD-IMM-001,乙型肝炎表面抗原,mapped\nC001-0999,同型半胱氨酸,血清,,,,unmapped\n"}),
        step("lab-mapping-export", {"institution_id": "C001", "format": "xlsx"}, {"format": "xlsx", "rows": 6}),
        step("lab-mapping-export", {"institution_id": "C001", "format": "fhir"}, {"concept_map": {"resourceType": "ConceptMap", "status": "active", "group": [{"element": [{"code": "C001-0101", "target": [{"code": "STD-HEM-001", "equivalence": "equivalent"}]}, {}, {}, {}, {}, {"code": "C001-0999", "target": [{"equivalence": "unmatched"}]}]}]}}),
        step("lab-mapping-export", {"institution_id": "C001", "format": "pdf"}, error="INVALID_FIELD"),
        step("lab-mapping-import", {"institution_id": "C001", "format": "xlsx", "content_base64": "bm90IGEgd29ya2Jvb2s="}, error="LAB_FILE_UNREADABLE"),
        step("lab-translate", {"institution_id": "C001", "results": {"STD-HEM-001": "6.1", "STD-CHE-020": 5.2, "STD-XXX": "1"}}, {"results": [{"code": "STD-CHE-020", "value": "5.2", "inst_code": "C001-0401", "inst_name": "空腹血糖", "unit": "mmol/L"}, {"code": "STD-HEM-001", "inst_code": "C001-0101"}], "unmapped": ["STD-XXX"]}),
        step("lab-translate", {"institution_id": "C001", "results": [{"item_code": "STD-IMM-001", "value": "阴性"}]}, {"results": [{"inst_code": "C001-0601", "ref_range": "阴性"}], "unmapped": []}),
    ]),
])

write("20_lab_orders.json", "Lab orders (L4), specimens and labels (L5), shipments (L6), reception (L7): searches, merging, barcode rules, refusals.", [
    case("search and refusals", network() + [
        step("lab-item-search", {"lab_id": "H001", "q": "xcg", "institution_id": "C001"}, {"total": 1, "results": [{"type": "item", "code": "STD-P-CBC", "local_code": "LIS-1001", "inst_code": "C001-XCG"}]}),
        step("lab-item-search", {"lab_id": "H001", "q": "血"}, {"total": 2}),
        step("lab-list", {}, {"total": 1, "labs": [{"lab_id": "H001", "projects": 4, "panels": 0}]}),
        submit(["C001-NX"], error="LAB_ITEM_UNMAPPED"),
        submit(["STD-P-NONE"], error="LAB_RESOURCE_NOT_FOUND"),
        submit([], error="MISSING_FIELD"),
        submit(["C001-XCG"], error="LAB_PANEL_NOT_FOUND", panels=["PK-9"]),
        step("lab-order-submit", {"institution_id": "C001", "lab_id": "H002", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-XCG"]}, error="LAB_NOT_OFFERED"),
        step("lab-order-submit", {"institution_id": "C001", "lab_id": "H001", "patient_id": "P1", "doctor_id": "D1", "items": ["C001-XCG"], "patient": {"name": "王", "id_number": "123"}}, error="INVALID_ID_NUMBER"),
        step("lab-order-query", {"institution_id": "C001"}, {"total": 0}),
    ]),
    case("order, query, cancel, print refusals", network() + [
        submit(["C001-XCG"], {"order_id": "LO000001", "items": [{"resource_code": "STD-P-CBC", "inst_code": "C001-XCG", "local_code": "LIS-1001"}], "patient": {"name": "张**", "phone": "138****8000"}}, order_type="urgent"),
        submit(["STD-P-LFT"], {"order_id": "LO000002"}, doctor_id="D02"),
        step("lab-order-query", {"institution_id": "C001", "doctor_id": "D01"}, {"total": 1, "orders": [{"order_id": "LO000001"}]}),
        step("lab-order-query", {"institution_id": "C001", "order_type": "urgent", "patient_name": "zsf", "from": "2024-10-29", "to": "2024-10-29"}, {"total": 1}),
        step("lab-order-query", {"institution_id": "C001", "from": "2024-10-30"}, {"total": 0}),
        step("lab-order-query", {"institution_id": "C001", "status": "submitted"}, {"total": 2}),
        step("lab-order-query", {"institution_id": "C001", "status": "nonsense"}, error="INVALID_FIELD"),
        step("lab-order-info", {"order_id": "LO000009"}, error="LAB_ORDER_NOT_FOUND"),
        step("lab-order-info", {"order_id": "X1"}, error="INVALID_FIELD"),
        step("lab-order-info", {"order_id": "LO000001", "institution_id": "C002"}, error="LAB_FORBIDDEN"),
        step("lab-order-cancel", {"order_id": "LO000002", "reason": "重复开单"}, {"status": "cancelled"}),
        step("specimen-print", {"order_id": "LO000002"}, error="LAB_ORDER_CANCELLED"),
        step("lab-order-cancel", {"order_id": "LO000002"}, error="LAB_ORDER_CANCELLED"),
        # The fee comes before the specimen: no label for an unpaid order.
        step("specimen-print", {"order_id": "LO000001"}, error="LAB_ORDER_UNPAID"),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "submitted", "payment_status": "unpaid", "specimens": []}),
        pay("LO000001", error="INVALID_FIELD", payment_status="unpaid"),
        pay("LO000001", error="LAB_FORBIDDEN", institution_id="C002"),
        pay("LO000001", error="LAB_PAYMENT_STATE", payment_status="refunded"),
        pay("LO000002", error="LAB_ORDER_CANCELLED"),
        pay("LO000009", error="LAB_ORDER_NOT_FOUND"),
        pay("LO000001", {"payment_status": "paid", "status": "submitted", "paid_at": "2024-10-29T09:00:00+08:00"}, request_id="pay-1"),
        pay("LO000001", {"payment_status": "paid"}, request_id="pay-1"),
        step("lab-order-query", {"institution_id": "C001", "payment_status": "paid"}, {"total": 1, "orders": [{"order_id": "LO000001"}]}),
        step("specimen-print", {"order_id": "LO000001", "items": ["STD-P-LFT"]}, error="LAB_ITEM_NOT_ORDERED"),
        step("specimen-print", {"order_id": "LO000001", "format": "bmp"}, error="INVALID_FIELD"),
        step("specimen-print", {"order_id": "LO000001", "request_id": "pr-1"}, {"specimens": [{"barcode": B1, "status": "printed"}]}),
        step("specimen-print", {"order_id": "LO000001", "request_id": "pr-1"}, {"specimens": [{"barcode": B1}]}),
        step("specimen-print", {"order_id": "LO000001"}, error="LAB_NOTHING_TO_PRINT"),
        step("specimen-print", {"order_id": "LO000001", "request_id": "pr-1", "format": "svg"}, error="IDEMPOTENCY_CONFLICT"),
    ]),
    case("barcode rule, merging, reprint, labels", network() + [
        step("lab-barcode-rule-set", {"institution_id": "C001", "prefix": "C1-", "date": "YYMMDD", "seq_width": 4}, error="LAB_BARCODE_RULE_INVALID"),
        step("lab-barcode-rule-set", {"institution_id": "C001", "prefix": "C1", "date": "YYYY", "seq_width": 4}, error="LAB_BARCODE_RULE_INVALID"),
        step("lab-barcode-rule-set", {"institution_id": "C001", "prefix": "C1", "date": "YYMMDD", "seq_width": 2}, error="LAB_BARCODE_RULE_INVALID"),
        step("lab-barcode-rule-set", {"institution_id": "C001", "prefix": "C1", "date": "YYMMDD", "seq_width": 4, "mask_patient_name": True}, {"prefix": "C1", "seq_width": 4}),
        # An order that says the specimen comes first prints before it is paid.
        submit(["C001-XCG", "STD-P-LFT", "STD-P-GLU", "STD-P-HBV"], {"order_id": "LO000001", "collect_before_payment": True, "payment_status": "unpaid"}, collect_before_payment=True),
        step("specimen-print", {"order_id": "LO000001", "format": "svg"}, {"specimens": [
            {"barcode": "C12410290001", "specimen_type": "全血", "container_code": "EDTA", "workgroup": "临检", "items": [{"code": "STD-P-CBC", "name": "血常规"}], "label": {"format": "svg"}},
            {"barcode": "C12410290002", "specimen_type": "血清", "container_code": "SST", "workgroup": "生化", "items": [{"code": "STD-P-LFT"}, {"code": "STD-P-GLU"}], "sub_items": ["STD-CHE-001", "STD-CHE-020"]},
            {"barcode": "C12410290003", "workgroup": "免疫", "items": [{"code": "STD-P-HBV"}]}]}),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "printed", "items": [{"barcode": "C12410290001", "printed": True}, {"barcode": "C12410290002"}, {"barcode": "C12410290002"}, {"barcode": "C12410290003"}]}),
        step("specimen-reprint", {"barcode": "C12410290002", "format": "tspl"}, {"barcode": "C12410290002", "print_count": 2, "label": {"format": "tspl", "encoding": "GBK"}}),
        step("specimen-label", {"barcode": "C12410290002", "format": "zpl", "width_mm": 60, "height_mm": 40}, {"label": {"format": "zpl"}}),
        step("specimen-label", {"barcode": "C12410290002", "format": "zpl", "dpi": 100}, error="INVALID_FIELD"),
        step("specimen-label", {"barcode": "C12410290002"}, error="MISSING_FIELD"),
        step("specimen-label", {"barcode": "NOPE", "format": "svg"}, error="LAB_SPECIMEN_NOT_FOUND"),
        step("specimen-query", {"institution_id": "C001", "status": "printed", "from": "2024-10-29", "to": "2024-10-29"}, {"total": 3}),
        step("specimen-query", {"institution_id": "C001", "barcode": "C12410290003"}, {"total": 1, "specimens": [{"print_count": 1}]}),
    ]),
    case("refund after cancellation", network() + [
        submit(["C001-XCG"], {"order_id": "LO000001"}),
        pay("LO000001", {"payment_status": "paid"}),
        pay("LO000001", error="LAB_PAYMENT_STATE", payment_status="refunded"),
        step("lab-order-cancel", {"order_id": "LO000001", "reason": "患者放弃检验"}, {"status": "cancelled", "payment_status": "paid"}),
        pay("LO000001", {"payment_status": "refunded", "status": "cancelled", "refunded_at": "2024-10-29T09:00:00+08:00"}, payment_status="refunded"),
        pay("LO000001", error="LAB_ORDER_CANCELLED"),
    ]),
    case("service agreements (服务协议): set, query, checked on ordering", network() + [
        step("lab-agreement-set", {"agreement_id": "XY-2024-001", "lab_id": "H001", "institution_id": "C001", "items": ["STD-P-CBC", "STD-P-GLU"], "valid_from": "2024-10-01", "valid_to": "2024-10-31", "name": "委托检验服务协议"},
             {"agreement_id": "XY-2024-001", "items": ["STD-P-CBC", "STD-P-GLU"], "all_items": False, "valid_from": "2024-10-01", "valid_to": "2024-10-31", "in_force": True, "created": True}),
        step("lab-agreement-set", {"agreement_id": "XY-2024-002", "lab_id": "H001", "institution_id": "C002", "valid_from": "2024-01-01"}, {"all_items": True, "valid_to": None, "created": True}),
        step("lab-agreement-set", {"agreement_id": "XY-X", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-10-01", "valid_to": "2024-09-01"}, error="INVALID_FIELD"),
        step("lab-agreement-set", {"agreement_id": "XY-X", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-10-01", "items": ["STD-P-NONE"]}, error="LAB_RESOURCE_NOT_FOUND"),
        step("lab-agreement-set", {"agreement_id": "XY-X", "lab_id": "H001", "institution_id": "C001"}, error="MISSING_FIELD"),
        {"command": "lab-agreement-set", "principal": {"role": "lab", "institution_id": "H001"}, "request": {"agreement_id": "XY-X", "lab_id": "H001", "institution_id": "C001", "valid_from": "2024-10-01"}, "expect_error": {"code": "FORBIDDEN"}},
        step("lab-agreement-query", {"lab_id": "H001"}, {"total": 2}),
        step("lab-agreement-query", {"item": "STD-P-LFT"}, {"total": 1, "agreements": [{"agreement_id": "XY-2024-002"}]}),
        step("lab-agreement-query", {"date": "2024-11-01"}, {"total": 1, "agreements": [{"agreement_id": "XY-2024-002"}]}),
        {"command": "lab-agreement-query", "principal": {"role": "community", "institution_id": "C001"}, "request": {}, "expect": {"total": 1, "agreements": [{"agreement_id": "XY-2024-001"}]}},
        submit(["STD-P-LFT"], error="LAB_NO_AGREEMENT"),
        submit(["C001-XCG", "STD-P-GLU"], {"order_id": "LO000001", "items": [{"resource_code": "STD-P-CBC", "agreement_id": "XY-2024-001"}, {"resource_code": "STD-P-GLU", "agreement_id": "XY-2024-001"}]}),
        step("lab-item-search", {"lab_id": "H001", "q": "", "institution_id": "C001"}, {"total": 2, "results": [{"code": "STD-P-CBC"}, {"code": "STD-P-GLU"}]}),
        step("lab-list", {"institution_id": "C001"}, {"total": 1, "labs": [{"lab_id": "H001"}]}),
        step("advance-clock", {"seconds": 259200}),
        submit(["C001-XCG"], error="LAB_NO_AGREEMENT"),
        step("lab-list", {"institution_id": "C001"}, {"total": 0}),
        step("lab-list", {"institution_id": "C002"}, {"total": 1}),
    ]),
    case("shipments and reception", printed() + [
        step("shipment-create", {"institution_id": "C001", "barcodes": [B1, B1]}, error="INVALID_FIELD"),
        step("shipment-create", {"institution_id": "C002", "barcodes": [B1]}, error="LAB_FORBIDDEN"),
        step("shipment-create", {"institution_id": "C001", "barcodes": ["NOPE"]}, error="LAB_SPECIMEN_NOT_FOUND"),
        step("specimen-receive", {"barcode": B1, "receiver": "王检验"}, error="LAB_SPECIMEN_STATE"),
        step("shipment-create", {"institution_id": "C001", "barcodes": [B1, B2], "sender": "赵护士", "contact": "0512-57001234"}, {"shipment_id": "SH000001", "count": 2, "specimens": [{"barcode": B1, "patient": {"name": "张**"}, "items": ["血常规"]}, {"barcode": B2}]}),
        step("shipment-create", {"institution_id": "C001", "barcodes": [B1]}, error="LAB_SPECIMEN_STATE"),
        step("shipment-info", {"shipment_id": "SH000001", "institution_id": "H001"}, {"count": 2, "lab_id": "H001"}),
        step("shipment-info", {"shipment_id": "SH000009"}, error="LAB_SHIPMENT_NOT_FOUND"),
        step("shipment-query", {"institution_id": "C001", "barcode": B2}, {"total": 1, "shipments": [{"shipment_id": "SH000001"}]}),
        step("shipment-query", {"institution_id": "C001", "barcode": B3}, {"total": 0}),
        step("shipment-query", {"institution_id": "C001", "from": "2024-10-29", "to": "2024-10-29"}, {"total": 1}),
        step("shipment-manifest", {"shipment_id": "SH000001", "format": "svg"}, {"format": "svg"}),
        step("shipment-manifest", {"shipment_id": "SH000001", "format": "docx"}, error="INVALID_FIELD"),
        step("specimen-lookup", {"barcode": B1, "lab_id": "H009"}, error="LAB_FORBIDDEN"),
        step("specimen-lookup", {"barcode": B1, "lab_id": "H001"}, {"status": "shipped", "patient_id": "P001", "order": {"patient": {"name": "张**"}, "doctor_name": "李医生"}}),
        step("specimen-receive", {"barcode": B1, "lab_id": "H009", "receiver": "x"}, error="LAB_FORBIDDEN"),
        step("specimen-receive", {"barcode": B1, "lab_id": "H001"}, error="MISSING_FIELD"),
        step("specimen-reject", {"barcode": B2, "reason": "溶血", "registrar": "王", "contact": "1"}, error="MISSING_FIELD"),
        step("specimen-receive", {"barcode": B1, "lab_id": "H001", "receiver": "王检验", "time": "2024-10-29T10:30:00+08:00"}, {"received": {"at": "2024-10-29T10:30:00+08:00"}}),
        step("specimen-receive", {"barcode": B1, "receiver": "王检验"}, error="LAB_SPECIMEN_STATE"),
        step("lab-order-info", {"order_id": "LO000001"}, {"status": "received"}),
    ]),
])

write("20_lab_reports.json", "Lab reports (L8) and critical values (L9): matching, completeness, revisions, signatures, overdue escalation, read-back.", [
    case("report refusals", received() + [
        step("report-submit", {"barcode": B3, "order_id": "LO000001", "tester": "a", "reviewer": "b", "results": [{"item_code": "STD-IMM-001", "value": "阴性"}]}, error="LAB_SPECIMEN_STATE"),
        step("report-submit", {"barcode": B1, "order_id": "X1", "tester": "a", "reviewer": "b", "results": CBC}, error="INVALID_FIELD"),
        step("report-submit", {"barcode": B1, "order_id": "LO000009", "tester": "a", "reviewer": "b", "results": CBC}, error="LAB_SPECIMEN_NOT_FOUND"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "a", "reviewer": "b", "results": [{"item_code": "STD-CHE-001", "value": "1"}]}, error="LAB_ITEM_NOT_ORDERED"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "a", "reviewer": "b", "results": [{"item_code": "NOPE", "value": "1"}]}, error="LAB_STD_ITEM_NOT_FOUND"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "a", "reviewer": "b", "results": [{"item_code": "WBC", "value": "1"}, {"item_code": "STD-HEM-001", "value": "2"}]}, error="INVALID_FIELD"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "a", "reviewer": "b", "results": [{"item_code": "WBC", "value": "1", "abnormal_flag": "X"}]}, error="INVALID_FIELD"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "reviewer": "b", "results": CBC}, error="MISSING_FIELD"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "lab_id": "H009", "tester": "a", "reviewer": "b", "results": CBC}, error="LAB_FORBIDDEN"),
        step("report-info", {"barcode": B1}, error="LAB_REPORT_NOT_FOUND"),
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "王检验", "reviewer": "陈主任", "report_time": "2024-10-29T15:00:00+08:00", "results": [{"item_code": "WBC", "value": "12.0", "abnormal_flag": "H", "unit": "10^9/L", "ref_range": "3.5-9.5"}, {"item_code": "HGB", "value": "140"}]}, {"status": "final", "report_time": "2024-10-29T15:00:00+08:00", "abnormal": ["C001-0101"], "results": [{"flag": "H"}, {"flag": "N"}]}),
        step("report-info", {"order_id": "LO000001", "history": True}, {"reports": [{"barcode": B1, "history": [{"revision": 1}]}], "documents": []}),
        step("report-info", {"barcode": B1, "institution_id": "C002"}, error="LAB_FORBIDDEN"),
    ]),
    case("signed documents", received() + [
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": PDF_B64, "signature": PDF_SIG}, error="LAB_KEY_NOT_FOUND"),
        step("lab-key-register", {"lab_id": "H001", "public_key": "04abcd"}, error="INVALID_FIELD"),
        step("lab-key-register", {"lab_id": "H001", "public_key": STD_PUBLIC}, {"registered": True}),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": "JVBERi0xLjQKZm9yZ2VkCg==", "signature": PDF_SIG}, error="LAB_SIGNATURE_INVALID"),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": PDF_B64, "signature": "zz"}, error="INVALID_FIELD"),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": "***", "signature": PDF_SIG}, error="INVALID_FIELD"),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": PDF_B64, "signature": PDF_SIG, "content_type": "text/html"}, error="INVALID_FIELD"),
        step("report-upload-document", {"barcode": B3, "order_id": "LO000001", "content_base64": PDF_B64, "signature": PDF_SIG}, error="LAB_SPECIMEN_STATE"),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": PDF_B64, "signature": PDF_SIG}, {"version": 1, "corrected": False, "size": 62, "sm3": PDF_SM3}),
        step("report-upload-document", {"barcode": B1, "order_id": "LO000001", "content_base64": PDF_B64, "signature": PDF_SIG}, {"document_id": "RD000002", "version": 2, "corrected": True}),
        step("report-info", {"barcode": B1, "include_content": True}, {"reports": [], "documents": [{"version": 1, "content_base64": PDF_B64}, {"version": 2}]}),
    ]),
    case("critical values: batch publish, overdue escalation, read-back", received() + [
        step("report-submit", {"barcode": B1, "order_id": "LO000001", "tester": "王检验", "reviewer": "陈主任", "results": [{"item_code": "WBC", "value": "1.5"}, {"item_code": "HGB", "value": "45"}]}, {"critical_candidates": ["C001-0101", "C001-0103"], "results": [{"flag": "LL"}, {"flag": "LL"}]}),
        step("critical-value-limit-set", {"institution_id": "C001", "minutes": 0}, error="INVALID_FIELD"),
        step("critical-value-limit-set", {"institution_id": "C001", "minutes": 10, "fallback_name": "值班主任"}, error="INVALID_FIELD"),
        step("critical-value-limit-set", {"institution_id": "C001", "item_code": "STD-NONE", "minutes": 5}, error="LAB_STD_ITEM_NOT_FOUND"),
        step("critical-value-limit-set", {"institution_id": "C001", "minutes": 15, "fallback_name": "值班主任", "fallback_contact": "0512-57000000"}, {"minutes": 15}),
        step("critical-value-limit-set", {"institution_id": "C001", "item_code": "STD-HEM-003", "minutes": 5}, {"minutes": 5, "item": "STD-HEM-003"}),
        step("critical-value-publish", {"publisher": "陈主任", "contact": "0512-57001111", "values": [{"barcode": B1, "item_code": "CHE"}]}, error="LAB_ITEM_NOT_ORDERED"),
        step("critical-value-publish", {"publisher": "陈主任", "contact": "0512-57001111", "values": [{"barcode": B2, "item_code": "STD-CHE-001"}]}, error="LAB_REPORT_NOT_FOUND"),
        step("critical-value-publish", {"contact": "0512-57001111", "values": [{"barcode": B1, "item_code": "WBC"}]}, error="MISSING_FIELD"),
        step("critical-value-publish", {"lab_id": "H001", "publisher": "陈主任", "contact": "0512-57001111", "values": [{"barcode": B1, "item_code": "WBC"}, {"barcode": B1, "item_code": "C001-0103", "comment": "请立即处理"}]}, {"published": 2, "critical_values": [
            {"critical_id": "CV000001", "inst_code": "C001-0101", "value": "1.5", "deadline": "2024-10-29T09:15:00+08:00"},
            {"critical_id": "CV000002", "inst_code": "C001-0103", "value": "45", "deadline": "2024-10-29T09:05:00+08:00", "comment": "请立即处理"}]}),
        step("lab-check-overdue", {}, {"overdue": 0}),
        step("advance-clock", {"seconds": 360}),
        step("lab-check-overdue", {}, {"overdue": 1, "critical_ids": ["CV000002"]}),
        step("lab-check-overdue", {}, {"overdue": 0}),
        step("critical-value-query", {"institution_id": "C001", "status": "overdue"}, {"total": 1, "critical_values": [{"critical_id": "CV000002", "escalated_to": {"name": "值班主任", "contact": "0512-57000000"}}]}),
        step("critical-value-ack", {"critical_id": "CV000002", "receiver": "李医生", "contact": "13800138000", "readback": "54"}, error="LAB_READBACK_MISMATCH"),
        step("critical-value-ack", {"critical_id": "CV000002", "receiver": "李医生", "contact": "13800138000"}, error="MISSING_FIELD"),
        step("critical-value-ack", {"critical_id": "CV000002", "institution_id": "C002", "receiver": "李医生", "contact": "13800138000", "readback": "45"}, error="LAB_FORBIDDEN"),
        step("critical-value-ack", {"critical_id": "CV000009", "receiver": "李医生", "contact": "13800138000", "readback": "45"}, error="LAB_CRITICAL_NOT_FOUND"),
        step("critical-value-ack", {"critical_id": "CV000002", "receiver": "李医生", "contact": "13800138000", "readback": 45.0}, {"status": "acknowledged", "overdue": True, "ack": {"late": True}}),
        step("critical-value-ack", {"critical_id": "CV000002", "receiver": "李医生", "contact": "13800138000", "readback": "45"}, error="LAB_CRITICAL_ACKNOWLEDGED"),
        # The next lab change notices CV000001 going overdue too (the clock drives it).
        step("advance-clock", {"seconds": 600}),
        step("critical-value-ack", {"critical_id": "CV000001", "receiver": "李医生", "contact": "13800138000", "readback": "1.5"}, {"status": "acknowledged", "overdue": True, "escalated_to": {"name": "值班主任"}}),
        step("critical-value-query", {"institution_id": "C001", "barcode": B1}, {"total": 2}),
    ]),
])
print("wrote 20_lab_*.json")
