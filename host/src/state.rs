//! What the daemon knows, and how each frame from the device changes it.
//!
//! [`Ingest`] is the one place a [`DeviceMsg`] is turned into state: it finds lost frames from
//! sequence gaps, notices device resets, keeps the config of every version (for the log's
//! threshold and window columns), counts live precision/recall against the source's ground
//! truth, writes the CSV logs, and queues points for the browsers. It does no I/O of its own
//! beyond the logs, so it is tested directly.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use zscope_core::DetectorConfig;
use zscope_core::wire::{Ack, DecodeStats, DeviceMsg, Flags, Hello, Sample, Status};

use crate::log::{CsvLog, LogStatus, Row};

/// Points kept in memory for `/api/samples` (older ones are in samples.csv).
pub const HISTORY: usize = 200_000;
/// Anomalies kept in memory for `/api/anomalies`.
pub const ANOMALY_HISTORY: usize = 10_000;

/// One judged point, as the API and the page see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Chart time: ms since the Unix epoch, from the device's clock anchored to the host's.
    pub t: f64,
    /// Device sequence number.
    pub seq: u64,
    /// Device time, ms since boot.
    pub device_time_ms: u64,
    /// The value.
    pub value: f32,
    /// Window mean before it.
    pub mean: f32,
    /// Window std before it.
    pub std: f32,
    /// Z-score (clamped to ±1e30 for JSON: ±∞ means a flat window).
    pub z: f32,
    /// Threshold that judged it.
    pub threshold: f32,
    /// Window that judged it.
    pub window: u32,
    /// Config version that judged it.
    pub config_version: u32,
    /// Flag bits (see `zscope_core::wire::Flags`).
    pub flags: u8,
    /// Frames lost just before this one.
    pub lost_before: u64,
}

/// The device, from its hello.
#[derive(Debug, Clone, Serialize)]
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
}

/// Precision, recall and F1 against the source's injected anomalies (exact sample match).
#[derive(Debug, Clone, Copy, Default, Serialize)]
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
    fn finish(mut self) -> Self {
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
}

/// A gap in sequence numbers beyond this is a renumbering, not lost frames.
const MAX_LOST_AT_ONCE: u64 = 1_000_000;
/// A device time this far (ms) from the host's clock is a jump: the chart is anchored again.
const MAX_CLOCK_JUMP_MS: f64 = 60_000.0;

/// Everything the daemon knows.
pub struct State {
    /// The serial port, or the emulator's pty.
    pub port: String,
    /// Whether the port is open.
    pub connected: bool,
    /// Why the port is not open (or the last problem with it).
    pub link_error: Option<String>,
    /// The device, once it said hello.
    pub device: Option<DeviceInfo>,
    /// The device's last status frame.
    pub device_status: Option<Status>,
    /// Config version in force.
    pub config_version: u32,
    /// Every config version seen.
    pub configs: HashMap<u32, DetectorConfig>,
    /// Recent points.
    pub history: VecDeque<Point>,
    /// Recent anomalies.
    pub anomalies: VecDeque<Point>,
    /// Counters.
    pub counters: Counters,
    /// Bad bytes and frames, per kind.
    pub decode: DecodeStats,
    /// Decode counts of earlier connections (the decoder starts afresh on each).
    decode_before: DecodeStats,
    /// Live detection quality.
    pub quality: Quality,
    /// Points per second, over the last second.
    pub rate: f64,
    rate_window: VecDeque<f64>,
    /// Points not yet pushed to the browsers.
    pub outbox: Vec<Point>,
    /// Config changes not yet pushed to the browsers.
    pub config_events: u64,
    /// CSV log counters.
    pub logs: Vec<LogStatus>,
    /// Why the config cannot be changed (a replay of recorded frames), if so.
    pub read_only: Option<String>,
    /// Why the device was refused (its hello made no sense), if it was.
    pub refused: Option<String>,
    /// Whether device time should keep pace with the host's (a live device: a jump of more
    /// than a minute anchors the chart again); not for a replay, which runs at any speed.
    pub live_clock: bool,
    next_seq: Option<u64>,
    anchor: Option<(u64, f64)>,
    last_t: f64,
    truth: bool,
}

impl State {
    /// Nothing known yet about the device on `port`.
    pub fn new(port: String) -> Self {
        State {
            port,
            connected: false,
            link_error: None,
            device: None,
            device_status: None,
            config_version: 0,
            configs: HashMap::new(),
            history: VecDeque::with_capacity(1024),
            anomalies: VecDeque::new(),
            counters: Counters::default(),
            decode: DecodeStats::default(),
            decode_before: DecodeStats::default(),
            quality: Quality::default(),
            rate: 0.0,
            rate_window: VecDeque::new(),
            outbox: Vec::new(),
            config_events: 0,
            logs: Vec::new(),
            read_only: None,
            refused: None,
            live_clock: true,
            next_seq: None,
            anchor: None,
            last_t: 0.0,
            truth: false,
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

    /// The port is gone (unplugged, reset, closed).
    pub fn disconnected(&mut self, why: String) {
        self.connected = false;
        self.link_error = Some(why);
        self.anchor = None;
    }

    /// The decoder's counters for the current connection.
    pub fn set_decode(&mut self, current: &DecodeStats) {
        let b = &self.decode_before;
        self.decode = DecodeStats {
            bytes: b.bytes + current.bytes,
            frames: b.frames + current.frames,
            oversize: b.oversize + current.oversize,
            cobs: b.cobs + current.cobs,
            truncated: b.truncated + current.truncated,
            crc: b.crc + current.crc,
            malformed: b.malformed + current.malformed,
            version: b.version + current.version,
        };
    }

    /// Points with chart time (ms) in `[from, to]`: the latest `limit` of them, oldest first.
    pub fn range(&self, from: f64, to: f64, limit: usize) -> Vec<Point> {
        let start = self.history.partition_point(|p| p.t < from);
        let end = self.history.partition_point(|p| p.t <= to);
        let start = start.max(end.saturating_sub(limit));
        self.history.range(start..end.max(start)).copied().collect()
    }
}

/// Turns frames into state, log rows and browser updates.
pub struct Ingest {
    samples_log: Option<CsvLog>,
    anomalies_log: CsvLog,
}

fn json_z(z: f32) -> f32 {
    z.clamp(-1e30, 1e30)
}

impl Ingest {
    /// Ingest writing to these logs.
    pub fn new(samples_log: Option<CsvLog>, anomalies_log: CsvLog) -> Self {
        Ingest {
            samples_log,
            anomalies_log,
        }
    }

    /// Retry rows the logs could not write yet, and report their counters.
    pub fn housekeeping(&mut self, state: &mut State) {
        if let Some(log) = &mut self.samples_log {
            log.flush_pending();
        }
        self.anomalies_log.flush_pending();
        self.report_logs(state);
    }

    fn report_logs(&self, state: &mut State) {
        state.logs.clear();
        if let Some(log) = &self.samples_log {
            state.logs.push(log.status());
        }
        state.logs.push(self.anomalies_log.status());
    }

    /// Apply one message from the device, received at `now`.
    pub fn handle(&mut self, state: &mut State, msg: DeviceMsg, now: DateTime<Utc>) -> Option<Ack> {
        match msg {
            DeviceMsg::Hello(hello) => {
                self.hello(state, &hello);
                None
            }
            DeviceMsg::Sample(sample) => {
                self.sample(state, &sample, now);
                None
            }
            DeviceMsg::Status(status) => {
                state.device_status = Some(status);
                None
            }
            DeviceMsg::Ack(ack) => {
                if state.configs.insert(ack.config_version, ack.config) != Some(ack.config)
                    || state.config_version != ack.config_version
                {
                    state.config_events += 1;
                }
                state.config_version = ack.config_version;
                Some(ack)
            }
        }
    }

    fn hello(&mut self, state: &mut State, hello: &Hello) {
        if let Err(why) = check_hello(hello) {
            let why = format!(
                "device {} refused: its hello says {why}; its samples are ignored until it \
                 says hello with values that make sense",
                hello.board
            );
            tracing::error!("{why}");
            state.link_error = Some(why.clone());
            state.refused = Some(why);
            state.device = None;
            return;
        }
        // A good hello: whatever the link reported before (a version mismatch, a refusal) is
        // over.
        state.refused = None;
        state.link_error = None;
        if state.device.is_some() {
            // A hello after the first is a reboot, or an answer to a ping: a reboot shows as
            // sequence numbers starting again, which `sample` counts.
            tracing::info!("device {} said hello again", hello.board);
        } else {
            tracing::info!(
                "device {} (firmware {}, protocol {}) on {}",
                hello.board,
                hello.firmware,
                hello.protocol,
                state.port
            );
        }
        state.truth = hello.simulator.is_some();
        state.device = Some(DeviceInfo {
            board: hello.board.to_string(),
            firmware: hello.firmware.to_string(),
            protocol: hello.protocol,
            capacity: hello.capacity,
            season_capacity: hello.season_capacity,
            sample_rate_hz: hello.sample_rate_hz,
            has_truth: hello.simulator.is_some(),
        });
        state.configs.insert(hello.config_version, hello.detector);
        state.config_version = hello.config_version;
        state.config_events += 1;
    }

    fn sample(&mut self, state: &mut State, s: &Sample, now: DateTime<Utc>) {
        if state.refused.is_some() {
            state.counters.refused_samples += 1;
            return;
        }
        let now_ms = now.timestamp_millis() as f64;
        // Sequence numbers: a jump forward is lost frames (up to a million at once: beyond,
        // a renumbering); going back is a device restart.
        let lost_before = match state.next_seq {
            Some(next) if s.seq > next && s.seq - next > MAX_LOST_AT_ONCE => {
                state.counters.sequence_jumps += 1;
                0
            }
            Some(next) if s.seq > next => s.seq - next,
            Some(next) if s.seq < next => {
                state.counters.device_restarts += 1;
                state.anchor = None;
                0
            }
            _ => 0,
        };
        state.next_seq = Some(s.seq.saturating_add(1));
        state.counters.frames_lost = state.counters.frames_lost.saturating_add(lost_before);
        // Chart time: the device's clock, anchored to the host's at the first sample of a
        // connection (or after a restart), never going backwards.
        let (dev0, host0) = *state
            .anchor
            .get_or_insert((s.time_ms, now_ms.max(state.last_t)));
        let mut t = host0 + s.time_ms as f64 - dev0 as f64;
        if state.live_clock && (t - now_ms).abs() > MAX_CLOCK_JUMP_MS {
            // The device's clock jumped (or one frame carried a wild time): anchor again here,
            // rather than shift every later point (or leave them behind).
            state.counters.time_jumps += 1;
            state.anchor = Some((s.time_ms, now_ms.max(state.last_t)));
            t = now_ms;
        }
        let t = t.max(state.last_t);
        state.last_t = t;

        let config = state
            .configs
            .get(&s.config_version)
            .copied()
            .or(state.config());
        let threshold = config.map_or(f32::NAN, |c| c.threshold);
        let window = config.map_or(0, |c| c.window);
        let anomaly = s.flags.contains(Flags::ANOMALY);
        let truth = s.flags.contains(Flags::TRUTH);
        let judged = !s.flags.contains(Flags::WARMING_UP) && !s.flags.contains(Flags::INVALID);
        let point = Point {
            t,
            seq: s.seq,
            device_time_ms: s.time_ms,
            value: s.value,
            mean: s.mean,
            std: s.std,
            z: json_z(s.z),
            threshold,
            window,
            config_version: s.config_version,
            flags: s.flags.0,
            lost_before,
        };

        state.counters.samples += 1;
        if anomaly {
            state.counters.anomalies += 1;
        }
        if state.truth && judged {
            let q = &mut state.quality;
            match (anomaly, truth) {
                (true, true) => q.true_positives += 1,
                (true, false) => q.false_positives += 1,
                (false, true) => q.false_negatives += 1,
                (false, false) => {}
            }
            *q = q.finish();
        }
        state.rate_window.push_back(now_ms);
        while state
            .rate_window
            .front()
            .is_some_and(|t0| now_ms - t0 > 1000.0)
        {
            state.rate_window.pop_front();
        }
        state.rate = state.rate_window.len() as f64;

        let abs_z = s.z.abs();
        let row = Row {
            host_time: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            seq: s.seq,
            device_time_ms: s.time_ms,
            value: s.value,
            mean: s.mean,
            std: s.std,
            z: s.z,
            score: if abs_z.is_infinite() {
                1.0
            } else {
                abs_z / (abs_z + threshold)
            },
            threshold,
            window,
            config_version: s.config_version,
            anomaly: anomaly as u8,
            truth: state.truth.then_some(truth as u8),
            lost_before,
        };
        if let Some(log) = &mut self.samples_log {
            log.append(&row);
        }
        if anomaly {
            self.anomalies_log.append(&row);
            if state.anomalies.len() == ANOMALY_HISTORY {
                state.anomalies.pop_front();
            }
            state.anomalies.push_back(point);
        }
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(point);
        state.outbox.push(point);
    }
}

/// Whether a device's hello makes sense: a detector config it could run, and capacities.
fn check_hello(h: &Hello) -> Result<(), String> {
    if h.capacity < 2 {
        return Err(format!("a window capacity of {}", h.capacity));
    }
    h.detector
        .validate(h.capacity as usize)
        .map_err(|e| format!("a detector config it cannot hold: {e}"))?;
    match h.detector.baseline {
        zscope_core::Baseline::Seasonal { period, alpha } => {
            if !(1..=h.season_capacity).contains(&period) {
                return Err(format!(
                    "a seasonal period of {period} with a season capacity of {}",
                    h.season_capacity
                ));
            }
            if !(alpha.is_finite() && alpha > 0.0 && alpha <= 1.0) {
                return Err(format!("a seasonal alpha of {alpha}"));
            }
        }
        zscope_core::Baseline::Adaptive { learn, .. } if !(16..=100_000).contains(&learn) => {
            return Err(format!("a learning phase of {learn}"));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zscope_core::SimConfig;
    use zscope_core::wire::{Name, PROTOCOL_VERSION};

    fn hello() -> DeviceMsg {
        DeviceMsg::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            firmware: Name::try_from("0.1.0").unwrap(),
            board: Name::try_from("test").unwrap(),
            capacity: 1024,
            sample_rate_hz: 50,
            config_version: 1,
            detector: DetectorConfig::default(),
            simulator: Some(SimConfig::default()),
            season_capacity: 1024,
        })
    }

    fn sample(seq: u64, flags: u8) -> DeviceMsg {
        DeviceMsg::Sample(Sample {
            seq,
            time_ms: seq * 20,
            value: 1.0,
            mean: 0.0,
            std: 0.25,
            z: 4.0,
            flags: Flags(flags),
            config_version: 1,
        })
    }

    fn setup() -> (tempfile::TempDir, Ingest, State) {
        let dir = tempfile::tempdir().unwrap();
        let ingest = Ingest::new(
            Some(CsvLog::open(dir.path(), "samples", 1 << 20, 2).unwrap()),
            CsvLog::open(dir.path(), "anomalies", 1 << 20, 2).unwrap(),
        );
        (dir, ingest, State::new("test".into()))
    }

    #[test]
    fn gaps_restarts_quality_and_logs() {
        let (dir, mut ingest, mut state) = setup();
        let now = Utc::now();
        ingest.handle(&mut state, hello(), now);
        ingest.handle(&mut state, sample(0, 0), now);
        ingest.handle(&mut state, sample(1, Flags::ANOMALY | Flags::TRUTH), now);
        ingest.handle(&mut state, sample(5, Flags::ANOMALY), now); // 3 lost
        ingest.handle(&mut state, sample(6, Flags::TRUTH), now); // missed
        ingest.handle(&mut state, sample(0, Flags::WARMING_UP | Flags::TRUTH), now); // restart
        assert_eq!(state.counters.samples, 5);
        assert_eq!(state.counters.anomalies, 2);
        assert_eq!(state.counters.frames_lost, 3);
        assert_eq!(state.counters.device_restarts, 1);
        let q = state.quality;
        assert_eq!(
            (q.true_positives, q.false_positives, q.false_negatives),
            (1, 1, 1)
        );
        assert_eq!(
            (q.precision, q.recall, q.f1),
            (Some(0.5), Some(0.5), Some(0.5))
        );
        assert_eq!(state.history.len(), 5);
        assert_eq!(state.history[2].lost_before, 3);
        assert!(
            state
                .history
                .iter()
                .zip(state.history.iter().skip(1))
                .all(|(a, b)| a.t <= b.t)
        );

        let samples = std::fs::read_to_string(dir.path().join("samples.csv")).unwrap();
        let rows: Vec<&str> = samples.lines().collect();
        assert_eq!(rows.len(), 6);
        assert!(
            rows[3].contains(",5,100,") && rows[3].ends_with(",3.0,64,1,1,0,3"),
            "{}",
            rows[3]
        );
        let anomalies = std::fs::read_to_string(dir.path().join("anomalies.csv")).unwrap();
        assert_eq!(anomalies.lines().count(), 3);
    }

    #[test]
    fn acks_record_the_new_config_version() {
        let (_dir, mut ingest, mut state) = setup();
        let now = Utc::now();
        ingest.handle(&mut state, hello(), now);
        let config = DetectorConfig::with_window(32);
        let ack = Ack {
            id: 9,
            result: zscope_core::wire::AckResult::Ok,
            config_version: 2,
            config,
        };
        assert_eq!(
            ingest.handle(&mut state, DeviceMsg::Ack(ack), now),
            Some(ack)
        );
        assert_eq!((state.config_version, state.config()), (2, Some(config)));
        // Samples judged under version 1 still log version 1's window.
        ingest.handle(&mut state, sample(0, 0), now);
        assert_eq!(state.history[0].window, 64);
    }

    #[test]
    fn range_queries_by_chart_time() {
        let (_dir, mut ingest, mut state) = setup();
        let t0 = Utc::now();
        ingest.handle(&mut state, hello(), t0);
        for seq in 0..100 {
            ingest.handle(&mut state, sample(seq, 0), t0);
        }
        let first = state.history[0].t;
        let got = state.range(first + 200.0, first + 400.0, 1000);
        assert_eq!(got.first().map(|p| p.seq), Some(10));
        assert_eq!(got.last().map(|p| p.seq), Some(20));
        let latest = state.range(first, first + 1e9, 7);
        assert_eq!(
            latest.iter().map(|p| p.seq).collect::<Vec<_>>(),
            (93..100).collect::<Vec<_>>()
        );
    }

    fn hello_with(f: impl FnOnce(&mut Hello)) -> DeviceMsg {
        let DeviceMsg::Hello(mut h) = hello() else {
            unreachable!()
        };
        f(&mut h);
        DeviceMsg::Hello(h)
    }

    /// A hello whose values make no sense (window 0, a NaN threshold) refuses the device with
    /// the reason in the status; its samples are not logged; a good hello lifts the refusal
    /// and clears the error (a stale protocol-version error included).
    #[test]
    fn a_nonsense_hello_refuses_the_device_until_a_good_one() {
        let (_dir, mut ingest, mut state) = setup();
        let now = Utc::now();
        state.link_error = Some("the device speaks protocol 2, this host 3".into());
        ingest.handle(&mut state, hello_with(|h| h.detector.window = 0), now);
        let why = state.link_error.clone().unwrap_or_default();
        assert!(why.contains("refused") && why.contains("window 0"), "{why}");
        ingest.handle(&mut state, sample(0, 0), now);
        assert_eq!(
            (state.counters.samples, state.counters.refused_samples),
            (0, 1)
        );
        ingest.handle(
            &mut state,
            hello_with(|h| h.detector.threshold = f32::NAN),
            now,
        );
        assert!(
            state
                .link_error
                .clone()
                .unwrap_or_default()
                .contains("threshold")
        );
        ingest.handle(&mut state, hello(), now);
        assert_eq!(state.link_error, None);
        assert!(state.device.is_some());
        ingest.handle(&mut state, sample(1, 0), now);
        assert_eq!(state.counters.samples, 1);
    }

    /// One wild sequence number is a renumbering, not 9.2e18 lost frames; counts cannot wrap.
    #[test]
    fn a_wild_sequence_jump_is_not_counted_as_lost_frames() {
        let (_dir, mut ingest, mut state) = setup();
        let now = Utc::now();
        ingest.handle(&mut state, hello(), now);
        ingest.handle(&mut state, sample(0, 0), now);
        ingest.handle(&mut state, sample(5, 0), now);
        assert_eq!(state.counters.frames_lost, 4);
        for seq in [u64::MAX - 1, u64::MAX] {
            let DeviceMsg::Sample(mut s) = sample(0, 0) else {
                unreachable!()
            };
            s.seq = seq;
            ingest.handle(&mut state, DeviceMsg::Sample(s), now);
        }
        assert_eq!(state.counters.frames_lost, 4);
        assert_eq!(state.counters.sequence_jumps, 1);
    }

    /// One sample with a far-future device time used to shift the chart time of every later
    /// point for good; now it anchors the chart again, and later points sit at their time.
    #[test]
    fn a_device_time_jump_does_not_shift_later_points() {
        let (_dir, mut ingest, mut state) = setup();
        let t0 = Utc::now();
        ingest.handle(&mut state, hello(), t0);
        let at = |seq: u64, time_ms: u64| {
            DeviceMsg::Sample(Sample {
                seq,
                time_ms,
                value: 1.0,
                mean: 0.0,
                std: 1.0,
                z: 1.0,
                flags: Flags(0),
                config_version: 1,
            })
        };
        ingest.handle(&mut state, at(0, 1_000), t0);
        ingest.handle(&mut state, at(1, 1_000 + 86_400_000 * 365), t0);
        let later = t0 + chrono::Duration::seconds(10);
        ingest.handle(&mut state, at(2, 11_000), later);
        let last = state.history.back().map_or(0.0, |p| p.t);
        let expected = later.timestamp_millis() as f64;
        assert!((last - expected).abs() < 2_000.0, "{last} vs {expected}");
        assert_eq!(state.counters.time_jumps, 2, "out to the future and back");
        // A replay runs at any speed: no jumps there.
        let (_dir, mut ingest, mut state) = setup();
        state.live_clock = false;
        ingest.handle(&mut state, hello(), t0);
        ingest.handle(&mut state, at(0, 0), t0);
        ingest.handle(&mut state, at(1, 3_600_000), t0);
        assert_eq!(state.counters.time_jumps, 0);
    }
}
