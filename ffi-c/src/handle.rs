//! The engine handle C holds: a boxed core `Engine` plus a serial number.

use crate::text::TextEncoding;
use std::sync::atomic::{AtomicU64, Ordering};
use yilian_core::{Engine, Error};

/// An open engine. Opaque to C; create with `yl_engine_open`, free with
/// `yl_engine_close`.
#[allow(non_camel_case_types)]
pub struct yl_engine {
    pub(crate) engine: Engine,
    /// Unique per open in this process, unlike the address, which the
    /// allocator may hand to the next engine after a close.
    pub(crate) serial: u64,
    /// The text encoding of this engine's JSON calls (config `text_encoding`).
    pub(crate) encoding: TextEncoding,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl yl_engine {
    pub(crate) fn new(engine: Engine, encoding: TextEncoding) -> yl_engine {
        yl_engine { engine, serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed), encoding }
    }
}

/// # Safety
/// `e` is NULL or a live handle from `yl_engine_open`.
pub(crate) unsafe fn engine_ref<'a>(e: *const yl_engine) -> Result<&'a yl_engine, Error> {
    e.as_ref().ok_or_else(|| crate::strings::null_arg("engine"))
}
