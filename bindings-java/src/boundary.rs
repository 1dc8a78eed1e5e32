//! The one boundary every native method runs in: `catch_unwind` (through
//! `EnvUnowned::with_env`) plus an error policy that throws the typed Java
//! exception. Nothing unwinds into the JVM and no failure returns silently.

use crate::raw::RawEnv;
use jni::errors::ErrorPolicy;
use jni::objects::{JString, JThrowable, JValue};
use jni::strings::JNIString;
use jni::{jni_sig, jni_str, Env, EnvUnowned};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use yilian_core::Error;

/// Why a native method failed.
#[derive(Debug)]
pub enum Failure {
    /// A core error: thrown as the `YilianException` subclass of its family.
    Core(Error),
    /// A required argument was null: `NullPointerException` naming it.
    Null(&'static str),
    /// The handle is 0: `IllegalStateException`.
    Closed,
    /// A JNI call failed; when it left a Java exception pending, that one wins.
    Jni(jni::errors::Error),
}

impl From<jni::errors::Error> for Failure {
    fn from(e: jni::errors::Error) -> Failure {
        Failure::Jni(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Core(e)
    }
}

thread_local! {
    /// True while this thread runs a native method: the panic hook then keeps
    /// the message for the Java exception instead of printing it.
    static IN_BOUNDARY: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Records "message at file:line" for panics inside a boundary; panics on
/// other threads (core's own workers) still reach the previous hook. The hook
/// belongs to this library's copy of std only, not to other native libraries.
fn install_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let inside = IN_BOUNDARY.try_with(Cell::get).unwrap_or(false);
        if inside {
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let text = format!("{}{location}", yilian_core::panic::payload_text(info.payload()));
            let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(text));
        } else {
            previous(info);
        }
    }));
}

struct InBoundary(bool);

impl InBoundary {
    fn enter() -> InBoundary {
        InBoundary(IN_BOUNDARY.with(|c| c.replace(true)))
    }
}

impl Drop for InBoundary {
    fn drop(&mut self) {
        IN_BOUNDARY.with(|c| c.set(self.0));
    }
}

/// Runs a native method's body: converts its `Err` or panic into a pending Java
/// exception and returns `T::default()` (0 / null) in that case.
pub fn boundary<'local, T, F>(env: &mut EnvUnowned<'local>, f: F) -> T
where
    T: Default,
    F: FnOnce(&mut Env<'local>) -> Result<T, Failure>,
{
    HOOK.call_once(install_hook);
    let _inside = InBoundary::enter();
    env.with_env(f).resolve::<ThrowTyped>()
}

/// The typed hot path's boundary: the same `catch_unwind` and the same
/// exceptions as [`boundary`], but a call that succeeds never builds a jni-rs
/// `Env` (whose guard bookkeeping costs ~40 ns a call); `f` gets the raw env.
/// Failures and panics are handed to [`boundary`], which throws them.
pub fn fast_boundary<'local, T, F>(env: &mut EnvUnowned<'local>, f: F) -> T
where
    T: Default,
    F: FnOnce(RawEnv) -> Result<T, Failure>,
{
    HOOK.call_once(install_hook);
    let _inside = InBoundary::enter();
    // SAFETY: the JVM passed this env to the native method now running.
    let raw = unsafe { RawEnv::new(env.as_raw()) };
    match panic::catch_unwind(AssertUnwindSafe(|| f(raw))) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => boundary(env, move |_| Err(failure)),
        // Re-raised inside `boundary`'s catch_unwind: it reaches `on_panic` with
        // the message the hook kept (resume_unwind does not run the hook again).
        Err(payload) => boundary(env, move |_| panic::resume_unwind(payload)),
    }
}

/// The error policy: every failure leaves exactly one Java exception pending.
struct ThrowTyped;

impl<T: Default> ErrorPolicy<T, Failure> for ThrowTyped {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        err: Failure,
    ) -> jni::errors::Result<T> {
        throw(env, err);
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        payload: Box<dyn Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        // The hook's text names where it panicked; without it, the payload's.
        let e = match LAST_PANIC.with(|p| p.borrow_mut().take()) {
            Some(text) => {
                let _ = yilian_core::panic::error_of(payload);
                yilian_core::panic::error(&text)
            }
            None => yilian_core::panic::error_of(payload),
        };
        throw(env, Failure::Core(e));
        Ok(T::default())
    }
}

fn throw(env: &mut Env<'_>, err: Failure) {
    if env.exception_check() {
        // A Java exception is already pending (a JNI call threw): let it propagate.
        return;
    }
    let first = match &err {
        Failure::Core(e) => throw_yilian(env, e),
        Failure::Null(arg) => env.throw_new(jni_str!("java/lang/NullPointerException"), JNIString::new(format!("{arg} must not be null"))),
        Failure::Closed => env.throw_new(jni_str!("java/lang/IllegalStateException"), jni_str!("the yilian engine is closed")),
        Failure::Jni(e) => throw_yilian(env, &Error::internal(format!("JNI call failed: {e}"))),
    };
    // `throw*` returns Err(JavaException) once the exception is pending: the
    // normal case. Only if nothing is pending did throwing itself fail.
    if !env.exception_check() {
        let text = format!("yilian: could not throw the exception for {err:?}: {first:?}");
        let _ = env.throw_new(jni_str!("java/lang/RuntimeException"), JNIString::new(text));
    }
}

/// Throws `YilianException.fromNative(code, numericCode, message, messageZh)`:
/// the Java side picks the subclass by family, so the mapping lives in one place.
fn throw_yilian(env: &mut Env<'_>, e: &Error) -> jni::errors::Result<()> {
    // FindClass from a native method resolves with its class's loader, so this
    // also works where the jar sits in a child class loader.
    let class = env.find_class(jni_str!("org/yilian/YilianException"))?;
    let code = JString::from_str(env, e.code_str())?;
    let message = JString::from_str(env, e.message())?;
    let message_zh = JString::from_str(env, e.message_zh())?;
    let obj = env
        .call_static_method(
            &class,
            jni_str!("fromNative"),
            jni_sig!("(Ljava/lang/String;ILjava/lang/String;Ljava/lang/String;)Lorg/yilian/YilianException;"),
            &[JValue::Object(&code), JValue::Int(e.numeric_code()), JValue::Object(&message), JValue::Object(&message_zh)],
        )?
        .l()?;
    let throwable = env.cast_local::<JThrowable>(obj)?;
    env.throw(throwable)
}
