//! Slots: their state under one mutex each, the packed hint words that answer
//! refusals without a lock, and the directory that finds a slot by index.

use super::*;

const INLINE: usize = 4;

/// An ordered set kept inline while small (most slots hold a few places), so
/// the slot's lock and its holds share the slot's memory; a B-tree beyond that.
#[derive(Debug, Clone)]
pub(crate) enum SmallSet<T: Ord + Copy + Default> {
    Inline { len: u8, items: [T; INLINE] },
    Tree(BTreeSet<T>),
}

impl<T: Ord + Copy + Default> Default for SmallSet<T> {
    fn default() -> Self {
        SmallSet::Inline { len: 0, items: [T::default(); INLINE] }
    }
}

impl<T: Ord + Copy + Default> SmallSet<T> {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        match self {
            SmallSet::Inline { len, .. } => *len as usize,
            SmallSet::Tree(t) => t.len(),
        }
    }
    pub fn first(&self) -> Option<&T> {
        match self {
            SmallSet::Inline { len, items } => items[..*len as usize].first(),
            SmallSet::Tree(t) => t.first(),
        }
    }
    pub fn contains(&self, x: &T) -> bool {
        match self {
            SmallSet::Inline { len, items } => items[..*len as usize].contains(x),
            SmallSet::Tree(t) => t.contains(x),
        }
    }
    pub fn insert(&mut self, x: T) -> bool {
        match self {
            SmallSet::Inline { len, items } => {
                let n = *len as usize;
                let pos = match items[..n].binary_search(&x) {
                    Ok(_) => return false,
                    Err(p) => p,
                };
                if n < INLINE {
                    items.copy_within(pos..n, pos + 1);
                    items[pos] = x;
                    *len += 1;
                } else {
                    let mut t: BTreeSet<T> = items.iter().copied().collect();
                    t.insert(x);
                    *self = SmallSet::Tree(t);
                }
                true
            }
            SmallSet::Tree(t) => t.insert(x),
        }
    }
    pub fn remove(&mut self, x: &T) -> bool {
        match self {
            SmallSet::Inline { len, items } => {
                let n = *len as usize;
                match items[..n].binary_search(x) {
                    Ok(p) => {
                        items.copy_within(p + 1..n, p);
                        *len -= 1;
                        true
                    }
                    Err(_) => false,
                }
            }
            SmallSet::Tree(t) => t.remove(x),
        }
    }
    /// How many members are `<= x`.
    pub fn count_le(&self, x: &T) -> usize {
        match self {
            SmallSet::Inline { len, items } => items[..*len as usize].iter().filter(|i| *i <= x).count(),
            SmallSet::Tree(t) => t.range(..=*x).count(),
        }
    }
    pub fn iter(&self) -> Box<dyn Iterator<Item = &T> + '_> {
        match self {
            SmallSet::Inline { len, items } => Box::new(items[..*len as usize].iter()),
            SmallSet::Tree(t) => Box::new(t.iter()),
        }
    }
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().copied().collect()
    }
}

/// The mutable part of a slot, under its mutex. Counters first, then the
/// hold and booking sets, then what a hold never reads (see `Slot`).
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct SlotState {
    pub capacity: u32,
    pub reserved_quota: u32,
    pub booked: u32,
    /// Holds, plus places set aside for waitlist promotion.
    pub held: u32,
    pub quota_used: u32,
    /// Places freed while patients waited, kept for the waitlist (counted in `held`).
    pub set_aside: u32,
    pub closed: bool,
    /// Active holds by (expiry, booking id): the earliest is first.
    pub holds: SmallSet<(Millis, u64)>,
    /// Every active booking on the slot (holds included), in booking order.
    pub active: SmallSet<u64>,
    /// Waiting entries only, in arrival order.
    pub waitlist: Vec<WaitEntry>,
    pub closed_reason: Option<String>,
    /// A closing that still has bookings to cancel or move (see `SlotRecord::closing`).
    pub closing: Option<crate::model::StopServiceAction>,
    /// Counted in `booked` and `quota_used` without a booking in `active`:
    /// bookings retired past the retention window (`pool/retire.rs`).
    pub retired: crate::model::Retained,
}

impl SlotState {
    pub fn remaining(&self) -> u32 {
        self.capacity.saturating_sub(self.booked + self.held)
    }
    pub(super) fn unused_quota(&self) -> u32 {
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
    pub(super) fn record(&self, info: &SlotInfo) -> SlotRecord {
        SlotRecord {
            info: info.clone(),
            capacity: self.capacity,
            reserved_quota: self.reserved_quota,
            closed: self.closed,
            closed_reason: self.closed_reason.clone(),
            closing: self.closing,
            retired: self.retired,
        }
    }
}

/// Fields in declaration order: what every hold, confirm and release reads
/// (the hint's place, the times, the lock and its counters) comes first, so
/// it spans as few cache lines as it can; the descriptive fields follow.
#[repr(C)]
pub(crate) struct Slot {
    /// The slot's hint word, in the pool's compact hint table (away from the
    /// slot's mutex, so refusals do not contend with holders of the lock).
    pub(super) hint_seg: Arc<[AtomicU64]>,
    pub(super) hint_pos: u32,
    pub idx: u32,
    pub start_ms: Millis,
    pub end_ms: Millis,
    /// When the release window opens this slot to community booking.
    pub opens_ms: Millis,
    /// `info.kind == SlotKind::Bed`, beside the other fields a hold reads.
    pub bed: bool,
    pub state: Mutex<SlotState>,
    /// `info.slot_id`, shared with the slot's bookings and events.
    pub id: Arc<str>,
    /// `info.date` and `info.time_slot()` as shown, formatted once.
    pub date_str: Box<str>,
    pub time_slot: Box<str>,
    pub info: SlotInfo,
    /// A registration slot's visit-number sequence: its doctor's day, shared
    /// with the day's other windows (`None` for exams and beds).
    pub visits: Option<Arc<super::VisitQueue>>,
}

// The hint word: valid, closed, full for normal patients, full for every
// class, and the earliest hold expiry (a "full" hint is only trusted while no
// hold may have expired). One word, so readers see all of it at once.
const HINT_VALID: u64 = 1 << 63;
const HINT_CLOSED: u64 = 1;
const HINT_FULL_NORMAL: u64 = 2;
const HINT_FULL_ANY: u64 = 4;
const HINT_EXPIRY_MAX: u64 = (1 << 60) - 1;

#[inline]
fn hint_expiry(w: u64) -> Millis {
    let e = (w >> 3) & HINT_EXPIRY_MAX;
    if e == HINT_EXPIRY_MAX {
        i64::MAX
    } else {
        e as Millis
    }
}

/// The lock-free refusal from a hint word: `Some` only when the answer cannot be anything else.
#[inline]
pub(super) fn refusal_of(w: u64, p: Priority, coarse_now: impl FnOnce() -> Millis) -> Option<ErrorCode> {
    if w & HINT_VALID == 0 {
        return None;
    }
    if w & HINT_CLOSED != 0 {
        return Some(ErrorCode::SlotClosed);
    }
    let full = w & if p.uses_quota() { HINT_FULL_ANY } else { HINT_FULL_NORMAL } != 0;
    // A hold expiring soon may free a place: only trust "full" well before that.
    if full && coarse_now() + 50 < hint_expiry(w) {
        return Some(ErrorCode::SlotFull);
    }
    None
}

/// Every slot by index, for the hot path. Slots are only ever appended to the
/// table (a sync publishes a copy with more), so a slot once published stays
/// at its index: a lookup is two atomic loads, with no table snapshot taken.
pub(crate) struct SlotDirectory {
    pub(super) segs: Box<[std::sync::OnceLock<DirectorySegment>]>,
}

type DirectorySegment = Box<[std::sync::OnceLock<Arc<Slot>>]>;

impl SlotDirectory {
    pub(super) fn new() -> Self {
        SlotDirectory { segs: (0..HTOP).map(|_| std::sync::OnceLock::new()).collect() }
    }
    #[inline]
    pub(super) fn get(&self, idx: u32) -> Option<&Slot> {
        self.segs.get((idx >> HSEG_BITS) as usize)?.get()?[idx as usize & (HSEG - 1)].get().map(|s| &**s)
    }
    pub(super) fn publish(&self, slot: &Arc<Slot>) {
        let seg = (slot.idx >> HSEG_BITS) as usize;
        assert!(seg < HTOP, "slot index {} beyond the slot directory", slot.idx);
        let cells = self.segs[seg].get_or_init(|| (0..HSEG).map(|_| std::sync::OnceLock::new()).collect());
        let _ = cells[slot.idx as usize & (HSEG - 1)].set(slot.clone());
    }
}

const HSEG_BITS: u32 = 12;
const HSEG: usize = 1 << HSEG_BITS;
const HTOP: usize = 1 << 10;

/// Every slot's hint word, by slot index, in segments of 4096 words. Within a
/// segment neighbouring slots sit on different cache lines (the hottest slots
/// are often neighbours), yet the whole table of a large pool stays small.
pub(crate) struct HintTable {
    pub(super) segs: Box<[std::sync::OnceLock<Arc<[AtomicU64]>>]>,
}

impl HintTable {
    pub(super) fn new() -> Self {
        HintTable { segs: (0..HTOP).map(|_| std::sync::OnceLock::new()).collect() }
    }
    #[inline]
    pub(super) fn pos(idx: u32) -> usize {
        let off = idx as usize & (HSEG - 1);
        (off % (HSEG / 8)) * 8 + off / (HSEG / 8)
    }
    pub(super) fn seg_for(&self, idx: u32) -> (Arc<[AtomicU64]>, u32) {
        let seg = (idx >> HSEG_BITS) as usize;
        assert!(seg < HTOP, "slot index {idx} beyond the hint table");
        let s = self.segs[seg].get_or_init(|| (0..HSEG).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into());
        (s.clone(), Self::pos(idx) as u32)
    }
    #[inline]
    pub(super) fn word(&self, idx: u32) -> u64 {
        match self.segs.get((idx >> HSEG_BITS) as usize).and_then(|s| s.get()) {
            Some(s) => s[Self::pos(idx)].load(Ordering::Acquire),
            None => 0,
        }
    }
}

impl Slot {
    #[inline]
    pub(super) fn hint(&self) -> &AtomicU64 {
        &self.hint_seg[self.hint_pos as usize]
    }

    pub(super) fn earliest_expiry(&self) -> Millis {
        hint_expiry(self.hint().load(Ordering::Acquire))
    }

    pub fn publish(&self, st: &SlotState) {
        let e = st.holds.first().map_or(i64::MAX, |h| h.0);
        let e = if e == i64::MAX { HINT_EXPIRY_MAX } else { (e.max(0) as u64).min(HINT_EXPIRY_MAX - 1) };
        let w = HINT_VALID
            | (e << 3)
            | if st.closed { HINT_CLOSED } else { 0 }
            | if st.free_for(Priority::Normal) == 0 { HINT_FULL_NORMAL } else { 0 }
            | if st.remaining() == 0 { HINT_FULL_ANY } else { 0 };
        // An unchanged hint is not written: a write would take the line away from readers.
        if self.hint().load(Ordering::Relaxed) != w {
            self.hint().store(w, Ordering::Release);
        }
    }

    /// Re-publishes the hint from the current state (after recovery).
    pub fn publish_now(&self) {
        let st = self.state.lock();
        self.publish(&st);
    }

    /// The lock-free refusal: `Some` only when the answer cannot be anything else.
    #[inline]
    pub(super) fn fast_refusal(&self, p: Priority, coarse_now: impl FnOnce() -> Millis) -> Option<ErrorCode> {
        refusal_of(self.hint().load(Ordering::Acquire), p, coarse_now)
    }

    pub fn availability(&self, st: &SlotState, now: Millis, cfg: &Config) -> Availability {
        // Queries never change state: holds past their expiry are simply not counted.
        let expired = st.holds.count_le(&(now, u64::MAX)) as u32;
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
