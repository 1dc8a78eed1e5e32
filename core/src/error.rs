//! One error type for the whole library.
//!
//! Every error has a stable string code (`SLOT_FULL`), a stable numeric code
//! grouped by family (never renumbered: C, Java and Python map them 1:1), and a
//! message in English and in Chinese. Messages name fields, slots and bookings
//! but never personal data: no names, ID numbers, phones or patient ids.

use std::borrow::Cow;
use std::fmt;

/// Error families: the thousands digit of the numeric code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorFamily {
    /// 1xxx: the request itself is malformed.
    Input,
    /// 2xxx: something named in the request does not exist.
    NotFound,
    /// 3xxx: the pool refuses: full, closed, not released, overlapping.
    Conflict,
    /// 4xxx: the object is in a state that does not allow the step.
    State,
    /// 5xxx: the caller may not act on this object.
    Permission,
    /// 6xxx: request-id (idempotency) problems.
    Idempotency,
    /// 7xxx: the durable store failed or is unavailable.
    Storage,
    /// 8xxx: argument problems only a binding can see (NULL, bad UTF-8, buffer size).
    Binding,
    /// 9xxx: a bug: a caught panic or a broken invariant.
    Internal,
}

impl ErrorFamily {
    pub fn name(self) -> &'static str {
        match self {
            ErrorFamily::Input => "input",
            ErrorFamily::NotFound => "not_found",
            ErrorFamily::Conflict => "conflict",
            ErrorFamily::State => "state",
            ErrorFamily::Permission => "permission",
            ErrorFamily::Idempotency => "idempotency",
            ErrorFamily::Storage => "storage",
            ErrorFamily::Binding => "binding",
            ErrorFamily::Internal => "internal",
        }
    }
    pub fn from_numeric(code: i32) -> Option<ErrorFamily> {
        Some(match code / 1000 {
            1 => ErrorFamily::Input,
            2 => ErrorFamily::NotFound,
            3 => ErrorFamily::Conflict,
            4 => ErrorFamily::State,
            5 => ErrorFamily::Permission,
            6 => ErrorFamily::Idempotency,
            7 => ErrorFamily::Storage,
            8 => ErrorFamily::Binding,
            9 => ErrorFamily::Internal,
            _ => return None,
        })
    }
}

/// Insertion sort by number, at compile time (for `ErrorCode::ALL`).
const fn sorted_codes<const N: usize>(mut a: [ErrorCode; N]) -> [ErrorCode; N] {
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && (a[j - 1] as i32) > (a[j] as i32) {
            let t = a[j - 1];
            a[j - 1] = a[j];
            a[j] = t;
            j -= 1;
        }
        i += 1;
    }
    a
}

macro_rules! error_codes {
    ($( $variant:ident = $num:literal, $family:ident, $code:literal, $en:literal, $zh:literal; )*) => {
        /// The stable error codes. The numeric value is part of the ABI.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorCode { $( $variant = $num, )* }

        impl ErrorCode {
            /// Every code, in numeric order (bindings check they map each one).
            /// Sorted here: each module adds its codes at its own marked line.
            pub const ALL: &'static [ErrorCode] = &sorted_codes([ $( ErrorCode::$variant, )* ]);
            pub fn as_str(self) -> &'static str { match self { $( ErrorCode::$variant => $code, )* } }
            pub fn numeric(self) -> i32 { self as i32 }
            pub fn family(self) -> ErrorFamily { match self { $( ErrorCode::$variant => ErrorFamily::$family, )* } }
            /// Generic English text, used when no detail is given.
            pub fn default_message(self) -> &'static str { match self { $( ErrorCode::$variant => $en, )* } }
            /// Generic Chinese text, used when no detail is given.
            pub fn default_message_zh(self) -> &'static str { match self { $( ErrorCode::$variant => $zh, )* } }
            pub fn from_str_code(s: &str) -> Option<ErrorCode> { match s { $( $code => Some(ErrorCode::$variant), )* _ => None } }
            pub fn from_numeric(n: i32) -> Option<ErrorCode> { match n { $( $num => Some(ErrorCode::$variant), )* _ => None } }
        }
    };
}

error_codes! {
    InvalidJson = 1001, Input, "INVALID_JSON", "request is not valid JSON", "请求不是合法的JSON";
    MissingField = 1002, Input, "MISSING_FIELD", "a required field is missing", "缺少必填字段";
    InvalidField = 1003, Input, "INVALID_FIELD", "a field has the wrong type or value", "字段类型或取值错误";
    RequestTooLarge = 1004, Input, "REQUEST_TOO_LARGE", "request exceeds the size limit", "请求超过大小上限";
    UnknownCommand = 1005, Input, "UNKNOWN_COMMAND", "unknown command", "未知的接口命令";
    InvalidConfig = 1006, Input, "INVALID_CONFIG", "invalid engine configuration", "引擎配置无效";
    InvalidIdNumber = 1007, Input, "INVALID_ID_NUMBER", "resident ID number is invalid", "居民身份证号码无效";
    InvalidPhone = 1008, Input, "INVALID_PHONE", "phone number is invalid", "电话号码无效";
    // Commissioned lab testing (委托检验): 11xx input, 21xx not found, 31xx conflict, 41xx state, 51xx permission. (lab helper: add below)
    LabImportRejected = 1101, Input, "LAB_IMPORT_REJECTED", "the file has invalid rows; nothing was imported", "文件中有无效行，未导入任何内容";
    LabFileUnreadable = 1102, Input, "LAB_FILE_UNREADABLE", "the file cannot be read in the stated format", "无法按所述格式读取该文件";
    LabBarcodeRuleInvalid = 1103, Input, "LAB_BARCODE_RULE_INVALID", "the barcode rule is invalid", "条码规则无效";
    LabStdItemNotFound = 2101, NotFound, "LAB_STD_ITEM_NOT_FOUND", "no such standard lab sub-item", "标准检验小项不存在";
    LabResourceNotFound = 2102, NotFound, "LAB_RESOURCE_NOT_FOUND", "no such standard lab project", "标准检验项目不存在";
    LabInstItemNotFound = 2103, NotFound, "LAB_INST_ITEM_NOT_FOUND", "no such institution lab item", "机构检验小项或项目不存在";
    LabOrderNotFound = 2104, NotFound, "LAB_ORDER_NOT_FOUND", "no such lab order", "委托检验申请不存在";
    LabSpecimenNotFound = 2105, NotFound, "LAB_SPECIMEN_NOT_FOUND", "no specimen has this barcode", "该条码的样本不存在";
    LabShipmentNotFound = 2106, NotFound, "LAB_SHIPMENT_NOT_FOUND", "no such shipment", "送检单不存在";
    LabReportNotFound = 2107, NotFound, "LAB_REPORT_NOT_FOUND", "no report for this specimen", "该样本尚无检验报告";
    LabCriticalNotFound = 2108, NotFound, "LAB_CRITICAL_NOT_FOUND", "no such critical value", "危急值记录不存在";
    LabKeyNotFound = 2109, NotFound, "LAB_KEY_NOT_FOUND", "no signing key is registered for this lab", "该检验机构未登记签名公钥";
    LabTubeRuleNotFound = 2110, NotFound, "LAB_TUBE_RULE_NOT_FOUND", "no tube rule for this specimen type and workgroup", "没有该样本类型和专业组的合管规则";
    LabPanelNotFound = 2111, NotFound, "LAB_PANEL_NOT_FOUND", "no such lab panel", "检验组套不存在";
    LabItemUnmapped = 3101, Conflict, "LAB_ITEM_UNMAPPED", "the item is not mapped to the standard catalogue", "该项目未与标准目录对照";
    LabAlreadyMapped = 3102, Conflict, "LAB_ALREADY_MAPPED", "the standard item is already mapped by another item of this institution", "该标准项已被本机构其他项目对照";
    LabInUse = 3103, Conflict, "LAB_IN_USE", "the item is still mapped or linked and cannot be deleted", "该项仍有对照或关联，不能删除";
    LabNotOffered = 3104, Conflict, "LAB_NOT_OFFERED", "the lab does not offer this project", "该检验机构未投放此项目";
    LabMixedInstitutions = 3105, Conflict, "LAB_MIXED_INSTITUTIONS", "a shipment holds specimens of one institution only", "一张送检单只能包含同一机构的样本";
    LabItemNotOrdered = 3106, Conflict, "LAB_ITEM_NOT_ORDERED", "the result names a sub-item this specimen was not ordered for", "结果中的小项不属于该样本的申请项目";
    LabReadbackMismatch = 3107, Conflict, "LAB_READBACK_MISMATCH", "the read-back value differs from the published critical value", "复述的结果与发布的危急值不一致";
    LabBarcodeExhausted = 3108, Conflict, "LAB_BARCODE_EXHAUSTED", "the barcode sequence for this period is used up", "本周期条码序号已用完";
    LabOrderCancelled = 4101, State, "LAB_ORDER_CANCELLED", "the lab order is cancelled", "委托检验申请已取消";
    LabOrderReceived = 4102, State, "LAB_ORDER_RECEIVED", "the lab has already received this order", "检验机构已接收该申请";
    LabSpecimenState = 4103, State, "LAB_SPECIMEN_STATE", "the specimen is not in a state that allows this step", "样本当前状态不允许该操作";
    LabSpecimenRejected = 4104, State, "LAB_SPECIMEN_REJECTED", "the specimen was rejected", "样本已登记不合格";
    LabNothingToPrint = 4105, State, "LAB_NOTHING_TO_PRINT", "every item of the order is already printed", "申请单的项目均已打印";
    LabCriticalAcknowledged = 4106, State, "LAB_CRITICAL_ACKNOWLEDGED", "the critical value is already acknowledged", "危急值已应答确认";
    LabForbidden = 5101, Permission, "LAB_FORBIDDEN", "this institution may not act on that lab order", "本机构无权操作该委托检验";
    LabSignatureInvalid = 5102, Permission, "LAB_SIGNATURE_INVALID", "the report signature does not verify", "报告电子签名验证失败";
    SlotNotFound = 2001, NotFound, "SLOT_NOT_FOUND", "no such slot", "号源不存在";
    BookingNotFound = 2002, NotFound, "BOOKING_NOT_FOUND", "no such booking", "预约不存在";
    DeviceNotFound = 2003, NotFound, "DEVICE_NOT_FOUND", "no such device", "设备不存在";
    ProjectNotFound = 2004, NotFound, "PROJECT_NOT_FOUND", "no such project", "项目不存在";
    WaitlistEntryNotFound = 2005, NotFound, "WAITLIST_ENTRY_NOT_FOUND", "no such waitlist entry", "候补记录不存在";
    HospitalNotFound = 2006, NotFound, "HOSPITAL_NOT_FOUND", "no such hospital", "医院不存在";
    // Referral, exam applications, consultation: 12xx, 22xx, 32xx, 42xx, 52xx. (referral helper: add below)
    InvalidExamItem = 1201, Input, "INVALID_EXAM_ITEM", "the exam item names a method or body part the project does not offer", "检查项目的方法或部位不在该项目可选范围内";
    ExamSignatureMissing = 1202, Input, "EXAM_SIGNATURE_MISSING", "an unstructured report must carry the issuer's electronic signature", "非结构化报告必须附带出具机构的电子签章";
    InvalidSigningKey = 1203, Input, "INVALID_SIGNING_KEY", "the public key is not a valid SM2 key", "公钥不是有效的SM2公钥";
    ReferralNotFound = 2201, NotFound, "REFERRAL_NOT_FOUND", "no such referral", "转诊申请不存在";
    DiseaseNotFound = 2202, NotFound, "DISEASE_NOT_FOUND", "no such referral disease", "转诊病种不存在";
    ExamApplicationNotFound = 2203, NotFound, "EXAM_APPLICATION_NOT_FOUND", "no such exam application", "检查申请不存在";
    ExamItemNotFound = 2204, NotFound, "EXAM_ITEM_NOT_FOUND", "no such item in the exam application", "检查申请中没有该项目";
    ConsultationNotFound = 2205, NotFound, "CONSULTATION_NOT_FOUND", "no such consultation", "会诊申请不存在";
    AdmissionNotFound = 2206, NotFound, "ADMISSION_NOT_FOUND", "no such admission", "住院记录不存在";
    SigningKeyNotFound = 2207, NotFound, "SIGNING_KEY_NOT_FOUND", "no signing key is registered for the issuer", "出具机构未登记签章公钥";
    InstitutionNotFound = 2208, NotFound, "INSTITUTION_NOT_FOUND", "no such institution in the service network", "服务网络中没有该机构";
    DiseaseExists = 3201, Conflict, "DISEASE_EXISTS", "a referral disease with this code exists", "该编码的转诊病种已存在";
    ReferralInvalidTransition = 4201, State, "REFERRAL_INVALID_TRANSITION", "the referral's state does not allow this step", "转诊申请当前状态不允许该操作";
    ExamInvalidTransition = 4202, State, "EXAM_INVALID_TRANSITION", "the exam item's state does not allow this step", "检查项目当前状态不允许该操作";
    ConsultationInvalidTransition = 4203, State, "CONSULTATION_INVALID_TRANSITION", "the consultation's state does not allow this step", "会诊申请当前状态不允许该操作";
    ConsultationRequired = 4204, State, "CONSULTATION_REQUIRED", "this referral needs an approved consultation first", "该转诊需先完成会诊并经审核通过";
    DepositNotPaid = 4205, State, "DEPOSIT_NOT_PAID", "the inpatient deposit is not paid", "住院预交款尚未缴纳";
    ExamRefundNeedsCancel = 4206, State, "EXAM_REFUND_NEEDS_CANCEL", "a refund needs the doctor to cancel the exam first", "退费需先由医生取消检查预约";
    ReferralSlotReleased = 4207, State, "REFERRAL_SLOT_RELEASED", "the referral's booking has ended (cancelled, expired or service stopped)", "转诊对应的号源已释放（取消、超时或停诊）";
    ReferralForbidden = 5201, Permission, "REFERRAL_FORBIDDEN", "this institution may not act on that case", "本机构无权操作该申请";
    ExamSignatureInvalid = 5202, Permission, "EXAM_SIGNATURE_INVALID", "the report's electronic signature does not verify", "报告电子签章验证失败";
    SlotFull = 3001, Conflict, "SLOT_FULL", "the slot has no remaining places", "号源已满";
    SlotClosed = 3002, Conflict, "SLOT_CLOSED", "the slot is closed (service stopped)", "号源已停诊关闭";
    SlotNotReleased = 3003, Conflict, "SLOT_NOT_RELEASED", "the slot is not yet open for booking", "号源尚未开放预约";
    SlotInPast = 3004, Conflict, "SLOT_IN_PAST", "the slot has already started", "号源时间已过";
    PatientOverlap = 3005, Conflict, "PATIENT_OVERLAP", "the patient already has a booking that overlaps this time", "患者在该时段已有预约";
    DuplicateBooking = 3006, Conflict, "DUPLICATE_BOOKING", "the patient already holds this slot", "患者已预约该号源";
    AmbiguousSlot = 3007, Conflict, "AMBIGUOUS_SLOT", "several slots match; name the device or slot", "匹配到多个号源，请指定设备或号源";
    AlreadyWaitlisted = 3008, Conflict, "ALREADY_WAITLISTED", "the patient is already on this waitlist", "患者已在候补队列中";
    ProjectMismatch = 3009, Conflict, "PROJECT_MISMATCH", "the slot belongs to another project", "号源不属于该项目";
    SlotHasPlaces = 3010, Conflict, "SLOT_HAS_PLACES", "the slot still has places; book it instead of waiting", "号源仍有余量，请直接预约";
    // The platform client and request signatures: 13xx input, 53xx permission, 73xx upstream unavailable. (client helper: add below)
    ClientNotBuilt = 1301, Input, "CLIENT_NOT_BUILT", "this build has no platform client (cargo feature `client`)", "本版本未编译平台客户端（cargo 特性 `client`）";
    PlatformNotConfigured = 1302, Input, "PLATFORM_NOT_CONFIGURED", "no platform is configured (config key `platform`)", "未配置平台（配置项 `platform`）";
    UnknownInterface = 1303, Input, "UNKNOWN_INTERFACE", "the platform has no such interface", "平台没有该接口";
    NoCommonVersion = 1304, Input, "NO_COMMON_VERSION", "the platform speaks no interface version this client speaks", "平台与客户端没有共同支持的接口版本";
    SignatureMissing = 5301, Permission, "SIGNATURE_MISSING", "the request carries no signature", "请求缺少签名";
    SignatureInvalid = 5302, Permission, "SIGNATURE_INVALID", "the request signature does not verify", "请求签名校验失败";
    SignatureExpired = 5303, Permission, "SIGNATURE_EXPIRED", "the request timestamp is outside the allowed window", "请求时间戳超出允许范围";
    NonceReplayed = 5304, Permission, "NONCE_REPLAYED", "the request nonce was already used", "请求随机数已被使用（重放）";
    UnknownAppId = 5305, Permission, "UNKNOWN_APP_ID", "no key is configured for this app id", "未配置该应用ID的密钥";
    PlatformUnavailable = 7301, Storage, "PLATFORM_UNAVAILABLE", "the platform is unreachable", "平台无法访问";
    PlatformTimeout = 7302, Storage, "PLATFORM_TIMEOUT", "the platform did not answer in time", "平台响应超时";
    PlatformBadResponse = 7303, Storage, "PLATFORM_BAD_RESPONSE", "the platform's answer is not a valid envelope", "平台返回的数据不是合法的应答";
    InvalidState = 4001, State, "INVALID_STATE", "the booking is not in a state that allows this step", "当前状态不允许该操作";
    HoldExpired = 4002, State, "HOLD_EXPIRED", "the hold expired before it was confirmed", "预占已超时失效";
    RefundNotAllowed = 4003, State, "REFUND_NOT_ALLOWED", "a refund needs the booking cancelled first", "需先取消预约才能退费";
    AlreadyCancelled = 4004, State, "ALREADY_CANCELLED", "the booking is already cancelled", "预约已取消";
    Forbidden = 5001, Permission, "FORBIDDEN", "this institution may not act on that object", "本机构无权操作该对象";
    IdempotencyConflict = 6001, Idempotency, "IDEMPOTENCY_CONFLICT", "request id was already used for a different request", "请求ID已用于其他请求";
    RequestInProgress = 6002, Idempotency, "REQUEST_IN_PROGRESS", "a request with this id is still being processed", "相同请求ID的请求正在处理中";
    StorageError = 7001, Storage, "STORAGE_ERROR", "the durable store failed", "持久化存储失败";
    StoreLocked = 7002, Storage, "STORE_LOCKED", "the data directory is in use by another process", "数据目录正被其他进程使用";
    StoreCorrupt = 7003, Storage, "STORE_CORRUPT", "the data directory holds unreadable data", "数据目录中的数据无法读取";
    EngineClosed = 7004, Storage, "ENGINE_CLOSED", "the engine is closed", "引擎已关闭";
    NullArgument = 8001, Binding, "NULL_ARGUMENT", "a required pointer argument is NULL", "必需的指针参数为空";
    InvalidUtf8 = 8002, Binding, "INVALID_UTF8", "an argument is not valid UTF-8", "参数不是合法的UTF-8";
    BufferTooSmall = 8003, Binding, "BUFFER_TOO_SMALL", "the output buffer is too small", "输出缓冲区太小";
    Internal = 9001, Internal, "INTERNAL", "internal error", "内部错误";
    Panic = 9002, Internal, "PANIC", "internal error: a panic was caught", "内部错误：捕获到异常崩溃";
}

/// An error with its code and a detail text in both languages.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    // Static texts for the common refusals: a busy release day refuses far
    // more often than it books, and a refusal should not allocate.
    message: Cow<'static, str>,
    message_zh: Cow<'static, str>,
}

impl Error {
    /// An error with the code's generic messages.
    pub fn new(code: ErrorCode) -> Error {
        Error { code, message: Cow::Borrowed(code.default_message()), message_zh: Cow::Borrowed(code.default_message_zh()) }
    }
    /// An error with detail. The detail must carry no personal data.
    pub fn with(code: ErrorCode, en: impl Into<Cow<'static, str>>, zh: impl Into<Cow<'static, str>>) -> Error {
        Error { code, message: en.into(), message_zh: zh.into() }
    }
    pub fn missing(field: &str) -> Error {
        Error::with(ErrorCode::MissingField, format!("missing field `{field}`"), format!("缺少必填字段 `{field}`"))
    }
    pub fn invalid(field: &str, why: &str) -> Error {
        Error::with(ErrorCode::InvalidField, format!("field `{field}`: {why}"), format!("字段 `{field}` 无效：{why}"))
    }
    pub fn not_found(code: ErrorCode, what: &str, id: &str) -> Error {
        Error::with(code, format!("{} `{}`", code.default_message(), id), format!("{}：`{}`（{what}）", code.default_message_zh(), id))
    }
    pub fn storage(detail: impl fmt::Display) -> Error {
        Error::with(ErrorCode::StorageError, format!("durable store failed: {detail}"), format!("持久化存储失败：{detail}"))
    }
    pub fn internal(detail: impl fmt::Display) -> Error {
        Error::with(ErrorCode::Internal, format!("internal error: {detail}"), format!("内部错误：{detail}"))
    }
    pub fn code(&self) -> ErrorCode {
        self.code
    }
    pub fn code_str(&self) -> &'static str {
        self.code.as_str()
    }
    pub fn numeric_code(&self) -> i32 {
        self.code.numeric()
    }
    pub fn family(&self) -> ErrorFamily {
        self.code.family()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn message_zh(&self) -> &str {
        &self.message_zh
    }
    /// The error envelope: `{"status":"error","code","numeric_code","message","message_zh"}`.
    pub fn to_envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "status": "error",
            "code": self.code.as_str(),
            "numeric_code": self.code.numeric(),
            "message": &*self.message,
            "message_zh": &*self.message_zh,
        })
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}): {}", self.code.as_str(), self.code.numeric(), self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        // SQLite errors carry SQL and values only of our own tables; values are JSON
        // bodies, which rusqlite does not echo into its messages.
        Error::storage(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_in_their_family() {
        let mut nums = HashSet::new();
        let mut strs = HashSet::new();
        for c in ErrorCode::ALL {
            assert!(nums.insert(c.numeric()), "duplicate number {}", c.numeric());
            assert!(strs.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert_eq!(ErrorFamily::from_numeric(c.numeric()), Some(c.family()));
            assert_eq!(ErrorCode::from_numeric(c.numeric()), Some(*c));
            assert_eq!(ErrorCode::from_str_code(c.as_str()), Some(*c));
            assert!(!c.default_message_zh().is_empty());
        }
        assert!(ErrorCode::ALL.windows(2).all(|w| w[0].numeric() < w[1].numeric()), "ALL is in numeric order");
    }

    #[test]
    fn numbers_never_change() {
        // These numbers are compiled into C, Java and Python callers.
        assert_eq!(ErrorCode::InvalidJson.numeric(), 1001);
        assert_eq!(ErrorCode::SlotFull.numeric(), 3001);
        assert_eq!(ErrorCode::HoldExpired.numeric(), 4002);
        assert_eq!(ErrorCode::StoreLocked.numeric(), 7002);
        assert_eq!(ErrorCode::Panic.numeric(), 9002);
    }
}
