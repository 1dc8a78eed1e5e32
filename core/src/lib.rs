//! # yilian-core (医联)
//!
//! The docking logic of a regional care network: one county hospital and its
//! community health centres share a pool of appointment slots (号源池) for
//! outpatient registration, exams and beds.
//!
//! Open an [`Engine`] from a JSON config and either call the source's
//! interfaces by name ([`Engine::call`], JSON in, envelope out) or use the
//! typed hot path ([`Engine::hold`], [`Engine::confirm`], [`Engine::release`],
//! [`Engine::availability`]). Every state change is an event in an outbox the
//! host drains with the `next-events` command.
//!
//! ```
//! let engine = yilian_core::Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
//! let out = engine.call("sync-schedule", r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV001","date":"2024-10-30","available_slots":[{"start_time":"09:00","end_time":"10:00"}]}]}"#);
//! assert!(out.contains("\"status\":\"success\""));
//! let out = engine.call("pre-book-slot", r#"{"patient_id":"PAT001","project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00","device_id":"DEV001","clinic_id":"C001"}"#);
//! assert!(out.contains("pre-booked"));
//! ```

mod assistant;
pub mod audit;
mod audit_chain;
pub mod catalog;
mod chronic;
/// The platform client (I2); its HTTP transport needs the cargo feature `client`.
pub mod client;
pub mod clock;
mod command;
mod commands;
pub mod config;
pub mod crypto;
mod domains;
mod due;
pub mod engine;
pub mod error;
mod handoff;
mod indicators;
pub mod identity;
mod lab;
mod machine;
pub mod model;
mod monitor;
mod nonce;
pub mod panic;
mod pool;
pub mod principal;
mod referral;
mod registry;
mod reply;
mod request;
mod upstream;
pub use referral::queue_after_current;
pub mod render;
mod schedule;
mod short;
mod stats;
pub mod store;
pub mod text;
mod views;

pub use engine::rekey;
pub use engine::{Deferred, Engine, Hold, HoldOptions, SlotHandle, VERSION};
pub use error::{Error, ErrorCode, ErrorFamily, Result};
pub use lab::{LabTranslator, TranslatedResult, TranslatorEntry};
pub use model::{format_booking_id, parse_booking_id, Priority};
pub use pool::{Availability, Retired};
pub use principal::{Principal, Role};
pub use request::{envelope, envelope_json, envelope_text, to_json};
pub use views::event_visible_to;
