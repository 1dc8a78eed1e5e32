//! `cargo run -p yilian-gen-bindings`: rewrites the bindings' error-code
//! tables from yilian-core's table. `-- --check`: writes nothing, fails
//! (exit 1, with the diff) if one is stale. `--root DIR`: another checkout.

use std::path::PathBuf;
use std::process::ExitCode;
use yilian_gen_bindings::{stale, workspace_root, write, CHECK, REGENERATE};

fn main() -> ExitCode {
    let mut check = false;
    let mut root = workspace_root();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--root" => match args.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage("--root needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: gen-bindings [--check] [--root DIR]\n  rewrites the generated error-code tables; --check only compares");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    if check {
        let stale = stale(&root);
        if stale.is_empty() {
            println!("generated error-code tables are fresh ({CHECK})");
            return ExitCode::SUCCESS;
        }
        for s in &stale {
            eprintln!("{} is stale; run `{REGENERATE}`. Diff (on disk -> generated):\n{}", s.path, s.diff);
        }
        return ExitCode::FAILURE;
    }
    match write(&root) {
        Ok(written) if written.is_empty() => println!("generated error-code tables are fresh; nothing written"),
        Ok(written) => {
            for path in &written {
                println!("wrote {path}");
            }
            if written.iter().any(|p| p.starts_with("ffi-c/")) {
                println!("the C constants changed: run ffi-c/gen-header.sh to regenerate include/yilian.h");
            }
        }
        Err(e) => {
            eprintln!("gen-bindings: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn usage(why: &str) -> ExitCode {
    eprintln!("gen-bindings: {why}\nusage: gen-bindings [--check] [--root DIR]");
    ExitCode::from(2)
}
