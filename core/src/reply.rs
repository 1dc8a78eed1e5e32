//! A command's answer on its way out of the registry: the `Value` most
//! handlers build, or JSON text a hot handler wrote straight from its view.
//!
//! Text skips what a `Value` costs on the booking path (a `BTreeMap` node
//! and a `String` per key, built inside the slot's lock, then walked for
//! patient ids, printed and freed): a [`View`] is serialised once, and
//! [`Data::write`] copies those bytes into the envelope.
//!
//! Invariants:
//! - A `Text` is the very text `serde_json` prints for the same answer as a
//!   `Value` (keys in the order of their names, no whitespace), so a caller
//!   cannot tell which way an answer came. A view written as text declares
//!   its fields in name order (`views::BookingView`); a test holds each
//!   such view to it.
//! - A `Text` needs no mask for the principal it was written for (S1): it is
//!   made only by `pool::Answer::view`, and only when
//!   that principal reads the view's patient ids in full
//!   ([`View::open_to`], by the one rule `Principal::sees_patient_id`);
//!   otherwise the view becomes a `Value` and the registry walks it
//!   (`views::mask_answer`), as every other answer. A request id's
//!   answer is replayed only to the same role and institution (ids are
//!   scoped per principal, `registry::scoped_request`), for which the
//!   check comes out the same.
//!
//! A `Value` is made from text only where one is needed: a caller of
//! `call_value`, an upstream hospital's answer to merge, the audit trail of
//! a personal read.

use crate::error::{Error, Result};
use crate::principal::Principal;
use serde::Serialize;
use serde_json::Value;

/// A view as the answer's value. Views are plain data: serialising cannot
/// fail (`Null` if it ever did, never a panic across the FFI).
pub(crate) fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub(crate) enum Data {
    Value(Value),
    /// One JSON value as text, printed as its `Value` prints (see the module).
    Text(String),
}

impl From<Value> for Data {
    fn from(v: Value) -> Data {
        Data::Value(v)
    }
}

/// A view a hot command answers with as text (see the module).
pub(crate) trait View: Serialize {
    /// Whether `who` reads this view's patient ids in full: the rule of
    /// `views::mask_patient_ids` over the parties its walk would find at the
    /// view's top level (a view with no patient id is open to everyone).
    fn open_to(&self, who: &Principal) -> bool;
}

impl Data {
    /// A view as text; its fields must be declared in the order of their
    /// names (see the module). Views are plain data: serialising cannot
    /// fail (`null` if it ever did, never a panic across the FFI).
    pub(crate) fn text(view: &impl Serialize) -> String {
        // Sized for a booking's view, so it is written without growing.
        let mut buf = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut buf, view) {
            // serde_json writes UTF-8 only.
            Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| "null".into()),
            Err(_) => "null".into(),
        }
    }

    /// The answer as a `Value` (parsed when it is text).
    pub fn into_value(self) -> Result<Value> {
        match self {
            Data::Value(v) => Ok(v),
            Data::Text(t) => serde_json::from_str(&t).map_err(|e| Error::internal(format!("an answer's own text did not parse: {e}"))),
        }
    }

    /// About how many bytes [`write`](Self::write) appends: exact for text.
    pub fn size_hint(&self) -> usize {
        match self {
            Data::Value(_) => 256,
            Data::Text(t) => t.len(),
        }
    }

    /// Appends the answer's JSON text to `buf`.
    pub fn write(&self, buf: &mut Vec<u8>) {
        match self {
            // Writing a `Value` into a `Vec` cannot fail (no I/O, string keys).
            Data::Value(v) => {
                let _ = serde_json::to_writer(&mut *buf, v);
            }
            Data::Text(t) => buf.extend_from_slice(t.as_bytes()),
        }
    }

    /// The answer's JSON text.
    pub fn into_text(self) -> String {
        match self {
            Data::Text(t) => t,
            v => {
                let mut buf = Vec::with_capacity(256);
                v.write(&mut buf);
                // serde_json writes UTF-8 only.
                String::from_utf8(buf).unwrap_or_default()
            }
        }
    }

    /// `f` on the answer as a `Value` (which it may change); text is parsed first.
    pub fn map_value(self, f: impl FnOnce(&mut Value)) -> Result<Data> {
        let mut v = self.into_value()?;
        f(&mut v);
        Ok(Data::Value(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_value_answers_print_the_same_bytes() {
        #[derive(Serialize)]
        struct View<'a> {
            a: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<u32>,
            c: Value,
        }
        let view = View { a: "王小明\"\\\u{1F600}", b: Some(7), c: json!({"z": 1, "y": [null, 2.5]}) };
        let text = Data::Text(Data::text(&view));
        let value = Data::Value(serde_json::to_value(&view).unwrap());
        let (mut t, mut v) = (Vec::new(), Vec::new());
        text.write(&mut t);
        value.write(&mut v);
        assert_eq!(t, v);
        assert_eq!(text.into_value().unwrap(), serde_json::to_value(&view).unwrap());
        assert_eq!(Data::Text(Data::text(&view)).into_text(), String::from_utf8(v).unwrap());
    }
}
