//! What the daemon knows of a device: [`State`], behind the one mutex of its hub
//! (`crate::device::Hub`).
//!
//! Only [`super::ingest`] changes what the device said (its fields are private to the
//! daemon); the web side reads typed views of it ([`StatusView`], [`ConfigView`], [`Points`]),
//! copied under the lock and encoded after it is released.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use zscope_core::DetectorConfig;
use zscope_core::wire::{DecodeStats, Status};

use super::point::{Point, Points};
use super::status::{LogStatus, MqttStatus, NotifyStatus, PageLatency, StoreStatus};

/// Points kept in memory for `/api/samples` (older ones are in samples.csv).
pub const HISTORY: usize = 200_000;
/// Points kept in memory for a device another daemon reads (published to the broker a
/// central daemon subscribes to): a page's snapshot; older points come from the store. A
/// central daemon of a thousand devices holds about a megabyte a device, not fourteen.
pub const REMOTE_HISTORY: usize = 10_000;
/// Anomalies kept in memory for `/api/anomalies`.
pub const ANOMALY_HISTORY: usize = 10_000;

/// The device, from its hello.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// Board name.
    pub board: String,
    /// Firmware version.
    pub firmware: String,
    /// Protocol version.
    pub protocol: u16,
    /// Largest window it accepts.
    pub capacity: u32,
    /// Longest seasonal period it accepts.
    pub season_capacity: u32,
    /// Its sample rate (0: as fast as the link carries).
    pub sample_rate_hz: u32,
    /// Whether its stream carries ground truth (a simulator).
    pub has_truth: bool,
    /// The source it judges (`simulator`, `temperature`, `adc:PA0`, `external`).
    #[serde(default)]
    pub source: String,
    /// The unit of its values (`°C`, `V`, or empty).
    #[serde(default)]
    pub unit: String,
    /// The sources it can switch to.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Highest rate a sensor source is sampled at.
    #[serde(default)]
    pub max_sensor_hz: u32,
}

/// Precision, recall and F1 against the source's injected anomalies (exact sample match).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quality {
    /// Flagged and injected.
    pub true_positives: u64,
    /// Flagged, not injected.
    pub false_positives: u64,
    /// Injected, not flagged (after warm-up).
    pub false_negatives: u64,
    /// TP / (TP + FP), when defined.
    pub precision: Option<f64>,
    /// TP / (TP + FN), when defined.
    pub recall: Option<f64>,
    /// Harmonic mean of the two, when defined.
    pub f1: Option<f64>,
}

impl Quality {
    pub(super) fn finish(mut self) -> Self {
        let (tp, fp, fneg) = (
            self.true_positives as f64,
            self.false_positives as f64,
            self.false_negatives as f64,
        );
        self.precision = (tp + fp > 0.0).then(|| tp / (tp + fp));
        self.recall = (tp + fneg > 0.0).then(|| tp / (tp + fneg));
        self.f1 = match (self.precision, self.recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            _ => None,
        };
        self
    }
}

/// Counters shown on the page and at `/api/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Samples received.
    pub samples: u64,
    /// Of which flagged.
    pub anomalies: u64,
    /// Frames lost (gaps in sequence numbers).
    pub frames_lost: u64,
    /// Device resets or reconnections seen (a new hello, or sequence numbers going back).
    pub device_restarts: u64,
    /// Times the port was (re)opened.
    pub connections: u64,
    /// Sequence numbers that jumped too far forward to be lost frames (over a million at
    /// once): taken as a renumbering, not counted as lost.
    pub sequence_jumps: u64,
    /// Device times that jumped more than a minute away from the host's clock: the chart time
    /// was anchored again instead of shifting every later point.
    pub time_jumps: u64,
    /// Samples ignored because the device's hello was refused.
    pub refused_samples: u64,
    /// Anomaly events: runs of consecutive flagged samples.
    pub events: u64,
    /// Of the samples, those that came in batch frames (protocol 5's compact encoding).
    pub batched: u64,
    /// Messages from the broker refused for this device (over the size a message of its
    /// topics can be), for a device another daemon publishes.
    pub messages_refused: u64,
}

/// Columns of the overview's sparkline (one a second over the last minute).
pub const SPARK: usize = 60;

/// A device at a glance, for the overview of devices.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Anomalies flagged in the last minute (up to the last 10 000 anomalies kept).
    pub anomalies_last_minute: usize,
    /// Anomalies flagged in the last 60 whole minutes and this one.
    pub anomalies_last_hour: u64,
    /// The last minute's values, one (min, max) a second; `null` where none came.
    pub spark: Vec<Option<(f32, f32)>>,
}

/// A gap in sequence numbers beyond this is a renumbering, not lost frames.
pub(super) const MAX_LOST_AT_ONCE: u64 = 1_000_000;
/// A device time this far (ms) from the host's clock is a jump: the chart is anchored again.
pub const MAX_CLOCK_JUMP_MS: f64 = 60_000.0;

/// Everything the daemon knows.
pub struct State {
    pub(super) port: String,
    pub(super) connected: bool,
    pub(super) link_error: Option<String>,
    /// How the source ended, when it ended as it should (a replay that reached its end).
    pub(super) ended: Option<String>,
    /// Chart time is the data's own (a replayed file's timestamps), and so is a log row's
    /// time: not the host's clock.
    pub(super) data_time: bool,
    pub(super) device: Option<DeviceInfo>,
    pub(super) device_status: Option<Status>,
    /// The source the device judges and its unit, as it last said (`None`: it does not say).
    pub(super) source: Option<zscope_core::source::Source>,
    pub(super) unit: zscope_core::source::Unit,
    /// The source the daemon was asked to judge (`--source`), if any.
    pub(super) wanted_source: Option<zscope_core::source::Source>,
    /// Whether it was asked for since the device's last hello.
    pub(super) source_asked: bool,
    /// Why the device does not judge the source asked for.
    pub(super) source_error: Option<String>,
    pub(super) config_version: u32,
    /// Every config version seen (for the threshold and window of points judged under it).
    pub(super) configs: HashMap<u32, DetectorConfig>,
    pub(super) history: VecDeque<Point>,
    /// Points `history` holds at most ([`HISTORY`], or less: [`State::keep_at_most`]).
    pub(super) history_cap: usize,
    /// Points ever dropped from the front of `history`: the first one's number in
    /// [`State::history_end`]'s count.
    pub(super) history_dropped: u64,
    pub(super) anomalies: VecDeque<Point>,
    pub(super) counters: Counters,
    pub(super) decode: DecodeStats,
    /// Decode counts of earlier connections (the decoder starts afresh on each).
    pub(super) decode_before: DecodeStats,
    pub(super) quality: Quality,
    pub(super) rate: f64,
    pub(super) rate_window: VecDeque<f64>,
    /// Points not yet pushed to the browsers.
    pub(super) outbox: Vec<Point>,
    /// When the oldest point in `outbox` arrived, µs since the Unix epoch.
    pub(super) outbox_since_us: Option<i64>,
    /// The history's number of the oldest point in `outbox` (see [`State::history_end`]).
    pub(super) outbox_start: u64,
    /// Bumped on every config change, for the pump (`crate::device::pump`).
    pub(super) config_events: u64,
    pub(super) read_only: Option<String>,
    pub(super) refused: Option<String>,
    /// Whether device time should keep pace with the host's (a live device: a jump of more
    /// than a minute anchors the chart again); not for a replay, which runs at any speed.
    pub(super) live_clock: bool,
    pub(super) next_seq: Option<u64>,
    pub(super) anchor: Option<(u64, f64)>,
    pub(super) last_t: f64,
    pub(super) truth: bool,
    /// Sequence number of the last flagged sample (an event goes on while they follow).
    pub(super) last_flagged: Option<u64>,
    /// Anomalies per minute of chart time (minute number, count), the last hour's.
    pub(super) anomaly_minutes: VecDeque<(i64, u64)>,
}

/// What `/api/status` (and the page's status line) shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    /// The serial port, the emulator's pty, or the replayed file.
    pub port: String,
    /// Whether it is open.
    pub connected: bool,
    /// Why it is not (or the last problem with it, or why the device was refused).
    pub link_error: Option<String>,
    /// How the source ended, when it ended as it should ("replay finished: …"): not an error.
    pub ended: Option<String>,
    /// The device, once it said hello.
    pub device: Option<DeviceInfo>,
    /// Its last status frame.
    pub device_status: Option<Status>,
    /// Why the device does not judge the source the daemon was asked for (`--source`).
    pub source_error: Option<String>,
    /// Config version in force.
    pub config_version: u32,
    /// The config in force.
    pub config: Option<DetectorConfig>,
    /// Counters.
    pub counters: Counters,
    /// Frames rejected, all kinds together.
    pub bad_frames: u64,
    /// Bytes read, frames decoded, and frames rejected per kind.
    pub decode: DecodeStats,
    /// Points per second over the last second.
    pub rate: f64,
    /// Live precision/recall, when the source has ground truth.
    pub quality: Option<Quality>,
    /// The CSV logs.
    pub logs: Vec<LogStatus>,
    /// Why the config cannot be changed (a replay of recorded frames), if so.
    pub read_only: Option<String>,
    /// The notifications, when `--notify` is given.
    pub notify: Option<NotifyStatus>,
    /// MQTT publishing, when `--mqtt` is given.
    pub mqtt: Option<MqttStatus>,
    /// The store (`None` with `--no-store`).
    pub store: Option<StoreStatus>,
    /// From a point's arrival to a page's socket (live messages).
    pub page_latency: PageLatency,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
}

/// What `/api/config` shows: the config in force and what the device can hold.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConfigView {
    /// Its version.
    pub version: u32,
    /// The config.
    pub config: Option<DetectorConfig>,
    /// Largest window the device accepts.
    pub capacity: Option<u32>,
    /// Longest seasonal period it accepts.
    pub season_capacity: Option<u32>,
}

impl State {
    /// Judge `source` on this device (`--source`): asked for after each hello that names
    /// another.
    pub fn want_source(&mut self, source: Option<zscope_core::source::Source>) {
        self.wanted_source = source;
        self.source_asked = false;
    }

    /// The source to ask the device for now, once per hello: the one wanted, when the device
    /// judges another and lists it. When it does not list it, says why in the status instead.
    pub fn source_to_ask(&mut self) -> Option<zscope_core::source::Source> {
        let wanted = self.wanted_source?;
        let device = self.device.as_ref()?;
        let name = wanted.to_string();
        if self.source_asked || device.source == name || device.sources.is_empty() {
            return None;
        }
        self.source_asked = true;
        if device.sources.contains(&name) {
            return Some(wanted);
        }
        let why = format!(
            "--source {name}: this device has {}",
            device.sources.join(", ")
        );
        tracing::warn!("{why}");
        self.source_error = Some(why);
        None
    }

    /// The sources the device lists (empty before its hello).
    pub fn device_sources(&self) -> Vec<String> {
        self.device
            .as_ref()
            .map(|d| d.sources.clone())
            .unwrap_or_default()
    }

    /// Nothing known yet about the device on `port`.
    pub fn new(port: String) -> Self {
        State {
            port,
            connected: false,
            link_error: None,
            ended: None,
            data_time: false,
            device: None,
            device_status: None,
            source: None,
            unit: zscope_core::source::Unit::None,
            wanted_source: None,
            source_asked: false,
            source_error: None,
            config_version: 0,
            configs: HashMap::new(),
            history: VecDeque::with_capacity(1024),
            history_cap: HISTORY,
            history_dropped: 0,
            anomalies: VecDeque::new(),
            counters: Counters::default(),
            decode: DecodeStats::default(),
            decode_before: DecodeStats::default(),
            quality: Quality::default(),
            rate: 0.0,
            rate_window: VecDeque::new(),
            outbox: Vec::new(),
            outbox_since_us: None,
            outbox_start: 0,
            config_events: 0,
            read_only: None,
            refused: None,
            live_clock: true,
            next_seq: None,
            anchor: None,
            last_t: 0.0,
            truth: false,
            last_flagged: None,
            anomaly_minutes: VecDeque::new(),
        }
    }

    /// Count an anomaly at chart time `t` (ms) in its minute.
    pub(super) fn count_anomaly_minute(&mut self, t: f64) {
        let minute = (t / 60_000.0).floor() as i64;
        match self.anomaly_minutes.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => self.anomaly_minutes.push_back((minute, 1)),
        }
        while self
            .anomaly_minutes
            .front()
            .is_some_and(|(m, _)| *m < minute - 60)
        {
            self.anomaly_minutes.pop_front();
        }
    }

    /// Keep at most `points` of the latest points in memory (a remote device's
    /// [`REMOTE_HISTORY`]); older ones go, as they would past [`HISTORY`].
    pub fn keep_at_most(&mut self, points: usize) {
        self.history_cap = points.clamp(1, HISTORY);
        while self.history.len() > self.history_cap {
            self.history.pop_front();
            self.history_dropped += 1;
        }
        self.history.shrink_to(self.history_cap);
    }

    /// Anomalies flagged since chart time `t` (of the last 10 000 kept).
    pub fn anomalies_since(&self, t: f64) -> usize {
        self.anomalies.len() - self.anomalies.partition_point(|p| p.t < t)
    }

    /// What the overview of devices shows at `now` (ms since the Unix epoch): anomalies in
    /// the last minute and hour, and the last minute's values as `SPARK` columns of (min,
    /// max), so a spike shows however narrow.
    pub fn overview(&self, now: f64) -> Overview {
        let minute_ago = now - 60_000.0;
        let start = self.history.partition_point(|p| p.t < minute_ago);
        let mut spark = vec![None; SPARK];
        for p in self.history.range(start..) {
            let column = (((p.t - minute_ago) / 60_000.0 * SPARK as f64) as usize).min(SPARK - 1);
            let v = p.value;
            if !v.is_finite() {
                continue;
            }
            spark[column] = Some(match spark[column] {
                Some((lo, hi)) => (v.min(lo), v.max(hi)),
                None => (v, v),
            });
        }
        let this_minute = (now / 60_000.0).floor() as i64;
        Overview {
            anomalies_last_minute: self.anomalies_since(minute_ago),
            anomalies_last_hour: self
                .anomaly_minutes
                .iter()
                .filter(|(m, _)| *m > this_minute - 60)
                .map(|(_, n)| n)
                .sum(),
            spark,
        }
    }

    /// Whether samples carry ground truth (set by a hello from a simulator, or by a replayed
    /// file with a label column).
    pub fn set_ground_truth(&mut self, truth: bool) {
        self.truth = truth;
        if let Some(d) = &mut self.device {
            d.has_truth = truth;
        }
    }

    /// A replay: device time runs at the file's pace, not the host's.
    pub fn set_replay(&mut self) {
        self.live_clock = false;
    }

    /// The config cannot be changed, and why (a replay of the device's own verdicts).
    pub fn set_read_only(&mut self, why: String) {
        self.read_only = Some(why);
    }

    /// Why the config cannot be changed, if so.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Whether the port is open.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A message for this device was refused (too large); how many have been.
    pub fn refuse_message(&mut self) -> u64 {
        self.counters.messages_refused += 1;
        self.counters.messages_refused
    }

    /// Whether samples come from a device that has not said who it is (its hello was missed:
    /// the daemon started after the device, or the line dropped it): the source should ask.
    pub fn unidentified(&self) -> bool {
        self.device.is_none() && self.refused.is_none() && self.counters.samples > 0
    }

    /// A problem with the link to show (a failed recording, another protocol version).
    pub fn set_link_error(&mut self, why: String) {
        self.link_error = Some(why);
    }

    /// The config in force, if the device said.
    pub fn config(&self) -> Option<DetectorConfig> {
        self.configs.get(&self.config_version).copied()
    }

    /// The port was (re)opened: a new decoder, a new anchor for time.
    pub fn connected(&mut self) {
        self.connected = true;
        self.link_error = None;
        self.counters.connections += 1;
        self.decode_before = self.decode;
        self.anchor = None;
    }

    /// The source reached its end as it should (a replay's last row): closed, and `how` it
    /// ended, which is no error.
    pub fn finished(&mut self, how: String) {
        self.connected = false;
        self.ended = Some(how);
        self.anchor = None;
    }

    /// Chart times are the data's own from here on: the next sample's device time is
    /// `first_ms` (ms since the epoch), and log rows carry that time too (a replayed file
    /// charts, logs and stores 2014's data in 2014, not today).
    pub fn keep_data_time(&mut self, first_ms: i64, first_device_ms: u64) {
        self.data_time = true;
        self.live_clock = false;
        self.anchor = Some((first_device_ms, first_ms as f64));
    }

    /// The port is gone (unplugged, reset, closed).
    pub fn disconnected(&mut self, why: String) {
        self.connected = false;
        self.link_error = Some(why);
        self.anchor = None;
    }

    /// The decoder's counters for the current connection.
    pub fn set_decode(&mut self, current: &DecodeStats) {
        self.decode = self.decode_before.plus(current);
    }

    /// Points with chart time (ms) in `[from, to]`: the latest `limit` of them, oldest first.
    pub fn range(&self, from: f64, to: f64, limit: usize) -> Points {
        let start = self.history.partition_point(|p| p.t < from);
        let end = self.history.partition_point(|p| p.t <= to).max(start);
        let start = start.max(end.saturating_sub(limit));
        self.history.range(start..end).collect()
    }

    /// The latest `n` points, oldest first, as they are kept.
    pub fn latest_points(&self, n: usize) -> Vec<Point> {
        let skip = self.history.len().saturating_sub(n);
        self.history.range(skip..).copied().collect()
    }

    /// How many points were ever kept in the history: the number the next one gets (points
    /// are numbered from 0 in the order they came, for [`State::history_chunk`]).
    pub fn history_end(&self) -> u64 {
        self.history_dropped + self.history.len() as u64
    }

    /// Up to `max` points numbered from `from` (or from the oldest still kept, when those are
    /// gone) up to `end`, oldest first, and the number after the last one given: a reader
    /// takes a range in pieces without holding all of it (a page's snapshot).
    pub fn history_chunk(&self, from: u64, end: u64, max: usize) -> (Points, u64) {
        let from = from.max(self.history_dropped);
        let end = end.min(self.history_end()).max(from);
        let to = end.min(from.saturating_add(max as u64));
        let (start, stop) = (
            (from - self.history_dropped) as usize,
            (to - self.history_dropped) as usize,
        );
        (self.history.range(start..stop).collect(), to)
    }

    /// The latest `n` anomalies, oldest first.
    pub fn latest_anomalies(&self, n: usize) -> Points {
        let skip = self.anomalies.len().saturating_sub(n);
        self.anomalies.range(skip..).collect()
    }

    /// When the oldest point not yet pushed to the browsers arrived, µs since the Unix
    /// epoch (`None`: there is none).
    pub fn outbox_since_us(&self) -> Option<i64> {
        self.outbox_since_us
    }

    /// The history's number of the oldest point not yet pushed to the browsers (the others
    /// follow it in order).
    pub fn outbox_start(&self) -> u64 {
        self.outbox_start
    }

    /// Points not yet pushed to the browsers (taken: the next call has only newer ones).
    pub fn take_outbox(&mut self) -> Vec<Point> {
        self.outbox_since_us = None;
        std::mem::take(&mut self.outbox)
    }

    /// A number that changes whenever the config does.
    pub fn config_events(&self) -> u64 {
        self.config_events
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The config in force and what the device can hold.
    pub fn config_view(&self) -> ConfigView {
        ConfigView {
            version: self.config_version,
            config: self.config(),
            capacity: self.device.as_ref().map(|d| d.capacity),
            season_capacity: self.device.as_ref().map(|d| d.season_capacity),
        }
    }

    /// The device as a notification names it: its board and port.
    pub fn device_name(&self) -> String {
        match &self.device {
            Some(d) => format!("{} on {}", d.board, self.port),
            None => self.port.clone(),
        }
    }

    /// Everything `/api/status` shows, but what is kept elsewhere (logs, notifications, uptime).
    pub fn status(
        &self,
        logs: Vec<LogStatus>,
        notify: Option<NotifyStatus>,
        uptime_s: u64,
    ) -> StatusView {
        StatusView {
            port: self.port.clone(),
            connected: self.connected,
            link_error: self.link_error.clone(),
            ended: self.ended.clone(),
            device: self.device.clone(),
            device_status: self.device_status,
            source_error: self.source_error.clone(),
            config_version: self.config_version,
            config: self.config(),
            counters: self.counters.clone(),
            bad_frames: self.decode.errors(),
            decode: self.decode,
            rate: self.rate,
            quality: self
                .device
                .as_ref()
                .is_some_and(|d| d.has_truth)
                .then_some(self.quality),
            logs,
            read_only: self.read_only.clone(),
            notify,
            mqtt: None,
            store: None,
            page_latency: PageLatency::default(),
            uptime_s,
        }
    }
}
