//! A caught panic as an error: the one conversion every binding's boundary
//! uses (C's `ffi_boundary!`, Python's `detached`, Java's `boundary`), so a
//! panic reads the same in every language: `PANIC` (9002) with the panic's
//! text in `message` (it is the program's, in English). A panic never
//! unwinds into a host.

use crate::error::{Error, ErrorCode, Result};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The text of a panic payload (`panic!("…")` gives a `&str` or a `String`).
pub fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// `PANIC` naming what panicked (`text` may carry the location, as Java's
/// panic hook records it).
pub fn error(text: &str) -> Error {
    Error::with(ErrorCode::Panic, format!("internal error: a panic was caught: {text}"), "内部错误：捕获到异常崩溃（崩溃信息见英文消息）")
}

/// `PANIC` for a caught payload, which is dropped here; a payload whose
/// `Drop` panics again is leaked rather than let unwind out of a boundary.
pub fn error_of(payload: Box<dyn Any + Send>) -> Error {
    let text = payload_text(&*payload);
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    error(&text)
}

/// Runs `f`, turning a panic into `PANIC`.
pub fn catch<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(error_of(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_panic_error_with_its_text_in_both_languages() {
        let e = catch::<()>(|| panic!("slot table torn")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Panic);
        assert!(e.message().contains("slot table torn"), "{}", e.message());
        // The panic's text is the program's, in English: it stays out of `message_zh`.
        assert!(e.message_zh().starts_with("内部错误：捕获到异常崩溃") && !e.message_zh().contains("slot table torn"));
        let e = catch::<()>(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(e.message().contains("non-string payload"));
        assert_eq!(catch(|| Ok(3)).unwrap(), 3);
    }
}
