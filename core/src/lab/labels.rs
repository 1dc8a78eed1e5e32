//! Specimen labels and shipment manifests through `crate::render`: labels
//! as ZPL, TSPL (GBK bytes, base64 in JSON) or SVG with a Code 128 barcode;
//! manifests as text, SVG or PDF (base64 in JSON).

use super::shipment::Shipment;
use super::specimen::{BarcodeRule, Specimen};
use super::{format_id, Call, LabData};
use crate::error::{Error, Result};
use crate::render::{self, LabelFormat, LabelSize};
use base64::Engine as _;
use serde_json::{json, Value};

/// The label format a request asks for (`format`: zpl, tspl or svg).
pub(crate) fn format_of(c: &Call) -> Result<Option<LabelFormat>> {
    c.r.opt_str("format")?.map(LabelFormat::parse).transpose()
}

/// The label stock a request names (`width_mm`, `height_mm`, `dpi`,
/// `zpl_font`), else the default 50 × 30 mm at 203 dpi.
fn size_of(c: &Call) -> Result<LabelSize> {
    let mut s = LabelSize::default();
    if let Some(w) = c.r.opt_u32("width_mm")? {
        s.width_mm = w;
    }
    if let Some(h) = c.r.opt_u32("height_mm")? {
        s.height_mm = h;
    }
    if let Some(dpi) = c.r.opt_u32("dpi")? {
        s.dpi = dpi;
    }
    if let Some(f) = c.r.opt_str("zpl_font")? {
        s.zpl_font = f.to_string();
    }
    s.validated()
}

/// The label of a specimen, rendered.
pub(crate) fn render_specimen(d: &LabData, sp: &Specimen, format: LabelFormat, size: &LabelSize, tz: &chrono_tz::Tz) -> Result<Vec<u8>> {
    let o = d.order(sp.order_id)?;
    let rule = d.barcode_rules.get(&o.institution_id).cloned().unwrap_or_else(|| BarcodeRule::default_for(&o.institution_id));
    let name = o.patient.name.as_deref().unwrap_or("");
    let patient = if rule.mask_patient_name { crate::identity::mask_name(name) } else { name.to_string() };
    let sex_age = match (&o.patient.sex, &o.age) {
        (Some(s), Some(a)) => Some(format!("{s} {a}")),
        (Some(s), None) => Some(s.clone()),
        (None, Some(a)) => Some(a.clone()),
        (None, None) => None,
    };
    let items: Vec<String> = sp.items.iter().map(|c| d.resources.get(c).map(|r| r.name.clone()).unwrap_or_else(|| c.clone())).collect();
    let time = local_minute(sp.printed_ms, tz);
    let label = render::Label {
        barcode: &sp.barcode,
        patient: &patient,
        sex_age: sex_age.as_deref(),
        specimen: &sp.specimen_type,
        container: &sp.container_name,
        items: &items,
        institution: &o.institution_id,
        time: &time,
    };
    render::render_label(&label, format, size)
}

/// Adds `label` (`{format, content}` or `{format, content_base64}`) to a view.
pub(crate) fn attach(v: &mut Value, d: &LabData, sp: &Specimen, format: LabelFormat, c: &Call) -> Result<()> {
    let size = size_of(c)?;
    let bytes = render_specimen(d, sp, format, &size, &c.pool.cfg.tz)?;
    v["label"] = if format.is_binary() {
        json!({"format": format.as_str(), "encoding": "GBK", "content_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)})
    } else {
        json!({"format": format.as_str(), "content": String::from_utf8(bytes).map_err(Error::internal)?})
    };
    Ok(())
}

/// The shipment's manifest (送检单) as a printable document.
pub(crate) fn manifest_document(d: &LabData, sh: &Shipment, tz: &chrono_tz::Tz) -> render::Document {
    let rows: Vec<Vec<String>> = sh
        .barcodes
        .iter()
        .enumerate()
        .filter_map(|(i, b)| d.specimens.get(b).map(|s| (i, s)))
        .map(|(i, s)| {
            let o = d.orders.get(&s.order_id);
            let name = o.and_then(|o| o.patient.name.as_deref()).map(crate::identity::mask_name).unwrap_or_default();
            let items: Vec<String> = s.items.iter().map(|c| d.resources.get(c).map(|r| r.name.clone()).unwrap_or_else(|| c.clone())).collect();
            vec![(i + 1).to_string(), s.barcode.clone(), name, s.specimen_type.clone(), s.container_name.clone(), items.join("、")]
        })
        .collect();
    let mut fields = vec![
        ("送检单号".to_string(), sh.shipment_id()),
        ("送检机构".to_string(), sh.institution_id.clone()),
        ("检验机构".to_string(), sh.lab_id.clone()),
        ("送检时间".to_string(), local_minute(sh.created_ms, tz)),
    ];
    if let Some(s) = &sh.sender {
        fields.push(("送检人".to_string(), s.clone()));
    }
    if let Some(c) = &sh.contact {
        fields.push(("联系电话".to_string(), c.clone()));
    }
    render::Document {
        title: "委托检验送检单".to_string(),
        fields,
        columns: ["序号", "条码号", "患者", "样本类型", "容器", "检验项目"].iter().map(|s| s.to_string()).collect(),
        rows,
        footer: vec![format!("共 {} 管", sh.barcodes.len()), "物流签收：__________  接收人：__________  接收时间：__________".to_string()],
        barcode: Some(sh.shipment_id()),
    }
}

/// `shipment-manifest {shipment_id, format: text|svg|pdf}` (print and
/// reprint): text and SVG as `content`, PDF as `content_base64`.
pub(crate) fn manifest(c: &Call, d: &LabData, sh: &Shipment) -> Result<Value> {
    let format = render::DocumentFormat::parse(c.r.opt_str("format")?.unwrap_or("text"))?;
    let doc = manifest_document(d, sh, &c.pool.cfg.tz);
    let mut out = render::document_answer(&doc, format, c.pool.cfg.pdf_font.as_deref())?;
    out.insert("shipment_id".into(), format_id("SH", sh.id).into());
    Ok(Value::Object(out))
}

/// A time as printed: `2024-10-29 09:00` in the engine's zone.
fn local_minute(ms: crate::clock::Millis, tz: &chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(tz).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

impl crate::Engine {
    /// The label of a printed specimen as the printer takes it: ZPL or SVG
    /// as UTF-8, TSPL as GBK bytes (what `specimen-label` returns as text or
    /// base64). Never counts as a print. An engine configured with an
    /// institution sees only its own tubes (the ordering institution's or
    /// the lab's).
    pub fn specimen_label(&self, barcode: &str, format: LabelFormat, size: &LabelSize) -> Result<Vec<u8>> {
        self.d.pool.check_open()?;
        let size = size.clone().validated()?;
        let d = self.d.lab.data.lock();
        let sp = d.specimen(barcode)?;
        let o = d.order(sp.order_id)?;
        super::order::check_side(o, self.d.pool.cfg.institution_id.as_deref(), super::order::Side::Either)?;
        render_specimen(&d, sp, format, &size, &self.d.pool.cfg.tz)
    }
}
