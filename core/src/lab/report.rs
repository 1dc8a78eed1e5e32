//! Reports (L8, 委托检验报告回传): structured results per sub-item, matched
//! by barcode and order and translated into the ordering institution's
//! sub-items, with a completeness check and revision history; unstructured
//! reports (PDF, images) signed by the issuing lab (SM2), verified on receipt.

use super::order::{check_side, OrderStatus, Side};
use super::qualitative::{assess, Reading};
use super::specimen::SpecimenStatus;
use super::translate::value_text;
use super::{code_field, format_id, opt_text, parse_id, text, Call, LabData};
use crate::clock::Millis;
use crate::error::{Error, ErrorCode, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ResultRow {
    pub std_code: String,
    /// The code the lab sent (its own or the standard's).
    pub lab_code: String,
    pub inst_code: String,
    pub inst_name: String,
    pub value: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub ref_range: String,
    /// N normal, H high, L low, HH/LL beyond the critical limits, A abnormal
    /// (qualitative), R needs review (the value could not be read against the
    /// sub-item's reference). See `qualitative::assess`.
    pub flag: String,
    #[serde(default)]
    pub critical: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifiable_infection: Option<String>,
    /// The qualitative reading (negative, equivocal, weak_positive, positive)
    /// of a sub-item with a qualitative reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpretation: Option<String>,
    /// A person must review this result (待复核): unreadable, equivocal, or
    /// the lab's flag contradicting its value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_review: bool,
    /// The notifiable infection a result under review may show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifiable_suspected: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Revision {
    pub revision: u32,
    pub complete: bool,
    pub results: Vec<ResultRow>,
    /// The ordering institution's sub-items still without a result.
    pub missing: Vec<String>,
    pub tester: String,
    pub reviewer: String,
    pub report_ms: Millis,
    pub received_ms: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Report {
    pub barcode: String,
    pub order_id: u64,
    pub lab_id: String,
    pub institution_id: String,
    pub patient_id: String,
    /// Oldest first; the last is the report in force.
    pub revisions: Vec<Revision>,
}

impl Report {
    pub fn current(&self) -> Option<&Revision> {
        self.revisions.last()
    }
    pub fn is_final(&self) -> bool {
        self.current().is_some_and(|r| r.complete)
    }
    pub fn view(&self, tz: &chrono_tz::Tz, history: bool) -> Value {
        let fmt = |ms| crate::clock::format_ms(ms, tz);
        let rev = |r: &Revision| {
            json!({
                "revision": r.revision,
                "status": if r.complete { "final" } else { "partial" },
                "results": r.results,
                "missing": r.missing,
                "tester": r.tester,
                "reviewer": r.reviewer,
                "report_time": fmt(r.report_ms),
                "received_at": fmt(r.received_ms),
            })
        };
        let Some(cur) = self.current() else { return Value::Null };
        let notifiable: Vec<Value> = cur
            .results
            .iter()
            .filter_map(|r| {
                r.notifiable_infection.as_ref().map(|d| json!({"inst_code": r.inst_code, "inst_name": r.inst_name, "disease": d, "value": r.value}))
            })
            .collect();
        let mut v = rev(cur);
        v["barcode"] = self.barcode.clone().into();
        v["order_id"] = format_id("LO", self.order_id).into();
        v["lab_id"] = self.lab_id.clone().into();
        v["institution_id"] = self.institution_id.clone().into();
        v["corrected"] = (self.revisions.len() > 1).into();
        v["abnormal"] = cur.results.iter().filter(|r| r.flag != "N").map(|r| r.inst_code.clone()).collect::<Vec<_>>().into();
        v["critical_candidates"] = cur.results.iter().filter(|r| r.critical).map(|r| r.inst_code.clone()).collect::<Vec<_>>().into();
        v["notifiable_infections"] = notifiable.into();
        v["needs_review"] = cur.results.iter().filter(|r| r.needs_review).map(|r| r.inst_code.clone()).collect::<Vec<_>>().into();
        if history {
            v["history"] = self.revisions.iter().map(rev).collect::<Vec<_>>().into();
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Document {
    pub id: u64,
    pub barcode: String,
    pub order_id: u64,
    pub lab_id: String,
    pub institution_id: String,
    pub version: u32,
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub content_base64: String,
    pub size: usize,
    pub sm3: String,
    pub signature: String,
    pub received_ms: Millis,
}

impl Document {
    fn view(&self, tz: &chrono_tz::Tz, content: bool) -> Value {
        let mut v = json!({
            "document_id": format_id("RD", self.id),
            "barcode": self.barcode,
            "order_id": format_id("LO", self.order_id),
            "lab_id": self.lab_id,
            "version": self.version,
            "corrected": self.version > 1,
            "content_type": self.content_type,
            "title": self.title,
            "size": self.size,
            "sm3": self.sm3,
            "signature": self.signature,
            "signature_verified": true,
            "received_at": crate::clock::format_ms(self.received_ms, tz),
        });
        if content {
            v["content_base64"] = self.content_base64.clone().into();
        }
        v
    }
}

/// The standard sub-item a lab's result code stands for: the lab's own
/// sub-item code (its mapping) first, then a standard code.
pub(crate) fn resolve(d: &LabData, lab: &str, code: &str) -> Option<String> {
    d.inst.get(lab).and_then(|t| t.items.get(code)).and_then(|e| e.std_code.clone()).or_else(|| d.std_items.contains_key(code).then(|| code.to_string()))
}

/// The specimen a report names, matched by barcode and order, for the lab.
fn report_target<'a>(c: &Call, d: &'a LabData, barcode: &str, order: u64) -> Result<&'a super::specimen::Specimen> {
    let sp = d.specimen(barcode)?;
    if sp.order_id != order {
        return Err(Error::with(
            ErrorCode::LabSpecimenNotFound,
            format!("specimen {barcode} does not belong to order {}", format_id("LO", order)),
            format!("样本 {barcode} 不属于申请单 {}", format_id("LO", order)),
        ));
    }
    let o = d.order(order)?;
    check_side(o, c.acting("lab_id")?.as_deref(), Side::Lab)?;
    if o.status == OrderStatus::Cancelled {
        return Err(Error::new(ErrorCode::LabOrderCancelled));
    }
    match sp.status {
        SpecimenStatus::Received => Ok(sp),
        SpecimenStatus::Rejected => Err(Error::new(ErrorCode::LabSpecimenRejected)),
        _ => Err(Error::with(ErrorCode::LabSpecimenState, "the lab has not received the specimen", "检验机构尚未接收该样本")),
    }
}

/// `report-submit {barcode, order_id, results, tester, reviewer, report_time?}`.
pub(crate) fn submit(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let order = parse_id("order_id", "LO", &c.r.id("order_id")?)?;
    let tester = text(c.r, "tester")?;
    let reviewer = text(c.r, "reviewer")?;
    let report_ms = c.time("report_time")?;
    let arr = c.r.array("results")?;
    if arr.is_empty() || arr.len() > 500 {
        return Err(Error::invalid("results", "must hold 1 to 500 results"));
    }
    let mut given = Vec::new();
    for e in arr {
        let r = c.r.sub(e, "results")?;
        let code = code_field(&r, "item_code")?;
        let value = r.get("value").map(value_text).ok_or_else(|| Error::missing("value"))?;
        if value.chars().count() > 256 {
            return Err(Error::invalid("value", "longer than 256 characters"));
        }
        let flag = match opt_text(&r, "abnormal_flag")? {
            Some(f) if ["N", "H", "L", "HH", "LL", "A"].contains(&f.as_str()) => Some(f),
            Some(_) => return Err(Error::invalid("abnormal_flag", "expected N, H, L, HH, LL or A")),
            None => None,
        };
        given.push((code, value, opt_text(&r, "unit")?, opt_text(&r, "ref_range")?, flag));
    }
    c.change(|d, ctx| {
        let sp = report_target(c, d, &barcode, order)?.clone();
        let inst = d.inst.get(&sp.institution_id);
        let mut rows: Vec<ResultRow> = Vec::new();
        for (code, value, unit, range, flag) in given {
            let std = resolve(d, &sp.lab_id, &code).ok_or_else(|| Error::new(ErrorCode::LabStdItemNotFound))?;
            if !sp.sub_items.contains(&std) {
                return Err(Error::with(
                    ErrorCode::LabItemNotOrdered,
                    format!("sub-item {code} was not ordered on specimen {barcode}"),
                    format!("小项 {code} 不在样本 {barcode} 的申请项目中"),
                ));
            }
            if rows.iter().any(|r| r.std_code == std) {
                return Err(Error::invalid("results", &format!("sub-item {code} appears twice")));
            }
            let own = inst.and_then(|t| t.item_rev.get(&std)).and_then(|ic| inst.and_then(|t| t.items.get(ic))).ok_or_else(|| {
                Error::with(
                    ErrorCode::LabItemUnmapped,
                    format!("standard sub-item {std} is not mapped by institution {}", sp.institution_id),
                    format!("标准检验小项 {std} 未与申请机构的检验小项对照"),
                )
            })?;
            let item = d.std_items.get(&std).ok_or_else(|| Error::new(ErrorCode::LabStdItemNotFound))?;
            let seen = assess(item, &value);
            // The lab's own flag stands, but a flag that contradicts a value
            // read with certainty (N on 阳性, A on 阴性) goes to review.
            let contradicts = match (&flag, seen.reading) {
                (Some(f), Some(r)) if r != Reading::Equivocal => (f == "N") != (seen.flag == "N"),
                _ => false,
            };
            let review = if flag.is_some() && seen.reading.is_none() { false } else { seen.review || contradicts };
            let flag = flag.unwrap_or_else(|| seen.flag.to_string());
            // Notifiable only on what the value itself says is positive, or,
            // for a value this library cannot read, on the lab's own abnormal flag.
            let positive = match seen.reading {
                Some(r) => r.is_positive(),
                None => !review && flag != "N" && flag != "R",
            };
            let notifiable = item.notifiable_infection.clone().filter(|_| positive);
            let suspected = item.notifiable_infection.clone().filter(|_| review && !positive);
            let critical = seen.critical;
            rows.push(ResultRow {
                std_code: std.clone(),
                lab_code: code,
                inst_code: own.code.clone(),
                inst_name: own.name.clone(),
                value,
                unit: unit.or(item.unit.clone()).unwrap_or_default(),
                ref_range: range.unwrap_or_else(|| item.ref_range()),
                flag,
                critical,
                notifiable_infection: notifiable,
                interpretation: seen.reading.map(|r| r.as_str().to_string()),
                needs_review: review,
                notifiable_suspected: suspected,
            });
        }
        // Completeness: every sub-item of the tube answered.
        let missing: Vec<String> = sp
            .sub_items
            .iter()
            .filter(|s| !rows.iter().any(|r| &r.std_code == *s))
            .map(|s| inst.and_then(|t| t.item_rev.get(s)).cloned().unwrap_or_else(|| s.clone()))
            .collect();
        let mut report = d.reports.get(&barcode).cloned().unwrap_or_else(|| Report {
            barcode: barcode.clone(),
            order_id: order,
            lab_id: sp.lab_id.clone(),
            institution_id: sp.institution_id.clone(),
            patient_id: sp.patient_id.clone(),
            revisions: Vec::new(),
        });
        let revision = report.revisions.len() as u32 + 1;
        let complete = missing.is_empty();
        report.revisions.push(Revision { revision, complete, results: rows, missing: missing.clone(), tester, reviewer, report_ms, received_ms: ctx.now });
        ctx.put(format!("report:{barcode}"), &report);
        let cur = report.current().cloned();
        ctx.event(
            "lab_report_ready",
            Some(&sp.institution_id),
            Some(&sp.patient_id),
            json!({"barcode": barcode, "order_id": format_id("LO", order), "lab_id": sp.lab_id, "status": if complete { "final" } else { "partial" }, "revision": revision, "corrected": revision > 1, "missing": missing}),
        );
        if let Some(cur) = &cur {
            let inf: Vec<Value> = cur
                .results
                .iter()
                .filter_map(|r| r.notifiable_infection.as_ref().map(|dz| json!({"inst_code": r.inst_code, "inst_name": r.inst_name, "disease": dz})))
                .collect();
            if !inf.is_empty() {
                ctx.event("lab_notifiable_infection", Some(&sp.institution_id), Some(&sp.patient_id), json!({"barcode": barcode, "order_id": format_id("LO", order), "items": inf}));
            }
            let review: Vec<Value> = cur
                .results
                .iter()
                .filter(|r| r.needs_review)
                .map(|r| json!({"inst_code": r.inst_code, "inst_name": r.inst_name, "flag": r.flag, "notifiable_suspected": r.notifiable_suspected}))
                .collect();
            if !review.is_empty() {
                ctx.event("lab_result_needs_review", Some(&sp.institution_id), Some(&sp.patient_id), json!({"barcode": barcode, "order_id": format_id("LO", order), "items": review}));
            }
        }
        let v = report.view(&c.pool.cfg.tz, false);
        d.reports.insert(barcode.clone(), report);
        d.refresh_order(ctx, order);
        Ok(v)
    })
}

/// `lab-key-register {lab_id, public_key}`: the lab's SM2 public key (SEC1 hex).
pub(crate) fn key_register(c: &Call) -> Result<Value> {
    let lab = c.owner("lab_id")?;
    let pk = text(c.r, "public_key")?;
    // A well-formed signature over nothing: only the key's form is checked here.
    crate::crypto::sm2_verify(&pk, None, b"", &"01".repeat(64))?;
    c.change(|d, ctx| {
        ctx.put(format!("key:{lab}"), &pk);
        ctx.event("lab_key_registered", Some(&lab), None, json!({"lab_id": lab, "sm3": crate::crypto::sm3_hex(pk.as_bytes())}));
        d.keys.insert(lab.clone(), pk.to_lowercase());
        Ok(json!({"lab_id": lab, "registered": true}))
    })
}

/// `report-upload-document {barcode, order_id, content_base64, content_type?, title?, signature}`:
/// kept only when the lab's signature over the bytes verifies.
pub(crate) fn upload_document(c: &Call) -> Result<Value> {
    let barcode = code_field(c.r, "barcode")?;
    let order = parse_id("order_id", "LO", &c.r.id("order_id")?)?;
    let b64 = c.r.get("content_base64").and_then(Value::as_str).ok_or_else(|| Error::missing("content_base64"))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| Error::invalid("content_base64", "not valid base64"))?;
    if bytes.is_empty() {
        return Err(Error::invalid("content_base64", "the document is empty"));
    }
    let content_type = opt_text(c.r, "content_type")?.unwrap_or_else(|| "application/pdf".into());
    if !["application/pdf", "image/png", "image/jpeg", "application/ofd"].contains(&content_type.as_str()) {
        return Err(Error::invalid("content_type", "expected application/pdf, application/ofd, image/png or image/jpeg"));
    }
    let signature = text(c.r, "signature")?;
    let title = opt_text(c.r, "title")?;
    c.change(|d, ctx| {
        let sp = report_target(c, d, &barcode, order)?.clone();
        let key = d.keys.get(&sp.lab_id).ok_or_else(|| Error::new(ErrorCode::LabKeyNotFound))?;
        if !crate::crypto::sm2_verify(key, None, &bytes, &signature)? {
            return Err(Error::new(ErrorCode::LabSignatureInvalid));
        }
        let version = d.documents.values().filter(|x| x.barcode == barcode).count() as u32 + 1;
        d.next_document += 1;
        let doc = Document {
            id: d.next_document,
            barcode: barcode.clone(),
            order_id: order,
            lab_id: sp.lab_id.clone(),
            institution_id: sp.institution_id.clone(),
            version,
            content_type,
            title,
            content_base64: b64.trim().to_string(),
            size: bytes.len(),
            sm3: crate::crypto::sm3_hex(&bytes),
            signature: signature.to_lowercase(),
            received_ms: ctx.now,
        };
        ctx.put(format!("doc:{:012}", doc.id), &doc);
        ctx.event(
            "lab_report_document",
            Some(&sp.institution_id),
            Some(&sp.patient_id),
            json!({"document_id": format_id("RD", doc.id), "barcode": barcode, "order_id": format_id("LO", order), "version": version, "corrected": version > 1, "sm3": doc.sm3}),
        );
        let v = doc.view(&c.pool.cfg.tz, false);
        d.documents.insert(doc.id, doc);
        Ok(v)
    })
}

/// `report-info {barcode | order_id, history?, include_content?}`.
pub(crate) fn info(c: &Call) -> Result<Value> {
    let barcode = opt_text(c.r, "barcode")?;
    let order = c.r.opt_id("order_id")?.map(|s| parse_id("order_id", "LO", &s)).transpose()?;
    let history = c.r.opt_bool("history")?.unwrap_or(false);
    let content = c.r.opt_bool("include_content")?.unwrap_or(false);
    let acting = c.acting("institution_id")?;
    c.read(|d| {
        let tz = c.pool.cfg.tz;
        let order_id = match (&barcode, order) {
            (Some(b), _) => d.specimen(b)?.order_id,
            (None, Some(o)) => o,
            (None, None) => return Err(Error::missing("barcode")),
        };
        let o = d.order(order_id)?;
        check_side(o, acting.as_deref(), Side::Either)?;
        let barcodes: Vec<String> = match &barcode {
            Some(b) => vec![b.clone()],
            None => d.specimens_of(o).iter().map(|s| s.barcode.clone()).collect(),
        };
        let reports: Vec<Value> = barcodes.iter().filter_map(|b| d.reports.get(b)).map(|r| r.view(&tz, history)).collect();
        let docs: Vec<Value> = d.documents.values().filter(|x| barcodes.contains(&x.barcode)).map(|x| x.view(&tz, content)).collect();
        if reports.is_empty() && docs.is_empty() {
            return Err(Error::new(ErrorCode::LabReportNotFound));
        }
        Ok(json!({"order_id": format_id("LO", order_id), "status": d.derive_status(o).as_str(), "reports": reports, "documents": docs}))
    })
}
