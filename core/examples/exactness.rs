//! Exactness over a very long stream: `cargo run --release -p zscope-core --example exactness
//! [UPDATES] [WINDOW]` (defaults 10⁹ and 1000).
//!
//! Feeds `10 000 + sin(i/100) + N(0,1)` through `Window<f64>` and through the two obvious O(1)
//! alternatives (naive running sums of x and x², and Welford add/remove), and at checkpoints
//! compares each one's mean and std with a fresh two-pass computation over the same window.

#[path = "../benches/alternatives.rs"]
#[allow(dead_code, missing_docs)]
mod alternatives;

use std::time::Instant;

use rand_core::{Rng, SeedableRng};
use zscope_core::Window;

const CAP: usize = 4096;

/// Corrected two-pass mean and sample std.
fn two_pass(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let c: f64 = xs.iter().map(|x| x - mean).sum();
    let ss = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() - c * c / n;
    (mean, (ss / (n - 1.0)).sqrt())
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let updates: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000_000);
    let window: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    assert!((2..=CAP).contains(&window), "window must be in 2..={CAP}");

    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    let mut ours: Window<f64, CAP> = Window::new(window).expect("window fits");
    let mut naive: alternatives::NaiveSums<CAP> = alternatives::NaiveSums::new(window);
    let mut welford: alternatives::Welford<CAP> = alternatives::Welford::new(window);

    println!("{updates} updates of 10000 + sin(i/100) + N(0,1), window {window}");
    println!("relative error against a fresh two-pass computation over the same window:");
    println!(
        "{:>14} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>10}",
        "updates", "zscope μ", "zscope σ", "welford μ", "welford σ", "sums μ", "sums σ"
    );
    let started = Instant::now();
    let mut next_check = 1_000u64;
    let mut worst = (0.0f64, 0.0f64);
    let mut spare: Option<f64> = None;
    for i in 1..=updates {
        // Box–Muller in f64.
        let noise = match spare.take() {
            Some(z) => z,
            None => {
                let u1 = 1.0 - (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let r = (-2.0 * u1.ln()).sqrt();
                let t = std::f64::consts::TAU * u2;
                spare = Some(r * t.sin());
                r * t.cos()
            }
        };
        let x = 10_000.0 + (i as f64 / 100.0).sin() + noise;
        ours.push(x).expect("finite");
        naive.push(x);
        welford.push(x);
        if i == next_check || i == updates {
            next_check *= 10;
            let held: Vec<f64> = ours.iter().collect();
            let (m, s) = two_pass(&held);
            let (om, os) = (ours.mean().unwrap_or(0.0), ours.std().unwrap_or(0.0));
            let (wm, ws) = welford.stats();
            let (nm, ns) = naive.stats();
            worst = (worst.0.max(rel(om, m)), worst.1.max(rel(os, s)));
            println!(
                "{:>14} | {:>10.1e} {:>10.1e} | {:>10.1e} {:>10.1e} | {:>10.1e} {:>10.1e}",
                i,
                rel(om, m),
                rel(os, s),
                rel(wm, m),
                rel(ws, s),
                rel(nm, m),
                rel(ns, s)
            );
        }
    }
    println!(
        "zscope worst: mean {:.1e}, std {:.1e} (target 1e-9) in {:.0} s",
        worst.0,
        worst.1,
        started.elapsed().as_secs_f64()
    );
    if worst.0 > 1e-9 || worst.1 > 1e-9 {
        eprintln!("FAILED: zscope's window drifted beyond 1e-9");
        std::process::exit(1);
    }
}
