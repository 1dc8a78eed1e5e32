//! Patient identity: resident ID numbers (GB 11643-1999), phone numbers, and
//! the masking used wherever they are shown.

use crate::error::{Error, ErrorCode, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

/// Validates an 18-character resident ID number: digits, a real birth date and
/// the ISO 7064 MOD 11-2 check character. A lower-case `x` is accepted.
pub fn validate_id_number(id: &str) -> Result<String> {
    let invalid =
        |why: &str, zh: &str| Error::with(ErrorCode::InvalidIdNumber, format!("resident ID number is invalid: {why}"), format!("居民身份证号码无效：{zh}"));
    let up = id.trim().to_ascii_uppercase();
    let b = up.as_bytes();
    if b.len() != 18 {
        return Err(invalid("must have 18 characters", "长度须为18位"));
    }
    if !b[..17].iter().all(u8::is_ascii_digit) {
        return Err(invalid("first 17 characters must be digits", "前17位须为数字"));
    }
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| (d - b'0') as u32 * w).sum();
    if CHECK[(sum % 11) as usize] != b[17] {
        return Err(invalid("check digit does not match", "校验码不符"));
    }
    let birth = std::str::from_utf8(&b[6..14]).unwrap_or("");
    if NaiveDate::parse_from_str(birth, "%Y%m%d").is_err() {
        return Err(invalid("birth date is not a real date", "出生日期无效"));
    }
    Ok(up)
}

/// Validates a mainland mobile (11 digits starting 13–19, optional +86) or a
/// landline with area code (`0512-57001234`).
pub fn validate_phone(phone: &str) -> Result<String> {
    let p: String = phone.trim().chars().filter(|c| *c != ' ').collect();
    let p = p.strip_prefix("+86").or_else(|| p.strip_prefix("86-")).unwrap_or(&p).to_string();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let mobile = p.len() == 11 && digits(&p) && p.starts_with('1') && (b'3'..=b'9').contains(&p.as_bytes()[1]);
    let landline = match p.split_once('-') {
        Some((area, num)) => area.starts_with('0') && (3..=4).contains(&area.len()) && digits(area) && (7..=8).contains(&num.len()) && digits(num),
        None => p.starts_with('0') && (10..=12).contains(&p.len()) && digits(&p),
    };
    if mobile || landline {
        Ok(p)
    } else {
        Err(Error::new(ErrorCode::InvalidPhone))
    }
}

/// `110105********002X`: region code and last four kept.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..6].iter().collect::<String>() + &"*".repeat(n - 10) + &chars[n - 4..].iter().collect::<String>()
}

/// A patient identifier (`patient_id`: often the ID number itself, else a
/// hospital's patient number) as a principal that may not see it reads it
/// (`views::mask_patient_ids` applies the rule): 10 characters or more keep
/// the first 3 and the last 4 (`110***********002X`, `138****8000`); 3 to 9
/// keep the first and the last (`P****1`); shorter ones keep nothing. The
/// length is kept, as in every other mask here: it tells an ID number from a
/// hospital number and hides none of the digits that identify the person.
pub fn mask_patient_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let n = chars.len();
    let (front, back) = match n {
        10.. => (3, 4),
        3..=9 => (1, 1),
        _ => (0, 0),
    };
    chars[..front].iter().collect::<String>() + &"*".repeat(n - front - back) + &chars[n - back..].iter().collect::<String>()
}

/// `138****5678`; landlines keep the area code and last four.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let keep_front = if let Some(pos) = phone.find('-') { pos + 1 } else { 3.min(n - 4) };
    chars[..keep_front].iter().collect::<String>() + &"*".repeat(n - keep_front - 4) + &chars[n - 4..].iter().collect::<String>()
}

/// `张*`, `欧阳**`: the family name (one character, two for the common
/// compound surnames) is kept.
pub fn mask_name(name: &str) -> String {
    const COMPOUND: [&str; 10] = ["欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "尉迟", "公孙"];
    let chars: Vec<char> = name.trim().chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let keep = if chars.len() > 2 && COMPOUND.iter().any(|c| name.trim().starts_with(c)) { 2 } else { 1 };
    if chars.len() == 1 {
        return "*".into();
    }
    chars[..keep].iter().collect::<String>() + &"*".repeat(chars.len() - keep)
}

/// Personal details the host may send with a booking. Stored as given; shown
/// masked only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PatientInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// 社保卡号: the social insurance card number. Personal data like the
    /// ID number (it often is one): stored sealed, shown masked to everyone.
    #[serde(default, alias = "social_security_no", alias = "insurance_card", skip_serializing_if = "Option::is_none")]
    pub insurance_card_no: Option<String>,
    /// 病历号: the medical record number of the host's HIS. Shown to the
    /// parties of the record it is in, masked for everyone else (as a
    /// `patient_id` is: `views::mask_patient_ids`).
    #[serde(default, alias = "record_no", alias = "medical_record_number", skip_serializing_if = "Option::is_none")]
    pub medical_record_no: Option<String>,
}

/// A card or record number: 1 to 64 letters, digits, `-` or `_` (never
/// echoed when refused: the error names the field only).
fn check_number(field: &str, v: &str) -> Result<String> {
    let t = v.trim();
    let n = t.chars().count();
    if (1..=64).contains(&n) && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(t.to_string())
    } else {
        Err(Error::invalid_zh(field, "must be 1 to 64 letters, digits, `-` or `_`", "须为1至64位字母、数字、`-` 或 `_`"))
    }
}

impl PatientInfo {
    /// Validates and normalises the ID number and phone.
    pub fn validated(mut self) -> Result<PatientInfo> {
        if let Some(id) = &self.id_number {
            self.id_number = Some(validate_id_number(id)?);
        }
        if let Some(p) = &self.phone {
            self.phone = Some(validate_phone(p)?);
        }
        if let Some(c) = &self.insurance_card_no {
            self.insurance_card_no = Some(check_number("patient.insurance_card_no", c)?);
        }
        if let Some(c) = &self.medical_record_no {
            self.medical_record_no = Some(check_number("patient.medical_record_no", c)?);
        }
        Ok(self)
    }

    /// Which of the fields are not given (a form shows what is left to fill).
    pub fn missing(&self) -> Vec<&'static str> {
        let f = [
            ("name", &self.name),
            ("sex", &self.sex),
            ("id_number", &self.id_number),
            ("phone", &self.phone),
            ("insurance_card_no", &self.insurance_card_no),
            ("medical_record_no", &self.medical_record_no),
        ];
        f.into_iter().filter(|(_, v)| v.as_deref().is_none_or(|s| s.trim().is_empty())).map(|(k, _)| k).collect()
    }

    /// The form shown in responses, events and logs.
    pub fn masked(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(n) = &self.name {
            m.insert("name".into(), mask_name(n).into());
        }
        if let Some(i) = &self.id_number {
            m.insert("id_number".into(), mask_id_number(i).into());
        }
        if let Some(p) = &self.phone {
            m.insert("phone".into(), mask_phone(p).into());
        }
        if let Some(s) = &self.sex {
            m.insert("sex".into(), s.clone().into());
        }
        if let Some(c) = &self.insurance_card_no {
            m.insert("insurance_card_no".into(), mask_patient_id(c).into());
        }
        if let Some(r) = &self.medical_record_no {
            // In full here; `views::mask_patient_ids` masks it for a
            // principal that is not a party of the record it is shown in.
            m.insert("medical_record_no".into(), r.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_example_id_passes() {
        assert_eq!(validate_id_number("11010519491231002x").unwrap(), "11010519491231002X");
        assert!(validate_id_number("110105194912310021").is_err());
        assert!(validate_id_number("11010519491331002X").is_err()); // check digit wrong anyway
        assert!(validate_id_number("1101051949123100").is_err());
    }

    #[test]
    fn check_digit_catches_every_single_digit_change() {
        let good = b"11010519491231002X";
        for i in 0..17 {
            for d in b'0'..=b'9' {
                if d == good[i] {
                    continue;
                }
                let mut v = good.to_vec();
                v[i] = d;
                assert!(validate_id_number(std::str::from_utf8(&v).unwrap()).is_err());
            }
        }
    }

    #[test]
    fn phones() {
        assert_eq!(validate_phone("+86 138 0013 8000").unwrap(), "13800138000");
        assert!(validate_phone("0512-57001234").is_ok());
        assert!(validate_phone("12800138000").is_err());
        assert!(validate_phone("138001380").is_err());
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("0512-57001234"), "0512-****1234");
    }

    #[test]
    fn masks() {
        assert_eq!(mask_id_number("11010519491231002X"), "110105********002X");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧阳**");
        assert_eq!(mask_name("王小明"), "王**");
    }

    #[test]
    fn a_masked_patient_id_hides_all_but_its_ends_and_keeps_its_length() {
        assert_eq!(mask_patient_id("11010519491231002X"), "110***********002X");
        assert_eq!(mask_patient_id("13800138000"), "138****8000");
        assert_eq!(mask_patient_id("PAT001"), "P****1");
        assert_eq!(mask_patient_id("欧阳娜娜"), "欧**娜");
        assert_eq!(mask_patient_id("P1"), "**");
        assert_eq!(mask_patient_id(""), "");
        // The birth date of an ID number is never shown.
        assert!(!mask_patient_id("11010519491231002X").contains("19491231"));
    }
}
