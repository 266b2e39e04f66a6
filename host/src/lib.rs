//! zscope-host: the `zscope` daemon and CLI, as a library the binary (and tests) call into.
//!
//! Layers, each importing only those below it (a test, `layers_import_only_downwards`, reads
//! every `crate::` path and holds this order; `cargo doc` shows each module's own docs):
//!
//! | layer | what it is |
//! |---|---|
//! | [`commands`] | each subcommand, from its parsed flags to its output |
//! | [`cli`] | flags, environment and config file, resolved into [`app::Settings`] |
//! | [`app`] | the daemon wired: startup and shutdown in order, [`app::DeviceBuilder`] |
//! | [`web`] | the dashboard, the WebSocket and the JSON API |
//! | [`source`] | where frames come from: serial, emulated, replay, USB `--auto`, MQTT `--subscribe` |
//! | [`sink`] | where judged points go: CSV, the SQLite store, webhooks, MQTT publishing |
//! | [`device`] | a device's hub, registry and feed; the pump of its typed updates |
//! | [`batch`] | recorded files: reading, scoring, evaluating detectors, NAB |
//! | [`model`] | the one [`model::Point`], the device's [`model::State`], pure ingest |
//! | [`retry`] | the one [`retry::Backoff`] every reconnection waits with |

pub mod app;
pub mod batch;
pub mod cli;
pub mod commands;
pub mod device;
pub mod model;
pub mod retry;
pub mod sink;
pub mod source;
pub mod web;

pub use app::{run, serve};
