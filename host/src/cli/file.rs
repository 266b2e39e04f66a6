//! The settings file (`--config zscope.toml`): the same options as the flags, as TOML.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::model::detector::Method;

/// The same options, as read from a TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileSettings {
    pub(super) port: Option<String>,
    /// `[[device]]` tables: several devices.
    pub(super) device: Option<Vec<FileDevice>>,
    pub(super) emulate: Option<u32>,
    pub(super) baud: Option<u32>,
    pub(super) listen: Option<SocketAddr>,
    pub(super) token: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    pub(super) allow_hosts: Option<Vec<String>>,
    pub(super) notify: Option<Vec<String>>,
    pub(super) notify_cooldown: Option<u64>,
    pub(super) max_devices: Option<u32>,
    pub(super) mqtt: Option<String>,
    pub(super) mqtt_client_id: Option<String>,
    pub(super) mqtt_ca: Option<PathBuf>,
    pub(super) mqtt_command_key: Option<PathBuf>,
    pub(super) auto: Option<bool>,
    pub(super) auto_id: Option<Vec<String>>,
    pub(super) store: Option<bool>,
    pub(super) retain_days: Option<f64>,
    pub(super) retain_mb: Option<u64>,
    pub(super) subscribe: Option<String>,
    pub(super) log_dir: Option<PathBuf>,
    pub(super) samples_log: Option<bool>,
    pub(super) rotate_mb: Option<u64>,
    pub(super) keep_files: Option<u32>,
    pub(super) emulator_rate: Option<u32>,
    pub(super) emulator_seed: Option<u64>,
    pub(super) source: Option<String>,
    pub(super) window: Option<u32>,
    pub(super) threshold: Option<f32>,
    pub(super) warmup: Option<u32>,
    pub(super) max_run: Option<u32>,
    pub(super) include_anomalies: Option<bool>,
    pub(super) detector: Option<Method>,
    pub(super) learn: Option<u32>,
    pub(super) rest: Option<u32>,
    pub(super) seasonal: Option<String>,
    pub(super) alpha: Option<f32>,
}

/// A `[[device]]` table of the settings file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDevice {
    /// Its name in the page, the API and the log folder (default: the port's file name).
    pub(super) name: Option<String>,
    /// Its serial port.
    pub(super) port: String,
    /// Its baud rate (default: the file's or 115200).
    pub(super) baud: Option<u32>,
    /// What it judges (default: the file's `source`, or what the device boots with).
    pub(super) source: Option<String>,
}
