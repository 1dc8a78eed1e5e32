//! S1, issue #16 item 7: a patient id (often the resident ID number itself)
//! is read in full only by the platform and by the institutions that are a
//! party of the record (the booking institution, the slot's hospital, the
//! ordering institution and the lab); every other principal reads it masked
//! (`110***********002X`), in answers and in events alike.

mod common;
use common::*;
use serde_json::{json, Value};
use yilian_core::{Engine, Principal, Role};

/// A patient id that is an ID number, as hosts often send it.
const ID: &str = "11010519491231002X";
const MASKED: &str = "110***********002X";
const ID2: &str = "320583199001011232";

fn as_(role: Role, inst: &str) -> Principal {
    Principal::new(role, Some(inst), None).unwrap()
}

fn call_as(e: &Engine, who: &Principal, cmd: &str, req: Value) -> Value {
    e.call_value_as(who, cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd} as {who:?} failed: {err:?}"))
}

/// Every `patient_id` anywhere in `v`.
fn patient_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("patient_id", Value::String(s)) => out.push(s.clone()),
                    _ => patient_ids(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| patient_ids(x, out)),
        _ => {}
    }
}

fn ids_in(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    patient_ids(v, &mut out);
    out
}

#[test]
fn a_booking_answers_its_own_institution_and_hospital_in_full() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 1, 2);
    let c001 = as_(Role::Community, "C001");
    let booked = call_as(&e, &c001, "pre-book-slot", json!({"slot_id": slots[0], "patient_id": ID, "clinic_id": "C001"}));
    assert_eq!(booked["patient_id"], ID, "the booking institution reads its own booking in full");
    let id = booked["booking_id"].as_str().unwrap().to_string();
    for who in [c001, as_(Role::Hospital, "H001"), Principal::platform()] {
        let v = call_as(&e, &who, "booking-info", json!({"booking_id": id}));
        assert_eq!(v["patient_id"], ID, "{who:?}");
    }
    // The platform booking on a community's behalf acts as that community: its own booking.
    let on_behalf = call_as(&e, &Principal::platform(), "pre-book-slot", json!({"slot_id": slots[0], "patient_id": ID2, "clinic_id": "C001"}));
    assert_eq!(on_behalf["patient_id"], ID2);
}

#[test]
fn another_institution_reads_a_waitlist_masked_and_its_parties_in_full() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 1, 1);
    let (c001, c002, h001) = (as_(Role::Community, "C001"), as_(Role::Community, "C002"), as_(Role::Hospital, "H001"));
    call_as(&e, &c001, "book-slot", json!({"slot_id": slots[0], "patient_id": "PAT001", "clinic_id": "C001"}));
    let joined = call_as(&e, &c001, "waitlist-join", json!({"slot_id": slots[0], "patient_id": ID, "clinic_id": "C001"}));
    assert_eq!(joined["patient_id"], ID, "the institution that put the patient on the waitlist reads its answer in full");
    let read = |who: &Principal| call_as(&e, who, "slot-info", json!({"slot_id": slots[0]}))["waitlist"][0]["patient_id"].clone();
    assert_eq!(read(&c002), MASKED, "another community centre reads the waiter masked");
    assert_eq!(read(&c001), ID);
    assert_eq!(read(&h001), ID, "the slot's hospital reads its waitlist in full");
    assert_eq!(read(&Principal::platform()), ID);
    assert_eq!(read(&as_(Role::Hospital, "H002")), MASKED, "another hospital reads it masked");
}

#[test]
fn events_carry_a_patient_id_in_full_only_to_the_platform_and_the_parties() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 2, 1);
    let c001 = as_(Role::Community, "C001");
    call_as(&e, &c001, "pre-book-slot", json!({"slot_id": slots[0], "patient_id": ID, "clinic_id": "C001"}));
    call_as(&e, &c001, "waitlist-join", json!({"slot_id": slots[0], "patient_id": ID2, "clinic_id": "C001"}));
    let events = |who: &Principal| call_as(&e, who, "next-events", json!({"limit": 1000}));
    let full = ids_in(&events(&Principal::platform()));
    assert!(full.contains(&ID.to_string()) && full.contains(&ID2.to_string()), "{full:?}");
    for who in [c001.clone(), as_(Role::Hospital, "H001")] {
        assert_eq!(ids_in(&events(&who)), full, "a party reads its events in full: {who:?}");
    }
    for who in [as_(Role::Community, "C002"), as_(Role::Lab, "L001"), as_(Role::Hospital, "H002")] {
        let page = events(&who);
        assert_eq!((page["events"].as_array().map(Vec::len), &page["pending"]), (Some(0), &json!(0)), "a non-party reads none of them: {who:?} {page}");
    }
}

#[test]
fn an_institution_reads_only_its_own_events_and_cannot_drop_anyone_elses() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 2, 2);
    let (c001, c002) = (as_(Role::Community, "C001"), as_(Role::Community, "C002"));
    call_as(&e, &c001, "pre-book-slot", json!({"slot_id": slots[0], "patient_id": ID, "clinic_id": "C001"}));
    call_as(&e, &c002, "pre-book-slot", json!({"slot_id": slots[0], "patient_id": ID2, "clinic_id": "C002"}));
    let all = call_as(&e, &Principal::platform(), "next-events", json!({"limit": 1000}));
    let seqs = |page: &Value| page["events"].as_array().unwrap().iter().map(|ev| ev["seq"].as_u64().unwrap()).collect::<Vec<_>>();
    let mine = call_as(&e, &c002, "next-events", json!({"limit": 1000}));
    assert!(!seqs(&mine).is_empty() && seqs(&mine).len() < seqs(&all).len(), "C002 reads a part: {mine}");
    assert!(mine["events"].as_array().unwrap().iter().all(|ev| ev.to_string().contains("C002")), "each names C002: {mine}");
    assert_eq!(ids_in(&mine), vec![ID2.to_string()], "and never the other centre's patient");
    // Paging with `after` and `limit` walks its own events only.
    let first = call_as(&e, &c002, "next-events", json!({"limit": 1}));
    let rest = call_as(&e, &c002, "next-events", json!({"after": first["last_seq"], "limit": 1000}));
    assert_eq!([seqs(&first), seqs(&rest)].concat(), seqs(&mine));
    // Acknowledging would drop the hospital's and C001's events: refused, nothing dropped.
    let last = all["last_seq"].clone();
    let refused = e.call_as(&c002, "next-events", &json!({"ack": last}).to_string());
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert_eq!(seqs(&call_as(&e, &Principal::platform(), "next-events", json!({"limit": 1000}))), seqs(&all), "nothing was dropped");
    // The engine's host (its own principal) acknowledges.
    let drained = call_as(&e, &Principal::platform(), "next-events", json!({"ack": last}));
    assert_eq!(drained["pending"], 0, "{drained}");
}

#[test]
fn access_rules_say_whose_patient_ids_each_role_reads() {
    let e = Engine::open(CLOCK).unwrap();
    let rules = e.call_value("access-rules", "{}").unwrap();
    let roles = rules["roles"].as_array().expect("roles");
    assert!(roles.len() == 5 && roles.iter().all(|r| r["patient_ids"].is_string() && r["patient_ids_zh"].is_string()), "{roles:?}");
    // The regulator may read access-rules; the answer says it reads masked ids.
    let regulator = Principal::new(Role::Regulator, None, None).unwrap();
    let seen = e.call_value_as(&regulator, "access-rules", "{}").unwrap();
    let r = seen["roles"].as_array().unwrap().iter().find(|r| r["role"] == "regulator").unwrap().clone();
    assert!(r["patient_ids"].as_str().unwrap().contains("masked"));
}
