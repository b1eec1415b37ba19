//! Restricts the cdylib's exports to the entry point and records build
//! details for `pocketvec_debug()`.
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rerun-if-changed=pocketvec.map");
    println!("cargo:rerun-if-changed=pocketvec.exports");
    match target_os.as_str() {
        "macos" | "ios" => {
            println!(
                "cargo:rustc-cdylib-link-arg=-Wl,-exported_symbols_list,{dir}/pocketvec.exports"
            )
        }
        "windows" => {}
        _ => println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/pocketvec.map"),
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=POCKETVEC_RUSTC={version}");
    println!(
        "cargo:rustc-env=POCKETVEC_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=POCKETVEC_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
}
