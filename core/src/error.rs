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
    PdfFontMissing = 1009, Input, "PDF_FONT_MISSING", "no font with every character of the document for PDF output (config key `pdf_font`)", "没有包含文档全部字符的字体，无法输出PDF（配置项 `pdf_font`）";
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
    LabNoAgreement = 3109, Conflict, "LAB_NO_AGREEMENT", "no service agreement in force on the order date covers this institution, lab and project", "没有在申请当日有效、覆盖本机构、该检验机构和该项目的服务协议";
    LabOrderCancelled = 4101, State, "LAB_ORDER_CANCELLED", "the lab order is cancelled", "委托检验申请已取消";
    LabOrderReceived = 4102, State, "LAB_ORDER_RECEIVED", "the lab has already received this order", "检验机构已接收该申请";
    LabSpecimenState = 4103, State, "LAB_SPECIMEN_STATE", "the specimen is not in a state that allows this step", "样本当前状态不允许该操作";
    LabSpecimenRejected = 4104, State, "LAB_SPECIMEN_REJECTED", "the specimen was rejected", "样本已登记不合格";
    LabNothingToPrint = 4105, State, "LAB_NOTHING_TO_PRINT", "every item of the order is already printed", "申请单的项目均已打印";
    LabCriticalAcknowledged = 4106, State, "LAB_CRITICAL_ACKNOWLEDGED", "the critical value is already acknowledged", "危急值已应答确认";
    LabOrderUnpaid = 4107, State, "LAB_ORDER_UNPAID", "the lab order is not paid; the fee is collected before the specimen", "委托检验申请尚未缴费，须先缴费再采集样本、打印条码";
    LabPaymentState = 4108, State, "LAB_PAYMENT_STATE", "the lab order's payment status does not allow this step", "委托检验申请当前的缴费状态不允许该操作";
    LabForbidden = 5101, Permission, "LAB_FORBIDDEN", "this institution may not act on that lab order", "本机构无权操作该委托检验";
    LabSignatureInvalid = 5102, Permission, "LAB_SIGNATURE_INVALID", "the report signature does not verify", "报告电子签名验证失败";
    // The chronic-disease centre and follow-up (慢病健康管理中心, 随访): x055–x059 of the families. (chronic helper: add below)
    UnknownIcd10 = 1055, Input, "UNKNOWN_ICD10", "the ICD-10 code is not a chronic disease the register serves (see `chronic-catalog`)", "该ICD-10编码不属于慢病登记管理的病种（见 `chronic-catalog`）";
    ChronicPatientNotFound = 2055, NotFound, "CHRONIC_PATIENT_NOT_FOUND", "no such chronic-disease registration", "慢病登记记录不存在";
    FollowUpNotFound = 2056, NotFound, "FOLLOW_UP_NOT_FOUND", "no such follow-up plan", "随访计划不存在";
    EducationItemNotFound = 2057, NotFound, "EDUCATION_ITEM_NOT_FOUND", "no such health-education item", "健康宣教条目不存在";
    ChronicAlreadyEnrolled = 3055, Conflict, "CHRONIC_ALREADY_ENROLLED", "the patient is already registered and managed by this institution", "该患者已在本机构登记管理";
    ChronicInvalidTransition = 4055, State, "CHRONIC_INVALID_TRANSITION", "the registration's status does not allow this step", "慢病登记当前状态不允许该操作";
    FollowUpInvalidTransition = 4056, State, "FOLLOW_UP_INVALID_TRANSITION", "the follow-up plan's state does not allow this step", "随访计划当前状态不允许该操作";
    SlotNotFound = 2001, NotFound, "SLOT_NOT_FOUND", "no such slot", "号源不存在";
    BookingNotFound = 2002, NotFound, "BOOKING_NOT_FOUND", "no such booking", "预约不存在";
    DeviceNotFound = 2003, NotFound, "DEVICE_NOT_FOUND", "no such device", "设备不存在";
    ProjectNotFound = 2004, NotFound, "PROJECT_NOT_FOUND", "no such project", "项目不存在";
    WaitlistEntryNotFound = 2005, NotFound, "WAITLIST_ENTRY_NOT_FOUND", "no such waitlist entry", "候补记录不存在";
    HospitalNotFound = 2006, NotFound, "HOSPITAL_NOT_FOUND", "no such hospital", "医院不存在";
    HandoffNotFound = 2007, NotFound, "HANDOFF_NOT_FOUND", "no such hand-off to an upstream hospital", "没有该转交上级医院的记录";
    // Referral, exam applications, consultation: 12xx, 22xx, 32xx, 42xx, 52xx. (referral helper: add below)
    InvalidExamItem = 1201, Input, "INVALID_EXAM_ITEM", "the exam item names a method or body part the project does not offer", "检查项目的方法或部位不在该项目可选范围内";
    ExamSignatureMissing = 1202, Input, "EXAM_SIGNATURE_MISSING", "an unstructured report must carry the issuer's electronic signature", "非结构化报告必须附带出具机构的电子签章";
    InvalidSigningKey = 1203, Input, "INVALID_SIGNING_KEY", "the public key is not a valid SM2 key", "公钥不是有效的SM2公钥";
    ReportTypeUnsupported = 1204, Input, "REPORT_TYPE_UNSUPPORTED", "the report document is not a PDF, JPEG, PNG or DICOM file", "报告文件不是PDF、JPEG、PNG或DICOM格式";
    ReferralNotFound = 2201, NotFound, "REFERRAL_NOT_FOUND", "no such referral", "转诊申请不存在";
    DiseaseNotFound = 2202, NotFound, "DISEASE_NOT_FOUND", "no such referral disease", "转诊病种不存在";
    ExamApplicationNotFound = 2203, NotFound, "EXAM_APPLICATION_NOT_FOUND", "no such exam application", "检查申请不存在";
    ExamItemNotFound = 2204, NotFound, "EXAM_ITEM_NOT_FOUND", "no such item in the exam application", "检查申请中没有该项目";
    ConsultationNotFound = 2205, NotFound, "CONSULTATION_NOT_FOUND", "no such consultation", "会诊申请不存在";
    AdmissionNotFound = 2206, NotFound, "ADMISSION_NOT_FOUND", "no such admission", "住院记录不存在";
    SigningKeyNotFound = 2207, NotFound, "SIGNING_KEY_NOT_FOUND", "no signing key is registered for the issuer", "出具机构未登记签章公钥";
    InstitutionNotFound = 2208, NotFound, "INSTITUTION_NOT_FOUND", "no such institution in the service network", "服务网络中没有该机构";
    ReportDocumentNotFound = 2209, NotFound, "REPORT_DOCUMENT_NOT_FOUND", "no such report document", "报告文件不存在";
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
    BedNotInService = 3011, Conflict, "BED_NOT_IN_SERVICE", "the bed is not in service on that date", "该床位在所选日期尚未开放";
    // The platform client and request signatures: 13xx input, 53xx permission, 73xx upstream unavailable. (client helper: add below)
    ClientNotBuilt = 1301, Input, "CLIENT_NOT_BUILT", "this build has no platform client (cargo feature `client`)", "本版本未编译平台客户端（编译特性 `client`）";
    PlatformNotConfigured = 1302, Input, "PLATFORM_NOT_CONFIGURED", "no platform is configured (config key `platform`)", "未配置平台（配置项 `platform`）";
    UnknownInterface = 1303, Input, "UNKNOWN_INTERFACE", "the platform has no such interface", "平台没有该接口";
    NoCommonVersion = 1304, Input, "NO_COMMON_VERSION", "the platform speaks no interface version this client speaks", "平台与客户端没有共同支持的接口版本";
    SignatureMissing = 5301, Permission, "SIGNATURE_MISSING", "the request carries no signature", "请求缺少签名";
    SignatureInvalid = 5302, Permission, "SIGNATURE_INVALID", "the request signature does not verify", "请求签名校验失败";
    SignatureExpired = 5303, Permission, "SIGNATURE_EXPIRED", "the request timestamp is outside the allowed window", "请求时间戳超出允许范围";
    NonceReplayed = 5304, Permission, "NONCE_REPLAYED", "the request nonce was already used", "请求随机数已被使用（重放）";
    // Internal to the verifier's documentation: the sandbox answers an unknown app id exactly as SIGNATURE_INVALID (no probing which ids exist).
    UnknownAppId = 5305, Permission, "UNKNOWN_APP_ID", "no key is configured for this app id", "未配置该应用ID的密钥";
    // The sandbox server's network layer (issue #16): 14xx HTTP-level input, 5306.. refusals of a client.
    RateLimited = 5306, Permission, "RATE_LIMITED", "too many requests from this client; retry after the time in Retry-After", "该客户端请求过于频繁，请稍后按应答头所示时间重试";
    ClientLockedOut = 5307, Permission, "CLIENT_LOCKED_OUT", "too many failed signatures from this client; it is locked out for a while", "该客户端签名校验失败次数过多，已被暂时锁定";
    ConnectionLimit = 5308, Permission, "CONNECTION_LIMIT", "the server is at its connection limit; retry shortly", "服务器连接数已达上限，请稍后重试";
    RequestTimeout = 1401, Input, "REQUEST_TIMEOUT", "the request was not received in time", "未能在时限内收到完整请求";
    UriTooLong = 1402, Input, "URI_TOO_LONG", "the request URI is too long", "请求地址过长";
    HeadersTooLarge = 1403, Input, "HEADERS_TOO_LARGE", "the request headers are too large", "请求头过大";
    MalformedRequest = 1404, Input, "MALFORMED_REQUEST", "the request is not well-formed HTTP/1.1", "请求不符合 HTTP/1.1 格式";
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
    NotLeader = 7005, Storage, "NOT_LEADER", "this engine does not lead the shared store (a standby, or it lost its lease): send changes to the leader", "本引擎不是共享存储的主引擎（备用引擎，或已失去租约）：请将变更发往主引擎";
    NullArgument = 8001, Binding, "NULL_ARGUMENT", "a required pointer argument is NULL", "必需的指针参数为空";
    InvalidUtf8 = 8002, Binding, "INVALID_UTF8", "an argument is not valid UTF-8", "参数不是合法的UTF-8";
    BufferTooSmall = 8003, Binding, "BUFFER_TOO_SMALL", "the output buffer is too small", "输出缓冲区太小";
    InvalidEncoding = 8004, Binding, "INVALID_ENCODING", "an argument is not valid text in the engine's `text_encoding` (GBK)", "参数不是引擎 `text_encoding` 所指编码（GBK）的合法文本";
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
    /// An error with the code's generic messages. Not-found refusals are
    /// made with it: they name what was not found, never the id asked for,
    /// which came from the request and may be personal data (an ID number
    /// sent where a booking id belongs).
    pub fn new(code: ErrorCode) -> Error {
        Error { code, message: Cow::Borrowed(code.default_message()), message_zh: Cow::Borrowed(code.default_message_zh()) }
    }
    /// An error with detail. The detail names fields, never the values the
    /// request gave them (they may be personal data: an ID number, a phone, a
    /// name); values the engine itself decided (a limit, a state) are fine.
    pub fn with(code: ErrorCode, en: impl Into<Cow<'static, str>>, zh: impl Into<Cow<'static, str>>) -> Error {
        Error { code, message: en.into(), message_zh: zh.into() }
    }
    pub fn missing(field: &str) -> Error {
        Error::with(ErrorCode::MissingField, format!("missing field `{field}`"), format!("缺少必填字段 `{field}`"))
    }
    /// A field with the wrong type or value; `why` is English. Its Chinese
    /// is [`reason_zh`]'s (the reasons the commands give, serde's texts),
    /// else a generic Chinese reason: `message_zh` never carries English.
    /// String values serde quotes (`invalid type: string "…"`) are left out
    /// of both texts: they may be personal data.
    pub fn invalid(field: &str, why: &str) -> Error {
        let en = redact_serde_strings(why);
        let zh = reason_zh(why).unwrap_or(Cow::Borrowed(GENERIC_REASON_ZH));
        Error::with(ErrorCode::InvalidField, format!("field `{field}`: {en}"), format!("字段 `{field}` 无效：{zh}"))
    }
    /// [`Error::invalid`] with the reason given in both languages.
    pub fn invalid_zh(field: &str, why: &str, why_zh: &str) -> Error {
        Error::with(ErrorCode::InvalidField, format!("field `{field}`: {why}"), format!("字段 `{field}` 无效：{why_zh}"))
    }
    /// Text that is not JSON (`INVALID_JSON`): serde's text in English, its
    /// category and position in Chinese (`第1行第15列`).
    pub fn json(e: &serde_json::Error) -> Error {
        Error::with(
            ErrorCode::InvalidJson,
            format!("request is not valid JSON: {}", redact_serde_strings(&e.to_string())),
            format!("请求不是合法的JSON：{}", json_error_zh(e)),
        )
    }
    /// The store failed. Its detail (SQLite's or the file system's, in
    /// English) is in `message` only.
    pub fn storage(detail: impl fmt::Display) -> Error {
        Error::with(ErrorCode::StorageError, format!("durable store failed: {detail}"), "持久化存储失败（详情见 `message`）")
    }
    /// A bug. Its detail (English, for the developers) is in `message` only.
    pub fn internal(detail: impl fmt::Display) -> Error {
        Error::with(ErrorCode::Internal, format!("internal error: {detail}"), "内部错误（详情见 `message`）")
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

impl From<serde_json::Error> for Error {
    /// serde_json's errors from parsing text: [`Error::json`].
    fn from(e: serde_json::Error) -> Error {
        Error::json(&e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        // SQLite errors carry SQL and values only of our own tables; values are JSON
        // bodies, which rusqlite does not echo into its messages.
        Error::storage(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// ------------------------------------------------------------------ Chinese reasons

/// The Chinese of a reason no table knows: still Chinese, never English.
pub const GENERIC_REASON_ZH: &str = "类型或取值不符合要求";

/// Reasons the commands give in English, with their Chinese.
const REASONS: &[(&str, &str)] = &[
    ("must be a string", "必须为字符串"),
    ("must be a non-negative integer", "必须为非负整数"),
    ("must be a non-negative number", "必须为非负数"),
    ("must be true or false", "必须为 `true` 或 `false`"),
    ("must be an array", "必须为数组"),
    ("must be an array of strings", "必须为字符串数组"),
    ("must be an object", "必须为对象"),
    ("must be a JSON object", "必须为JSON对象"),
    ("must be an object or a list", "必须为对象或数组"),
    ("must be text, a list or an object", "必须为文本、数组或对象"),
    ("each entry must be an object", "每一项都必须为对象"),
    ("each entry must be a code", "每一项都必须为编码"),
    ("each entry must be a code or {\"code\": …}", "每一项都必须为编码或 `{\"code\": …}` 对象"),
    ("entries must be ids (strings or numbers)", "各项必须为编号（字符串或数字）"),
    ("expected a date YYYY-MM-DD", "应为 `YYYY-MM-DD` 格式的日期"),
    ("expected HH:MM", "应为 `HH:MM` 格式的时间"),
    ("expected HH:MM-HH:MM", "应为 `HH:MM-HH:MM` 格式的时间段"),
    ("expected a date-time like 2024-10-28T10:00:00+08:00", "应为形如 `2024-10-28T10:00:00+08:00` 的日期时间"),
    ("expected a time like 2024-10-29T09:00:00+08:00", "应为形如 `2024-10-29T09:00:00+08:00` 的时间"),
    ("expected RFC 3339, e.g. 2024-10-30T08:00:00+08:00", "应为RFC 3339格式的时间，如 `2024-10-30T08:00:00+08:00`"),
    ("expected a booking id like B000001", "应为形如 `B000001` 的预约编号"),
    ("expected a reservation id like B000001", "应为形如 `B000001` 的预约编号"),
    ("expected a positive integer id", "应为正整数编号"),
    ("expected a list of item numbers", "应为项目序号的数组"),
    ("expected {name, id_number, phone, sex} strings", "应为含 `name`、`id_number`、`phone`、`sex` 字符串字段的对象"),
    ("expected paid (refunds go through exam-refund)", "应为 `paid`（退费请使用 `exam-refund`）"),
    ("expected application/pdf, application/ofd, image/png or image/jpeg", "应为 `application/pdf`、`application/ofd`、`image/png` 或 `image/jpeg`"),
    ("expected text, svg or pdf", "应为 `text`、`svg` 或 `pdf`"),
    ("expected a printer font path such as E:SIMSUN.TTF", "应为打印机字体路径，如 `E:SIMSUN.TTF`"),
    ("expected 152, 203, 300 or 600", "应为 152、203、300 或 600"),
    ("must be 1–48 printable ASCII characters", "必须为 1 到 48 个可打印ASCII字符"),
    ("must be 1 to 64 characters without `/` or control characters", "必须为 1 到 64 个字符，且不含 `/` 或控制字符"),
    ("must be a relative path inside <data_dir>/lab-files, without `..`", "必须为 `<data_dir>/lab-files` 内的相对路径，且不含 `..`"),
    (
        "file paths need an engine with a data_dir (files live in <data_dir>/lab-files)",
        "使用文件路径需以 `data_dir` 打开引擎（文件位于 `<data_dir>/lab-files`）",
    ),
    ("must be after start_time", "必须晚于 `start_time`"),
    ("more than 10000 entries", "超过 10000 项"),
    ("longer than 10000 entries", "超过 10000 项"),
    ("at most 1000 entries", "最多 1000 项"),
    ("larger than 64 KiB", "超过 64×1024 字节"),
    ("not valid percent-encoded UTF-8", "不是合法的百分号编码UTF-8"),
    ("not valid base64", "不是合法的 `base64` 编码"),
    ("not base64", "不是 `base64` 编码"),
    ("not a valid SM2 key in hex", "不是十六进制表示的有效SM2公钥"),
    ("not an SM2 signature (r‖s, 128 hex digits)", "不是SM2签名（r‖s，128位十六进制）"),
    ("cannot be encoded as Code 128", "无法编码为 `Code 128` 条码"),
    ("given more than once", "重复给出"),
    ("the document is empty", "文档为空"),
    ("is empty", "为空"),
    ("could not be read", "无法读取"),
    ("missing or bad boundary", "缺少分隔符或分隔符无效"),
    ("give item_no or item_nos, not both", "`item_no` 与 `item_nos` 只能给出其一"),
    ("give both fallback_name and fallback_contact", "须同时给出 `fallback_name` 和 `fallback_contact`"),
    ("one to 20 item numbers", "须有 1 到 20 个项目序号"),
    ("one to 20 experts", "须有 1 到 20 位专家"),
    ("one to 20 exams per application", "每个申请须有 1 到 20 项检查"),
    ("an item is named twice", "有项目重复列出"),
    ("a barcode appears twice", "有条码重复出现"),
    ("a panel needs at least one project", "组套至少需要一个项目"),
    ("unknown order status", "未知的申请状态"),
    ("the patient is already in the queue", "该患者已在队列中"),
    ("not in the queue", "不在队列中"),
    ("beyond the queue", "超出队列范围"),
    ("names a hospital", "指向的是医院"),
    ("not a bed", "不是床位"),
    ("not a bed reservation", "不是床位预约"),
    ("not a bed of the referral's hospital", "不是该转诊所属医院的床位"),
    ("not an inpatient referral", "不是住院转诊"),
    ("not an exam slot of the application's hospital", "不是该申请所属医院的检查号源"),
    ("an outpatient referral books a registration slot", "门诊转诊只能预约挂号号源"),
    ("a booking moves only to a slot of the same kind", "预约只能改到同类号源"),
    ("beds are reserved with bed-reserve", "床位请通过 `bed-reserve` 预约"),
    ("bed reservations are cancelled with bed-cancel and a reason", "床位预约请通过 `bed-cancel` 并注明原因取消"),
    ("width must be 20–120 mm and height 15–120 mm", "宽度须为 20–120 毫米，高度须为 15–120 毫米"),
    ("must be 1 to 200", "须在 1 到 200 之间"),
    ("must be 1 to 1440", "须在 1 到 1440 之间"),
    ("must hold 1 to 5000 entries", "须有 1 到 5000 项"),
    ("must hold 1 to 500 results", "须有 1 到 500 项结果"),
    ("must hold 1 to 200 values", "须有 1 到 200 个值"),
];

/// The Chinese of an English reason: the [`REASONS`] table, the patterns the
/// commands build (`longer than N characters`, `expected a, b or c`, …),
/// and serde's data errors. `None` for a reason none of them knows.
pub fn reason_zh(why: &str) -> Option<Cow<'static, str>> {
    let why = why.trim();
    if let Some((_, zh)) = REASONS.iter().find(|(en, _)| *en == why) {
        return Some(Cow::Borrowed(zh));
    }
    pattern_zh(why).or_else(|| serde_data_zh(why)).map(Cow::Owned)
}

/// `a` → `` `a` ``; the words of a list joined the Chinese way (`a`、`b` 或 `c`).
fn quoted_list(items: &[&str], last_joiner: &str) -> String {
    let q: Vec<String> = items.iter().map(|i| format!("`{}`", i.trim().trim_matches('`'))).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}{last_joiner}{last}", rest.join("、")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// `x, y or z` (each one word, no spaces) → its words.
fn alternatives(s: &str) -> Option<Vec<&str>> {
    let (head, last) = s.rsplit_once(" or ")?;
    let mut items: Vec<&str> = head.split(", ").collect();
    items.push(last);
    items.iter().all(|i| !i.is_empty() && !i.contains(' ')).then_some(items)
}

fn number(s: &str) -> Option<&str> {
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())).then_some(s)
}

fn pattern_zh(why: &str) -> Option<String> {
    if let Some(n) = why.strip_prefix("longer than ").and_then(|r| r.strip_suffix(" characters")).and_then(number) {
        return Some(format!("超过 {n} 个字符"));
    }
    if let Some(n) = why.strip_prefix("must be at most ").and_then(number) {
        return Some(format!("不得超过 {n}"));
    }
    if let Some(r) = why.strip_prefix("must be ").and_then(|r| r.strip_suffix(" characters")) {
        if let Some((a, b)) = r.split_once(" to ").and_then(|(a, b)| Some((number(a)?, number(b)?))) {
            return Some(format!("长度须为 {a} 到 {b} 个字符"));
        }
    }
    if let Some((a, b)) = why.strip_prefix("must be ").and_then(|r| r.split_once(" to ")).and_then(|(a, b)| Some((number(a)?, number(b)?))) {
        return Some(format!("须在 {a} 到 {b} 之间"));
    }
    if let Some(r) = why.strip_prefix("must hold ") {
        let (range, what) = r.rsplit_once(' ')?;
        let (a, b) = range.split_once(" to ").and_then(|(a, b)| Some((number(a)?, number(b)?)))?;
        let unit = match what {
            "values" => "个值",
            "results" => "项结果",
            _ => "项",
        };
        return Some(format!("须有 {a} 到 {b} {unit}"));
    }
    if let Some(example) = why.strip_prefix("expected an id like ") {
        return Some(format!("应为形如 `{example}` 的编号"));
    }
    if let Some(code) = why.strip_prefix("sub-item ").and_then(|r| r.strip_suffix(" appears twice")) {
        return Some(format!("小项 `{code}` 重复出现"));
    }
    if let Some(id) = why.strip_prefix("slot ").and_then(|r| r.strip_suffix(" is listed twice")) {
        return Some(format!("号源 `{id}` 重复列出"));
    }
    if let Some((mine, theirs)) = why.strip_prefix("specimen type ").and_then(|r| r.split_once(" differs from the standard sub-item's ")) {
        return Some(format!("样本类型 `{mine}` 与标准小项的样本类型 `{theirs}` 不一致"));
    }
    if let Some((id, kind)) = why.strip_prefix("referral ").and_then(|r| r.strip_suffix(" referral")).and_then(|r| r.split_once(" is a ")) {
        return Some(format!("转诊申请 `{id}` 属于 `{kind}` 类转诊"));
    }
    if let Some(list) = why.strip_prefix("expected ").and_then(alternatives) {
        return Some(format!("应为 {}", quoted_list(&list, " 或 ")));
    }
    None
}

/// serde's wording of what it expected (`u32`, `a string`, `struct Project`).
fn expected_zh(exp: &str) -> &'static str {
    let exp = exp.trim();
    match exp {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "非负整数",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "整数",
        "f32" | "f64" => "数字",
        "a string" | "a borrowed string" | "string" | "a string or number" => "字符串",
        "a boolean" | "bool" => "布尔值",
        "a character" | "char" => "单个字符",
        "a sequence" | "a tuple" | "an array" => "数组",
        "a map" => "对象",
        "unit" => "空值",
        "a date" | "a valid date" => "日期",
        _ if exp.starts_with("struct ") || exp.starts_with("a map") || exp.starts_with("an object") => "对象",
        _ if exp.starts_with("tuple") || exp.starts_with("a tuple") || exp.starts_with("a sequence") || exp.starts_with("an array") => "数组",
        _ if exp.starts_with("enum ") || exp.starts_with("one of ") || exp.starts_with("variant ") => "可选值之一",
        _ => "符合要求的值",
    }
}

/// serde's wording of what it got (`integer `5``, `string "…"`, `map`), in
/// Chinese; numbers and booleans are kept, strings are not (personal data).
fn unexpected_zh(got: &str) -> String {
    let got = got.trim();
    if got == "string" || got.starts_with("string \"") {
        return "字符串".into();
    }
    let (kind, value) = match got.split_once(' ') {
        Some((k, v)) if v.starts_with('`') => (k, Some(v)),
        _ => (got, None),
    };
    let name = match kind {
        "boolean" => "布尔值",
        "integer" => "整数",
        "floating" => "小数",
        "character" => "字符",
        "null" | "unit" => "空值",
        "sequence" => "数组",
        "map" => "对象",
        _ if got.starts_with("floating point") => return format!("小数 {}", got.trim_start_matches("floating point").trim()),
        _ if got.starts_with("byte array") => "字节数组",
        _ if got.starts_with("unit value") => "空值",
        _ if got.starts_with("Option value") => "可选值",
        _ => "其他类型的值",
    };
    match value {
        Some(v) => format!("{name} {v}"),
        None => name.to_string(),
    }
}

/// `` `a`, `b` `` (serde's list of names) → the Chinese list.
fn names_zh(list: &str) -> String {
    let names: Vec<&str> = list.split(", ").collect();
    quoted_list(&names, "、")
}

/// serde's data errors (what `from_value` and the `Deserialize` impls say),
/// with an optional ` at line N column M`.
fn serde_data_zh(why: &str) -> Option<String> {
    let (text, pos) = split_position(why);
    let zh = if let Some(r) = text.strip_prefix("invalid type: ") {
        let (got, exp) = r.rsplit_once(", expected ")?;
        format!("类型错误：收到{}，应为{}", unexpected_zh(got), expected_zh(exp))
    } else if let Some(r) = text.strip_prefix("invalid value: ") {
        let (got, exp) = r.rsplit_once(", expected ")?;
        format!("取值错误：收到{}，应为{}", unexpected_zh(got), expected_zh(exp))
    } else if let Some(r) = text.strip_prefix("invalid length ") {
        let (n, exp) = r.split_once(", expected ")?;
        format!("长度错误：收到 {} 项，应为{}", number(n)?, expected_zh(exp))
    } else if let Some(r) = text.strip_prefix("missing field ") {
        format!("缺少字段 {}", names_zh(r))
    } else if let Some(r) = text.strip_prefix("duplicate field ") {
        format!("字段 {} 重复", names_zh(r))
    } else if let Some(r) = text.strip_prefix("unknown field ") {
        let (name, rest) = r.split_once(", ").unwrap_or((r, ""));
        match rest.strip_prefix("expected one of ").or_else(|| rest.strip_prefix("expected ")) {
            Some(list) => format!("未知字段 {}，可用字段：{}", names_zh(name), names_zh(list)),
            None => format!("未知字段 {}", names_zh(name)),
        }
    } else if let Some(r) = text.strip_prefix("unknown variant ") {
        let (name, rest) = r.split_once(", ").unwrap_or((r, ""));
        match rest.strip_prefix("expected one of ").or_else(|| rest.strip_prefix("expected ")) {
            Some(list) => format!("未知取值 {}，应为 {} 之一", names_zh(name), names_zh(list)),
            None => format!("未知取值 {}", names_zh(name)),
        }
    } else {
        return None;
    };
    Some(match pos {
        Some((l, c)) => format!("{zh}（第{l}行第{c}列）"),
        None => zh,
    })
}

/// `text at line N column M` → (`text`, (N, M)).
fn split_position(s: &str) -> (&str, Option<(&str, &str)>) {
    if let Some((text, pos)) = s.rsplit_once(" at line ") {
        if let Some((l, c)) = pos.split_once(" column ") {
            if let (Some(l), Some(c)) = (number(l), number(c)) {
                return (text, Some((l, c)));
            }
        }
    }
    (s, None)
}

/// serde quotes string values it refuses (`invalid type: string "张三",
/// expected u32`): they may be personal data, so they are cut out.
fn redact_serde_strings(why: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest = why;
    let mut changed = false;
    while let Some(i) = rest.find("string \"") {
        let start = i + "string ".len();
        // The closing quote: the last `"` before `, expected` or the end.
        let tail = &rest[start + 1..];
        let end = tail.rfind("\", expected").or_else(|| tail.rfind('"'));
        let Some(end) = end else { break };
        out.push_str(&rest[..i]);
        out.push_str("string");
        rest = &tail[end + 1..];
        changed = true;
    }
    if !changed {
        return Cow::Borrowed(why);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// serde_json's syntax errors in Chinese (the category, then the position).
pub fn json_error_zh(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let full = e.to_string();
    let (text, _) = split_position(&full);
    let what: Cow<'static, str> = match e.classify() {
        Category::Io => "读取失败".into(),
        Category::Eof => match text {
            "EOF while parsing a list" => "数组未结束即到达末尾".into(),
            "EOF while parsing an object" => "对象未结束即到达末尾".into(),
            "EOF while parsing a string" => "字符串未结束即到达末尾".into(),
            _ => "值未结束即到达末尾".into(),
        },
        Category::Syntax => match text {
            "expected `:`" => "此处应为冒号 `:`".into(),
            "expected `,` or `]`" => "此处应为 `,` 或 `]`".into(),
            "expected `,` or `}`" => "此处应为 `,` 或 `}`".into(),
            "expected ident" => "无法识别的字面量（应为 `true`、`false` 或 `null`）".into(),
            "expected value" => "此处应为一个值".into(),
            "expected `\"`" => "此处应为双引号".into(),
            "invalid escape" => "无效的转义序列".into(),
            "invalid number" => "无效的数字".into(),
            "number out of range" => "数字超出范围".into(),
            "invalid unicode code point" => "无效的字符码点".into(),
            "key must be a string" => "对象的键必须为字符串".into(),
            "trailing comma" => "多余的尾随逗号".into(),
            "trailing characters" => "值结束后还有多余的字符".into(),
            "unexpected end of hex escape" => "十六进制转义不完整".into(),
            "lone leading surrogate in hex escape" => "十六进制转义中有孤立的代理项".into(),
            "recursion limit exceeded" => "嵌套层数超过上限".into(),
            t if t.starts_with("control character") => "字符串中有未转义的控制字符（U+0000 至 U+001F）".into(),
            t if t.starts_with("float key must be finite") => "浮点数键必须为有限值".into(),
            t if t.starts_with("invalid value: expected key to be a number") => "对象的键应为带引号的数字".into(),
            _ => "语法错误".into(),
        },
        Category::Data => serde_data_zh(text).map(Cow::Owned).unwrap_or(Cow::Borrowed(GENERIC_REASON_ZH)),
    };
    match (e.line(), e.column()) {
        (0, _) => what.into_owned(),
        (l, c) => format!("{what}（第{l}行第{c}列）"),
    }
}

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

    /// English left in a Chinese text: lower-case words of 3+ letters
    /// outside backquotes (capitals and codes such as JSON, UTF-8, SM2 are kept).
    fn english_in(zh: &str) -> Vec<String> {
        let mut outside = String::new();
        let mut inside = false;
        for c in zh.chars() {
            if c == '`' {
                inside = !inside;
                outside.push(' ');
            } else if !inside {
                outside.push(c);
            }
        }
        outside
            .split(|c: char| !(c.is_ascii_alphanumeric() || "_.:/+-".contains(c)))
            .filter(|t| t.chars().any(|c| c.is_ascii_lowercase()) && !t.chars().any(|c| c.is_ascii_digit() || c == '_' || c == '-'))
            .flat_map(|t| t.split(|c: char| !c.is_ascii_alphabetic()))
            .filter(|w| w.len() >= 3)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_codes_chinese_text_is_wholly_chinese() {
        for c in ErrorCode::ALL {
            assert_eq!(english_in(c.default_message_zh()), Vec::<String>::new(), "{}: {}", c.as_str(), c.default_message_zh());
        }
        for (en, zh) in REASONS {
            assert_eq!(english_in(zh), Vec::<String>::new(), "{en}: {zh}");
        }
        assert_eq!(english_in("本版本未编译平台客户端（cargo 特性 `client`）"), ["cargo"], "the rule sees the old text");
    }

    #[test]
    fn an_invalid_field_speaks_chinese_whatever_the_reason() {
        let e = Error::invalid("date", "expected a date YYYY-MM-DD");
        assert_eq!((e.message(), e.message_zh()), ("field `date`: expected a date YYYY-MM-DD", "字段 `date` 无效：应为 `YYYY-MM-DD` 格式的日期"));
        for (why, zh) in [
            ("longer than 256 characters", "超过 256 个字符"),
            ("must be 1 to 128 characters", "长度须为 1 到 128 个字符"),
            ("must be at most 100000", "不得超过 100000"),
            ("must be 1 to 200", "须在 1 到 200 之间"),
            ("must hold 1 to 5000 entries", "须有 1 到 5000 项"),
            ("expected an id like SH000001", "应为形如 `SH000001` 的编号"),
            ("expected paid, unpaid or refunded", "应为 `paid`、`unpaid` 或 `refunded`"),
            ("expected approve or reject", "应为 `approve` 或 `reject`"),
            ("sub-item STD-HEM-001 appears twice", "小项 `STD-HEM-001` 重复出现"),
            ("referral 3 is a down referral", "转诊申请 `3` 属于 `down` 类转诊"),
            ("a reason nobody translated", GENERIC_REASON_ZH),
        ] {
            let e = Error::invalid("f", why);
            assert_eq!(e.message_zh(), format!("字段 `f` 无效：{zh}"), "{why}");
            assert_eq!(e.message(), format!("field `f`: {why}"), "the English keeps the reason");
            assert_eq!(english_in(e.message_zh()), Vec::<String>::new(), "{why}");
        }
    }

    #[test]
    fn serde_data_errors_are_translated_by_category() {
        for (why, zh) in [
            ("invalid type: integer `5`, expected struct Project", "类型错误：收到整数 `5`，应为对象"),
            ("invalid type: string \"张三\", expected u32", "类型错误：收到字符串，应为非负整数"),
            ("invalid type: map, expected a string", "类型错误：收到对象，应为字符串"),
            ("invalid type: sequence, expected f64", "类型错误：收到数组，应为数字"),
            ("invalid type: boolean `true`, expected a string", "类型错误：收到布尔值 `true`，应为字符串"),
            ("invalid type: null, expected a string", "类型错误：收到空值，应为字符串"),
            ("invalid value: integer `-1`, expected u32", "取值错误：收到整数 `-1`，应为非负整数"),
            ("invalid length 3, expected a tuple of size 2", "长度错误：收到 3 项，应为数组"),
            ("missing field `project_id`", "缺少字段 `project_id`"),
            ("duplicate field `cost`", "字段 `cost` 重复"),
            ("unknown field `costs`, expected one of `project_id`, `cost`", "未知字段 `costs`，可用字段：`project_id`、`cost`"),
            ("unknown field `x`, expected `a`", "未知字段 `x`，可用字段：`a`"),
            ("unknown field `x`, there are no fields", "未知字段 `x`"),
            ("unknown variant `maybe`, expected one of `paid`, `unpaid`", "未知取值 `maybe`，应为 `paid`、`unpaid` 之一"),
            ("missing field `a` at line 1 column 9", "缺少字段 `a`（第1行第9列）"),
        ] {
            assert_eq!(reason_zh(why).as_deref(), Some(zh), "{why}");
        }
    }

    #[test]
    fn string_values_serde_quotes_are_left_out_of_both_texts() {
        let e = Error::invalid("projects[]", "invalid type: string \"张三 110105194912310029\", expected f64");
        assert_eq!(e.message(), "field `projects[]`: invalid type: string, expected f64");
        assert!(!e.message_zh().contains("张三") && !e.message_zh().contains("1101"), "{}", e.message_zh());
        assert_eq!(redact_serde_strings("invalid value: string \"a, expected b\", expected u8"), "invalid value: string, expected u8");
        assert_eq!(redact_serde_strings("must be a string"), "must be a string");
    }

    #[test]
    fn json_syntax_errors_name_their_category_and_position_in_chinese() {
        for (text, zh) in [
            ("{", "对象未结束即到达末尾（第1行第1列）"),
            ("[1, 2", "数组未结束即到达末尾（第1行第5列）"),
            ("{\"a\": \"b", "字符串未结束即到达末尾（第1行第8列）"),
            ("{\"a\": ", "值未结束即到达末尾（第1行第6列）"),
            ("{\"a\" 1}", "此处应为冒号 `:`（第1行第6列）"),
            ("{\"a\": 1,}", "多余的尾随逗号（第1行第9列）"),
            ("{} x", "值结束后还有多余的字符（第1行第4列）"),
            ("{\"a\": x}", "此处应为一个值（第1行第7列）"),
            ("{1: 2}", "对象的键必须为字符串（第1行第2列）"),
            ("{\"a\": 1e999}", "数字超出范围（第1行第11列）"),
            ("nul", "值未结束即到达末尾（第1行第3列）"),
            ("{\"a\": \"\\x\"}", "无效的转义序列（第1行第9列）"),
        ] {
            let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
            assert_eq!(json_error_zh(&e), zh, "{text:?}: {e}");
            let err = Error::from(e);
            assert_eq!(err.code(), ErrorCode::InvalidJson);
            assert_eq!(err.message_zh(), format!("请求不是合法的JSON：{zh}"));
            assert!(err.message().starts_with("request is not valid JSON: "), "English keeps serde's text: {}", err.message());
        }
    }

    #[test]
    fn storage_and_internal_details_stay_in_the_english_message() {
        let e = Error::storage("database is locked");
        assert_eq!((e.message(), e.message_zh()), ("durable store failed: database is locked", "持久化存储失败（详情见 `message`）"));
        let e = Error::internal("slot S1 counts disagree");
        assert_eq!((e.message(), e.message_zh()), ("internal error: slot S1 counts disagree", "内部错误（详情见 `message`）"));
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
