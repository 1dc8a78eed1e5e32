//! Commissioned lab testing (委托检验): catalogue and mapping tables, orders,
//! specimens and labels, shipments, reception, reports and critical values.

use crate::commands::Req;
use crate::error::Result;
use crate::pool::Pool;
use crate::store::Snapshot;
use serde_json::Value;

/// The commands this module serves (see `dispatch`).
pub const COMMANDS: &[&str] = &[];
/// Those of `COMMANDS` that never change state.
pub const QUERIES: &[&str] = &[];

/// The module's in-memory state; every change is also written to its table.
#[derive(Default)]
pub struct LabState {}

/// Rebuilds the state from the store's rows on open.
pub(crate) fn recover(_pool: &Pool, _snap: &Snapshot) -> Result<()> {
    Ok(())
}

/// `None` when `command` is not one of this module's.
pub(crate) fn dispatch(_pool: &Pool, _command: &str, _r: &Req, _req: &Value) -> Option<Result<Value>> {
    None
}
