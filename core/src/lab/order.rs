//! Orders (L4, 委托检验申请): projects and panels of one lab, the patient,
//! diagnosis, doctor and both institutions; the doctor's own order list;
//! cancel until the lab has received a specimen. Every project is checked
//! against the service network's agreements (`agreement.rs`). The patient
//! pays at the ordering institution before the specimen is taken
//! (缴费后采样): an order records its payment, and its labels print only
//! once paid unless it says `collect_before_payment`.

use super::agreement::no_agreement;
use super::catalog::{not_offered, panel_key};
use super::{check_code, forbidden, format_id, opt_text, parse_id, Call, LabData};
use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use crate::model::PaymentStatus;
use crate::request::{parse_date, patient_of};
use crate::text::SearchKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrderStatus {
    /// Submitted; no label printed yet.
    Submitted,
    /// Labels printed for some or all items (specimens collected).
    Printed,
    /// Specimens on their way to the lab.
    Shipped,
    /// The lab received at least one specimen.
    Received,
    /// Every specimen sent was rejected: back with the ordering institution.
    Returned,
    /// Some results are back.
    PartiallyReported,
    /// Every specimen has its final report.
    Reported,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Submitted => "submitted",
            OrderStatus::Printed => "printed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Received => "received",
            OrderStatus::Returned => "returned",
            OrderStatus::PartiallyReported => "partially_reported",
            OrderStatus::Reported => "reported",
            OrderStatus::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Option<OrderStatus> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct OrderItem {
    /// The standard project.
    pub resource_code: String,
    pub name: String,
    /// The ordering institution's own project code, when it was ordered by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inst_code: Option<String>,
    /// The lab's own code for the project (sent to the lab).
    pub local_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panel: Option<String>,
    /// The tube holding it, once printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// The service agreement it was ordered under, when the lab is under agreements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Order {
    pub id: u64,
    pub institution_id: String,
    pub lab_id: String,
    pub patient_id: String,
    #[serde(default)]
    pub patient: PatientInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    pub doctor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The order's type (检验类型), e.g. routine or urgent.
    pub order_type: String,
    pub items: Vec<OrderItem>,
    pub status: OrderStatus,
    pub created_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_ms: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// The specimen may be taken before the fee is paid (先采样后缴费: urgent
    /// orders, pay-after-treatment schemes, free public-health programmes).
    /// By default the fee comes first. Always stored: a row without it was
    /// stored before payments were recorded and reads `true`, so such an
    /// order prints as it did.
    #[serde(default = "stored_before_payments")]
    pub collect_before_payment: bool,
    #[serde(default = "unpaid")]
    pub payment_status: PaymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_ms: Option<Millis>,
    /// The receipt (缴费单号) the institution's charging system gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_ms: Option<Millis>,
}

fn stored_before_payments() -> bool {
    true
}

fn unpaid() -> PaymentStatus {
    PaymentStatus::Unpaid
}

impl Order {
    pub fn order_id(&self) -> String {
        format_id("LO", self.id)
    }
    pub fn key(&self) -> String {
        format!("order:{:012}", self.id)
    }
    /// Whether its specimens may be taken and labelled: paid, or collected
    /// before payment by the order's own say.
    pub fn may_collect(&self) -> bool {
        self.collect_before_payment || self.payment_status == PaymentStatus::Paid
    }
}

impl LabData {
    pub fn order(&self, id: u64) -> Result<&Order> {
        self.orders.get(&id).ok_or_else(|| Error::new(ErrorCode::LabOrderNotFound))
    }

    /// The order's status from its specimens and reports.
    pub fn derive_status(&self, o: &Order) -> OrderStatus {
        if o.status == OrderStatus::Cancelled {
            return OrderStatus::Cancelled;
        }
        let specimens: Vec<&super::specimen::Specimen> = self.specimens_of(o);
        if specimens.is_empty() {
            return OrderStatus::Submitted;
        }
        use super::specimen::SpecimenStatus as S;
        let live: Vec<_> = specimens.iter().filter(|s| s.status != S::Rejected).collect();
        let reported = live.iter().filter(|s| self.reports.contains_key(&s.barcode)).count();
        let final_all = !live.is_empty()
            && live.iter().all(|s| self.reports.get(&s.barcode).is_some_and(|r| r.is_final()))
            && o.items.iter().all(|i| i.barcode.as_ref().is_some_and(|b| live.iter().any(|s| &s.barcode == b)));
        if final_all {
            OrderStatus::Reported
        } else if reported > 0 {
            OrderStatus::PartiallyReported
        } else if live.iter().any(|s| s.status == S::Received) {
            OrderStatus::Received
        } else if live.is_empty() {
            OrderStatus::Returned
        } else if live.iter().any(|s| s.status == S::Shipped) {
            OrderStatus::Shipped
        } else {
            OrderStatus::Printed
        }
    }

    pub fn specimens_of(&self, o: &Order) -> Vec<&super::specimen::Specimen> {
        self.order_specimens.get(&o.id).map(|l| l.iter().filter_map(|b| self.specimens.get(b)).collect()).unwrap_or_default()
    }

    pub fn order_view(&self, o: &Order, tz: &chrono_tz::Tz) -> Value {
        let items: Vec<Value> = o
            .items
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
                // Printed: on a tube that was not rejected (a rejected tube's items print again).
                v["printed"] =
                    i.barcode.as_ref().and_then(|b| self.specimens.get(b)).is_some_and(|s| s.status != super::specimen::SpecimenStatus::Rejected).into();
                v
            })
            .collect();
        let mut v = json!({
            "order_id": o.order_id(),
            "institution_id": o.institution_id,
            "lab_id": o.lab_id,
            "patient_id": o.patient_id,
            "patient": o.patient.masked(),
            "doctor_id": o.doctor_id,
            "order_type": o.order_type,
            "items": items,
            "status": o.status.as_str(),
            "payment_status": o.payment_status.as_str(),
            "collect_before_payment": o.collect_before_payment,
            "created_at": crate::clock::format_ms(o.created_ms, tz),
            "specimens": self.specimens_of(o).iter().map(|s| s.barcode.clone()).collect::<Vec<_>>(),
        });
        for (k, val) in [
            ("age", &o.age),
            ("diagnosis", &o.diagnosis),
            ("doctor_name", &o.doctor_name),
            ("department", &o.department),
            ("cancel_reason", &o.cancel_reason),
            ("receipt_no", &o.receipt_no),
        ] {
            if let Some(x) = val {
                v[k] = x.clone().into();
            }
        }
        for (k, t) in [("cancelled_at", o.cancelled_ms), ("paid_at", o.paid_ms), ("refunded_at", o.refunded_ms)] {
            if let Some(t) = t {
                v[k] = crate::clock::format_ms(t, tz).into();
            }
        }
        v
    }
}

/// `lab-list {institution_id?}`: the labs that offer projects in the
/// network (those with a local code for at least one standard project),
/// with what they offer; for an institution, only those that serve it
/// today (a lab under agreements, only with one in force for it).
pub(crate) fn labs(c: &Call) -> Result<Value> {
    let inst = opt_text(c.r, "institution_id")?;
    let today = c.local_date(c.pool.clock.now_ms());
    c.read(|d| {
        let mut labs: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
        for r in d.resources.values() {
            for lab in r.local_codes.keys() {
                labs.entry(lab).or_default().0 += 1;
            }
        }
        for p in d.panels.values() {
            if let Some(e) = labs.get_mut(p.lab_id.as_str()) {
                e.1 += 1;
            }
        }
        let list: Vec<Value> = labs
            .into_iter()
            .filter(|(l, _)| inst.as_deref().is_none_or(|i| d.serves(i, l, today)))
            .map(|(l, (p, k))| json!({"lab_id": l, "projects": p, "panels": k}))
            .collect();
        Ok(json!({"total": list.len(), "labs": list}))
    })
}

/// `lab-item-search`: the projects and panels a lab offers, by name or
/// pinyin initials (血常规 by "xcg"), best match first; for an institution,
/// only those its agreements with the lab cover today.
pub(crate) fn search(c: &Call) -> Result<Value> {
    let lab = super::code_field(c.r, "lab_id")?;
    let q = opt_text(c.r, "q")?.or(opt_text(c.r, "name")?).unwrap_or_default();
    let inst = opt_text(c.r, "institution_id")?;
    let today = c.local_date(c.pool.clock.now_ms());
    c.read(|d| {
        let covered = |code: &str| inst.as_deref().is_none_or(|i| d.may_order(i, &lab, code, today));
        let mut hits: Vec<(u8, Value)> = Vec::new();
        for r in d.resources.values() {
            let Some(local) = r.local_codes.get(&lab) else { continue };
            if !covered(&r.code) {
                continue;
            }
            if let Some(rank) = r.search_key().rank(&q) {
                let mut v = json!({"type": "item", "code": r.code, "name": r.name, "local_code": local, "price": r.price, "sub_items": r.items});
                if let Some(i) = inst.as_deref().and_then(|i| d.inst.get(i)).and_then(|t| t.project_rev.get(&r.code)) {
                    v["inst_code"] = i.clone().into();
                }
                hits.push((rank, v));
            }
        }
        for p in d.panels.values().filter(|p| p.lab_id == lab && p.resources.iter().all(|r| covered(r))) {
            let extra: Vec<&str> = p.pinyin.as_deref().into_iter().collect();
            if let Some(rank) = SearchKey::new(&p.name, &extra).rank(&q) {
                hits.push((rank, json!({"type": "panel", "code": p.code, "name": p.name, "resources": p.resources})));
            }
        }
        hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1["code"].as_str().cmp(&b.1["code"].as_str())));
        let list: Vec<Value> = hits.into_iter().map(|(_, v)| v).collect();
        Ok(json!({"lab_id": lab, "total": list.len(), "results": list}))
    })
}

/// `lab-order-submit`: `items` are the institution's own project codes (or
/// standard project codes), `panels` the lab's panel codes. Every project
/// must be offered by the lab and mapped by the institution, and every
/// standard sub-item in it mapped to one of the institution's sub-items, or
/// the order is refused naming the item; and, when the lab is under
/// agreements, covered by one in force today for the institution
/// (`LAB_NO_AGREEMENT`). `collect_before_payment: true` lets its labels
/// print before the fee is paid.
pub(crate) fn submit(c: &Call) -> Result<Value> {
    let inst = c.acting_required("institution_id")?;
    let lab = super::code_field(c.r, "lab_id")?;
    let patient_id = check_code("patient_id", &c.r.id("patient_id")?)?;
    let patient = patient_of(c.r)?.unwrap_or_default();
    let age = c.r.get("patient").and_then(|p| p.get("age")).map(|a| match a {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let doctor_id = super::code_field(c.r, "doctor_id")?;
    let doctor_name = opt_text(c.r, "doctor_name")?;
    let diagnosis = opt_text(c.r, "diagnosis")?;
    let department = opt_text(c.r, "department")?;
    let order_type = opt_text(c.r, "order_type")?.unwrap_or_else(|| "routine".into());
    let collect_before_payment = c.r.opt_bool("collect_before_payment")?.unwrap_or(false);
    let items = match c.r.opt_array("items")? {
        Some(_) => super::code_list(c.r, "items")?,
        None => Vec::new(),
    };
    let panels = match c.r.opt_array("panels")? {
        Some(_) => super::code_list(c.r, "panels")?,
        None => Vec::new(),
    };
    if items.is_empty() && panels.is_empty() {
        return Err(Error::missing("items"));
    }
    c.change(|d, ctx| {
        let t = d.inst.get(&inst);
        let mut wanted: Vec<(String, Option<String>, Option<String>)> = Vec::new(); // (resource, inst code, panel)
        for code in &items {
            // The institution's own project first, then a standard project.
            if let Some(e) = t.and_then(|t| t.projects.get(code)) {
                let std = e.std_code.clone().ok_or_else(|| unmapped(code, "project"))?;
                wanted.push((std, Some(code.clone()), None));
            } else if d.resources.contains_key(code) {
                let own = t.and_then(|t| t.project_rev.get(code)).cloned();
                wanted.push((code.clone(), own, None));
            } else {
                return Err(Error::new(ErrorCode::LabResourceNotFound));
            }
        }
        for p in &panels {
            let panel = d.panels.get(&panel_key(&lab, p)).ok_or_else(|| Error::new(ErrorCode::LabPanelNotFound))?;
            for r in &panel.resources {
                let own = t.and_then(|t| t.project_rev.get(r)).cloned();
                wanted.push((r.clone(), own, Some(p.clone())));
            }
        }
        let day = c.local_date(ctx.now);
        let checked = d.under_agreements(&lab);
        let mut out: Vec<OrderItem> = Vec::new();
        for (code, own, panel) in wanted {
            if out.iter().any(|i| i.resource_code == code) {
                continue;
            }
            let res = d.resources.get(&code).ok_or_else(|| Error::new(ErrorCode::LabResourceNotFound))?;
            let local = res.local_codes.get(&lab).ok_or_else(|| not_offered(&code))?;
            // The agreement before the mappings: without one, mapping would not help.
            let agreement_id = if checked {
                Some(d.agreement_for(&inst, &lab, &code, day).ok_or_else(|| no_agreement(&code, day))?.agreement_id.clone())
            } else {
                None
            };
            for sub in &res.items {
                if !t.is_some_and(|t| t.item_rev.contains_key(sub)) {
                    let name = d.std_items.get(sub).map(|s| s.name.as_str()).unwrap_or("");
                    return Err(Error::with(
                        ErrorCode::LabItemUnmapped,
                        format!("standard sub-item {sub} of project {code} is not mapped to any sub-item of the ordering institution"),
                        format!("项目 {code} 的标准检验小项 {sub}（{name}）未与本机构检验小项对照"),
                    ));
                }
            }
            out.push(OrderItem {
                resource_code: code.clone(),
                name: res.name.clone(),
                inst_code: own,
                local_code: local.clone(),
                panel,
                barcode: None,
                agreement_id,
            });
        }
        let id = {
            d.next_order += 1;
            d.next_order
        };
        let o = Order {
            id,
            institution_id: inst.clone(),
            lab_id: lab.clone(),
            patient_id,
            patient,
            age,
            diagnosis,
            doctor_id,
            doctor_name,
            department,
            order_type,
            items: out,
            status: OrderStatus::Submitted,
            created_ms: ctx.now,
            cancelled_ms: None,
            cancel_reason: None,
            collect_before_payment,
            payment_status: PaymentStatus::Unpaid,
            paid_ms: None,
            receipt_no: None,
            refunded_ms: None,
        };
        ctx.put(o.key(), &o);
        let view = d.order_view(&o, &c.pool.cfg.tz);
        ctx.event(
            "lab_order_submitted",
            Some(&inst),
            Some(&o.patient_id),
            json!({"order_id": o.order_id(), "lab_id": lab, "items": o.items.iter().map(|i| json!({"code": i.resource_code, "local_code": i.local_code})).collect::<Vec<_>>()}),
        );
        d.orders.insert(id, o);
        Ok(view)
    })
}

/// `LAB_ITEM_UNMAPPED` for a code the institution's own table holds (it
/// matched a stored entry, so it is the catalogue's value, not free input).
fn unmapped(code: &str, what: &str) -> Error {
    Error::with(
        ErrorCode::LabItemUnmapped,
        format!("{what} {code} is not mapped to the standard catalogue"),
        format!("{} {code} 未与标准目录对照", if what == "project" { "检验项目" } else { "检验小项" }),
    )
}

/// The order a request names, checked for the acting institution (`side`:
/// the ordering institution or the lab).
pub(crate) fn order_id(c: &Call) -> Result<u64> {
    parse_id("order_id", "LO", &c.r.id("order_id")?)
}

pub(crate) enum Side {
    Orderer,
    Lab,
    Either,
}

pub(crate) fn check_side(o: &Order, acting: Option<&str>, side: Side) -> Result<()> {
    let Some(a) = acting else { return Ok(()) };
    let ok = match side {
        Side::Orderer => o.institution_id == a,
        Side::Lab => o.lab_id == a,
        Side::Either => o.institution_id == a || o.lab_id == a,
    };
    if ok {
        Ok(())
    } else {
        Err(forbidden())
    }
}

pub(crate) fn cancel(c: &Call) -> Result<Value> {
    let id = order_id(c)?;
    let acting = c.acting("institution_id")?;
    let reason = opt_text(c.r, "reason")?;
    c.change(|d, ctx| {
        let o = d.order(id)?;
        check_side(o, acting.as_deref(), Side::Orderer)?;
        match d.derive_status(o) {
            OrderStatus::Cancelled => return Err(Error::new(ErrorCode::LabOrderCancelled)),
            OrderStatus::Received | OrderStatus::PartiallyReported | OrderStatus::Reported => return Err(Error::new(ErrorCode::LabOrderReceived)),
            _ => {}
        }
        let mut o = o.clone();
        o.status = OrderStatus::Cancelled;
        o.cancelled_ms = Some(ctx.now);
        o.cancel_reason = reason;
        ctx.put(o.key(), &o);
        ctx.event(
            "lab_order_cancelled",
            Some(&o.institution_id),
            Some(&o.patient_id),
            json!({"order_id": o.order_id(), "lab_id": o.lab_id, "reason": o.cancel_reason, "refund_due": o.payment_status == PaymentStatus::Paid}),
        );
        let v = d.order_view(&o, &c.pool.cfg.tz);
        d.orders.insert(id, o);
        Ok(v)
    })
}

pub(crate) fn info(c: &Call) -> Result<Value> {
    let id = order_id(c)?;
    let acting = c.acting("institution_id")?;
    c.read(|d| {
        let o = d.order(id)?;
        check_side(o, acting.as_deref(), Side::Either)?;
        let mut v = d.order_view(o, &c.pool.cfg.tz);
        v["status"] = d.derive_status(o).as_str().into();
        Ok(v)
    })
}

/// `lab-order-query`: the institution's orders (a doctor's own with
/// `doctor_id`) by type, date range, status and patient name (fuzzy).
pub(crate) fn query(c: &Call) -> Result<Value> {
    let inst = c.acting_required("institution_id")?;
    let doctor = opt_text(c.r, "doctor_id")?;
    let otype = opt_text(c.r, "order_type")?;
    let status = match opt_text(c.r, "status")? {
        Some(s) => Some(OrderStatus::parse(&s).ok_or_else(|| Error::invalid("status", "unknown order status"))?),
        None => None,
    };
    let name = opt_text(c.r, "patient_name")?;
    let patient = c.r.opt_id("patient_id")?;
    let payment = opt_text(c.r, "payment_status")?.map(|s| PaymentStatus::parse(&s)).transpose()?;
    let from = match opt_text(c.r, "from")? {
        Some(s) => Some(parse_date(&s).ok_or_else(|| Error::invalid("from", "expected a date YYYY-MM-DD"))?),
        None => None,
    };
    let to = match opt_text(c.r, "to")? {
        Some(s) => Some(parse_date(&s).ok_or_else(|| Error::invalid("to", "expected a date YYYY-MM-DD"))?),
        None => None,
    };
    c.read(|d| {
        let mut list = Vec::new();
        for o in d.orders.values().rev() {
            let is_lab = o.lab_id == inst;
            if o.institution_id != inst && !is_lab {
                continue;
            }
            let st = d.derive_status(o);
            let day = c.local_date(o.created_ms);
            if doctor.as_deref().is_some_and(|x| o.doctor_id != x)
                || patient.as_deref().is_some_and(|x| o.patient_id != x)
                || otype.as_deref().is_some_and(|x| o.order_type != x)
                || status.is_some_and(|x| st != x)
                || payment.is_some_and(|x| o.payment_status != x)
                || from.is_some_and(|f| day < f)
                || to.is_some_and(|t| day > t)
                || name.as_deref().is_some_and(|q| o.patient.name.as_deref().is_none_or(|n| SearchKey::new(n, &[]).rank(q).is_none()))
            {
                continue;
            }
            let mut v = d.order_view(o, &c.pool.cfg.tz);
            v["status"] = st.as_str().into();
            list.push(v);
        }
        Ok(json!({"total": list.len(), "orders": list}))
    })
}

/// `lab-order-payment {order_id, payment_status: "paid" | "refunded",
/// receipt_no?, time?}`: the ordering institution records the fee paid at
/// its window or kiosk (then the labels print), or refunded once the order
/// is cancelled (a refund needs the cancellation first, as for exams).
/// Paying a paid order again, or refunding a refunded one, changes nothing.
pub(crate) fn payment(c: &Call) -> Result<Value> {
    let id = order_id(c)?;
    let acting = c.acting("institution_id")?;
    let to = match c.r.str("payment_status")? {
        "paid" => PaymentStatus::Paid,
        "refunded" => PaymentStatus::Refunded,
        _ => return Err(Error::invalid_zh("payment_status", "expected paid or refunded", "应为 `paid` 或 `refunded`")),
    };
    let receipt_no = match c.r.opt_str("receipt_no")? {
        Some(s) => Some(check_code("receipt_no", s)?),
        None => None,
    };
    let at = c.time("time")?;
    c.change(|d, ctx| {
        let o = d.order(id)?;
        check_side(o, acting.as_deref(), Side::Orderer)?;
        let state = |en: &'static str, zh: &'static str| Err(Error::with(ErrorCode::LabPaymentState, en, zh));
        match (o.payment_status, to) {
            (PaymentStatus::Paid, PaymentStatus::Paid) | (PaymentStatus::Refunded, PaymentStatus::Refunded) => {
                let mut v = d.order_view(o, &c.pool.cfg.tz);
                v["status"] = d.derive_status(o).as_str().into();
                return Ok(v);
            }
            // Refunded means cancelled: a cancelled order takes no payment.
            (_, PaymentStatus::Paid) if o.status == OrderStatus::Cancelled => return Err(Error::new(ErrorCode::LabOrderCancelled)),
            (PaymentStatus::Unpaid, PaymentStatus::Refunded) => return state("nothing was paid, so nothing can be refunded", "该申请未缴费，无需退费"),
            (PaymentStatus::Paid, PaymentStatus::Refunded) if o.status != OrderStatus::Cancelled => {
                return state("a refund needs the order cancelled first", "退费须先取消委托检验申请")
            }
            _ => {}
        }
        let mut o = o.clone();
        o.payment_status = to;
        let kind = if to == PaymentStatus::Paid {
            o.paid_ms = Some(at);
            o.receipt_no = receipt_no;
            "lab_order_paid"
        } else {
            o.refunded_ms = Some(at);
            "lab_order_refunded"
        };
        ctx.put(o.key(), &o);
        ctx.event(kind, Some(&o.institution_id), Some(&o.patient_id), json!({"order_id": o.order_id(), "lab_id": o.lab_id, "payment_status": to.as_str()}));
        let mut v = d.order_view(&o, &c.pool.cfg.tz);
        v["status"] = d.derive_status(&o).as_str().into();
        d.orders.insert(id, o);
        Ok(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_stored_before_payments_were_recorded_prints_as_it_did() {
        let row = r#"{"id":1,"institution_id":"C001","lab_id":"H001","patient_id":"P001","doctor_id":"D01","order_type":"routine",
                      "items":[],"status":"submitted","created_ms":0}"#;
        let o: Order = serde_json::from_str(row).unwrap();
        assert!(o.collect_before_payment && o.may_collect());
        assert_eq!(o.payment_status, PaymentStatus::Unpaid);
        // Written again, the flag is explicit: a new unpaid order stays unprintable.
        let mut o2 = o.clone();
        o2.collect_before_payment = false;
        let back: Order = serde_json::from_str(&serde_json::to_string(&o2).unwrap()).unwrap();
        assert!(!back.collect_before_payment && !back.may_collect());
    }
}
