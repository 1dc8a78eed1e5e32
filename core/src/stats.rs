//! Statistics (P9) and recommendation (P10). Both only read.

use crate::error::{Error, Result};
use crate::model::*;
use crate::pool::{Pool, Slot};
use crate::request::Req;
use chrono::{Datelike, NaiveDate, Timelike, Weekday};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn hospitals_of(r: &Req) -> Result<Option<BTreeSet<String>>> {
    let mut set = BTreeSet::new();
    if let Some(h) = r.opt_str("hospital_id")? {
        set.insert(h.to_string());
    }
    for h in r.opt_array("hospital_ids")?.into_iter().flatten() {
        set.insert(h.as_str().ok_or_else(|| Error::invalid("hospital_ids", "must be an array of strings"))?.to_string());
    }
    Ok((!set.is_empty()).then_some(set))
}

#[derive(Default)]
struct Tally {
    slots: u32,
    closed: u32,
    capacity: u64,
    booked: u64,
    held: u64,
    remaining: u64,
}

impl Tally {
    fn add(&mut self, a: &crate::pool::Availability) {
        self.slots += 1;
        self.closed += a.closed as u32;
        self.capacity += a.capacity as u64;
        self.booked += a.booked as u64;
        self.held += a.held as u64;
        self.remaining += if a.closed { 0 } else { a.remaining as u64 };
    }
    fn json(&self) -> Value {
        let util = if self.capacity > 0 { (self.booked as f64) / (self.capacity as f64) } else { 0.0 };
        json!({"slots": self.slots, "closed": self.closed, "capacity": self.capacity, "booked": self.booked, "held": self.held, "remaining": self.remaining, "used": self.booked + self.held, "utilisation": round3(util)})
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `slot-statistics`: remaining and used per institution, department, kind and
/// day; device and bed utilisation; booking success rate.
pub fn statistics(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let hospitals = hospitals_of(r)?;
    let from = r.opt_date("date_from")?;
    let to = r.opt_date("date_to")?;
    let kind = r.opt_str("kind")?.map(SlotKind::parse).transpose()?;
    let now = pool.clock.now_ms();
    let table = pool.table.load();
    let cat = pool.catalog.data.read();
    let mut rows: BTreeMap<(String, String, &'static str, NaiveDate), Tally> = BTreeMap::new();
    let mut devices: BTreeMap<String, Tally> = BTreeMap::new();
    let mut beds: BTreeMap<(String, String), (u32, u32, u32)> = BTreeMap::new();
    let mut total = Tally::default();
    for s in table.slots.iter() {
        let i = &s.info;
        let in_range = i.kind == SlotKind::Bed || (from.is_none_or(|f| i.date >= f) && to.is_none_or(|t| i.date <= t));
        if !in_range || hospitals.as_ref().is_some_and(|h| !h.contains(&i.hospital_id)) || kind.is_some_and(|k| k != i.kind) {
            continue;
        }
        let st = s.state.lock();
        let a = s.availability(&st, now, &pool.cfg);
        let occupied = st.active.iter().filter(|id| pool.bookings.with(**id, |b| b.status == BookingStatus::Occupied).unwrap_or(false)).count() as u32;
        drop(st);
        let dept = i
            .department_id
            .clone()
            .or_else(|| i.project_id.as_ref().and_then(|p| cat.projects.get(p)).and_then(|p| p.department_id.clone()))
            .unwrap_or_default();
        rows.entry((i.hospital_id.clone(), dept.clone(), i.kind.as_str(), i.date)).or_default().add(&a);
        if let Some(d) = &i.device_id {
            devices.entry(d.clone()).or_default().add(&a);
        }
        if i.kind == SlotKind::Bed {
            let e = beds.entry((i.hospital_id.clone(), dept)).or_default();
            e.0 += 1;
            e.1 += occupied;
            e.2 += a.booked - occupied.min(a.booked);
        }
        total.add(&a);
    }
    let attempts = pool.metrics.total_attempts();
    let successes = pool.metrics.successes.get();
    Ok(json!({
        "rows": rows.into_iter().map(|((h, d, k, date), t)| {
            let mut v = t.json();
            v["hospital_id"] = h.into();
            v["department_id"] = d.into();
            v["kind"] = k.into();
            v["date"] = date.to_string().into();
            v
        }).collect::<Vec<_>>(),
        "devices": devices.into_iter().map(|(d, t)| { let mut v = t.json(); v["device_id"] = d.into(); v }).collect::<Vec<_>>(),
        "beds": beds.into_iter().map(|((h, d), (n, occ, res))| json!({"hospital_id": h, "department_id": d, "beds": n, "occupied": occ, "reserved": res, "utilisation": round3(if n > 0 { (occ + res) as f64 / n as f64 } else { 0.0 })})).collect::<Vec<_>>(),
        "total": total.json(),
        "booking_attempts": attempts,
        "booking_successes": successes,
        "booking_success_rate": round3(if attempts > 0 { successes as f64 / attempts as f64 } else { 0.0 }),
        "refused_full": pool.metrics.total_refused_full(),
    }))
}

/// `recommend-slots`: ranks open slots for a patient by urgency, preferred
/// times and the hospitals and departments of their history. Deterministic:
/// equal scores fall back to the earlier slot, then the slot id; every score
/// comes with the reasons that made it.
pub fn recommend(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let urgency = r.opt_str("urgency")?.map(Priority::parse).transpose()?.unwrap_or(Priority::Normal);
    let kind = r.opt_str("kind")?.map(SlotKind::parse).transpose()?;
    let project = r.opt_str("project_id")?;
    let department = r.opt_str("department_id")?;
    let doctor = r.opt_str("doctor_id")?;
    let hospitals = hospitals_of(r)?;
    let from = r.opt_date("date_from")?;
    let to = r.opt_date("date_to")?;
    let limit = r.opt_u64("limit")?.unwrap_or(5).clamp(1, 100) as usize;
    let prefs = match r.get("preferences") {
        None => Req::new(&EMPTY, r.who),
        Some(v) => r.sub(v, "preferences")?,
    };
    let (weekend, evening, morning) =
        (prefs.opt_bool("weekend")?.unwrap_or(false), prefs.opt_bool("evening")?.unwrap_or(false), prefs.opt_bool("morning")?.unwrap_or(false));
    let mut seen_h = BTreeSet::new();
    let mut seen_d = BTreeSet::new();
    for h in r.opt_array("history")?.into_iter().flatten() {
        let h = r.sub(h, "history[]")?;
        if let Some(x) = h.opt_str("hospital_id")? {
            seen_h.insert(x.to_string());
        }
        if let Some(x) = h.opt_str("department_id")? {
            seen_d.insert(x.to_string());
        }
    }
    let now = pool.clock.now_ms();
    let table = pool.table.load();
    let cat = pool.catalog.data.read();
    let horizon_ms = pool.cfg.release_days as f64 * 86_400_000.0;
    let mut scored: Vec<(f64, &Arc<Slot>, Vec<String>, u32)> = Vec::new();
    for s in table.slots.iter() {
        let i = &s.info;
        if i.kind == SlotKind::Bed
            || kind.is_some_and(|k| k != i.kind)
            || project.is_some_and(|p| i.project_id.as_deref() != Some(p))
            || doctor.is_some_and(|d| i.doctor_id.as_deref() != Some(d))
            || hospitals.as_ref().is_some_and(|h| !h.contains(&i.hospital_id))
            || from.is_some_and(|f| i.date < f)
            || to.is_some_and(|t| i.date > t)
            || s.start_ms <= now
            || now < s.opens_ms
        {
            continue;
        }
        let dept = i.department_id.clone().or_else(|| i.project_id.as_ref().and_then(|p| cat.projects.get(p)).and_then(|p| p.department_id.clone()));
        if department.is_some_and(|d| dept.as_deref() != Some(d)) {
            continue;
        }
        let st = s.state.lock();
        if st.closed || st.free_for(urgency) == 0 {
            continue;
        }
        let remaining = s.availability(&st, now, &pool.cfg).remaining;
        drop(st);
        let mut score = 0.0;
        let mut why = Vec::new();
        let soon = 1.0 - ((s.start_ms - now) as f64 / horizon_ms).clamp(0.0, 1.0);
        let w = if urgency > Priority::Referral { 60.0 } else { 20.0 };
        score += w * soon;
        why.push(format!("earliness {:.1} ({} urgency)", w * soon, urgency.as_str()));
        let local = chrono::DateTime::from_timestamp_millis(s.start_ms).unwrap_or_default().with_timezone(&pool.cfg.tz);
        if weekend && matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
            score += 20.0;
            why.push("weekend preferred +20".into());
        }
        if evening && local.hour() >= 17 {
            score += 20.0;
            why.push("evening preferred +20".into());
        }
        if morning && local.hour() < 12 {
            score += 10.0;
            why.push("morning preferred +10".into());
        }
        if seen_h.contains(&i.hospital_id) {
            score += 15.0;
            why.push("hospital in patient history +15".into());
        }
        if dept.as_ref().is_some_and(|d| seen_d.contains(d)) {
            score += 15.0;
            why.push("department in patient history +15".into());
        }
        if !crate::pool::is_tight(remaining, s.state.lock().capacity, &pool.cfg) {
            score += 5.0;
            why.push("not tight +5".into());
        }
        scored.push((score, s, why, remaining));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.start_ms.cmp(&b.1.start_ms)).then(a.1.info.slot_id.cmp(&b.1.info.slot_id)));
    let out: Vec<Value> = scored
        .into_iter()
        .take(limit)
        .map(|(score, s, why, remaining)| {
            json!({
                "slot_id": s.info.slot_id,
                "kind": s.info.kind.as_str(),
                "hospital_id": s.info.hospital_id,
                "department_id": s.info.department_id,
                "doctor_id": s.info.doctor_id,
                "project_id": s.info.project_id,
                "device_id": s.info.device_id,
                "date": s.info.date.to_string(),
                "time_slot": s.info.time_slot(),
                "remaining": remaining,
                "score": round3(score),
                "reasons": why,
            })
        })
        .collect();
    Ok(json!({"patient_id": r.opt_id("patient_id")?, "urgency": urgency.as_str(), "recommendations": out}))
}

static EMPTY: std::sync::LazyLock<serde_json::Map<String, Value>> = std::sync::LazyLock::new(serde_json::Map::new);
