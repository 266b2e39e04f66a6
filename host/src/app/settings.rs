//! What the daemon runs with, resolved from flags, environment and the settings file by
//! [`crate::cli`]: the devices, the dashboard, the logs, the store, notifications and MQTT.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::device::clean_name;
use crate::sink::mqtt::MqttSetting;
use crate::sink::store::Retention;
use crate::source::SourceSetting;
use crate::source::usb::UsbId;

/// One device of the daemon: its name (in the page, the API's `/api/devices/{name}/…` and
/// its log folder) and where its samples come from.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSetting {
    /// Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// Where its samples come from.
    pub source: SourceSetting,
    /// What the device should judge (`--source`): asked for after its hello.
    pub judge: Option<zscope_core::source::Source>,
}

impl DeviceSetting {
    /// A device named after its source: a port's file name, `emulated`, a replayed file's
    /// stem.
    pub fn new(source: SourceSetting) -> Self {
        let name = match &source {
            SourceSetting::Serial { port, .. } => std::path::Path::new(port)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| port.clone()),
            SourceSetting::Emulated { .. } => "emulated".into(),
            SourceSetting::ReplayCsv { path, .. } | SourceSetting::ReplayFrames { path, .. } => {
                path.file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "replay".into())
            }
        };
        DeviceSetting {
            name: clean_name(&name),
            source,
            judge: None,
        }
    }
}

/// Devices a daemon holds at most, unless `--max-devices` says otherwise.
pub const MAX_DEVICES: usize = 256;

/// Everything the daemon needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The devices, each with its name and source (one, unless several are asked for).
    pub devices: Vec<DeviceSetting>,
    /// Dashboard address.
    pub listen: SocketAddr,
    /// Write token.
    pub token: Option<String>,
    /// Host names the dashboard answers to (`None`: any, when listening on all interfaces
    /// with no names given).
    pub allowed_hosts: Option<Vec<String>>,
    /// CSV folder.
    pub log_dir: PathBuf,
    /// Whether samples.csv is written.
    pub samples_log: bool,
    /// Rotation size in bytes.
    pub rotate_bytes: u64,
    /// Rotated files kept.
    pub keep_files: u32,
    /// Where to record raw frames (serial and emulated sources).
    pub record: Option<PathBuf>,
    /// Webhooks for anomaly events.
    pub notify: Vec<String>,
    /// How long a device stays quiet after a notification.
    pub notify_cooldown: std::time::Duration,
    /// The MQTT broker to publish to.
    pub mqtt: Option<MqttSetting>,
    /// The MQTT broker whose devices (published by other daemons) to show.
    pub subscribe: Option<MqttSetting>,
    /// `--auto`: attach USB dev-board probes as they appear.
    pub auto: Option<AutoSetting>,
    /// The store's retention (`None`: no store, `--no-store`).
    pub store: Option<Retention>,
    /// Devices the daemon holds at most ([`MAX_DEVICES`] unless `--max-devices` says).
    pub max_devices: usize,
    /// How long a connection may take to send its request's headers before it is closed
    /// ([`crate::web::HEADER_TIMEOUT`]; tests shorten it).
    pub header_timeout: std::time::Duration,
}

/// `--auto`: which USB serial ports to attach, and at what baud rate.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoSetting {
    /// The baud rate of every board attached.
    pub baud: u32,
    /// USB ids to attach besides the known probes (`--auto-id`).
    pub extra: Vec<UsbId>,
}
