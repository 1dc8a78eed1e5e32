//! The source's flow over real HTTP on loopback, with its example requests
//! verbatim: the hospital syncs its schedule, a community centre queries and
//! pre-books, pays, cancels and books; the hospital uploads a report and
//! stops service.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_flow_verbatim_over_http() {
    let s = Server::start(CLOCK, true).await;

    // 排班同步 (hospital → platform) and the catalogue.
    s.ok("sync-catalog", &catalog()).await;
    let synced = s.ok("sync-schedule", SYNC_SCHEDULE).await;
    assert_eq!(synced["hospital_id"], "H001");
    assert_eq!(synced["created"], 2);
    assert_eq!(synced["schedule_data"], serde_json::from_str::<Value>(SYNC_SCHEDULE).unwrap()["schedule_data"]);

    // Queries as GET with query strings, as in the source.
    let (st, v) = s.get("project-info", &[("project_id", "P001")]).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"][0]["project_name"], "CT扫描");
    let (_, v) = s.get("device-info", &[("device_id", "DEV002")]).await;
    assert_eq!(v["data"][0]["status"], "maintenance");
    let (_, v) = s.get("device-schedule", &[("device_id", "DEV001"), ("date", "2024-10-30")]).await;
    // The source's fields, plus the pool's counts.
    let windows: Vec<Value> =
        v["data"][0]["available_slots"].as_array().unwrap().iter().map(|w| json!({"start_time": w["start_time"], "end_time": w["end_time"]})).collect();
    assert_eq!(windows, vec![json!({"start_time": "09:00", "end_time": "10:00"}), json!({"start_time": "14:00", "end_time": "15:00"})]);
    let (_, v) = s.get("real-time-schedule", &[("hospital_id", "H001"), ("date", "2024-10-30")]).await;
    assert_eq!(v["data"][0]["device_id"], "DEV001");
    let (st, v) = s.get("real-time-slots", REAL_TIME_SLOTS).await;
    assert_eq!(st, 200);
    assert_eq!(
        (v["data"]["project_id"].as_str(), v["data"]["time_slot"].as_str(), v["data"]["available_slots"].as_u64()),
        (Some("P001"), Some("09:00-10:00"), Some(1))
    );

    // 号源预占 from the community centre, then 缴费成功.
    let held = s.ok("pre-book-slot", PRE_BOOK).await;
    assert_eq!((held["booking_id"].as_str(), held["status"].as_str(), held["clinic_id"].as_str()), (Some("B000001"), Some("pre-booked"), Some("C001")));
    let (_, v) = s.get("real-time-slots", REAL_TIME_SLOTS).await;
    assert_eq!(v["data"]["available_slots"], 0);
    let paid = s.ok("payment-status", PAY).await;
    assert_eq!((paid["payment_status"].as_str(), paid["status"].as_str()), (Some("paid"), Some("booked")));

    // 报告回传 for that booking (the source's "B001").
    let pdf = b"%PDF-1.4\n% report of B001\n\x00\x01\x02\xff binary tail".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("booking_id", "B001")
        .part("file", reqwest::multipart::Part::bytes(pdf.clone()).file_name("CT报告 2024/10.pdf").mime_str("application/pdf").unwrap());
    let r = s.client.post(s.url("/api/v1/upload-report")).multipart(form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["booking_id"], "B000001");
    let url = v["data"]["report_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/api/v1/reports/", s.base)), "served by its document id, never by booking and file name: {url}");
    let got = s.client.get(&url).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf, "served bytes equal the uploaded ones");
    // A revision keeps the first one (修改重传) and serves images as images.
    let png = b"\x89PNG\r\n\x1a\n fake image".to_vec();
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(png.clone()).file_name("scan.png")).text("booking_id", "B000001");
    let v: Value = s.client.post(s.url("/api/v1/upload-report")).multipart(form).send().await.unwrap().json().await.unwrap();
    let url2 = v["data"]["report_url"].as_str().unwrap().to_string();
    assert!(url2.starts_with(&format!("{}/api/v1/reports/", s.base)) && url2 != url, "a revision is a document of its own: {url2}");
    let got = s.client.get(&url2).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().to_vec(), png);
    assert_eq!(s.client.get(&url).send().await.unwrap().bytes().await.unwrap().to_vec(), pdf, "the first version is kept");

    // 预约平台取消通知, then a repeated 号源取消 of the same booking is a state error.
    let n = s.ok("notify-cancel-booking", CANCEL).await;
    assert_eq!((n["booking_id"].as_str(), n["status"].as_str()), (Some("B000001"), Some("cancelled")));
    assert_error(&s.post("cancel-slot", CANCEL).await, 422, "ALREADY_CANCELLED");
    let refund = s.ok("payment-status", r#"{"booking_id": "B001", "payment_status": "refunded"}"#).await;
    assert_eq!(refund["payment_status"], "refunded");
    let (_, v) = s.get("real-time-slots", REAL_TIME_SLOTS).await;
    assert_eq!(v["data"]["available_slots"], 1, "the cancelled place is back in the pool");

    // 号源预约 books at once; 预约申请 for the same full place is refused.
    let booked = s.ok("book-slot", BOOK_SLOT).await;
    assert_eq!((booked["booking_id"].as_str(), booked["status"].as_str(), booked["device_id"].as_str()), (Some("B000002"), Some("booked"), Some("DEV001")));
    assert_error(&s.post("submit-booking-request", SUBMIT_BOOKING).await, 409, "SLOT_FULL");

    // 停诊: the day's slots close and the booking is cancelled.
    let stop = s.ok("stop-service", STOP_SERVICE).await;
    assert_eq!((stop["device_id"].as_str(), stop["stop_date"].as_str(), stop["closed_slots"].as_u64()), (Some("DEV001"), Some("2024-10-30"), Some(2)));
    assert_eq!(stop["cancelled"], json!(["B000002"]));
    assert_error(&s.post("pre-book-slot", PRE_BOOK).await, 409, "SLOT_CLOSED");
    let (_, v) = s.get("booking-info", &[("booking_id", "B002")]).await;
    assert_eq!(v["data"]["status"], "cancelled");

    // Every step is an event; next-events drains and acknowledges over HTTP.
    let ev = s.ok("next-events", r#"{"limit": 100}"#).await;
    let types: Vec<&str> = ev["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in ["booking_held", "payment_changed", "booking_cancelled", "cancel_notified", "booking_made"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let last = ev["last_seq"].as_u64().unwrap();
    let after = s.ok("next-events", &json!({"ack": last}).to_string()).await;
    assert_eq!(after["events"], json!([]));

    // Metrics count every interface called, with errors by code.
    let m = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("yilian_requests_total{interface=\"pre-book-slot\"} 2"), "{m}");
    assert!(m.contains("yilian_errors_total{interface=\"pre-book-slot\",code=\"SLOT_CLOSED\"} 1"), "{m}");
    assert!(m.contains("yilian_errors_total{interface=\"cancel-slot\",code=\"ALREADY_CANCELLED\"} 1"), "{m}");
    assert!(m.contains("yilian_requests_total{interface=\"upload-report\"} 2"), "{m}");
    assert!(m.contains("yilian_request_duration_seconds_count{interface=\"book-slot\"} 1"), "{m}");
    s.stop().await;
}

/// The other half of the source's examples: 预约申请, 缴费进度同步 from the
/// hospital, 号源取消 by the patient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_sync_payment_and_cancel_verbatim() {
    let s = Server::start(CLOCK, false).await;
    s.ok("sync-catalog", &catalog()).await;
    s.ok("sync-schedule", SYNC_SCHEDULE).await;
    let b = s.ok("submit-booking-request", SUBMIT_BOOKING).await;
    assert_eq!((b["booking_id"].as_str(), b["clinic_id"].as_str()), (Some("B000001"), Some("C001")));
    let p = s.ok("sync-payment-status", PAY).await;
    assert_eq!((p["booking_id"].as_str(), p["payment_status"].as_str()), (Some("B000001"), Some("paid")));
    let c = s.ok("cancel-slot", CANCEL).await;
    assert_eq!((c["booking_id"].as_str(), c["status"].as_str()), (Some("B000001"), Some("cancelled")));
    let (_, v) = s.get("real-time-slots", REAL_TIME_SLOTS).await;
    assert_eq!(v["data"]["available_slots"], 1);
    // appointment-slots at the referral chapter's path, GET as in the source.
    s.ok("sync-schedule", r#"{"hospital_id": "H001", "schedule_data": [{"doctor_id": "DR001", "department_id": "D001", "date": "2024-11-01", "available_slots": [{"start_time": "09:00", "end_time": "09:30"}]}]}"#).await;
    let r = s.client.get(s.url("/api/appointment-slots?hospital_id=H001&doctor_id=DR001&date=2024-11-01")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v[0]["doctor_id"].as_str(), v[0]["time"].as_str(), v[0]["status"].as_str()), (Some("DR001"), Some("09:00"), Some("available")));
    s.stop().await;
}

/// Server-Sent Events: a subscriber sees a booking made over HTTP, while the
/// outbox still holds it for next-events (the stream does not acknowledge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_pushes_booking_events() {
    use futures_util::StreamExt;
    let s = Server::start(CLOCK, false).await;
    s.ok("sync-catalog", &catalog()).await;
    s.ok("sync-schedule", SYNC_SCHEDULE).await;
    // An event from before the connection is history: it is not pushed.
    s.ok("pre-book-slot", r#"{"patient_id": "PAT000", "project_id": "P001", "date": "2024-10-30", "time_slot": "14:00-15:00", "device_id": "DEV001"}"#).await;
    let resp = s.client.get(s.url("/api/v1/events/stream")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = resp.bytes_stream();
    s.ok("book-slot", BOOK_SLOT).await;
    let mut text = String::new();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("\n\n") && text.contains("event: booking_made") {
                return true;
            }
        }
        false
    })
    .await
    .expect("the event arrives within 10 s");
    assert!(found, "{text}");
    let data_line = text.lines().find(|l| l.starts_with("data: ")).unwrap();
    let ev: Value = serde_json::from_str(&data_line["data: ".len()..]).unwrap();
    assert_eq!((ev["type"].as_str(), ev["booking_id"].as_str(), ev["patient_id"].as_str()), (Some("booking_made"), Some("B000002"), Some("PAT001")));
    assert!(!text.contains("PAT000"), "history is not replayed: {text}");
    // The stream did not acknowledge: next-events still returns both events.
    let ev = s.ok("next-events", "{}").await;
    assert_eq!(ev["events"].as_array().unwrap().len(), 2, "{ev}");
    // A reconnect with Last-Event-ID gets the unacknowledged events after it
    // first, then live ones, each once.
    let first_seq = ev["events"][0]["seq"].as_u64().unwrap();
    let resp = s.client.get(s.url("/api/v1/events/stream")).header("Last-Event-ID", first_seq.to_string()).send().await.unwrap();
    let mut body2 = resp.bytes_stream();
    s.ok("cancel-slot", r#"{"booking_id": "B000002"}"#).await;
    let mut text2 = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body2.next().await {
            text2.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text2.contains("event: booking_cancelled") && text2.ends_with("\n\n") {
                break;
            }
        }
    })
    .await
    .expect("replay and live event within 10 s");
    let types: Vec<&str> = text2.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(types, vec!["booking_made", "booking_cancelled"], "{text2}");
    // Shutdown ends the open streams instead of waiting on them forever.
    s.stop().await;
}
