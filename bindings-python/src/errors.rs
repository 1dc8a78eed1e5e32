//! Core errors as Python exceptions, and the boundary every core call runs in.
//!
//! One exception class per error family (the thousands digit of the numeric
//! code), all under `yilian.YilianError(Exception)`. The class, not the code,
//! is what `except` clauses match on; `.code` tells the exact case.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{create_exception, intern};
use std::panic::{catch_unwind, AssertUnwindSafe};
use yilian_core::{Error, ErrorCode, ErrorFamily};

create_exception!(
    yilian,
    YilianError,
    PyException,
    "Base class of every yilian error. `.code` (str, e.g. 'SLOT_FULL'), `.numeric_code` (int, stable), `.message` (English) and `.message_zh` (Chinese); str(err) is 'CODE: message'."
);
create_exception!(
    yilian,
    InputError,
    YilianError,
    "1xxx: the request itself is malformed (bad JSON, missing or wrong-typed field, unknown command, too large)."
);
create_exception!(yilian, NotFoundError, YilianError, "2xxx: something named in the request does not exist (slot, booking, device, project, hospital).");
create_exception!(yilian, ConflictError, YilianError, "3xxx: the pool refuses the request (full, closed, not released, overlapping, duplicate).");
create_exception!(yilian, StateError, YilianError, "4xxx: the booking is in a state that does not allow the step (e.g. HOLD_EXPIRED).");
create_exception!(yilian, ForbiddenError, YilianError, "5xxx: this institution may not act on that object.");
create_exception!(yilian, IdempotencyError, YilianError, "6xxx: a request id was reused for a different request, or is still in progress.");
create_exception!(yilian, StorageError, YilianError, "7xxx: the durable store failed, is locked by another engine, or the engine is closed.");
create_exception!(yilian, BindingError, YilianError, "8xxx: an argument only the binding can see is wrong (e.g. a str that is not valid UTF-8).");
create_exception!(yilian, InternalError, YilianError, "9xxx: a bug in yilian: a caught Rust panic (PANIC) or a broken invariant (INTERNAL).");

/// The Python class of a family. Exhaustive: a new family fails to compile here.
fn class_of(py: Python<'_>, family: ErrorFamily) -> Bound<'_, pyo3::types::PyType> {
    match family {
        ErrorFamily::Input => py.get_type::<InputError>(),
        ErrorFamily::NotFound => py.get_type::<NotFoundError>(),
        ErrorFamily::Conflict => py.get_type::<ConflictError>(),
        ErrorFamily::State => py.get_type::<StateError>(),
        ErrorFamily::Permission => py.get_type::<ForbiddenError>(),
        ErrorFamily::Idempotency => py.get_type::<IdempotencyError>(),
        ErrorFamily::Storage => py.get_type::<StorageError>(),
        ErrorFamily::Binding => py.get_type::<BindingError>(),
        ErrorFamily::Internal => py.get_type::<InternalError>(),
    }
}

/// The Python exception for a core error, with its code and both messages set.
pub fn to_py_err(py: Python<'_>, e: &Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let inst = class_of(py, e.family()).call1((e.to_string(),))?;
        inst.setattr(intern!(py, "code"), e.code_str())?;
        inst.setattr(intern!(py, "numeric_code"), e.numeric_code())?;
        inst.setattr(intern!(py, "message"), e.message())?;
        inst.setattr(intern!(py, "message_zh"), e.message_zh())?;
        Ok(PyErr::from_value(inst))
    };
    // Building the instance only fails if Python itself is failing (e.g. out of
    // memory); that error is then the more useful one to raise.
    match build() {
        Ok(err) | Err(err) => err,
    }
}

/// A core error raised by the binding itself (argument conversion).
pub fn binding_err(py: Python<'_>, code: ErrorCode, en: String, zh: String) -> PyErr {
    to_py_err(py, &Error::with(code, en, zh))
}

/// Runs one core call with the GIL released (other Python threads run
/// meanwhile) and inside `catch_unwind`, so a Rust panic becomes the core
/// error PANIC instead of PyO3's `PanicException`, which derives from
/// `BaseException` and escapes `except Exception`. Makes no Python object.
pub fn detached<T, F>(py: Python<'_>, f: F) -> Result<T, Error>
where
    T: Send,
    F: FnOnce() -> Result<T, Error> + Send,
{
    unwound(py.detach(|| catch_unwind(AssertUnwindSafe(f))))
}

fn unwound<T>(outcome: std::thread::Result<Result<T, Error>>) -> Result<T, Error> {
    match outcome {
        Ok(result) => result,
        Err(payload) => Err(yilian_core::panic::error_of(payload)),
    }
}

/// `detached`, with a core error raised as its Python exception.
pub fn boundary<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, Error> + Send,
{
    detached(py, f).map_err(|e| to_py_err(py, &e))
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("YilianError", py.get_type::<YilianError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("ForbiddenError", py.get_type::<ForbiddenError>())?;
    m.add("IdempotencyError", py.get_type::<IdempotencyError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("BindingError", py.get_type::<BindingError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
