//! The command line, the TOML config file and the environment: [`args`] is what clap parses
//! (the "low-level" arguments, as typed); [`file`] is the settings file; [`settings`] resolves
//! them into what the code runs with ([`crate::app::Settings`],
//! [`crate::model::detector::DetectorSpec`]).
//!
//! Precedence: a flag beats its environment variable (`ZSCOPE_*`), which beats the `--config`
//! file, which beats the default.
//!
//! The top of the library: nothing else in it imports `cli` (only `commands` and `main`).

pub mod args;
pub mod file;
pub mod settings;

pub use args::*;
pub use settings::*;
