//! zscope-host: the `zscope` daemon and CLI, as a library the binary (and tests) call into.
//!
//! * [`cli`]: flags, environment and config file, resolved into [`cli::Settings`].
//! * [`daemon`]: what the daemon knows ([`daemon::State`]), the pure ingest that turns frames
//!   into it, and [`daemon::serve`], which wires a source, the log writer and the web server.
//! * [`source`]: where frames come from (a serial port, the emulated device, a replay).
//! * [`log`]: the CSV logs and the thread that writes them.
//! * [`notify`]: webhooks on anomaly events; [`mqtt`]: publishing to an MQTT broker.
//! * [`web`]: the dashboard, the WebSocket and the JSON API.
//! * [`batch`]: recorded files: reading them, scoring them, evaluating detectors on them.
//! * [`commands`]: each subcommand, from its parsed flags to its output.

pub mod batch;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod log;
pub mod mqtt;
pub mod notify;
pub mod source;
pub mod store;
pub mod web;

pub use daemon::{run, serve};
