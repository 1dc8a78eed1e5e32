//! The booking table: one lock per booking, in segments that never move.

use super::*;

const BSEG_BITS: u32 = 10;
const BSEG: usize = 1 << BSEG_BITS;
const BTOP: usize = 1 << 18;

/// A booking's cell: its lock and a pointer, 16 bytes. Segments are never
/// freed (a lookup takes no lock and no hash, so nothing tells when a reader
/// is done with one); boxing the booking keeps what a retired booking
/// leaves in a running engine to its empty cell (`retire.rs`), not the
/// 232 bytes of the booking.
type BookingCell = Mutex<Option<Box<Booking>>>;

/// A booking's cell, locked.
pub(crate) type BookingGuard<'a> = MutexGuard<'a, Option<Box<Booking>>>;

/// Bookings by id. Ids are handed out in sequence, so the table is an array
/// of segments allocated on first use: a lookup is an index (no hashing, no
/// probing, no rehash as it grows) and each booking has its own lock.
pub(crate) struct BookingTable {
    pub(super) segs: Box<[std::sync::atomic::AtomicPtr<BookingCell>]>,
}

impl BookingTable {
    pub fn new() -> Self {
        BookingTable { segs: (0..BTOP).map(|_| std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())).collect() }
    }

    #[inline]
    pub(super) fn cell(&self, id: u64) -> Option<&BookingCell> {
        // `try_from`, not `as`: on a 32-bit target `as` would fold a huge id
        // from a request (`B4398046511105`) onto an existing booking.
        let seg = usize::try_from(id >> BSEG_BITS).ok()?;
        let p = self.segs.get(seg)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a published segment points at BSEG cells and lives as long as the table.
        Some(unsafe { &*p.add(id as usize & (BSEG - 1)) })
    }

    fn cell_or_create(&self, id: u64) -> &BookingCell {
        let seg = usize::try_from(id >> BSEG_BITS).unwrap_or(usize::MAX);
        assert!(seg < BTOP, "booking id {id} beyond the booking table");
        let slot = &self.segs[seg];
        let mut p = slot.load(Ordering::Acquire);
        if p.is_null() {
            let fresh: Box<[BookingCell]> = (0..BSEG).map(|_| Mutex::new(None)).collect();
            let fresh = Box::into_raw(fresh) as *mut BookingCell;
            match slot.compare_exchange(std::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => p = fresh,
                Err(existing) => {
                    // SAFETY: `fresh` was never published; rebuild the box to free it.
                    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, BSEG)) });
                    p = existing;
                }
            }
        }
        // SAFETY: as in `cell`.
        unsafe { &*p.add(id as usize & (BSEG - 1)) }
    }

    /// The booking's lock (its content is `None` if there is no such booking).
    #[inline]
    pub fn lock(&self, id: u64) -> Option<BookingGuard<'_>> {
        self.cell(id).map(|c| c.lock())
    }

    pub fn insert(&self, id: u64, b: Booking) {
        self.insert_boxed(id, Box::new(b));
    }

    /// [`insert`](Self::insert) of a booking made in its box (a new
    /// booking: 240 bytes not copied again on the way in).
    pub fn insert_boxed(&self, id: u64, b: Box<Booking>) {
        *self.cell_or_create(id).lock() = Some(b);
    }

    pub fn with<R>(&self, id: u64, f: impl FnOnce(&Booking) -> R) -> Option<R> {
        let g = self.lock(id)?;
        g.as_deref().map(f)
    }

    pub fn for_each(&self, mut f: impl FnMut(&u64, &Booking)) {
        for (si, seg) in self.segs.iter().enumerate() {
            let p = seg.load(Ordering::Acquire);
            if p.is_null() {
                continue;
            }
            for i in 0..BSEG {
                // SAFETY: as in `cell`.
                let cell = unsafe { &*p.add(i) };
                if let Some(b) = cell.lock().as_deref() {
                    f(&(((si << BSEG_BITS) + i) as u64), b);
                }
            }
        }
    }
}

impl Drop for BookingTable {
    fn drop(&mut self) {
        for seg in self.segs.iter() {
            let p = seg.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: each published segment came from a Box<[BookingCell]> of BSEG cells.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, BSEG)) });
            }
        }
    }
}
