//! The monitoring indicators (M1, #19 item 3) equal a recount from the raw
//! events for random histories: bookings made, held, confirmed, cancelled
//! and expired by several community centres on two hospitals' slots over
//! several days, and critical values published and acknowledged late or in
//! time. The recount reads only `next-events` (never acknowledged, so the
//! whole history is there); the indicators read the engine's records.

mod common;
mod lab_common;

use common::ok;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use yilian_core::{Engine, Principal, Role};

const DAYS: [&str; 3] = ["2024-10-30", "2024-10-31", "2024-11-01"];
const HOSPITALS: [&str; 2] = ["H001", "H002"];
const CLINICS: [&str; 3] = ["C001", "C002", "H001"];

fn manual() -> String {
    json!({"clock": "manual", "clock_start": "2024-10-29T09:00:00+08:00", "hold_ttl_seconds": 600}).to_string()
}

/// Registration slots of capacity 2 for each hospital and day: their ids.
fn setup(e: &Engine) -> Vec<String> {
    let mut ids = Vec::new();
    for h in HOSPITALS {
        let data: Vec<Value> = DAYS
            .iter()
            .map(|d| json!({"doctor_id": format!("DR{h}"), "department_id": "D001", "date": d, "capacity": 2, "available_slots": [{"start_time": "08:00", "end_time": "11:30"}]}))
            .collect();
        ok(e, "sync-schedule", json!({"hospital_id": h, "schedule_data": data}));
        for d in DAYS {
            ids.push(format!("RG-{h}-DR{h}-{}-08001130", d.replace('-', "")));
        }
    }
    ids
}

#[derive(Debug, Clone)]
enum Op {
    Hold { slot: usize, clinic: usize, patient: u8 },
    Book { slot: usize, clinic: usize, patient: u8 },
    Confirm(usize),
    Cancel(usize),
    /// Minutes of clock (holds lapse after 10).
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..6usize, 0..3usize, 0..8u8).prop_map(|(slot, clinic, patient)| Op::Hold { slot, clinic, patient }),
        (0..6usize, 0..3usize, 0..8u8).prop_map(|(slot, clinic, patient)| Op::Book { slot, clinic, patient }),
        (0..20usize).prop_map(Op::Confirm),
        (0..20usize).prop_map(Op::Cancel),
        (1..900u32).prop_map(Op::Wait),
    ]
}

fn run(e: &Engine, slots: &[String], made: &mut Vec<String>, o: &Op) {
    let r = match o {
        Op::Hold { slot, clinic, patient } | Op::Book { slot, clinic, patient } => {
            let cmd = if matches!(o, Op::Hold { .. }) { "pre-book-slot" } else { "book-slot" };
            let v = e.call_value(cmd, &json!({"slot_id": slots[*slot], "patient_id": format!("PAT{patient}"), "clinic_id": CLINICS[*clinic]}).to_string());
            if let Ok(v) = &v {
                made.push(v["booking_id"].as_str().unwrap().to_string());
            }
            v.map(|_| ())
        }
        Op::Confirm(i) | Op::Cancel(i) if made.is_empty() => {
            let _ = i;
            Ok(())
        }
        Op::Confirm(i) => e.call_value("book-slot", &json!({"booking_id": made[i % made.len()]}).to_string()).map(|_| ()),
        Op::Cancel(i) => e.call_value("cancel-slot", &json!({"booking_id": made[i % made.len()]}).to_string()).map(|_| ()),
        Op::Wait(m) => {
            ok(e, "advance-clock", json!({"seconds": m * 60}));
            ok(e, "run-due", json!({}));
            Ok(())
        }
    };
    // Refusals (full, overlapping, ended, lapsed) are part of a history; a bug is not.
    if let Err(err) = r {
        assert!(!matches!(err.code().as_str(), "INTERNAL" | "STORE_FAILED"), "{o:?}: {err:?}");
    }
}

/// What the events say of each booking: made when, by whom, on which
/// hospital's slot, whether it reached `booked`, whether it was then cancelled.
#[derive(Debug, Default)]
struct Life {
    at: String,
    clinic: String,
    hospital: String,
    booked: bool,
    cancelled_after_booked: bool,
}

fn recount(e: &Engine) -> BTreeMap<String, Life> {
    let v = ok(e, "next-events", json!({"limit": 10000}));
    let mut lives: BTreeMap<String, Life> = BTreeMap::new();
    for ev in v["events"].as_array().unwrap() {
        let Some(b) = ev["booking_id"].as_str() else { continue };
        let t = ev["type"].as_str().unwrap();
        let life = lives.entry(b.to_string()).or_default();
        if life.at.is_empty() {
            life.at = ev["at"].as_str().unwrap().to_string();
            life.clinic = ev["clinic_id"].as_str().unwrap_or("").to_string();
            life.hospital = ev["data"]["hospital_id"].as_str().unwrap_or("").to_string();
        }
        match t {
            "booking_made" | "booking_confirmed" => life.booked = true,
            "booking_cancelled" if life.booked => life.cancelled_after_booked = true,
            _ => {}
        }
    }
    lives
}

fn indicator(e: &Engine, who: Option<&Principal>, body: Value, id: &str) -> (f64, f64) {
    let v = match who {
        Some(p) => e.call_value_as(p, "indicators", &body.to_string()).unwrap(),
        None => ok(e, "indicators", body),
    };
    let x = v["indicators"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    (x["numerator"].as_f64().unwrap(), x["denominator"].as_f64().unwrap_or(0.0))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn booking_indicators_equal_a_recount_from_the_raw_events(ops in proptest::collection::vec(op(), 1..60)) {
        let e = Engine::open(&manual()).unwrap();
        let slots = setup(&e);
        let mut made = Vec::new();
        for o in &ops {
            run(&e, &slots, &mut made, o);
        }
        let lives = recount(&e);
        let today = "2024-10-29";
        let last = "2024-12-31"; // a history spans at most 60 × 15 hours
        let all = json!({"date_from": today, "date_to": last});
        let n = lives.len() as f64;
        let booked = lives.values().filter(|l| l.booked).count() as f64;
        let cancelled = lives.values().filter(|l| l.cancelled_after_booked).count() as f64;
        let shared = lives.values().filter(|l| !l.clinic.is_empty() && l.clinic != l.hospital).count() as f64;
        prop_assert_eq!(indicator(&e, None, all.clone(), "booking_success_rate"), (booked, n));
        prop_assert_eq!(indicator(&e, None, all.clone(), "cancellation_rate"), (cancelled, booked));
        prop_assert_eq!(indicator(&e, None, all.clone(), "resource_sharing_rate"), (shared, n));
        // Per institution, as that institution and as the regulator.
        let regulator = Principal::new(Role::Regulator, None, None).unwrap();
        for c in ["C001", "C002"] {
            let mine: Vec<&Life> = lives.values().filter(|l| l.clinic == c).collect();
            let ok_mine = mine.iter().filter(|l| l.booked).count() as f64;
            let me = Principal::new(Role::Community, Some(c), None).unwrap();
            prop_assert_eq!(indicator(&e, Some(&me), all.clone(), "booking_success_rate"), (ok_mine, mine.len() as f64));
            let mut named = all.clone();
            named["institution_id"] = c.into();
            prop_assert_eq!(indicator(&e, Some(&regulator), named, "booking_success_rate"), (ok_mine, mine.len() as f64));
        }
        // Day by day: the days' counts add up to the period's.
        let mut by_day: BTreeMap<String, f64> = BTreeMap::new();
        for l in lives.values() {
            *by_day.entry(l.at[..10].to_string()).or_default() += 1.0;
        }
        let mut series = all.clone();
        series["series"] = "day".into();
        series["ids"] = json!(["booking_success_rate"]);
        let v = ok(&e, "indicators", series);
        let points = v["indicators"][0]["series"].as_array().unwrap();
        let days: BTreeSet<&str> = points.iter().map(|p| p["date"].as_str().unwrap()).collect();
        prop_assert_eq!(days.len(), 64, "every day of 2024-10-29 – 2024-12-31");
        for p in points {
            let want = by_day.get(p["date"].as_str().unwrap()).copied().unwrap_or(0.0);
            prop_assert_eq!(p["denominator"].as_f64().unwrap(), want, "{}", p);
        }
    }
}

/// Critical values published on a lab's report and acknowledged in time,
/// late, or never: the timeliness and the mean time match the clock.
#[test]
fn critical_value_acknowledgement_indicators_follow_the_clock() {
    let e = Engine::open(&manual()).unwrap();
    lab_common::setup(&e);
    ok(&e, "critical-value-limit-set", json!({"institution_id": "C001", "minutes": 30, "fallback_name": "值班主任", "fallback_contact": "0512-57000000"}));
    let ids: Vec<String> = (0..3).map(|_| lab_common::critical_value(&e)).collect();
    let ack = |id: &str| ok(&e, "critical-value-ack", json!({"critical_id": id, "receiver": "李医生", "contact": "13800138000", "readback": "45", "institution_id": "C001"}));
    // One acknowledged after 5 minutes, one after 90 (past the 30-minute limit), one never.
    ok(&e, "advance-clock", json!({"seconds": 300}));
    ack(&ids[0]);
    ok(&e, "advance-clock", json!({"seconds": 85 * 60}));
    ack(&ids[1]);
    let v = ok(&e, "indicators", json!({"date_from": "2024-10-29", "ids": ["critical_value_ack_timeliness", "critical_value_ack_minutes"]}));
    let get = |id: &str| v["indicators"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    let t = get("critical_value_ack_timeliness");
    assert_eq!((t["numerator"].as_f64(), t["denominator"].as_f64()), (Some(1.0), Some(3.0)), "{t}");
    let m = get("critical_value_ack_minutes");
    assert_eq!((m["numerator"].as_f64(), m["denominator"].as_f64(), m["value"].as_f64()), (Some(95.0), Some(2.0), Some(47.5)), "{m}");
    // What stands in each state now: three orders reported, their tubes received; C002 has none.
    let counts = ok(&e, "case-counts", json!({}));
    assert_eq!(counts["lab_orders"], json!({"reported": 3}), "{counts}");
    assert_eq!(counts["specimens"], json!({"received": 3}), "{counts}");
    let c002 = ok(&e, "case-counts", json!({"institution_id": "C002"}));
    assert_eq!(c002["lab_orders"], json!({}), "{c002}");
}

#[test]
fn every_indicator_is_defined_and_an_unsupported_one_says_what_it_needs() {
    let e = Engine::open(&manual()).unwrap();
    let d = ok(&e, "indicator-definitions", json!({}));
    let list = d["indicators"].as_array().unwrap();
    assert!(list.len() >= 22, "{}", list.len());
    for x in list {
        assert!(x["name_zh"].as_str().unwrap().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{x}");
        if x["supported"] == true {
            assert!(x["numerator"].is_string(), "{x}");
        } else {
            assert!(x["needs"].as_str().is_some_and(|s| !s.is_empty()), "{x}");
        }
    }
    assert!(list.iter().any(|x| x["id"] == "medical_incident_rate" && x["supported"] == false));
    // Nothing personal leaves: the regulator reads them all for a period.
    let regulator = Principal::new(Role::Regulator, None, None).unwrap();
    let v = e.call_value_as(&regulator, "indicators", &json!({"date_from": "2024-10-01", "date_to": "2024-10-31"}).to_string()).unwrap();
    assert_eq!(v["indicators"].as_array().unwrap().len(), list.len());
}

#[test]
fn bad_indicator_requests_get_a_stable_code_and_both_messages() {
    let e = Engine::open(&manual()).unwrap();
    let c = Principal::new(Role::Community, Some("C001"), None).unwrap();
    for (who, body, code) in [
        (None, json!({"date_from": "2024-10-30", "date_to": "2024-10-29"}), "INVALID_FIELD"),
        (None, json!({"ids": ["no_such"]}), "INVALID_FIELD"),
        (None, json!({"group": "no_such"}), "INVALID_FIELD"),
        (None, json!({"series": "hour"}), "INVALID_FIELD"),
        (None, json!({"date_from": "2024-01-01", "date_to": "2025-12-31", "series": "day"}), "INVALID_FIELD"),
        (Some(&c), json!({"institution_id": "C002"}), "FORBIDDEN"),
    ] {
        let err = match who {
            Some(p) => e.call_value_as(p, "indicators", &body.to_string()).unwrap_err(),
            None => e.call_value("indicators", &body.to_string()).unwrap_err(),
        };
        assert_eq!(err.code().as_str(), code, "{body}");
        assert!(err.message_zh().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{}", err.message_zh());
    }
}

/// `docs/indicators.md` is the engine's own table (`indicator-definitions`),
/// rendered: regenerate it with `UPDATE_DOCS=1 cargo test -p yilian-tests --test indicators`.
#[test]
fn the_indicator_docs_are_the_engines_own_definitions() {
    let e = Engine::open(&manual()).unwrap();
    let d = ok(&e, "indicator-definitions", json!({}));
    let mut md = String::from(
        "# Monitoring indicators (监测指标)\n\n\
         Generated from `indicator-definitions` by `tests/tests/indicators.rs`; do not edit by hand.\n\
         Read them with `indicators` (see the README's [Indicators](../README.md#indicators-监测指标)).\n",
    );
    let mut group = String::new();
    for x in d["indicators"].as_array().unwrap() {
        let g = x["group"].as_str().unwrap();
        if g != group {
            group = g.to_string();
            md.push_str(&format!("\n## `{g}`\n\n| id | indicator | unit | numerator | denominator |\n|---|---|---|---|---|\n"));
        }
        let s = |k: &str| x[k].as_str().unwrap_or("").replace('|', "\\|");
        if x["supported"] == true {
            md.push_str(&format!("| `{}` | {} ({}) | {} | {} | {} |\n", s("id"), s("name_zh"), s("name"), s("unit"), s("numerator"), if s("denominator").is_empty() { "—".into() } else { s("denominator") }));
        } else {
            md.push_str(&format!("| `{}` | {} ({}) | not supported | needs: {} | |\n", s("id"), s("name_zh"), s("name"), s("needs")));
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/indicators.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &md).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(on_disk == md, "docs/indicators.md is stale: run UPDATE_DOCS=1 cargo test -p yilian-tests --test indicators");
}

/// The chronic-disease centre's figures reach the indicators: two patients
/// registered, one lost to follow-up; a periodic follow-up recorded with a
/// satisfaction score; the management, completion and satisfaction
/// indicators count them for the period and the centre, and another centre
/// counts none.
#[test]
fn chronic_management_follow_up_and_satisfaction_come_from_the_register_and_its_follow_ups() {
    let e = Engine::open(&manual()).unwrap();
    for p in ["PAT001", "PAT002"] {
        ok(&e, "chronic-enrol", json!({"institution_id": "C001", "patient_id": p, "doctor_id": "CDR01", "icd10": ["I10"], "next_follow_up": "2024-10-30"}));
    }
    let regs = ok(&e, "chronic-query", json!({"institution_id": "C001"}));
    let lost = regs["items"].as_array().unwrap().iter().find(|r| r["patient_id"] == "PAT002").unwrap()["chronic_id"].clone();
    ok(&e, "chronic-update", json!({"institution_id": "C001", "chronic_id": lost, "status": "lost_to_follow_up", "reason": "失访"}));
    let plans = ok(&e, "follow-up-query", json!({"institution_id": "C001"}));
    let first = plans["items"].as_array().unwrap().iter().find(|p| p["status"] != "cancelled").unwrap()["plan_id"].clone();
    ok(&e, "advance-clock", json!({"seconds": 86_400}));
    ok(&e, "follow-up-record", json!({"institution_id": "C001", "plan_id": first, "doctor_id": "CDR01", "method": "clinic", "satisfaction": 4}));
    let get = |inst: &str| {
        let v = ok(&e, "indicators", json!({"date_from": "2024-10-29", "date_to": "2024-10-31", "institution_id": inst, "group": "health_management"}));
        let mut out = BTreeMap::new();
        for x in v["indicators"].as_array().unwrap().iter().filter(|x| x["supported"] == true) {
            out.insert(x["id"].as_str().unwrap().to_string(), (x["numerator"].as_f64().unwrap(), x["denominator"].as_f64().unwrap_or(0.0)));
        }
        let q = ok(&e, "indicators", json!({"date_from": "2024-10-29", "date_to": "2024-10-31", "institution_id": inst, "ids": ["patient_satisfaction"]}));
        out.insert("patient_satisfaction".into(), (q["indicators"][0]["numerator"].as_f64().unwrap(), q["indicators"][0]["denominator"].as_f64().unwrap()));
        out
    };
    let c001 = get("C001");
    assert_eq!(c001["chronic_management_rate"], (1.0, 2.0), "{c001:?}");
    assert_eq!(c001["patient_satisfaction"], (4.0, 1.0), "{c001:?}");
    // The same period in follow-up-stats' terms: `to` is the day after (exclusive).
    let stats = ok(&e, "follow-up-stats", json!({"institution_id": "C001", "from": "2024-10-29", "to": "2024-11-01"}));
    assert_eq!(c001["follow_up_completion_rate"], (stats["completed"].as_f64().unwrap(), stats["due"].as_f64().unwrap()), "{stats}");
    assert!(stats["completed"].as_u64().unwrap() >= 1, "{stats}");
    let c002 = get("C002");
    assert_eq!((c002["chronic_management_rate"], c002["patient_satisfaction"]), ((0.0, 0.0), (0.0, 0.0)));
}

#[derive(Debug, Clone)]
enum RefOp {
    Apply { patient: u8, doctor: usize, listed: bool },
    Accept(usize),
    Cancel(usize),
    /// Minutes of clock.
    Wait(u32),
}

fn ref_op() -> impl Strategy<Value = RefOp> {
    prop_oneof![
        (0..30u8, 0..3usize, any::<bool>()).prop_map(|(patient, doctor, listed)| RefOp::Apply { patient, doctor, listed }),
        (0..20usize).prop_map(RefOp::Accept),
        (0..20usize).prop_map(RefOp::Cancel),
        (1..1800u32).prop_map(RefOp::Wait),
    ]
}

/// When a referral was applied, accepted and cancelled (from its events).
type Instants = (Option<i64>, Option<i64>, Option<i64>);

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
    /// Random up-referrals applied (with a disease code in the catalogue or
    /// not), accepted after random waits, or cancelled: accuracy and
    /// acceptance timeliness equal a recount from the raw events (when each
    /// was applied, accepted, cancelled) and the codes the history sent.
    #[test]
    fn referral_indicators_equal_a_recount_from_the_raw_events(ops in proptest::collection::vec(ref_op(), 1..40)) {
        let e = Engine::open(&manual()).unwrap();
        let data: Vec<Value> = ["DR001", "DR002", "DR003"].iter().flat_map(|d| DAYS.iter().map(move |day| json!({"doctor_id": d, "department_id": "D001", "date": day, "capacity": 6,
            "available_slots": [{"start_time": "08:00", "end_time": "11:30", "period": "上午"}]}))).collect();
        ok(&e, "sync-schedule", json!({"hospital_id": "H001", "schedule_data": data}));
        ok(&e, "referral-disease-add", json!({"code": "I25", "name": "慢性缺血性心脏病"}));
        let mut applied: Vec<(u64, bool)> = Vec::new();
        let mut now = "2024-10-29T09:00:00+08:00".to_string();
        for o in &ops {
            match o {
                RefOp::Apply { patient, doctor, listed } => {
                    let (doctor, code) = (["DR001", "DR002", "DR003"][*doctor], if *listed { "I25" } else { "J06" });
                    let body = json!({"institution_id": "C001", "patient_id": format!("PAT{patient}"), "reason": "胸痛待查", "hospital_id": "H001",
                        "doctor_id": doctor, "date": "2024-11-01", "period": "上午", "disease_code": code});
                    if let Ok(v) = e.call_value("outpatient-referral-apply", &body.to_string()) {
                        applied.push((v["referral_id"].as_u64().unwrap(), *listed));
                    }
                }
                RefOp::Accept(i) if !applied.is_empty() => {
                    let id = applied[i % applied.len()].0;
                    let _ = e.call_value("acceptance-info", &json!({"institution_id": "H001", "referral_id": id, "hospital_name": "县医院", "accept_doctor_id": "DR001", "accept_time": now}).to_string());
                }
                RefOp::Cancel(i) if !applied.is_empty() => {
                    let id = applied[i % applied.len()].0;
                    let _ = e.call_value("outpatient-referral-cancel", &json!({"institution_id": "C001", "referral_id": id, "reason": "患者放弃"}).to_string());
                }
                RefOp::Wait(m) => now = ok(&e, "advance-clock", json!({"seconds": m * 60}))["now"].as_str().unwrap().to_string(),
                _ => {}
            }
        }
        // The recount: each referral's application, acceptance and cancellation instants from the events.
        let events = ok(&e, "next-events", json!({"limit": 10000}));
        let mut lives: BTreeMap<u64, Instants> = BTreeMap::new();
        let ms = |at: &str| yilian_core::clock::parse_rfc3339(at).unwrap();
        for ev in events["events"].as_array().unwrap() {
            let Some(id) = ev["data"]["referral_id"].as_u64() else { continue };
            let l = lives.entry(id).or_default();
            let at = ms(ev["at"].as_str().unwrap());
            match ev["type"].as_str().unwrap() {
                "referral_applied" => l.0 = Some(at),
                "referral_accepted" => l.1 = l.1.or(Some(at)),
                "referral_cancelled" => l.2 = l.2.or(Some(at)),
                _ => {}
            }
        }
        let lives: Vec<_> = lives.into_values().filter(|l| l.0.is_some()).collect();
        prop_assert_eq!(lives.len(), applied.len());
        let listed = applied.iter().filter(|(_, l)| *l).count() as f64;
        let counted: Vec<_> = lives.iter().filter(|(_, acc, cancel)| !(acc.is_none() && cancel.is_some())).collect();
        let in_time = counted.iter().filter(|(at, acc, _)| acc.is_some_and(|a| a - at.unwrap() <= 24 * 3_600_000)).count() as f64;
        let all = json!({"date_from": "2024-10-29", "date_to": "2024-12-31", "ids": ["referral_accuracy", "referral_acceptance_timeliness"]});
        prop_assert_eq!(indicator(&e, None, all.clone(), "referral_accuracy"), (listed, applied.len() as f64));
        prop_assert_eq!(indicator(&e, None, all, "referral_acceptance_timeliness"), (in_time, counted.len() as f64));
    }
}
