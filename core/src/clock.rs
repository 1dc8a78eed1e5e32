//! The engine's clock. Domain code asks the engine for "now" and never reads
//! the system time itself, so tests can start at any instant and move time.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// The earliest instant the engine's clock shows: 1970-01-01T00:00:00Z.
pub const MIN_MS: Millis = 0;
/// The latest instant the engine's clock shows: 9999-01-01T00:00:00Z. A year
/// short of what RFC 3339 can write, so an instant plus any bounded duration
/// (a hold's time-to-live, a waitlist's raise, at most 30 days) still can.
pub const MAX_MS: Millis = 253_370_764_800_000;

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

    // Every sum here saturates: the start and the advances are bounded
    // (`MIN_MS..=MAX_MS`), so it never needs to, but a reading must not wrap.
    pub fn now_ms(&self) -> Millis {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        if self.manual {
            self.base_ms.saturating_add(offset)
        } else {
            let elapsed = Millis::try_from(self.origin.elapsed().as_millis()).unwrap_or(Millis::MAX);
            self.base_ms.saturating_add(offset).saturating_add(elapsed)
        }
    }

    /// A cheap reading with a few milliseconds' resolution, for the hot path
    /// (an `Instant::now()` costs more than the atomic it guards).
    #[inline]
    pub fn coarse_now_ms(&self) -> Millis {
        if self.manual {
            return self.base_ms.saturating_add(self.offset_ms.load(Ordering::Relaxed));
        }
        match (self.origin_coarse_ms, coarse_monotonic_ms()) {
            (Some(origin), Some(now)) => self.base_ms.saturating_add(self.offset_ms.load(Ordering::Relaxed)).saturating_add(now.saturating_sub(origin)),
            _ => self.now_ms(),
        }
    }

    /// Moves the clock forward by `ms` (tests, vectors, replays); a negative
    /// `ms` moves nothing. Returns `false`, and moves nothing, when the clock
    /// would pass [`MAX_MS`]. Concurrent advances add up: none is lost and
    /// none wraps, so the clock never runs backwards.
    #[must_use]
    pub fn advance(&self, ms: Millis) -> bool {
        let ms = ms.max(0);
        let base = self.base_ms;
        self.offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| offset.checked_add(ms).filter(|o| base.checked_add(*o).is_some_and(|at| at <= MAX_MS)))
            .is_ok()
    }

    pub fn is_manual(&self) -> bool {
        self.manual
    }
}

/// The refusal of an advance that would take the clock past [`MAX_MS`].
pub fn past_max(field: &str) -> crate::error::Error {
    crate::error::Error::invalid_zh(field, "would move the clock past 9999-01-01T00:00:00Z", "将使时钟超过 `9999-01-01T00:00:00Z`")
}

/// Milliseconds on the coarse monotonic clock (a vDSO read of a few ns).
#[cfg(target_os = "linux")]
fn coarse_monotonic_ms() -> Option<Millis> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    // `time_t` and `c_long` are 32 bits on some targets (S2: 32-bit ARM), so the casts stay.
    #[allow(clippy::unnecessary_cast)]
    let ms = (ts.tv_sec as i64).saturating_mul(1000).saturating_add(ts.tv_nsec as i64 / 1_000_000);
    (rc == 0).then_some(ms)
}

#[cfg(not(target_os = "linux"))]
fn coarse_monotonic_ms() -> Option<Millis> {
    None
}

/// Render an instant in the engine's zone as RFC 3339 (`2024-10-30T09:00:00+08:00`).
pub fn format_ms(ms: Millis, tz: &chrono_tz::Tz) -> String {
    stamp(ms, tz).into()
}

/// [`format_ms`] on the stack (a view's timestamps).
pub(crate) fn stamp(ms: Millis, tz: &chrono_tz::Tz) -> crate::short::Short {
    use crate::short::Short;
    use chrono::{Datelike, Offset, Timelike};
    let utc: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    let local = utc.with_timezone(tz);
    let offset = local.offset().fix().local_minus_utc();
    let t = local.naive_local();
    // Written by hand, the digits as chrono writes them (every booking's
    // view carries two of these); chrono itself for what it writes
    // otherwise: a year past four digits, an offset with seconds.
    let chrono = || Short::new(&local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    let Ok(year) = u32::try_from(t.year()) else { return chrono() };
    if year > 9999 || offset % 60 != 0 {
        return chrono();
    }
    let minutes = offset.unsigned_abs() / 60;
    let mut b = *b"0000-00-00T00:00:00+00:00";
    let mut put = |at: usize, n: u32, width: usize| {
        let mut n = n;
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    put(20, minutes / 60, 2);
    put(23, minutes % 60, 2);
    if offset < 0 {
        b[19] = b'-';
    }
    Short::ascii(&b).unwrap_or_else(chrono)
}

pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::<FixedOffset>::parse_from_rfc3339(s).ok().map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        let zones = [
            chrono_tz::Asia::Shanghai,
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Pacific::Chatham,
            chrono_tz::America::St_Johns,
        ];
        // Every zone's rules over the clock's range, LMT offsets with seconds included.
        let mut ms: i64 = -2_500_000_000_000;
        let mut step: i64 = 1;
        while ms < MAX_MS + 400 * 86_400_000 {
            for tz in &zones {
                let chrono = Utc.timestamp_millis_opt(ms).single().unwrap().with_timezone(tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
                assert_eq!(format_ms(ms, tz), chrono, "{ms} in {tz}");
            }
            ms += 999 + step % 7_919_999_999;
            step = step.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407).abs();
        }
        assert_eq!(format_ms(1_730_163_600_000, &chrono_tz::Asia::Shanghai), "2024-10-29T09:00:00+08:00");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::starting_at(Some(1_000), true);
        assert_eq!(c.now_ms(), 1_000);
        assert!(c.advance(500));
        assert_eq!(c.now_ms(), 1_500);
        assert_eq!(c.coarse_now_ms(), 1_500);
    }

    #[test]
    fn an_advance_past_the_ceiling_moves_nothing_and_none_wraps() {
        let c = Clock::starting_at(Some(1_000), true);
        assert!(!c.advance(Millis::MAX));
        assert!(!c.advance(MAX_MS));
        assert_eq!(c.now_ms(), 1_000);
        assert!(c.advance(MAX_MS - 1_000));
        assert_eq!(c.now_ms(), MAX_MS);
        assert!(!c.advance(1));
        assert!(c.advance(0));
        assert!(c.advance(-5));
        assert_eq!(c.now_ms(), MAX_MS);
        assert_eq!(format_ms(MAX_MS, &chrono_tz::UTC), "9999-01-01T00:00:00+00:00");
        assert_eq!(parse_rfc3339("9999-01-01T00:00:00Z"), Some(MAX_MS));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(MIN_MS));
    }

    #[test]
    fn coarse_clock_tracks_real_clock() {
        let c = Clock::starting_at(Some(0), false);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (fine, coarse) = (c.now_ms(), c.coarse_now_ms());
        assert!((fine - coarse).abs() < 25, "fine {fine} coarse {coarse}");
    }
}
