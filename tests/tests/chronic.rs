//! The chronic-disease centre and follow-up (C1, C2): the register, plans
//! made by the cases' steps, reminders by the due work alone, outcomes,
//! isolation, durability and the statistics against a recount.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use yilian_core::Engine;

const START: &str = "2024-10-29T09:00:00+08:00";

fn cfg(extra: Value) -> String {
    let mut cfg = json!({"clock_start": START, "clock": "manual"});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    cfg.to_string()
}

fn ok(e: &Engine, cmd: &str, req: Value) -> Value {
    e.call_value(cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd} failed: {err:?}"))
}

fn as_(e: &Engine, who: Value, cmd: &str, req: Value) -> yilian_core::error::Result<Value> {
    e.call_value_as_json(&who.to_string(), cmd, &req.to_string())
}

fn events(e: &Engine, kind: &str) -> Vec<Value> {
    let all = ok(e, "next-events", json!({"limit": 10000}));
    all["events"].as_array().unwrap().iter().filter(|v| v["type"] == kind).cloned().collect()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn enrol(e: &Engine, inst: &str, patient: &str, codes: Value, next: &str) -> Value {
    ok(e, "chronic-enrol", json!({"institution_id": inst, "patient_id": patient, "doctor_id": "CDR01", "icd10": codes, "next_follow_up": next}))
}

fn plans(e: &Engine, inst: &str) -> Vec<Value> {
    ok(e, "follow-up-query", json!({"institution_id": inst, "page_size": 200}))["items"].as_array().unwrap().clone()
}

const CATALOG: &str = r#"{"hospital_id": "H001", "name": "县医院", "projects": [{"project_id": "P001", "project_name": "CT扫描", "department_id": "D101", "department_name": "放射科", "cost": 500, "methods": ["平扫"], "body_parts": ["胸部"]}]}"#;

/// An exam of PAT001 for C001 at H001 on 2024-10-31 09:00, arranged and paid.
fn book_exam(e: &Engine) {
    e.call_value("sync-catalog", CATALOG).unwrap();
    ok(
        e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-31", "capacity": 2, "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
    ok(
        e,
        "exam-apply",
        json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "items": [{"project_id": "P001", "method": "平扫", "body_part": "胸部"}]}),
    );
    ok(
        e,
        "exam-arrange",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "device_id": "DEV001", "date": "2024-10-31", "time_slot": "09:00-10:00"}),
    );
    ok(e, "exam-payment", json!({"exam_id": 1, "payment_status": "paid"}));
}

#[test]
fn an_enrolled_patients_follow_up_is_reminded_by_the_timer_alone_once() {
    let e = Engine::open(&cfg(json!({"timer": {"enabled": true, "every_ms": 100}}))).unwrap();
    enrol(&e, "C001", "PAT001", json!(["I10"]), "2024-10-30");
    std::thread::sleep(Duration::from_millis(300));
    assert!(events(&e, "follow_up_due").is_empty(), "not due yet");
    // Only the clock moves: the timer's pass does the rest.
    ok(&e, "advance-clock", json!({"seconds": 15 * 3600}));
    eventually("follow_up_due raised", || events(&e, "follow_up_due").len() == 1);
    let ev = &events(&e, "follow_up_due")[0];
    assert_eq!(ev["data"]["kind"], "periodic");
    assert_eq!(ev["data"]["doctor_id"], "CDR01");
    assert_eq!(ev["clinic_id"], "C001");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(events(&e, "follow_up_due").len(), 1, "reminded once");
    assert_eq!(ok(&e, "follow-up-view", json!({"plan_id": 1}))["status"], "due");
    e.close();
}

#[test]
fn an_exam_booked_creates_before_and_after_plans_and_its_report_redates_the_after_one() {
    let e = Engine::open(&cfg(json!({}))).unwrap();
    e.call_value("sync-catalog", CATALOG).unwrap();
    ok(
        &e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-31", "capacity": 2, "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
    ok(
        &e,
        "exam-apply",
        json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "items": [{"project_id": "P001", "method": "平扫", "body_part": "胸部"}]}),
    );
    ok(
        &e,
        "exam-arrange",
        json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "device_id": "DEV001", "date": "2024-10-31", "time_slot": "09:00-10:00"}),
    );
    assert!(plans(&e, "C001").is_empty(), "an arrangement not paid is not booked yet");
    ok(&e, "exam-payment", json!({"exam_id": 1, "payment_status": "paid"}));
    let p = plans(&e, "C001");
    assert_eq!(p.len(), 2);
    assert_eq!((p[0]["kind"].as_str(), p[0]["due_at"].as_str()), (Some("exam_before"), Some("2024-10-30T09:00:00+08:00")));
    assert_eq!((p[1]["kind"].as_str(), p[1]["due_at"].as_str()), (Some("exam_after"), Some("2024-11-03T09:00:00+08:00")));
    assert_eq!(p[0]["hospital_id"], "H001");
    // The report comes back on 11-02: the after plan moves to 3 days after it.
    ok(&e, "advance-clock", json!({"seconds": 4 * 86400}));
    ok(&e, "exam-report", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "conclusion": "未见异常"}));
    let after = ok(&e, "follow-up-view", json!({"plan_id": 2}));
    assert_eq!(after["due_at"], "2024-11-05T09:00:00+08:00", "{after}");
}

#[test]
fn a_down_referral_creates_a_plan_at_the_receiving_centre() {
    let e = Engine::open(&cfg(json!({"follow_up": {"down_referral_days": 5}}))).unwrap();
    e.call_value("sync-catalog", CATALOG).unwrap();
    ok(&e, "referral-network-sync", json!({"communities": [{"clinic_id": "C002", "name": "社区卫生服务站", "level": "community_station"}]}));
    enrol(&e, "C002", "PAT009", json!(["J44"]), "2025-03-01");
    ok(
        &e,
        "down-referral-apply",
        json!({"institution_id": "H001", "patient_id": "PAT009", "clinic_id": "C002", "date": "2024-11-05", "reason": "慢阻肺急性加重出院", "purpose": "follow_up"}),
    );
    let p: Vec<Value> = plans(&e, "C002").into_iter().filter(|p| p["kind"] == "after_down_referral").collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["due_at"], "2024-11-10T00:00:00+08:00");
    assert_eq!(p[0]["chronic_id"], 1, "the registered patient's plan names the registration");
    assert_eq!(p[0]["icd10"], json!(["J44"]));
    assert_eq!(p[0]["source"], json!({"case": "referral", "id": 1}));
}

#[test]
fn an_outcome_with_measurements_and_satisfaction_is_recorded_and_the_next_plan_made() {
    let e = Engine::open(&cfg(json!({"follow_up": {"interval_days": {"diabetes": 60}}}))).unwrap();
    enrol(&e, "C001", "PAT001", json!(["E11.9", "I10"]), "2024-11-01");
    let v = ok(
        &e,
        "follow-up-record",
        json!({"institution_id": "C001", "plan_id": 1, "method": "phone", "measurements": {"fasting_glucose": 6.8, "hba1c": 7.1}, "feedback": "血糖控制尚可", "satisfaction": 5}),
    );
    assert_eq!(v["status"], "completed");
    assert_eq!(v["outcome"]["measurements"]["hba1c"], 7.1);
    assert_eq!(v["outcome"]["satisfaction"], 5);
    assert_eq!(v["outcome"]["on_time"], true);
    // The shortest interval of the patient's diseases (diabetes 60 by config, hypertension 90).
    assert_eq!(v["next_plan"]["due_date"], "2024-12-28");
    let reg = ok(&e, "chronic-view", json!({"chronic_id": 1}));
    assert_eq!(reg["next_follow_up"], "2024-12-28");
    assert_eq!(events(&e, "follow_up_completed").len(), 1);
}

#[test]
fn a_community_centre_sees_only_its_own_patients_and_a_regulator_only_counts() {
    let e = Engine::open(&cfg(json!({}))).unwrap();
    enrol(&e, "C001", "110105194912310021", json!("I10"), "2024-11-01");
    let c1 = json!({"role": "community", "institution_id": "C001"});
    let c2 = json!({"role": "community", "institution_id": "C002"});
    let reg = json!({"role": "regulator", "institution_id": "R001"});
    let h = json!({"role": "hospital", "institution_id": "H001"});
    assert_eq!(as_(&e, c1.clone(), "chronic-query", json!({})).unwrap()["total"], 1);
    assert_eq!(as_(&e, c1, "chronic-view", json!({"chronic_id": 1})).unwrap()["patient_id"], "110105194912310021");
    assert_eq!(as_(&e, c2.clone(), "chronic-query", json!({})).unwrap()["total"], 0);
    assert_eq!(as_(&e, c2.clone(), "chronic-view", json!({"chronic_id": 1})).unwrap_err().code_str(), "CHRONIC_PATIENT_NOT_FOUND");
    assert_eq!(as_(&e, c2.clone(), "follow-up-view", json!({"plan_id": 1})).unwrap_err().code_str(), "FOLLOW_UP_NOT_FOUND");
    assert_eq!(as_(&e, c2.clone(), "follow-up-record", json!({"institution_id": "C001", "plan_id": 1})).unwrap_err().code_str(), "FORBIDDEN");
    assert_eq!(as_(&e, c2.clone(), "follow-up-record", json!({"plan_id": 1})).unwrap_err().code_str(), "FOLLOW_UP_NOT_FOUND");
    assert_eq!(as_(&e, c2, "chronic-update", json!({"chronic_id": 1, "status": "deceased"})).unwrap_err().code_str(), "CHRONIC_PATIENT_NOT_FOUND");
    assert_eq!(as_(&e, h.clone(), "follow-up-query", json!({})).unwrap()["total"], 0, "the hospital made none of these plans");
    assert_eq!(as_(&e, h, "chronic-query", json!({})).unwrap_err().code_str(), "FORBIDDEN");
    assert_eq!(as_(&e, reg.clone(), "chronic-query", json!({})).unwrap_err().code_str(), "FORBIDDEN");
    assert_eq!(as_(&e, reg.clone(), "follow-up-query", json!({})).unwrap_err().code_str(), "FORBIDDEN");
    let stats = as_(&e, reg, "follow-up-stats", json!({"from": "2024-10-01", "to": "2024-11-30"})).unwrap();
    assert_eq!(stats["registered"], 1);
    assert!(!stats.to_string().contains("110105"), "no personal data in the regulator's figures");
    // Another centre's plans and events reach C002 masked or not at all.
    let evs = as_(&e, json!({"role": "community", "institution_id": "C002"}), "next-events", json!({"after": 0})).unwrap();
    assert!(!evs.to_string().contains("110105194912310021"));
    assert!(e.call_value("chronic-view", r#"{"chronic_id": 1}"#).unwrap()["patient_id"] == "110105194912310021");
}

#[test]
fn an_unknown_icd10_code_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(json!({"data_dir": dir.path()}))).unwrap();
    let before = ok(&e, "next-events", json!({"limit": 10000}))["events"].as_array().unwrap().len();
    for codes in [json!(["I10", "Z99"]), json!("I16"), json!("J43"), json!(["E15.1"])] {
        let err = e
            .call_value("chronic-enrol", &json!({"institution_id": "C001", "patient_id": "PAT001", "doctor_id": "CDR01", "icd10": codes}).to_string())
            .unwrap_err();
        assert_eq!(err.code_str(), "UNKNOWN_ICD10", "{codes}");
        assert!(!err.message().contains("Z99") && !err.message().contains("PAT001"));
    }
    assert_eq!(ok(&e, "chronic-query", json!({}))["total"], 0);
    assert!(plans(&e, "C001").is_empty());
    assert_eq!(ok(&e, "next-events", json!({"limit": 10000}))["events"].as_array().unwrap().len(), before, "no event");
    e.close();
    // Nothing was written either: a reopened store has no registration.
    let e = Engine::open(&cfg(json!({"data_dir": dir.path()}))).unwrap();
    assert_eq!(ok(&e, "chronic-query", json!({}))["total"], 0);
    enrol(&e, "C001", "PAT001", json!("I10"), "2024-11-01");
    let err = e.call_value("chronic-update", r#"{"institution_id": "C001", "chronic_id": 1, "icd10": ["E11", "K21"], "doctor_id": "CDR09"}"#).unwrap_err();
    assert_eq!(err.code_str(), "UNKNOWN_ICD10");
    let reg = ok(&e, "chronic-view", json!({"chronic_id": 1}));
    assert_eq!((reg["doctor_id"].as_str(), reg["diagnoses"].as_array().unwrap().len()), (Some("CDR01"), 1), "nothing of the refused update kept");
    assert_eq!(ok(&e, "chronic-query", json!({}))["total"], 1);
    assert_eq!(events(&e, "chronic_updated").len(), 0, "the refused update raised nothing");
}

#[test]
fn a_reopened_engine_keeps_everything_and_neither_repeats_nor_skips_a_reminder() {
    let dir = tempfile::tempdir().unwrap();
    let conf = cfg(json!({"data_dir": dir.path(), "timer": {"enabled": false}}));
    {
        let e = Engine::open(&conf).unwrap();
        ok(&e, "education-item-set", json!({"code": "HE-HTN", "title": "高血压自我管理", "content": "低盐饮食", "icd10": ["I10"]}));
        enrol(&e, "C001", "PAT001", json!(["I10"]), "2024-10-30");
        enrol(&e, "C001", "PAT002", json!(["E11"]), "2024-11-05");
        book_exam(&e);
        ok(&e, "education-deliver", json!({"institution_id": "C001", "patient_id": "PAT001", "item_code": "HE-HTN", "plan_id": 1}));
        ok(&e, "advance-clock", json!({"seconds": 86400}));
        // 10-30 09:00: PAT001's periodic plan (10-30 00:00) and the exam's before plan (10-30 09:00).
        assert_eq!(ok(&e, "run-due", json!({}))["follow_ups_due"], 2);
        e.close();
    }
    // Reopened a few minutes later: nothing repeated.
    let later = |at: &str| cfg(json!({"data_dir": dir.path(), "timer": {"enabled": false}, "clock_start": at}));
    let e = Engine::open(&later("2024-10-30T09:05:00+08:00")).unwrap();
    assert_eq!(ok(&e, "run-due", json!({}))["follow_ups_due"], 0, "no repeat after the restart");
    assert_eq!(ok(&e, "chronic-query", json!({}))["total"], 2);
    let view = ok(&e, "chronic-view", json!({"chronic_id": 1}));
    assert_eq!(view["education_delivered"].as_array().unwrap().len(), 1);
    assert_eq!(view["plans"][0]["education"], json!([{"code": "HE-HTN"}]));
    assert_eq!(view["plans"][0]["status"], "due");
    assert_eq!(plans(&e, "C001").len(), 4);
    e.close();
    // What falls due while the engine is closed goes out at the first pass after it opens:
    // PAT002's periodic plan (11-05) and the exam's after plan (11-03).
    let e = Engine::open(&later("2024-11-06T10:00:00+08:00")).unwrap();
    assert_eq!(ok(&e, "run-due", json!({}))["follow_ups_due"], 2, "none skipped");
    assert_eq!(ok(&e, "run-due", json!({}))["follow_ups_due"], 0);
    let ids: Vec<u64> =
        ok(&e, "follow-up-query", json!({"status": "due"}))["items"].as_array().unwrap().iter().map(|p| p["plan_id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    // Ids continue after a reopen.
    let v = enrol(&e, "C001", "PAT003", json!(["J45"]), "2025-01-01");
    assert_eq!(v["chronic_id"], 3);
    assert_eq!(v["plans"][0]["plan_id"], 5);
}

/// A deterministic mix of registrations, plans and outcomes: the stats
/// equal a recount from the answers of the query commands.
#[test]
fn the_statistics_equal_a_recount() {
    let e = Engine::open(&cfg(json!({}))).unwrap();
    ok(&e, "education-item-set", json!({"code": "HE-1", "title": "糖尿病饮食", "content": "控制总热量", "icd10": ["E11"]}));
    let codes = ["I10", "E11.9", "J44", "I25.1", "N18"];
    for i in 0..20u64 {
        let inst = if i % 3 == 0 { "C002" } else { "C001" };
        let next = format!("2024-11-{:02}", 1 + (i % 20));
        enrol(&e, inst, &format!("PAT{i:03}"), json!([codes[(i % 5) as usize]]), &next);
    }
    // Move through November, recording some, missing some, cancelling one, ending two registrations.
    for day in 0..25u64 {
        ok(&e, "advance-clock", json!({"seconds": 86400}));
        ok(&e, "run-due", json!({}));
        if day == 10 {
            ok(&e, "chronic-update", json!({"institution_id": "C001", "chronic_id": 2, "status": "lost_to_follow_up"}));
            ok(&e, "chronic-update", json!({"institution_id": "C002", "chronic_id": 4, "status": "transferred"}));
        }
        for p in ok(&e, "follow-up-query", json!({"status": "due", "page_size": 200}))["items"].as_array().unwrap().clone() {
            let id = p["plan_id"].as_u64().unwrap();
            let inst = p["institution_id"].as_str().unwrap().to_string();
            match id % 4 {
                0 => {
                    ok(
                        &e,
                        "follow-up-record",
                        json!({"institution_id": inst, "plan_id": id, "satisfaction": 1 + id % 5, "measurements": {"systolic_bp": 130}}),
                    );
                }
                1 => {
                    ok(&e, "follow-up-record", json!({"institution_id": inst, "plan_id": id, "result": "missed"}));
                }
                2 if day > 12 => {
                    ok(&e, "follow-up-record", json!({"institution_id": inst, "plan_id": id}));
                    ok(&e, "education-deliver", json!({"institution_id": inst, "patient_id": p["patient_id"], "item_code": "HE-1"}));
                }
                _ => {}
            }
        }
    }
    let all_plans = ok(&e, "follow-up-query", json!({"page_size": 200}))["items"].as_array().unwrap().clone();
    let regs = ok(&e, "chronic-query", json!({"page_size": 200}))["items"].as_array().unwrap().clone();
    for (inst, from, to) in [(None, "2024-11-01", "2024-11-15"), (Some("C001"), "2024-11-01", "2024-12-01"), (Some("C002"), "2024-10-01", "2025-03-01")] {
        let mut req = json!({"from": from, "to": to});
        if let Some(i) = inst {
            req["institution_id"] = i.into();
        }
        let s = ok(&e, "follow-up-stats", req);
        let (f, t) = (format!("{from}T00:00:00+08:00"), format!("{to}T00:00:00+08:00"));
        let mine = |v: &Value| inst.is_none_or(|i| v["institution_id"] == i);
        let due: Vec<&Value> = all_plans
            .iter()
            .filter(|p| mine(p) && p["status"] != "cancelled" && p["due_at"].as_str().unwrap() >= f.as_str() && p["due_at"].as_str().unwrap() < t.as_str())
            .collect();
        let completed = due.iter().filter(|p| p["status"] == "completed").count();
        let on_time = due.iter().filter(|p| p["status"] == "completed" && p["outcome"]["on_time"] == true).count();
        let missed = due.iter().filter(|p| p["status"] == "missed").count();
        let sats: Vec<u64> = all_plans
            .iter()
            .filter(|p| mine(p))
            .filter_map(|p| p["outcome"].as_object())
            .filter(|o| o["at"].as_str().unwrap() >= f.as_str() && o["at"].as_str().unwrap() < t.as_str())
            .filter_map(|o| o["satisfaction"].as_u64())
            .collect();
        assert_eq!(s["due"], due.len(), "{inst:?} {s}");
        assert_eq!(s["completed"], completed);
        assert_eq!(s["completed_on_time"], on_time);
        assert_eq!(s["missed"], missed);
        assert_eq!(s["satisfaction_count"], sats.len());
        if !sats.is_empty() {
            let mean = sats.iter().sum::<u64>() as f64 / sats.len() as f64;
            assert!((s["satisfaction_mean"].as_f64().unwrap() - mean).abs() < 0.01);
        }
        if !due.is_empty() {
            assert!((s["completion_rate"].as_f64().unwrap() - completed as f64 / due.len() as f64).abs() < 1e-4);
        }
        // Registrations: enrolled before `to`, not ended before `from`; in management at `to`.
        let state_at = |r: &Value, at: &str| {
            r["history"].as_array().unwrap().iter().take_while(|h| h["at"].as_str().unwrap() < at).last().map(|h| h["to"].as_str().unwrap().to_string())
        };
        let counted: Vec<&Value> = regs
            .iter()
            .filter(|r| mine(r) && r["enrolled_at"].as_str().unwrap() < t.as_str())
            .filter(|r| !matches!(state_at(r, &f).as_deref(), Some("transferred" | "deceased")))
            .collect();
        let managed = counted.iter().filter(|r| state_at(r, &t).as_deref() == Some("in_management")).count();
        assert_eq!(s["registered"], counted.len());
        assert_eq!(s["in_management"], managed);
        let delivered: usize = regs
            .iter()
            .filter(|r| mine(r))
            .map(|r| {
                let v = ok(&e, "chronic-view", json!({"chronic_id": r["chronic_id"]}));
                v["education_delivered"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["at"].as_str().unwrap() >= f.as_str() && d["at"].as_str().unwrap() < t.as_str())
                    .count()
            })
            .sum();
        assert_eq!(s["education_delivered"], delivered);
    }
}
