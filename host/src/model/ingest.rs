//! Ingest: the one place a frame from the device becomes state, a log row, an
//! acknowledgement or a point for the browsers. Pure: no I/O, no clock (the arrival time is
//! given), no JSON; the caller holds the state's lock only while [`State::ingest`] runs, then
//! sends the [`Output`] on (rows to the log writer, acks to the waiting requests).
//!
//! It finds lost frames from sequence gaps (a jump of over a million is a renumbering, not
//! lost frames), notices device resets, anchors device time to the host's clock (again after
//! an implausible jump), keeps the config of every version (for the threshold and window of
//! points judged under it), counts live precision/recall against the source's ground truth,
//! and refuses a device whose hello makes no sense.

use chrono::{DateTime, Utc};
use zscope_core::DetectorConfig;
use zscope_core::wire::{Ack, DeviceMsg, Flags, Hello, Sample};

use super::detector::Method;
use super::point::Point;
use super::record::{ConfigRecord, Entry};
use super::state::{ANOMALY_HISTORY, DeviceInfo, MAX_CLOCK_JUMP_MS, MAX_LOST_AT_ONCE, State};

/// What ingesting frames produced, for the caller to send on once the lock is released.
#[derive(Debug, Default)]
pub struct Output {
    /// Rows for the CSV logs.
    pub log: Vec<Entry>,
    /// Acknowledgements for the requests waiting on them.
    pub acks: Vec<Ack>,
    /// Configs the device took (a good hello, an acknowledgement), for the store.
    pub configs: Vec<ConfigRecord>,
    /// The first point of each anomaly event that started (a run of consecutive flagged
    /// samples is one event), for the notifications.
    pub events: Vec<Point>,
}

impl State {
    /// Apply one message from the device, received at `now`.
    pub fn ingest(&mut self, msg: DeviceMsg, now: DateTime<Utc>, out: &mut Output) {
        match msg {
            DeviceMsg::Hello(hello) => self.hello(&hello, now, out),
            DeviceMsg::Sample(sample) => self.sample(&sample, now, out),
            DeviceMsg::Batch(batch) => {
                if self.refused.is_none() {
                    self.counters.batched += batch.len() as u64;
                }
                for sample in batch.samples() {
                    self.sample(&sample, now, out);
                }
            }
            DeviceMsg::Status(status) => self.device_status = Some(status),
            DeviceMsg::Ack(ack) => {
                if let zscope_core::wire::AckResult::SourceRejected(why) = ack.result {
                    let asked = self
                        .wanted_source
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    self.source_error = Some(format!("source {asked}: the device refused: {why}"));
                }
                self.adopt(
                    ack.config_version,
                    ack.config,
                    ack.result == zscope_core::wire::AckResult::Ok,
                    now,
                    out,
                );
                out.acks.push(ack);
            }
        }
    }

    /// The device runs config `version` (`config`): an acknowledgement said so, or (for a
    /// device another daemon publishes) its config topic. `taken`: the device took it now
    /// (a change to record), rather than kept the one it had.
    pub fn adopt(
        &mut self,
        version: u32,
        config: DetectorConfig,
        taken: bool,
        now: DateTime<Utc>,
        out: &mut Output,
    ) {
        if self.configs.insert(version, config) != Some(config) || self.config_version != version {
            self.config_events += 1;
        }
        self.config_version = version;
        if taken {
            out.configs.push(ConfigRecord {
                host_ms: now.timestamp_millis(),
                version,
                config,
                source: self.source,
                unit: self.unit,
            });
        }
    }

    fn hello(&mut self, hello: &Hello, now: DateTime<Utc>, out: &mut Output) {
        let device = DeviceInfo {
            board: hello.board.to_string(),
            firmware: hello.firmware.to_string(),
            protocol: hello.protocol,
            capacity: hello.capacity,
            season_capacity: hello.season_capacity,
            sample_rate_hz: hello.sample_rate_hz,
            has_truth: hello.simulator.is_some(),
            source: hello.source.to_string(),
            unit: hello.unit.symbol().to_string(),
            sources: hello.sources.iter().map(|s| s.to_string()).collect(),
            max_sensor_hz: hello.sources.max_sensor_hz,
        };
        if self.wanted_source.is_some_and(|w| w == hello.source) {
            self.source_error = None;
        }
        self.source_asked = false;
        self.greet(device, hello.config_version, hello.detector, now, out);
    }

    /// A device said who it is and what it runs: its hello, or (for a device another daemon
    /// publishes) its status. A device whose description makes no sense is refused: its
    /// points are ignored until it says something that does.
    pub fn greet(
        &mut self,
        device: DeviceInfo,
        version: u32,
        config: DetectorConfig,
        now: DateTime<Utc>,
        out: &mut Output,
    ) {
        if let Err(why) = check_device(&device, &config) {
            let why = format!(
                "device {} refused: its hello says {why}; its samples are ignored until it \
                 says hello with values that make sense",
                device.board
            );
            tracing::error!("{why}");
            self.link_error = Some(why.clone());
            self.refused = Some(why);
            self.device = None;
            return;
        }
        // A good hello: whatever the link reported before (a version mismatch, a refusal) is
        // over.
        self.refused = None;
        self.link_error = None;
        if self.device.is_some() {
            // A hello after the first is a reboot, or an answer to a ping: a reboot shows as
            // sequence numbers starting again, which `sample` counts.
            tracing::info!("device {} said hello again", device.board);
        } else {
            tracing::info!(
                "device {} (firmware {}, protocol {}) on {}",
                device.board,
                device.firmware,
                device.protocol,
                self.port
            );
        }
        self.truth = device.has_truth;
        // What it judges, from the names it gave (a gateway's daemon passes them on).
        self.source = zscope_core::source::Source::parse(&device.source).ok();
        self.unit = zscope_core::source::Unit::from_symbol(&device.unit).unwrap_or_default();
        self.device = Some(device);
        self.configs.insert(version, config);
        self.config_version = version;
        self.config_events += 1;
        out.configs.push(ConfigRecord {
            host_ms: now.timestamp_millis(),
            version,
            config,
            source: self.source,
            unit: self.unit,
        });
    }

    fn sample(&mut self, s: &Sample, now: DateTime<Utc>, out: &mut Output) {
        if self.refused.is_some() {
            self.counters.refused_samples += 1;
            return;
        }
        let now_ms = now.timestamp_millis() as f64;
        let lost_before = self.sequence(s.seq);
        // Chart time: the device's clock, anchored to the host's at the first sample of a
        // connection (or after a restart), never going backwards.
        let (dev0, host0) = *self
            .anchor
            .get_or_insert((s.time_ms, now_ms.max(self.last_t)));
        let mut t = host0 + s.time_ms as f64 - dev0 as f64;
        if self.live_clock && (t - now_ms).abs() > MAX_CLOCK_JUMP_MS {
            // The device's clock jumped (or one frame carried a wild time): anchor again here,
            // rather than shift every later point (or leave them behind).
            self.counters.time_jumps += 1;
            self.anchor = Some((s.time_ms, now_ms.max(self.last_t)));
            t = now_ms;
        }
        let t = t.max(self.last_t);
        self.last_t = t;

        let config = self
            .configs
            .get(&s.config_version)
            .copied()
            .or(self.config());
        let point = Point::from_sample(
            s,
            t,
            config.map_or(f32::NAN, |c| c.threshold),
            config.map_or(0, |c| c.window),
            lost_before,
        );
        self.keep(point, now, out);
    }

    /// Count what sequence number `seq` says: a jump forward is lost frames (up to a million
    /// at once: beyond, a renumbering); going back is a device restart. The frames lost just
    /// before it.
    fn sequence(&mut self, seq: u64) -> u64 {
        let lost_before = match self.next_seq {
            Some(next) if seq > next && seq - next > MAX_LOST_AT_ONCE => {
                self.counters.sequence_jumps += 1;
                0
            }
            Some(next) if seq > next => seq - next,
            Some(next) if seq < next => {
                self.counters.device_restarts += 1;
                self.anchor = None;
                0
            }
            _ => 0,
        };
        self.next_seq = Some(seq.saturating_add(1));
        self.counters.frames_lost = self.counters.frames_lost.saturating_add(lost_before);
        lost_before
    }

    /// Points another daemon judged and published, in its order: each is kept as it is (its
    /// chart time never before the last point's) but for the frames lost before it, which are
    /// what this daemon's sequence numbers say (those the device's link lost, and those lost
    /// on the way here), and a time more than a minute ahead of this host's clock (a gateway's
    /// wild clock, or a forged message), which is counted as a time jump and taken as now:
    /// one such point never holds every later one back at its time.
    pub fn take_points(
        &mut self,
        points: impl IntoIterator<Item = Point>,
        now: DateTime<Utc>,
        out: &mut Output,
    ) {
        for mut point in points {
            if self.refused.is_some() {
                self.counters.refused_samples += 1;
                continue;
            }
            point.lost_before = self.sequence(point.seq);
            let now_ms = now.timestamp_millis() as f64;
            if point.t.is_nan() || point.t > now_ms + MAX_CLOCK_JUMP_MS {
                self.counters.time_jumps += 1;
                point.t = now_ms;
            }
            point.t = point.t.max(self.last_t);
            self.last_t = point.t;
            self.keep(point, now, out);
        }
    }

    /// Count, log and keep one judged point, received at `now`.
    fn keep(&mut self, point: Point, now: DateTime<Utc>, out: &mut Output) {
        let now_ms = now.timestamp_millis() as f64;
        let flags = Flags(point.flags);
        let anomaly = point.is_anomaly();
        let judged = !flags.contains(Flags::WARMING_UP) && !flags.contains(Flags::INVALID);

        self.counters.samples += 1;
        if anomaly {
            self.counters.anomalies += 1;
            // A run of consecutive flagged samples is one event.
            if self.last_flagged != point.seq.checked_sub(1) || point.seq == 0 {
                self.counters.events += 1;
                out.events.push(point);
            }
            self.last_flagged = Some(point.seq);
        }
        if self.truth && judged {
            let q = &mut self.quality;
            match (anomaly, point.is_truth()) {
                (true, true) => q.true_positives += 1,
                (true, false) => q.false_positives += 1,
                (false, true) => q.false_negatives += 1,
                (false, false) => {}
            }
            *q = q.finish();
        }
        self.rate_window.push_back(now_ms);
        while self
            .rate_window
            .front()
            .is_some_and(|t0| now_ms - t0 > 1000.0)
        {
            self.rate_window.pop_front();
        }
        self.rate = self.rate_window.len() as f64;

        out.log.push(Entry {
            point,
            host_ms: match self.data_time {
                true => point.t as i64,
                false => now.timestamp_millis(),
            },
            truth: self.truth,
            source: self.source,
            unit: self.unit,
            detector: self
                .configs
                .get(&point.config_version)
                .map(|c| Method::of(c.baseline)),
        });
        if anomaly {
            if self.anomalies.len() == ANOMALY_HISTORY {
                self.anomalies.pop_front();
            }
            self.anomalies.push_back(point);
            self.count_anomaly_minute(point.t);
        }
        if self.history.len() >= self.history_cap {
            self.history.pop_front();
            self.history_dropped += 1;
        }
        self.history.push_back(point);
        if self.outbox.is_empty() {
            self.outbox_since_us = Some(now.timestamp_micros());
            self.outbox_start = self.history_end() - 1;
        }
        self.outbox.push(point);
    }
}

/// Whether a device's hello makes sense: capacities, and a detector config it could run.
fn check_device(d: &DeviceInfo, config: &DetectorConfig) -> Result<(), String> {
    if d.capacity < 2 {
        return Err(format!("a window capacity of {}", d.capacity));
    }
    config
        .validate_for(d.capacity as usize, d.season_capacity as usize)
        .map_err(|e| format!("a detector config it cannot hold: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::HISTORY;
    use zscope_core::SimConfig;
    use zscope_core::device::Responder;
    use zscope_core::wire::name;

    fn hello() -> DeviceMsg {
        let detector = crate::model::detector::detector(DetectorConfig::default()).unwrap();
        DeviceMsg::Hello(Responder::new().hello(
            &detector,
            name("0.1.0"),
            name("test"),
            50,
            Some(SimConfig::default()),
            &zscope_core::device::Origin::simulator(),
        ))
    }

    fn sample(seq: u64, flags: u8) -> DeviceMsg {
        DeviceMsg::Sample(Sample {
            seq,
            time_ms: seq * 20,
            value: 1.0,
            mean: 0.0,
            std: 0.25,
            z: 4.0,
            score: 0.6,
            flags: Flags(flags),
            config_version: 1,
        })
    }

    /// Ingest with its output collected.
    struct Ingest(Output);

    impl Ingest {
        fn handle(&mut self, state: &mut State, msg: DeviceMsg, now: DateTime<Utc>) -> Vec<Ack> {
            let before = self.0.acks.len();
            state.ingest(msg, now, &mut self.0);
            self.0.acks[before..].to_vec()
        }
    }

    fn setup() -> ((), Ingest, State) {
        ((), Ingest(Output::default()), State::new("test".into()))
    }

    #[test]
    fn gaps_restarts_quality_and_logs() {
        let (_, mut ingest, mut state) = setup();
        let now = Utc::now();
        ingest.handle(&mut state, hello(), now);
        ingest.handle(&mut state, sample(0, 0), now);
        ingest.handle(&mut state, sample(1, Flags::ANOMALY | Flags::TRUTH), now);
        ingest.handle(&mut state, sample(5, Flags::ANOMALY), now); // 3 lost
        ingest.handle(&mut state, sample(6, Flags::TRUTH), now); // missed
        ingest.handle(&mut state, sample(0, Flags::WARMING_UP | Flags::TRUTH), now); // restart
        assert_eq!(state.counters().samples, 5);
        assert_eq!(state.counters().anomalies, 2);
        assert_eq!(state.counters().frames_lost, 3);
        assert_eq!(state.counters().device_restarts, 1);
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

        // One log row a sample, each with the truth column (a simulator), the config that
        // judged it, and its lost frames.
        let log = &ingest.0.log;
        assert_eq!(log.len(), 5);
        let row = crate::model::point::Row::new(&log[2].point, log[2].host_ms, log[2].truth);
        assert_eq!(
            (row.seq, row.device_time_ms, row.threshold, row.window),
            (5, 100, DetectorConfig::ADAPTIVE_THRESHOLD, 64)
        );
        assert_eq!((row.anomaly, row.truth, row.lost_before), (1, Some(0), 3));
        assert_eq!(log.iter().filter(|e| e.point.is_anomaly()).count(), 2);
    }

    #[test]
    fn a_central_daemon_keeps_what_the_gateway_kept() {
        // The gateway ingests frames; the central daemon takes the points it published (in
        // two batches) and the hello its status tells: the two see the same device.
        let (_, mut ingest, mut gateway) = setup();
        let now = Utc::now();
        ingest.handle(&mut gateway, hello(), now);
        for (seq, flags) in [
            (0, 0),
            (1, Flags::ANOMALY | Flags::TRUTH),
            (2, Flags::ANOMALY),
            (5, Flags::ANOMALY),                   // 2 lost
            (6, Flags::TRUTH),                     // missed
            (0, Flags::WARMING_UP | Flags::TRUTH), // restart
            (1, 0),
        ] {
            ingest.handle(&mut gateway, sample(seq, flags), now);
        }
        let published = gateway.take_outbox();

        let mut central = State::new("mqtt://broker/zscope/test".into());
        let mut out = Output::default();
        let device = gateway.device.clone().unwrap();
        let version = gateway.config_version;
        let config = gateway.config().unwrap();
        central.greet(device.clone(), version, config, now, &mut out);
        central.take_points(published[..3].iter().copied(), now, &mut out);
        central.take_points(published[3..].iter().copied(), now, &mut out);

        assert_eq!(central.device, Some(device));
        assert_eq!(central.config(), Some(config));
        assert_eq!(out.configs.len(), 1);
        assert_eq!(central.history, gateway.history);
        assert_eq!(central.anomalies, gateway.anomalies);
        let (c, g) = (central.counters(), gateway.counters());
        assert_eq!(
            (
                c.samples,
                c.anomalies,
                c.events,
                c.frames_lost,
                c.device_restarts
            ),
            (
                g.samples,
                g.anomalies,
                g.events,
                g.frames_lost,
                g.device_restarts
            )
        );
        assert_eq!(
            (c.samples, c.events, c.frames_lost, c.device_restarts),
            (7, 2, 2, 1)
        );
        assert_eq!(central.quality, gateway.quality);
        assert_eq!(out.log.len(), 7);
        assert_eq!(out.events.len(), 2);
        let logged: Vec<Point> = out.log.iter().map(|e| e.point).collect();
        assert_eq!(logged, published);

        // A description that makes no sense is refused, and its points with it.
        let mut refused = State::new("elsewhere".into());
        let nonsense = DeviceInfo {
            capacity: 1,
            ..central.device.clone().unwrap()
        };
        refused.greet(nonsense, version, config, now, &mut out);
        refused.take_points(published.iter().copied(), now, &mut out);
        assert!(refused.history.is_empty());
        assert_eq!(refused.counters().refused_samples, 7);

        // A point lost on the way (seq 1 of the first run) is counted here as well.
        let mut lossy = State::new("mqtt://broker/zscope/test".into());
        let device = central.device.clone().unwrap();
        lossy.greet(device, version, config, now, &mut out);
        let arrived = published.iter().enumerate().filter(|&(i, _)| i != 1);
        lossy.take_points(arrived.map(|(_, p)| *p), now, &mut out);
        assert_eq!(lossy.counters().frames_lost, 3);
        assert_eq!(lossy.history[1].lost_before, 1);
        assert_eq!(lossy.history[2].lost_before, 2);
    }

    #[test]
    fn a_published_point_stamped_a_day_ahead_holds_nothing_back() {
        let (_, mut ingest, mut gateway) = setup();
        let now = Utc::now();
        ingest.handle(&mut gateway, hello(), now);
        for seq in 0..4 {
            ingest.handle(&mut gateway, sample(seq, 0), now);
        }
        let mut points = gateway.take_outbox();
        let day = 86_400_000.0;
        points[1].t += day;
        points[2].t = f64::NAN;
        let mut central = State::new("remote".into());
        let mut out = Output::default();
        let device = gateway.device.clone().unwrap();
        let config = gateway.config().unwrap();
        central.greet(device, 1, config, now, &mut out);
        central.take_points(points.iter().copied(), now, &mut out);
        let now_ms = now.timestamp_millis() as f64;
        assert_eq!(central.counters().time_jumps, 2);
        assert_eq!(central.history.len(), 4, "every point kept");
        assert!(
            central.history.iter().all(|p| p.t <= now_ms + 1000.0),
            "{:?}",
            central
                .history
                .iter()
                .map(|p| p.t - now_ms)
                .collect::<Vec<_>>()
        );
        assert!(
            central
                .history
                .iter()
                .zip(central.history.iter().skip(1))
                .all(|(a, b)| a.t <= b.t)
        );
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
            vec![ack]
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
        assert_eq!(got.seq.first(), Some(&10));
        assert_eq!(got.seq.last(), Some(&20));
        assert_eq!(got.t.len(), got.value.len());
        let latest = state.range(first, first + 1e9, 7);
        assert_eq!(latest.seq, (93..100).collect::<Vec<_>>());
    }

    /// The overview: anomalies in the last minute and hour, and a sparkline where a single
    /// spike survives as its column's max.
    #[test]
    fn the_overview_counts_recent_anomalies_and_keeps_spikes() {
        let (_dir, mut ingest, mut state) = setup();
        let t0 = Utc::now();
        ingest.handle(&mut state, hello(), t0);
        // Two minutes at 50 points/s; every 100th flagged; one spike.
        for seq in 0..6000 {
            let DeviceMsg::Sample(mut s) = sample(seq, 0) else {
                unreachable!()
            };
            if seq % 100 == 0 {
                s.flags = Flags(Flags::ANOMALY);
            }
            if seq == 5500 {
                s.value = 40.0;
            }
            let at = t0 + chrono::Duration::milliseconds(seq as i64 * 20);
            ingest.handle(&mut state, DeviceMsg::Sample(s), at);
        }
        let now = state.history.back().unwrap().t + 1.0;
        let o = state.overview(now);
        assert_eq!(o.anomalies_last_minute, 30);
        assert_eq!(o.anomalies_last_hour, 60);
        assert_eq!(o.spark.len(), super::super::state::SPARK);
        assert!(o.spark.iter().all(Option::is_some), "{:?}", o.spark);
        let highest = o
            .spark
            .iter()
            .flatten()
            .map(|(_, hi)| *hi)
            .fold(0.0, f32::max);
        assert_eq!(highest, 40.0, "the spike survives");
        // An hour later, nothing is recent.
        let o = state.overview(now + 3_700_000.0);
        assert_eq!((o.anomalies_last_minute, o.anomalies_last_hour), (0, 0));
        assert!(o.spark.iter().all(Option::is_none));
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
            (state.counters().samples, state.counters().refused_samples),
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
        assert_eq!(state.counters().samples, 1);
    }

    /// One wild sequence number is a renumbering, not 9.2e18 lost frames; counts cannot wrap.
    #[test]
    fn a_wild_sequence_jump_is_not_counted_as_lost_frames() {
        let (_dir, mut ingest, mut state) = setup();
        let now = Utc::now();
        ingest.handle(&mut state, hello(), now);
        ingest.handle(&mut state, sample(0, 0), now);
        ingest.handle(&mut state, sample(5, 0), now);
        assert_eq!(state.counters().frames_lost, 4);
        for seq in [u64::MAX - 1, u64::MAX] {
            let DeviceMsg::Sample(mut s) = sample(0, 0) else {
                unreachable!()
            };
            s.seq = seq;
            ingest.handle(&mut state, DeviceMsg::Sample(s), now);
        }
        assert_eq!(state.counters().frames_lost, 4);
        assert_eq!(state.counters().sequence_jumps, 1);
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
                score: 0.3,
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
        assert_eq!(state.counters().time_jumps, 2, "out to the future and back");
        // A replay runs at any speed: no jumps there.
        let (_dir, mut ingest, mut state) = setup();
        state.set_replay();
        ingest.handle(&mut state, hello(), t0);
        ingest.handle(&mut state, at(0, 0), t0);
        ingest.handle(&mut state, at(1, 3_600_000), t0);
        assert_eq!(state.counters().time_jumps, 0);
    }

    /// A range of the history is taken in pieces by number, and numbers stay valid as old
    /// points are dropped: a reader that fell behind starts at the oldest still kept.
    #[test]
    fn the_history_is_read_in_numbered_pieces() {
        let (_, mut ingest, mut state) = setup();
        let now = Utc::now();
        ingest.handle(&mut state, hello(), now);
        for seq in 0..10 {
            ingest.handle(&mut state, sample(seq, 0), now);
        }
        assert_eq!(state.history_end(), 10);
        let (first, next) = state.history_chunk(6, 10, 3);
        assert_eq!((first.seq.as_slice(), next), (&[6, 7, 8][..], 9));
        let (rest, next) = state.history_chunk(next, 10, 3);
        assert_eq!((rest.seq.as_slice(), next), (&[9][..], 10));
        assert!(state.history_chunk(next, 10, 3).0.seq.is_empty());
        // A full history drops its oldest: numbers go on, the dropped are skipped.
        for seq in 10..(HISTORY as u64 + 5) {
            ingest.handle(&mut state, sample(seq, 0), now);
        }
        assert_eq!(state.history_end(), HISTORY as u64 + 5);
        let (from_gone, next) = state.history_chunk(0, 20, 4);
        assert_eq!((from_gone.seq.as_slice(), next), (&[5, 6, 7, 8][..], 9));
        let (end, next) = state.history_chunk(HISTORY as u64 + 3, u64::MAX, 400);
        assert_eq!(end.seq.len(), 2);
        assert_eq!(next, HISTORY as u64 + 5);
    }
}
