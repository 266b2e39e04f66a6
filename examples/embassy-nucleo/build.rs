//! Links with cortex-m-rt's `link.x` (embassy-stm32's `memory-x` feature provides `memory.x`),
//! for the board only.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
}
