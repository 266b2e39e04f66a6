//! Host emulation: the firmware's app on a PC, over a real pseudo-terminal, with a std clock.
//!
//! [`Emulator::spawn`] opens a pty pair, runs [`App`] on the master end in a thread (through the
//! same [`poll`] step as the board), and tells you the slave end's path (`/dev/pts/N`), which
//! the host daemon opens like any serial port. The serial path is therefore the same as with a
//! board: bytes, framing, back-pressure. When nobody reads the pty, the app drops samples and
//! counts them, as a UART nobody listens to would.
//!
//! A pty buffers kilobytes; a UART holds a byte or two. [`Emulator::spawn_uart`] makes the link
//! take bytes only while fewer than a FIFO's worth wait unread at the slave end, so the app sees
//! a busy line as a board would (its batches grow while a frame is on the wire): `link-bench`
//! measures that way. The default keeps the pty's buffer, so a host that is slow for a moment
//! (a loaded test machine) loses nothing.
//!
//! The emulated board has the simulator and, when the host has one ([`find_thermal`]), a
//! temperature sensor: the host's own CPU temperature from `/sys/class/thermal` or hwmon,
//! read at the rate in force (at most [`MAX_THERMAL_HZ`]). It has no ADC: `adc:…` is refused.

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, poll as poll_fds};
use serialport::{SerialPort, TTYPort};

use zscope_firmware::app::{App, Clock, Settings, SetupError, poll};

/// Board name the emulated device reports.
pub const BOARD: &str = "emulated";

/// Highest rate the host's temperature is read at.
pub const MAX_THERMAL_HZ: u32 = 100;

/// The host's temperature sensor under `root` (`/sys` on Linux): the first
/// `class/thermal/thermal_zone*/temp`, else the first `class/hwmon/hwmon*/temp*_input`, that
/// reads as a number; or why there is none.
pub fn find_thermal(root: &std::path::Path) -> Result<PathBuf, String> {
    let mut candidates = Vec::new();
    for (dir, prefix, file) in [
        ("class/thermal", "thermal_zone", None),
        ("class/hwmon", "hwmon", Some("temp")),
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut zones: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        zones.sort();
        for zone in zones {
            match file {
                None => candidates.push(zone.join("temp")),
                Some(stem) => {
                    let Ok(files) = std::fs::read_dir(&zone) else {
                        continue;
                    };
                    let mut inputs: Vec<PathBuf> = files
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with(stem) && n.ends_with("_input"))
                        })
                        .collect();
                    inputs.sort();
                    candidates.extend(inputs);
                }
            }
        }
    }
    candidates
        .into_iter()
        .find(|p| read_thermal(p).is_ok())
        .ok_or_else(|| {
            format!(
                "this host has no temperature sensor zscope can read: nothing in \
                 {0}/class/thermal/thermal_zone*/temp or {0}/class/hwmon/hwmon*/temp*_input",
                root.display()
            )
        })
}

/// Degrees Celsius from a sysfs temperature file (millidegrees).
pub fn read_thermal(path: &std::path::Path) -> io::Result<f32> {
    let text = std::fs::read_to_string(path)?;
    let milli: i64 = text
        .trim()
        .parse()
        .map_err(|_| io::Error::other(format!("{} is not a temperature", path.display())))?;
    Ok(milli as f32 / 1000.0)
}

/// Milliseconds since the emulator started.
pub struct StdClock(Instant);

impl StdClock {
    /// A clock at 0 now.
    pub fn new() -> Self {
        StdClock(Instant::now())
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now_ms(&mut self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// A UART-like FIFO for [`Emulator::spawn_uart`]: 32 bytes, 2.8 ms at 115 200 baud.
pub const UART_FIFO: usize = 32;

/// The master end of a pty as an `embedded-io` serial line that never blocks.
pub struct PtyLink {
    port: TTYPort,
    /// The slave end, held open: what waits there unread is the line's backlog.
    peer: TTYPort,
    /// Bytes allowed to wait unread (`None`: as many as the pty holds).
    fifo: Option<usize>,
    /// Bytes written to the line so far.
    written: u64,
}

impl PtyLink {
    /// Room left in the emulated FIFO.
    fn room(&self) -> io::Result<usize> {
        let Some(fifo) = self.fifo else {
            return Ok(usize::MAX);
        };
        let unread = self.peer.bytes_to_read().map_err(io::Error::from)? as usize;
        Ok(fifo.saturating_sub(unread))
    }

    fn ready(&self, flags: PollFlags, timeout_ms: i32) -> io::Result<bool> {
        let mut fds = [PollFd::new(self.port.as_raw_fd(), flags)];
        let n = poll_fds(&mut fds, timeout_ms).map_err(io::Error::from)?;
        Ok(n > 0 && fds[0].revents().is_some_and(|r| r.intersects(flags)))
    }
}

impl embedded_io::ErrorType for PtyLink {
    type Error = io::Error;
}

impl embedded_io::ReadReady for PtyLink {
    fn read_ready(&mut self) -> io::Result<bool> {
        // Before the other end is first opened a pty master reports hang-up, not data.
        Ok(self.port.bytes_to_read().map_err(io::Error::from)? > 0)
    }
}

impl embedded_io::Read for PtyLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.port, buf)
    }
}

impl embedded_io::WriteReady for PtyLink {
    fn write_ready(&mut self) -> io::Result<bool> {
        Ok(self.room()? > 0 && self.ready(PollFlags::POLLOUT, 0)?)
    }
}

impl embedded_io::Write for PtyLink {
    /// Writes what the FIFO has room for (at least a byte when it was ready).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.room()?.max(1);
        let n = io::Write::write(&mut self.port, &buf[..buf.len().min(room)])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A running emulated device.
pub struct Emulator {
    path: PathBuf,
    link: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    faults: std::sync::mpsc::Sender<Vec<u8>>,
    /// Asks to fall silent, with where to say how many bytes were written by then.
    silence: std::sync::mpsc::Sender<std::sync::mpsc::Sender<u64>>,
    thread: Option<JoinHandle<io::Result<u64>>>,
}

/// Why the emulator could not start.
#[derive(Debug)]
pub enum SpawnError {
    /// The settings are invalid.
    Setup(SetupError),
    /// The pseudo-terminal could not be made.
    Pty(serialport::Error),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Setup(e) => write!(f, "invalid emulator settings: {e:?}"),
            SpawnError::Pty(e) => write!(f, "cannot open a pseudo-terminal: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {}

impl Emulator {
    /// Start the app on a new pty; the device boots at once (its hello waits in the pty).
    pub fn spawn(settings: Settings) -> Result<Self, SpawnError> {
        Self::spawn_linked(settings, None)
    }

    /// Like [`Emulator::spawn`], and make `link` a symlink to the pty (replacing what was
    /// there), so a restarted device appears at the same path, like a board plugged back in.
    /// The link is removed when the emulator stops.
    pub fn spawn_linked(
        settings: Settings,
        link: Option<&std::path::Path>,
    ) -> Result<Self, SpawnError> {
        Self::spawn_with(settings, link, None, None)
    }

    /// Like [`Emulator::spawn_linked`], with the host's temperature sensor at `thermal` (a
    /// sysfs file in millidegrees, from [`find_thermal`]) as the board's `temperature` source.
    pub fn spawn_sensing(
        settings: Settings,
        link: Option<&std::path::Path>,
        thermal: PathBuf,
    ) -> Result<Self, SpawnError> {
        Self::spawn_with(settings, link, None, Some(thermal))
    }

    /// Like [`Emulator::spawn`], with the line holding at most `fifo` unread bytes, as a UART
    /// does ([`UART_FIFO`]): a reader that takes bytes at the baud rate then paces the app as
    /// a real line would.
    pub fn spawn_uart(settings: Settings, fifo: usize) -> Result<Self, SpawnError> {
        Self::spawn_with(settings, None, Some(fifo), None)
    }

    fn spawn_with(
        mut settings: Settings,
        link: Option<&std::path::Path>,
        fifo: Option<usize>,
        thermal: Option<PathBuf>,
    ) -> Result<Self, SpawnError> {
        if thermal.is_some() {
            settings.sources.temperature = true;
            settings.sources.max_sensor_hz = MAX_THERMAL_HZ;
        }
        let mut app = App::new(settings).map_err(SpawnError::Setup)?;
        let (master, slave) = TTYPort::pair().map_err(SpawnError::Pty)?;
        let path = PathBuf::from(slave.name().unwrap_or_default());
        if let Some(link) = link {
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(&path, link)
                .map_err(|e| SpawnError::Pty(serialport::Error::from(e)))?;
        }
        let (faults, injected) = std::sync::mpsc::channel::<Vec<u8>>();
        let (silence, asked) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<u64>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("zscope-emulator".into())
            .spawn(move || {
                // The slave stays open so the pty keeps its buffer until a reader comes.
                let mut link = PtyLink {
                    port: master,
                    peer: slave,
                    fifo,
                    written: 0,
                };
                let mut clock = StdClock::new();
                let mut silent = false;
                // The temperature's schedule: (generation, start, readings taken).
                let mut sensing: Option<(u32, Instant, u64)> = None;
                let mut sensor_errors = 0u32;
                while !stopping.load(Ordering::Relaxed) {
                    if let Ok(reply) = asked.try_recv() {
                        silent = true;
                        let _ = reply.send(link.written);
                    }
                    if silent {
                        // Nothing more is sent; the line stays open for its reader.
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        continue;
                    }
                    // Injected faults go out between whole frames.
                    while let Ok(bytes) = injected.try_recv() {
                        let deadline = Instant::now() + std::time::Duration::from_secs(1);
                        while !app.pending_tx().0.is_empty() && Instant::now() < deadline {
                            poll(&mut app, &mut link, &mut clock)?;
                        }
                        io::Write::write_all(&mut link.port, &bytes)?;
                        link.written += bytes.len() as u64;
                    }
                    if let Some(path) = &thermal {
                        let want = app.sensor();
                        match (want.source, sensing) {
                            (Some(_), Some((g, _, _))) if g == want.generation => {}
                            (Some(_), _) => sensing = Some((want.generation, Instant::now(), 0)),
                            (None, _) => sensing = None,
                        }
                        if let Some((_, start, taken)) = sensing.as_mut() {
                            // Readings due by now at the rate, each read from the file.
                            let due = start.elapsed().as_micros() as u64 * u64::from(want.rate_hz)
                                / 1_000_000;
                            while *taken <= due {
                                match read_thermal(path) {
                                    Ok(celsius) => app.reading(celsius),
                                    Err(_) => {
                                        sensor_errors = sensor_errors.wrapping_add(1);
                                        app.sensor_fault();
                                    }
                                }
                                *taken += 1;
                            }
                            app.set_sensor_errors(sensor_errors);
                        }
                    }
                    poll(&mut app, &mut link, &mut clock)?;
                    if app.pending_tx().0.is_empty() {
                        // Idle: wake on input, or after a millisecond for the next sample.
                        link.ready(PollFlags::POLLIN, 1)?;
                    } else if !embedded_io::WriteReady::write_ready(&mut link)? {
                        if link.fifo.is_some() {
                            // A busy UART drains a byte every 87 µs at 115 200 baud.
                            std::thread::sleep(std::time::Duration::from_micros(100));
                        } else {
                            // Nobody reads the pty: wake on input, or in a millisecond.
                            link.ready(PollFlags::POLLIN, 1)?;
                        }
                    }
                }
                // Closing the pty drops what its reader has not taken yet: while a reader
                // takes it (the backlog shrinks), wait for the line to empty (10 s at most;
                // a reader that took nothing for a second is taken to be gone: a loaded
                // machine can leave a reader unscheduled for a few hundred milliseconds).
                let deadline = Instant::now() + std::time::Duration::from_secs(10);
                let mut backlog = link.peer.bytes_to_read().unwrap_or(0);
                let mut progress = Instant::now();
                while backlog > 0 && Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    let now = link.peer.bytes_to_read().unwrap_or(0);
                    if now < backlog {
                        progress = Instant::now();
                    } else if progress.elapsed() > std::time::Duration::from_secs(1) {
                        // Nobody reads: nothing to wait for.
                        break;
                    }
                    backlog = now;
                }
                Ok(link.written)
            })
            .map_err(|e| SpawnError::Pty(serialport::Error::from(e)))?;
        Ok(Emulator {
            path,
            link: link.map(std::path::Path::to_path_buf),
            stop,
            faults,
            silence,
            thread: Some(thread),
        })
    }

    /// Stop sending (the device goes quiet, its line stays open, so its reader can take every
    /// byte on it); how many bytes it wrote to the line. A test's exact count of what a
    /// reader must receive: nothing is dropped by closing the line, as [`Emulator::stop`] may
    /// when the reader lags.
    pub fn silence(&self) -> io::Result<u64> {
        let (reply, written) = std::sync::mpsc::channel();
        self.silence
            .send(reply)
            .map_err(|_| io::Error::other("the emulator has stopped"))?;
        written
            .recv_timeout(std::time::Duration::from_secs(10))
            .map_err(|_| io::Error::other("the emulator did not answer"))
    }

    /// Fault injection for testing hosts: write `bytes` raw on the line, between two frames.
    pub fn inject(&self, bytes: &[u8]) {
        let _ = self.faults.send(bytes.to_vec());
    }

    /// The serial port to open: the pty's slave end.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Stop the device (as if unplugged), once its reader has taken what is on the line (10 s
    /// at most, 1 s if the reader takes nothing); how many bytes it wrote to the line, or how
    /// its loop ended.
    pub fn stop(mut self) -> io::Result<u64> {
        self.halt()
    }

    fn halt(&mut self) -> io::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(link);
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("emulator thread panicked")),
            None => Ok(0),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}
