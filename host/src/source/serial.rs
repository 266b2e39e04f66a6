//! A serial port (a board, or the emulator's pseudo-terminal): the one thread that owns it.
//!
//! [`spawn`] opens the port (retrying every second while it is missing: unplugged, not yet
//! created, reset), feeds what it reads to the core's streaming decoder, ingests each message,
//! and sends the commands queued for the device. Losing the port is never fatal: the state
//! says so, the page keeps being served, and the thread reconnects on its own. Samples from a
//! device whose hello it missed (the daemon started after the device) make it ask the device
//! who it is, once every [`ASK_EVERY`], until it says. A device that judges another source
//! than the one asked for (`--source`) is asked to switch after its hello.

use std::io::{Read, Write};
use std::sync::mpsc::TryRecvError;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zscope_core::wire::{self, Decoder, DeviceMsg, FrameError, HostMsg};

use super::recorder::Recorder;
use crate::device::Feed;
use crate::retry::Backoff;

/// How long the link waits before reopening a port it lost or could not open.
pub const RETRY: Duration = Duration::from_secs(1);

/// How often a link asks a device that has not said who it is.
pub const ASK_EVERY: Duration = Duration::from_secs(1);

/// Where a link opens its port: fixed, or moved by `--auto` when a board comes back under
/// another name.
#[derive(Debug, Clone)]
pub struct PortPath(Arc<Mutex<String>>);

impl PortPath {
    /// A port at `path`.
    pub fn new(path: String) -> Self {
        PortPath(Arc::new(Mutex::new(path)))
    }

    /// Where the port is now.
    pub fn get(&self) -> String {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The port is at `path` from now on (the link opens it there at its next try).
    pub fn set(&self, path: String) {
        if let Ok(mut p) = self.0.lock() {
            *p = path;
        }
    }
}

/// Start the thread that owns `port` at `baud`, recording what it reads if asked.
pub fn spawn(
    feed: Feed,
    port: PortPath,
    baud: u32,
    mut recorder: Option<Recorder>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zscope-link".into())
        .spawn(move || {
            let mut last_error = String::new();
            let mut backoff = Backoff::steady(RETRY);
            while !feed.stopping() {
                let port = port.get();
                match serialport::new(&port, baud)
                    .timeout(Duration::from_millis(20))
                    .open()
                {
                    Ok(serial) => {
                        tracing::info!("connected to {port} at {baud} baud");
                        feed.update(|state, _| state.connected());
                        last_error.clear();
                        let why = run(&feed, serial, &mut recorder);
                        if feed.stopping() {
                            break;
                        }
                        tracing::warn!("lost {port}: {why}; retrying every second");
                        feed.update(|state, _| state.disconnected(format!("lost {port}: {why}")));
                    }
                    Err(e) => {
                        let why = format!(
                            "cannot open {port}: {e}. Is the device plugged in? \
                             (`zscope ports` lists serial ports)"
                        );
                        if why != last_error {
                            tracing::warn!("{why}; retrying every second");
                            last_error = why.clone();
                        }
                        feed.update(|state, _| state.disconnected(why));
                    }
                }
                std::thread::sleep(backoff.failed());
            }
        })
}

/// Read and write the open port until it fails; returns why.
fn run(
    feed: &Feed,
    mut serial: Box<dyn serialport::SerialPort>,
    recorder: &mut Option<Recorder>,
) -> String {
    let mut decoder: Decoder = Decoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut reported_version = false;
    let mut asked: Option<Instant> = None;
    loop {
        if feed.stopping() {
            return "daemon stopping".into();
        }
        loop {
            match feed.commands.try_recv() {
                Ok(cmd) => {
                    let mut frame = [0u8; wire::MAX_FRAME];
                    let Ok(n) = wire::encode(&cmd, &mut frame) else {
                        continue;
                    };
                    if let Err(e) = serial.write_all(&frame[..n]) {
                        return format!("write failed: {e}");
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return "daemon stopping".into(),
            }
        }
        let n = match serial.read(&mut buf) {
            Ok(0) => return "end of file (the device closed the line)".into(),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => return format!("read failed: {e}"),
        };
        let now = chrono::Utc::now();
        if n == 0 {
            continue;
        }
        let recorded = match recorder {
            Some(rec) => rec.write(&buf[..n]),
            None => Ok(()),
        };
        let mut input = &buf[..n];
        let unidentified = feed.update(|state, out| {
            if let Err(e) = recorded {
                state.set_link_error(e);
            }
            while let Some(result) = decoder.next_message::<DeviceMsg>(&mut input) {
                match result {
                    Ok(msg) => state.ingest(msg, now, out),
                    Err(e @ FrameError::Version { .. }) => {
                        if !reported_version {
                            tracing::error!("{e}");
                            reported_version = true;
                        }
                        state.set_link_error(e.to_string());
                    }
                    Err(e) => tracing::debug!("bad frame: {e}"),
                }
            }
            state.set_decode(decoder.stats());
            (state.unidentified(), state.source_to_ask())
        });
        let (unidentified, switch) = unidentified;
        if let Some(source) = switch {
            tracing::info!("asking the device to judge {source}");
            drop(feed.hub.command(|id| HostMsg::SetSource { id, source }));
        }
        // Samples from a device whose hello was missed: ask it (a ping is answered with a
        // fresh hello), once a second until it has said who it is.
        if unidentified && asked.is_none_or(|t| t.elapsed() >= ASK_EVERY) {
            tracing::info!("samples from an unidentified device on this line: asking it");
            drop(feed.hub.command(|id| HostMsg::Ping { id }));
            asked = Some(Instant::now());
        }
    }
}
