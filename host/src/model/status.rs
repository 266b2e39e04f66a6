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
    /// Commands for this daemon's devices refused (not signed with `--mqtt-command-key`, a
    /// signature that does not hold, too old, sent again, or not a command).
    pub commands_refused: u64,
    /// The last connection error, while not connected.
    pub last_error: Option<String>,
}

/// How long points wait between arriving at the host and being written to a page's socket:
/// a histogram (Prometheus' shape: cumulative counts at [`PageLatency::BOUNDS`], a sum and a
/// count), one observation per live message a page is sent, of its oldest point.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PageLatency {
    /// Observations at or below each bound of [`PageLatency::BOUNDS`] (not cumulative here:
    /// each observation counts in its first bucket; [`PageLatency::cumulative`] adds them up).
    pub buckets: [u64; PageLatency::BOUNDS.len()],
    /// Observations above the last bound.
    pub over: u64,
    /// Sum of every observation, seconds.
    pub sum_s: f64,
    /// Observations.
    pub count: u64,
}

impl PageLatency {
    /// The buckets' upper bounds, seconds.
    pub const BOUNDS: [f64; 11] = [
        0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];

    /// Count one message whose oldest point waited `seconds` (a negative wait, a clock set
    /// back, counts as 0).
    pub fn observe(&mut self, seconds: f64) {
        let s = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        match Self::BOUNDS.iter().position(|&b| s <= b) {
            Some(i) => self.buckets[i] += 1,
            None => self.over += 1,
        }
        self.sum_s += s;
        self.count += 1;
    }

    /// `(bound, observations at or below it)` for every bound, then `(+∞, count)`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut running = 0;
        Self::BOUNDS
            .iter()
            .zip(&self.buckets)
            .map(move |(&b, &n)| {
                running += n;
                (b, running)
            })
            .chain(std::iter::once((f64::INFINITY, self.count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_and_end_at_the_count() {
        let mut l = PageLatency::default();
        for s in [0.0005, 0.001, 0.003, 0.3, 7.0, -1.0, f64::NAN] {
            l.observe(s);
        }
        let c: Vec<(f64, u64)> = l.cumulative().collect();
        assert_eq!(c[0], (0.001, 4), "0.0005, 0.001 and the two counted as 0");
        assert_eq!(c[2], (0.005, 5));
        assert_eq!(c[8], (0.5, 6));
        assert_eq!(c[10], (2.5, 6));
        assert_eq!(c[11], (f64::INFINITY, 7));
        assert_eq!(l.over, 1);
        assert!((l.sum_s - 7.3045).abs() < 1e-9, "{}", l.sum_s);
    }
}
