//! Writes the seed corpora `fuzz/corpus/<target>/` (`yilian_fuzz::seeds`,
//! from the shared vectors).
//!
//! Usage: `gen_seeds [CORPUS_DIR]` (default: `fuzz/corpus`). Idempotent:
//! file names are the seed's hash, so a rerun adds nothing new.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let root: PathBuf = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (target, bytes) in yilian_fuzz::seeds::all() {
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{:016x}", h.finish())), &bytes).expect("seed written");
        *counts.entry(target).or_default() += 1;
    }
    let v = yilian_fuzz::vectors();
    println!("seeds: {counts:?} (from {} vector steps in {} cases) -> {}", v.steps.len(), v.cases.len(), root.display());
}
