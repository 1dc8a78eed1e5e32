//! The panic boundary every export runs inside. A panic must never unwind
//! into C (since Rust 1.81 that aborts the host process); it becomes
//! `YL_E_PANIC` with the panic's text in the last-error message.

/// Runs `$body` under `catch_unwind`. On a panic the last error is set to
/// PANIC and `$on_panic(err)` gives the return value.
macro_rules! ffi_boundary {
    (on_panic: $on_panic:expr, $body:expr) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(payload) => {
                let err = $crate::boundary::panic_error(payload);
                $crate::error::set_error(&err);
                #[allow(clippy::redundant_closure_call)]
                ($on_panic)(err)
            }
        }
    }};
}

/// The common case: `$body` is a `Result<(), Error>`; returns the C code and
/// records the last error.
macro_rules! ffi_code {
    ($body:expr) => {
        ffi_boundary!(on_panic: |e: ::yilian_core::Error| e.numeric_code(), $crate::error::finish($body))
    };
}

pub(crate) use {ffi_boundary, ffi_code};

pub(crate) fn panic_error(payload: Box<dyn std::any::Any + Send>) -> yilian_core::Error {
    yilian_core::panic::error_of(payload)
}
