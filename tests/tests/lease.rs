//! #17 item 2: one leader per shared (PostgreSQL) store, fenced by its lease.

mod common;
use common::*;
use serde_json::json;
use yilian_core::{Engine, ErrorCode};

fn cfg(spec: &str) -> String {
    let conninfo = spec.strip_prefix("postgres:").unwrap();
    json!({"clock_start": "2024-10-29T09:00:00+08:00", "store": {"postgres": conninfo, "lease_seconds": 2}}).to_string()
}

fn admin(spec: &str) -> postgres::Client {
    postgres::Client::connect(spec.strip_prefix("postgres:").unwrap(), postgres::NoTls).unwrap()
}

#[test]
fn an_idle_leader_keeps_its_lease_past_its_length_and_a_second_engine_is_refused() {
    let spec = yilian_tests::store::fresh_postgres();
    let a = Engine::open(&cfg(&spec)).unwrap();
    let epoch = a.lease_epoch().expect("a PostgreSQL store leads under a lease");
    std::thread::sleep(std::time::Duration::from_millis(3500)); // longer than the 2 s lease: renewed while idle
    let err = Engine::open(&cfg(&spec)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreLocked, "{err}");
    let slots = sync_slots(&a, 1, 1, 3);
    ok(&a, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001"}));
    a.close();
    // Closed: the lease is released and the next engine takes it at once, one epoch on.
    let b = Engine::open(&cfg(&spec)).unwrap();
    assert_eq!(b.lease_epoch(), Some(epoch + 1));
    assert_eq!(slot_counts(&b, &slots[0]).1, 1);
}

#[test]
fn a_leader_whose_lease_lapsed_commits_nothing_once_another_took_over() {
    let spec = yilian_tests::store::fresh_postgres();
    let a = Engine::open(&cfg(&spec)).unwrap();
    let slots = sync_slots(&a, 1, 1, 10);
    ok(&a, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001"}));
    // As if `a` had been paused past its lease (its session stays open):
    // the lease's time runs out in the server's clock.
    admin(&spec).batch_execute("UPDATE yilian_lease SET expires_at = now() - interval '1 second'").unwrap();
    let b = Engine::open(&cfg(&spec)).unwrap();
    assert_eq!(b.lease_epoch(), Some(a.lease_epoch().unwrap() + 1));
    // The old leader's next change is fenced: refused, and it refuses all after.
    let err = a.call_value("book-slot", &json!({"slot_id": slots[0], "patient_id": "PAT002"}).to_string()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotLeader, "{err}");
    assert_eq!(a.health().unwrap_err().code(), ErrorCode::NotLeader);
    assert_eq!(a.call_value("engine-info", "{}").unwrap_err().code(), ErrorCode::NotLeader);
    // The new leader goes on.
    ok(&b, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT003"}));
    drop(a);
    b.close();
    drop(b);
    // What the database holds is exactly what the new leader acknowledged.
    let c = Engine::open(&cfg(&spec)).unwrap();
    assert_eq!(slot_counts(&c, &slots[0]).1, 2, "PAT001 and PAT003, never PAT002");
    c.check_invariants().unwrap();
}

#[test]
fn engine_info_names_the_postgresql_server_and_its_version() {
    let spec = yilian_tests::store::fresh_postgres();
    let e = Engine::open(&cfg(&spec)).unwrap();
    let info = ok(&e, "engine-info", json!({}));
    assert_eq!(info["store"]["database"], "postgres", "{info}");
    let server: String = admin(&spec).query_one("SHOW server_version", &[]).unwrap().get(0);
    assert_eq!(info["store"]["version"], server, "{info}");
}
