//! `zscope replay`: a recorded file streamed through the same ingest, logs and dashboard as a
//! live device.
//!
//! * A CSV file (see [`crate::batch::dataset`]) is judged by the host's
//!   [`Detector`](zscope_core::Detector) as it is read;
//!   the page's controls change that detector's config, acknowledged like a device's.
//! * A recording of raw frames (`zscope --record FILE`; it starts with a 0x00 byte) is decoded
//!   and shown exactly as the device judged it: the verdicts are the device's own, so the
//!   config cannot be changed (the API says so).
//!
//! Pacing follows the file's timestamps (the CSV's time column, or the samples' device time),
//! sped up by `--speed` (e.g. `10x`), or none at all with `--max`.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zscope_core::device::{Change, Origin, Responder};
use zscope_core::source::{Refusal, Source, Sources, Unit};
use zscope_core::wire::{AckResult, Decoder, DeviceMsg, Sample, name};

use crate::batch::dataset::Dataset;
use crate::batch::score::HostDetector;
use crate::device::{Feed, Hub};

/// How fast to replay: a multiple of real time, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Real time × this factor.
    Factor(f64),
    /// No waiting.
    Max,
}

/// `10x`, `10`, `0.5x`.
pub fn parse_speed(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches(['x', 'X']);
    match n.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("--speed '{s}' is not a positive factor like 10x")),
    }
}

/// Whether `path` is a recording of raw frames (it starts with a 0x00 byte).
pub fn is_recording(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut first = [0u8; 1];
    let n = std::fs::File::open(path)?.read(&mut first)?;
    Ok(n == 1 && first[0] == 0)
}

struct Pacer {
    speed: Speed,
    start: Instant,
    t0: Option<i64>,
}

impl Pacer {
    fn new(speed: Speed) -> Self {
        Pacer {
            speed,
            start: Instant::now(),
            t0: None,
        }
    }

    /// Wait until the moment `t_ms` (file time) is due; false if the daemon is stopping.
    fn wait(&mut self, t_ms: i64, hub: &Hub) -> bool {
        let Speed::Factor(f) = self.speed else {
            return !hub.stopping();
        };
        let t0 = *self.t0.get_or_insert(t_ms);
        let due = self.start + Duration::from_secs_f64(((t_ms - t0).max(0) as f64 / 1000.0) / f);
        loop {
            if hub.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
        }
    }
}

/// Replay a CSV file through `detector`.
pub fn spawn_csv(
    feed: Feed,
    mut data: Dataset,
    mut detector: Box<HostDetector>,
    speed: Speed,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zscope-replay".into())
        .spawn(move || {
            let mut device = Responder::new();
            let hello = device.hello(
                &detector,
                name(env!("CARGO_PKG_VERSION")),
                name("replay"),
                0,
                None,
                &Origin {
                    sources: Sources {
                        external: true,
                        ..Sources::default()
                    },
                    source: Source::External,
                    unit: Unit::None,
                },
            );
            let truth = data.layout.label.is_some();
            feed.update(|state, out| {
                state.connected();
                state.set_replay();
                state.ingest(DeviceMsg::Hello(hello), chrono::Utc::now(), out);
                state.set_ground_truth(truth);
            });
            let mut pacer = Pacer::new(speed);
            let (mut seq, mut t0) = (0u64, None);
            let mut last_time = 0i64;
            // Ok: the end of the file, as a replay should end; Err: why it stopped early.
            let outcome: Result<String, String> = loop {
                while let Ok(cmd) = feed.commands.try_recv() {
                    // A file has no sample rate to set (its timestamps and --speed pace it), and
                    // no other source.
                    let (ack, _) = device.execute(&mut detector, cmd, |change| match change {
                        Change::Rate(hz) => AckResult::RateRejected { hz, max: 0 },
                        Change::Source(_) => AckResult::SourceRejected(Refusal::Missing),
                    });
                    feed.update(|state, out| {
                        state.ingest(DeviceMsg::Ack(ack), chrono::Utc::now(), out)
                    });
                }
                // Every row, as `score` sees it: one without a usable value is a missing
                // value to the detector (shown as invalid), so both flag the same rows.
                let row = match data.next_row() {
                    Ok(Some(r)) => r,
                    Ok(None) => break Ok(format!("replay finished: {seq} rows")),
                    Err(e) => break Err(format!("replay stopped: {e}")),
                };
                let time_ms = row.time_ms.unwrap_or(last_time);
                last_time = time_ms;
                if !pacer.wait(time_ms, &feed.hub) {
                    return;
                }
                let start = *t0.get_or_insert(time_ms);
                let v = detector.update(row.value.unwrap_or(f64::NAN));
                let sample = Sample::from_verdict(
                    seq,
                    (time_ms - start).max(0) as u64,
                    &v,
                    row.label == Some(true),
                    device.config_version,
                );
                let first = seq == 0;
                seq += 1;
                feed.update(|state, out| {
                    if first {
                        state.keep_data_time(start, 0);
                    }
                    state.ingest(DeviceMsg::Sample(sample), chrono::Utc::now(), out)
                });
            };
            let with_problems = |said: String| match data.problems() {
                Some(problems) => format!("{said}; {problems}"),
                None => said,
            };
            match outcome {
                Ok(ended) => {
                    let ended = with_problems(ended);
                    tracing::info!("{ended}");
                    feed.update(|state, _| state.finished(ended));
                }
                Err(stopped) => {
                    let stopped = with_problems(stopped);
                    tracing::warn!("{stopped}");
                    feed.update(|state, _| state.disconnected(stopped));
                }
            }
        })
}

/// Replay a recording of raw frames exactly as the device judged it, read in chunks (memory
/// stays bounded however long the recording).
pub fn spawn_frames(
    feed: Feed,
    path: std::path::PathBuf,
    speed: Speed,
) -> std::io::Result<JoinHandle<()>> {
    let mut file = std::fs::File::open(&path)?;
    std::thread::Builder::new()
        .name("zscope-replay".into())
        .spawn(move || {
            feed.update(|state, _| {
                state.connected();
                state.set_replay();
                state.set_read_only(format!(
                    "{} is a recording of the device's frames: its verdicts are the device's \
                     own and cannot be changed (replay the CSV log to try other settings)",
                    path.display()
                ));
            });
            let mut decoder: Decoder = Decoder::new();
            let mut pacer = Pacer::new(speed);
            let mut chunk = vec![0u8; 64 * 1024];
            let mut frames = 0u64;
            let failed = loop {
                let n = match std::io::Read::read(&mut file, &mut chunk) {
                    Ok(0) => break None,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Some(e),
                };
                let mut input = &chunk[..n];
                while let Some(result) = decoder.next_message::<DeviceMsg>(&mut input) {
                    // Commands cannot be carried out; the API refuses them before they get here.
                    while feed.commands.try_recv().is_ok() {}
                    let stats = *decoder.stats();
                    let Ok(msg) = result else {
                        feed.update(|state, _| state.set_decode(&stats));
                        continue;
                    };
                    if let Some(s) = msg.samples().next()
                        && !pacer.wait(s.time_ms as i64, &feed.hub)
                    {
                        return;
                    }
                    frames += 1;
                    feed.update(|state, out| {
                        state.ingest(msg, chrono::Utc::now(), out);
                        state.set_decode(&stats);
                    });
                }
            };
            let stats = *decoder.stats();
            feed.update(|state, _| state.set_decode(&stats));
            match failed {
                None => {
                    let outcome =
                        format!("replay finished: {frames} frames from {}", path.display());
                    tracing::info!("{outcome}");
                    feed.update(|state, _| state.finished(outcome));
                }
                Some(e) => {
                    let outcome = format!(
                        "replay stopped after {frames} frames: cannot read {}: {e}",
                        path.display()
                    );
                    tracing::error!("{outcome}");
                    feed.update(|state, _| state.disconnected(outcome));
                }
            }
        })
}
