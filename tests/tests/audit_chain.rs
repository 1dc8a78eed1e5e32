//! #16 item 8: the audit trail is tamper-evident (each entry chained to the
//! one before it with SM3, checked by `audit-verify`), and it records what
//! changes nothing but must be answerable for: refused signatures and reads
//! of personal data — with object ids, never the personal values.

mod common;
use common::{ok, sync_slots};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use yilian_core::{Engine, ErrorCode, Principal, Role};

const KEY: &str = "0123456789abcdeffedcba9876543210";
const ID_NUMBER: &str = "110101199001011234";

fn cfg(dir: &Path, sealed: bool) -> String {
    let mut c = json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual", "durable_sync": "normal"});
    if sealed {
        c["encryption_key"] = json!(KEY);
    }
    c.to_string()
}

/// A schedule and `n` bookings, each its own commit (so its own audit row).
fn changes(e: &Engine, n: usize) {
    let slots = sync_slots(e, 1, n, 2);
    for (i, s) in slots.iter().enumerate() {
        ok(e, "book-slot", json!({"slot_id": s, "patient_id": format!("PAT{i:03}"), "clinic_id": "C001"}));
    }
}

/// The audit rows as stored: (key, body), in key order (the key as the
/// store reads it back: its number in 20 digits).
fn rows(dir: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(dir.join("yilian.sqlite3")).unwrap();
    let mut st = conn.prepare("SELECT printf('%020d', k), body FROM audit ORDER BY k").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

fn exec(dir: &Path, sql: &str, params: &[&dyn rusqlite::ToSql]) {
    let conn = rusqlite::Connection::open(dir.join("yilian.sqlite3")).unwrap();
    assert_eq!(conn.execute(sql, params).unwrap(), 1, "{sql}");
}

fn verify(cfg: &str) -> Value {
    let e = Engine::open(cfg).unwrap();
    let v = ok(&e, "audit-verify", json!({}));
    e.close();
    v
}

/// The audit entries of `kind` (`read`, `refusal`), waiting (bounded) for
/// them: such entries are queued without waiting for the disk.
fn entries_of(e: &Engine, kind: &str, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = ok(e, "audit-log", json!({"limit": 1000, "kind": kind}));
        let found: Vec<Value> = log["entries"].as_array().unwrap().iter().filter(|x| x["kind"] == kind).cloned().collect();
        if found.len() >= at_least || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reopened_trail_verifies_and_keeps_chaining_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Engine::open(&cfg(dir.path(), false)).unwrap();
        changes(&e, 3);
        e.close();
    }
    let e = Engine::open(&cfg(dir.path(), false)).unwrap();
    ok(&e, "cancel-slot", json!({"booking_id": "B000001", "clinic_id": "C001"}));
    let v = ok(&e, "audit-verify", json!({}));
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64(), v["unhashed_prefix"].as_u64(), &v["first_broken"]),
        (Some(true), Some(5), Some(0), &Value::Null),
        "{v}"
    );
    // Each entry names the hash of the one before it, the first the genesis value.
    let log = ok(&e, "audit-log", json!({}));
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[0]["prev_hash"], "0".repeat(64));
    for w in entries.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"], "{w:?}");
    }
    assert_eq!(v["head"], entries[4]["hash"]);
    // The platform and the regulator check the trail; a care party does not.
    let regulator = Principal::new(Role::Regulator, None, None).unwrap();
    assert_eq!(e.call_value_as(&regulator, "audit-verify", "{}").unwrap()["ok"], true);
    let community = Principal::new(Role::Community, Some("C001"), None).unwrap();
    assert!(e.call_value_as(&community, "audit-verify", "{}").is_err());
    e.close();
    // An engine without a store keeps no trail to verify, and says so.
    assert_eq!(Engine::open("{}").unwrap().call_value("audit-verify", "{}").unwrap_err().code(), ErrorCode::InvalidState);
}

#[test]
fn an_entry_edited_in_the_sqlite_file_is_reported_as_the_first_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), false);
    {
        let e = Engine::open(&cfg).unwrap();
        changes(&e, 4);
        e.close();
    }
    assert_eq!(verify(&cfg)["ok"], true);
    // Entry 3's time moved by hand (same length, still valid JSON).
    let (key, body) = rows(dir.path()).into_iter().find(|(_, b)| b.contains("{\"seq\":3,")).expect("entry 3");
    let at = body.find("{\"seq\":3,\"at_ms\":").unwrap() + "{\"seq\":3,\"at_ms\":".len();
    let mut edited = body.clone().into_bytes();
    edited[at] = if edited[at] == b'1' { b'2' } else { b'1' };
    let edited = String::from_utf8(edited).unwrap();
    assert_ne!(edited, body);
    exec(dir.path(), "UPDATE audit SET body = ?1 WHERE k = ?2", &[&edited, &key]);
    let v = verify(&cfg);
    assert_eq!(
        (v["ok"].as_bool(), v["first_broken"]["seq"].as_u64(), v["first_broken"]["reason"].as_str()),
        (Some(false), Some(3), Some("hash_mismatch")),
        "{v}"
    );
    assert!(v["first_broken"]["message_zh"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The first entry number of each audit row (rows are keyed by their last).
fn row_starts(dir: &Path) -> Vec<(String, u64)> {
    let mut prev = 0u64;
    rows(dir)
        .into_iter()
        .map(|(k, _)| {
            let first = prev + 1;
            prev = k.parse().unwrap();
            (k, first)
        })
        .collect()
}

#[test]
fn in_a_sealed_store_a_swapped_or_deleted_row_is_the_first_broken_link() {
    // Swapped: two rows' sealed bodies exchanged.
    let dir = tempfile::tempdir().unwrap();
    let cfg_swap = cfg(dir.path(), true);
    {
        let e = Engine::open(&cfg_swap).unwrap();
        changes(&e, 5);
        e.close();
    }
    assert_eq!(verify(&cfg_swap)["ok"], true);
    let starts = row_starts(dir.path());
    assert!(starts.len() >= 5, "{starts:?}");
    let all = rows(dir.path());
    assert!(all.iter().all(|(_, b)| b.starts_with("sm4gcm:")), "the trail is sealed");
    let ((k2, b2), (k3, b3)) = (all[2].clone(), all[3].clone());
    exec(dir.path(), "UPDATE audit SET body = ?1 WHERE k = ?2", &[&b3, &k2]);
    exec(dir.path(), "UPDATE audit SET body = ?1 WHERE k = ?2", &[&b2, &k3]);
    let v = verify(&cfg_swap);
    assert_eq!(
        (v["ok"].as_bool(), v["first_broken"]["seq"].as_u64(), v["first_broken"]["reason"].as_str()),
        (Some(false), Some(starts[2].1), Some("unreadable_row")),
        "{v}"
    );

    // Deleted: a row in the middle removed.
    let dir = tempfile::tempdir().unwrap();
    let cfg_del = cfg(dir.path(), true);
    {
        let e = Engine::open(&cfg_del).unwrap();
        changes(&e, 5);
        e.close();
    }
    let starts = row_starts(dir.path());
    exec(dir.path(), "DELETE FROM audit WHERE k = ?1", &[&starts[2].0]);
    let v = verify(&cfg_del);
    assert_eq!(
        (v["ok"].as_bool(), v["first_broken"]["seq"].as_u64(), v["first_broken"]["reason"].as_str()),
        (Some(false), Some(starts[2].1), Some("missing")),
        "{v}"
    );
}

#[test]
fn entries_written_before_the_chain_are_an_unhashed_prefix_and_the_chain_starts_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), false);
    {
        let e = Engine::open(&cfg).unwrap();
        changes(&e, 2);
        e.close();
    }
    // A store from before the chain: the same rows without the hash fields.
    let mut old = 0;
    for (k, body) in rows(dir.path()) {
        let mut plain = String::new();
        let mut rest = body.as_str();
        while let Some(i) = rest.find(",\"prev_hash\":\"") {
            plain.push_str(&rest[..i]);
            rest = &rest[i + 14 + 64 + 10 + 64 + 1..];
            old += 1;
        }
        plain.push_str(rest);
        exec(dir.path(), "UPDATE audit SET body = ?1 WHERE k = ?2", &[&plain, &k]);
    }
    assert_eq!(old, 3);
    let e = Engine::open(&cfg).unwrap();
    ok(&e, "cancel-slot", json!({"booking_id": "B000002", "clinic_id": "C001"}));
    let v = ok(&e, "audit-verify", json!({}));
    assert_eq!((v["ok"].as_bool(), v["entries"].as_u64(), v["unhashed_prefix"].as_u64()), (Some(true), Some(4), Some(3)), "{v}");
    let log = ok(&e, "audit-log", json!({"after_seq": 3}));
    assert_eq!(log["entries"][0]["prev_hash"], "0".repeat(64), "the first hashed entry chains from the genesis value");
    e.close();
}

#[test]
fn a_refused_signature_is_recorded_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(dir.path(), true)).unwrap();
    let claimed = format!("张三-HIS-{}", "x".repeat(200));
    e.audit_refusal(Some(&claimed), &format!("/api/v1/booking-info?patient_id={ID_NUMBER}&name=张三"), ErrorCode::SignatureInvalid);
    e.audit_refusal(None, "/api/v1/book-slot", ErrorCode::SignatureExpired);
    let found = entries_of(&e, "refusal", 2);
    assert_eq!(found.len(), 2, "{found:?}");
    let first = &found[0];
    assert_eq!((first["command"].as_str(), first["code"].as_str()), (Some("/api/v1/booking-info"), Some("SIGNATURE_INVALID")), "{first}");
    let app = first["claimed_app_id"].as_str().unwrap();
    assert!(app.ends_with("-HIS-xxxx") || app.contains("-HIS-"), "{app}");
    assert!(app.chars().count() <= 64, "{app}");
    assert_eq!(found[1]["code"], "SIGNATURE_EXPIRED");
    assert!(found[1].get("claimed_app_id").is_none());
    let text = serde_json::to_string(&found).unwrap();
    assert!(!text.contains(ID_NUMBER) && !text.contains("张三"), "{text}");
    // A refusal is part of the chain like any entry.
    assert_eq!(ok(&e, "audit-verify", json!({}))["ok"], true);
    e.close();
    // An engine without a store has no trail: the call is a no-op, not a failure.
    Engine::open("{}").unwrap().audit_refusal(Some("A"), "/api/v1/x", ErrorCode::SignatureInvalid);
}

#[test]
fn a_read_of_personal_data_is_recorded_with_object_ids_only() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(&cfg(dir.path(), false)).unwrap();
    let slots = sync_slots(&e, 1, 1, 2);
    ok(&e, "book-slot", json!({"slot_id": slots[0], "patient_id": ID_NUMBER, "clinic_id": "C001", "patient": {"name": "张三", "phone": "13800000000"}}));
    let c001 = Principal::new(Role::Community, Some("C001"), Some("nurse-1")).unwrap();
    let info = e.call_value_as(&c001, "booking-info", &json!({"booking_id": "B000001"}).to_string()).unwrap();
    assert!(info.to_string().contains(ID_NUMBER), "booking-info shows the patient: {info}");
    // A refused read and a query without personal data leave no read entry.
    assert!(e.call_value_as(&c001, "booking-info", &json!({"booking_id": "B000099"}).to_string()).is_err());
    ok(&e, "slot-info", json!({"slot_id": slots[0]}));
    let reads = entries_of(&e, "read", 1);
    // Give a stray entry a moment to show before counting.
    std::thread::sleep(Duration::from_millis(200));
    let reads_now = entries_of(&e, "read", 1);
    assert_eq!(reads_now.len(), 1, "{reads_now:?}");
    let r = &reads[0];
    assert_eq!((r["command"].as_str(), r["institution"].as_str(), r["operator"].as_str()), (Some("booking-info"), Some("C001"), Some("nurse-1")), "{r}");
    assert_eq!(r["read"], json!(["booking/B000001"]));
    let text = r.to_string();
    assert!(!text.contains(ID_NUMBER) && !text.contains("张三") && !text.contains("13800000000"), "{text}");
    assert!(r["changed"].as_array().is_none_or(Vec::is_empty));
    assert_eq!(ok(&e, "audit-verify", json!({}))["ok"], true);
    e.close();
}

/// `threads` callers booking at once (so the group commit puts many entries
/// in one audit row), each patient once.
fn concurrent_changes(e: &Engine, slots: &[String], threads: usize, tag: &str) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for (i, slot) in slots.iter().enumerate().filter(|(i, _)| i % threads == t) {
                    ok(e, "book-slot", json!({"slot_id": slot, "patient_id": format!("{tag}{i:03}"), "clinic_id": "C001"}));
                }
            });
        }
    });
}

#[test]
fn on_postgresql_a_trail_stored_compressed_before_verifies_and_later_rows_are_stored_uncompressed() {
    let spec = yilian_tests::store::fresh_postgres();
    let conninfo = spec.strip_prefix("postgres:").unwrap();
    let cfg = json!({"store": {"postgres": conninfo}, "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string();
    let mut admin = postgres::Client::connect(conninfo, postgres::NoTls).unwrap();
    let storage = |c: &mut postgres::Client| -> String {
        c.query_one("SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'audit'::regclass AND attname = 'body'", &[]).unwrap().get(0)
    };
    // Rows larger than the server's inline limit (about 2 KB), and how many of them it compressed.
    let large = |c: &mut postgres::Client| -> (i64, i64) {
        let r = c
            .query_one("SELECT count(*), count(*) FILTER (WHERE pg_column_size(body) < octet_length(body)) FROM audit WHERE octet_length(body) > 2100", &[])
            .unwrap();
        (r.get(0), r.get(1))
    };
    let e = Engine::open(&cfg).unwrap();
    assert_eq!(storage(&mut admin), "e", "a new store keeps its audit rows uncompressed");
    // As a store written before that: the server's default, compressed.
    admin.batch_execute("ALTER TABLE audit ALTER COLUMN body SET STORAGE EXTENDED").unwrap();
    let slots = sync_slots(&e, 4, 20, 2);
    concurrent_changes(&e, &slots, 32, "A");
    e.close();
    let (before, compressed) = large(&mut admin);
    assert!(before > 0 && compressed == before, "the premise: batched rows the server compressed ({before} large, {compressed} compressed)");
    // The next open stores new rows uncompressed; the old ones read and verify as they were.
    let e = Engine::open(&cfg).unwrap();
    assert_eq!(storage(&mut admin), "e");
    concurrent_changes(&e, &slots, 32, "B");
    let v = ok(&e, "audit-verify", json!({}));
    assert_eq!((v["ok"].as_bool(), &v["first_broken"]), (Some(true), &Value::Null), "{v}");
    assert!(v["entries"].as_u64().unwrap() > 160, "{v}");
    e.close();
    let (after, still_compressed) = large(&mut admin);
    assert!(after > before, "the second storm's batches made large rows too ({after} against {before})");
    assert_eq!(still_compressed, compressed, "only the rows written before are compressed");
}
