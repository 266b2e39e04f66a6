//! Where frames come from: a serial port (a board, or the emulator's pseudo-terminal).
//!
//! [`spawn`] starts the one thread that owns the port. It opens it (retrying every second while
//! it is missing: unplugged, not yet created, reset), feeds what it reads to the core's
//! streaming decoder, hands each message to [`Ingest`], sends the commands queued for the
//! device, and completes the matching acknowledgements. Losing the port is never fatal: the
//! state says so, the page keeps being served, and the thread reconnects on its own.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};
use zscope_core::wire::{self, Ack, Decoder, DeviceMsg, FrameError, HostMsg};

use crate::state::{Ingest, State};

/// How long the link waits before reopening a port it lost or could not open.
pub const RETRY: Duration = Duration::from_secs(1);

/// What the link thread, the web server and the broadcaster share.
pub struct Shared {
    state: Mutex<State>,
    commands: Mutex<Sender<HostMsg>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Ack>>>,
    next_id: AtomicU32,
    stop: AtomicBool,
    /// JSON updates for the browsers.
    pub updates: broadcast::Sender<Arc<str>>,
    /// When the daemon started.
    pub started: Instant,
}

impl Shared {
    /// Shared state for a device on `port`, and the receiving end of its command queue.
    pub fn new(port: String) -> (Arc<Self>, Receiver<HostMsg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        // 32 updates = 1.6 s of batches: a browser further behind skips ahead (bounded memory).
        let (updates, _) = broadcast::channel(32);
        let shared = Shared {
            state: Mutex::new(State::new(port)),
            commands: Mutex::new(tx),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            stop: AtomicBool::new(false),
            updates,
            started: Instant::now(),
        };
        (Arc::new(shared), rx)
    }

    /// The state, locked. A panic elsewhere never makes it unreadable.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u32, oneshot::Sender<Ack>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a command for the device; the receiver gets its acknowledgement.
    pub fn command(&self, make: impl FnOnce(u32) -> HostMsg) -> oneshot::Receiver<Ack> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending();
        // Commands whose caller stopped waiting (timed out) are forgotten here.
        pending.retain(|_, waiting| !waiting.is_closed());
        pending.insert(id, tx);
        drop(pending);
        let sent = self
            .commands
            .lock()
            .map(|c| c.send(make(id)).is_ok())
            .unwrap_or(false);
        if !sent {
            self.pending().remove(&id);
        }
        rx
    }

    /// Ask the link thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hand acknowledgements to the requests waiting for them.
    pub fn complete(&self, acks: impl IntoIterator<Item = Ack>) {
        let mut pending = self.pending();
        for ack in acks {
            if let Some(tx) = pending.remove(&ack.id) {
                let _ = tx.send(ack);
            }
        }
    }
}

/// Appends every byte read from the line to a file (`--record`), to be replayed later with
/// exactly the device's verdicts.
pub struct Recorder {
    file: std::fs::File,
    path: String,
    failed: bool,
}

impl Recorder {
    /// Open `path` for appending; a recording starts with a 0x00 (so a replay drops any partial
    /// frame before it, and `zscope replay` knows the file for a recording).
    pub fn open(path: &std::path::Path) -> std::io::Result<Recorder> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(&[0])?;
        Ok(Recorder {
            file,
            path: path.display().to_string(),
            failed: false,
        })
    }

    fn write(&mut self, bytes: &[u8], state: &mut State) {
        if let Err(e) = self.file.write_all(bytes) {
            if !self.failed {
                tracing::error!("cannot write the recording {}: {e}", self.path);
            }
            self.failed = true;
            state.link_error = Some(format!("recording {}: {e}", self.path));
        } else {
            self.failed = false;
        }
    }
}

/// Start the thread that owns `port` at `baud`, recording what it reads if asked.
pub fn spawn(
    shared: Arc<Shared>,
    commands: Receiver<HostMsg>,
    mut ingest: Ingest,
    port: String,
    baud: u32,
    mut recorder: Option<Recorder>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zscope-link".into())
        .spawn(move || {
            let mut last_error = String::new();
            while !shared.stop.load(Ordering::Relaxed) {
                match serialport::new(&port, baud)
                    .timeout(Duration::from_millis(20))
                    .open()
                {
                    Ok(serial) => {
                        tracing::info!("connected to {port} at {baud} baud");
                        shared.state().connected();
                        last_error.clear();
                        let why = run(&shared, &commands, &mut ingest, serial, &mut recorder);
                        if shared.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        tracing::warn!("lost {port}: {why}; retrying every second");
                        shared.state().disconnected(format!("lost {port}: {why}"));
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
                        shared.state().disconnected(why);
                    }
                }
                let mut state = shared.state();
                ingest.housekeeping(&mut state);
                drop(state);
                std::thread::sleep(RETRY);
            }
            // Last chance for rows still waiting on a full disk.
            ingest.housekeeping(&mut shared.state());
        })
}

/// Read and write the open port until it fails; returns why.
fn run(
    shared: &Shared,
    commands: &Receiver<HostMsg>,
    ingest: &mut Ingest,
    mut serial: Box<dyn serialport::SerialPort>,
    recorder: &mut Option<Recorder>,
) -> String {
    let mut decoder: Decoder = Decoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_housekeeping = Instant::now();
    let mut reported_version = false;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return "daemon stopping".into();
        }
        loop {
            match commands.try_recv() {
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
        let mut input = &buf[..n];
        let mut acks = Vec::new();
        {
            let mut state = shared.state();
            if let Some(rec) = recorder
                && n > 0
            {
                rec.write(&buf[..n], &mut state);
            }
            while let Some(result) = decoder.next_message::<DeviceMsg>(&mut input) {
                match result {
                    Ok(msg) => acks.extend(ingest.handle(&mut state, msg, now)),
                    Err(FrameError::Version { device, host }) => {
                        let e = FrameError::Version { device, host }.to_string();
                        if !reported_version {
                            tracing::error!("{e}");
                            reported_version = true;
                        }
                        state.link_error = Some(e);
                    }
                    Err(e) => tracing::debug!("bad frame: {e}"),
                }
            }
            state.set_decode(decoder.stats());
            if last_housekeeping.elapsed() >= RETRY {
                ingest.housekeeping(&mut state);
                last_housekeeping = Instant::now();
            }
        }
        if !acks.is_empty() {
            shared.complete(acks);
        }
    }
}
