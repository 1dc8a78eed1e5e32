//! Request ids (P5): the answer stored for each, and the claim a call holds
//! while it runs.

use super::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct IdemRecord {
    /// The request id. Rows are keyed by a rising number, not by the id: ids
    /// are random, and random keys would make every commit rewrite one B-tree
    /// page per request. Stores written before this field keyed rows by the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub command: std::borrow::Cow<'static, str>,
    pub fingerprint: u64,
    /// The answer's JSON text, kept as written: read back on open as text,
    /// never built into a `Value` unless a caller of `call_value` replays it.
    pub answer: Box<serde_json::value::RawValue>,
    pub at_ms: Millis,
}

/// A transaction's answer, typed on the hot path: JSON is built only when the
/// command layer shows it or the durable store keeps it for retries.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// A typed hold: `[booking_id, expires_ms]` in JSON.
    Hold(u64, Millis),
    /// A booking id: the number in JSON.
    Id(u64),
    Null,
    Json(Value),
    /// A view written straight to text for the principal it answers, which
    /// needs no mask (`reply.rs`, [`Answer::view`]).
    Text(String),
    /// An answer read back from the store, as its text: smaller than its
    /// `Value`, which is built only if a retry replays it (and then masked
    /// like any `Value`).
    Stored(Box<serde_json::value::RawValue>),
}

impl Answer {
    /// A view's answer for `who`: its text when `who` reads its patient ids
    /// in full, else its `Value`, which the registry masks (see `reply.rs`).
    pub fn view(view: &impl crate::reply::View, who: &crate::principal::Principal) -> Answer {
        if view.open_to(who) {
            Answer::Text(crate::reply::Data::view_text(view))
        } else {
            Answer::Json(crate::reply::to_value(view))
        }
    }
    pub fn to_value(&self) -> Value {
        match self {
            Answer::Hold(id, exp) => json!([id, exp]),
            Answer::Id(id) => json!(id),
            Answer::Null => Value::Null,
            Answer::Json(v) => v.clone(),
            // Text this engine wrote or stored: it parses (`Null` if it ever did not).
            Answer::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
            Answer::Stored(t) => serde_json::from_str(t.get()).unwrap_or(Value::Null),
        }
    }
    pub fn into_value(self) -> Value {
        match self {
            Answer::Json(v) => v,
            a => a.to_value(),
        }
    }
    /// The answer as a command's answer (text stays text).
    pub fn into_data(self) -> crate::reply::Data {
        match self {
            Answer::Text(t) => crate::reply::Data::Text(t),
            a => crate::reply::Data::Value(a.into_value()),
        }
    }
    /// The answer's JSON text, for the store.
    pub fn to_raw(&self) -> Box<serde_json::value::RawValue> {
        let text = match self {
            Answer::Stored(t) => return t.clone(),
            Answer::Text(t) => Ok(t.clone()),
            Answer::Json(v) => serde_json::to_string(v),
            a => serde_json::to_string(&a.to_value()),
        };
        // A `Value` always prints, and printed JSON is always a raw value.
        text.ok().and_then(|t| serde_json::value::RawValue::from_string(t).ok()).unwrap_or_else(|| serde_json::value::RawValue::NULL.to_owned())
    }
}

impl PartialEq for Answer {
    fn eq(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Hold(a, x), Answer::Hold(b, y)) => a == b && x == y,
            (Answer::Id(a), Answer::Id(b)) => a == b,
            (Answer::Null, Answer::Null) => true,
            (Answer::Text(a), Answer::Text(b)) => a == b,
            (Answer::Stored(a), Answer::Stored(b)) => a.get() == b.get(),
            (a, b) => a.to_value() == b.to_value(),
        }
    }
}

pub(super) enum IdemState {
    Pending,
    Done { command: std::borrow::Cow<'static, str>, fingerprint: u64, answer: Answer },
}

/// A claim on a request id, held while its transaction runs.
pub(crate) struct IdemClaim<'a> {
    pub request_id: &'a str,
    /// The request id's hash in the idempotency map.
    pub(super) hash: u64,
    pub command: &'static str,
    pub fingerprint: u64,
}

pub(crate) enum Claimed<'a> {
    /// Go ahead; finish with the claim.
    Fresh(Option<IdemClaim<'a>>),
    /// The request ran before: here is its first answer.
    Replay(Answer),
}
