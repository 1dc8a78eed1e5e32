//! Raw JNI for the hot path. jni-rs wraps every call in an `AttachGuard` and a
//! pair of `ExceptionCheck`s; on a hold that costs more than the JNI call
//! itself, so the typed hot path uses these few calls directly, each followed
//! by the one `ExceptionCheck` that `-Xcheck:jni` requires.
//!
//! Java strings are read as UTF-16 with `GetStringRegion` (the JVM allocates
//! nothing, unlike `GetStringUTFChars`) and decoded strictly: an unpaired
//! surrogate is an `INVALID_UTF8` error, not a silent U+FFFD.

use crate::boundary::Failure;
use jni::objects::{JIntArray, JLongArray, JString};
use jni::sys::{jint, jlong, jsize, JNIEnv};
use yilian_core::{Error, ErrorCode};

/// Strings up to this many UTF-16 units (ids, codes) stay on the stack; small
/// enough that moving a `JavaStr` costs little.
const STACK_UNITS: usize = 64;

/// The caller's `JNIEnv`, valid for the native call it was passed to.
#[derive(Clone, Copy)]
pub struct RawEnv(*mut JNIEnv);

macro_rules! jni {
    ($env:expr, $version:ident . $name:ident ( $($arg:expr),* )) => {{
        let env: *mut JNIEnv = $env.0;
        // SAFETY: `env` is the JNIEnv the JVM passed to the running native
        // method (valid on this thread until it returns), and every caller
        // passes arguments of the types the JNI function requires.
        unsafe { ((**env).$version.$name)(env $(, $arg)*) }
    }};
}

impl RawEnv {
    /// # Safety
    /// `env` must be the `JNIEnv` the JVM passed to the running native method.
    pub unsafe fn new(env: *mut JNIEnv) -> RawEnv {
        RawEnv(env)
    }

    /// After a JNI function that may throw: a pending exception becomes an
    /// error (the boundary then lets it propagate to Java untouched).
    fn check(self) -> Result<(), Failure> {
        if jni!(self, v1_2.ExceptionCheck()) {
            Err(Failure::Jni(jni::errors::Error::JavaException))
        } else {
            Ok(())
        }
    }

    /// The string's text, or `None` for a null reference.
    pub fn string(self, s: &JString<'_>, name: &'static str) -> Result<Option<JavaStr>, Failure> {
        if s.is_null() {
            return Ok(None);
        }
        let raw = s.as_raw();
        let len = jni!(self, v1_1.GetStringLength(raw));
        let len = usize::try_from(len).map_err(|_| Failure::Core(Error::internal("negative string length")))?;
        let mut stack = [0u16; STACK_UNITS];
        let mut heap = Vec::new();
        let units: &mut [u16] = if len <= STACK_UNITS {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap[..]
        };
        // `len` came from GetStringLength, so it fits a jsize and the region is in bounds.
        jni!(self, v1_2.GetStringRegion(raw, 0, len as jsize, units.as_mut_ptr()));
        self.check()?;
        JavaStr::decode(units).map(Some).ok_or_else(|| {
            Failure::Core(Error::with(
                ErrorCode::InvalidUtf8,
                format!("argument `{name}` holds an unpaired UTF-16 surrogate"),
                format!("参数 `{name}` 含有不成对的 UTF-16 代理项"),
            ))
        })
    }

    /// A required argument: null is a `NullPointerException` naming it.
    pub fn required(self, s: &JString<'_>, name: &'static str) -> Result<JavaStr, Failure> {
        self.string(s, name)?.ok_or(Failure::Null(name))
    }

    pub fn set_longs(self, array: &JLongArray<'_>, name: &'static str, values: &[jlong]) -> Result<(), Failure> {
        let n = region_len(array.is_null(), name, values.len())?;
        jni!(self, v1_1.SetLongArrayRegion(array.as_raw(), 0, n, values.as_ptr()));
        self.check()
    }

    pub fn set_ints(self, array: &JIntArray<'_>, name: &'static str, values: &[jint]) -> Result<(), Failure> {
        let n = region_len(array.is_null(), name, values.len())?;
        jni!(self, v1_1.SetIntArrayRegion(array.as_raw(), 0, n, values.as_ptr()));
        self.check()
    }
}

/// The checks before writing `len` values into an array: not null, and `len` fits a `jsize`.
fn region_len(is_null: bool, name: &'static str, len: usize) -> Result<jsize, Failure> {
    if is_null {
        return Err(Failure::Null(name));
    }
    jsize::try_from(len).map_err(|_| Failure::Core(Error::internal("array too long")))
}

/// A Java string as UTF-8: on the stack when short (ids on the hot path), so
/// reading an argument allocates nothing.
pub enum JavaStr {
    Stack { bytes: [u8; STACK_BYTES], len: usize },
    Heap(String),
}

/// Room for `STACK_UNITS` UTF-16 units: at most 3 UTF-8 bytes each.
const STACK_BYTES: usize = STACK_UNITS * 3;

impl JavaStr {
    /// UTF-16 to UTF-8; `None` if a surrogate is unpaired.
    fn decode(units: &[u16]) -> Option<JavaStr> {
        if units.len() > STACK_UNITS {
            return String::from_utf16(units).ok().map(JavaStr::Heap);
        }
        let mut bytes = [0u8; STACK_BYTES];
        let mut len = 0;
        for c in char::decode_utf16(units.iter().copied()) {
            let c = c.ok()?;
            len += c.encode_utf8(&mut bytes[len..]).len();
        }
        Some(JavaStr::Stack { bytes, len })
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Only `decode` fills the buffer, with whole UTF-8 encoded chars.
            JavaStr::Stack { bytes, len } => std::str::from_utf8(&bytes[..*len]).unwrap_or_default(),
            JavaStr::Heap(s) => s,
        }
    }
}

impl std::ops::Deref for JavaStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}
