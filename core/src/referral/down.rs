//! R6: down-referral (下转): the hospital picks a community institution of the
//! network, a date and a reason; it may cancel at any time; the community
//! side lists what it received and views patient, application and record.

use super::query::{referral_step, referral_view};
use super::{event, fuse_record, patient_details, put_community, put_referral, req_text, text, Ctx, Inner, Kind, Referral, Side, Who};
use crate::error::{Error, ErrorCode, Result};
use crate::text::SearchKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A community institution of the service network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Community {
    pub clinic_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `referral-network-sync`: the community institutions of the network (the
/// platform's master data), upserted.
pub(super) fn network_sync(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let list = c.r.array("communities")?;
    if list.len() > 10_000 {
        return Err(Error::invalid("communities", "more than 10000 entries"));
    }
    let mut parsed = Vec::new();
    for v in list {
        let e = c.r.sub(v, "communities[]")?;
        let clinic_id = req_text(&e, "clinic_id", 64)?;
        if c.pool.catalog.is_hospital(&clinic_id) {
            return Err(Error::invalid("communities[].clinic_id", "names a hospital"));
        }
        parsed.push(Community { clinic_id, name: req_text(&e, "name", 100)?, level: text(&e, "level", 64)?, address: text(&e, "address", 200)? });
    }
    super::step(c, None, &mut |pool, g, _, txn, _| {
        for cm in &parsed {
            g.communities.insert(cm.clinic_id.clone(), cm.clone());
            put_community(pool, txn, cm);
        }
        pool.emit(txn, "referral_network_synced", None, None, json!({"communities": parsed.len()}));
        Ok(json!({"communities": parsed.len(), "total": g.communities.len()}))
    })
}

/// `community-institutions`: the network's community institutions, by name
/// (also pinyin initials) when a keyword is given.
pub(super) fn communities(c: &Ctx) -> Result<Value> {
    let keyword = c.r.opt_str("keyword")?;
    let g = c.referral.inner.lock();
    let mut hits: Vec<(u8, &Community)> =
        g.communities.values().filter_map(|cm| keyword.map_or(Some(0), |k| SearchKey::new(&cm.name, &[&cm.clinic_id]).rank(k)).map(|r| (r, cm))).collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.clinic_id.cmp(&b.1.clinic_id)));
    let items: Vec<Value> = hits.into_iter().map(|(_, cm)| serde_json::to_value(cm).unwrap_or(Value::Null)).collect();
    Ok(json!({"items": items}))
}

/// `down-referral-apply`: the hospital refers a patient down for
/// rehabilitation or follow-up.
pub(super) fn apply(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let hospital = who.hospital_for_new(c)?;
    let clinic = req_text(c.r, "clinic_id", 64)?;
    let patient_id = c.r.id("patient_id")?;
    let date = c.r.date("date")?;
    let reason = req_text(c.r, "reason", 500)?;
    let purpose = c.r.opt_str("purpose")?.unwrap_or("rehabilitation");
    if !matches!(purpose, "rehabilitation" | "follow_up") {
        return Err(Error::invalid("purpose", "expected rehabilitation or follow_up"));
    }
    let record = fuse_record(c)?;
    let patient = patient_details(c)?;
    let dept = text(c.r, "department_id", 64)?;
    let doctor = text(c.r, "doctor_id", 64)?;
    let disease = text(c.r, "disease_code", 32)?;
    let command = c.command;
    super::step(c, None, &mut |pool, g, _, txn, now| {
        if !g.communities.contains_key(&clinic) {
            return Err(Error::new(ErrorCode::InstitutionNotFound));
        }
        let id = Inner::take_id(&mut g.next_referral);
        let mut rec = record.clone();
        rec["purpose"] = purpose.into();
        let rf = Referral {
            patient_id: patient_id.clone(),
            patient: patient.clone(),
            clinic_id: clinic.clone(),
            hospital_id: hospital.clone(),
            department_id: dept.clone(),
            doctor_id: doctor.clone(),
            applicant_doctor_id: doctor.clone(),
            reason: reason.clone(),
            disease_code: disease.clone(),
            record: rec,
            expected_date: Some(date.to_string()),
            ..Referral::applied(id, Kind::Down, command, &hospital, now)
        };
        put_referral(pool, txn, &rf);
        event(
            pool,
            txn,
            "down_referral_applied",
            &rf.patient_id,
            &rf.clinic_id,
            None,
            json!({"referral_id": id, "hospital_id": hospital, "date": date.to_string(), "purpose": purpose}),
        );
        super::follow_up(c, pool, txn, now, rf.change(crate::chronic::CaseTrigger::DownReferred { date }, command));
        let v = referral_view(pool, &rf, None);
        g.referrals.insert(id, rf);
        Ok(v)
    })
}

/// `down-referral-cancel`: the hospital withdraws (at any time).
pub(super) fn cancel(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Hospital, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let reason = text(c.r, "reason", 500)?.unwrap_or_else(|| "cancelled by the hospital".into());
    let command = c.command;
    let by = who.institution.clone();
    referral_step(c, &who, id, Kind::Down, &mut |pool, _g, rf, _live, txn, now| {
        rf.go("cancelled", command, by.as_deref(), Some(reason.clone()), now, None)?;
        rf.cancel_reason = Some(reason.clone());
        event(pool, txn, "down_referral_cancelled", &rf.patient_id, &rf.clinic_id, None, json!({"referral_id": rf.referral_id, "reason": reason}));
        Ok(())
    })
}

/// `down-referral-receive`: the community institution takes the patient on.
pub(super) fn receive(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    who.must_be(Side::Community, c.command)?;
    let id = super::int_id(c.r, "referral_id")?;
    let doctor = text(c.r, "doctor_id", 64)?;
    let note = text(c.r, "note", 500)?;
    let command = c.command;
    let by = who.institution.clone();
    referral_step(c, &who, id, Kind::Down, &mut |pool, _g, rf, _live, txn, now| {
        rf.go("received", command, by.as_deref(), note.clone(), now, None)?;
        rf.acceptance = Some(json!({"doctor_id": doctor, "accept_time": crate::clock::format_ms(now, &pool.cfg.tz), "note": note}));
        event(pool, txn, "down_referral_received", &rf.patient_id, &rf.clinic_id, None, json!({"referral_id": rf.referral_id, "hospital_id": rf.hospital_id}));
        Ok(())
    })
}

/// `down-referral-list`: what the caller's institution received (or sent).
pub(super) fn list(c: &Ctx) -> Result<Value> {
    let who = Who::of(c)?;
    super::query::list(c, &who, Some(Kind::Down))
}
