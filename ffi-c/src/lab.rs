//! Typed C calls of commissioned lab testing (委托检验): the label bytes a
//! tube printer takes, without a base64 round trip through JSON, and the
//! compiled translation of a lab's result codes into an institution's
//! sub-items (`yl_lab_translator_*`), without JSON either.

use crate::boundary::{ffi_boundary, ffi_code};
use crate::handle::{self, yl_engine};
use crate::strings::{arg_str, null_arg, opt_str, out_arg};
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use yilian_core::render::{LabelFormat, LabelSize};
use yilian_core::{Error, ErrorCode, LabTranslator, TranslatorEntry};

/// Writes the label of a printed specimen into `out[0..cap]` as the printer
/// takes it: `format` "zpl" or "svg" (UTF-8 text) or "tspl" (GBK bytes), on
/// 50 × 30 mm stock at 203 dpi. No NUL is appended. `*needed` (when `needed`
/// is not NULL) receives the label's length in bytes; when `cap` is smaller,
/// returns `YL_E_BUFFER_TOO_SMALL` and writes nothing (`out` may be NULL with
/// `cap == 0`: a size query). Never counts as a print (`specimen-reprint`
/// does). An engine configured with an institution sees only its own tubes.
///
/// Returns `YL_OK`, `YL_E_LAB_SPECIMEN_NOT_FOUND`, `YL_E_INVALID_FIELD` (bad
/// `format`), `YL_E_LAB_FORBIDDEN`, `YL_E_BUFFER_TOO_SMALL`, a binding code.
/// Inputs borrowed. Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_specimen_label(
    e: *const yl_engine,
    barcode: *const c_char,
    format: *const c_char,
    out: *mut u8,
    cap: usize,
    needed: *mut usize,
) -> c_int {
    ffi_code!(handle::engine_ref(e).and_then(|h| {
        let barcode = arg_str(barcode, "barcode")?;
        let format = LabelFormat::parse(arg_str(format, "format")?)?;
        let bytes = h.engine.specimen_label(barcode, format, &LabelSize::default())?;
        if !needed.is_null() {
            *needed = bytes.len();
        }
        if out.is_null() && cap > 0 {
            return Err(null_arg("out"));
        }
        if cap < bytes.len() {
            return Err(Error::with(
                ErrorCode::BufferTooSmall,
                format!("the buffer has {cap} bytes; {} are needed", bytes.len()),
                format!("缓冲区只有 {cap} 字节，需要 {} 字节", bytes.len()),
            ));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
        Ok(())
    }))
}

// ------------------------------------------------------------------ lab translator

/// One institution sub-item a lab code translates to. Every field is a
/// NUL-terminated UTF-8 string owned by the translator that returned it,
/// valid until `yl_lab_translator_free`; never NULL (`unit` and `ref_range`
/// may be empty). Do not free or modify them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct yl_lab_entry {
    /// The ordering institution's own sub-item code.
    pub inst_code: *const c_char,
    /// The ordering institution's own sub-item name.
    pub inst_name: *const c_char,
    /// The standard sub-item code.
    pub std_code: *const c_char,
    /// The standard sub-item's unit ("" when it has none).
    pub unit: *const c_char,
    /// The standard sub-item's reference range, e.g. "4-10" ("" when it has none).
    pub ref_range: *const c_char,
}

/// A compiled translation of lab result codes into one institution's
/// sub-items (`Engine::lab_translator`). Opaque to C; create with
/// `yl_lab_translator_new`, free with `yl_lab_translator_free`.
#[allow(non_camel_case_types)]
pub struct yl_lab_translator {
    translator: LabTranslator,
    /// `entries[i]` is the C view of `translator.entries()[i]`; its pointers
    /// point into `strings`, which is never changed after construction.
    entries: Box<[yl_lab_entry]>,
    _strings: Box<[CString]>,
}

impl yl_lab_translator {
    fn new(translator: LabTranslator) -> yl_lab_translator {
        let mut strings = Vec::with_capacity(translator.entries().len() * 5);
        let mut entries = Vec::with_capacity(translator.entries().len());
        for e in translator.entries() {
            // A CString's bytes live on the heap: moving it into `strings` keeps the pointer.
            let mut field = |s: &str| {
                let c = c_string_lossy(s);
                let p = c.as_ptr();
                strings.push(c);
                p
            };
            entries.push(yl_lab_entry {
                inst_code: field(&e.inst_code),
                inst_name: field(&e.inst_name),
                std_code: field(&e.std_code),
                unit: field(&e.unit),
                ref_range: field(&e.ref_range),
            });
        }
        yl_lab_translator { translator, entries: entries.into_boxed_slice(), _strings: strings.into_boxed_slice() }
    }

    /// The C entry of a lab code, if the institution has mapped it.
    /// Core's strict rule (`LabTranslator::lookup_strict`), with the C entry.
    fn lookup_strict(&self, code: &str, strict: bool) -> Result<Option<&yl_lab_entry>, Error> {
        Ok(self.translator.lookup_strict(code, strict)?.and_then(|e| self.entry_of(e)))
    }

    fn entry_of(&self, e: &TranslatorEntry) -> Option<&yl_lab_entry> {
        // SAFETY: `lookup` returns an element of the `entries()` slice, so both
        // pointers are in one allocation and the offset is its index.
        let i = unsafe { (e as *const TranslatorEntry).offset_from(self.translator.entries().as_ptr()) };
        self.entries.get(usize::try_from(i).ok()?)
    }
}

/// A C string of `s`; a NUL inside (codes cannot hold one, names in theory
/// could) ends it there, as C would read it anyway.
fn c_string_lossy(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// Compiles the translation of lab results into `institution_id`'s
/// sub-items (委托检验报告): standard sub-item codes are understood, and the
/// lab's own sub-item codes too when `lab_id` is not NULL. A snapshot of the
/// mapping now: make another after the mapping changes.
///
/// Ownership: the inputs are borrowed for the call. On success `*out`
/// receives a new translator owned by the caller, to be released with
/// `yl_lab_translator_free`; on failure `*out` is set to NULL (when `out` is
/// not NULL). The translator borrows nothing from the engine: it stays
/// usable after `yl_engine_close`.
///
/// Returns `YL_OK`, `YL_E_LAB_INST_ITEM_NOT_FOUND` (the institution has no
/// sub-items), `YL_E_NULL_ARGUMENT`, `YL_E_INVALID_UTF8`,
/// `YL_E_ENGINE_CLOSED`. Thread-safe. Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_lab_translator_new(
    e: *const yl_engine,
    institution_id: *const c_char,
    lab_id: *const c_char,
    out: *mut *mut yl_lab_translator,
) -> c_int {
    ffi_code!((|| {
        let out = out_arg(out, "out")?;
        out.write(std::ptr::null_mut());
        let h = handle::engine_ref(e)?;
        let institution_id = arg_str(institution_id, "institution_id")?;
        let lab_id = opt_str(lab_id, "lab_id")?;
        let t = h.engine.lab_translator(institution_id, lab_id)?;
        out.write(Box::into_raw(Box::new(yl_lab_translator::new(t))));
        Ok(())
    })())
}

/// Translates `n` lab result codes (`codes[0..n]`, standard or the lab's own
/// sub-item codes) into the institution's sub-items: `out[i]` receives the
/// entry of `codes[i]`, or NULL when the institution has not mapped it. The
/// result values stay with the caller: `out[i]` belongs to the value of
/// `codes[i]`, unchanged. `*unmapped` (when `unmapped` is not NULL) receives
/// how many codes are unmapped.
///
/// `strict` (any non-zero value is true; a byte, not `bool`, so every
/// caller's marshalling agrees): an unmapped code is `YL_E_LAB_ITEM_UNMAPPED`
/// (the message names it) instead of a NULL entry. `out` and `*unmapped` are written on success
/// only. `codes` and `out` may be NULL only with `n == 0`.
///
/// Ownership: `codes` is borrowed for the call. The entries are owned by the
/// translator and valid until `yl_lab_translator_free`.
///
/// Returns `YL_OK`, `YL_E_LAB_ITEM_UNMAPPED`, `YL_E_NULL_ARGUMENT` (NULL
/// `t`, `codes`, `out` or `codes[i]`), `YL_E_INVALID_UTF8`. Takes no lock:
/// any number of threads may translate with one translator at once.
/// Sets the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_lab_translator_translate(
    t: *const yl_lab_translator,
    codes: *const *const c_char,
    n: usize,
    strict: u8,
    out: *mut *const yl_lab_entry,
    unmapped: *mut usize,
) -> c_int {
    ffi_code!((|| {
        let t = t.as_ref().ok_or_else(|| null_arg("translator"))?;
        if n == 0 {
            if !unmapped.is_null() {
                *unmapped = 0;
            }
            return Ok(());
        }
        if codes.is_null() {
            return Err(null_arg("codes"));
        }
        let out = out_arg(out, "out")?;
        // Collected first: nothing is written unless every code is good.
        let mut found: Vec<*const yl_lab_entry> = Vec::with_capacity(n);
        let mut missing = 0;
        for i in 0..n {
            let code = code_at(codes, i)?;
            match t.lookup_strict(code, strict != 0)? {
                Some(entry) => found.push(entry),
                None => {
                    missing += 1;
                    found.push(std::ptr::null());
                }
            }
        }
        std::ptr::copy_nonoverlapping(found.as_ptr(), out.as_ptr(), n);
        if !unmapped.is_null() {
            *unmapped = missing;
        }
        Ok(())
    })())
}

/// `codes[i]` as a string; an error names its index.
///
/// # Safety
/// `codes` is valid for `i + 1` elements.
unsafe fn code_at<'a>(codes: *const *const c_char, i: usize) -> Result<&'a str, Error> {
    let p = *codes.add(i);
    // The name is formatted only on the rare error.
    arg_str(p, "codes").or_else(|_| arg_str(p, &format!("codes[{i}]")))
}

/// Frees a translator and the entries it returned. `t == NULL` is a harmless
/// no-op. Freeing the same translator twice, using it or its entries after
/// the free, or freeing it while another thread is still inside a call on it
/// is undefined behaviour (as with `yl_engine_close`). Thread-safe (any
/// thread may free). Does not touch the last error.
#[no_mangle]
pub unsafe extern "C" fn yl_lab_translator_free(t: *mut yl_lab_translator) {
    ffi_boundary!(on_panic: |_| (), {
        if !t.is_null() {
            drop(Box::from_raw(t));
        }
    })
}
