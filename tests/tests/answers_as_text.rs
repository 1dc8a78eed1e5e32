//! Answers taken as text (#21 target 2): `call_json_as`, `call_as`'s
//! envelope and `Deferred::durable_json` give, byte for byte, what the
//! answer taken as a `Value` prints, whichever way the engine built it (a
//! booking's view written straight to text, or a `Value`), for every
//! principal, for replays of request ids from memory and from the store, and
//! for errors.

mod common;

use common::{sync_slots, CLOCK};
use serde_json::{json, Value};
use yilian_core::{envelope_json, to_json, Engine, Principal, Role};

/// Three engines fed the same calls: one answers as a `Value`, one as
/// text, one as the envelope; each answer is compared as it comes.
struct Twins {
    value: Engine,
    text: Engine,
    envelope: Engine,
    compared: usize,
}

fn config(dir: Option<&std::path::Path>) -> String {
    let mut cfg: Value = serde_json::from_str(CLOCK).unwrap();
    if let Some(d) = dir {
        cfg["data_dir"] = json!(d);
    }
    cfg.to_string()
}

impl Twins {
    fn open(dirs: Option<&[tempfile::TempDir; 3]>) -> Twins {
        let e = |i: usize| Engine::open(&config(dirs.map(|d| d[i].path()))).unwrap();
        Twins { value: e(0), text: e(1), envelope: e(2), compared: 0 }
    }

    /// Runs `command` as `who` on all three; returns the `Value` answer.
    fn call(&mut self, who: &Principal, command: &str, req: &Value) -> Result<Value, yilian_core::Error> {
        let body = req.to_string();
        let value = self.value.call_value_as(who, command, &body);
        let text = self.text.call_json_as(who, command, &body);
        let envelope = self.envelope.call_as(who, command, &body);
        match (&value, &text) {
            (Ok(v), Ok(t)) => assert_eq!(&to_json(v), t, "{command} as {who:?}"),
            (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{command} as {who:?}"),
            _ => panic!("{command} as {who:?}: {value:?} against {text:?}"),
        }
        assert_eq!(envelope, envelope_json(value.clone()), "{command} as {who:?}");
        self.compared += 1;
        value
    }
}

fn booking(patient: &str, extra: Value) -> Value {
    let mut v = json!({"patient_id": patient, "project_id": "P001", "date": "2024-10-30", "time_slot": "08:00-08:20", "device_id": "DEV001"});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    v
}

/// Every way a booking command answers: held, booked, paid, cancelled,
/// refused, replayed; as the platform, for a clinic, as the clinic itself,
/// as a hospital, and as an institution that is not a party.
fn exercise(t: &mut Twins) {
    let platform = Principal::platform();
    let c001 = Principal::new(Role::Community, Some("C001"), Some("王护士")).unwrap();
    let c002 = Principal::new(Role::Community, Some("C002"), None).unwrap();
    let h001 = Principal::new(Role::Hospital, Some("H001"), None).unwrap();
    let patient = json!({"name": "王小明", "phone": "13812345678", "id_number": "330102199001011234", "medical_record_no": "MR0012345"});

    let held = t.call(&platform, "pre-book-slot", &booking("PAT001", json!({"clinic_id": "C001", "patient": patient}))).unwrap();
    let id = held["booking_id"].as_str().unwrap().to_string();
    t.call(&c001, "book-slot", &json!({"booking_id": id})).unwrap();
    t.call(&c001, "payment-status", &json!({"booking_id": id, "payment_status": "paid"})).unwrap();
    t.call(&h001, "booking-info", &json!({"booking_id": id})).unwrap();
    // Not a party: refused, the same way on every path.
    assert!(t.call(&c002, "booking-info", &json!({"booking_id": id})).is_err());
    assert!(t.call(&c002, "cancel-slot", &json!({"booking_id": id})).is_err());

    // A request id: the first answer, then its replay from memory.
    let first = t.call(&c001, "pre-book-slot", &booking("PAT002", json!({"request_id": "r-2"}))).unwrap();
    let again = t.call(&c001, "pre-book-slot", &booking("PAT002", json!({"request_id": "r-2"}))).unwrap();
    assert_eq!(first, again);
    t.call(&c001, "cancel-slot", &json!({"booking_id": first["booking_id"], "request_id": "r-3", "reason": "患者改期"})).unwrap();
    t.call(&c001, "cancel-slot", &json!({"booking_id": first["booking_id"], "request_id": "r-3", "reason": "患者改期"})).unwrap();

    t.call(&h001, "book-slot", &booking("PAT003", json!({"priority": "referral"}))).unwrap();
    // The window's last place; then a waiter.
    t.call(&c002, "book-slot", &booking("PAT006", json!({"clinic_id": "C002"}))).unwrap();
    t.call(&c002, "waitlist-join", &booking("PAT004", json!({}))).unwrap();
    // Refusals: a duplicate, a bad field, an unknown command.
    assert!(t.call(&platform, "pre-book-slot", &booking("PAT003", json!({}))).is_err());
    assert!(t.call(&platform, "pre-book-slot", &booking("PAT005", json!({"date": "2024-13-40"}))).is_err());
    assert!(t.call(&platform, "pre-book-slott", &json!({})).is_err());
}

#[test]
fn an_answer_taken_as_text_is_the_answer_taken_as_a_value_printed() {
    let mut t = Twins::open(None);
    for e in [&t.value, &t.text, &t.envelope] {
        sync_slots(e, 1, 3, 3);
    }
    exercise(&mut t);
    assert!(t.compared >= 15);
}

#[test]
fn replays_read_back_from_the_store_are_the_same_text_as_the_first_answers() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let c001 = Principal::new(Role::Community, Some("C001"), None).unwrap();
    let (first, cancel) = {
        let mut t = Twins::open(Some(&dirs));
        for e in [&t.value, &t.text, &t.envelope] {
            sync_slots(e, 1, 3, 3);
        }
        exercise(&mut t);
        let first = t.call(&c001, "pre-book-slot", &booking("PAT009", json!({"request_id": "r-9", "time_slot": "08:20-08:40"}))).unwrap();
        let cancel = t.call(&c001, "cancel-slot", &json!({"booking_id": first["booking_id"], "request_id": "r-10"})).unwrap();
        for e in [&t.value, &t.text, &t.envelope] {
            e.close();
        }
        (first, cancel)
    };
    let mut t = Twins::open(Some(&dirs));
    // Answered from the stored rows, on every path, as they were first given.
    assert_eq!(t.call(&c001, "pre-book-slot", &booking("PAT009", json!({"request_id": "r-9", "time_slot": "08:20-08:40"}))).unwrap(), first);
    assert_eq!(t.call(&c001, "cancel-slot", &json!({"booking_id": first["booking_id"], "request_id": "r-10"})).unwrap(), cancel);
    assert_eq!(t.text.call_json_as(&c001, "pre-book-slot", &booking("PAT009", json!({"request_id": "r-9", "time_slot": "08:20-08:40"})).to_string()).unwrap(), to_json(&first));
}
