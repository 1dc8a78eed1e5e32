//! What a case carries and who may read it (issue 15, items 6, 8 and 10):
//! a down-referral keeps every record field the hospital sends; a
//! consultation opens the inpatient route only at the hospital that approved
//! it itself; the admission desk imports the referred patient's details
//! unmasked in one call, for its own hospital only, and the import is
//! recorded.

mod common;
use common::ok;
use serde_json::{json, Value};
use yilian_core::{Engine, ErrorCode, Principal, Role};

const NAME: &str = "欧阳娜娜";
const ID: &str = "11010519491231002X";
const PHONE: &str = "13800138000";

const COURSE: &str = "全麻下行左膝关节置换术，术后抗感染、镇痛及早期功能锻炼";
const SUMMARY: &str = "切口愈合良好，左膝屈曲90度，可扶拐行走，带药出院";

fn config(dir: Option<&std::path::Path>) -> String {
    let mut c = json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"});
    if let Some(d) = dir {
        c["data_dir"] = json!(d);
    }
    c.to_string()
}

/// The first `n` steps of the named vector file's first case (catalogue, schedule, network …).
fn replay(e: &Engine, file: &str, n: usize) {
    let files = yilian_tests::vector_files();
    let (_, f) = files.iter().find(|(name, _)| name.contains(file)).expect("vector file");
    for st in f["cases"][0]["steps"].as_array().unwrap().iter().take(n) {
        ok(e, st["command"].as_str().unwrap(), st["request"].clone());
    }
}

fn as_(e: &Engine, role: Role, inst: Option<&str>, cmd: &str, req: Value) -> Result<Value, yilian_core::Error> {
    let p = Principal::new(role, inst, Some("李护士")).unwrap();
    e.call_value_as(&p, cmd, &req.to_string())
}

fn assert_no_personal_data(what: &str, text: &str) {
    for secret in [NAME, ID, PHONE] {
        assert!(!text.contains(secret), "{what} carries personal data: {text}");
    }
}

// ------------------------------------------------------------------ item 6

fn down_request() -> Value {
    json!({
        "institution_id": "H001", "patient_id": "PAT001", "clinic_id": "C001", "date": "2024-11-05",
        "reason": "术后康复", "purpose": "rehabilitation",
        "patient": {"name": NAME, "id_number": ID, "phone": PHONE, "sex": "女"},
        "treatment_course": COURSE,
        "emr": {"name": NAME, "id_number": ID, "diagnoses": [{"code": "M17", "name": "膝关节病"}, {"code": "I10", "name": "高血压"}],
                "discharge_summary": SUMMARY, "护理级别": "二级护理"},
        "record": {"康复计划": "股四头肌等长收缩训练，每日三次", "follow_up": {"interval_weeks": 6, "items": ["X线", "功能评分"]}},
    })
}

#[test]
fn a_down_referral_keeps_the_treatment_course_the_discharge_summary_and_every_other_field_sent() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Engine::open(&config(Some(dir.path()))).unwrap();
        replay(&e, "30_referral_down", 2);
        let v = ok(&e, "down-referral-apply", down_request());
        let rec = &v["record"];
        assert_eq!(rec["treatment_course"], COURSE, "{v}");
        assert_eq!(rec["discharge_summary"], SUMMARY, "{v}");
        assert_eq!(rec["康复计划"], "股四头肌等长收缩训练，每日三次");
        assert_eq!(rec["follow_up"], json!({"interval_weeks": 6, "items": ["X线", "功能评分"]}));
        assert_eq!(rec["护理级别"], "二级护理");
        assert_eq!(rec["diagnosis"], "膝关节病");
        assert_eq!(rec["diagnoses"].as_array().map(Vec::len), Some(2), "every diagnosis is kept: {v}");
        // The identity the EMR carries went to `patient` (masked), never into the record.
        assert_no_personal_data("the down-referral's answer", &v.to_string());
        assert_eq!(v["patient"]["name"], "欧阳**");
        e.close();
    }
    // Durable, and what the community side reads: the view, the list and the slip.
    let e = Engine::open(&config(Some(dir.path()))).unwrap();
    let view = as_(&e, Role::Community, Some("C001"), "referral-view", json!({"referral_id": 1})).unwrap();
    assert_eq!(view["record"]["treatment_course"], COURSE);
    assert_eq!(view["record"]["discharge_summary"], SUMMARY);
    assert_eq!(view["record"]["follow_up"]["interval_weeks"], 6);
    let list = as_(&e, Role::Community, Some("C001"), "down-referral-list", json!({})).unwrap();
    assert_eq!(list["items"][0]["record"]["康复计划"], "股四头肌等长收缩训练，每日三次", "{list}");
    let slip = as_(&e, Role::Community, Some("C001"), "referral-slip", json!({"referral_id": 1})).unwrap();
    let text = slip["content"].as_str().unwrap();
    assert!(text.contains("诊疗经过") && text.contains(COURSE), "{text}");
    assert!(text.contains("出院小结") && text.contains(SUMMARY), "{text}");
    assert_no_personal_data("the slip", text);
}

#[test]
fn a_record_field_holding_the_patients_identity_or_an_engine_field_is_refused_clearly_and_changes_nothing() {
    let e = Engine::open(&config(None)).unwrap();
    replay(&e, "30_referral_down", 2);
    for (field, value) in [("身份证号", json!(ID)), ("phone", json!(PHONE)), ("fused_from_emr", json!(false)), ("purpose", json!("follow_up"))] {
        let mut req = down_request();
        req["record"][field] = value;
        let err = e.call_value("down-referral-apply", &req.to_string()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidField, "{field}");
        let shown = format!("record.{field}");
        assert!(err.message().contains(&shown) && err.message_zh().contains(&shown), "the error names the field: {}", err.message_zh());
        assert_no_personal_data("the error", &format!("{} {}", err.message(), err.message_zh()));
    }
    let mut req = down_request();
    req["record"] = json!({"": "无名字段"});
    assert_eq!(e.call_value("down-referral-apply", &req.to_string()).unwrap_err().code(), ErrorCode::InvalidField);
    let mut req = down_request();
    req["discharge_summary"] = json!(42);
    assert_eq!(e.call_value("down-referral-apply", &req.to_string()).unwrap_err().code(), ErrorCode::InvalidField);
    assert_eq!(ok(&e, "referral-query", json!({}))["total"], 0, "a refused application records nothing");
}

// ------------------------------------------------------------------ item 8

fn consult(e: &Engine, hospital: &str) -> u64 {
    let v = ok(
        e,
        "consultation-apply",
        json!({"institution_id": "C001", "hospital_id": hospital, "patient_id": "PAT001", "project": "骨科会诊", "purpose": "是否需住院"}),
    );
    v["consultation_id"].as_u64().unwrap()
}

fn approve(id: u64) -> Value {
    json!({"consultation_id": id, "decision": "approve", "scheduled_time": "2024-10-29T16:00:00+08:00", "experts": [{"expert_id": "DR009"}]})
}

fn inpatient(hospital: &str, consultation: u64) -> Value {
    json!({"institution_id": "C001", "hospital_id": hospital, "patient_id": "PAT001", "department_id": "D001", "expected_date": "2024-10-31",
        "reason": "膝关节置换术", "disease_code": "M17", "readmission": false, "consultation_id": consultation})
}

fn two_hospitals() -> Engine {
    let e = Engine::open(&config(None)).unwrap();
    replay(&e, "30_referral_inpatient", 2);
    ok(&e, "sync-catalog", json!({"hospital_id": "H002", "name": "昆山市第二人民医院"}));
    e
}

#[test]
fn a_consultation_approved_by_another_hospital_does_not_open_the_inpatient_route_here() {
    let e = two_hospitals();
    let cid = consult(&e, "H002");
    as_(&e, Role::Hospital, Some("H002"), "consultation-review", approve(cid)).unwrap();
    // H002 approved its own consultation: the route opens at H002, not at H001.
    let refused = e.call_value("inpatient-referral-apply", &inpatient("H001", cid).to_string()).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ConsultationRequired);
    assert!(refused.message_zh().contains("其他医院"), "{}", refused.message_zh());
    assert_eq!(ok(&e, "referral-query", json!({}))["total"], 0);
    let d = ok(&e, "referral-decision", json!({"institution_id": "H001", "patient_id": "PAT001", "disease_code": "M17", "consultation_id": cid}));
    assert_eq!(d["allowed"], false, "{d}");
    let v = ok(&e, "inpatient-referral-apply", inpatient("H002", cid));
    assert_eq!(v["decision"]["decision"], "after_consultation");
    assert_eq!(v["decision"]["approved_by"], "H002");
}

#[test]
fn a_community_another_hospital_or_the_bare_platform_cannot_approve_a_consultation_and_so_cannot_open_the_route() {
    let e = two_hospitals();
    let cid = consult(&e, "H001");
    for (role, inst) in [(Role::Community, Some("C001")), (Role::Community, Some("C002")), (Role::Hospital, Some("H002")), (Role::Platform, None)] {
        let err = as_(&e, role, inst, "consultation-review", approve(cid)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ReferralForbidden, "{role:?} {inst:?}");
        if role != Role::Platform {
            let err = as_(&e, role, inst, "consultation-complete", json!({"consultation_id": cid, "opinion": "可住院"})).unwrap_err();
            assert_eq!(err.code(), ErrorCode::ReferralForbidden, "{role:?} {inst:?}");
        }
    }
    for who in [Role::Lab, Role::Regulator] {
        let inst = (who == Role::Lab).then_some("L001");
        assert_eq!(as_(&e, who, inst, "consultation-review", approve(cid)).unwrap_err().code(), ErrorCode::Forbidden);
    }
    assert_eq!(ok(&e, "consultation-view", json!({"consultation_id": cid}))["status"], "applied");
    assert_eq!(e.call_value("inpatient-referral-apply", &inpatient("H001", cid).to_string()).unwrap_err().code(), ErrorCode::ConsultationRequired);
    // The receiving hospital itself (or the platform naming it) approves: now the route is open.
    let v = as_(&e, Role::Hospital, Some("H001"), "consultation-review", approve(cid)).unwrap();
    assert_eq!(v["review"]["by"], "H001");
    let v = ok(&e, "inpatient-referral-apply", inpatient("H001", cid));
    assert_eq!(v["decision"]["decision"], "after_consultation", "{v}");
}

// ------------------------------------------------------------------ item 10

/// An inpatient referral of `NAME` with its deposit paid and a bed reserved at H001.
fn bed_reserved(e: &Engine) {
    replay(e, "30_referral_inpatient", 3);
    ok(
        e,
        "inpatient-referral-apply",
        json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "department_id": "D001", "expected_date": "2024-10-31",
            "reason": "冠心病再住院", "disease_code": "I25", "readmission": true,
            "patient": {"name": NAME, "id_number": ID, "phone": PHONE, "sex": "女"},
            "emr": {"chief_complaint": "胸闷气短两周", "diagnoses": [{"code": "I25", "name": "慢性缺血性心脏病"}], "allergies": "青霉素"}}),
    );
    ok(e, "inpatient-deposit", json!({"referral_id": 1, "payment_status": "paid", "amount": 3000}));
}

#[test]
fn the_admission_desk_imports_the_referred_patient_unmasked_in_one_call_and_the_import_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&config(Some(dir.path()))).unwrap();
    bed_reserved(&e);
    // No bed yet: nothing to admit into.
    let early = as_(&e, Role::Hospital, Some("H001"), "admission-import", json!({"referral_id": 1})).unwrap_err();
    assert_eq!(early.code(), ErrorCode::ReferralInvalidTransition);
    ok(&e, "inpatient-bed-reserve", json!({"institution_id": "H001", "referral_id": 1, "bed_type": "监护"}));
    let seen = ok(&e, "next-events", json!({"limit": 10000}));
    ok(&e, "next-events", json!({"ack": seen["last_seq"], "limit": 1}));
    let before = ok(&e, "audit-log", json!({"limit": 1000}))["entries"].as_array().unwrap().len();

    let v = as_(&e, Role::Hospital, Some("H001"), "admission-import", json!({"admission_id": 1, "request_id": "imp-1"})).unwrap();
    assert_eq!(v["patient"], json!({"name": NAME, "id_number": ID, "phone": PHONE, "sex": "女"}), "{v}");
    assert_eq!((v["admission_id"].as_u64(), v["referral_id"].as_u64()), (Some(1), Some(1)));
    assert_eq!(v["bed_number"], "02");
    assert_eq!(v["bed_type"], "监护");
    assert_eq!(v["primary_diagnosis"], "慢性缺血性心脏病");
    assert_eq!(v["record"]["allergies"], "青霉素");
    assert_eq!(v["deposit"]["amount"], 3000);
    assert_eq!(v["admission"]["import_count"], 1);
    assert_eq!(v["admission"]["imported_by"], "H001");
    // A retry answers the same and records nothing more.
    let again = as_(&e, Role::Hospital, Some("H001"), "admission-import", json!({"admission_id": 1, "request_id": "imp-1"})).unwrap();
    assert_eq!(again, v);

    // Recorded: in the referral's history, as an event without personal data, in the audit trail.
    let view = ok(&e, "referral-view", json!({"referral_id": 1}));
    let last = view["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["via"].as_str(), last["by"].as_str(), last["to"].as_str()), (Some("admission-import"), Some("H001"), Some("bed_reserved")));
    let evs = ok(&e, "next-events", json!({"limit": 100}));
    let kinds: Vec<&str> = evs["events"].as_array().unwrap().iter().map(|x| x["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["admission_imported"], "{evs}");
    assert_eq!(evs["events"][0]["data"]["hospital_id"], "H001");
    assert_no_personal_data("the events", &evs.to_string());
    let audit = ok(&e, "audit-log", json!({"limit": 1000}));
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), before + 1, "one entry for the import, none for its retry: {audit}");
    let entry = entries.last().unwrap();
    assert_eq!(entry["command"], "admission-import");
    assert_eq!(entry["institution"], "H001");
    assert_eq!(entry["operator"], "李护士");
    assert!(entry["request_id"].as_str().unwrap().ends_with("imp-1"), "{entry}");
    assert_no_personal_data("the audit trail", &audit.to_string());

    // Unmasked for that principal only: everyone else is refused, and every other answer stays masked.
    for (role, inst, code) in [
        (Role::Community, Some("C001"), ErrorCode::Forbidden),
        (Role::Hospital, Some("H002"), ErrorCode::ReferralForbidden),
        (Role::Platform, None, ErrorCode::ReferralForbidden),
        (Role::Lab, Some("L001"), ErrorCode::Forbidden),
        (Role::Regulator, None, ErrorCode::Forbidden),
    ] {
        let err = as_(&e, role, inst, "admission-import", json!({"admission_id": 1})).unwrap_err();
        assert_eq!(err.code(), code, "{role:?} {inst:?}");
        assert_no_personal_data("the refusal", &format!("{} {}", err.message(), err.message_zh()));
    }
    // The platform acting for the community by naming it is refused the same.
    assert_eq!(err_code(&e, json!({"institution_id": "C001", "admission_id": 1})), ErrorCode::ReferralForbidden);
    assert_eq!(err_code(&e, json!({"institution_id": "H001", "admission_id": 1, "patient_id": "PAT002"})), ErrorCode::ReferralForbidden);
    for (cmd, req) in [
        ("admission-details", json!({"institution_id": "H001", "admission_id": 1})),
        ("referral-view", json!({"institution_id": "H001", "referral_id": 1})),
        ("referral-view", json!({"institution_id": "C001", "referral_id": 1})),
        ("referral-query", json!({})),
    ] {
        let out = ok(&e, cmd, req);
        assert_no_personal_data(cmd, &out.to_string());
    }
    assert_eq!(ok(&e, "audit-log", json!({"limit": 1000}))["entries"].as_array().unwrap().len(), before + 1, "refusals record nothing");

    // After admission the desk may import again (counted); after discharge there is nothing to admit.
    ok(&e, "inpatient-admit", json!({"institution_id": "H001", "admission_id": 1}));
    let v = as_(&e, Role::Hospital, Some("H001"), "admission-import", json!({"referral_id": 1})).unwrap();
    assert_eq!((v["admission_status"].as_str(), v["admission"]["import_count"].as_u64()), (Some("ongoing"), Some(2)));
    ok(&e, "inpatient-discharge", json!({"institution_id": "H001", "referral_id": 1}));
    let late = as_(&e, Role::Hospital, Some("H001"), "admission-import", json!({"referral_id": 1})).unwrap_err();
    assert_eq!(late.code(), ErrorCode::ReferralInvalidTransition);
    e.close();
    // The record of the imports survives a reopen.
    let e = Engine::open(&config(Some(dir.path()))).unwrap();
    assert_eq!(ok(&e, "referral-view", json!({"referral_id": 1}))["admission"]["import_count"], 2);
}

fn err_code(e: &Engine, req: Value) -> ErrorCode {
    e.call_value("admission-import", &req.to_string()).unwrap_err().code()
}
