//! `zscope`: the host daemon and CLI (serial ingest, CSV log, live web dashboard).
//!
//! Not built yet: this binary only says so. The core runs on its own today:
//! `cargo run --release -p zscope-core --example demo`.

fn main() {
    eprintln!(
        "zscope {}: the host daemon is not built yet.\n\
         Try the core on its own: cargo run --release -p zscope-core --example demo",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
