//! Request signatures (I2): HMAC-SM3 over a canonical request. The client
//! signs with [`sign`]; a server (the sandbox) checks with [`Verifier`].
//! Pure functions over bytes, no HTTP library: both ends share this code and
//! `docs/client.md` states the same form for Java and C# vendors.
//!
//! The string to sign is six lines joined by `\n` (no trailing newline):
//!
//! ```text
//! METHOD            upper case: GET, POST
//! PATH              the URL path as sent, e.g. /api/v1/real-time-slots
//! CANONICAL_QUERY   see canonical_query; empty when there is none
//! TIMESTAMP         Unix time in whole seconds, decimal
//! NONCE             16..=64 characters of [A-Za-z0-9_-], new for every request
//! SM3(BODY)         lowercase hex of SM3 over the raw body bytes (of b"" when none)
//! ```
//!
//! The signature is the lowercase hex of HMAC-SM3(secret as UTF-8 bytes,
//! string to sign), sent with the app id, timestamp and nonce in the headers
//! named below.

use crate::crypto::{hmac_sm3_hex, hmac_sm3_verify, sm3_hex};
use crate::error::{Error, ErrorCode, Result};
use parking_lot::Mutex;
use std::collections::HashMap;

pub const HEADER_APP_ID: &str = "X-YL-App-Id";
pub const HEADER_TIMESTAMP: &str = "X-YL-Timestamp";
pub const HEADER_NONCE: &str = "X-YL-Nonce";
pub const HEADER_SIGNATURE: &str = "X-YL-Signature";
/// The lowercase hex SM3 of the body, the sixth line of the string to sign:
/// sent so a server can verify the signature before reading the body.
pub const HEADER_CONTENT_SM3: &str = "X-YL-Content-SM3";

/// The shortest secret a verifier accepts, and the platform client's config
/// (bytes): 256 bits, SM3's size.
pub use crate::config::platform::MIN_SECRET_BYTES;

/// The default tolerance between the signer's and the verifier's wall clocks.
pub const DEFAULT_WINDOW_SECS: i64 = 300;

/// RFC 3986 unreserved characters stay; every other byte becomes `%XX` (upper hex).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes one query component, `+` meaning a space (form encoding).
/// `None` when the result is not UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The canonical query: split the raw query on `&` (empty pieces dropped),
/// split each piece at its first `=` (none: empty value), percent-decode key
/// and value (`+` is a space), re-encode both keeping only `A-Z a-z 0-9 - _ . ~`
/// (every other UTF-8 byte as `%XX`, upper-case hex), sort the pairs by key,
/// then value (byte order of the encoded text), join as `k=v` with `&`.
pub fn canonical_query(raw: Option<&str>) -> Result<String> {
    let mut pairs = Vec::new();
    for piece in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let k = decode(k).ok_or_else(|| Error::invalid("(query)", "not valid percent-encoded UTF-8"))?;
        let v = decode(v).ok_or_else(|| Error::invalid("(query)", "not valid percent-encoded UTF-8"))?;
        pairs.push((encode(&k), encode(&v)));
    }
    pairs.sort();
    Ok(pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

/// The query string the client sends for `pairs`: already canonical (sorted,
/// encoded as `canonical_query` encodes), so what is signed is what is sent.
pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut enc: Vec<(String, String)> = pairs.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    enc.sort();
    enc.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The six-line string to sign (see the module documentation).
pub fn string_to_sign(method: &str, path: &str, raw_query: Option<&str>, timestamp: i64, nonce: &str, body: &[u8]) -> Result<String> {
    Ok(format!("{}\n{}\n{}\n{}\n{}\n{}", method.to_ascii_uppercase(), path, canonical_query(raw_query)?, timestamp, nonce, sm3_hex(body)))
}

/// The signature headers' values for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub app_id: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
    /// The lowercase hex SM3 of the body (the string to sign's last line).
    pub content_sm3: String,
}

impl Signed {
    /// `(header name, value)` pairs to add to the request.
    /// The body's digest travels too ([`HEADER_CONTENT_SM3`]) so a server
    /// can refuse a bad signature before reading the body.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        [
            (HEADER_APP_ID, self.app_id.clone()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_NONCE, self.nonce.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
            (HEADER_CONTENT_SM3, self.content_sm3.clone()),
        ]
    }
}

/// Signs one request.
#[allow(clippy::too_many_arguments)]
pub fn sign(app_id: &str, secret: &str, method: &str, path: &str, raw_query: Option<&str>, timestamp: i64, nonce: &str, body: &[u8]) -> Result<Signed> {
    let sts = string_to_sign(method, path, raw_query, timestamp, nonce, body)?;
    Ok(Signed { app_id: app_id.into(), timestamp, nonce: nonce.into(), signature: hmac_sm3_hex(secret.as_bytes(), sts.as_bytes()), content_sm3: sm3_hex(body) })
}

/// A fresh nonce: 16 random bytes as 32 hex digits.
pub fn new_nonce() -> String {
    let mut b = [0u8; 16];
    // The OS random source does not fail on the platforms we build for; a
    // failure would leave zeros, which the server then refuses as a replay.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// Wall-clock Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn valid_nonce(n: &str) -> bool {
    (16..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refuse(code: ErrorCode, en: &str, zh: &str) -> Error {
    Error::with(code, en.to_string(), zh.to_string())
}

/// The nonce claim a [`Verifier`] calls once a signature verifies:
/// `(app id, nonce, signed-at Unix seconds)` → `Ok(true)` when the nonce is
/// newly claimed, `Ok(false)` when it was already used (a replay), `Err` when
/// the store cannot tell (the request is then refused with that error).
/// A durable store makes replays fail across restarts; the default
/// ([`MemoryNonces`]) forgets them when the process ends.
pub type NonceClaim = Box<dyn Fn(&str, &str, i64) -> Result<bool> + Send + Sync>;

/// Checks signatures on the server side: a timestamp within `window_secs`
/// of the verifier's wall clock, a valid HMAC under a configured app id's
/// secret, and a nonce not used before (see [`NonceClaim`]).
///
/// Invariants: an unknown app id is answered exactly like a bad signature
/// (`SIGNATURE_INVALID`, same text, and an HMAC is still computed), so a
/// caller cannot probe which app ids exist; a nonce is claimed only once the
/// HMAC verifies, so a forged request cannot burn a genuine nonce; no error
/// text repeats the caller's timestamp, app id or nonce.
pub struct Verifier {
    keys: HashMap<String, String>,
    window_secs: i64,
    claim: NonceClaim,
}

/// The in-memory nonce log: (app id, nonce) → signed-at, kept until the
/// timestamp leaves the window (judged against the newest timestamp seen, so
/// no clock is needed and memory stays bounded by the request rate).
pub struct MemoryNonces {
    window_secs: i64,
    seen: Mutex<NonceLog>,
}

#[derive(Default)]
struct NonceLog {
    map: HashMap<(String, String), i64>,
    newest: i64,
    last_prune: i64,
}

impl MemoryNonces {
    pub fn new(window_secs: i64) -> MemoryNonces {
        MemoryNonces { window_secs: window_secs.max(1), seen: Mutex::new(NonceLog { newest: i64::MIN, last_prune: i64::MIN, ..NonceLog::default() }) }
    }

    /// `true` when `(app_id, nonce)` is newly claimed.
    pub fn claim(&self, app_id: &str, nonce: &str, signed_at: i64) -> bool {
        let mut log = self.seen.lock();
        log.newest = log.newest.max(signed_at);
        // A timestamp accepted now is within ±window of the wall clock, and the
        // newest seen is at most window ahead of it: anything older than
        // newest - 2·window can never verify again.
        if log.newest.saturating_sub(log.last_prune) > self.window_secs / 4 + 1 {
            let horizon = log.newest.saturating_sub(self.window_secs.saturating_mul(2));
            log.map.retain(|_, t| *t >= horizon);
            log.last_prune = log.newest;
        }
        let key = (app_id.to_string(), nonce.to_string());
        if log.map.contains_key(&key) {
            return false;
        }
        log.map.insert(key, signed_at);
        true
    }
}

/// The HMAC key used for an unknown app id, so its refusal costs the same.
const NO_SUCH_KEY: &[u8] = b"yilian: no key is configured for this app id";

impl Verifier {
    /// `keys`: app id → secret. `window_secs`: how far a timestamp may be from
    /// now. Nonces are remembered in memory ([`MemoryNonces`]).
    pub fn new(keys: HashMap<String, String>, window_secs: i64) -> Verifier {
        let log = MemoryNonces::new(window_secs);
        Verifier::with_nonce_store(keys, window_secs, Box::new(move |app, nonce, ts| Ok(log.claim(app, nonce, ts))))
    }

    /// Like [`Verifier::new`] with nonces claimed through `claim` (e.g. a
    /// durable table, so a replay is refused after a restart too).
    pub fn with_nonce_store(keys: HashMap<String, String>, window_secs: i64, claim: NonceClaim) -> Verifier {
        Verifier { keys, window_secs: window_secs.max(1), claim }
    }

    pub fn window_secs(&self) -> i64 {
        self.window_secs
    }

    /// Parses a keys file: a JSON object of app id → secret (both strings;
    /// every secret at least [`MIN_SECRET_BYTES`] bytes).
    pub fn parse_keys(json: &str) -> Result<HashMap<String, String>> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            Error::with(ErrorCode::InvalidConfig, format!("keys: not JSON: {e}"), format!("密钥文件不是合法的JSON：{}", crate::error::json_error_zh(&e)))
        })?;
        let obj =
            v.as_object().ok_or_else(|| refuse(ErrorCode::InvalidConfig, "keys: must be an object of app id → secret", "密钥文件须为 应用ID → 密钥 的对象"))?;
        let mut keys = HashMap::new();
        for (k, s) in obj {
            match s.as_str() {
                Some(s) if s.len() >= MIN_SECRET_BYTES && !k.is_empty() => {
                    keys.insert(k.clone(), s.to_string());
                }
                _ => {
                    return Err(Error::with(
                        ErrorCode::InvalidConfig,
                        format!("keys: every secret must be a string of at least {MIN_SECRET_BYTES} bytes"),
                        format!("密钥文件中每个密钥须为至少 {MIN_SECRET_BYTES} 字节的字符串"),
                    ))
                }
            }
        }
        if keys.is_empty() {
            return Err(refuse(ErrorCode::InvalidConfig, "keys: no app id is configured", "密钥文件中没有任何应用ID"));
        }
        Ok(keys)
    }

    /// What can be checked before a byte of the body is read: the headers
    /// are present and well-formed and the timestamp is within the window.
    /// An unsigned or stale request is refused here, its body never read.
    pub fn precheck(&self, header: &dyn Fn(&str) -> Option<String>, now: i64) -> Result<()> {
        self.parts(header, now).map(|_| ())
    }

    fn parts(&self, header: &dyn Fn(&str) -> Option<String>, now: i64) -> Result<(String, i64, String, String)> {
        let (Some(app_id), Some(ts), Some(nonce), Some(sig)) =
            (header(HEADER_APP_ID), header(HEADER_TIMESTAMP), header(HEADER_NONCE), header(HEADER_SIGNATURE))
        else {
            return Err(refuse(
                ErrorCode::SignatureMissing,
                "missing signature headers: X-YL-App-Id, X-YL-Timestamp, X-YL-Nonce and X-YL-Signature are required",
                "缺少签名请求头：须提供应用ID、时间戳、随机数和签名四个请求头",
            ));
        };
        let Ok(ts) = ts.trim().parse::<i64>() else {
            return Err(refuse(ErrorCode::SignatureInvalid, "X-YL-Timestamp must be Unix seconds", "时间戳请求头须为Unix时间（秒）"));
        };
        if !valid_nonce(nonce.trim()) {
            return Err(refuse(
                ErrorCode::SignatureInvalid,
                "X-YL-Nonce must be 16 to 64 characters of A-Z a-z 0-9 - _",
                "随机数请求头须为16至64位字母、数字、连字符或下划线",
            ));
        }
        // Any i64 arrives here (`-9223372036854775808`): the distance is taken
        // without wrapping. The answer states the window, never the offset.
        if now.abs_diff(ts) > self.window_secs.unsigned_abs() {
            return Err(Error::with(
                ErrorCode::SignatureExpired,
                format!("request timestamp is outside the allowed window of ±{} s from the server's clock", self.window_secs),
                format!("请求时间戳超出服务器时间前后 {} 秒的允许范围", self.window_secs),
            ));
        }
        Ok((app_id.trim().to_string(), ts, nonce.trim().to_string(), sig))
    }

    /// Verifies one request from its headers, the body known only by its
    /// declared SM3 digest (`body_sm3`, lowercase hex; the header
    /// [`HEADER_CONTENT_SM3`]). The caller then checks that the body it reads
    /// has that digest ([`body_matches`]) before acting on it. Returns the app
    /// id; the nonce is claimed only once the HMAC verifies.
    pub fn verify_declared(
        &self,
        method: &str,
        path: &str,
        raw_query: Option<&str>,
        header: &dyn Fn(&str) -> Option<String>,
        body_sm3: &str,
        now: i64,
    ) -> Result<String> {
        let (app_id, ts, nonce, sig) = self.parts(header, now)?;
        if !valid_digest(body_sm3) {
            return Err(refuse(ErrorCode::SignatureInvalid, "X-YL-Content-SM3 must be 64 lowercase hex digits", "正文摘要请求头须为64位小写十六进制数字"));
        }
        let sts = format!("{}\n{}\n{}\n{}\n{}\n{}", method.to_ascii_uppercase(), path, canonical_query(raw_query)?, ts, nonce, body_sm3);
        let secret = self.keys.get(&app_id);
        let key = secret.map(|s| s.as_bytes()).unwrap_or(NO_SUCH_KEY);
        // An unknown app id runs the same HMAC and gets the same answer.
        if !hmac_sm3_verify(key, sts.as_bytes(), &sig) || secret.is_none() {
            return Err(refuse(ErrorCode::SignatureInvalid, "the request signature does not verify", "请求签名校验失败"));
        }
        if !(self.claim)(&app_id, &nonce, ts)? {
            return Err(refuse(ErrorCode::NonceReplayed, "the request nonce was already used (replay)", "请求随机数已被使用（重放）"));
        }
        Ok(app_id)
    }

    /// Verifies one request whose body is at hand; `header` looks a header up
    /// by name (case-insensitively). `now` is the verifier's wall clock (Unix
    /// seconds). A declared [`HEADER_CONTENT_SM3`] must match the body.
    /// Returns the app id.
    pub fn verify(&self, method: &str, path: &str, raw_query: Option<&str>, header: &dyn Fn(&str) -> Option<String>, body: &[u8], now: i64) -> Result<String> {
        let digest = sm3_hex(body);
        if let Some(declared) = header(HEADER_CONTENT_SM3) {
            self.parts(header, now)?;
            if !body_matches(declared.trim(), &digest) {
                return Err(body_mismatch());
            }
        }
        self.verify_declared(method, path, raw_query, header, &digest, now)
    }
}

fn valid_digest(d: &str) -> bool {
    d.len() == 64 && d.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether the body read has the declared digest (constant time).
pub fn body_matches(declared: &str, actual_hex: &str) -> bool {
    declared.len() == actual_hex.len() && declared.bytes().zip(actual_hex.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The refusal of a body that is not the one signed.
pub fn body_mismatch() -> Error {
    refuse(ErrorCode::SignatureInvalid, "the request body does not match its signed digest (X-YL-Content-SM3)", "请求体与签名中的正文摘要不一致")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/client.md: a Java or C# vendor reproduces these bytes.
    #[test]
    fn documented_worked_example() {
        let body = br#"{"patient_id":"PAT001","project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00","device_id":"DEV001","clinic_id":"C001"}"#;
        let sts = string_to_sign("POST", "/api/v1/pre-book-slot", None, 1730163600, "0123456789abcdef0123456789abcdef", body).unwrap();
        let body_hash = sm3_hex(body);
        assert_eq!(sts, format!("POST\n/api/v1/pre-book-slot\n\n1730163600\n0123456789abcdef0123456789abcdef\n{body_hash}"));
        let s = sign("C001-HIS", "demo-secret-C001", "POST", "/api/v1/pre-book-slot", None, 1730163600, "0123456789abcdef0123456789abcdef", body).unwrap();
        assert_eq!(body_hash, DOC_BODY_SM3);
        assert_eq!(s.signature, DOC_SIGNATURE);
        let q = string_to_sign(
            "GET",
            "/api/v1/real-time-slots",
            Some("time_slot=09%3A00-10%3A00&project_id=P001&date=2024-10-30"),
            1730163600,
            "n-0000000000000001",
            b"",
        )
        .unwrap();
        assert_eq!(q.lines().nth(2), Some("date=2024-10-30&project_id=P001&time_slot=09%3A00-10%3A00"));
        assert_eq!(q.lines().nth(5), Some(DOC_EMPTY_SM3));
        assert_eq!(hmac_sm3_hex(b"demo-secret-C001", q.as_bytes()), DOC_GET_SIGNATURE);
    }

    // Printed in docs/client.md; computed independently with Python's hashlib/hmac
    // over OpenSSL's SM3 (the snippet in docs/client.md), recomputed above.
    const DOC_BODY_SM3: &str = "de46fc2b2b3f61fabff3510aa21063313c6aa8e8c61cf195fc66d2cfcfc7fb0a";
    const DOC_SIGNATURE: &str = "6b30b2147c002c7c9459342123ba86d697c8234a876d06241fb12501ad82949e";
    const DOC_EMPTY_SM3: &str = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b";
    const DOC_GET_SIGNATURE: &str = "a86fbe1e96b40230a8d65a6fd350f253b5520a50acdb16113ad9444a7e21e308";

    #[test]
    fn canonical_query_sorts_decodes_and_reencodes() {
        assert_eq!(canonical_query(None).unwrap(), "");
        assert_eq!(canonical_query(Some("b=2&a=1&&a=0")).unwrap(), "a=0&a=1&b=2");
        assert_eq!(canonical_query(Some("name=%E5%BC%A0+三&flag")).unwrap(), "flag=&name=%E5%BC%A0%20%E4%B8%89");
        assert_eq!(canonical_query(Some("t=09:00-10:00")).unwrap(), canonical_query(Some("t=09%3a00-10%3A00")).unwrap());
        assert!(canonical_query(Some("x=%FF")).is_err());
        // What the client sends is already canonical.
        let sent = encode_query(&[("time_slot".into(), "09:00-10:00".into()), ("date".into(), "2024-10-30".into())]);
        assert_eq!(canonical_query(Some(&sent)).unwrap(), sent);
    }

    fn headers_of(s: &Signed) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| s.headers().into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    #[test]
    fn verifier_accepts_once_and_refuses_bad_stale_replayed_unknown() {
        let v = Verifier::new(HashMap::from([("APP".to_string(), "s3cret-s3cret".to_string())]), 300);
        let now = 1_800_000_000;
        let s = sign("APP", "s3cret-s3cret", "POST", "/api/v1/book-slot", Some("a=1"), now - 10, &new_nonce(), b"{}").unwrap();
        assert_eq!(v.verify("POST", "/api/v1/book-slot", Some("a=1"), &headers_of(&s), b"{}", now).unwrap(), "APP");
        // The same request again: a replay.
        assert_eq!(v.verify("POST", "/api/v1/book-slot", Some("a=1"), &headers_of(&s), b"{}", now).unwrap_err().code(), ErrorCode::NonceReplayed);
        // Any change to what was signed breaks the signature.
        let s2 = sign("APP", "s3cret-s3cret", "POST", "/api/v1/book-slot", None, now, &new_nonce(), b"{}").unwrap();
        for (m, p, q, b) in [
            ("GET", "/api/v1/book-slot", None, &b"{}"[..]),
            ("POST", "/api/v1/cancel-slot", None, b"{}"),
            ("POST", "/api/v1/book-slot", Some("a=1"), b"{}"),
            ("POST", "/api/v1/book-slot", None, b"{ }"),
        ] {
            assert_eq!(v.verify(m, p, q, &headers_of(&s2), b, now).unwrap_err().code(), ErrorCode::SignatureInvalid, "{m} {p} {q:?}");
        }
        let wrong_key = sign("APP", "other", "POST", "/p", None, now, &new_nonce(), b"").unwrap();
        assert_eq!(v.verify("POST", "/p", None, &headers_of(&wrong_key), b"", now).unwrap_err().code(), ErrorCode::SignatureInvalid);
        let stale = sign("APP", "s3cret-s3cret", "POST", "/p", None, now - 301, &new_nonce(), b"").unwrap();
        assert_eq!(v.verify("POST", "/p", None, &headers_of(&stale), b"", now).unwrap_err().code(), ErrorCode::SignatureExpired);
        let future = sign("APP", "s3cret-s3cret", "POST", "/p", None, now + 301, &new_nonce(), b"").unwrap();
        assert_eq!(v.verify("POST", "/p", None, &headers_of(&future), b"", now).unwrap_err().code(), ErrorCode::SignatureExpired);
        let unknown = sign("NOPE", "s3cret-s3cret", "POST", "/p", None, now, &new_nonce(), b"").unwrap();
        let (u, b) = (
            v.verify("POST", "/p", None, &headers_of(&unknown), b"", now).unwrap_err(),
            v.verify("POST", "/p", None, &headers_of(&wrong_key), b"", now).unwrap_err(),
        );
        assert_eq!((u.code(), u.message(), u.message_zh()), (b.code(), b.message(), b.message_zh()), "an unknown app id is answered as a bad signature");
        assert_eq!(v.verify("POST", "/p", None, &|_| None, b"", now).unwrap_err().code(), ErrorCode::SignatureMissing);
        let short_nonce = sign("APP", "s3cret-s3cret", "POST", "/p", None, now, "abc", b"").unwrap();
        assert_eq!(v.verify("POST", "/p", None, &headers_of(&short_nonce), b"", now).unwrap_err().code(), ErrorCode::SignatureInvalid);
    }

    #[test]
    fn a_timestamp_at_either_end_of_i64_is_refused_as_stale_without_wrapping_or_stating_the_offset() {
        let v = Verifier::new(HashMap::from([("APP".to_string(), "s3cret-s3cret".to_string())]), 300);
        let now = 1_800_000_000;
        for ts in [i64::MIN, i64::MIN + 1, -now, i64::MAX] {
            let s = sign("APP", "s3cret-s3cret", "POST", "/p", None, ts, &new_nonce(), b"").unwrap();
            let err = v.verify("POST", "/p", None, &headers_of(&s), b"", now).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SignatureExpired, "{ts}");
            // The window is stated, never how far off the caller's clock is.
            let off = now.saturating_sub(ts);
            assert!(!err.message().contains(&off.to_string()) && !err.message_zh().contains(&off.to_string()), "{ts}: {}", err.message());
            assert!(err.message().contains("300 s") && err.message_zh().contains("300 秒"), "{}", err.message());
        }
    }

    #[test]
    fn a_refused_signature_does_not_burn_the_nonce() {
        let v = Verifier::new(HashMap::from([("APP".to_string(), "k".to_string())]), 300);
        let nonce = new_nonce();
        let bad = Signed { signature: "00".repeat(32), ..sign("APP", "k", "GET", "/p", None, 100, &nonce, b"").unwrap() };
        assert!(v.verify("GET", "/p", None, &headers_of(&bad), b"", 100).is_err());
        let good = sign("APP", "k", "GET", "/p", None, 100, &nonce, b"").unwrap();
        assert!(v.verify("GET", "/p", None, &headers_of(&good), b"", 100).is_ok());
    }

    #[test]
    fn keys_file_is_validated() {
        let long = "k".repeat(MIN_SECRET_BYTES);
        assert_eq!(Verifier::parse_keys(&format!(r#"{{"A":"{long}","B":"{long}"}}"#)).unwrap().len(), 2);
        let short = format!(r#"{{"A":"{}"}}"#, "k".repeat(MIN_SECRET_BYTES - 1));
        for bad in ["[]", "{}", r#"{"A":""}"#, r#"{"A":1}"#, "{", short.as_str()] {
            assert_eq!(Verifier::parse_keys(bad).unwrap_err().code(), ErrorCode::InvalidConfig, "{bad}");
        }
    }

    #[test]
    fn a_signature_verifies_from_the_headers_and_the_declared_digest_before_the_body() {
        let v = Verifier::new(HashMap::from([("APP".to_string(), "s3cret-s3cret".to_string())]), 300);
        let now = 1_800_000_000;
        let body = vec![b'x'; 100_000];
        let s = sign("APP", "s3cret-s3cret", "POST", "/api/v1/upload-report", None, now, &new_nonce(), &body).unwrap();
        // No body needed: the declared digest is what was signed.
        assert_eq!(v.verify_declared("POST", "/api/v1/upload-report", None, &headers_of(&s), &s.content_sm3, now).unwrap(), "APP");
        assert!(body_matches(&s.content_sm3, &sm3_hex(&body)));
        assert!(!body_matches(&s.content_sm3, &sm3_hex(b"another body")));
        // A wrong declared digest breaks the signature; a forged one is refused as it is.
        let s2 = sign("APP", "s3cret-s3cret", "POST", "/p", None, now, &new_nonce(), b"{}").unwrap();
        assert_eq!(v.verify_declared("POST", "/p", None, &headers_of(&s2), &sm3_hex(b"{ }"), now).unwrap_err().code(), ErrorCode::SignatureInvalid);
        assert_eq!(v.verify_declared("POST", "/p", None, &headers_of(&s2), "not hex", now).unwrap_err().code(), ErrorCode::SignatureInvalid);
        // With the body at hand, a declared digest that is not the body's is refused.
        let s3 = sign("APP", "s3cret-s3cret", "POST", "/p", None, now, &new_nonce(), b"{}").unwrap();
        let e = v.verify("POST", "/p", None, &headers_of(&s3), b"{\"x\":1}", now).unwrap_err();
        assert_eq!((e.code(), e.message()), (ErrorCode::SignatureInvalid, body_mismatch().message()));
        // Unsigned or stale: refused by the precheck, before any body.
        assert_eq!(v.precheck(&|_| None, now).unwrap_err().code(), ErrorCode::SignatureMissing);
        let stale = sign("APP", "s3cret-s3cret", "POST", "/p", None, now - 1000, &new_nonce(), b"").unwrap();
        assert_eq!(v.precheck(&headers_of(&stale), now).unwrap_err().code(), ErrorCode::SignatureExpired);
    }

    #[test]
    fn a_pluggable_nonce_store_decides_replays_and_its_failure_refuses() {
        use std::sync::{Arc, Mutex as StdMutex};
        let claimed: Arc<StdMutex<Vec<(String, String, i64)>>> = Arc::default();
        let c = claimed.clone();
        let v = Verifier::with_nonce_store(
            HashMap::from([("APP".to_string(), "s3cret-s3cret".to_string())]),
            300,
            Box::new(move |app, nonce, ts| {
                let mut l = c.lock().unwrap();
                if nonce.starts_with("broken") {
                    return Err(Error::new(ErrorCode::StorageError));
                }
                let fresh = !l.iter().any(|(a, n, _)| a == app && n == nonce);
                l.push((app.to_string(), nonce.to_string(), ts));
                Ok(fresh)
            }),
        );
        let now = 1_800_000_000;
        let s = sign("APP", "s3cret-s3cret", "GET", "/p", None, now, "n-00000000000000001", b"").unwrap();
        assert!(v.verify("GET", "/p", None, &headers_of(&s), b"", now).is_ok());
        assert_eq!(claimed.lock().unwrap()[0], ("APP".to_string(), "n-00000000000000001".to_string(), now));
        assert_eq!(v.verify("GET", "/p", None, &headers_of(&s), b"", now).unwrap_err().code(), ErrorCode::NonceReplayed);
        let b = sign("APP", "s3cret-s3cret", "GET", "/p", None, now, "broken-000000000001", b"").unwrap();
        assert_eq!(v.verify("GET", "/p", None, &headers_of(&b), b"", now).unwrap_err().code(), ErrorCode::StorageError);
        // A forged request never reaches the store.
        let forged = Signed { signature: "00".repeat(32), ..sign("APP", "s3cret-s3cret", "GET", "/p", None, now, "n-00000000000000002", b"").unwrap() };
        assert!(v.verify("GET", "/p", None, &headers_of(&forged), b"", now).is_err());
        // The accepted request and its replay were the only claims recorded.
        assert_eq!(claimed.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_memory_nonce_log_forgets_only_what_can_no_longer_verify() {
        let log = MemoryNonces::new(300);
        assert!(log.claim("A", "n1", 1000));
        assert!(!log.claim("A", "n1", 1000));
        assert!(log.claim("B", "n1", 1000), "nonces are per app id");
        // 500 s later n1 (signed at 1000) is still within 2 windows of the newest: kept.
        assert!(log.claim("A", "n2", 1500));
        assert!(!log.claim("A", "n1", 1000));
        // Far later it is pruned; it could never pass the window check again anyway.
        assert!(log.claim("A", "n3", 5000));
        assert_eq!(log.seen.lock().map.len(), 1);
    }
}
