use yilian_core::Engine;
use serde_json::Value;

fn call(e: &Engine, c: &str, r: &str) -> Value {
    let out = e.call(c, r);
    println!("{c}: {out}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn source_flow() {
    let e = Engine::open(r#"{"clock_start":"2024-10-29T09:00:00+08:00"}"#).unwrap();
    call(&e, "sync-schedule", r#"{"hospital_id":"H001","schedule_data":[{"device_id":"DEV001","date":"2024-10-30","available_slots":[{"start_time":"09:00","end_time":"10:00"},{"start_time":"14:00","end_time":"15:00"}]}]}"#);
    call(&e, "real-time-slots", r#"{"project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00"}"#);
    call(&e, "real-time-slots", r#"{"device_id":"DEV001","date":"2024-10-30","time_slot":"09:00-10:00"}"#);
    call(&e, "pre-book-slot", r#"{"patient_id":"PAT001","project_id":"P001","date":"2024-10-30","time_slot":"09:00-10:00","device_id":"DEV001","clinic_id":"C001"}"#);
    call(&e, "payment-status", r#"{"booking_id":"B001","payment_status":"paid"}"#);
    call(&e, "book-slot", r#"{"project_id":"P001","date":"2024-10-30","time_slot":"14:00-15:00","patient_id":"PAT002","device_id":"DEV001"}"#);
    call(&e, "cancel-slot", r#"{"booking_id":"B001"}"#);
    call(&e, "payment-status", r#"{"booking_id":"B001","payment_status":"refunded"}"#);
    call(&e, "device-schedule", r#"{"device_id":"DEV001","date":"2024-10-30"}"#);
    call(&e, "real-time-schedule", r#"{"hospital_id":"H001","date":"2024-10-30"}"#);
    call(&e, "stop-service", r#"{"device_id":"DEV001","project_id":"P001","stop_date":"2024-10-30"}"#);
    call(&e, "notify-cancel-booking", r#"{"booking_id":"B002"}"#);
    call(&e, "slot-statistics", r#"{}"#);
    call(&e, "next-events", r#"{}"#);
    e.check_invariants().unwrap();
}
