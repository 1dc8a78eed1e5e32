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
    }
}
