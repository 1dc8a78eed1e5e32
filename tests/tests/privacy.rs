//! S1: personal data (names, ID numbers, phones) never appears unmasked in
//! answers, errors or events.

mod common;
use common::*;
use serde_json::json;
use yilian_core::Engine;

const NAME: &str = "欧阳娜娜";
const ID: &str = "11010519491231002X";
const PHONE: &str = "13800138000";

fn assert_clean(text: &str) {
    for secret in [NAME, ID, PHONE, "110105194912310021", "1380013"] {
        assert!(!text.contains(secret), "personal data leaked: {text}");
    }
}

#[test]
fn answers_errors_and_events_carry_no_personal_data() {
    let e = Engine::open(CLOCK).unwrap();
    let slots = sync_slots(&e, 1, 2, 1);
    let patient = json!({"name": NAME, "id_number": ID, "phone": PHONE, "sex": "女"});
    let booked = e.call("pre-book-slot", &json!({"slot_id": slots[0], "patient_id": "PAT001", "patient": patient}).to_string());
    assert_clean(&booked);
    assert!(booked.contains("欧阳**") && booked.contains("110105********002X") && booked.contains("138****8000"), "{booked}");
    // Errors about the very fields that hold personal data.
    for bad in [
        json!({"slot_id": slots[1], "patient_id": "PAT002", "patient": {"name": NAME, "id_number": "110105194912310021"}}),
        json!({"slot_id": slots[1], "patient_id": "PAT002", "patient": {"name": NAME, "phone": "1380013"}}),
        json!({"slot_id": slots[0], "patient_id": "PAT001", "patient": patient}),
        json!({"slot_id": slots[1], "patient_id": "PAT003", "patient": {"name": 42}}),
    ] {
        let out = e.call("pre-book-slot", &bad.to_string());
        assert!(out.contains("\"status\":\"error\""), "{out}");
        assert_clean(&out);
    }
    let bad_json = e.call("pre-book-slot", &format!("{{\"patient\": {{\"name\": \"{NAME}\", \"id_number\": \"{ID}\"  "));
    assert_clean(&bad_json);
    assert_clean(&e.call("booking-info", r#"{"booking_id": "B000001"}"#));
    assert_clean(&e.call("next-events", "{}"));
    assert_clean(&e.call("slot-info", &json!({"slot_id": slots[0]}).to_string()));
}
