//! The text encoding of an engine's JSON calls: UTF-8 (the default) or GBK,
//! for hosts whose strings are GBK (PowerBuilder's and Delphi's ANSI strings
//! on a Chinese Windows, the national insurance-interface DLLs).
//!
//! Chosen once, when the engine opens, by the FFI-level config key
//! `"text_encoding": "utf-8" | "gbk"`, which this module takes out of the
//! config before the core sees it (the core refuses unknown keys, and has no
//! business with the caller's encoding). One rule, one place: the JSON calls
//! (`yl_call`, `yl_call_as`, `yl_call_buf`, `yl_call_as_buf` and their
//! `_std` forms) go through [`decode`] for every string in and [`encode`]
//! for the envelope out; nothing else converts.
//!
//! Invariants:
//! - Inside the library every string is UTF-8; GBK exists only at this edge.
//! - GBK in is decoded strictly (WHATWG's GBK decoder, which also reads
//!   GB18030's four-byte forms): a byte sequence that is not GBK is
//!   `INVALID_ENCODING` before anything runs, never a replacement character.
//! - GBK out loses nothing: a character GBK cannot encode is written as a
//!   JSON `\uXXXX` escape (a surrogate pair above the BMP). The envelope is
//!   JSON, so every non-ASCII character sits inside a string literal, where
//!   the escape means the same character. Never `?`, never `&#NNNN;`.
//! - ASCII text is the same in both encodings and passes through uncopied.

use encoding_rs::{DecoderResult, EncoderResult, GBK};
use std::borrow::Cow;
use std::ffi::CStr;
use std::os::raw::c_char;
use yilian_core::{Error, ErrorCode};

/// The config key yilian-ffi takes out of `yl_engine_open`'s config.
pub(crate) const CONFIG_KEY: &str = "text_encoding";

/// The encoding of an engine's JSON calls, in and out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    #[default]
    Utf8,
    Gbk,
}

/// Splits the FFI-level key off a config: the encoding it asks for, and the
/// config the core gets (the text unchanged when the key is absent, so the
/// core's own errors for a bad config stay as they were).
pub(crate) fn split_config(config: &str) -> Result<(TextEncoding, Cow<'_, str>), Error> {
    if !config.contains(CONFIG_KEY) {
        return Ok((TextEncoding::Utf8, Cow::Borrowed(config)));
    }
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str::<serde_json::Value>(config) else {
        // Not an object: the core says why.
        return Ok((TextEncoding::Utf8, Cow::Borrowed(config)));
    };
    let Some(value) = map.remove(CONFIG_KEY) else {
        return Ok((TextEncoding::Utf8, Cow::Borrowed(config)));
    };
    let encoding = match value.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("utf-8" | "utf8") => TextEncoding::Utf8,
        Some("gbk") => TextEncoding::Gbk,
        _ => {
            return Err(Error::with(
                ErrorCode::InvalidConfig,
                format!("config key `{CONFIG_KEY}` must be \"utf-8\" or \"gbk\""),
                format!("配置项 `{CONFIG_KEY}` 只能是 \"utf-8\" 或 \"gbk\""),
            ))
        }
    };
    Ok((encoding, Cow::Owned(serde_json::Value::Object(map).to_string())))
}

/// A required, NUL-terminated argument of a JSON call in `enc`, as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn decode<'a>(enc: TextEncoding, p: *const c_char, name: &str) -> Result<Cow<'a, str>, Error> {
    match enc {
        TextEncoding::Utf8 => crate::strings::arg_str(p, name).map(Cow::Borrowed),
        TextEncoding::Gbk => {
            if p.is_null() {
                return Err(crate::strings::null_arg(name));
            }
            decode_gbk(CStr::from_ptr(p).to_bytes(), name)
        }
    }
}

fn decode_gbk<'a>(bytes: &'a [u8], name: &str) -> Result<Cow<'a, str>, Error> {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8.
        return std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|_| Error::internal("ASCII that is not UTF-8"));
    }
    let mut decoder = GBK.new_decoder_without_bom_handling();
    let cap = decoder.max_utf8_buffer_length_without_replacement(bytes.len()).ok_or_else(|| Error::internal("GBK argument too long"))?;
    let mut out = String::with_capacity(cap);
    match decoder.decode_to_string_without_replacement(bytes, &mut out, true) {
        (DecoderResult::InputEmpty, _) => Ok(Cow::Owned(out)),
        (DecoderResult::Malformed(bad, after), read) => {
            // The malformed sequence ends `after` bytes before what was read.
            let at = read.saturating_sub(usize::from(bad) + usize::from(after));
            Err(Error::with(
                ErrorCode::InvalidEncoding,
                format!("argument `{name}` is not valid GBK (byte {at})"),
                format!("参数 `{name}` 不是合法的GBK编码（第 {at} 字节）"),
            ))
        }
        (DecoderResult::OutputFull, _) => Err(Error::internal("GBK decoding ran out of room")),
    }
}

/// `s` in `enc`, for the caller. GBK: characters GBK has no code for become
/// JSON escapes (`s` is JSON, see the module invariants).
pub(crate) fn encode(enc: TextEncoding, s: String) -> Vec<u8> {
    match enc {
        TextEncoding::Utf8 => s.into_bytes(),
        TextEncoding::Gbk if s.is_ascii() => s.into_bytes(),
        TextEncoding::Gbk => encode_gbk(&s),
    }
}

fn encode_gbk(s: &str) -> Vec<u8> {
    let mut encoder = GBK.new_encoder();
    let mut out: Vec<u8> = Vec::with_capacity(s.len() + 16);
    let mut rest = s;
    loop {
        // Room for the rest without replacement: GBK needs at most 2 bytes
        // per character, never more than UTF-8's bytes for it plus slack.
        let room = encoder.max_buffer_length_from_utf8_without_replacement(rest.len()).unwrap_or(rest.len() * 2 + 16);
        out.reserve(room);
        let (result, read) = encoder.encode_from_utf8_to_vec_without_replacement(rest, &mut out, true);
        rest = &rest[read..];
        match result {
            EncoderResult::InputEmpty => return out,
            EncoderResult::OutputFull => continue,
            EncoderResult::Unmappable(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_taken_out_and_the_rest_passed_on() {
        let (enc, rest) = split_config(r#"{"clock":"manual","text_encoding":"GBK"}"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(enc, TextEncoding::Gbk);
        assert_eq!(rest, r#"{"clock":"manual"}"#);
        let (enc, rest) = split_config(r#"{"clock":"manual"}"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((enc, rest.as_ref()), (TextEncoding::Utf8, r#"{"clock":"manual"}"#));
        let err = split_config(r#"{"text_encoding":"big5"}"#).err().map(|e| e.code());
        assert_eq!(err, Some(ErrorCode::InvalidConfig));
    }

    #[test]
    fn gbk_round_trips_chinese_names() {
        let (gbk, _, _) = GBK.encode("张三 王护士");
        assert_eq!(decode_gbk(&gbk, "r").ok().as_deref(), Some("张三 王护士"));
        assert_eq!(encode(TextEncoding::Gbk, "{\"name\":\"张三\"}".into()), [b"{\"name\":\"".as_slice(), &gbk[..4], b"\"}"].concat());
    }

    #[test]
    fn invalid_gbk_is_refused_with_its_position() {
        let err = decode_gbk(b"{\"a\":\"\x81\x20\"}", "request_json").err();
        assert_eq!(err.as_ref().map(Error::code), Some(ErrorCode::InvalidEncoding));
        assert!(err.is_some_and(|e| e.message().contains("byte 6")));
    }

    #[test]
    fn characters_gbk_lacks_become_json_escapes() {
        // U+1F600 (an emoji) and U+0E01 (Thai) have no GBK code.
        let out = encode(TextEncoding::Gbk, "[\"a\u{1F600}\u{0E01}张\"]".to_owned());
        let (zhang, _, _) = GBK.encode("张");
        assert_eq!(out, [b"[\"a\\ud83d\\ude00\\u0e01".as_slice(), &zhang, b"\"]"].concat());
    }
}
