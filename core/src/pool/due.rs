//! The slot pool's due work (run by the due-work pass, `due.rs`): the release window's
//! announcements, appointment reminders and the retirement pass.
//!
//! Each finds what is due from a watermark kept in [`Marks`] — the instant
//! up to which releases were announced, and per reminder offset the visit
//! start up to which reminders went out — so an announcement or reminder is
//! made once, and a watermark is durable (META rows `due:…`, in the same
//! commit as the events it covers) so a restart neither repeats nor skips
//! one: what fell due while the engine was down goes out at its first pass.
//! An engine starts the watermarks it has not kept yet when it opens
//! (nothing due before it first opened is announced). Only the due-work pass (`due.rs`) calls these, under
//! `Pool::due`; `due_marks` is taken after it and before any slot lock.

use super::{Pool, Txn};
use crate::clock::{format_ms, Millis};
use crate::error::Result;
use crate::model::BookingStatus;
use crate::store::{Snapshot, Write};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// How often the due work retires history (real time; the first pass runs
/// when a durable engine opens).
const RETIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

const RELEASED_KEY: &str = "due:released_through";
const REMINDED_PREFIX: &str = "due:reminded:";

#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// Release windows opening up to this instant were announced.
    released_through: Option<Millis>,
    /// Per reminder offset (minutes): visits starting up to this instant were reminded.
    reminded_through: BTreeMap<u32, Millis>,
    /// When the last retirement pass ran (the engine's open ran the first).
    retired_at: Option<std::time::Instant>,
}

fn mark_row(key: String, at: Millis) -> Write {
    Write { table: super::tables::META, key, body: Some(at.to_string()), fresh: false }
}

impl Pool {
    /// Reads the watermarks a durable engine kept.
    pub(crate) fn recover_due_marks(&self, snap: &Snapshot) {
        let mut m = self.due_marks.lock();
        for (k, v) in snap.of(super::tables::META) {
            let Ok(at) = v.parse::<Millis>() else { continue };
            if k == RELEASED_KEY {
                m.released_through = Some(at);
            } else if let Some(minutes) = k.strip_prefix(REMINDED_PREFIX).and_then(|n| n.parse().ok()) {
                m.reminded_through.insert(minutes, at);
            }
        }
        m.retired_at = Some(std::time::Instant::now());
    }

    /// Starts the watermarks an engine has not kept yet at `now` (nothing
    /// due before the engine first opened is announced), durably.
    pub(crate) fn start_due_marks(&self, now: Millis) -> Result<()> {
        let mut txn = Txn::default();
        {
            let mut m = self.due_marks.lock();
            if m.released_through.is_none() {
                m.released_through = Some(now);
                txn.writes.push(mark_row(RELEASED_KEY.into(), now));
            }
            for &minutes in &self.cfg.reminder_minutes {
                if let std::collections::btree_map::Entry::Vacant(e) = m.reminded_through.entry(minutes) {
                    let upto = now.saturating_add(i64::from(minutes) * 60_000);
                    e.insert(upto);
                    txn.writes.push(mark_row(format!("{REMINDED_PREFIX}{minutes}"), upto));
                }
            }
            m.retired_at.get_or_insert_with(std::time::Instant::now);
        }
        if self.store.is_none() {
            txn.writes.clear();
        }
        self.commit_due(txn, false)
    }

    /// Commits `txn` and waits for it: with its events, a change like any
    /// other (in the audit trail); watermarks alone are bookkeeping (META),
    /// written without an audit entry.
    fn commit_due(&self, mut txn: Txn, events: bool) -> Result<()> {
        if events {
            let ticket = self.enqueue(&mut txn);
            return self.settle(ticket, Vec::new());
        }
        match &self.store {
            Some(s) if !txn.writes.is_empty() => s.wait(s.enqueue(std::mem::take(&mut txn.writes))),
            _ => Ok(()),
        }
    }

    /// `slots_released`: one event per hospital and day whose release
    /// window opened since the last pass (config `release`: at `time` each
    /// day the next `days` open to community booking), with the slots and
    /// places it opened; closed slots are not counted. A slot synced after
    /// its window opened was never closed to anyone: not announced.
    pub(crate) fn announce_releases(&self, now: Millis) -> Result<u64> {
        let mut marks = self.due_marks.lock();
        let from = *marks.released_through.get_or_insert(now);
        if now <= from || !self.cfg.release_enabled {
            return Ok(0);
        }
        // (hospital, date) → (slots, places, when its window opened).
        let mut opened: BTreeMap<(&str, &str), (u64, u64, Millis)> = BTreeMap::new();
        let table = self.table.load();
        for slot in table.slots.iter().filter(|s| s.opens_ms > from && s.opens_ms <= now) {
            let st = slot.state.lock();
            if st.closed {
                continue;
            }
            let e = opened.entry((slot.info.hospital_id.as_str(), &slot.date_str)).or_insert((0, 0, slot.opens_ms));
            e.0 += 1;
            e.1 += u64::from(st.remaining());
            e.2 = e.2.min(slot.opens_ms);
        }
        marks.released_through = Some(now);
        if opened.is_empty() {
            // Kept in memory only: after a restart the pass looks at this
            // stretch again and finds nothing in it again.
            return Ok(0);
        }
        let mut txn = Txn::default();
        for ((hospital, date), (slots, places, at)) in &opened {
            let data = json!({"hospital_id": hospital, "date": date, "slots": slots, "places": places, "opened_at": format_ms(*at, &self.cfg.tz)});
            self.emit(&mut txn, "slots_released", None, None, data);
        }
        // With the events it covers, so a restart neither repeats nor skips them.
        txn.writes.extend(self.store.is_some().then(|| mark_row(RELEASED_KEY.into(), now)));
        drop(marks);
        self.commit_due(txn, true)?;
        Ok(opened.len() as u64)
    }

    /// `appointment_reminder`: for each offset of `reminder_minutes`, one
    /// event per booked visit (status `booked`: a confirmed appointment or a
    /// reserved bed) that starts within that many minutes and was not
    /// reminded at that offset yet. A visit booked after an offset's moment
    /// has passed gets only the later reminders (its booking's notice is
    /// the first it hears).
    pub(crate) fn send_reminders(&self, now: Millis) -> Result<u64> {
        if self.cfg.reminder_minutes.is_empty() {
            return Ok(0);
        }
        let mut marks = self.due_marks.lock();
        let table = self.table.load();
        let mut txn = Txn::default();
        let mut sent = 0;
        let mut advanced = Vec::new();
        for &minutes in &self.cfg.reminder_minutes {
            let upto = now.saturating_add(i64::from(minutes) * 60_000);
            let from = *marks.reminded_through.entry(minutes).or_insert(upto);
            if upto <= from {
                continue;
            }
            for slot in table.slots.iter().filter(|s| s.start_ms > from && s.start_ms <= upto && s.start_ms > now) {
                let st = slot.state.lock();
                for &id in st.active.iter() {
                    let Some(b) = self.bookings.with(id, |b| (b.status == BookingStatus::Booked && !b.retired).then(|| b.clone())).flatten() else { continue };
                    let data = json!({
                        "minutes_before": minutes,
                        "visit_at": format_ms(slot.start_ms, &self.cfg.tz),
                        "hospital_id": slot.info.hospital_id,
                        "date": &*slot.date_str,
                        "time_slot": &*slot.time_slot,
                    });
                    self.emit(&mut txn, "appointment_reminder", Some(&b), Some(&slot.id), data);
                    sent += 1;
                }
            }
            marks.reminded_through.insert(minutes, upto);
            advanced.push((minutes, upto));
        }
        drop(marks);
        if sent == 0 {
            // Nothing went out: the watermarks stay in memory (see `announce_releases`).
            return Ok(0);
        }
        if self.store.is_some() {
            txn.writes.extend(advanced.into_iter().map(|(m, upto)| mark_row(format!("{REMINDED_PREFIX}{m}"), upto)));
        }
        self.commit_due(txn, true)?;
        Ok(sent)
    }

    /// Whether the retirement pass (`retire.rs`, and the hand-offs' in
    /// `upstream`) is due: `RETIRE_EVERY` passed since the last (marked run).
    pub(crate) fn retire_is_due(&self) -> bool {
        if self.store.is_none() {
            return false;
        }
        let mut marks = self.due_marks.lock();
        let last = *marks.retired_at.get_or_insert_with(std::time::Instant::now);
        if last.elapsed() < RETIRE_EVERY {
            return false;
        }
        marks.retired_at = Some(std::time::Instant::now());
        true
    }

    /// Runs a due-work pass at once on the timer thread, if there is one
    /// (a manual clock was moved).
    pub(crate) fn nudge_timer(&self) {
        if let Some((tx, _)) = &*self.timer.lock() {
            let _ = tx.send(());
        }
    }

    /// Whether the engine runs its due work on its own thread.
    pub(crate) fn has_timer(&self) -> bool {
        self.timer.lock().is_some() && !self.closed.load(Ordering::Acquire)
    }
}
