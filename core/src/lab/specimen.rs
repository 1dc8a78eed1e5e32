//! Specimens and labels (L5, 样本打印): barcodes by each institution's rule,
//! unique across restarts (the sequence is stored with the specimen) and
//! concurrent printing (one lock); tube merging (合管) by specimen type,
//! container and workgroup; reprint keeps the barcode.

use super::order::{check_side, order_id, Order, OrderStatus, Side};
use super::{code_field, opt_text, Call, Ctx, LabData};
use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use crate::request::parse_date;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DatePart {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "YYMMDD")]
    YyMmDd,
    #[serde(rename = "YYYYMMDD")]
    YyyyMmDd,
    #[serde(rename = "YYMM")]
    YyMm,
}

/// An institution's barcode rule: `prefix` + date part + a zero-padded
/// sequence of `seq_width` digits (restarting with each date part).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct BarcodeRule {
    pub institution_id: String,
    pub prefix: String,
    pub date: DatePart,
    pub seq_width: u32,
    /// Print the patient's name masked (张*) on labels.
    pub mask_patient_name: bool,
}

impl BarcodeRule {
    pub fn default_for(inst: &str) -> BarcodeRule {
        BarcodeRule { institution_id: inst.to_string(), prefix: String::new(), date: DatePart::YyMmDd, seq_width: 6, mask_patient_name: true }
    }
    fn stem(&self, day: chrono::NaiveDate) -> String {
        let date = match self.date {
            DatePart::None => String::new(),
            DatePart::YyMmDd => day.format("%y%m%d").to_string(),
            DatePart::YyyyMmDd => day.format("%Y%m%d").to_string(),
            DatePart::YyMm => day.format("%y%m").to_string(),
        };
        format!("{}{date}", self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SpecimenStatus {
    /// Label printed, waiting to be shipped (待送检).
    Printed,
    Shipped,
    Received,
    /// Registered as unacceptable by the lab (不合格).
    Rejected,
}

impl SpecimenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecimenStatus::Printed => "printed",
            SpecimenStatus::Shipped => "shipped",
            SpecimenStatus::Received => "received",
            SpecimenStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Reception {
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    pub at_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Rejection {
    pub reason: String,
    pub reject_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    pub registrar: String,
    pub contact: String,
    pub at_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Specimen {
    pub barcode: String,
    pub order_id: u64,
    pub institution_id: String,
    pub lab_id: String,
    pub patient_id: String,
    pub specimen_type: String,
    pub container_code: String,
    pub container_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_colour: Option<String>,
    pub workgroup: String,
    /// Standard projects in the tube.
    pub items: Vec<String>,
    /// Standard sub-items the tube is to answer.
    pub sub_items: Vec<String>,
    pub status: SpecimenStatus,
    pub printed_ms: Millis,
    pub print_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Reception>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
}

impl Specimen {
    pub fn key(&self) -> String {
        format!("specimen:{}", self.barcode)
    }
    pub fn view(&self, d: &LabData, tz: &chrono_tz::Tz) -> Value {
        let fmt = |ms| crate::clock::format_ms(ms, tz);
        let mut v = json!({
            "barcode": self.barcode,
            "order_id": super::format_id("LO", self.order_id),
            "institution_id": self.institution_id,
            "lab_id": self.lab_id,
            "patient_id": self.patient_id,
            "specimen_type": self.specimen_type,
            "container_code": self.container_code,
            "container_name": self.container_name,
            "workgroup": self.workgroup,
            "items": self.items.iter().map(|c| json!({"code": c, "name": d.resources.get(c).map(|r| r.name.as_str())})).collect::<Vec<_>>(),
            "sub_items": self.sub_items,
            "status": self.status.as_str(),
            "printed_at": fmt(self.printed_ms),
            "print_count": self.print_count,
        });
        if let Some(c) = &self.cap_colour {
            v["cap_colour"] = c.clone().into();
        }
        if let Some(s) = self.shipment_id {
            v["shipment_id"] = super::format_id("SH", s).into();
        }
        if let Some(r) = &self.received {
            v["received"] = json!({"by": r.by, "contact": r.contact, "at": fmt(r.at_ms)});
        }
        if let Some(r) = &self.rejection {
            v["rejection"] = json!({"reason": r.reason, "reject_type": r.reject_type, "remark": r.remark, "registrar": r.registrar, "contact": r.contact, "at": fmt(r.at_ms)});
        }
        v
    }
}

impl LabData {
    pub fn specimen(&self, barcode: &str) -> Result<&Specimen> {
        self.specimens.get(barcode).ok_or_else(|| Error::new(ErrorCode::LabSpecimenNotFound))
    }

    /// Stores the order's derived status when it changed.
    pub fn refresh_order(&mut self, ctx: &mut Ctx, id: u64) {
        let Some(o) = self.orders.get(&id) else { return };
        let st = self.derive_status(o);
        if st != o.status {
            let mut o = o.clone();
            o.status = st;
            ctx.put(o.key(), &o);
            self.orders.insert(id, o);
        }
    }

    /// The next barcode of a rule; the sequence is shared by every rule with
    /// the same prefix and date part, so barcodes never repeat.
    fn next_barcode(&mut self, ctx: &mut Ctx, rule: &BarcodeRule, day: chrono::NaiveDate, taken: &[String]) -> Result<String> {
        let stem = rule.stem(day);
        let limit = 10u64.checked_pow(rule.seq_width).unwrap_or(u64::MAX);
        let mut n = self.barcode_seq.get(&stem).copied().unwrap_or(0);
        loop {
            // `n` is read back from the store: at its top it is exhausted, not wrapped.
            n = n.saturating_add(1);
            if n >= limit {
                return Err(Error::new(ErrorCode::LabBarcodeExhausted));
            }
            let code = format!("{stem}{n:0width$}", width = rule.seq_width as usize);
            if !self.specimens.contains_key(&code) && !taken.contains(&code) {
                self.barcode_seq.insert(stem.clone(), n);
                ctx.put(format!("seq:{stem}"), &n);
                return Ok(code);
            }
        }
    }
}

/// `lab-barcode-rule-set {institution_id, prefix, date, seq_width, mask_patient_name}`.
pub(crate) fn barcode_rule_set(c: &Call) -> Result<Value> {
    let inst = c.owner("institution_id")?;
    let bad = |why: &str, why_zh: &str| Error::with(ErrorCode::LabBarcodeRuleInvalid, format!("barcode rule: {why}"), format!("条码规则无效：{why_zh}"));
    let prefix = c.r.opt_str("prefix")?.unwrap_or("").to_string();
    if prefix.len() > 12 || !prefix.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(bad("prefix must be up to 12 ASCII letters or digits (Code 128)", "前缀最多12个ASCII字母或数字（Code 128）"));
    }
    let date = match c.r.opt_str("date")?.unwrap_or("YYMMDD") {
        "none" | "NONE" => DatePart::None,
        "YYMMDD" => DatePart::YyMmDd,
        "YYYYMMDD" => DatePart::YyyyMmDd,
        "YYMM" => DatePart::YyMm,
        _ => return Err(bad("date must be none, YYMMDD, YYYYMMDD or YYMM", "日期部分应为 none、YYMMDD、YYYYMMDD 或 YYMM")),
    };
    let width = c.r.opt_u32("seq_width")?.unwrap_or(6);
    if !(3..=10).contains(&width) {
        return Err(bad("seq_width must be 3 to 10", "流水号位数应在3到10之间"));
    }
    let mask = c.r.opt_bool("mask_patient_name")?.unwrap_or(true);
    let rule = BarcodeRule { institution_id: inst.clone(), prefix, date, seq_width: width, mask_patient_name: mask };
    c.change(|d, ctx| {
        ctx.put(format!("rule:{inst}"), &rule);
        let v = serde_json::to_value(&rule).unwrap_or(Value::Null);
        ctx.event("lab_barcode_rule_set", Some(&inst), None, v.clone());
        d.barcode_rules.insert(inst.clone(), rule);
        Ok(v)
    })
}

/// The tube key of a standard sub-item: (specimen type, container, workgroup).
fn tube_of(d: &LabData, rules: &[super::catalog::TubeRule], std: &str) -> Result<(String, String, String, Option<String>, String)> {
    let it = d.std_items.get(std).ok_or_else(|| Error::new(ErrorCode::LabStdItemNotFound))?;
    let wg = it.workgroup.clone().unwrap_or_default();
    let rule = rules.iter().find(|r| r.specimen_type == it.specimen_type && r.workgroup == wg).ok_or_else(|| {
        Error::with(
            ErrorCode::LabTubeRuleNotFound,
            format!("no tube rule for specimen type {} and workgroup {wg} (sub-item {std})", it.specimen_type),
            format!("没有样本类型 {} 与专业组 {wg} 的合管规则（小项 {std}）", it.specimen_type),
        )
    })?;
    Ok((it.specimen_type.clone(), rule.container_code.clone(), wg, rule.cap_colour.clone(), rule.container_name.clone()))
}

fn usable_order<'a>(d: &'a LabData, c: &Call, id: u64) -> Result<&'a Order> {
    let o = d.order(id)?;
    check_side(o, c.acting("institution_id")?.as_deref(), Side::Orderer)?;
    if o.status == OrderStatus::Cancelled {
        return Err(Error::new(ErrorCode::LabOrderCancelled));
    }
    Ok(o)
}

/// `specimen-print {order_id, items?, format?}`: prints every unprinted item
/// (or those named), one tube per specimen type, container and workgroup;
/// items whose tube was rejected are printed again on a new tube. The fee
/// comes first: an unpaid order is refused (`LAB_ORDER_UNPAID`) unless it
/// says `collect_before_payment`.
pub(crate) fn print(c: &Call) -> Result<Value> {
    let id = order_id(c)?;
    let only = match c.r.opt_array("items")? {
        Some(_) => Some(super::code_list(c.r, "items")?),
        None => None,
    };
    let format = super::labels::format_of(c)?;
    c.change(|d, ctx| {
        let o = usable_order(d, c, id)?.clone();
        if !o.may_collect() {
            return Err(Error::with(
                ErrorCode::LabOrderUnpaid,
                format!("order {} is not paid; record the payment (lab-order-payment) before printing its labels", o.order_id()),
                format!("申请单 {} 尚未缴费，请先登记缴费（`lab-order-payment`）再打印条码", o.order_id()),
            ));
        }
        let pending: Vec<usize> = o
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| match &it.barcode {
                None => true,
                Some(b) => d.specimens.get(b).is_some_and(|s| s.status == SpecimenStatus::Rejected),
            })
            .filter(|(_, it)| only.as_ref().is_none_or(|l| l.iter().any(|x| *x == it.resource_code || it.inst_code.as_deref() == Some(x))))
            .map(|(i, _)| i)
            .collect();
        if let Some(l) = &only {
            if l.iter().any(|x| !o.items.iter().any(|it| it.resource_code == *x || it.inst_code.as_deref() == Some(x))) {
                return Err(Error::with(ErrorCode::LabItemNotOrdered, "an item of `items` is not in the order", "`items` 中有项目不在申请单中"));
            }
        }
        if pending.is_empty() {
            return Err(Error::new(ErrorCode::LabNothingToPrint));
        }
        let rules = d.tube_rules().into_owned();
        // Tubes in order of first appearance: key → (items, sub-items).
        type Tube = ((String, String, String), Option<String>, String, Vec<String>, Vec<String>);
        let mut tubes: Vec<Tube> = Vec::new();
        let mut item_tube: Vec<(usize, usize)> = Vec::new();
        for i in &pending {
            let it = &o.items[*i];
            let res = d.resources.get(&it.resource_code).ok_or_else(|| Error::new(ErrorCode::LabResourceNotFound))?;
            let mut first = None;
            for sub in &res.items {
                let (st, cont, wg, cap, cname) = tube_of(d, &rules, sub)?;
                let key = (st, cont, wg);
                let t = match tubes.iter().position(|t| t.0 == key) {
                    Some(t) => t,
                    None => {
                        tubes.push((key, cap, cname, Vec::new(), Vec::new()));
                        tubes.len() - 1
                    }
                };
                if !tubes[t].3.contains(&it.resource_code) {
                    tubes[t].3.push(it.resource_code.clone());
                }
                if !tubes[t].4.contains(sub) {
                    tubes[t].4.push(sub.clone());
                }
                first.get_or_insert(t);
            }
            if let Some(t) = first {
                item_tube.push((*i, t));
            }
        }
        let rule = d.barcode_rules.get(&o.institution_id).cloned().unwrap_or_else(|| BarcodeRule::default_for(&o.institution_id));
        let day = c.local_date(ctx.now);
        // Every barcode first: nothing is stored if the sequence runs out.
        let mut codes = Vec::new();
        for _ in &tubes {
            codes.push(d.next_barcode(ctx, &rule, day, &codes)?);
        }
        let mut made = Vec::new();
        for (((st, cont, wg), cap, cname, items, subs), barcode) in tubes.into_iter().zip(codes) {
            let sp = Specimen {
                barcode: barcode.clone(),
                order_id: id,
                institution_id: o.institution_id.clone(),
                lab_id: o.lab_id.clone(),
                patient_id: o.patient_id.clone(),
                specimen_type: st,
                container_code: cont,
                container_name: cname,
                cap_colour: cap,
                workgroup: wg,
                items,
                sub_items: subs,
                status: SpecimenStatus::Printed,
                printed_ms: ctx.now,
                print_count: 1,
                shipment_id: None,
                received: None,
                rejection: None,
            };
            ctx.put(sp.key(), &sp);
            made.push(barcode.clone());
            d.order_specimens.entry(id).or_default().push(barcode.clone());
            d.specimens.insert(barcode, sp);
        }
        let mut o = o;
        for (i, t) in item_tube {
            o.items[i].barcode = Some(made[t].clone());
        }
        ctx.put(o.key(), &o);
        d.orders.insert(id, o.clone());
        d.refresh_order(ctx, id);
        ctx.event("specimen_printed", Some(&o.institution_id), Some(&o.patient_id), json!({"order_id": o.order_id(), "barcodes": made}));
        let tz = c.pool.cfg.tz;
        let mut specimens = Vec::new();
        for b in &made {
            let sp = d.specimen(b)?;
            let mut v = sp.view(d, &tz);
            if let Some(f) = format {
                super::labels::attach(&mut v, d, sp, f, c)?;
            }
            specimens.push(v);
        }
        Ok(json!({"order_id": o.order_id(), "specimens": specimens}))
    })
}

/// `specimen-reprint {barcode, format?}`: the same barcode again (条码补打).
pub(crate) fn reprint(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let format = super::labels::format_of(c)?;
    c.change(|d, ctx| {
        let sp = d.specimen(&barcode)?;
        usable_order(d, c, sp.order_id)?;
        if sp.status == SpecimenStatus::Rejected {
            return Err(Error::new(ErrorCode::LabSpecimenRejected));
        }
        let mut sp = sp.clone();
        sp.print_count += 1;
        ctx.put(sp.key(), &sp);
        ctx.event("specimen_reprinted", Some(&sp.institution_id), Some(&sp.patient_id), json!({"barcode": sp.barcode, "print_count": sp.print_count}));
        d.specimens.insert(barcode.clone(), sp);
        let sp = d.specimen(&barcode)?;
        let mut v = sp.view(d, &c.pool.cfg.tz);
        if let Some(f) = format {
            super::labels::attach(&mut v, d, sp, f, c)?;
        }
        Ok(v)
    })
}

/// `specimen-label {barcode, format, width_mm?, height_mm?}`: the label
/// alone, never counted as a print.
pub(crate) fn label(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let format = super::labels::format_of(c)?.ok_or_else(|| Error::missing("format"))?;
    c.read(|d| {
        let sp = d.specimen(&barcode)?;
        let o = d.order(sp.order_id)?;
        check_side(o, c.acting("institution_id")?.as_deref(), Side::Either)?;
        let mut v = json!({"barcode": barcode});
        super::labels::attach(&mut v, d, sp, format, c)?;
        Ok(v)
    })
}

/// `specimen-query {institution_id, status?, barcode?, from?, to?}`: the
/// institution's specimens (or the lab's), by barcode and order date.
pub(crate) fn query(c: &Call) -> Result<Value> {
    let inst = c.acting_required("institution_id")?;
    let status = opt_text(c.r, "status")?;
    let barcode = opt_text(c.r, "barcode")?;
    let from = c.r.opt_str("from")?.map(|s| parse_date(s).ok_or_else(|| Error::invalid("from", "expected a date YYYY-MM-DD"))).transpose()?;
    let to = c.r.opt_str("to")?.map(|s| parse_date(s).ok_or_else(|| Error::invalid("to", "expected a date YYYY-MM-DD"))).transpose()?;
    c.read(|d| {
        let tz = c.pool.cfg.tz;
        let list: Vec<Value> = d
            .specimens
            .values()
            .filter(|s| s.institution_id == inst || s.lab_id == inst)
            .filter(|s| status.as_deref().is_none_or(|q| s.status.as_str() == q))
            .filter(|s| barcode.as_deref().is_none_or(|q| s.barcode == q))
            .filter(|s| {
                let day = d.orders.get(&s.order_id).map(|o| c.local_date(o.created_ms));
                from.is_none_or(|f| day.is_some_and(|x| x >= f)) && to.is_none_or(|t| day.is_some_and(|x| x <= t))
            })
            .map(|s| s.view(d, &tz))
            .collect();
        Ok(json!({"total": list.len(), "specimens": list}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcode_stems_follow_the_rule() {
        let day = chrono::NaiveDate::from_ymd_opt(2024, 10, 29).unwrap();
        let mut r = BarcodeRule::default_for("C001");
        assert_eq!(r.stem(day), "241029");
        r.prefix = "C1".into();
        r.date = DatePart::YyyyMmDd;
        assert_eq!(r.stem(day), "C120241029");
        r.date = DatePart::YyMm;
        assert_eq!(r.stem(day), "C12410");
        r.date = DatePart::None;
        assert_eq!(r.stem(day), "C1");
    }
}
