//! Requests in, envelopes out: field access with the errors every command
//! shares, the date and time forms of the source, the request fingerprint
//! idempotency stores, and the envelope every binding returns.

use crate::error::{Error, Result};
use crate::identity::PatientInfo;
use crate::model::*;
use crate::principal::Principal;
use chrono::{Datelike, NaiveDate, NaiveTime};
use serde_json::{Map, Value};

/// FNV-1a: a fingerprint that must stay the same across restarts and builds
/// (it is stored with each request id), which std's and foldhash's seeds are not.
pub(crate) fn fingerprint(parts: &[&[u8]]) -> u64 {
    // FNV-1a over each part followed by 0xff. Stored with durable answers, so
    // the value must never change; the loop is only written for speed.
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter() {
            h = (h ^ b as u64).wrapping_mul(PRIME);
        }
        h = (h ^ 0xff).wrapping_mul(PRIME);
    }
    h
}

/// Field access with the errors every command shares.
pub struct Req<'a> {
    pub m: &'a Map<String, Value>,
    /// Who is acting: the principal bound by `registry::dispatch`.
    pub who: &'a Principal,
}

impl<'a> Req<'a> {
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        self.m.get(k).filter(|v| !v.is_null())
    }
    pub fn str(&self, k: &str) -> Result<&'a str> {
        self.opt_str(k)?.ok_or_else(|| Error::missing(k))
    }
    pub fn opt_str(&self, k: &str) -> Result<Option<&'a str>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.len() > 256 => Err(Error::invalid_zh(k, "longer than 256 characters", "超过 256 个字符")),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Error::invalid_zh(k, "must be a string", "必须为字符串")),
        }
    }
    /// Ids arrive as strings or numbers (`admission_id` is an int in the source).
    pub fn id(&self, k: &str) -> Result<String> {
        self.opt_id(k)?.ok_or_else(|| Error::missing(k))
    }
    pub fn opt_id(&self, k: &str) -> Result<Option<String>> {
        match self.get(k) {
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            _ => Ok(self.opt_str(k)?.map(str::to_string)),
        }
    }
    pub fn date(&self, k: &str) -> Result<NaiveDate> {
        self.opt_date(k)?.ok_or_else(|| Error::missing(k))
    }
    pub fn opt_date(&self, k: &str) -> Result<Option<NaiveDate>> {
        match self.opt_str(k)? {
            None => Ok(None),
            Some(s) => parse_date(s).map(Some).ok_or_else(|| Error::invalid_zh(k, "expected a date YYYY-MM-DD", "应为 `YYYY-MM-DD` 格式的日期")),
        }
    }
    pub fn opt_u64(&self, k: &str) -> Result<Option<u64>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| Error::invalid_zh(k, "must be a non-negative integer", "必须为非负整数")),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| Error::invalid_zh(k, "must be a non-negative integer", "必须为非负整数")),
            Some(_) => Err(Error::invalid_zh(k, "must be a non-negative integer", "必须为非负整数")),
        }
    }
    /// A non-negative integer within the field's documented range `lo..=hi`;
    /// outside it `INVALID_FIELD`, so no caller's arithmetic sees a number
    /// it was not written for.
    pub fn opt_u64_in(&self, k: &str, lo: u64, hi: u64) -> Result<Option<u64>> {
        match self.opt_u64(k)? {
            Some(n) if n < lo || n > hi => Err(Error::invalid_zh(k, &format!("must be {lo} to {hi}"), &format!("必须在 {lo} 到 {hi} 之间"))),
            o => Ok(o),
        }
    }
    pub fn opt_u32(&self, k: &str) -> Result<Option<u32>> {
        match self.opt_u64(k)? {
            Some(n) if n > 100_000 => Err(Error::invalid_zh(k, "must be at most 100000", "不得超过 100000")),
            o => Ok(o.map(|n| n as u32)),
        }
    }
    pub fn opt_bool(&self, k: &str) -> Result<Option<bool>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Error::invalid_zh(k, "must be true or false", "必须为 `true` 或 `false`")),
        }
    }
    pub fn array(&self, k: &str) -> Result<&'a Vec<Value>> {
        match self.get(k) {
            None => Err(Error::missing(k)),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(Error::invalid_zh(k, "must be an array", "必须为数组")),
        }
    }
    pub fn opt_array(&self, k: &str) -> Result<Option<&'a Vec<Value>>> {
        match self.get(k) {
            None => Ok(None),
            Some(_) => self.array(k).map(Some),
        }
    }
    pub fn request_id(&self) -> Result<Option<&'a str>> {
        self.opt_str("request_id")
    }
    pub fn priority(&self) -> Result<Priority> {
        self.opt_str("priority")?.map(Priority::parse).transpose().map(|p| p.unwrap_or(Priority::Normal))
    }
    pub fn booking_id(&self) -> Result<u64> {
        let s = self.id("booking_id")?;
        parse_booking_id(&s).ok_or_else(|| Error::invalid_zh("booking_id", "expected a booking id like B000001", "应为形如 `B000001` 的预约编号"))
    }
    /// The hospital a hospital principal is (its slots are the only ones it
    /// may change); `None` for the platform and every other role.
    pub fn own_hospital(&self) -> Option<&str> {
        match self.who.role {
            crate::principal::Role::Hospital => self.who.institution_id.as_deref(),
            _ => None,
        }
    }
    /// The institution a new booking belongs to: the principal's own (a
    /// community centre or a hospital booking for itself), else none.
    pub fn booking_clinic(&self) -> Option<String> {
        match self.who.role {
            crate::principal::Role::Community | crate::principal::Role::Hospital => self.who.institution_id.clone(),
            _ => None,
        }
    }
    pub fn sub(&self, v: &'a Value, what: &str) -> Result<Req<'a>> {
        v.as_object().map(|m| Req { m, who: self.who }).ok_or_else(|| Error::invalid_zh(what, "each entry must be an object", "每一项都必须为对象"))
    }
}

/// Two or four ASCII digits as a number.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32))
}

/// The years a date may have: four digits, as RFC 3339 writes them. chrono
/// alone also reads `+262142-12-31` and `-0001-01-01`, at whose edges a
/// day's arithmetic (the release window, the week a stop-service searches)
/// panics.
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A `YYYY-MM-DD` date with a year in [`YEARS`].
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    // The usual `YYYY-MM-DD` without chrono's format parser; anything else goes to it.
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..])) {
            return NaiveDate::from_ymd_opt(y as i32, m, d).filter(|d| YEARS.contains(&d.year()));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().filter(|d| YEARS.contains(&d.year()))
}

pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() == 5 && b[2] == b':' {
        if let (Some(h), Some(m)) = (digits(&b[..2]), digits(&b[3..])) {
            return NaiveTime::from_hms_opt(h, m, 0);
        }
    }
    NaiveTime::parse_from_str(s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S")).ok()
}

/// "09:00-10:00" (also "09:00~10:00", "09:00—10:00").
pub fn parse_time_slot(s: &str) -> Option<(NaiveTime, NaiveTime)> {
    let s = s.trim();
    let (a, b) = s.split_once('-').or_else(|| s.split_once('~')).or_else(|| s.split_once('—')).or_else(|| s.split_once('至'))?;
    Some((parse_time(a)?, parse_time(b)?))
}

pub(crate) fn fp_of(command: &str, req: &Value) -> u64 {
    // Kept only with a request id (`Pool::claim`): without one, nothing to print.
    if matches!(req.get("request_id"), None | Some(Value::Null)) {
        return 0;
    }
    // serde_json's Map is ordered by key, so equal requests print equally.
    // The printed request is hashed as it is written (the same bytes as
    // `fingerprint(&[command, req.to_string()])`, without the string).
    struct Fnv(u64);
    impl std::io::Write for Fnv {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for b in buf {
                self.0 ^= *b as u64;
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Fnv(fingerprint(&[command.as_bytes()]));
    if serde_json::to_writer(&mut h, req).is_err() {
        return fingerprint(&[command.as_bytes(), req.to_string().as_bytes()]);
    }
    std::io::Write::write_all(&mut h, &[0xff]).ok();
    h.0
}

pub(crate) fn patient_of(r: &Req) -> Result<Option<PatientInfo>> {
    match r.get("patient") {
        None => Ok(None),
        Some(v @ Value::Object(_)) => {
            let info: PatientInfo = serde_json::from_value(v.clone()).map_err(|_| {
                Error::invalid_zh(
                    "patient",
                    "expected {name, id_number, phone, sex, insurance_card_no, medical_record_no} strings",
                    "应为含 `name`、`id_number`、`phone`、`sex`、`insurance_card_no`、`medical_record_no` 字符串字段的对象",
                )
            })?;
            info.validated().map(Some)
        }
        Some(_) => Err(Error::invalid_zh("patient", "must be an object", "必须为对象")),
    }
}

/// The envelope of an answer: `{"status":"success","data":…}` or the error's.
pub fn envelope(out: Result<Value>) -> Value {
    match out {
        Ok(data) => {
            // Built by hand: `json!` would copy `data` through serde.
            let mut m = Map::new();
            m.insert("status".into(), "success".into());
            m.insert("data".into(), data);
            Value::Object(m)
        }
        Err(e) => e.to_envelope(),
    }
}

/// [`envelope`] as JSON text, the same bytes as `envelope(out).to_string()`
/// (keys sorted: `{"data":…,"status":"success"}`) without building the outer
/// object. Written through `serde_json::to_writer` into one buffer: `Value`'s
/// `Display` goes through `fmt::Formatter` for every token, which cost about
/// three times the instructions (callgrind, `command_layer`).
pub fn envelope_json(out: Result<Value>) -> String {
    envelope_of(out.map(crate::reply::Data::Value).as_ref())
}

/// [`envelope_json`] for an answer given as JSON text (what
/// [`Engine::call_json_as`](crate::Engine::call_json_as) and
/// [`Deferred::durable_json`](crate::Deferred::durable_json) return): the
/// same envelope, the text copied in as it is.
pub fn envelope_text(out: std::result::Result<&str, &Error>) -> String {
    match out {
        Ok(data) => wrap(data.len(), |buf| buf.extend_from_slice(data.as_bytes())),
        Err(e) => to_json(&e.to_envelope()),
    }
}

pub(crate) fn envelope_of(out: Result<&crate::reply::Data, &Error>) -> String {
    match out {
        Ok(data) => wrap(data.size_hint(), |buf| data.write(buf)),
        Err(e) => to_json(&e.to_envelope()),
    }
}

/// `{"data":…,"status":"success"}` around what `data` writes.
fn wrap(size: usize, data: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut buf = Vec::with_capacity(size + 32);
    buf.extend_from_slice(b"{\"data\":");
    data(&mut buf);
    buf.extend_from_slice(b",\"status\":\"success\"}");
    // serde_json writes UTF-8 only, and the text given is a `str`.
    String::from_utf8(buf).unwrap_or_default()
}

/// A value as JSON text, like its `to_string()` but written straight into
/// one buffer (see [`envelope_json`]).
pub fn to_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_envelope_text_is_the_same_bytes_as_the_envelope_value_printed() {
        let data = json!({"booking_id": "B000001", "name": "王小明\u{1F600}\"\\", "n": [1, 2.5, null, true], "z": {}});
        assert_eq!(envelope_json(Ok(data.clone())), envelope(Ok(data)).to_string());
        let err = || Err(Error::invalid_zh("patient_id", "must not be empty", "不能为空"));
        assert_eq!(envelope_json(err()), envelope(err()).to_string());
        assert_eq!(to_json(&json!({"b": 1, "a": "x"})), r#"{"a":"x","b":1}"#);
    }

    #[test]
    fn fast_date_and_time_parsing_agrees_with_chrono() {
        for d in ["2024-10-30", "2024-02-29", "2023-02-29", "2024-13-01", "2024-1-05", " 2024-10-30 ", "abcd-10-30", "2024-10-3x", "0001-01-01", "9999-12-31"] {
            assert_eq!(parse_date(d), NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok(), "{d}");
        }
        // Beyond four-digit years chrono reads them; the engine does not.
        for d in ["0000-01-01", "-0001-01-01", "+10000-01-01", "+262142-12-31", "-262143-01-01"] {
            assert_eq!(parse_date(d), None, "{d}");
        }
        for t in ["09:00", "23:59", "24:00", "9:00", "09:60", "09:00:30", "0a:00"] {
            let chrono = NaiveTime::parse_from_str(t.trim(), "%H:%M").or_else(|_| NaiveTime::parse_from_str(t.trim(), "%H:%M:%S")).ok();
            assert_eq!(parse_time(t), chrono, "{t}");
        }
    }

    #[test]
    fn streamed_fingerprint_equals_the_stored_one() {
        // Fingerprints are stored with request ids: the streamed form must not change them.
        let req = json!({"patient_id": "PAT001", "slot_id": "EX-1", "note": "号源 \"x\"", "n": 3, "request_id": "R1"});
        assert_eq!(fp_of("pre-book-slot", &req), fingerprint(&[b"pre-book-slot", req.to_string().as_bytes()]));
    }

    #[test]
    fn a_request_without_a_request_id_is_not_fingerprinted() {
        // Nothing keeps its fingerprint (`Pool::claim`), so nothing is printed.
        assert_eq!(fp_of("pre-book-slot", &json!({"patient_id": "PAT001"})), 0);
        assert_eq!(fp_of("pre-book-slot", &json!({"patient_id": "PAT001", "request_id": null})), 0);
        assert_ne!(fp_of("pre-book-slot", &json!({"patient_id": "PAT001", "request_id": "R1"})), 0);
    }

    #[test]
    fn fingerprint_is_fnv1a_with_part_terminators() {
        assert_eq!(fingerprint(&[b"hold", &7u32.to_le_bytes(), b"PAT001", b"normal"]), 0xbe03_af86_255e_2ce0);
    }
}
