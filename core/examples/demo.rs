//! The core on its own:
//! `cargo run --release -p zscope-core --example demo [SAMPLES] [SEED] [THRESHOLD]`.
//!
//! Runs the default simulated stream (50 Hz device time) through the default detector, prints
//! every anomaly as it is found with its ground truth, and ends with precision and recall.

use zscope_core::{Class, DetectorConfig, RollingZScore, SimConfig, Simulator};

fn main() {
    let mut args = std::env::args().skip(1);
    let samples: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let sim_config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    let threshold: f32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DetectorConfig::DEFAULT_THRESHOLD);
    let config = DetectorConfig {
        threshold,
        ..DetectorConfig::default()
    };
    let mut sim = Simulator::new(sim_config).expect("default simulator config is valid");
    let mut detector: RollingZScore<f32, 1024> = match RollingZScore::new(config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "zscope demo: {samples} samples, seed {seed}, window {}, threshold {}",
        config.window, config.threshold
    );
    println!(
        "{:>9} {:>9} {:>10} {:>8}  truth",
        "time", "sample", "value", "z"
    );
    let (mut tp, mut fp, mut missed) = (0u64, 0u64, 0u64);
    for _ in 0..samples {
        let s = sim.next_sample();
        let v = detector.update(s.value);
        let truth = s.truth.is_anomaly();
        match (v.class == Class::Anomaly, truth) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) if v.class != Class::WarmingUp => missed += 1,
            _ => {}
        }
        if v.class == Class::Anomaly {
            println!(
                "{:>8.2}s {:>9} {:>10.3} {:>8.2}  {}",
                s.index as f64 / 50.0,
                s.index,
                v.value,
                v.z,
                if truth { "injected" } else { "-" }
            );
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + missed).max(1) as f64;
    println!(
        "{} flagged: {tp} injected, {fp} not injected, {missed} injected but missed; \
         precision {precision:.3}, recall {recall:.3}",
        tp + fp
    );
}
