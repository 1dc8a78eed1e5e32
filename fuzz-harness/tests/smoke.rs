//! Every fuzz target runs in the ordinary test run (and so in CI): over each
//! of its seeds (the shared vectors turned into inputs, `yilian_fuzz::seeds`),
//! then over mutations of them — bytes flipped, inserted, cut, spliced from
//! another seed — and plain random bytes, from a fixed RNG seed, up to
//! `MUTATIONS` inputs or `BUDGET` per target, whichever comes first. This is
//! not a fuzzing campaign (no coverage guidance, no sanitizer: that is
//! `scripts/fuzz.sh`); it catches a harness whose decoder, target or
//! invariant broke, and any input these reach that breaks an invariant. A
//! failing input is printed in hex: save it as a file and replay it with
//! `cargo fuzz run <target> <file>` in `fuzz/`.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use yilian_fuzz::{c_api, config, engine_calls, http_request, run_bytes, seeds};

const MUTATIONS: usize = 20_000;
const BUDGET: Duration = Duration::from_secs(25);

/// xorshift64*: a fixed sequence, so a run repeats (up to where the budget stops it).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(16) == 0 {
        let n = rng.below(512);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)];
            }
            2 => {
                let i = rng.below(b.len() + 1);
                let x = rng.next() as u8;
                b.insert(i, x);
            }
            3 if b.len() > 1 => {
                let i = rng.below(b.len());
                let n = 1 + rng.below((b.len() - i).min(16));
                b.drain(i..i + n);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(b.len() + 1);
                let from = rng.below(other.len() + 1);
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
        }
    }
    b
}

fn guarded(target: &str, what: &str, bytes: &[u8], run: fn(&[u8])) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(bytes))) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("{target}: {what} broke the harness; input ({} bytes, hex): {hex}", bytes.len());
        resume_unwind(panic);
    }
}

fn exercise(target: &str, rng_seed: u64, run: fn(&[u8])) {
    let seeds: Vec<Vec<u8>> = seeds::all().into_iter().filter(|(t, _)| *t == target).map(|(_, b)| b).collect();
    assert!(!seeds.is_empty(), "{target} has seeds");
    let started = Instant::now();
    for (i, s) in seeds.iter().enumerate() {
        guarded(target, &format!("seed {i}"), s, run);
    }
    let seeded = started.elapsed();
    let mut rng = Rng(rng_seed);
    let mut n = 0;
    while n < MUTATIONS && started.elapsed() < BUDGET {
        let input = mutate(&mut rng, &seeds);
        guarded(target, &format!("mutation {n}"), &input, run);
        n += 1;
    }
    println!("{target}: {} seeds in {:.1} s, then {n} mutations; {:.1} s in all", seeds.len(), seeded.as_secs_f64(), started.elapsed().as_secs_f64());
}

#[test]
fn the_command_sequence_target_holds_over_its_seeds_and_their_mutations() {
    exercise("engine_calls", 0x9E37_79B9_7F4A_7C15, |b| run_bytes(b, engine_calls::run));
}

#[test]
fn the_config_target_holds_over_its_seeds_and_their_mutations() {
    exercise("config", 0xD1B5_4A32_D192_ED03, |b| run_bytes(b, config::run));
}

#[test]
fn the_c_entry_points_target_holds_over_its_seeds_and_their_mutations() {
    exercise("c_api", 0x8CB9_2BA7_2F3D_8DD7, |b| run_bytes(b, c_api::run));
}

#[test]
fn the_http_request_target_holds_over_its_seeds_and_their_mutations() {
    exercise("http_request", 0xA076_1D64_78BD_642F, |b| run_bytes(b, http_request::run));
}
