//! Python bindings of yilian (医联): the native module `yilian._native`.
//!
//! A thin layer: it converts arguments, calls `yilian-core` with the GIL
//! released and inside `catch_unwind`, and converts results and errors. Every
//! rule about slots, bookings and waitlists lives in the core.

mod convert;
mod engine;
mod errors;
mod lab;

use pyo3::prelude::*;
use yilian_core::{Error, ErrorCode};

/// Every error code as (code, numeric_code, family), in numeric order; the
/// family is one of input, not_found, conflict, state, permission,
/// idempotency, storage, binding, internal.
#[pyfunction]
fn error_codes() -> Vec<(&'static str, i32, &'static str)> {
    // The core's table groups codes by domain; callers get them by number.
    let mut codes: Vec<_> = ErrorCode::ALL.iter().map(|c| (c.as_str(), c.numeric(), c.family().name())).collect();
    codes.sort_by_key(|c| c.1);
    codes
}

/// The command names Engine.call() understands.
#[pyfunction]
fn commands() -> Vec<&'static str> {
    yilian_core::Engine::commands().to_vec()
}

/// Test hook, only in a module built with the cargo feature `testing` (the
/// test suite's wheel; the shipped wheel lacks it): panics inside the same
/// boundary as every core call, to show a panic arrives as
/// yilian.InternalError (code PANIC).
#[cfg(feature = "testing")]
#[pyfunction]
fn _test_panic(py: Python<'_>) -> PyResult<()> {
    errors::boundary(py, || -> Result<(), Error> { panic!("deliberate panic from yilian._native._test_panic") })
}

/// Test hook: raises the exception the binding maps `numeric_code` to.
#[pyfunction]
fn _raise_code(py: Python<'_>, numeric_code: i32) -> PyResult<()> {
    let err = match ErrorCode::from_numeric(numeric_code) {
        Some(code) => Error::new(code),
        None => Error::invalid("numeric_code", "no such error code"),
    };
    errors::boundary(py, || Err(err))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    convert::init(m.py());
    m.add("__version__", yilian_core::VERSION)?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::SlotHandle>()?;
    m.add_class::<engine::Hold>()?;
    m.add_class::<engine::Availability>()?;
    m.add_class::<lab::LabTranslator>()?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(commands, m)?)?;
    #[cfg(feature = "testing")]
    m.add_function(wrap_pyfunction!(_test_panic, m)?)?;
    m.add_function(wrap_pyfunction!(_raise_code, m)?)?;
    Ok(())
}
