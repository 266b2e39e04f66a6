//! `cargo bench -p zscope-host --bench nab`: the whole-corpus NAB evaluation (load, run each
//! detector over the 58 files, score the three profiles optimised and as configured), timed
//! for each detector against the rolling Z-score in the same run. The corpus comes from
//! `ZSCOPE_NAB_DIR` or `../shared/nab`.

use std::time::Instant;

use zscope_core::{Baseline, DetectorConfig};
use zscope_host::batch::eval::{NabCandidate, nab_run};
use zscope_host::batch::nab::Corpus;

fn main() {
    let dir = std::env::var_os("ZSCOPE_NAB_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/nab")
        });
    let t = Instant::now();
    let corpus = match Corpus::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "no NAB corpus at {} ({e}): set ZSCOPE_NAB_DIR",
                dir.display()
            );
            return;
        }
    };
    let load = t.elapsed().as_secs_f64();
    let rounds: usize = std::env::var("ZSCOPE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!(
        "NAB whole-corpus evaluation: {} files, {} rows; load {:.3} s; median of {rounds} rounds",
        corpus.files.len(),
        corpus.rows(),
        load
    );
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>12}",
        "detector", "detect s", "score s", "total s", "vs Z-score"
    );
    let cases = [
        ("rolling Z-score (w64)", DetectorConfig::with_window(64)),
        (
            "seasonal(288), w64",
            DetectorConfig {
                baseline: Baseline::Seasonal {
                    period: 288,
                    alpha: 0.3,
                },
                ..DetectorConfig::with_window(64)
            },
        ),
        ("adaptive (default)", DetectorConfig::default()),
    ];
    let mut baseline = None;
    for (name, config) in cases {
        let mut times: Vec<(f64, f64)> = (0..rounds)
            .map(|_| {
                let run = nab_run(&corpus, NabCandidate::Detector(config)).expect("valid");
                run.seconds
            })
            .collect();
        times.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
        let (detect, score) = times[times.len() / 2];
        let total = detect + score;
        let base = *baseline.get_or_insert(total);
        println!(
            "{name:<36} {detect:>10.3} {score:>10.3} {total:>10.3} {:>11.2}x",
            total / base
        );
    }
}
