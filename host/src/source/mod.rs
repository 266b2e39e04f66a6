//! Where frames come from: one [`Source`], opened from the settings, started with one
//! [`Source::spawn`] that owns it on its own thread.
//!
//! * [`serial`]: a serial port (a board; or the emulator's pseudo-terminal), reconnecting on
//!   its own, optionally recorded byte for byte ([`recorder`]);
//! * [`emulated`]: the firmware's app on this machine, over a real pty (`zscope emulate`, or
//!   the daemon's `--emulate`);
//! * [`replay`]: a CSV file judged by the host's detector, or a recording shown as judged;
//! * [`usb`]: `--auto`, serial ports of known dev-board probes attached as they appear;
//! * [`mqtt`]: `--subscribe`, the devices other daemons publish to a broker.
//!
//! Below the web and the daemon's wiring, above the sinks: a source feeds its device's
//! [`Feed`]; those that find devices as they run make them through [`crate::device::Attach`].

pub mod emulated;
pub mod mqtt;
pub mod recorder;
pub mod replay;
pub mod serial;
pub mod usb;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use anyhow::Context;
use zscope_core::SimConfig;

use crate::batch::dataset::Dataset;
use crate::device::Feed;
use crate::model::detector::HostDetector;
use emulated::{BOARD, Emulator};
use recorder::Recorder;
use replay::Speed;

/// Where samples come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSetting {
    /// A serial port at a baud rate.
    Serial {
        /// The port's path.
        port: String,
        /// Its baud rate.
        baud: u32,
    },
    /// The firmware's app emulated on this machine, over a pty.
    Emulated {
        /// Samples per second.
        rate_hz: u32,
        /// Simulator seed.
        seed: u64,
    },
    /// A CSV file judged by the host's detector.
    ReplayCsv {
        /// The file.
        path: PathBuf,
        /// Pacing.
        speed: replay::Speed,
        /// Columns.
        columns: crate::batch::dataset::Columns,
        /// Stop at the first bad row.
        strict: bool,
        /// Detector settings.
        detector: zscope_core::DetectorConfig,
    },
    /// A recording of raw frames, shown as the device judged it.
    ReplayFrames {
        /// The file.
        path: PathBuf,
        /// Pacing.
        speed: replay::Speed,
    },
}

/// A source of frames, opened and ready to start.
pub enum Source {
    /// A serial port at a baud rate, recorded if asked.
    Serial {
        /// The port's path.
        port: String,
        /// Its baud rate.
        baud: u32,
        /// Where to record what it reads.
        recorder: Option<Recorder>,
        /// The emulated device behind the port, if it is one (stopped with the source).
        emulator: Option<Emulator>,
    },
    /// A CSV file judged by the host's detector.
    Csv {
        /// The file, open.
        data: Dataset,
        /// The detector.
        detector: Box<HostDetector>,
        /// Pacing.
        speed: Speed,
    },
    /// A recording of the device's frames.
    Frames {
        /// The file.
        path: PathBuf,
        /// Pacing.
        speed: Speed,
    },
}

/// A started source: its thread, and whatever must live as long.
pub struct Running {
    thread: JoinHandle<()>,
    emulator: Option<Emulator>,
}

impl Running {
    /// Wait for the thread to end (after [`crate::device::Hub::stop`]), then stop the
    /// emulated device, if any.
    pub fn join(self) {
        let _ = self.thread.join();
        drop(self.emulator);
    }
}

impl Source {
    /// Open what `setting` names (start the emulated device, open the CSV file, the
    /// recording to write); a problem is an error that says what to do.
    pub fn open(setting: &SourceSetting, record: Option<&Path>) -> anyhow::Result<Source> {
        let recorder = || -> anyhow::Result<Option<Recorder>> {
            record
                .map(|path| {
                    Recorder::open(path)
                        .with_context(|| format!("cannot open the recording {}", path.display()))
                })
                .transpose()
        };
        Ok(match setting {
            SourceSetting::Serial { port, baud } => Source::Serial {
                port: port.clone(),
                baud: *baud,
                recorder: recorder()?,
                emulator: None,
            },
            SourceSetting::Emulated { rate_hz, seed } => {
                let settings = zscope_firmware::Settings {
                    board: BOARD,
                    rate_hz: *rate_hz,
                    simulator: SimConfig {
                        seed: *seed,
                        ..SimConfig::default()
                    },
                    ..zscope_firmware::Settings::default()
                };
                // The host's temperature sensor, when it has one, is the device's.
                let emulator = match emulated::find_thermal(std::path::Path::new("/sys")) {
                    Ok(thermal) => Emulator::spawn_sensing(settings, None, thermal),
                    Err(_) => Emulator::spawn(settings),
                }
                .context("cannot start the emulated device")?;
                Source::Serial {
                    port: emulator.path().display().to_string(),
                    baud: 115_200,
                    recorder: recorder()?,
                    emulator: Some(emulator),
                }
            }
            SourceSetting::ReplayCsv {
                path,
                speed,
                columns,
                strict,
                detector,
            } => Source::Csv {
                data: Dataset::open(path, columns, *strict)?,
                detector: crate::model::detector::detector(*detector)
                    .map_err(|e| anyhow::anyhow!("invalid detector settings: {e}"))?,
                speed: *speed,
            },
            SourceSetting::ReplayFrames { path, speed } => Source::Frames {
                path: path.clone(),
                speed: *speed,
            },
        })
    }

    /// The port or file, as the status shows it.
    pub fn port(&self) -> String {
        match self {
            Source::Serial { port, .. } => port.clone(),
            Source::Csv { data, .. } => data.name().to_string(),
            Source::Frames { path, .. } => path.display().to_string(),
        }
    }

    /// What the daemon says it reads from, on start.
    pub fn describe(&self) -> String {
        match self {
            Source::Serial {
                port,
                emulator: Some(_),
                ..
            } => format!("emulated device on {port}"),
            Source::Serial { port, baud, .. } => format!("{port} at {baud} baud"),
            _ => format!("replay of {}", self.port()),
        }
    }

    /// Start the thread that owns the source, feeding `feed`.
    pub fn spawn(self, feed: Feed) -> std::io::Result<Running> {
        let (thread, emulator) = match self {
            Source::Serial {
                port,
                baud,
                recorder,
                emulator,
            } => (
                serial::spawn(feed, serial::PortPath::new(port), baud, recorder)?,
                emulator,
            ),
            Source::Csv {
                data,
                detector,
                speed,
            } => (replay::spawn_csv(feed, data, detector, speed)?, None),
            Source::Frames { path, speed } => (replay::spawn_frames(feed, path, speed)?, None),
        };
        Ok(Running { thread, emulator })
    }
}
