//! `zscope eval`: how well a detector finds labelled anomalies, with numbers.
//!
//! **The rule.** Each labelled anomaly at sample `i` opens a tolerance window
//! `[i − tolerance, i + tolerance]` (samples); overlapping windows merge into one. A window with
//! at least one detection is one true positive (one hit per window, however many detections
//! fall in it), a window without is one false negative, and every detection outside all windows
//! is one false positive. Detection delay is the first detection in a window minus its first
//! label (negative when the detector fired early, within the tolerance). Precision =
//! TP/(TP+FP), recall = TP/(TP+FN), F1 their harmonic mean.
//!
//! **The seed method** is the naive detector zscope replaced: window 20, threshold 3, the current
//! point included in its own window, flagged values excluded from the window for ever.

use std::collections::VecDeque;

use serde::Serialize;
use zscope_core::{AnomalyPolicy, Baseline, Class, DetectorConfig, SimConfig, Simulator};

use crate::score::detector;

/// Precision, recall, F1 and delay of one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// Windows with a detection.
    pub true_positives: u64,
    /// Detections outside every window.
    pub false_positives: u64,
    /// Windows without a detection.
    pub false_negatives: u64,
    /// TP / (TP + FP); 0 when nothing was detected.
    pub precision: f64,
    /// TP / (TP + FN); 0 when nothing was labelled.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Mean samples from a window's first label to its first detection.
    pub mean_delay: f64,
}

/// Score `detections` against `labels` (same length) with `tolerance` samples either side.
pub fn evaluate(labels: &[bool], detections: &[bool], tolerance: usize) -> Metrics {
    // Merge label windows.
    let mut windows: Vec<(usize, usize, usize)> = Vec::new(); // (start, end, first label)
    for (i, _) in labels.iter().enumerate().filter(|(_, l)| **l) {
        let (start, end) = (i.saturating_sub(tolerance), i + tolerance);
        match windows.last_mut() {
            Some(w) if start <= w.1 => w.1 = w.1.max(end),
            _ => windows.push((start, end, i)),
        }
    }
    let (mut tp, mut fp, mut delays) = (0u64, 0u64, Vec::new());
    let mut w = 0;
    let mut hit = vec![false; windows.len()];
    for (i, _) in detections.iter().enumerate().filter(|(_, d)| **d) {
        while w < windows.len() && windows[w].1 < i {
            w += 1;
        }
        match windows.get(w) {
            Some(&(start, _, first)) if start <= i => {
                if !hit[w] {
                    hit[w] = true;
                    tp += 1;
                    delays.push(i as f64 - first as f64);
                }
            }
            _ => fp += 1,
        }
    }
    let fneg = windows.len() as u64 - tp;
    let precision = if tp + fp > 0 {
        tp as f64 / (tp + fp) as f64
    } else {
        0.0
    };
    let recall = if tp + fneg > 0 {
        tp as f64 / (tp + fneg) as f64
    } else {
        0.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    let mean_delay = if delays.is_empty() {
        f64::NAN
    } else {
        delays.iter().sum::<f64>() / delays.len() as f64
    };
    Metrics {
        true_positives: tp,
        false_positives: fp,
        false_negatives: fneg,
        precision,
        recall,
        f1,
        mean_delay,
    }
}

/// zscope's detector over `values`: one flag per value.
pub fn detect(
    values: &[f64],
    config: DetectorConfig,
) -> Result<Vec<bool>, zscope_core::ConfigError> {
    let mut det = detector(config)?;
    Ok(values
        .iter()
        .map(|x| det.update(*x).class == Class::Anomaly)
        .collect())
}

/// The seed method: the current point in its own window of 20, threshold 3, flagged values
/// excluded for ever.
pub fn detect_seed(values: &[f64]) -> Vec<bool> {
    const WINDOW: usize = 20;
    const THRESHOLD: f64 = 3.0;
    let mut held: VecDeque<f64> = VecDeque::with_capacity(WINDOW + 1);
    values
        .iter()
        .map(|&x| {
            if !x.is_finite() {
                return false;
            }
            let n = held.len() as f64 + 1.0;
            let mean = (held.iter().sum::<f64>() + x) / n;
            let ss: f64 =
                held.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() + (x - mean) * (x - mean);
            let std = if n > 1.0 {
                (ss / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            let flagged = held.len() >= WINDOW && std > 0.0 && ((x - mean) / std).abs() > THRESHOLD;
            if !flagged {
                held.push_back(x);
                if held.len() > WINDOW {
                    held.pop_front();
                }
            }
            flagged
        })
        .collect()
}

/// A named simulator setting for evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Short name.
    pub name: &'static str,
    /// What makes it hard.
    pub about: &'static str,
    /// The stream.
    pub sim: SimConfig,
}

/// The simulator's defaults and three harder settings.
pub fn scenarios(seed: u64) -> Vec<Scenario> {
    let d = SimConfig {
        seed,
        ..SimConfig::default()
    };
    vec![
        Scenario {
            name: "default",
            about: "wave 0.5, period 5000, 1% spikes of 6-10 sigma",
            sim: d,
        },
        Scenario {
            name: "small",
            about: "spikes of only 3-5 sigma",
            sim: SimConfig {
                magnitude_min: 3.0,
                magnitude_max: 5.0,
                ..d
            },
        },
        Scenario {
            name: "shifts",
            about: "level shifts instead of spikes, 0.2% of samples",
            sim: SimConfig {
                anomaly_rate: 0.002,
                level_shift_share: 1.0,
                ..d
            },
        },
        Scenario {
            name: "fast-wave",
            about: "wave of amplitude 1 (10 sigma), period 100 samples",
            sim: SimConfig {
                amplitude: 1.0,
                period: 100,
                ..d
            },
        },
    ]
}

/// `n` values of a simulated stream and their labels.
pub fn simulate(
    sim: SimConfig,
    n: usize,
) -> Result<(Vec<f64>, Vec<bool>), zscope_core::SimConfigError> {
    let s = Simulator::new(sim)?;
    Ok(s.take(n)
        .map(|x| (x.value as f64, x.truth.is_anomaly()))
        .unzip())
}

/// One point of a parameter sweep.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SweepRow {
    /// `window` or `seasonal(P)`.
    pub baseline: Baseline,
    /// Window length.
    pub window: u32,
    /// Threshold.
    pub threshold: f32,
    /// `exclude(N)` or `include`.
    pub policy: &'static str,
    /// Its metrics.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Windows, thresholds and policies swept by `zscope eval --sweep`.
pub const SWEEP_WINDOWS: [u32; 5] = [16, 32, 64, 128, 256];
/// Thresholds swept.
pub const SWEEP_THRESHOLDS: [f32; 5] = [2.5, 3.0, 3.5, 4.0, 5.0];

/// Weight of the newest cycle used by `eval` for the seasonal baseline.
pub const EVAL_ALPHA: f32 = 0.3;

/// Every baseline × window × threshold × policy on one labelled series; the seasonal baseline
/// only when the series' period is known.
pub fn sweep(
    values: &[f64],
    labels: &[bool],
    tolerance: usize,
    period: Option<u32>,
) -> Vec<SweepRow> {
    let mut baselines = vec![Baseline::Window];
    if let Some(period) = period {
        baselines.push(Baseline::Seasonal {
            period,
            alpha: EVAL_ALPHA,
        });
    }
    let mut rows = Vec::new();
    for baseline in baselines {
        for window in SWEEP_WINDOWS {
            for threshold in SWEEP_THRESHOLDS {
                for (policy, name) in [
                    (AnomalyPolicy::Exclude { max_run: 10 }, "exclude(10)"),
                    (AnomalyPolicy::Include, "include"),
                ] {
                    let config = DetectorConfig {
                        window,
                        threshold,
                        warmup: None,
                        policy,
                        baseline,
                    };
                    if let Ok(flags) = detect(values, config) {
                        rows.push(SweepRow {
                            baseline,
                            window,
                            threshold,
                            policy: name,
                            metrics: evaluate(labels, &flags, tolerance),
                        });
                    }
                }
            }
        }
    }
    rows
}

/// `window` or `seasonal(P)`, for tables.
pub fn baseline_name(b: Baseline) -> String {
    match b {
        Baseline::Window => "window".into(),
        Baseline::Seasonal { period, .. } => format!("seasonal({period})"),
        Baseline::Adaptive { learn, rest } => format!("adaptive(learn {learn}, rest {rest})"),
    }
}

/// A labelled series to evaluate.
pub struct Series {
    /// Its name in the report.
    pub name: String,
    /// What it is.
    pub about: String,
    /// Values.
    pub values: Vec<f64>,
    /// Labels.
    pub labels: Vec<bool>,
    /// Samples per cycle, when known (the seasonal baseline is evaluated then).
    pub period: Option<u32>,
}

fn fmt_row(name: &str, m: &Metrics) -> String {
    format!(
        "{name:<46} {:>9.3} {:>7.3} {:>7.3} {:>10.1}   {:>5} {:>6} {:>5}",
        m.precision,
        m.recall,
        m.f1,
        m.mean_delay,
        m.true_positives,
        m.false_positives,
        m.false_negatives
    )
}

/// The report `zscope eval` prints: per series, zscope with `config` against the seed method,
/// and with `sweep` the best settings per metric (all rows also returned, for `--out`).
pub fn report(
    series: &[Series],
    config: DetectorConfig,
    tolerance: usize,
    with_sweep: bool,
) -> Result<(String, Vec<(String, SweepRow)>), zscope_core::ConfigError> {
    let mut out = format!(
        "tolerance ±{tolerance} samples; one hit per labelled window; every detection outside a window is a false positive\n"
    );
    let policy = match config.policy {
        AnomalyPolicy::Include => "include".to_string(),
        AnomalyPolicy::Exclude { max_run } => format!("exclude({max_run})"),
    };
    let mut all = Vec::new();
    for s in series {
        out += &format!(
            "\n{} ({} samples, {} labelled): {}\n",
            s.name,
            s.values.len(),
            s.labels.iter().filter(|l| **l).count(),
            s.about
        );
        out += &format!(
            "{:<46} {:>9} {:>7} {:>7} {:>10}   {:>5} {:>6} {:>5}\n",
            "detector", "precision", "recall", "F1", "delay", "TP", "FP", "FN"
        );
        let ours = evaluate(&s.labels, &detect(&s.values, config)?, tolerance);
        let name = format!(
            "zscope {} w{} t{} {policy}",
            baseline_name(config.baseline),
            config.window,
            config.threshold
        );
        out += &fmt_row(&name, &ours);
        out.push('\n');
        if let (Some(period), Baseline::Window) = (s.period, config.baseline) {
            let seasonal = DetectorConfig {
                baseline: Baseline::Seasonal {
                    period,
                    alpha: EVAL_ALPHA,
                },
                ..config
            };
            let m = evaluate(&s.labels, &detect(&s.values, seasonal)?, tolerance);
            let name = format!(
                "zscope seasonal({period}) w{} t{}",
                config.window, config.threshold
            );
            out += &fmt_row(&name, &m);
            out.push('\n');
        }
        let seed = evaluate(&s.labels, &detect_seed(&s.values), tolerance);
        out += &fmt_row("seed method (w20 t3, self-incl.)", &seed);
        out.push('\n');
        if with_sweep {
            let rows = sweep(&s.values, &s.labels, tolerance, s.period);
            let best = |key: fn(&Metrics) -> f64| {
                rows.iter()
                    .max_by(|a, b| key(&a.metrics).total_cmp(&key(&b.metrics)))
                    .copied()
            };
            for (what, key) in [
                ("best F1", (|m: &Metrics| m.f1) as fn(&Metrics) -> f64),
                ("best precision", |m: &Metrics| m.precision),
                ("best recall", |m: &Metrics| m.recall),
            ] {
                if let Some(r) = best(key) {
                    let name = format!(
                        "{what}: {} w{} t{} {}",
                        baseline_name(r.baseline),
                        r.window,
                        r.threshold,
                        r.policy
                    );
                    out += &fmt_row(&name, &r.metrics);
                    out.push('\n');
                }
            }
            all.extend(rows.into_iter().map(|r| (s.name.clone(), r)));
        }
    }
    Ok((out, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    /// Worked by hand. Labels at 3 and 12 (windows [1,5] and [10,14] with tolerance 2), and at
    /// 20 and 22 (windows [18,22] and [20,24], merged into [18,24]).
    #[test]
    fn metrics_of_a_hand_made_series() {
        //                 0         1         2
        //                 0123456789012345678901234567
        let labels = bits("0001000000001000000010100000");
        let detect = bits("1000110000000000001100000010");
        // Window [1,5]: detections at 4 and 5: one TP, delay 4-3 = 1.
        // Window [10,14]: none: one FN.
        // Window [18,24]: detections at 18, 19: one TP, delay 18-20 = -2.
        // Outside every window: 0 and 26: two FP.
        let m = evaluate(&labels, &detect, 2);
        assert_eq!(
            (m.true_positives, m.false_positives, m.false_negatives),
            (2, 2, 1)
        );
        assert_eq!(m.precision, 0.5);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1 - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(m.mean_delay, -0.5);
        // Tolerance 0: only exact hits count.
        let m = evaluate(&labels, &detect, 0);
        assert_eq!(
            (m.true_positives, m.false_positives, m.false_negatives),
            (0, 6, 4)
        );
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
    }

    #[test]
    fn the_seed_method_includes_the_point_in_its_own_window() {
        // 20 alternating values, then 3: with the point in its own window z is about 2.5;
        // against the window before it (zscope) z is about 3.0.
        let mut xs: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        xs.push(3.2);
        assert!(!detect_seed(&xs)[20]);
        let zscope = detect(&xs, DetectorConfig::with_window(20)).unwrap();
        assert!(zscope[20]);
    }

    /// What zscope's choices buy over the seed method (measured; see the README's table): a
    /// level shift is learnt instead of flagged for ever, and small spikes are not masked.
    #[test]
    fn zscope_beats_the_seed_method_on_shifts_and_small_spikes() {
        let by_name = |n: &str| scenarios(42).into_iter().find(|s| s.name == n).unwrap().sim;
        let (values, labels) = simulate(by_name("shifts"), 50_000).unwrap();
        let ours = evaluate(
            &labels,
            &detect(&values, DetectorConfig::default()).unwrap(),
            2,
        );
        let seed = evaluate(&labels, &detect_seed(&values), 2);
        assert!(
            ours.false_positives * 10 < seed.false_positives,
            "{ours:?} vs {seed:?}"
        );
        assert!(ours.f1 > seed.f1, "{ours:?} vs {seed:?}");
        let (values, labels) = simulate(by_name("small"), 50_000).unwrap();
        let ours = evaluate(
            &labels,
            &detect(&values, DetectorConfig::default()).unwrap(),
            2,
        );
        let seed = evaluate(&labels, &detect_seed(&values), 2);
        assert!(ours.recall > seed.recall + 0.15, "{ours:?} vs {seed:?}");
        assert!(ours.f1 > seed.f1 + 0.1, "{ours:?} vs {seed:?}");
    }

    /// A hand-made labelled file, worked out by hand: a wiggle of ±0.1 with spikes of +50 at
    /// rows 30, 50 and 70 (the detector, window 8, flags exactly those), and labels at rows 31,
    /// 50 and 90. With tolerance 1: the window [30, 32] holds the detection at 30 (TP, delay
    /// -1), [49, 51] holds 50 (TP, delay 0), [89, 91] holds none (FN), and 70 is outside every
    /// window (FP). Precision 2/3, recall 2/3, F1 2/3, mean delay -0.5.
    #[test]
    fn metrics_of_a_hand_made_labelled_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labelled.csv");
        let mut text = String::from("timestamp,value,label\n");
        for i in 0..100 {
            let value = if [30, 50, 70].contains(&i) {
                50.0
            } else if i % 2 == 0 {
                0.1
            } else {
                -0.1
            };
            let label = [31, 50, 90].contains(&i) as u8;
            text += &format!(
                "2026-11-24 10:00:{:02}.{:03},{value},{label}\n",
                i / 10,
                (i % 10) * 100
            );
        }
        std::fs::write(&path, text).unwrap();
        let mut data = crate::dataset::Dataset::open(&path, &Default::default(), true).unwrap();
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        while let Some(r) = data.next_record().unwrap() {
            values.push(r.value);
            labels.push(r.label == Some(true));
        }
        let flags = detect(&values, DetectorConfig::with_window(8)).unwrap();
        let flagged: Vec<usize> = flags
            .iter()
            .enumerate()
            .filter(|(_, f)| **f)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(flagged, [30, 50, 70]);
        let m = evaluate(&labels, &flags, 1);
        assert_eq!(
            (m.true_positives, m.false_positives, m.false_negatives),
            (2, 1, 1)
        );
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.mean_delay, -0.5);
    }
}
