//! zscope-host: the `zscope` daemon and CLI, as a library the binary (and tests) call into.
//!
//! * [`cli`]: flags, environment and config file, resolved into [`cli::Settings`].
//! * [`source`]: the thread that owns the serial port (a board, or the emulator's pty).
//! * [`state`]: what the daemon knows; [`state::Ingest`] turns frames into state and log rows.
//! * [`log`]: the CSV logs.
//! * [`web`]: the dashboard, the WebSocket and the JSON API.
//! * [`dataset`], [`score`], [`eval`]: recorded CSV files, batch scoring, evaluation.
//! * [`run`]: wires them together.

pub mod cli;
pub mod dataset;
pub mod eval;
pub mod log;
pub mod nab;
pub mod replay;
pub mod score;
pub mod source;
pub mod state;
pub mod web;

use std::net::SocketAddr;

use anyhow::Context;
use zscope_core::SimConfig;
use zscope_firmware::emulator::{BOARD, Emulator};

use crate::cli::{Settings, SourceSetting};
use crate::log::CsvLog;
use crate::state::Ingest;

/// Run the daemon until Ctrl-C (or SIGTERM), printing where it serves and logs.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    serve(settings, |_| {}, shutdown()).await
}

/// Run the daemon until `stop` completes; `ready` gets the address it listens on.
pub async fn serve(
    settings: Settings,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (port, baud, emulator) = match &settings.source {
        SourceSetting::Serial { port, baud } => (port.clone(), *baud, None),
        SourceSetting::ReplayCsv { path, .. } | SourceSetting::ReplayFrames { path, .. } => {
            (path.display().to_string(), 0, None)
        }
        SourceSetting::Emulated { rate_hz, seed } => {
            let emulator = Emulator::spawn(zscope_firmware::Settings {
                board: BOARD,
                rate_hz: *rate_hz,
                simulator: SimConfig {
                    seed: *seed,
                    ..SimConfig::default()
                },
                ..zscope_firmware::Settings::default()
            })
            .context("cannot start the emulated device")?;
            let path = emulator.path().display().to_string();
            (path, 115_200, Some(emulator))
        }
    };
    let dir = &settings.log_dir;
    let samples_log = match settings.samples_log {
        true => Some(CsvLog::open(
            dir,
            "samples",
            settings.rotate_bytes,
            settings.keep_files,
        )?),
        false => None,
    };
    let anomalies_log = CsvLog::open(dir, "anomalies", settings.rotate_bytes, settings.keep_files)?;
    let (shared, commands) = source::Shared::new(port.clone());
    let ingest = Ingest::new(samples_log, anomalies_log);
    let link = match &settings.source {
        SourceSetting::ReplayCsv {
            path,
            speed,
            columns,
            strict,
            detector,
        } => {
            let data = dataset::Dataset::open(path, columns, *strict)?;
            let detector = score::detector(*detector)
                .map_err(|e| anyhow::anyhow!("invalid detector settings: {e}"))?;
            replay::spawn_csv(shared.clone(), commands, ingest, data, detector, *speed)
        }
        SourceSetting::ReplayFrames { path, speed } => {
            replay::spawn_frames(shared.clone(), commands, ingest, path.clone(), *speed)
        }
        _ => {
            let recorder = match &settings.record {
                Some(path) => Some(
                    source::Recorder::open(path)
                        .with_context(|| format!("cannot open the recording {}", path.display()))?,
                ),
                None => None,
            };
            source::spawn(
                shared.clone(),
                commands,
                ingest,
                port.clone(),
                baud,
                recorder,
            )
        }
    }
    .context("cannot start the reader thread")?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another zscope running? Choose another with --listen",
                settings.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let device = match (&emulator, &settings.source) {
        (Some(_), _) => format!("emulated device on {port}"),
        (None, SourceSetting::Serial { .. }) => format!("{port} at {baud} baud"),
        _ => format!("replay of {port}"),
    };
    println!("zscope: dashboard on http://{addr}/");
    println!("zscope: device: {device}");
    println!(
        "zscope: logging to {}",
        std::fs::canonicalize(dir).unwrap_or(dir.clone()).display()
    );
    let broadcaster = tokio::spawn(web::broadcaster(shared.clone()));
    let app = web::router(
        shared.clone(),
        settings.token.clone(),
        settings.allowed_hosts.clone(),
    );
    ready(addr);
    web::serve_http(listener, app, stop).await;
    tracing::info!("stopping");
    broadcaster.abort();
    shared.stop();
    let _ = tokio::task::spawn_blocking(move || link.join()).await;
    drop(emulator);
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
