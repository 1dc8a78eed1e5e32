//! JNI bindings of yilian (医联): the native half of the `org.yilian` Java package.
//!
//! A thin layer, after libsignal's JNI bridge: every exported function converts
//! its arguments, calls `yilian-core`, converts the result, and runs inside one
//! boundary (`boundary`, or `fast_boundary` on the typed hot path) that catches
//! panics and turns every failure into a Java exception: core errors into
//! `org.yilian.YilianException` subclasses, a panic into
//! `org.yilian.YilianInternalError`, null arguments into `NullPointerException`.
//! No function keeps a JNI reference past its return or calls into Java from
//! any thread but the caller's.
//!
//! Handles cross as `long`: a `Box<Engine>` pointer. The Java `Engine` holds
//! a read lock around every call and frees the handle under the write lock, so
//! `engineClose` never runs while another thread is inside a call. A
//! `LabTranslator` handle is a `Box<yilian_core::LabTranslator>` pointer owned
//! the same way by the Java `LabTranslator` (its own lock, freed once by
//! `labTranslatorClose`); it borrows nothing from the engine.

mod boundary;
mod raw;

use boundary::{boundary, fast_boundary, Failure};
use jni::objects::{JByteArray, JClass, JIntArray, JLongArray, JObject, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong};
use jni::{Env, EnvUnowned};
use raw::RawEnv;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;
use yilian_core::render::{LabelFormat, LabelSize};
use yilian_core::{Engine, Error, ErrorCode, HoldOptions, LabTranslator, Priority, SlotHandle};

/// The library's own version; the jar refuses a library whose version differs.
const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Borrows the engine behind a handle. The Java side holds its read lock for
/// the whole native call, so the box cannot be freed while this borrow lives.
fn engine<'a>(handle: jlong) -> Result<&'a Engine, Failure> {
    if handle == 0 {
        return Err(Failure::Closed);
    }
    // SAFETY: a non-zero handle is a pointer made by `Box::into_raw` in
    // `engineOpen` and freed only by `engineClose`, which the Java side calls
    // once, under its write lock, after swapping the handle to 0.
    Ok(unsafe { &*(handle as *const Engine) })
}

fn slot_handle(index: jint) -> Result<SlotHandle, Failure> {
    u32::try_from(index).map(SlotHandle).map_err(|_| Failure::Core(Error::invalid("slot", "a slot handle is never negative")))
}

fn booking_id(id: jlong) -> Result<u64, Failure> {
    u64::try_from(id).map_err(|_| Failure::Core(Error::invalid("booking_id", "a booking id is never negative")))
}

/// The raw env of a jni-rs `Env`, for the shared string conversion.
fn raw(env: &Env<'_>) -> RawEnv {
    // SAFETY: an `Env` only exists inside the native call whose env it wraps.
    unsafe { RawEnv::new(env.get_raw()) }
}

// ------------------------------------------------------------------ library

#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_libraryVersion<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>) -> JString<'local> {
    boundary(&mut env, |env| Ok(JString::from_str(env, LIB_VERSION)?))
}

#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_coreVersion<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>) -> JString<'local> {
    boundary(&mut env, |env| Ok(JString::from_str(env, yilian_core::VERSION)?))
}

/// Every error code as `numeric:CODE:family`, for the Java test that checks
/// each family maps to an exception class.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_errorCodes<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JObjectArray<'local, JString<'local>> {
    boundary(&mut env, |env| {
        let rows: Vec<String> = ErrorCode::ALL.iter().map(|c| format!("{}:{}:{}", c.numeric(), c.as_str(), c.family().name())).collect();
        string_array(env, &rows)
    })
}

/// The command names `call` understands.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_commands<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JObjectArray<'local, JString<'local>> {
    boundary(&mut env, |env| string_array(env, Engine::commands()))
}

/// A `String[]`. Each element's local reference lives in its own local frame,
/// so the loop never grows the caller's frame (JNI guarantees only 16 slots;
/// `-Xcheck:jni` warns past 32).
fn string_array<'local, S: AsRef<str>>(env: &mut Env<'local>, rows: &[S]) -> Result<JObjectArray<'local, JString<'local>>, Failure> {
    let array = JObjectArray::<JString>::new(env, rows.len(), JString::null())?;
    for (i, row) in rows.iter().enumerate() {
        env.with_local_frame(1, |env| -> Result<(), Failure> {
            let s = JString::from_str(env, row.as_ref())?;
            array.set_element(env, i, &s)?;
            Ok(())
        })?;
    }
    Ok(array)
}

#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_formatBookingId<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    id: jlong,
) -> JString<'local> {
    boundary(&mut env, |env| {
        let id = booking_id(id)?;
        Ok(JString::from_str(env, yilian_core::format_booking_id(id))?)
    })
}

/// `B000001` → 1; a text that is no booking id → `INVALID_FIELD`.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_parseBookingId<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    text: JString<'local>,
) -> jlong {
    boundary(&mut env, |env| {
        let text = raw(env).required(&text, "bookingId")?;
        let id = yilian_core::parse_booking_id(&text).ok_or_else(|| Failure::Core(Error::invalid("booking_id", "expected B followed by digits")))?;
        i64::try_from(id).map_err(|_| Failure::Core(Error::invalid("booking_id", "too large")))
    })
}

// ------------------------------------------------------------------ engine

#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_engineOpen<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>, config: JString<'local>) -> jlong {
    boundary(&mut env, |env| {
        let config = raw(env).required(&config, "configJson")?;
        let engine = Engine::open(&config)?;
        Ok(Box::into_raw(Box::new(engine)) as jlong)
    })
}

/// Closes the engine (flushing a durable store) and frees the handle. The Java
/// side calls it exactly once per handle, under its write lock.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_engineClose<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>, handle: jlong) {
    boundary(&mut env, |_env| {
        if handle != 0 {
            // SAFETY: see `engine`; this is the one place the box is taken back.
            let engine = unsafe { Box::from_raw(handle as *mut Engine) };
            engine.close();
        }
        Ok(())
    })
}

/// The command layer: returns the `data` of a success envelope as JSON text and
/// throws for an error envelope.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_engineCall<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    command: JString<'local>,
    request: JString<'local>,
) -> JString<'local> {
    engine_call(&mut env, handle, None, &command, &request)
}

/// `Engine.callAs`: the command as a principal the host states (S1).
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_engineCallAs<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    principal: JString<'local>,
    command: JString<'local>,
    request: JString<'local>,
) -> JString<'local> {
    engine_call(&mut env, handle, Some(&principal), &command, &request)
}

/// `call` and `callAs`: as the engine's own principal, or the one given.
fn engine_call<'local>(
    env: &mut EnvUnowned<'local>,
    handle: jlong,
    principal: Option<&JString<'local>>,
    command: &JString<'local>,
    request: &JString<'local>,
) -> JString<'local> {
    boundary(env, |env| {
        let engine = engine(handle)?;
        let principal = principal.map(|p| raw(env).required(p, "principalJson")).transpose()?;
        let command = raw(env).required(command, "command")?;
        let request = raw(env).required(request, "requestJson")?;
        let data = match &principal {
            Some(p) => engine.call_json_as_json(p, &command, &request)?,
            None => engine.call_json(&command, &request)?,
        };
        Ok(JString::from_str(env, data)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_slotHandle<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    slot_id: JString<'local>,
) -> jint {
    fast_boundary(&mut env, |env| {
        let engine = engine(handle)?;
        let slot_id = env.required(&slot_id, "slotId")?;
        let slot = engine.slot_handle(&slot_id)?;
        i32::try_from(slot.0).map_err(|_| Failure::Core(Error::internal("slot index exceeds a Java int")))
    })
}

/// Holds a place; returns the booking id and writes the hold's expiry (UTC ms)
/// to `out[0]`, which spares building a result object in native code.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_org_yilian_NativeMethods_hold<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    slot: jint,
    patient_id: JString<'local>,
    request_id: JString<'local>,
    clinic_id: JString<'local>,
    priority: JString<'local>,
    out: JLongArray<'local>,
) -> jlong {
    fast_boundary(&mut env, |env| {
        let engine = engine(handle)?;
        let slot = slot_handle(slot)?;
        let patient_id = env.required(&patient_id, "patientId")?;
        let request_id = env.string(&request_id, "requestId")?;
        let clinic_id = env.string(&clinic_id, "clinicId")?;
        let priority = match env.string(&priority, "priority")? {
            Some(p) => Some(Priority::parse(&p)?),
            None => None,
        };
        if out.is_null() {
            return Err(Failure::Null("out"));
        }
        let opts = HoldOptions { request_id: request_id.as_deref(), clinic_id: clinic_id.as_deref(), priority };
        let hold = engine.hold(slot, &patient_id, &opts)?;
        env.set_longs(&out, "out", &[hold.expires_ms])?;
        i64::try_from(hold.booking_id).map_err(|_| Failure::Core(Error::internal("booking id exceeds a Java long")))
    })
}

/// `confirm` and `release`: `(handle, id, requestId)`, the same call on one booking.
macro_rules! booking_op {
    ($name:ident, $op:path) => {
        #[no_mangle]
        pub extern "system" fn $name<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>, handle: jlong, id: jlong, request_id: JString<'local>) {
            fast_boundary(&mut env, |env| {
                let engine = engine(handle)?;
                let id = booking_id(id)?;
                let request_id = env.string(&request_id, "requestId")?;
                $op(engine, id, request_id.as_deref())?;
                Ok(())
            })
        }
    };
}

booking_op!(Java_org_yilian_NativeMethods_confirm, Engine::confirm);
booking_op!(Java_org_yilian_NativeMethods_release, Engine::release);

/// Writes `capacity, booked, held, remaining, reserved_quota, waiting, tight,
/// closed` (booleans as 0/1) to `out[0..8]`.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_availability<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    slot: jint,
    out: JIntArray<'local>,
) {
    fast_boundary(&mut env, |env| {
        let engine = engine(handle)?;
        let slot = slot_handle(slot)?;
        if out.is_null() {
            return Err(Failure::Null("out"));
        }
        let a = engine.availability(slot)?;
        let as_int = |n: u32| n.min(i32::MAX as u32) as i32;
        let row = [
            as_int(a.capacity),
            as_int(a.booked),
            as_int(a.held),
            as_int(a.remaining),
            as_int(a.reserved_quota),
            as_int(a.waiting),
            i32::from(a.tight),
            i32::from(a.closed),
        ];
        env.set_ints(&out, "out", &row)
    })
}

#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_checkInvariants<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>, handle: jlong) {
    boundary(&mut env, |_env| {
        engine(handle)?.check_invariants()?;
        Ok(())
    })
}

// ------------------------------------------------------------------ lab

/// The printer's bytes of a specimen label at the default size: TSPL in GBK,
/// ZPL and SVG in UTF-8.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_specimenLabel<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    barcode: JString<'local>,
    format: JString<'local>,
) -> JByteArray<'local> {
    boundary(&mut env, |env| {
        let engine = engine(handle)?;
        let barcode = raw(env).required(&barcode, "barcode")?;
        let format = LabelFormat::parse(&raw(env).required(&format, "format")?)?;
        let bytes = engine.specimen_label(&barcode, format, &LabelSize::default())?;
        Ok(env.byte_array_from_slice(&bytes)?)
    })
}

/// Borrows the translator behind a handle; the Java `LabTranslator` holds its
/// read lock for the whole native call, as `Engine` does for `engine`. The
/// calls also take the Java translator itself (`_owner`, unused): as an
/// argument it stays reachable until they return, so its cleaner cannot
/// start closing the handle under them.
fn translator<'a>(handle: jlong) -> Result<&'a LabTranslator, Failure> {
    if handle == 0 {
        return Err(Failure::Closed);
    }
    // SAFETY: a non-zero handle is a pointer made by `Box::into_raw` in
    // `labTranslatorNew` and freed only by `labTranslatorClose`, which the Java
    // side calls once, under its write lock, after swapping the handle to 0.
    Ok(unsafe { &*(handle as *const LabTranslator) })
}

/// Translator handles made and not yet freed, in this library (a diagnostic:
/// the tests prove with it that Java's cleaner frees unclosed translators).
static LIVE_LAB_TRANSLATORS: AtomicI64 = AtomicI64::new(0);

/// Compiles `Engine::lab_translator` and returns its handle (a snapshot: it
/// does not borrow the engine and outlives its close).
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_labTranslatorNew<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    institution_id: JString<'local>,
    lab_id: JString<'local>,
) -> jlong {
    boundary(&mut env, |env| {
        let engine = engine(handle)?;
        let institution_id = raw(env).required(&institution_id, "institutionId")?;
        let lab_id = raw(env).string(&lab_id, "labId")?;
        let t = engine.lab_translator(&institution_id, lab_id.as_deref())?;
        LIVE_LAB_TRANSLATORS.fetch_add(1, Ordering::Relaxed);
        Ok(Box::into_raw(Box::new(t)) as jlong)
    })
}

/// Frees a translator handle. The Java side calls it exactly once per handle,
/// under its write lock.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_labTranslatorClose<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>, handle: jlong) {
    boundary(&mut env, |_env| {
        if handle != 0 {
            // SAFETY: see `translator`; this is the one place the box is taken back.
            drop(unsafe { Box::from_raw(handle as *mut LabTranslator) });
            LIVE_LAB_TRANSLATORS.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    })
}

/// How many codes the translator understands.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_labTranslatorSize<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    _owner: JObject<'local>,
    handle: jlong,
) -> jint {
    boundary(&mut env, |_env| Ok(translator(handle)?.codes().count().min(i32::MAX as usize) as i32))
}

/// The institution code of each lab code (`null` where unmapped). With
/// `strict`, an unmapped code is `LAB_ITEM_UNMAPPED` instead, as in Python.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_labTranslate<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    _owner: JObject<'local>,
    handle: jlong,
    codes: JObjectArray<'local, JString<'local>>,
    strict: jboolean,
) -> JObjectArray<'local, JString<'local>> {
    boundary(&mut env, |env| {
        let t = translator(handle)?;
        if codes.is_null() {
            return Err(Failure::Null("codes"));
        }
        let n = codes.len(env)?;
        let out = JObjectArray::<JString>::new(env, n, JString::null())?;
        for i in 0..n {
            env.with_local_frame(2, |env| -> Result<(), Failure> {
                let code = codes.get_element(env, i)?;
                let code = raw(env).required(&code, "code")?;
                if let Some(e) = t.lookup_strict(&code, strict).map_err(Failure::Core)? {
                    let s = JString::from_str(env, &*e.inst_code)?;
                    out.set_element(env, i, &s)?;
                }
                Ok(())
            })?;
        }
        Ok(out)
    })
}

/// `[institution code, institution name, standard code, unit, reference
/// range]` of a lab code, or `null` when the institution has not mapped it.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_labLookup<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    _owner: JObject<'local>,
    handle: jlong,
    code: JString<'local>,
) -> JObjectArray<'local, JString<'local>> {
    boundary(&mut env, |env| {
        let t = translator(handle)?;
        let code = raw(env).required(&code, "code")?;
        match t.lookup(&code) {
            Some(e) => string_array(env, &[&*e.inst_code, &*e.inst_name, &*e.std_code, &*e.unit, &*e.ref_range]),
            None => Ok(JObjectArray::<JString>::null()),
        }
    })
}

// ------------------------------------------------------------------ test and benchmark hooks

/// Test hook, only in a library built with the cargo feature `testing` (the
/// JUnit suite's; the jar ships the default build, which lacks it), declared
/// by the test class `org.yilian.TestHooks`. Panics inside the boundary:
/// proves a panic reaches Java as `YilianInternalError` and the JVM lives on.
/// `mode` 0: a `&str` payload, 1: a formatted `String`, 2: a non-string
/// payload, 3 and up: the same three inside the hot path's `fast_boundary`.
#[cfg(feature = "testing")]
#[no_mangle]
pub extern "system" fn Java_org_yilian_TestHooks_panicForTest<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>, mode: jint) -> jint {
    fn panic_now(mode: jint) -> Result<jint, Failure> {
        match mode % 3 {
            0 => panic!("yilian test panic"),
            1 => panic!("yilian test panic {}", mode),
            _ => std::panic::panic_any(mode),
        }
    }
    if mode >= 3 {
        fast_boundary(&mut env, |_env| panic_now(mode))
    } else {
        boundary(&mut env, |_env| panic_now(mode))
    }
}

/// Test hook: how many translator handles are live (made by
/// `labTranslatorNew`, not yet freed by `labTranslatorClose`).
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_liveLabTranslators<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>) -> jlong {
    boundary(&mut env, |_env| Ok(LIVE_LAB_TRANSLATORS.load(Ordering::Relaxed)))
}

/// Runs `n` hold+release pairs inside Rust with no JNI crossing and returns the
/// elapsed nanoseconds: the benchmark subtracts it from the JNI loop's time to
/// report what the binding itself costs per call. Mirrors the Java loop: for
/// `i` in `from..from+n`, slot `i % slots`, patient `T<thread>-PAT<i % patients>`,
/// a fresh request id per hold.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_benchCoreHoldRelease<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    slots: jint,
    from: jint,
    n: jint,
    patients: jint,
    thread: jint,
) -> jlong {
    boundary(&mut env, |_env| {
        let patients: Vec<String> = (0..patients.max(1)).map(|i| format!("T{thread}-PAT{i}")).collect();
        let from = from.max(0) as usize;
        timed_core(handle, slots, |engine, slots| {
            for i in from..from + n.max(0) as usize {
                let request_id = format!("core-{thread}-{i}");
                let opts = HoldOptions { request_id: Some(&request_id), ..HoldOptions::default() };
                let hold = engine.hold(SlotHandle(i as u32 % slots), &patients[i % patients.len()], &opts)?;
                engine.release(hold.booking_id, None)?;
            }
            Ok(())
        })
    })
}

/// `n` availability reads inside Rust: the benchmark's measure of a cheap call
/// with and without the JNI crossing. Returns elapsed nanoseconds.
#[no_mangle]
pub extern "system" fn Java_org_yilian_NativeMethods_benchCoreAvailability<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    slots: jint,
    n: jint,
) -> jlong {
    boundary(&mut env, |_env| {
        timed_core(handle, slots, |engine, slots| {
            let mut sum = 0u64;
            for i in 0..n.max(0) as u32 {
                sum += u64::from(engine.availability(SlotHandle(i % slots))?.remaining);
            }
            std::hint::black_box(sum);
            Ok(())
        })
    })
}

/// The benchmark hooks' frame: times `body(engine, slots)` (`slots` at least 1)
/// and returns the nanoseconds, saturated to a Java long.
fn timed_core(handle: jlong, slots: jint, body: impl FnOnce(&Engine, u32) -> Result<(), Error>) -> Result<jlong, Failure> {
    let engine = engine(handle)?;
    let slots = slots.max(1) as u32;
    let start = Instant::now();
    body(engine, slots)?;
    Ok(start.elapsed().as_nanos().min(i64::MAX as u128) as i64)
}
