//! What the shared vectors cannot say about issue 15's items 9 and 14: the
//! referred patient's visit number printed on the slip and sent with the
//! event, numbers recovered after a reopen, and the catalogue's cost in the
//! exact form the hospital sent (a vector compares numbers by value).

mod common;
use common::ok;
use serde_json::{json, Value};
use yilian_core::{Engine, Principal, Role};

const AM: &str = "RG-H001-DR001-20241030-08001000";
const LATE: &str = "RG-H001-DR001-20241030-10001200";

fn manual() -> String {
    json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string()
}

fn schedule(e: &Engine) {
    ok(
        e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-30", "capacity": 10,
            "available_slots": [{"start_time": "08:00", "end_time": "10:00"}, {"start_time": "10:00", "end_time": "12:00"}]}]}),
    );
}

fn book(e: &Engine, slot: &str, patient: &str, priority: &str) -> Value {
    ok(e, "book-slot", json!({"slot_id": slot, "patient_id": patient, "clinic_id": "C001", "priority": priority}))
}

#[test]
fn the_referral_slip_and_the_hospitals_event_carry_the_visit_number_of_the_rule() {
    let e = Engine::open(&manual()).unwrap();
    schedule(&e);
    for p in ["PAT001", "PAT002", "PAT003"] {
        book(&e, AM, p, "normal");
    }
    let rf = ok(
        &e,
        "outpatient-referral-apply",
        json!({"institution_id": "C001", "patient_id": "PAT004", "slot_id": LATE, "reason": "胸痛待查",
            "patient": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}}),
    );
    // Three patients numbered 1–3: the referred patient is two after the current one.
    assert_eq!(rf["visit_no"], 5, "{rf}");
    let slip = ok(&e, "referral-slip", json!({"institution_id": "C001", "referral_id": 1}));
    let text = slip["content"].as_str().unwrap();
    assert!(text.contains("就诊序号") && text.contains("5号"), "{text}");
    let hospital = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    let seen = e.call_value_as(&hospital, "referral-view", &json!({"referral_id": 1}).to_string()).unwrap();
    assert_eq!(seen["visit_no"], 5);
    let events = ok(&e, "next-events", json!({"limit": 100}));
    let applied = events["events"].as_array().unwrap().iter().find(|v| v["type"] == "referral_applied").cloned().unwrap();
    assert_eq!(applied["data"]["visit_no"], 5, "{applied}");
    e.check_invariants().unwrap();
}

#[test]
fn visit_numbers_are_recovered_after_a_reopen_and_the_rule_goes_on_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string();
    {
        let e = Engine::open(&cfg).unwrap();
        schedule(&e);
        assert_eq!(book(&e, AM, "PAT001", "normal")["visit_no"], 1);
        assert_eq!(book(&e, AM, "PAT002", "normal")["visit_no"], 2);
        assert_eq!(book(&e, LATE, "PAT003", "referral")["visit_no"], 4);
        let cancelled = book(&e, AM, "PAT004", "normal");
        assert_eq!(cancelled["visit_no"], 3);
        ok(&e, "cancel-slot", json!({"booking_id": cancelled["booking_id"]}));
        e.close();
    }
    let e = Engine::open(&cfg).unwrap();
    assert_eq!(ok(&e, "booking-info", json!({"booking_id": "B000003"}))["visit_no"], 4);
    e.check_invariants().unwrap();
    // Number 3 was given back by the cancellation: the next patient takes it.
    assert_eq!(book(&e, LATE, "PAT005", "normal")["visit_no"], 3);
    assert_eq!(book(&e, AM, "PAT006", "referral")["visit_no"], 6);
    assert_eq!(book(&e, AM, "PAT007", "normal")["visit_no"], 5);
    e.check_invariants().unwrap();
}

#[test]
fn project_info_returns_the_cost_exactly_as_the_hospital_sent_it() {
    let e = Engine::open(&manual()).unwrap();
    ok(
        &e,
        "sync-catalog",
        json!({"hospital_id": "H001", "projects": [
            {"project_id": "P001", "project_name": "CT扫描", "department_id": "D001", "department_name": "放射科", "cost": 500, "estimated_duration": "30分钟"},
            {"project_id": "P002", "project_name": "血液检查", "cost": 25.5},
            {"project_id": "P003", "project_name": "胃镜检查", "cost": "680.00"}]}),
    );
    let answer = e.call("project-info", r#"{"project_id": "P001"}"#);
    // The source's example: "cost": 500, not 500.0.
    assert!(answer.contains(r#""cost":500,"#), "{answer}");
    let all: Value = serde_json::from_str(&e.call("project-info", "{}")).unwrap();
    let costs: Vec<String> = all["data"].as_array().unwrap().iter().map(|p| p["cost"].to_string()).collect();
    assert_eq!(costs, ["500", "25.5", "\"680.00\""]);
}

#[test]
fn a_device_without_operators_in_the_catalogue_lists_none() {
    let e = Engine::open(&manual()).unwrap();
    ok(
        &e,
        "sync-catalog",
        json!({"hospital_id": "H001", "devices": [{"device_id": "DEV001", "project_id": "P001", "operators": ["张技师"]}, {"device_id": "DEV002", "project_id": "P001"}]}),
    );
    ok(
        &e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [
            {"device_id": "DEV001", "date": "2024-10-30", "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]},
            {"device_id": "DEV002", "date": "2024-10-30", "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
    let v = ok(&e, "device-schedule", json!({"date": "2024-10-30"}));
    assert_eq!(v[0]["operators"], json!(["张技师"]));
    assert!(v[1].get("operators").is_none(), "{v}");
}
