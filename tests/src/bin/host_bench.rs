//! `cargo run --release -p zscope-tests --bin host-bench`: the daemon's ingest rate, CPU,
//! memory and latency, with the real `zscope` binary (release) in its own process.
//!
//! The benchmark is the device: it writes pre-encoded frames (the core's detector run over the
//! simulator, so about 1 % are anomalies) into a real pty whose other end the daemon opens.
//!
//! 1. **Baseline**: how fast a plain reader drains the same pty (bytes only, and bytes plus the
//!    core's decoder), measured in the same run.
//! 2. **Ingest**: frames/s through the daemon (decode, state, samples.csv and anomalies.csv
//!    written in whole rows, timed until every row is on disk; browser batches) with 20
//!    WebSocket clients connected; ratio to the baseline.
//! 3. **Steady state**: 1 000 points/s for `ZSCOPE_BENCH_SECS` (default 30) after the
//!    in-memory history is full: the daemon's CPU and RSS each second (flat memory means
//!    bounded buffers), and latency from writing a frame to a WebSocket client receiving it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use zscope_core::wire::{self, DeviceMsg};
use zscope_tests::bench::{Zscope, build_zscope, frames, ws_client};
use zscope_tests::wait_for;

const CLIENTS: usize = 20;

fn pty() -> (TTYPort, TTYPort) {
    TTYPort::pair().expect("a pty pair")
}

/// Baseline: drain the pty with a plain reader; returns frames/s.
fn baseline(data: &[u8], frames: u64, decode: bool) -> f64 {
    let (mut master, slave) = pty();
    let path = slave.name().unwrap_or_default();
    let mut reader = serialport::new(&path, 115_200)
        .timeout(Duration::from_millis(100))
        .open()
        .expect("pty opens");
    let start = Instant::now();
    let writer = {
        let data = data.to_vec();
        std::thread::spawn(move || {
            master.write_all(&data).expect("pty write");
            master
        })
    };
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut decoded) = (0usize, 0u64);
    let mut decoder: wire::Decoder = wire::Decoder::new();
    while got < data.len() {
        match reader.read(&mut buf) {
            Ok(n) => {
                got += n;
                if decode {
                    let mut input = &buf[..n];
                    while let Some(m) = decoder.next_message::<DeviceMsg>(&mut input) {
                        decoded += m.is_ok() as u64;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = writer.join();
    drop(slave);
    if decode {
        assert_eq!(decoded, frames + 1, "every frame decodes");
    }
    frames as f64 / secs
}

fn main() {
    let secs: u64 = std::env::var("ZSCOPE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let n: u64 = std::env::var("ZSCOPE_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let bin = build_zscope();
    println!("host-bench: {n} sample frames, {CLIENTS} WebSocket clients, steady state {secs} s");
    let frames = frames(n.max(300_000) + secs * 1000);
    let burst: Vec<u8> = frames[..=n as usize].concat();
    let bytes_per_frame = burst.len() as f64 / (n + 1) as f64;
    println!("mean frame: {bytes_per_frame:.1} bytes");
    println!();

    // Best of two runs each: the first run also warms the page cache and the allocator.
    let raw = baseline(&burst, n, false).max(baseline(&burst, n, false));
    let decoded = baseline(&burst, n, true).max(baseline(&burst, n, true));
    println!(
        "{:<58} {:>12} {:>10}",
        "ingest from a pty", "frames/s", "vs raw"
    );
    println!(
        "{:<58} {:>12.0} {:>10}",
        "baseline: plain reader, bytes only", raw, "1.00x"
    );
    println!(
        "{:<58} {:>12.0} {:>9.2}x",
        "baseline: plain reader + core decoder",
        decoded,
        decoded / raw
    );

    // Ingest through the daemon, CSV on, 20 clients connected.
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("tty");
    let (mut master, slave) = pty();
    std::os::unix::fs::symlink(slave.name().unwrap_or_default(), &link).expect("symlink");
    let z = Zscope::start(&bin, &link.display().to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| ws_client(&z.url, "/ws", stop.clone(), received.clone(), None))
        .collect();
    wait_for(
        Duration::from_secs(10),
        "the daemon to open the pty",
        || (z.status()["connected"] == serde_json::json!(true)).then_some(()),
    );
    let start = Instant::now();
    let (cpu0, _) = z.usage();
    master.write_all(&burst).expect("pty write");
    // Done when every row is in samples.csv, not just in memory.
    wait_for(
        Duration::from_secs(120),
        "the daemon to ingest and log every frame",
        || (z.samples() >= n && z.logged() >= n).then_some(()),
    );
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu1, rss) = z.usage();
    let rate = n as f64 / elapsed;
    println!(
        "{:<58} {:>12.0} {:>9.2}x",
        format!("zscope: decode + state + store + CSV (every row written) + {CLIENTS} WS clients"),
        rate,
        rate / raw
    );
    let status = z.status();
    println!(
        "  frames lost {}, bad frames {}, daemon CPU {:.0} % of one core, RSS {:.0} MiB, WS messages {}",
        status["counters"]["frames_lost"],
        status["bad_frames"],
        100.0 * (cpu1 - cpu0) / elapsed,
        rss as f64 / (1 << 20) as f64,
        received.load(Ordering::Relaxed)
    );
    // Rows across samples.csv and its rotated files (64 MB each), headers not counted.
    let rows: usize = std::fs::read_dir(&z.log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("samples"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .map(|t| t.lines().count() - 1)
                .unwrap_or(0)
        })
        .sum();
    println!("  samples*.csv rows: {rows} (of {n}, the hello aside)");

    // Fill the in-memory history (200 000 points) so memory has reached its bound.
    let fill_to = 300_000u64.max(n);
    if fill_to > n {
        let rest: Vec<u8> = frames[n as usize + 1..=fill_to as usize].concat();
        master.write_all(&rest).expect("pty write");
        wait_for(Duration::from_secs(120), "the history to fill", || {
            (z.samples() >= fill_to).then_some(())
        });
    }

    // Steady state at 1 000 points/s, one client recording arrival times for latency.
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let probe = ws_client(
        &z.url,
        "/ws",
        stop.clone(),
        Arc::new(AtomicU64::new(0)),
        Some(arrivals.clone()),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut sent: Vec<(u64, Instant)> = Vec::new();
    let t0 = Instant::now();
    let (mut cpu_prev, rss_start) = z.usage();
    let mut rss_samples = vec![rss_start];
    let mut cpu_per_s = Vec::new();
    let mut next_report = t0 + Duration::from_secs(1);
    let mut seq = fill_to;
    while t0.elapsed() < Duration::from_secs(secs) {
        let due = fill_to + (t0.elapsed().as_secs_f64() * 1000.0) as u64;
        while seq <= due && (seq as usize) < frames.len() - 1 {
            master
                .write_all(&frames[seq as usize + 1])
                .expect("pty write");
            sent.push((seq, Instant::now()));
            seq += 1;
        }
        if Instant::now() >= next_report {
            let (cpu, rss) = z.usage();
            cpu_per_s.push(cpu - cpu_prev);
            cpu_prev = cpu;
            rss_samples.push(rss);
            next_report += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let _ = probe.join();
    let arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let sent_at: std::collections::HashMap<u64, Instant> = sent.into_iter().collect();
    let mut lat: Vec<f64> = arrivals
        .iter()
        .filter_map(|(seq, at)| {
            sent_at
                .get(seq)
                .map(|s| at.duration_since(*s).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let cpu_mean = cpu_per_s.iter().sum::<f64>() / cpu_per_s.len().max(1) as f64;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!();
    println!(
        "steady state, 1000 points/s for {secs} s ({} points, history full):",
        lat.len()
    );
    println!(
        "  daemon CPU: {:.1} % of one core (mean of {} one-second samples)",
        100.0 * cpu_mean,
        cpu_per_s.len()
    );
    println!(
        "  daemon RSS: {:.1} MiB at start, {:.1} MiB at end, {:.1} MiB max",
        mib(rss_samples[0]),
        mib(*rss_samples.last().unwrap_or(&0)),
        mib(rss_samples.iter().copied().max().unwrap_or(0))
    );
    println!(
        "  latency, frame written -> WebSocket message received: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!("  (the page is sent batches every 10 ms, so about half that is the expected median)");
    drop(slave);
}
