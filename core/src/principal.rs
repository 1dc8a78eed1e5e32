//! Who is acting (S1): one principal on every call, and the one rule that
//! binds a request to it.
//!
//! The host states the principal, never the request body: in process through
//! the engine config (`role`, `institution_id`) or per call
//! (`Engine::call_as`, `yl_call_as`, `call(…, principal=…)` in Python,
//! `callAs` in Java); on the wire the sandbox takes it from the verified app
//! id of a signed request. Each command declares in the registry
//! (`registry.rs`) which roles may call it and which body fields name the
//! acting party (`clinic_id`, `institution_id`, `lab_id`, `hospital_id` where
//! it means the caller). [`bind`] is the only place those fields are read as
//! "who": a field naming anyone but the principal is refused with `FORBIDDEN`
//! before the handler runs, so nothing changes. The domains then read the
//! bound principal from the request (`Req::who`), never the body or the
//! config.
//!
//! The platform principal is trusted by the whole network: it may act on any
//! object, and when a request names an acting party it acts on that party's
//! behalf (the fields must then agree with one another), as the platform's
//! booking terminal does for a community centre.
//!
//! What each role may do is data: `access-rules` serves the table (roles per
//! command and the acting fields) beside what each role may touch and whose
//! patient identifiers it reads in full.
//!
//! Patient identifiers (S1): [`Principal::sees_patient_id`] is the one rule
//! for who reads a record's `patient_id` in full (the platform, and an
//! institution that is a party of the record); `views::mask_patient_ids`
//! applies it to every answer and event on its way out, so every other
//! principal reads the masked form (`identity::mask_patient_id`).

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The kinds of party in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Hosts the unified booking platform (号源池): trusted by the network.
    Platform,
    /// A hospital (上级医院): its slots, the cases sent to it, its lab.
    Hospital,
    /// A community institution (基层机构): its own bookings, cases and orders.
    Community,
    /// A lab (检验机构) receiving commissioned tests: the specimens sent to it.
    Lab,
    /// A regulator (监管部门): statistics and the audit trail, never personal data.
    Regulator,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Platform, Role::Hospital, Role::Community, Role::Lab, Role::Regulator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Platform => "platform",
            Role::Hospital => "hospital",
            Role::Community => "community",
            Role::Lab => "lab",
            Role::Regulator => "regulator",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
    const fn bit(self) -> u8 {
        1 << self as u8
    }
    /// What a principal of this role may touch, as `access-rules` tells it.
    fn scope(self) -> (&'static str, &'static str) {
        match self {
            Role::Platform => ("every object of the network; naming an acting party acts on its behalf", "全网所有对象；请求中指明办理机构时代其办理"),
            Role::Hospital => (
                "its own slots and schedules, the bookings on them, the cases sent to it and the lab orders it receives",
                "本院的号源与排班、本院号源上的预约、转给本院的申请以及本院接收的委托检验",
            ),
            Role::Community => ("its own bookings, referral cases, exam applications and lab orders", "本机构的预约、转诊、检查申请和委托检验"),
            Role::Lab => ("the specimens, reports and critical values of the orders sent to it", "送到本机构的样本、报告和危急值"),
            Role::Regulator => ("statistics and the audit trail; never personal data", "统计数据和审计日志，不含个人信息"),
        }
    }
    /// Whose patient identifiers a principal of this role reads in full, as
    /// `access-rules` tells it ([`Principal::sees_patient_id`] is the rule).
    fn patient_ids(self) -> (&'static str, &'static str) {
        match self {
            Role::Platform => ("in full on every record", "全部完整显示"),
            Role::Regulator => ("masked on every record", "全部脱敏显示"),
            Role::Hospital | Role::Community | Role::Lab => (
                "in full on the records it is a party of (its bookings, the slots it publishes, its cases and orders); masked on any other",
                "本机构参与的记录（本机构的预约、本院号源、本机构的申请与委托）完整显示，其他记录脱敏显示",
            ),
        }
    }
}

/// A set of roles, as the registry declares who may call a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub const fn of(roles: &[Role]) -> Roles {
        let mut bits = 0u8;
        let mut i = 0;
        while i < roles.len() {
            bits |= roles[i].bit();
            i += 1;
        }
        Roles(bits)
    }
    pub fn contains(self, r: Role) -> bool {
        self.0 & r.bit() != 0
    }
    pub fn names(self) -> Vec<&'static str> {
        Role::ALL.into_iter().filter(|r| self.contains(*r)).map(Role::as_str).collect()
    }
}

/// Who is acting: stated by the host or the verified key, never by the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The institution acting; required for every role but the platform and
    /// the regulator.
    pub institution_id: Option<String>,
    /// The person at the terminal, for the audit trail.
    pub operator: Option<String>,
}

fn bad(field: &str, en: &str, zh: &str) -> Error {
    Error::with(ErrorCode::InvalidField, format!("principal `{field}`: {en}"), format!("调用身份的 `{field}` 无效：{zh}"))
}

impl Principal {
    /// The platform itself, with no institution.
    pub fn platform() -> Principal {
        Principal { role: Role::Platform, institution_id: None, operator: None }
    }

    /// A principal, checked: every role but the platform and the regulator
    /// names its institution.
    pub fn new(role: Role, institution_id: Option<&str>, operator: Option<&str>) -> Result<Principal> {
        let clean = |field: &str, s: Option<&str>| -> Result<Option<String>> {
            match s.map(str::trim) {
                None | Some("") => Ok(None),
                Some(t) if t.chars().count() > 64 || t.chars().any(char::is_control) => {
                    Err(bad(field, "must be 1 to 64 characters without control characters", "须为1至64个字符，且不含控制字符"))
                }
                Some(t) => Ok(Some(t.to_string())),
            }
        };
        let institution_id = clean("institution_id", institution_id)?;
        let operator = clean("operator", operator)?;
        if institution_id.is_none() && !matches!(role, Role::Platform | Role::Regulator) {
            return Err(bad("institution_id", "a hospital, community or lab principal must name its institution", "医院、基层机构或检验机构身份必须指明机构"));
        }
        Ok(Principal { role, institution_id, operator })
    }

    /// From JSON: `{"role": "community", "institution_id": "C001", "operator": "王护士"}`.
    pub fn from_json(json: &str) -> Result<Principal> {
        let v: Value =
            serde_json::from_str(json).map_err(|_| Error::with(ErrorCode::InvalidJson, "the principal is not valid JSON", "调用身份不是合法的JSON"))?;
        Principal::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Principal> {
        let m = v.as_object().ok_or_else(|| bad("(principal)", "must be a JSON object", "必须是JSON对象"))?;
        if let Some(k) = m.keys().find(|k| !["role", "institution_id", "operator"].contains(&k.as_str())) {
            let k = k.chars().take(64).collect::<String>();
            return Err(bad(&k, "unknown key; expected role, institution_id, operator", "未知的键，应为 role、institution_id、operator"));
        }
        let s = |k: &str| -> Result<Option<&str>> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(bad(k, "must be a string", "必须是字符串")),
            }
        };
        let role = match s("role")? {
            None => Role::Platform,
            Some(r) => Role::parse(r).ok_or_else(|| {
                bad("role", "expected platform, hospital, community, lab or regulator", "应为 platform、hospital、community、lab 或 regulator")
            })?,
        };
        Principal::new(role, s("institution_id")?, s("operator")?)
    }

    pub fn view(&self) -> Value {
        json!({"role": self.role.as_str(), "institution_id": self.institution_id, "operator": self.operator})
    }

    /// Acting for the whole network (no particular institution).
    pub fn is_platform(&self) -> bool {
        self.role == Role::Platform && self.institution_id.is_none()
    }

    /// The one masking rule for patient identifiers (S1): whether this
    /// principal reads in full the `patient_id` of a record whose parties
    /// (the institutions it names as booking institution, hospital,
    /// institution or lab) `is_party` recognises.
    ///
    /// - The platform, acting for the whole network: always.
    /// - The regulator: never (statistics and the audit trail only).
    /// - An institution (hospital, community, lab, or the platform acting on
    ///   its behalf): only on a record it is a party of: the booking it made,
    ///   a booking or waitlist entry on its own slot, a case it sent or
    ///   received, an order it placed or tests.
    pub fn sees_patient_id(&self, is_party: impl Fn(&str) -> bool) -> bool {
        match (self.role, self.institution_id.as_deref()) {
            (Role::Regulator, _) => false,
            (Role::Platform, None) => true,
            (_, Some(own)) => is_party(own),
            (_, None) => false,
        }
    }

    /// Reads every patient identifier in full, whatever the record: the
    /// masking walk can be skipped.
    pub(crate) fn sees_every_patient_id(&self) -> bool {
        self.is_platform()
    }

    /// Whether this principal owns an engine's outbox, whose host is `host`
    /// (the configured principal): it then reads every event and
    /// acknowledges. Only the host itself or the platform does; any other
    /// principal reads only the events it is a party of
    /// (`views::event_visible_to`) and may not drop events other
    /// institutions are still to read.
    pub(crate) fn owns_outbox_of(&self, host: &Principal) -> bool {
        self.is_platform() || (self.role == host.role && self.institution_id == host.institution_id)
    }
}

pub(crate) fn forbidden_role(command: &str, role: Role) -> Error {
    Error::with(ErrorCode::Forbidden, format!("a {} principal may not call `{command}`", role.as_str()), format!("{}身份无权调用 `{command}`", role_zh(role)))
}

fn role_zh(role: Role) -> &'static str {
    match role {
        Role::Platform => "平台",
        Role::Hospital => "医院",
        Role::Community => "基层机构",
        Role::Lab => "检验机构",
        Role::Regulator => "监管部门",
    }
}

/// An acting field's text as the rule reads it: trimmed, `None` when empty.
pub(crate) fn acting_text(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

/// What an acting field names, given as a string (`Ok`, [`acting_text`]) or
/// any other JSON value (`Err`): a number names the institution it prints
/// as; anything else names none.
pub(crate) fn acting_id<'a>(field: std::result::Result<&'a str, &Value>) -> Option<std::borrow::Cow<'a, str>> {
    match field {
        Ok(s) => acting_text(s).map(std::borrow::Cow::Borrowed),
        Err(Value::Number(n)) => Some(n.to_string().into()),
        Err(_) => None,
    }
}

/// The one rule: the principal the handler sees for a call of a command
/// whose body fields `acting` name the acting party.
///
/// - A principal of an institution: every acting field present must name
///   that institution (else `FORBIDDEN`, nothing changes); it acts as itself.
/// - The platform: acting fields present must agree; naming one acts on that
///   party's behalf (a lab when the field is `lab_id`, a hospital when the
///   catalogue knows it as one, else a community institution).
///
/// `field(k)` is what the acting field `k` names ([`acting_text`]), if anything.
pub(crate) fn bind_fields<'a>(
    principal: &Principal,
    acting: &[&str],
    field: impl Fn(&str) -> Option<std::borrow::Cow<'a, str>>,
    is_hospital: impl Fn(&str) -> bool,
) -> Result<Principal> {
    let mut named = acting.iter().filter_map(|k| field(k).map(|v| (*k, v)));
    if !principal.is_platform() {
        let own = principal.institution_id.as_deref();
        // The message names the field, never the value it holds.
        if let Some((k, _)) = named.find(|(_, v)| Some(&**v) != own) {
            return Err(Error::with(
                ErrorCode::Forbidden,
                format!("`{k}` names another institution than the caller's; an institution acts only for itself"),
                format!("`{k}` 与调用方机构不一致：机构只能以本机构名义办理"),
            ));
        }
        return Ok(principal.clone());
    }
    let Some((field, first)) = named.next() else { return Ok(principal.clone()) };
    if let Some((k, _)) = named.find(|(_, v)| *v != first) {
        return Err(Error::with(
            ErrorCode::Forbidden,
            format!("`{field}` and `{k}` name different acting institutions"),
            format!("`{field}` 与 `{k}` 指明的办理机构不一致"),
        ));
    }
    let role = if field == "lab_id" {
        Role::Lab
    } else if is_hospital(&first) {
        Role::Hospital
    } else {
        Role::Community
    };
    Ok(Principal { role, institution_id: Some(first.into_owned()), operator: principal.operator.clone() })
}

/// The role table for `access-rules`: what each role may touch.
pub(crate) fn roles_view() -> Value {
    Role::ALL
        .into_iter()
        .map(|r| {
            let (en, zh) = r.scope();
            let (ids, ids_zh) = r.patient_ids();
            json!({"role": r.as_str(), "name_zh": role_zh(r), "may_touch": en, "may_touch_zh": zh, "patient_ids": ids, "patient_ids_zh": ids_zh})
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Map;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// The rule over a map's fields (as `Req::acting_text` reads a request:
    /// `request::tests` holds the two readings alike).
    fn bind(p: &Principal, acting: &[&str], body: &Map<String, Value>, is_hospital: impl Fn(&str) -> bool) -> Result<Principal> {
        let field = |k: &str| {
            acting_id(match body.get(k)? {
                Value::String(s) => Ok(s.as_str()),
                v => Err(v),
            })
        };
        bind_fields(p, acting, field, is_hospital)
    }

    #[test]
    fn an_institution_cannot_name_another_in_any_acting_field() {
        let c1 = Principal::new(Role::Community, Some("C001"), None).unwrap();
        let acting = ["clinic_id", "institution_id"];
        assert_eq!(bind(&c1, &acting, &body(json!({"clinic_id": "C001"})), |_| false).unwrap(), c1);
        assert_eq!(bind(&c1, &acting, &body(json!({})), |_| false).unwrap(), c1);
        for b in [json!({"clinic_id": "C002"}), json!({"institution_id": "C002"}), json!({"clinic_id": "C001", "institution_id": "C002"})] {
            let e = bind(&c1, &acting, &body(b), |_| false).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Forbidden);
            assert!(!e.message().contains("C002") && !e.message_zh().contains("C002"));
        }
        // A field that does not name the caller for this command is free.
        assert!(bind(&c1, &acting, &body(json!({"hospital_id": "H001"})), |_| false).is_ok());
    }

    #[test]
    fn the_platform_acts_on_behalf_of_the_party_it_names_and_only_one() {
        let p = Principal::platform();
        let acting = ["clinic_id", "institution_id", "lab_id"];
        let as_h = bind(&p, &acting, &body(json!({"institution_id": "H001"})), |i| i == "H001").unwrap();
        assert_eq!((as_h.role, as_h.institution_id.as_deref()), (Role::Hospital, Some("H001")));
        let as_c = bind(&p, &acting, &body(json!({"clinic_id": "C001", "institution_id": "C001"})), |_| false).unwrap();
        assert_eq!((as_c.role, as_c.institution_id.as_deref()), (Role::Community, Some("C001")));
        assert_eq!(bind(&p, &acting, &body(json!({"lab_id": 7})), |_| false).unwrap().role, Role::Lab);
        assert_eq!(bind(&p, &acting, &body(json!({"clinic_id": "C001", "institution_id": "C002"})), |_| false).unwrap_err().code(), ErrorCode::Forbidden);
        assert!(bind(&p, &acting, &body(json!({})), |_| false).unwrap().is_platform());
    }

    #[test]
    fn only_the_platform_and_a_party_of_the_record_see_a_patient_id_in_full() {
        let parties = |i: &str| i == "C001" || i == "H001";
        assert!(Principal::platform().sees_patient_id(|_| false));
        assert!(Principal::new(Role::Community, Some("C001"), None).unwrap().sees_patient_id(parties));
        assert!(Principal::new(Role::Hospital, Some("H001"), None).unwrap().sees_patient_id(parties));
        assert!(!Principal::new(Role::Community, Some("C002"), None).unwrap().sees_patient_id(parties));
        assert!(!Principal::new(Role::Lab, Some("L001"), None).unwrap().sees_patient_id(parties));
        // The regulator never, even on a record naming its own id.
        let regulator = Principal::new(Role::Regulator, Some("C001"), None).unwrap();
        assert!(!regulator.sees_patient_id(|_| true));
        assert!(!Principal::new(Role::Regulator, None, None).unwrap().sees_patient_id(|_| true));
        // The platform acting for an institution sees what that institution sees.
        let on_behalf = Principal { role: Role::Platform, institution_id: Some("C002".into()), operator: None };
        assert!(!on_behalf.sees_patient_id(parties));
    }

    #[test]
    fn principals_are_checked_when_stated() {
        assert!(Principal::from_json(r#"{"role":"community"}"#).is_err());
        assert!(Principal::from_json(r#"{"role":"king","institution_id":"X"}"#).is_err());
        assert!(Principal::from_json(r#"{"role":"lab","institution_id":"L1","who":"x"}"#).is_err());
        assert!(Principal::from_json("[]").is_err());
        let p = Principal::from_json(r#"{"role":"regulator"}"#).unwrap();
        assert_eq!(p.role, Role::Regulator);
        assert!(!p.is_platform());
        assert!(Principal::from_json(r#"{}"#).unwrap().is_platform());
        let e = Principal::from_json(r#"{"role":"hospital"}"#).unwrap_err();
        assert!(e.message_zh().chars().all(|c| !c.is_ascii_alphabetic() || "institution_id".contains(c)));
    }
}
