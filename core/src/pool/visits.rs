//! Visit numbers (就诊序号) of registration bookings, and the source's rule
//! for referred patients: "转诊病人就诊序号为当前患者后两位" — the referred
//! patient's number is two after the current patient's.
//!
//! One sequence per doctor (or department, when the schedule names no
//! doctor) and day, shared by every window of that day. Every registration
//! booking gets its number when it is made (a hold included), under the
//! slot's lock and then this queue's own lock (a leaf: nothing is locked
//! while it is held), so two bookings of one doctor's day never get the same
//! number, whatever the windows or callers:
//!
//! - a referred patient (priority class `referral`) gets the number two after
//!   the current patient — the last number given out on that day when the
//!   referral is booked; the number between is left for the next patient;
//! - every other booking takes the lowest number free (the one a referral
//!   left, or one a cancelled booking gave back, else the next).
//!
//! A number belongs to an active booking: one that ends (cancelled, expired)
//! or moves to another day gives it back, as a returned registration (退号)
//! does at the hospital; the ended booking keeps it on record. After a
//! restart the sequences are rebuilt from the active bookings' numbers.

use parking_lot::Mutex;

/// The largest number a sequence holds (a recovered row beyond it is not
/// taken back into the sequence).
const MAX_NUMBER: u32 = 1 << 20;

/// One doctor's day: the numbers its active bookings hold, as a bit set
/// (bit `n - 1` for number `n`).
#[derive(Debug, Default)]
pub(crate) struct VisitQueue {
    taken: Mutex<Vec<u64>>,
}

impl VisitQueue {
    /// A number for a new booking, by the rule above.
    pub fn assign(&self, referral: bool) -> u32 {
        let mut t = self.taken.lock();
        let n = if referral { highest(&t) + 2 } else { lowest_free(&t) };
        set(&mut t, n);
        n
    }

    /// A booking that ends gives its number back.
    pub fn give_back(&self, n: u32) {
        let mut t = self.taken.lock();
        let (w, bit) = place(n);
        if let Some(word) = t.get_mut(w) {
            *word &= !bit;
        }
    }

    /// Takes a recovered booking's number back into the sequence; `false`
    /// when another booking holds it already (or it is out of range).
    pub fn restore(&self, n: u32) -> bool {
        if n == 0 || n > MAX_NUMBER {
            return false;
        }
        let mut t = self.taken.lock();
        if is_set(&t, n) {
            return false;
        }
        set(&mut t, n);
        true
    }

    /// The numbers held now, ascending (invariant checks).
    pub fn numbers(&self) -> Vec<u32> {
        let t = self.taken.lock();
        let mut out = Vec::new();
        for (i, w) in t.iter().enumerate() {
            let mut w = *w;
            while w != 0 {
                let b = w.trailing_zeros();
                out.push(i as u32 * 64 + b + 1);
                w &= w - 1;
            }
        }
        out
    }
}

#[inline]
fn place(n: u32) -> (usize, u64) {
    let i = n.saturating_sub(1);
    ((i / 64) as usize, 1u64 << (i % 64))
}

fn is_set(t: &[u64], n: u32) -> bool {
    let (w, bit) = place(n);
    t.get(w).is_some_and(|x| x & bit != 0)
}

fn set(t: &mut Vec<u64>, n: u32) {
    let (w, bit) = place(n);
    if t.len() <= w {
        t.resize(w + 1, 0);
    }
    t[w] |= bit;
}

/// The last number given out (0: none yet).
fn highest(t: &[u64]) -> u32 {
    t.iter().enumerate().rev().find(|(_, w)| **w != 0).map_or(0, |(i, w)| i as u32 * 64 + (64 - w.leading_zeros()))
}

/// The lowest number no active booking holds.
fn lowest_free(t: &[u64]) -> u32 {
    match t.iter().enumerate().find(|(_, w)| **w != u64::MAX) {
        Some((i, w)) => i as u32 * 64 + w.trailing_ones() + 1,
        None => t.len() as u32 * 64 + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_referral_is_numbered_two_after_the_current_patient_and_the_place_between_goes_to_the_next() {
        let q = VisitQueue::default();
        assert_eq!((q.assign(false), q.assign(false), q.assign(false)), (1, 2, 3));
        // The current patient is number 3: the referral is number 5.
        assert_eq!(q.assign(true), 5);
        // The next patient takes the place left between them.
        assert_eq!(q.assign(false), 4);
        assert_eq!(q.assign(false), 6);
        // Two referrals in a row: each two after the last number given out.
        assert_eq!((q.assign(true), q.assign(true)), (8, 10));
        assert_eq!(q.assign(false), 7);
        // Nobody yet: the first referral is number 2, number 1 stays for the next patient.
        let empty = VisitQueue::default();
        assert_eq!((empty.assign(true), empty.assign(false), empty.assign(false)), (2, 1, 3));
    }

    #[test]
    fn a_number_given_back_is_taken_by_the_next_patient_and_restores_refuse_duplicates() {
        let q = VisitQueue::default();
        for _ in 0..70 {
            q.assign(false);
        }
        q.give_back(2);
        q.give_back(65);
        assert_eq!(q.assign(false), 2);
        assert_eq!(q.assign(false), 65);
        assert_eq!(q.assign(false), 71);
        assert!(!q.restore(3), "3 is held");
        assert!(q.restore(100));
        assert_eq!(q.assign(true), 102);
        assert!(!q.restore(0) && !q.restore(u32::MAX));
        assert_eq!(q.numbers().len(), 73);
    }
}
