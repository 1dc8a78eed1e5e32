//! The slot pool (号源池): slots, holds, bookings, waitlists and the outbox,
//! with the transactions of P5–P8.
//!
//! Concurrency: every slot has its own mutex, every booking its own cell
//! lock; the pool-wide maps are sharded and the outbox is striped by thread.
//! Locks are always taken in this order, never the reverse:
//! idempotency shard → patient shard → slot(s) by index → booking → outbox stripe.
//! (Idempotency shards and booking cells are also taken alone, as leaves; so
//! is a doctor's day of visit numbers (`visits`), taken under a slot's lock
//! and released before any other lock is taken.)
//! A packed hint word per slot, in a compact table apart from the slots, lets
//! the common case of a busy release day — a caller meeting a full or closed
//! slot — answer without taking any lock, allocating or hashing a map.
//!
//! The typed hot path builds no JSON: answers are typed (`Answer`) and turned
//! into JSON only for the command layer or a durable idempotency row; event
//! data and slot names are filled in when an event is stored or read.

use crate::clock::{Clock, Millis};
use crate::config::{Config, Role};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use crate::model::*;
use crate::store::{DurableStore, Ticket, Write};
use arc_swap::ArcSwap;
use chrono::{Duration, NaiveDate, TimeZone};
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// 2^21 bits (256 KiB).
const IDEM_FILTER_WORDS: usize = 1 << 15;

mod bookings;
pub(crate) mod deferred;
mod due;
mod resolve;
pub(crate) use resolve::resolve_slot;
mod idempotency;
mod outbox;
mod patients;
mod retire;
pub(crate) use retire::retired_error;
pub use retire::Retired;
mod shards;
mod slot;
mod visits;

pub(crate) use bookings::*;
pub(crate) use idempotency::*;
pub(crate) use outbox::*;
pub(crate) use patients::*;
pub(crate) use shards::*;
pub use slot::*;
pub(crate) use visits::VisitQueue;

/// The slot pool's tables in the durable store (see `store::table!`).
pub(crate) mod tables {
    crate::store::table!(pub(crate) SLOTS = "slots");
    crate::store::table!(pub(crate) BOOKINGS = "bookings", Numbered);
    crate::store::table!(pub(crate) WAITLIST = "waitlist");
    crate::store::table!(
        /// Request ids' answers, numbered by `next_idem_row` (past the retired ones too).
        pub(crate) IDEMPOTENCY = "idempotency", WriteOnce, Numbered
    );
    crate::store::table!(
        /// The outbox, numbered by sequence (`events_acked_through` keeps it rising).
        pub(crate) EVENTS = "events", WriteOnce, Numbered
    );
    crate::store::table!(
        /// Patient details, keyed by the patient's id.
        pub(crate) PATIENTS = "patients", PersonalKeys
    );
    crate::store::table!(
        /// Hospitals, devices and projects the schedules name.
        pub(crate) CATALOG = "catalog"
    );
    crate::store::table!(
        /// Counters and the outbox's acknowledgement cursor.
        pub(crate) META = "meta", Bookkeeping
    );
    crate::store::table!(
        /// Bookings past the retention window: read by key, never loaded (`retire.rs`).
        pub(crate) BOOKINGS_RETIRED = "bookings_retired", Lazy
    );
    crate::store::table!(
        /// Request ids' answers past the retention window (`retire.rs`).
        pub(crate) IDEMPOTENCY_RETIRED = "idempotency_retired", Lazy
    );
    pub(crate) const ALL: &[crate::store::Table] =
        &[SLOTS, BOOKINGS, WAITLIST, IDEMPOTENCY, EVENTS, PATIENTS, CATALOG, META, BOOKINGS_RETIRED, IDEMPOTENCY_RETIRED];
}

// ---------------------------------------------------------------- the pool

/// The changes of one transaction on their way to disk.
#[derive(Default)]
pub(crate) struct Txn {
    pub writes: Vec<Write>,
    pub promote: Vec<u32>,
    /// Bookings that stopped holding a place: their patient spans are dropped
    /// once the slot locks are released (lock order: patient before slot).
    pub ended: Ended,
    /// `Some`: events wait here until the change is known to stand (steps on
    /// several bookings, which roll back on error); `None`: published at once.
    pub deferred: Option<Vec<Event>>,
}

/// Bookings that ended in one transaction: almost always one, kept without a
/// heap allocation.
#[derive(Default)]
pub(crate) struct Ended {
    first: Option<(Id, u64)>,
    more: Vec<(Id, u64)>,
}

impl Ended {
    #[inline]
    pub fn push(&mut self, e: (Id, u64)) {
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.more.push(e);
        }
    }
    pub fn append(&mut self, other: &mut Ended) {
        if let Some(e) = other.first.take() {
            self.push(e);
        }
        self.more.append(&mut other.more);
    }
    fn drain(&mut self) -> impl Iterator<Item = (Id, u64)> + '_ {
        self.first.take().into_iter().chain(self.more.drain(..))
    }
}

pub(crate) struct Pool {
    pub cfg: Config,
    pub clock: Clock,
    pub table: ArcSwap<SlotTable>,
    /// Serialises changes to the slot table (sync), not bookings.
    pub table_write: Mutex<()>,
    pub bookings: BookingTable,
    /// Each patient's booked time spans (P6: no overlapping bookings).
    patients: HashedShards<Id, Spans>,
    pub patient_info: Sharded<String, PatientInfo>,
    idem: HashedShards<Id, IdemState>,
    /// A blocked Bloom filter (two bits in one word) over every request id ever claimed: a clear bit
    /// proves the id has no answer, so a refusal needs no idempotency lookup.
    idem_filter: Box<[AtomicU64]>,
    pub waitlist_slot: Sharded<u64, u32>,
    pub outbox: Outbox,
    hints: HintTable,
    directory: SlotDirectory,
    /// Slots visible in `table` (a hint beyond this is not trusted).
    visible_slots: AtomicU32,
    pub next_wait: AtomicU64,
    /// The key of the next idempotency row (rows are appended in this order).
    pub next_idem_row: AtomicU64,
    pub store: Option<DurableStore>,
    pub metrics: Metrics,
    pub catalog: crate::catalog::Catalog,
    /// Durable transactions so far (paces the writes of the counters).
    durable_txns: AtomicU64,
    pub closed: AtomicBool,
    /// Slots whose expired holds freed places for waiters (see `sweep`).
    pending_promotions: Mutex<Vec<u32>>,
    /// `true` while `pending_promotions` may be non-empty: lets every call skip
    /// the pool-wide lock (whose line would bounce between cores) when none are owed.
    has_pending_promotions: CachePadded<AtomicBool>,
    /// The visit-number sequence of each doctor's (or department's) day, by
    /// hospital, doctor and date; each registration slot holds its own.
    visit_queues: Mutex<HashMap<String, Arc<VisitQueue>>>,
    /// Every booking id below this has left memory (`retire.rs`).
    pub retire_low: AtomicU64,
    /// One retirement pass at a time.
    retiring: Mutex<()>,
    /// The timer thread (`engine.rs`, config `timer`): a message on the
    /// sender runs a pass at once (a manual clock moved), dropping it wakes
    /// the thread to end, and the pool joins it when it goes, so no thread
    /// outlives it.
    pub timer: Mutex<Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    /// One due-work pass at a time (`due.rs`); taken before any slot,
    /// booking or domain lock, never while one is held.
    pub due: Mutex<()>,
    /// What the due work has done so far (`due.rs` here).
    pub(crate) due_marks: Mutex<due::Marks>,
}

thread_local! {
    /// Set on the timer's thread (no allocation, unlike
    /// `thread::current()`, which valgrind reports on the host's thread).
    pub(crate) static ON_TIMER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.timer.get_mut().take() {
            drop(stop);
            // The timer itself may hold the last reference during a pass.
            if !ON_TIMER.with(std::cell::Cell::get) {
                let _ = handle.join();
            }
        }
    }
}

/// Who is asking, as the pool checks it: made from the call's principal
/// (`principal.rs`), never from a body field.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub institution: Option<String>,
    pub role: crate::principal::Role,
}

impl crate::request::Req<'_> {
    /// The pool's view of the call's principal.
    pub fn actor(&self) -> Actor {
        Actor::of(self.who)
    }
}

impl Actor {
    pub fn of(p: &crate::principal::Principal) -> Actor {
        Actor { institution: p.institution_id.clone(), role: p.role }
    }
    /// The platform itself: touches every booking.
    pub fn platform() -> Actor {
        Actor { institution: None, role: Role::Platform }
    }
    /// A community institution acts only on its own bookings; a hospital on
    /// its own and on those on its slots; a lab or a regulator on none (S1).
    pub fn may_touch(&self, b: &Booking, slot: &Slot) -> bool {
        let own = self.institution.is_some() && self.institution.as_deref() == b.clinic_id.as_deref();
        match self.role {
            Role::Platform => self.institution.is_none() || own || self.institution.as_deref() == Some(slot.info.hospital_id.as_str()),
            Role::Community => own,
            Role::Hospital => own || self.institution.as_deref() == Some(slot.info.hospital_id.as_str()),
            Role::Lab | Role::Regulator => false,
        }
    }
}

/// A change to one booking, run with its slot locked (see `Pool::with_booking`).
pub(crate) type BookingStep<'a> = dyn FnMut(&Pool, &Slot, &mut SlotState, &mut Booking, &mut Txn, Millis) -> Result<Answer> + 'a;

/// What a reservation asks for.
#[derive(Debug, Clone)]
pub(crate) struct Reserve {
    pub slot: u32,
    pub patient_id: Id,
    pub clinic_id: Option<Id>,
    pub priority: Priority,
    /// `true`: a hold (pre-booked) with a time-to-live; `false`: booked at once.
    pub hold: bool,
    pub patient: Option<PatientInfo>,
    pub expected_date: Option<NaiveDate>,
    pub reason: Option<String>,
    pub project_id: Option<String>,
    /// A row committed with the reservation, or not at all (a referral's
    /// intent: a refused reservation leaves nothing in the store).
    pub also: Option<Write>,
}

impl Pool {
    pub fn new(cfg: Config, store: Option<DurableStore>) -> Pool {
        let clock = Clock::starting_at(cfg.clock_start_ms, cfg.manual_clock);
        Pool {
            cfg,
            clock,
            table: ArcSwap::from_pointee(SlotTable::default()),
            table_write: Mutex::new(()),
            bookings: BookingTable::new(),
            patients: HashedShards::new(),
            patient_info: Sharded::new(),
            idem: HashedShards::new(),
            idem_filter: (0..IDEM_FILTER_WORDS).map(|_| AtomicU64::new(0)).collect(),
            waitlist_slot: Sharded::new(),
            outbox: Outbox::new(1, VecDeque::new()),
            hints: HintTable::new(),
            directory: SlotDirectory::new(),
            visible_slots: AtomicU32::new(0),
            next_wait: AtomicU64::new(1),
            next_idem_row: AtomicU64::new(1),
            store,
            metrics: Metrics { attempts: Striped::new(), successes: Striped::new(), refused_full: Striped::new(), attempts_refused_full: Striped::new() },
            catalog: crate::catalog::Catalog::default(),
            durable_txns: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            pending_promotions: Mutex::new(Vec::new()),
            has_pending_promotions: CachePadded::new(AtomicBool::new(false)),
            visit_queues: Mutex::new(HashMap::new()),
            retire_low: AtomicU64::new(1),
            retiring: Mutex::new(()),
            timer: Mutex::new(None),
            due: Mutex::new(()),
            due_marks: Mutex::new(due::Marks::default()),
        }
    }

    /// The visit-number sequence a registration slot draws from: one per
    /// hospital, doctor (else department) and day.
    fn visit_queue(&self, info: &SlotInfo) -> Option<Arc<VisitQueue>> {
        if info.kind != SlotKind::Registration {
            return None;
        }
        let who = info.doctor_id.as_deref().or(info.department_id.as_deref()).unwrap_or_default();
        let key = format!("{}\u{1f}{}\u{1f}{}", info.hospital_id, who, info.date);
        Some(self.visit_queues.lock().entry(key).or_default().clone())
    }

    /// Publishes a new slot table.
    pub fn store_table(&self, table: SlotTable) {
        let n = table.slots.len() as u32;
        for slot in &table.slots[self.visible_slots.load(Ordering::Acquire) as usize..] {
            self.directory.publish(slot);
        }
        self.table.store(Arc::new(table));
        self.visible_slots.store(n, Ordering::Release);
    }

    /// Today in the engine's zone.
    pub fn today(&self) -> NaiveDate {
        chrono::DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_default().with_timezone(&self.cfg.tz).date_naive()
    }

    pub fn slot(&self, idx: u32) -> Result<Arc<Slot>> {
        self.table.load().slots.get(idx as usize).cloned().ok_or_else(|| Error::new(ErrorCode::SlotNotFound))
    }

    pub fn slot_by_id(&self, id: &str) -> Result<Arc<Slot>> {
        let t = self.table.load();
        t.by_id.get(id).map(|i| t.slots[*i as usize].clone()).ok_or_else(|| Error::new(ErrorCode::SlotNotFound))
    }

    /// When a slot on `date` opens to booking under the release policy.
    pub fn opens_ms(&self, date: NaiveDate) -> Millis {
        if !self.cfg.release_enabled {
            return i64::MIN;
        }
        // Request dates have four-digit years (`request::YEARS`); a date at
        // chrono's edge (a store written otherwise) opens at once, not a panic.
        match date.checked_sub_signed(Duration::days(self.cfg.release_days as i64)) {
            Some(day) => local_ms(&self.cfg.tz, day, self.cfg.release_time),
            None => i64::MIN,
        }
    }

    pub fn new_slot(&self, idx: u32, rec: SlotRecord) -> Slot {
        let info = rec.info;
        let (start_ms, end_ms, opens_ms) = if info.kind == SlotKind::Bed {
            (local_ms(&self.cfg.tz, info.date, chrono::NaiveTime::MIN), i64::MAX, i64::MIN)
        } else {
            let s = local_ms(&self.cfg.tz, info.date, info.start_time);
            let mut e = local_ms(&self.cfg.tz, info.date, info.end_time);
            if e <= s {
                e = s + 1; // zero-length windows still occupy an instant
            }
            (s, e, self.opens_ms(info.date))
        };
        let st = SlotState {
            capacity: rec.capacity,
            reserved_quota: rec.reserved_quota,
            closed: rec.closed,
            closed_reason: rec.closed_reason,
            closing: rec.closing,
            booked: rec.retired.booked,
            held: 0,
            quota_used: rec.retired.quota_used,
            retired: rec.retired,
            set_aside: 0,
            holds: SmallSet::new(),
            active: SmallSet::new(),
            waitlist: Vec::new(),
        };
        let (hint_seg, hint_pos) = self.hints.seg_for(idx);
        let visits = self.visit_queue(&info);
        let slot = Slot {
            idx,
            id: Arc::from(info.slot_id.as_str()),
            date_str: info.date.to_string().into(),
            time_slot: info.time_slot().into(),
            bed: info.kind == SlotKind::Bed,
            info,
            start_ms,
            end_ms,
            opens_ms,
            hint_seg,
            hint_pos,
            state: Mutex::new(st),
            visits,
        };
        slot.publish(&slot.state.lock());
        slot
    }

    // ------------------------------------------------------------ plumbing

    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::EngineClosed));
        }
        match &self.store {
            Some(s) => s.health(),
            None => Ok(()),
        }
    }

    /// Claims a request id for the duration of one transaction.
    pub fn claim<'a>(&self, request_id: Option<&'a str>, command: &'static str, fingerprint: u64) -> Result<Claimed<'a>> {
        let Some(rid) = request_id else {
            return Ok(Claimed::Fresh(None));
        };
        // A caller's id is at most REQUEST_ID_MAX bytes; one in another
        // principal's id space carries that space's prefix (see `registry`).
        if rid.is_empty() || rid.len() > REQUEST_ID_MAX + SCOPE_MAX {
            return Err(Error::invalid("request_id", "must be 1 to 128 characters"));
        }
        let h = self.idem.hash(rid);
        let mut shard = self.idem.lock(h);
        // One probe: a fresh id (the common case) is inserted where the probe ended.
        match shard.entry(h, rid) {
            hashbrown::hash_table::Entry::Occupied(o) => match &o.get().1 {
                IdemState::Done { command: c, fingerprint: f, answer } if c == command && *f == fingerprint => Ok(Claimed::Replay(answer.clone())),
                IdemState::Done { .. } => {
                    Err(Error::with(ErrorCode::IdempotencyConflict, "`request_id` was already used for a different request", "`request_id` 已用于其他请求"))
                }
                IdemState::Pending => Err(Error::new(ErrorCode::RequestInProgress)),
            },
            hashbrown::hash_table::Entry::Vacant(v) => {
                self.mark_request(h);
                v.insert((rid.into(), IdemState::Pending));
                Ok(Claimed::Fresh(Some(IdemClaim { request_id: rid, hash: h, command, fingerprint })))
            }
        }
    }

    /// The request id's two bits in the filter, from its hash in the idempotency map.
    #[inline]
    fn filter_bit(h: u64) -> (usize, u64) {
        // Two bits in one word: half the false positives of one bit, still one read.
        ((h >> 12) as usize & (IDEM_FILTER_WORDS - 1), (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63)))
    }

    fn mark_request(&self, h: u64) {
        let (w, bit) = Self::filter_bit(h);
        if self.idem_filter[w].load(Ordering::Relaxed) & bit != bit {
            self.idem_filter[w].fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// `true` if a request id has a recorded answer (lets the fast path refuse safely).
    /// The filter answers most ids without touching the idempotency map.
    #[inline]
    fn has_answer(&self, request_id: Option<&str>) -> bool {
        match request_id {
            Some(rid) => {
                let h = self.idem.hash(rid);
                let (w, bit) = Self::filter_bit(h);
                self.idem_filter[w].load(Ordering::Acquire) & bit == bit && self.idem.lock(h).get(h, rid).is_some()
            }
            None => false,
        }
    }

    /// The lock-free refusal of the typed API, before any allocation or
    /// fingerprint: `Some` when the slot is closed or full for this class and
    /// the request id has no answer to replay.
    #[inline]
    pub fn refuse_fast(&self, slot: u32, p: Priority, request_id: Option<&str>) -> Option<Error> {
        // The hint table only: no slot, no table snapshot, no clock unless full.
        if slot >= self.visible_slots.load(Ordering::Acquire) {
            return None;
        }
        let code = refusal_of(self.hints.word(slot), p, || self.clock.coarse_now_ms())?;
        if self.has_answer(request_id) {
            return None;
        }
        // One counter for an attempt refused as full (it counts as both).
        if code == ErrorCode::SlotFull {
            self.metrics.attempts_refused_full.add(1);
        } else {
            self.metrics.attempts.add(1);
        }
        Some(Error::new(code))
    }

    /// Adds the idempotency row to the transaction, inside its locks.
    pub fn record_answer(&self, claim: &Option<IdemClaim<'_>>, answer: &Answer, txn: &mut Txn) {
        if let Some(c) = claim {
            if self.store.is_some() {
                let rec = IdemRecord {
                    request_id: Some(c.request_id.to_string()),
                    command: std::borrow::Cow::Borrowed(c.command),
                    fingerprint: c.fingerprint,
                    answer: answer.to_raw(),
                    at_ms: self.clock.now_ms(),
                };
                let row = self.next_idem_row.fetch_add(1, Ordering::Relaxed);
                txn.writes.push(Write::put(crate::pool::tables::IDEMPOTENCY, crate::store::numbered_key(row), &rec));
            }
        }
    }

    /// Ends a claim: success keeps the answer for retries; failure forgets the id.
    /// Inside a deferred call (`deferred.rs`) an answer whose commit is still
    /// to be waited for is held back until then.
    pub fn finish_claim(&self, claim: Option<IdemClaim<'_>>, answer: Option<&Answer>) {
        if let Some(c) = claim {
            if answer.is_some_and(|a| deferred::defer_claim(&c, a)) {
                return;
            }
            self.finish_claim_now(c, answer);
        }
    }

    fn finish_claim_now(&self, c: IdemClaim<'_>, answer: Option<&Answer>) {
        let mut shard = self.idem.lock(c.hash);
        match answer {
            Some(a) => {
                if let Some(slot) = shard.get_mut(c.hash, c.request_id) {
                    *slot = IdemState::Done { command: std::borrow::Cow::Borrowed(c.command), fingerprint: c.fingerprint, answer: a.clone() };
                }
            }
            None => {
                shard.remove(c.hash, c.request_id);
            }
        }
    }

    /// Re-registers an active booking with its patient (recovery).
    pub fn restore_span(&self, b: &Booking, slot: &Slot) {
        let span = Span { booking: b.id, slot: slot.idx, start_ms: slot.start_ms, end_ms: slot.end_ms, bed: slot.bed };
        let h = self.patients.hash(&b.patient_id);
        self.patients.lock(h).get_or_default(h, &b.patient_id, || b.patient_id.clone()).push(span);
    }

    /// Drops the spans of ended bookings, and patients left with none. Call
    /// with no slot locked.
    pub fn forget_spans(&self, ended: &mut Ended) {
        for (p, id) in ended.drain() {
            let h = self.patients.hash(&p);
            self.patients.lock(h).update_or_remove(h, &p, |v| {
                v.retain(|s| s.booking != id);
                !v.is_empty()
            });
        }
    }

    /// Re-registers a stored answer (recovery); `key` is the row's key.
    pub fn restore_answer(&self, key: &str, mut rec: IdemRecord) {
        let rid = match rec.request_id.take() {
            Some(rid) => {
                if let Ok(n) = key.parse::<u64>() {
                    self.next_idem_row.fetch_max(n.saturating_add(1), Ordering::Relaxed);
                }
                rid
            }
            // Written before rows were numbered: keyed by the request id.
            None => key.to_string(),
        };
        let h = self.idem.hash(&rid);
        self.mark_request(h);
        let state = IdemState::Done { command: rec.command, fingerprint: rec.fingerprint, answer: Answer::Stored(rec.answer) };
        match self.idem.lock(h).entry(h, &rid) {
            hashbrown::hash_table::Entry::Occupied(mut o) => o.get_mut().1 = state,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((Id::new(&rid), state));
            }
        }
    }

    /// Hands the transaction's rows to the store, inside the caller's locks.
    pub fn enqueue(&self, txn: &mut Txn) -> Option<Ticket> {
        match &self.store {
            Some(s) if !txn.writes.is_empty() => {
                // Queued with the change (the committer numbers entries in
                // the order they reach the disk).
                let entry = crate::audit::row(self.clock.now_ms(), &txn.writes);
                txn.writes.push(entry);
                if self.durable_txns.fetch_add(1, Ordering::Relaxed) % METRICS_EVERY == METRICS_EVERY - 1 {
                    txn.writes.push(self.metrics.row());
                }
                Some(s.enqueue(std::mem::take(&mut txn.writes)))
            }
            _ => None,
        }
    }

    /// Waits, without locks, until the transaction is durable; then promotes waiters.
    /// Inside a deferred call the wait is recorded, not made (`deferred.rs`).
    pub fn settle(&self, ticket: Option<Ticket>, promote: Vec<u32>) -> Result<()> {
        if let (Some(s), Some(t)) = (&self.store, ticket) {
            if !deferred::defer_wait(t) {
                s.wait(t)?;
            }
        }
        for idx in promote {
            self.promote_waiters(idx)?;
        }
        self.run_pending_promotions()
    }

    /// Promotions owed by hold expiries (see `sweep`); every call ends with this,
    /// refused ones included.
    pub fn run_pending_promotions(&self) -> Result<()> {
        // Set (under the lock) after every push, so a thread that queued
        // promotions sees its own flag; others' are run by their own callers.
        if !self.has_pending_promotions.load(Ordering::Acquire) {
            return Ok(());
        }
        let due = {
            let mut pending = self.pending_promotions.lock();
            self.has_pending_promotions.store(false, Ordering::Release);
            std::mem::take(&mut *pending)
        };
        for idx in due {
            self.promote_waiters(idx)?;
        }
        Ok(())
    }

    /// Appends an event to the outbox (and its row to the transaction).
    pub fn emit(&self, txn: &mut Txn, kind: &'static str, booking: Option<&Booking>, slot_id: Option<&str>, data: Value) {
        let at_ms = self.clock.now_ms();
        let ev = Event {
            seq: 0,
            kind: std::borrow::Cow::Borrowed(kind),
            at_ms,
            booking_id: booking.map(|b| b.id),
            slot_id: slot_id.map(Arc::from),
            patient_id: booking.map(|b| b.patient_id.clone()),
            clinic_id: booking.and_then(|b| b.clinic_id.clone()),
            data,
            note: None,
            slot_idx: if slot_id.is_none() { booking.map(|b| b.slot_idx) } else { None },
        };
        self.push_event(txn, ev);
    }

    /// A booking's event with at most one small note as its data (no JSON built
    /// until the event is stored or read).
    pub fn booking_event(&self, kind: &'static str, at_ms: Millis, b: &Booking, note: Option<EventNote>) -> Event {
        Event {
            seq: 0,
            kind: std::borrow::Cow::Borrowed(kind),
            at_ms,
            booking_id: Some(b.id),
            slot_id: None,
            patient_id: Some(b.patient_id.clone()),
            clinic_id: b.clinic_id.clone(),
            data: Value::Null,
            note,
            slot_idx: Some(b.slot_idx),
        }
    }

    /// Builds what the hot path left unbuilt: the note into `data`, the slot's id.
    pub fn materialize_event(&self, ev: &mut Event) {
        ev.materialize();
        if let Some(idx) = ev.slot_idx.take() {
            if ev.slot_id.is_none() {
                ev.slot_id = self.table.load().slots.get(idx as usize).map(|s| s.id.clone());
            }
        }
    }

    /// Numbers an event and appends it to the outbox (and its row to the transaction).
    pub fn push_event(&self, txn: &mut Txn, mut ev: Event) {
        if let Some(later) = txn.deferred.as_mut() {
            later.push(ev);
            return;
        }
        if self.store.is_some() {
            self.materialize_event(&mut ev);
        }
        let durable = self.store.is_some();
        self.outbox.push(ev, |ev| {
            if durable {
                txn.writes.push(Write::put(crate::pool::tables::EVENTS, crate::store::numbered_key(ev.seq), ev));
            }
        });
    }

    fn put_booking(&self, txn: &mut Txn, b: &Booking) {
        if self.store.is_some() {
            txn.writes.push(Write::put(crate::pool::tables::BOOKINGS, crate::store::numbered_key(b.id), b));
        }
    }

    /// A booking just made: its id is new (`next_id` continues past every
    /// booking, retired ones included).
    fn put_new_booking(&self, txn: &mut Txn, b: &Booking) {
        if self.store.is_some() {
            txn.writes.push(Write::put_new(crate::pool::tables::BOOKINGS, crate::store::numbered_key(b.id), b));
        }
    }

    pub fn put_slot(&self, txn: &mut Txn, slot: &Slot, st: &SlotState) {
        if self.store.is_some() {
            txn.writes.push(Write::put(crate::pool::tables::SLOTS, slot.info.slot_id.clone(), &st.record(&slot.info)));
        }
    }

    fn put_wait(&self, txn: &mut Txn, w: &WaitEntry) {
        if self.store.is_some() {
            txn.writes.push(Write::put(crate::pool::tables::WAITLIST, crate::store::numbered_key(w.id), w));
        }
    }

    /// A booking that can still change. A retired one (or one being
    /// retired) is `INVALID_STATE`; reads that show a booking use
    /// [`booking_or_retired`](Self::booking_or_retired).
    pub fn booking(&self, id: u64) -> Result<Booking> {
        match self.bookings.with(id, Booking::clone) {
            Some(b) if b.retired => Err(retired_error(id)),
            Some(b) => Ok(b),
            None => Err(self.missing_booking(id)),
        }
    }

    /// The booking in a locked cell, if it can still change: the same rule
    /// as [`booking`](Self::booking), for callers holding the cell's lock.
    fn changeable<'g>(&self, cell: &'g mut BookingGuard<'_>, id: u64) -> Result<&'g mut Booking> {
        match cell.as_deref_mut() {
            Some(b) if b.retired => Err(retired_error(id)),
            Some(b) => Ok(b),
            None => Err(self.missing_booking(id)),
        }
    }

    /// A booking to show: in memory, or retired to the store (`retire.rs`).
    pub fn booking_or_retired(&self, id: u64) -> Result<Booking> {
        match self.bookings.with(id, Booking::clone) {
            Some(b) => Ok(b),
            None => self.retired_booking(id)?.ok_or_else(|| Error::new(ErrorCode::BookingNotFound)),
        }
    }

    // ------------------------------------------------------------ expiry and release

    /// Expires the slot's overdue holds. Call with the slot locked.
    ///
    /// The expiry is its own change: its rows go to the store at once (still
    /// under the slot lock, so in order) and its promotions are queued for the
    /// end of the call, so they stick even when the request that triggered the
    /// sweep is then refused. Nobody waits on them: no caller was told of them.
    fn sweep(&self, slot: &Slot, st: &mut SlotState, now: Millis, txn: &mut Txn) {
        if st.holds.first().is_none_or(|h| h.0 > now) {
            return;
        }
        let mut own = Txn::default();
        self.expire_due(slot, st, now, &mut own);
        let _ = self.enqueue(&mut own);
        if !own.promote.is_empty() {
            let mut pending = self.pending_promotions.lock();
            for idx in own.promote {
                if !pending.contains(&idx) {
                    pending.push(idx);
                }
            }
            self.has_pending_promotions.store(true, Ordering::Release);
        }
        // Patient spans of the expired holds are dropped with the caller's own.
        txn.ended.append(&mut own.ended);
    }

    fn expire_due(&self, slot: &Slot, st: &mut SlotState, now: Millis, txn: &mut Txn) {
        let mut expired = Vec::new();
        while let Some(h) = st.holds.first().copied().filter(|h| h.0 <= now) {
            st.holds.remove(&h);
            expired.push(h.1);
        }
        for id in expired {
            let Some(mut shard) = self.bookings.lock(id) else {
                continue;
            };
            let Some(b) = shard.as_mut() else { continue };
            b.status = BookingStatus::Expired;
            b.updated_ms = now;
            give_back_number(slot, b);
            st.active.remove(&id);
            self.give_back(slot, st, b.used_quota, true, txn);
            self.put_booking(txn, b);
            txn.ended.push((b.patient_id.clone(), id));
            let ev = self.booking_event("hold_expired", now, b, Some(("reason", "unpaid hold passed its time-to-live".into())));
            drop(shard);
            self.push_event(txn, ev);
        }
        slot.publish(st);
    }

    /// Returns one place to the slot: to the waitlist if anyone waits, else to the pool.
    fn give_back(&self, slot: &Slot, st: &mut SlotState, used_quota: bool, was_hold: bool, txn: &mut Txn) {
        if was_hold {
            st.held -= 1;
        } else {
            st.booked -= 1;
        }
        if used_quota {
            st.quota_used = st.quota_used.saturating_sub(1);
        }
        if !st.closed && st.waitlist.iter().any(|w| w.status == WaitStatus::Waiting) && st.remaining() > 0 {
            st.set_aside += 1;
            st.held += 1;
            if !txn.promote.contains(&slot.idx) {
                txn.promote.push(slot.idx);
            }
        }
    }

    /// Expires overdue holds in every slot (the host may call this on a timer).
    pub fn expire_all(&self) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut count = 0;
        let table = self.table.load();
        for slot in table.slots.iter() {
            if slot.earliest_expiry() > now {
                continue;
            }
            let mut txn = Txn::default();
            let ticket = {
                let mut st = slot.state.lock();
                let before = st.holds.len();
                if st.holds.first().is_some_and(|h| h.0 <= now) {
                    // Here the expiry is the caller's change: wait for it like any other.
                    self.expire_due(slot, &mut st, now, &mut txn);
                }
                count += before - st.holds.len();
                self.enqueue(&mut txn)
            };
            self.forget_spans(&mut txn.ended);
            self.settle(ticket, txn.promote)?;
        }
        Ok(count)
    }

    // ------------------------------------------------------------ reserve

    /// Hold or book one place. `respond` builds the answer stored for retries.
    pub fn reserve(
        &self,
        r: Reserve,
        request_id: Option<&str>,
        command: &'static str,
        fingerprint: u64,
        respond: &dyn Fn(&Booking, &Slot) -> Answer,
    ) -> Result<Answer> {
        self.metrics.attempts.add(1);
        // Borrowed, not cloned: a refcount bump on a hot slot would bounce its
        // cache line between every caller.
        let slot: &Slot = self.directory.get(r.slot).ok_or_else(|| Error::new(ErrorCode::SlotNotFound))?;
        // Lock-free refusal first; a request id with an answer must get that answer instead.
        if let Some(code) = slot.fast_refusal(r.priority, || self.clock.coarse_now_ms()) {
            if !self.has_answer(request_id) {
                if code == ErrorCode::SlotFull {
                    self.metrics.refused_full.add(1);
                }
                return Err(slot_error(code, slot));
            }
        }
        let claim = match self.claim(request_id, command, fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = self.reserve_claimed(slot, r, &claim, respond);
        match result {
            Ok((answer, ticket, promote)) => {
                let settled = self.settle(ticket, promote);
                self.finish_claim(claim, settled.is_ok().then_some(&answer));
                settled?;
                self.metrics.successes.add(1);
                Ok(answer)
            }
            Err(e) => {
                if e.code() == ErrorCode::SlotFull {
                    self.metrics.refused_full.add(1);
                }
                self.finish_claim(claim, None);
                let _ = self.run_pending_promotions();
                Err(e)
            }
        }
    }

    fn reserve_claimed(
        &self,
        slot: &Slot,
        r: Reserve,
        claim: &Option<IdemClaim<'_>>,
        respond: &dyn Fn(&Booking, &Slot) -> Answer,
    ) -> Result<(Answer, Option<Ticket>, Vec<u32>)> {
        let mut txn = Txn::default();
        let span = Span { booking: 0, slot: slot.idx, start_ms: slot.start_ms, end_ms: slot.end_ms, bed: slot.bed };
        let patient_id: Id = r.patient_id.clone();
        let ph = self.patients.hash(&patient_id);
        let mut spans = self.patients.lock(ph);
        let now = self.clock.now_ms();
        let mut st = slot.state.lock();
        self.sweep(slot, &mut st, now, &mut txn);
        // The slot's refusals come first, as on the lock-free path; then the patient's.
        check_bookable(slot, &st, now, r.priority)?;
        // One probe of the patient map. A new entry is empty, and an empty one
        // passes the check, so a refusal never leaves an empty entry behind.
        // A bed is reserved for a day it is in service (its slot's date on).
        if slot.bed && r.expected_date.is_some_and(|d| d < slot.info.date) {
            return Err(bed_not_in_service(slot));
        }
        let mine = spans.get_or_default(ph, &patient_id, || patient_id.clone());
        self.check_patient(mine, &span, now, None)?;
        let id = self.outbox.counters.next_booking.fetch_add(1, Ordering::Relaxed);
        let used_quota = r.priority.uses_quota() && st.free_for(Priority::Normal) == 0;
        // Nothing below can fail: the number is given to a booking that stands.
        let visit_no = slot.visits.as_ref().map(|q| q.assign(r.priority == Priority::Referral));
        let b = Box::new(Booking {
            id,
            slot_id: self.store.is_some().then(|| slot.id.clone()),
            patient_id: patient_id.clone(),
            clinic_id: r.clinic_id,
            priority: r.priority,
            status: if r.hold { BookingStatus::PreBooked } else { BookingStatus::Booked },
            payment: PaymentStatus::Unpaid,
            hold_expires_ms: r.hold.then_some(now.saturating_add(self.cfg.hold_ttl_ms)),
            used_quota,
            created_ms: now,
            updated_ms: now,
            cancel_reason: None,
            moves: Vec::new(),
            expected_date: r.expected_date,
            reason: r.reason,
            project_id: r.project_id.filter(|_| slot.info.project_id.is_none()),
            waitlist_id: None,
            visit_no,
            confirmed_date: None,
            slot_idx: slot.idx,
            retired: false,
            was_booked: !r.hold,
        });
        if r.hold {
            st.held += 1;
            st.holds.insert((now.saturating_add(self.cfg.hold_ttl_ms), id));
        } else {
            st.booked += 1;
        }
        if used_quota {
            st.quota_used += 1;
        }
        st.active.insert(id);
        slot.publish(&st);
        mine.push(Span { booking: id, ..span });
        if let Some(info) = r.patient {
            if self.store.is_some() {
                txn.writes.push(Write::put(
                    crate::pool::tables::PATIENTS,
                    r.patient_id.to_string(),
                    &PatientRecord { patient_id: r.patient_id.to_string(), info: info.clone() },
                ));
            }
            self.patient_info.shard(&*r.patient_id).insert(r.patient_id.to_string(), info);
        }
        self.put_new_booking(&mut txn, &b);
        if let Some(w) = r.also.filter(|_| self.store.is_some()) {
            txn.writes.push(w);
        }
        let answer = respond(&b, slot);
        // The slot's date and window are added when the event is read (event_view).
        let kind = if r.hold { "booking_held" } else { "booking_made" };
        let ev = self.booking_event(kind, now, &b, None);
        self.bookings.insert_boxed(id, b);
        self.push_event(&mut txn, ev);
        self.record_answer(claim, &answer, &mut txn);
        let ticket = self.enqueue(&mut txn);
        drop(st);
        drop(spans);
        self.forget_spans(&mut txn.ended);
        Ok((answer, ticket, txn.promote))
    }

    /// P6: one booking per slot per patient, and no overlapping times.
    fn check_patient(&self, spans: &mut Spans, new: &Span, now: Millis, ignore: Option<u64>) -> Result<()> {
        // Drop spans whose booking ended (cancelled, expired): cleaned lazily here.
        spans.retain(|s| match self.bookings.lock(s.booking).as_deref().and_then(Option::as_ref) {
            Some(b) => b.holds_place(now),
            None => false,
        });
        for s in spans.as_slice() {
            if Some(s.booking) == ignore {
                continue;
            }
            if s.slot == new.slot {
                return Err(Error::with(
                    ErrorCode::DuplicateBooking,
                    format!("the patient already holds this slot (booking {})", format_booking_id(s.booking)),
                    format!("患者已预约该号源（预约 {}）", format_booking_id(s.booking)),
                ));
            }
            if s.overlaps(new) {
                return Err(Error::with(
                    ErrorCode::PatientOverlap,
                    format!("the patient's booking {} overlaps this time", format_booking_id(s.booking)),
                    format!("患者的预约 {} 与该时段重叠", format_booking_id(s.booking)),
                ));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ changes to one booking

    /// Runs `f` on a booking with its slot locked, then makes the change durable.
    /// `f` returns the answer; it may change the booking and the slot state.
    pub fn with_booking(
        &self,
        id: u64,
        actor: &Actor,
        request_id: Option<&str>,
        command: &'static str,
        fingerprint: u64,
        f: &mut BookingStep<'_>,
    ) -> Result<Answer> {
        let claim = match self.claim(request_id, command, fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = (|| {
            loop {
                let idx = self.bookings.with(id, |b| b.slot_idx).ok_or_else(|| self.missing_booking(id))?;
                let slot: &Slot = self.directory.get(idx).ok_or_else(|| Error::new(ErrorCode::SlotNotFound))?;
                let mut txn = Txn::default();
                let mut st = slot.state.lock();
                let now = self.clock.now_ms();
                self.sweep(slot, &mut st, now, &mut txn);
                // Changed in place: `f` checks before it changes anything, so an
                // error leaves the booking as it was.
                let mut shard = self.bookings.lock(id).ok_or_else(|| Error::new(ErrorCode::BookingNotFound))?;
                let b = self.changeable(&mut shard, id)?;
                if b.slot_idx != idx {
                    // Moved by a concurrent change: lock the new slot instead.
                    continue;
                }
                if !actor.may_touch(b, slot) {
                    return Err(forbidden());
                }
                let answer = f(self, slot, &mut st, b, &mut txn, now)?;
                b.updated_ms = now;
                self.put_booking(&mut txn, b);
                if !b.status.is_active() {
                    txn.ended.push((b.patient_id.clone(), id));
                }
                drop(shard);
                slot.publish(&st);
                self.record_answer(&claim, &answer, &mut txn);
                let ticket = self.enqueue(&mut txn);
                drop(st);
                self.forget_spans(&mut txn.ended);
                return Ok((answer, ticket, txn.promote));
            }
        })();
        self.finish_txn(claim, result)
    }

    /// As `with_booking`, for several bookings changed in one transaction (a
    /// step on several items of one case): their slots are locked by index,
    /// ascending, then the bookings by id, ascending; a booking that moved
    /// slot meanwhile makes it start over. `f` sees them through `Locked`
    /// and should check everything before it changes anything; if it fails
    /// part-way all the same, every booking and slot is put back as it was
    /// and none of its events is published. Bookings `f` took with
    /// `Locked::get_mut` are written with the change. The caller records its
    /// request id's answer in `f`.
    pub fn with_bookings(&self, ids: &[u64], actor: &Actor, f: &mut dyn FnMut(&Pool, &mut Locked<'_>, &mut Txn, Millis) -> Result<Answer>) -> Result<Answer> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let not_found = |id: u64| self.missing_booking(id);
        let result = (|| loop {
            let mut idxs = Vec::with_capacity(ids.len());
            for &id in &ids {
                idxs.push(self.bookings.with(id, |b| b.slot_idx).ok_or_else(|| not_found(id))?);
            }
            let mut order = idxs.clone();
            order.sort_unstable();
            order.dedup();
            let mut txn = Txn::default();
            let now = self.clock.now_ms();
            let mut slots = Vec::with_capacity(order.len());
            for &idx in &order {
                let slot: &Slot = self.directory.get(idx).ok_or_else(|| Error::new(ErrorCode::SlotNotFound))?;
                let mut st = slot.state.lock();
                self.sweep(slot, &mut st, now, &mut txn);
                slots.push((slot, st));
            }
            let mut bookings = Vec::with_capacity(ids.len());
            let mut moved = false;
            for (&id, &idx) in ids.iter().zip(&idxs) {
                let mut shard = self.bookings.lock(id).ok_or_else(|| not_found(id))?;
                let b = self.changeable(&mut shard, id)?;
                if b.slot_idx != idx {
                    moved = true;
                    break;
                }
                let pos = order.binary_search(&idx).map_err(|_| Error::internal("slot of a locked booking not locked"))?;
                if !actor.may_touch(b, slots[pos].0) {
                    return Err(forbidden());
                }
                bookings.push((pos, shard, false));
            }
            if moved {
                // Moved by a concurrent change: lock the new slots instead.
                continue;
            }
            let mut locked = Locked { slots, bookings };
            // All or nothing: what `f` changed before an error is put back,
            // and its events are published only once it has succeeded.
            let slots_before: Vec<SlotState> = locked.slots.iter().map(|(_, st)| (**st).clone()).collect();
            let bookings_before: Vec<Option<Box<Booking>>> = locked.bookings.iter().map(|(_, b, _)| (**b).clone()).collect();
            txn.deferred = Some(Vec::new());
            let answer = match f(self, &mut locked, &mut txn, now) {
                Ok(a) => a,
                Err(e) => {
                    for ((slot, st), was) in locked.slots.iter_mut().zip(slots_before) {
                        **st = was;
                        slot.publish(st);
                    }
                    for ((_, b, _), was) in locked.bookings.iter_mut().zip(bookings_before) {
                        **b = was;
                    }
                    return Err(e);
                }
            };
            for ev in txn.deferred.take().unwrap_or_default() {
                self.push_event(&mut txn, ev);
            }
            for (_, shard, touched) in locked.bookings.iter_mut() {
                let Some(b) = shard.as_mut().filter(|_| *touched) else { continue };
                b.updated_ms = now;
                self.put_booking(&mut txn, b);
                if !b.status.is_active() {
                    txn.ended.push((b.patient_id.clone(), b.id));
                }
            }
            drop(std::mem::take(&mut locked.bookings));
            for (slot, st) in locked.slots.iter() {
                slot.publish(st);
            }
            let ticket = self.enqueue(&mut txn);
            drop(locked);
            self.forget_spans(&mut txn.ended);
            return Ok((answer, ticket, txn.promote));
        })();
        self.finish_txn(None, result)
    }

    /// The change context every domain's command goes through: claims the
    /// request id (a retry gets the first answer back, a concurrent duplicate
    /// `REQUEST_IN_PROGRESS`), runs `run` with the claim (which records the
    /// answer in the same transaction as the change), and settles the claim
    /// with the answer once it is durable, or frees it on failure.
    pub(crate) fn idempotent(
        &self,
        request_id: Option<&str>,
        command: &'static str,
        fingerprint: u64,
        run: impl FnOnce(&Option<IdemClaim<'_>>) -> Result<Answer>,
    ) -> Result<Value> {
        let claim = match self.claim(request_id, command, fingerprint)? {
            Claimed::Replay(a) => return Ok(a.into_value()),
            Claimed::Fresh(c) => c,
        };
        let r = run(&claim);
        self.settle_claim(claim, r).map(Answer::into_value)
    }

    /// Ends a claimed change: the answer is kept for retries only if it is durable.
    pub(crate) fn settle_claim(&self, claim: Option<IdemClaim<'_>>, r: Result<Answer>) -> Result<Answer> {
        match r {
            Ok(a) => {
                self.finish_claim(claim, Some(&a));
                Ok(a)
            }
            Err(e) => {
                self.finish_claim(claim, None);
                let _ = self.run_pending_promotions();
                Err(e)
            }
        }
    }

    /// One transaction on a domain's state behind one lock (the lab, the
    /// referral module): `f` checks everything before it changes anything and
    /// pushes its rows and events into the transaction; the request id's
    /// answer is recorded with them, the commit is queued under the lock (so
    /// commits reach disk in the order the changes were made) and waited for
    /// after it is released.
    pub(crate) fn locked_txn<S>(
        &self,
        claim: &Option<IdemClaim<'_>>,
        state: &Mutex<S>,
        f: impl FnOnce(&mut S, &mut Txn, Millis) -> Result<Value>,
    ) -> Result<Answer> {
        let mut txn = Txn::default();
        let (answer, ticket) = {
            let mut g = state.lock();
            let now = self.clock.now_ms();
            let answer = Answer::Json(f(&mut g, &mut txn, now)?);
            self.record_answer(claim, &answer, &mut txn);
            (answer, self.enqueue(&mut txn))
        };
        self.settle(ticket, Vec::new())?;
        Ok(answer)
    }

    pub fn finish_txn(&self, claim: Option<IdemClaim<'_>>, result: Result<(Answer, Option<Ticket>, Vec<u32>)>) -> Result<Answer> {
        match result {
            Ok((answer, ticket, promote)) => {
                let settled = self.settle(ticket, promote);
                self.finish_claim(claim, settled.is_ok().then_some(&answer));
                settled.map(|_| answer)
            }
            Err(e) => {
                self.finish_claim(claim, None);
                let _ = self.run_pending_promotions();
                Err(e)
            }
        }
    }

    /// Cancels an active booking and returns its place. Slot locked by the caller.
    pub fn cancel_locked(
        &self,
        slot: &Slot,
        st: &mut SlotState,
        b: &mut Booking,
        reason: std::borrow::Cow<'static, str>,
        now: Millis,
        txn: &mut Txn,
    ) -> Result<()> {
        match b.status {
            BookingStatus::Cancelled => return Err(Error::new(ErrorCode::AlreadyCancelled)),
            BookingStatus::Expired => return Err(Error::new(ErrorCode::HoldExpired)),
            BookingStatus::Occupied => {
                return Err(Error::with(
                    ErrorCode::InvalidState,
                    "an occupied bed is released by discharge, not by cancellation",
                    "已入住的床位需办理出院，不能取消",
                ))
            }
            BookingStatus::PreBooked | BookingStatus::Booked => {}
        }
        let was_hold = b.status == BookingStatus::PreBooked;
        st.active.remove(&b.id);
        if was_hold {
            st.holds.remove(&(b.hold_expires_ms.unwrap_or(0), b.id));
        }
        b.status = BookingStatus::Cancelled;
        b.cancel_reason = Some(reason.clone());
        b.hold_expires_ms = None;
        b.updated_ms = now;
        give_back_number(slot, b);
        self.give_back(slot, st, b.used_quota, was_hold, txn);
        slot.publish(st);
        let ev = self.booking_event("booking_cancelled", now, b, Some(("reason", reason)));
        self.push_event(txn, ev);
        Ok(())
    }

    /// Turns a hold into a booking (confirmation or payment).
    pub fn confirm_locked(&self, slot: &Slot, st: &mut SlotState, b: &mut Booking, now: Millis, txn: &mut Txn, via: &'static str) -> Result<bool> {
        match b.status {
            BookingStatus::PreBooked => {
                if b.hold_expires_ms.is_some_and(|e| e <= now) {
                    return Err(Error::new(ErrorCode::HoldExpired));
                }
                st.holds.remove(&(b.hold_expires_ms.unwrap_or(0), b.id));
                st.held -= 1;
                st.booked += 1;
                b.status = BookingStatus::Booked;
                b.was_booked = true;
                b.hold_expires_ms = None;
                slot.publish(st);
                let ev = self.booking_event("booking_confirmed", now, b, Some(("via", via.into())));
                self.push_event(txn, ev);
                Ok(true)
            }
            BookingStatus::Booked | BookingStatus::Occupied => Ok(false),
            BookingStatus::Expired => Err(Error::new(ErrorCode::HoldExpired)),
            BookingStatus::Cancelled => Err(Error::new(ErrorCode::AlreadyCancelled)),
        }
    }

    // ------------------------------------------------------------ change (P5)

    /// Moves a booking to another slot atomically: the old place is kept if the
    /// new one cannot be had.
    #[allow(clippy::too_many_arguments)] // the request's parts, each used once
    pub fn change(
        &self,
        id: u64,
        target: u32,
        actor: &Actor,
        reason: &str,
        request_id: Option<&str>,
        fingerprint: u64,
        respond: &dyn Fn(&Booking, &Slot) -> Value,
    ) -> Result<Answer> {
        let claim = match self.claim(request_id, "change-booking", fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = self.move_booking(id, target, Some(actor), reason, &claim, respond, "booking_changed");
        self.finish_txn(claim, result)
    }

    #[allow(clippy::too_many_arguments)] // the request's parts, each used once
    pub fn move_booking(
        &self,
        id: u64,
        target: u32,
        actor: Option<&Actor>,
        reason: &str,
        claim: &Option<IdemClaim<'_>>,
        respond: &dyn Fn(&Booking, &Slot) -> Value,
        event: &'static str,
    ) -> Result<(Answer, Option<Ticket>, Vec<u32>)> {
        let to = self.slot(target)?;
        loop {
            let current = self.booking(id)?;
            let from = self.slot(current.slot_idx)?;
            if from.idx == to.idx {
                return Err(Error::with(ErrorCode::InvalidField, "the booking is already on that slot", "预约已在该号源上"));
            }
            let mut txn = Txn::default();
            let ph = self.patients.hash(&current.patient_id);
            let mut spans = self.patients.lock(ph);
            let now = self.clock.now_ms();
            let (mut sf, mut stt);
            if from.idx < to.idx {
                sf = from.state.lock();
                stt = to.state.lock();
            } else {
                stt = to.state.lock();
                sf = from.state.lock();
            }
            self.sweep(&from, &mut sf, now, &mut txn);
            self.sweep(&to, &mut stt, now, &mut txn);
            let mut b = self.booking(id)?;
            if b.slot_idx != from.idx {
                continue;
            }
            if let Some(a) = actor {
                if !a.may_touch(&b, &from) {
                    return Err(forbidden());
                }
            }
            if !b.status.is_active() || b.status == BookingStatus::Occupied {
                return Err(state_error(&b));
            }
            if to.info.kind != from.info.kind {
                return Err(Error::invalid("slot", "a booking moves only to a slot of the same kind"));
            }
            let new_span = Span { booking: 0, slot: to.idx, start_ms: to.start_ms, end_ms: to.end_ms, bed: to.bed };
            let mine = spans.get_or_default(ph, &b.patient_id, || b.patient_id.clone());
            check_bookable(&to, &stt, now, b.priority)?;
            if to.bed && b.expected_date.is_some_and(|d| d < to.info.date) {
                return Err(bed_not_in_service(&to));
            }
            self.check_patient(mine, &new_span, now, Some(id))?;
            // Take the new place first, then give the old one back.
            let was_hold = b.status == BookingStatus::PreBooked;
            let new_quota = b.priority.uses_quota() && stt.free_for(Priority::Normal) == 0;
            if was_hold {
                stt.held += 1;
                let exp = b.hold_expires_ms.unwrap_or(now.saturating_add(self.cfg.hold_ttl_ms));
                stt.holds.insert((exp, id));
                sf.holds.remove(&(exp, id));
            } else {
                stt.booked += 1;
            }
            if new_quota {
                stt.quota_used += 1;
            }
            stt.active.insert(id);
            sf.active.remove(&id);
            self.give_back(&from, &mut sf, b.used_quota, was_hold, &mut txn);
            b.used_quota = new_quota;
            // Another day (or doctor) numbers the patient again; another window of the same day keeps the number.
            let same_day = match (&from.visits, &to.visits) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            };
            if !same_day {
                give_back_number(&from, &b);
                b.visit_no = to.visits.as_ref().map(|q| q.assign(b.priority == Priority::Referral));
            }
            b.moves.push(SlotMove { from_slot: from.info.slot_id.clone(), to_slot: to.info.slot_id.clone(), at_ms: now, reason: reason.to_string() });
            if b.slot_id.is_some() {
                b.slot_id = Some(to.id.clone());
            }
            b.slot_idx = to.idx;
            b.updated_ms = now;
            from.publish(&sf);
            to.publish(&stt);
            mine.retain(|s| s.booking != id);
            mine.push(Span { booking: id, ..new_span });
            self.put_booking(&mut txn, &b);
            let answer = Answer::Json(respond(&b, &to));
            self.bookings.insert(id, b.clone());
            self.emit(&mut txn, event, Some(&b), None, json!({"from_slot": from.info.slot_id, "to_slot": to.info.slot_id, "reason": reason}));
            self.record_answer(claim, &answer, &mut txn);
            let ticket = self.enqueue(&mut txn);
            return Ok((answer, ticket, txn.promote));
        }
    }

    // ------------------------------------------------------------ waitlist (P7)

    pub fn join_waitlist(
        &self,
        slot_idx: u32,
        patient_id: &str,
        clinic_id: Option<String>,
        priority: Priority,
        request_id: Option<&str>,
        fingerprint: u64,
    ) -> Result<Answer> {
        let claim = match self.claim(request_id, "waitlist-join", fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = (|| {
            let slot = self.slot(slot_idx)?;
            let mut txn = Txn::default();
            let mut st = slot.state.lock();
            let now = self.clock.now_ms();
            self.sweep(&slot, &mut st, now, &mut txn);
            if st.closed {
                return Err(slot_error(ErrorCode::SlotClosed, &slot));
            }
            if now >= slot.start_ms {
                return Err(slot_error(ErrorCode::SlotInPast, &slot));
            }
            if st.free_for(priority) > 0 {
                return Err(Error::new(ErrorCode::SlotHasPlaces));
            }
            if st.waitlist.iter().any(|w| w.patient_id == patient_id) {
                return Err(Error::new(ErrorCode::AlreadyWaitlisted));
            }
            let id = self.next_wait.fetch_add(1, Ordering::Relaxed);
            let w = WaitEntry {
                id,
                slot_id: slot.info.slot_id.clone(),
                patient_id: patient_id.to_string(),
                clinic_id,
                priority,
                raised: false,
                joined_ms: now,
                status: WaitStatus::Waiting,
                booking_id: None,
            };
            let position = queue_position(&st.waitlist, &w) + 1;
            st.waitlist.push(w.clone());
            slot.publish(&st);
            self.waitlist_slot.shard(&id).insert(id, slot.idx);
            self.put_wait(&mut txn, &w);
            // The entry's parties (its booking institution, the slot's
            // hospital) travel with it: they read its patient id in full.
            let answer = Answer::Json(json!({
                "waitlist_id": format_waitlist_id(id), "slot_id": slot.info.slot_id, "patient_id": patient_id, "clinic_id": w.clinic_id,
                "hospital_id": slot.info.hospital_id, "priority": priority.as_str(), "position": position, "status": "waiting"
            }));
            self.emit(
                &mut txn,
                "waitlist_joined",
                None,
                Some(&slot.info.slot_id),
                json!({"waitlist_id": format_waitlist_id(id), "patient_id": patient_id, "clinic_id": w.clinic_id, "hospital_id": slot.info.hospital_id, "position": position}),
            );
            self.record_answer(&claim, &answer, &mut txn);
            let ticket = self.enqueue(&mut txn);
            Ok((answer, ticket, txn.promote))
        })();
        self.finish_txn(claim, result)
    }

    pub fn leave_waitlist(&self, wid: u64, actor: &Actor, request_id: Option<&str>, fingerprint: u64) -> Result<Answer> {
        let claim = match self.claim(request_id, "waitlist-leave", fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = (|| {
            let not_found = || Error::new(ErrorCode::WaitlistEntryNotFound);
            let idx = *self.waitlist_slot.shard(&wid).get(&wid).ok_or_else(not_found)?;
            let slot = self.slot(idx)?;
            let mut txn = Txn::default();
            let mut st = slot.state.lock();
            let pos = st.waitlist.iter().position(|w| w.id == wid).ok_or_else(not_found)?;
            let own = actor.institution.is_some() && st.waitlist[pos].clinic_id == actor.institution;
            let hospital_side = matches!(actor.role, Role::Hospital) && actor.institution.as_deref() == Some(slot.info.hospital_id.as_str());
            if !(own || hospital_side || (actor.role == Role::Platform && actor.institution.is_none())) {
                return Err(forbidden());
            }
            let mut w = st.waitlist.remove(pos);
            w.status = WaitStatus::Left;
            // A place set aside for the waitlist goes back to the pool when nobody waits.
            release_unclaimed_set_aside(&mut st);
            slot.publish(&st);
            self.waitlist_slot.shard(&wid).remove(&wid);
            self.put_wait(&mut txn, &w);
            let answer = Answer::Json(json!({"waitlist_id": format_waitlist_id(wid), "status": "left"}));
            self.emit(
                &mut txn,
                "waitlist_left",
                None,
                Some(&slot.info.slot_id),
                json!({"waitlist_id": format_waitlist_id(wid), "patient_id": w.patient_id, "clinic_id": w.clinic_id, "hospital_id": slot.info.hospital_id}),
            );
            self.record_answer(&claim, &answer, &mut txn);
            let ticket = self.enqueue(&mut txn);
            Ok((answer, ticket, txn.promote))
        })();
        self.finish_txn(claim, result)
    }

    /// Gives places set aside on a slot to its first waiters, by priority then arrival.
    pub fn promote_waiters(&self, idx: u32) -> Result<()> {
        let slot = self.slot(idx)?;
        loop {
            // Peek without the patient lock (lock order), then re-check under both.
            let candidate = {
                let mut st = slot.state.lock();
                if st.set_aside == 0 {
                    return Ok(());
                }
                self.raise_long_waiters(&slot, &mut st);
                match best_waiter(&st.waitlist) {
                    Some(i) => (st.waitlist[i].id, st.waitlist[i].patient_id.clone()),
                    None => {
                        release_unclaimed_set_aside(&mut st);
                        slot.publish(&st);
                        return Ok(());
                    }
                }
            };
            let (wid, patient) = candidate;
            let mut txn = Txn::default();
            let ph = self.patients.hash(&patient);
            let mut spans = self.patients.lock(ph);
            let mut st = slot.state.lock();
            let now = self.clock.now_ms();
            self.sweep(&slot, &mut st, now, &mut txn);
            if st.set_aside == 0 {
                return Ok(());
            }
            match best_waiter(&st.waitlist) {
                Some(i) if st.waitlist[i].id == wid => {}
                _ => continue,
            }
            let pos = st.waitlist.iter().position(|w| w.id == wid).unwrap_or(0);
            let mut w = st.waitlist.remove(pos);
            let span = Span { booking: 0, slot: slot.idx, start_ms: slot.start_ms, end_ms: slot.end_ms, bed: slot.bed };
            let mine = spans.get_or_default(ph, &patient, || Id::new(patient.as_str()));
            self.waitlist_slot.shard(&wid).remove(&wid);
            if self.check_patient(mine, &span, now, None).is_err() || now >= slot.start_ms {
                w.status = WaitStatus::Skipped;
                self.put_wait(&mut txn, &w);
                self.emit(
                    &mut txn,
                    "waitlist_skipped",
                    None,
                    Some(&slot.info.slot_id),
                    json!({"waitlist_id": format_waitlist_id(wid), "patient_id": patient, "clinic_id": w.clinic_id, "hospital_id": slot.info.hospital_id, "reason": "overlapping booking or slot already started"}),
                );
            } else {
                let id = self.outbox.counters.next_booking.fetch_add(1, Ordering::Relaxed);
                st.set_aside -= 1; // the set-aside place becomes this hold (still counted in `held`)
                st.holds.insert((now.saturating_add(self.cfg.hold_ttl_ms), id));
                let used_quota = w.priority.uses_quota() && st.free_for(Priority::Normal) == 0 && st.unused_quota() > 0;
                if used_quota {
                    st.quota_used += 1;
                }
                st.active.insert(id);
                let b = Booking {
                    id,
                    slot_id: self.store.is_some().then(|| slot.id.clone()),
                    patient_id: Id::new(patient.as_str()),
                    clinic_id: w.clinic_id.as_deref().map(Id::new),
                    priority: w.priority,
                    status: BookingStatus::PreBooked,
                    payment: PaymentStatus::Unpaid,
                    hold_expires_ms: Some(now.saturating_add(self.cfg.hold_ttl_ms)),
                    used_quota,
                    created_ms: now,
                    updated_ms: now,
                    cancel_reason: None,
                    moves: Vec::new(),
                    expected_date: None,
                    reason: None,
                    project_id: None,
                    waitlist_id: Some(wid),
                    visit_no: slot.visits.as_ref().map(|q| q.assign(w.priority == Priority::Referral)),
                    confirmed_date: None,
                    slot_idx: slot.idx,
                    retired: false,
                    was_booked: false,
                };
                mine.push(Span { booking: id, ..span });
                w.status = WaitStatus::Promoted;
                w.booking_id = Some(id);
                self.put_wait(&mut txn, &w);
                self.put_new_booking(&mut txn, &b);
                self.bookings.insert(id, b.clone());
                self.emit(
                    &mut txn,
                    "waitlist_promoted",
                    Some(&b),
                    None,
                    json!({"waitlist_id": format_waitlist_id(wid), "hold_expires_at": crate::clock::format_ms(now.saturating_add(self.cfg.hold_ttl_ms), &self.cfg.tz)}),
                );
            }
            slot.publish(&st);
            let ticket = self.enqueue(&mut txn);
            drop(st);
            drop(spans);
            if let (Some(s), Some(t)) = (&self.store, ticket) {
                s.wait(t)?;
            }
        }
    }

    /// P8: a waiter of an urgent class who has waited long on a full slot moves up a rank.
    fn raise_long_waiters(&self, slot: &Slot, st: &mut SlotState) {
        let now = self.clock.now_ms();
        let limit = self.cfg.waitlist_raise_after_ms;
        let _ = slot;
        for w in st.waitlist.iter_mut() {
            if !w.raised && w.priority > Priority::Referral && now.saturating_sub(w.joined_ms) >= limit {
                w.raised = true;
            }
        }
    }

    // ------------------------------------------------------------ outbox (I3)

    /// Drops events up to `ack`, then returns up to `limit` of the rest.
    /// Acknowledges events up to `ack` (they leave the outbox), then returns up
    /// to `limit` pending events with a sequence number above `after` (a reader
    /// that does not own the outbox, e.g. a push stream, pages with `after`).
    pub fn next_events(&self, ack: Option<u64>, after: Option<u64>, limit: usize) -> Result<(Vec<Event>, u64)> {
        let mut txn = Txn::default();
        let ticket;
        let out;
        let pending;
        {
            let mut stripes: Vec<_> = self.outbox.stripes.iter().map(|s| s.lock()).collect();
            let next_seq = self.outbox.counters.next_seq.load(Ordering::Acquire);
            if let Some(ack) = ack {
                let mut dropped = Vec::new();
                for q in stripes.iter_mut() {
                    while q.front().is_some_and(|e| e.seq <= ack) {
                        dropped.push(q.pop_front().expect("front checked").seq);
                    }
                }
                if self.store.is_some() {
                    dropped.sort_unstable();
                    for seq in dropped {
                        txn.writes.push(Write::delete(crate::pool::tables::EVENTS, crate::store::numbered_key(seq)));
                    }
                    // Keeps sequence numbers rising after every event was drained.
                    txn.writes.push(Write {
                        table: crate::pool::tables::META,
                        key: "events_acked_through".into(),
                        body: Some(ack.min(next_seq - 1).to_string()),
                        fresh: false,
                    });
                }
            }
            // Merge the stripes (each in sequence order) up to `limit`.
            let mut pos: Vec<usize> = match after {
                Some(after) => stripes.iter().map(|q| q.partition_point(|e| e.seq <= after)).collect(),
                None => vec![0usize; stripes.len()],
            };
            let mut merged = Vec::new();
            while merged.len() < limit {
                let mut best: Option<(usize, u64)> = None;
                for (i, q) in stripes.iter().enumerate() {
                    if let Some(e) = q.get(pos[i]) {
                        if best.is_none_or(|(_, s)| e.seq < s) {
                            best = Some((i, e.seq));
                        }
                    }
                }
                let Some((i, _)) = best else { break };
                merged.push(stripes[i][pos[i]].clone());
                pos[i] += 1;
            }
            out = merged;
            pending = stripes.iter().map(|q| q.len() as u64).sum();
            ticket = self.enqueue(&mut txn);
        }
        self.settle(ticket, Vec::new())?;
        Ok((out, pending))
    }
}

fn queue_position(list: &[WaitEntry], w: &WaitEntry) -> usize {
    list.iter()
        .filter(|o| o.status == WaitStatus::Waiting && (o.effective_rank() > w.effective_rank() || (o.effective_rank() == w.effective_rank() && o.id < w.id)))
        .count()
}

fn best_waiter(list: &[WaitEntry]) -> Option<usize> {
    list.iter()
        .enumerate()
        .filter(|(_, w)| w.status == WaitStatus::Waiting)
        .max_by(|(_, a), (_, b)| a.effective_rank().cmp(&b.effective_rank()).then(b.id.cmp(&a.id)))
        .map(|(i, _)| i)
}

fn release_unclaimed_set_aside(st: &mut SlotState) {
    if !st.waitlist.iter().any(|w| w.status == WaitStatus::Waiting) {
        st.held -= st.set_aside;
        st.set_aside = 0;
    }
}

/// The bookings of `Pool::with_bookings`, locked with their slots.
pub(crate) struct Locked<'a> {
    slots: Vec<(&'a Slot, MutexGuard<'a, SlotState>)>,
    /// (position of its slot in `slots`, the cell, taken for change).
    bookings: Vec<(usize, BookingGuard<'a>, bool)>,
}

impl Locked<'_> {
    /// A locked booking to read.
    pub fn get(&self, id: u64) -> Option<(&Booking, &Slot)> {
        let (pos, shard, _) = self.bookings.iter().find(|(_, s, _)| s.as_ref().is_some_and(|b| b.id == id))?;
        Some((shard.as_deref()?, self.slots[*pos].0))
    }
    /// A locked booking to change, with its slot's state; written with the change.
    pub fn get_mut(&mut self, id: u64) -> Option<(&Slot, &mut SlotState, &mut Booking)> {
        let (pos, shard, touched) = self.bookings.iter_mut().find(|(_, s, _)| s.as_ref().is_some_and(|b| b.id == id))?;
        *touched = true;
        let (slot, st) = &mut self.slots[*pos];
        Some((*slot, &mut **st, shard.as_deref_mut()?))
    }
    /// Every locked booking with its slot.
    pub fn all(&self) -> Vec<(&Booking, &Slot)> {
        self.bookings.iter().filter_map(|(pos, s, _)| s.as_deref().map(|b| (b, self.slots[*pos].0))).collect()
    }
}

/// The checks every new place goes through. Slot locked by the caller.
pub(crate) fn check_bookable(slot: &Slot, st: &SlotState, now: Millis, p: Priority) -> Result<()> {
    // Same order as the lock-free refusal: closed, then full.
    if st.closed {
        return Err(slot_error(ErrorCode::SlotClosed, slot));
    }
    if st.free_for(p) == 0 {
        return Err(slot_error(ErrorCode::SlotFull, slot));
    }
    if !slot.bed && now >= slot.start_ms {
        return Err(slot_error(ErrorCode::SlotInPast, slot));
    }
    if now < slot.opens_ms {
        return Err(slot_error(ErrorCode::SlotNotReleased, slot));
    }
    Ok(())
}

/// An ending booking gives its visit number back to its doctor's day (it
/// keeps it on record). Slot locked by the caller.
fn give_back_number(slot: &Slot, b: &Booking) {
    if let (Some(q), Some(n)) = (&slot.visits, b.visit_no) {
        q.give_back(n);
    }
}

/// A bed asked for on a day before it is in service.
pub(crate) fn bed_not_in_service(slot: &Slot) -> Error {
    Error::with(
        ErrorCode::BedNotInService,
        format!("bed {} is in service from {}", slot.info.slot_id, slot.date_str),
        format!("床位 {} 自 {} 起开放", slot.info.slot_id, slot.date_str),
    )
}

/// A slot's refusal. The text is the code's own (no allocation): the caller
/// knows which slot it asked for.
pub(crate) fn slot_error(code: ErrorCode, _slot: &Slot) -> Error {
    Error::new(code)
}

/// The longest request id a caller may send, in bytes.
pub(crate) const REQUEST_ID_MAX: usize = 128;
/// Room for the id-space prefix of a principal (`@community:<id up to 64>/`).
pub(crate) const SCOPE_MAX: usize = 96;

pub(crate) fn forbidden_hospital() -> Error {
    Error::with(ErrorCode::Forbidden, "a hospital acts only on its own slots", "医院只能操作本院的号源")
}

pub(crate) fn forbidden() -> Error {
    Error::with(ErrorCode::Forbidden, "this institution may act only on its own bookings", "本机构只能操作本机构的预约")
}

pub(crate) fn state_error(b: &Booking) -> Error {
    match b.status {
        BookingStatus::Cancelled => Error::new(ErrorCode::AlreadyCancelled),
        BookingStatus::Expired => Error::new(ErrorCode::HoldExpired),
        s => Error::with(
            ErrorCode::InvalidState,
            format!("booking {} is {}, which does not allow this step", format_booking_id(b.id), s.as_str()),
            format!("预约 {} 当前状态为 {}，不允许该操作", format_booking_id(b.id), s.as_str()),
        ),
    }
}

/// A local date and time in the engine's zone, as UTC milliseconds.
pub(crate) fn local_ms(tz: &chrono_tz::Tz, date: NaiveDate, time: chrono::NaiveTime) -> Millis {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.timestamp_millis(),
        chrono::LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
        // A time skipped by a DST change: use the instant an hour later.
        chrono::LocalResult::None => tz.from_utc_datetime(&naive).timestamp_millis(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    /// A step on two bookings that fails after changing the first: the first
    /// booking, both slots and the outbox are as before, and nothing reached
    /// the store (a reopen shows the same).
    #[test]
    fn a_step_on_several_bookings_that_fails_part_way_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = serde_json::json!({"data_dir": dir.path(), "clock_start": "2024-10-29T09:00:00+08:00", "clock": "manual"}).to_string();
        let e = Engine::open(&cfg).unwrap();
        let sync = serde_json::json!({"hospital_id": "H001", "schedule_data": [{"device_id": "DEV001", "project_id": "P001", "date": "2024-10-30", "capacity": 2,
            "available_slots": [{"start_time": "09:00", "end_time": "10:00"}, {"start_time": "10:00", "end_time": "11:00"}]}]});
        e.call_value("sync-schedule", &sync.to_string()).unwrap();
        let opts = crate::HoldOptions::default();
        let a = e.hold(e.slot_handle("EX-H001-DEV001-20241030-09001000").unwrap(), "PAT001", &opts).unwrap().booking_id;
        let b = e.hold(e.slot_handle("EX-H001-DEV001-20241030-10001100").unwrap(), "PAT002", &opts).unwrap().booking_id;
        let seen = |e: &Engine| {
            let slots: Vec<Value> = ["EX-H001-DEV001-20241030-09001000", "EX-H001-DEV001-20241030-10001100"]
                .iter()
                .map(|s| e.call_value("slot-info", &serde_json::json!({"slot_id": s}).to_string()).unwrap())
                .collect();
            (e.booking(a).unwrap(), e.booking(b).unwrap(), slots, e.call_value("next-events", r#"{"limit": 1000}"#).unwrap())
        };
        let before = seen(&e);
        let pool = &e.d.pool;
        let out = pool.with_bookings(&[a, b], &Actor::platform(), &mut |pool, locked, txn, now| {
            let (slot, st, first) = locked.get_mut(a).unwrap();
            pool.confirm_locked(slot, st, first, now, txn, "test")?;
            let (slot, st, second) = locked.get_mut(b).unwrap();
            pool.cancel_locked(slot, st, second, "test".into(), now, txn)?;
            Err(Error::internal("a step failed after two changes"))
        });
        assert_eq!(out.unwrap_err().code(), ErrorCode::Internal);
        assert_eq!(seen(&e), before, "the failed step left a change behind");
        e.check_invariants().unwrap();
        // The same step succeeding: both changes and their events.
        pool.with_bookings(&[a, b], &Actor::platform(), &mut |pool, locked, txn, now| {
            let (slot, st, first) = locked.get_mut(a).unwrap();
            pool.confirm_locked(slot, st, first, now, txn, "test")?;
            Ok(Answer::Null)
        })
        .unwrap();
        assert_eq!(e.booking(a).unwrap()["status"], "booked");
        let events = e.call_value("next-events", r#"{"limit": 1000}"#).unwrap();
        assert_eq!(events["events"].as_array().unwrap().len(), before.3["events"].as_array().unwrap().len() + 1);
        e.close();
        let e = Engine::open(&cfg).unwrap();
        assert_eq!(e.booking(a).unwrap()["status"], "booked");
        assert_eq!(e.booking(b).unwrap(), before.1, "the rolled-back cancellation reached the store");
    }
}
