//! A1, the assistant's quick menus: each menu driven end to end with its two
//! calls, pinyin search, filters, live bed status, privacy and refusals.

use serde_json::{json, Value};
use yilian_core::Engine;

const C001: &str = r#"{"role":"community","institution_id":"C001"}"#;
const C002: &str = r#"{"role":"community","institution_id":"C002"}"#;
const H001: &str = r#"{"role":"hospital","institution_id":"H001"}"#;
const REGULATOR: &str = r#"{"role":"regulator"}"#;
const ID_NUMBER: &str = "11010519491231002X";
const PHONE: &str = "13800138000";
const CARD: &str = "320583199001011234";

fn patient() -> Value {
    json!({"name": "张三", "sex": "男", "id_number": ID_NUMBER, "phone": PHONE, "insurance_card_no": CARD, "medical_record_no": "MR2024001"})
}

fn record() -> Value {
    json!({"diagnoses": [{"code": "I10", "name": "高血压"}], "history": "高血压病史10年"})
}

/// The setup steps of the shared vector (catalogue, schedules, lab catalogue).
fn setup_steps() -> Vec<Value> {
    let files = yilian_tests::vector_files();
    let (_, v) = files.iter().find(|(n, _)| n.contains("15_assistant")).expect("the assistant vector");
    let mut steps = Vec::new();
    for case in v["cases"].as_array().unwrap() {
        for s in case["steps"].as_array().unwrap() {
            let c = s["command"].as_str().unwrap();
            if (c == "sync-catalog" || c == "sync-schedule" || c.starts_with("lab-")) && !steps.contains(s) {
                steps.push(s.clone());
            }
        }
    }
    steps
}

fn engine_with(config: Value) -> Engine {
    let e = Engine::open(&config.to_string()).unwrap();
    for s in setup_steps() {
        let out: Value = serde_json::from_str(&e.call(s["command"].as_str().unwrap(), &s["request"].to_string())).unwrap();
        assert_eq!(out["status"], "success", "{}: {out}", s["command"]);
    }
    e
}

fn engine() -> Engine {
    engine_with(json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}))
}

fn call(e: &Engine, who: &str, cmd: &str, req: Value) -> Value {
    serde_json::from_str(&e.call_as_json(who, cmd, &req.to_string())).unwrap()
}

fn ok(e: &Engine, who: &str, cmd: &str, req: Value) -> Value {
    let out = call(e, who, cmd, req);
    assert_eq!(out["status"], "success", "{cmd}: {out}");
    out["data"].clone()
}

fn form(e: &Engine, menu: &str, extra: Value) -> Value {
    let mut req = json!({"menu": menu, "patient_id": "PAT001", "patient": patient(), "record": record()});
    req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    ok(e, C001, "assistant-form", req)
}

/// The form's own prefilled request, with the patient record and `picks` added.
fn submit(e: &Engine, form: &Value, picks: Value) -> Value {
    let mut req = form["form"].clone();
    req["patient"] = patient();
    req.as_object_mut().unwrap().extend(picks.as_object().unwrap().clone());
    ok(e, C001, "assistant-submit", req)
}

fn events(e: &Engine) -> usize {
    ok(e, r#"{"role":"platform"}"#, "next-events", json!({"limit": 1000}))["events"].as_array().map_or(0, Vec::len)
}

#[test]
fn each_of_the_five_menus_goes_from_its_prefilled_form_to_a_booking_in_two_calls() {
    let e = engine();
    // 预约挂号: the first free period of the first expert the form offers.
    let f = form(&e, "registration", json!({}));
    assert_eq!(f["patient"]["missing"], json!([]));
    assert_eq!(f["form"]["hospital_id"], "H001", "the county hospital by default");
    // The afternoon: the morning exam below must not overlap it (P6).
    let slot = f["choices"]["experts"][0]["periods"][1]["slot_id"].clone();
    let out = submit(&e, &f, json!({"slot_id": slot}));
    assert_eq!(out["command"], "book-slot");
    let n = &out["notice"];
    assert_eq!(n["number"], out["result"]["booking_id"]);
    assert_eq!(n["visit_no"], 1);
    assert_eq!(n["department_name"], "心脏科");
    assert_eq!(n["expert"]["title"], "主任医师");
    assert!(n["hints"].as_array().unwrap().iter().any(|h| h.as_str().unwrap().contains("就诊序号：1")));
    assert_eq!(ok(&e, C001, "booking-info", json!({"booking_id": n["number"]}))["status"], "booked");

    // 床位预约: a free bed of the first ward, with a coded reason.
    let f = form(&e, "bed", json!({}));
    let bed = f["choices"]["wards"][0]["beds"].as_array().unwrap().iter().find(|b| b["free"] == true).unwrap()["slot_id"].clone();
    let out = submit(&e, &f, json!({"slot_id": bed, "reason_code": "condition_worsened"}));
    assert_eq!(out["command"], "bed-reserve");
    assert_eq!(out["result"]["bed_status"], "reserved");
    assert_eq!(out["result"]["priority"], "critical");
    assert_eq!(out["notice"]["department_name"], "心内科病区");

    // 检查预约: the first free period of the first project.
    let f = form(&e, "exam", json!({"category": "影像检查"}));
    let p = &f["choices"]["projects"][0];
    let out = submit(&e, &f, json!({"project_id": p["project_id"], "slot_id": p["periods"][0]["slot_id"]}));
    assert_eq!(out["result"]["project_id"], p["project_id"]);
    assert!(out["notice"]["hints"][1].as_str().unwrap().starts_with("注意事项"));

    // 委托检验: the first project the lab offers the institution.
    let f = form(&e, "lab", json!({}));
    let item = f["choices"]["items"][0]["inst_code"].clone();
    let out = submit(&e, &f, json!({"items": [item], "doctor_id": "CDR01"}));
    assert_eq!(out["command"], "lab-order-submit");
    assert_eq!(out["result"]["diagnosis"], "高血压", "the diagnosis comes from the record");

    // 远程会诊: the first expert.
    let f = form(&e, "consultation", json!({}));
    let expert = f["choices"]["experts"][0]["doctor_id"].clone();
    let out = submit(&e, &f, json!({"project": "疑难病例会诊", "purpose": "协助诊疗", "expert_ids": [expert]}));
    assert_eq!(out["result"]["status"], "applied");
    assert_eq!(out["notice"]["number_kind"], "consultation_id");

    // Every kind is in the patient's history.
    let h = ok(&e, C001, "patient-history", json!({"patient_id": "PAT001"}));
    for k in ["registration", "bed", "exam", "lab_order", "consultation"] {
        assert_eq!(h["counts"][k], 1, "{k}: {h}");
    }
}

#[test]
fn pinyin_initials_and_full_pinyin_find_departments_experts_and_projects() {
    let e = engine();
    let f = form(&e, "registration", json!({"keyword": "xzk"}));
    assert_eq!(f["choices"]["departments"][0]["name"], "心脏科");
    assert_eq!(f["choices"]["experts"].as_array().unwrap().len(), 1);
    let f = form(&e, "registration", json!({"keyword": "wangfang"}));
    assert_eq!(f["choices"]["experts"][0]["name"], "王芳");
    let f = form(&e, "exam", json!({"keyword": "CT"}));
    assert_eq!(f["choices"]["projects"][0]["project_id"], "P001");
    let f = form(&e, "lab", json!({"keyword": "kfxt"}));
    assert_eq!(f["choices"]["items"][0]["name"], "空腹血糖");
}

#[test]
fn filters_combine_over_experts_and_projects() {
    let e = engine();
    let experts = |f: Value| form(&e, "registration", f)["choices"]["experts"].as_array().unwrap().iter().map(|x| x["doctor_id"].clone()).collect::<Vec<_>>();
    assert_eq!(experts(json!({"title": "主任医师"})), vec![json!("DR001")]);
    assert_eq!(experts(json!({"speciality": "甲状腺"})), vec![json!("DR002")]);
    assert_eq!(experts(json!({"date": "2024-10-31", "period": "上午"})), vec![json!("DR002")]);
    assert!(experts(json!({"title": "主任医师", "date": "2024-10-31"})).is_empty());
    let projects = |f: Value| form(&e, "exam", f)["choices"]["projects"].as_array().unwrap().iter().map(|x| x["project_id"].clone()).collect::<Vec<_>>();
    assert_eq!(projects(json!({"type": "常规检查"})), vec![json!("P005")]);
    assert_eq!(projects(json!({"max_duration_minutes": 20})), vec![json!("P001"), json!("P005")]);
    assert_eq!(projects(json!({"device_id": "DEV003"})), vec![json!("P003")]);
    assert!(projects(json!({"category": "影像检查", "max_duration_minutes": 10})).is_empty());
}

#[test]
fn bed_status_is_live_in_the_form() {
    let e = engine();
    let ward = |e: &Engine| form(e, "bed", json!({"bed_type": "单人间"}))["choices"]["wards"][0].clone();
    assert_eq!(ward(&e)["status"], "有床位");
    let out = ok(
        &e,
        C001,
        "assistant-submit",
        json!({"menu": "bed", "patient_id": "PAT001", "patient": patient(), "department_id": "D301", "bed_type": "单人间", "reason_code": "urgent_surgery"}),
    );
    let booking = out["result"]["booking_id"].clone();
    assert_eq!(ward(&e)["status"], "无床位");
    assert_eq!(ward(&e)["beds"][0]["status"], "reserved");
    ok(&e, C001, "bed-cancel", json!({"booking_id": booking, "reason": "患者改期"}));
    assert_eq!(ward(&e)["status"], "有床位", "a cancelled reservation frees the bed at once");
}

#[test]
fn a_retried_submission_answers_the_first_answer_and_books_once() {
    let e = engine();
    let req = json!({"menu": "registration", "patient_id": "PAT001", "patient": patient(), "doctor_id": "DR001", "date": "2024-10-30", "period": "上午", "request_id": "menu-7"});
    let a = ok(&e, C001, "assistant-submit", req.clone());
    let b = ok(&e, C001, "assistant-submit", req);
    assert_eq!(a["result"], b["result"]);
    let slot = ok(&e, C001, "slot-info", json!({"slot_id": "RG-H001-DR001-20241030-08001130"}));
    assert_eq!(slot["booked"], 1);
}

#[test]
fn personal_numbers_are_masked_sealed_and_never_in_errors_and_others_see_none() {
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdeffedcba9876543210";
    let e = engine_with(json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "encryption_key": key}));
    let req = json!({"menu": "registration", "patient_id": "PAT001", "patient": patient(), "record": record(), "doctor_id": "DR001", "date": "2024-10-30", "period": "上午"});
    let out = ok(&e, C001, "assistant-submit", req.clone());
    let text = out.to_string();
    for secret in [ID_NUMBER, PHONE, CARD, "张三"] {
        assert!(!text.contains(secret), "{secret} in the answer");
    }
    assert_eq!(out["result"]["patient"]["insurance_card_no"], "320***********1234");
    // The hospital the booking is on reads the record number; another community reads it masked, and finds no history.
    assert_eq!(ok(&e, H001, "booking-info", json!({"booking_id": "B000001"}))["patient"]["medical_record_no"], "MR2024001");
    assert_eq!(ok(&e, C002, "patient-history", json!({"patient_id": "PAT001"}))["total"], 0);
    // A regulator may call none of the menus.
    for cmd in ["assistant-form", "assistant-submit", "patient-history"] {
        assert_eq!(call(&e, REGULATOR, cmd, req.clone())["code"], "FORBIDDEN");
    }
    // Refusals with the personal numbers in every field never repeat them.
    for (k, v) in [("patient_id", ID_NUMBER), ("slot_id", PHONE), ("reason_code", CARD), ("menu", CARD), ("hospital_id", ID_NUMBER)] {
        let mut bad = req.clone();
        bad[k] = v.into();
        bad["referral"] = true.into();
        let out = call(&e, C001, "assistant-submit", bad);
        if out["status"] == "error" {
            let t = out.to_string();
            assert!(!t.contains(v), "{k}: {t}");
        }
    }
    let mut bad = req.clone();
    bad["patient"]["insurance_card_no"] = format!("{CARD} 卡").into();
    let out = call(&e, C001, "assistant-form", bad);
    assert_eq!(out["code"], "INVALID_FIELD");
    assert!(!out.to_string().contains(CARD));
    e.close();
    // Sealed at rest: nothing of the patient is in the store's files in the clear.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    for secret in [ID_NUMBER, PHONE, CARD, "MR2024001"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} stored in the clear");
    }
}

#[test]
fn bad_input_gets_a_stable_code_and_both_messages_and_changes_nothing() {
    let e = engine();
    let before = events(&e);
    let base = json!({"menu": "bed", "patient_id": "PAT001", "patient": patient(), "department_id": "D301"});
    let cases = [
        (json!({"menu": "pharmacy"}), "INVALID_FIELD"),
        (json!({"reason_code": "feeling_lucky"}), "INVALID_FIELD"),
        (json!({}), "MISSING_FIELD"),
        (json!({"reason_code": "other"}), "MISSING_FIELD"),
        (json!({"reason_code": "urgent_surgery", "slot_id": "RG-H001-DR001-20241030-08001130"}), "INVALID_FIELD"),
        (json!({"reason_code": "urgent_surgery", "record": "not an object"}), "INVALID_FIELD"),
        (json!({"reason_code": "urgent_surgery", "hospital_id": "H404"}), "HOSPITAL_NOT_FOUND"),
        (json!({"reason_code": "urgent_surgery", "patient": {"id_number": "110105194912310021"}}), "INVALID_ID_NUMBER"),
        (json!({"reason_code": "urgent_surgery", "institution_id": "C002"}), "FORBIDDEN"),
    ];
    for (change, code) in cases {
        let mut req = base.clone();
        req.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        let out = call(&e, C001, "assistant-submit", req);
        assert_eq!(out["status"], "error");
        assert_eq!(out["code"], code, "{change}: {out}");
        assert!(!out["message"].as_str().unwrap().is_empty() && !out["message_zh"].as_str().unwrap().is_empty());
        assert!(out["numeric_code"].as_u64().is_some());
    }
    assert_eq!(events(&e), before, "a refusal adds no event");
    assert_eq!(ok(&e, C001, "slot-info", json!({"slot_id": "BD-H001-D301-01"}))["booked"], 0);
    assert_eq!(ok(&e, C001, "patient-history", json!({"patient_id": "PAT001"}))["total"], 0);
}
