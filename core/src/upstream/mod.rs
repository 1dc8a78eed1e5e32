//! Upstream hospitals: a mirror's transaction on a slot a hospital owns is
//! decided there (P11, #18 item 1: "预约交易 … 仍由医疗机构HIS系统提供").
//!
//! A community or platform engine configured with `upstream` hospitals
//! (`{"upstream": {"hospitals": {"H001": {base_url, app_id, secret, …}},
//! "deadline_seconds": 600}}`, each hospital's link the platform client's
//! settings) books a slot of such a hospital in four steps:
//! 1. **A tentative hold** in the local pool (`pre-book-slot`'s hold, so the
//!    mirror never sells the place twice while the hospital decides), and
//!    a **hand-off** row — durable, in the same store — naming the hospital,
//!    the local booking and the request id the hospital gets
//!    (`HO<hand-off number>`: a retry is the same request to it).
//! 2. **The hospital's interface** (`pre-book-slot`, `book-slot` or
//!    `submit-booking-request`, as the caller asked) called outside every
//!    lock, with the caller's body and that request id.
//! 3. **Its answer applied**: accepted, its booking id and registration
//!    number (`visit_no`) are kept with the hand-off, accepted wherever a
//!    booking id is (`hospital_booking_id`, or `booking_id` from the
//!    hospital itself), and the local hold is confirmed when the hospital
//!    booked; refused, the hold is released and the caller gets the
//!    hospital's code and both its messages.
//! 4. **Unreachable** (down, or slow past the link's timeout): the caller is
//!    told `pending` with the hand-off's id (`handoff-info`, and an event
//!    when it is decided); the due-work pass (`due.rs`) tries again with the
//!    same request id, backing off, until the hospital answers or the
//!    deadline passes — then the hold is released, the patient told
//!    (`handoff_failed`) and the hand-off flagged for reconciliation.
//!
//! A caller's retry with its own request id gets the hand-off's present
//! answer, and books nothing more. The hand-off row is written before the
//! hospital is called, so a mirror killed in between resumes the hand-off at
//! its next pass (the hospital replays its first answer to the same id).
//!
//! Lock order: the hand-off map is a leaf, never held across a pool call or
//! a network call.

use crate::clock::Millis;
use crate::domains::Domains;
use crate::error::{Error, ErrorCode, Result};
use crate::handoff::{Handoff, State, RETIRED, TABLE};
use crate::model::{format_booking_id, parse_booking_id};
use crate::principal::{Principal, Role};
use crate::request::Req;
use crate::store::Write;
use serde_json::{json, Map, Value};

mod reconcile;
pub(crate) use reconcile::{reconcile_due, schedule_deadlines_due};

/// The commands a mirror hands to the slot's hospital.
const HANDED: &[&str] = &["pre-book-slot", "book-slot", "submit-booking-request"];

/// Changes to a booking the hospital accepted: sent to the hospital first
/// (with its booking id), applied to the mirror only once it agreed. A
/// push from the hospital itself is applied to the mirror alone.
const FORWARDED: &[&str] = &["cancel-slot", "notify-cancel-booking", "payment-status", "sync-payment-status", "book-slot"];

/// The changes queued as a hand-off when the hospital is not reached (the
/// patient's wish to cancel stands; a payment is the caller's to retry).
const CANCELS: &[&str] = &["cancel-slot", "notify-cancel-booking"];

/// Writes a hand-off's row and waits for it (durable before it is acted on).
fn put(d: &Domains, h: &Handoff) -> Result<()> {
    if let Some(store) = &d.pool.store {
        store.wait(store.enqueue(vec![Write::put(TABLE, h.key(), h)]))?;
    }
    Ok(())
}

/// The upstream hospital owning `hospital_id`'s slots, if it is one.
fn is_upstream(d: &Domains, hospital_id: &str) -> bool {
    d.pool.cfg.upstream.as_ref().is_some_and(|u| u.hospitals.contains_key(hospital_id))
}

/// Calls `interface` at the hospital: its data, or its refusal (its own
/// code), or `PLATFORM_UNAVAILABLE`/`PLATFORM_TIMEOUT` when not reached.
#[cfg(feature = "client")]
pub(super) fn call_hospital(d: &Domains, hospital_id: &str, interface: &str, request: &Value) -> Result<Value> {
    let cfg = d.pool.cfg.upstream.as_ref().and_then(|u| u.hospitals.get(hospital_id)).ok_or_else(|| Error::new(ErrorCode::InvalidState))?;
    // On a thread of our own (spawned, not scoped: a scope, like reqwest's
    // blocking client, calls `thread::current()`, which a host's thread —
    // C, JNI, Python — would then keep until it exits; and the client panics
    // on an async runtime's thread).
    let client = d.links.get(hospital_id, cfg)?;
    let (interface, request) = (interface.to_string(), request.clone());
    match std::thread::Builder::new().name("yilian-upstream".into()).spawn(move || client.call(&interface, &request).map(|r| r.data)) {
        Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        Err(e) => Err(Error::storage(format!("cannot start a thread for the hospital's call: {e}"))),
    }
}

#[cfg(not(feature = "client"))]
pub(super) fn call_hospital(_: &Domains, _: &str, _: &str, _: &Value) -> Result<Value> {
    // Config refuses `upstream` in a build without the client; never reached.
    Err(Error::with(ErrorCode::ClientNotBuilt, "this build has no platform client (cargo feature `client`)", "本版本未编译平台客户端（编译特性 `client`）"))
}

/// Whether a failure means "not decided" (tried again) rather than the
/// hospital's word: not reached, an answer that is no envelope, a standby
/// or store failure there, or the same request still running there.
pub(super) fn unreached(e: &Error) -> bool {
    matches!(e.family(), crate::error::ErrorFamily::Storage | crate::error::ErrorFamily::Internal) || e.code() == ErrorCode::RequestInProgress
}

/// Runs a pool command as the engine's own principal on `body` (the local
/// half of a hand-off: the hold, its confirmation or release).
pub(super) fn local(d: &Domains, command: &str, body: Value) -> Result<Value> {
    (d.here)(d, &d.pool.cfg.principal, command, &body)
}

/// Routes a call before its handler: a transaction on an upstream
/// hospital's slot is handed to it (`Some(answer)`); a hospital's own
/// booking id is read as the local booking it names. `None`: run as usual.
pub(crate) fn route(d: &Domains, command: &str, who: &Principal, obj: &mut Map<String, Value>) -> Result<Option<Value>> {
    let Some(_) = &d.pool.cfg.upstream else { return Ok(None) };
    resolve_hospital_ids(d, who, obj)?;
    if obj.contains_key("booking_id") {
        return forward(d, command, who, obj);
    }
    if !HANDED.contains(&command) {
        return Ok(None);
    }
    let r = Req::new(obj, who);
    let slot = crate::pool::resolve_slot(&d.pool, &r, true)?;
    if !is_upstream(d, &slot.info.hospital_id) {
        return Ok(None);
    }
    let hospital = slot.info.hospital_id.clone();
    let slot_id = slot.info.slot_id.clone();
    hand_off(d, command, who, obj, hospital, slot_id).map(Some)
}

/// After a call ran (here or at the hospital): an upstream hospital's
/// schedule push is recorded (its deadline, `reconcile.rs`), and an answer
/// or event naming a booking handed to a hospital gets the hospital's ids.
/// (The push's mark is bookkeeping: a store that fails to keep it fails
/// every call after, which is how the caller hears of it.)
pub(crate) fn after(d: &Domains, command: &str, obj: &Map<String, Value>, answer: &mut Value) {
    if command == "sync-schedule" {
        if let Some(h) = obj.get("hospital_id").and_then(Value::as_str).filter(|h| is_upstream(d, h)) {
            let _ = reconcile::pushed(d, h);
        }
    }
    // Events of bookings handed to a hospital carry its ids too.
    if command == "next-events" {
        if let Some(events) = answer.get_mut("events").and_then(Value::as_array_mut) {
            events.iter_mut().for_each(|e| annotate(d, e));
        }
        return;
    }
    annotate(d, answer);
}

/// Adds the hospital's ids to an answer naming a booking handed to it
/// (`booking-info`, a cancellation, a payment): `hospital_id`'s
/// `hospital_booking_id` and `registration_no`, and the hand-off's id.
fn annotate(d: &Domains, answer: &mut Value) {
    let Some(m) = answer.as_object_mut() else { return };
    // A hand-off's own view, or an answer that already carries it.
    if m.contains_key("handoff") || m.contains_key("handoff_id") {
        return;
    }
    let Some(local) = m.get("booking_id").and_then(Value::as_str).and_then(parse_booking_id) else { return };
    let hs = d.upstream.handoffs.lock();
    let Some(h) = hs.by_booking.get(&local).and_then(|id| hs.by_id.get(id)) else { return };
    m.insert("hospital_booking_id".into(), h.hospital_booking_id.clone().into());
    m.insert("registration_no".into(), h.registration_no.clone().unwrap_or(Value::Null));
    m.insert("handoff_id".into(), h.handoff_id().into());
    m.insert("handoff_state".into(), h.state.as_str().into());
}

/// A change to a booking handed to a hospital goes to the hospital first:
/// `None` when it agreed (the mirror then applies it as usual), its
/// refusal, or for a payment `PLATFORM_UNAVAILABLE` / `PLATFORM_TIMEOUT`
/// with nothing changed (send it again, with the same request id). A
/// cancellation the hospital was not reached for is queued as a change
/// hand-off (`Some(pending)`: tried again like a booking's, applied here
/// once the hospital agreed). A booking still being decided, or moved
/// elsewhere, is not changed here.
fn forward(d: &Domains, command: &str, who: &Principal, obj: &Map<String, Value>) -> Result<Option<Value>> {
    let Some(local) = obj.get("booking_id").and_then(Value::as_str).and_then(parse_booking_id) else { return Ok(None) };
    let caller_request_id = obj.get("request_id").and_then(Value::as_str);
    let (h, change) = {
        let hs = d.upstream.handoffs.lock();
        // The caller's retry of a queued cancellation: its answer as it stands.
        if let Some(id) = caller_request_id.and_then(|r| hs.by_request.get(r)).filter(|id| hs.by_id.get(id).is_some_and(|c| c.of.is_some())) {
            let id = *id;
            drop(hs);
            return answer_of(d, id).map(Some);
        }
        match hs.by_booking.get(&local).and_then(|id| hs.by_id.get(id)) {
            Some(h) => (h.clone(), hs.changes.get(&local).copied()),
            None => return Ok(None),
        }
    };
    // The hospital's own push (its cancellation, its payment record): the mirror follows.
    if who.role == Role::Hospital && who.institution_id.as_deref() == Some(h.hospital_id.as_str()) {
        return Ok(None);
    }
    // Reads, other commands, and a booking the hospital never took: the mirror's own.
    let changes = FORWARDED.contains(&command) || command == "change-booking";
    if !changes || h.state == State::Refused || h.state == State::Failed {
        return Ok(None);
    }
    let cancels = CANCELS.contains(&command);
    if let Some(c) = change {
        if cancels {
            return answer_of(d, c).map(Some);
        }
    }
    if h.state == State::Pending || command == "change-booking" || change.is_some() {
        let (state, state_zh, hid) = match change.and_then(|c| d.upstream.handoffs.lock().by_id.get(&c).cloned()) {
            Some(c) => ("cancellation pending", "取消待医院应答", c.handoff_id()),
            None => (h.state.as_str(), h.state.as_zh(), h.handoff_id()),
        };
        return Err(Error::with(
            ErrorCode::InvalidState,
            format!(
                "booking {} is held at the upstream hospital {} ({hid}, {state}): change it there, or wait for its answer",
                format_booking_id(local),
                h.hospital_id,
            ),
            format!("预约 {} 由上级医院 {} 受理（{hid}，{state_zh}）：请在该院办理，或等待其应答", format_booking_id(local), h.hospital_id),
        ));
    }
    let theirs = h.hospital_booking_id.clone().ok_or_else(|| Error::new(ErrorCode::InvalidState))?;
    let mut request = obj.clone();
    request.insert("booking_id".into(), theirs.into());
    request.remove("hospital_booking_id");
    let request = Value::Object(request);
    match call_hospital(d, &h.hospital_id, command, &request) {
        Ok(_) => Ok(None),
        Err(e) if cancels && unreached(&e) => queue_change(d, &h, command, request, caller_request_id, e).map(Some),
        Err(e) => Err(e),
    }
}

/// A cancellation the hospital was not reached for, kept as a change
/// hand-off of `of`'s booking: durable, tried again with request id
/// `HO<its number>` by the due pass; the caller is told `pending`.
fn queue_change(d: &Domains, of: &Handoff, command: &str, mut request: Value, caller_request_id: Option<&str>, e: Error) -> Result<Value> {
    let now = d.pool.clock.now_ms();
    let deadline = d.pool.cfg.upstream.as_ref().map(|u| u.deadline_ms).unwrap_or(0);
    let h = {
        let mut hs = d.upstream.handoffs.lock();
        // A concurrent cancellation of the same booking queued first: its answer.
        if let Some(c) = hs.changes.get(&of.booking_id).copied() {
            drop(hs);
            return answer_of(d, c);
        }
        hs.next_id += 1;
        let id = hs.next_id;
        request["request_id"] = format!("HO{id:06}").into();
        let h = Handoff {
            id,
            hospital_id: of.hospital_id.clone(),
            command: command.to_string(),
            request,
            booking_id: of.booking_id,
            hold: None,
            slot_id: of.slot_id.clone(),
            of: Some(of.id),
            caller_request_id: caller_request_id.map(str::to_string),
            state: State::Pending,
            attempts: 1,
            created_ms: now,
            next_try_ms: now.saturating_add(backoff(1)).min(now.saturating_add(deadline)),
            deadline_ms: now.saturating_add(deadline),
            hospital_booking_id: of.hospital_booking_id.clone(),
            registration_no: of.registration_no.clone(),
            error: Some(e.to_envelope()),
            flagged: false,
            settled: None,
        };
        hs.index(h.clone());
        h
    };
    put(d, &h)?;
    answer_of(d, h.id)
}

/// How long after its `attempts`-th failed try a hand-off is tried again:
/// 1 s, 2 s, 4 s … at most a minute.
fn backoff(attempts: u32) -> Millis {
    1000i64.saturating_mul(1 << attempts.saturating_sub(1).min(6)).min(60_000)
}

/// `hospital_booking_id` (any caller), or `booking_id` sent by an upstream
/// hospital itself (in its own id space), becomes the local `booking_id`.
fn resolve_hospital_ids(d: &Domains, who: &Principal, obj: &mut Map<String, Value>) -> Result<()> {
    let from_hospital = (who.role == Role::Hospital).then_some(who.institution_id.as_deref()).flatten().filter(|h| is_upstream(d, h));
    let (key, theirs) = match (obj.get("hospital_booking_id"), from_hospital, obj.get("booking_id")) {
        (Some(Value::String(s)), _, _) => ("hospital_booking_id", s.clone()),
        (Some(_), _, _) => return Err(Error::invalid("hospital_booking_id", "must be a string")),
        (None, Some(_), Some(Value::String(s))) => ("booking_id", s.clone()),
        _ => return Ok(()),
    };
    let hs = d.upstream.handoffs.lock();
    let found: Vec<u64> = match from_hospital {
        Some(h) => hs.by_hospital_booking.get(&(h.to_string(), theirs.clone())).copied().into_iter().collect(),
        None => hs.by_hospital_booking.iter().filter(|((_, b), _)| *b == theirs).map(|(_, l)| *l).collect(),
    };
    drop(hs);
    match found.as_slice() {
        [local] => {
            obj.remove("hospital_booking_id");
            obj.insert("booking_id".into(), format_booking_id(*local).into());
            Ok(())
        }
        // A hospital naming a booking of the mirror's own numbering (not handed to it) is left as it is.
        [] if key == "booking_id" && parse_booking_id(&theirs).is_some() => Ok(()),
        [] => Err(Error::new(ErrorCode::BookingNotFound)),
        _ => Err(Error::invalid("hospital_booking_id", "more than one hospital has this booking id: give `hospital_id` with it (as that hospital)")),
    }
}

/// Steps 1–4 of the module doc for one call.
fn hand_off(d: &Domains, command: &str, who: &Principal, obj: &Map<String, Value>, hospital: String, slot_id: String) -> Result<Value> {
    let pool = &d.pool;
    let caller_request_id = obj.get("request_id").and_then(Value::as_str).map(str::to_string);
    // The hand-off's number, and the caller's request id claimed for it, at
    // once: a concurrent duplicate finds the claim.
    let id = {
        let mut hs = d.upstream.handoffs.lock();
        if let Some(existing) = caller_request_id.as_ref().and_then(|rid| hs.by_request.get(rid).copied()) {
            drop(hs);
            return answer_of(d, existing);
        }
        hs.next_id += 1;
        let id = hs.next_id;
        if let Some(rid) = &caller_request_id {
            hs.by_request.insert(rid.clone(), id);
        }
        id
    };
    let now = pool.clock.now_ms();
    let deadline = pool.cfg.upstream.as_ref().map(|u| u.deadline_ms).unwrap_or(0);
    let mut request = obj.clone();
    request.insert("request_id".into(), format!("HO{id:06}").into());
    let mut h = Handoff {
        id,
        hospital_id: hospital,
        command: command.to_string(),
        request: Value::Object(request),
        booking_id: 0,
        hold: None,
        slot_id: slot_id.clone(),
        of: None,
        caller_request_id: caller_request_id.clone(),
        state: State::Pending,
        attempts: 0,
        created_ms: now,
        next_try_ms: now,
        deadline_ms: now.saturating_add(deadline),
        hospital_booking_id: None,
        registration_no: None,
        error: None,
        flagged: false,
        settled: None,
    };
    // The tentative hold, as the engine itself, for the caller's patient and institution.
    let mut hold = obj.clone();
    hold.insert("request_id".into(), h.step_id("hold").into());
    hold.insert("slot_id".into(), slot_id.into());
    if let (None, Some(inst)) = (hold.get("clinic_id"), who.institution_id.as_deref().filter(|_| who.role == Role::Community)) {
        hold.insert("clinic_id".into(), inst.into());
    }
    h.hold = Some(Value::Object(hold));
    // 1. The hand-off, durable before anything is held: a crash from here
    //    on resumes it (the hold's request id finds a hold already made).
    d.upstream.handoffs.lock().index(h.clone());
    if let Err(e) = put(d, &h) {
        d.upstream.handoffs.lock().forget(id);
        return Err(e);
    }
    // 2. The hold; 3. the hospital.
    take_hold(d, id)?;
    attempt(d, id)?;
    answer_of(d, id)
}

/// Makes (or, resumed, finds) a hand-off's tentative hold and records its
/// booking. Refused here (full, a duplicate), the hand-off never reached
/// the hospital: it is forgotten and the caller gets the refusal (its retry
/// is then a new try).
fn take_hold(d: &Domains, id: u64) -> Result<()> {
    let Some(mut h) = d.upstream.handoffs.lock().by_id.get(&id).cloned() else { return Ok(()) };
    if h.booking_id != 0 || h.of.is_some() {
        return Ok(());
    }
    let held = local(d, "pre-book-slot", h.hold.clone().unwrap_or(Value::Null));
    let booking = held.as_ref().ok().and_then(|v| v.get("booking_id")).and_then(Value::as_str).and_then(parse_booking_id);
    match (held, booking) {
        (Ok(_), Some(b)) => {
            h.booking_id = b;
            store_state(d, &h)
        }
        (held, _) => {
            if let Some(store) = &d.pool.store {
                store.wait(store.enqueue(vec![Write::delete(TABLE, h.key())]))?;
            }
            d.upstream.handoffs.lock().forget(id);
            Err(held.err().unwrap_or_else(|| Error::storage("the tentative hold has no booking id")))
        }
    }
}

/// The caller's answer for a hand-off as it stands: the local booking
/// (with the hospital's ids) when accepted, the hospital's refusal, or
/// `pending`.
fn answer_of(d: &Domains, id: u64) -> Result<Value> {
    // Claimed, not yet recorded: the first call is still making its hold.
    let h = d.upstream.handoffs.lock().by_id.get(&id).cloned().ok_or_else(|| Error::new(ErrorCode::RequestInProgress))?;
    match h.state {
        State::Refused => {
            let e = h.error.clone().unwrap_or(Value::Null);
            let code = e.get("code").and_then(Value::as_str).and_then(ErrorCode::from_str_code).unwrap_or(ErrorCode::InvalidState);
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Err(Error::with(code, text("message"), text("message_zh")))
        }
        State::Failed if h.of.is_some() => Err(Error::with(
            ErrorCode::PlatformUnavailable,
            format!(
                "the hospital {} did not confirm the cancellation before the hand-off's deadline; the booking stands until reconciliation settles it ({})",
                h.hospital_id,
                h.handoff_id()
            ),
            format!("医院 {} 在转交期限内未确认取消；预约暂时保留，待对账时处理（{}）", h.hospital_id, h.handoff_id()),
        )),
        State::Failed => Err(Error::with(
            ErrorCode::PlatformUnavailable,
            format!(
                "the hospital {} did not answer before the hand-off's deadline; the place was released and the case left for reconciliation ({})",
                h.hospital_id,
                h.handoff_id()
            ),
            format!("医院 {} 在转交期限内未应答；号源已释放，该记录留待对账（{}）", h.hospital_id, h.handoff_id()),
        )),
        State::Pending => Ok(json!({
            "status": "pending",
            "booking_id": (h.booking_id != 0).then(|| format_booking_id(h.booking_id)),
            "handoff": h.view(&d.pool.cfg.tz),
        })),
        State::Accepted => {
            let mut v = local(d, "booking-info", json!({"booking_id": format_booking_id(h.booking_id)}))?;
            if let Some(m) = v.as_object_mut() {
                m.insert("hospital_booking_id".into(), h.hospital_booking_id.clone().into());
                m.insert("registration_no".into(), h.registration_no.clone().unwrap_or(Value::Null));
                m.insert("handoff".into(), h.view(&d.pool.cfg.tz));
            }
            Ok(v)
        }
    }
}

/// One try of a pending hand-off: calls the hospital and applies its word.
fn attempt(d: &Domains, id: u64) -> Result<()> {
    let h = {
        let mut hs = d.upstream.handoffs.lock();
        match hs.by_id.get(&id).cloned().filter(|h| h.state == State::Pending) {
            Some(h) if hs.in_flight.insert(id) => h,
            _ => return Ok(()),
        }
    };
    // Resumed before its hold was recorded: the hold first (never sent without one).
    let h = match h.booking_id == 0 && h.of.is_none() {
        true => match take_hold(d, id) {
            Ok(()) => d.upstream.handoffs.lock().by_id.get(&id).cloned().unwrap_or(h),
            Err(e) => {
                d.upstream.handoffs.lock().in_flight.remove(&id);
                // Refused here: forgotten (see `take_hold`); a store failure is the caller's.
                return if matches!(e.family(), crate::error::ErrorFamily::Storage) { Err(e) } else { Ok(()) };
            }
        },
        false => h,
    };
    let answer = call_hospital(d, &h.hospital_id, &h.command, &h.request);
    let r = apply(d, h, answer);
    d.upstream.handoffs.lock().in_flight.remove(&id);
    r
}

/// Applies the hospital's answer to a hand-off (see [`attempt`]).
fn apply(d: &Domains, h: Handoff, answer: Result<Value>) -> Result<()> {
    let now = d.pool.clock.now_ms();
    let mut h = h;
    h.attempts = h.attempts.saturating_add(1);
    match answer {
        Ok(data) => {
            h.state = State::Accepted;
            h.error = None;
            agreed(d, &mut h, &data);
            decide(d, &h, "handoff_accepted")
        }
        Err(e) if !unreached(&e) => {
            h.state = State::Refused;
            h.error = Some(e.to_envelope());
            // A refused booking's hold is released; a refused cancellation leaves the booking.
            if h.of.is_none() {
                let reason = format!("refused by the hospital: {}", e.code().as_str());
                let _ = local(d, "cancel-slot", json!({"booking_id": format_booking_id(h.booking_id), "reason": reason, "request_id": h.step_id("release")}));
            }
            decide(d, &h, "handoff_refused")
        }
        Err(e) => {
            h.error = Some(e.to_envelope());
            if now >= h.deadline_ms {
                return fail(d, h);
            }
            h.next_try_ms = now.saturating_add(backoff(h.attempts)).min(h.deadline_ms);
            store_state(d, &h)
        }
    }
}

/// The mirror's half of what the hospital agreed to (its answer `data`):
/// a booking's ids kept and its hold confirmed when the hospital booked;
/// a cancellation applied. What the mirror can no longer follow (the hold
/// lapsed meanwhile) is flagged for reconciliation.
pub(super) fn agreed(d: &Domains, h: &mut Handoff, data: &Value) {
    let local_id = format_booking_id(h.booking_id);
    let done = if h.of.is_some() {
        local(d, "cancel-slot", json!({"booking_id": local_id, "reason": "cancelled at the hospital", "request_id": h.step_id("cancel")}))
    } else {
        h.hospital_booking_id = data.get("booking_id").and_then(Value::as_str).map(str::to_string);
        h.registration_no = data.get("registration_no").or_else(|| data.get("visit_no")).cloned().filter(|v| !v.is_null());
        match data.get("status").and_then(Value::as_str) {
            Some("booked") => local(d, "book-slot", json!({"booking_id": local_id, "request_id": h.step_id("book")})),
            _ => Ok(Value::Null),
        }
    };
    if let Err(e) = done {
        h.flagged = true;
        h.error = Some(e.to_envelope());
    }
}

/// Past the deadline unanswered: a booking's hold is released; a
/// cancellation leaves the booking as it is. Either way the patient is
/// told and the case is left for reconciliation.
fn fail(d: &Domains, mut h: Handoff) -> Result<()> {
    h.state = State::Failed;
    h.flagged = true;
    if h.of.is_none() {
        let _ = local(
            d,
            "cancel-slot",
            json!({"booking_id": format_booking_id(h.booking_id), "reason": "the hospital did not answer before the deadline", "request_id": h.step_id("release")}),
        );
    }
    decide(d, &h, "handoff_failed")
}

/// Records a hand-off's decision, then tells the patient's booking (event
/// `kind`, with the patient and the booking institution as parties).
pub(super) fn decide(d: &Domains, h: &Handoff, kind: &'static str) -> Result<()> {
    store_state(d, h)?;
    let mut txn = crate::pool::Txn::default();
    let b = d.pool.booking_or_retired(h.booking_id).ok();
    d.pool.emit(&mut txn, kind, b.as_ref(), None, json!({"handoff": h.view(&d.pool.cfg.tz), "hospital_id": h.hospital_id}));
    let t = d.pool.enqueue(&mut txn);
    d.pool.settle(t, Vec::new())
}

pub(super) fn store_state(d: &Domains, h: &Handoff) -> Result<()> {
    d.upstream.handoffs.lock().index(h.clone());
    put(d, h)
}

/// The due work (`due.rs`): every pending hand-off whose next try is due is
/// tried again, or failed past its deadline. Returns how many were decided.
pub(crate) fn retry_due(d: &Domains, now: Millis) -> Result<u64> {
    if d.pool.cfg.upstream.is_none() {
        return Ok(0);
    }
    let due: Vec<(u64, bool)> =
        d.upstream.handoffs.lock().by_id.values().filter(|h| h.state == State::Pending && h.next_try_ms <= now).map(|h| (h.id, now >= h.deadline_ms)).collect();
    let mut decided = 0;
    for (id, past) in due {
        if past {
            // Resumed past its deadline before its hold was recorded: the hold
            // found (or refused and forgotten) first, then released as any other.
            if d.upstream.handoffs.lock().by_id.get(&id).is_some_and(|h| h.booking_id == 0 && h.of.is_none()) {
                if let Err(e) = take_hold(d, id) {
                    if matches!(e.family(), crate::error::ErrorFamily::Storage) {
                        return Err(e);
                    }
                    continue;
                }
            }
            let h = d.upstream.handoffs.lock().by_id.get(&id).cloned();
            if let Some(h) = h {
                fail(d, h)?;
                decided += 1;
            }
            continue;
        }
        attempt(d, id)?;
        if d.upstream.handoffs.lock().by_id.get(&id).is_some_and(|h| h.state != State::Pending) {
            decided += 1;
        }
    }
    Ok(decided)
}

/// Moves decided, unflagged hand-offs whose booking the pool retired out of
/// memory into `handoffs_retired` (the retirement pass, `due.rs`): memory
/// holds the live window's hand-offs, not all history. A retired one is
/// still read by its `handoff_id`; its caller's request id and the
/// hospital's booking id no longer name it (as a retired request id's
/// answer: past the window a retry is a new request).
pub(crate) fn retire(d: &Domains) -> Result<u64> {
    let Some(store) = &d.pool.store else { return Ok(0) };
    let candidates: Vec<Handoff> = {
        let hs = d.upstream.handoffs.lock();
        hs.by_id.values().filter(|h| h.state != State::Pending && !h.flagged && !hs.in_flight.contains(&h.id)).cloned().collect()
    };
    let old: Vec<Handoff> = candidates.into_iter().filter(|h| d.pool.bookings.with(h.booking_id, |_| ()).is_none()).collect();
    for page in old.chunks(512) {
        let writes = page.iter().flat_map(|h| [Write::delete(TABLE, h.key()), Write::put(RETIRED, h.key(), h)]).collect();
        store.wait(store.enqueue(writes))?;
        let mut hs = d.upstream.handoffs.lock();
        page.iter().for_each(|h| hs.forget(h.id));
    }
    Ok(old.len() as u64)
}

/// A hand-off by number: in memory, or retired to the store.
fn find(d: &Domains, id: u64) -> Result<Option<Handoff>> {
    if let Some(h) = d.upstream.handoffs.lock().by_id.get(&id) {
        return Ok(Some(h.clone()));
    }
    let Some(store) = &d.pool.store else { return Ok(None) };
    let key = crate::store::numbered_key(id);
    store.get(RETIRED, &key)?.map(|body| crate::store::parse_row(RETIRED, &key, &body)).transpose()
}

/// `handoff-info`: one hand-off by `handoff_id` or `booking_id`, or the
/// list of those in one state (`{"state": "pending" | … | "flagged"}`).
fn handoff_info(d: &Domains, r: &Req) -> Result<Value> {
    let tz = &d.pool.cfg.tz;
    let hs = d.upstream.handoffs.lock();
    let visible = |h: &Handoff| {
        r.who.is_platform() || d.pool.booking_or_retired(h.booking_id).ok().is_some_and(|b| b.clinic_id.as_deref() == r.who.institution_id.as_deref())
    };
    if let Some(s) = r.opt_str("handoff_id")? {
        let id =
            s.strip_prefix("HO").and_then(|n| n.parse::<u64>().ok()).ok_or_else(|| Error::invalid("handoff_id", "expected a hand-off id like HO000001"))?;
        drop(hs);
        let h = find(d, id)?.filter(|h| visible(h)).ok_or_else(|| Error::new(ErrorCode::HandoffNotFound))?;
        return Ok(h.view(tz));
    }
    if r.get("booking_id").is_some() {
        let b = r.booking_id()?;
        let h = hs.by_booking.get(&b).and_then(|id| hs.by_id.get(id)).filter(|h| visible(h)).ok_or_else(|| Error::new(ErrorCode::HandoffNotFound))?;
        return Ok(h.view(tz));
    }
    let keep: &dyn Fn(&Handoff) -> bool = match r.opt_str("state")? {
        None | Some("pending") => &|h| h.state == State::Pending,
        Some("accepted") => &|h| h.state == State::Accepted,
        Some("refused") => &|h| h.state == State::Refused,
        Some("failed") => &|h| h.state == State::Failed,
        Some("flagged") => &|h| h.flagged,
        Some(_) => {
            return Err(Error::invalid_zh(
                "state",
                "expected pending, accepted, refused, failed or flagged",
                "应为 `pending`、`accepted`、`refused`、`failed` 或 `flagged`",
            ))
        }
    };
    let list: Vec<Value> = hs.by_id.values().filter(|h| keep(h) && visible(h)).map(|h| h.view(tz)).collect();
    Ok(json!({"total": list.len(), "handoffs": list}))
}

crate::command::command_table! { pub(crate) COMMANDS: fn(&Domains, &Req) -> Result<Value>;
    "handoff-info", Query, NETWORK, BOOKER => handoff_info;
    "reconcile-upstream", Change, PARTIES, NONE => reconcile::reconcile_cmd;
}
