//! The device application: simulate or take readings, detect, frame, send; and answer the
//! host's commands.
//!
//! [`App`] is sans-IO like the core: the caller hands it the time, the bytes received and (for
//! a sensor or a signal of the firmware's own) each reading, and takes bytes to send from its
//! transmit queue. [`poll`] is the one main-loop step every build
//! runs, generic over the serial line (`embedded-io` `Read + ReadReady + Write + WriteReady`)
//! and a millisecond [`Clock`]: the Nucleo board, QEMU and host emulation differ only in what
//! they pass to it.
//!
//! # Timing and back-pressure
//!
//! At `rate_hz > 0`, sample `k` is due at `base + k·1000/rate` ms and carries that time, so the
//! stream is the same whatever the loop's jitter. A sample whose frame does not fit the transmit
//! queue (the link is slower than the rate) is judged and counted as **dropped** in the next
//! status frame instead of stalling the loop; its sequence number is skipped, so the host sees
//! the gap. Should the loop itself fall more than a second behind (a rate the CPU cannot keep
//! up with), the app skips to the present and counts the skipped samples as dropped too. At
//! `rate_hz = 0` the app makes a sample whenever the queue has room for it: as fast
//! as the link carries, never dropping, each stamped with the clock.
//!
//! Frames from the device to the host never wait on each other beyond the queue: a status or an
//! acknowledgement always has room reserved, so commands are answered even when samples are
//! being dropped.
//!
//! # Sources
//!
//! The app judges its [`Source`]: the simulator (made here, on the schedule above), or readings
//! the caller hands in ([`App::reading`] for a sensor sampled on the board's timer at the rate
//! in force, stamped with its scheduled time; [`App::reading_at`] for values with times of the
//! firmware's own). Which sources a board has is [`Settings::sources`]; the host switches
//! between them with `SetSource`, refused with the reason when the board lacks the source or
//! cannot sample it at the rate in force. A board asks [`App::sensor`] what to sample and at
//! what rate after every step, and reports readings the sensor failed to give with
//! [`App::set_sensor_errors`].
//!
//! # One frame per sample, or batches
//!
//! A [`Sample`] frame (34 bytes) per sample carries everything the detector said, but a
//! 115 200-baud line takes only 338 of them a second. When the rate needs more than half the
//! link that way (above 169 samples/s at 115 200 baud, 1 355 at 921 600), or at "as fast as
//! the link carries", the app sends [`Batch`](zscope_core::wire::Batch) frames instead
//! ([`Encoding::Auto`], the default; [`Settings::encoding`] can force either). Then each value
//! is put on a grid of `2^scale` before the detector judges it, so the host rebuilds exactly
//! the value judged ([`zscope_core::compact`]).
//!
//! A batch goes out when it is full, when the next sample does not continue it (a new config
//! version, a rate change, a gap), or **as soon as the transmit queue is empty**: an idle link
//! sends each sample at once, and a busy one lets the batch grow while the frame before it is
//! on the wire. Batches therefore grow just enough for the link to keep up, and a sample waits
//! at most about one frame's transmission time beyond its own.

use heapless::Deque;
use zscope_core::compact::{Batcher, Timing};
use zscope_core::device::{Change, Origin, Responder};
use zscope_core::source::{Source, Sources, Unit};
use zscope_core::wire::{
    self, AckResult, Decoder, DeviceMsg, Hello, HostMsg, MAX_FRAME, Sample, Status, name,
};
use zscope_core::{Class, Detector, DetectorConfig, SimConfig, Simulator};

/// Window capacity compiled in: the largest window a `SetConfig` may ask for.
pub const CAPACITY: usize = 1024;
/// Season capacity compiled in: the longest seasonal period a `SetConfig` may ask for, and the
/// adaptive detector's scratch space while it looks for a period (1200 values and 600 lags
/// for the default learning phase of 600).
pub const SEASON_CAPACITY: usize = 2048;
/// Bytes the transmit queue holds (about 45 sample frames, or 130 ms at 115 200 baud).
pub const TX_QUEUE: usize = 1536;
/// Room always kept free in the queue for status frames and acknowledgements.
const CONTROL_RESERVE: usize = 2 * MAX_FRAME;
/// Highest sample rate a `SetRate` may ask for.
pub const MAX_RATE_HZ: u32 = 100_000;
/// A status frame goes out this often.
pub const STATUS_PERIOD_MS: u64 = 1000;
/// Samples made in one [`App::tick`] at most, so the loop keeps serving the line.
const BURST: u32 = 64;
/// The firmware's version, as the hello reports it.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A millisecond clock: the only time source the app has.
pub trait Clock {
    /// Milliseconds since some fixed start; never goes backwards.
    fn now_ms(&mut self) -> u64;
}

/// Bytes of a typical sample frame (sample 1000 at 20 s).
pub const SAMPLE_FRAME: u64 = 34;

/// How samples go on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// One frame per sample while that takes at most half the link, batches above (and at
    /// "as fast as the link carries").
    #[default]
    Auto,
    /// Always one frame per sample.
    Frames,
    /// Always batches.
    Batches,
}

impl Encoding {
    /// Whether samples at `rate_hz` (0: as fast as the link carries) go in batches over a
    /// link of `baud` (8N1: `baud / 10` bytes a second).
    pub fn batches(self, rate_hz: u32, baud: u32) -> bool {
        match self {
            Encoding::Frames => false,
            Encoding::Batches => true,
            Encoding::Auto => {
                rate_hz == 0 || u64::from(rate_hz) * SAMPLE_FRAME * 2 > u64::from(baud) / 10
            }
        }
    }
}

/// How a device is set up at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Board name for the hello, e.g. `nucleo-f401re`.
    pub board: &'static str,
    /// Samples per second, 0 for as fast as the link carries.
    pub rate_hz: u32,
    /// The detector's config at boot.
    pub detector: DetectorConfig,
    /// The simulated stream.
    pub simulator: SimConfig,
    /// The serial line's baud rate, for [`Encoding::Auto`]'s choice.
    pub link_baud: u32,
    /// One frame per sample, batches, or whichever the rate needs.
    pub encoding: Encoding,
    /// Batched values are multiples of `2^scale`: a sensor's resolution. `None`: from the
    /// source (a sixteenth of the simulator's sigma, a fraction of an ADC step).
    pub scale: Option<i8>,
    /// The source judged at boot.
    pub source: Source,
    /// The sources the board has (the simulator only unless the board says otherwise).
    pub sources: Sources,
    /// The unit of an [`Source::External`] source's values (the others have their own).
    pub external_unit: Unit,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            board: "unknown",
            rate_hz: 50,
            detector: DetectorConfig::default(),
            simulator: SimConfig::default(),
            link_baud: 115_200,
            encoding: Encoding::Auto,
            scale: None,
            source: Source::Simulator,
            sources: Sources::simulator(),
            external_unit: Unit::None,
        }
    }
}

/// The grid batched values of `source` are put on: `2^scale`. A 12-bit ADC step is 0.8 mV
/// over 3.3 V (and a third of a degree on the temperature sensor): the grids are finer than a
/// step, so oversampled averages keep their extra resolution.
pub fn source_scale(source: Source, sim: &SimConfig) -> i8 {
    match source {
        Source::Simulator | Source::External => scale_for(sim),
        // 2^-14 V = 0.06 mV.
        Source::Adc(_) => -14,
        // 2^-8 °C = 0.004 °C.
        Source::Temperature => -8,
    }
}

/// What a board samples and how often: what [`App::sensor`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sensing {
    /// The sensor source in force (`Temperature` or `Adc`), `None` when the board need not
    /// sample anything (the simulator, or readings of the firmware's own).
    pub source: Option<Source>,
    /// Readings per second.
    pub rate_hz: u32,
    /// Goes up by one whenever the source or rate changes: a reading taken under an older
    /// generation is stale.
    pub generation: u32,
}

/// The grid for a simulated stream: the largest power of two within `sigma / 16` (a
/// quantisation error of at most a 32nd of the noise), or within a 4096th of its range
/// without noise.
pub fn scale_for(sim: &SimConfig) -> i8 {
    let spread = if sim.sigma > 0.0 {
        sim.sigma / 16.0
    } else {
        (sim.offset.abs() + sim.amplitude.abs()) / 4096.0
    };
    if !(spread.is_normal() && spread > 0.0) {
        return -10;
    }
    // The exponent of a normal f32 is floor(log2(x)).
    let exponent = ((spread.to_bits() >> 23) & 0xff) as i32 - 127;
    exponent.clamp(-60, 60) as i8
}

/// Why [`App::new`] refused its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetupError {
    /// The detector config does not fit.
    Detector(zscope_core::ConfigError),
    /// The simulator config is invalid.
    Simulator(zscope_core::SimConfigError),
    /// The rate is above [`MAX_RATE_HZ`].
    Rate(u32),
    /// The board has no such source, or cannot sample it at the rate.
    Source(zscope_core::source::Refusal),
}

/// The device application.
pub struct App {
    board: &'static str,
    detector: Detector<f32, CAPACITY, SEASON_CAPACITY>,
    simulator: Simulator,
    /// Config version and command handling (shared with the host's replay).
    device: Responder,
    rate_hz: u32,
    /// Schedule origin: sample `base_seq` is due at `base_ms`.
    base_ms: u64,
    base_seq: u64,
    /// Sequence number of the next sample.
    seq: u64,
    next_status_ms: u64,
    status: Status,
    tx: Deque<u8, TX_QUEUE>,
    rx: Decoder,
    /// Frames from the host that failed to decode.
    rx_frame_errors: u32,
    /// Bytes the serial line itself lost (e.g. UART overruns), as the board reports them.
    link_overruns: u32,
    booted: bool,
    link_baud: u32,
    encoding: Encoding,
    batcher: Batcher,
    source: Source,
    sources: Sources,
    external_unit: Unit,
    /// Readings the sensor failed to give, as the board counts them.
    sensor_errors: u32,
    generation: u32,
    scale: Option<i8>,
    /// Timer slots since the schedule's start whose reading failed (no sample).
    faults_since_base: u64,
}

impl App {
    /// An app that has not sent anything yet; [`App::boot`] starts it.
    pub fn new(settings: Settings) -> Result<Self, SetupError> {
        if settings.rate_hz > MAX_RATE_HZ {
            return Err(SetupError::Rate(settings.rate_hz));
        }
        if let Some(refusal) = settings.sources.refusal(settings.source, settings.rate_hz) {
            return Err(SetupError::Source(refusal));
        }
        Ok(App {
            board: settings.board,
            detector: Detector::new(settings.detector).map_err(SetupError::Detector)?,
            simulator: Simulator::new(settings.simulator).map_err(SetupError::Simulator)?,
            device: Responder::new(),
            rate_hz: settings.rate_hz,
            base_ms: 0,
            base_seq: 0,
            seq: 0,
            next_status_ms: STATUS_PERIOD_MS,
            status: Status::default(),
            tx: Deque::new(),
            rx: Decoder::new(),
            rx_frame_errors: 0,
            link_overruns: 0,
            booted: false,
            link_baud: settings.link_baud,
            encoding: settings.encoding,
            batcher: Batcher::new(
                settings
                    .scale
                    .unwrap_or_else(|| source_scale(settings.source, &settings.simulator)),
            ),
            source: settings.source,
            sources: settings.sources,
            external_unit: settings.external_unit,
            sensor_errors: 0,
            generation: 0,
            scale: settings.scale,
            faults_since_base: 0,
        })
    }

    /// What the board must sample now, at what rate, and the generation of that choice.
    pub fn sensor(&self) -> Sensing {
        Sensing {
            source: self.source.is_sensor().then_some(self.source),
            rate_hz: self.rate_hz,
            generation: self.generation,
        }
    }

    /// The source in force.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Tell the app how many readings the sensor has failed to give so far (a conversion that
    /// never ended, an overrun, a reading that makes no sense): reported in the status frame.
    pub fn set_sensor_errors(&mut self, total: u32) {
        self.sensor_errors = total;
    }

    /// `n` readings of the sensor were taken but lost before the app got them (the loop was
    /// behind): counted as dropped, and their sequence numbers skipped so the host sees the
    /// gap.
    pub fn missed(&mut self, n: u64) {
        self.status.dropped += n;
        self.seq += n;
    }

    /// Judge a reading of the sensor in force, taken on the board's timer: it is stamped with
    /// its scheduled time (`k / rate` after the schedule's start), so the stream's times are the
    /// timer's, whatever the main loop's jitter. Ignored unless the source is a sensor.
    pub fn reading(&mut self, value: f32) {
        if !self.source.is_sensor() || self.rate_hz == 0 || !self.booted {
            return;
        }
        let k = self.seq - self.base_seq + self.faults_since_base;
        let time_ms = self.base_ms + k * 1000 / u64::from(self.rate_hz);
        self.judge(time_ms, value, false);
    }

    /// The sensor failed to give the reading of its next timer slot: no sample, and the next
    /// reading keeps its own slot's time. (Count it in [`App::set_sensor_errors`] too.)
    pub fn sensor_fault(&mut self) {
        if self.source.is_sensor() {
            self.faults_since_base += 1;
        }
    }

    /// Judge a value of the firmware's own, taken at `time_ms` (its clock, in milliseconds).
    /// Ignored unless the source is [`Source::External`].
    pub fn reading_at(&mut self, time_ms: u64, value: f32) {
        if self.source != Source::External {
            return;
        }
        if !self.booted {
            self.boot(time_ms);
        }
        self.judge(time_ms, value, false);
    }

    /// Whether samples go in batches now.
    pub fn batching(&self) -> bool {
        self.encoding.batches(self.rate_hz, self.link_baud)
    }

    /// Queue a delimiter (so a receiver drops any partial frame) and the hello; start the
    /// schedule at `now_ms`.
    pub fn boot(&mut self, now_ms: u64) {
        let _ = self.tx.push_back(0);
        self.queue_hello();
        self.base_ms = now_ms;
        self.base_seq = self.seq;
        self.next_status_ms = now_ms + STATUS_PERIOD_MS;
        self.booted = true;
    }

    /// The detector config in force and its version.
    pub fn config(&self) -> (u32, DetectorConfig) {
        (self.device.config_version, *self.detector.config())
    }

    /// Counters as the next status frame will report them.
    pub fn status(&self) -> Status {
        Status {
            rx_errors: self.rx_frame_errors.wrapping_add(self.link_overruns),
            config_version: self.device.config_version,
            source: self.source,
            sensor_errors: self.sensor_errors,
            ..self.status
        }
    }

    /// Tell the app how many received bytes the line has lost so far (reported with the
    /// undecodable frames as `rx_errors`).
    pub fn set_link_overruns(&mut self, total: u32) {
        self.link_overruns = total;
    }

    /// The samples per second in force (0: as fast as the link carries).
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    fn hello(&self) -> Hello {
        self.device.hello(
            &self.detector,
            name(FIRMWARE_VERSION),
            name(self.board),
            self.rate_hz,
            (self.source == Source::Simulator).then(|| *self.simulator.config()),
            &Origin {
                sources: self.sources.clone(),
                source: self.source,
                unit: match self.source {
                    Source::External => self.external_unit,
                    source => source.unit(),
                },
            },
        )
    }

    fn queue_hello(&mut self) {
        self.queue(&DeviceMsg::Hello(self.hello()), true);
    }

    /// Frame `msg` into the transmit queue. Data frames (samples) must leave the control
    /// reserve free; control frames may use it. Returns whether it was queued.
    fn queue(&mut self, msg: &DeviceMsg, control: bool) -> bool {
        let mut frame = [0u8; MAX_FRAME];
        let Ok(n) = wire::encode(msg, &mut frame) else {
            return false;
        };
        let free = TX_QUEUE - self.tx.len();
        let needed = if control { n } else { n + CONTROL_RESERVE };
        if free < needed {
            return false;
        }
        for b in &frame[..n] {
            // Cannot fail: room was checked above.
            let _ = self.tx.push_back(*b);
        }
        self.status.frames_sent += 1;
        true
    }

    /// Feed bytes received from the host; commands take effect at once and are acknowledged.
    pub fn receive(&mut self, mut bytes: &[u8], now_ms: u64) {
        while let Some(result) = self.rx.next_message::<HostMsg>(&mut bytes) {
            match result {
                Ok(cmd) => {
                    self.status.commands = self.status.commands.wrapping_add(1);
                    self.execute(cmd, now_ms);
                }
                Err(_) => self.rx_frame_errors = self.rx_frame_errors.wrapping_add(1),
            }
        }
    }

    fn execute(&mut self, cmd: HostMsg, now_ms: u64) {
        // What is batched was judged before the command: it goes first.
        self.send_batch();
        let (rate_hz, base_ms, base_seq, seq) = (
            &mut self.rate_hz,
            &mut self.base_ms,
            &mut self.base_seq,
            self.seq,
        );
        let (source, sources, generation, faults) = (
            &mut self.source,
            &self.sources,
            &mut self.generation,
            &mut self.faults_since_base,
        );
        let (ack, hello) = self.device.execute(&mut self.detector, cmd, |change| {
            match change {
                Change::Rate(hz) if hz > MAX_RATE_HZ => {
                    return AckResult::RateRejected {
                        hz,
                        max: MAX_RATE_HZ,
                    };
                }
                Change::Rate(hz)
                    if source.is_sensor() && (hz == 0 || hz > sources.max_sensor_hz) =>
                {
                    return AckResult::RateRejected {
                        hz,
                        max: sources.max_sensor_hz,
                    };
                }
                Change::Rate(hz) => *rate_hz = hz,
                Change::Source(new) => {
                    if let Some(refusal) = sources.refusal(new, *rate_hz) {
                        return AckResult::SourceRejected(refusal);
                    }
                    *source = new;
                }
            }
            *generation = generation.wrapping_add(1);
            *base_ms = now_ms;
            *base_seq = seq;
            *faults = 0;
            AckResult::Ok
        });
        if matches!(cmd, HostMsg::SetSource { .. }) && ack.result == AckResult::Ok {
            // Another signal, another grid: the batch before the change went out above.
            let scale = self
                .scale
                .unwrap_or_else(|| source_scale(self.source, self.simulator.config()));
            self.batcher = Batcher::new(scale);
        }
        self.queue(&DeviceMsg::Ack(ack), true);
        if hello {
            self.queue_hello();
        }
    }

    /// Make the samples due at `now_ms`, and the status frame when due.
    pub fn tick(&mut self, now_ms: u64) {
        if !self.booted {
            self.boot(now_ms);
        }
        if self.source != Source::Simulator {
            // Readings come from the board (App::reading) or the firmware (App::reading_at).
        } else if self.rate_hz == 0 {
            let mut made = 0;
            while made < BURST && TX_QUEUE - self.tx.len() >= 2 * CONTROL_RESERVE {
                self.sample(now_ms);
                made += 1;
            }
        } else {
            let rate = self.rate_hz as u64;
            let due = self.base_seq + now_ms.saturating_sub(self.base_ms) * rate / 1000;
            if due > self.seq + rate {
                // More than a second behind (the CPU cannot keep up): skip ahead, and say so.
                let skipped = due - self.seq;
                self.status.dropped += skipped;
                self.seq = due;
            }
            let mut made = 0;
            while self.seq <= due && made < BURST {
                let k = self.seq - self.base_seq;
                let time_ms = self.base_ms + k * 1000 / rate;
                self.sample(time_ms);
                made += 1;
            }
        }
        if self.tx.is_empty() {
            // The link is idle: what is batched goes now rather than wait for more.
            self.send_batch();
        }
        if now_ms >= self.next_status_ms {
            self.next_status_ms = now_ms + STATUS_PERIOD_MS;
            self.status.time_ms = now_ms;
            let status = DeviceMsg::Status(self.status());
            self.queue(&status, true);
        }
    }

    /// Simulate one sample and judge it.
    fn sample(&mut self, time_ms: u64) {
        let s = self.simulator.next_sample();
        self.judge(time_ms, s.value, s.truth.is_anomaly());
    }

    /// Judge one value and queue its sample (or count it dropped), or add it to the batch.
    fn judge(&mut self, time_ms: u64, value: f32, truth: bool) {
        let batching = self.batching();
        let value = if batching {
            self.batcher.quantise(value)
        } else {
            value
        };
        let verdict = self.detector.update(value);
        self.status.samples += 1;
        if verdict.class == Class::Anomaly {
            self.status.anomalies += 1;
        }
        let (seq, version) = (self.seq, self.device.config_version);
        self.seq += 1;
        if batching {
            let at = Timing {
                time_ms,
                rate_hz: self.rate_hz,
                phase: match self.rate_hz {
                    0 => 0,
                    rate => ((seq - self.base_seq) * 1000 % u64::from(rate)) as u32,
                },
            };
            if !self.batcher.push(seq, at, &verdict, truth, version) {
                self.send_batch();
                // An empty batcher takes any sample.
                self.batcher.push(seq, at, &verdict, truth, version);
            }
            if self.batcher.is_full() {
                self.send_batch();
            }
            return;
        }
        let msg = DeviceMsg::Sample(Sample::from_verdict(seq, time_ms, &verdict, truth, version));
        if !self.queue(&msg, false) {
            self.status.dropped += 1;
        }
    }

    /// Queue the batch so far (or count its samples dropped when the link has no room).
    fn send_batch(&mut self) {
        if let Some(batch) = self.batcher.take() {
            let n = batch.len() as u64;
            if !self.queue(&DeviceMsg::Batch(batch), false) {
                self.status.dropped += n;
            }
        }
    }

    /// Bytes waiting to be sent, oldest first (the queue is a ring: two slices).
    pub fn pending_tx(&self) -> (&[u8], &[u8]) {
        self.tx.as_slices()
    }

    /// Forget the first `n` pending bytes: they were written to the line.
    pub fn consume_tx(&mut self, n: usize) {
        for _ in 0..n.min(self.tx.len()) {
            self.tx.pop_front();
        }
    }
}

/// One step of the main loop: read what the host sent, make what is due, write what the line
/// takes without waiting. Every build calls this in a loop.
pub fn poll<L, C>(app: &mut App, link: &mut L, clock: &mut C) -> Result<(), L::Error>
where
    L: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write + embedded_io::WriteReady,
    C: Clock,
{
    let now = clock.now_ms();
    let mut buf = [0u8; 64];
    while link.read_ready()? {
        let n = link.read(&mut buf)?;
        if n == 0 {
            break;
        }
        app.receive(&buf[..n], now);
    }
    app.tick(now);
    while link.write_ready()? {
        let (pending, _) = app.pending_tx();
        if pending.is_empty() {
            break;
        }
        let n = link.write(pending)?;
        if n == 0 {
            break;
        }
        app.consume_tx(n);
    }
    Ok(())
}
