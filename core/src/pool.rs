//! The slot pool (号源池): slots, holds, bookings, waitlists and the outbox,
//! with the transactions of P5–P8.
//!
//! Concurrency: every slot has its own mutex; the pool-wide maps are sharded.
//! Locks are always taken in this order, never the reverse:
//! idempotency shard → patient shard → slot(s) by index → booking shard → outbox.
//! A packed atomic per slot lets the common case of a busy release day — a
//! caller meeting a full or closed slot — answer without taking any lock.

use crate::clock::{Clock, Millis};
use crate::config::{Config, Role};
use crate::error::{Error, ErrorCode, Result};
use crate::identity::PatientInfo;
use crate::model::*;
use crate::store::{DurableStore, Table, Ticket, Write};
use arc_swap::ArcSwap;
use chrono::{Duration, NaiveDate, TimeZone};
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

const SHARDS: usize = 64;

/// A map split into independently locked shards.
pub(crate) struct Sharded<K, V> {
    shards: Box<[CachePadded<Mutex<FastMap<K, V>>>]>,
    hasher: foldhash::fast::RandomState,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    pub fn new() -> Self {
        Sharded { shards: (0..SHARDS).map(|_| CachePadded::new(Mutex::new(FastMap::default()))).collect(), hasher: Default::default() }
    }
    pub fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, FastMap<K, V>> {
        let h = self.hasher.hash_one(key);
        self.shards[(h as usize) % SHARDS].lock()
    }
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for s in self.shards.iter() {
            for (k, v) in s.lock().iter() {
                f(k, v);
            }
        }
    }
}

// ---------------------------------------------------------------- slots

/// The mutable part of a slot, under its mutex.
#[derive(Debug, Clone)]
pub(crate) struct SlotState {
    pub capacity: u32,
    pub reserved_quota: u32,
    pub closed: bool,
    pub closed_reason: Option<String>,
    pub booked: u32,
    /// Holds, plus places set aside for waitlist promotion.
    pub held: u32,
    pub quota_used: u32,
    /// Places freed while patients waited, kept for the waitlist (counted in `held`).
    pub set_aside: u32,
    /// Active holds: (expiry, booking id).
    pub holds: Vec<(Millis, u64)>,
    /// Every active booking on the slot (holds included).
    pub active: Vec<u64>,
    /// Waiting entries only, in arrival order.
    pub waitlist: Vec<WaitEntry>,
}

impl SlotState {
    pub fn remaining(&self) -> u32 {
        self.capacity.saturating_sub(self.booked + self.held)
    }
    fn unused_quota(&self) -> u32 {
        self.reserved_quota.saturating_sub(self.quota_used)
    }
    /// Places this priority class may take now.
    pub fn free_for(&self, p: Priority) -> u32 {
        if p.uses_quota() {
            self.remaining()
        } else {
            self.remaining().saturating_sub(self.unused_quota())
        }
    }
    fn record(&self, info: &SlotInfo) -> SlotRecord {
        SlotRecord {
            info: info.clone(),
            capacity: self.capacity,
            reserved_quota: self.reserved_quota,
            closed: self.closed,
            closed_reason: self.closed_reason.clone(),
        }
    }
}

pub(crate) struct Slot {
    pub idx: u32,
    pub info: SlotInfo,
    pub start_ms: Millis,
    pub end_ms: Millis,
    /// When the release window opens this slot to community booking.
    pub opens_ms: Millis,
    /// Packed hint for lock-free rejection: bit 63 closed, bits 32..63 places
    /// free for normal patients, bits 0..32 places free for any class.
    hint: AtomicU64,
    /// Earliest hold expiry (`i64::MAX` when none): a "full" hint is only
    /// trusted while no hold may have expired.
    earliest_expiry: AtomicI64,
    pub state: Mutex<SlotState>,
}

const CLOSED_BIT: u64 = 1 << 63;

impl Slot {
    pub fn publish(&self, st: &SlotState) {
        let free_all = st.remaining() as u64;
        let free_normal = st.free_for(Priority::Normal) as u64;
        let h = (if st.closed { CLOSED_BIT } else { 0 }) | (free_normal.min(0x7fff_ffff) << 32) | free_all.min(0xffff_ffff);
        self.hint.store(h, Ordering::Release);
        let e = st.holds.iter().map(|h| h.0).min().unwrap_or(i64::MAX);
        self.earliest_expiry.store(e, Ordering::Release);
    }

    /// Re-publishes the hint from the current state (after recovery).
    pub fn publish_now(&self) {
        let st = self.state.lock();
        self.publish(&st);
    }

    /// The lock-free refusal: `Some` only when the answer cannot be anything else.
    #[inline]
    fn fast_refusal(&self, p: Priority, coarse_now: Millis) -> Option<ErrorCode> {
        let h = self.hint.load(Ordering::Acquire);
        if h & CLOSED_BIT != 0 {
            return Some(ErrorCode::SlotClosed);
        }
        let free = if p.uses_quota() { h & 0xffff_ffff } else { (h >> 32) & 0x7fff_ffff };
        // A hold expiring soon may free a place: only trust "full" well before that.
        if free == 0 && coarse_now + 50 < self.earliest_expiry.load(Ordering::Acquire) {
            return Some(ErrorCode::SlotFull);
        }
        None
    }

    pub fn availability(&self, st: &SlotState, now: Millis, cfg: &Config) -> Availability {
        // Queries never change state: holds past their expiry are simply not counted.
        let expired = st.holds.iter().filter(|h| h.0 <= now).count() as u32;
        let held = st.held - expired;
        let remaining = st.capacity.saturating_sub(st.booked + held);
        Availability {
            capacity: st.capacity,
            booked: st.booked,
            held,
            remaining,
            reserved_quota: st.reserved_quota.saturating_sub(st.quota_used),
            tight: !st.closed && remaining > 0 && is_tight(remaining, st.capacity, cfg),
            closed: st.closed,
            waiting: st.waitlist.len() as u32,
        }
    }
}

pub fn is_tight(remaining: u32, capacity: u32, cfg: &Config) -> bool {
    remaining <= cfg.tight_remaining || (capacity > 0 && (remaining as f64) / (capacity as f64) <= cfg.tight_ratio)
}

/// Places of one slot as seen now. `capacity == booked + held + remaining`
/// unless the hospital cut capacity below what was already taken (then remaining is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    pub capacity: u32,
    pub booked: u32,
    pub held: u32,
    pub remaining: u32,
    /// Places still kept for referral and urgent classes.
    pub reserved_quota: u32,
    /// 号源紧张: few places left; the screen should urge the patient to confirm.
    pub tight: bool,
    pub closed: bool,
    pub waiting: u32,
}

#[derive(Default)]
pub(crate) struct SlotTable {
    pub slots: Vec<Arc<Slot>>,
    pub by_id: FastMap<String, u32>,
    pub by_date: FastMap<NaiveDate, Vec<u32>>,
}

// ---------------------------------------------------------------- patients, idempotency, outbox

#[derive(Debug, Clone, Copy)]
struct Span {
    booking: u64,
    slot: u32,
    start_ms: Millis,
    end_ms: Millis,
    bed: bool,
}

impl Span {
    fn overlaps(&self, o: &Span) -> bool {
        if self.bed || o.bed {
            // A patient holds one bed at a time; beds do not block outpatient visits.
            return self.bed && o.bed;
        }
        self.start_ms < o.end_ms && o.start_ms < self.end_ms
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct IdemRecord {
    pub command: String,
    pub fingerprint: u64,
    pub answer: Value,
    pub at_ms: Millis,
}

enum IdemState {
    Pending,
    Done(IdemRecord),
}

/// A claim on a request id, held while its transaction runs.
pub(crate) struct IdemClaim {
    pub request_id: String,
    pub command: &'static str,
    pub fingerprint: u64,
}

pub(crate) enum Claimed {
    /// Go ahead; finish with the claim.
    Fresh(Option<IdemClaim>),
    /// The request ran before: here is its first answer.
    Replay(Value),
}

#[derive(Default)]
pub(crate) struct Outbox {
    pub next_seq: u64,
    pub events: VecDeque<Event>,
}

/// Counters for P9's success rate, striped so that threads do not share a line.
pub(crate) struct Striped {
    cells: Box<[CachePadded<AtomicU64>]>,
}

impl Striped {
    fn new() -> Self {
        Striped { cells: (0..16).map(|_| CachePadded::new(AtomicU64::new(0))).collect() }
    }
    #[inline]
    fn add(&self, n: u64) {
        thread_local!(static STRIPE: usize = {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            NEXT.fetch_add(1, Ordering::Relaxed) as usize
        });
        let i = STRIPE.with(|s| *s) % self.cells.len();
        self.cells[i].fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

pub(crate) struct Metrics {
    pub attempts: Striped,
    pub successes: Striped,
    pub refused_full: Striped,
}

// ---------------------------------------------------------------- the pool

/// The changes of one transaction on their way to disk.
#[derive(Default)]
pub(crate) struct Txn {
    pub writes: Vec<Write>,
    pub promote: Vec<u32>,
}

pub(crate) struct Pool {
    pub cfg: Config,
    pub clock: Clock,
    pub table: ArcSwap<SlotTable>,
    /// Serialises changes to the slot table (sync), not bookings.
    pub table_write: Mutex<()>,
    pub bookings: Sharded<u64, Booking>,
    /// Each booking's slot index, for cheap lookups without the booking shard.
    patients: Sharded<String, Vec<Span>>,
    pub patient_info: Sharded<String, PatientInfo>,
    idem: Sharded<String, IdemState>,
    pub waitlist_slot: Sharded<u64, u32>,
    pub outbox: Mutex<Outbox>,
    pub next_booking: AtomicU64,
    pub next_wait: AtomicU64,
    pub store: Option<DurableStore>,
    pub metrics: Metrics,
    pub catalog: crate::catalog::Catalog,
    pub closed: AtomicBool,
}

/// Who is asking: the request's institution, or the engine's own.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub institution: Option<String>,
    /// A community institution acts only on its own bookings (S1).
    pub community: bool,
}

impl Actor {
    pub fn may_touch(&self, b: &Booking) -> bool {
        !self.community || (self.institution.is_some() && self.institution == b.clinic_id)
    }
}

/// What a reservation asks for.
#[derive(Debug, Clone)]
pub(crate) struct Reserve {
    pub slot: u32,
    pub patient_id: String,
    pub clinic_id: Option<String>,
    pub priority: Priority,
    /// `true`: a hold (pre-booked) with a time-to-live; `false`: booked at once.
    pub hold: bool,
    pub patient: Option<PatientInfo>,
    pub expected_date: Option<NaiveDate>,
    pub reason: Option<String>,
    pub project_id: Option<String>,
}

impl Pool {
    pub fn new(cfg: Config, store: Option<DurableStore>) -> Pool {
        let clock = Clock::starting_at(cfg.clock_start_ms, cfg.manual_clock);
        Pool {
            cfg,
            clock,
            table: ArcSwap::from_pointee(SlotTable::default()),
            table_write: Mutex::new(()),
            bookings: Sharded::new(),
            patients: Sharded::new(),
            patient_info: Sharded::new(),
            idem: Sharded::new(),
            waitlist_slot: Sharded::new(),
            outbox: Mutex::new(Outbox { next_seq: 1, events: VecDeque::new() }),
            next_booking: AtomicU64::new(1),
            next_wait: AtomicU64::new(1),
            store,
            metrics: Metrics { attempts: Striped::new(), successes: Striped::new(), refused_full: Striped::new() },
            catalog: crate::catalog::Catalog::default(),
            closed: AtomicBool::new(false),
        }
    }

    pub fn slot(&self, idx: u32) -> Result<Arc<Slot>> {
        self.table.load().slots.get(idx as usize).cloned().ok_or_else(|| Error::new(ErrorCode::SlotNotFound))
    }

    pub fn slot_by_id(&self, id: &str) -> Result<Arc<Slot>> {
        let t = self.table.load();
        t.by_id.get(id).map(|i| t.slots[*i as usize].clone()).ok_or_else(|| Error::not_found(ErrorCode::SlotNotFound, "号源", id))
    }

    /// When a slot on `date` opens to booking under the release policy.
    pub fn opens_ms(&self, date: NaiveDate) -> Millis {
        if !self.cfg.release_enabled {
            return i64::MIN;
        }
        let day = date - Duration::days(self.cfg.release_days as i64);
        local_ms(&self.cfg.tz, day, self.cfg.release_time)
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
            booked: 0,
            held: 0,
            quota_used: 0,
            set_aside: 0,
            holds: Vec::new(),
            active: Vec::new(),
            waitlist: Vec::new(),
        };
        let slot = Slot {
            idx,
            info,
            start_ms,
            end_ms,
            opens_ms,
            hint: AtomicU64::new(0),
            earliest_expiry: AtomicI64::new(i64::MAX),
            state: Mutex::new(st),
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
    pub fn claim(&self, request_id: Option<&str>, command: &'static str, fingerprint: u64) -> Result<Claimed> {
        let Some(rid) = request_id else { return Ok(Claimed::Fresh(None)) };
        if rid.is_empty() || rid.len() > 128 {
            return Err(Error::invalid("request_id", "must be 1 to 128 characters"));
        }
        let mut shard = self.idem.shard(rid);
        match shard.get(rid) {
            Some(IdemState::Done(r)) if r.command == command && r.fingerprint == fingerprint => return Ok(Claimed::Replay(r.answer.clone())),
            Some(IdemState::Done(_)) => {
                return Err(Error::with(
                    ErrorCode::IdempotencyConflict,
                    format!("request id `{rid}` was already used for a different request"),
                    format!("请求ID `{rid}` 已用于其他请求"),
                ))
            }
            Some(IdemState::Pending) => return Err(Error::new(ErrorCode::RequestInProgress)),
            None => {}
        }
        shard.insert(rid.to_string(), IdemState::Pending);
        Ok(Claimed::Fresh(Some(IdemClaim { request_id: rid.to_string(), command, fingerprint })))
    }

    /// `true` if a request id has a recorded answer (lets the fast path refuse safely).
    #[inline]
    fn has_answer(&self, request_id: Option<&str>) -> bool {
        match request_id {
            Some(rid) => self.idem.shard(rid).contains_key(rid),
            None => false,
        }
    }

    /// Adds the idempotency row to the transaction, inside its locks.
    pub fn record_answer(&self, claim: &Option<IdemClaim>, answer: &Value, txn: &mut Txn) {
        if let Some(c) = claim {
            if self.store.is_some() {
                let rec = IdemRecord { command: c.command.to_string(), fingerprint: c.fingerprint, answer: answer.clone(), at_ms: self.clock.now_ms() };
                txn.writes.push(Write::put(Table::Idempotency, c.request_id.clone(), &rec));
            }
        }
    }

    /// Ends a claim: success keeps the answer for retries; failure forgets the id.
    pub fn finish_claim(&self, claim: Option<IdemClaim>, answer: Option<&Value>) {
        if let Some(c) = claim {
            let mut shard = self.idem.shard(&c.request_id);
            match answer {
                Some(a) => {
                    let rec = IdemRecord { command: c.command.to_string(), fingerprint: c.fingerprint, answer: a.clone(), at_ms: self.clock.now_ms() };
                    shard.insert(c.request_id, IdemState::Done(rec));
                }
                None => {
                    shard.remove(&c.request_id);
                }
            }
        }
    }

    /// Re-registers an active booking with its patient (recovery).
    pub fn restore_span(&self, b: &Booking, slot: &Slot) {
        let span = Span { booking: b.id, slot: slot.idx, start_ms: slot.start_ms, end_ms: slot.end_ms, bed: slot.info.kind == SlotKind::Bed };
        self.patients.shard(&b.patient_id).entry(b.patient_id.clone()).or_default().push(span);
    }

    pub fn restore_answer(&self, rid: String, rec: IdemRecord) {
        self.idem.shard(&rid).insert(rid, IdemState::Done(rec));
    }

    /// Hands the transaction's rows to the store, inside the caller's locks.
    pub fn enqueue(&self, txn: &mut Txn) -> Option<Ticket> {
        match &self.store {
            Some(s) if !txn.writes.is_empty() => Some(s.enqueue(std::mem::take(&mut txn.writes))),
            _ => None,
        }
    }

    /// Waits, without locks, until the transaction is durable; then promotes waiters.
    pub fn settle(&self, ticket: Option<Ticket>, promote: Vec<u32>) -> Result<()> {
        if let (Some(s), Some(t)) = (&self.store, ticket) {
            s.wait(t)?;
        }
        for idx in promote {
            self.promote_waiters(idx)?;
        }
        Ok(())
    }

    /// Appends an event to the outbox (and its row to the transaction).
    pub fn emit(&self, txn: &mut Txn, kind: &str, booking: Option<&Booking>, slot_id: Option<&str>, data: Value) {
        let mut ob = self.outbox.lock();
        let seq = ob.next_seq;
        ob.next_seq += 1;
        let ev = Event {
            seq,
            kind: kind.to_string(),
            at_ms: self.clock.now_ms(),
            booking_id: booking.map(|b| format_booking_id(b.id)),
            slot_id: slot_id.map(str::to_string).or_else(|| booking.map(|b| b.slot_id.clone())),
            patient_id: booking.map(|b| b.patient_id.clone()),
            clinic_id: booking.and_then(|b| b.clinic_id.clone()),
            data,
        };
        if self.store.is_some() {
            txn.writes.push(Write::put(Table::Events, format!("{seq:020}"), &ev));
        }
        ob.events.push_back(ev);
    }

    fn put_booking(&self, txn: &mut Txn, b: &Booking) {
        if self.store.is_some() {
            txn.writes.push(Write::put(Table::Bookings, format!("{:020}", b.id), b));
        }
    }

    pub fn put_slot(&self, txn: &mut Txn, slot: &Slot, st: &SlotState) {
        if self.store.is_some() {
            txn.writes.push(Write::put(Table::Slots, slot.info.slot_id.clone(), &st.record(&slot.info)));
        }
    }

    fn put_wait(&self, txn: &mut Txn, w: &WaitEntry) {
        if self.store.is_some() {
            txn.writes.push(Write::put(Table::Waitlist, format!("{:020}", w.id), w));
        }
    }

    pub fn booking(&self, id: u64) -> Result<Booking> {
        self.bookings.shard(&id).get(&id).cloned().ok_or_else(|| Error::not_found(ErrorCode::BookingNotFound, "预约", &format_booking_id(id)))
    }

    // ------------------------------------------------------------ expiry and release

    /// Expires the slot's overdue holds. Call with the slot locked.
    fn sweep(&self, slot: &Slot, st: &mut SlotState, now: Millis, txn: &mut Txn) {
        if !st.holds.iter().any(|h| h.0 <= now) {
            return;
        }
        let (expired, kept): (Vec<_>, Vec<_>) = st.holds.iter().partition(|h| h.0 <= now);
        st.holds = kept;
        for (_, id) in expired {
            let b = {
                let mut shard = self.bookings.shard(&id);
                let Some(b) = shard.get_mut(&id) else { continue };
                b.status = BookingStatus::Expired;
                b.updated_ms = now;
                b.clone()
            };
            st.active.retain(|x| *x != id);
            self.give_back(slot, st, b.used_quota, true, txn);
            self.put_booking(txn, &b);
            self.emit(txn, "hold_expired", Some(&b), None, json!({"reason": "unpaid hold passed its time-to-live"}));
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
            if slot.earliest_expiry.load(Ordering::Acquire) > now {
                continue;
            }
            let mut txn = Txn::default();
            let ticket = {
                let mut st = slot.state.lock();
                let before = st.holds.len();
                self.sweep(slot, &mut st, now, &mut txn);
                count += before - st.holds.len();
                self.enqueue(&mut txn)
            };
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
        respond: &dyn Fn(&Booking, &Slot) -> Value,
    ) -> Result<Value> {
        self.metrics.attempts.add(1);
        let slot = self.slot(r.slot)?;
        // Lock-free refusal first; a request id with an answer must get that answer instead.
        if let Some(code) = slot.fast_refusal(r.priority, self.clock.coarse_now_ms()) {
            if !self.has_answer(request_id) {
                if code == ErrorCode::SlotFull {
                    self.metrics.refused_full.add(1);
                }
                return Err(slot_error(code, &slot));
            }
        }
        let claim = match self.claim(request_id, command, fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = self.reserve_claimed(&slot, r, &claim, respond);
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
                Err(e)
            }
        }
    }

    fn reserve_claimed(
        &self,
        slot: &Slot,
        r: Reserve,
        claim: &Option<IdemClaim>,
        respond: &dyn Fn(&Booking, &Slot) -> Value,
    ) -> Result<(Value, Option<Ticket>, Vec<u32>)> {
        let mut txn = Txn::default();
        let span = Span { booking: 0, slot: slot.idx, start_ms: slot.start_ms, end_ms: slot.end_ms, bed: slot.info.kind == SlotKind::Bed };
        let mut spans = self.patients.shard(&r.patient_id);
        let now = self.clock.now_ms();
        let mine = spans.entry(r.patient_id.clone()).or_default();
        self.check_patient(mine, &span, now, None)?;
        let mut st = slot.state.lock();
        self.sweep(slot, &mut st, now, &mut txn);
        check_bookable(slot, &st, now, r.priority)?;
        let id = self.next_booking.fetch_add(1, Ordering::Relaxed);
        let used_quota = r.priority.uses_quota() && st.free_for(Priority::Normal) == 0;
        let b = Booking {
            id,
            slot_id: slot.info.slot_id.clone(),
            patient_id: r.patient_id.clone(),
            clinic_id: r.clinic_id,
            priority: r.priority,
            status: if r.hold { BookingStatus::PreBooked } else { BookingStatus::Booked },
            payment: PaymentStatus::Unpaid,
            hold_expires_ms: r.hold.then_some(now + self.cfg.hold_ttl_ms),
            used_quota,
            created_ms: now,
            updated_ms: now,
            cancel_reason: None,
            moves: Vec::new(),
            expected_date: r.expected_date,
            reason: r.reason,
            project_id: r.project_id.filter(|_| slot.info.project_id.is_none()),
            waitlist_id: None,
        };
        if r.hold {
            st.held += 1;
            st.holds.push((now + self.cfg.hold_ttl_ms, id));
        } else {
            st.booked += 1;
        }
        if used_quota {
            st.quota_used += 1;
        }
        st.active.push(id);
        slot.publish(&st);
        mine.push(Span { booking: id, ..span });
        if let Some(info) = r.patient {
            if self.store.is_some() {
                txn.writes.push(Write::put(Table::Patients, r.patient_id.clone(), &PatientRecord { patient_id: r.patient_id.clone(), info: info.clone() }));
            }
            self.patient_info.shard(&r.patient_id).insert(r.patient_id.clone(), info);
        }
        self.put_booking(&mut txn, &b);
        let answer = respond(&b, slot);
        self.bookings.shard(&id).insert(id, b.clone());
        let kind = if r.hold { "booking_held" } else { "booking_made" };
        self.emit(&mut txn, kind, Some(&b), None, json!({"status": b.status.as_str(), "kind": slot.info.kind.as_str(), "date": slot.info.date.to_string(), "time_slot": slot.info.time_slot()}));
        self.record_answer(claim, &answer, &mut txn);
        let ticket = self.enqueue(&mut txn);
        drop(st);
        drop(spans);
        Ok((answer, ticket, txn.promote))
    }

    /// P6: one booking per slot per patient, and no overlapping times.
    fn check_patient(&self, spans: &mut Vec<Span>, new: &Span, now: Millis, ignore: Option<u64>) -> Result<()> {
        // Drop spans whose booking ended (cancelled, expired): cleaned lazily here.
        spans.retain(|s| {
            let shard = self.bookings.shard(&s.booking);
            match shard.get(&s.booking) {
                Some(b) => b.status.is_active() && !(b.status == BookingStatus::PreBooked && b.hold_expires_ms.is_some_and(|e| e <= now)),
                None => false,
            }
        });
        for s in spans.iter() {
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
        f: &mut dyn FnMut(&Pool, &Slot, &mut SlotState, &mut Booking, &mut Txn, Millis) -> Result<Value>,
    ) -> Result<Value> {
        let claim = match self.claim(request_id, command, fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = (|| {
            loop {
                let slot_id = self.booking(id)?.slot_id;
                let slot = self.slot_by_id(&slot_id)?;
                let mut txn = Txn::default();
                let mut st = slot.state.lock();
                let now = self.clock.now_ms();
                self.sweep(&slot, &mut st, now, &mut txn);
                let mut b = self.booking(id)?;
                if b.slot_id != slot_id {
                    // Moved by a concurrent change: lock the new slot instead.
                    continue;
                }
                if !actor.may_touch(&b) {
                    return Err(forbidden());
                }
                let answer = f(self, &slot, &mut st, &mut b, &mut txn, now)?;
                b.updated_ms = now;
                self.put_booking(&mut txn, &b);
                self.bookings.shard(&id).insert(id, b);
                slot.publish(&st);
                self.record_answer(&claim, &answer, &mut txn);
                let ticket = self.enqueue(&mut txn);
                drop(st);
                return Ok((answer, ticket, txn.promote));
            }
        })();
        self.finish_txn(claim, result)
    }

    pub fn finish_txn(&self, claim: Option<IdemClaim>, result: Result<(Value, Option<Ticket>, Vec<u32>)>) -> Result<Value> {
        match result {
            Ok((answer, ticket, promote)) => {
                let settled = self.settle(ticket, promote);
                self.finish_claim(claim, settled.is_ok().then_some(&answer));
                settled.map(|_| answer)
            }
            Err(e) => {
                self.finish_claim(claim, None);
                Err(e)
            }
        }
    }

    /// Cancels an active booking and returns its place. Slot locked by the caller.
    pub fn cancel_locked(&self, slot: &Slot, st: &mut SlotState, b: &mut Booking, reason: &str, now: Millis, txn: &mut Txn) -> Result<()> {
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
        st.active.retain(|x| *x != b.id);
        if was_hold {
            st.holds.retain(|h| h.1 != b.id);
        }
        b.status = BookingStatus::Cancelled;
        b.cancel_reason = Some(reason.to_string());
        b.hold_expires_ms = None;
        b.updated_ms = now;
        self.give_back(slot, st, b.used_quota, was_hold, txn);
        slot.publish(st);
        self.emit(txn, "booking_cancelled", Some(b), None, json!({"reason": reason}));
        Ok(())
    }

    /// Turns a hold into a booking (confirmation or payment).
    pub fn confirm_locked(&self, slot: &Slot, st: &mut SlotState, b: &mut Booking, now: Millis, txn: &mut Txn, via: &str) -> Result<bool> {
        match b.status {
            BookingStatus::PreBooked => {
                if b.hold_expires_ms.is_some_and(|e| e <= now) {
                    return Err(Error::new(ErrorCode::HoldExpired));
                }
                st.holds.retain(|h| h.1 != b.id);
                st.held -= 1;
                st.booked += 1;
                b.status = BookingStatus::Booked;
                b.hold_expires_ms = None;
                slot.publish(st);
                self.emit(txn, "booking_confirmed", Some(b), None, json!({"via": via}));
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
    pub fn change(&self, id: u64, target: u32, actor: &Actor, reason: &str, request_id: Option<&str>, fingerprint: u64, respond: &dyn Fn(&Booking, &Slot) -> Value) -> Result<Value> {
        let claim = match self.claim(request_id, "change-booking", fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = self.move_booking(id, target, Some(actor), reason, &claim, respond, "booking_changed");
        self.finish_txn(claim, result)
    }

    pub fn move_booking(
        &self,
        id: u64,
        target: u32,
        actor: Option<&Actor>,
        reason: &str,
        claim: &Option<IdemClaim>,
        respond: &dyn Fn(&Booking, &Slot) -> Value,
        event: &str,
    ) -> Result<(Value, Option<Ticket>, Vec<u32>)> {
        let to = self.slot(target)?;
        loop {
            let current = self.booking(id)?;
            let from = self.slot_by_id(&current.slot_id)?;
            if from.idx == to.idx {
                return Err(Error::with(ErrorCode::InvalidField, "the booking is already on that slot", "预约已在该号源上"));
            }
            let mut txn = Txn::default();
            let mut spans = self.patients.shard(&current.patient_id);
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
            if b.slot_id != from.info.slot_id {
                continue;
            }
            if let Some(a) = actor {
                if !a.may_touch(&b) {
                    return Err(forbidden());
                }
            }
            if !b.status.is_active() || b.status == BookingStatus::Occupied {
                return Err(state_error(&b));
            }
            if to.info.kind != from.info.kind {
                return Err(Error::invalid("slot", "a booking moves only to a slot of the same kind"));
            }
            let new_span = Span { booking: 0, slot: to.idx, start_ms: to.start_ms, end_ms: to.end_ms, bed: to.info.kind == SlotKind::Bed };
            let mine = spans.entry(b.patient_id.clone()).or_default();
            self.check_patient(mine, &new_span, now, Some(id))?;
            check_bookable(&to, &stt, now, b.priority)?;
            // Take the new place first, then give the old one back.
            let was_hold = b.status == BookingStatus::PreBooked;
            let new_quota = b.priority.uses_quota() && stt.free_for(Priority::Normal) == 0;
            if was_hold {
                stt.held += 1;
                let exp = b.hold_expires_ms.unwrap_or(now + self.cfg.hold_ttl_ms);
                stt.holds.push((exp, id));
                sf.holds.retain(|h| h.1 != id);
            } else {
                stt.booked += 1;
            }
            if new_quota {
                stt.quota_used += 1;
            }
            stt.active.push(id);
            sf.active.retain(|x| *x != id);
            self.give_back(&from, &mut sf, b.used_quota, was_hold, &mut txn);
            b.used_quota = new_quota;
            b.moves.push(SlotMove { from_slot: from.info.slot_id.clone(), to_slot: to.info.slot_id.clone(), at_ms: now, reason: reason.to_string() });
            b.slot_id = to.info.slot_id.clone();
            b.updated_ms = now;
            from.publish(&sf);
            to.publish(&stt);
            mine.retain(|s| s.booking != id);
            mine.push(Span { booking: id, ..new_span });
            self.put_booking(&mut txn, &b);
            let answer = respond(&b, &to);
            self.bookings.shard(&id).insert(id, b.clone());
            self.emit(&mut txn, event, Some(&b), None, json!({"from_slot": from.info.slot_id, "to_slot": to.info.slot_id, "reason": reason}));
            self.record_answer(claim, &answer, &mut txn);
            let ticket = self.enqueue(&mut txn);
            return Ok((answer, ticket, txn.promote));
        }
    }

    // ------------------------------------------------------------ waitlist (P7)

    pub fn join_waitlist(&self, slot_idx: u32, patient_id: &str, clinic_id: Option<String>, priority: Priority, request_id: Option<&str>, fingerprint: u64) -> Result<Value> {
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
            let w = WaitEntry { id, slot_id: slot.info.slot_id.clone(), patient_id: patient_id.to_string(), clinic_id, priority, raised: false, joined_ms: now, status: WaitStatus::Waiting, booking_id: None };
            let position = queue_position(&st.waitlist, &w) + 1;
            st.waitlist.push(w.clone());
            slot.publish(&st);
            self.waitlist_slot.shard(&id).insert(id, slot.idx);
            self.put_wait(&mut txn, &w);
            let answer = json!({"waitlist_id": format_waitlist_id(id), "slot_id": slot.info.slot_id, "patient_id": patient_id, "priority": priority.as_str(), "position": position, "status": "waiting"});
            self.emit(&mut txn, "waitlist_joined", None, Some(&slot.info.slot_id), json!({"waitlist_id": format_waitlist_id(id), "patient_id": patient_id, "position": position}));
            self.record_answer(&claim, &answer, &mut txn);
            let ticket = self.enqueue(&mut txn);
            Ok((answer, ticket, txn.promote))
        })();
        self.finish_txn(claim, result)
    }

    pub fn leave_waitlist(&self, wid: u64, actor: &Actor, request_id: Option<&str>, fingerprint: u64) -> Result<Value> {
        let claim = match self.claim(request_id, "waitlist-leave", fingerprint)? {
            Claimed::Replay(v) => return Ok(v),
            Claimed::Fresh(c) => c,
        };
        let result = (|| {
            let not_found = || Error::not_found(ErrorCode::WaitlistEntryNotFound, "候补", &format_waitlist_id(wid));
            let idx = *self.waitlist_slot.shard(&wid).get(&wid).ok_or_else(not_found)?;
            let slot = self.slot(idx)?;
            let mut txn = Txn::default();
            let mut st = slot.state.lock();
            let pos = st.waitlist.iter().position(|w| w.id == wid).ok_or_else(not_found)?;
            if actor.community && st.waitlist[pos].clinic_id != actor.institution {
                return Err(forbidden());
            }
            let mut w = st.waitlist.remove(pos);
            w.status = WaitStatus::Left;
            // A place set aside for the waitlist goes back to the pool when nobody waits.
            release_unclaimed_set_aside(&mut st);
            slot.publish(&st);
            self.waitlist_slot.shard(&wid).remove(&wid);
            self.put_wait(&mut txn, &w);
            let answer = json!({"waitlist_id": format_waitlist_id(wid), "status": "left"});
            self.emit(&mut txn, "waitlist_left", None, Some(&slot.info.slot_id), json!({"waitlist_id": format_waitlist_id(wid), "patient_id": w.patient_id}));
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
            let mut spans = self.patients.shard(&patient);
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
            let span = Span { booking: 0, slot: slot.idx, start_ms: slot.start_ms, end_ms: slot.end_ms, bed: slot.info.kind == SlotKind::Bed };
            let mine = spans.entry(patient.clone()).or_default();
            self.waitlist_slot.shard(&wid).remove(&wid);
            if self.check_patient(mine, &span, now, None).is_err() || now >= slot.start_ms {
                w.status = WaitStatus::Skipped;
                self.put_wait(&mut txn, &w);
                self.emit(&mut txn, "waitlist_skipped", None, Some(&slot.info.slot_id), json!({"waitlist_id": format_waitlist_id(wid), "patient_id": patient, "reason": "overlapping booking or slot already started"}));
            } else {
                let id = self.next_booking.fetch_add(1, Ordering::Relaxed);
                st.set_aside -= 1; // the set-aside place becomes this hold (still counted in `held`)
                st.holds.push((now + self.cfg.hold_ttl_ms, id));
                let used_quota = w.priority.uses_quota() && st.free_for(Priority::Normal) == 0 && st.unused_quota() > 0;
                if used_quota {
                    st.quota_used += 1;
                }
                st.active.push(id);
                let b = Booking {
                    id,
                    slot_id: slot.info.slot_id.clone(),
                    patient_id: patient.clone(),
                    clinic_id: w.clinic_id.clone(),
                    priority: w.priority,
                    status: BookingStatus::PreBooked,
                    payment: PaymentStatus::Unpaid,
                    hold_expires_ms: Some(now + self.cfg.hold_ttl_ms),
                    used_quota,
                    created_ms: now,
                    updated_ms: now,
                    cancel_reason: None,
                    moves: Vec::new(),
                    expected_date: None,
                    reason: None,
                    project_id: None,
                    waitlist_id: Some(wid),
                };
                mine.push(Span { booking: id, ..span });
                w.status = WaitStatus::Promoted;
                w.booking_id = Some(id);
                self.put_wait(&mut txn, &w);
                self.put_booking(&mut txn, &b);
                self.bookings.shard(&id).insert(id, b.clone());
                self.emit(&mut txn, "waitlist_promoted", Some(&b), None, json!({"waitlist_id": format_waitlist_id(wid), "hold_expires_at": crate::clock::format_ms(now + self.cfg.hold_ttl_ms, &self.cfg.tz)}));
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
            if !w.raised && w.priority > Priority::Referral && now - w.joined_ms >= limit {
                w.raised = true;
            }
        }
    }

    // ------------------------------------------------------------ outbox (I3)

    /// Drops events up to `ack`, then returns up to `limit` of the rest.
    pub fn next_events(&self, ack: Option<u64>, limit: usize) -> Result<(Vec<Event>, u64)> {
        let mut txn = Txn::default();
        let ticket;
        let out;
        let pending;
        {
            let mut ob = self.outbox.lock();
            if let Some(ack) = ack {
                while ob.events.front().is_some_and(|e| e.seq <= ack) {
                    let e = ob.events.pop_front().expect("front checked");
                    if self.store.is_some() {
                        txn.writes.push(Write::delete(Table::Events, format!("{:020}", e.seq)));
                    }
                }
                if self.store.is_some() {
                    // Keeps sequence numbers rising after every event was drained.
                    txn.writes.push(Write { table: Table::Meta, key: "events_acked_through".into(), body: Some(ack.min(ob.next_seq - 1).to_string()) });
                }
            }
            out = ob.events.iter().take(limit).cloned().collect::<Vec<_>>();
            pending = ob.events.len() as u64;
            ticket = self.enqueue(&mut txn);
        }
        self.settle(ticket, Vec::new())?;
        Ok((out, pending))
    }

    pub fn actor(&self, request_institution: Option<&str>) -> Actor {
        match self.cfg.role {
            Role::Community => Actor { institution: self.cfg.institution_id.clone(), community: true },
            _ => match request_institution {
                Some(i) if !self.catalog.is_hospital(i) => Actor { institution: Some(i.to_string()), community: true },
                Some(i) => Actor { institution: Some(i.to_string()), community: false },
                None => Actor { institution: self.cfg.institution_id.clone(), community: false },
            },
        }
    }
}

fn queue_position(list: &[WaitEntry], w: &WaitEntry) -> usize {
    list.iter().filter(|o| o.status == WaitStatus::Waiting && (o.effective_rank() > w.effective_rank() || (o.effective_rank() == w.effective_rank() && o.id < w.id))).count()
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

/// The checks every new place goes through. Slot locked by the caller.
pub(crate) fn check_bookable(slot: &Slot, st: &SlotState, now: Millis, p: Priority) -> Result<()> {
    if st.closed {
        return Err(slot_error(ErrorCode::SlotClosed, slot));
    }
    if slot.info.kind != SlotKind::Bed && now >= slot.start_ms {
        return Err(slot_error(ErrorCode::SlotInPast, slot));
    }
    if now < slot.opens_ms {
        return Err(slot_error(ErrorCode::SlotNotReleased, slot));
    }
    if st.free_for(p) == 0 {
        return Err(slot_error(ErrorCode::SlotFull, slot));
    }
    Ok(())
}

pub(crate) fn slot_error(code: ErrorCode, slot: &Slot) -> Error {
    let id = &slot.info.slot_id;
    Error::with(code, format!("{}: slot {id}", code.default_message()), format!("{}：号源 {id}", code.default_message_zh()))
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
