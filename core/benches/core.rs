//! `cargo bench -p zscope-core`: detector updates/s against a naive O(window) detector run in
//! the same process, and frame encode/decode rates. Prints ratios, not absolute verdicts: the
//! machine's speed cancels out of them.
//!
//! Each case runs for about `ZSCOPE_BENCH_MS` milliseconds (default 300) per round, 5 rounds,
//! and reports the median round.

#[allow(dead_code, missing_docs)]
mod alternatives;

use std::hint::black_box;
use std::time::{Duration, Instant};

use zscope_core::wire::{self, Decoder, DeviceMsg, Flags, Sample};
use zscope_core::{
    AnomalyPolicy, Detector, DetectorConfig, RollingZScore, SimConfig, Simulator, Window,
};

/// The naive baseline: the same detector, but mean and std recomputed from the whole window
/// (two passes) for every value.
struct Naive<const N: usize> {
    buf: [f64; N],
    len: usize,
    count: usize,
    head: usize,
    threshold: f64,
    max_run: u32,
    run: u32,
}

impl<const N: usize> Naive<N> {
    fn new(len: usize) -> Self {
        Naive {
            buf: [0.0; N],
            len,
            count: 0,
            head: 0,
            threshold: 3.0,
            max_run: DetectorConfig::DEFAULT_MAX_RUN,
            run: 0,
        }
    }

    fn held(&self) -> impl Iterator<Item = f64> + '_ {
        (1..=self.count).map(move |back| self.buf[(self.head + N - back) % N])
    }

    fn update(&mut self, x: f64) -> (f64, bool) {
        let n = self.count as f64;
        let mean = if self.count == 0 {
            0.0
        } else {
            self.held().sum::<f64>() / n
        };
        let std = if self.count < 2 {
            0.0
        } else {
            (self.held().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        let z = if std > 0.0 { (x - mean) / std } else { 0.0 };
        let flagged = self.count >= self.len && z.abs() > self.threshold;
        let excluded = flagged && self.run < self.max_run;
        self.run = if flagged { self.run + 1 } else { 0 };
        if !excluded {
            self.buf[self.head] = x;
            self.head = (self.head + 1) % N;
            self.count = (self.count + 1).min(self.len);
        }
        (z, flagged)
    }
}

/// Run `f` over batches until `budget` is spent; returns items per second.
fn rate(budget: Duration, items_per_call: u64, mut f: impl FnMut()) -> f64 {
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut items = 0u64;
        while start.elapsed() < budget {
            f();
            items += items_per_call;
        }
        rounds.push(items as f64 / start.elapsed().as_secs_f64());
    }
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:8.1} M/s", r / 1e6)
    } else {
        format!("{:8.1} k/s", r / 1e3)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let ms = std::env::var("ZSCOPE_BENCH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let budget = Duration::from_millis(ms);
    let data: Vec<f32> = Simulator::new(SimConfig::default())
        .expect("default simulator config is valid")
        .take(1 << 16)
        .map(|s| s.value)
        .collect();
    let data64: Vec<f64> = data.iter().map(|x| *x as f64).collect();
    let n = data.len() as u64;

    println!(
        "zscope-core benchmark ({} ms x 5 rounds per case, median)",
        ms
    );
    println!();
    println!(
        "{:<52} {:>12} {:>14}",
        "detector update", "rate", "vs naive"
    );
    for window in [64u32, 1024] {
        let cfg = DetectorConfig {
            policy: AnomalyPolicy::default(),
            ..DetectorConfig::with_window(window)
        };
        let mut naive: Naive<1024> = Naive::new(window as usize);
        let naive_rate = rate(budget, n, || {
            for &x in &data64 {
                black_box(naive.update(x));
            }
        });
        let mut d64: RollingZScore<f64, 1024> =
            RollingZScore::new(cfg).expect("bench config is valid");
        let r64 = rate(budget, n, || {
            for &x in &data64 {
                black_box(d64.update(x));
            }
        });
        let mut d32: RollingZScore<f32, 1024> =
            RollingZScore::new(cfg).expect("bench config is valid");
        let r32 = rate(budget, n, || {
            for &x in &data {
                black_box(d32.update(x));
            }
        });
        println!(
            "{:<52} {} {:>13}",
            format!("naive O(window) two-pass, f64, window {window}"),
            fmt_rate(naive_rate),
            "1.0x"
        );
        println!(
            "{:<52} {} {:>13}",
            format!("RollingZScore<f64>, window {window}"),
            fmt_rate(r64),
            format!("{:.1}x", r64 / naive_rate)
        );
        println!(
            "{:<52} {} {:>13}",
            format!("RollingZScore<f32>, window {window}"),
            fmt_rate(r32),
            format!("{:.1}x", r32 / naive_rate)
        );
    }

    // Each detector, in steady state, against the rolling Z-score (window 64) in this run.
    println!();
    println!(
        "{:<52} {:>12} {:>14}",
        "Detector (after learning), window 64", "rate", "vs Z-score"
    );
    let wave: Vec<f64> = Simulator::new(SimConfig {
        amplitude: 1.0,
        period: 100,
        ..SimConfig::default()
    })
    .expect("valid")
    .take(1 << 16)
    .map(|s| s.value as f64)
    .collect();
    let cases: [(&str, DetectorConfig, &[f64]); 4] = [
        (
            "zscore (rolling Z-score), f64",
            DetectorConfig::with_window(64),
            &data64,
        ),
        (
            "seasonal(100), f64",
            DetectorConfig {
                baseline: zscope_core::Baseline::Seasonal {
                    period: 100,
                    alpha: 0.3,
                },
                ..DetectorConfig::with_window(64)
            },
            &wave,
        ),
        (
            "adaptive (default), no period, f64",
            DetectorConfig::default(),
            &data64,
        ),
        (
            "adaptive (default), period 100 found, f64",
            DetectorConfig::default(),
            &wave,
        ),
    ];
    let mut baseline = None;
    for (name, config, values) in cases {
        let mut det: Box<Detector<f64, 1024, 2048>> =
            Box::new(Detector::new(config).expect("bench config is valid"));
        for &x in values.iter().take(2000) {
            det.update(x); // past learning
        }
        let r = rate(budget, values.len() as u64, || {
            for &x in values.iter() {
                black_box(det.update(x));
            }
        });
        let base = *baseline.get_or_insert(r);
        println!(
            "{:<52} {} {:>13}",
            name,
            fmt_rate(r),
            format!("{:.2}x", r / base)
        );
    }
    let mut learning = 0.0;
    let learn_rate = rate(budget, 1200, || {
        let mut det: Box<Detector<f64, 1024, 2048>> =
            Box::new(Detector::new(DetectorConfig::default()).expect("valid"));
        for &x in wave.iter().take(1200) {
            black_box(det.update(x));
        }
        learning += 1.0;
    });
    black_box(learning);
    println!(
        "{:<52} {} {:>13}",
        "adaptive, first 1200 values (learning + period search)",
        fmt_rate(learn_rate),
        format!("{:.2}x", learn_rate / baseline.unwrap_or(learn_rate))
    );

    println!();
    println!(
        "{:<52} {:>12} {:>14}",
        "window stats only (push + mean + std), f64", "rate", "vs Welford"
    );
    for window in [64usize, 1024] {
        let mut w: alternatives::Welford<1024> = alternatives::Welford::new(window);
        let welford = rate(budget, n, || {
            for &x in &data64 {
                w.push(x);
                black_box(w.stats());
            }
        });
        let mut s: alternatives::NaiveSums<1024> = alternatives::NaiveSums::new(window);
        let sums = rate(budget, n, || {
            for &x in &data64 {
                s.push(x);
                black_box(s.stats());
            }
        });
        let mut ours: Window<f64, 1024> = Window::new(window).expect("window fits");
        let zscope = rate(budget, n, || {
            for &x in &data64 {
                black_box(ours.push(x).ok());
                black_box(ours.stats());
            }
        });
        for (name, r) in [
            ("Welford add/remove (drifts)", welford),
            ("running sums of x, x² (cancels)", sums),
            ("zscope Window (shifted sums + re-centring)", zscope),
        ] {
            println!(
                "{:<52} {} {:>13}",
                format!("{name}, window {window}"),
                fmt_rate(r),
                format!("{:.2}x", r / welford)
            );
        }
    }

    println!();
    let msgs: Vec<DeviceMsg> = (0..1024u64)
        .map(|i| {
            DeviceMsg::Sample(Sample {
                seq: 1_000 + i,
                time_ms: 20 * (1_000 + i),
                value: data[i as usize],
                mean: 0.01,
                std: 0.1,
                z: 1.5,
                score: 0.4,
                flags: Flags::empty(),
                config_version: 1,
            })
        })
        .collect();
    let mut out = [0u8; wire::MAX_FRAME];
    let enc = rate(budget, msgs.len() as u64, || {
        for m in &msgs {
            black_box(wire::encode(m, &mut out).expect("sample fits a frame"));
        }
    });
    let mut line = Vec::new();
    for m in &msgs {
        let k = wire::encode(m, &mut out).expect("sample fits a frame");
        line.extend_from_slice(&out[..k]);
    }
    let mut decoder: Decoder = Decoder::new();
    let dec = rate(budget, msgs.len() as u64, || {
        for chunk in line.chunks(4096) {
            let mut input = chunk;
            while let Some(m) = decoder.next_message::<DeviceMsg>(&mut input) {
                black_box(m.ok());
            }
        }
    });
    let frame_bytes = line.len() as f64 / msgs.len() as f64;
    println!("{:<52} {:>12}", "wire (sample frames)", "rate");
    println!(
        "{:<52} {}",
        "encode (postcard + CRC-32C + COBS)",
        fmt_rate(enc)
    );
    println!(
        "{:<52} {}   ({:.1} MB/s of line)",
        "decode (streaming, 4 KiB chunks)",
        fmt_rate(dec),
        dec * frame_bytes / 1e6
    );
    assert_eq!(
        decoder.stats().errors(),
        0,
        "benchmark stream must decode cleanly"
    );
}
