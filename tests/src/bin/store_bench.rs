//! `cargo run --release -p zscope-tests --bin store-bench`: the store's ingest rate through the
//! daemon's own log writer (one transaction per flush of up to 8 batches of 100 points), with
//! the CSV log off and on, against the CSV log alone in the same run; and the time to answer
//! ranges from a stored day.
//!
//! `ZSCOPE_STORE_POINTS` (default 2 000 000) points for the rates; `ZSCOPE_STORE_DAY_HZ`
//! (default 100) points per second over the stored day.

use std::path::Path;
use std::time::{Duration, Instant};

use zscope_core::wire::Flags;
use zscope_host::model::Entry;
use zscope_host::model::Point;
use zscope_host::sink::csv::{CsvLog, Handover, LogWriter};
use zscope_host::sink::store::{Reader, Retention, Store};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` points from `t0`, `hz` a second, a wave with an anomaly every 5000th.
fn points(n: u64, t0: f64, hz: f64) -> impl Iterator<Item = Entry> {
    (0..n).map(move |i| {
        let t = t0 + i as f64 * 1000.0 / hz;
        Entry {
            point: Point {
                t,
                seq: i,
                device_time_ms: (i as f64 * 1000.0 / hz) as u64,
                value: (i as f32 * 0.01).sin(),
                mean: 0.0,
                std: 0.7,
                z: 0.5,
                score: 0.1,
                threshold: 3.0,
                window: 64,
                config_version: 1,
                flags: if i % 5000 == 0 { Flags::ANOMALY } else { 0 },
                lost_before: 0,
            },
            host_ms: t as i64,
            truth: false,
            source: None,
            unit: zscope_core::source::Unit::None,
            detector: None,
        }
    })
}

/// Points/s through a log writer with `csv` and/or the store, in `dir`.
fn rate(dir: &Path, n: u64, csv: bool, store: bool) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    let samples = csv.then(|| CsvLog::open(dir, "samples", 1 << 40, 5).expect("csv"));
    let anomalies = CsvLog::open(dir, "anomalies", 1 << 40, 5).expect("csv");
    let store = store.then(|| {
        Store::open(
            dir,
            Retention {
                max_age: None,
                max_bytes: None,
            },
        )
        .expect("store")
    });
    let (writer, _, sender) = LogWriter::spawn(samples, anomalies, store).expect("writer");
    let t0 = chrono::Utc::now().timestamp_millis() as f64;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(100);
    for e in points(n, t0, 10_000.0) {
        batch.push(e);
        if batch.len() == 100 {
            sender.send(Handover {
                entries: std::mem::take(&mut batch),
                configs: Vec::new(),
            });
        }
    }
    sender.send(Handover {
        entries: batch,
        configs: Vec::new(),
    });
    drop(sender);
    writer.finish();
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let n = env("ZSCOPE_STORE_POINTS", 2_000_000);
    let hz = env("ZSCOPE_STORE_DAY_HZ", 100);
    let dir = tempfile::tempdir().expect("temp dir");
    println!("store-bench: {n} points through the daemon's log writer (batches of 100)\n");
    let csv = rate(&dir.path().join("csv"), n, true, false);
    let store = rate(&dir.path().join("store"), n, false, true);
    let both = rate(&dir.path().join("both"), n, true, true);
    println!("  baseline, CSV log alone:  {csv:>10.0} points/s");
    println!(
        "  store alone (CSV off):    {store:>10.0} points/s  ({:.2}x the baseline; aim >= 200 000)",
        store / csv
    );
    println!(
        "  store and CSV log:        {both:>10.0} points/s  ({:.2}x the baseline; aim >= 150 000)",
        both / csv
    );
    let db = dir.path().join("store").join("zscope.db");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("store").join("zscope.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!("  store size: {:.1} bytes/point", size as f64 / n as f64);

    // A stored day, then ranges of it.
    let day = 86_400 * hz;
    let path = dir.path().join("day");
    let _ = std::fs::remove_dir_all(&path);
    let mut store = Store::open(
        &path,
        Retention {
            max_age: None,
            max_bytes: None,
        },
    )
    .expect("store");
    let t0 = 1_790_000_000_000.0;
    let started = Instant::now();
    let mut chunk = Vec::with_capacity(800);
    for e in points(day, t0, hz as f64) {
        chunk.push(e);
        if chunk.len() == 800 {
            store.write(&chunk, &[]);
            chunk.clear();
        }
    }
    store.write(&chunk, &[]);
    store.flush();
    println!(
        "\n  a day at {hz} points/s ({day} points) stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let reader = Reader::open(store.path()).expect("reader");
    let time = |from: f64, to: f64, columns: usize| -> (Duration, &'static str, usize) {
        let mut best = Duration::MAX;
        let mut answer = (Default::default(), 0);
        for _ in 0..5 {
            let t = Instant::now();
            let r = reader.range(from, to, columns).expect("range");
            best = best.min(t.elapsed());
            answer = (r.source, r.anomalies.t.len());
        }
        (best, answer.0, answer.1)
    };
    let end = t0 + 86_400_000.0;
    for (what, from, columns) in [
        ("the day", t0, 2000),
        ("an hour", end - 3_600_000.0, 2000),
        ("ten minutes", end - 600_000.0, 2000),
    ] {
        let (took, source, anomalies) = time(from, end, columns);
        println!(
            "  {what:<12} at {columns} points: {:>7.2} ms (from the {source}, {anomalies} anomalies){}",
            took.as_secs_f64() * 1e3,
            if what == "the day" {
                "  aim <= 50 ms"
            } else {
                ""
            }
        );
    }
}
