//! Notifications: a webhook POST for each anomaly *event* (a run of consecutive flagged
//! samples is one event), to every `--notify URL`.
//!
//! * The body is JSON with the device, time, value, z, score and a link to the page at that
//!   moment, plus a `text` field in the form Slack, Mattermost and Discord's Slack-compatible
//!   incoming webhooks read (ntfy takes the body as the message).
//! * One thread sends, in order, from a bounded queue ([`NOTICE_QUEUE`]): ingest never waits for a
//!   webhook; a notice that finds the queue full is dropped and counted.
//! * A device that raised a notification stays quiet for the cooldown (`--notify-cooldown`);
//!   events meanwhile are counted as suppressed, not sent.
//! * Each URL gets [`ATTEMPTS`] tries, 1 s then 2 s apart, [`TIMEOUT`] each; what still fails
//!   is counted, and the last error shows in `/api/status`.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::device::{Sink, lock};
use crate::model::{NotifyStatus, Output, Point};
use crate::retry::Backoff;

/// Notices waiting to be sent at most.
pub const NOTICE_QUEUE: usize = 64;
/// Tries per URL.
pub const ATTEMPTS: u32 = 3;
/// How long one try may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// One anomaly event, as it is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// A line for chat webhooks (Slack, Mattermost, Discord's `/slack` endpoint).
    pub text: String,
    /// The device (its board name and port).
    pub device: String,
    /// When the event started, RFC 3339 UTC.
    pub time: String,
    /// The same, ms since the Unix epoch (the chart's time).
    pub t_ms: f64,
    /// The device's sequence number of the event's first sample.
    pub seq: u64,
    /// Its value.
    pub value: f32,
    /// Its z-score.
    pub z: f32,
    /// Its score in [0, 1].
    pub score: f32,
    /// The page, showing that moment.
    pub url: String,
}

/// Whether a device that notified at `last` may notify again at `now`.
pub fn due(last: Option<Instant>, now: Instant, cooldown: Duration) -> bool {
    last.is_none_or(|t| now.duration_since(t) >= cooldown)
}

/// Where ingest hands notices: never waits.
#[derive(Clone)]
pub struct NotifySender {
    tx: SyncSender<Notice>,
    status: Arc<Mutex<NotifyStatus>>,
}

impl NotifySender {
    /// Queue `notice`; a full queue drops it (counted).
    pub fn send(&self, notice: Notice) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(notice) {
            lock(&self.status).dropped += 1;
        }
    }
}

/// The sending thread.
pub struct Notifier {
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<NotifyStatus>>,
}

impl Notifier {
    /// Start sending to `urls`, each device quiet for `cooldown` after a notification.
    pub fn spawn(
        urls: Vec<String>,
        cooldown: Duration,
    ) -> std::io::Result<(Notifier, NotifySender)> {
        let (tx, rx) = sync_channel(NOTICE_QUEUE);
        let status = Arc::new(Mutex::new(NotifyStatus {
            urls: urls.clone(),
            ..NotifyStatus::default()
        }));
        let shared = status.clone();
        let thread = std::thread::Builder::new()
            .name("zscope-notify".into())
            .spawn(move || run(rx, urls, cooldown, shared))?;
        Ok((
            Notifier {
                thread: Some(thread),
                status: status.clone(),
            },
            NotifySender { tx, status },
        ))
    }

    /// Its counters, as they change.
    pub fn status(&self) -> Arc<Mutex<NotifyStatus>> {
        self.status.clone()
    }

    /// Send what is queued, then end (every sender must be gone).
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    rx: Receiver<Notice>,
    urls: Vec<String>,
    cooldown: Duration,
    status: Arc<Mutex<NotifyStatus>>,
) {
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into();
    let mut last: HashMap<String, Instant> = HashMap::new();
    for notice in rx {
        let now = Instant::now();
        if !due(last.get(&notice.device).copied(), now, cooldown) {
            lock(&status).suppressed += 1;
            continue;
        }
        last.insert(notice.device.clone(), now);
        let mut failure = None;
        for url in &urls {
            if let Err(e) = post(&agent, url, &notice) {
                tracing::warn!("notification to {url} failed: {e}");
                failure = Some(format!("{url}: {e}"));
            }
        }
        let mut s = lock(&status);
        match failure {
            None => s.sent += 1,
            Some(e) => {
                s.failed += 1;
                s.last_error = Some(e);
            }
        }
    }
}

/// POST `notice` to `url`, up to [`ATTEMPTS`] times.
fn post(agent: &ureq::Agent, url: &str, notice: &Notice) -> Result<(), String> {
    let mut why = String::new();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(4));
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(backoff.failed());
        }
        match agent.post(url).send_json(notice) {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => why = format!("answered {}", r.status()),
            Err(e) => why = e.to_string(),
        }
    }
    Err(format!("{why} (after {ATTEMPTS} tries)"))
}

/// A device's notices: each anomaly event of the device `name`, with a link into the page at
/// `page` (`http://HOST:PORT/`), to the notifier.
pub struct DeviceNotices {
    /// The notifier's queue.
    pub sender: NotifySender,
    /// The page's address.
    pub page: String,
    /// The device's name.
    pub name: String,
}

impl Sink for DeviceNotices {
    fn take(&self, out: &Output, device: Option<&str>) {
        let Some(device) = device else { return };
        for p in &out.events {
            self.sender.send(notice(&self.name, device, p, &self.page));
        }
    }
}

/// The notification for an event that starts at `p` on the device `name` (`what`: its board
/// and port).
pub fn notice(name: &str, what: &str, p: &Point, page: &str) -> Notice {
    let time = chrono::DateTime::from_timestamp_millis(p.t as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let url = format!("{page}?device={name}&at={}", p.t as i64);
    Notice {
        text: if p.reason() == "new level" {
            format!(
                "zscope: anomaly on {name} ({what}) at {time}: a new level, value {} (z {:.2}, \
                 inside the band), score {:.2} <{url}>",
                p.value, p.z, p.score
            )
        } else {
            format!(
                "zscope: anomaly on {name} ({what}) at {time}: beyond the band, value {}, z {:.2}, \
                 score {:.2} <{url}>",
                p.value, p.z, p.score
            )
        },
        device: name.to_string(),
        time,
        t_ms: p.t,
        seq: p.seq,
        value: p.value,
        z: p.z,
        score: p.score,
        url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_quiet_for_its_cooldown() {
        let t0 = Instant::now();
        let cooldown = Duration::from_secs(60);
        assert!(due(None, t0, cooldown));
        assert!(!due(Some(t0), t0 + Duration::from_secs(59), cooldown));
        assert!(due(Some(t0), t0 + Duration::from_secs(60), cooldown));
        assert!(due(Some(t0), t0, Duration::ZERO));
    }
}
