//! `cargo run --release -p zscope-tests --bin score-bench [ROWS]` (default 10⁷): `zscope score`
//! end to end on a generated CSV, and where the time goes.
//!
//! The file: `timestamp,value,label` with `YYYY-MM-DD HH:MM:SS` timestamps one second apart and
//! the simulator's default stream (about 30 bytes a row), written once to a temp folder. Then,
//! in the same run: reading and parsing it alone, the detector alone on the values in memory,
//! and the whole `score` (read, parse, detect, write), in both output formats.

use std::io::Write;
use std::time::Instant;

use zscope_core::{DetectorConfig, SimConfig, Simulator};
use zscope_host::batch::dataset::{Columns, Dataset, parse_time};
use zscope_host::batch::score::{Format, ScoreJob, detector, score};

fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.csv");
    let t = Instant::now();
    {
        let mut w = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&input).expect("create"),
        );
        writeln!(w, "timestamp,value,label").expect("write");
        let start = parse_time("2026-01-01 00:00:00").unwrap_or(0) / 1000;
        let mut sim = Simulator::new(SimConfig::default()).expect("valid");
        let mut ryu = ryu::Buffer::new();
        for i in 0..rows {
            let s = sim.next_sample();
            let secs = start + i as i64;
            let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
            writeln!(
                w,
                "{},{},{}",
                dt.format("%Y-%m-%d %H:%M:%S"),
                ryu.format(s.value),
                s.truth.is_anomaly() as u8
            )
            .expect("write");
        }
    }
    let size = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    println!(
        "score-bench: {rows} rows, {:.0} MB ({:.1} bytes/row), generated in {:.1} s",
        size as f64 / 1e6,
        size as f64 / rows as f64,
        t.elapsed().as_secs_f64()
    );

    // Read + parse only.
    let t = Instant::now();
    let mut data = Dataset::open(&input, &Columns::default(), true).expect("open");
    let mut values = Vec::with_capacity(rows as usize);
    while let Some(r) = data.next_record().expect("good rows") {
        values.push(r.value);
    }
    let parse = t.elapsed().as_secs_f64();
    // Detection only.
    let mut det = detector(DetectorConfig::default()).expect("valid");
    let t = Instant::now();
    let mut flagged = 0u64;
    for v in &values {
        flagged += det.update(*v).is_anomaly() as u64;
    }
    let detect = t.elapsed().as_secs_f64();
    std::hint::black_box(flagged);

    println!();
    println!("{:<52} {:>9} {:>12}", "", "seconds", "M rows/s");
    println!(
        "{:<52} {:>9.2} {:>12.2}",
        "read + parse CSV only (time, value, label)",
        parse,
        rows as f64 / parse / 1e6
    );
    println!(
        "{:<52} {:>9.2} {:>12.2}",
        "detector only (values in memory)",
        detect,
        rows as f64 / detect / 1e6
    );
    for format in [Format::Plain, Format::Nab] {
        let job = ScoreJob {
            input: input.clone(),
            output: dir.path().join("out.csv"),
            format,
            columns: Columns::default(),
            strict: true,
            detector: zscope_host::model::detector::DetectorSpec {
                config: DetectorConfig::default(),
                period_ms: None,
            },
        };
        let s = score(&job).expect("score");
        let out = std::fs::metadata(&job.output).map(|m| m.len()).unwrap_or(0);
        println!(
            "{:<52} {:>9.2} {:>12.2}",
            format!(
                "zscope score, end to end, {format:?} output ({:.0} MB)",
                out as f64 / 1e6
            ),
            s.seconds,
            s.rows as f64 / s.seconds / 1e6
        );
        if format == Format::Plain {
            println!(
                "  share of the end-to-end time: parsing {:.0} %, detection {:.0} %, writing the rest",
                100.0 * parse / s.seconds,
                100.0 * detect / s.seconds
            );
        }
    }
}
