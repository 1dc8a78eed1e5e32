//! The generated error-code tables of the bindings match yilian-core's table
//! (part of `cargo test --workspace`, so of the rust suite).

use yilian_gen_bindings::{stale, workspace_root, REGENERATE};

#[test]
fn generated_tables_are_fresh() {
    let stale = stale(&workspace_root());
    let report: String = stale.iter().map(|s| format!("{} is stale. Diff (on disk -> generated):\n{}\n", s.path, s.diff)).collect();
    assert!(
        stale.is_empty(),
        "{report}the bindings' error-code tables differ from yilian-core's ErrorCode table: run `{REGENERATE}` \
         (then ffi-c/gen-header.sh if the C constants changed)"
    );
}
