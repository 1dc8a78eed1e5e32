//! Borrowing C strings as `&str` and copying results out to C.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr::NonNull;
use yilian_core::{Error, ErrorCode};

pub(crate) fn null_arg(name: &str) -> Error {
    Error::with(ErrorCode::NullArgument, format!("argument `{name}` is NULL"), format!("参数 `{name}` 为空指针"))
}

/// A required out-pointer, checked for NULL; write through it with `write`.
pub(crate) fn out_arg<T>(p: *mut T, name: &str) -> Result<NonNull<T>, Error> {
    NonNull::new(p).ok_or_else(|| null_arg(name))
}

/// A required, NUL-terminated UTF-8 argument, borrowed for the call.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, Error> {
    match opt_str(p, name)? {
        Some(s) => Ok(s),
        None => Err(null_arg(name)),
    }
}

/// An optional argument: NULL means absent.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(p).to_str().map(Some).map_err(|e| {
        let at = e.valid_up_to();
        Error::with(
            ErrorCode::InvalidUtf8,
            format!("argument `{name}` is not valid UTF-8 (byte {at})"),
            format!("参数 `{name}` 不是合法的UTF-8（第 {at} 字节）"),
        )
    })
}

/// A library-owned copy of `s` (UTF-8, or GBK for a GBK engine) for the
/// caller, released by `yl_string_free`.
pub(crate) fn into_c_string(s: Vec<u8>) -> Result<*mut c_char, Error> {
    // serde_json escapes U+0000, and no GBK byte of a multi-byte character
    // is 0, so an envelope never holds a NUL byte.
    CString::new(s).map(CString::into_raw).map_err(|_| Error::internal("a response held a NUL byte"))
}

/// Bytes `s` needs in a C buffer, its NUL included.
pub(crate) fn needed_for(s: &[u8]) -> usize {
    s.len() + 1
}

/// Copies `s` and a NUL into `out[0..cap]`. When it does not fit, returns
/// BUFFER_TOO_SMALL and leaves `out` an empty string (if `cap > 0`), so a
/// caller that prints it anyway prints nothing rather than garbage.
/// `*needed` (when not NULL) is always set.
///
/// # Safety
/// `out` is NULL or valid for `cap` bytes; `needed` is NULL or writable.
pub(crate) unsafe fn copy_out(s: &[u8], out: *mut c_char, cap: usize, needed: *mut usize) -> Result<(), Error> {
    let need = needed_for(s);
    if !needed.is_null() {
        *needed = need;
    }
    if out.is_null() && cap > 0 {
        return Err(null_arg("out"));
    }
    if cap < need {
        if cap > 0 {
            *out = 0;
        }
        return Err(Error::with(
            ErrorCode::BufferTooSmall,
            format!("the buffer has {cap} bytes; {need} are needed"),
            format!("缓冲区只有 {cap} 字节，需要 {need} 字节"),
        ));
    }
    std::ptr::copy_nonoverlapping(s.as_ptr(), out.cast::<u8>(), s.len());
    *out.add(s.len()) = 0;
    Ok(())
}
