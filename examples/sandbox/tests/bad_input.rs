//! Bad input on the wire gets an error envelope with a 4xx status, and the
//! server keeps serving afterwards.

mod common;
use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn raw(s: &Server, method: reqwest::Method, path: &str, ct: Option<&str>, body: Vec<u8>) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rb = s.client.request(method, s.url(path)).body(body);
    if let Some(ct) = ct {
        rb = rb.header("Content-Type", ct);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not a JSON envelope ({status}): {text}"));
    (status, v, headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_envelopes_with_4xx() {
    use reqwest::Method;
    let s = Server::start(CLOCK, false).await;
    s.ok("sync-catalog", &catalog()).await;
    s.ok("sync-schedule", SYNC_SCHEDULE).await;
    let json = Some("application/json");

    // Malformed JSON, a JSON value that is not an object, bad UTF-8.
    let (st, v, _) = raw(&s, Method::POST, "/api/v1/pre-book-slot", json, br#"{"patient_id": "PAT001", "#.to_vec()).await;
    assert_error(&(st, v), 400, "INVALID_JSON");
    let (st, v, _) = raw(&s, Method::POST, "/api/v1/pre-book-slot", json, b"[1, 2]".to_vec()).await;
    assert_error(&(st, v), 400, "INVALID_FIELD");
    let (st, v, _) = raw(&s, Method::POST, "/api/v1/pre-book-slot", json, b"{\"patient_id\": \"\xff\xfe\"}".to_vec()).await;
    assert_error(&(st, v), 400, "INVALID_JSON");

    // Wrong or missing content type on a body.
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let (st, v, _) = raw(&s, Method::POST, "/api/v1/book-slot", ct, BOOK_SLOT.as_bytes().to_vec()).await;
        assert_error(&(st, v), 415, "INVALID_FIELD");
    }
    // A charset parameter is fine.
    let (st, _, _) = raw(
        &s,
        Method::POST,
        "/api/v1/real-time-slots",
        Some("application/json; charset=utf-8"),
        br#"{"device_id": "DEV001", "date": "2024-10-30", "time_slot": "09:00-10:00"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, 200);

    // Oversized body: refused by the server's limit before the engine sees it.
    let mut big = br#"{"hospital_id": "H001", "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    big.extend(b"\"}");
    let (st, v, _) = raw(&s, Method::POST, "/api/v1/sync-schedule", json, big).await;
    assert_error(&(st, v), 413, "REQUEST_TOO_LARGE");

    // Unknown paths and commands.
    for p in ["/api/v1/no-such-command", "/api/v2/book-slot", "/nothing/here", "/api/v1/book-slot/extra"] {
        let (st, v, _) = raw(&s, Method::GET, p, None, vec![]).await;
        assert_eq!(st, 404, "{p}: {v}");
        assert_eq!(v["status"], "error", "{p}");
    }
    // The withdrawn report links, even with a path that climbs: gone, with the new address.
    let (st, v, _) = raw(&s, Method::GET, "/reports/B000001/..%2F..%2Fetc", None, vec![]).await;
    assert_eq!((st, v["status"].as_str()), (410, Some("error")), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("/api/v1/reports/")), "{v}");
    let (st, v, _) = raw(&s, Method::GET, "/api/v1/no-such-command", None, vec![]).await;
    assert_error(&(st, v), 404, "UNKNOWN_COMMAND");

    // Missing and invalid parameters.
    assert_error(
        &s.post("pre-book-slot", r#"{"project_id": "P001", "date": "2024-10-30", "time_slot": "09:00-10:00", "device_id": "DEV001"}"#).await,
        400,
        "MISSING_FIELD",
    );
    assert_error(&s.get("real-time-slots", &[("project_id", "P001")]).await, 400, "MISSING_FIELD");
    assert_error(&s.get("real-time-slots", &[("project_id", "P001"), ("date", "30/10/2024"), ("time_slot", "09:00-10:00")]).await, 400, "INVALID_FIELD");
    let (st, v, _) = raw(&s, Method::GET, "/api/v1/slot-info?slot_id=a&slot_id=b", None, vec![]).await;
    assert_error(&(st, v), 400, "INVALID_FIELD");
    // GET numbers arrive as strings and are accepted where the engine takes counts.
    let (st, _) = s.get("recommend-slots", &[("patient_id", "PAT009"), ("project_id", "P001"), ("limit", "2")]).await;
    assert_eq!(st, 200);

    // Not found, state, and method errors map to their statuses.
    assert_error(&s.post("cancel-slot", r#"{"booking_id": "B999"}"#).await, 404, "BOOKING_NOT_FOUND");
    let (st, v, h) = raw(&s, Method::GET, "/api/v1/book-slot", None, vec![]).await;
    assert_error(&(st, v), 405, "INVALID_FIELD");
    assert_eq!(h["allow"], "POST", "state changes never run on GET");
    let (st, v, _) = raw(&s, Method::DELETE, "/api/v1/real-time-slots", None, vec![]).await;
    assert_error(&(st, v), 405, "INVALID_FIELD");

    for p in ["/healthz", "/metrics", "/api/v1/events/stream"] {
        let (st, v, h) = raw(&s, Method::POST, p, json, b"{}".to_vec()).await;
        assert_error(&(st, v), 405, "INVALID_FIELD");
        assert_eq!(h["allow"], "GET");
    }

    // The referral interfaces answer unknown ids with the engine's not-found errors.
    for (p, code) in [("/api/acceptance-info", "REFERRAL_NOT_FOUND"), ("/api/admission-details?admission_id=123", "ADMISSION_NOT_FOUND")] {
        let m = if p.contains("acceptance") { Method::POST } else { Method::GET };
        let body = if m == Method::POST {
            br#"{"referral_id": 1, "hospital_name": "x", "accept_doctor_id": "D1", "accept_time": "2024-10-30T10:00:00"}"#.to_vec()
        } else {
            vec![]
        };
        let (st, v, _) = raw(&s, m, p, json, body).await;
        assert_error(&(st, v), 404, code);
    }

    // Upload: neither multipart nor JSON, JSON without the document (the
    // engine command's own refusal), no booking, no file, unknown booking, too large.
    let (st, v, _) = raw(&s, Method::POST, "/api/v1/upload-report", Some("text/plain"), br#"{"booking_id": "B001"}"#.to_vec()).await;
    assert_error(&(st, v), 415, "INVALID_FIELD");
    let (st, v, _) = raw(&s, Method::POST, "/api/v1/upload-report", json, br#"{"booking_id": "B001"}"#.to_vec()).await;
    assert_error(&(st, v), 400, "MISSING_FIELD");
    let up = |form: reqwest::multipart::Form| s.client.post(s.url("/api/v1/upload-report")).multipart(form).send();
    let part = || reqwest::multipart::Part::bytes(b"%PDF-1.4".to_vec()).file_name("r.pdf");
    let r = up(reqwest::multipart::Form::new().part("file", part())).await.unwrap();
    assert_error(&(r.status().as_u16(), r.json().await.unwrap()), 400, "MISSING_FIELD");
    let r = up(reqwest::multipart::Form::new().text("booking_id", "B001")).await.unwrap();
    assert_error(&(r.status().as_u16(), r.json().await.unwrap()), 400, "MISSING_FIELD");
    let r = up(reqwest::multipart::Form::new().text("booking_id", "B042").part("file", part())).await.unwrap();
    assert_error(&(r.status().as_u16(), r.json().await.unwrap()), 404, "BOOKING_NOT_FOUND");
    s.ok("book-slot", BOOK_SLOT).await;
    let huge = reqwest::multipart::Part::bytes(vec![7u8; 3 * 1024 * 1024]).file_name("huge.pdf");
    let r = up(reqwest::multipart::Form::new().text("booking_id", "B001").part("file", huge)).await.unwrap();
    assert_error(&(r.status().as_u16(), r.json().await.unwrap()), 413, "REQUEST_TOO_LARGE");
    let r = up(reqwest::multipart::Form::new().text("booking_id", "../B001").part("file", part())).await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "a path in the booking id is refused by the engine");
    // Nothing of the failed uploads was kept.
    assert!(!s.dir.path().join("reports").join("B000001").exists() || std::fs::read_dir(s.dir.path().join("reports").join("B000001")).unwrap().count() == 0);
    let incoming = s.dir.path().join("reports").join(".incoming");
    assert_eq!(std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0), 0, "temporary files are removed");

    // Garbage that is not HTTP, and a client that sends half a body and goes
    // away: the server survives both.
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"\x16\x03\x01 not http at all\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut buf)).await;
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"POST /api/v1/book-slot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"patient").await.unwrap();
    drop(c);

    let h = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status().as_u16(), 200);
    let (_, v) = s.get("slot-info", &[("slot_id", "EX-H001-DEV001-20241030-09001000")]).await;
    assert_eq!(v["data"]["booked"], 1, "only the one good booking was made");
    s.stop().await;
}
