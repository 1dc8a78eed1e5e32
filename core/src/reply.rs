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
//!   scoped per principal, `registry::scoped_request_id`), for which the
//!   check comes out the same.
//!
//! Text is written by `writer` (the bytes `serde_json` writes, with every
//! string that needs no escape copied whole after a check of eight bytes at
//! a time; a shape it does not take is left to `serde_json`), or, for a view
//! declared with [`view_struct!`], by the view itself: one field list makes
//! both its `Serialize` and its text, keys written as literals.
//!
//! A `Value` is made from text only where one is needed: a caller of
//! `call_value`, an upstream hospital's answer to merge, the audit trail of
//! a personal read.

mod writer;

pub(crate) use writer::first_special;

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

    /// Appends the view's JSON text: through `Serialize` by default; a view
    /// declared with [`view_struct!`] writes its keys as literals.
    fn write_text(&self, out: &mut String) {
        write_value(out, self);
    }
}

/// Appends `v` as JSON text, the bytes `serde_json` prints for it.
pub(crate) fn write_value(out: &mut String, v: &(impl Serialize + ?Sized)) {
    let start = out.len();
    if v.serialize(&mut writer::Writer { buf: out }).is_err() {
        // A shape the writer leaves to serde_json; printing plain data does not fail.
        out.truncate(start);
        out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into()));
    }
}

/// One field of a [`view_struct!`] view: whether the view leaves it out
/// (`None`, an empty list: what `skip_serializing_if` would skip), and its
/// JSON text, the bytes `serde_json` prints for its value.
pub(crate) trait Field {
    fn absent(&self) -> bool {
        false
    }
    fn write(&self, out: &mut String);
}

impl Field for &str {
    fn write(&self, out: &mut String) {
        writer::write_str(out, self);
    }
}

impl Field for String {
    fn write(&self, out: &mut String) {
        writer::write_str(out, self);
    }
}

impl Field for crate::short::Short {
    fn write(&self, out: &mut String) {
        writer::write_str(out, self);
    }
}

impl Field for u32 {
    fn write(&self, out: &mut String) {
        out.push_str(itoa::Buffer::new().format(*self));
    }
}

impl Field for Value {
    fn write(&self, out: &mut String) {
        write_value(out, self);
    }
}

impl<T: Serialize> Field for Vec<T> {
    fn absent(&self) -> bool {
        self.is_empty()
    }
    fn write(&self, out: &mut String) {
        write_value(out, self);
    }
}

impl<T: Field> Field for Option<T> {
    fn absent(&self) -> bool {
        self.is_none()
    }
    fn write(&self, out: &mut String) {
        match self {
            Some(v) => v.write(out),
            None => out.push_str("null"),
        }
    }
}

/// Declares a view once: the struct, its `Serialize` (the `Value` every
/// other path walks) and `write_json` (its text with the keys as literals),
/// both from the same field list, so they cannot disagree. Fields must be
/// listed in the order of their names (the order a `Value` prints them);
/// a field that is [`Field::absent`] is left out of both.
macro_rules! view_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lt:lifetime>)? {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name $(<$lt>)? { $( $(#[$fmeta])* pub $field: $ty, )* }

        impl $(<$lt>)? serde::Serialize for $name $(<$lt>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let len = 0 $( + usize::from(!$crate::reply::Field::absent(&self.$field)) )*;
                let mut st = s.serialize_struct(stringify!($name), len)?;
                $(
                    if $crate::reply::Field::absent(&self.$field) {
                        st.skip_field(stringify!($field))?;
                    } else {
                        st.serialize_field(stringify!($field), &self.$field)?;
                    }
                )*
                st.end()
            }
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// Appends this view's JSON text (see `reply::view_struct!`).
            pub(crate) fn write_json(&self, out: &mut String) {
                out.push('{');
                let mut first = true;
                $(
                    if !$crate::reply::Field::absent(&self.$field) {
                        if !std::mem::take(&mut first) {
                            out.push(',');
                        }
                        out.push_str(concat!("\"", stringify!($field), "\":"));
                        $crate::reply::Field::write(&self.$field, out);
                    }
                )*
                out.push('}');
            }
        }
    };
}
pub(crate) use view_struct;

impl Data {
    /// A view as text; its fields must be declared in the order of their
    /// names (see the module). Views are plain data: serialising cannot
    /// fail (`null` if it ever did, never a panic across the FFI).
    #[cfg(test)]
    pub(crate) fn text(view: &(impl Serialize + ?Sized)) -> String {
        // Sized for a booking's view, so it is written without growing.
        let mut buf = String::with_capacity(1024);
        write_value(&mut buf, view);
        buf
    }

    /// A view as text, written as the view writes itself ([`View::write_text`]).
    pub(crate) fn view_text(view: &impl View) -> String {
        let mut buf = String::with_capacity(1024);
        view.write_text(&mut buf);
        buf
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
    pub fn write(&self, buf: &mut String) {
        match self {
            // serde_json's `to_string` makes its `String` without checking
            // it again; printing a `Value` cannot fail (string keys).
            Data::Value(v) => buf.push_str(&serde_json::to_string(v).unwrap_or_default()),
            Data::Text(t) => buf.push_str(t),
        }
    }

    /// The answer's JSON text.
    pub fn into_text(self) -> String {
        match self {
            Data::Text(t) => t,
            Data::Value(v) => serde_json::to_string(&v).unwrap_or_default(),
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
        let (mut t, mut v) = (String::new(), String::new());
        text.write(&mut t);
        value.write(&mut v);
        assert_eq!(t, v);
        assert_eq!(text.into_value().unwrap(), serde_json::to_value(&view).unwrap());
        assert_eq!(Data::Text(Data::text(&view)).into_text(), v);
    }

    #[test]
    fn the_writer_prints_what_serde_json_prints_for_every_shape_it_meets() {
        #[derive(Serialize)]
        struct Inner<'a>(&'a str);
        #[derive(Serialize)]
        enum Kind {
            Exam,
            Other(u8),
        }
        #[derive(Serialize)]
        struct View<'a> {
            a: &'a str,
            c: char,
            i: i64,
            u: u64,
            f: f64,
            nan: f64,
            none: Option<u8>,
            inner: Inner<'a>,
            list: Vec<(u8, &'a str)>,
            kind: Kind,
            map: std::collections::BTreeMap<&'a str, Value>,
        }
        let odd = "a\"b\\c\u{1}\n\u{7f}号源😀";
        let view = View {
            a: odd,
            c: '"',
            i: i64::MIN,
            u: u64::MAX,
            f: 2.5e-300,
            nan: f64::NAN,
            none: None,
            inner: Inner("x"),
            list: vec![(1, "one"), (2, odd)],
            kind: Kind::Exam,
            map: [("k\"ey", json!({"z": [1, -2, 3.25, null, true, odd]})), ("plain", json!("v"))].into_iter().collect(),
        };
        assert_eq!(Data::text(&view), serde_json::to_string(&view).unwrap());
        // Shapes it leaves to serde_json come out the same too.
        let others = (Kind::Other(3), std::collections::BTreeMap::from([(7u8, "seven")]), serde_bytes_like(b"ab"));
        assert_eq!(Data::text(&others), serde_json::to_string(&others).unwrap());
    }

    /// Bytes through `serialize_bytes`, which the writer leaves to serde_json.
    fn serde_bytes_like(b: &'static [u8]) -> impl Serialize {
        struct B(&'static [u8]);
        impl Serialize for B {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(b)
    }

    proptest::proptest! {
        #[test]
        fn the_word_at_a_time_scans_find_what_a_byte_at_a_time_scan_finds(b in proptest::collection::vec(proptest::prop_oneof![0u8..=0xff, proptest::strategy::Just(b'"'), proptest::strategy::Just(b'\\'), 0u8..0x20], 0..40)) {
            let naive = b.iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\');
            proptest::prop_assert_eq!(writer::first_special(&b), naive);
            proptest::prop_assert_eq!(writer::needs_escape(&b), naive.is_some());
        }

        #[test]
        fn any_string_is_written_as_serde_json_writes_it(s in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            proptest::prop_assert_eq!(Data::text(&s), serde_json::to_string(&s).unwrap());
            proptest::prop_assert_eq!(Data::text(&json!({ s.clone(): [s.clone()] })), serde_json::to_string(&json!({ s.clone(): [s] })).unwrap());
        }
    }
}
