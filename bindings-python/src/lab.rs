//! `yilian.LabTranslator`: lab results into an institution's sub-items.
//!
//! The core compiles the translation (`Engine::lab_translator`); this class
//! keeps its table as a Python dict of interned strings, so `translate` is a
//! dict lookup and a dict store per result, run in native code with the
//! hashes Python already cached on the code strings.

use crate::errors::to_py_err;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

/// A compiled translation from the codes a lab reports in (standard
/// sub-item codes, and the lab's own sub-item codes when made with
/// ``lab_id``) to one institution's sub-item codes. Made by
/// ``Engine.lab_translator()``; a snapshot of the mapping at that moment.
#[pyclass(frozen, module = "yilian", name = "LabTranslator")]
pub struct LabTranslator {
    institution_id: String,
    lab_id: Option<String>,
    /// Lab code → institution code (both interned str).
    codes: Py<PyDict>,
    /// Lab code → (institution code, institution name, standard code, unit, reference range).
    details: Py<PyDict>,
}

impl LabTranslator {
    pub fn new(py: Python<'_>, t: &yilian_core::LabTranslator) -> PyResult<LabTranslator> {
        let codes = PyDict::new(py);
        let details = PyDict::new(py);
        for (code, e) in t.codes() {
            let k = PyString::intern(py, code);
            codes.set_item(&k, PyString::intern(py, &e.inst_code))?;
            details.set_item(&k, (&*e.inst_code, &*e.inst_name, &*e.std_code, &*e.unit, &*e.ref_range))?;
        }
        Ok(LabTranslator {
            institution_id: t.institution_id().to_string(),
            lab_id: t.lab_id().map(str::to_string),
            codes: codes.unbind(),
            details: details.unbind(),
        })
    }
}

fn unmapped(py: Python<'_>, code: &Bound<'_, PyAny>) -> PyErr {
    let shown: String = code.str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    to_py_err(py, &yilian_core::LabTranslator::unmapped(&shown))
}

/// The dict case, the hot one, with the C API directly: one borrowed walk
/// of the input, one lookup and one store per result, no wrapper objects.
fn translate_dict<'py>(py: Python<'py>, codes: &Bound<'py, PyDict>, results: &Bound<'py, PyDict>, strict: bool) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let mut pos: ffi::Py_ssize_t = 0;
    let mut k: *mut ffi::PyObject = std::ptr::null_mut();
    let mut v: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `results`, `codes` and `out` are live dicts held by this frame
    // and the GIL is held throughout. A key that is not an exact str may run
    // Python code in its __hash__ or __eq__ (which could mutate `results`),
    // so its key and value are owned (`from_borrowed_ptr` takes a reference)
    // until they are stored; `codes` is private, so its lent value stays valid.
    unsafe {
        while ffi::PyDict_Next(results.as_ptr(), &mut pos, &mut k, &mut v) != 0 {
            // An exact str hashes and compares in C: nothing can run between
            // the walk and the store, so the lent references stay valid.
            // Anything else is held for the duration of its lookup.
            let held = if ffi::PyUnicode_CheckExact(k) != 0 { None } else { Some((Bound::from_borrowed_ptr(py, k), Bound::from_borrowed_ptr(py, v))) };
            let inst = ffi::PyDict_GetItemWithError(codes.as_ptr(), k);
            if inst.is_null() {
                if let Some(e) = PyErr::take(py) {
                    return Err(e);
                }
                if strict {
                    return Err(unmapped(py, &Bound::from_borrowed_ptr(py, k)));
                }
                continue;
            }
            if ffi::PyDict_SetItem(out.as_ptr(), inst, v) != 0 {
                return Err(PyErr::fetch(py));
            }
            drop(held);
        }
    }
    Ok(out)
}

#[pymethods]
impl LabTranslator {
    /// Translates results into ``{institution sub-item code: value}``.
    ///
    /// ``results`` is a dict ``{lab code: value}``, or a list of
    /// ``(code, value)`` pairs or of ``{"item_code": ..., "value": ...}``
    /// dicts. Values are passed through unchanged. A code the institution has
    /// not mapped raises ConflictError (LAB_ITEM_UNMAPPED) unless
    /// ``strict=False``, which leaves it out.
    #[pyo3(signature = (results, *, strict=true))]
    fn translate<'py>(&self, py: Python<'py>, results: &Bound<'py, PyAny>, strict: bool) -> PyResult<Bound<'py, PyDict>> {
        let codes = self.codes.bind(py);
        let out = PyDict::new(py);
        let put = |k: &Bound<'py, PyAny>, v: Bound<'py, PyAny>| -> PyResult<()> {
            match codes.get_item(k)? {
                Some(inst) => out.set_item(inst, v),
                None if strict => Err(unmapped(py, k)),
                None => Ok(()),
            }
        };
        if let Ok(d) = results.cast::<PyDict>() {
            return translate_dict(py, codes, d, strict);
        } else if let Ok(l) = results.cast::<PyList>() {
            for e in l.iter() {
                if let Ok(t) = e.cast::<PyTuple>() {
                    if t.len() != 2 {
                        return Err(PyTypeError::new_err("each pair must be (code, value)"));
                    }
                    put(&t.get_item(0)?, t.get_item(1)?)?;
                } else if let Ok(d) = e.cast::<PyDict>() {
                    let k = d.get_item("item_code")?.ok_or_else(|| PyTypeError::new_err("a result dict needs item_code"))?;
                    let v = d.get_item("value")?.unwrap_or_else(|| py.None().into_bound(py));
                    put(&k, v)?;
                } else {
                    return Err(PyTypeError::new_err("results must be a dict or a list of (code, value) pairs or result dicts"));
                }
            }
        } else {
            return Err(PyTypeError::new_err("results must be a dict or a list"));
        }
        Ok(out)
    }

    /// ``(institution code, institution name, standard code, unit, reference
    /// range)`` of a lab code, or None when the institution has not mapped it.
    fn lookup<'py>(&self, py: Python<'py>, code: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.details.bind(py).get_item(code)
    }

    /// The institution whose sub-items results are translated into.
    #[getter]
    fn institution_id(&self) -> &str {
        &self.institution_id
    }

    /// The lab whose own codes are understood, if any.
    #[getter]
    fn lab_id(&self) -> Option<&str> {
        self.lab_id.as_deref()
    }

    /// How many codes are understood.
    fn __len__(&self, py: Python<'_>) -> usize {
        self.codes.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("LabTranslator(institution_id={:?}, lab_id={:?}, codes={})", self.institution_id, self.lab_id, self.codes.bind(py).len())
    }
}
