//! Replay protection that survives restarts (#16 item 2): the signed
//! requests' nonces, claimed once per (app id, nonce) pair and kept until
//! their window ends.
//!
//! A pair claimed at `signed_at` is remembered until `signed_at + window`
//! (its expiry) has passed — the span in which the signature check accepts
//! its timestamp (`client::sign::Verifier`: at most `window` from now,
//! inclusive); a second claim until then answers `false`. Time is the
//! engine's clock in unix seconds (the wall clock unless the config sets a
//! test clock). A durable engine
//! writes each claim to [`TABLE`] through the store's committer and answers
//! `true` only once the row is committed, like every acknowledged change, so
//! a request accepted before a crash or restart is refused when replayed
//! after it. Rows are loaded on open; expired ones are dropped on open and
//! then at most once a minute, on a later claim. A memory-only engine keeps
//! the pairs in memory only.
//!
//! Invariants: at most one claim of a pair answers `true` while the pair is
//! remembered (the check and the insert happen under one lock); a pair
//! whose window has already ended is never claimed (it could not be
//! remembered for its window, so it answers `false`); a pair is answered
//! `true` only after its row is durable.
//!
//! Lock order: the log's mutex is taken alone, and the rows are handed to
//! the committer while it is held (so a claim's row and a later prune's
//! delete of it reach disk in that order); the commit is awaited without it.
//!
//! App ids and nonces are not personal data; the rows hold nothing else
//! (their expiry), and a sealed store seals their bodies like every row.

use crate::error::{Error, ErrorCode, Result};
use crate::store::{DurableStore, Snapshot, Write};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

crate::store::table!(
    /// Claimed nonces, keyed by app id and nonce, until their window ends.
    pub(crate) TABLE = "nonces", Bookkeeping
);

/// The longest app id or nonce accepted, in bytes.
pub const MAX_LEN: usize = 256;
/// The longest window accepted, in seconds (a day).
pub const MAX_WINDOW_SECS: i64 = 86_400;
/// How often (engine seconds) a claim also drops expired pairs.
const PRUNE_EVERY_SECS: i64 = 60;

#[derive(Serialize, Deserialize)]
struct Row {
    expires_at: i64,
}

#[derive(Default)]
struct Inner {
    /// Row key → expiry (unix seconds).
    seen: HashMap<String, i64>,
    next_prune: i64,
}

/// The claimed pairs of one engine.
#[derive(Default)]
pub(crate) struct NonceLog {
    inner: Mutex<Inner>,
}

/// The row key of a pair: the app id's length first, so no two pairs share a key.
fn row_key(app_id: &str, nonce: &str) -> String {
    format!("{}:{app_id}:{nonce}", app_id.len())
}

fn invalid(field: &str, why: &str, why_zh: &str) -> Error {
    Error::with(ErrorCode::InvalidField, format!("field `{field}`: {why}"), format!("字段 `{field}` 无效：{why_zh}"))
}

fn check_text(field: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_LEN {
        return Err(invalid(field, &format!("expected 1 to {MAX_LEN} bytes"), &format!("长度应为 1 至 {MAX_LEN} 字节")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "contains a control character", "含有控制字符"));
    }
    Ok(())
}

impl NonceLog {
    /// Restores the claimed pairs from the store; the rows of expired ones
    /// are returned as deletes.
    pub(crate) fn recover(&self, snap: &Snapshot, now: i64) -> Result<Vec<Write>> {
        let mut inner = self.inner.lock();
        let mut deletes = Vec::new();
        for (key, body) in snap.of(TABLE) {
            let row: Row = crate::store::parse_row(TABLE, key, body)?;
            if row.expires_at < now {
                deletes.push(Write::delete(TABLE, key));
            } else {
                inner.seen.insert(key.to_string(), row.expires_at);
            }
        }
        inner.next_prune = now.saturating_add(PRUNE_EVERY_SECS);
        Ok(deletes)
    }

    /// See [`crate::Engine::claim_nonce`]. `now` is the engine's clock in unix seconds.
    pub(crate) fn claim(&self, store: Option<&DurableStore>, app_id: &str, nonce: &str, signed_at: i64, window_secs: i64, now: i64) -> Result<bool> {
        check_text("app_id", app_id)?;
        check_text("nonce", nonce)?;
        if !(1..=MAX_WINDOW_SECS).contains(&window_secs) {
            return Err(invalid("window_secs", &format!("expected 1 to {MAX_WINDOW_SECS} seconds"), &format!("应为 1 至 {MAX_WINDOW_SECS} 秒")));
        }
        let Some(expires_at) = signed_at.checked_add(window_secs) else {
            return Err(invalid("signed_at", "out of range", "超出范围"));
        };
        if expires_at < now {
            // Its window is over: it could not be remembered for it.
            return Ok(false);
        }
        let key = row_key(app_id, nonce);
        let mut inner = self.inner.lock();
        if inner.seen.get(&key).is_some_and(|&exp| exp >= now) {
            return Ok(false);
        }
        let mut writes = Vec::new();
        if now >= inner.next_prune {
            inner.seen.retain(|k, exp| {
                let keep = *exp >= now;
                if !keep {
                    writes.push(Write::delete(TABLE, k.clone()));
                }
                keep
            });
            inner.next_prune = now.saturating_add(PRUNE_EVERY_SECS);
        }
        inner.seen.insert(key.clone(), expires_at);
        let Some(store) = store else { return Ok(true) };
        writes.push(Write::put(TABLE, key, &Row { expires_at }));
        let ticket = store.enqueue(writes);
        drop(inner);
        store.wait(ticket)?;
        Ok(true)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_claimed_once_per_app_until_its_window_ends() {
        let log = NonceLog::default();
        assert!(log.claim(None, "APP1", "n-1", 1_000, 300, 1_000).unwrap());
        assert!(!log.claim(None, "APP1", "n-1", 1_000, 300, 1_200).unwrap(), "a replay within the window");
        assert!(log.claim(None, "APP2", "n-1", 1_000, 300, 1_200).unwrap(), "another app's nonce");
        // "1:A" + "B:x" and "3:A:B" + "x" must not collide.
        assert!(log.claim(None, "A", "B:x", 1_000, 300, 1_000).unwrap());
        assert!(log.claim(None, "A:B", "x", 1_000, 300, 1_000).unwrap());
        assert!(!log.claim(None, "APP1", "n-1", 1_000, 300, 1_300).unwrap(), "the last second of the window");
        assert!(log.claim(None, "APP1", "n-2", 1_000, 300, 1_300).unwrap(), "the signature check still accepts it at its last second");
        assert!(!log.claim(None, "APP1", "n-3", 1_000, 300, 1_301).unwrap(), "a request whose window is over is never claimed");
        assert!(log.claim(None, "APP1", "n-1", 1_301, 300, 1_301).unwrap(), "signed again after the window");
    }

    #[test]
    fn expired_pairs_are_dropped_by_a_later_claim() {
        let log = NonceLog::default();
        for i in 0..10 {
            assert!(log.claim(None, "APP1", &format!("n-{i}"), 0, 60, 0).unwrap());
        }
        assert_eq!(log.len(), 10);
        assert!(log.claim(None, "APP1", "late", 1_000, 60, 1_000).unwrap());
        assert_eq!(log.len(), 1, "the ten expired pairs are gone");
    }

    #[test]
    fn bad_input_is_refused_with_a_clear_error_and_claims_nothing() {
        let log = NonceLog::default();
        let cases =
            [("", "n", 300), ("APP", "", 300), ("APP", &"n".repeat(MAX_LEN + 1), 300), ("APP", "n\n", 300), ("APP", "n", 0), ("APP", "n", MAX_WINDOW_SECS + 1)];
        for (app, nonce, window) in cases {
            let e = log.claim(None, app, nonce, 1_000, window, 1_000).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidField, "{app:?} {nonce:?} {window}");
            assert!(!e.message_zh().is_empty());
        }
        assert_eq!(log.claim(None, "APP", "n", i64::MAX, 300, 1_000).unwrap_err().code(), ErrorCode::InvalidField);
        assert_eq!(log.len(), 0);
    }
}
