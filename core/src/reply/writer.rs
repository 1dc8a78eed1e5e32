//! A view's JSON text, written as `serde_json` writes it (compact, the same
//! bytes: `reply::tests`) but with strings that need no escape copied whole:
//! `serde_json` looks up every byte of every key and string in its escape
//! table, which was 5,000 of a booking pair's 36,600 instructions
//! (callgrind, `command_layer`). A shape this writer does not take (an enum
//! variant, bytes, a map with keys that are not strings) fails it, and
//! [`Data::text`](super::Data::text) writes the view with `serde_json` instead.

use serde::ser::{self, Serialize};

#[derive(Debug)]
pub(super) struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a shape the text writer leaves to serde_json")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

type R = Result<(), Unsupported>;

const ONES: u64 = 0x0101_0101_0101_0101;

/// Whether any of the eight bytes in `x` must be escaped in a JSON string:
/// `"`, `\` or a control character (below 0x20). Exact: non-zero only
/// when one is there.
#[inline]
fn special(x: u64) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero exactly when some byte of `x` is below `n` (n <= 128).
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    below(x, 0x20) | below(x ^ (ONES * b'"' as u64), 1) | below(x ^ (ONES * b'\\' as u64), 1) != 0
}

/// The eight bytes at `at` (callers keep `at + 8` within `b`).
#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()).map_or(0, u64::from_le_bytes)
}

/// The four bytes at `at`, widened (callers keep `at + 4` within `b`).
#[inline(always)]
fn half(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()).map_or(0, u32::from_le_bytes) as u64
}

/// Whether any byte of `b` must be escaped in JSON, eight at a time; the
/// tail is read as the last eight bytes (or, below eight, as bytes padded
/// with a letter), so no byte is looked at alone.
#[inline]
pub(crate) fn needs_escape(b: &[u8]) -> bool {
    let n = b.len();
    match n {
        // The first four and the last four, overlapping.
        4..8 => special(half(b, 0) | half(b, n - 4) << 32),
        0..4 => b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\'),
        _ => (0..n / 8).any(|i| special(word(b, 8 * i))) || special(word(b, n - 8)),
    }
}

/// The index of the first byte of `b` that a JSON string cannot hold as
/// it is (`"`, `\`, a control character): where a string read in place
/// ends (`request::Args`).
#[inline]
pub(crate) fn first_special(b: &[u8]) -> Option<usize> {
    let is = |c: u8| c < 0x20 || c == b'"' || c == b'\\';
    let n = b.len();
    let mut at = 0;
    while at + 8 <= n {
        if special(word(b, at)) {
            break;
        }
        at += 8;
    }
    // The tail (or a short text): one word over its last eight bytes tells
    // whether there is anything to look for byte by byte.
    if at + 8 > n && n >= 8 && !special(word(b, n - 8)) {
        return None;
    }
    b[at..].iter().position(|&c| is(c)).map(|i| at + i)
}

#[inline]
pub(super) fn write_str(buf: &mut String, s: &str) {
    if needs_escape(s.as_bytes()) {
        // serde_json's own escaping (of a `str`, which cannot fail).
        buf.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        buf.reserve(s.len() + 2);
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
    }
}

/// Writes into a `String`: every piece is a `str` already, so the text is
/// never checked for UTF-8 again.
pub(super) struct Writer<'b> {
    pub buf: &'b mut String,
}

impl Writer<'_> {
    fn int(&mut self, n: impl itoa::Integer) -> R {
        self.buf.push_str(itoa::Buffer::new().format(n));
        Ok(())
    }
    /// What serde_json prints for it (floats: `ryu`, or `null` when not finite).
    fn like_serde_json(&mut self, v: &impl Serialize) -> R {
        self.buf.push_str(&serde_json::to_string(v).map_err(|_| Unsupported)?);
        Ok(())
    }
}

/// Separators of a sequence or map: a comma before every item but the first.
pub(super) struct Compound<'w, 'b> {
    w: &'w mut Writer<'b>,
    first: bool,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.w.buf.push(',');
        }
    }
    fn key(&mut self, k: &str) {
        self.comma();
        write_str(self.w.buf, k);
        self.w.buf.push(':');
    }
}

impl<'w, 'b> ser::Serializer for &'w mut Writer<'b> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'w, 'b>;
    type SerializeTuple = Compound<'w, 'b>;
    type SerializeTupleStruct = Compound<'w, 'b>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = Compound<'w, 'b>;
    type SerializeStruct = Compound<'w, 'b>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> R {
        self.buf.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> R {
        self.int(v)
    }
    fn serialize_i16(self, v: i16) -> R {
        self.int(v)
    }
    fn serialize_i32(self, v: i32) -> R {
        self.int(v)
    }
    fn serialize_i64(self, v: i64) -> R {
        self.int(v)
    }
    fn serialize_i128(self, v: i128) -> R {
        self.int(v)
    }
    fn serialize_u8(self, v: u8) -> R {
        self.int(v)
    }
    fn serialize_u16(self, v: u16) -> R {
        self.int(v)
    }
    fn serialize_u32(self, v: u32) -> R {
        self.int(v)
    }
    fn serialize_u64(self, v: u64) -> R {
        self.int(v)
    }
    fn serialize_u128(self, v: u128) -> R {
        self.int(v)
    }
    fn serialize_f32(self, v: f32) -> R {
        self.like_serde_json(&v)
    }
    fn serialize_f64(self, v: f64) -> R {
        self.like_serde_json(&v)
    }
    fn serialize_char(self, v: char) -> R {
        write_str(self.buf, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> R {
        write_str(self.buf, v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Err(Unsupported)
    }
    fn serialize_none(self) -> R {
        self.serialize_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        self.buf.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> R {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _: &'static str, _: u32, _: &'static str, _: &T) -> R {
        Err(Unsupported)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'w, 'b>, Unsupported> {
        self.buf.push('[');
        Ok(Compound { w: self, first: true })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'b>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'w, 'b>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'w, 'b>, Unsupported> {
        self.buf.push('{');
        Ok(Compound { w: self, first: true })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'w, 'b>, Unsupported> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        self.comma();
        v.serialize(&mut *self.w)
    }
    fn end(self) -> R {
        self.w.buf.push(']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> R {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> R {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> R {
        // A `Value`'s map (a patient's details): its keys as serde_json
        // prints them alone, which is how it prints a key that is a string;
        // any other key (serde_json quotes numbers) is left to serde_json.
        let k = serde_json::to_string(k).map_err(|_| Unsupported)?;
        if !k.starts_with('"') {
            return Err(Unsupported);
        }
        self.comma();
        self.w.buf.push_str(&k);
        self.w.buf.push(':');
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        v.serialize(&mut *self.w)
    }
    fn end(self) -> R {
        self.w.buf.push('}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, k: &'static str, v: &T) -> R {
        self.key(k);
        v.serialize(&mut *self.w)
    }
    fn end(self) -> R {
        ser::SerializeMap::end(self)
    }
}
