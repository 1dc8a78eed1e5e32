//! Reception at the lab (L7, 委托检验接单): look a barcode up, then accept
//! the specimen or register it as unacceptable (不合格登记); a rejection
//! returns the order to the ordering institution as an event.

use super::order::{check_side, OrderStatus, Side};
use super::specimen::{Reception, Rejection, SpecimenStatus};
use super::{code_field, format_id, opt_text, text, Call};
use crate::error::{Error, ErrorCode, Result};
use serde_json::{json, Value};

/// `specimen-lookup {barcode}`: the tube's items, patient (masked),
/// diagnosis, ordering institution and order.
pub(crate) fn lookup(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let acting = c.acting("lab_id")?;
    c.read(|d| {
        let sp = d.specimen(&barcode)?;
        let o = d.order(sp.order_id)?;
        check_side(o, acting.as_deref(), Side::Either)?;
        let tz = c.pool.cfg.tz;
        let mut v = sp.view(d, &tz);
        let mut ov = d.order_view(o, &tz);
        ov["status"] = d.derive_status(o).as_str().into();
        v["order"] = ov;
        v["lab_items"] = sp
            .items
            .iter()
            .filter_map(|code| o.items.iter().find(|i| &i.resource_code == code))
            .map(|i| json!({"code": i.resource_code, "local_code": i.local_code, "name": i.name}))
            .collect::<Vec<_>>()
            .into();
        Ok(v)
    })
}

fn checked<'a>(c: &Call, d: &'a super::LabData, barcode: &str) -> Result<&'a super::specimen::Specimen> {
    let sp = d.specimen(barcode)?;
    let o = d.order(sp.order_id)?;
    check_side(o, c.acting("lab_id")?.as_deref(), Side::Lab)?;
    if o.status == OrderStatus::Cancelled {
        return Err(Error::new(ErrorCode::LabOrderCancelled));
    }
    Ok(sp)
}

/// `specimen-receive {barcode, receiver, contact?, time?}`: only a shipped tube.
pub(crate) fn receive(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let by = text(c.r, "receiver")?;
    let contact = opt_text(c.r, "contact")?;
    let at = c.time("time")?;
    c.change(|d, ctx| {
        let sp = checked(c, d, &barcode)?;
        match sp.status {
            SpecimenStatus::Shipped => {}
            SpecimenStatus::Rejected => return Err(Error::new(ErrorCode::LabSpecimenRejected)),
            SpecimenStatus::Printed => return Err(Error::with(ErrorCode::LabSpecimenState, "the specimen has not been shipped", "样本尚未送检")),
            SpecimenStatus::Received => return Err(Error::with(ErrorCode::LabSpecimenState, "the specimen is already received", "样本已接收")),
        }
        let mut sp = sp.clone();
        sp.status = SpecimenStatus::Received;
        sp.received = Some(Reception { by, contact, at_ms: at });
        ctx.put(sp.key(), &sp);
        ctx.event(
            "specimen_received",
            Some(&sp.institution_id),
            Some(&sp.patient_id),
            json!({"barcode": sp.barcode, "order_id": format_id("LO", sp.order_id), "lab_id": sp.lab_id}),
        );
        let oid = sp.order_id;
        d.specimens.insert(barcode.clone(), sp);
        d.refresh_order(ctx, oid);
        Ok(d.specimen(&barcode)?.view(d, &c.pool.cfg.tz))
    })
}

/// `specimen-reject {barcode, reason, reject_type, remark?, registrar, contact, time?}`.
pub(crate) fn reject(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let reason = text(c.r, "reason")?;
    let reject_type = text(c.r, "reject_type")?;
    let remark = opt_text(c.r, "remark")?;
    let registrar = text(c.r, "registrar")?;
    let contact = text(c.r, "contact")?;
    let at = c.time("time")?;
    c.change(|d, ctx| {
        let sp = checked(c, d, &barcode)?;
        match sp.status {
            SpecimenStatus::Shipped => {}
            SpecimenStatus::Received if !d.reports.contains_key(&barcode) => {}
            SpecimenStatus::Rejected => return Err(Error::new(ErrorCode::LabSpecimenRejected)),
            SpecimenStatus::Printed => return Err(Error::with(ErrorCode::LabSpecimenState, "the specimen has not been shipped", "样本尚未送检")),
            SpecimenStatus::Received => return Err(Error::with(ErrorCode::LabSpecimenState, "the specimen already has a report", "样本已有检验报告")),
        }
        let mut sp = sp.clone();
        sp.status = SpecimenStatus::Rejected;
        sp.rejection = Some(Rejection {
            reason: reason.clone(),
            reject_type: reject_type.clone(),
            remark: remark.clone(),
            registrar: registrar.clone(),
            contact: contact.clone(),
            at_ms: at,
        });
        ctx.put(sp.key(), &sp);
        let data = json!({
            "barcode": sp.barcode,
            "order_id": format_id("LO", sp.order_id),
            "lab_id": sp.lab_id,
            "reason": reason,
            "reject_type": reject_type,
            "remark": remark,
            "registrar": registrar,
            "contact": contact,
            "time": c.fmt(at),
            "items": sp.items,
        });
        ctx.event("specimen_rejected", Some(&sp.institution_id), Some(&sp.patient_id), data.clone());
        ctx.event("lab_order_returned", Some(&sp.institution_id), Some(&sp.patient_id), data);
        let oid = sp.order_id;
        d.specimens.insert(barcode.clone(), sp);
        d.refresh_order(ctx, oid);
        Ok(d.specimen(&barcode)?.view(d, &c.pool.cfg.tz))
    })
}
