//! Finding the slot a request names, the way every booking command does.

use super::{Pool, Slot};
use crate::error::{Error, ErrorCode, Result};
use crate::model::SlotKind;
use crate::request::{parse_time, parse_time_slot, Req};

/// Finds the slot a request names: `slot_id`, or the source's
/// (project_id, date, time_slot, device_id), or (doctor_id, date, time_slot|period).
pub(crate) fn resolve_slot(pool: &Pool, r: &Req, for_booking: bool) -> Result<std::sync::Arc<Slot>> {
    if let Some(id) = r.opt_str("slot_id")? {
        let slot = pool.slot_by_id(id)?;
        check_project(r, &slot)?;
        return Ok(slot);
    }
    let date = r.date("date")?;
    let device = r.opt_str("device_id")?;
    let doctor = r.opt_str("doctor_id")?;
    let department = r.opt_str("department_id")?;
    let project = r.opt_str("project_id")?;
    let hospital = r.opt_str("hospital_id")?;
    let window = match r.opt_str("time_slot")? {
        Some(ts) => Some(parse_time_slot(ts).ok_or_else(|| Error::invalid("time_slot", "expected HH:MM-HH:MM"))?),
        None => None,
    };
    let period = r.opt_str("period")?;
    let time = match r.opt_str("time")? {
        Some(t) => Some(parse_time(t).ok_or_else(|| Error::invalid("time", "expected HH:MM"))?),
        None => None,
    };
    if window.is_none() && period.is_none() && time.is_none() {
        return Err(Error::missing("time_slot"));
    }
    if device.is_none() && doctor.is_none() && department.is_none() && project.is_none() {
        return Err(Error::missing("device_id"));
    }
    let table = pool.table.load();
    let now = pool.clock.now_ms();
    let candidates = table.by_date.get(&date).map(|v| v.as_slice()).unwrap_or_default();
    let matches = || candidates.iter().map(|i| &table.slots[*i as usize]).filter(|s| {
        let i = &s.info;
        i.kind != SlotKind::Bed
            && device.is_none_or(|d| i.device_id.as_deref() == Some(d))
            && doctor.is_none_or(|d| i.doctor_id.as_deref() == Some(d))
            && department.is_none_or(|d| i.department_id.as_deref() == Some(d) || i.device_id.is_some())
            && hospital.is_none_or(|h| i.hospital_id == h)
            && window.is_none_or(|(a, b)| i.start_time == a && i.end_time == b)
            && period.is_none_or(|p| i.period.as_deref() == Some(p))
            && time.is_none_or(|t| i.start_time == t)
            // With a device named, a project only has to agree (checked below).
            && (device.is_some() || project.is_none_or(|p| i.project_id.as_deref() == Some(p)))
    });
    // Without a second match (the usual case) nothing is collected.
    let mut found = matches();
    let first = match (found.next(), found.next()) {
        (None, _) => return Err(Error::with(ErrorCode::SlotNotFound, format!("no slot on {date} matches the request"), format!("{date} 没有符合条件的号源"))),
        (Some(only), None) => only.clone(),
        (Some(first), Some(_)) if !for_booking => first.clone(),
        // Several devices offer the window: take the one with most places (then by id).
        _ => matches()
            .max_by(|a, b| {
                let ra = a.availability(&a.state.lock(), now, &pool.cfg).remaining;
                let rb = b.availability(&b.state.lock(), now, &pool.cfg).remaining;
                ra.cmp(&rb).then(b.info.slot_id.cmp(&a.info.slot_id))
            })
            .map(|s| (*s).clone())
            .ok_or_else(|| Error::new(ErrorCode::AmbiguousSlot))?,
    };
    check_project(r, &first)?;
    Ok(first)
}

fn check_project(r: &Req, slot: &Slot) -> Result<()> {
    if let (Some(p), Some(sp)) = (r.opt_str("project_id")?, slot.info.project_id.as_deref()) {
        if p != sp {
            return Err(Error::with(
                ErrorCode::ProjectMismatch,
                format!("slot {} belongs to project {sp}, not the one `project_id` names", slot.info.slot_id),
                format!("号源 {} 属于项目 {sp}，与 `project_id` 不符", slot.info.slot_id),
            ));
        }
    }
    Ok(())
}
