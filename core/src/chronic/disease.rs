//! The chronic diseases the register serves, by ICD-10 code, and the
//! measurements a follow-up records: both tables as data (`chronic-catalog`).
//! A code outside the table is refused (`UNKNOWN_ICD10`), never guessed.

use crate::error::{Error, ErrorCode, Result};
use serde_json::{json, Value};

/// One chronic disease: the ICD-10 categories (three-character heads,
/// inclusive ranges) that name it and its default follow-up interval.
#[derive(Debug)]
pub(crate) struct Disease {
    pub key: &'static str,
    pub name: &'static str,
    pub name_zh: &'static str,
    /// `(first, last)` three-character categories, inclusive, same letter.
    pub ranges: &'static [(&'static str, &'static str)],
    /// Days between periodic follow-ups unless config `follow_up.interval_days` says otherwise.
    pub interval_days: u32,
}

/// The register's diseases. Intervals follow the national basic public
/// health service standard (国家基本公共卫生服务规范: hypertension and type 2
/// diabetes at least four face-to-face follow-ups a year) and the usual
/// practice of community centres for the others; each is configurable.
pub(crate) const DISEASES: &[Disease] = &[
    Disease { key: "hypertension", name: "hypertension", name_zh: "高血压", ranges: &[("I10", "I15")], interval_days: 90 },
    Disease { key: "diabetes", name: "diabetes mellitus", name_zh: "糖尿病", ranges: &[("E10", "E14")], interval_days: 90 },
    Disease { key: "coronary_heart_disease", name: "coronary heart disease", name_zh: "冠心病", ranges: &[("I20", "I25")], interval_days: 90 },
    Disease { key: "stroke", name: "stroke and its sequelae", name_zh: "脑卒中", ranges: &[("I60", "I64"), ("I69", "I69")], interval_days: 90 },
    Disease { key: "copd", name: "chronic obstructive pulmonary disease", name_zh: "慢性阻塞性肺疾病", ranges: &[("J44", "J44")], interval_days: 180 },
    Disease { key: "asthma", name: "asthma", name_zh: "支气管哮喘", ranges: &[("J45", "J46")], interval_days: 180 },
    Disease { key: "chronic_kidney_disease", name: "chronic kidney disease", name_zh: "慢性肾脏病", ranges: &[("N18", "N18")], interval_days: 90 },
];

/// An ICD-10 code as the register keeps it: upper-case head (`I10`), then
/// optionally a dot and up to 10 letters or digits (`E11.9`, `I10.x00x002`
/// of the national clinical edition). `None` for anything else.
pub(crate) fn normalise(code: &str) -> Option<String> {
    let code = code.trim();
    let b = code.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_alphabetic() || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return None;
    }
    let rest = &code[3..];
    if !rest.is_empty() {
        let tail = rest.strip_prefix('.')?;
        if tail.is_empty() || tail.len() > 10 || !tail.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
    }
    let mut s = code[..3].to_ascii_uppercase();
    s.push_str(rest);
    Some(s)
}

/// The disease an ICD-10 code names, or `UNKNOWN_ICD10` (`field` named).
pub(crate) fn disease_of(code: &str) -> Option<&'static Disease> {
    let head = code.get(..3)?;
    DISEASES.iter().find(|d| d.ranges.iter().any(|(lo, hi)| head.as_bytes()[0] == lo.as_bytes()[0] && head >= *lo && head <= *hi))
}

/// A code read from the request: normalised and in the table.
pub(crate) fn known(field: &str, code: &str) -> Result<(String, &'static Disease)> {
    let Some(c) = normalise(code) else {
        return Err(Error::invalid_zh(field, "expected an ICD-10 code such as I10 or E11.9", "应为 `I10`、`E11.9` 这样的ICD-10编码"));
    };
    match disease_of(&c) {
        Some(d) => Ok((c, d)),
        None => Err(Error::with(
            ErrorCode::UnknownIcd10,
            format!("field `{field}`: {}", ErrorCode::UnknownIcd10.default_message()),
            format!("字段 `{field}`：{}", ErrorCode::UnknownIcd10.default_message_zh()),
        )),
    }
}

pub(crate) fn by_key(key: &str) -> Option<&'static Disease> {
    DISEASES.iter().find(|d| d.key == key)
}

/// One measurement a follow-up may record: key, unit, plausible range.
pub(crate) struct Measure {
    pub key: &'static str,
    pub name_zh: &'static str,
    pub unit: &'static str,
    pub lo: f64,
    pub hi: f64,
}

/// What a follow-up measures (blood pressure, glucose, …), each bounded to
/// what a living patient can show, so a typo (1300 for 130) is refused.
pub(crate) const MEASURES: &[Measure] = &[
    Measure { key: "systolic_bp", name_zh: "收缩压", unit: "mmHg", lo: 40.0, hi: 300.0 },
    Measure { key: "diastolic_bp", name_zh: "舒张压", unit: "mmHg", lo: 20.0, hi: 200.0 },
    Measure { key: "heart_rate", name_zh: "心率", unit: "/min", lo: 20.0, hi: 250.0 },
    Measure { key: "fasting_glucose", name_zh: "空腹血糖", unit: "mmol/L", lo: 0.5, hi: 60.0 },
    Measure { key: "postprandial_glucose", name_zh: "餐后2小时血糖", unit: "mmol/L", lo: 0.5, hi: 60.0 },
    Measure { key: "hba1c", name_zh: "糖化血红蛋白", unit: "%", lo: 2.0, hi: 25.0 },
    Measure { key: "weight_kg", name_zh: "体重", unit: "kg", lo: 1.0, hi: 500.0 },
    Measure { key: "height_cm", name_zh: "身高", unit: "cm", lo: 30.0, hi: 260.0 },
    Measure { key: "spo2", name_zh: "血氧饱和度", unit: "%", lo: 50.0, hi: 100.0 },
    Measure { key: "fev1_percent", name_zh: "第一秒用力呼气量占预计值", unit: "%", lo: 5.0, hi: 200.0 },
];

/// The request's `measurements` object checked against [`MEASURES`].
pub(crate) fn measurements(v: Option<&Value>) -> Result<serde_json::Map<String, Value>> {
    let m = match v {
        None | Some(Value::Null) => return Ok(serde_json::Map::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::invalid_zh("measurements", "must be an object", "必须为对象")),
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        let Some(ms) = MEASURES.iter().find(|x| x.key == k) else {
            return Err(Error::invalid_zh(
                "measurements",
                "names a measurement the catalogue does not list (see `chronic-catalog`)",
                "包含目录中没有的测量项目（见 `chronic-catalog`）",
            ));
        };
        let n = v.as_f64().ok_or_else(|| Error::invalid_zh(&format!("measurements.{}", ms.key), "must be a number", "必须为数字"))?;
        if !(ms.lo..=ms.hi).contains(&n) {
            return Err(Error::invalid_zh(
                &format!("measurements.{}", ms.key),
                &format!("outside {}..={} {}", ms.lo, ms.hi, ms.unit),
                &format!("不在 {} 到 {} 之间（单位 `{}`）", ms.lo, ms.hi, ms.unit),
            ));
        }
        out.insert(ms.key.into(), v.clone());
    }
    Ok(out)
}

/// The catalogue as served: diseases with their ranges and the intervals in force.
pub(crate) fn describe(intervals: &std::collections::BTreeMap<String, u32>) -> Value {
    let diseases: Vec<Value> = DISEASES
        .iter()
        .map(|d| {
            json!({
                "key": d.key, "name": d.name, "name_zh": d.name_zh,
                "icd10": d.ranges.iter().map(|(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }).collect::<Vec<_>>(),
                "interval_days": intervals.get(d.key).copied().unwrap_or(d.interval_days),
            })
        })
        .collect();
    let measures: Vec<Value> = MEASURES.iter().map(|m| json!({"key": m.key, "name_zh": m.name_zh, "unit": m.unit, "min": m.lo, "max": m.hi})).collect();
    json!({"diseases": diseases, "measurements": measures})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_their_disease_and_unknown_ones_are_refused() {
        assert_eq!(disease_of(&normalise("i10").unwrap()).unwrap().key, "hypertension");
        assert_eq!(disease_of(&normalise("I15.9").unwrap()).unwrap().key, "hypertension");
        assert_eq!(disease_of(&normalise("E11.900").unwrap()).unwrap().key, "diabetes");
        assert_eq!(disease_of("I25").unwrap().key, "coronary_heart_disease");
        assert_eq!(disease_of("J44").unwrap().key, "copd");
        assert!(disease_of("I16").is_none() && disease_of("E15").is_none() && disease_of("J43").is_none());
        assert!(normalise("I1").is_none() && normalise("110").is_none() && normalise("I10.").is_none() && normalise("I10-x").is_none());
        assert_eq!(known("icd10", "Z99").unwrap_err().code(), ErrorCode::UnknownIcd10);
        assert_eq!(known("icd10", "hello").unwrap_err().code(), ErrorCode::InvalidField);
    }

    #[test]
    fn every_range_is_one_letter_and_ordered() {
        for d in DISEASES {
            for (lo, hi) in d.ranges {
                assert!(lo.len() == 3 && hi.len() == 3 && lo.as_bytes()[0] == hi.as_bytes()[0] && lo <= hi, "{}", d.key);
            }
        }
    }
}
