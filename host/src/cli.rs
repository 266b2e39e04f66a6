//! The command line, the TOML config file and the environment, resolved into [`Settings`].
//!
//! Precedence: a flag beats its environment variable (`ZSCOPE_*`), which beats the `--config`
//! file, which beats the default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde::Deserialize;

/// zscope: real-time anomaly detection for data streams. With no arguments it starts the
/// daemon against an emulated device and serves the dashboard on http://127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "zscope", version)]
pub struct Cli {
    /// What to do (default: run the daemon).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Serial port of a device, e.g. /dev/ttyACM0. Without it: an emulated device on a pty.
    #[arg(long, env = "ZSCOPE_PORT")]
    pub port: Option<String>,

    /// Baud rate of the serial port [default: 115200].
    #[arg(long, env = "ZSCOPE_BAUD")]
    pub baud: Option<u32>,

    /// Address the dashboard listens on [default: 127.0.0.1:8080]. Anything but loopback
    /// needs --token.
    #[arg(long, env = "ZSCOPE_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,

    /// Token required for config changes (header `Authorization: Bearer TOKEN`), and for
    /// reading from anywhere but loopback.
    #[arg(long, env = "ZSCOPE_TOKEN", global = true)]
    pub token: Option<String>,

    /// Folder for samples.csv and anomalies.csv [default: ./zscope-log].
    #[arg(long, env = "ZSCOPE_LOG_DIR", global = true)]
    pub log_dir: Option<PathBuf>,

    /// Log only anomalies, not every sample.
    #[arg(long, env = "ZSCOPE_NO_SAMPLES_LOG", global = true)]
    pub no_samples_log: bool,

    /// Rotate a CSV file when it passes this many megabytes [default: 64].
    #[arg(long, env = "ZSCOPE_ROTATE_MB", global = true)]
    pub rotate_mb: Option<u64>,

    /// Rotated files kept per log, older ones deleted [default: 5].
    #[arg(long, env = "ZSCOPE_KEEP_FILES", global = true)]
    pub keep_files: Option<u32>,

    /// Sample rate of the emulated device in Hz, 0 for as fast as the line carries
    /// [default: 50].
    #[arg(long, env = "ZSCOPE_EMULATOR_RATE")]
    pub emulator_rate: Option<u32>,

    /// Seed of the emulated device's simulator [default: 42].
    #[arg(long, env = "ZSCOPE_EMULATOR_SEED")]
    pub emulator_seed: Option<u64>,

    /// Append the raw frames read from the device to this file, to replay them later
    /// (`zscope replay FILE`) with exactly the device's verdicts.
    #[arg(long, env = "ZSCOPE_RECORD")]
    pub record: Option<PathBuf>,

    /// Settings file (TOML) with any of the options above, e.g. `port = "/dev/ttyACM0"`, and
    /// the detector's (`window`, `threshold`, `warmup`, `max_run`, `include_anomalies`,
    /// `seasonal`, `alpha`) for `score` and `eval`.
    #[arg(long, env = "ZSCOPE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// Default weight of the newest cycle in a seasonal profile.
pub const DEFAULT_ALPHA: f32 = 0.3;

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the serial ports this machine has (pseudo-terminals are not listed).
    Ports,
    /// Run the detector over a CSV file and write its rows back with the verdicts (no server).
    Score(ScoreArgs),
    /// Measure precision, recall, F1 and detection delay on labelled data or the simulator.
    Eval(EvalArgs),
    /// Stream a CSV file (or a --record recording) through the detector and the dashboard.
    Replay(ReplayArgs),
}

/// `zscope replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A CSV file, or a recording made with --record.
    pub input: PathBuf,
    /// Replay at this multiple of real time, e.g. 10x [default: 1x].
    #[arg(long, conflicts_with = "max")]
    pub speed: Option<String>,
    /// Replay as fast as possible.
    #[arg(long)]
    pub max: bool,
    /// Columns (CSV).
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Detector (CSV).
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// Detector settings on the command line; unset ones come from the file, then the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DetectorArgs {
    /// Window length [default: 64].
    #[arg(long)]
    pub window: Option<u32>,
    /// Anomaly when |z| is above this [default: 3].
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Values before the first verdict [default: the window].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Longest run of flagged values kept out of the window [default: 10].
    #[arg(long)]
    pub max_run: Option<u32>,
    /// Let flagged values into the window (policy `include`).
    #[arg(long)]
    pub include_anomalies: bool,
    /// Compare each value with a seasonal profile of this many samples per cycle (1: an EWMA
    /// baseline) instead of the window's mean.
    #[arg(long)]
    pub seasonal: Option<u32>,
    /// Weight of the newest cycle in the seasonal profile, (0, 1] [default: 0.3].
    #[arg(long)]
    pub alpha: Option<f32>,
}

/// Which columns of a CSV file to use.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ColumnArgs {
    /// Timestamp column [default: guessed: timestamp, time, datetime, date, ts].
    #[arg(long)]
    pub time_col: Option<String>,
    /// Value column [default: guessed: value, val, y, reading, or the only numeric column].
    #[arg(long)]
    pub value_col: Option<String>,
    /// Label column, 0/1 ground truth [default: guessed: label, is_anomaly, anomaly, labels].
    #[arg(long)]
    pub label_col: Option<String>,
    /// Stop at the first bad row instead of skipping (and counting) it.
    #[arg(long)]
    pub strict: bool,
}

impl ColumnArgs {
    /// As the dataset reader takes them.
    pub fn columns(&self) -> crate::dataset::Columns {
        crate::dataset::Columns {
            time: self.time_col.clone(),
            value: self.value_col.clone(),
            label: self.label_col.clone(),
        }
    }
}

/// `zscope score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The CSV file to score.
    pub input: PathBuf,
    /// Where to write the scored rows.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output layout.
    #[arg(long, value_enum, default_value = "plain")]
    pub format: crate::score::Format,
    /// Columns.
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Detector.
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// `zscope eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A labelled CSV file; without it, the simulator's scenarios.
    pub input: Option<PathBuf>,
    /// Score the detector on a Numenta Anomaly Benchmark checkout (its `data/`,
    /// `labels/combined_windows.json` and `config/profiles.json`) with NAB's own rules.
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub nab: Option<PathBuf>,
    /// With --nab: score this NAB results folder (`<category>/<detector>_<file>.csv` with an
    /// `anomaly_score` column) instead of running the detector.
    #[arg(long, value_name = "DIR", requires = "nab")]
    pub results: Option<PathBuf>,
    /// Simulator scenario: default, small, shifts, fast-wave, or all.
    #[arg(long, default_value = "all")]
    pub sim: String,
    /// Simulated samples per scenario.
    #[arg(long, default_value_t = 100_000)]
    pub samples: usize,
    /// Simulator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Samples either side of a label within which a detection counts as a hit.
    #[arg(long, default_value_t = 2)]
    pub tolerance: usize,
    /// Also sweep window x threshold x policy and print the best setting per metric.
    #[arg(long)]
    pub sweep: bool,
    /// Write the sweep as CSV here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Columns (with a file).
    #[command(flatten)]
    pub columns: ColumnArgs,
    /// Detector.
    #[command(flatten)]
    pub detector: DetectorArgs,
}

/// The same options, as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileSettings {
    port: Option<String>,
    baud: Option<u32>,
    listen: Option<SocketAddr>,
    token: Option<String>,
    log_dir: Option<PathBuf>,
    samples_log: Option<bool>,
    rotate_mb: Option<u64>,
    keep_files: Option<u32>,
    emulator_rate: Option<u32>,
    emulator_seed: Option<u64>,
    window: Option<u32>,
    threshold: Option<f32>,
    warmup: Option<u32>,
    max_run: Option<u32>,
    include_anomalies: Option<bool>,
    seasonal: Option<u32>,
    alpha: Option<f32>,
}

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
        speed: crate::replay::Speed,
        /// Columns.
        columns: crate::dataset::Columns,
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
        speed: crate::replay::Speed,
    },
}

/// Everything the daemon needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where samples come from.
    pub source: SourceSetting,
    /// Dashboard address.
    pub listen: SocketAddr,
    /// Write token.
    pub token: Option<String>,
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
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file is unreadable.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {0} without a token: anyone on the network could change the \
         detector. Add --token SECRET (or listen on 127.0.0.1)"
    )]
    OpenWithoutToken(SocketAddr),
    /// A value out of range.
    #[error("{0}")]
    Invalid(String),
}

fn read_file(path: &Path) -> Result<FileSettings, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Cli {
    /// The detector config for `score` and `eval`: flags over the file over the defaults.
    pub fn detector(
        &self,
        args: &DetectorArgs,
    ) -> Result<zscope_core::DetectorConfig, SettingsError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let d = zscope_core::DetectorConfig::default();
        let include = args.include_anomalies || file.include_anomalies.unwrap_or(false);
        let config = zscope_core::DetectorConfig {
            window: args.window.or(file.window).unwrap_or(d.window),
            threshold: args.threshold.or(file.threshold).unwrap_or(d.threshold),
            warmup: args.warmup.or(file.warmup),
            policy: if include {
                zscope_core::AnomalyPolicy::Include
            } else {
                zscope_core::AnomalyPolicy::Exclude {
                    max_run: args
                        .max_run
                        .or(file.max_run)
                        .unwrap_or(zscope_core::DetectorConfig::DEFAULT_MAX_RUN),
                }
            },
            baseline: match args.seasonal.or(file.seasonal) {
                Some(period) => zscope_core::Baseline::Seasonal {
                    period,
                    alpha: args.alpha.or(file.alpha).unwrap_or(DEFAULT_ALPHA),
                },
                None => zscope_core::Baseline::Window,
            },
        };
        crate::score::HostDetector::validate(&config)
            .map_err(|e| SettingsError::Invalid(format!("invalid detector settings: {e}")))?;
        Ok(config)
    }

    /// Merge flags and environment (already in `self`) over the file over the defaults.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let baud = self.baud.or(file.baud).unwrap_or(115_200);
        if baud == 0 {
            return Err(SettingsError::Invalid("--baud must be above 0".into()));
        }
        let source = match self.port.clone().or(file.port) {
            Some(port) => SourceSetting::Serial { port, baud },
            None => SourceSetting::Emulated {
                rate_hz: self.emulator_rate.or(file.emulator_rate).unwrap_or(50),
                seed: self.emulator_seed.or(file.emulator_seed).unwrap_or(42),
            },
        };
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let token = self.token.clone().or(file.token).filter(|t| !t.is_empty());
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(SettingsError::OpenWithoutToken(listen));
        }
        let rotate_mb = self.rotate_mb.or(file.rotate_mb).unwrap_or(64);
        if rotate_mb == 0 {
            return Err(SettingsError::Invalid("--rotate-mb must be above 0".into()));
        }
        Ok(Settings {
            source,
            listen,
            token,
            log_dir: self
                .log_dir
                .clone()
                .or(file.log_dir)
                .unwrap_or_else(|| PathBuf::from("zscope-log")),
            samples_log: !self.no_samples_log && file.samples_log.unwrap_or(true),
            rotate_bytes: rotate_mb * 1024 * 1024,
            keep_files: self.keep_files.or(file.keep_files).unwrap_or(5),
            record: self.record.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("zscope").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_emulator_on_loopback() {
        let s = cli(&[]).unwrap().settings().unwrap();
        assert_eq!(
            s.source,
            SourceSetting::Emulated {
                rate_hz: 50,
                seed: 42
            }
        );
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.samples_log);
    }

    #[test]
    fn wrong_flags_are_clear_errors() {
        let e = cli(&["--baud", "fast"]).unwrap_err().to_string();
        assert!(e.contains("invalid value 'fast' for '--baud"), "{e}");
        let e = cli(&["--colour"]).unwrap_err().to_string();
        assert!(e.contains("unexpected argument '--colour'"), "{e}");
        let e = cli(&["--listen", "0.0.0.0:8080"])
            .unwrap()
            .settings()
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a token"), "{e}");
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zscope.toml");
        std::fs::write(
            &path,
            "port = \"/dev/ttyUSB7\"\nbaud = 9600\nsamples_log = false\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = cli(&["--config", p]).unwrap().settings().unwrap();
        assert_eq!(
            s.source,
            SourceSetting::Serial {
                port: "/dev/ttyUSB7".into(),
                baud: 9600
            }
        );
        assert!(!s.samples_log);
        let s = cli(&["--config", p, "--baud", "921600"])
            .unwrap()
            .settings()
            .unwrap();
        assert!(matches!(
            s.source,
            SourceSetting::Serial { baud: 921600, .. }
        ));
        std::fs::write(&path, "prot = 3\n").unwrap();
        let e = cli(&["--config", p])
            .unwrap()
            .settings()
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `prot`"), "{e}");
    }
}
