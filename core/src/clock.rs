//! The engine's clock. Domain code asks the engine for "now" and never reads
//! the system time itself, so tests can start at any instant and move time.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

#[derive(Debug)]
pub struct Clock {
    /// Wall time at `origin`, plus any manual advance.
    base_ms: Millis,
    origin: Instant,
    /// The coarse clock's reading at `origin`, when the platform has one.
    origin_coarse_ms: Option<Millis>,
    /// Manual clocks only move through `advance`.
    manual: bool,
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock running in real time from `start` (or from the system time).
    pub fn starting_at(start: Option<Millis>, manual: bool) -> Clock {
        let base_ms = start.unwrap_or_else(|| Utc::now().timestamp_millis());
        Clock { base_ms, origin: Instant::now(), origin_coarse_ms: coarse_monotonic_ms(), manual, offset_ms: AtomicI64::new(0) }
    }

    pub fn now_ms(&self) -> Millis {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        if self.manual {
            self.base_ms + offset
        } else {
            self.base_ms + offset + self.origin.elapsed().as_millis() as Millis
        }
    }

    /// A cheap reading with a few milliseconds' resolution, for the hot path
    /// (an `Instant::now()` costs more than the atomic it guards).
    #[inline]
    pub fn coarse_now_ms(&self) -> Millis {
        if self.manual {
            return self.base_ms + self.offset_ms.load(Ordering::Relaxed);
        }
        match (self.origin_coarse_ms, coarse_monotonic_ms()) {
            (Some(origin), Some(now)) => self.base_ms + self.offset_ms.load(Ordering::Relaxed) + (now - origin),
            _ => self.now_ms(),
        }
    }

    /// Move the clock forward (tests, vectors, replays).
    pub fn advance(&self, ms: Millis) {
        self.offset_ms.fetch_add(ms.max(0), Ordering::Relaxed);
    }

    pub fn is_manual(&self) -> bool {
        self.manual
    }
}

/// Milliseconds on the coarse monotonic clock (a vDSO read of a few ns).
#[cfg(target_os = "linux")]
fn coarse_monotonic_ms() -> Option<Millis> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    // `time_t` and `c_long` are 32 bits on some targets (S2: 32-bit ARM), so the casts stay.
    #[allow(clippy::unnecessary_cast)]
    let ms = ts.tv_sec as i64 * 1000 + ts.tv_nsec as i64 / 1_000_000;
    (rc == 0).then_some(ms)
}

#[cfg(not(target_os = "linux"))]
fn coarse_monotonic_ms() -> Option<Millis> {
    None
}

/// Render an instant in the engine's zone as RFC 3339 (`2024-10-30T09:00:00+08:00`).
pub fn format_ms(ms: Millis, tz: &chrono_tz::Tz) -> String {
    let utc: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    utc.with_timezone(tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::<FixedOffset>::parse_from_rfc3339(s).ok().map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::starting_at(Some(1_000), true);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        assert_eq!(c.coarse_now_ms(), 1_500);
    }

    #[test]
    fn coarse_clock_tracks_real_clock() {
        let c = Clock::starting_at(Some(0), false);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (fine, coarse) = (c.now_ms(), c.coarse_now_ms());
        assert!((fine - coarse).abs() < 25, "fine {fine} coarse {coarse}");
    }
}
