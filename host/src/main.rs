//! `zscope`: parse the command line, then run the daemon or a subcommand.

use std::process::ExitCode;

use clap::Parser;
use zscope_host::cli::{Cli, Command, EvalArgs, ReplayArgs, ScoreArgs, SourceSetting};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "zscope_host=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match &cli.command {
        Some(Command::Ports) => ports(),
        Some(Command::Score(args)) => score(&cli, args),
        Some(Command::Eval(args)) => eval(&cli, args),
        Some(Command::Replay(args)) => replay(&cli, args),
        None => daemon(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn usage(e: impl std::fmt::Display) -> Failure {
    (2, e.to_string())
}

fn failed(e: impl std::fmt::Display) -> Failure {
    (1, e.to_string())
}

fn daemon(cli: &Cli) -> Result<(), Failure> {
    let settings = cli.settings().map_err(usage)?;
    start(settings)
}

fn replay(cli: &Cli, args: &ReplayArgs) -> Result<(), Failure> {
    use zscope_host::replay::{Speed, is_recording, parse_speed};
    let mut settings = cli.replay_settings(args).map_err(usage)?;
    let speed = match (&args.speed, args.max) {
        (_, true) => Speed::Max,
        (Some(s), false) => Speed::Factor(parse_speed(s).map_err(usage)?),
        (None, false) => Speed::Factor(1.0),
    };
    let recording = is_recording(&args.input)
        .map_err(|e| failed(format!("cannot read {}: {e}", args.input.display())))?;
    settings.source = if recording {
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
                .and_then(|d| d.resolve(None))
                .map_err(usage)?,
        }
    };
    settings.record = None;
    start(settings)
}

fn start(settings: zscope_host::cli::Settings) -> Result<(), Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| failed(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(zscope_host::run(settings))
        .map_err(|e| failed(format!("{e:#}")))
}

fn score(cli: &Cli, args: &ScoreArgs) -> Result<(), Failure> {
    use zscope_host::score::{ScoreJob, report, score, score_folder};
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
    let summary = score(&job).map_err(failed)?;
    eprintln!("{}", report(&job, &summary));
    Ok(())
}

fn eval(cli: &Cli, args: &EvalArgs) -> Result<(), Failure> {
    use zscope_host::eval::{Series, scenarios, simulate_scenario};
    let spec = cli.detector(&args.detector).map_err(usage)?;
    if let Some(dir) = &args.nab {
        let config = spec.resolve(None).map_err(usage)?;
        return nab(dir, args.results.as_deref(), config, args.sweep);
    }
    let config;
    let mut series = Vec::new();
    if let Some(path) = &args.input {
        let mut data =
            zscope_host::dataset::Dataset::open(path, &args.columns.columns(), args.columns.strict)
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
            .resolve(zscope_host::dataset::median_interval(&times))
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
        if chosen.is_empty() {
            let names: Vec<&str> = all.iter().map(|s| s.name).collect();
            return Err(usage(format!(
                "no scenario '{}': choose one of {}, or all",
                args.sim,
                names.join(", ")
            )));
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
    let (text, rows) = zscope_host::eval::report(&series, config, args.tolerance, args.sweep)
        .map_err(|e| usage(format!("invalid detector settings: {e}")))?;
    print!("{text}");
    if let Some(out) = &args.out {
        let mut w = csv::Writer::from_path(out).map_err(failed)?;
        w.write_record([
            "series",
            "baseline",
            "window",
            "threshold",
            "policy",
            "precision",
            "recall",
            "f1",
            "mean_delay",
            "tp",
            "fp",
            "fn",
        ])
        .map_err(failed)?;
        for (name, r) in &rows {
            let m = &r.metrics;
            w.write_record([
                name.clone(),
                zscope_host::eval::baseline_name(r.baseline),
                r.window.to_string(),
                r.threshold.to_string(),
                r.policy.to_string(),
                format!("{:.4}", m.precision),
                format!("{:.4}", m.recall),
                format!("{:.4}", m.f1),
                format!("{:.2}", m.mean_delay),
                m.true_positives.to_string(),
                m.false_positives.to_string(),
                m.false_negatives.to_string(),
            ])
            .map_err(failed)?;
        }
        w.flush().map_err(failed)?;
        println!("\nsweep written to {}", out.display());
    }
    Ok(())
}

fn ports() -> Result<(), Failure> {
    let ports = serialport::available_ports()
        .map_err(|e| failed(format!("cannot list serial ports: {e}")))?;
    if ports.is_empty() {
        println!("no serial ports found (pseudo-terminals are not listed; pass them with --port)");
    }
    for p in ports {
        let kind = match p.port_type {
            serialport::SerialPortType::UsbPort(u) => format!(
                "USB {:04x}:{:04x} {}",
                u.vid,
                u.pid,
                u.product.unwrap_or_default()
            ),
            serialport::SerialPortType::PciPort => "PCI".into(),
            serialport::SerialPortType::BluetoothPort => "Bluetooth".into(),
            serialport::SerialPortType::Unknown => String::new(),
        };
        println!("{}\t{kind}", p.port_name);
    }
    Ok(())
}

fn nab(
    dir: &std::path::Path,
    results: Option<&std::path::Path>,
    config: zscope_core::DetectorConfig,
    sweep: bool,
) -> Result<(), Failure> {
    use zscope_host::eval::{NabCandidate, nab_candidates, nab_published, nab_run, nab_table};
    let t = std::time::Instant::now();
    let corpus = zscope_host::nab::Corpus::load(dir).map_err(failed)?;
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
            zscope_host::eval::candidate_name(r.candidate)
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
