//! A sequence of commands with requests on one in-memory engine (manual
//! clock): vector steps as they are or edited, generated requests, raw text,
//! clock moves. After every step: the answer is an envelope and the pool's
//! invariants hold (no overbooking, counts agree with bookings).
use crate::{assert_envelope, Steps, ENGINE_CONFIG};
use yilian_core::Engine;

/// The input: [`Steps`].
pub type Input = Steps;

pub fn run(input: &Input) {
    // A fresh engine per input, so every crash replays from its input alone
    // (an in-memory open is cheap; see the README's Fuzzing section).
    let e = Engine::open(ENGINE_CONFIG).expect("the fuzz config opens");
    for (i, step) in input.0.iter().enumerate() {
        let (principal, command, request) = step.resolve();
        let out = match &principal {
            Some(p) => e.call_as_json(p, &command, &request),
            None => e.call(&command, &request),
        };
        assert_envelope(&out, &format!("step {i} `{command}`"));
        if let Err(err) = e.check_invariants() {
            panic!("step {i} `{command}`: invariants broken: {err}");
        }
    }
    e.close();
}
