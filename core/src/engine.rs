//! The engine handle: opened from a JSON config, shared by every thread, with
//! the command layer (`call`) and the typed hot path (`hold`, `confirm`,
//! `release`, `availability`).

use crate::catalog::{Device, Hospital, Project};
use crate::clock::Millis;
use crate::config::Config;
use crate::error::{Error, ErrorCode, Result};
use crate::model::*;
use crate::pool::tables;
use crate::pool::{Answer, Availability, IdemRecord, Reserve, SlotTable};
use crate::reply::Data;
use crate::request::fingerprint;
use crate::store::{corrupt_row, parse_row, DurableStore, Snapshot};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A command's answer whose commit may still be on its way to disk (from
/// [`Engine::call_deferred`]). Its answer is handed out only once the commit
/// is durable: await [`durable`](Self::durable) on an async runtime, or
/// call [`wait`](Self::wait) on a thread. Dropping it unanswered (a request
/// cancelled while it waited) never blocks: what the call left (its request
/// id's answer) is finished when the commit is answered.
#[must_use = "the answer is handed out only after the commit is durable"]
pub struct Deferred {
    engine: Engine,
    name: &'static str,
    started: std::time::Instant,
    out: Option<Result<Data>>,
    pending: Option<crate::pool::deferred::Pending>,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred").field("command", &self.name).field("answered", &self.pending.is_none()).finish()
    }
}

impl Deferred {
    /// `true` when there is no commit to wait for (a refusal, a query, an
    /// in-memory engine): [`wait`](Self::wait) returns at once.
    pub fn is_ready(&self) -> bool {
        self.pending.as_ref().is_none_or(|p| p.is_empty())
    }

    fn ticket(&self) -> Option<(&DurableStore, crate::store::Ticket)> {
        let t = self.pending.as_ref()?.ticket?;
        Some((self.engine.d.pool.store.as_ref()?, t))
    }

    /// The answer, once the commit is durable (blocks this thread until then).
    pub fn wait(mut self) -> Result<Value> {
        let durable = match self.ticket() {
            Some((s, t)) => s.wait(t),
            None => Ok(()),
        };
        self.finish(durable)?.into_value()
    }

    /// The answer, once the commit is durable, as a future: the task sleeps
    /// until the committer acknowledges the commit (any runtime).
    pub async fn durable(self) -> Result<Value> {
        self.durable_data().await?.into_value()
    }

    /// [`durable`](Self::durable) with the answer as JSON text, the `data`
    /// of [`Engine::call`]'s envelope (see [`envelope_text`](crate::envelope_text)):
    /// a booking's answer goes out as the engine wrote it, with no `Value` built.
    pub async fn durable_json(self) -> Result<String> {
        self.durable_data().await.map(Data::into_text)
    }

    async fn durable_data(mut self) -> Result<Data> {
        let commit = self.ticket().map(|(s, t)| s.durable(t));
        let durable = match commit {
            Some(c) => c.await,
            None => Ok(()),
        };
        self.finish(durable)
    }

    fn finish(&mut self, durable: Result<()>) -> Result<Data> {
        conclude(&self.engine, self.name, self.started, self.pending.take(), self.out.take(), durable)
    }
}

/// Ends a deferred call once its commit is answered: the answers it held
/// back become replayable (or their request ids free, if the commit
/// failed), the call is counted, and its answer is the commit's error if
/// the commit failed.
fn conclude(
    engine: &Engine,
    name: &'static str,
    started: std::time::Instant,
    pending: Option<crate::pool::deferred::Pending>,
    out: Option<Result<Data>>,
    durable: Result<()>,
) -> Result<Data> {
    if let Some(p) = pending {
        p.finish(&engine.d.pool, durable.is_ok());
    }
    let out = match (durable, out) {
        (Err(e), _) => Err(e),
        (Ok(()), Some(out)) => out,
        (Ok(()), None) => Err(Error::internal("a deferred answer was taken twice")),
    };
    engine.d.monitor.record(name, started.elapsed(), out.as_ref().err().map(Error::code));
    out
}

impl Drop for Deferred {
    /// Unanswered (a host's request cancelled while it waited): what the
    /// call left is finished when the commit is answered, by the thread that
    /// answers it, so a request id's answer never stays in progress, and
    /// nothing blocks here.
    fn drop(&mut self) {
        let ticket = self.pending.as_ref().and_then(|p| p.ticket);
        let Some(pending) = self.pending.take() else { return };
        let (name, started, engine, out) = (self.name, self.started, self.engine.clone(), self.out.take());
        let finish = move |durable: Result<()>| {
            let _ = conclude(&engine, name, started, Some(pending), out, durable);
        };
        match (ticket, &self.engine.d.pool.store) {
            (Some(t), Some(s)) => s.on_durable(t, Box::new(finish)),
            _ => finish(Ok(())),
        }
    }
}

/// A slot resolved once, for the typed hot path (an index, not a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotHandle(pub u32);

/// A hold on one place: confirm it (or pay) before `expires_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub booking_id: u64,
    pub expires_ms: Millis,
}

/// The options of a typed hold.
#[derive(Debug, Clone, Default)]
pub struct HoldOptions<'a> {
    pub request_id: Option<&'a str>,
    pub clinic_id: Option<&'a str>,
    pub priority: Option<Priority>,
}

/// The engine. `Send + Sync`: share one per process (clone is cheap) and call
/// it from any number of threads.
#[derive(Clone)]
pub struct Engine {
    pub(crate) d: Arc<crate::domains::Domains>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("durable", &self.d.pool.store.is_some()).finish()
    }
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Engine {
    /// Opens an engine. `{}`: in memory, acting as the platform. `{"data_dir": …}`:
    /// the durable store in that directory, recovered as it was;
    /// `{"store": {"postgres": …}}`: the same on a PostgreSQL database.
    pub fn open(config_json: &str) -> Result<Engine> {
        let cfg = Config::parse(config_json)?;
        let cipher = cfg.encryption_key.as_ref().map(crate::crypto::RowCipher::new);
        let tables = crate::domains::Domains::tables();
        let opened = match (&cfg.data_dir, &cfg.postgres) {
            (Some(dir), _) => Some(DurableStore::open(dir, cfg.durable_sync_full, cfg.group_commit_max, cipher, &tables)?),
            #[cfg(feature = "postgres")]
            (None, Some(pg)) => Some(DurableStore::open_postgres(&pg.0, cfg.durable_sync_full, cfg.lease_ms, cfg.group_commit_max, cipher, &tables)?),
            _ => None,
        };
        let d = match opened {
            None => crate::domains::Domains::new(cfg, None, &crate::registry::NAMES, crate::registry::dispatch_here)?,
            Some((store, snapshot)) => {
                let d = crate::domains::Domains::new(cfg, Some(store), &crate::registry::NAMES, crate::registry::dispatch_here)?;
                recover(&d, snapshot)?;
                d
            }
        };
        let engine = Engine { d: Arc::new(d) };
        if engine.d.pool.store.is_some() {
            engine.after_recovery()?;
            // What passed the retention window while the engine was down.
            crate::due::retire(&engine.d)?;
        }
        engine.d.pool.start_due_marks(engine.d.pool.clock.now_ms())?;
        if let Some(every) = engine.d.pool.cfg.timer_every {
            start_timer(&engine.d, every);
        }
        Ok(engine)
    }

    /// Moves what is past the retention window (`retention_days`) out of
    /// memory into the store, at once: bookings of slots whose day is over
    /// by more than the window, and request ids' answers older than it (see
    /// `pool/retire.rs`). A durable engine also does this by itself when
    /// it opens and then every ten minutes of its due-work pass (the timer
    /// thread, or the host's `run-due`: `due.rs`). They stay readable:
    /// `booking-info` and every read of one booking find a retired booking
    /// in the store; a change to one is `INVALID_STATE`. An in-memory
    /// engine retires nothing.
    pub fn retire_history(&self) -> Result<crate::pool::Retired> {
        crate::due::retire(&self.d)
    }

    /// Claims a signed request's nonce (replay protection that survives
    /// restarts, #16 item 2): `Ok(true)` when the pair (`app_id`, `nonce`)
    /// is newly claimed — durably committed before this returns, on a
    /// durable engine — and `Ok(false)` when it was already claimed and its
    /// window has not ended, or when its own window (`signed_at_unix +
    /// window_secs`, by the engine's clock) is already over. Of any number of
    /// threads claiming one pair, exactly one gets `true`. A pair is kept
    /// until its window ends, across restarts (see `nonce.rs`). Bad input
    /// (empty or over 256 bytes, control characters, a window outside 1 s to
    /// a day) is `INVALID_FIELD` and claims nothing.
    pub fn claim_nonce(&self, app_id: &str, nonce: &str, signed_at_unix: i64, window_secs: i64) -> Result<bool> {
        self.d.pool.check_open()?;
        let now = self.d.pool.clock.now_ms().div_euclid(1000);
        self.d.nonces.claim(self.d.pool.store.as_ref(), app_id, nonce, signed_at_unix, window_secs, now)
    }

    /// Returns once every change queued before it is durable, including the
    /// ones nobody waits for (an expiry a refused call swept, a read's audit
    /// entry), by committing the statistics counters behind them: before a
    /// backup, or to read the audit trail as of now. An in-memory engine has
    /// nothing to wait for.
    pub fn sync(&self) -> Result<()> {
        self.d.pool.check_open()?;
        match &self.d.pool.store {
            Some(s) => s.wait(s.enqueue(vec![self.d.pool.metrics.row()])),
            None => Ok(()),
        }
    }

    /// Flushes and closes the store. Later calls fail with `ENGINE_CLOSED`.
    /// Safe to call more than once, from any thread.
    pub fn close(&self) {
        if !self.d.pool.closed.swap(true, Ordering::AcqRel) {
            if let Some(s) = &self.d.pool.store {
                // The statistics counters, so they outlive the restart (P9);
                // a failed store has nothing more to lose here.
                let _ = s.wait(s.enqueue(vec![self.d.pool.metrics.row()]));
                s.close();
            }
        }
    }

    /// The epoch of the lease under which this engine leads its shared
    /// store (PostgreSQL), `None` on SQLite or in memory. Once the lease is
    /// lost every call answers `NOT_LEADER` ([`health`](Self::health)).
    pub fn lease_epoch(&self) -> Option<u64> {
        self.d.pool.store.as_ref().and_then(|s| s.lease_epoch())
    }

    /// `Ok` while the engine takes calls; else the error every call now
    /// gets (`ENGINE_CLOSED`, `NOT_LEADER`, `STORAGE_ERROR`).
    pub fn health(&self) -> Result<()> {
        self.d.pool.check_open()
    }

    pub fn is_closed(&self) -> bool {
        self.d.pool.closed.load(Ordering::Acquire)
    }

    pub fn version() -> &'static str {
        VERSION
    }

    /// The engine's current time (UTC ms).
    pub fn now_ms(&self) -> Millis {
        self.d.pool.clock.now_ms()
    }

    /// The command layer: the source's interface names and JSON shapes. Always
    /// returns an envelope, `{"status":"success","data":…}` or an error envelope.
    pub fn call(&self, command: &str, request_json: &str) -> String {
        self.call_as(&self.d.pool.cfg.principal, command, request_json)
    }

    /// `call` for a principal the host states (S1): the request's acting
    /// fields (`clinic_id`, `institution_id`, `lab_id`, `hospital_id` where it
    /// means the caller) must name it, else `FORBIDDEN` and nothing changes.
    pub fn call_as(&self, principal: &crate::principal::Principal, command: &str, request_json: &str) -> String {
        crate::request::envelope_of(self.call_monitored(principal, command, request_json))
    }

    /// Like `call_as`, returning the `data` as JSON text, or the error (what
    /// a binding hands on as text: no `Value` is built for a booking's answer).
    pub fn call_json_as(&self, principal: &crate::principal::Principal, command: &str, request_json: &str) -> Result<String> {
        self.call_monitored(principal, command, request_json).map(Data::into_text)
    }

    /// `call_json_as` for a principal given as JSON text.
    pub fn call_json_as_json(&self, principal_json: &str, command: &str, request_json: &str) -> Result<String> {
        crate::principal::Principal::from_json(principal_json).and_then(|p| self.call_json_as(&p, command, request_json))
    }

    /// `call_json_as` as the engine's own principal.
    pub fn call_json(&self, command: &str, request_json: &str) -> Result<String> {
        self.call_json_as(&self.d.pool.cfg.principal, command, request_json)
    }

    /// Like `call`, returning the `data` or the error.
    pub fn call_value(&self, command: &str, request_json: &str) -> Result<Value> {
        self.call_value_as(&self.d.pool.cfg.principal, command, request_json)
    }

    /// `call_as` for a principal given as JSON text (what the C, Java and
    /// Python bindings pass): an invalid principal is an `INVALID_FIELD`
    /// envelope, like any invalid argument.
    pub fn call_as_json(&self, principal_json: &str, command: &str, request_json: &str) -> String {
        match crate::principal::Principal::from_json(principal_json) {
            Ok(p) => self.call_as(&p, command, request_json),
            Err(e) => crate::request::to_json(&e.to_envelope()),
        }
    }

    /// `call_value_as` for a principal given as JSON text.
    pub fn call_value_as_json(&self, principal_json: &str, command: &str, request_json: &str) -> Result<Value> {
        crate::principal::Principal::from_json(principal_json).and_then(|p| self.call_value_as(&p, command, request_json))
    }

    /// Like `call_as`, returning the `data` or the error.
    pub fn call_value_as(&self, principal: &crate::principal::Principal, command: &str, request_json: &str) -> Result<Value> {
        self.call_monitored(principal, command, request_json)?.into_value()
    }

    fn call_monitored(&self, principal: &crate::principal::Principal, command: &str, request_json: &str) -> Result<Data> {
        let started = std::time::Instant::now();
        let out = self.call_unmonitored(principal, command, request_json);
        self.d.monitor.record(command, started.elapsed(), out.as_ref().err().map(Error::code));
        out
    }

    /// [`call_value_as`](Self::call_value_as) for a host on an async
    /// runtime (an HTTP server's event loop): the change is made in memory
    /// on this thread at once, and its commit is *not* waited for here. The
    /// answer comes from the returned [`Deferred`], by awaiting
    /// [`Deferred::durable`] (no thread sleeps) or by [`Deferred::wait`],
    /// and only once the commit is durable; a retry of its request id gets
    /// `REQUEST_IN_PROGRESS` until then (see `pool/deferred.rs`).
    ///
    /// Meant for the commands [`runs_inline`](Self::runs_inline) names:
    /// any other command is correct here too, but may block this thread
    /// (a network call, a store scan, a wait it needs before going on).
    pub fn call_deferred(&self, principal: &crate::principal::Principal, command: &str, request_json: &str) -> Deferred {
        let started = std::time::Instant::now();
        let (out, pending) = crate::pool::deferred::collect(|| self.call_unmonitored(principal, command, request_json));
        let name = crate::registry::find(command).map_or("", |c| c.decl.name);
        Deferred { engine: self.clone(), name, started, out: Some(out), pending: Some(pending) }
    }

    /// `true` when `command` may run on an async runtime's own threads with
    /// [`call_deferred`](Self::call_deferred): it works in memory in bounded
    /// time (the commands declared `Inline`: booking, cancelling, paying,
    /// waitlists, beds), and this engine hands nothing to an upstream
    /// hospital (which is a network call).
    pub fn runs_inline(&self, command: &str) -> bool {
        self.d.pool.cfg.upstream.is_none() && crate::registry::find(command).is_some_and(|c| c.decl.inline)
    }

    fn call_unmonitored(&self, principal: &crate::principal::Principal, command: &str, request_json: &str) -> Result<Data> {
        self.d.pool.check_open()?;
        let cfg = &self.d.pool.cfg;
        let limit = crate::referral::request_limit(cfg, command).unwrap_or(cfg.max_request_bytes);
        if request_json.len() > limit {
            return Err(Error::with(
                ErrorCode::RequestTooLarge,
                format!("request has {} bytes; the limit is {limit}", request_json.len()),
                format!("请求 {} 字节，超过上限 {limit}", request_json.len()),
            ));
        }
        // A flat request is read in place; anything else becomes a `Value`
        // (`request::Args`), with the same fields and the same errors.
        if let Some(args) = crate::request::Args::parse(request_json) {
            return crate::registry::answer(&self.d, principal, command, Ok(crate::request::Given::Args(args)));
        }
        let req: Value = if request_json.trim().is_empty() {
            json!({})
        } else {
            // serde_json's message names line and column, never the content.
            serde_json::from_str(request_json).map_err(|e| Error::json(&e))?
        };
        crate::registry::answer(&self.d, principal, command, crate::request::Given::of_value(&req))
    }

    /// The principal of calls that state none (the config's `role` and `institution_id`).
    pub fn principal(&self) -> &crate::principal::Principal {
        &self.d.pool.cfg.principal
    }

    /// The commands `call` understands.
    pub fn commands() -> &'static [&'static str] {
        &crate::registry::NAMES
    }

    /// `true` for the commands that never change state (queries, P4).
    pub fn is_query(command: &str) -> bool {
        crate::registry::find(command).is_some_and(|c| c.decl.kind == crate::command::Kind::Query)
    }

    // ------------------------------------------------------------ typed hot path

    pub fn slot_handle(&self, slot_id: &str) -> Result<SlotHandle> {
        self.d.pool.check_open()?;
        Ok(SlotHandle(self.d.pool.slot_by_id(slot_id)?.idx))
    }

    /// Holds one place for a patient (预占) until the hold's time-to-live passes.
    pub fn hold(&self, slot: SlotHandle, patient_id: &str, opts: &HoldOptions<'_>) -> Result<Hold> {
        match self.reserve_typed(slot, patient_id, opts, true)? {
            Answer::Hold(booking_id, expires_ms) => Ok(Hold { booking_id, expires_ms }),
            a => {
                let v = a.into_value();
                Ok(Hold { booking_id: v[0].as_u64().unwrap_or(0), expires_ms: v[1].as_i64().unwrap_or(0) })
            }
        }
    }

    /// Books one place at once (no hold): the booking stays until cancelled.
    pub fn book(&self, slot: SlotHandle, patient_id: &str, opts: &HoldOptions<'_>) -> Result<u64> {
        match self.reserve_typed(slot, patient_id, opts, false)? {
            Answer::Id(id) => Ok(id),
            a => Ok(a.into_value().as_u64().unwrap_or(0)),
        }
    }

    /// The typed hold and book: a lock-free refusal first, then the pool.
    fn reserve_typed(&self, slot: SlotHandle, patient_id: &str, opts: &HoldOptions<'_>, hold: bool) -> Result<Answer> {
        self.d.pool.check_open()?;
        if patient_id.is_empty() {
            return Err(Error::missing("patient_id"));
        }
        check_request_id(opts.request_id)?;
        let priority = opts.priority.unwrap_or(Priority::Normal);
        if let Some(e) = self.d.pool.refuse_fast(slot.0, priority, opts.request_id) {
            return Err(e);
        }
        let command = if hold { "hold" } else { "book" };
        let clinic = self.typed_clinic(opts.clinic_id)?;
        let _audit = self.audit_scope(command, clinic.as_deref(), opts.request_id);
        // The fingerprint only matters with a request id (it is stored with it).
        let fp = if opts.request_id.is_some() {
            fingerprint(&[command.as_bytes(), &slot.0.to_le_bytes(), patient_id.as_bytes(), priority.as_str().as_bytes()])
        } else {
            0
        };
        let r = Reserve {
            slot: slot.0,
            patient_id: Id::new(patient_id),
            clinic_id: clinic,
            priority,
            hold,
            patient: None,
            expected_date: None,
            reason: None,
            project_id: None,
            also: None,
        };
        let respond = |b: &Booking, _: &_| {
            if hold {
                Answer::Hold(b.id, b.hold_expires_ms.unwrap_or(0))
            } else {
                Answer::Id(b.id)
            }
        };
        self.d.pool.reserve(r, opts.request_id, command, fp, &respond)
    }

    /// The booking institution of a typed hold: the engine principal's own
    /// (a `clinic_id` naming another is refused), or the option on a platform
    /// engine (the same rule as `principal::bind_fields`).
    fn typed_clinic(&self, clinic: Option<&str>) -> Result<Option<Id>> {
        let p = &self.d.pool.cfg.principal;
        let named = clinic.and_then(crate::principal::acting_text).map(std::borrow::Cow::Borrowed);
        let bound = crate::principal::bind_fields(p, &["clinic_id"], |_| named.clone(), |i| self.d.pool.catalog.is_hospital(i))?;
        Ok(match bound.role {
            crate::principal::Role::Community | crate::principal::Role::Hospital => bound.institution_id.map(Id::new),
            _ => None,
        })
    }

    /// Confirms a hold (the booking is then kept until cancelled).
    pub fn confirm(&self, booking_id: u64, request_id: Option<&str>) -> Result<()> {
        self.d.pool.check_open()?;
        let actor = crate::pool::Actor::of(&self.d.pool.cfg.principal);
        check_request_id(request_id)?;
        let _audit = self.audit_scope("confirm", None, request_id);
        let fp = if request_id.is_some() { fingerprint(&[b"confirm", &booking_id.to_le_bytes()]) } else { 0 };
        self.d.pool.with_booking(booking_id, &actor, request_id, "confirm", fp, &mut |pool, slot, st, b, txn, now| {
            pool.confirm_locked(slot, st, b, now, txn, "confirm")?;
            Ok(Answer::Null)
        })?;
        Ok(())
    }

    /// Releases a hold or cancels a booking; the place returns to the pool
    /// (or to the first waiter).
    pub fn release(&self, booking_id: u64, request_id: Option<&str>) -> Result<()> {
        self.d.pool.check_open()?;
        let actor = crate::pool::Actor::of(&self.d.pool.cfg.principal);
        check_request_id(request_id)?;
        let _audit = self.audit_scope("release", None, request_id);
        let fp = if request_id.is_some() { fingerprint(&[b"release", &booking_id.to_le_bytes()]) } else { 0 };
        self.d.pool.with_booking(booking_id, &actor, request_id, "release", fp, &mut |pool, slot, st, b, txn, now| {
            pool.cancel_locked(slot, st, b, "released".into(), now, txn)?;
            Ok(Answer::Null)
        })?;
        Ok(())
    }

    /// The audit trail's caller for a typed call (durable engines only: an
    /// in-memory engine keeps no trail).
    fn audit_scope(&self, command: &str, institution: Option<&str>, request_id: Option<&str>) -> Option<crate::audit::Scope> {
        self.d.pool.store.as_ref().map(|_| {
            crate::audit::Scope::enter(crate::audit::Context {
                command: command.to_string(),
                institution: institution.map(str::to_string).or_else(|| self.d.pool.cfg.institution_id.clone()),
                operator: None,
                request_id: request_id.map(str::to_string),
            })
        })
    }

    /// Records a refused request in the audit trail (S1): a signature the
    /// HTTP layer refused, say. `app_id` is the id the request claimed (not
    /// trusted: sanitised and cut to 64 characters), `interface` the path or
    /// command (query string dropped, sanitised, at most 128 characters),
    /// `code` why. Nothing personal is kept. Queued with the committer
    /// without waiting for the disk (see `audit.rs`); a no-op for an engine
    /// without a data_dir or once closed. Never fails and never panics.
    pub fn audit_refusal(&self, app_id: Option<&str>, interface: &str, code: ErrorCode) {
        let Some(store) = &self.d.pool.store else { return };
        if self.is_closed() {
            return;
        }
        let path = interface.split(['?', '#']).next().unwrap_or("");
        let ctx = crate::audit::Context { command: crate::audit::sanitise(path, 128), ..Default::default() };
        let claimed = app_id.map(|a| crate::audit::sanitise(a, 64));
        let note = crate::audit::Note { kind: "refusal", code: Some(code.as_str()), claimed_app_id: claimed.as_deref(), read: &[] };
        let _ = store.enqueue(vec![crate::audit::note_row(self.d.pool.clock.now_ms(), &ctx, &note)]);
    }

    /// Places of one slot now. Never changes state.
    pub fn availability(&self, slot: SlotHandle) -> Result<Availability> {
        self.d.pool.check_open()?;
        let s = self.d.pool.slot(slot.0)?;
        let st = s.state.lock();
        Ok(s.availability(&st, self.d.pool.clock.now_ms(), &self.d.pool.cfg))
    }

    /// The booking as the command layer shows it.
    pub fn booking(&self, booking_id: u64) -> Result<Value> {
        self.call_value("booking-info", &json!({"booking_id": format_booking_id(booking_id)}).to_string())
    }

    /// Moves a manual clock forward (`{"clock":"manual"}`); tests and replays.
    /// A negative `ms` moves nothing; one that would take the clock past
    /// [`crate::clock::MAX_MS`] (9999-01-01) is refused with `INVALID_FIELD`
    /// and moves nothing.
    pub fn advance_clock(&self, ms: Millis) -> Result<()> {
        if !self.d.pool.clock.is_manual() {
            return Err(Error::with(ErrorCode::InvalidState, "only a manual clock can be moved", "只有手动时钟可以调整"));
        }
        if !self.d.pool.clock.advance(ms) {
            return Err(crate::clock::past_max("ms"));
        }
        self.d.pool.nudge_timer();
        Ok(())
    }

    /// Checks the pool's invariants; tests call it after storms and crashes.
    pub fn check_invariants(&self) -> Result<()> {
        crate::commands::check_invariants(&self.d.pool)
    }

    fn after_recovery(&self) -> Result<()> {
        // Holds that expired while the engine was down, then places freed while
        // patients waited: finish what a crash may have interrupted.
        self.d.pool.expire_all()?;
        // Closings (stop-service, the hospital's schedule) cut short: their
        // remaining bookings are cancelled or moved, each patient told.
        crate::schedule::finish_closings(&self.d.pool)?;
        let table = self.d.pool.table.load();
        for slot in table.slots.iter() {
            let pending = {
                let mut st = slot.state.lock();
                let waiting = st.waitlist.iter().any(|w| w.status == WaitStatus::Waiting);
                let free = st.remaining();
                if waiting && free > 0 && !st.closed {
                    st.set_aside += free;
                    st.held += free;
                    true
                } else {
                    false
                }
            };
            if pending {
                self.d.pool.promote_waiters(slot.idx)?;
            }
        }
        Ok(())
    }
}

/// A typed call's request id: 1 to 128 bytes, as on the command layer (the
/// pool's claim leaves room for the id-space prefix only the registry adds).
fn check_request_id(id: Option<&str>) -> Result<()> {
    match id {
        Some(i) if i.is_empty() || i.len() > crate::pool::REQUEST_ID_MAX => Err(Error::invalid("request_id", "must be 1 to 128 characters")),
        _ => Ok(()),
    }
}

/// Re-encrypts the store in `data_dir` from `old_key` to `new_key` (32 hex
/// digits each, SM4 keys as in the config's `encryption_key`; #16 item 6).
/// Every row is opened with the old key (rows still in the clear are taken
/// as they are) and sealed with the new one in one transaction, then the
/// database is vacuumed and its WAL truncated, so no file in the directory
/// keeps a row under the old key. The store must be closed (`STORE_LOCKED`
/// while an engine or another process has it open); afterwards it opens
/// only with `new_key`. A wrong `old_key` is `INVALID_CONFIG` and changes
/// nothing. Returns the number of rows rewritten. The `yilian-rekey` tool
/// runs this from the command line.
pub fn rekey(data_dir: impl AsRef<std::path::Path>, old_key: &str, new_key: &str) -> Result<u64> {
    let key = |field: &str, hex: &str| {
        crate::crypto::Sm4Key::from_hex(hex).map(|k| crate::crypto::RowCipher::new(&k)).ok_or_else(|| {
            Error::with(
                ErrorCode::InvalidConfig,
                format!("`{field}`: expected 32 hex digits (a 128-bit SM4 key)"),
                format!("`{field}` 无效：应为32位十六进制数字（128位SM4密钥）"),
            )
        })
    };
    let (old, new) = (key("old_key", old_key)?, key("new_key", new_key)?);
    if old_key.trim().eq_ignore_ascii_case(new_key.trim()) {
        return Err(Error::with(ErrorCode::InvalidConfig, "`new_key` is the old key", "`new_key` 与旧密钥相同"));
    }
    // The patients table is keyed by a keyed hash of the patient's id, which
    // its sealed body holds: the new key's hash is taken of it.
    let plain_key = |t: crate::store::Table, body: &str| -> Option<String> {
        (t == tables::PATIENTS).then(|| serde_json::from_str::<PatientRecord>(body).ok().map(|r| r.patient_id)).flatten()
    };
    crate::store::rekey(data_dir.as_ref(), &old, &new, &crate::domains::Domains::tables(), &plain_key)
}

/// Starts the timer thread (config `timer`, see `due.rs`): a due-work pass
/// every `every` of real time, and at once when a message arrives (a manual
/// clock was moved). It holds the engine only while a pass runs, and ends
/// once the engine is closed or dropped. A pass that fails changes nothing
/// more; the store's failure is what every call then reports.
fn start_timer(d: &Arc<crate::domains::Domains>, every: std::time::Duration) {
    let weak = Arc::downgrade(d);
    let (nudge, nudged) = std::sync::mpsc::channel::<()>();
    let started = std::thread::Builder::new().name("yilian-due".into()).spawn(move || loop {
        crate::pool::ON_TIMER.with(|on| on.set(true));
        match nudged.recv_timeout(every) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            // The pool went (its sender was dropped).
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let Some(d) = weak.upgrade() else { return };
        if d.pool.closed.load(Ordering::Acquire) {
            return;
        }
        let _ = crate::due::run_due(&d);
    });
    // Without the thread the engine works as before: the host calls `run-due`.
    if let Ok(handle) = started {
        *d.pool.timer.lock() = Some((nudge, handle));
    }
}

/// Rebuilds the in-memory pool from the store's rows.
fn recover(d: &crate::domains::Domains, snap: Snapshot) -> Result<()> {
    let pool = &d.pool;
    {
        let mut cat = pool.catalog.data.write();
        for (k, body) in snap.of(tables::CATALOG) {
            match k.split_once(':') {
                Some(("hospital", id)) => {
                    cat.hospitals.insert(id.to_string(), parse_row::<Hospital>(tables::CATALOG, k, body)?);
                }
                Some(("project", id)) => {
                    cat.projects.insert(id.to_string(), parse_row::<Project>(tables::CATALOG, k, body)?);
                }
                Some(("device", id)) => {
                    cat.devices.insert(id.to_string(), parse_row::<Device>(tables::CATALOG, k, body)?);
                }
                _ => return Err(corrupt_row(tables::CATALOG, k, "unknown key", "未知的记录")),
            }
        }
    }
    let mut table = SlotTable::default();
    let mut records: Vec<SlotRecord> = snap.of(tables::SLOTS).map(|(k, b)| parse_row(tables::SLOTS, k, b)).collect::<Result<_>>()?;
    records.sort_by(|a, b| a.info.slot_id.cmp(&b.info.slot_id));
    for rec in records {
        let idx = table.slots.len() as u32;
        table.by_id.insert(rec.info.slot_id.clone(), idx);
        table.by_date.entry(rec.info.date).or_default().push(idx);
        table.slots.push(Arc::new(pool.new_slot(idx, rec)));
    }
    let mut max_booking = 0;
    let mut bookings: Vec<Booking> = snap.of(tables::BOOKINGS).map(|(k, b)| parse_row(tables::BOOKINGS, k, b)).collect::<Result<_>>()?;
    bookings.sort_by_key(|b| b.id);
    let min_booking = bookings.first().map(|b| b.id);
    for b in bookings {
        max_booking = max_booking.max(b.id);
        let mut b = b;
        if let Some(idx) = b.slot_id.as_deref().and_then(|s| table.by_id.get(s)) {
            b.slot_idx = *idx;
        }
        if b.status.is_active() {
            let idx = *b
                .slot_id
                .as_deref()
                .and_then(|s| table.by_id.get(s))
                .ok_or_else(|| corrupt_row(tables::BOOKINGS, &format_booking_id(b.id), "booking names an unknown slot", "预约指向不存在的号源"))?;
            let slot = &table.slots[idx as usize];
            let mut st = slot.state.lock();
            if b.status == BookingStatus::PreBooked {
                st.held += 1;
                st.holds.insert((b.hold_expires_ms.unwrap_or(0), b.id));
            } else {
                st.booked += 1;
            }
            if b.used_quota {
                st.quota_used += 1;
            }
            st.active.insert(b.id);
            pool.restore_span(&b, slot);
            if let (Some(q), Some(n)) = (&slot.visits, b.visit_no) {
                q.restore(n);
            }
        }
        pool.bookings.insert(b.id, b);
    }
    // A retired booking's id is never given again.
    let max_retired = snap.lazy_max_key(tables::BOOKINGS_RETIRED).and_then(|k| k.parse::<u64>().ok()).unwrap_or(0);
    pool.outbox.counters.next_booking.store(max_booking.max(max_retired) + 1, Ordering::Relaxed);
    // Retired bookings were not loaded: the lowest loaded one is where the
    // next retirement pass starts looking.
    pool.retire_low.store(min_booking.unwrap_or(max_booking + 1), Ordering::Relaxed);
    let mut max_wait = 0;
    let mut waits: Vec<WaitEntry> = snap.of(tables::WAITLIST).map(|(k, b)| parse_row(tables::WAITLIST, k, b)).collect::<Result<_>>()?;
    waits.sort_by_key(|w| w.id);
    for w in waits {
        max_wait = max_wait.max(w.id);
        if w.status == WaitStatus::Waiting {
            if let Some(idx) = table.by_id.get(&w.slot_id) {
                pool.waitlist_slot.shard(&w.id).insert(w.id, *idx);
                table.slots[*idx as usize].state.lock().waitlist.push(w);
            }
        }
    }
    pool.next_wait.store(max_wait + 1, Ordering::Relaxed);
    if let Some(n) = snap.lazy_max_key(tables::IDEMPOTENCY_RETIRED).and_then(|k| k.parse::<u64>().ok()) {
        pool.next_idem_row.fetch_max(n + 1, Ordering::Relaxed);
    }
    for (k, body) in snap.of(tables::IDEMPOTENCY) {
        pool.restore_answer(k, parse_row::<IdemRecord>(tables::IDEMPOTENCY, k, body)?);
    }
    for (k, body) in snap.of(tables::PATIENTS) {
        let rec: PatientRecord = parse_row(tables::PATIENTS, k, body)?;
        pool.patient_info.shard(&rec.patient_id).insert(rec.patient_id.clone(), rec.info);
    }
    {
        let mut events: Vec<Event> = snap.of(tables::EVENTS).map(|(k, b)| parse_row(tables::EVENTS, k, b)).collect::<Result<_>>()?;
        events.sort_by_key(|e| e.seq);
        if let Some((_, body)) = snap.of(tables::META).find(|(k, _)| *k == crate::pool::METRICS_KEY) {
            pool.metrics.restore(body);
        }
        pool.recover_due_marks(&snap);
        let acked: u64 = snap.of(tables::META).find(|(k, _)| *k == "events_acked_through").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let next_seq = events.last().map(|e| e.seq).unwrap_or(0).max(acked) + 1;
        pool.outbox.reset(next_seq, events.into());
    }
    for slot in table.slots.iter() {
        slot.publish_now();
    }
    pool.store_table(table);
    crate::lab::recover(&d.lab, &snap)?;
    crate::handoff::recover(&d.upstream, &snap)?;
    crate::referral::recover(&d.pool, &d.referral, &snap)?;
    crate::chronic::recover(&d.chronic, &snap)?;
    crate::client::recover(&d.client, &snap)?;
    let expired = d.nonces.recover(&snap, pool.clock.now_ms().div_euclid(1000))?;
    if let (false, Some(store)) = (expired.is_empty(), &pool.store) {
        store.wait(store.enqueue(expired))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Fingerprints are stored with durable answers: the value for a given
    /// request must never change (computed independently: FNV-1a 64 over each
    /// part followed by 0xff).
    #[test]
    fn a_typed_request_id_is_at_most_128_bytes_like_the_command_layers() {
        let e = crate::Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
        e.call_value("sync-schedule", r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV001","date":"2024-10-30","capacity":3,"available_slots":[{"start_time":"09:00","end_time":"10:00"}]}]}"#).unwrap();
        let slot = e.slot_handle("EX-H001-DEV001-20241030-09001000").unwrap();
        let long = "r".repeat(129);
        let opts = crate::HoldOptions { request_id: Some(&long), ..Default::default() };
        assert_eq!(e.hold(slot, "PAT001", &opts).unwrap_err().code(), crate::ErrorCode::InvalidField);
        assert_eq!(e.availability(slot).unwrap().held, 0);
        let ok = "r".repeat(128);
        let h = e.hold(slot, "PAT001", &crate::HoldOptions { request_id: Some(&ok), ..Default::default() }).unwrap();
        assert_eq!(e.release(h.booking_id, Some(&long)).unwrap_err().code(), crate::ErrorCode::InvalidField);
        let long_body = format!(r#"{{"patient_id":"PAT002","slot_id":"EX-H001-DEV001-20241030-09001000","request_id":"{long}"}}"#);
        assert_eq!(e.call_value("pre-book-slot", &long_body).unwrap_err().code(), crate::ErrorCode::InvalidField);
    }
}
