//! The slot pool's commands (the source's 号源 interfaces and the functions
//! it describes without one, named in the same style), declared once in
//! `COMMANDS` for the registry, with the views of slots, bookings and events
//! they answer with. Requests are read through `request::Req`, whose `who`
//! is the principal the registry bound; the pool checks it with `Actor`.

use crate::clock::format_ms;
use crate::error::{Error, ErrorCode, Result};
use crate::model::*;
use crate::pool::{forbidden, resolve_slot, state_error, Answer, Pool, Reserve, Slot, Txn};
use crate::reply::Data;
use crate::request::{parse_time_slot, patient_of, Req};
use crate::views::{booking_view, event_view, slot_view, to_value};
use serde_json::{json, Value};

/// The slot pool's commands get the pool.
pub(crate) type PoolHandler = fn(&Pool, &Req) -> Result<Data>;

crate::command::command_table! { pub(crate) COMMANDS: PoolHandler;
    "sync-schedule", Change, HOSPITAL, HOSPITAL => |p, r| crate::schedule::sync_schedule(p, r).map(Data::from);
    "sync-catalog", Change, HOSPITAL, HOSPITAL => |p, r| crate::schedule::sync_catalog(p, r).map(Data::from);
    "real-time-schedule", Query, NETWORK, NONE => |p, r| crate::schedule::real_time_schedule(p, r).map(Data::from);
    "device-schedule", Query, NETWORK, NONE => |p, r| crate::schedule::device_schedule(p, r).map(Data::from);
    "device-info", Query, NETWORK, NONE => |p, r| crate::schedule::device_info(p, r).map(Data::from);
    "project-info", Query, NETWORK, NONE => |p, r| crate::schedule::project_info(p, r).map(Data::from);
    "real-time-slots", Query, NETWORK, NONE => |p, r| real_time_slots(p, r).map(Data::from);
    "appointment-slots", Query, NETWORK, NONE => |p, r| crate::schedule::appointment_slots(p, r).map(Data::from);
    "pre-book-slot", Change, NETWORK, BOOKER, Inline => |p, r| reserve_cmd(p, r, "pre-book-slot", true);
    "book-slot", Change, NETWORK, BOOKER, Inline => book_slot;
    // 预约申请 locks the place until it is paid: a hold that expires unpaid, as pre-book-slot's.
    "submit-booking-request", Change, NETWORK, BOOKER, Inline => |p, r| reserve_cmd(p, r, "submit-booking-request", true);
    "cancel-slot", Change, NETWORK, BOOKER, Inline => |p, r| cancel(p, r, "cancel-slot");
    "notify-cancel-booking", Change, NETWORK, BOOKER, Inline => |p, r| cancel(p, r, "notify-cancel-booking");
    "payment-status", Change, NETWORK, BOOKER, Inline => |p, r| payment(p, r, "payment-status");
    "sync-payment-status", Change, NETWORK, BOOKER, Inline => |p, r| payment(p, r, "sync-payment-status");
    "stop-service", Change, HOSPITAL, HOSPITAL => |p, r| crate::schedule::stop_service(p, r).map(Data::from);
    "change-booking", Change, NETWORK, BOOKER, Inline => change_booking;
    "waitlist-join", Change, NETWORK, BOOKER, Inline => waitlist_join;
    "waitlist-leave", Change, NETWORK, BOOKER, Inline => waitlist_leave;
    "reconcile-slots", Change, HOSPITAL, HOSPITAL => |p, r| crate::schedule::reconcile(p, r).map(Data::from);
    "slot-statistics", Query, READERS, NONE => |p, r| crate::stats::statistics(p, r).map(Data::from);
    "recommend-slots", Query, NETWORK, NONE => |p, r| crate::stats::recommend(p, r).map(Data::from);
    "bed-reserve", Change, NETWORK, BOOKER, Inline => bed_reserve;
    "bed-confirm", Change, NETWORK, BOOKER, Inline => |p, r| bed_step(p, r, "bed-confirm");
    "bed-cancel", Change, NETWORK, BOOKER, Inline => |p, r| bed_step(p, r, "bed-cancel");
    "bed-slots", Query, NETWORK, NONE => |p, r| bed_slots(p, r).map(Data::from);
    "bed-check", Query, NETWORK, NONE => |p, r| bed_check(p, r).map(Data::from);
    "booking-info", Query, NETWORK, BOOKER => |p, r| booking_info(p, r).map(Data::from);
    "slot-info", Query, NETWORK, NONE => |p, r| slot_info(p, r).map(Data::from);
    "expire-holds", Change, PARTIES, NONE => |p, _| Ok(json!({"expired": p.expire_all()?}).into());
    "next-events", Change, PARTIES, NONE => |p, r| next_events(p, r).map(Data::from);
    "advance-clock", Change, PARTIES, NONE => |p, r| advance_clock(p, r).map(Data::from);
    "audit-log", Query, READERS, NONE => |p, r| audit_log(p, r).map(Data::from);
    "audit-verify", Query, AUDITORS, NONE => |p, _| audit_verify(p).map(Data::from);
}

/// Who asks, as the audit trail records it: the bound principal's
/// institution and operator (else the request's `operator`) and the request id.
pub(crate) fn audit_context(command: &str, r: &Req) -> crate::audit::Context {
    crate::audit::Context {
        command: truncate(command, 64),
        institution: r.who.institution_id.clone(),
        operator: r.who.operator.clone().or_else(|| ["operator", "operator_id"].iter().find_map(|k| r.opt_id(k).ok().flatten())),
        request_id: r.opt_id("request_id").ok().flatten(),
    }
}

fn audit_log(pool: &Pool, r: &Req) -> Result<Value> {
    let store = pool.store.as_ref().ok_or_else(crate::audit::needs_store)?;
    let time = |k: &str| -> Result<Option<i64>> {
        r.opt_str(k)?.map(|s| crate::clock::parse_rfc3339(s).ok_or_else(|| Error::invalid(k, "expected RFC 3339, e.g. 2024-10-30T08:00:00+08:00"))).transpose()
    };
    // An institution reads only its own entries (S1); the platform and the
    // regulator read everyone's, or one institution's when they name it.
    let institution = match r.who.role {
        crate::principal::Role::Platform | crate::principal::Role::Regulator => {
            r.who.institution_id.clone().or(r.opt_str("institution_id")?.map(str::to_string))
        }
        _ => Some(r.who.institution_id.clone().unwrap_or_default()),
    };
    let filter = crate::audit::Filter {
        after_seq: r.opt_u64("after_seq")?.unwrap_or(0),
        since_ms: time("since")?,
        until_ms: time("until")?,
        institution,
        command: r.opt_str("command")?.map(str::to_string),
        kind: match r.opt_str("kind")? {
            None | Some("change") => None,
            Some(k @ ("read" | "refusal" | "all")) => Some(k.to_string()),
            Some(_) => return Err(Error::invalid_zh("kind", "expected change, read, refusal or all", "应为 `change`、`read`、`refusal` 或 `all`")),
        },
        limit: r.opt_u64("limit")?.unwrap_or(100).clamp(1, 1000) as usize,
    };
    let entries = crate::audit::read(store, &filter)?;
    Ok(json!({
        "entries": entries.iter().map(|e| crate::audit::view(e, &pool.cfg.tz)).collect::<Vec<_>>(),
        "last_seq": entries.last().map(|e| e.seq),
    }))
}

/// `audit-verify`: walks the whole trail and checks its hash chain (see
/// `audit.rs`): `{"ok", "entries", "unhashed_prefix", "first_broken": {"seq",
/// "reason", "message", "message_zh"} | null, "head"}`.
fn audit_verify(pool: &Pool) -> Result<Value> {
    let store = pool.store.as_ref().ok_or_else(crate::audit::needs_store)?;
    Ok(to_value(&crate::audit::verify(store)?))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

// ---------------------------------------------------------------- slot resolution

// ---------------------------------------------------------------- queries

fn real_time_slots(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let date = r.date("date")?;
    let ts = r.opt_str("time_slot")?;
    let project = r.opt_str("project_id")?;
    if project.is_none() && r.opt_str("doctor_id")?.is_none() && r.opt_str("device_id")?.is_none() && r.opt_str("slot_id")?.is_none() {
        return Err(Error::missing("project_id"));
    }
    let window = match ts {
        Some(t) => Some(parse_time_slot(t).ok_or_else(|| Error::invalid("time_slot", "expected HH:MM-HH:MM"))?),
        None => None,
    };
    let table = pool.table.load();
    // u64: a day of many large slots sums past u32.
    let mut total = 0u64;
    let mut capacity = 0u64;
    let mut tight = false;
    let mut slots = Vec::new();
    for idx in table.by_date.get(&date).into_iter().flatten() {
        let s = &table.slots[*idx as usize];
        let i = &s.info;
        let ok = project.is_none_or(|p| i.project_id.as_deref() == Some(p))
            && r.opt_str("device_id")?.is_none_or(|d| i.device_id.as_deref() == Some(d))
            && r.opt_str("doctor_id")?.is_none_or(|d| i.doctor_id.as_deref() == Some(d))
            && r.opt_str("slot_id")?.is_none_or(|d| i.slot_id == d)
            && window.is_none_or(|(a, b)| i.start_time == a && i.end_time == b);
        if !ok {
            continue;
        }
        let st = s.state.lock();
        let a = s.availability(&st, pool.clock.now_ms(), &pool.cfg);
        if !a.closed {
            total += u64::from(a.remaining);
            capacity += u64::from(a.capacity);
            tight |= a.tight;
        }
        slots.push(to_value(&slot_view(pool, s, &st)));
    }
    let mut out = json!({
        "date": date.to_string(),
        "available_slots": total,
        "capacity": capacity,
        "tight": tight && total > 0,
        "slots": slots,
    });
    if let Some(p) = project {
        out["project_id"] = p.into();
    }
    if let Some(t) = ts {
        out["time_slot"] = t.into();
    }
    if tight && total > 0 {
        out["notice"] = "号源紧张，请尽快确认".into();
    }
    Ok(out)
}

fn booking_info(pool: &Pool, r: &Req) -> Result<Value> {
    let b = pool.booking_or_retired(r.booking_id()?)?;
    let slot = pool.slot(b.slot_idx)?;
    if !r.actor().may_touch(&b, &slot) {
        return Err(forbidden());
    }
    Ok(to_value(&booking_view(pool, &b, &slot)))
}

fn slot_info(pool: &Pool, r: &Req) -> Result<Value> {
    let slot = resolve_slot(pool, r, false)?;
    let st = slot.state.lock();
    let mut v = to_value(&slot_view(pool, &slot, &st));
    let waitlist: Vec<Value> = st
        .waitlist
        .iter()
        .map(|w| json!({"waitlist_id": format_waitlist_id(w.id), "patient_id": w.patient_id, "clinic_id": w.clinic_id, "priority": w.priority.as_str(), "raised": w.raised, "joined_at": format_ms(w.joined_ms, &pool.cfg.tz)}))
        .collect();
    v["waitlist"] = waitlist.into();
    Ok(v)
}

// ---------------------------------------------------------------- transactions

fn reserve_cmd(pool: &Pool, r: &Req, command: &'static str, hold: bool) -> Result<Data> {
    let patient_id = r.opt_id_text("patient_id")?.ok_or_else(|| Error::missing("patient_id"))?;
    let clinic = r.booking_clinic();
    let priority = r.priority()?;
    let patient = patient_of(r)?;
    let slot = resolve_slot(pool, r, true)?;
    if slot.info.kind == SlotKind::Bed {
        return Err(Error::invalid("slot_id", "beds are reserved with bed-reserve"));
    }
    let project_id = r.opt_str("project_id")?.map(str::to_string);
    let reserve = Reserve {
        slot: slot.idx,
        patient_id: Id::new(&*patient_id),
        clinic_id: clinic.map(Id::new),
        priority,
        hold,
        patient,
        expected_date: None,
        reason: None,
        project_id,
        also: None,
    };
    pool.reserve(reserve, r.request_id()?, command, r.fingerprint(command), &|b, s| Answer::view(&booking_view(pool, b, s), r.who)).map(Answer::into_data)
}

fn book_slot(pool: &Pool, r: &Req) -> Result<Data> {
    if r.get("booking_id").is_none() {
        return reserve_cmd(pool, r, "book-slot", false);
    }
    // Confirming a hold made with pre-book-slot.
    let id = r.booking_id()?;
    let actor = r.actor();
    pool.with_booking(id, &actor, r.request_id()?, "book-slot", r.fingerprint("book-slot"), &mut |pool, slot, st, b, txn, now| {
        if b.status != BookingStatus::PreBooked {
            return Err(state_error(b));
        }
        pool.confirm_locked(slot, st, b, now, txn, "book-slot")?;
        Ok(Answer::view(&booking_view(pool, b, slot), r.who))
    })
    .map(Answer::into_data)
}

crate::reply::view_struct! {
    /// What a cancellation or a payment answers (fields in name order: `reply.rs`).
    struct StepView {
        pub booking_id: crate::short::Short,
        pub payment_status: &'static str,
        pub status: &'static str,
    }
}

impl crate::reply::View for StepView {
    /// It names no patient.
    fn open_to(&self, _: &crate::principal::Principal) -> bool {
        true
    }
    fn write_text(&self, out: &mut String) {
        self.write_json(out);
    }
}

fn step_view(r: &Req, b: &Booking, status: &'static str) -> Answer {
    Answer::view(&StepView { booking_id: crate::model::booking_id_text(b.id), payment_status: b.payment.as_str(), status }, r.who)
}

fn cancel(pool: &Pool, r: &Req, command: &'static str) -> Result<Data> {
    let id = r.booking_id()?;
    let reason: std::borrow::Cow<'static, str> = match r.opt_str("reason")? {
        Some(s) => s.to_string().into(),
        None => (if command == "notify-cancel-booking" { "cancelled by the booking institution" } else { "cancelled" }).into(),
    };
    let actor = r.actor();
    pool.with_booking(id, &actor, r.request_id()?, command, r.fingerprint(command), &mut |pool, slot, st, b, txn, now| {
        if slot.info.kind == SlotKind::Bed {
            return Err(Error::invalid("booking_id", "bed reservations are cancelled with bed-cancel and a reason"));
        }
        pool.cancel_locked(slot, st, b, reason.clone(), now, txn)?;
        if command == "notify-cancel-booking" {
            pool.emit(txn, "cancel_notified", Some(b), None, json!({"to": slot.info.hospital_id}));
        }
        Ok(step_view(r, b, "cancelled"))
    })
    .map(Answer::into_data)
}

fn payment(pool: &Pool, r: &Req, command: &'static str) -> Result<Data> {
    let id = r.booking_id()?;
    let status = PaymentStatus::parse(r.str("payment_status")?)?;
    let actor = r.actor();
    pool.with_booking(id, &actor, r.request_id()?, command, r.fingerprint(command), &mut |pool, slot, st, b, txn, now| {
        let before = b.payment;
        match status {
            PaymentStatus::Paid => {
                match b.status {
                    BookingStatus::Cancelled | BookingStatus::Expired => return Err(state_error(b)),
                    _ => {}
                }
                if b.payment == PaymentStatus::Refunded {
                    return Err(state_error(b));
                }
                // P5: payment turns a hold into a booking.
                pool.confirm_locked(slot, st, b, now, txn, command)?;
                b.payment = PaymentStatus::Paid;
            }
            PaymentStatus::Unpaid => {
                if b.payment != PaymentStatus::Unpaid {
                    return Err(Error::with(ErrorCode::InvalidState, "a paid or refunded booking cannot become unpaid", "已缴费或已退费的预约不能改为未缴费"));
                }
            }
            PaymentStatus::Refunded => {
                if b.status.is_active() {
                    return Err(Error::new(ErrorCode::RefundNotAllowed));
                }
                match b.payment {
                    PaymentStatus::Paid => b.payment = PaymentStatus::Refunded,
                    PaymentStatus::Refunded => {}
                    PaymentStatus::Unpaid => {
                        return Err(Error::with(ErrorCode::InvalidState, "nothing was paid, so nothing can be refunded", "未缴费，无法退费"))
                    }
                }
            }
        }
        if before != b.payment {
            pool.emit(txn, "payment_changed", Some(b), None, json!({"payment_status": b.payment.as_str(), "via": command}));
        }
        Ok(step_view(r, b, b.status.as_str()))
    })
    .map(Answer::into_data)
}

fn change_booking(pool: &Pool, r: &Req) -> Result<Data> {
    let id = r.booking_id()?;
    let target = resolve_slot(pool, r, true)?;
    let actor = r.actor();
    let reason = r.opt_str("reason")?.unwrap_or("changed at the patient's request");
    pool.change(id, target.idx, &actor, reason, r.request_id()?, r.fingerprint("change-booking"), &|b, s| to_value(&booking_view(pool, b, s)))
        .map(Answer::into_data)
}

fn waitlist_join(pool: &Pool, r: &Req) -> Result<Data> {
    let patient = r.id("patient_id")?;
    let slot = resolve_slot(pool, r, false)?;
    let clinic = r.booking_clinic().map(str::to_string);
    pool.join_waitlist(slot.idx, &patient, clinic, r.priority()?, r.request_id()?, r.fingerprint("waitlist-join")).map(Answer::into_data)
}

fn waitlist_leave(pool: &Pool, r: &Req) -> Result<Data> {
    let wid = r.id("waitlist_id")?;
    let wid = parse_waitlist_id(&wid).ok_or_else(|| Error::invalid("waitlist_id", "expected an id like W000001"))?;
    let actor = r.actor();
    pool.leave_waitlist(wid, &actor, r.request_id()?, r.fingerprint("waitlist-leave")).map(Answer::into_data)
}

// ---------------------------------------------------------------- beds

/// The day a bed request is about (`date`, else `expected_date`, else
/// today); never before today.
fn bed_date(pool: &Pool, r: &Req) -> Result<chrono::NaiveDate> {
    let (field, date) = match (r.opt_date("date")?, r.opt_date("expected_date")?) {
        (Some(d), _) => ("date", d),
        (None, Some(d)) => ("expected_date", d),
        (None, None) => return Ok(pool.today()),
    };
    if date < pool.today() {
        return Err(Error::invalid_zh(field, "is before today", "不能早于今天"));
    }
    Ok(date)
}

/// `bed-reserve` (预约床位): checks the bed is free on the day asked
/// (`date`, else `expected_date`, else today), then reserves it; the
/// reservation records that day.
fn bed_reserve(pool: &Pool, r: &Req) -> Result<Data> {
    let patient_id = r.opt_id_text("patient_id")?.ok_or_else(|| Error::missing("patient_id"))?;
    let date = bed_date(pool, r)?;
    let slot = match r.opt_str("slot_id")? {
        Some(id) => pool.slot_by_id(id)?,
        None => find_free_bed(pool, r, date)?,
    };
    if slot.info.kind != SlotKind::Bed {
        return Err(Error::invalid("slot_id", "not a bed"));
    }
    let reserve = Reserve {
        slot: slot.idx,
        patient_id: patient_id.into(),
        clinic_id: r.booking_clinic().map(Id::new),
        priority: r.priority()?,
        hold: false,
        patient: patient_of(r)?,
        expected_date: Some(date),
        reason: r.opt_str("reason")?.map(str::to_string),
        project_id: None,
        also: None,
    };
    pool.reserve(reserve, r.request_id()?, "bed-reserve", r.fingerprint("bed-reserve"), &|b, s| Answer::Json(bed_answer(pool, b, s, "reserved")))
        .map(Answer::into_data)
}

/// A bed reservation as the bed commands answer it: the booking, and the
/// bed's own status after the step (`reserved`, `occupied`, `available`).
fn bed_answer(pool: &Pool, b: &Booking, slot: &Slot, bed_status: &'static str) -> Value {
    let mut v = to_value(&booking_view(pool, b, slot));
    v["bed_status"] = bed_status.into();
    v
}

/// The beds a request names: ward (`department_id`), `bed_type`, `doctor_id`,
/// `bed_number`, `hospital_id`; by slot id.
fn matching_beds(pool: &Pool, r: &Req) -> Result<Vec<std::sync::Arc<Slot>>> {
    let hospital = r.opt_str("hospital_id")?;
    let dept = r.opt_str("department_id")?.or(r.opt_str("ward_id")?);
    let number = r.opt_id("bed_number")?;
    let btype = r.opt_str("bed_type")?;
    let doctor = r.opt_str("doctor_id")?;
    let table = pool.table.load();
    let mut beds: Vec<std::sync::Arc<Slot>> = table
        .slots
        .iter()
        .filter(|s| {
            let i = &s.info;
            i.kind == SlotKind::Bed
                && hospital.is_none_or(|h| i.hospital_id == h)
                && dept.is_none_or(|d| i.department_id.as_deref() == Some(d))
                && number.as_deref().is_none_or(|n| i.bed_number.as_deref() == Some(n))
                && btype.is_none_or(|t| i.bed_type.as_deref() == Some(t))
                && doctor.is_none_or(|d| i.doctor_id.as_deref() == Some(d))
        })
        .cloned()
        .collect();
    beds.sort_by(|a, b| a.info.slot_id.cmp(&b.info.slot_id));
    Ok(beds)
}

/// What a bed is on a day: `not_in_service` before its slot's date, else
/// `closed`, `available`, `occupied` (a patient admitted) or `reserved`.
/// Slot locked by the caller (bookings are read under it: lock order).
fn bed_status_on(pool: &Pool, slot: &Slot, st: &crate::pool::SlotState, date: chrono::NaiveDate) -> &'static str {
    let now = pool.clock.now_ms();
    if date < slot.info.date {
        "not_in_service"
    } else if st.closed {
        "closed"
    } else if slot.availability(st, now, &pool.cfg).remaining > 0 {
        "available"
    } else if st.active.iter().any(|id| pool.booking(*id).is_ok_and(|b| b.status == BookingStatus::Occupied)) {
        "occupied"
    } else {
        "reserved"
    }
}

/// One bed with its status on a day.
fn bed_row(pool: &Pool, slot: &Slot, date: chrono::NaiveDate) -> Value {
    let st = slot.state.lock();
    let status = bed_status_on(pool, slot, &st, date);
    let mut v = to_value(&crate::views::Place::of(slot));
    v["status"] = status.into();
    v["free"] = (status == "available").into();
    v
}

/// A bed by number, or the first bed free on `date` matching ward, type and doctor.
fn find_free_bed(pool: &Pool, r: &Req, date: chrono::NaiveDate) -> Result<std::sync::Arc<Slot>> {
    if r.opt_str("department_id")?.is_none() && r.opt_id("bed_number")?.is_none() {
        return Err(Error::missing("department_id"));
    }
    let candidates = matching_beds(pool, r)?;
    if candidates.is_empty() {
        return Err(Error::with(ErrorCode::SlotNotFound, "no bed matches the request", "没有符合条件的床位"));
    }
    // Free on the day; else one in service that day (refused as full), else the first.
    let status = |s: &Slot| bed_status_on(pool, s, &s.state.lock(), date);
    let pick = candidates.iter().find(|s| status(s) == "available").or_else(|| candidates.iter().find(|s| status(s) != "not_in_service"));
    Ok(pick.unwrap_or(&candidates[0]).clone())
}

/// `bed-slots` (获取床位号源): the beds free on a day (`date`, default
/// today) by hospital, ward, bed type and doctor; `all: true` lists every
/// matching bed with its status.
fn bed_slots(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let date = bed_date(pool, r)?;
    let all = r.opt_bool("all")?.unwrap_or(false);
    let rows: Vec<Value> = matching_beds(pool, r)?.iter().map(|s| bed_row(pool, s, date)).filter(|v| all || v["free"] == true).collect();
    let free = rows.iter().filter(|v| v["free"] == true).count();
    Ok(json!({"date": date.to_string(), "free": free, "beds": rows}))
}

/// `bed-check` (检查所选床位在指定日期是否可用): is this bed (`slot_id`, or
/// `bed_number` with the ward) free on `date` (default today)?
fn bed_check(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let date = bed_date(pool, r)?;
    let slot = match r.opt_str("slot_id")? {
        Some(id) => pool.slot_by_id(id)?,
        None => {
            if r.opt_id("bed_number")?.is_none() {
                return Err(Error::missing("slot_id"));
            }
            let mut beds = matching_beds(pool, r)?;
            match beds.len() {
                0 => return Err(Error::with(ErrorCode::SlotNotFound, "no bed matches the request", "没有符合条件的床位")),
                1 => beds.remove(0),
                _ => {
                    return Err(Error::with(
                        ErrorCode::AmbiguousSlot,
                        "several wards have a bed with this number; name the ward (department_id)",
                        "多个病区有该床位号，请指定病区（department_id）",
                    ))
                }
            }
        }
    };
    if slot.info.kind != SlotKind::Bed {
        return Err(Error::invalid("slot_id", "not a bed"));
    }
    let mut v = bed_row(pool, &slot, date);
    v["date"] = date.to_string().into();
    v["in_service_from"] = (*slot.date_str).into();
    Ok(v)
}

/// `bed-confirm` (确认床位预约: reserved → occupied, with the day it was
/// confirmed, `confirm_date` or today) and `bed-cancel` (→ the bed available
/// again, with the reason).
fn bed_step(pool: &Pool, r: &Req, command: &'static str) -> Result<Data> {
    let id = parse_booking_id(&r.id("reservation_id").or_else(|_| r.id("booking_id"))?)
        .ok_or_else(|| Error::invalid("reservation_id", "expected a reservation id like B000001"))?;
    let reason = r.opt_str("reason")?.map(str::to_string);
    if command == "bed-cancel" && reason.is_none() {
        return Err(Error::missing("reason"));
    }
    let confirmed = match r.opt_date("confirm_date")? {
        Some(d) if d > pool.today() => return Err(Error::invalid_zh("confirm_date", "is after today", "不能晚于今天")),
        Some(d) => d,
        None => pool.today(),
    };
    let actor = r.actor();
    pool.with_booking(id, &actor, r.request_id()?, command, r.fingerprint(command), &mut |pool, slot, st, b, txn, now| {
        if slot.info.kind != SlotKind::Bed {
            return Err(Error::invalid("reservation_id", "not a bed reservation"));
        }
        if command == "bed-confirm" {
            if b.status != BookingStatus::Booked {
                return Err(state_error(b));
            }
            b.status = BookingStatus::Occupied;
            b.confirmed_date = Some(confirmed);
            pool.emit(txn, "bed_occupied", Some(b), None, json!({"bed_number": slot.info.bed_number, "confirmed_date": confirmed.to_string()}));
        } else {
            pool.cancel_locked(slot, st, b, reason.clone().unwrap_or_default().into(), now, txn)?;
        }
        let _: &mut Txn = txn;
        let status = if command == "bed-confirm" {
            "occupied"
        } else {
            // The bed as it is now, read after the cancellation took this
            // booking off it (its own cell is locked here: it must not be
            // read again). A place freed while patients wait is set aside for them.
            bed_status_on(pool, slot, st, slot.info.date.max(pool.today()))
        };
        Ok(Answer::Json(bed_answer(pool, b, slot, status)))
    })
    .map(Answer::into_data)
}

// ---------------------------------------------------------------- events and engine

fn next_events(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let limit = r.opt_u64("limit")?.unwrap_or(100).clamp(1, 10_000) as usize;
    let ack = r.opt_u64("ack")?;
    let after = r.opt_u64("after")?;
    if r.who.owns_outbox_of(&pool.cfg.principal) {
        let (events, pending) = pool.next_events(ack, after, limit)?;
        let last = events.last().map(|e| e.seq);
        return Ok(json!({
            "events": events.iter().map(|e| event_view(pool, e)).collect::<Vec<_>>(),
            "last_seq": last,
            "pending": pending,
        }));
    }
    if ack.is_some() {
        return Err(Error::with(
            ErrorCode::Forbidden,
            "only the engine's host (its own principal) or the platform acknowledges events; another institution reads its own with `after`",
            "只有本引擎的宿主（其自身调用身份）或平台可以确认事件；其他机构请用 `after` 读取本机构的事件",
        ));
    }
    // Every pending event is looked at once: `pending` counts those `who`
    // may read, and the page is the first `limit` of them above `after`.
    const CHUNK: usize = 1_000;
    let (mut out, mut last, mut pending, mut cursor) = (Vec::new(), None, 0u64, None);
    loop {
        let (chunk, _) = pool.next_events(None, cursor, CHUNK)?;
        for e in &chunk {
            cursor = Some(e.seq);
            let v = event_view(pool, e);
            if !crate::views::event_visible_to(r.who, &v) {
                continue;
            }
            pending += 1;
            if out.len() < limit && after.is_none_or(|a| e.seq > a) {
                last = Some(e.seq);
                out.push(v);
            }
        }
        if chunk.len() < CHUNK {
            break;
        }
    }
    Ok(json!({"events": out, "last_seq": last, "pending": pending}))
}

/// The most one `advance-clock` moves the clock: 100 years of 365 days.
const MAX_ADVANCE_SECONDS: u64 = 100 * 365 * 86_400;

fn advance_clock(pool: &Pool, r: &Req) -> Result<Value> {
    if !pool.clock.is_manual() {
        return Err(Error::with(
            ErrorCode::InvalidState,
            "advance-clock needs {\"clock\":\"manual\"} in the config",
            "advance-clock 需要配置 {\"clock\":\"manual\"}",
        ));
    }
    // 0 to 100 years a call (README, Commands); the clock itself stops at 9999-01-01.
    let secs = r.opt_u64_in("seconds", 0, MAX_ADVANCE_SECONDS)?.ok_or_else(|| Error::missing("seconds"))?;
    if !pool.clock.advance(secs as i64 * 1000) {
        return Err(crate::clock::past_max("seconds"));
    }
    pool.nudge_timer();
    Ok(json!({"now": format_ms(pool.clock.now_ms(), &pool.cfg.tz)}))
}

// ---------------------------------------------------------------- the engine's own

/// What the engine's own commands read: the pool, the monitor and every
/// command's declaration (the registry hands them over).
pub(crate) struct EngineParts<'a> {
    pub pool: &'a Pool,
    pub monitor: &'a crate::monitor::Monitor,
    pub commands: &'a [crate::command::Decl],
    /// The due work, as data (`due.rs`, above this layer).
    pub due_work: Value,
}

crate::command::command_table! { pub(crate) ENGINE: fn(&EngineParts, &Req) -> Result<Value>;
    "engine-info", Query, READERS, NONE => engine_info;
    "access-rules", Query, EVERYONE, NONE => |e, _| Ok(access_rules(e.commands));
    "engine-metrics", Query, READERS, NONE => |e, r| crate::monitor::engine_metrics(e.monitor, r.opt_str("format")?);
}

fn engine_info(e: &EngineParts, r: &Req) -> Result<Value> {
    let pool = e.pool;
    let table = pool.table.load();
    let names: Vec<&str> = e.commands.iter().map(|c| c.name).collect();
    Ok(json!({
        "version": crate::VERSION,
        "now": format_ms(pool.clock.now_ms(), &pool.cfg.tz),
        "durable": pool.store.is_some(),
        // The database under the store: its kind and version (null in memory).
        "store": pool.store.as_ref().map(|s| json!({"database": s.database().kind, "version": s.database().version})),
        "role": pool.cfg.role.as_str(),
        "principal": r.who.view(),
        "slots": table.slots.len(),
        "commands": names,
        // What is due runs on the engine's own thread, or when the host calls `run-due`.
        "timer": pool.has_timer().then(|| json!({"every_ms": pool.cfg.timer_every.map(|d| d.as_millis() as u64)})),
        "due_work": e.due_work.clone(),
    }))
}

/// The role table as data: who may call what, and what each role may touch.
fn access_rules(commands: &[crate::command::Decl]) -> Value {
    let commands: Vec<Value> = commands
        .iter()
        .map(|c| {
            json!({
                "command": c.name,
                "kind": if c.kind == crate::command::Kind::Query { "query" } else { "change" },
                "roles": c.roles.names(),
                "acting_fields": c.acting,
            })
        })
        .collect();
    json!({"roles": crate::principal::roles_view(), "commands": commands})
}

/// capacity = booked + held + remaining for every slot; counts agree with bookings.
pub fn check_invariants(pool: &Pool) -> Result<()> {
    let table = pool.table.load();
    // Each doctor's day: its sequence and the numbers its active bookings hold.
    let mut days: Vec<(std::sync::Arc<crate::pool::VisitQueue>, Vec<u32>)> = Vec::new();
    for slot in table.slots.iter() {
        let st = slot.state.lock();
        let (mut booked, mut held, mut quota) = (0u32, 0u32, 0u32);
        let day = slot.visits.as_ref().map(|q| match days.iter().position(|(d, _)| std::sync::Arc::ptr_eq(d, q)) {
            Some(i) => i,
            None => {
                days.push((q.clone(), Vec::new()));
                days.len() - 1
            }
        });
        for id in st.active.iter() {
            let b = pool.booking(*id)?;
            if let (Some(i), Some(n)) = (day, b.visit_no) {
                days[i].1.push(n);
            }
            if !b.status.is_active() || b.slot_idx != slot.idx {
                return Err(Error::internal(format!("slot {} lists inactive booking {}", slot.info.slot_id, format_booking_id(*id))));
            }
            if b.status == BookingStatus::PreBooked {
                held += 1;
            } else {
                booked += 1;
            }
            quota += b.used_quota as u32;
        }
        // Retired bookings (past the retention window) are counted without
        // being listed.
        if booked + st.retired.booked != st.booked || held + st.set_aside != st.held || quota + st.retired.quota_used != st.quota_used {
            return Err(Error::internal(format!("slot {} counts disagree with its bookings", slot.info.slot_id)));
        }
        if st.booked + st.held > st.capacity {
            return Err(Error::internal(format!("slot {} is overbooked", slot.info.slot_id)));
        }
        if st.capacity != st.booked + st.held + st.remaining() {
            return Err(Error::internal(format!("slot {}: capacity != booked + held + remaining", slot.info.slot_id)));
        }
        // A finished closing left no booking behind but occupied beds.
        if st.closed && st.closing.is_none() {
            if let Some(id) = crate::schedule::booking_left_to_close(pool, &st) {
                return Err(Error::internal(format!("closed slot {} still holds booking {}", slot.info.slot_id, format_booking_id(id))));
            }
        }
    }
    for (q, mut ns) in days {
        ns.sort_unstable();
        if ns.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::internal(format!("two active bookings of one doctor's day hold the same visit number: {ns:?}")));
        }
        if q.numbers() != ns {
            return Err(Error::internal(format!("a doctor's day holds visit numbers {:?}, its active bookings {ns:?}", q.numbers())));
        }
    }
    // Collect first: a booking shard must never be held while a slot is locked.
    let mut active = Vec::new();
    pool.bookings.for_each(|id, b| {
        // A booking being retired is counted in its slot's `retired` already.
        if b.status.is_active() && !b.retired {
            active.push((*id, b.slot_idx));
        }
    });
    for (id, slot_idx) in active {
        let s = pool.slot(slot_idx)?;
        let listed = s.state.lock().active.contains(&id);
        // A booking may have moved, ended or been retired since the
        // collection: re-check it.
        let Ok(b) = pool.booking(id) else { continue };
        if !listed && b.status.is_active() && b.slot_idx == slot_idx {
            return Err(Error::internal(format!("active booking {} missing from its slot", format_booking_id(id))));
        }
    }
    Ok(())
}
