//! Typed C calls of commissioned lab testing (委托检验): the label bytes a
//! tube printer takes, without a base64 round trip through JSON.

use crate::boundary::{ffi_boundary, ffi_code};
use crate::handle::{self, yl_engine};
use crate::strings::{arg_str, null_arg};
use std::os::raw::{c_char, c_int};
use yilian_core::render::{LabelFormat, LabelSize};
use yilian_core::{Error, ErrorCode};

/// Writes the label of a printed specimen into `out[0..cap]` as the printer
/// takes it: `format` "zpl" or "svg" (UTF-8 text) or "tspl" (GBK bytes), on
/// 50 × 30 mm stock at 203 dpi. No NUL is appended. `*needed` (when `needed`
/// is not NULL) receives the label's length in bytes; when `cap` is smaller,
/// returns `YL_E_BUFFER_TOO_SMALL` and writes nothing (`out` may be NULL with
/// `cap == 0`: a size query). Never counts as a print (`specimen-reprint`
/// does). An engine configured with an institution sees only its own tubes.
///
/// Returns `YL_OK`, `YL_E_LAB_SPECIMEN_NOT_FOUND`, `YL_E_INVALID_FIELD` (bad
/// `format`), `YL_E_LAB_FORBIDDEN`, `YL_E_BUFFER_TOO_SMALL`, a binding code.
/// Inputs borrowed. Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_specimen_label(
    e: *const yl_engine,
    barcode: *const c_char,
    format: *const c_char,
    out: *mut u8,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    ffi_code!(handle::engine_ref(e).and_then(|h| {
        let barcode = arg_str(barcode, "barcode")?;
        let format = LabelFormat::parse(arg_str(format, "format")?)?;
        let bytes = h.engine.specimen_label(barcode, format, &LabelSize::default())?;
        if !needed.is_null() {
            *needed = bytes.len();
        }
        if out.is_null() && cap > 0 {
            return Err(null_arg("out"));
        }
        if cap < bytes.len() {
            return Err(Error::with(
                ErrorCode::BufferTooSmall,
                format!("the buffer has {cap} bytes; {} are needed", bytes.len()),
                format!("缓冲区只有 {cap} 字节，需要 {} 字节", bytes.len()),
            ));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
        Ok(())
    }))
}
