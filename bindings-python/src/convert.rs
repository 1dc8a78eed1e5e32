//! Python objects ⇄ JSON, natively (no `json` module round trip).
//!
//! Requests go Python → JSON text (the core's input, whose size limit then
//! applies to dicts and text alike); answers go `serde_json::Value` → Python.

use crate::errors::binding_err;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::cell::RefCell;
use std::ffi::c_char;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use yilian_core::{Error, ErrorCode};

/// Deeper nesting is refused rather than recursed into: a self-referencing
/// dict would otherwise overflow the stack, which aborts instead of unwinding.
/// serde_json's own parser stops at the same depth.
const MAX_DEPTH: usize = 128;

/// A `str` argument's UTF-8 text: lent by the `str` object itself where the
/// interpreter allows it, or copied out (see [`lend`]).
pub enum Utf8<'a> {
    Lent(&'a str),
    Backed(PyBackedStr),
}

impl Deref for Utf8<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Utf8::Lent(s) => s,
            Utf8::Backed(s) => s,
        }
    }
}

/// JSON text for the core: borrowed from a Python `str`, or built here.
pub enum Text<'a> {
    Borrowed(Utf8<'a>),
    Owned(String),
}

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

/// Whether the running interpreter has `PyUnicode_AsUTF8AndSize` in its
/// stable ABI (3.10 on); set once by [`init`] when the module loads.
static LEND_UTF8: AtomicBool = AtomicBool::new(false);

extern "C" {
    // Declared here because pyo3-ffi only declares it for abi3-py310 and up;
    // the wheel targets abi3-py38 and calls it only on 3.10+ (see `lend`).
    // CPython has exported it since 3.3, so the symbol resolves at load time
    // on every interpreter the wheel installs on.
    fn PyUnicode_AsUTF8AndSize(unicode: *mut ffi::PyObject, size: *mut ffi::Py_ssize_t) -> *const c_char;
}

/// Called from the module's init: picks the fast path of [`lend`].
pub fn init(py: Python<'_>) {
    LEND_UTF8.store(py.version_info() >= (3, 10), Ordering::Relaxed);
}

/// The UTF-8 text of a `str`. On CPython 3.10+ it is lent by the object:
/// `PyUnicode_AsUTF8AndSize` returns the object's own UTF-8 buffer (its
/// compact ASCII data, or a cached copy that lives as long as the object),
/// so an argument costs no allocation. Before 3.10 that function is outside
/// the stable ABI and `PyBackedStr` copies the text into a `bytes` object.
/// Fails (with Python's `UnicodeEncodeError`) on a lone surrogate.
pub fn lend<'a>(s: &'a Bound<'_, PyString>) -> PyResult<Utf8<'a>> {
    if LEND_UTF8.load(Ordering::Relaxed) {
        let mut size: ffi::Py_ssize_t = 0;
        // SAFETY: `s` is a live `str` (or subclass) and the thread is attached
        // (`Bound` proves both). On success the buffer belongs to the object,
        // is never changed or freed before the object is, and `s` keeps the
        // object alive for 'a; `size` is its length in bytes, without the NUL.
        let p = unsafe { PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size) };
        if p.is_null() {
            return Err(PyErr::fetch(s.py()));
        }
        // SAFETY: as above; CPython only returns valid UTF-8 (a lone surrogate
        // fails instead).
        let text = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(p.cast::<u8>(), size as usize)) };
        return Ok(Utf8::Lent(text));
    }
    PyBackedStr::try_from(s.clone()).map(Utf8::Backed)
}

/// A `str` argument as UTF-8; a lone surrogate (which Python allows and UTF-8
/// cannot carry) is `BindingError` INVALID_UTF8, not a `UnicodeEncodeError`.
pub fn utf8<'a>(s: &'a Bound<'_, PyString>, what: &str) -> PyResult<Utf8<'a>> {
    lend(s).map_err(|_| {
        binding_err(
            s.py(),
            ErrorCode::InvalidUtf8,
            format!("`{what}` is not valid UTF-8 (it holds a lone surrogate)"),
            format!("`{what}` 不是合法的UTF-8（含有孤立代理字符）"),
        )
    })
}

/// Optional `str` arguments (`request_id=None` …).
pub fn opt_utf8<'a>(s: Option<&'a Bound<'_, PyString>>, what: &str) -> PyResult<Option<Utf8<'a>>> {
    s.map(|s| utf8(s, what)).transpose()
}

/// A request or config argument: `None` (→ `{}`), JSON text (`str`, or UTF-8
/// `bytes`), or a `dict` serialized here. Anything else is an `InputError`
/// with `code` (INVALID_FIELD for requests, INVALID_CONFIG for configs).
pub fn json_text<'a>(obj: Option<&'a Bound<'_, PyAny>>, what: &str, code: ErrorCode) -> PyResult<Text<'a>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Text::Owned(String::new()));
    };
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        return utf8(s, what).map(Text::Borrowed);
    }
    if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
        let b: PyBackedBytes = obj.extract()?;
        return match std::str::from_utf8(&b) {
            Ok(s) => Ok(Text::Owned(s.to_string())),
            Err(e) => {
                Err(binding_err(py, ErrorCode::InvalidUtf8, format!("`{what}` bytes are not valid UTF-8: {e}"), format!("`{what}` 字节不是合法的UTF-8：{e}")))
            }
        };
    }
    if obj.is_instance_of::<PyDict>() {
        let failure = RefCell::new(None);
        let out = serde_json::to_string(&PyJson { obj, depth: 0, failure: &failure });
        return match (out, failure.into_inner()) {
            (Ok(s), None) => Ok(Text::Owned(s)),
            (_, Some(e)) => Err(crate::errors::to_py_err(py, &e)),
            (Err(e), None) => Err(binding_err(py, code, format!("`{what}`: {e}"), format!("`{what}`：{e}"))),
        };
    }
    let ty = type_name(obj);
    Err(binding_err(
        py,
        code,
        format!("`{what}` must be a dict or JSON text (str), not {ty}"),
        format!("`{what}` 必须是 dict 或 JSON 文本（str），而不是 {ty}"),
    ))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    match obj.get_type().name() {
        Ok(n) => n.to_string(),
        Err(_) => "?".to_string(),
    }
}

/// Serializes a Python object as JSON. On failure the precise core error is
/// left in `failure` (serde's error type only carries text).
struct PyJson<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
    failure: &'a RefCell<Option<Error>>,
}

impl<'a, 'py> PyJson<'a, 'py> {
    fn fail<E: serde::ser::Error>(&self, code: ErrorCode, en: String, zh: String) -> E {
        let e = E::custom(&en);
        self.failure.borrow_mut().get_or_insert(Error::with(code, en, zh));
        e
    }
    fn not_json<E: serde::ser::Error>(&self, why: &str, zh: &str) -> E {
        self.fail(ErrorCode::InvalidJson, format!("request cannot be written as JSON: {why}"), format!("请求无法转换为JSON：{zh}"))
    }
    fn child<'b>(&'b self, obj: &'b Bound<'py, PyAny>) -> PyJson<'b, 'py> {
        PyJson { obj, depth: self.depth + 1, failure: self.failure }
    }
}

impl Serialize for PyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.obj;
        if self.depth > MAX_DEPTH {
            return Err(self.not_json(&format!("nested deeper than {MAX_DEPTH} levels"), &format!("嵌套超过 {MAX_DEPTH} 层")));
        }
        if o.is_none() {
            return s.serialize_unit();
        }
        if let Ok(v) = o.cast::<PyString>() {
            return match lend(v) {
                Ok(t) => s.serialize_str(&t),
                Err(_) => Err(self.fail(
                    ErrorCode::InvalidUtf8,
                    "a str in the request is not valid UTF-8 (it holds a lone surrogate)".into(),
                    "请求中的字符串不是合法的UTF-8（含有孤立代理字符）".into(),
                )),
            };
        }
        // bool before int: bool is an int subclass in Python.
        if let Ok(b) = o.cast::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if o.is_instance_of::<PyInt>() {
            if let Ok(v) = o.extract::<i64>() {
                return s.serialize_i64(v);
            }
            if let Ok(v) = o.extract::<u64>() {
                return s.serialize_u64(v);
            }
            return Err(self.not_json("an int outside the 64-bit range", "整数超出64位范围"));
        }
        if let Ok(f) = o.cast::<PyFloat>() {
            let v = f.value();
            if !v.is_finite() {
                // serde_json would silently write `null` for NaN and infinities.
                return Err(self.not_json("a float that is NaN or infinite", "浮点数为NaN或无穷大"));
            }
            return s.serialize_f64(v);
        }
        if let Ok(d) = o.cast::<PyDict>() {
            let mut m = s.serialize_map(Some(d.len()))?;
            for (k, v) in d.iter() {
                let Ok(k) = k.cast::<PyString>() else {
                    let ty = type_name(&k);
                    return Err(self.not_json(&format!("a dict key of type {ty} (keys must be str)"), &format!("字典键类型为 {ty}（键必须是 str）")));
                };
                let key = match lend(k) {
                    Ok(t) => t,
                    Err(_) => {
                        return Err(self.fail(
                            ErrorCode::InvalidUtf8,
                            "a dict key in the request is not valid UTF-8".into(),
                            "请求中的字典键不是合法的UTF-8".into(),
                        ))
                    }
                };
                m.serialize_entry(&*key, &self.child(&v))?;
            }
            return m.end();
        }
        if let Ok(l) = o.cast::<PyList>() {
            let mut q = s.serialize_seq(Some(l.len()))?;
            for v in l.iter() {
                q.serialize_element(&self.child(&v))?;
            }
            return q.end();
        }
        if let Ok(t) = o.cast::<PyTuple>() {
            let mut q = s.serialize_seq(Some(t.len()))?;
            for v in t.iter() {
                q.serialize_element(&self.child(&v))?;
            }
            return q.end();
        }
        let ty = type_name(o);
        Err(self.not_json(&format!("a value of type {ty}"), &format!("类型为 {ty} 的值")))
    }
}

/// A core answer as Python objects: dict, list, str, int, float, bool, None.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                // Without serde_json's arbitrary_precision every other number is an f64.
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a.iter().map(|x| to_py(py, x)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(PyString::new(py, k), to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}
