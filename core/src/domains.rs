//! What an engine owns: the slot pool and each domain's state beside it.
//!
//! `Pool` is the slot pool only (slots, bookings, holds, waitlists, request
//! ids, the outbox and the store it commits to). The domains that build on
//! it keep their own state here — the lab (委托检验), the referral module
//! (referrals, exams, consultations), the platform client's cache — and the
//! command layer's monitor. The registry hands each domain's commands only
//! their parts (the pool, and the domain's own state); the pool never
//! reaches into a domain. `tables()` lists every domain's durable tables,
//! which the store is opened with.
//!
//! Lock order: a slot's lock and a booking's before a domain's lock; a
//! domain's lock is never held while a slot or booking lock is taken (see
//! `pool/mod.rs` and `referral/mod.rs`).

use crate::config::Config;
use crate::pool::Pool;
use crate::store::DurableStore;

pub(crate) struct Domains {
    pub pool: Pool,
    /// Commissioned lab testing (委托检验).
    pub lab: crate::lab::LabState,
    /// Referrals, exam applications and remote consultations.
    pub referral: crate::referral::ReferralState,
    /// The chronic-disease register and follow-up plans (慢病健康管理中心, 随访).
    pub chronic: crate::chronic::ChronicState,
    /// The platform client and its cache of the platform's answers.
    pub client: crate::client::ClientState,
    /// Per-command counts, errors and latency of the command layer (I4).
    pub monitor: crate::monitor::Monitor,
    /// Claimed request nonces (replay protection, `Engine::claim_nonce`).
    pub nonces: crate::nonce::NonceLog,
    /// Hand-offs to upstream hospitals (`upstream.rs`) and the links to them.
    pub upstream: crate::handoff::UpstreamState,
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub links: crate::client::Links,
    /// Runs a command here without handing it upstream (the registry's;
    /// given to the engine's parts so a domain above this one may run the
    /// mirror's half of a hand-off without naming the registry).
    pub here: Dispatch,
}

/// How a command is run for a principal (`registry::dispatch_here`).
pub(crate) type Dispatch = fn(&Domains, &crate::principal::Principal, &str, &serde_json::Value) -> crate::error::Result<serde_json::Value>;

impl Domains {
    /// Every table the domains keep in the durable store.
    pub fn tables() -> Vec<crate::store::Table> {
        let mut t = crate::pool::tables::ALL.to_vec();
        t.extend([crate::lab::TABLE, crate::referral::TABLE, crate::referral::DOCUMENT_CONTENT, crate::client::TABLE, crate::audit::TABLE]);
        t.push(crate::chronic::TABLE);
        t.push(crate::nonce::TABLE);
        t.push(crate::handoff::TABLE);
        t.push(crate::handoff::HOSPITALS);
        t.push(crate::handoff::RETIRED);
        t
    }

    /// The domains of an engine; `INVALID_CONFIG` when a domain's part of
    /// the config does not hold (`follow_up`).
    pub fn new(cfg: Config, store: Option<DurableStore>, commands: &[&'static str], here: Dispatch) -> crate::error::Result<Domains> {
        let chronic = crate::chronic::ChronicState::new(crate::chronic::Settings::parse(cfg.follow_up.as_ref())?);
        Ok(Domains {
            pool: Pool::new(cfg, store),
            lab: Default::default(),
            referral: Default::default(),
            chronic,
            client: Default::default(),
            monitor: crate::monitor::Monitor::new(commands),
            nonces: Default::default(),
            upstream: Default::default(),
            links: Default::default(),
            here,
        })
    }
}
