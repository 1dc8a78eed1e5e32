//! Retirement (#17 item 5): memory bounded by the live window, not by history.
//!
//! A durable engine keeps in memory what can still change or be replayed;
//! what is past the retention window (`retention_days`, default 7) leaves
//! memory and stays in the store, readable:
//! - **Bookings** of exam and registration slots whose day is more than the
//!   window in the past, whatever their status (a hold still unexpired on
//!   such a slot stays until it expires). Each moves, in one commit, from
//!   `bookings` to `bookings_retired`, which is read by key and never loaded
//!   on open: `booking-info` (and every read of one booking) finds it there,
//!   and a change to it is refused (`INVALID_STATE`, its day is over). A
//!   retired booking that still held its place stays counted in its slot
//!   (`Retained` in the slot's row), so availability and statistics of past
//!   days answer as before, and its patient's span and visit number are
//!   given back (no new booking can fall on a past day). Bed slots keep
//!   their bookings: a reservation or an occupied bed lasts beyond its day.
//! - **Request ids' answers** given more than the window ago: their rows
//!   move from `idempotency` to `idempotency_retired`. A retry inside the
//!   window still gets the first answer; one after it is a new request.
//!
//! Slots themselves (a few hundred a day), waitlists, patients, events not
//! yet acknowledged, the audit trail (never loaded) and the domains' cases
//! are not retired here.
//!
//! A pass runs when the engine opens and then on a timer (`Engine::open`);
//! [`Pool::retire`] runs one at once. Bookings are retired one slot at a
//! time, under that slot's lock then each booking's (the pool's lock order),
//! the slot's rows committed together; request ids one page of rows at a
//! time, each removed from memory under its shard's lock only when it holds
//! a finished answer. Passes do not overlap (`retiring`).

use super::*;
use crate::model::format_booking_id;
use crate::store::numbered_key;

/// What one retirement pass moved out of memory (`Engine::retire_history`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    /// Bookings moved to the store's `bookings_retired`.
    pub bookings: u64,
    /// Request ids' answers moved to `idempotency_retired`.
    pub answers: u64,
    /// Decided hand-offs to upstream hospitals whose booking was retired,
    /// moved to `handoffs_retired`.
    pub handoffs: u64,
}

impl Retired {
    /// Everything moved.
    pub fn total(&self) -> u64 {
        self.bookings + self.answers + self.handoffs
    }
}

/// Request-id rows moved per commit.
const ANSWER_PAGE: usize = 512;
/// Bookings retired before their commits are waited for.
const RETIRE_BATCH: usize = 4096;

impl Pool {
    /// The first day whose slots keep their bookings in memory.
    fn retire_before(&self) -> NaiveDate {
        self.today() - Duration::days(self.cfg.retention_days as i64)
    }

    /// Runs one retirement pass now (see the module doc). In-memory engines
    /// keep everything: they have nowhere to put it.
    pub fn retire(&self) -> Result<Retired> {
        let Some(store) = &self.store else { return Ok(Retired::default()) };
        self.check_open()?;
        let _one = self.retiring.lock();
        let bookings = self.retire_bookings(store)?;
        let answers = self.retire_answers(store)?;
        Ok(Retired { bookings, answers, handoffs: 0 })
    }

    fn retire_bookings(&self, store: &DurableStore) -> Result<u64> {
        let before = self.retire_before();
        let next = self.outbox.counters.next_booking.load(Ordering::Relaxed);
        let low = self.retire_low.load(Ordering::Relaxed);
        // Collected first, without a slot lock (a booking's lock alone is a leaf).
        let mut by_slot: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
        let mut keep_from = next;
        for id in low..next {
            let Some(idx) = self.bookings.with(id, |b| b.slot_idx) else { continue };
            match self.directory.get(idx) {
                Some(slot) if !slot.bed && slot.info.date < before => by_slot.entry(idx).or_default().push(id),
                _ => keep_from = keep_from.min(id),
            }
        }
        let mut tickets = Vec::new();
        let mut leaving = Vec::new();
        let mut count = 0;
        for (idx, ids) in by_slot {
            // Bounded in flight: a first pass over a long history (a store
            // written before retirement existed) does not queue it all at once.
            if leaving.len() >= RETIRE_BATCH {
                count += self.leave_memory(store, &mut tickets, &mut leaving)?;
            }
            let Some(slot) = self.directory.get(idx) else { continue };
            let mut txn = Txn::default();
            let mut st = slot.state.lock();
            let now = self.clock.now_ms();
            self.sweep(slot, &mut st, now, &mut txn);
            let mut counted = false;
            for id in ids {
                let Some(mut cell) = self.bookings.lock(id) else { continue };
                match cell.as_ref() {
                    // Moved to another slot meanwhile, or a hold not yet due:
                    // a later pass looks again.
                    Some(b) if b.slot_idx != idx || b.status == BookingStatus::PreBooked => {
                        keep_from = keep_from.min(id);
                        continue;
                    }
                    Some(_) => {}
                    None => continue,
                }
                let Some(b) = cell.as_mut() else { continue };
                b.retired = true;
                let b = b.clone();
                drop(cell);
                if b.status.is_active() {
                    st.active.remove(&id);
                    st.retired.booked += 1;
                    st.retired.quota_used += b.used_quota as u32;
                    if let (Some(q), Some(n)) = (&slot.visits, b.visit_no) {
                        q.give_back(n);
                    }
                    txn.ended.push((b.patient_id.clone(), id));
                    counted = true;
                }
                let key = numbered_key(id);
                txn.writes.push(Write::put(tables::BOOKINGS_RETIRED, key.clone(), &b));
                txn.writes.push(Write::delete(tables::BOOKINGS, key));
                leaving.push(id);
            }
            if counted {
                self.put_slot(&mut txn, slot, &st);
            }
            tickets.extend(self.enqueue(&mut txn));
            drop(st);
            self.forget_spans(&mut txn.ended);
        }
        count += self.leave_memory(store, &mut tickets, &mut leaving)?;
        self.retire_low.fetch_max(keep_from, Ordering::Relaxed);
        Ok(count)
    }

    /// Waits for the rows of `leaving` to be committed to `bookings_retired`;
    /// only then do they leave memory: a read in between found them here,
    /// flagged, and a change was refused.
    fn leave_memory(&self, store: &DurableStore, tickets: &mut Vec<Ticket>, leaving: &mut Vec<u64>) -> Result<u64> {
        for t in tickets.drain(..) {
            store.wait(t)?;
        }
        for &id in leaving.iter() {
            if let Some(mut cell) = self.bookings.lock(id) {
                if cell.as_ref().is_some_and(|b| b.retired) {
                    *cell = None;
                }
            }
        }
        let n = leaving.len() as u64;
        leaving.clear();
        Ok(n)
    }

    fn retire_answers(&self, store: &DurableStore) -> Result<u64> {
        let cutoff = self.clock.now_ms() - self.cfg.retention_days as Millis * 86_400_000;
        let mut count = 0;
        loop {
            // Rows are numbered in the order answers were given: the oldest first.
            let mut page = Vec::new();
            let mut young = false;
            store.scan_after(tables::IDEMPOTENCY, "", |row| {
                let rec: IdemRecord = crate::store::parse_row(tables::IDEMPOTENCY, &row.key, &row.body)?;
                if rec.at_ms >= cutoff {
                    young = true;
                    return Ok(false);
                }
                page.push((row.key, rec));
                Ok(page.len() < ANSWER_PAGE)
            })?;
            if page.is_empty() {
                return Ok(count);
            }
            let mut writes = Vec::with_capacity(page.len() * 2);
            for (key, rec) in &page {
                // Stores written before rows were numbered keyed them by the id.
                let rid = rec.request_id.as_deref().unwrap_or(key);
                let h = self.idem.hash(rid);
                let mut shard = self.idem.lock(h);
                // A claim in flight on the same id (a retry right now) keeps
                // its row, and this pass stops here: it finishes with the
                // answer it replays, and a later pass retires it.
                if matches!(shard.get(h, rid), Some(IdemState::Pending)) {
                    young = true;
                    break;
                }
                shard.remove(h, rid);
                drop(shard);
                writes.push(Write::put(tables::IDEMPOTENCY_RETIRED, key.clone(), rec));
                writes.push(Write::delete(tables::IDEMPOTENCY, key.clone()));
                count += 1;
            }
            let mut txn = Txn { writes, ..Txn::default() };
            if let Some(t) = self.enqueue(&mut txn) {
                store.wait(t)?;
            }
            if young {
                return Ok(count);
            }
        }
    }

    /// A booking that left memory, read back from the store (`None`: no
    /// such booking ever, or an in-memory engine).
    pub fn retired_booking(&self, id: u64) -> Result<Option<Booking>> {
        let Some(store) = &self.store else { return Ok(None) };
        // An id never handed out reads nothing (and costs no read).
        if id == 0 || id >= self.outbox.counters.next_booking.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let key = numbered_key(id);
        let Some(body) = store.get(tables::BOOKINGS_RETIRED, &key)? else { return Ok(None) };
        let mut b: Booking = crate::store::parse_row(tables::BOOKINGS_RETIRED, &key, &body)?;
        if let Some(idx) = b.slot_id.as_deref().and_then(|s| self.table.load().by_id.get(s).copied()) {
            b.slot_idx = idx;
        }
        Ok(Some(b))
    }

    /// `BOOKING_NOT_FOUND`, or for a retired booking the error of
    /// [`retired_error`].
    pub fn missing_booking(&self, id: u64) -> Error {
        match self.retired_booking(id) {
            Ok(Some(_)) => retired_error(id),
            Ok(None) => Error::new(ErrorCode::BookingNotFound),
            Err(e) => e,
        }
    }
}

/// `INVALID_STATE`: the booking exists, and its day is over: it can be read,
/// not changed.
pub(crate) fn retired_error(id: u64) -> Error {
    Error::with(
        ErrorCode::InvalidState,
        format!("booking {} is past the retention window (its day is over): it can be read, not changed", format_booking_id(id)),
        format!("预约 {} 已超过保留期（其日期已过）：只能查询，不能修改", format_booking_id(id)),
    )
}
