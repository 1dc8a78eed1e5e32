//! Return codes (the core's numeric codes, 1:1) and the per-thread last error.

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::raw::c_int;
use yilian_core::Error;

// The numbers are written out because cbindgen copies only literals into the
// header; `codes_match_core` below fails if one drifts from yilian-core.

/// Success.
pub const YL_OK: c_int = 0;
/// 1xxx input: the request is not valid JSON.
pub const YL_E_INVALID_JSON: c_int = 1001;
/// 1xxx input: a required field is missing.
pub const YL_E_MISSING_FIELD: c_int = 1002;
/// 1xxx input: a field has the wrong type or value.
pub const YL_E_INVALID_FIELD: c_int = 1003;
/// 1xxx input: the request exceeds `max_request_bytes` (default 1 MiB).
pub const YL_E_REQUEST_TOO_LARGE: c_int = 1004;
/// 1xxx input: unknown command name.
pub const YL_E_UNKNOWN_COMMAND: c_int = 1005;
/// 1xxx input: the engine configuration is invalid.
pub const YL_E_INVALID_CONFIG: c_int = 1006;
/// 1xxx input: a resident ID number fails its check digit.
pub const YL_E_INVALID_ID_NUMBER: c_int = 1007;
/// 1xxx input: a phone number is invalid.
pub const YL_E_INVALID_PHONE: c_int = 1008;
// Commissioned lab testing (委托检验): 11xx, 21xx, 31xx, 41xx, 51xx.
/// 1xxx input: the file has invalid rows; nothing was imported.
pub const YL_E_LAB_IMPORT_REJECTED: c_int = 1101;
/// 1xxx input: the file cannot be read in the stated format.
pub const YL_E_LAB_FILE_UNREADABLE: c_int = 1102;
/// 1xxx input: the barcode rule is invalid.
pub const YL_E_LAB_BARCODE_RULE_INVALID: c_int = 1103;
/// 2xxx not found: no such standard lab sub-item.
pub const YL_E_LAB_STD_ITEM_NOT_FOUND: c_int = 2101;
/// 2xxx not found: no such standard lab project.
pub const YL_E_LAB_RESOURCE_NOT_FOUND: c_int = 2102;
/// 2xxx not found: no such institution lab item.
pub const YL_E_LAB_INST_ITEM_NOT_FOUND: c_int = 2103;
/// 2xxx not found: no such lab order.
pub const YL_E_LAB_ORDER_NOT_FOUND: c_int = 2104;
/// 2xxx not found: no specimen has this barcode.
pub const YL_E_LAB_SPECIMEN_NOT_FOUND: c_int = 2105;
/// 2xxx not found: no such shipment.
pub const YL_E_LAB_SHIPMENT_NOT_FOUND: c_int = 2106;
/// 2xxx not found: no report for this specimen.
pub const YL_E_LAB_REPORT_NOT_FOUND: c_int = 2107;
/// 2xxx not found: no such critical value.
pub const YL_E_LAB_CRITICAL_NOT_FOUND: c_int = 2108;
/// 2xxx not found: no signing key is registered for this lab.
pub const YL_E_LAB_KEY_NOT_FOUND: c_int = 2109;
/// 2xxx not found: no tube rule for this specimen type and workgroup.
pub const YL_E_LAB_TUBE_RULE_NOT_FOUND: c_int = 2110;
/// 2xxx not found: no such lab panel.
pub const YL_E_LAB_PANEL_NOT_FOUND: c_int = 2111;
/// 3xxx conflict: the item is not mapped to the standard catalogue.
pub const YL_E_LAB_ITEM_UNMAPPED: c_int = 3101;
/// 3xxx conflict: the standard item is already mapped by another item of this institution.
pub const YL_E_LAB_ALREADY_MAPPED: c_int = 3102;
/// 3xxx conflict: the item is still mapped or linked and cannot be deleted.
pub const YL_E_LAB_IN_USE: c_int = 3103;
/// 3xxx conflict: the lab does not offer this project.
pub const YL_E_LAB_NOT_OFFERED: c_int = 3104;
/// 3xxx conflict: a shipment holds specimens of one institution only.
pub const YL_E_LAB_MIXED_INSTITUTIONS: c_int = 3105;
/// 3xxx conflict: the result names a sub-item this specimen was not ordered for.
pub const YL_E_LAB_ITEM_NOT_ORDERED: c_int = 3106;
/// 3xxx conflict: the read-back value differs from the published critical value.
pub const YL_E_LAB_READBACK_MISMATCH: c_int = 3107;
/// 3xxx conflict: the barcode sequence for this period is used up.
pub const YL_E_LAB_BARCODE_EXHAUSTED: c_int = 3108;
/// 4xxx state: the lab order is cancelled.
pub const YL_E_LAB_ORDER_CANCELLED: c_int = 4101;
/// 4xxx state: the lab has already received this order.
pub const YL_E_LAB_ORDER_RECEIVED: c_int = 4102;
/// 4xxx state: the specimen is not in a state that allows this step.
pub const YL_E_LAB_SPECIMEN_STATE: c_int = 4103;
/// 4xxx state: the specimen was rejected.
pub const YL_E_LAB_SPECIMEN_REJECTED: c_int = 4104;
/// 4xxx state: every item of the order is already printed.
pub const YL_E_LAB_NOTHING_TO_PRINT: c_int = 4105;
/// 4xxx state: the critical value is already acknowledged.
pub const YL_E_LAB_CRITICAL_ACKNOWLEDGED: c_int = 4106;
/// 5xxx permission: this institution may not act on that lab order.
pub const YL_E_LAB_FORBIDDEN: c_int = 5101;
/// 5xxx permission: the report signature does not verify.
pub const YL_E_LAB_SIGNATURE_INVALID: c_int = 5102;
/// 2xxx not found: no such slot (also a bad `yl_slot` handle).
pub const YL_E_SLOT_NOT_FOUND: c_int = 2001;
/// 2xxx not found: no such booking.
pub const YL_E_BOOKING_NOT_FOUND: c_int = 2002;
/// 2xxx not found: no such device.
pub const YL_E_DEVICE_NOT_FOUND: c_int = 2003;
/// 2xxx not found: no such project.
pub const YL_E_PROJECT_NOT_FOUND: c_int = 2004;
/// 2xxx not found: no such waitlist entry.
pub const YL_E_WAITLIST_ENTRY_NOT_FOUND: c_int = 2005;
/// 2xxx not found: no such hospital.
pub const YL_E_HOSPITAL_NOT_FOUND: c_int = 2006;
/// 3xxx conflict: the slot has no remaining places.
pub const YL_E_SLOT_FULL: c_int = 3001;
/// 3xxx conflict: the slot is closed (service stopped).
pub const YL_E_SLOT_CLOSED: c_int = 3002;
/// 3xxx conflict: the slot is not yet open for booking.
pub const YL_E_SLOT_NOT_RELEASED: c_int = 3003;
/// 3xxx conflict: the slot has already started.
pub const YL_E_SLOT_IN_PAST: c_int = 3004;
/// 3xxx conflict: the patient has an overlapping booking.
pub const YL_E_PATIENT_OVERLAP: c_int = 3005;
/// 3xxx conflict: the patient already holds this slot.
pub const YL_E_DUPLICATE_BOOKING: c_int = 3006;
/// 3xxx conflict: several slots match; name the device or slot.
pub const YL_E_AMBIGUOUS_SLOT: c_int = 3007;
/// 3xxx conflict: the patient is already on this waitlist.
pub const YL_E_ALREADY_WAITLISTED: c_int = 3008;
/// 3xxx conflict: the slot belongs to another project.
pub const YL_E_PROJECT_MISMATCH: c_int = 3009;
/// 3xxx conflict: the slot still has places; book instead of waiting.
pub const YL_E_SLOT_HAS_PLACES: c_int = 3010;
/// 1xxx input (referral, exam, consultation): the exam item names a method or body part the project does not offer.
pub const YL_E_INVALID_EXAM_ITEM: c_int = 1201;
/// 1xxx input (referral, exam, consultation): an unstructured report must carry the issuer's electronic signature.
pub const YL_E_EXAM_SIGNATURE_MISSING: c_int = 1202;
/// 1xxx input (referral, exam, consultation): the public key is not a valid SM2 key.
pub const YL_E_INVALID_SIGNING_KEY: c_int = 1203;
/// 2xxx not found (referral, exam, consultation): no such referral.
pub const YL_E_REFERRAL_NOT_FOUND: c_int = 2201;
/// 2xxx not found (referral, exam, consultation): no such referral disease.
pub const YL_E_DISEASE_NOT_FOUND: c_int = 2202;
/// 2xxx not found (referral, exam, consultation): no such exam application.
pub const YL_E_EXAM_APPLICATION_NOT_FOUND: c_int = 2203;
/// 2xxx not found (referral, exam, consultation): no such item in the exam application.
pub const YL_E_EXAM_ITEM_NOT_FOUND: c_int = 2204;
/// 2xxx not found (referral, exam, consultation): no such consultation.
pub const YL_E_CONSULTATION_NOT_FOUND: c_int = 2205;
/// 2xxx not found (referral, exam, consultation): no such admission.
pub const YL_E_ADMISSION_NOT_FOUND: c_int = 2206;
/// 2xxx not found (referral, exam, consultation): no signing key is registered for the issuer.
pub const YL_E_SIGNING_KEY_NOT_FOUND: c_int = 2207;
/// 2xxx not found (referral, exam, consultation): no such institution in the service network.
pub const YL_E_INSTITUTION_NOT_FOUND: c_int = 2208;
/// 3xxx conflict (referral, exam, consultation): a referral disease with this code exists.
pub const YL_E_DISEASE_EXISTS: c_int = 3201;
/// 4xxx state (referral, exam, consultation): the referral's state does not allow this step.
pub const YL_E_REFERRAL_INVALID_TRANSITION: c_int = 4201;
/// 4xxx state (referral, exam, consultation): the exam item's state does not allow this step.
pub const YL_E_EXAM_INVALID_TRANSITION: c_int = 4202;
/// 4xxx state (referral, exam, consultation): the consultation's state does not allow this step.
pub const YL_E_CONSULTATION_INVALID_TRANSITION: c_int = 4203;
/// 4xxx state (referral, exam, consultation): this referral needs an approved consultation first.
pub const YL_E_CONSULTATION_REQUIRED: c_int = 4204;
/// 4xxx state (referral, exam, consultation): the inpatient deposit is not paid.
pub const YL_E_DEPOSIT_NOT_PAID: c_int = 4205;
/// 4xxx state (referral, exam, consultation): a refund needs the doctor to cancel the exam first.
pub const YL_E_EXAM_REFUND_NEEDS_CANCEL: c_int = 4206;
/// 4xxx state (referral, exam, consultation): the referral's booking has ended (cancelled, expired or service stopped).
pub const YL_E_REFERRAL_SLOT_RELEASED: c_int = 4207;
/// 5xxx permission (referral, exam, consultation): this institution may not act on that case.
pub const YL_E_REFERRAL_FORBIDDEN: c_int = 5201;
/// 5xxx permission (referral, exam, consultation): the report's electronic signature does not verify.
pub const YL_E_EXAM_SIGNATURE_INVALID: c_int = 5202;
/// 4xxx state: the booking's state does not allow this step.
pub const YL_E_INVALID_STATE: c_int = 4001;
/// 4xxx state: the hold expired before it was confirmed.
pub const YL_E_HOLD_EXPIRED: c_int = 4002;
/// 4xxx state: a refund needs the booking cancelled first.
pub const YL_E_REFUND_NOT_ALLOWED: c_int = 4003;
/// 4xxx state: the booking is already cancelled.
pub const YL_E_ALREADY_CANCELLED: c_int = 4004;
/// 5xxx permission: this institution may not act on that object.
pub const YL_E_FORBIDDEN: c_int = 5001;
/// 6xxx idempotency: the request id was used for a different request.
pub const YL_E_IDEMPOTENCY_CONFLICT: c_int = 6001;
/// 6xxx idempotency: a request with this id is still running.
pub const YL_E_REQUEST_IN_PROGRESS: c_int = 6002;
/// 7xxx storage: the durable store failed.
pub const YL_E_STORAGE_ERROR: c_int = 7001;
/// 7xxx storage: the data directory is in use by another process.
pub const YL_E_STORE_LOCKED: c_int = 7002;
/// 7xxx storage: the data directory holds unreadable data.
pub const YL_E_STORE_CORRUPT: c_int = 7003;
/// 7xxx storage: the engine is closed.
pub const YL_E_ENGINE_CLOSED: c_int = 7004;
/// 8xxx binding: a required pointer argument is NULL.
pub const YL_E_NULL_ARGUMENT: c_int = 8001;
/// 8xxx binding: a string argument is not valid UTF-8.
pub const YL_E_INVALID_UTF8: c_int = 8002;
/// 8xxx binding: the caller's buffer is too small; `*needed` says how big it must be.
pub const YL_E_BUFFER_TOO_SMALL: c_int = 8003;
/// 9xxx internal: a bug or a broken invariant.
pub const YL_E_INTERNAL: c_int = 9001;
/// 9xxx internal: a panic was caught at the C boundary.
pub const YL_E_PANIC: c_int = 9002;

// The platform client and request signatures (yilian-core `client`).
/// 1xxx input: this build has no platform client (cargo feature `client`).
pub const YL_E_CLIENT_NOT_BUILT: c_int = 1301;
/// 1xxx input: no platform is configured (config key `platform`).
pub const YL_E_PLATFORM_NOT_CONFIGURED: c_int = 1302;
/// 1xxx input: the platform has no such interface.
pub const YL_E_UNKNOWN_INTERFACE: c_int = 1303;
/// 1xxx input: the platform speaks no interface version this client speaks.
pub const YL_E_NO_COMMON_VERSION: c_int = 1304;
/// 5xxx permission: the request carries no signature.
pub const YL_E_SIGNATURE_MISSING: c_int = 5301;
/// 5xxx permission: the request signature does not verify.
pub const YL_E_SIGNATURE_INVALID: c_int = 5302;
/// 5xxx permission: the request timestamp is outside the allowed window.
pub const YL_E_SIGNATURE_EXPIRED: c_int = 5303;
/// 5xxx permission: the request nonce was already used (replay).
pub const YL_E_NONCE_REPLAYED: c_int = 5304;
/// 5xxx permission: no key is configured for this app id.
pub const YL_E_UNKNOWN_APP_ID: c_int = 5305;
/// 7xxx upstream: the platform is unreachable.
pub const YL_E_PLATFORM_UNAVAILABLE: c_int = 7301;
/// 7xxx upstream: the platform did not answer in time.
pub const YL_E_PLATFORM_TIMEOUT: c_int = 7302;
/// 7xxx upstream: the platform's answer is not a valid envelope.
pub const YL_E_PLATFORM_BAD_RESPONSE: c_int = 7303;

/// Every code with its name, for `yl_code_name`.
pub(crate) const CODE_NAMES: &[(c_int, &CStr)] = &[
    (YL_OK, c"OK"),
    (YL_E_INVALID_JSON, c"INVALID_JSON"),
    (YL_E_MISSING_FIELD, c"MISSING_FIELD"),
    (YL_E_INVALID_FIELD, c"INVALID_FIELD"),
    (YL_E_REQUEST_TOO_LARGE, c"REQUEST_TOO_LARGE"),
    (YL_E_UNKNOWN_COMMAND, c"UNKNOWN_COMMAND"),
    (YL_E_INVALID_CONFIG, c"INVALID_CONFIG"),
    (YL_E_INVALID_ID_NUMBER, c"INVALID_ID_NUMBER"),
    (YL_E_INVALID_PHONE, c"INVALID_PHONE"),
    (YL_E_LAB_IMPORT_REJECTED, c"LAB_IMPORT_REJECTED"),
    (YL_E_LAB_FILE_UNREADABLE, c"LAB_FILE_UNREADABLE"),
    (YL_E_LAB_BARCODE_RULE_INVALID, c"LAB_BARCODE_RULE_INVALID"),
    (YL_E_LAB_STD_ITEM_NOT_FOUND, c"LAB_STD_ITEM_NOT_FOUND"),
    (YL_E_LAB_RESOURCE_NOT_FOUND, c"LAB_RESOURCE_NOT_FOUND"),
    (YL_E_LAB_INST_ITEM_NOT_FOUND, c"LAB_INST_ITEM_NOT_FOUND"),
    (YL_E_LAB_ORDER_NOT_FOUND, c"LAB_ORDER_NOT_FOUND"),
    (YL_E_LAB_SPECIMEN_NOT_FOUND, c"LAB_SPECIMEN_NOT_FOUND"),
    (YL_E_LAB_SHIPMENT_NOT_FOUND, c"LAB_SHIPMENT_NOT_FOUND"),
    (YL_E_LAB_REPORT_NOT_FOUND, c"LAB_REPORT_NOT_FOUND"),
    (YL_E_LAB_CRITICAL_NOT_FOUND, c"LAB_CRITICAL_NOT_FOUND"),
    (YL_E_LAB_KEY_NOT_FOUND, c"LAB_KEY_NOT_FOUND"),
    (YL_E_LAB_TUBE_RULE_NOT_FOUND, c"LAB_TUBE_RULE_NOT_FOUND"),
    (YL_E_LAB_PANEL_NOT_FOUND, c"LAB_PANEL_NOT_FOUND"),
    (YL_E_LAB_ITEM_UNMAPPED, c"LAB_ITEM_UNMAPPED"),
    (YL_E_LAB_ALREADY_MAPPED, c"LAB_ALREADY_MAPPED"),
    (YL_E_LAB_IN_USE, c"LAB_IN_USE"),
    (YL_E_LAB_NOT_OFFERED, c"LAB_NOT_OFFERED"),
    (YL_E_LAB_MIXED_INSTITUTIONS, c"LAB_MIXED_INSTITUTIONS"),
    (YL_E_LAB_ITEM_NOT_ORDERED, c"LAB_ITEM_NOT_ORDERED"),
    (YL_E_LAB_READBACK_MISMATCH, c"LAB_READBACK_MISMATCH"),
    (YL_E_LAB_BARCODE_EXHAUSTED, c"LAB_BARCODE_EXHAUSTED"),
    (YL_E_LAB_ORDER_CANCELLED, c"LAB_ORDER_CANCELLED"),
    (YL_E_LAB_ORDER_RECEIVED, c"LAB_ORDER_RECEIVED"),
    (YL_E_LAB_SPECIMEN_STATE, c"LAB_SPECIMEN_STATE"),
    (YL_E_LAB_SPECIMEN_REJECTED, c"LAB_SPECIMEN_REJECTED"),
    (YL_E_LAB_NOTHING_TO_PRINT, c"LAB_NOTHING_TO_PRINT"),
    (YL_E_LAB_CRITICAL_ACKNOWLEDGED, c"LAB_CRITICAL_ACKNOWLEDGED"),
    (YL_E_LAB_FORBIDDEN, c"LAB_FORBIDDEN"),
    (YL_E_LAB_SIGNATURE_INVALID, c"LAB_SIGNATURE_INVALID"),
    (YL_E_SLOT_NOT_FOUND, c"SLOT_NOT_FOUND"),
    (YL_E_BOOKING_NOT_FOUND, c"BOOKING_NOT_FOUND"),
    (YL_E_DEVICE_NOT_FOUND, c"DEVICE_NOT_FOUND"),
    (YL_E_PROJECT_NOT_FOUND, c"PROJECT_NOT_FOUND"),
    (YL_E_WAITLIST_ENTRY_NOT_FOUND, c"WAITLIST_ENTRY_NOT_FOUND"),
    (YL_E_HOSPITAL_NOT_FOUND, c"HOSPITAL_NOT_FOUND"),
    (YL_E_SLOT_FULL, c"SLOT_FULL"),
    (YL_E_SLOT_CLOSED, c"SLOT_CLOSED"),
    (YL_E_SLOT_NOT_RELEASED, c"SLOT_NOT_RELEASED"),
    (YL_E_SLOT_IN_PAST, c"SLOT_IN_PAST"),
    (YL_E_PATIENT_OVERLAP, c"PATIENT_OVERLAP"),
    (YL_E_DUPLICATE_BOOKING, c"DUPLICATE_BOOKING"),
    (YL_E_AMBIGUOUS_SLOT, c"AMBIGUOUS_SLOT"),
    (YL_E_ALREADY_WAITLISTED, c"ALREADY_WAITLISTED"),
    (YL_E_PROJECT_MISMATCH, c"PROJECT_MISMATCH"),
    (YL_E_SLOT_HAS_PLACES, c"SLOT_HAS_PLACES"),
    (YL_E_INVALID_EXAM_ITEM, c"INVALID_EXAM_ITEM"),
    (YL_E_EXAM_SIGNATURE_MISSING, c"EXAM_SIGNATURE_MISSING"),
    (YL_E_INVALID_SIGNING_KEY, c"INVALID_SIGNING_KEY"),
    (YL_E_REFERRAL_NOT_FOUND, c"REFERRAL_NOT_FOUND"),
    (YL_E_DISEASE_NOT_FOUND, c"DISEASE_NOT_FOUND"),
    (YL_E_EXAM_APPLICATION_NOT_FOUND, c"EXAM_APPLICATION_NOT_FOUND"),
    (YL_E_EXAM_ITEM_NOT_FOUND, c"EXAM_ITEM_NOT_FOUND"),
    (YL_E_CONSULTATION_NOT_FOUND, c"CONSULTATION_NOT_FOUND"),
    (YL_E_ADMISSION_NOT_FOUND, c"ADMISSION_NOT_FOUND"),
    (YL_E_SIGNING_KEY_NOT_FOUND, c"SIGNING_KEY_NOT_FOUND"),
    (YL_E_INSTITUTION_NOT_FOUND, c"INSTITUTION_NOT_FOUND"),
    (YL_E_DISEASE_EXISTS, c"DISEASE_EXISTS"),
    (YL_E_REFERRAL_INVALID_TRANSITION, c"REFERRAL_INVALID_TRANSITION"),
    (YL_E_EXAM_INVALID_TRANSITION, c"EXAM_INVALID_TRANSITION"),
    (YL_E_CONSULTATION_INVALID_TRANSITION, c"CONSULTATION_INVALID_TRANSITION"),
    (YL_E_CONSULTATION_REQUIRED, c"CONSULTATION_REQUIRED"),
    (YL_E_DEPOSIT_NOT_PAID, c"DEPOSIT_NOT_PAID"),
    (YL_E_EXAM_REFUND_NEEDS_CANCEL, c"EXAM_REFUND_NEEDS_CANCEL"),
    (YL_E_REFERRAL_SLOT_RELEASED, c"REFERRAL_SLOT_RELEASED"),
    (YL_E_REFERRAL_FORBIDDEN, c"REFERRAL_FORBIDDEN"),
    (YL_E_EXAM_SIGNATURE_INVALID, c"EXAM_SIGNATURE_INVALID"),
    (YL_E_INVALID_STATE, c"INVALID_STATE"),
    (YL_E_HOLD_EXPIRED, c"HOLD_EXPIRED"),
    (YL_E_REFUND_NOT_ALLOWED, c"REFUND_NOT_ALLOWED"),
    (YL_E_ALREADY_CANCELLED, c"ALREADY_CANCELLED"),
    (YL_E_FORBIDDEN, c"FORBIDDEN"),
    (YL_E_IDEMPOTENCY_CONFLICT, c"IDEMPOTENCY_CONFLICT"),
    (YL_E_REQUEST_IN_PROGRESS, c"REQUEST_IN_PROGRESS"),
    (YL_E_STORAGE_ERROR, c"STORAGE_ERROR"),
    (YL_E_STORE_LOCKED, c"STORE_LOCKED"),
    (YL_E_STORE_CORRUPT, c"STORE_CORRUPT"),
    (YL_E_ENGINE_CLOSED, c"ENGINE_CLOSED"),
    (YL_E_NULL_ARGUMENT, c"NULL_ARGUMENT"),
    (YL_E_INVALID_UTF8, c"INVALID_UTF8"),
    (YL_E_BUFFER_TOO_SMALL, c"BUFFER_TOO_SMALL"),
    (YL_E_INTERNAL, c"INTERNAL"),
    (YL_E_PANIC, c"PANIC"),
    (YL_E_CLIENT_NOT_BUILT, c"CLIENT_NOT_BUILT"),
    (YL_E_PLATFORM_NOT_CONFIGURED, c"PLATFORM_NOT_CONFIGURED"),
    (YL_E_UNKNOWN_INTERFACE, c"UNKNOWN_INTERFACE"),
    (YL_E_NO_COMMON_VERSION, c"NO_COMMON_VERSION"),
    (YL_E_SIGNATURE_MISSING, c"SIGNATURE_MISSING"),
    (YL_E_SIGNATURE_INVALID, c"SIGNATURE_INVALID"),
    (YL_E_SIGNATURE_EXPIRED, c"SIGNATURE_EXPIRED"),
    (YL_E_NONCE_REPLAYED, c"NONCE_REPLAYED"),
    (YL_E_UNKNOWN_APP_ID, c"UNKNOWN_APP_ID"),
    (YL_E_PLATFORM_UNAVAILABLE, c"PLATFORM_UNAVAILABLE"),
    (YL_E_PLATFORM_TIMEOUT, c"PLATFORM_TIMEOUT"),
    (YL_E_PLATFORM_BAD_RESPONSE, c"PLATFORM_BAD_RESPONSE"),
];

pub(crate) fn code_name(code: c_int) -> &'static CStr {
    CODE_NAMES.iter().find(|(n, _)| *n == code).map(|(_, s)| *s).unwrap_or(c"UNKNOWN")
}

/// The last result of this thread: code and both messages (empty on success).
pub(crate) struct Last {
    pub code: c_int,
    pub message: String,
    pub message_zh: String,
}

thread_local! {
    static LAST: RefCell<Last> = const { RefCell::new(Last { code: YL_OK, message: String::new(), message_zh: String::new() }) };
}

/// Records success. `try_with`: a call from a thread-local destructor after
/// ours is gone still works, it just records nothing.
pub(crate) fn set_ok() {
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            if l.code != YL_OK {
                l.code = YL_OK;
                l.message.clear();
                l.message_zh.clear();
            }
        }
    });
}

/// Records an error and returns its code.
pub(crate) fn set_error(e: &Error) -> c_int {
    let code = e.numeric_code();
    let _ = LAST.try_with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.code = code;
            l.message.clear();
            l.message.push_str(e.message());
            l.message_zh.clear();
            l.message_zh.push_str(e.message_zh());
        }
    });
    code
}

/// Records the outcome of a call and returns its code.
pub(crate) fn finish(r: Result<(), Error>) -> c_int {
    match r {
        Ok(()) => {
            set_ok();
            YL_OK
        }
        Err(e) => set_error(&e),
    }
}

pub(crate) fn with_last<R>(f: impl FnOnce(&Last) -> R) -> Option<R> {
    LAST.try_with(|l| l.try_borrow().ok().map(|l| f(&l))).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yilian_core::ErrorCode;

    #[test]
    fn codes_match_core() {
        // Same set, same numbers, same names as yilian-core's ErrorCode, plus YL_OK.
        assert_eq!(CODE_NAMES.len(), ErrorCode::ALL.len() + 1);
        assert_eq!(CODE_NAMES[0], (0, c"OK"));
        for c in ErrorCode::ALL {
            let name = code_name(c.numeric());
            assert_eq!(name.to_str().ok(), Some(c.as_str()), "code {}", c.numeric());
        }
        assert_eq!(code_name(42), c"UNKNOWN");
    }
}
