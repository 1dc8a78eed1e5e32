//! Who serves: the engine this server acts through, or none while it waits
//! as a standby (#17 item 2).
//!
//! On a data directory or in memory the engine is opened once and always
//! serves (`single`). On a shared PostgreSQL store several servers may run
//! on one database; exactly one leads, the one whose engine holds the
//! store's lease (`yilian_core`'s `store/postgres.rs`: every commit checks
//! it). The others are standbys: they listen, answer `/healthz` with 503 and
//! `"role": "standby"`, and every other request with 503 `NOT_LEADER` and
//! `Retry-After`, so a load balancer (HAProxy `httpchk`, keepalived, nginx
//! `max_fails`) sends traffic to the leader alone. [`campaign`] runs in
//! every server on a shared store:
//!
//! - **standby → leader**: it tries to open the engine every
//!   [`RETRY`]; the open succeeds once the lease is free (the leader closed,
//!   its database session ended — killed, crashed — or it stopped renewing
//!   for the lease's length), loading the state from the database.
//! - **leader → standby**: it watches the engine's health every [`WATCH`];
//!   when the engine refuses calls (`NOT_LEADER`: its lease was taken after
//!   a pause or a partition; a storage error: the database failed over or
//!   went away) the engine is taken out of the seat and closed, and the
//!   server campaigns again. A deposed engine commits nothing (the fence),
//!   so nothing it still had in memory reaches the database.
//!
//! The seat is read on every request (one uncontended read lock and an
//! `Arc` clone); it is written only on those changes.

use crate::AppState;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use yilian_core::{Engine, Error, ErrorCode};

/// How often a standby tries to take the lease.
pub const RETRY: Duration = Duration::from_millis(250);
/// How often a leader checks that its engine still leads.
pub const WATCH: Duration = Duration::from_millis(200);

/// The engine this server acts through, if any.
pub struct Seat {
    engine: RwLock<Option<Engine>>,
    /// On a shared store (a standby may wait here); else the engine is the only one.
    shared: bool,
}

impl Seat {
    /// A server on its own store (a data directory, memory): `engine` always serves.
    pub fn single(engine: Engine) -> Seat {
        Seat { engine: RwLock::new(Some(engine)), shared: false }
    }

    /// A server on a shared store, leading with `engine` or, with `None`,
    /// waiting as a standby.
    pub fn shared(engine: Option<Engine>) -> Seat {
        Seat { engine: RwLock::new(engine), shared: true }
    }

    /// The engine to call, or `NOT_LEADER` while this server is a standby.
    pub fn engine(&self) -> Result<Engine, Error> {
        match &*self.engine.read().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Ok(e.clone()),
            None => Err(standby_error()),
        }
    }

    fn put(&self, e: Option<Engine>) -> Option<Engine> {
        std::mem::replace(&mut *self.engine.write().unwrap_or_else(|p| p.into_inner()), e)
    }

    /// Takes the engine out (it serves no more request) to close it.
    pub fn take(&self) -> Option<Engine> {
        self.put(None)
    }

    /// What `/healthz` says: `single`, `leader` (with the lease's epoch) or `standby`.
    pub fn view(&self) -> Value {
        match (self.engine(), self.shared) {
            (Ok(_), false) => json!({"role": "single"}),
            (Ok(e), true) => json!({"role": "leader", "lease_epoch": e.lease_epoch()}),
            (Err(_), _) => json!({"role": "standby"}),
        }
    }
}

/// What a standby answers every request but `/healthz`.
pub fn standby_error() -> Error {
    Error::with(
        ErrorCode::NotLeader,
        "this server is a standby: another server leads the shared store; retry at the leader (or here after Retry-After)",
        "本服务器为备用服务器：共享存储由其他服务器主导；请向主服务器重试（或稍后按应答头所示时间重试本服务器）",
    )
}

/// What runs on each newly opened engine before it serves (the demo network).
pub type OnLead = fn(&Engine) -> Result<Value, Error>;

/// Keeps this server leading when it can (see the module doc) until the
/// server shuts down. `config_json` opens the engine; `on_lead` runs once
/// on each newly opened engine before it serves (the demo network).
pub async fn campaign(st: Arc<AppState>, config_json: String, on_lead: Option<OnLead>) {
    let token = st.shutdown_token();
    // The last refusal said, so a standby logs a change once, not every try.
    let mut last_said: Option<ErrorCode> = None;
    loop {
        if let Ok(engine) = st.seat.engine() {
            watch(&st, engine, &token).await;
            if token.is_cancelled() {
                return;
            }
            continue;
        }
        let cfg = config_json.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let e = Engine::open(&cfg)?;
            if let Some(f) = on_lead {
                f(&e).inspect_err(|_| e.close())?;
            }
            Ok::<_, Error>(e)
        })
        .await
        .unwrap_or_else(|_| Err(Error::internal("opening the engine did not finish")));
        match opened {
            Ok(e) if token.is_cancelled() => {
                let _ = tokio::task::spawn_blocking(move || e.close()).await;
                return;
            }
            Ok(e) => {
                eprintln!("yilian-sandbox: leading the shared store (lease epoch {})", e.lease_epoch().unwrap_or(0));
                st.seat.put(Some(e));
                last_said = None;
                continue;
            }
            Err(e) if last_said != Some(e.code()) => {
                // The error names no secret (the conninfo is never in it).
                match e.code() {
                    ErrorCode::StoreLocked => eprintln!("yilian-sandbox: standby: {}", e.message()),
                    _ => eprintln!("yilian-sandbox: standby: cannot open the store yet: {e}"),
                }
                last_said = Some(e.code());
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Waits while `engine` leads; when it stops (lost lease, storage failure),
/// takes it out of the seat and closes it.
async fn watch(st: &Arc<AppState>, engine: Engine, token: &tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(WATCH) => {}
        }
        if let Err(e) = engine.health() {
            if token.is_cancelled() {
                return;
            }
            eprintln!("yilian-sandbox: no longer leading ({}): standing by", e.code_str());
            if let Some(old) = st.seat.take() {
                let _ = tokio::task::spawn_blocking(move || old.close()).await;
            }
            return;
        }
    }
}
