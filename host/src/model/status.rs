//! What each sink reports of itself in `/api/status`: the CSV logs, the store, the
//! notifications and MQTT publishing. Plain data, here so that the status of a device
//! ([`super::StatusView`]) can name them; each sink fills its own.

use serde::Serialize;

/// What a log reports in `/api/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogStatus {
    /// The file.
    pub path: String,
    /// Rows written since start.
    pub written: u64,
    /// Rows waiting to be written (the file refused them).
    pub pending: usize,
    /// Rows given up after `MAX_PENDING` were waiting.
    pub dropped: u64,
    /// The last write error, while rows are waiting.
    pub error: Option<String>,
    /// What was repaired when the file was opened (a torn last row cut, a foreign file set
    /// aside).
    pub repaired: Option<String>,
}

/// What the store reports in `/api/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStatus {
    /// The file.
    pub path: String,
    /// Points stored since start.
    pub stored: u64,
    /// Points that could not be stored (the disk was full, the file unwritable).
    pub not_stored: u64,
    /// The last error, until a write succeeds again.
    pub error: Option<String>,
    /// Points deleted by retention since start.
    pub expired: u64,
}

/// What `/api/status` says of the notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifyStatus {
    /// Where they go.
    pub urls: Vec<String>,
    /// Events sent (to every URL that took them).
    pub sent: u64,
    /// Events some URL refused after every try.
    pub failed: u64,
    /// Events not sent: their device was in its cooldown.
    pub suppressed: u64,
    /// Events dropped: the queue was full.
    pub dropped: u64,
    /// The last failure, if the last try of a URL failed.
    pub last_error: Option<String>,
}

/// What `/api/status` says of MQTT.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MqttStatus {
    /// The broker (without a password).
    pub url: String,
    /// Whether the broker has accepted the connection.
    pub connected: bool,
    /// Messages handed to the client.
    pub published: u64,
    /// Messages dropped: the client's queue was full, or the broadcast skipped them.
    pub dropped: u64,
    /// Messages the broker had not acknowledged when the connection broke, and could not be
    /// sent again because the broker had forgotten this client's session (it restarted
    /// without persistence).
    pub lost_unacknowledged: u64,
    /// The last connection error, while not connected.
    pub last_error: Option<String>,
}
