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
#[command(name = "zscope", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: run the daemon).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The device (daemon only).
    #[command(flatten)]
    pub device: DeviceArgs,

    /// The dashboard and the logs (daemon and replay).
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Settings file (TOML) with any of the options, e.g. `port = "/dev/ttyACM0"`, and the
    /// detector's (`detector`, `window`, `threshold`, `warmup`, `max_run`,
    /// `include_anomalies`, `learn`, `rest`, `seasonal`, `alpha`) for `score`, `eval` and
    /// `replay`.
    #[arg(long, env = "ZSCOPE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// Where the daemon's samples come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeviceArgs {
    /// Serial port of a device, e.g. /dev/ttyACM0. Without it: an emulated device on a pty.
    #[arg(long, env = "ZSCOPE_PORT")]
    pub port: Option<String>,

    /// Baud rate of the serial port [default: 115200].
    #[arg(long, env = "ZSCOPE_BAUD")]
    pub baud: Option<u32>,

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
}

/// The dashboard and the CSV logs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address the dashboard listens on [default: 127.0.0.1:8080]. Anything but loopback
    /// needs --token.
    #[arg(long, env = "ZSCOPE_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Token required for config changes (header `Authorization: Bearer TOKEN`), and for
    /// reading from anywhere but loopback. A flag shows in `ps`: prefer ZSCOPE_TOKEN or
    /// --token-file.
    #[arg(long, env = "ZSCOPE_TOKEN", conflicts_with = "token_file")]
    pub token: Option<String>,

    /// Read the token from this file (its first line).
    #[arg(long, env = "ZSCOPE_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Also answer requests addressed to this host name (the Host and Origin headers), besides
    /// localhost, 127.0.0.1, [::1] and the listen address; repeat for more. Other names are
    /// refused (a web page cannot reach the daemon by rebinding its own name to 127.0.0.1).
    /// Listening on all interfaces (0.0.0.0) without this flag accepts any name.
    #[arg(
        long = "allow-host",
        env = "ZSCOPE_ALLOW_HOST",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub allow_hosts: Vec<String>,

    /// Folder for samples.csv and anomalies.csv [default: ./zscope-log].
    #[arg(long, env = "ZSCOPE_LOG_DIR")]
    pub log_dir: Option<PathBuf>,

    /// Log only anomalies, not every sample.
    #[arg(long, env = "ZSCOPE_NO_SAMPLES_LOG")]
    pub no_samples_log: bool,

    /// Rotate a CSV file when it passes this many megabytes [default: 64].
    #[arg(long, env = "ZSCOPE_ROTATE_MB")]
    pub rotate_mb: Option<u64>,

    /// Rotated files kept per log, older ones deleted [default: 5].
    #[arg(long, env = "ZSCOPE_KEEP_FILES")]
    pub keep_files: Option<u32>,
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
    /// The dashboard and the logs.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Which detector judges the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The default: novel levels plus a residual Z-score calibrated to the stream's tails,
    /// against a period it finds by itself.
    Adaptive,
    /// The rolling Z-score against the window's mean (the seed's method).
    Zscore,
    /// The rolling Z-score against a seasonal profile of a given period.
    Seasonal,
}

/// Detector settings on the command line; unset ones come from the file, then the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DetectorArgs {
    /// Detector [default: adaptive; seasonal when --seasonal is given].
    #[arg(long, value_enum)]
    pub detector: Option<Method>,
    /// Window length [default: 64].
    #[arg(long)]
    pub window: Option<u32>,
    /// Anomaly when |z| is above this (adaptive: times the stream's tail factor) [default: 3].
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Values in the window before the first verdict [default: the window; adaptive: half].
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Longest run of flagged values kept out of the window [default: 10].
    #[arg(long)]
    pub max_run: Option<u32>,
    /// Let flagged values into the window (policy `include`).
    #[arg(long)]
    pub include_anomalies: bool,
    /// Adaptive: values that set the level grid and the period [default: 600].
    #[arg(long)]
    pub learn: Option<u32>,
    /// Adaptive: values of quiet after a novel level [default: 100].
    #[arg(long)]
    pub rest: Option<u32>,
    /// Seasonal: the period, in samples (`288`) or as a duration (`1d`, `12h`, `30m`, `90s`,
    /// `500ms`, `1w`) converted with the data's sampling interval. 1 sample: an EWMA baseline.
    #[arg(long, value_name = "PERIOD")]
    pub seasonal: Option<String>,
    /// Seasonal: weight of the newest cycle in the profile, (0, 1] [default: 0.3].
    #[arg(long)]
    pub alpha: Option<f32>,
}

/// A seasonal period as given: in samples, or as a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Period {
    /// Samples per cycle.
    Samples(u32),
    /// A duration in milliseconds, converted with the data's sampling interval.
    Millis(f64),
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u32>() {
            return Ok(Period::Samples(n));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let factor = match unit.trim() {
            "ms" => 1.0,
            "s" => 1e3,
            "m" | "min" => 60e3,
            "h" => 3600e3,
            "d" => 86_400e3,
            "w" => 7.0 * 86_400e3,
            _ => f64::NAN,
        };
        match num.parse::<f64>() {
            Ok(n) if factor.is_finite() && n > 0.0 && n.is_finite() => {
                Ok(Period::Millis(n * factor))
            }
            _ => Err(format!(
                "period {s:?} is neither a number of samples (288) nor a duration (1d, 12h, 30m, \
                 90s, 500ms, 1w)"
            )),
        }
    }
}

/// A detector config whose seasonal period may still wait for the data's sampling interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSpec {
    /// The config (with the period in samples, or a placeholder of 1 for a duration).
    pub config: zscope_core::DetectorConfig,
    /// A period given as a duration, in ms.
    pub period_ms: Option<f64>,
}

impl DetectorSpec {
    /// The config, with a duration turned into samples at `interval_ms` per sample.
    pub fn resolve(
        &self,
        interval_ms: Option<f64>,
    ) -> Result<zscope_core::DetectorConfig, SettingsError> {
        let mut config = self.config;
        if let (Some(ms), zscope_core::Baseline::Seasonal { alpha, .. }) =
            (self.period_ms, config.baseline)
        {
            let interval = interval_ms.filter(|i| *i > 0.0).ok_or_else(|| {
                SettingsError::Invalid(
                    "a seasonal period given as a duration needs timestamps to convert it: \
                     give the period in samples instead"
                        .into(),
                )
            })?;
            let samples = (ms / interval).round();
            if !(1.0..=u32::MAX as f64).contains(&samples) {
                return Err(SettingsError::Invalid(format!(
                    "a period of {ms} ms is {samples} samples at {interval} ms per sample"
                )));
            }
            config.baseline = zscope_core::Baseline::Seasonal {
                period: samples as u32,
                alpha,
            };
            crate::score::HostDetector::validate(&config).map_err(|e| {
                SettingsError::Invalid(format!(
                    "invalid detector settings: {e} ({ms} ms at {interval} ms per sample)"
                ))
            })?;
        }
        Ok(config)
    }
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
    /// Stop at the first row with a problem instead of counting it and going on.
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
    /// The CSV file to score, `-` for standard input, or a folder (every *.csv below it).
    pub input: PathBuf,
    /// Where to write the scored rows: a file, `-` for standard output, or a folder for a
    /// folder of inputs (same relative layout).
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
    /// Also sweep window x threshold x policy and print the best setting per metric; with
    /// --nab, compare the detectors and the default's main settings on the corpus.
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
    token_file: Option<PathBuf>,
    allow_hosts: Option<Vec<String>>,
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
    detector: Option<Method>,
    learn: Option<u32>,
    rest: Option<u32>,
    seasonal: Option<String>,
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
    /// Host names the dashboard answers to (`None`: any, when listening on all interfaces
    /// with no names given).
    pub allowed_hosts: Option<Vec<String>>,
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
    /// The detector config for `score`, `eval` and `replay`: flags over the file over the
    /// defaults. A flag that would have no effect in the chosen combination is an error.
    pub fn detector(&self, args: &DetectorArgs) -> Result<DetectorSpec, SettingsError> {
        use zscope_core::{AnomalyPolicy, Baseline, DetectorConfig};
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let d = DetectorConfig::default();
        let include = args.include_anomalies || file.include_anomalies.unwrap_or(false);
        let seasonal = match args.seasonal.as_ref().or(file.seasonal.as_ref()) {
            Some(p) => Some(p.parse::<Period>().map_err(SettingsError::Invalid)?),
            None => None,
        };
        let method = args
            .detector
            .or(file.detector)
            .unwrap_or(if seasonal.is_some() {
                Method::Seasonal
            } else {
                Method::Adaptive
            });
        let ignored = |flag: &str, why: &str| {
            Err(SettingsError::Invalid(format!(
                "{flag} has no effect {why}"
            )))
        };
        let max_run = args.max_run.or(file.max_run);
        if include && max_run.is_some() {
            return ignored(
                "--max-run",
                "with --include-anomalies (every value enters the window)",
            );
        }
        let (learn, rest) = (args.learn.or(file.learn), args.rest.or(file.rest));
        let alpha = args.alpha.or(file.alpha);
        if method != Method::Adaptive {
            if learn.is_some() {
                return ignored(
                    "--learn",
                    "outside the adaptive detector (--detector adaptive)",
                );
            }
            if rest.is_some() {
                return ignored(
                    "--rest",
                    "outside the adaptive detector (--detector adaptive)",
                );
            }
        }
        if method != Method::Seasonal {
            if seasonal.is_some() {
                return ignored(
                    "--seasonal",
                    "outside the seasonal detector (drop --detector, or --detector seasonal)",
                );
            }
            if alpha.is_some() {
                return ignored("--alpha", "without a seasonal profile (--seasonal PERIOD)");
            }
        }
        let (baseline, period_ms) = match method {
            Method::Zscore => (Baseline::Window, None),
            Method::Adaptive => (
                Baseline::Adaptive {
                    learn: learn.unwrap_or(DetectorConfig::DEFAULT_LEARN),
                    rest: rest.unwrap_or(DetectorConfig::DEFAULT_REST),
                },
                None,
            ),
            Method::Seasonal => {
                let alpha = alpha.unwrap_or(DEFAULT_ALPHA);
                match seasonal {
                    None => {
                        return Err(SettingsError::Invalid(
                            "the seasonal detector needs its period: --seasonal PERIOD".into(),
                        ));
                    }
                    Some(Period::Samples(period)) => (Baseline::Seasonal { period, alpha }, None),
                    Some(Period::Millis(ms)) => (Baseline::Seasonal { period: 1, alpha }, Some(ms)),
                }
            }
        };
        let config = DetectorConfig {
            window: args.window.or(file.window).unwrap_or(d.window),
            threshold: args.threshold.or(file.threshold).unwrap_or(d.threshold),
            warmup: args.warmup.or(file.warmup),
            policy: if include {
                AnomalyPolicy::Include
            } else {
                AnomalyPolicy::Exclude {
                    max_run: max_run.unwrap_or(DetectorConfig::DEFAULT_MAX_RUN),
                }
            },
            baseline,
        };
        crate::score::HostDetector::validate(&config)
            .map_err(|e| SettingsError::Invalid(format!("invalid detector settings: {e}")))?;
        Ok(DetectorSpec { config, period_ms })
    }

    /// The daemon's settings: flags and environment over the file over the defaults.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        self.resolve(&self.device, &self.serve)
    }

    /// `replay`'s settings: its dashboard and log flags, no device.
    pub fn replay_settings(&self, args: &ReplayArgs) -> Result<Settings, SettingsError> {
        self.resolve(&DeviceArgs::default(), &args.serve)
    }

    /// Merge `device` and `serve` (flags and environment) over the file over the defaults.
    fn resolve(&self, device: &DeviceArgs, serve: &ServeArgs) -> Result<Settings, SettingsError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let baud = device.baud.or(file.baud).unwrap_or(115_200);
        if baud == 0 {
            return Err(SettingsError::Invalid("--baud must be above 0".into()));
        }
        let source = match device.port.clone().or(file.port) {
            Some(port) => SourceSetting::Serial { port, baud },
            None => SourceSetting::Emulated {
                rate_hz: device.emulator_rate.or(file.emulator_rate).unwrap_or(50),
                seed: device.emulator_seed.or(file.emulator_seed).unwrap_or(42),
            },
        };
        let listen = serve
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let token = match serve.token_file.clone().or(file.token_file) {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| SettingsError::Read {
                        path: path.clone(),
                        source,
                    })?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            None => serve.token.clone().or(file.token),
        };
        if let Some(t) = &token
            && (t.trim().is_empty()
                || t.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()))
        {
            return Err(SettingsError::Invalid(
                "the token must be printable ASCII without spaces (a blank token guards \
                 nothing, and a header cannot carry the rest)"
                    .into(),
            ));
        }
        let names = if serve.allow_hosts.is_empty() {
            file.allow_hosts.unwrap_or_default()
        } else {
            serve.allow_hosts.clone()
        };
        let allowed_hosts = if listen.ip().is_unspecified() && names.is_empty() {
            None
        } else {
            let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
                .into_iter()
                .map(String::from)
                .collect();
            hosts.push(match listen.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
            hosts.extend(names.iter().map(|n| n.trim().to_ascii_lowercase()));
            Some(hosts)
        };
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(SettingsError::OpenWithoutToken(listen));
        }
        let rotate_mb = serve.rotate_mb.or(file.rotate_mb).unwrap_or(64);
        if rotate_mb == 0 {
            return Err(SettingsError::Invalid("--rotate-mb must be above 0".into()));
        }
        Ok(Settings {
            source,
            listen,
            token,
            allowed_hosts,
            log_dir: serve
                .log_dir
                .clone()
                .or(file.log_dir)
                .unwrap_or_else(|| PathBuf::from("zscope-log")),
            samples_log: !serve.no_samples_log && file.samples_log.unwrap_or(true),
            rotate_bytes: rotate_mb * 1024 * 1024,
            keep_files: serve.keep_files.or(file.keep_files).unwrap_or(5),
            record: device.record.clone(),
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

    #[test]
    fn tokens_must_guard_something_and_can_come_from_a_file() {
        for bad in ["", " ", "two words", "tab\there"] {
            let e = cli(&["--token", bad])
                .unwrap()
                .settings()
                .unwrap_err()
                .to_string();
            assert!(e.contains("printable ASCII without spaces"), "{bad:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = cli(&["--token-file", path.to_str().unwrap()])
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.token.as_deref(), Some("s3cret"));
        let e = cli(&["--token", "a", "--token-file", "b"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be used with"), "{e}");
        let e = cli(&["--token-file", "/nonexistent/zscope-token"])
            .unwrap()
            .settings()
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/zscope-token"), "{e}");
    }

    #[test]
    fn the_names_answered_are_loopback_the_listen_address_and_those_allowed() {
        let s = cli(&[]).unwrap().settings().unwrap();
        let hosts = s.allowed_hosts.unwrap();
        assert!(
            ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .all(|h| hosts.iter().any(|x| x == h))
        );
        let s = cli(&[
            "--listen",
            "[::1]:9000",
            "--allow-host",
            "Box.LAN,scope.local",
        ])
        .unwrap()
        .settings()
        .unwrap();
        let hosts = s.allowed_hosts.unwrap();
        assert!(
            hosts.contains(&"box.lan".to_string()) && hosts.contains(&"scope.local".to_string())
        );
        // All interfaces with a token and no names: any name is answered.
        let s = cli(&["--listen", "0.0.0.0:8080", "--token", "t"])
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.allowed_hosts, None);
    }
}
