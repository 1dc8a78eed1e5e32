//! Gives libyilian.so an ABI soname so installs can keep several versions
//! side by side (libyilian.so -> libyilian.so.0 -> libyilian.so.0.1.0).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        // ABI major: bumped only when an existing signature or code changes.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libyilian.so.0");
    }
}
