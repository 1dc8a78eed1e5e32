//! Requests in, envelopes out: field access with the errors every command
//! shares, the date and time forms of the source, the request fingerprint
//! idempotency stores, and the envelope every binding returns.
//!
//! A handler reads its request through [`Req`], over a parsed map or over
//! the caller's text read in place ([`Args`]: a flat object without
//! escapes, which is what the hot commands get; no `Value`, no copied key).
//! Invariants:
//! - Both bodies answer every accessor alike, fingerprint included (the
//!   request as `serde_json` prints it, keys in order).
//! - A text `Args` does not take (nesting, an escape, a syntax error) is
//!   parsed by `serde_json` as before, so a request reads, and fails with
//!   the same error, either way.

use crate::error::{Error, Result};
use crate::identity::PatientInfo;
use crate::model::*;
use crate::principal::Principal;
use chrono::{Datelike, NaiveDate, NaiveTime};
use serde_json::{Map, Value};
use std::borrow::Cow;

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
///
/// Its fields are a parsed object (`Req::new`: a nested entry, a request a
/// binding gave as a `Value`, one the engine builds) or the caller's text
/// read in place ([`Args`]: a flat request, what the hot commands get).
/// Both answer every accessor alike; `request_tests` holds them to it.
pub struct Req<'a> {
    body: Body<'a>,
    /// Who is acting: the principal bound by `registry::dispatch`.
    pub who: &'a Principal,
}

#[derive(Clone, Copy)]
enum Body<'a> {
    Map(&'a Map<String, Value>),
    Args(&'a Args<'a>),
}

/// A flat request (an object of strings, numbers, booleans and nulls) read
/// in place from the caller's text: no `Value`, no key or string copied
/// unless a handler asks for a field as a `Value` ([`Req::get`]). Anything
/// else (nesting, escapes, a syntax error) is left to `serde_json`, so a
/// request reads the same, and fails with the same error, either way.
pub(crate) struct Args<'a> {
    fields: Vec<Field<'a>>,
    /// One bit per key present (chosen by a hash of its tag): most lookups are of
    /// fields a request leaves out, and are answered here.
    present: u64,
}

struct Field<'a> {
    /// [`tag`] of the key: most lookups pass a field on this alone.
    tag: u32,
    key: &'a str,
    /// A string without escapes, as written.
    text: Option<&'a str>,
    /// The field as a `Value`: set at once for a number or literal, made
    /// from `text` on the first [`Req::get`].
    value: std::cell::OnceCell<Value>,
}

impl<'a> Field<'a> {
    fn value(&self) -> &Value {
        self.value.get_or_init(|| Value::String(self.text.unwrap_or_default().to_string()))
    }
}

impl<'a> Args<'a> {
    /// The request's fields, or `None` when `text` is not a flat object
    /// without escapes (the caller then parses it into a `Value`).
    pub(crate) fn parse(text: &'a str) -> Option<Args<'a>> {
        let b = text.as_bytes();
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let mut fields = Vec::with_capacity(8);
        let mut present = 0;
        i = skip_ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return (skip_ws(b, i + 1) == b.len()).then_some(Args { fields, present: 0 });
        }
        loop {
            let (key, next) = plain_string(text, i)?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let field = match b.get(i)? {
                b'"' => {
                    let (s, next) = plain_string(text, i)?;
                    i = next;
                    Field { tag: tag(key), key, text: Some(s), value: std::cell::OnceCell::new() }
                }
                b'{' | b'[' => return None,
                _ => {
                    // A number or a literal: its end is the next separator;
                    // serde_json reads it (and refuses what JSON does not allow).
                    let end = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r')).map_or(b.len(), |n| i + n);
                    let v: Value = serde_json::from_str(&text[i..end]).ok()?;
                    i = end;
                    Field { tag: tag(key), key, text: None, value: std::cell::OnceCell::from(v) }
                }
            };
            present |= bit(field.tag);
            fields.push(field);
            i = skip_ws(b, i);
            match b.get(i)? {
                b',' => i = skip_ws(b, i + 1),
                b'}' => return (skip_ws(b, i + 1) == b.len()).then_some(Args { fields, present }),
                _ => return None,
            }
        }
    }

    /// A repeated key's last value, as `serde_json`'s map keeps it.
    #[inline]
    fn field(&self, k: &str) -> Option<&Field<'a>> {
        let t = tag(k);
        if self.present & bit(t) == 0 {
            return None;
        }
        self.fields.iter().rev().find(|f| f.tag == t && f.key == k)
    }

    /// Puts the request id in a principal's id space ([`Given::set_request_id`]).
    fn set_request_id(&mut self, id: String) {
        self.fields.retain(|f| f.key != "request_id");
        self.present |= bit(tag("request_id"));
        self.fields.push(Field { tag: tag("request_id"), key: "request_id", text: None, value: std::cell::OnceCell::from(Value::String(id)) });
    }

    /// The fields as a map, as `serde_json` would have parsed the text.
    pub(crate) fn to_map(&self) -> Map<String, Value> {
        self.fields.iter().map(|f| (f.key.to_string(), f.value().clone())).collect()
    }
}

/// A request as the command layer holds it on its way to a handler: a map
/// (the one a binding or the engine gave, or a copy changed on the way), or
/// the caller's text read in place. [`Req`] is its borrowed reading.
pub(crate) enum Given<'a> {
    Map(Cow<'a, Map<String, Value>>),
    Args(Args<'a>),
}

impl<'a> Given<'a> {
    /// A parsed request, which must be an object.
    pub(crate) fn of_value(v: &'a Value) -> Result<Given<'a>> {
        Ok(Given::Map(Cow::Borrowed(v.as_object().ok_or_else(|| Error::invalid("(request)", "must be a JSON object"))?)))
    }
    /// Its fields as `who` acts on them.
    pub(crate) fn req<'b>(&'b self, who: &'b Principal) -> Req<'b> {
        match self {
            Given::Map(m) => Req::new(m, who),
            Given::Args(a) => Req::of_args(a, who),
        }
    }
    /// Its fields as a map: the one given, or a copy of the text's.
    pub(crate) fn to_map(&self) -> Cow<'_, Map<String, Value>> {
        match self {
            Given::Map(m) => Cow::Borrowed(&**m),
            Given::Args(a) => Cow::Owned(a.to_map()),
        }
    }
    /// Replaces its `request_id` (a principal's id space: `registry::run`).
    pub(crate) fn set_request_id(&mut self, id: String) {
        match self {
            Given::Map(m) => drop(m.to_mut().insert("request_id".into(), Value::String(id))),
            Given::Args(a) => a.set_request_id(id),
        }
    }
}

/// Printed as the map it stands for: keys in order, a repeated key once with
/// its last value, the same bytes as the parsed `Value` (the fingerprint).
impl serde::Serialize for Args<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut order: Vec<&Field> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            match order.iter_mut().find(|g| g.key == f.key) {
                Some(g) => *g = f,
                None => order.push(f),
            }
        }
        order.sort_unstable_by(|a, b| a.key.cmp(b.key));
        let mut m = s.serialize_map(Some(order.len()))?;
        for f in order {
            match (f.text, f.value.get()) {
                (_, Some(v)) => m.serialize_entry(f.key, v)?,
                (Some(t), None) => m.serialize_entry(f.key, t)?,
                (None, None) => m.serialize_entry(f.key, &Value::Null)?,
            }
        }
        m.end()
    }
}

/// A key's length and its first, second and last bytes: equal keys have
/// equal tags, and the source's field names differ in them almost always.
#[inline]
fn tag(k: &str) -> u32 {
    let b = k.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0) as u32;
    (b.len().min(255) as u32) << 24 | at(0) << 16 | at(1) << 8 | at(b.len().wrapping_sub(1))
}

#[inline]
fn bit(tag: u32) -> u64 {
    1 << (tag.wrapping_mul(0x9e37_79b9) >> 26)
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The string starting at `text[i] == '"'` when it has no escape and no
/// control character (which JSON refuses), and the index after it.
#[inline]
fn plain_string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let len = crate::reply::first_special(&b[i + 1..])?;
    let end = i + 1 + len;
    (b[end] == b'"').then(|| (&text[i + 1..end], end + 1))
}

impl<'a> Req<'a> {
    /// A request given as a parsed object.
    pub fn new(m: &'a Map<String, Value>, who: &'a Principal) -> Req<'a> {
        Req { body: Body::Map(m), who }
    }
    pub(crate) fn of_args(a: &'a Args<'a>, who: &'a Principal) -> Req<'a> {
        Req { body: Body::Args(a), who }
    }
    /// The same fields for another principal.
    pub fn with_who<'b>(&self, who: &'b Principal) -> Req<'b>
    where
        'a: 'b,
    {
        Req { body: self.body, who }
    }
    pub fn get(&self, k: &str) -> Option<&'a Value> {
        match self.body {
            Body::Map(m) => m.get(k),
            Body::Args(a) => a.field(k).map(Field::value),
        }
        .filter(|v| !v.is_null())
    }
    /// A string field as written (no `Value` made for it when the request
    /// was read in place), or the field that is not a string.
    #[inline]
    pub(crate) fn get_text(&self, k: &str) -> Option<std::result::Result<&'a str, &'a Value>> {
        if let Body::Args(a) = self.body {
            if let Some(Field { text: Some(t), value, .. }) = a.field(k) {
                if value.get().is_none() {
                    return Some(Ok(t));
                }
            }
        }
        match self.get(k)? {
            Value::String(s) => Some(Ok(s.as_str())),
            v => Some(Err(v)),
        }
    }
    /// What an acting field names, as `principal::bind_fields` reads it:
    /// a string or a number ([`acting_id`](crate::principal::acting_id)).
    pub(crate) fn acting_text(&self, k: &str) -> Option<Cow<'a, str>> {
        crate::principal::acting_id(self.get_text(k)?)
    }
    /// The whole request as a map (a copy).
    pub fn to_map(&self) -> Map<String, Value> {
        match self.body {
            Body::Map(m) => m.clone(),
            Body::Args(a) => a.to_map(),
        }
    }
    /// The fingerprint kept with the request's id (0 without one): the
    /// command and the request as `serde_json` prints it, keys in order.
    pub(crate) fn fingerprint(&self, command: &str) -> u64 {
        if self.request_id().ok().flatten().is_none() {
            return 0;
        }
        match self.body {
            Body::Map(m) => print_fingerprint(command, m),
            Body::Args(a) => print_fingerprint(command, a),
        }
    }
    pub fn str(&self, k: &str) -> Result<&'a str> {
        self.opt_str(k)?.ok_or_else(|| Error::missing(k))
    }
    pub fn opt_str(&self, k: &str) -> Result<Option<&'a str>> {
        match self.get_text(k) {
            None => Ok(None),
            Some(Ok("")) => Ok(None),
            Some(Ok(s)) if s.len() > 256 => Err(Error::invalid_zh(k, "longer than 256 characters", "超过 256 个字符")),
            Some(Ok(s)) => Ok(Some(s)),
            Some(Err(_)) => Err(Error::invalid_zh(k, "must be a string", "必须为字符串")),
        }
    }
    /// Ids arrive as strings or numbers (`admission_id` is an int in the source).
    pub fn id(&self, k: &str) -> Result<String> {
        self.opt_id(k)?.ok_or_else(|| Error::missing(k))
    }
    pub fn opt_id(&self, k: &str) -> Result<Option<String>> {
        Ok(self.opt_id_text(k)?.map(Cow::into_owned))
    }
    /// [`opt_id`](Self::opt_id) borrowed from the request when it is a string.
    pub fn opt_id_text(&self, k: &str) -> Result<Option<Cow<'a, str>>> {
        match self.get_text(k) {
            Some(Err(Value::Number(n))) => Ok(Some(n.to_string().into())),
            _ => Ok(self.opt_str(k)?.map(Cow::Borrowed)),
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
        let s = self.opt_id_text("booking_id")?.ok_or_else(|| Error::missing("booking_id"))?;
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
    pub fn booking_clinic(&self) -> Option<&'a str> {
        match self.who.role {
            crate::principal::Role::Community | crate::principal::Role::Hospital => self.who.institution_id.as_deref(),
            _ => None,
        }
    }
    pub fn sub(&self, v: &'a Value, what: &str) -> Result<Req<'a>> {
        v.as_object().map(|m| Req::new(m, self.who)).ok_or_else(|| Error::invalid_zh(what, "each entry must be an object", "每一项都必须为对象"))
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

/// The fingerprint of `command` and `req` printed, as stored with a request
/// id ([`Req::fingerprint`] decides whether there is one).
fn print_fingerprint<T: serde::Serialize + ?Sized>(command: &str, req: &T) -> u64 {
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
        // Only a writer's error fails it, and this writer has none.
        return fingerprint(&[command.as_bytes(), serde_json::to_string(req).unwrap_or_default().as_bytes()]);
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
    envelope_of(out.map(crate::reply::Data::Value))
}

/// [`envelope_json`] for an answer given as JSON text (what
/// [`Engine::call_json_as`](crate::Engine::call_json_as) and
/// [`Deferred::durable_json`](crate::Deferred::durable_json) return): the
/// same envelope, the text copied in as it is.
pub fn envelope_text(out: std::result::Result<&str, &Error>) -> String {
    match out {
        Ok(data) => wrap(data.len(), |buf| buf.push_str(data)),
        Err(e) => to_json(&e.to_envelope()),
    }
}

pub(crate) fn envelope_of(out: Result<crate::reply::Data>) -> String {
    match out {
        // A view's text already has the room (`Data::text`): wrapped in place.
        Ok(crate::reply::Data::Text(mut t)) => {
            t.insert_str(0, "{\"data\":");
            t.push_str(",\"status\":\"success\"}");
            t
        }
        Ok(data) => wrap(data.size_hint(), |buf| data.write(buf)),
        Err(e) => to_json(&e.to_envelope()),
    }
}

/// `{"data":…,"status":"success"}` around what `data` writes.
fn wrap(size: usize, data: impl FnOnce(&mut String)) -> String {
    let mut buf = String::with_capacity(size + 32);
    buf.push_str("{\"data\":");
    data(&mut buf);
    buf.push_str(",\"status\":\"success\"}");
    buf
}

/// A value as JSON text, like its `to_string()` but written straight into
/// one buffer (see [`envelope_json`]).
pub fn to_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
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

    fn fp_of(command: &str, req: &Value) -> u64 {
        Req::new(req.as_object().unwrap(), &Principal::platform()).fingerprint(command)
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

    /// Every accessor, on the text read in place and on the same text parsed
    /// into a map, answers alike (values, errors and their messages).
    fn assert_reads_alike(text: &str) {
        let args = Args::parse(text).unwrap_or_else(|| panic!("not read in place: {text}"));
        let parsed: Value = serde_json::from_str(text).unwrap();
        let m = parsed.as_object().unwrap();
        assert_eq!(&args.to_map(), m, "{text}");
        let who = Principal::platform();
        let (a, b) = (Req::of_args(&args, &who), Req::new(m, &who));
        let show = |r: Result<String>| r.map_err(|e| (e.code(), e.message().to_string(), e.message_zh().to_string()));
        let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
        keys.extend(["absent", "request_id"]);
        for k in keys {
            assert_eq!(a.get(k), b.get(k), "{k} in {text}");
            assert_eq!(show(a.opt_str(k).map(|v| format!("{v:?}"))), show(b.opt_str(k).map(|v| format!("{v:?}"))), "{k} in {text}");
            assert_eq!(show(a.opt_id(k).map(|v| format!("{v:?}"))), show(b.opt_id(k).map(|v| format!("{v:?}"))), "{k} in {text}");
            assert_eq!(show(a.opt_u64(k).map(|v| format!("{v:?}"))), show(b.opt_u64(k).map(|v| format!("{v:?}"))), "{k} in {text}");
            assert_eq!(show(a.opt_bool(k).map(|v| format!("{v:?}"))), show(b.opt_bool(k).map(|v| format!("{v:?}"))), "{k} in {text}");
            assert_eq!(a.get_text(k), b.get_text(k), "{k} in {text}");
            assert_eq!(a.acting_text(k), b.acting_text(k), "{k} in {text}");
        }
        for command in ["pre-book-slot", "cancel-slot"] {
            assert_eq!(a.fingerprint(command), b.fingerprint(command), "{text}");
        }
        assert_eq!(a.to_map(), b.to_map());
    }

    #[test]
    fn a_flat_request_read_in_place_reads_as_its_parsed_map() {
        for text in [
            r#"{"patient_id":"PAT1","project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00","device_id":"DEV001","clinic_id":"C001"}"#,
            r#"  { "booking_id" : "B000001" , "reason":"患者要求" }  "#,
            "{\t\"a\"\n:\r\"x\"}",
            r#"{}"#,
            r#"{"request_id":"R1","patient_id":"PAT1"}"#,
            r#"{"request_id":"","n":3,"f":2.5,"neg":-0,"e":1e3,"big":18446744073709551615,"t":true,"no":false,"nul":null}"#,
            r#"{"a":"1","a":"2","b":"x","a":"3"}"#,
            r#"{"admission_id":12345,"visit_no":"7","limit":" 9 "}"#,
            r#"{"empty":"","long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            r#"{"name":"王小明😀","b":"/","z":""}"#,
        ] {
            assert_reads_alike(text);
        }
    }

    #[test]
    fn anything_but_a_flat_object_without_escapes_is_left_to_serde_json() {
        for text in [
            "",
            "   ",
            "[]",
            "\"x\"",
            "null",
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a\u0062":"x"}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"x"}x"#,
            r#"{"a":"x",}"#,
            r#"{"a" "x"}"#,
            r#"{"a":"x""#,
            r#"{"a":01}"#,
            r#"{"a":1e400}"#,
            r#"{"a":tru}"#,
            r#"{"a":"tab	inside"}"#,
            r#"{a:"x"}"#,
            r#"{"a":"x"}{"#,
        ] {
            assert!(Args::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_scoped_request_id_replaces_the_given_one_in_place() {
        let mut args = Args::parse(r#"{"request_id":"R1","patient_id":"PAT1","request_id":"R0"}"#).unwrap();
        args.set_request_id("@community:C001/R1".into());
        let mut m: Map<String, Value> = serde_json::from_str(r#"{"request_id":"R1","patient_id":"PAT1"}"#).unwrap();
        m.insert("request_id".into(), "@community:C001/R1".into());
        let who = Principal::platform();
        assert_eq!(Req::of_args(&args, &who).request_id().unwrap(), Some("@community:C001/R1"));
        assert_eq!(Req::of_args(&args, &who).fingerprint("book-slot"), Req::new(&m, &who).fingerprint("book-slot"));
        assert_eq!(args.to_map(), m);
    }

    proptest::proptest! {
        #[test]
        fn any_flat_object_reads_in_place_as_serde_json_parses_it(
            fields in proptest::collection::vec((
                "[a-z_]{1,12}",
                proptest::prop_oneof![
                    "[^\"\\\\\\x00-\\x1f]{0,40}".prop_map(Value::from),
                    proptest::num::i64::ANY.prop_map(Value::from),
                    proptest::num::u64::ANY.prop_map(Value::from),
                    proptest::num::f64::NORMAL.prop_map(Value::from),
                    proptest::bool::ANY.prop_map(Value::from),
                    proptest::strategy::Just(Value::Null),
                ],
                " {0,2}",
            ), 0..10)
        ) {
            let mut text = String::from("{");
            for (i, (k, v, ws)) in fields.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!("{ws}{}{ws}:{ws}{v}{ws}", Value::from(k.as_str())));
            }
            text.push('}');
            assert_reads_alike(&text);
        }
    }

    #[test]
    fn fingerprint_is_fnv1a_with_part_terminators() {
        assert_eq!(fingerprint(&[b"hold", &7u32.to_le_bytes(), b"PAT001", b"normal"]), 0xbe03_af86_255e_2ce0);
    }
}
