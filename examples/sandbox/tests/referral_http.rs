//! The referral chapter's journeys over real HTTP on loopback: outpatient
//! referral with result return (`POST /api/acceptance-info`), inpatient
//! referral to admission (`GET /api/admission-details`), down-referral, exam
//! booking to report, consultation approved and rejected.

mod common;
use common::*;
use serde_json::{json, Value};

const MANUAL: &str = r#"{"clock_start":"2024-10-29T09:00:00+08:00","clock":"manual"}"#;
const RG_AM: &str = "RG-H001-DR001-20241030-08001130";

/// The catalogue and schedule the referral vectors start from.
async fn setup(s: &Server) {
    let file: Value = serde_json::from_str(include_str!("../../../tests/vectors/30_referral_outpatient.json")).unwrap();
    for st in file["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        s.ok(st["command"].as_str().unwrap(), &st["request"].to_string()).await;
    }
}

async fn post_path(s: &Server, path: &str, body: Value) -> (u16, Value) {
    let r = s.client.post(s.url(path)).header("Content-Type", "application/json").body(body.to_string()).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get_path(s: &Server, path: &str, q: &[(&str, &str)]) -> (u16, Value) {
    let r = s.client.get(s.url(path)).query(q).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn events(s: &Server) -> Vec<Value> {
    let v = s.ok("next-events", r#"{"limit": 1000}"#).await;
    s.ok("next-events", &json!({"ack": v["last_seq"], "limit": 1}).to_string()).await;
    v["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outpatient_referral_with_result_return_over_http() {
    let s = Server::start(MANUAL, true).await;
    setup(&s).await;
    // Drill-down as GET queries.
    let (st, v) = s.get("referral-sources", &[]).await;
    assert_eq!((st, v["data"]["items"][0]["hospital_id"].as_str()), (200, Some("H001")));
    let (_, v) = s.get("referral-sources", &[("hospital_id", "H001"), ("doctor_id", "DR001"), ("date", "2024-10-30")]).await;
    assert_eq!(v["data"]["level"], "period");
    assert_eq!(v["data"]["items"][0]["slot_id"], RG_AM);
    // Apply: a change, so GET is refused.
    let (st, _) = s.get("outpatient-referral-apply", &[("patient_id", "PAT001")]).await;
    assert_eq!(st, 405);
    let applied = s
        .ok(
            "outpatient-referral-apply",
            &json!({"institution_id": "C001", "patient_id": "PAT001", "slot_id": RG_AM, "reason": "胸痛待查",
                "patient": {"name": "张三", "id_number": "11010519491231002X"}, "emr": {"diagnoses": [{"code": "I25", "name": "慢性缺血性心脏病"}]}})
            .to_string(),
        )
        .await;
    assert_eq!((applied["referral_id"].as_u64(), applied["status"].as_str()), (Some(1), Some("applied")));
    // The source's acceptance interface, verbatim shape.
    let (st, v) = post_path(
        &s,
        "/api/acceptance-info",
        json!({"referral_id": 1, "hospital_name": "昆山市中西医结合医院", "accept_doctor_id": "DR001", "accept_time": "2024-10-30T08:15:00+08:00"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"status": "success", "message": "接诊信息已成功记录"}), "the source's own answer");
    s.ok("treatment-results", &json!({"referral_id": 1, "diagnosis": "稳定型心绞痛", "prescription": "硝酸甘油", "advice": "社区随访"}).to_string()).await;
    let (_, v) = s.get("referral-view", &[("referral_id", "1"), ("institution_id", "C001")]).await;
    assert_eq!((v["data"]["status"].as_str(), v["data"]["outcome"]["advice"].as_str()), (Some("completed"), Some("社区随访")));
    let got = s.get("referral-view", &[("referral_id", "1"), ("institution_id", "C002")]).await;
    assert_error(&got, 403, "REFERRAL_FORBIDDEN");
    let (st, v) = s.get("referral-slip", &[("referral_id", "1"), ("format", "svg")]).await;
    assert_eq!(st, 200);
    assert!(v["data"]["content"].as_str().unwrap().contains("<svg"));
    let kinds: Vec<String> = events(&s).await.iter().map(|e| e["type"].as_str().unwrap_or("").to_string()).collect();
    for k in ["referral_applied", "referral_accepted", "referral_outcome"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    // Durable: the referral survives a restart of the server's engine.
    let dir = s.stop().await;
    let e =
        yilian_core::Engine::open(&json!({"data_dir": dir.path().join("store"), "clock": "manual", "clock_start": "2024-10-29T09:00:00+08:00"}).to_string())
            .unwrap();
    assert_eq!(e.call_value("referral-view", r#"{"referral_id": 1}"#).unwrap()["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inpatient_referral_to_admission_over_http() {
    let s = Server::start(MANUAL, false).await;
    setup(&s).await;
    s.ok("referral-disease-add", r#"{"code": "I25", "name": "慢性缺血性心脏病"}"#).await;
    let v = s
        .ok(
            "inpatient-referral-apply",
            &json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT001", "department_id": "D001", "expected_date": "2024-10-31",
                "reason": "冠心病再住院", "disease_code": "I25", "readmission": true, "emr": {"diagnoses": [{"name": "慢性缺血性心脏病"}]}})
            .to_string(),
        )
        .await;
    assert_eq!(v["decision"]["decision"], "direct");
    let (st, v) = s.post("inpatient-bed-reserve", r#"{"institution_id": "H001", "referral_id": 1}"#).await;
    assert_error(&(st, v), 422, "DEPOSIT_NOT_PAID");
    s.ok("inpatient-deposit", r#"{"referral_id": 1, "payment_status": "paid", "amount": 3000}"#).await;
    let v = s.ok("inpatient-bed-reserve", r#"{"institution_id": "H001", "referral_id": 1, "bed_type": "监护"}"#).await;
    assert_eq!(v["status"], "bed_reserved");
    // The source's GET /api/admission-details, by admission id (an int).
    let (st, v) = get_path(&s, "/api/admission-details", &[("admission_id", "1"), ("patient_id", "PAT001")]).await;
    assert_eq!(st, 200, "{v}");
    let d = &v; // the source's bare object
    assert_eq!((d["admission_id"].as_u64(), d["patient_id"].as_str(), d["hospital_id"].as_str()), (Some(1), Some("PAT001"), Some("H001")));
    assert_eq!(
        (d["admission_status"].as_str(), d["primary_diagnosis"].as_str(), d["attending_doctor_id"].as_str()),
        (Some("reserved"), Some("慢性缺血性心脏病"), Some("DR002"))
    );
    assert!(d["discharge_date"].is_null());
    s.ok("inpatient-admit", r#"{"institution_id": "H001", "admission_id": 1, "admission_date": "2024-10-31T10:00:00+08:00"}"#).await;
    let (_, v) = get_path(&s, "/api/admission-details", &[("admission_id", "1")]).await;
    assert_eq!((v["admission_status"].as_str(), v["admission_date"].as_str()), (Some("ongoing"), Some("2024-10-31T02:00:00Z")));
    let (_, v) = s.get("slot-info", &[("slot_id", "BD-H001-D001-02")]).await;
    assert_eq!(v["data"]["booked"], 1);
    let (st, v) = get_path(&s, "/api/admission-details", &[("admission_id", "1"), ("patient_id", "PAT009")]).await;
    assert_error(&(st, v), 403, "REFERRAL_FORBIDDEN");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_referral_exam_to_report_and_consultations_over_http() {
    let s = Server::start(MANUAL, false).await;
    setup(&s).await;
    // Down-referral: the community side sees what it received.
    s.ok("referral-network-sync", r#"{"communities": [{"clinic_id": "C001", "name": "花桥镇社区卫生服务中心"}]}"#).await;
    s.ok("down-referral-apply", r#"{"institution_id": "H001", "patient_id": "PAT003", "clinic_id": "C001", "date": "2024-11-05", "reason": "术后康复"}"#).await;
    let (_, v) = s.get("down-referral-list", &[("institution_id", "C001")]).await;
    assert_eq!(v["data"]["total"], 1);
    assert_eq!(s.ok("down-referral-receive", r#"{"institution_id": "C001", "referral_id": 1}"#).await["status"], "received");

    // Exam booking to report, with a critical result pushed at once.
    let (_, v) = s.get("exam-project-search", &[("keyword", "drsp")]).await;
    assert_eq!(v["data"]["items"][0]["project_id"], "P004");
    s.ok(
        "exam-apply",
        r#"{"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT004", "ordering_doctor_id": "CDR01", "items": [{"project_id": "P004", "method": "正位", "body_part": "胸部"}]}"#,
    )
    .await;
    let v = s
        .ok(
            "exam-arrange",
            r#"{"institution_id": "H001", "exam_id": 1, "item_no": 1, "device_id": "DEV004", "date": "2024-10-30", "time_slot": "09:00-10:00"}"#,
        )
        .await;
    assert_eq!(v["items"][0]["status"], "arranged");
    s.ok("exam-payment", r#"{"exam_id": 1, "payment_status": "paid"}"#).await;
    events(&s).await;
    let v = s.ok("exam-report", r#"{"institution_id": "H001", "exam_id": 1, "item_no": 1, "conclusion": "右侧气胸", "critical": true}"#).await;
    assert_eq!(v["items"][0]["status"], "reported");
    let evs = events(&s).await;
    let audiences: Vec<&str> = evs.iter().filter(|e| e["type"] == "exam_critical_result").map(|e| e["data"]["audience"].as_str().unwrap()).collect();
    assert_eq!(audiences, ["doctor", "patient"]);

    // Consultation approved, and another rejected with its reason.
    let apply = r#"{"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT005", "project": "心内科会诊", "purpose": "调整用药"}"#;
    s.ok("consultation-apply", apply).await;
    s.ok("consultation-apply", apply).await;
    let v = s
        .ok("consultation-review", r#"{"institution_id": "H001", "consultation_id": 1, "decision": "approve", "scheduled_time": "2024-10-30T14:00:00+08:00", "experts": [{"expert_id": "DR001"}]}"#)
        .await;
    assert_eq!((v["status"].as_str(), v["experts"][0]["expert_id"].as_str()), (Some("approved"), Some("DR001")));
    let v = s.ok("consultation-review", r#"{"institution_id": "H001", "consultation_id": 2, "decision": "reject", "reason": "资料不全"}"#).await;
    assert_eq!((v["status"].as_str(), v["review"]["reason"].as_str()), (Some("rejected"), Some("资料不全")));
    let (st, v) = s.post("consultation-review", r#"{"institution_id": "H001", "consultation_id": 2, "decision": "approve"}"#).await;
    assert_error(&(st, v), 400, "MISSING_FIELD");
    s.stop().await;
}
