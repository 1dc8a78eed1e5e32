//! A patient's booked time spans (P6: no two overlapping bookings).

use super::*;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(super) booking: u64,
    pub(super) slot: u32,
    pub(super) start_ms: Millis,
    pub(super) end_ms: Millis,
    pub(super) bed: bool,
}

impl Span {
    pub(super) fn overlaps(&self, o: &Span) -> bool {
        if self.bed || o.bed {
            // A patient holds one bed at a time; beds do not block outpatient visits.
            return self.bed && o.bed;
        }
        self.start_ms < o.end_ms && o.start_ms < self.end_ms
    }
}

/// A patient's active spans: most patients have one, kept without a heap allocation.
#[derive(Debug, Clone, Default)]
pub(crate) enum Spans {
    #[default]
    Empty,
    One(Span),
    Many(Vec<Span>),
}

impl Spans {
    pub fn push(&mut self, s: Span) {
        match self {
            Spans::Empty => *self = Spans::One(s),
            Spans::One(a) => *self = Spans::Many(vec![*a, s]),
            Spans::Many(v) => v.push(s),
        }
    }
    pub fn retain(&mut self, mut f: impl FnMut(&Span) -> bool) {
        match self {
            Spans::Empty => {}
            Spans::One(a) => {
                if !f(a) {
                    *self = Spans::Empty;
                }
            }
            Spans::Many(v) => {
                v.retain(|s| f(s));
                if v.is_empty() {
                    *self = Spans::Empty;
                }
            }
        }
    }
    pub fn as_slice(&self) -> &[Span] {
        match self {
            Spans::Empty => &[],
            Spans::One(a) => std::slice::from_ref(a),
            Spans::Many(v) => v,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}
