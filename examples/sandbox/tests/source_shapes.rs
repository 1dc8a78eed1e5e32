//! The referral chapter's three interfaces at the source's own paths answer
//! in the source's own shapes, compared whole against the source's example
//! answers (same keys, same nesting, same types, timestamps in the source's
//! format); the engine's envelope stays at `/api/v1/<command>`.

mod common;
use common::*;
use serde_json::{json, Value};

const MANUAL: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual"}"#;
const RG_AM: &str = "RG-H001-DR001-20241030-08001130";

// The source's example answers, verbatim (接口服务 of the referral chapter).
// admission-details' example ends after attending_doctor_id; its closing quote
// and brace are restored.
const SOURCE_ACCEPTANCE: &str = r#"{
    "status": "success",
    "message": "接诊信息已成功记录"
}"#;
const SOURCE_APPOINTMENT_SLOTS: &str = r#"[
    {
        "slot_id": "12345",
        "doctor_id": "67890",
        "hospital_id": "abcde",
        "date": "2024-11-01",
        "time": "09:00",
        "status": "available"
    },
    {
        "slot_id": "12346",
        "doctor_id": "67890",
        "hospital_id": "abcde",
        "date": "2024-11-01",
        "time": "10:00",
        "status": "available"
    }
]"#;
const SOURCE_ADMISSION: &str = r#"{
    "admission_id": 123,
    "patient_id": "P0001",
    "hospital_id": "H1234",
    "admission_date": "2024-10-28T10:00:00Z",
    "discharge_date": null,
    "admission_status": "ongoing",
    "primary_diagnosis": "XXXX",
    "attending_doctor_id": "D9876"
}"#;

fn source(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The kind of a string, as precise as the source's examples distinguish.
fn string_kind(s: &str) -> &'static str {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    if b.len() == 10 && date {
        "date YYYY-MM-DD"
    } else if b.len() == 20 && date && b[10] == b'T' && digits(11..13) && b[13] == b':' && digits(14..16) && b[16] == b':' && digits(17..19) && b[19] == b'Z' {
        "date-time YYYY-MM-DDTHH:MM:SSZ"
    } else if b.len() == 5 && digits(0..2) && b[2] == b':' && digits(3..5) {
        "time HH:MM"
    } else {
        "string"
    }
}

/// The structure of a JSON value: every key, the nesting, the type of every
/// leaf (integers apart from other numbers, timestamps by their format).
/// Every element of an array must have one structure, which is the array's.
fn structure(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!("integer"),
        Value::Number(_) => json!("number"),
        Value::String(s) => json!(string_kind(s)),
        Value::Array(items) => {
            let shapes: Vec<Value> = items.iter().map(structure).collect();
            assert!(shapes.windows(2).all(|w| w[0] == w[1]), "the elements of an array differ in structure: {v}");
            json!([shapes.first().cloned().unwrap_or(Value::Null)])
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), structure(v))).collect()),
    }
}

async fn post_raw(s: &Server, path: &str, body: Value) -> (u16, Value) {
    let r = s.client.post(s.url(path)).header("Content-Type", "application/json").body(body.to_string()).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get_raw(s: &Server, path: &str, q: &[(&str, &str)]) -> (u16, Value) {
    let r = s.client.get(s.url(path)).query(q).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The catalogue and schedule the referral vectors start from.
async fn setup(s: &Server) {
    let file: Value = serde_json::from_str(include_str!("../../../tests/vectors/30_referral_outpatient.json")).unwrap();
    for st in file["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        s.ok(st["command"].as_str().unwrap(), &st["request"].to_string()).await;
    }
}

/// An inpatient referral with its bed reserved: admission 1 of PAT001 at H001.
async fn reserved_admission(s: &Server) {
    setup(s).await;
    s.ok("referral-disease-add", r#"{"code": "I25", "name": "慢性缺血性心脏病"}"#).await;
    s.ok(
        "inpatient-referral-apply",
        &json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "department_id": "D001", "expected_date": "2024-10-31",
            "reason": "冠心病再住院", "disease_code": "I25", "readmission": true, "emr": {"diagnoses": [{"name": "慢性缺血性心脏病"}]}})
        .to_string(),
    )
    .await;
    s.ok("inpatient-deposit", r#"{"referral_id": 1, "payment_status": "paid", "amount": 3000}"#).await;
    s.ok("inpatient-bed-reserve", r#"{"institution_id": "H001", "referral_id": 1}"#).await;
}

#[test]
fn the_structure_helper_tells_the_source_shapes_apart() {
    // A guard on the comparison itself: an envelope, an extra key, a
    // timestamp with an offset or a number id are all different structures.
    let adm = source(SOURCE_ADMISSION);
    assert_ne!(structure(&json!({"status": "success", "data": adm})), structure(&adm));
    let mut extra = adm.clone();
    extra["referral_id"] = json!(1);
    assert_ne!(structure(&extra), structure(&adm));
    let mut offset = adm.clone();
    offset["admission_date"] = json!("2024-10-28T18:00:00+08:00");
    assert_ne!(structure(&offset), structure(&adm));
    let mut string_id = adm.clone();
    string_id["admission_id"] = json!("123");
    assert_ne!(structure(&string_id), structure(&adm));
    assert_eq!(
        structure(&source(SOURCE_APPOINTMENT_SLOTS)),
        json!([{"slot_id": "string", "doctor_id": "string", "hospital_id": "string",
        "date": "date YYYY-MM-DD", "time": "time HH:MM", "status": "string"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptance_info_answers_with_a_top_level_message_as_in_the_source() {
    let s = Server::start(MANUAL, false).await;
    setup(&s).await;
    s.ok("outpatient-referral-apply", &json!({"institution_id": "C001", "patient_id": "PAT001", "slot_id": RG_AM, "reason": "胸痛待查"}).to_string()).await;
    let (st, v) = post_raw(
        &s,
        "/api/acceptance-info",
        json!({"referral_id": 1, "hospital_name": "昆山市中西医结合医院", "accept_doctor_id": "DR001", "accept_time": "2024-10-30T08:15:00+08:00"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(structure(&v), structure(&source(SOURCE_ACCEPTANCE)), "{v}");
    assert_eq!(v, source(SOURCE_ACCEPTANCE), "the whole answer is the source's");
    // The referral was accepted: the engine's own view says so.
    let (_, view) = s.get("referral-view", &[("referral_id", "1")]).await;
    assert_eq!(view["data"]["status"], "accepted", "{view}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointment_slots_answers_with_a_bare_array_as_in_the_source() {
    let s = Server::start(MANUAL, false).await;
    s.ok(
        "sync-schedule",
        r#"{"hospital_id": "H001", "schedule_data": [{"doctor_id": "DR001", "department_id": "D001", "date": "2024-11-01",
            "available_slots": [{"start_time": "09:00", "end_time": "09:30"}, {"start_time": "10:00", "end_time": "10:30"}]}]}"#,
    )
    .await;
    let (st, v) = get_raw(&s, "/api/appointment-slots", &[("hospital_id", "H001"), ("doctor_id", "DR001"), ("date", "2024-11-01")]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(structure(&v), structure(&source(SOURCE_APPOINTMENT_SLOTS)), "{v}");
    assert_eq!(
        v,
        json!([
            {"slot_id": "RG-H001-DR001-20241101-09000930", "doctor_id": "DR001", "hospital_id": "H001", "date": "2024-11-01", "time": "09:00", "status": "available"},
            {"slot_id": "RG-H001-DR001-20241101-10001030", "doctor_id": "DR001", "hospital_id": "H001", "date": "2024-11-01", "time": "10:00", "status": "available"}
        ])
    );
    // No slot that day: an empty bare array, not an envelope.
    let (st, v) = get_raw(&s, "/api/appointment-slots", &[("hospital_id", "H001"), ("doctor_id", "DR001"), ("date", "2024-11-02")]).await;
    assert_eq!((st, v), (200, json!([])));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_details_answers_with_a_bare_object_and_utc_timestamps_as_in_the_source() {
    let s = Server::start(MANUAL, false).await;
    reserved_admission(&s).await;
    let q = [("admission_id", "1"), ("patient_id", "PAT001")];
    // Reserved: the admission date is the expected day, from midnight in
    // the engine's zone (Asia/Shanghai), in the source's UTC form.
    let (st, v) = get_raw(&s, "/api/admission-details", &q).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(structure(&v), structure(&source(SOURCE_ADMISSION)), "{v}");
    assert_eq!(v["admission_date"], "2024-10-30T16:00:00Z", "{v}");
    assert_eq!(v["admission_status"], "reserved", "{v}");

    s.ok("inpatient-admit", r#"{"institution_id": "H001", "admission_id": 1, "admission_date": "2024-10-31T10:00:00+08:00", "attending_doctor_id": "DR002"}"#)
        .await;
    let (st, v) = get_raw(&s, "/api/admission-details", &q).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(structure(&v), structure(&source(SOURCE_ADMISSION)), "{v}");
    assert_eq!(
        v,
        json!({"admission_id": 1, "patient_id": "PAT001", "hospital_id": "H001", "admission_date": "2024-10-31T02:00:00Z", "discharge_date": null,
            "admission_status": "ongoing", "primary_diagnosis": "慢性缺血性心脏病", "attending_doctor_id": "DR002"})
    );

    // A discharge date without an offset is in the engine's zone.
    s.ok("inpatient-discharge", r#"{"institution_id": "H001", "admission_id": 1, "discharge_date": "2024-11-04 09:30:00"}"#).await;
    let (_, v) = get_raw(&s, "/api/admission-details", &q).await;
    let mut expected = source(SOURCE_ADMISSION);
    expected["discharge_date"] = json!("2024-10-28T10:00:00Z"); // discharged: a date-time like admission_date
    assert_eq!(structure(&v), structure(&expected), "{v}");
    assert_eq!((v["discharge_date"].as_str(), v["admission_status"].as_str()), (Some("2024-11-04T01:30:00Z"), Some("discharged")), "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_envelope_stays_under_api_v1_for_the_same_commands() {
    let s = Server::start(MANUAL, false).await;
    reserved_admission(&s).await;
    let (st, v) = s.get("admission-details", &[("admission_id", "1")]).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("success")), "{v}");
    assert_eq!((v["data"]["referral_id"].as_u64(), v["data"]["admission_date"].as_str()), (Some(1), Some("2024-10-31")), "{v}");
    let (st, v) = s.get("appointment-slots", &[("hospital_id", "H001"), ("doctor_id", "DR001"), ("date", "2024-10-30")]).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("success")), "{v}");
    assert!(v["data"][0]["remaining"].is_u64(), "{v}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_at_the_source_paths_are_the_engine_error_envelope() {
    let s = Server::start(MANUAL, false).await;
    let got = get_raw(&s, "/api/admission-details", &[("admission_id", "7")]).await;
    assert_error(&got, 404, "ADMISSION_NOT_FOUND");
    let got = get_raw(&s, "/api/appointment-slots", &[("date", "2024-11-01")]).await;
    assert_error(&got, 400, "MISSING_FIELD");
    let got = post_raw(&s, "/api/acceptance-info", json!({"referral_id": 9, "hospital_name": "院", "accept_doctor_id": "D1"})).await;
    assert_error(&got, 404, "REFERRAL_NOT_FOUND");
    s.stop().await;
}
