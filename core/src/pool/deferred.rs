//! Changes answered on an async runtime without a thread per waiting caller
//! (`Engine::call_deferred`, #21 target 3).
//!
//! A change normally ends in [`Pool::settle`](super::Pool::settle): its
//! thread sleeps until the group commit holding its rows is durable. An
//! HTTP server on an event loop would need a thread per request in flight
//! for that sleep, and the hand-offs to and from those threads cost more
//! than the change itself. Inside [`collect`], the current thread does the
//! change in memory as usual, but each `settle` *records* its ticket
//! instead of waiting, and each request id's answer that would become
//! replayable is held back (its claim stays `Pending`). The caller then
//! waits once for the latest ticket (batches commit in ticket order, so it
//! covers every earlier one) — on a thread or as a future — and only then
//! are the held answers made replayable ([`Pending::finish`]). So:
//! - no caller hears of a change before it is durable (the answer is handed
//!   out after the wait);
//! - a retry of the request id in the meantime gets `REQUEST_IN_PROGRESS`,
//!   as it does while a blocking caller waits, never an answer that a failed
//!   commit could still take back;
//! - what a change does after its `settle` (promoting waiters) runs before
//!   the wait instead of after it; its rows are queued after the change's,
//!   so they reach the disk in the same order, in the same batch or a later
//!   one.
//!
//! A direct `DurableStore::wait` inside the deferral (a change that must be
//! durable before it goes on, e.g. before a network call) still blocks, and
//! covers the tickets recorded before it. The deferral is per thread and
//! per call: `collect` runs synchronously, and nothing in a call awaits.

use super::idempotency::{Answer, IdemClaim};
use crate::store::Ticket;
use std::cell::RefCell;

thread_local! {
    static CURRENT: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// What a deferred call left to finish once its commit is durable.
#[derive(Default)]
pub(crate) struct Pending {
    /// The latest ticket any change of the call queued.
    pub ticket: Option<Ticket>,
    /// Request ids whose answers become replayable once `ticket` is durable.
    claims: Vec<HeldAnswer>,
}

/// An owned [`IdemClaim`] with the answer it will replay.
struct HeldAnswer {
    request_id: Box<str>,
    hash: u64,
    command: &'static str,
    fingerprint: u64,
    answer: Answer,
}

/// Runs `f` with this thread's commit waits deferred; returns what it left.
/// Not reentrant: a nested `collect` runs undeferred (its waits block).
pub(crate) fn collect<R>(f: impl FnOnce() -> R) -> (R, Pending) {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            if self.0 {
                // Also on a panic: the thread must not stay deferred.
                CURRENT.with(|c| c.borrow_mut().take());
            }
        }
    }
    let outer = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            return false;
        }
        *c = Some(Pending::default());
        true
    });
    let reset = Reset(outer);
    let r = f();
    let pending = if outer { CURRENT.with(|c| c.borrow_mut().take()).unwrap_or_default() } else { Pending::default() };
    drop(reset);
    (r, pending)
}

/// In a deferral: records `t` and answers `true` (the caller must not wait).
pub(super) fn defer_wait(t: Ticket) -> bool {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(p) => {
            p.ticket = Some(p.ticket.map_or(t, |old| old.later(t)));
            true
        }
        None => false,
    })
}

/// In a deferral with a commit still to wait for: holds the claim's answer
/// back until then and answers `true` (the claim stays `Pending`).
pub(super) fn defer_claim(c: &IdemClaim<'_>, answer: &Answer) -> bool {
    CURRENT.with(|cur| match cur.borrow_mut().as_mut() {
        Some(p) if p.ticket.is_some() => {
            p.claims.push(HeldAnswer { request_id: c.request_id.into(), hash: c.hash, command: c.command, fingerprint: c.fingerprint, answer: answer.clone() });
            true
        }
        _ => false,
    })
}

impl Pending {
    /// After the wait for `ticket`: the held answers become replayable if
    /// it succeeded; otherwise their request ids are free again (nothing of
    /// the change is durable, and the store now refuses every call).
    pub(crate) fn finish(self, pool: &super::Pool, durable: bool) {
        for h in self.claims {
            let c = IdemClaim { request_id: &h.request_id, hash: h.hash, command: h.command, fingerprint: h.fingerprint };
            pool.finish_claim_now(c, durable.then_some(&h.answer));
        }
    }

    /// `true` when nothing is left to wait for.
    pub(crate) fn is_empty(&self) -> bool {
        self.ticket.is_none() && self.claims.is_empty()
    }
}
