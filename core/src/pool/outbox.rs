//! The outbox of events (I3), striped by thread, and the pool's counters.

use super::*;

/// This thread's stripe number (threads take consecutive numbers).
#[inline]
fn thread_stripe() -> usize {
    thread_local!(static STRIPE: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) as usize
    });
    STRIPE.with(|s| *s)
}

const OUTBOX_STRIPES: usize = 8;

/// The outbox, striped by thread so that writers do not share a lock. A
/// sequence number is taken under the stripe's lock, so each stripe is in
/// sequence order and a reader holding every stripe sees every numbered event.
pub(crate) struct Outbox {
    pub counters: CachePadded<Counters>,
    pub(super) stripes: Box<[CachePadded<Mutex<VecDeque<Event>>>]>,
}

impl Outbox {
    pub fn new(next_seq: u64, events: VecDeque<Event>) -> Outbox {
        let mut stripes: Vec<CachePadded<Mutex<VecDeque<Event>>>> = (0..OUTBOX_STRIPES).map(|_| CachePadded::new(Mutex::new(VecDeque::new()))).collect();
        stripes[0] = CachePadded::new(Mutex::new(events));
        Outbox { counters: CachePadded::new(Counters { next_seq: AtomicU64::new(next_seq), next_booking: AtomicU64::new(1) }), stripes: stripes.into() }
    }

    /// Replaces the content (recovery).
    pub fn reset(&self, next_seq: u64, events: VecDeque<Event>) {
        let mut all: Vec<_> = self.stripes.iter().map(|s| s.lock()).collect();
        for s in all.iter_mut() {
            s.clear();
        }
        *all[0] = events;
        self.counters.next_seq.store(next_seq, Ordering::Release);
    }

    /// Numbers the event and appends it; `row` sees it numbered, under the lock.
    pub(super) fn push(&self, mut ev: Event, row: impl FnOnce(&Event)) {
        let mut q = self.stripes[thread_stripe() % OUTBOX_STRIPES].lock();
        ev.seq = self.counters.next_seq.fetch_add(1, Ordering::AcqRel);
        row(&ev);
        q.push_back(ev);
    }
}

/// The two pool-wide sequences every new booking takes from, in one cache
/// line: a hold takes a booking id and then an event number, so the line moves
/// between cores once per hold instead of twice (and no other pool field
/// shares it).
pub(crate) struct Counters {
    pub next_seq: AtomicU64,
    pub next_booking: AtomicU64,
}

/// Counters for P9's success rate, striped so that threads do not share a line.
pub(crate) struct Striped {
    pub(super) cells: Box<[CachePadded<AtomicU64>]>,
}

impl Striped {
    pub(super) fn new() -> Self {
        Striped { cells: (0..16).map(|_| CachePadded::new(AtomicU64::new(0))).collect() }
    }
    #[inline]
    pub(super) fn add(&self, n: u64) {
        let i = thread_stripe() % self.cells.len();
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
    /// Attempts refused as full on the lock-free path (counted in both totals).
    pub attempts_refused_full: Striped,
}

impl Metrics {
    pub fn total_attempts(&self) -> u64 {
        self.attempts.get() + self.attempts_refused_full.get()
    }
    pub fn total_refused_full(&self) -> u64 {
        self.refused_full.get() + self.attempts_refused_full.get()
    }
    /// The counters as stored in the `meta` table (P9: they outlive restarts).
    pub fn row(&self) -> Write {
        let v = serde_json::json!({"attempts": self.total_attempts(), "successes": self.successes.get(), "refused_full": self.total_refused_full()});
        Write { table: crate::pool::tables::META, key: METRICS_KEY.into(), body: Some(v.to_string()), fresh: false }
    }
    /// Adds the counters of a stored row (recovery).
    pub fn restore(&self, body: &str) {
        let v: Value = serde_json::from_str(body).unwrap_or_default();
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        // Refusals are kept in the full-refusal cell, which counts in both totals.
        self.attempts_refused_full.add(n("refused_full"));
        self.attempts.add(n("attempts").saturating_sub(n("refused_full")));
        self.successes.add(n("successes"));
    }
}

/// The `meta` row holding the statistics counters.
pub(crate) const METRICS_KEY: &str = "metrics_counters";
/// Durable transactions between two writes of the counters: a crash loses
/// at most the counts of this many transactions (and of the refusals between).
pub(super) const METRICS_EVERY: u64 = 1024;
