//! `cargo run --release -p zscope-tests --bin fleet-bench`: many devices on one daemon, and
//! gateways through a real Mosquitto to a central daemon, with the release binary in its own
//! processes. The benchmark is the devices: it writes pre-encoded frames into real ptys at
//! 1 kHz each, noting when it wrote each one.
//!
//! 1. **16 devices × 1 kHz on one daemon** for `ZSCOPE_FLEET_SECS` (default 20): the daemon's
//!    CPU (target: within one core) and RSS, every sample received and logged.
//! 2. **3 gateways × 1 kHz → Mosquitto → 1 central daemon**: latency from writing a frame to
//!    the central page's WebSocket receiving it (p50/p99; target p99 ≤ 50 ms), and losses.
//!    Needs `mosquitto` (`apt-get install mosquitto`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serialport::{SerialPort, TTYPort};
use zscope_tests::bench::{Arrivals, Zscope, build_zscope, frames, ws_client};
use zscope_tests::{Mosquitto, wait_for};

/// `n` ptys linked as `dir/{prefix}{i}`: the writing ends, and the reading ends (kept open).
fn ptys(dir: &Path, prefix: &str, n: usize) -> (Vec<TTYPort>, Vec<TTYPort>, Vec<String>) {
    let (mut masters, mut slaves, mut links) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let (master, slave) = TTYPort::pair().expect("a pty pair");
        let link = dir.join(format!("{prefix}{i}"));
        std::os::unix::fs::symlink(slave.name().unwrap_or_default(), &link).expect("symlink");
        masters.push(master);
        slaves.push(slave);
        links.push(link.display().to_string());
    }
    (masters, slaves, links)
}

/// Write frame `seq` to every pty each millisecond for `secs`; when each was written.
fn stream(
    masters: Vec<TTYPort>,
    frames: Arc<Vec<Vec<u8>>>,
    secs: u64,
) -> std::thread::JoinHandle<Vec<(u64, Instant)>> {
    std::thread::spawn(move || {
        let mut masters = masters;
        for m in &mut masters {
            let _ = m.write_all(&frames[0]); // the hello
        }
        let (t0, mut seq, mut sent) = (Instant::now(), 0u64, Vec::new());
        while t0.elapsed() < Duration::from_secs(secs) {
            let due = (t0.elapsed().as_secs_f64() * 1000.0) as u64;
            while seq <= due && (seq as usize) < frames.len() - 1 {
                for m in &mut masters {
                    let _ = m.write_all(&frames[seq as usize + 1]);
                }
                sent.push((seq, Instant::now()));
                seq += 1;
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        sent
    })
}

fn device_status(z: &Zscope, name: &str) -> serde_json::Value {
    let url = format!("{}/api/devices/{name}/status", z.url);
    ureq::get(&url)
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json().ok())
        .unwrap_or_default()
}

fn main() {
    let secs: u64 = std::env::var("ZSCOPE_FLEET_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bin = build_zscope();
    let all = Arc::new(frames(secs * 1000 + 2000));
    let dir = tempfile::tempdir().expect("temp dir");
    let mib = |b: u64| b as f64 / (1 << 20) as f64;

    // 1. 16 devices on one daemon.
    let n = 16;
    let (masters, _slaves, links) = ptys(dir.path(), "ttyF", n);
    let mut args: Vec<&str> = Vec::new();
    for l in &links {
        args.extend(["--port", l.as_str()]);
    }
    let z = Zscope::start_with(&bin, &args);
    let names: Vec<String> = (0..n).map(|i| format!("ttyF{i}")).collect();
    wait_for(Duration::from_secs(20), "every device open", || {
        names
            .iter()
            .all(|d| device_status(&z, d)["connected"] == serde_json::json!(true))
            .then_some(())
    });
    let (cpu0, rss0) = z.usage();
    let t0 = Instant::now();
    let writer = stream(masters, all.clone(), secs);
    let mut rss_max = rss0;
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(z.usage().1);
    }
    let sent = writer.join().unwrap_or_default().len() as u64;
    let (cpu1, rss1) = z.usage();
    let wall = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let (mut received, mut logged, mut lost) = (0u64, 0u64, 0u64);
    for d in &names {
        let s = device_status(&z, d);
        received += s["counters"]["samples"].as_u64().unwrap_or(0);
        lost += s["counters"]["frames_lost"].as_u64().unwrap_or(0);
        logged += s["logs"][0]["written"].as_u64().unwrap_or(0);
    }
    println!("fleet-bench: release zscope, {secs} s per part");
    println!();
    println!(
        "1. {n} devices at 1 kHz on one daemon ({} samples/s)",
        n * 1000
    );
    println!(
        "   sent {} samples, received {received}, logged {logged}, lost {lost}",
        sent * n as u64
    );
    println!(
        "   daemon CPU {:.0} % of one core (target: within one core), RSS {:.1} MiB at start, {:.1} at end, {:.1} at most",
        100.0 * (cpu1 - cpu0) / wall,
        mib(rss0),
        mib(rss1),
        mib(rss_max)
    );
    drop(z);

    // 2. Gateways through a broker to a central daemon.
    if !Mosquitto::program().exists() {
        println!();
        println!("2. skipped: no mosquitto (apt-get install mosquitto)");
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let g = 3;
    let (masters, _slaves, links) = ptys(dir.path(), "ttyG", g);
    let gateways: Vec<Zscope> = links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let id = format!("gw-{i}");
            Zscope::start_with(
                &bin,
                &["--port", l, "--mqtt", &url, "--mqtt-client-id", &id],
            )
        })
        .collect();
    let central = Zscope::start_with(&bin, &["--subscribe", &url, "--mqtt-client-id", "central"]);
    let names: Vec<String> = (0..g).map(|i| format!("ttyG{i}")).collect();
    // The gateways' retained status makes the devices appear at the centre.
    wait_for(
        Duration::from_secs(30),
        "the gateways' devices at the centre",
        || {
            names
                .iter()
                .all(|d| device_status(&central, d)["connected"] == serde_json::json!(true))
                .then_some(())
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let got: Vec<Arrivals> = (0..g).map(|_| Arrivals::default()).collect();
    let probes: Vec<_> = names
        .iter()
        .zip(&got)
        .map(|(d, a)| {
            let path = format!("/ws?device={d}");
            ws_client(
                &central.url,
                &path,
                stop.clone(),
                Arc::default(),
                Some(a.clone()),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (c0, _) = central.usage();
    let t0 = Instant::now();
    let sent = writer_join(stream(masters, all.clone(), secs));
    let wall = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let (c1, crss) = central.usage();
    stop.store(true, Ordering::Relaxed);
    for p in probes {
        let _ = p.join();
    }
    let sent_at: std::collections::HashMap<u64, Instant> = sent.iter().copied().collect();
    let mut lat = Vec::new();
    let mut received = 0usize;
    for a in &got {
        let a = a.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = std::collections::HashSet::new();
        for (seq, at) in a.iter() {
            if seen.insert(*seq)
                && let Some(s) = sent_at.get(seq)
            {
                lat.push(at.duration_since(*s).as_secs_f64() * 1000.0);
            }
        }
        received += seen.len();
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut at_centre = 0u64;
    for d in &names {
        at_centre += device_status(&central, d)["counters"]["samples"]
            .as_u64()
            .unwrap_or(0);
    }
    let dropped: u64 = gateways
        .iter()
        .map(|z| z.status()["mqtt"]["dropped"].as_u64().unwrap_or(0))
        .sum();
    println!();
    println!("2. {g} gateways at 1 kHz each -> Mosquitto -> one central daemon");
    println!(
        "   sent {} samples; the centre ingested {at_centre}, its pages received {received}; the gateways dropped {dropped} MQTT messages",
        sent.len() * g
    );
    println!(
        "   latency, frame written at the gateway's pty -> central page: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 50 ms)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "   central daemon CPU {:.0} % of one core, RSS {:.1} MiB",
        100.0 * (c1 - c0) / wall,
        mib(crss)
    );
    drop(central);
    drop(gateways);
    drop(broker);
}

fn writer_join(h: std::thread::JoinHandle<Vec<(u64, Instant)>>) -> Vec<(u64, Instant)> {
    h.join().unwrap_or_default()
}
