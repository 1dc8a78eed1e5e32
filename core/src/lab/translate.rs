//! Translating a lab's results into an ordering institution's sub-items
//! (L8), compiled once per institution: `Engine::lab_translator` copies the
//! mapping out of the lab state into one hash index, so `translate` takes no
//! lock and allocates nothing beyond the caller's output vector.

use super::{code_field, opt_text, Call, LabData};
use crate::error::{Error, ErrorCode, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

/// One sub-item as the ordering institution knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatorEntry {
    /// The standard sub-item code.
    pub std_code: Box<str>,
    /// The ordering institution's own sub-item code and name.
    pub inst_code: Box<str>,
    pub inst_name: Box<str>,
    /// Unit and reference range of the standard sub-item (may be empty).
    pub unit: Box<str>,
    pub ref_range: Box<str>,
}

/// One translated result: the code and value as given, and the
/// institution's sub-item (`None`: not mapped by the institution).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TranslatedResult<'t, 'r> {
    pub code: &'r str,
    pub value: &'r str,
    pub entry: Option<&'t TranslatorEntry>,
}

/// A compiled translation from the codes a lab reports in (standard
/// sub-item codes, and the lab's own sub-item codes when compiled for a
/// lab) to one institution's sub-items. A snapshot: compile again after the
/// mapping changes.
#[derive(Debug, Clone)]
pub struct LabTranslator {
    institution_id: String,
    lab_id: Option<String>,
    index: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    entries: Vec<TranslatorEntry>,
}

impl LabTranslator {
    pub(crate) fn compile(d: &LabData, institution_id: &str, lab_id: Option<&str>) -> LabTranslator {
        let mut index: HashMap<Box<str>, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut entries = Vec::new();
        if let Some(t) = d.inst.get(institution_id) {
            for e in t.items.values() {
                let Some(std) = e.std_code.as_deref() else { continue };
                let s = d.std_items.get(std);
                let idx = entries.len() as u32;
                entries.push(TranslatorEntry {
                    std_code: std.into(),
                    inst_code: e.code.as_str().into(),
                    inst_name: e.name.as_str().into(),
                    unit: s.and_then(|s| s.unit.as_deref()).unwrap_or("").into(),
                    ref_range: s.map(|s| s.ref_range()).unwrap_or_default().into(),
                });
                index.insert(std.into(), idx);
            }
        }
        // The lab's own codes win over a standard code spelled the same.
        if let Some(lt) = lab_id.and_then(|l| d.inst.get(l)) {
            for e in lt.items.values() {
                if let Some(idx) = e.std_code.as_deref().and_then(|s| index.get(s).copied()) {
                    index.insert(e.code.as_str().into(), idx);
                }
            }
        }
        LabTranslator { institution_id: institution_id.to_string(), lab_id: lab_id.map(str::to_string), index, entries }
    }

    pub fn institution_id(&self) -> &str {
        &self.institution_id
    }
    pub fn lab_id(&self) -> Option<&str> {
        self.lab_id.as_deref()
    }
    /// The institution's mapped sub-items.
    pub fn entries(&self) -> &[TranslatorEntry] {
        &self.entries
    }
    /// Every code `translate` understands, with its entry.
    pub fn codes(&self) -> impl Iterator<Item = (&str, &TranslatorEntry)> {
        self.index.iter().map(|(k, i)| (&**k, &self.entries[*i as usize]))
    }
    #[inline]
    pub fn lookup(&self, code: &str) -> Option<&TranslatorEntry> {
        self.index.get(code).map(|i| &self.entries[*i as usize])
    }

    /// Translates `(code, value)` pairs into `out` (cleared first) and
    /// returns how many codes the institution has not mapped.
    pub fn translate<'t, 'r>(&'t self, results: &[(&'r str, &'r str)], out: &mut Vec<TranslatedResult<'t, 'r>>) -> usize {
        out.clear();
        out.reserve(results.len());
        let mut unmapped = 0;
        for &(code, value) in results {
            let entry = self.lookup(code);
            unmapped += entry.is_none() as usize;
            out.push(TranslatedResult { code, value, entry });
        }
        unmapped
    }
}

impl LabTranslator {
    /// The one rule of a strict translation, every binding's: the entry of
    /// `code`; `None` when it is unmapped and `strict` is false; with
    /// `strict`, an unmapped code is [`LabTranslator::unmapped`].
    #[inline]
    pub fn lookup_strict(&self, code: &str, strict: bool) -> Result<Option<&TranslatorEntry>> {
        match self.lookup(code) {
            None if strict => Err(Self::unmapped(code)),
            found => Ok(found),
        }
    }

    /// The error of a strict translation that meets a code the institution
    /// has not mapped (`LAB_ITEM_UNMAPPED`); the bindings raise it as is.
    pub fn unmapped(code: &str) -> Error {
        let shown: String = code.chars().take(64).collect();
        Error::with(ErrorCode::LabItemUnmapped, format!("sub-item {shown} is not mapped by the institution"), format!("小项 {shown} 未与本机构检验小项对照"))
    }
}

impl crate::Engine {
    /// Compiles the translation of lab results into `institution_id`'s
    /// sub-items; with `lab_id`, the lab's own sub-item codes are understood
    /// as well as standard codes.
    pub fn lab_translator(&self, institution_id: &str, lab_id: Option<&str>) -> Result<LabTranslator> {
        self.d.pool.check_open()?;
        let d = self.d.lab.data.lock();
        if !d.inst.contains_key(institution_id) {
            return Err(Error::new(ErrorCode::LabInstItemNotFound));
        }
        Ok(LabTranslator::compile(&d, institution_id, lab_id))
    }
}

/// `lab-translate {institution_id, lab_id?, results}`: `results` is an
/// object `{code: value}` or a list of `{item_code, value}`.
pub(crate) fn translate_cmd(c: &Call) -> Result<Value> {
    let inst = c.owner("institution_id")?;
    let lab = opt_text(c.r, "lab_id")?;
    let pairs: Vec<(String, String)> = match c.r.get("results") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), value_text(v))).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                let r = c.r.sub(e, "results")?;
                Ok((code_field(&r, "item_code")?, r.get("value").map(value_text).unwrap_or_default()))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(Error::invalid("results", "must be an object or a list")),
        None => return Err(Error::missing("results")),
    };
    let tr = c.read(|d| Ok(LabTranslator::compile(d, &inst, lab.as_deref())))?;
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut out = Vec::new();
    tr.translate(&refs, &mut out);
    let results: Vec<Value> = out
        .iter()
        .filter_map(|t| t.entry.map(|e| json!({"code": t.code, "value": t.value, "std_code": &*e.std_code, "inst_code": &*e.inst_code, "inst_name": &*e.inst_name, "unit": &*e.unit, "ref_range": &*e.ref_range})))
        .collect();
    let unmapped: Vec<&str> = out.iter().filter(|t| t.entry.is_none()).map(|t| t.code).collect();
    Ok(json!({"institution_id": inst, "results": results, "unmapped": unmapped}))
}

pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
