//! The seed corpora, from the shared vectors (`tests/vectors/*.json`): each
//! vector case becomes an `engine_calls` input (its steps in order), a
//! `c_api` input (the same steps through `yl_call`, `yl_call_as` and a
//! too-small `yl_call_buf` retried with the size asked for), and each step an
//! `http_request` input (the step over HTTP, after up to 8 of the steps
//! before it). `config` gets the vectors' configs and the config edge values
//! of issue 22. `fuzz/examples/gen_seeds.rs` writes them to `fuzz/corpus/`;
//! `tests/smoke.rs` runs them.

use crate::{vectors, Encode, Step, Steps};
use arbitrary::{Arbitrary, Unstructured};

fn step_bytes(i: usize) -> [u8; 3] {
    let i = i as u16;
    [0, i as u8, (i >> 8) as u8]
}

/// Every seed: (target, input bytes). The `engine_calls` seeds are checked
/// to decode back to the steps they encode.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let v = vectors();
    assert!(v.steps.len() < u16::MAX as usize, "step indices fit two bytes");
    for case in &v.cases {
        // engine_calls: the case's steps, in order (checked to decode back).
        let steps = Steps(case.clone().map(|i| Step::Vector(i as u16)).collect());
        let mut bytes = Vec::new();
        steps.encode(&mut bytes);
        let back = Steps::arbitrary(&mut Unstructured::new(&bytes)).expect("decodes");
        assert_eq!(back.0.len(), steps.0.len().min(crate::MAX_STEPS));
        assert_eq!(&back.0[..], &steps.0[..back.0.len()], "seed decodes to the steps it encodes");
        out.push(("engine_calls", bytes));

        // c_api: config byte (not the raw-config choice), then per step a
        // `yl_call(_as)` (tag 0) and, every third step, a `yl_call_buf` (tag 2)
        // with cap 16 and a retry.
        let mut c = vec![1u8];
        for (k, i) in case.clone().enumerate() {
            let has_principal = v.steps[i].principal.is_some();
            let buf = k % 3 == 2;
            c.push(if buf { 2 } else { 0 });
            c.extend_from_slice(&step_bytes(i));
            if has_principal {
                c.push(2);
            }
            c.extend_from_slice(&[2, 2]);
            if buf {
                c.push(0); // flags: `needed` given, retry
                c.extend_from_slice(&16u16.to_le_bytes());
            } else {
                c.push(1); // an out pointer
            }
        }
        c.push(9); // availability of slot 0
        c.push(0);
        out.push(("c_api", c));

        // http_request: POST /api/v1/<command> with the request as a JSON body.
        for (k, i) in case.clone().enumerate() {
            let mut h = vec![1u8]; // POST
            h.extend_from_slice(&step_bytes(i));
            h.push(0); // path: /api/v1/<command>
            h.push(0); // no query
            h.push(0); // application/json
            h.push(0); // no extra headers
            h.push(1); // the request as the body
            for j in case.start.max((case.start + k).saturating_sub(8))..case.start + k {
                h.extend_from_slice(&step_bytes(j));
            }
            out.push(("http_request", h));
        }
    }
    // config: the vectors' config, the defaults, and the edge values.
    let configs = [
        crate::ENGINE_CONFIG.to_string(),
        "{}".into(),
        r#"{"hold_ttl_seconds": 9223372036854776}"#.into(),
        r#"{"waitlist_raise_after_minutes": 153722867280913}"#.into(),
        r#"{"clock":"manual","clock_start":"9998-12-31T23:59:59Z","hold_ttl_seconds":900,"time_zone":"Asia/Shanghai"}"#.into(),
        r#"{"role":"community","institution_id":"C001","tight_remaining":2,"tight_ratio":0.2}"#.into(),
        r#"{"release":{"enabled":true,"time":"07:00","days":7},"stop_service_action":"move"}"#.into(),
        r#"{"platform":{"base_url":"http://127.0.0.1:9","app_id":"a","secret":"demo-secret-C001-at-least-32-bytes","timeout_ms":100,"retries":1}}"#.into(),
        r#"{"max_request_bytes":1,"report_max_bytes":0,"group_commit_max":0,"durable_sync":"full"}"#.into(),
        r#"{"encryption_key":"00112233445566778899aabbccddeeff"}"#.into(),
    ];
    for c in &configs {
        let mut b = vec![0u8]; // the raw-text choice
        b.extend_from_slice(c.as_bytes());
        out.push(("config", b));
    }
    out
}
