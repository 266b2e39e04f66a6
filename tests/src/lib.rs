//! Helpers for zscope's end-to-end tests: real parts, really started.
//!
//! * [`build_qemu_firmware`] builds the thumb firmware for QEMU (release) and returns its ELF.
//! * [`Qemu`] runs it on `qemu-system-arm -M netduinoplus2`, with the board's USART2 on a unix
//!   socket that `socat` bridges to a real pseudo-terminal (a plain `-serial pty` drops bytes
//!   while nothing has it open; this path loses nothing).
//! * [`Line`] is the host end of a serial line (a pty opened with `serialport`), speaking the
//!   wire protocol with deadlines, so a broken device fails a test instead of hanging it.

pub mod bench;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zscope_core::wire::{self, Decoder, DeviceMsg, HostMsg, Sample};

/// Whether the external programs a test needs are installed. Without them the test is skipped
/// with a message saying what to install, except under CI (`CI` set), where a missing tool is
/// a failure: CI installs them all (`.ci/run`), so nothing is silently skipped there.
pub fn have_tools(test: &str, tools: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(bin, _)| {
            // /usr/sbin too: Debian puts daemons (mosquitto) there, off a user's PATH.
            Command::new("sh")
                .args([
                    "-c",
                    &format!("command -v {bin} || test -x /usr/sbin/{bin}"),
                ])
                .stdout(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test} needs: apt-get install {} (see .ci/run)",
        missing.join(" ")
    );
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("SKIPPED {msg}");
    false
}

/// The tools the QEMU tests need.
pub const QEMU_TOOLS: &[(&str, &str)] =
    &[("qemu-system-arm", "qemu-system-arm"), ("socat", "socat")];
/// The tools the browser test needs.
pub const BROWSER_TOOLS: &[(&str, &str)] = &[
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
];

/// The tools the MQTT tests need (Debian installs the broker in /usr/sbin).
pub const MQTT_TOOLS: &[(&str, &str)] = &[
    ("mosquitto", "mosquitto"),
    ("mosquitto_passwd", "mosquitto"),
];

/// A real Mosquitto broker on a free loopback port, with a config of its own; stopped when
/// dropped.
pub struct Mosquitto {
    child: Child,
    /// Its port.
    pub port: u16,
    conf: PathBuf,
    dir: tempfile::TempDir,
}

/// How a test's broker is set up beyond the defaults (anonymous clients, plain TCP, no
/// persistence).
#[derive(Default)]
pub struct BrokerSetup {
    /// Keep sessions, queued messages and retained ones across a restart (saved when it
    /// stops; a crash loses what changed since).
    pub persistence: bool,
    /// Speak TLS only, with this certificate and key (PEM).
    pub tls: Option<(String, String)>,
    /// Let in only these users (user, password).
    pub users: Vec<(String, String)>,
}

impl Mosquitto {
    /// The broker's program: on the PATH, or where Debian puts it.
    pub fn program() -> PathBuf {
        Self::find("mosquitto", "/usr/sbin/mosquitto")
    }

    fn find(name: &str, debian: &str) -> PathBuf {
        let on_path = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        PathBuf::from(on_path.unwrap_or_else(|| debian.into()))
    }

    /// Start a broker (anonymous clients, no persistence) and wait until it listens.
    pub fn start() -> Mosquitto {
        Self::start_with(BrokerSetup::default())
    }

    /// Start a broker set up as `setup` says, and wait until it listens.
    pub fn start_with(setup: BrokerSetup) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = dir.path().join("mosquitto.conf");
        // set_tcp_nodelay: the broker forwards small messages at once (what a deployment
        // that cares for latency sets too; see the README).
        // user: started as root (CI), Mosquitto would run as `mosquitto`, which cannot write
        // to this test's folder; as another user the setting does nothing.
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let mut text = format!("listener {port} 127.0.0.1\nset_tcp_nodelay true\n");
        if !user.is_empty() {
            text += &format!("user {user}\n");
        }
        if setup.persistence {
            let store = dir.path().join("store/");
            std::fs::create_dir_all(&store).expect("store folder");
            text += &format!(
                "persistence true\npersistence_location {}\nmax_queued_messages 100000\n",
                store.display()
            );
        } else {
            text += "persistence false\n";
        }
        if let Some((cert, key)) = &setup.tls {
            let (c, k) = (dir.path().join("broker.pem"), dir.path().join("broker.key"));
            std::fs::write(&c, cert).expect("certificate written");
            std::fs::write(&k, key).expect("key written");
            text += &format!("certfile {}\nkeyfile {}\n", c.display(), k.display());
        }
        if setup.users.is_empty() {
            text += "allow_anonymous true\n";
        } else {
            let passwords = dir.path().join("passwords");
            let plain: String = setup
                .users
                .iter()
                .map(|(u, p)| format!("{u}:{p}\n"))
                .collect();
            std::fs::write(&passwords, plain).expect("password file written");
            // Mosquitto 2 reads hashed passwords only: hash the file in place.
            let hashed = Command::new(Self::find("mosquitto_passwd", "/usr/bin/mosquitto_passwd"))
                .arg("-U")
                .arg(&passwords)
                .status()
                .expect("mosquitto_passwd runs");
            assert!(hashed.success(), "mosquitto_passwd -U failed");
            text += &format!(
                "allow_anonymous false\npassword_file {}\n",
                passwords.display()
            );
        }
        std::fs::write(&conf, text).expect("config written");
        let child = Self::spawn(&conf, port);
        Mosquitto {
            child,
            port,
            conf,
            dir,
        }
    }

    fn spawn(conf: &Path, port: u16) -> Child {
        let child = Command::new(Self::program())
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts (apt-get install mosquitto)");
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        });
        child
    }

    /// Kill the broker (as a crash would: what it had not saved goes), wait `down`, and
    /// start it again on the same port.
    pub fn restart(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = Self::spawn(&self.conf, self.port);
    }

    /// Kill the broker and start it again with nothing of what it had saved (a crash that
    /// took its disk with it): every session, queued and retained message is gone.
    pub fn restart_forgetting(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("store/mosquitto.db"));
        std::thread::sleep(down);
        self.child = Self::spawn(&self.conf, self.port);
    }

    /// Stop the broker as an administrator would (SIGTERM: it saves its sessions and
    /// queued messages when persistence is on), wait `down`, and start it again.
    pub fn restart_gracefully(&mut self, down: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = Self::spawn(&self.conf, self.port);
    }

    /// The broker's folder (its config, store and certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let target_dir = workspace_root().join("target").join("qemu-tests");
    let dir = target_dir.display().to_string();
    cargo_build(&[
        "--release",
        "-p",
        "zscope-firmware",
        "--bin",
        "zscope-firmware-qemu",
        "--target",
        "thumbv7em-none-eabihf",
        "--target-dir",
        &dir,
    ]);
    target_dir.join("thumbv7em-none-eabihf/release/zscope-firmware-qemu")
}

/// `cargo build --locked ARGS` in the workspace, with the cargo that runs this; panics if it
/// fails.
///
/// The variables `cargo run` and `cargo test` set for the program they run (the package's
/// name and folder, `OUT_DIR`, …) are taken away first: build scripts that read them (ring's
/// does) would otherwise see them change between this build and one from a shell, and be
/// rebuilt, with everything above them, at every switch.
pub fn cargo_build(args: &[&str]) {
    let mut cargo = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_for_the_run = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
            .iter()
            .any(|p| name.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&name);
        if set_for_the_run {
            cargo.env_remove(name);
        }
    }
    let status = cargo
        .current_dir(workspace_root())
        .args(["build", "--locked"])
        .args(args)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build {} failed", args.join(" "));
}

/// Points sent as columns (`{"t": [...], "seq": [...], ...}`, as the API and the WebSocket
/// send them), one object per point with a field per column.
pub fn points(columns: &serde_json::Value) -> Vec<serde_json::Value> {
    let Some(cols) = columns.as_object() else {
        return Vec::new();
    };
    let n = cols
        .values()
        .map(|c| c.as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    (0..n)
        .map(|i| {
            cols.iter()
                .map(|(name, c)| (name.clone(), c[i].clone()))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect()
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
        self.framed_samples_until(last, timeout)
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }

    /// Like [`Line::samples_until`], each with whether it came in a batch frame.
    pub fn framed_samples_until(&mut self, last: u64, timeout: Duration) -> Vec<(Sample, bool)> {
        let mut out = Vec::new();
        loop {
            let carried = self.expect(timeout, "samples", |m| {
                let samples = framed(m);
                (!samples.is_empty()).then_some(samples)
            });
            for (s, batched) in carried {
                out.push((s, batched));
                if s.seq >= last {
                    return out;
                }
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

/// The samples a message carries, each with whether it came in a batch frame.
pub fn framed(m: &DeviceMsg) -> Vec<(Sample, bool)> {
    let batched = matches!(m, DeviceMsg::Batch(_));
    m.samples().map(|s| (s, batched)).collect()
}

/// An emulated device (the firmware's app, 500 samples/s: in batches, as at 115 200 baud) on
/// a real pty linked at `link`.
pub fn device(link: &Path) -> zscope_host::source::emulated::Emulator {
    device_with(link, 500, zscope_firmware::Encoding::Auto)
}

/// An emulated device at `rate_hz`, its samples sent as `encoding` says, on a pty at `link`.
pub fn device_with(
    link: &Path,
    rate_hz: u32,
    encoding: zscope_firmware::Encoding,
) -> zscope_host::source::emulated::Emulator {
    spawn_device(
        link,
        zscope_firmware::Settings {
            rate_hz,
            encoding,
            ..zscope_firmware::Settings::default()
        },
    )
}

/// An emulated device at 200 samples/s with its own simulator seed, on a pty at `link`.
pub fn pty_device_seeded(link: &Path, seed: u64) -> zscope_host::source::emulated::Emulator {
    spawn_device(
        link,
        zscope_firmware::Settings {
            rate_hz: 200,
            simulator: zscope_core::SimConfig {
                seed,
                ..zscope_core::SimConfig::default()
            },
            ..zscope_firmware::Settings::default()
        },
    )
}

fn spawn_device(
    link: &Path,
    settings: zscope_firmware::Settings,
) -> zscope_host::source::emulated::Emulator {
    use zscope_host::source::emulated::{BOARD, Emulator};
    Emulator::spawn_linked(
        zscope_firmware::Settings {
            board: BOARD,
            ..settings
        },
        Some(link),
    )
    .expect("emulator starts")
}

/// The daemon's source: the serial port (a pty) at `link`.
pub fn on(link: &Path) -> zscope_host::source::SourceSetting {
    zscope_host::source::SourceSetting::Serial {
        port: link.display().to_string(),
        baud: 115_200,
    }
}

/// A daemon's settings for `source`, logging into `log_dir`, on a free loopback port, with
/// nothing else on.
pub fn settings(
    source: zscope_host::source::SourceSetting,
    log_dir: PathBuf,
) -> zscope_host::app::Settings {
    zscope_host::app::Settings {
        devices: vec![zscope_host::app::DeviceSetting::new(source)],
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        token: None,
        allowed_hosts: Some(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]),
        log_dir,
        samples_log: true,
        rotate_bytes: 64 << 20,
        keep_files: 5,
        record: None,
        notify: Vec::new(),
        notify_cooldown: Duration::from_secs(60),
        mqtt: None,
        subscribe: None,
        auto: None,
        store: Some(zscope_host::sink::store::Retention {
            max_age: None,
            max_bytes: None,
        }),
        header_timeout: zscope_host::web::HEADER_TIMEOUT,
        max_devices: zscope_host::app::settings::MAX_DEVICES,
    }
}

/// The `zscope` daemon, really started in this process: a real TCP listener on a free
/// loopback port, real serial I/O. Stopped (and its logs flushed) on drop.
pub struct Daemon {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The CSV log folder (a temp dir unless the settings said otherwise).
    pub log_dir: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Start the daemon on `source`; `adjust` may change any other setting.
    pub fn start(
        source: zscope_host::source::SourceSetting,
        adjust: impl FnOnce(&mut zscope_host::app::Settings),
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = settings(source, dir.path().join("log"));
        adjust(&mut settings);
        let log_dir = settings.log_dir.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let result = runtime.block_on(zscope_host::serve(
                settings,
                move |addr| {
                    let _ = ready_tx.send(addr);
                },
                async move {
                    let _ = stop_rx.await;
                },
            ));
            if let Err(e) = result {
                panic!("daemon failed: {e:#}");
            }
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the daemon starts listening");
        Daemon {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            log_dir,
            dir: Some(dir),
        }
    }

    /// Wait until the daemon has read and judged `bytes` bytes from its device in all, over
    /// every connection (what [`zscope_host::source::emulated::Emulator::silence`] says it
    /// wrote, or `stop` for a device gone before): everything the device sent is then in the
    /// state, the API and on its way to the logs.
    pub fn wait_read(&self, bytes: u64) {
        let read = std::cell::Cell::new(None);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            read.set(self.get("/api/status")["decode"]["bytes"].as_u64());
            if read.get() == Some(bytes) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 20 s waiting for the daemon to read the {bytes} bytes the \
                 device wrote: it read {:?}",
                read.get()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET a JSON answer (panics on anything but 200).
    pub fn get(&self, path: &str) -> serde_json::Value {
        ureq::get(&self.url(path))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// GET a JSON answer; None for anything but 200 (a device not there yet).
    pub fn try_get(&self, path: &str) -> Option<serde_json::Value> {
        ureq::get(&self.url(path))
            .call()
            .ok()?
            .body_mut()
            .read_json()
            .ok()
    }

    /// POST JSON; returns the status code and the JSON answer.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut res = agent
            .post(&self.url(path))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status().as_u16();
        (
            status,
            res.body_mut()
                .read_json()
                .unwrap_or(serde_json::Value::Null),
        )
    }

    /// Stop the daemon and wait for it (logs flushed); the temp folder holding the logs lives
    /// as long as the returned guard.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        self.halt();
        self.dir.take()
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Debian's chromedriver on a free port, killed on drop.
pub struct ChromeDriver {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// A fresh Chromium profile folder.
    pub profile: tempfile::TempDir,
}

impl ChromeDriver {
    /// Start `chromedriver` (apt-get install chromium chromium-driver).
    pub fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        wait_for(Duration::from_secs(20), "chromedriver", || {
            ureq::get(&format!("{url}/status")).call().ok().map(|_| ())
        });
        ChromeDriver {
            child,
            url,
            profile: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Capabilities for headless Chromium with the flags this machine needs.
    pub fn capabilities(&self) -> serde_json::Map<String, serde_json::Value> {
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1400,900".into(),
            format!("--user-data-dir={}", self.profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        caps
    }

    /// A new headless Chromium session through this chromedriver (plain HTTP on loopback).
    pub async fn session(&self) -> fantoccini::Client {
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(http)
            .capabilities(self.capabilities())
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killing chromedriver leaves the browsers it started (a test that panics never
        // closes its session): end every process that uses this test's profile folder.
        // `--`: the pattern starts with dashes, and pkill would take it for an option.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", "--"])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `points` message as a gateway publishes it (`zscope/<device>/points`): `n` points from
/// sequence number `seq`, stamped 1 ms apart from `t0` (ms since the epoch).
pub fn points_message(seq: u64, n: u64, t0: f64) -> Vec<u8> {
    let mut p = zscope_host::model::Points::default();
    for i in 0..n {
        p.push(&zscope_host::model::Point {
            t: t0 + i as f64,
            seq: seq + i,
            device_time_ms: seq + i,
            value: (i % 5) as f32,
            mean: 2.0,
            std: 1.5,
            z: 0.0,
            score: 0.0,
            threshold: 4.5,
            window: 64,
            config_version: 1,
            flags: 0,
            lost_before: 0,
        });
    }
    serde_json::to_vec(&serde_json::json!({"type": "points", "points": p})).unwrap_or_default()
}

/// A client of the broker on `port` (id `id`) that publishes: packets up to 16 MiB, `queue`
/// messages waiting at most, its connection driven by a thread of its own.
pub fn mqtt_publisher(id: &str, port: u16, queue: usize) -> rumqttc::Client {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut connection) = rumqttc::Client::new(options, queue);
    std::thread::spawn(move || for _ in connection.iter() {});
    client
}

/// A central daemon with no device of its own, showing what `setting`'s broker carries;
/// `more` changes its other settings.
pub fn central_daemon(
    setting: zscope_host::sink::mqtt::MqttSetting,
    more: impl FnOnce(&mut zscope_host::app::Settings),
) -> Daemon {
    Daemon::start(
        zscope_host::source::SourceSetting::Emulated {
            rate_hz: 1,
            seed: 1,
        },
        move |s| {
            s.devices = Vec::new();
            s.subscribe = Some(setting);
            more(s);
        },
    )
}
