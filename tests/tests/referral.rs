//! Referral, exam booking and consultation: what the vectors cannot say —
//! events routed to the right side, the slip's masking, durability across
//! reopen, and (property) that no sequence of pool and referral calls leaves
//! a referral showing a slot it does not hold, or a referral booking that no
//! referral owns; the same steps from four threads at once on a durable store,
//! and from four threads in a process killed with SIGKILL.

mod common;
use common::ok;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use yilian_core::{Engine, ErrorCode};

const RG_AM: &str = "RG-H001-DR001-20241030-08001130";
const RG_PM: &str = "RG-H001-DR001-20241030-13301700";

/// The catalogue and schedule the referral vectors start from (one source).
fn setup(e: &Engine) {
    let files = yilian_tests::vector_files();
    let (_, f) = files.iter().find(|(n, _)| n.contains("30_referral_outpatient")).expect("referral vectors");
    for st in f["cases"][0]["steps"].as_array().unwrap().iter().take(2) {
        ok(e, st["command"].as_str().unwrap(), st["request"].clone());
    }
}

fn manual() -> String {
    json!({"clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string()
}

fn err(e: &Engine, cmd: &str, req: Value) -> ErrorCode {
    e.call_value(cmd, &req.to_string()).expect_err(cmd).code()
}

fn apply(e: &Engine, patient: &str, slot: &str, hold: bool) -> Result<Value, yilian_core::Error> {
    e.call_value("outpatient-referral-apply", &apply_request(patient, slot, hold).to_string())
}

fn apply_request(patient: &str, slot: &str, hold: bool) -> Value {
    json!({"institution_id": "C001", "patient_id": patient, "slot_id": slot, "reason": "胸痛待查", "hold": hold,
        "patient": {"name": "张三", "id_number": "11010519491231002X", "phone": "13800138000"}})
}

fn events(e: &Engine) -> Vec<Value> {
    let v = ok(e, "next-events", json!({"limit": 10000}));
    let last = v["last_seq"].clone();
    ok(e, "next-events", json!({"ack": last, "limit": 1}));
    v["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_step_of_an_outpatient_referral_is_an_event_for_the_community_side() {
    let e = Engine::open(&manual()).unwrap();
    setup(&e);
    events(&e);
    apply(&e, "PAT001", RG_AM, false).unwrap();
    ok(&e, "acceptance-info", json!({"institution_id": "H001", "referral_id": 1, "hospital_name": "昆山市中西医结合医院", "accept_doctor_id": "DR001"}));
    ok(&e, "treatment-results", json!({"institution_id": "H001", "referral_id": 1, "diagnosis": "稳定型心绞痛", "advice": "社区随访"}));
    let evs = events(&e);
    let kinds: Vec<&str> = evs.iter().map(|v| v["type"].as_str().unwrap()).collect();
    // The outcome also plans the community's follow-up (C2), in the same commit.
    assert_eq!(kinds, ["booking_made", "referral_applied", "referral_accepted", "referral_outcome", "follow_up_planned"]);
    for ev in &evs[1..4] {
        assert_eq!(ev["clinic_id"], "C001");
        assert_eq!(ev["patient_id"], "PAT001");
        assert_eq!(ev["data"]["referral_id"], 1);
    }
    assert_eq!((evs[4]["clinic_id"].as_str(), evs[4]["data"]["kind"].as_str()), (Some("C001"), Some("after_referral")));
    assert_eq!(evs[4]["data"]["source"], json!({"case": "referral", "id": 1}));
    assert_eq!(evs[3]["data"]["outcome"]["diagnosis"], "稳定型心绞痛");
    // No personal data in events.
    let text = serde_json::to_string(&evs).unwrap();
    assert!(!text.contains("张三") && !text.contains("11010519491231002X") && !text.contains("13800138000"));
}

#[test]
fn the_slip_prints_the_session_and_the_masked_patient_only() {
    let e = Engine::open(&manual()).unwrap();
    setup(&e);
    apply(&e, "PAT001", RG_AM, false).unwrap();
    let t = ok(&e, "referral-slip", json!({"institution_id": "C001", "referral_id": 1}));
    let text = t["content"].as_str().unwrap();
    assert!(text.contains("双向转诊单（门诊上转）"), "{text}");
    assert!(text.contains("张*") && text.contains("110105********002X"), "{text}");
    assert!(!text.contains("张三") && !text.contains("11010519491231002X"));
    assert!(text.contains("2024-10-30") && text.contains("上午") && text.contains("08:00-11:30") && text.contains("DR001"));
    assert!(text.contains("[REF000000001]") && text.contains("后两位"));
    let svg = ok(&e, "referral-slip", json!({"referral_id": 1, "format": "svg"}));
    let svg = svg["content"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("张*") && !svg.contains("张三"));
    assert_eq!(err(&e, "referral-slip", json!({"institution_id": "C002", "referral_id": 1})), ErrorCode::ReferralForbidden);
    assert_eq!(err(&e, "referral-slip", json!({"referral_id": 1, "format": "docx"})), ErrorCode::InvalidField);
}

#[test]
fn the_queue_rule_is_a_plain_function_too() {
    assert_eq!(yilian_core::queue_after_current(5, Some(1)), 3);
    assert_eq!(yilian_core::queue_after_current(2, Some(1)), 2);
    assert_eq!(yilian_core::queue_after_current(0, None), 0);
    assert_eq!(yilian_core::queue_after_current(3, None), 1);
}

#[test]
fn a_retried_step_replays_and_a_failed_step_changes_nothing() {
    let e = Engine::open(&manual()).unwrap();
    setup(&e);
    apply(&e, "PAT001", RG_AM, false).unwrap();
    let req = json!({"institution_id": "H001", "referral_id": 1, "hospital_name": "院", "accept_doctor_id": "DR001", "request_id": "acc-1"});
    let first = ok(&e, "acceptance-info", req.clone());
    events(&e);
    assert_eq!(ok(&e, "acceptance-info", req), first);
    assert!(events(&e).is_empty(), "a replay emits nothing");
    // A refused step leaves the referral and the pool as they were.
    let before = ok(&e, "referral-view", json!({"referral_id": 1}));
    assert_eq!(err(&e, "outpatient-referral-cancel", json!({"institution_id": "C001", "referral_id": 1})), ErrorCode::ReferralInvalidTransition);
    assert_eq!(ok(&e, "referral-view", json!({"referral_id": 1})), before);
    assert!(events(&e).is_empty());
    e.check_invariants().unwrap();
}

#[test]
fn reopen_restores_every_case_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string();
    let views;
    {
        let e = Engine::open(&cfg).unwrap();
        setup(&e);
        ok(&e, "referral-disease-add", json!({"code": "I25", "name": "慢性缺血性心脏病"}));
        ok(&e, "referral-network-sync", json!({"communities": [{"clinic_id": "C001", "name": "花桥镇社区卫生服务中心"}]}));
        apply(&e, "PAT001", RG_AM, false).unwrap();
        ok(&e, "acceptance-info", json!({"institution_id": "H001", "referral_id": 1, "hospital_name": "院", "accept_doctor_id": "DR001"}));
        ok(
            &e,
            "inpatient-referral-apply",
            json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT002", "department_id": "D001", "expected_date": "2024-10-31",
                "reason": "再住院", "disease_code": "I25", "readmission": true}),
        );
        ok(&e, "inpatient-deposit", json!({"referral_id": 2, "payment_status": "paid"}));
        ok(&e, "inpatient-bed-reserve", json!({"institution_id": "H001", "referral_id": 2}));
        ok(&e, "inpatient-admit", json!({"institution_id": "H001", "admission_id": 1}));
        ok(&e, "down-referral-apply", json!({"institution_id": "H001", "patient_id": "PAT003", "clinic_id": "C001", "date": "2024-11-05", "reason": "康复"}));
        ok(
            &e,
            "exam-apply",
            json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT004", "items": [{"project_id": "P004", "method": "正位", "body_part": "胸部"}]}),
        );
        ok(&e, "exam-arrange", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "slot_id": "EX-H001-DEV004-20241030-09001000"}));
        ok(&e, "exam-payment", json!({"exam_id": 1, "payment_status": "paid"}));
        ok(&e, "exam-report", json!({"institution_id": "H001", "exam_id": 1, "item_no": 1, "conclusion": "未见异常"}));
        ok(&e, "consultation-apply", json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT005", "project": "会诊", "purpose": "用药"}));
        ok(&e, "consultation-review", json!({"institution_id": "H001", "consultation_id": 1, "decision": "reject", "reason": "资料不全"}));
        views = (
            ok(&e, "referral-query", json!({})),
            ok(&e, "exam-view", json!({"exam_id": 1})),
            ok(&e, "consultation-view", json!({"consultation_id": 1})),
            ok(&e, "admission-details", json!({"admission_id": 1})),
            ok(&e, "referral-disease-query", json!({})),
            ok(&e, "community-institutions", json!({})),
        );
        e.close();
    }
    let e = Engine::open(&cfg).unwrap();
    e.check_invariants().unwrap();
    assert_eq!(ok(&e, "referral-query", json!({})), views.0);
    assert_eq!(ok(&e, "exam-view", json!({"exam_id": 1})), views.1);
    assert_eq!(ok(&e, "consultation-view", json!({"consultation_id": 1})), views.2);
    assert_eq!(ok(&e, "admission-details", json!({"admission_id": 1})), views.3);
    assert_eq!(ok(&e, "referral-disease-query", json!({})), views.4);
    assert_eq!(ok(&e, "community-institutions", json!({})), views.5);
    // Ids continue after the recovered ones; steps go on from the recovered states.
    assert_eq!(apply(&e, "PAT006", RG_PM, false).unwrap()["referral_id"], 4);
    assert_eq!(
        ok(&e, "consultation-apply", json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": "PAT005", "project": "会诊", "purpose": "用药"}))
            ["consultation_id"],
        2
    );
    ok(&e, "treatment-results", json!({"institution_id": "H001", "referral_id": 1, "diagnosis": "心绞痛"}));
    assert_eq!(ok(&e, "inpatient-discharge", json!({"institution_id": "H001", "admission_id": 1}))["status"], "discharged");
}

// ---------------------------------------------------------------- property: no stale slot

#[derive(Debug, Clone)]
enum Op {
    Apply {
        patient: u8,
        pm: bool,
        hold: bool,
    },
    CancelReferral(u8),
    CancelSlot(u8),
    Advance(u16),
    Change {
        booking: u8,
        pm: bool,
    },
    StopService {
        pm: bool,
        mv: bool,
    },
    Accept(u8),
    Inpatient {
        patient: u8,
    },
    Deposit(u8),
    BedReserve(u8),
    BedCancelPool(u8),
    BedCancelWard(u8),
    Admit(u8),
    CancelInpatient(u8),
    ExamApply {
        patient: u8,
        items: u8,
    },
    ExamArrange {
        exam: u8,
        item: u8,
        slot: u8,
    },
    /// `items: None` is every item the step applies to; else `item_nos`.
    ExamPay {
        exam: u8,
        items: Option<Vec<u8>>,
    },
    ExamCancel {
        exam: u8,
        items: Option<Vec<u8>>,
    },
    ExamRefund {
        exam: u8,
        item: u8,
    },
    StopExam {
        late: bool,
        mv: bool,
    },
}

const EXAM_SLOTS: [&str; 3] = ["EX-H001-DEV001-20241030-09001000", "EX-H001-DEV001-20241030-10001100", "EX-H001-DEV004-20241030-09001000"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, any::<bool>(), any::<bool>()).prop_map(|(patient, pm, hold)| Op::Apply { patient, pm, hold }),
        2 => (1u8..10).prop_map(Op::CancelReferral),
        2 => (1u8..12).prop_map(Op::CancelSlot),
        2 => (0u16..1200).prop_map(Op::Advance),
        2 => (1u8..12, any::<bool>()).prop_map(|(booking, pm)| Op::Change { booking, pm }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(pm, mv)| Op::StopService { pm, mv }),
        1 => (1u8..10).prop_map(Op::Accept),
        2 => (6u8..9).prop_map(|patient| Op::Inpatient { patient }),
        2 => (1u8..10).prop_map(Op::Deposit),
        2 => (1u8..10).prop_map(Op::BedReserve),
        1 => (1u8..12).prop_map(Op::BedCancelPool),
        1 => (1u8..10).prop_map(Op::BedCancelWard),
        1 => (1u8..10).prop_map(Op::Admit),
        1 => (1u8..10).prop_map(Op::CancelInpatient),
        2 => (9u8..12, 1u8..4).prop_map(|(patient, items)| Op::ExamApply { patient, items }),
        4 => (1u8..4, 1u8..4, 0u8..3).prop_map(|(exam, item, slot)| Op::ExamArrange { exam, item, slot }),
        3 => (1u8..4, proptest::option::of(proptest::collection::vec(1u8..4, 1..4))).prop_map(|(exam, items)| Op::ExamPay { exam, items }),
        2 => (1u8..4, proptest::option::of(proptest::collection::vec(1u8..4, 1..4))).prop_map(|(exam, items)| Op::ExamCancel { exam, items }),
        1 => (1u8..4, 1u8..4).prop_map(|(exam, item)| Op::ExamRefund { exam, item }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(late, mv)| Op::StopExam { late, mv }),
    ]
}

fn run(e: &Engine, op: &Op) {
    step(e, op, true)
}

/// Runs `op`; `alone`: no other thread calls the engine, so a multi-item
/// step is also checked against the application before and after it.
fn step(e: &Engine, op: &Op, alone: bool) {
    let (cmd, req) = request(op);
    if let (true, Op::ExamPay { exam, items } | Op::ExamCancel { exam, items }) = (alone, op) {
        return multi_item_step(e, cmd, *exam, items.as_deref(), req);
    }
    // Refusals are expected; what matters is the state they leave.
    let out: Value = serde_json::from_str(&e.call(cmd, &req.to_string())).unwrap();
    if out["status"] == "error" {
        let family = out["numeric_code"].as_i64().unwrap() / 1000;
        assert!((1..=6).contains(&family), "{cmd}: unexpected {out}");
    }
}

/// The command and request `op` sends.
fn request(op: &Op) -> (&'static str, Value) {
    let b = |n: u8| format!("B{n:06}");
    let slot = |pm: bool| if pm { RG_PM } else { RG_AM };
    match op {
        Op::Apply { patient, pm, hold } => ("outpatient-referral-apply", apply_request(&format!("PAT{patient}"), slot(*pm), *hold)),
        Op::CancelReferral(r) => ("outpatient-referral-cancel", json!({"institution_id": "C001", "referral_id": r})),
        Op::CancelSlot(n) => ("cancel-slot", json!({"booking_id": b(*n)})),
        Op::Advance(s) => ("advance-clock", json!({"seconds": s})),
        Op::Change { booking, pm } => ("change-booking", json!({"booking_id": b(*booking), "slot_id": slot(*pm)})),
        Op::StopService { pm, mv } => (
            "stop-service",
            json!({"hospital_id": "H001", "doctor_id": "DR001", "stop_date": "2024-10-30", "time_slot": if *pm { "13:30-17:00" } else { "08:00-11:30" }, "action": if *mv { "move" } else { "cancel" }}),
        ),
        Op::Accept(r) => ("acceptance-info", json!({"institution_id": "H001", "referral_id": r, "hospital_name": "院", "accept_doctor_id": "DR001"})),
        Op::Inpatient { patient } => (
            "inpatient-referral-apply",
            json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": format!("PAT{patient}"), "department_id": "D001", "expected_date": "2024-10-31", "reason": "再住院", "disease_code": "I25", "readmission": true}),
        ),
        Op::Deposit(r) => ("inpatient-deposit", json!({"referral_id": r, "payment_status": "paid"})),
        Op::BedReserve(r) => ("inpatient-bed-reserve", json!({"institution_id": "H001", "referral_id": r})),
        Op::BedCancelPool(n) => ("bed-cancel", json!({"reservation_id": b(*n), "reason": "病区调整"})),
        Op::BedCancelWard(r) => ("inpatient-bed-cancel", json!({"institution_id": "H001", "referral_id": r, "reason": "床位调整"})),
        Op::Admit(r) => ("inpatient-admit", json!({"institution_id": "H001", "referral_id": r})),
        Op::CancelInpatient(r) => ("inpatient-referral-cancel", json!({"institution_id": "C001", "referral_id": r, "reason": "撤回"})),
        Op::ExamApply { patient, items } => {
            let all = [
                json!({"project_id": "P001", "method": "平扫", "body_part": "胸部"}),
                json!({"project_id": "P004", "method": "正位", "body_part": "胸部"}),
                json!({"project_id": "P001", "method": "增强", "body_part": "头颅"}),
            ];
            ("exam-apply", json!({"institution_id": "C001", "hospital_id": "H001", "patient_id": format!("PAT{patient}"), "items": all[..*items as usize]}))
        }
        Op::ExamArrange { exam, item, slot } => {
            ("exam-arrange", json!({"institution_id": "H001", "exam_id": exam, "item_no": item, "slot_id": EXAM_SLOTS[*slot as usize]}))
        }
        Op::ExamPay { exam, items } | Op::ExamCancel { exam, items } => {
            let mut req = json!({"institution_id": "C001", "exam_id": exam, "payment_status": "paid", "reason": "改期"});
            if let Some(list) = items {
                req["item_nos"] = json!(list);
            }
            let cmd = if matches!(op, Op::ExamPay { .. }) { "exam-payment" } else { "exam-cancel" };
            (cmd, req)
        }
        Op::ExamRefund { exam, item } => ("exam-refund", json!({"exam_id": exam, "item_no": item})),
        Op::StopExam { late, mv } => (
            "stop-service",
            json!({"hospital_id": "H001", "device_id": "DEV001", "stop_date": "2024-10-30", "time_slot": if *late { "10:00-11:00" } else { "09:00-10:00" }, "action": if *mv { "move" } else { "cancel" }}),
        ),
    }
}

/// A payment or cancellation of several exam items: all or nothing. Refused,
/// the application is exactly as before; done, every named item (or every
/// one the step applied to) took it.
fn multi_item_step(e: &Engine, cmd: &str, exam: u8, items: Option<&[u8]>, req: Value) {
    let before = e.call_value("exam-view", &json!({"exam_id": exam}).to_string()).ok();
    let out: Value = serde_json::from_str(&e.call(cmd, &req.to_string())).unwrap();
    let after = e.call_value("exam-view", &json!({"exam_id": exam}).to_string()).ok();
    let to = if cmd == "exam-payment" { "paid" } else { "cancelled" };
    if out["status"] == "error" {
        let family = out["numeric_code"].as_i64().unwrap() / 1000;
        assert!((1..=6).contains(&family), "{cmd}: unexpected {out}");
        assert_eq!(before, after, "{cmd} refused ({out}) but changed the application");
        return;
    }
    let (before, after) = (before.unwrap(), after.unwrap());
    let status = |v: &Value, n: u64| v["items"][(n - 1) as usize]["status"].as_str().unwrap().to_string();
    let named: Vec<u64> = match items {
        Some(list) => list.iter().map(|n| *n as u64).collect(),
        None => (1..=after["items"].as_array().unwrap().len() as u64).filter(|n| status(&before, *n) != status(&after, *n)).collect(),
    };
    assert!(!named.is_empty(), "{cmd} succeeded on no item");
    for n in named {
        assert_eq!(status(&after, n), to, "{cmd} item {n}: {after}");
    }
}

/// Every item of a list command, page by page.
fn every(e: &Engine, cmd: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let v = ok(e, cmd, json!({"page": page, "page_size": 200}));
        let items = v["items"].as_array().unwrap();
        all.extend(items.iter().cloned());
        if items.len() < 200 {
            return all;
        }
    }
    unreachable!()
}

/// Every slot a referral shows is held by its own active booking, for its
/// patient; every active referral-class booking is owned by a referral.
fn check(e: &Engine) {
    e.check_invariants().unwrap();
    let mut owned = HashSet::new();
    for rf in &every(e, "referral-query") {
        let Some(bid) = rf["booking"]["booking_id"].as_str() else { continue };
        owned.insert(bid.to_string());
        if let Some(slot) = rf.get("slot_id").and_then(Value::as_str) {
            let bk = ok(e, "booking-info", json!({"booking_id": bid}));
            assert!(matches!(bk["status"].as_str(), Some("booked" | "pre-booked" | "occupied" | "reserved")), "{rf}\n{bk}");
            assert_eq!(bk["slot_id"], slot, "{rf}\n{bk}");
            assert_eq!(bk["patient_id"], rf["patient_id"]);
            let si = ok(e, "slot-info", json!({"slot_id": slot}));
            assert!(si["booked"].as_u64().unwrap() + si["held"].as_u64().unwrap() >= 1);
            if bk["status"] == "pre-booked" {
                assert!(rf["status"] != "slot_released");
            }
        } else if ["applied", "accepted", "bed_reserved", "admitted"].contains(&rf["status"].as_str().unwrap()) {
            panic!("a slot-holding referral shows no slot: {rf}");
        }
    }
    // Every exam item shows only a slot its own booking holds; an item that
    // should hold a place and shows none is `slot_released`.
    for ex in &every(e, "exam-query") {
        for it in ex["items"].as_array().unwrap() {
            let Some(bid) = it["booking"]["booking_id"].as_str() else { continue };
            owned.insert(bid.to_string());
            if let Some(slot) = it.get("slot_id").and_then(Value::as_str) {
                let bk = ok(e, "booking-info", json!({"booking_id": bid}));
                assert!(matches!(bk["status"].as_str(), Some("booked" | "pre-booked")), "{it}\n{bk}");
                assert_eq!(bk["slot_id"], slot, "{it}\n{bk}");
                assert_eq!(bk["patient_id"], ex["patient_id"]);
                assert!(matches!(it["status"].as_str(), Some("arranged" | "paid")), "{it}");
                assert_eq!(it["status"] == "paid", bk["status"] == "booked", "{it}\n{bk}");
            } else {
                assert!(!matches!(it["status"].as_str(), Some("arranged" | "paid")), "an exam item holding a place shows no slot: {it}");
            }
        }
    }
    // No orphan: referral-class bookings that still hold a place belong to a referral or an exam item.
    for n in 1.. {
        let Ok(bk) = e.call_value("booking-info", &json!({"booking_id": format!("B{n:06}")}).to_string()) else { break };
        if bk["priority"] == "referral" && matches!(bk["status"].as_str(), Some("booked" | "pre-booked" | "occupied" | "reserved")) {
            assert!(owned.contains(&format!("B{n:06}")), "orphan referral booking {bk}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    #[test]
    fn no_referral_points_at_a_slot_it_does_not_hold(ops in proptest::collection::vec(op(), 1..40)) {
        let e = Engine::open(&manual()).unwrap();
        setup(&e);
        ok(&e, "referral-disease-add", json!({"code": "I25", "name": "慢性缺血性心脏病"}));
        for o in &ops {
            run(&e, o);
            check(&e);
        }
    }
}

fn exam_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (9u8..12, 1u8..4).prop_map(|(patient, items)| Op::ExamApply { patient, items }),
        5 => (1u8..3, 1u8..4, 0u8..3).prop_map(|(exam, item, slot)| Op::ExamArrange { exam, item, slot }),
        4 => (1u8..3, proptest::option::of(proptest::collection::vec(1u8..4, 1..4))).prop_map(|(exam, items)| Op::ExamPay { exam, items }),
        3 => (1u8..3, proptest::option::of(proptest::collection::vec(1u8..4, 1..4))).prop_map(|(exam, items)| Op::ExamCancel { exam, items }),
        1 => (1u8..3, 1u8..4).prop_map(|(exam, item)| Op::ExamRefund { exam, item }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(late, mv)| Op::StopExam { late, mv }),
        1 => (1u8..12).prop_map(Op::CancelSlot),
        1 => (0u16..1200).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// Two applications of three items each, then random arrangements and
    /// multi-item payments and cancellations among pool changes: every step
    /// is all or nothing, and no item points at a booking it does not own.
    #[test]
    fn multi_item_exam_steps_are_all_or_nothing(ops in proptest::collection::vec(exam_op(), 1..30)) {
        let e = Engine::open(&manual()).unwrap();
        setup(&e);
        run(&e, &Op::ExamApply { patient: 20, items: 3 });
        run(&e, &Op::ExamApply { patient: 21, items: 3 });
        for o in &ops {
            run(&e, o);
            check(&e);
        }
    }
}

/// The properties' catalogue and cases, with more places than their one or
/// two, so that several threads keep booking.
fn busy_setup(e: &Engine) {
    setup(e);
    ok(e, "referral-disease-add", json!({"code": "I25", "name": "慢性缺血性心脏病"}));
    ok(
        e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [
            {"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-30", "capacity": 8, "reserved_quota": 2, "available_slots": [{"start_time": "08:00", "end_time": "11:30", "period": "上午"}, {"start_time": "13:30", "end_time": "17:00", "period": "下午"}]},
            {"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": 4, "available_slots": [{"start_time": "09:00", "end_time": "10:00"}, {"start_time": "10:00", "end_time": "11:00"}]},
            {"device_id": "DEV004", "project_id": "P004", "date": "2024-10-30", "capacity": 4, "available_slots": [{"start_time": "09:00", "end_time": "10:00"}]}]}),
    );
}

/// Thread `t`'s endless, seeded stream of the properties' steps, without
/// stop-service (it closes the few slots for good; the properties cover it).
fn concurrent_ops(t: u8) -> impl Iterator<Item = Op> {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[t + 1; 32]));
    let ops = prop_oneof![op(), exam_op()];
    std::iter::repeat_with(move || ops.new_tree(&mut runner).unwrap().current()).filter(|o| !matches!(o, Op::StopService { .. } | Op::StopExam { .. }))
}

/// The properties' steps from four threads at once on one durable engine:
/// no call deadlocks (a watchdog ends the run after two minutes), every
/// refusal has a 1xxx–6xxx code, and afterwards no case shows a slot it does
/// not hold, no referral booking is orphaned, the pool's counts hold, and a
/// reopened store shows every case and booking the same.
#[test]
fn steps_from_four_threads_never_deadlock_or_leave_a_stale_slot() {
    const THREADS: u8 = 4;
    const STEPS: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let cfg = json!({"data_dir": dir.path(), "durable_sync": "normal", "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string();
    let e = Engine::open(&cfg).unwrap();
    busy_setup(&e);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (e, done) = (&e, done.clone());
            s.spawn(move || {
                for o in concurrent_ops(t).take(STEPS) {
                    step(e, &o, false);
                }
                done.send(()).unwrap();
            });
        }
        for _ in 0..THREADS {
            if finished.recv_timeout(std::time::Duration::from_secs(120)).is_err() {
                // The threads cannot be joined: end the run rather than hang CI.
                eprintln!("a thread made no progress for two minutes: deadlock");
                std::process::abort();
            }
        }
    });
    check(&e);
    let views = |e: &Engine| {
        let bookings: Vec<Value> = (1..).map_while(|n| e.call_value("booking-info", &json!({"booking_id": format!("B{n:06}")}).to_string()).ok()).collect();
        (every(e, "referral-query"), every(e, "exam-query"), bookings)
    };
    let before = views(&e);
    let done_steps = |statuses: &[&str]| -> usize {
        let all = before.0.iter().chain(before.1.iter().flat_map(|x| x["items"].as_array().unwrap()));
        all.filter(|x| statuses.contains(&x["status"].as_str().unwrap_or(""))).count()
    };
    println!("after the run: {} bookings, {} referrals, {} exam applications", before.2.len(), before.0.len(), before.1.len());
    assert!(before.2.len() > 20, "too few bookings were made to race");
    assert!(done_steps(&["accepted", "bed_reserved", "admitted", "cancelled", "paid", "arranged"]) > 0, "no case moved past its first state");
    let now = e.now_ms();
    e.close();
    let e = Engine::open(&cfg).unwrap();
    // The manual clock starts again at clock_start: move it to where it was.
    ok(&e, "advance-clock", json!({"seconds": (now - e.now_ms()) / 1000}));
    assert_eq!(e.now_ms(), now);
    check(&e);
    assert_eq!(views(&e), before, "the reopened store shows the cases and bookings differently");
}

// ---------------------------------------------------------------- S3: killed mid-journey

const CRASH_DIR: &str = "YILIAN_REFERRAL_CRASH_DIR";

/// The engine's own clock: without `advance-clock` no hold lapses during the
/// run, so the reopened store (whose clock starts again at `clock_start`)
/// sees every case as the child last did.
fn crash_cfg(dir: &str) -> String {
    json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00"}).to_string()
}

/// The child of `killed_mid_journey_loses_no_acknowledged_step`: the
/// properties' steps from four threads on one durable store, each step
/// printed once its call has returned (acknowledged), with its answer.
#[test]
#[ignore = "run by killed_mid_journey_loses_no_acknowledged_step as a child process"]
fn referral_crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let e = Engine::open(&crash_cfg(&dir)).unwrap();
    busy_setup(&e);
    println!("READY");
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let e = &e;
            s.spawn(move || {
                // Bounded, so a child the parent stops waiting for still ends.
                for o in concurrent_ops(t).filter(|o| !matches!(o, Op::Advance(_))).take(20_000) {
                    let (cmd, req) = request(&o);
                    if let Ok(answer) = e.call_value(cmd, &req.to_string()) {
                        println!("ACK\t{cmd}\t{req}\t{answer}");
                    }
                }
            });
        }
    });
}

/// S3 for the referral module: a process taking referral, inpatient and exam
/// steps from four threads is killed with SIGKILL. Reopened, the store shows
/// every case and item an acknowledged step created, each in the state that
/// step left it or one its state machine reaches from there (later steps may
/// have landed too), every acknowledged booking, every acknowledged slot
/// cancellation; no case points at a slot it does not hold and no referral
/// booking is orphaned (an interrupted apply's intent is undone on open).
#[test]
fn killed_mid_journey_loses_no_acknowledged_step() {
    use std::collections::HashMap;
    const ACKS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let mut child = yilian_tests::crash::start("referral_crash_child", CRASH_DIR, &d);
    let mut acked: Vec<(String, Value, Value)> = Vec::new();
    while let Some(line) = child.line() {
        let mut parts = line.splitn(4, '\t');
        if parts.next() != Some("ACK") {
            continue;
        }
        let (cmd, req, answer) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        acked.push((cmd.to_string(), serde_json::from_str(req).unwrap(), serde_json::from_str(answer).unwrap()));
        if acked.len() >= ACKS {
            break;
        }
    }
    child.kill();
    assert!(acked.len() >= ACKS, "the child acknowledged only {} steps", acked.len());

    let e = Engine::open(&crash_cfg(&d)).unwrap();
    check(&e);
    // Each machine's states reachable from each state (itself included).
    let machines = ok(&e, "referral-state-machines", json!({}));
    let reach = |machine: &str, from: &str, to: &str| -> bool {
        let m = machines["machines"].as_array().unwrap().iter().find(|m| m["name"] == machine).unwrap_or_else(|| panic!("no machine {machine}"));
        let mut seen = vec![from.to_string()];
        let mut i = 0;
        while i < seen.len() {
            for t in m["transitions"].as_array().unwrap() {
                let (f, n) = (t["from"].as_str().unwrap(), t["to"].as_str().unwrap());
                if f == seen[i] && !seen.iter().any(|s| s == n) {
                    seen.push(n.to_string());
                }
            }
            i += 1;
        }
        seen.iter().any(|s| s == to)
    };
    let referrals: HashMap<u64, Value> = every(&e, "referral-query").into_iter().map(|r| (r["referral_id"].as_u64().unwrap(), r)).collect();
    let exams: HashMap<u64, Value> = every(&e, "exam-query").into_iter().map(|x| (x["exam_id"].as_u64().unwrap(), x)).collect();
    let (mut cases, mut items, mut bookings) = (0, 0, 0);
    for (cmd, req, answer) in &acked {
        if let (Some(id), Some(status)) = (answer["referral_id"].as_u64(), answer["status"].as_str()) {
            let now = referrals.get(&id).unwrap_or_else(|| panic!("{cmd} acknowledged referral {id}; the reopened store has none"));
            let machine = format!("{}_referral", now["kind"].as_str().unwrap());
            assert!(reach(&machine, status, now["status"].as_str().unwrap()), "{cmd} left referral {id} {status}; reopened it is {}", now["status"]);
            cases += 1;
        }
        if let (Some(id), Some(list)) = (answer["exam_id"].as_u64(), answer["items"].as_array()) {
            let now = exams.get(&id).unwrap_or_else(|| panic!("{cmd} acknowledged exam {id}; the reopened store has none"));
            for it in list {
                let n = it["item_no"].as_u64().unwrap() as usize;
                let (was, is) = (it["status"].as_str().unwrap(), now["items"][n - 1]["status"].as_str().unwrap());
                assert!(reach("exam_item", was, is), "{cmd} left exam {id} item {n} {was}; reopened it is {is}");
                items += 1;
            }
        }
        for b in [&answer["booking_id"], &answer["booking"]["booking_id"]] {
            if let Some(bid) = b.as_str() {
                let bk = ok(&e, "booking-info", json!({"booking_id": bid}));
                if cmd == "cancel-slot" {
                    assert_eq!(bk["status"], "cancelled", "cancel-slot {req} was acknowledged");
                }
                bookings += 1;
            }
        }
    }
    assert!(cases > 0 && items > 0 && bookings > 0, "the acknowledged steps touched too little: {cases} cases, {items} items, {bookings} bookings");
    println!("referral crash: {} acknowledged steps ({cases} case, {items} item, {bookings} booking states), all in the reopened store", acked.len());
}
