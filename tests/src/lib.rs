//! Helpers for zscope's end-to-end tests: real parts, really started.
//!
//! * [`build_qemu_firmware`] builds the thumb firmware for QEMU (release) and returns its ELF.
//! * [`Qemu`] runs it on `qemu-system-arm -M netduinoplus2`, with the board's USART2 on a unix
//!   socket that `socat` bridges to a real pseudo-terminal (a plain `-serial pty` drops bytes
//!   while nothing has it open; this path loses nothing).
//! * [`Line`] is the host end of a serial line (a pty opened with `serialport`), speaking the
//!   wire protocol with deadlines, so a broken device fails a test instead of hanging it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zscope_core::wire::{self, Decoder, DeviceMsg, HostMsg, Sample};

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Build `zscope-firmware-qemu` for `thumbv7em-none-eabihf` in release mode and return the ELF.
///
/// Uses its own target folder (`target/qemu-tests`), so it never waits on the lock of the
/// `cargo test` that runs it; the second and later calls only check that it is fresh.
pub fn build_qemu_firmware() -> PathBuf {
    let root = workspace_root();
    let target_dir = root.join("target").join("qemu-tests");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "zscope-firmware",
            "--bin",
            "zscope-firmware-qemu",
            "--target",
            "thumbv7em-none-eabihf",
            "--target-dir",
        ])
        .arg(&target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the QEMU firmware failed");
    target_dir.join("thumbv7em-none-eabihf/release/zscope-firmware-qemu")
}

/// Wait until `f` returns `Some`, or panic with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The firmware running in QEMU, its UART on a pseudo-terminal. Killed on drop.
pub struct Qemu {
    qemu: Child,
    socat: Child,
    tty: PathBuf,
    dir: tempfile::TempDir,
}

impl Qemu {
    /// Boot `elf` on `netduinoplus2` and bridge USART2 to a pty.
    pub fn start(elf: &Path) -> Qemu {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("uart.sock");
        let tty = dir.path().join("tty");
        let log = std::fs::File::create(dir.path().join("qemu.log")).expect("log file");
        let qemu = Command::new("qemu-system-arm")
            .args(["-M", "netduinoplus2", "-nographic", "-monitor", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-serial", "null", "-serial"])
            .arg(format!("unix:{},server=on,wait=on", sock.display()))
            .arg("-kernel")
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("qemu-system-arm runs (apt-get install qemu-system-arm)");
        wait_for(Duration::from_secs(10), "QEMU's UART socket", || {
            sock.exists().then_some(())
        });
        let socat = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", tty.display()))
            .arg(format!("UNIX-CONNECT:{}", sock.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("socat runs (apt-get install socat)");
        wait_for(Duration::from_secs(10), "socat's pty", || {
            tty.exists().then_some(())
        });
        Qemu {
            qemu,
            socat,
            tty,
            dir,
        }
    }

    /// The pseudo-terminal to open.
    pub fn tty(&self) -> &Path {
        &self.tty
    }

    /// What QEMU printed (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("qemu.log")).unwrap_or_default()
    }

    /// Whether QEMU is still running (a firmware panic makes it exit 1).
    pub fn running(&mut self) -> bool {
        matches!(self.qemu.try_wait(), Ok(None))
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.socat.kill();
        let _ = self.qemu.kill();
        let _ = self.socat.wait();
        let _ = self.qemu.wait();
    }
}

/// The host end of a serial line, speaking the wire protocol.
pub struct Line {
    port: Box<dyn serialport::SerialPort>,
    decoder: Decoder,
    pending: Vec<u8>,
    buf: Vec<u8>,
}

impl Line {
    /// Open a serial port (a pty here) at 115 200 baud.
    pub fn open(path: &Path) -> Line {
        let port = serialport::new(path.to_string_lossy(), 115_200)
            .timeout(Duration::from_millis(50))
            .open()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        Line {
            port,
            decoder: Decoder::new(),
            pending: Vec::new(),
            buf: vec![0; 4096],
        }
    }

    /// The next message, or `None` after `timeout`. Bad frames are counted, not returned.
    pub fn next(&mut self, timeout: Duration) -> Option<DeviceMsg> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut input = &self.pending[..];
            while let Some(result) = self.decoder.next_message::<DeviceMsg>(&mut input) {
                if let Ok(msg) = result {
                    let used = self.pending.len() - input.len();
                    self.pending.drain(..used);
                    return Some(msg);
                }
            }
            self.pending.clear();
            if Instant::now() >= deadline {
                return None;
            }
            match self.port.read(&mut self.buf) {
                Ok(n) => self.pending.extend_from_slice(&self.buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("serial read failed: {e}"),
            }
        }
    }

    /// The next message that `pick` accepts, skipping others, or panic after `timeout`.
    pub fn expect<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&DeviceMsg) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(msg) => {
                    if let Some(v) = pick(&msg) {
                        return v;
                    }
                }
                None => panic!("timed out after {timeout:?} waiting for {what}"),
            }
        }
    }

    /// Samples, in order, until one with `seq >= last` arrives (others are skipped).
    pub fn samples_until(&mut self, last: u64, timeout: Duration) -> Vec<Sample> {
        let mut out = Vec::new();
        loop {
            let s = self.expect(timeout, "samples", |m| match m {
                DeviceMsg::Sample(s) => Some(*s),
                _ => None,
            });
            out.push(s);
            if s.seq >= last {
                return out;
            }
        }
    }

    /// Frame and send a command.
    pub fn send(&mut self, cmd: &HostMsg) {
        let mut frame = [0u8; wire::MAX_FRAME];
        let n = wire::encode(cmd, &mut frame).expect("commands fit a frame");
        self.send_raw(&frame[..n]);
    }

    /// Send raw bytes (garbage included).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self.port, bytes).expect("serial write");
    }

    /// The decoder's counters.
    pub fn stats(&self) -> wire::DecodeStats {
        *self.decoder.stats()
    }
}
