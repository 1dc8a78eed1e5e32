//! Schedules from the hospital (P2): the daily full sync and deltas, the
//! catalogue of projects and devices, stop-service (停诊) and reconciliation.

use crate::catalog::{Department, Device, Doctor, Hospital, Project};
use crate::error::{Error, ErrorCode, Result};
use crate::model::StopServiceAction;
use crate::model::*;
use crate::pool::resolve_slot;
use crate::pool::{Actor, Pool, Slot, SlotTable, Txn};
use crate::request::{parse_time, Req};
use crate::store::Write;
use crate::views::{booking_view, slot_view, to_value};
use chrono::{NaiveDate, NaiveTime};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One slot the hospital publishes.
struct Published {
    info: SlotInfo,
    capacity: u32,
    reserved_quota: Option<u32>,
    closed: bool,
}

fn parse_entry(pool: &Pool, hospital: &str, e: &Req, out: &mut Vec<Published>, devices: &mut BTreeMap<String, Option<String>>) -> Result<()> {
    let kind = match e.opt_str("kind")? {
        Some(k) => SlotKind::parse(k)?,
        None if e.get("beds").is_some() => SlotKind::Bed,
        None if e.get("device_id").is_some() => SlotKind::Exam,
        None if e.get("doctor_id").is_some() || e.get("department_id").is_some() => SlotKind::Registration,
        None => return Err(Error::missing("schedule_data[].device_id")),
    };
    let entry_capacity = e.opt_u32("capacity")?;
    let entry_quota = e.opt_u32("reserved_quota")?;
    let department = e.opt_str("department_id")?.map(str::to_string);
    let doctor = e.opt_str("doctor_id")?.map(str::to_string);
    if kind == SlotKind::Bed {
        let department = department.ok_or_else(|| Error::missing("schedule_data[].department_id"))?;
        let date = e
            .opt_date("date")?
            .unwrap_or_else(|| chrono::DateTime::from_timestamp_millis(pool.clock.now_ms()).unwrap_or_default().with_timezone(&pool.cfg.tz).date_naive());
        for bed in e.array("beds")? {
            let b = e.sub(bed, "beds[]")?;
            let number = b.id("bed_number")?;
            let info = SlotInfo {
                slot_id: SlotInfo::make_id(SlotKind::Bed, hospital, &format!("{department}-{number}"), date, NaiveTime::MIN, NaiveTime::MIN),
                kind,
                hospital_id: hospital.to_string(),
                department_id: Some(department.clone()),
                doctor_id: b.opt_str("doctor_id")?.map(str::to_string).or_else(|| doctor.clone()),
                project_id: None,
                device_id: None,
                date,
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::MIN,
                period: None,
                bed_number: Some(number),
                bed_type: b.opt_str("bed_type")?.map(str::to_string),
            };
            out.push(Published { info, capacity: 1, reserved_quota: b.opt_u32("reserved_quota")?.or(entry_quota), closed: is_closed(&b)? });
        }
        return Ok(());
    }
    let date = e.date("date")?;
    let device = e.opt_str("device_id")?.map(str::to_string);
    let entry_project = e.opt_str("project_id")?.map(str::to_string);
    if kind == SlotKind::Exam {
        let d = device.clone().ok_or_else(|| Error::missing("schedule_data[].device_id"))?;
        let known = pool.catalog.device_project(&d);
        devices.entry(d).or_insert_with(|| entry_project.clone().or(known));
    } else if doctor.is_none() && department.is_none() {
        return Err(Error::missing("schedule_data[].doctor_id"));
    }
    let windows = e.opt_array("available_slots")?.or(e.opt_array("periods")?).ok_or_else(|| Error::missing("schedule_data[].available_slots"))?;
    for w in windows {
        let w = e.sub(w, "available_slots[]")?;
        let start = parse_time(w.str("start_time")?).ok_or_else(|| Error::invalid("start_time", "expected HH:MM"))?;
        let end = parse_time(w.str("end_time")?).ok_or_else(|| Error::invalid("end_time", "expected HH:MM"))?;
        if end <= start {
            return Err(Error::invalid("end_time", "must be after start_time"));
        }
        let project = w
            .opt_str("project_id")?
            .map(str::to_string)
            .or_else(|| entry_project.clone())
            .or_else(|| device.as_ref().and_then(|d| devices.get(d).cloned().flatten()));
        let resource = match kind {
            SlotKind::Exam => device.clone().unwrap_or_default(),
            _ => doctor.clone().or_else(|| department.clone()).unwrap_or_default(),
        };
        let info = SlotInfo {
            slot_id: SlotInfo::make_id(kind, hospital, &resource, date, start, end),
            kind,
            hospital_id: hospital.to_string(),
            department_id: department.clone(),
            doctor_id: doctor.clone(),
            project_id: project,
            device_id: device.clone(),
            date,
            start_time: start,
            end_time: end,
            period: w
                .opt_str("period")?
                .map(str::to_string)
                .or_else(|| Some(if start.format("%H").to_string().as_str() < "12" { "上午" } else { "下午" }.to_string()))
                .filter(|_| kind == SlotKind::Registration),
            bed_number: None,
            bed_type: None,
        };
        let capacity = w.opt_u32("capacity")?.or(entry_capacity).unwrap_or(1);
        out.push(Published { info, capacity, reserved_quota: w.opt_u32("reserved_quota")?.or(entry_quota), closed: is_closed(&w)? });
    }
    Ok(())
}

fn is_closed(r: &Req) -> Result<bool> {
    Ok(matches!(r.opt_str("status")?, Some("closed" | "stopped")))
}

/// `sync-schedule`: the hospital pushes its schedule. `mode: "delta"` (default)
/// upserts what is listed; `mode: "full"` also withdraws this hospital's slots
/// on the listed dates that the push leaves out, cancelling their bookings.
pub fn sync_schedule(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let hospital = r.id("hospital_id")?;
    let full = match r.opt_str("mode")? {
        None | Some("delta") => false,
        Some("full") => true,
        Some(_) => return Err(Error::invalid("mode", "expected full or delta")),
    };
    let parsed;
    let data: &Vec<Value> = match r.get("schedule_data") {
        // The source's example sends an array; its field is described as "JSON
        // format", and HIS systems send the JSON as a string too.
        Some(Value::String(text)) => {
            parsed = schedule_text(text)?;
            &parsed
        }
        _ => r.array("schedule_data")?,
    };
    // Parse everything before changing anything.
    let mut published = Vec::new();
    let mut devices = BTreeMap::new();
    for e in data {
        parse_entry(pool, &hospital, &r.sub(e, "schedule_data[]")?, &mut published, &mut devices)?;
    }
    let mut seen = BTreeSet::new();
    for p in &published {
        if !seen.insert(p.info.slot_id.clone()) {
            return Err(Error::invalid("schedule_data", &format!("slot {} is listed twice", p.info.slot_id)));
        }
    }
    let mut txn = Txn::default();
    register_hospital(pool, &hospital, None, &mut txn);
    {
        let mut cat = pool.catalog.data.write();
        for (d, project) in &devices {
            let dev = cat.devices.entry(d.clone()).or_insert_with(|| Device {
                device_id: d.clone(),
                device_name: String::new(),
                project_id: project.clone(),
                status: "available".into(),
                hospital_id: Some(hospital.clone()),
                operators: Vec::new(),
                extra: Default::default(),
            });
            if dev.project_id.is_none() {
                dev.project_id = project.clone();
            }
            if pool.store.is_some() {
                txn.writes.push(Write::put(crate::pool::tables::CATALOG, format!("device:{d}"), &*dev));
            }
        }
    }
    let (mut created, mut updated, mut warnings, mut to_close) = (0, 0, Vec::new(), Vec::new());
    let ticket = {
        let _w = pool.table_write.lock();
        let old = pool.table.load_full();
        let mut fresh: Vec<Published> = Vec::new();
        for p in published {
            match old.by_id.get(&p.info.slot_id) {
                None => fresh.push(p),
                Some(idx) => {
                    let slot = &old.slots[*idx as usize];
                    let mut st = slot.state.lock();
                    let taken = st.booked + st.held;
                    if p.capacity < taken {
                        warnings.push(json!({"slot_id": slot.info.slot_id, "warning": "capacity below places already taken; kept at the taken count", "requested": p.capacity, "taken": taken}));
                    }
                    st.capacity = p.capacity.max(taken);
                    if let Some(q) = p.reserved_quota {
                        st.reserved_quota = q;
                    }
                    if p.closed && (!st.closed || st.closing.is_some()) {
                        to_close.push(slot.idx);
                    } else if !p.closed && st.closed {
                        st.closed = false;
                        st.closed_reason = None;
                        st.closing = None;
                    }
                    changed(pool, slot, &mut st, &mut txn);
                    updated += 1;
                }
            }
        }
        if full {
            let dates: BTreeSet<NaiveDate> =
                seen.iter().filter_map(|id| old.by_id.get(id).map(|i| old.slots[*i as usize].info.date)).chain(fresh.iter().map(|p| p.info.date)).collect();
            for d in dates {
                for idx in old.by_date.get(&d).into_iter().flatten() {
                    let s = &old.slots[*idx as usize];
                    if s.info.hospital_id == hospital && s.info.kind != SlotKind::Bed && !seen.contains(&s.info.slot_id) && {
                        let st = s.state.lock();
                        !st.closed || st.closing.is_some()
                    } {
                        to_close.push(s.idx);
                    }
                }
            }
        }
        if !fresh.is_empty() {
            let mut table = SlotTable { slots: old.slots.clone(), by_id: old.by_id.clone(), by_date: old.by_date.clone() };
            for p in fresh {
                let idx = table.slots.len() as u32;
                let rec = SlotRecord {
                    info: p.info,
                    capacity: p.capacity,
                    reserved_quota: p.reserved_quota.unwrap_or(0),
                    closed: p.closed,
                    closed_reason: None,
                    closing: None,
                    retired: Retained::default(),
                };
                if pool.store.is_some() {
                    txn.writes.push(Write::put(crate::pool::tables::SLOTS, rec.info.slot_id.clone(), &rec));
                }
                table.by_id.insert(rec.info.slot_id.clone(), idx);
                table.by_date.entry(rec.info.date).or_default().push(idx);
                table.slots.push(Arc::new(pool.new_slot(idx, rec)));
                created += 1;
            }
            // Rows go to the store before the slots become visible, so no booking
            // row can reach disk ahead of its slot.
            let ticket = pool.enqueue(&mut txn);
            pool.store_table(table);
            ticket
        } else {
            pool.enqueue(&mut txn)
        }
    };
    pool.settle(ticket, std::mem::take(&mut txn.promote))?;
    let mut cancelled = Vec::new();
    let reason = if full { "withdrawn by the hospital's full schedule sync" } else { "closed by the hospital's schedule" };
    for idx in to_close {
        let (c, _, _) = close_slot(pool, idx, reason, StopServiceAction::Cancel)?;
        cancelled.extend(c);
    }
    Ok(json!({
        "hospital_id": hospital,
        "schedule_data": data,
        "mode": if full { "full" } else { "delta" },
        "created": created,
        "updated": updated,
        "cancelled_bookings": cancelled,
        "warnings": warnings,
    }))
}

/// A slot whose capacity or state the hospital changed: written, published,
/// and the places it freed set aside for its waitlist (promoted when the
/// change settles).
fn changed(pool: &Pool, slot: &Slot, st: &mut crate::pool::SlotState, txn: &mut Txn) {
    pool.put_slot(txn, slot, st);
    slot.publish(st);
    if !st.closed && st.remaining() > 0 && st.waitlist.iter().any(|w| w.status == WaitStatus::Waiting) {
        let free = st.remaining();
        st.set_aside += free;
        st.held += free;
        slot.publish(st);
        if !txn.promote.contains(&slot.idx) {
            txn.promote.push(slot.idx);
        }
    }
}

/// What an upstream hospital said of one of its slots (`real-time-schedule`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    pub remaining: u32,
    pub capacity: Option<u32>,
}

/// The mirror's side of a reconciliation with an upstream hospital
/// (`upstream::reconcile`): on `dates`, every slot of `hospital` here is
/// set to leave what the hospital says remains. A slot with hand-offs still
/// undecided (`pending`) is reported, not repaired (`deferred`): whether
/// the hospital's count has them yet is not known, and either guess would
/// offer a place twice or withhold one; the hospital decides each meanwhile. A slot the
/// hospital did not list has nothing left there (full or closed). The
/// capacity changes, never the bookings; a slot closed here is only
/// reported (reopening is the hospital's push). One `reconciliation` event
/// sums it up.
pub(crate) fn align_to_hospital(
    pool: &Pool,
    hospital: &str,
    dates: &BTreeSet<NaiveDate>,
    observed: &BTreeMap<String, Observed>,
    pending: &BTreeMap<String, u32>,
) -> Result<Value> {
    pool.check_open()?;
    let now = pool.clock.now_ms();
    let table = pool.table.load();
    let mut txn = Txn::default();
    let (mut drift, mut matched, mut checked) = (Vec::new(), 0u32, 0u32);
    let mut seen = BTreeSet::new();
    for d in dates {
        for idx in table.by_date.get(d).into_iter().flatten() {
            let slot = &table.slots[*idx as usize];
            if slot.info.hospital_id != hospital || slot.info.kind == SlotKind::Bed {
                continue;
            }
            checked += 1;
            seen.insert(slot.info.slot_id.as_str());
            let theirs = observed.get(&slot.info.slot_id).copied().unwrap_or(Observed { remaining: 0, capacity: None });
            let undecided = pending.get(&slot.info.slot_id).copied().unwrap_or(0);
            let target = theirs.remaining;
            let mut st = slot.state.lock();
            let a = slot.availability(&st, now, &pool.cfg);
            if a.remaining == target || (a.closed && theirs.remaining == 0) {
                matched += 1;
                continue;
            }
            let mut entry = json!({
                "slot_id": slot.info.slot_id, "date": slot.info.date.to_string(), "time_slot": slot.info.time_slot(),
                "hospital": {"remaining": theirs.remaining, "capacity": theirs.capacity, "used": theirs.capacity.map(|c| c.saturating_sub(theirs.remaining))},
                "mirror": {"remaining": a.remaining, "capacity": a.capacity, "used": a.booked + a.held},
                "undecided_handoffs": undecided,
            });
            if a.closed {
                entry["closed_here"] = true.into();
            } else if undecided > 0 {
                // Whether the hospital's count has these hand-offs yet is not
                // known: repaired at a reconciliation after they are decided.
                entry["deferred"] = true.into();
            } else {
                st.capacity = (a.booked + a.held + target).max(st.booked + st.held);
                entry["applied_capacity"] = st.capacity.into();
                changed(pool, slot, &mut st, &mut txn);
            }
            drift.push(entry);
        }
    }
    let unknown: Vec<&String> = observed.keys().filter(|k| !seen.contains(k.as_str())).collect();
    let summary =
        json!({"hospital_id": hospital, "source": "upstream", "checked": checked, "matched": matched, "drift": drift.len(), "unknown": unknown.len()});
    pool.emit(&mut txn, "reconciliation", None, None, summary);
    let ticket = pool.enqueue(&mut txn);
    pool.settle(ticket, std::mem::take(&mut txn.promote))?;
    Ok(json!({"hospital_id": hospital, "checked": checked, "matched": matched, "drift": drift, "unknown_to_mirror": unknown}))
}

/// The dates from `from` on (at most `most`) on which `hospital` has slots here.
pub(crate) fn hospital_dates(pool: &Pool, hospital: &str, from: NaiveDate, most: usize) -> BTreeSet<NaiveDate> {
    let table = pool.table.load();
    let dates: BTreeSet<NaiveDate> = table
        .by_date
        .iter()
        .filter(|(d, idxs)| **d >= from && idxs.iter().any(|i| table.slots[*i as usize].info.hospital_id == hospital))
        .map(|(d, _)| *d)
        .collect();
    dates.into_iter().take(most).collect()
}

/// `schedule_data` sent as JSON text: an array of entries (or one entry).
fn schedule_text(text: &str) -> Result<Vec<Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(o @ Value::Object(_)) => Ok(vec![o]),
        Ok(_) => Err(Error::invalid_zh("schedule_data", "must be an array, or JSON text of an array", "须为数组，或内容为数组的JSON文本")),
        Err(e) => Err(Error::with(
            ErrorCode::InvalidField,
            format!("field `schedule_data`: not valid JSON text (line {}, column {})", e.line(), e.column()),
            format!("字段 `schedule_data` 无效：不是合法的JSON文本（第{}行第{}列）", e.line(), e.column()),
        )),
    }
}

fn register_hospital(pool: &Pool, id: &str, name: Option<&str>, txn: &mut Txn) {
    let mut cat = pool.catalog.data.write();
    let known = cat.hospitals.contains_key(id);
    let h = cat.hospitals.entry(id.to_string()).or_insert_with(|| Hospital::new(id));
    if let Some(n) = name {
        h.name = n.to_string();
    }
    if (!known || name.is_some()) && pool.store.is_some() {
        txn.writes.push(Write::put(crate::pool::tables::CATALOG, format!("hospital:{id}"), &*h));
    }
}

/// `sync-catalog`: the hospital publishes its projects and devices (project-info, device-info).
pub fn sync_catalog(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let hospital = r.id("hospital_id")?;
    let mut projects = Vec::new();
    for p in r.opt_array("projects")?.into_iter().flatten() {
        check_cost(p.get("cost"))?;
        let mut proj: Project = serde_json::from_value(p.clone()).map_err(|e| Error::invalid("projects[]", &e.to_string()))?;
        proj.hospital_id.get_or_insert(hospital.clone());
        projects.push(proj);
    }
    let mut devices = Vec::new();
    for d in r.opt_array("devices")?.into_iter().flatten() {
        check_operators(d.get("operators").or(d.get("operator")))?;
        let mut dev: Device = serde_json::from_value(d.clone()).map_err(|e| Error::invalid("devices[]", &e.to_string()))?;
        dev.hospital_id.get_or_insert(hospital.clone());
        devices.push(dev);
    }
    let departments: Vec<Department> = catalog_list(r, "departments")?;
    let doctors: Vec<Doctor> = catalog_list(r, "doctors")?;
    for d in &departments {
        catalog_text("departments[].department_id", &d.department_id, 64, false)?;
        catalog_text("departments[].name", &d.name, 64, true)?;
    }
    for d in &doctors {
        catalog_text("doctors[].doctor_id", &d.doctor_id, 64, false)?;
        catalog_text("doctors[].name", &d.name, 64, true)?;
        catalog_text("doctors[].department_id", d.department_id.as_deref().unwrap_or(""), 64, true)?;
        catalog_text("doctors[].title", d.title.as_deref().unwrap_or(""), 32, true)?;
        catalog_text("doctors[].speciality", d.speciality.as_deref().unwrap_or(""), 256, true)?;
        catalog_text("doctors[].profile", d.profile.as_deref().unwrap_or(""), 2000, true)?;
    }
    let mut txn = Txn::default();
    if departments.is_empty() && doctors.is_empty() {
        register_hospital(pool, &hospital, r.opt_str("name")?, &mut txn);
    } else {
        // Departments and doctors are upserted by id into the hospital's lists.
        let name = r.opt_str("name")?;
        let mut cat = pool.catalog.data.write();
        let h = cat.hospitals.entry(hospital.clone()).or_insert_with(|| Hospital::new(&hospital));
        if let Some(n) = name {
            h.name = n.to_string();
        }
        for d in &departments {
            match h.departments.iter_mut().find(|x| x.department_id == d.department_id) {
                Some(x) => *x = d.clone(),
                None => h.departments.push(d.clone()),
            }
        }
        for d in &doctors {
            match h.doctors.iter_mut().find(|x| x.doctor_id == d.doctor_id) {
                Some(x) => *x = d.clone(),
                None => h.doctors.push(d.clone()),
            }
        }
        if pool.store.is_some() {
            txn.writes.push(Write::put(crate::pool::tables::CATALOG, format!("hospital:{hospital}"), &*h));
        }
    }
    {
        let mut cat = pool.catalog.data.write();
        for p in &projects {
            if pool.store.is_some() {
                txn.writes.push(Write::put(crate::pool::tables::CATALOG, format!("project:{}", p.project_id), p));
            }
            cat.projects.insert(p.project_id.clone(), p.clone());
        }
        for d in &devices {
            if pool.store.is_some() {
                txn.writes.push(Write::put(crate::pool::tables::CATALOG, format!("device:{}", d.device_id), d));
            }
            cat.devices.insert(d.device_id.clone(), d.clone());
        }
    }
    let ticket = pool.enqueue(&mut txn);
    pool.settle(ticket, Vec::new())?;
    Ok(json!({"hospital_id": hospital, "projects": projects.len(), "devices": devices.len(), "departments": departments.len(), "doctors": doctors.len()}))
}

/// An optional list of catalogue entries (`departments`, `doctors`): at most
/// 2000, each an object of the entry's fields.
fn catalog_list<T: serde::de::DeserializeOwned>(r: &Req, k: &str) -> Result<Vec<T>> {
    let Some(list) = r.opt_array(k)? else { return Ok(Vec::new()) };
    if list.len() > 2000 {
        return Err(Error::invalid_zh(k, "at most 2000 entries", "最多 2000 项"));
    }
    list.iter()
        .map(|v| {
            if !v.is_object() {
                return Err(Error::invalid_zh(&format!("{k}[]"), "each entry must be an object", "每一项都必须为对象"));
            }
            serde_json::from_value(v.clone()).map_err(|_| Error::invalid_zh(&format!("{k}[]"), "an entry's fields are not valid", "条目字段无效"))
        })
        .collect()
}

/// A catalogue text: at most `max` characters without control characters
/// (empty only when `may_be_empty`).
fn catalog_text(field: &str, v: &str, max: usize, may_be_empty: bool) -> Result<()> {
    let n = v.chars().count();
    if (n == 0 && !may_be_empty) || n > max || v.chars().any(char::is_control) {
        return Err(Error::invalid_zh(
            field,
            &format!("must be 1 to {max} characters without control characters"),
            &format!("须为1至{max}个字符，且不含控制字符"),
        ));
    }
    Ok(())
}

/// A project's price is kept as the hospital sent it: a number (not
/// negative) or a short text such as `"500.00"`.
fn check_cost(cost: Option<&Value>) -> Result<()> {
    match cost {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => Ok(()),
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 64 => Ok(()),
        Some(_) => Err(Error::invalid_zh(
            "projects[].cost",
            "must be a non-negative number or a text of at most 64 characters",
            "须为非负数，或不超过 64 个字符的文本",
        )),
    }
}

/// A device's operators (设备操作人员): names, objects, or one text of names.
fn check_operators(ops: Option<&Value>) -> Result<()> {
    let bad = || {
        Error::invalid_zh("devices[].operators", "must be a list of names or objects, or a text of names", "须为姓名或对象的列表，或以顿号、逗号分隔的姓名文本")
    };
    match ops {
        None | Some(Value::Null | Value::String(_) | Value::Object(_)) => Ok(()),
        Some(Value::Array(a)) if a.len() <= 100 && a.iter().all(|v| v.is_object() || v.as_str().is_some_and(|s| !s.trim().is_empty())) => Ok(()),
        Some(_) => Err(bad()),
    }
}

pub fn project_info(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let pid = r.opt_str("project_id")?;
    let did = r.opt_str("department_id")?;
    let q = r.opt_str("keyword")?;
    let cat = pool.catalog.data.read();
    let list: Vec<Value> = cat
        .projects
        .values()
        .filter(|p| pid.is_none_or(|x| p.project_id == x) && did.is_none_or(|x| p.department_id.as_deref() == Some(x)))
        .filter(|p| {
            q.is_none_or(|k| {
                p.project_name.contains(k) || p.extra.get("pinyin_initials").and_then(Value::as_str).is_some_and(|py| py.contains(&k.to_lowercase()))
            })
        })
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect();
    Ok(Value::Array(list))
}

pub fn device_info(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let did = r.opt_str("device_id")?;
    let pid = r.opt_str("project_id")?;
    let cat = pool.catalog.data.read();
    let list: Vec<Value> = cat
        .devices
        .values()
        .filter(|d| did.is_none_or(|x| d.device_id == x) && pid.is_none_or(|x| d.project_id.as_deref() == Some(x)))
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect();
    Ok(Value::Array(list))
}

/// Slots grouped per device (or doctor) and date, in the source's
/// `{device_id, date, available_slots: [{start_time, end_time}]}` shape.
fn grouped_schedule(pool: &Pool, keep: &dyn Fn(&Slot) -> bool, only_open: bool) -> Value {
    let table = pool.table.load();
    let now = pool.clock.now_ms();
    let mut groups: BTreeMap<(NaiveDate, String, String), Vec<Value>> = BTreeMap::new();
    let mut order: Vec<&Arc<Slot>> = table.slots.iter().filter(|s| s.info.kind != SlotKind::Bed && keep(s)).collect();
    order.sort_by(|a, b| (a.info.date, a.info.start_time, &a.info.slot_id).cmp(&(b.info.date, b.info.start_time, &b.info.slot_id)));
    for s in order {
        let st = s.state.lock();
        let a = s.availability(&st, now, &pool.cfg);
        if only_open && (a.closed || a.remaining == 0) {
            continue;
        }
        let (key_name, key) = match (&s.info.device_id, &s.info.doctor_id) {
            (Some(d), _) => ("device_id", d.clone()),
            (None, Some(d)) => ("doctor_id", d.clone()),
            _ => ("department_id", s.info.department_id.clone().unwrap_or_default()),
        };
        groups.entry((s.info.date, key_name.to_string(), key)).or_default().push(json!({
            "start_time": s.info.start_time.format("%H:%M").to_string(),
            "end_time": s.info.end_time.format("%H:%M").to_string(),
            "slot_id": s.info.slot_id,
            "remaining": a.remaining,
            "capacity": a.capacity,
            "tight": a.tight,
            "status": if a.closed { "closed" } else if a.remaining == 0 { "full" } else { "available" },
        }));
    }
    // Read after the slots' locks are released (no lock is held with another here).
    let cat = pool.catalog.data.read();
    Value::Array(
        groups
            .into_iter()
            .map(|((date, key_name, key), slots)| {
                let device = key_name == "device_id";
                let mut g = json!({key_name: &key, "date": date.to_string(), "available_slots": slots});
                // 设备操作人员, when the catalogue names them.
                if let Some(d) = cat.devices.get(&key).filter(|d| device && !d.operators.is_empty()) {
                    g["operators"] = d.operators.clone().into();
                }
                g
            })
            .collect(),
    )
}

/// `real-time-schedule`: the hospital's schedule for a date, open windows only.
pub fn real_time_schedule(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let hospital = r.id("hospital_id")?;
    let date = r.date("date")?;
    Ok(grouped_schedule(pool, &|s| s.info.hospital_id == hospital && s.info.date == date, true))
}

/// `device-schedule`: a device's working windows (all, with their status).
pub fn device_schedule(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let device = r.opt_str("device_id")?;
    let date = r.opt_date("date")?;
    Ok(grouped_schedule(
        pool,
        &|s| s.info.device_id.is_some() && device.is_none_or(|d| s.info.device_id.as_deref() == Some(d)) && date.is_none_or(|d| s.info.date == d),
        false,
    ))
}

/// `appointment-slots` (GET /api/appointment-slots): registration slots of a doctor.
pub fn appointment_slots(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let hospital = r.opt_str("hospital_id")?;
    let doctor = r.opt_str("doctor_id")?;
    let date = r.opt_date("date")?;
    if doctor.is_none() && hospital.is_none() {
        return Err(Error::missing("doctor_id"));
    }
    let table = pool.table.load();
    let now = pool.clock.now_ms();
    let mut out = Vec::new();
    let mut slots: Vec<&Arc<Slot>> = table
        .slots
        .iter()
        .filter(|s| {
            s.info.kind == SlotKind::Registration
                && hospital.is_none_or(|h| s.info.hospital_id == h)
                && doctor.is_none_or(|d| s.info.doctor_id.as_deref() == Some(d))
                && date.is_none_or(|d| s.info.date == d)
        })
        .collect();
    slots.sort_by(|a, b| (a.info.date, a.info.start_time, &a.info.slot_id).cmp(&(b.info.date, b.info.start_time, &b.info.slot_id)));
    for s in slots {
        let st = s.state.lock();
        let a = s.availability(&st, now, &pool.cfg);
        out.push(json!({
            "slot_id": s.info.slot_id,
            "doctor_id": s.info.doctor_id,
            "hospital_id": s.info.hospital_id,
            "department_id": s.info.department_id,
            "date": s.info.date.to_string(),
            "time": s.info.start_time.format("%H:%M").to_string(),
            "period": s.info.period,
            "remaining": a.remaining,
            "status": if a.closed { "closed" } else if a.remaining == 0 { "full" } else { "available" },
        }));
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------- stop-service

/// Closes one slot and cancels or moves its bookings, one event each.
/// Returns (cancelled, moved, waitlist entries closed).
///
/// The closing is recorded with the slot (`closing`) in the transaction that
/// closes it, and cleared only once no booking is left to deal with: a crash
/// or an error part-way leaves it set, and the next open (`finish_closings`)
/// or a retried stop-service finishes the job. Called on a slot already
/// closed, it only finishes that job (no second `slot_closed` event).
fn close_slot(pool: &Pool, idx: u32, reason: &str, action: StopServiceAction) -> Result<(Vec<String>, Vec<Value>, usize)> {
    let slot = pool.slot(idx)?;
    let (ids, closed_waiters) = {
        let mut txn = Txn::default();
        let mut st = slot.state.lock();
        let mut closed_waiters = 0;
        if !st.closed {
            st.closed = true;
            st.closed_reason = Some(reason.to_string());
            let waiters: Vec<WaitEntry> = std::mem::take(&mut st.waitlist);
            st.held -= st.set_aside;
            st.set_aside = 0;
            for mut w in waiters.iter().cloned() {
                w.status = WaitStatus::Closed;
                pool.waitlist_slot.shard(&w.id).remove(&w.id);
                if pool.store.is_some() {
                    txn.writes.push(Write::put(crate::pool::tables::WAITLIST, crate::store::numbered_key(w.id), &w));
                }
                pool.emit(
                    &mut txn,
                    "waitlist_closed",
                    None,
                    Some(&slot.info.slot_id),
                    json!({"waitlist_id": format_waitlist_id(w.id), "patient_id": w.patient_id, "clinic_id": w.clinic_id, "hospital_id": slot.info.hospital_id, "reason": reason}),
                );
            }
            closed_waiters = waiters.len();
            pool.emit(
                &mut txn,
                "slot_closed",
                None,
                Some(&slot.info.slot_id),
                json!({"reason": reason, "date": slot.info.date.to_string(), "time_slot": slot.info.time_slot()}),
            );
        }
        st.closing = Some(action);
        pool.put_slot(&mut txn, &slot, &st);
        slot.publish(&st);
        let ids = st.active.to_vec();
        let ticket = pool.enqueue(&mut txn);
        drop(st);
        pool.settle(ticket, Vec::new())?;
        (ids, closed_waiters)
    };
    let platform = Actor::platform();
    let (mut cancelled, mut moved) = (Vec::new(), Vec::new());
    for id in ids {
        let b = pool.booking(id)?;
        if !b.status.is_active() || b.status == BookingStatus::Occupied {
            continue;
        }
        if action == StopServiceAction::Move {
            if let Some(target) = find_alternative(pool, &slot, b.priority) {
                let result = pool.move_booking(id, target, None, reason, &None, &|b, s| to_value(&booking_view(pool, b, s)), "booking_moved");
                if let Ok(answer) = pool.finish_txn(None, result).map(crate::pool::Answer::into_value) {
                    moved.push(
                        json!({"booking_id": format_booking_id(id), "to_slot": answer["slot_id"], "date": answer["date"], "time_slot": answer["time_slot"]}),
                    );
                    continue;
                }
            }
        }
        let done = pool.with_booking(id, &platform, None, "stop-service", 0, &mut |pool, slot, st, b, txn, now| {
            pool.cancel_locked(slot, st, b, reason.to_string().into(), now, txn)?;
            Ok(crate::pool::Answer::Null)
        });
        match done {
            Ok(_) => cancelled.push(format_booking_id(id)),
            // Cancelled or expired meanwhile: nothing left to do for it.
            Err(e) if matches!(e.code(), ErrorCode::AlreadyCancelled | ErrorCode::HoldExpired) => {}
            Err(e) => return Err(e),
        }
    }
    end_closing(pool, &slot)?;
    Ok((cancelled, moved, closed_waiters))
}

/// Clears the slot's `closing` once it holds no booking left to cancel or
/// move (a concurrent closer may still be at work on some: the last one
/// clears it).
fn end_closing(pool: &Pool, slot: &Slot) -> Result<()> {
    let mut txn = Txn::default();
    let mut st = slot.state.lock();
    if st.closing.is_none() || booking_left_to_close(pool, &st).is_some() {
        return Ok(());
    }
    st.closing = None;
    pool.put_slot(&mut txn, slot, &st);
    let ticket = pool.enqueue(&mut txn);
    drop(st);
    pool.settle(ticket, Vec::new())
}

/// The first booking a closing of this slot still has to cancel or move
/// (an occupied bed stays: it is ended by discharge). Call with the slot locked.
pub(crate) fn booking_left_to_close(pool: &Pool, st: &crate::pool::SlotState) -> Option<u64> {
    st.active.iter().copied().find(|id| pool.booking(*id).is_ok_and(|b| b.status != BookingStatus::Occupied))
}

/// Finishes the closings a crash interrupted (on open): each slot whose
/// `closing` is still set has its remaining bookings cancelled or moved as
/// the closing asked, one event each.
pub(crate) fn finish_closings(pool: &Pool) -> Result<()> {
    let pending: Vec<(u32, String, StopServiceAction)> = pool
        .table
        .load()
        .slots
        .iter()
        .filter_map(|s| {
            let st = s.state.lock();
            st.closing.map(|a| (s.idx, st.closed_reason.clone().unwrap_or_else(|| STOP_REASON.to_string()), a))
        })
        .collect();
    for (idx, reason, action) in pending {
        close_slot(pool, idx, &reason, action)?;
    }
    Ok(())
}

/// The reason given to patients when a stop-service names none.
const STOP_REASON: &str = "service stopped by the hospital (停诊)";

/// The nearest open slot for the same device (or project) or doctor, on the
/// same day or up to seven days later, with a place for this priority.
fn find_alternative(pool: &Pool, from: &Slot, p: Priority) -> Option<u32> {
    let table = pool.table.load();
    let now = pool.clock.now_ms();
    let i = &from.info;
    let mut best: Option<(i64, &str, u32)> = None;
    for d in 0..=7 {
        let Some(date) = i.date.checked_add_signed(chrono::Duration::days(d)) else { break };
        for idx in table.by_date.get(&date).into_iter().flatten() {
            let s = &table.slots[*idx as usize];
            let o = &s.info;
            let same = o.kind == i.kind
                && o.hospital_id == i.hospital_id
                && match i.kind {
                    SlotKind::Exam => o.device_id == i.device_id || (i.project_id.is_some() && o.project_id == i.project_id),
                    _ => o.doctor_id == i.doctor_id && o.department_id == i.department_id,
                };
            if !same || s.idx == from.idx || s.start_ms <= now || now < s.opens_ms {
                continue;
            }
            let st = s.state.lock();
            if st.closed || st.free_for(p) == 0 {
                continue;
            }
            let dist = (s.start_ms - from.start_ms).abs();
            if best.is_none_or(|(bd, bid, _)| (dist, o.slot_id.as_str()) < (bd, bid)) {
                best = Some((dist, o.slot_id.as_str(), s.idx));
            }
        }
    }
    best.map(|b| b.2)
}

/// `stop-service` (停诊): closes the matching slots of a day; their bookings
/// are cancelled or moved (`action`), each with an event for the patient.
pub fn stop_service(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let date = r.date("stop_date")?;
    let device = r.opt_str("device_id")?;
    let project = r.opt_str("project_id")?;
    let doctor = r.opt_str("doctor_id")?;
    let department = r.opt_str("department_id")?;
    let hospital = r.opt_str("hospital_id")?;
    if device.is_none() && project.is_none() && doctor.is_none() && department.is_none() {
        return Err(Error::missing("device_id"));
    }
    let window = match r.opt_str("time_slot")? {
        Some(t) => Some(crate::request::parse_time_slot(t).ok_or_else(|| Error::invalid("time_slot", "expected HH:MM-HH:MM"))?),
        None => None,
    };
    let action = match r.opt_str("action")? {
        None => pool.cfg.stop_service_action,
        Some("cancel") => StopServiceAction::Cancel,
        Some("move") => StopServiceAction::Move,
        Some(_) => return Err(Error::invalid("action", "expected cancel or move")),
    };
    let reason = r.opt_str("reason")?.unwrap_or(STOP_REASON).to_string();
    let targets: Vec<u32> = {
        let table = pool.table.load();
        table
            .by_date
            .get(&date)
            .into_iter()
            .flatten()
            .map(|i| &table.slots[*i as usize])
            .filter(|s| {
                let i = &s.info;
                device.is_none_or(|d| i.device_id.as_deref() == Some(d))
                    // With a device named, a project only has to agree where the slot has one.
                    && project.is_none_or(|p| match (&i.project_id, device) {
                        (Some(sp), _) => sp == p,
                        (None, Some(_)) => true,
                        (None, None) => false,
                    })
                    && doctor.is_none_or(|d| i.doctor_id.as_deref() == Some(d))
                    && department.is_none_or(|d| i.department_id.as_deref() == Some(d))
                    && hospital.is_none_or(|h| i.hospital_id == h)
                    && window.is_none_or(|(a, b)| i.start_time == a && i.end_time == b)
                    // Open, or closed by a closing that has not finished.
                    && { let st = s.state.lock(); !st.closed || st.closing.is_some() }
            })
            .map(|s| s.idx)
            .collect()
    };
    // A hospital stops only its own services (the platform any).
    if let Some(own) = r.own_hospital() {
        if targets.iter().any(|i| pool.slot(*i).is_ok_and(|s| s.info.hospital_id != own)) {
            return Err(crate::pool::forbidden_hospital());
        }
    }
    let (mut cancelled, mut moved, mut waiters) = (Vec::new(), Vec::new(), 0);
    for idx in &targets {
        let (c, m, w) = close_slot(pool, *idx, &reason, action)?;
        cancelled.extend(c);
        moved.extend(m);
        waiters += w;
    }
    let mut out = json!({
        "stop_date": date.to_string(),
        "closed_slots": targets.len(),
        "cancelled": cancelled,
        "moved": moved,
        "waitlist_closed": waiters,
        "action": if action == StopServiceAction::Move { "move" } else { "cancel" },
    });
    for (k, v) in [("device_id", device), ("project_id", project), ("doctor_id", doctor), ("department_id", department)] {
        if let Some(v) = v {
            out[k] = v.into();
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- reconciliation

/// `reconcile-slots`: compares the hospital's counts with the pool's and
/// reports the drift; `apply: true` takes the hospital's capacities.
pub fn reconcile(pool: &Pool, r: &Req) -> Result<Value> {
    pool.check_open()?;
    let hospital = r.id("hospital_id")?;
    let apply = r.opt_bool("apply")?.unwrap_or(false);
    let date = r.opt_date("date")?;
    let counts = r.array("counts")?;
    let now = pool.clock.now_ms();
    let (mut drift, mut unknown, mut listed) = (Vec::new(), Vec::new(), BTreeSet::new());
    let mut matched = 0;
    let mut txn = Txn::default();
    for c in counts {
        let c = r.sub(c, "counts[]")?;
        // A count entry inherits the request's date when it names none.
        let owned;
        let lookup = match (c.get("date"), date) {
            (None, Some(d)) => {
                let mut m = c.to_map();
                m.insert("date".into(), d.to_string().into());
                owned = m;
                Req::new(&owned, r.who)
            }
            _ => c.with_who(r.who),
        };
        let slot = match resolve_slot(pool, &lookup, false) {
            Ok(s) if s.info.hospital_id == hospital => s,
            Ok(_) | Err(_) => {
                unknown.push(Value::Object(c.to_map()));
                continue;
            }
        };
        listed.insert(slot.idx);
        let h_cap = c.opt_u32("capacity")?;
        let h_used = c.opt_u32("used")?;
        let h_rem = c.opt_u32("remaining")?;
        let mut st = slot.state.lock();
        let a = slot.availability(&st, now, &pool.cfg);
        let used = a.booked + a.held;
        let mut diffs = serde_json::Map::new();
        if let Some(x) = h_cap.filter(|x| *x != a.capacity) {
            diffs.insert("capacity".into(), json!({"hospital": x, "platform": a.capacity}));
        }
        if let Some(x) = h_used.filter(|x| *x != used) {
            diffs.insert("used".into(), json!({"hospital": x, "platform": used}));
        }
        if let Some(x) = h_rem.filter(|x| *x != a.remaining) {
            diffs.insert("remaining".into(), json!({"hospital": x, "platform": a.remaining}));
        }
        if diffs.is_empty() {
            matched += 1;
            continue;
        }
        let mut entry = json!({"slot_id": slot.info.slot_id, "date": slot.info.date.to_string(), "time_slot": slot.info.time_slot(), "diff": diffs});
        if apply {
            if let Some(cap) = h_cap {
                let taken = st.booked + st.held;
                st.capacity = cap.max(taken);
                entry["applied_capacity"] = st.capacity.into();
                changed(pool, &slot, &mut st, &mut txn);
            }
        }
        drift.push(entry);
    }
    let missing: Vec<Value> = match date {
        None => Vec::new(),
        Some(d) => {
            let table = pool.table.load();
            table
                .by_date
                .get(&d)
                .into_iter()
                .flatten()
                .filter(|i| !listed.contains(*i))
                .map(|i| &table.slots[*i as usize])
                .filter(|s| s.info.hospital_id == hospital && s.info.kind != SlotKind::Bed)
                .map(|s| to_value(&slot_view(pool, s, &s.state.lock())))
                .collect()
        }
    };
    let summary =
        json!({"hospital_id": hospital, "checked": counts.len(), "matched": matched, "drift": drift.len(), "unknown": unknown.len(), "missing": missing.len()});
    pool.emit(&mut txn, "reconciliation", None, None, summary.clone());
    let ticket = pool.enqueue(&mut txn);
    pool.settle(ticket, std::mem::take(&mut txn.promote))?;
    Ok(json!({
        "hospital_id": hospital,
        "checked": counts.len(),
        "matched": matched,
        "drift": drift,
        "unknown_to_platform": unknown,
        "missing_from_hospital": missing,
        "applied": apply,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    const SLOT: &str = "RG-H001-DR001-20241030-08001130";

    fn call(e: &Engine, cmd: &str, req: Value) -> Value {
        e.call_value(cmd, &req.to_string()).unwrap_or_else(|err| panic!("{cmd}: {err:?}"))
    }

    /// A slot of five places with `n` bookings.
    fn booked(e: &Engine, n: usize) -> Vec<String> {
        call(
            e,
            "sync-schedule",
            json!({"hospital_id": "H001", "schedule_data": [{"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-30", "capacity": 5,
                "available_slots": [{"start_time": "08:00", "end_time": "11:30"}]}]}),
        );
        (0..n).map(|i| call(e, "book-slot", json!({"slot_id": SLOT, "patient_id": format!("PAT{i}")}))["booking_id"].as_str().unwrap().to_string()).collect()
    }

    /// What a crash right after a closing's first commit leaves behind: the
    /// slot closed, its closing recorded, its bookings not yet dealt with.
    fn interrupt_closing(e: &Engine) {
        interrupt_closing_with(e, StopServiceAction::Cancel)
    }

    fn interrupt_closing_with(e: &Engine, action: StopServiceAction) {
        let pool = &e.d.pool;
        let slot = pool.slot_by_id(SLOT).unwrap();
        let mut txn = Txn::default();
        let mut st = slot.state.lock();
        st.closed = true;
        st.closed_reason = Some("设备故障".into());
        st.closing = Some(action);
        pool.put_slot(&mut txn, &slot, &st);
        slot.publish(&st);
        let ticket = pool.enqueue(&mut txn);
        drop(st);
        pool.settle(ticket, Vec::new()).unwrap();
    }

    fn durable(dir: &std::path::Path) -> String {
        json!({"data_dir": dir, "clock_start": "2024-10-29T09:00:00+08:00"}).to_string()
    }

    fn cancelled_events(e: &Engine) -> Vec<Value> {
        let v = call(e, "next-events", json!({"limit": 100}));
        v["events"].as_array().unwrap().iter().filter(|ev| ev["type"] == "booking_cancelled" || ev["type"] == "slot_closed").cloned().collect()
    }

    #[test]
    fn a_retried_stop_service_finishes_an_interrupted_closing() {
        let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
        let ids = booked(&e, 3);
        interrupt_closing(&e);
        // Still closing: the invariants allow the bookings for now.
        e.check_invariants().unwrap();
        let before = cancelled_events(&e).len();
        let v = call(
            &e,
            "stop-service",
            json!({"hospital_id": "H001", "doctor_id": "DR001", "stop_date": "2024-10-30", "time_slot": "08:00-11:30", "action": "cancel"}),
        );
        assert_eq!(v["cancelled"], json!(ids));
        assert_eq!(v["closed_slots"], 1);
        let events = cancelled_events(&e);
        // One event per booking, and no second `slot_closed`.
        assert_eq!(events.len() - before, 3, "{events:?}");
        assert!(events.iter().all(|ev| ev["type"] == "booking_cancelled"));
        assert!(e.d.pool.slot_by_id(SLOT).unwrap().state.lock().closing.is_none());
        e.check_invariants().unwrap();
        // Done: a second retry finds nothing left to do.
        let again = call(&e, "stop-service", json!({"hospital_id": "H001", "doctor_id": "DR001", "stop_date": "2024-10-30", "time_slot": "08:00-11:30"}));
        assert_eq!(again["closed_slots"], 0);
    }

    #[test]
    fn the_next_open_finishes_a_closing_a_crash_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = durable(dir.path());
        let ids = {
            let e = Engine::open(&cfg).unwrap();
            let ids = booked(&e, 3);
            interrupt_closing(&e);
            e.close();
            ids
        };
        let e = Engine::open(&cfg).unwrap();
        for id in &ids {
            let b = call(&e, "booking-info", json!({"booking_id": id}));
            assert_eq!(b["status"], "cancelled", "{b}");
            assert_eq!(b["cancel_reason"], "设备故障", "{b}");
        }
        let si = call(&e, "slot-info", json!({"slot_id": SLOT}));
        assert_eq!((si["booked"].as_u64(), si["held"].as_u64()), (Some(0), Some(0)), "{si}");
        assert!(e.d.pool.slot_by_id(SLOT).unwrap().state.lock().closing.is_none());
        assert_eq!(cancelled_events(&e).iter().filter(|ev| ev["type"] == "booking_cancelled").count(), 3);
        e.check_invariants().unwrap();
    }

    #[test]
    fn an_interrupted_move_is_finished_as_a_move() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = durable(dir.path());
        let ids = {
            let e = Engine::open(&cfg).unwrap();
            let ids = booked(&e, 2);
            // The same doctor's afternoon: where a stop-service moves them.
            call(
                &e,
                "sync-schedule",
                json!({"hospital_id": "H001", "schedule_data": [{"doctor_id": "DR001", "department_id": "D001", "date": "2024-10-30", "capacity": 5,
                    "available_slots": [{"start_time": "13:30", "end_time": "17:00"}]}]}),
            );
            interrupt_closing_with(&e, StopServiceAction::Move);
            e.close();
            ids
        };
        let e = Engine::open(&cfg).unwrap();
        for id in &ids {
            let b = call(&e, "booking-info", json!({"booking_id": id}));
            assert_eq!((b["status"].as_str(), b["slot_id"].as_str()), (Some("booked"), Some("RG-H001-DR001-20241030-13301700")), "{b}");
        }
        let moved = cancelled_events(&e);
        assert!(moved.is_empty(), "moved, not cancelled: {moved:?}");
        assert!(e.d.pool.slot_by_id(SLOT).unwrap().state.lock().closing.is_none());
        e.check_invariants().unwrap();
    }

    #[test]
    fn a_closed_slot_that_still_holds_a_booking_breaks_the_invariants() {
        let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
        booked(&e, 1);
        interrupt_closing(&e);
        e.d.pool.slot_by_id(SLOT).unwrap().state.lock().closing = None;
        let err = e.check_invariants().unwrap_err();
        assert!(err.message().contains("still holds booking"), "{err:?}");
    }
}
