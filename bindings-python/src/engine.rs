//! `yilian.Engine` and the objects of its typed hot path.

use crate::convert::{json_text, opt_utf8, to_py, utf8};
use crate::errors::{boundary, detached, to_py_err};
use arc_swap::ArcSwapOption;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};
use std::sync::Arc;
use std::time::Duration;
use yilian_core::{Error, ErrorCode, HoldOptions, Priority};

/// The engine: the shared slot pool (号源池) of one process.
///
/// Engine(config=None) opens it from a dict or JSON text (None means {}: in
/// memory, acting as the platform; {"data_dir": ...}: durable, recovered as it
/// was). Thread-safe: share one engine between threads; every call releases
/// the GIL while the core works. Use it as a context manager or call close().
#[pyclass(frozen, module = "yilian", name = "Engine")]
pub struct Engine {
    /// `None` once closed. close() drops the core engine rather than only
    /// closing it: the core releases its data-directory lock on drop, and a
    /// Python object may outlive close() (`with Engine(...) as e:` keeps `e`),
    /// so the directory must be free for the next Engine as soon as close() returns.
    inner: ArcSwapOption<yilian_core::Engine>,
}

impl Engine {
    /// Runs `f` on the core engine (ENGINE_CLOSED once close() took it) with
    /// the GIL released. The arc-swap guard ends before any Python object is
    /// made (result or exception): an allocation can run a finalizer that
    /// calls close(), which waits for guards to end.
    fn with_core<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&yilian_core::Engine) -> Result<T, Error> + Send,
    {
        let result = {
            let guard = self.inner.load();
            let engine = guard.as_deref();
            detached(py, || match engine {
                Some(e) => f(e),
                None => Err(Error::new(ErrorCode::EngineClosed)),
            })
        };
        result.map_err(|e| to_py_err(py, &e))
    }

    /// confirm() and release(): `op` on one booking, with an optional request id.
    fn on_booking(
        &self,
        py: Python<'_>,
        booking_id: u64,
        request_id: Option<&Bound<'_, PyString>>,
        op: fn(&yilian_core::Engine, u64, Option<&str>) -> Result<(), Error>,
    ) -> PyResult<()> {
        let request_id = opt_utf8(request_id, "request_id")?;
        self.with_core(py, |e| op(e, booking_id, request_id.as_deref()))
    }
}

/// A slot resolved once by Engine.slot(), for the typed hot path.
#[pyclass(frozen, eq, hash, module = "yilian", name = "SlotHandle")]
#[derive(PartialEq, Eq, Hash)]
pub struct SlotHandle {
    index: u32,
    slot_id: String,
}

/// A hold on one place (预占), returned by Engine.hold(): confirm or release it
/// before `expires_ms`.
#[pyclass(frozen, eq, module = "yilian", name = "Hold")]
pub struct Hold {
    // Kept as the Python int itself: on a frozen class PyO3 serves a `Py<T>`
    // field as a struct member, which the interpreter reads without calling
    // into the extension (`hold(...).booking_id` is on the typed hot path).
    /// The booking's number, for confirm() and release().
    #[pyo3(get, name = "booking_id")]
    booking_id_int: Py<PyInt>,
    booking_id: u64,
    expires_ms: i64,
}

impl PartialEq for Hold {
    fn eq(&self, other: &Hold) -> bool {
        (self.booking_id, self.expires_ms) == (other.booking_id, other.expires_ms)
    }
}

impl Eq for Hold {}

/// The places of one slot at one moment, returned by Engine.availability().
#[pyclass(frozen, eq, module = "yilian", name = "Availability")]
#[derive(PartialEq, Eq)]
pub struct Availability {
    inner: yilian_core::Availability,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (config=None))]
    fn new(py: Python<'_>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let text = json_text(config, "config", ErrorCode::InvalidConfig)?;
        let inner = boundary(py, || yilian_core::Engine::open(&text))?;
        Ok(Engine { inner: ArcSwapOption::from_pointee(inner) })
    }

    /// Closes the engine: waits for calls in progress on other threads, flushes
    /// the store and frees the data directory. Idempotent; later calls raise
    /// StorageError with code ENGINE_CLOSED.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        boundary(py, || {
            let Some(engine) = self.inner.swap(None) else {
                return Ok(()); // already closed
            };
            // New calls now see ENGINE_CLOSED. Calls already inside the core hold
            // their own reference (arc-swap turns their guards into counts on
            // swap): let them finish first, because a change the core makes after
            // its store stopped would wait for a commit that never comes.
            while Arc::strong_count(&engine) > 1 {
                std::thread::sleep(Duration::from_micros(200));
            }
            engine.close();
            drop(engine); // the last reference: the directory lock goes with it
            Ok(())
        })
    }

    /// True once close() has been called.
    #[getter]
    fn closed(&self) -> bool {
        match self.inner.load().as_deref() {
            Some(e) => e.is_closed(),
            None => true,
        }
    }

    /// Returns the engine itself.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the engine; exceptions propagate.
    #[pyo3(signature = (exc_type=None, exc_value=None, traceback=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc_value: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let _ = (exc_type, exc_value, traceback);
        self.close(py)
    }

    fn __repr__(&self) -> String {
        format!("<yilian.Engine {}>", if self.closed() { "closed" } else { "open" })
    }

    /// Calls a command of the source's interfaces (e.g. "pre-book-slot") with a
    /// dict or JSON text request (None means {}), and returns the answer's
    /// `data` as Python objects. `principal` (a dict or JSON text, e.g.
    /// {"role": "community", "institution_id": "C001"}) states who acts; None
    /// acts as the engine's own principal. Raises a YilianError subclass on failure.
    #[pyo3(signature = (command, request=None, *, principal=None))]
    fn call(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyString>,
        request: Option<&Bound<'_, PyAny>>,
        principal: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let command = utf8(command, "command")?;
        let text = json_text(request, "request", ErrorCode::InvalidField)?;
        // The principal the host states (S1), a dict or JSON text; None: the engine's own.
        let principal = match principal {
            None => None,
            Some(p) => Some(json_text(Some(p), "principal", ErrorCode::InvalidField)?),
        };
        let data = self.with_core(py, |e| match &principal {
            None => e.call_value(&command, &text),
            Some(p) => e.call_value_as_json(p, &command, &text),
        })?;
        Ok(to_py(py, &data)?.unbind())
    }

    /// Resolves a slot id (e.g. "EX-H001-DEV001-20241030-09001000") once, for
    /// hold() and availability().
    fn slot(&self, py: Python<'_>, slot_id: &Bound<'_, PyString>) -> PyResult<SlotHandle> {
        let slot_id = utf8(slot_id, "slot_id")?;
        let handle = self.with_core(py, |e| e.slot_handle(&slot_id))?;
        Ok(SlotHandle { index: handle.0, slot_id: slot_id.to_string() })
    }

    /// Holds one place of `slot` for a patient until the hold time-to-live
    /// passes. `request_id` makes a retry return the same hold; `priority` is
    /// one of normal, referral, special_needs, critical, surgery.
    #[pyo3(signature = (slot, patient_id, *, request_id=None, clinic_id=None, priority=None))]
    fn hold(
        &self,
        py: Python<'_>,
        slot: &Bound<'_, SlotHandle>,
        patient_id: &Bound<'_, PyString>,
        request_id: Option<&Bound<'_, PyString>>,
        clinic_id: Option<&Bound<'_, PyString>>,
        priority: Option<&Bound<'_, PyString>>,
    ) -> PyResult<Hold> {
        let index = slot.get().index;
        let patient_id = utf8(patient_id, "patient_id")?;
        let request_id = opt_utf8(request_id, "request_id")?;
        let clinic_id = opt_utf8(clinic_id, "clinic_id")?;
        let priority = opt_utf8(priority, "priority")?;
        let hold = self.with_core(py, |engine| {
            let priority = priority.as_deref().map(Priority::parse).transpose()?;
            let opts = HoldOptions { request_id: request_id.as_deref(), clinic_id: clinic_id.as_deref(), priority };
            engine.hold(yilian_core::SlotHandle(index), &patient_id, &opts)
        })?;
        let booking_id_int = hold.booking_id.into_pyobject(py)?.unbind();
        Ok(Hold { booking_id_int, booking_id: hold.booking_id, expires_ms: hold.expires_ms })
    }

    /// Confirms a hold; the booking is then kept until cancelled.
    #[pyo3(signature = (booking_id, request_id=None))]
    fn confirm(&self, py: Python<'_>, booking_id: u64, request_id: Option<&Bound<'_, PyString>>) -> PyResult<()> {
        self.on_booking(py, booking_id, request_id, yilian_core::Engine::confirm)
    }

    /// Releases a hold or cancels a booking; the place returns to the pool (or
    /// to the first waiter).
    #[pyo3(signature = (booking_id, request_id=None))]
    fn release(&self, py: Python<'_>, booking_id: u64, request_id: Option<&Bound<'_, PyString>>) -> PyResult<()> {
        self.on_booking(py, booking_id, request_id, yilian_core::Engine::release)
    }

    /// The places of `slot` now. Never changes state.
    fn availability(&self, py: Python<'_>, slot: &Bound<'_, SlotHandle>) -> PyResult<Availability> {
        let index = slot.get().index;
        let inner = self.with_core(py, |e| e.availability(yilian_core::SlotHandle(index)))?;
        Ok(Availability { inner })
    }
    /// Compiles the translation of lab results into ``institution_id``'s
    /// sub-items (委托检验报告): standard sub-item codes, and the lab's own
    /// codes when ``lab_id`` is given. Compile again after the mapping changes.
    #[pyo3(signature = (institution_id, lab_id=None))]
    fn lab_translator(
        &self,
        py: Python<'_>,
        institution_id: &Bound<'_, PyString>,
        lab_id: Option<&Bound<'_, PyString>>,
    ) -> PyResult<crate::lab::LabTranslator> {
        let inst = utf8(institution_id, "institution_id")?;
        let lab = opt_utf8(lab_id, "lab_id")?;
        let t = self.with_core(py, |e| e.lab_translator(&inst, lab.as_deref()))?;
        crate::lab::LabTranslator::new(py, &t)
    }

    /// Checks the pool's invariants (capacity = booked + held + remaining for
    /// every slot, counts agree with bookings); raises InternalError if broken.
    fn check_invariants(&self, py: Python<'_>) -> PyResult<()> {
        self.with_core(py, |e| e.check_invariants())
    }
}

/// A string as Python's repr() writes it (quotes and escapes as Python users expect).
fn py_repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_cow()?.into_owned())
}

#[pymethods]
impl SlotHandle {
    /// The slot id it was resolved from.
    #[getter]
    fn slot_id(&self) -> &str {
        &self.slot_id
    }

    /// The slot's index in its engine (valid only for that engine).
    #[getter]
    fn index(&self) -> u32 {
        self.index
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("SlotHandle({}, index={})", py_repr(py, &self.slot_id)?, self.index))
    }
}

#[pymethods]
impl Hold {
    /// The booking id as the command layer writes it ("B000001").
    #[getter]
    fn booking_ref(&self) -> String {
        yilian_core::format_booking_id(self.booking_id)
    }

    /// When the hold lapses, in milliseconds since the Unix epoch (UTC).
    #[getter]
    fn expires_ms(&self) -> i64 {
        self.expires_ms
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Hold(booking_id={}, booking_ref={}, expires_ms={})", self.booking_id, py_repr(py, &self.booking_ref())?, self.expires_ms))
    }
}

#[pymethods]
impl Availability {
    /// Places the slot offers in all.
    #[getter]
    fn capacity(&self) -> u32 {
        self.inner.capacity
    }
    /// Places taken by confirmed bookings.
    #[getter]
    fn booked(&self) -> u32 {
        self.inner.booked
    }
    /// Places taken by holds not yet confirmed.
    #[getter]
    fn held(&self) -> u32 {
        self.inner.held
    }
    /// Places still free: capacity - booked - held.
    #[getter]
    fn remaining(&self) -> u32 {
        self.inner.remaining
    }
    /// Places still kept for referral and urgent classes.
    #[getter]
    fn reserved_quota(&self) -> u32 {
        self.inner.reserved_quota
    }
    /// Patients on the slot's waitlist.
    #[getter]
    fn waiting(&self) -> u32 {
        self.inner.waiting
    }
    /// 号源紧张: few places left.
    #[getter]
    fn tight(&self) -> bool {
        self.inner.tight
    }
    /// The slot is closed (service stopped).
    #[getter]
    fn closed(&self) -> bool {
        self.inner.closed
    }

    fn __repr__(&self) -> String {
        let a = &self.inner;
        format!(
            "Availability(capacity={}, booked={}, held={}, remaining={}, reserved_quota={}, waiting={}, tight={}, closed={})",
            a.capacity,
            a.booked,
            a.held,
            a.remaining,
            a.reserved_quota,
            a.waiting,
            if a.tight { "True" } else { "False" },
            if a.closed { "True" } else { "False" },
        )
    }
}
