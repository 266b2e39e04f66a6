//! What clap parses: the flags of the daemon and of each subcommand, as typed. Resolving
//! them (with the environment and the config file) is [`super::settings`]'s job.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use crate::model::detector::{DEFAULT_ALPHA, Method};

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

    /// Settings file (TOML): the daemon reads any of its options from it, e.g. `port =
    /// "/dev/ttyACM0"`; `score`, `eval` and `replay` read the detector's keys; each
    /// subcommand's help says what it reads.
    #[arg(long, env = "ZSCOPE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// The settings file, once read (the daemon's and the detector's settings share it).
    #[arg(skip)]
    pub(super) file: std::sync::OnceLock<super::file::FileSettings>,
}

/// Where the daemon's samples come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeviceArgs {
    /// Serial port of a device, e.g. /dev/ttyACM0; repeat (or separate with commas) for
    /// several devices. Without it: an emulated device on a pty.
    #[arg(long, env = "ZSCOPE_PORT", value_delimiter = ',')]
    pub port: Vec<String>,

    /// Run N emulated devices (simulator seeds --emulator-seed, +1, +2, ...), besides any
    /// --port [default: 1 without --port, else 0].
    #[arg(long, env = "ZSCOPE_EMULATE", value_name = "N")]
    pub emulate: Option<u32>,

    /// Attach every USB serial port of a known dev-board probe (ST-LINK, J-Link, DAPLink,
    /// CP210x, CH340, FTDI, …: `zscope ports` marks them) as it appears, each as a device;
    /// an unplugged board is followed when it comes back.
    #[arg(long, env = "ZSCOPE_AUTO")]
    pub auto: bool,

    /// With --auto, also attach USB serial ports with this id: VID:PID in hex (1234:abcd),
    /// or VID for all of a vendor's products; repeatable.
    #[arg(
        long,
        env = "ZSCOPE_AUTO_ID",
        value_delimiter = ',',
        value_name = "VID:PID"
    )]
    pub auto_id: Vec<String>,

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
    /// What each device judges: `simulator`, `temperature` or `adc:PA0` (an ADC pin); asked
    /// for after the device's hello. A source the device does not have is shown in the
    /// status with the ones it has.
    #[arg(long, env = "ZSCOPE_SOURCE", value_name = "NAME")]
    pub source: Option<String>,

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

    /// POST each anomaly event to this webhook URL (JSON with a Slack-style `text` field);
    /// repeat for more.
    #[arg(
        long = "notify",
        env = "ZSCOPE_NOTIFY",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub notify: Vec<String>,

    /// Publish every device's points, events, status and config to this MQTT broker:
    /// mqtt://[user[:password]@]host[:port], or mqtts://… over TLS (topics zscope/<device>/…).
    #[arg(long, env = "ZSCOPE_MQTT", value_name = "URL")]
    pub mqtt: Option<String>,

    /// Show the devices other zscope daemons publish to this MQTT broker (mqtt://…), beside
    /// any of this daemon's own; config changes go back to them through the broker.
    #[arg(long, env = "ZSCOPE_SUBSCRIBE", value_name = "URL")]
    pub subscribe: Option<String>,

    /// Keep no store (zscope.db in the log folder: every point, anomaly and config change,
    /// for the page's long history and `zscope export`); CSV logs only.
    #[arg(long, env = "ZSCOPE_NO_STORE")]
    pub no_store: bool,

    /// Delete stored points older than this many days; 0 keeps them [default: 30].
    #[arg(long, env = "ZSCOPE_RETAIN_DAYS", value_name = "DAYS")]
    pub retain_days: Option<f64>,

    /// Keep each device's store under this many MiB (the oldest points go first); 0 for no
    /// limit [default: 4096].
    #[arg(long, env = "ZSCOPE_RETAIN_MB", value_name = "MIB")]
    pub retain_mb: Option<u64>,

    /// The certificate authority (PEM file) that signed the mqtts:// broker's certificate
    /// [default: the usual public roots].
    #[arg(long, env = "ZSCOPE_MQTT_CA", value_name = "FILE")]
    pub mqtt_ca: Option<PathBuf>,

    /// A file holding the secret (at least 16 bytes) that commands between daemons are signed
    /// with: with --mqtt, this daemon's devices take only commands signed with it; with
    /// --subscribe, this daemon signs the commands it sends [default: none, commands unsigned:
    /// guard the command topics with the broker's access list].
    #[arg(long, env = "ZSCOPE_MQTT_COMMAND_KEY", value_name = "FILE")]
    pub mqtt_command_key: Option<PathBuf>,

    /// This daemon's MQTT client id, also its presence topic zscope/daemons/<id>/online
    /// [default: zscope-<host name>].
    #[arg(long, env = "ZSCOPE_MQTT_CLIENT_ID", value_name = "ID")]
    pub mqtt_client_id: Option<String>,

    /// Seconds a device stays quiet after a notification (later events are counted, not
    /// sent) [default: 60].
    #[arg(long, env = "ZSCOPE_NOTIFY_COOLDOWN", value_name = "SECS")]
    pub notify_cooldown: Option<u64>,

    /// Devices this daemon holds at most (those it starts with, USB boards with --auto,
    /// devices published to the broker of --subscribe); one more is refused, said once and
    /// counted (devices_refused in /api/status, /api/fleet and /metrics) [default: 256].
    #[arg(long, env = "ZSCOPE_MAX_DEVICES", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_devices: Option<u32>,
}

/// What `--config` is to `score` and `eval`.
const DETECTOR_FILE: &str = "--config FILE: this subcommand reads the detector's keys from the \
    TOML file (detector, window, threshold, warmup, max_run, include_anomalies, learn, rest, \
    seasonal, alpha); a flag beats its key.";
/// What `--config` is to `replay`.
const REPLAY_FILE: &str = "--config FILE: this subcommand reads the detector's keys from the \
    TOML file (detector, window, threshold, warmup, max_run, include_anomalies, learn, rest, \
    seasonal, alpha) for a CSV file, and the dashboard's and the logs' (listen, token, log_dir, \
    ...); a flag beats its key.";
/// What `--config` is to the subcommands that read no settings.
const NO_FILE: &str = "--config FILE: this subcommand reads no settings file (it is ignored).";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the serial ports this machine has (pseudo-terminals are not listed).
    #[command(after_help = NO_FILE)]
    Ports,
    /// Run the detector over a CSV file and write its rows back with the verdicts (no server).
    #[command(after_help = DETECTOR_FILE)]
    Score(ScoreArgs),
    /// Measure precision, recall, F1 and detection delay on labelled data or the simulator.
    #[command(after_help = DETECTOR_FILE)]
    Eval(EvalArgs),
    /// Stream a CSV file (or a --record recording) through the detector and the dashboard.
    #[command(after_help = REPLAY_FILE)]
    Replay(Box<ReplayArgs>),
    /// Run the firmware's app on this machine, on a pseudo-terminal whose path it prints
    /// (open it with `zscope --port PATH`); no dashboard.
    #[command(after_help = NO_FILE)]
    Emulate(EmulateArgs),
    /// Write stored points as CSV (the columns of samples.csv), from the store the daemon
    /// keeps in its log folder: the whole store, or a range.
    #[command(after_help = NO_FILE)]
    Export(ExportArgs),
}

/// `zscope export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The daemon's log folder [default: zscope-log].
    #[arg(long, env = "ZSCOPE_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// The device (its folder's name), when the daemon has several.
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// From this time, as `score` reads times: RFC 3339 (2026-11-25T10:00:00Z),
    /// 2026-11-25 10:00:00 (UTC), a date (2026-11-25), or seconds or ms since the Unix epoch.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// To this time (included), as --from.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Where to write: a file, or - for standard output [default: -].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `zscope emulate`.
#[derive(Debug, clap::Args)]
pub struct EmulateArgs {
    /// Samples per second (0: as fast as the reader takes them).
    #[arg(long, default_value_t = 50, value_name = "HZ")]
    pub rate: u32,
    /// The simulator's seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also make PATH a symlink to the pty (a stable name across restarts).
    #[arg(long, value_name = "PATH")]
    pub link: Option<PathBuf>,
    /// How samples go on the line: one frame each, batches, or whichever the rate needs at
    /// 115 200 baud (batches above 169 samples/s).
    #[arg(long, value_enum, default_value_t = FrameEncoding::Auto)]
    pub frames: FrameEncoding,
    /// What the device judges: `simulator`, or `temperature` (this host's CPU temperature,
    /// from /sys/class/thermal or hwmon; refused when it has none). The host can switch
    /// between them (POST /api/source).
    #[arg(long, default_value = "simulator", value_name = "NAME")]
    pub source: String,
    /// Where to look for the temperature sensor.
    #[arg(long, default_value = "/sys", value_name = "DIR")]
    pub thermal_root: PathBuf,
}

/// `--frames`: how an emulated device sends its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FrameEncoding {
    /// One frame per sample while that takes at most half the link, batches above.
    Auto,
    /// Always one frame per sample (every sample's mean, std, z and score).
    Single,
    /// Always batches (values on a grid, flags exact, z and score for anomalies only).
    Batched,
}

impl From<FrameEncoding> for zscope_firmware::Encoding {
    fn from(e: FrameEncoding) -> Self {
        match e {
            FrameEncoding::Auto => zscope_firmware::Encoding::Auto,
            FrameEncoding::Single => zscope_firmware::Encoding::Frames,
            FrameEncoding::Batched => zscope_firmware::Encoding::Batches,
        }
    }
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

/// Detector settings on the command line; unset ones come from the file, then the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DetectorArgs {
    /// Detector [default: adaptive; seasonal when --seasonal is given].
    #[arg(long, value_enum)]
    pub detector: Option<Method>,
    /// Window length [default: 64].
    #[arg(long)]
    pub window: Option<u32>,
    /// Anomaly when |z| is above this [default: adaptive 4.5 (its z is against a spread
    /// calibrated to the stream's tails), zscore and seasonal 3].
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Values in the window before the first verdict [default: the window up to 64;
    /// adaptive: 8 errors of its predictor].
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
    pub fn columns(&self) -> crate::batch::dataset::Columns {
        crate::batch::dataset::Columns {
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
    pub format: crate::batch::score::Format,
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
    /// `labels/combined_windows.json` and `config/profiles.json`) with NAB's own rules. NAB is
    /// public: `git clone --depth 1 https://github.com/numenta/NAB`, then `--nab NAB`.
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub nab: Option<PathBuf>,
    /// With --nab: score this NAB results folder (`<category>/<detector>_<file>.csv` with an
    /// `anomaly_score` column) instead of running the detector.
    #[arg(long, value_name = "DIR", requires = "nab")]
    pub results: Option<PathBuf>,
    /// Simulator scenario: default, small, shifts, fast-wave, counts, walk, missing, weekly;
    /// the anomaly-free streams free-gauss, free-daily, free-walk, free-counts, free-t3,
    /// free-bursty (every detection a false one); offsets (one 8-sigma spike at every offset
    /// 10..=2500 on a sine, noise and a random walk); or all.
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
