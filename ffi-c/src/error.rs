//! Return codes (the core's numeric codes, 1:1) and the per-thread last error.

use crate::text::TextEncoding;
use std::cell::RefCell;
use std::ffi::CStr;
use std::os::raw::c_int;
use yilian_core::Error;

// The codes are generated from yilian-core's table by tools/gen-bindings
// (numbers written out: cbindgen copies only literals into the header);
// `codes_match_core` below and that tool's --check fail if they drift.
mod codes;

use codes::CODE_NAMES;
pub use codes::*;

pub(crate) fn code_name(code: c_int) -> &'static CStr {
    CODE_NAMES.iter().find(|(n, _)| *n == code).map(|(_, s)| *s).unwrap_or(c"UNKNOWN")
}

/// The last result of this thread: code and both messages (empty on success),
/// and the encoding the messages are read out in: UTF-8, unless the call
/// that set them was a JSON call on a GBK engine (or opened one), see
/// [`set_encoding`].
pub(crate) struct Last {
    pub code: c_int,
    pub message: String,
    pub message_zh: String,
    pub encoding: TextEncoding,
}

thread_local! {
    static LAST: RefCell<Last> = const { RefCell::new(Last { code: YL_OK, message: String::new(), message_zh: String::new(), encoding: TextEncoding::Utf8 }) };
}

/// Records success. `try_with`: a call from a thread-local destructor after
/// ours is gone still works, it just records nothing.
pub(crate) fn set_ok() {
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            if l.code != YL_OK {
                l.code = YL_OK;
                l.message.clear();
                l.message_zh.clear();
            }
            l.encoding = TextEncoding::Utf8;
        }
    });
}

/// Records an error and returns its code.
pub(crate) fn set_error(e: &Error) -> c_int {
    let code = e.numeric_code();
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.code = code;
            l.message.clear();
            l.message.push_str(e.message());
            l.message_zh.clear();
            l.message_zh.push_str(e.message_zh());
            l.encoding = TextEncoding::Utf8;
        }
    });
    code
}

/// After a JSON call on an engine (or its open): its last error is read out
/// in that engine's encoding. Every other call leaves it UTF-8 (`set_ok` and
/// `set_error` reset it), so the rule is "the messages come in the encoding
/// of the call that set them".
pub(crate) fn set_encoding(encoding: TextEncoding) {
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.encoding = encoding;
        }
    });
}

/// Records the outcome of a call and returns its code.
pub(crate) fn finish(r: Result<(), Error>) -> c_int {
    match r {
        Ok(()) => {
            set_ok();
            YL_OK
        }
        Err(e) => set_error(&e),
    }
}

pub(crate) fn with_last<R>(f: impl FnOnce(&Last) -> R) -> Option<R> {
    LAST.try_with(|l| l.try_borrow().ok().map(|l| f(&l))).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yilian_core::ErrorCode;

    #[test]
    fn codes_match_core() {
        // Same set, same numbers, same names as yilian-core's ErrorCode, plus YL_OK.
        assert_eq!(CODE_NAMES.len(), ErrorCode::ALL.len() + 1);
        assert_eq!(CODE_NAMES[0], (0, c"OK"));
        for c in ErrorCode::ALL {
            let name = code_name(c.numeric());
            assert_eq!(name.to_str().ok(), Some(c.as_str()), "code {}", c.numeric());
        }
        assert_eq!(code_name(42), c"UNKNOWN");
    }
}
