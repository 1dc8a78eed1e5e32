//! Property test: random command sequences against a simple sequential model
//! of the pool; every answer and every count must agree.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::json;
use yilian_core::{Engine, ErrorCode, HoldOptions};

const TTL_MIN: i64 = 15;

#[derive(Debug, Clone)]
enum Op {
    Hold(usize, usize),
    Book(usize, usize),
    Confirm(usize),
    Cancel(usize),
    Pay(usize),
    Refund(usize),
    Advance(i64),
    /// Durable runs: close the engine and open the store again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..4usize).prop_map(|(s, p)| Op::Hold(s, p)),
        2 => (0..3usize, 0..4usize).prop_map(|(s, p)| Op::Book(s, p)),
        2 => (0..16usize).prop_map(Op::Confirm),
        2 => (0..16usize).prop_map(Op::Cancel),
        2 => (0..16usize).prop_map(Op::Pay),
        1 => (0..16usize).prop_map(Op::Refund),
        1 => (1..20i64).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Held(i64),
    Booked,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone)]
struct MB {
    slot: usize,
    patient: usize,
    st: St,
    paid: bool,
    refunded: bool,
}

struct Model {
    caps: [u32; 3],
    /// (start, end) minutes after the clock's start; slots 0 and 1 overlap, slot 2 does not.
    times: [(i64, i64); 3],
    now: i64,
    bs: Vec<MB>,
}

impl Model {
    fn expire(&mut self) {
        for b in &mut self.bs {
            if let St::Held(e) = b.st {
                if e <= self.now {
                    b.st = St::Expired;
                }
            }
        }
    }
    fn active(b: &MB) -> bool {
        matches!(b.st, St::Held(_) | St::Booked)
    }
    fn used(&self, s: usize) -> u32 {
        self.bs.iter().filter(|b| b.slot == s && Self::active(b)).count() as u32
    }
    fn reserve(&mut self, s: usize, p: usize, hold: bool) -> Result<u64, ErrorCode> {
        self.expire();
        if self.used(s) >= self.caps[s] {
            return Err(ErrorCode::SlotFull);
        }
        if self.now >= self.times[s].0 {
            return Err(ErrorCode::SlotInPast);
        }
        for b in self.bs.iter().filter(|b| b.patient == p && Self::active(b)) {
            if b.slot == s {
                return Err(ErrorCode::DuplicateBooking);
            }
            let (a, c) = (self.times[s], self.times[b.slot]);
            if a.0 < c.1 && c.0 < a.1 {
                return Err(ErrorCode::PatientOverlap);
            }
        }
        self.bs.push(MB { slot: s, patient: p, st: if hold { St::Held(self.now + TTL_MIN) } else { St::Booked }, paid: false, refunded: false });
        Ok(self.bs.len() as u64)
    }
    fn state_err(b: &MB) -> ErrorCode {
        match b.st {
            St::Cancelled => ErrorCode::AlreadyCancelled,
            St::Expired => ErrorCode::HoldExpired,
            _ => ErrorCode::InvalidState,
        }
    }
}

fn code(r: Result<impl Sized, yilian_core::Error>) -> Result<(), ErrorCode> {
    r.map(|_| ()).map_err(|e| e.code())
}

/// Runs `ops` on an engine and on the model: every answer and every count
/// must agree. With `dir`, the engine is durable and `Reopen` closes it and
/// opens the store again (the manual clock is moved back to the model's time).
/// Patient `p`'s id, its length chosen by `p` on both sides of the 23 bytes
/// an id is stored inline up to (`model::Id`): the rules must not depend on
/// where an id is kept.
fn patient_id(p: usize) -> String {
    let len = [2, 23, 24, 40][p % 4];
    format!("{:P<len$}", format!("P{p}"))
}

fn against_model(ops: Vec<Op>, dir: Option<&std::path::Path>) -> Result<(), TestCaseError> {
    let mut cfg = json!({"clock_start": "2024-10-30T08:00:00+08:00", "clock": "manual"});
    if let Some(d) = dir {
        cfg["data_dir"] = json!(d);
        cfg["durable_sync"] = json!("normal");
    }
    let cfg = cfg.to_string();
    let mut e = Engine::open(&cfg).unwrap();
    ok(
        &e,
        "sync-schedule",
        json!({"hospital_id": "H001", "schedule_data": [
        {"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "available_slots": [{"start_time": "10:00", "end_time": "11:00", "capacity": 1}]},
        {"device_id": "DEV002", "project_id": "P002", "date": "2024-10-30", "available_slots": [{"start_time": "10:30", "end_time": "11:30", "capacity": 2}]},
        {"device_id": "DEV003", "project_id": "P003", "date": "2024-10-30", "available_slots": [{"start_time": "14:00", "end_time": "15:00", "capacity": 3}]}]}),
    );
    let ids = ["EX-H001-DEV001-20241030-10001100", "EX-H001-DEV002-20241030-10301130", "EX-H001-DEV003-20241030-14001500"];
    let mut handles: Vec<_> = ids.iter().map(|s| e.slot_handle(s).unwrap()).collect();
    let mut m = Model { caps: [1, 2, 3], times: [(120, 180), (150, 210), (360, 420)], now: 0, bs: Vec::new() };
    for op in ops {
        match op {
            Op::Hold(s, p) | Op::Book(s, p) => {
                let hold = matches!(op, Op::Hold(..));
                let want = m.reserve(s, p, hold);
                let got = if hold {
                    e.hold(handles[s], &patient_id(p), &HoldOptions::default()).map(|h| h.booking_id)
                } else {
                    e.call_value("book-slot", &json!({"slot_id": ids[s], "patient_id": patient_id(p)}).to_string())
                        .map(|v| yilian_core::parse_booking_id(v["booking_id"].as_str().unwrap()).unwrap())
                };
                prop_assert_eq!(got.map_err(|e| e.code()), want, "{:?}", op);
            }
            Op::Confirm(i) | Op::Cancel(i) | Op::Pay(i) | Op::Refund(i) => {
                if m.bs.is_empty() {
                    continue;
                }
                let i = i % m.bs.len();
                let id = i as u64 + 1;
                m.expire();
                let b = m.bs[i].clone();
                let (want, got) = match op {
                    Op::Confirm(_) => {
                        let want = match b.st {
                            St::Held(_) => {
                                m.bs[i].st = St::Booked;
                                Ok(())
                            }
                            St::Booked => Ok(()),
                            _ => Err(Model::state_err(&b)),
                        };
                        (want, code(e.confirm(id, None)))
                    }
                    Op::Cancel(_) => {
                        let want = if Model::active(&b) {
                            m.bs[i].st = St::Cancelled;
                            Ok(())
                        } else {
                            Err(Model::state_err(&b))
                        };
                        (want, code(e.release(id, None)))
                    }
                    Op::Pay(_) => {
                        let want = if Model::active(&b) && !b.refunded {
                            m.bs[i].st = St::Booked;
                            m.bs[i].paid = true;
                            Ok(())
                        } else {
                            Err(Model::state_err(&b))
                        };
                        (want, code(e.call_value("payment-status", &json!({"booking_id": format!("B{id}"), "payment_status": "paid"}).to_string())))
                    }
                    _ => {
                        let want = if Model::active(&b) {
                            Err(ErrorCode::RefundNotAllowed)
                        } else if b.paid && !b.refunded {
                            m.bs[i].refunded = true;
                            Ok(())
                        } else if b.refunded {
                            Ok(())
                        } else {
                            Err(ErrorCode::InvalidState)
                        };
                        (want, code(e.call_value("payment-status", &json!({"booking_id": format!("B{id}"), "payment_status": "refunded"}).to_string())))
                    }
                };
                prop_assert_eq!(got, want, "{:?} on {:?}", op, b);
            }
            Op::Advance(min) => {
                m.now += min;
                e.advance_clock(min * 60_000).unwrap();
            }
            Op::Reopen => {
                if dir.is_none() {
                    continue;
                }
                e.close();
                e = Engine::open(&cfg).unwrap();
                e.advance_clock(m.now * 60_000).unwrap();
                handles = ids.iter().map(|s| e.slot_handle(s).unwrap()).collect();
            }
        }
        m.expire();
        for (s, h) in handles.iter().enumerate() {
            let a = e.availability(*h).unwrap();
            prop_assert_eq!(a.booked + a.held, m.used(s), "slot {}", s);
            prop_assert_eq!(a.capacity, a.booked + a.held + a.remaining);
        }
    }
    e.check_invariants().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        against_model(ops, None)?;
    }

    /// The same on the durable store, closed and reopened at random points:
    /// nothing acknowledged is lost, holds keep their expiry, ids continue.
    #[test]
    fn durable_engine_matches_model_across_reopens(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        against_model(ops, Some(dir.path()))?;
    }
}
