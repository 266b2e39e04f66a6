//! The command line, the TOML config file and the environment: [`args`] is what clap parses
//! (the "low-level" arguments, as typed); [`settings`] resolves them into what the code runs
//! with ([`Settings`], [`DetectorSpec`]).
//!
//! Precedence: a flag beats its environment variable (`ZSCOPE_*`), which beats the `--config`
//! file, which beats the default.

pub mod args;
pub mod settings;

pub use args::*;
pub use settings::*;
