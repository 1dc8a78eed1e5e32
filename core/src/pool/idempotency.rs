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
    pub answer: Value,
    pub at_ms: Millis,
}

/// A transaction's answer, typed on the hot path: JSON is built only when the
/// command layer shows it or the durable store keeps it for retries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// A typed hold: `[booking_id, expires_ms]` in JSON.
    Hold(u64, Millis),
    /// A booking id: the number in JSON.
    Id(u64),
    Null,
    Json(Value),
}

impl Answer {
    pub fn to_value(&self) -> Value {
        match self {
            Answer::Hold(id, exp) => json!([id, exp]),
            Answer::Id(id) => json!(id),
            Answer::Null => Value::Null,
            Answer::Json(v) => v.clone(),
        }
    }
    pub fn into_value(self) -> Value {
        match self {
            Answer::Json(v) => v,
            a => a.to_value(),
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
