//! The arguments resolved: flags over environment over config file over defaults, checked,
//! into [`Settings`] (the daemon's) and [`DetectorSpec`] (a detector's, for every command).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::args::*;
use super::file::FileSettings;
pub use crate::app::{AutoSetting, DeviceSetting, Settings};
use crate::device::clean_name;
use crate::model::detector::{DetectorSpec, HostDetector, Period, Setting, SpecError};
use crate::source::SourceSetting;

/// Make names unique (`name`, `name-2`, …), in order.
fn unique_names(devices: &mut [DeviceSetting]) {
    let mut seen = std::collections::HashSet::new();
    for d in devices.iter_mut() {
        let base = d.name.clone();
        let mut n = 1;
        while !seen.insert(d.name.clone()) {
            n += 1;
            d.name = format!("{base}-{n}");
        }
    }
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
    /// A detector spec that cannot be resolved.
    #[error(transparent)]
    Detector(#[from] SpecError),
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
    /// The settings file (read once; none: every setting at its default).
    fn file(&self) -> Result<&FileSettings, SettingsError> {
        if let Some(file) = self.file.get() {
            return Ok(file);
        }
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        Ok(self.file.get_or_init(|| file))
    }

    /// The detector config for `score`, `eval` and `replay`: flags over the file over the
    /// defaults. A flag that would have no effect in the chosen combination is an error.
    pub fn detector(&self, args: &DetectorArgs) -> Result<DetectorSpec, SettingsError> {
        use zscope_core::{AnomalyPolicy, Baseline, DetectorConfig};
        let file = self.file()?;
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
        let given = [
            (Setting::Learn, learn.is_some()),
            (Setting::Rest, rest.is_some()),
            (Setting::Period, seasonal.is_some()),
            (Setting::Alpha, alpha.is_some()),
        ];
        if let Some(setting) = Setting::misplaced(method, &given) {
            return match setting {
                Setting::Learn => ignored(
                    "--learn",
                    "outside the adaptive detector (--detector adaptive)",
                ),
                Setting::Rest => ignored(
                    "--rest",
                    "outside the adaptive detector (--detector adaptive)",
                ),
                Setting::Period => ignored(
                    "--seasonal",
                    "outside the seasonal detector (drop --detector, or --detector seasonal)",
                ),
                Setting::Alpha => {
                    ignored("--alpha", "without a seasonal profile (--seasonal PERIOD)")
                }
            };
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
            threshold: args.threshold.or(file.threshold).unwrap_or(match method {
                Method::Adaptive => DetectorConfig::ADAPTIVE_THRESHOLD,
                _ => DetectorConfig::DEFAULT_THRESHOLD,
            }),
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
        HostDetector::validate(&config)
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
        let file = self.file()?.clone();
        let baud = device.baud.or(file.baud).unwrap_or(115_200);
        if baud == 0 {
            return Err(SettingsError::Invalid("--baud must be above 0".into()));
        }
        let judge = |name: Option<&String>, what: &str| {
            name.map(|n| {
                zscope_core::source::Source::parse(n)
                    .map_err(|e| SettingsError::Invalid(format!("{what} {n:?}: {e}")))
            })
            .transpose()
        };
        let judged = match &device.source {
            Some(n) => judge(Some(n), "--source")?,
            None => judge(file.source.as_ref(), "source")?,
        };
        let mut devices: Vec<DeviceSetting> = if device.port.is_empty() {
            let mut from_file: Vec<DeviceSetting> = file
                .port
                .iter()
                .map(|port| {
                    DeviceSetting::new(SourceSetting::Serial {
                        port: port.clone(),
                        baud,
                    })
                })
                .collect();
            for d in file.device.iter().flatten() {
                let mut setting = DeviceSetting::new(SourceSetting::Serial {
                    port: d.port.clone(),
                    baud: d.baud.unwrap_or(baud),
                });
                if let Some(name) = &d.name {
                    setting.name = clean_name(name);
                }
                setting.judge = judge(d.source.as_ref(), "[[device]] source")?;
                from_file.push(setting);
            }
            from_file
        } else {
            device
                .port
                .iter()
                .map(|port| {
                    DeviceSetting::new(SourceSetting::Serial {
                        port: port.clone(),
                        baud,
                    })
                })
                .collect()
        };
        let subscribing = serve.subscribe.is_some() || file.subscribe.is_some();
        let auto_ids = if device.auto_id.is_empty() {
            file.auto_id.clone().unwrap_or_default()
        } else {
            device.auto_id.clone()
        };
        let auto = match device.auto || file.auto.unwrap_or(false) {
            true => Some(AutoSetting {
                baud,
                extra: auto_ids
                    .iter()
                    .map(|id| crate::source::usb::UsbId::parse(id))
                    .collect::<Result<_, _>>()
                    .map_err(SettingsError::Invalid)?,
            }),
            false if !auto_ids.is_empty() => {
                return Err(SettingsError::Invalid(
                    "--auto-id names USB ids for --auto: add --auto".into(),
                ));
            }
            false => None,
        };
        let emulate = device.emulate.or(file.emulate).unwrap_or(u32::from(
            devices.is_empty() && !subscribing && auto.is_none(),
        ));
        if emulate > 64 {
            return Err(SettingsError::Invalid(format!(
                "--emulate {emulate}: at most 64 emulated devices"
            )));
        }
        let rate_hz = device.emulator_rate.or(file.emulator_rate).unwrap_or(50);
        let seed = device.emulator_seed.or(file.emulator_seed).unwrap_or(42);
        for i in 0..emulate {
            let mut d = DeviceSetting::new(SourceSetting::Emulated {
                rate_hz,
                seed: seed.wrapping_add(u64::from(i)),
            });
            if emulate > 1 {
                d.name = format!("emulated-{}", i + 1);
            }
            devices.push(d);
        }
        for d in &mut devices {
            // --source (or the file's) for every device a [[device]] table does not set.
            d.judge = d.judge.or(judged);
        }
        if devices.is_empty() && !subscribing && auto.is_none() {
            return Err(SettingsError::Invalid(
                "no device: give --port, --auto, --emulate N with N above 0, or --subscribe".into(),
            ));
        }
        unique_names(&mut devices);
        if device.record.is_some() && devices.len() > 1 {
            return Err(SettingsError::Invalid(
                "--record takes one device's frames: run one device to record it".into(),
            ));
        }
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
        let client_id = serve
            .mqtt_client_id
            .clone()
            .or(file.mqtt_client_id.clone())
            .unwrap_or_else(|| {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                format!("zscope-{}", host.trim())
            });
        let mqtt_ca = serve.mqtt_ca.clone().or(file.mqtt_ca.clone());
        let command_key = match serve
            .mqtt_command_key
            .clone()
            .or(file.mqtt_command_key.clone())
        {
            None => None,
            Some(path) => Some(
                crate::sink::command::CommandKey::read(&path)
                    .map_err(|e| SettingsError::Invalid(format!("--mqtt-command-key: {e}")))?,
            ),
        };
        let retain_days = serve.retain_days.or(file.retain_days).unwrap_or(30.0);
        let retain_mb = serve.retain_mb.or(file.retain_mb).unwrap_or(4096);
        if !(retain_days >= 0.0 && retain_days.is_finite()) {
            return Err(SettingsError::Invalid(format!(
                "--retain-days {retain_days}: give a number of days, 0 to keep everything"
            )));
        }
        let store = (!serve.no_store && file.store.unwrap_or(true)).then(|| {
            crate::sink::store::Retention {
                max_age: (retain_days > 0.0)
                    .then(|| std::time::Duration::from_secs_f64(retain_days * 86_400.0)),
                max_bytes: (retain_mb > 0).then_some(retain_mb << 20),
            }
        });
        let mqtt = match serve.mqtt.clone().or(file.mqtt.clone()) {
            None => None,
            Some(url) => Some(
                crate::sink::mqtt::MqttSetting::parse(&url, client_id.clone())
                    .map_err(SettingsError::Invalid)?
                    .with_ca(mqtt_ca.clone())
                    .with_command_key(command_key.clone()),
            ),
        };
        let subscribe = match serve.subscribe.clone().or(file.subscribe.clone()) {
            None => None,
            Some(url) => Some(
                crate::sink::mqtt::MqttSetting::parse(&url, format!("{client_id}-subscriber"))
                    .map_err(|e| SettingsError::Invalid(e.replace("--mqtt", "--subscribe")))?
                    .with_ca(mqtt_ca)
                    .with_command_key(command_key),
            ),
        };
        if mqtt.is_none()
            && subscribe.is_none()
            && serve
                .mqtt_command_key
                .clone()
                .or(file.mqtt_command_key.clone())
                .is_some()
        {
            return Err(SettingsError::Invalid(
                "--mqtt-command-key signs the commands daemons send each other over MQTT: \
                 give it with --mqtt (a gateway checks them) or --subscribe (a central daemon \
                 signs them)"
                    .into(),
            ));
        }
        let notify = if serve.notify.is_empty() {
            file.notify.unwrap_or_default()
        } else {
            serve.notify.clone()
        };
        for url in &notify {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::Invalid(format!(
                    "--notify '{url}' is not an http:// or https:// URL"
                )));
            }
        }
        Ok(Settings {
            devices,
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
            notify,
            notify_cooldown: std::time::Duration::from_secs(
                serve.notify_cooldown.or(file.notify_cooldown).unwrap_or(60),
            ),
            max_devices: serve
                .max_devices
                .or(file.max_devices)
                .map_or(crate::app::settings::MAX_DEVICES, |n| n as usize),
            mqtt,
            subscribe,
            auto,
            store,
            header_timeout: crate::web::HEADER_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use zscope_core::source::{Pin, Source};

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("zscope").chain(args.iter().copied()))
    }

    /// The daemon's settings from these flags (they must parse and resolve).
    fn settings(args: &[&str]) -> Settings {
        cli(args).unwrap().settings().unwrap()
    }

    /// Why these flags parse but cannot be resolved.
    fn refusal(args: &[&str]) -> String {
        cli(args).unwrap().settings().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_emulator_on_loopback() {
        let s = settings(&[]);
        assert_eq!(
            s.devices,
            [DeviceSetting {
                name: "emulated".into(),
                source: SourceSetting::Emulated {
                    rate_hz: 50,
                    seed: 42
                },
                judge: None,
            }]
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
        let e = refusal(&["--listen", "0.0.0.0:8080"]);
        assert!(e.contains("without a token"), "{e}");
        let e = refusal(&["--notify", "hooks.example/x"]);
        assert!(e.contains("is not an http:// or https:// URL"), "{e}");
    }

    /// Several devices: repeated --port, --emulate N, `[[device]]` tables; names from the
    /// ports, made unique and safe for a URL and a folder.
    #[test]
    fn several_devices_from_flags_or_the_file() {
        let s = settings(&[
            "--port",
            "/dev/ttyACM0",
            "--port",
            "/dev/ttyACM0,/dev/ttyUSB1",
        ]);
        let names: Vec<&str> = s.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["ttyACM0", "ttyACM0-2", "ttyUSB1"]);
        let s = settings(&["--emulate", "3", "--emulator-seed", "7"]);
        let seeds: Vec<(String, u64)> = s
            .devices
            .iter()
            .map(|d| match d.source {
                SourceSetting::Emulated { seed, .. } => (d.name.clone(), seed),
                _ => (d.name.clone(), u64::MAX),
            })
            .collect();
        assert_eq!(
            seeds,
            [
                ("emulated-1".to_string(), 7),
                ("emulated-2".to_string(), 8),
                ("emulated-3".to_string(), 9)
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zscope.toml");
        std::fs::write(
            &path,
            "baud = 9600\nsource = \"adc:PA0\"\n[[device]]\nname = \"bench left\"\n\
             port = \"/dev/ttyACM0\"\nsource = \"temperature\"\n\
             [[device]]\nport = \"/dev/ttyACM1\"\nbaud = 921600\n",
        )
        .unwrap();
        let s = settings(&["--config", path.to_str().unwrap()]);
        assert_eq!(
            s.devices,
            [
                DeviceSetting {
                    name: "bench_left".into(),
                    source: SourceSetting::Serial {
                        port: "/dev/ttyACM0".into(),
                        baud: 9600
                    },
                    judge: Some(Source::Temperature),
                },
                DeviceSetting {
                    name: "ttyACM1".into(),
                    source: SourceSetting::Serial {
                        port: "/dev/ttyACM1".into(),
                        baud: 921600
                    },
                    judge: Some(Source::Adc(Pin {
                        port: b'A',
                        number: 0
                    })),
                }
            ]
        );
        // The flag over the file, for every device the file's tables leave unset.
        let s = settings(&["--config", path.to_str().unwrap(), "--source", "simulator"]);
        let judged: Vec<_> = s.devices.iter().map(|d| d.judge).collect();
        assert_eq!(judged, [Some(Source::Temperature), Some(Source::Simulator)]);
        let e = refusal(&["--source", "adc:PA99"]);
        assert!(e.contains("--source \"adc:PA99\": not a pin name"), "{e}");
        let e = refusal(&["--emulate", "2", "--record", "x.bin"]);
        assert!(e.contains("--record takes one device"), "{e}");
        let e = refusal(&["--emulate", "0"]);
        assert!(e.contains("no device"), "{e}");
    }

    #[test]
    fn auto_attaches_instead_of_emulating_and_checks_its_ids() {
        use crate::source::usb::UsbId;
        let s = settings(&["--auto", "--auto-id", "1234:abcd,cafe", "--baud", "921600"]);
        assert!(s.devices.is_empty(), "no emulated device with --auto");
        let auto = s.auto.unwrap();
        assert_eq!(auto.baud, 921_600);
        assert_eq!(
            auto.extra,
            [
                UsbId {
                    vid: 0x1234,
                    pid: Some(0xabcd)
                },
                UsbId {
                    vid: 0xcafe,
                    pid: None
                }
            ]
        );
        let s = settings(&["--auto", "--port", "/dev/ttyUSB0"]);
        assert_eq!(s.devices.len(), 1, "--port beside --auto");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zscope.toml");
        std::fs::write(&path, "auto = true\nauto_id = [\"0403\"]\n").unwrap();
        let s = settings(&["--config", path.to_str().unwrap()]);
        assert_eq!(
            s.auto.unwrap().extra,
            [UsbId {
                vid: 0x0403,
                pid: None
            }]
        );
        let e = refusal(&["--auto", "--auto-id", "st-link"]);
        assert!(e.contains("--auto-id 'st-link'"), "{e}");
        let e = refusal(&["--auto-id", "0483:374b"]);
        assert!(e.contains("add --auto"), "{e}");
    }

    #[test]
    fn notifications_from_flags_or_the_file() {
        let s = settings(&[
            "--notify",
            "http://a/1,https://b/2",
            "--notify-cooldown",
            "5",
        ]);
        assert_eq!(s.notify, ["http://a/1", "https://b/2"]);
        assert_eq!(s.notify_cooldown, std::time::Duration::from_secs(5));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zscope.toml");
        std::fs::write(&path, "notify = [\"https://ntfy.sh/bench\"]\n").unwrap();
        let s = settings(&["--config", path.to_str().unwrap()]);
        assert_eq!(s.notify, ["https://ntfy.sh/bench"]);
        assert_eq!(s.notify_cooldown, std::time::Duration::from_secs(60));
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
        let s = settings(&["--config", p]);
        assert_eq!(
            s.devices[0].source,
            SourceSetting::Serial {
                port: "/dev/ttyUSB7".into(),
                baud: 9600
            }
        );
        assert!(!s.samples_log);
        let s = settings(&["--config", p, "--baud", "921600"]);
        assert!(matches!(
            s.devices[0].source,
            SourceSetting::Serial { baud: 921600, .. }
        ));
        std::fs::write(&path, "prot = 3\n").unwrap();
        let e = refusal(&["--config", p]);
        assert!(e.contains("unknown field `prot`"), "{e}");
    }

    #[test]
    fn tokens_must_guard_something_and_can_come_from_a_file() {
        for bad in ["", " ", "two words", "tab\there"] {
            let e = refusal(&["--token", bad]);
            assert!(e.contains("printable ASCII without spaces"), "{bad:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = settings(&["--token-file", path.to_str().unwrap()]);
        assert_eq!(s.token.as_deref(), Some("s3cret"));
        let e = cli(&["--token", "a", "--token-file", "b"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be used with"), "{e}");
        let e = refusal(&["--token-file", "/nonexistent/zscope-token"]);
        assert!(e.contains("/nonexistent/zscope-token"), "{e}");
    }

    #[test]
    fn the_names_answered_are_loopback_the_listen_address_and_those_allowed() {
        let s = settings(&[]);
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
        let s = settings(&["--listen", "0.0.0.0:8080", "--token", "t"]);
        assert_eq!(s.allowed_hosts, None);
    }
}
