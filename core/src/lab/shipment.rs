//! Shipments (L6, 样本送检): printed specimens of many patients of one
//! institution, bound for one lab, under one shipment number with a
//! printable manifest (see `labels::manifest`).

use super::order::OrderStatus;
use super::specimen::SpecimenStatus;
use super::{format_id, opt_text, parse_id, Call, LabData};
use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use crate::request::parse_date;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Shipment {
    pub id: u64,
    pub institution_id: String,
    pub lab_id: String,
    pub barcodes: Vec<String>,
    pub created_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl Shipment {
    pub fn shipment_id(&self) -> String {
        format_id("SH", self.id)
    }
    pub fn view(&self, d: &LabData, tz: &chrono_tz::Tz) -> Value {
        let specimens: Vec<Value> = self
            .barcodes
            .iter()
            .filter_map(|b| d.specimens.get(b))
            .map(|s| {
                let o = d.orders.get(&s.order_id);
                json!({
                    "barcode": s.barcode,
                    "order_id": format_id("LO", s.order_id),
                    "patient_id": s.patient_id,
                    "patient": o.map(|o| o.patient.masked()),
                    "specimen_type": s.specimen_type,
                    "container_name": s.container_name,
                    "items": s.items.iter().map(|c| d.resources.get(c).map(|r| r.name.clone()).unwrap_or_else(|| c.clone())).collect::<Vec<_>>(),
                    "status": s.status.as_str(),
                })
            })
            .collect();
        json!({
            "shipment_id": self.shipment_id(),
            "institution_id": self.institution_id,
            "lab_id": self.lab_id,
            "created_at": crate::clock::format_ms(self.created_ms, tz),
            "sender": self.sender,
            "contact": self.contact,
            "count": self.barcodes.len(),
            "specimens": specimens,
        })
    }
}

impl LabData {
    pub fn shipment(&self, id: u64) -> Result<&Shipment> {
        self.shipments.get(&id).ok_or_else(|| Error::new(ErrorCode::LabShipmentNotFound))
    }
}

pub(crate) fn shipment_id(c: &Call) -> Result<u64> {
    parse_id("shipment_id", "SH", &c.r.id("shipment_id")?)
}

/// `shipment-create {institution_id, barcodes, sender?, contact?}`.
pub(crate) fn create(c: &Call) -> Result<Value> {
    let inst = c.acting_required("institution_id")?;
    let barcodes = super::code_list(c.r, "barcodes")?;
    if barcodes.is_empty() {
        return Err(Error::missing("barcodes"));
    }
    let sender = opt_text(c.r, "sender")?;
    let contact = opt_text(c.r, "contact")?;
    c.change(|d, ctx| {
        let mut lab: Option<String> = None;
        for (i, b) in barcodes.iter().enumerate() {
            if barcodes[..i].contains(b) {
                return Err(Error::invalid("barcodes", "a barcode appears twice"));
            }
            let s = d.specimen(b)?;
            if s.institution_id != inst {
                return Err(super::forbidden());
            }
            if d.order(s.order_id)?.status == OrderStatus::Cancelled {
                return Err(Error::with(ErrorCode::LabOrderCancelled, format!("the order of specimen {b} is cancelled"), format!("样本 {b} 的申请单已取消")));
            }
            match s.status {
                SpecimenStatus::Printed => {}
                SpecimenStatus::Rejected => return Err(Error::new(ErrorCode::LabSpecimenRejected)),
                st => {
                    return Err(Error::with(
                        ErrorCode::LabSpecimenState,
                        format!("specimen {b} is {}, not waiting to be shipped", st.as_str()),
                        format!("样本 {b} 不是待送检状态"),
                    ));
                }
            }
            match &lab {
                None => lab = Some(s.lab_id.clone()),
                Some(l) if *l != s.lab_id => {
                    return Err(Error::with(ErrorCode::LabMixedInstitutions, "one shipment goes to one lab", "一张送检单只能送往同一检验机构"));
                }
                _ => {}
            }
        }
        let lab = lab.unwrap_or_default();
        d.next_shipment += 1;
        let sh = Shipment {
            id: d.next_shipment,
            institution_id: inst.clone(),
            lab_id: lab.clone(),
            barcodes: barcodes.clone(),
            created_ms: ctx.now,
            sender,
            contact,
        };
        let mut orders = Vec::new();
        for b in &barcodes {
            if let Some(s) = d.specimens.get_mut(b) {
                s.status = SpecimenStatus::Shipped;
                s.shipment_id = Some(sh.id);
                let s = s.clone();
                ctx.put(s.key(), &s);
                if !orders.contains(&s.order_id) {
                    orders.push(s.order_id);
                }
            }
        }
        for o in orders {
            d.refresh_order(ctx, o);
        }
        ctx.put(format!("shipment:{:012}", sh.id), &sh);
        ctx.event("shipment_created", Some(&inst), None, json!({"shipment_id": sh.shipment_id(), "lab_id": lab, "barcodes": barcodes}));
        let v = sh.view(d, &c.pool.cfg.tz);
        d.shipments.insert(sh.id, sh);
        Ok(v)
    })
}

fn visible(sh: &Shipment, acting: Option<&str>) -> Result<()> {
    match acting {
        Some(a) if a != sh.institution_id && a != sh.lab_id => Err(super::forbidden()),
        _ => Ok(()),
    }
}

pub(crate) fn info(c: &Call) -> Result<Value> {
    let id = shipment_id(c)?;
    let acting = c.acting("institution_id")?;
    c.read(|d| {
        let sh = d.shipment(id)?;
        visible(sh, acting.as_deref())?;
        Ok(sh.view(d, &c.pool.cfg.tz))
    })
}

/// `shipment-query {institution_id, barcode?, from?, to?}`.
pub(crate) fn query(c: &Call) -> Result<Value> {
    let inst = c.acting_required("institution_id")?;
    let barcode = opt_text(c.r, "barcode")?;
    let from = c.r.opt_str("from")?.map(|s| parse_date(s).ok_or_else(|| Error::invalid("from", "expected a date YYYY-MM-DD"))).transpose()?;
    let to = c.r.opt_str("to")?.map(|s| parse_date(s).ok_or_else(|| Error::invalid("to", "expected a date YYYY-MM-DD"))).transpose()?;
    c.read(|d| {
        let list: Vec<Value> = d
            .shipments
            .values()
            .rev()
            .filter(|s| s.institution_id == inst || s.lab_id == inst)
            .filter(|s| barcode.as_deref().is_none_or(|b| s.barcodes.iter().any(|x| x == b)))
            .filter(|s| {
                let day = c.local_date(s.created_ms);
                from.is_none_or(|f| day >= f) && to.is_none_or(|t| day <= t)
            })
            .map(|s| s.view(d, &c.pool.cfg.tz))
            .collect();
        Ok(json!({"total": list.len(), "shipments": list}))
    })
}

pub(crate) fn manifest(c: &Call) -> Result<Value> {
    let id = shipment_id(c)?;
    let acting = c.acting("institution_id")?;
    c.read(|d| {
        let sh = d.shipment(id)?;
        visible(sh, acting.as_deref())?;
        super::labels::manifest(c, d, sh)
    })
}
