//! Python objects ⇄ JSON, natively (no `json` module round trip).
//!
//! Requests go Python → JSON text (the core's input, whose size limit then
//! applies to dicts and text alike); answers go `serde_json::Value` → Python.

use crate::errors::binding_err;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::cell::RefCell;
use std::ops::Deref;
use yilian_core::{Error, ErrorCode};

/// Deeper nesting is refused rather than recursed into: a self-referencing
/// dict would otherwise overflow the stack, which aborts instead of unwinding.
/// serde_json's own parser stops at the same depth.
const MAX_DEPTH: usize = 128;

/// JSON text for the core: borrowed from a Python `str`, or built here.
pub enum Text {
    Borrowed(PyBackedStr),
    Owned(String),
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

/// A `str` argument as UTF-8; a lone surrogate (which Python allows and UTF-8
/// cannot carry) is `BindingError` INVALID_UTF8, not a `UnicodeEncodeError`.
pub fn utf8(s: Bound<'_, PyString>, what: &str) -> PyResult<PyBackedStr> {
    let py = s.py();
    PyBackedStr::try_from(s).map_err(|_| {
        binding_err(
            py,
            ErrorCode::InvalidUtf8,
            format!("`{what}` is not valid UTF-8 (it holds a lone surrogate)"),
            format!("`{what}` 不是合法的UTF-8（含有孤立代理字符）"),
        )
    })
}

/// Optional `str` arguments (`request_id=None` …).
pub fn opt_utf8(s: Option<Bound<'_, PyString>>, what: &str) -> PyResult<Option<PyBackedStr>> {
    s.map(|s| utf8(s, what)).transpose()
}

/// A request or config argument: `None` (→ `{}`), JSON text (`str`, or UTF-8
/// `bytes`), or a `dict` serialized here. Anything else is an `InputError`
/// with `code` (INVALID_FIELD for requests, INVALID_CONFIG for configs).
pub fn json_text(obj: Option<&Bound<'_, PyAny>>, what: &str, code: ErrorCode) -> PyResult<Text> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Text::Owned(String::new()));
    };
    let py = obj.py();
    if let Ok(s) = obj.cast::<PyString>() {
        return utf8(s.clone(), what).map(Text::Borrowed);
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
            return match v.to_cow() {
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
                let key = match k.to_cow() {
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
