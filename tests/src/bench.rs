//! Shared by the bench binaries: the release `zscope` in its own process ([`Zscope`]), and
//! pre-encoded device frames ([`frames`]), a page's WebSocket ([`ws_client`]).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zscope_core::device::Responder;
use zscope_core::wire::{self, DeviceMsg, Sample};
use zscope_core::{Detector, DetectorConfig, SimConfig, Simulator};

use crate::{wait_for, workspace_root};

/// Pre-encoded frames: a hello, then `n` samples.
pub fn frames(n: u64) -> Vec<Vec<u8>> {
    let mut sim = Simulator::new(SimConfig::default()).expect("valid");
    let mut det: Box<Detector<f32, 1024, 2048>> =
        Box::new(Detector::new(DetectorConfig::default()).expect("valid"));
    let mut out = Vec::with_capacity(n as usize + 1);
    let mut buf = [0u8; wire::MAX_FRAME];
    let hello = DeviceMsg::Hello(Responder::new().hello(
        &det,
        wire::name("bench"),
        wire::name("host-bench"),
        0,
        Some(SimConfig::default()),
        &zscope_core::device::Origin::simulator(),
    ));
    let k = wire::encode(&hello, &mut buf).expect("fits");
    out.push(buf[..k].to_vec());
    for seq in 0..n {
        let s = sim.next_sample();
        let v = det.update(s.value);
        let msg = DeviceMsg::Sample(Sample::from_verdict(seq, seq, &v, s.truth.is_anomaly(), 1));
        let k = wire::encode(&msg, &mut buf).expect("fits");
        out.push(buf[..k].to_vec());
    }
    out
}

/// The release `zscope` binary, started in its own process (so its CPU and memory are its
/// own), with a fresh log folder; killed when dropped.
pub struct Zscope {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
    /// Its log folder.
    pub log_dir: PathBuf,
}

impl Zscope {
    /// Start it reading `port`.
    pub fn start(bin: &Path, port: &str) -> Zscope {
        Self::start_with(bin, &["--port", port])
    }

    /// Start it with `args` (and its own `--listen` and `--log-dir`).
    pub fn start_with(bin: &Path, args: &[&str]) -> Zscope {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_dir = dir.path().join("log");
        let (child, url) = Self::spawn(bin, args, &log_dir);
        Zscope {
            child,
            url,
            _dir: dir,
            log_dir,
        }
    }

    /// Kill it with SIGKILL (no chance to flush anything) and start it again with `args` on
    /// the same log folder.
    pub fn kill_and_restart(&mut self, bin: &Path, args: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url) = Self::spawn(bin, args, &self.log_dir);
        self.child = child;
        self.url = url;
    }

    fn spawn(bin: &Path, args: &[&str], log_dir: &Path) -> (Child, String) {
        let http = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let child = Command::new(bin)
            .args(args)
            .args(["--listen", &http.to_string(), "--log-dir"])
            .arg(log_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("zscope starts");
        let url = format!("http://{http}");
        // /api/devices answers with no device too (a central daemon before its first).
        wait_for(Duration::from_secs(20), "zscope to listen", || {
            ureq::get(&format!("{url}/api/devices"))
                .call()
                .ok()
                .map(|_| ())
        });
        (child, url)
    }

    /// `/api/status`.
    pub fn status(&self) -> serde_json::Value {
        ureq::get(&format!("{}/api/status", self.url))
            .call()
            .expect("status answers")
            .body_mut()
            .read_json()
            .expect("JSON")
    }

    /// Rows written to `samples.csv` (the first log).
    pub fn logged(&self) -> u64 {
        self.status()["logs"][0]["written"].as_u64().unwrap_or(0)
    }

    /// Samples it has ingested.
    pub fn samples(&self) -> u64 {
        self.status()["counters"]["samples"].as_u64().unwrap_or(0)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (user + system CPU seconds, RSS bytes) from /proc.
    pub fn usage(&self) -> (f64, u64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = fields
            .get(11)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        (ticks / 100.0, rss_kb * 1024)
    }
}

impl Drop for Zscope {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Build the release `zscope` binary (once per run); its path. Built with this crate
/// selected too, so its dependencies have the features they have in the bench binaries (one
/// feature set: nothing is compiled twice in release).
pub fn build_zscope() -> PathBuf {
    crate::cargo_build(&[
        "--release",
        "-p",
        "zscope-tests",
        "-p",
        "zscope-host",
        "--bin",
        "zscope",
    ]);
    workspace_root().join("target/release/zscope")
}

/// When each point arrived (by sequence number) at a [`ws_client`].
pub type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

/// A page's WebSocket (`path`, e.g. `/ws?device=NAME`) in its own thread until `stop`:
/// counts messages, and records when each point arrives, by sequence number, if asked.
pub fn ws_client(
    url: &str,
    path: &str,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    arrivals: Option<Arrivals>,
) -> std::thread::JoinHandle<()> {
    let addr = url.trim_start_matches("http://").to_string();
    let path = path.to_string();
    std::thread::spawn(move || {
        let stream = TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .ok();
        let (mut ws, _) =
            tungstenite::client(format!("ws://{addr}{path}"), stream).expect("handshake");
        while !stop.load(Ordering::Relaxed) {
            match ws.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    received.fetch_add(1, Ordering::Relaxed);
                    if let Some(arrivals) = &arrivals {
                        let now = Instant::now();
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                        if v["type"] == "points" {
                            let mut a = arrivals.lock().unwrap_or_else(|p| p.into_inner());
                            for seq in v["points"]["seq"].as_array().into_iter().flatten() {
                                if let Some(seq) = seq.as_u64() {
                                    a.push((seq, now));
                                }
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    })
}
