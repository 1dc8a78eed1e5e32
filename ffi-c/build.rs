//! Gives libyilian.so an ABI soname so installs can keep several versions
//! side by side (libyilian.so -> libyilian.so.0 -> libyilian.so.0.1.0), and
//! the 32-bit Windows DLL undecorated stdcall exports.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        // ABI major: bumped only when an existing signature or code changes.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libyilian.so.0");
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "windows" && env == "gnu" && arch == "x86" {
        // The `_std` (stdcall) forms are `_yl_call_std@16` to the linker; the
        // DLL exports them undecorated, as LoadLibrary/GetProcAddress callers
        // (PowerBuilder, Delphi, C#) name them. The import library keeps the
        // decorated symbols for C callers, mapped to the plain names.
        println!("cargo:rustc-cdylib-link-arg=-Wl,--kill-at");
        startup_objects();
    }
}

/// rustc links every i686-pc-windows-gnu image between rsbegin.o and
/// rsend.o (they register the DWARF unwind tables). rustup's std for that
/// target ships them; a std built with -Zbuild-std (Debian's rustc-web,
/// scripts/cross/env.sh) does not, and the link then fails with "cannot
/// find rsbegin.o". Built here from the std sources, as Rust's own
/// bootstrap builds them, into OUT_DIR, which rustc searches for them.
fn startup_objects() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    let sysroot = std::process::Command::new(&rustc).args(["--print", "sysroot"]).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(sysroot) = sysroot.map(std::path::PathBuf::from) else { return };
    let lib = sysroot.join("lib/rustlib").join(&target).join("lib");
    if lib.join("rsbegin.o").exists() || lib.join("self-contained/rsbegin.o").exists() {
        return; // rustup's std: rustc finds its own
    }
    let src = sysroot.join("lib/rustlib/src/rust/library/rtstartup");
    for name in ["rsbegin", "rsend"] {
        let status = std::process::Command::new(&rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["--target", &target, "--emit=obj", "-o"])
            .arg(out.join(format!("{name}.o")))
            .arg(src.join(format!("{name}.rs")))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            panic!("could not build {name}.o from {} (is rust-src installed?)", src.display());
        }
    }
    println!("cargo:rustc-link-search=native={}", out.display());
}
