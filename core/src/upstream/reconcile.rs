//! Reconciliation the mirror starts with its upstream hospitals (#18 item 3:
//! "定期向各医疗机构发起剩余号源查询请求，校对剩余号源数量和已使用号源数量"),
//! and the watch on each hospital's daily schedule push ("在当天17:00前").
//!
//! **Reconciliation** (`reconcile-upstream`, and the due work every
//! `upstream.reconcile_every_seconds`, first at the engine's first pass),
//! per upstream hospital (one not reached at a step is reported, the rest
//! left for the next pass):
//! 1. every flagged hand-off of that hospital **settled** ([`settle`]),
//!    first, so what it undoes there is in the counts read next:
//!    - a booking the mirror gave up on (deadline passed), or booked there
//!      after the mirror's hold lapsed: its request sent again with the same
//!      request id — a hospital that booked it answers with that booking
//!      (replayed), one that did not books it now — and that booking
//!      cancelled there (`notify-cancel-booking`), so the hospital keeps no
//!      booking the mirror lacks; a refusal means the hospital has none;
//!    - a cancellation the hospital never confirmed: asked again; applied
//!      here once the hospital agrees, or left standing if it refuses.
//!
//!    A settled hand-off keeps what was found (`settled`) and is no longer
//!    flagged; the patient's booking hears `handoff_settled`.
//! 2. the hospital's `real-time-schedule` for every day from today on that
//!    the mirror holds its slots (at most [`DAYS`]);
//! 3. each of those slots here set to leave what the hospital says remains,
//!    less the places of hand-offs still undecided on it
//!    (`schedule::align_to_hospital`: drift reported per slot, the
//!    capacity repaired, never a booking).
//!
//! **The push deadline** (`upstream.schedule_deadline`, default 17:00 in
//! the engine's time zone): at the first pass past it each day, every
//! upstream hospital that has not pushed a schedule (`sync-schedule`
//! naming it) since that day's midnight raises `schedule_push_missing`.
//! The day checked is kept with the event (row `upstream_hospitals`), so a
//! restart neither repeats nor skips it.
//!
//! Lock order: `Pool::due` (one pass or reconciliation at a time) first;
//! then the hand-off map or the hospitals' marks, each a leaf, never held
//! across a pool call or a network call.

use super::{agreed, call_hospital, decide, local, unreached};
use crate::clock::{format_ms, Millis};
use crate::domains::Domains;
use crate::error::{Error, Result};
use crate::handoff::{Handoff, HospitalMarks, State, HOSPITALS};
use crate::model::format_booking_id;
use crate::request::Req;
use crate::schedule::Observed;
use crate::store::Write;
use chrono::{NaiveDate, TimeZone};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The most days ahead one reconciliation asks a hospital about.
pub(crate) const DAYS: usize = 14;

/// The engine clock's `now` in its time zone.
fn local_now(d: &Domains, now: Millis) -> chrono::DateTime<chrono_tz::Tz> {
    chrono::DateTime::from_timestamp_millis(now).unwrap_or_default().with_timezone(&d.pool.cfg.tz)
}

/// Midnight of `day` in the engine's time zone, in milliseconds.
fn midnight_ms(d: &Domains, day: NaiveDate) -> Millis {
    d.pool.cfg.tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN)).earliest().map(|t| t.timestamp_millis()).unwrap_or(Millis::MIN)
}

fn mark_row(hospital: &str, m: &HospitalMarks) -> Write {
    Write::put(HOSPITALS, hospital.to_string(), m)
}

/// Changes what is kept of `hospital` and writes it (durably, waited for).
fn update_marks(d: &Domains, hospital: &str, f: impl FnOnce(&mut HospitalMarks)) -> Result<()> {
    let row = {
        let mut marks = d.upstream.hospitals.lock();
        let m = marks.entry(hospital.to_string()).or_default();
        f(m);
        mark_row(hospital, m)
    };
    if let Some(store) = &d.pool.store {
        store.wait(store.enqueue(vec![row]))?;
    }
    Ok(())
}

/// A schedule of upstream `hospital` was pushed here (by it, or for it).
pub(super) fn pushed(d: &Domains, hospital: &str) -> Result<()> {
    let now = d.pool.clock.now_ms();
    update_marks(d, hospital, |m| m.pushed_ms = Some(now))
}

/// Due work: the push deadline (see the module doc). Returns how many
/// hospitals were found late.
pub(crate) fn schedule_deadlines_due(d: &Domains, now: Millis) -> Result<u64> {
    let Some(u) = &d.pool.cfg.upstream else { return Ok(0) };
    let Some(deadline) = u.schedule_deadline else { return Ok(0) };
    let local = local_now(d, now);
    let today = local.date_naive();
    if local.time() < deadline {
        return Ok(0);
    }
    let since = midnight_ms(d, today);
    let mut txn = crate::pool::Txn::default();
    let mut late = 0;
    {
        let mut marks = d.upstream.hospitals.lock();
        for hospital in u.hospitals.keys() {
            let m = marks.entry(hospital.clone()).or_default();
            if m.deadline_checked == Some(today) {
                continue;
            }
            m.deadline_checked = Some(today);
            if m.pushed_ms.is_none_or(|p| p < since) {
                late += 1;
                let data = json!({
                    "hospital_id": hospital,
                    "date": today.to_string(),
                    "deadline": deadline.format("%H:%M").to_string(),
                    "last_push_at": m.pushed_ms.map(|p| format_ms(p, &d.pool.cfg.tz)),
                });
                d.pool.emit(&mut txn, "schedule_push_missing", None, None, data);
            }
            if d.pool.store.is_some() {
                txn.writes.push(mark_row(hospital, m));
            }
        }
    }
    let t = d.pool.enqueue(&mut txn);
    d.pool.settle(t, Vec::new())?;
    Ok(late)
}

/// Due work: reconciliation with every upstream hospital, every
/// `reconcile_every_seconds` of real time. Returns how many hospitals were
/// reached.
pub(crate) fn reconcile_due(d: &Domains, _now: Millis) -> Result<u64> {
    let Some(every) = d.pool.cfg.upstream.as_ref().and_then(|u| u.reconcile_every) else { return Ok(0) };
    {
        let mut at = d.upstream.reconciled_at.lock();
        if at.is_some_and(|t| t.elapsed() < every) {
            return Ok(0);
        }
        *at = Some(std::time::Instant::now());
    }
    let mut reached = 0;
    for hospital in hospitals(d) {
        if reconcile_one(d, &hospital)?["reached"] == true {
            reached += 1;
        }
    }
    Ok(reached)
}

fn hospitals(d: &Domains) -> Vec<String> {
    d.pool.cfg.upstream.as_ref().map(|u| u.hospitals.keys().cloned().collect()).unwrap_or_default()
}

/// `reconcile-upstream`: reconciles now with one upstream hospital
/// (`hospital_id`) or all of them; each one's drift, repairs and settled
/// hand-offs.
pub(super) fn reconcile_cmd(d: &Domains, r: &Req) -> Result<Value> {
    d.pool.check_open()?;
    let all = hospitals(d);
    let which = match r.opt_str("hospital_id")? {
        Some(h) if all.iter().any(|x| x == h) => vec![h.to_string()],
        Some(_) => return Err(Error::invalid_zh("hospital_id", "is not an upstream hospital of this engine", "不是本引擎配置的上级医院")),
        None => all,
    };
    let _one = d.pool.due.lock();
    let mut out = Vec::new();
    for h in which {
        out.push(reconcile_one(d, &h)?);
    }
    Ok(json!({"hospitals": out}))
}

/// Steps 1–3 of the module doc for one hospital. A hospital not reached
/// is an answer (`"reached": false` with the error), not a failure; a
/// failure here (the store) is.
fn reconcile_one(d: &Domains, hospital: &str) -> Result<Value> {
    let now = d.pool.clock.now_ms();
    // Flagged hand-offs first: what they undo at the hospital is then in its counts.
    let flagged: Vec<Handoff> = d.upstream.handoffs.lock().by_id.values().filter(|h| h.flagged && h.hospital_id == hospital).cloned().collect();
    let (mut settled, mut left) = (Vec::new(), 0);
    for h in flagged {
        match settle(d, h)? {
            Some(v) => settled.push(v),
            None => left += 1,
        }
    }
    let dates = crate::schedule::hospital_dates(&d.pool, hospital, local_now(d, now).date_naive(), DAYS);
    let mut observed = BTreeMap::new();
    for date in &dates {
        match call_hospital(d, hospital, "real-time-schedule", &json!({"hospital_id": hospital, "date": date.to_string()})) {
            Ok(v) => read_schedule(&v, &mut observed),
            Err(e) => return Ok(json!({"hospital_id": hospital, "reached": false, "error": e.to_envelope(), "settled": settled, "still_flagged": left})),
        }
    }
    let pending: BTreeMap<String, u32> = {
        let hs = d.upstream.handoffs.lock();
        let mut p = BTreeMap::new();
        for h in hs.by_id.values().filter(|h| h.state == State::Pending && h.of.is_none() && h.hospital_id == hospital) {
            *p.entry(h.slot_id.clone()).or_default() += 1;
        }
        p
    };
    let mut out = crate::schedule::align_to_hospital(&d.pool, hospital, &dates, &observed, &pending)?;
    update_marks(d, hospital, |m| m.reconciled_ms = Some(now))?;
    out["reached"] = true.into();
    out["days"] = dates.iter().map(|d| d.to_string()).collect::<Vec<_>>().into();
    out["settled"] = settled.into();
    out["still_flagged"] = left.into();
    Ok(out)
}

/// The slots of a `real-time-schedule` answer (groups of `available_slots`,
/// each with its `slot_id`, `remaining` and `capacity`).
fn read_schedule(v: &Value, into: &mut BTreeMap<String, Observed>) {
    let groups = v.as_array().map(Vec::as_slice).unwrap_or_default();
    for s in groups.iter().filter_map(|g| g.get("available_slots").and_then(Value::as_array)).flatten() {
        let (Some(id), Some(remaining)) = (s.get("slot_id").and_then(Value::as_str), s.get("remaining").and_then(Value::as_u64)) else { continue };
        let capacity = s.get("capacity").and_then(Value::as_u64).map(|c| c.min(u32::MAX as u64) as u32);
        into.insert(id.to_string(), Observed { remaining: remaining.min(u32::MAX as u64) as u32, capacity });
    }
}

/// Settles one flagged hand-off at its hospital (see the module doc):
/// its view once settled, `None` when the hospital was not reached (left
/// flagged for the next reconciliation).
fn settle(d: &Domains, h: Handoff) -> Result<Option<Value>> {
    if !d.upstream.handoffs.lock().in_flight.insert(h.id) {
        return Ok(None);
    }
    let r = settle_here(d, h.clone());
    d.upstream.handoffs.lock().in_flight.remove(&h.id);
    r
}

fn settle_here(d: &Domains, mut h: Handoff) -> Result<Option<Value>> {
    let outcome = if h.of.is_some() {
        // A cancellation never confirmed: asked again (the same request id).
        match call_hospital(d, &h.hospital_id, &h.command, &h.request) {
            Ok(data) => {
                h.state = State::Accepted;
                agreed(d, &mut h, &data);
                json!({"outcome": "cancelled"})
            }
            Err(e) if unreached(&e) => return Ok(None),
            Err(e) => json!({"outcome": "cancellation_refused", "error": e.to_envelope()}),
        }
    } else {
        // The hospital's booking, if it has one: the accepted answer kept,
        // or the request sent again with its request id.
        let theirs = match (h.state, h.hospital_booking_id.clone()) {
            (State::Accepted, Some(b)) => Some(b),
            _ => match call_hospital(d, &h.hospital_id, &h.command, &h.request) {
                Ok(data) => data.get("booking_id").and_then(Value::as_str).map(str::to_string),
                Err(e) if unreached(&e) => return Ok(None),
                Err(_) => None,
            },
        };
        match theirs {
            None => json!({"outcome": "not_at_hospital"}),
            Some(b) => {
                let cancel = json!({"booking_id": b, "request_id": format!("{}-S", h.handoff_id()), "reason": "the mirror gave this booking up (reconciliation)"});
                match call_hospital(d, &h.hospital_id, "notify-cancel-booking", &cancel) {
                    Ok(_) => json!({"outcome": "cancelled_at_hospital", "hospital_booking_id": b}),
                    Err(e) if unreached(&e) => return Ok(None),
                    // Already ended there (cancelled, expired): nothing is left to undo.
                    Err(e) => json!({"outcome": "ended_at_hospital", "hospital_booking_id": b, "error": e.to_envelope()}),
                }
            }
        }
    };
    // A booking the hospital accepted but the mirror lost: its local hold, if any is left, goes too.
    if h.of.is_none() && h.state == State::Accepted {
        let _ = local(d, "cancel-slot", json!({"booking_id": format_booking_id(h.booking_id), "reason": "settled at reconciliation"}));
    }
    let mut settled = outcome;
    settled["at"] = format_ms(d.pool.clock.now_ms(), &d.pool.cfg.tz).into();
    h.flagged = false;
    h.settled = Some(settled);
    decide(d, &h, "handoff_settled")?;
    Ok(Some(h.view(&d.pool.cfg.tz)))
}
