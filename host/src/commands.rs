//! Each subcommand, from its parsed arguments to its output: what `main` dispatches to.

use std::io::Write;

use crate::cli::{Cli, EmulateArgs, EvalArgs, ExportArgs, ReplayArgs, ScoreArgs};
use crate::model::Method;
use crate::source::SourceSetting;

/// How a command failed: the exit code (2: usage, 1: the work itself) and the message.
pub type Failure = (u8, String);

fn usage(e: impl std::fmt::Display) -> Failure {
    (2, e.to_string())
}

fn failed(e: impl std::fmt::Display) -> Failure {
    (1, e.to_string())
}

/// The daemon (no subcommand).
pub fn daemon(cli: &Cli) -> Result<(), Failure> {
    let settings = cli.settings().map_err(usage)?;
    start(settings)
}

/// `zscope replay`.
pub fn replay(cli: &Cli, args: &ReplayArgs) -> Result<(), Failure> {
    use crate::source::replay::{Speed, is_recording, parse_speed};
    let mut settings = cli.replay_settings(args).map_err(usage)?;
    let speed = match (&args.speed, args.max) {
        (_, true) => Speed::Max,
        (Some(s), false) => Speed::Factor(parse_speed(s).map_err(usage)?),
        (None, false) => Speed::Factor(1.0),
    };
    let recording = is_recording(&args.input)
        .map_err(|e| failed(format!("cannot read {}: {e}", args.input.display())))?;
    let source = if recording {
        SourceSetting::ReplayFrames {
            path: args.input.clone(),
            speed,
        }
    } else {
        SourceSetting::ReplayCsv {
            path: args.input.clone(),
            speed,
            columns: args.columns.columns(),
            strict: args.columns.strict,
            detector: cli
                .detector(&args.detector)
                .and_then(|d| Ok(d.resolve(None)?))
                .map_err(usage)?,
        }
    };
    settings.devices = vec![crate::app::DeviceSetting::new(source)];
    settings.record = None;
    start(settings)
}

fn start(settings: crate::app::Settings) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| failed(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(crate::app::run(settings))
        .map_err(|e| failed(format!("{e:#}")))
}

/// `zscope score`.
pub fn score(cli: &Cli, args: &ScoreArgs) -> Result<(), Failure> {
    use crate::batch::score::{ScoreError, ScoreJob, report, score, score_folder};
    let job = ScoreJob {
        input: args.input.clone(),
        output: args.output.clone(),
        format: args.format,
        columns: args.columns.columns(),
        strict: args.columns.strict,
        detector: cli.detector(&args.detector).map_err(usage)?,
    };
    if args.input.is_dir() {
        let done = score_folder(&job).map_err(failed)?;
        let (mut rows, mut flagged) = (0, 0);
        for (input, summary) in &done {
            let one = ScoreJob {
                input: input.clone(),
                output: job
                    .output
                    .join(input.strip_prefix(&job.input).unwrap_or(input)),
                ..job.clone()
            };
            eprintln!("{}", report(&one, summary));
            rows += summary.rows;
            flagged += summary.anomalies;
        }
        eprintln!(
            "{} files, {rows} rows, {flagged} flagged, written below {}",
            done.len(),
            job.output.display()
        );
        return Ok(());
    }
    let summary = match score(&job) {
        // The reader went away (`| head`): done, quietly, as Unix tools are.
        Err(ScoreError::Output { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            return Ok(());
        }
        result => result.map_err(failed)?,
    };
    eprintln!("{}", report(&job, &summary));
    Ok(())
}

/// `zscope eval`.
pub fn eval(cli: &Cli, args: &EvalArgs) -> Result<(), Failure> {
    use crate::batch::eval::{Series, scenarios, simulate_scenario};
    let spec = cli.detector(&args.detector).map_err(usage)?;
    if let Some(dir) = &args.nab {
        let config = spec.resolve(None).map_err(usage)?;
        return nab(dir, args.results.as_deref(), config, args.sweep);
    }
    let config;
    let mut series = Vec::new();
    if let Some(path) = &args.input {
        let mut data = crate::batch::dataset::Dataset::open(
            path,
            &args.columns.columns(),
            args.columns.strict,
        )
        .map_err(failed)?;
        if data.layout.label.is_none() {
            return Err(usage(format!(
                "{} has no label column: pass --label-col, or evaluate on the simulator (no file)",
                path.display()
            )));
        }
        let (mut values, mut labels, mut times) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(r) = data.next_record().map_err(failed)? {
            values.push(r.value);
            labels.push(r.label == Some(true));
            times.push(r.time_ms);
        }
        config = spec
            .resolve(crate::batch::dataset::median_interval(&times))
            .map_err(usage)?;
        if let Some(problems) = data.problems() {
            eprintln!("{problems}");
        }
        series.push(Series {
            name: path.display().to_string(),
            about: format!("{} rows", values.len()),
            values,
            labels,
            period: match config.baseline {
                zscope_core::Baseline::Seasonal { period, .. } => Some(period),
                _ => None,
            },
        });
    } else {
        config = spec.resolve(None).map_err(usage)?;
        let all = scenarios(args.seed);
        let chosen: Vec<_> = all
            .iter()
            .filter(|s| args.sim == "all" || s.name == args.sim)
            .collect();
        let offsets = args.sim == "all" || args.sim == "offsets";
        if chosen.is_empty() && !offsets {
            let names: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(usage(format!(
                "no scenario '{}': choose one of {}, offsets, or all",
                args.sim,
                names.join(", ")
            )));
        }
        if offsets {
            let text = crate::batch::eval::offsets_report(config, args.seed)
                .map_err(|e| usage(format!("invalid detector settings: {e}")))?;
            print!("{text}");
            if chosen.is_empty() {
                return Ok(());
            }
        }
        for s in chosen {
            let (values, labels) =
                simulate_scenario(s, args.samples).map_err(|e| failed(format!("{e}")))?;
            series.push(Series {
                name: s.name.into(),
                about: s.about.into(),
                values,
                labels,
                period: Some(s.sim.period),
            });
        }
    }
    let (text, rows) = crate::batch::eval::report(&series, config, args.tolerance, args.sweep)
        .map_err(|e| usage(format!("invalid detector settings: {e}")))?;
    print!("{text}");
    if let Some(out) = &args.out {
        crate::batch::eval::write_sweep(out, &rows).map_err(failed)?;
        println!("\nsweep written to {}", out.display());
    }
    Ok(())
}

/// `zscope ports`.
pub fn ports() -> Result<(), Failure> {
    let ports = serialport::available_ports()
        .map_err(|e| failed(format!("cannot list serial ports: {e}")))?;
    if ports.is_empty() {
        println!("no serial ports found (pseudo-terminals are not listed; pass them with --port)");
    }
    let width = ports.iter().map(|p| p.port_name.len()).max().unwrap_or(0);
    for p in ports {
        println!("{}", port_line(&p.port_name, p.port_type, width));
    }
    Ok(())
}

/// One port as `zscope ports` lists it: its path, padded to `width`, and what it is.
fn port_line(name: &str, kind: serialport::SerialPortType, width: usize) -> String {
    let what = match kind {
        serialport::SerialPortType::UsbPort(u) => {
            let product = [u.manufacturer, u.product]
                .into_iter()
                .flatten()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let serial = u
                .serial_number
                .filter(|s| !s.trim().is_empty())
                .map(|s| format!(", serial {}", s.trim()))
                .unwrap_or_default();
            let auto = match crate::source::usb::kind(u.vid, u.pid, &[]) {
                Some(kind) => format!(" ({kind}: --auto attaches it)"),
                None => String::new(),
            };
            let product = if product.is_empty() {
                String::new()
            } else {
                format!(" {product}")
            };
            format!("USB {:04x}:{:04x}{product}{serial}{auto}", u.vid, u.pid)
        }
        serialport::SerialPortType::PciPort => "PCI serial port".into(),
        serialport::SerialPortType::BluetoothPort => "Bluetooth serial port".into(),
        serialport::SerialPortType::Unknown => "serial port (no USB ids)".into(),
    };
    format!("{name:<width$}  {what}")
}

fn nab(
    dir: &std::path::Path,
    results: Option<&std::path::Path>,
    config: zscope_core::DetectorConfig,
    sweep: bool,
) -> Result<(), Failure> {
    use crate::batch::eval::{NabCandidate, nab_candidates, nab_published, nab_run, nab_table};
    let t = std::time::Instant::now();
    let corpus = crate::batch::nab::Corpus::load(dir).map_err(failed)?;
    let load = t.elapsed().as_secs_f64();
    if let Some(results) = results {
        let scores = corpus.read_results(results).map_err(failed)?;
        println!(
            "NAB results in {}, scored with NAB's rules:",
            results.display()
        );
        for p in corpus.score(&scores).map_err(failed)? {
            println!(
                "  {:<20} {:>8.4}  (threshold {}, {}/{} windows, {} FP rows)",
                p.profile, p.normalized, p.threshold, p.windows_hit, corpus.windows, p.fp_rows
            );
        }
        return Ok(());
    }
    let candidates = if sweep {
        nab_candidates(config)
    } else {
        vec![NabCandidate::Detector(config)]
    };
    let mut runs = Vec::new();
    for c in candidates {
        runs.push(nab_run(&corpus, c).map_err(usage)?);
    }
    println!(
        "NAB: {} files, {} rows, {} labelled windows ({})",
        corpus.files.len(),
        corpus.rows(),
        corpus.windows,
        dir.display()
    );
    if !sweep && let Some(r) = runs.first() {
        println!(
            "detector: {}",
            crate::batch::eval::candidate_name(r.candidate)
        );
        for (what, list) in [
            ("optimised", &r.optimised),
            ("as configured", &r.configured),
        ] {
            for p in list {
                let threshold = if what == "optimised" {
                    format!("threshold {:.6}, ", p.threshold)
                } else {
                    String::new()
                };
                println!(
                    "  {what:<14} {:<20} {:>8.4}  ({threshold}{}/{} windows, {} FP rows)",
                    p.profile, p.normalized, p.windows_hit, corpus.windows, p.fp_rows
                );
            }
        }
        println!(
            "  rows sharing the top score: {} of {} scored ({:.3}%)",
            r.ties.0,
            r.ties.1,
            100.0 * r.ties.0 as f64 / r.ties.1.max(1) as f64
        );
        println!(
            "  time: load {load:.2} s, detect {:.2} s, score {:.2} s",
            r.seconds.0, r.seconds.1
        );
    } else {
        print!("{}", nab_table(&runs, corpus.windows, &nab_published(dir)));
        let detect: f64 = runs.iter().map(|r| r.seconds.0 + r.seconds.1).sum();
        println!("time: load {load:.2} s, {} runs {detect:.2} s", runs.len());
    }
    Ok(())
}

/// `zscope emulate`: the device on a pty until interrupted.
pub fn emulate(args: &EmulateArgs) -> Result<(), Failure> {
    use crate::source::emulated::{BOARD, Emulator};
    use zscope_core::source::Source;
    let source = Source::parse(&args.source)
        .map_err(|e| failed(format!("--source {:?}: {e}", args.source)))?;
    let thermal = crate::source::emulated::find_thermal(&args.thermal_root);
    match source {
        Source::Simulator | Source::Temperature => {}
        other => {
            return Err(failed(format!(
                "--source {other}: the emulated device has the simulator and, on a host with a \
                 temperature sensor, temperature; {other} needs a board"
            )));
        }
    }
    if source == Source::Temperature
        && let Err(why) = &thermal
    {
        return Err(failed(format!("--source temperature: {why}")));
    }
    let settings = zscope_firmware::Settings {
        board: BOARD,
        source,
        sources: zscope_core::source::Sources {
            temperature: thermal.is_ok(),
            max_sensor_hz: crate::source::emulated::MAX_THERMAL_HZ,
            ..zscope_core::source::Sources::simulator()
        },
        rate_hz: args.rate,
        simulator: zscope_core::SimConfig {
            seed: args.seed,
            ..zscope_core::SimConfig::default()
        },
        encoding: args.frames.into(),
        ..zscope_firmware::Settings::default()
    };
    let emulator = match thermal {
        Ok(path) => Emulator::spawn_sensing(settings.clone(), args.link.as_deref(), path),
        Err(_) => Emulator::spawn_linked(settings.clone(), args.link.as_deref()),
    }
    .map_err(|e| match e {
        crate::source::emulated::SpawnError::Setup(zscope_firmware::app::SetupError::Source(
            why,
        )) => failed(format!("--source {source} at --rate {}: {why}", args.rate)),
        e => failed(e),
    })?;
    println!("{}", emulator.path().display());
    let frames = if settings
        .encoding
        .batches(settings.rate_hz, settings.link_baud)
    {
        "batched"
    } else {
        "one frame per sample"
    };
    // Until Ctrl-C or SIGTERM (listened for before saying so); then the device stops and
    // its link goes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt())?;
            let mut terminate = signal(SignalKind::terminate())?;
            eprintln!(
                "zscope emulate: device on {} at {} Hz, {frames}; Ctrl-C to stop",
                emulator.path().display(),
                args.rate
            );
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            Ok::<(), std::io::Error>(())
        })
        .map_err(|e| failed(format!("cannot listen for Ctrl-C: {e}")))?;
    drop(emulator);
    match &args.link {
        Some(link) => eprintln!("zscope emulate: stopped; {} removed", link.display()),
        None => eprintln!("zscope emulate: stopped"),
    }
    Ok(())
}

/// `zscope export`: stored points as CSV.
pub fn export(args: &ExportArgs) -> Result<(), Failure> {
    let dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("zscope-log"));
    let path = find_store(&dir, args.device.as_deref()).map_err(usage)?;
    let time = |flag: &str, s: &Option<String>| -> Result<Option<f64>, Failure> {
        s.as_deref()
            .map(|s| parse_time(s).map_err(|e| usage(format!("{flag} '{s}': {e}"))))
            .transpose()
    };
    let from = time("--from", &args.from)?.unwrap_or(f64::MIN);
    let to = time("--to", &args.to)?.unwrap_or(f64::MAX);
    let reader = crate::sink::store::Reader::open(&path)
        .map_err(|e| failed(format!("cannot open the store {}: {e}", path.display())))?;
    let out: Box<dyn std::io::Write> = match &args.output {
        Some(p) if p.as_os_str() != "-" => Box::new(
            std::fs::File::create(p)
                .map_err(|e| failed(format!("cannot write {}: {e}", p.display())))?,
        ),
        _ => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(out);
    let header = writeln!(out, "{}", crate::sink::csv::header());
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    let versions = reader
        .versions()
        .map_err(|e| failed(format!("cannot read the store {}: {e}", path.display())))?;
    let written = header.map_err(anyhow::Error::from).and_then(|()| {
        reader.each_point(from, to, |p, host_ms, truth| {
            let mut row = crate::sink::csv::Row::new(p, host_ms, truth);
            if let Some(v) = versions.get(&p.config_version) {
                row.source.clone_from(&v.source);
                row.unit = zscope_core::source::Unit::from_symbol(&v.unit)
                    .unwrap_or_default()
                    .symbol();
                row.detector = v.detector.map_or("", Method::name);
            }
            csv.serialize(row).map_err(std::io::Error::other)
        })
    });
    let flushed = csv.flush();
    match written.and_then(|n| flushed.map(|()| n).map_err(Into::into)) {
        Ok(n) => {
            eprintln!("zscope export: {n} points from {}", path.display());
            Ok(())
        }
        Err(e) if is_broken_pipe(&e) => Ok(()),
        Err(e) => Err(failed(format!("export from {}: {e:#}", path.display()))),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The store in `dir`: `dir/zscope.db` (one device), or `dir/<device>/zscope.db`.
fn find_store(dir: &std::path::Path, device: Option<&str>) -> Result<std::path::PathBuf, String> {
    use crate::sink::store::FILE;
    let devices: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "cannot read the log folder {}: {e} (--log-dir)",
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .filter(|e| e.path().join(FILE).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = devices.clone();
    sorted.sort();
    match device {
        Some(name) if dir.join(name).join(FILE).is_file() => Ok(dir.join(name).join(FILE)),
        Some(name) => Err(format!(
            "no device '{name}' in {}: the devices with a store are {}",
            dir.display(),
            if sorted.is_empty() {
                "none".into()
            } else {
                sorted.join(", ")
            }
        )),
        None if dir.join(FILE).is_file() => Ok(dir.join(FILE)),
        None => match sorted.as_slice() {
            [one] => Ok(dir.join(one).join(FILE)),
            [] => Err(format!(
                "no store in {} (the daemon keeps {FILE} in its log folder, or in one folder per \
                 device): is this the daemon's --log-dir?",
                dir.display()
            )),
            several => Err(format!(
                "{} has several devices ({}): pick one with --device",
                dir.display(),
                several.join(", ")
            )),
        },
    }
}

/// RFC 3339, or ms since the Unix epoch.
/// A time as `score` reads one (RFC 3339, `YYYY-MM-DD HH:MM:SS`, a date, epoch seconds or
/// milliseconds), in ms since the epoch.
fn parse_time(s: &str) -> Result<f64, String> {
    crate::batch::dataset::parse_time(s)
        .map(|ms| ms as f64)
        .ok_or_else(|| {
            "not a time: give RFC 3339 (2026-11-25T10:00:00Z), 2026-11-25 10:00:00 (UTC), \
             a date (2026-11-25), or seconds or milliseconds since the Unix epoch"
                .to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_one_aligned_line_each() {
        let usb = serialport::SerialPortType::UsbPort(serialport::UsbPortInfo {
            vid: 0x0483,
            pid: 0x374b,
            serial_number: Some("066DFF55".into()),
            manufacturer: Some("STMicroelectronics".into()),
            product: Some("STM32 STLink\n".into()),
        });
        let a = port_line("/dev/ttyACM0", usb, 12);
        let b = port_line("/dev/ttyS0", serialport::SerialPortType::Unknown, 12);
        assert_eq!(
            a,
            "/dev/ttyACM0  USB 0483:374b STMicroelectronics STM32 STLink, serial 066DFF55 (stlink: --auto attaches it)"
        );
        assert_eq!(b, "/dev/ttyS0    serial port (no USB ids)");
        assert!(!a.contains('\t') && !a.contains('\n'));
    }
}
