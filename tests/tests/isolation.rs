//! The isolation sweep (S1): one institution never acts for another.
//!
//! Every change step of the shared vectors is first sent again under another
//! institution's principal (`Engine::call_as`). It must be refused with a
//! permission error (`FORBIDDEN` when the body names the acting party, the
//! domain's own permission code when the object belongs to someone else),
//! and change nothing: the outbox, the audit trail (the engine is durable)
//! and the answer of every query the case has asked so far stay as they
//! were. Then the step runs as the vector says, so the case goes on.

use serde_json::{json, Value};
use yilian_core::{Engine, ErrorFamily, Principal, Role};

use yilian_tests::isolation::{observe, Rules};

/// The principals to try a step as: another institution of every role
/// that acts on cases (whichever role the request's acting party has, one
/// of them is its kind). `None` when the step is not swept (see `Rules::swept`).
fn intruders(rules: &Rules, command: &str, req: &Value) -> Option<Vec<Principal>> {
    rules
        .swept(command, req)
        .then(|| [Role::Community, Role::Hospital, Role::Lab].into_iter().map(|r| Principal::new(r, Some("ZZ-INTRUDER"), None).unwrap()).collect())
}

#[test]
fn no_change_of_the_vectors_can_be_made_by_another_institution() {
    let (mut tried, mut refused_by_field, mut skipped) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for (file, v) in yilian_tests::vector_files() {
        for case in v["cases"].as_array().unwrap() {
            let mut config = case.get("config").or(v.get("config")).cloned().unwrap_or_else(|| json!({}));
            let dir = tempfile::tempdir().unwrap();
            config["data_dir"] = dir.path().join("store").to_string_lossy().into_owned().into();
            config["durable_sync"] = "normal".into();
            let Ok(e) = Engine::open(&config.to_string()) else { continue };
            let rules = Rules::of(&e);
            let mut queries: Vec<(String, String)> = Vec::new();
            for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
                let command = step["command"].as_str().unwrap();
                let Some(req) = step.get("request").cloned() else {
                    e.call(command, step["request_text"].as_str().unwrap_or("{}"));
                    continue;
                };
                let text = req.to_string();
                let known = rules.acting.contains_key(command);
                if known && !Engine::is_query(command) && step.get("expect_error").is_none() && req.is_object() && step.get("principal").is_none() {
                    match intruders(&rules, command, &req) {
                        None => skipped += 1,
                        Some(_) => tried += 1,
                    }
                    for p in intruders(&rules, command, &req).unwrap_or_default() {
                        let before = observe(&e, &queries);
                        {
                            match e.call_value_as(&p, command, &text) {
                                Ok(out) => failures.push(format!("{file} / {} step {i} {command}: accepted for {p:?}: {out}", case["name"])),
                                Err(err) if err.family() != ErrorFamily::Permission => {
                                    failures.push(format!("{file} / {} step {i} {command}: {:?} instead of a permission error", case["name"], err.code()))
                                }
                                Err(err) => {
                                    if err.code() == yilian_core::ErrorCode::Forbidden {
                                        refused_by_field += 1;
                                    }
                                    if observe(&e, &queries) != before {
                                        failures.push(format!("{file} / {} step {i} {command}: the refused call changed what callers see", case["name"]));
                                    }
                                }
                            }
                        }
                    }
                }
                let out = match step.get("principal") {
                    Some(p) => e.call_as_json(&p.to_string(), command, &text),
                    None => e.call(command, &text),
                };
                if known && Engine::is_query(command) && out.contains("\"status\":\"success\"") && command != "engine-info" && command != "engine-metrics" {
                    queries.push((command.to_string(), text));
                }
            }
            e.close();
        }
    }
    println!("isolation sweep: {tried} change steps tried as another institution ({refused_by_field} refused as FORBIDDEN by their acting fields), {skipped} that name no party and touch nothing existing");
    assert!(failures.is_empty(), "{} leaks:\n{}", failures.len(), failures.join("\n"));
    assert!(tried > 100, "only {tried} steps swept");
}

#[test]
fn a_community_principal_cannot_cancel_another_centres_booking_whatever_the_body_says() {
    // The report: a booking owned by centre A was cancelled by
    // `cancel-slot {"institution_id": "<B>", …}` on a platform engine.
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    e.call_value(
        "sync-schedule",
        r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV001","date":"2024-10-30","available_slots":[{"start_time":"09:00","end_time":"10:00"}]}]}"#,
    )
    .unwrap();
    let a = Principal::new(Role::Community, Some("C001"), Some("王护士")).unwrap();
    let b = Principal::new(Role::Community, Some("C002"), None).unwrap();
    let booked = e
        .call_value_as(&a, "pre-book-slot", r#"{"patient_id":"PAT001","project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00","device_id":"DEV001"}"#)
        .unwrap();
    let id = booked["booking_id"].as_str().unwrap();
    assert_eq!(booked["clinic_id"], "C001", "{booked}");
    for body in [json!({"booking_id": id}), json!({"booking_id": id, "institution_id": "C002"}), json!({"booking_id": id, "clinic_id": "C001"})] {
        let err = e.call_value_as(&b, "cancel-slot", &body.to_string()).unwrap_err();
        assert_eq!(err.family(), ErrorFamily::Permission, "{body}");
        assert!(e.call_value_as(&b, "booking-info", &json!({"booking_id": id}).to_string()).is_err());
    }
    // On the platform engine, the platform acting for B is B.
    let err = e.call_value("cancel-slot", &json!({"booking_id": id, "institution_id": "C002"}).to_string()).unwrap_err();
    assert_eq!(err.family(), ErrorFamily::Permission);
    let err = e.call_value("cancel-slot", &json!({"booking_id": id, "institution_id": "C002", "clinic_id": "C001"}).to_string()).unwrap_err();
    assert_eq!(err.code(), yilian_core::ErrorCode::Forbidden);
    assert_eq!(e.call_value("booking-info", &json!({"booking_id": id}).to_string()).unwrap()["status"], "pre-booked");
    // A hospital acts on bookings on its own slots; a regulator on none.
    let h2 = Principal::new(Role::Hospital, Some("H002"), None).unwrap();
    assert!(e.call_value_as(&h2, "cancel-slot", &json!({"booking_id": id}).to_string()).is_err());
    let reg = Principal::new(Role::Regulator, None, None).unwrap();
    assert_eq!(e.call_value_as(&reg, "booking-info", &json!({"booking_id": id}).to_string()).unwrap_err().code(), yilian_core::ErrorCode::Forbidden);
    assert!(e.call_value_as(&reg, "slot-statistics", "{}").is_ok());
    let h1 = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    assert_eq!(e.call_value_as(&h1, "cancel-slot", &json!({"booking_id": id}).to_string()).unwrap()["status"], "cancelled");
}
