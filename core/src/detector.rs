//! [`Detector`]: the one detector the firmware, the emulation, `score`, `replay` and `eval` all
//! run; [`DetectorConfig::baseline`] picks what it does.
//!
//! * [`Baseline::Adaptive`] (the default): novel levels plus a residual Z-score calibrated to
//!   the stream's own tails, against a period it finds by itself (its parts are in
//!   [`crate::adaptive`]; how they fit is on [`Baseline::Adaptive`] and in the README).
//! * [`Baseline::Window`]: exactly [`RollingZScore`] (bit for bit), the seed's method.
//! * [`Baseline::Seasonal`]: a profile of `period` slots, one per phase of the cycle, each an
//!   exponentially weighted mean (factor `alpha`) of the values seen at that phase. A value's
//!   residual against its phase's slot goes through the rolling Z-score, so a strong seasonal
//!   wave no longer inflates the std or drags the mean behind it. The verdict's `mean` is the
//!   value expected (slot plus the residuals' mean), so a chart's band follows the wave. The
//!   first period fills the profile (verdicts say warming up); slots are updated robustly
//!   (toward the value by `alpha` times its deviation, clamped to ±threshold·std of the
//!   residuals), so a spike barely moves its slot and a level shift is learnt steadily;
//!   `period = 1` makes the profile an EWMA of the stream.
//!
//! Fixed memory: a window of capacity `N` and a profile of `S` slots (const generics; the
//! adaptive detector's period finder uses the profile as scratch while it learns); O(1) work
//! per value once learning is over.
//!
//! What every detector shares is below it and re-exported here: its settings
//! ([`DetectorConfig`], in [`crate::config`], which crosses the wire) and the verdict it gives
//! for each value ([`Verdict`], in [`crate::verdict`]).

use crate::adaptive::{
    FAST_HORIZON, LevelNovelty, PeriodFinder, Recent, SPREAD_HORIZON, Search, Spread, Tail,
};
pub use crate::config::{AnomalyPolicy, Baseline, ConfigError, DetectorConfig};
use crate::float::Float;
pub use crate::verdict::{Class, Verdict};
use crate::zscore::RollingZScore;

/// A rolling Z-score detector of window capacity `N` and season capacity `S`, in `F`.
#[derive(Debug, Clone)]
pub struct Detector<F: Float, const N: usize, const S: usize> {
    inner: RollingZScore<F, N>,
    profile: [F; S],
    phase: usize,
    filled: bool,
    adaptive: AdaptiveState<F>,
}

/// What the adaptive detector keeps besides the window and the profile (which is its scratch
/// space while it learns, then the seasonal profile if a period was found).
#[derive(Debug, Clone, Copy, Default)]
struct AdaptiveState<F: Float> {
    /// Valid and invalid values seen (saturating).
    seen: u32,
    novelty: LevelNovelty<F>,
    finder: PeriodFinder<F>,
    /// Samples per cycle; 0 when none was found (or not yet).
    period: usize,
    /// Where the profile starts in the profile array: after the period finder's scratch for
    /// the first guess (at the end of learning), at 0 once the finder is done.
    profile_at: usize,
    tail: Tail<F>,
    /// Smallest non-zero step between consecutive valid values (the data's resolution).
    quantum: F,
    last: Option<F>,
    /// Consecutive values kept out of the statistics (flagged, or far outside the spread).
    run: u32,
    /// Holt's linear smoothing of the residuals: level and trend, and values taken.
    holt_level: F,
    holt_trend: F,
    holt_n: u32,
    /// The last values let in, for the local predictors.
    recent: Recent<F>,
    /// Each predictor's spread: the baseline's (window, Holt or profile), the recent values'
    /// mean, the last value.
    spreads: [Spread<F>; PREDICTORS],
    /// A fast spread of the chosen predictor's errors: it follows a burst (values kept out two
    /// in a row, and not at one new level) within a few values; an isolated spike never
    /// reaches it.
    fast: Spread<F>,
    /// The last value, if it was kept out: what the next one is compared with (at its level:
    /// a level shift; far from it: a burst), with its deviation.
    held: Option<(F, F)>,
    /// A period search under way, a bounded step each update; `guessing` while it is the
    /// first guess (at the end of learning), not the search of the whole buffer.
    search: Search<F>,
    guessing: bool,
}

/// Inner-loop iterations a period search does in one update (a lag of the autocorrelation
/// counts four) while the period finder still buffers (its own lag products cost about 10 900
/// instructions an update on a Cortex-M4F), and after: so no update comes near 20 000.
const SEARCH_STEP_BUFFERING: usize = 96;
const SEARCH_STEP: usize = 320;

/// The adaptive detector's predictors: the baseline (the window's mean of the residuals
/// against Holt's trend or the period's profile), the mean of the last few values, the last.
const PREDICTORS: usize = 3;

/// Where the period finder's values and lag products go in the profile array: it buffers
/// twice the learning phase (a daily cycle of 288 samples needs about four cycles to be found
/// to the sample, under a weekly one), as far as two thirds of the capacity allow.
fn scratch_split(learn: usize, capacity: usize) -> (usize, usize) {
    let buffered = learn.saturating_mul(2).min(capacity * 2 / 3);
    let lags = (buffered / 2).min(capacity.saturating_sub(buffered + 1));
    (buffered, lags)
}

impl<F: Float, const N: usize, const S: usize> Detector<F, N, S> {
    /// A detector with `config`, refused if it does not fit the capacities.
    pub fn new(config: DetectorConfig) -> Result<Self, ConfigError> {
        config.check_baseline(S)?;
        Ok(Detector {
            inner: RollingZScore::new(config)?,
            profile: [F::ZERO; S],
            phase: 0,
            filled: false,
            adaptive: AdaptiveState::default(),
        })
    }

    /// Check `config` against this detector's capacities without applying it.
    pub fn validate(config: &DetectorConfig) -> Result<(), ConfigError> {
        config.validate_for(N, S)
    }

    /// The config in force.
    pub fn config(&self) -> &DetectorConfig {
        self.inner.config()
    }

    /// The window capacity `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The season capacity `S`.
    pub const fn season_capacity(&self) -> usize {
        S
    }

    /// The period the adaptive detector found in its learning phase (`None` before the end of
    /// learning, when none showed, and for the other baselines).
    pub fn found_period(&self) -> Option<usize> {
        (self.adaptive.period > 0).then_some(self.adaptive.period)
    }

    /// Apply a new config at once. A new baseline (or period) starts its profile afresh and
    /// the window with it, since residuals against another baseline are other numbers; other
    /// changes keep everything. Refused configs change nothing.
    pub fn set_config(&mut self, config: DetectorConfig) -> Result<(), ConfigError> {
        config.check_baseline(S)?;
        let restart = match (self.config().baseline, config.baseline) {
            (Baseline::Window, Baseline::Window) => false,
            (Baseline::Adaptive { learn: a, .. }, Baseline::Adaptive { learn: b, .. }) => a != b,
            (Baseline::Seasonal { period: a, .. }, Baseline::Seasonal { period: b, .. }) => a != b,
            _ => true,
        };
        self.inner.set_config(config)?;
        if restart {
            self.reset();
        }
        Ok(())
    }

    /// Forget everything: the profile refills, the window warms up again.
    pub fn reset(&mut self) {
        self.inner.reset();
        self.phase = 0;
        self.filled = false;
        self.adaptive = AdaptiveState::default();
    }

    /// Judge `x`.
    #[inline]
    pub fn update(&mut self, x: F) -> Verdict<F> {
        let (period, alpha) = match self.inner.config().baseline {
            Baseline::Window => return self.inner.update(x),
            Baseline::Adaptive { learn, rest } => return self.adaptive(x, learn, rest),
            Baseline::Seasonal { period, alpha } => (period, alpha),
        };
        let period = period as usize;
        let p = self.phase;
        self.phase += 1;
        if self.phase >= period {
            self.phase = 0;
        }
        if !self.filled {
            if self.phase == 0 {
                self.filled = true;
            }
            let valid = x.is_finite();
            if valid {
                self.profile[p] = x;
            }
            return Verdict {
                value: x,
                mean: if valid { x } else { F::ZERO },
                std: F::ZERO,
                z: F::ZERO,
                score: F::ZERO,
                class: if valid {
                    Class::WarmingUp
                } else {
                    Class::Invalid
                },
                excluded: !valid,
                novel: false,
            };
        }
        let base = self.profile[p];
        let mut v = self.inner.update(x - base);
        if v.class != Class::Invalid {
            // A robust (winsorised) update: the slot moves toward x by alpha times the
            // deviation, clamped to ±threshold·std of the residuals. A spike barely moves it;
            // a slot that caught a spike (say, in the first period) heals within a few periods
            // instead of flagging that phase for ever; a level shift is learnt steadily.
            let mut d = x - base;
            let limit = v.std * F::from_f32(self.inner.config().threshold);
            if limit > F::ZERO {
                if d > limit {
                    d = limit;
                } else if d < -limit {
                    d = -limit;
                }
            }
            self.profile[p] = base + F::from_f32(alpha) * d;
        }
        v.value = x;
        v.mean = base + v.mean;
        v
    }
}

/// The adaptive detector's update, apart from the others for reading.
impl<F: Float, const N: usize, const S: usize> Detector<F, N, S> {
    /// Weight of a residual in its phase's profile slot.
    const PROFILE_ALPHA: f32 = 0.1;
    /// Holt's trend weight, as a share of its level weight (2 / (window + 1)).
    const TREND_SHARE: f32 = 0.1;
    /// A value this many calibrated spreads from what was expected stays out of every
    /// statistic (while flagged values are kept out, up to the policy's run), so it cannot
    /// mask the next one.
    const FAR: f32 = 10.0;
    /// Errors a spread rests on before the tail takes z-scores against it (earlier ones are
    /// mostly the spread's own noise).
    const TAIL_AFTER: u32 = 32;

    fn adaptive(&mut self, x: F, learn: u32, rest: u32) -> Verdict<F> {
        let config = *self.inner.config();
        let learn = learn as usize;
        let (buffered, lags) = scratch_split(learn, S);
        let a = &mut self.adaptive;
        let index = a.seen as usize;
        a.seen = a.seen.saturating_add(1);
        let learning = index < learn;
        let valid = x.is_finite();

        // The learning phase sets the level range; the period finder buffers on a while longer.
        if learning && valid {
            a.novelty.learn(x);
        }
        if index < buffered {
            let (buf, acc) = self.profile.split_at_mut(buffered);
            a.finder.push(valid.then_some(x), buf, &mut acc[..lags]);
        }
        // Phase of the cycle (positional: invalid values take their place too).
        let slot = if a.period > 0 {
            let p = self.phase;
            self.phase = (self.phase + 1) % a.period;
            Some(p)
        } else {
            None
        };
        let end_of_learning = index + 1 == learn;
        let end_of_buffering = index + 1 == buffered;
        if !valid {
            if end_of_learning {
                self.adaptive.novelty.fix_grid();
                self.guess_period(buffered, lags);
            }
            if end_of_buffering {
                self.find_period(buffered, lags);
            }
            self.search_step(buffered, lags);
            return Verdict::invalid(x, self.inner.window().stats());
        }

        // Three predictions of x, each judged by the spread of its own past errors; the one
        // with the smallest spread judges the value (the stream's best model so far: the
        // window's mean for noise, the period's profile for a cycle, the recent values for a
        // wave not yet found or a wandering level, the last value for a random walk).
        //
        // The baseline: without a period, Holt's level + trend predicts the residual, so the
        // slope of a slow wave or a drift does not look like a deviation. With one, x less its
        // phase's profile slot is the residual (the profile learns the cycle's shape from what
        // the window's mean leaves). The window holds these prediction errors; their mean is
        // the baseline's remaining bias.
        let at = self.adaptive.profile_at;
        let base = slot.map_or(F::ZERO, |p| self.profile[at + p]);
        let a = &mut self.adaptive;
        let r = x - base;
        let holt = slot.is_none();
        let predicted = if !holt {
            F::ZERO
        } else if a.holt_n > 0 {
            a.holt_level + a.holt_trend
        } else {
            r
        };
        let error = r - predicted;
        let stats = self.inner.window().stats();
        let predictions = [
            (stats.count >= 1).then_some(base + predicted + stats.mean),
            a.recent.mean(),
            a.recent.last(),
        ];
        let warmup = config.effective_warmup();
        let mut best: Option<(usize, F)> = None;
        for (i, p) in predictions.iter().enumerate() {
            let spread = &a.spreads[i];
            if p.is_some() && spread.count() >= warmup {
                let s = spread.scale();
                if best.is_none_or(|(_, b)| s < b) {
                    best = Some((i, s));
                }
            }
        }
        let judged = best.is_some();
        let (chosen, spread) = best.unwrap_or((0, F::ZERO));
        let mut expected = predictions[chosen].unwrap_or(x);
        // Floors: the fast spread (a burst), the data's resolution, and a thousandth of the
        // level or the value (a stream that has shown no scale at all, a flat line of zeros,
        // then judges a change by its own size: z = 1000, not infinity).
        let magnitude = if x.abs() > expected.abs() {
            x.abs()
        } else {
            expected.abs()
        };
        let fast = if a.fast.count() >= warmup {
            a.fast.scale()
        } else {
            F::ZERO
        };
        let mut steady = spread;
        for floor in [a.quantum, magnitude * F::from_f32(1e-3), F::from_f32(1e-30)] {
            if floor > steady {
                steady = floor;
            }
        }
        // The fast spread counts by what it exceeds half the steady one: its own noise (a
        // mean of a few errors) never lifts the scale, a burst does at once.
        let surge = fast - steady * F::from_f32(0.5);
        let scale = if surge > steady { surge } else { steady };
        // The calibrated spread: the threshold applies to it, so the band the verdict
        // describes (expected ± threshold × std) is exactly what flags.
        let std = scale * a.tail.factor();
        let threshold = F::from_f32(config.threshold);
        // A value at the level of the one kept out just before it: the stream has moved there
        // (a level shift, or a step). It is judged against that level, and the predictors
        // start from it.
        let shifted = match a.held {
            Some((h, _)) if judged => (x - h).abs() <= threshold * std,
            _ => false,
        };
        let mut step = F::ZERO;
        if let (true, Some((h, d))) = (shifted, a.held) {
            expected = h;
            step = d;
        }
        let deviation = x - expected;
        let z = if judged { deviation / std } else { F::ZERO };
        let abs_z = z.abs();
        // The band's own arithmetic decides, so "outside the band" and "flagged" are one test.
        let flagged = judged && deviation.abs() > threshold * std;
        if judged && !shifted && a.spreads[chosen].count() >= Self::TAIL_AFTER {
            a.tail.push(deviation.abs() / scale);
        }
        if let Some(last) = a.last {
            let step = (x - last).abs();
            if step > F::ZERO && (a.quantum == F::ZERO || step < a.quantum) {
                a.quantum = step;
            }
        }
        a.last = Some(x);
        // Kept out of the statistics: flagged values (as the policy says) and values far
        // outside the spread (always, up to the default run), so neither masks the next.
        let far = judged && abs_z >= F::from_f32(Self::FAR);
        let max_run = match config.policy {
            AnomalyPolicy::Exclude { max_run } => max_run,
            AnomalyPolicy::Include => 0,
        };
        let max_run = if far {
            max_run.max(DetectorConfig::DEFAULT_MAX_RUN)
        } else {
            max_run
        };
        let excluded = if flagged || far {
            let out = a.run < max_run;
            a.run = a.run.saturating_add(1);
            out
        } else {
            a.run = 0;
            false
        };
        if excluded {
            // Two in a row, not at one level: a burst, which the fast spread takes in.
            if let Some((_, d)) = a.held {
                a.fast.take(d, FAST_HORIZON);
                a.fast.take(deviation, FAST_HORIZON);
            }
            a.held = Some((x, deviation));
        } else {
            a.held = None;
            if judged {
                a.fast.push(deviation, FAST_HORIZON);
            }
        }
        if shifted {
            // A stream that steps may step again: the fast spread takes the step (as it takes
            // a burst), so a run of steps of one size is learnt, not flagged step by step.
            a.fast.take(step, FAST_HORIZON);
            // The predictors start again from the new level; the spreads (the noise) stay.
            a.recent.clear();
            a.recent.push(expected);
            a.holt_n = 0;
            self.inner.window_mut().clear();
        }
        let stats = if shifted {
            self.inner.window().stats()
        } else {
            stats
        };
        let a = &mut self.adaptive;
        if !excluded {
            let dev = error - stats.mean;
            if stats.count >= 1 {
                a.spreads[0].push(dev, SPREAD_HORIZON);
            }
            for (i, p) in predictions.iter().enumerate().skip(1) {
                if let (Some(p), false) = (p, shifted) {
                    a.spreads[i].push(x - *p, SPREAD_HORIZON);
                }
            }
            a.recent.push(x);
            if let (Some(p), false) = (slot, shifted) {
                // The phase's slot moves toward the value, by at most three spreads.
                let limit = a.spreads[0].scale() * F::from_f32(3.0);
                let d = if dev > limit {
                    limit
                } else if dev < -limit {
                    -limit
                } else {
                    dev
                };
                self.profile[at + p] += F::from_f32(Self::PROFILE_ALPHA) * d;
            }
        }
        let a = &mut self.adaptive;
        if excluded {
            // Kept out: the prediction moves on along the trend.
            a.holt_level = predicted;
        } else if !holt {
            let _ = self.inner.window_mut().push(error);
        } else if shifted {
            // Holt starts at the new level with the next value; its error against the old one
            // is no error of its.
            a.holt_n = 0;
        } else {
            // x is finite, so the window takes it.
            let _ = self.inner.window_mut().push(error);
            if a.holt_n == 0 {
                a.holt_level = r;
                a.holt_trend = F::ZERO;
            } else {
                let alpha = F::from_f32(2.0) / (F::from_usize(config.window as usize) + F::ONE);
                let beta = alpha * F::from_f32(Self::TREND_SHARE);
                let previous = a.holt_level;
                a.holt_level = alpha * r + (F::ONE - alpha) * predicted;
                a.holt_trend = beta * (a.holt_level - previous) + (F::ONE - beta) * a.holt_trend;
            }
            a.holt_n = a.holt_n.saturating_add(1);
        }

        // The novelty channel, once the grid is set.
        let a = &mut self.adaptive;
        let fresh = !learning && a.novelty.update(x, rest);
        // The verdict names novelty as the reason only inside the band; beyond it, the band is.
        let novel = fresh && !flagged;
        if end_of_learning {
            a.novelty.fix_grid();
            self.guess_period(buffered, lags);
        }
        if end_of_buffering {
            self.find_period(buffered, lags);
        }
        self.search_step(buffered, lags);
        let score = if fresh {
            // 0.75..1, ordered by how far the value is from what was expected.
            F::from_f32(0.75) + F::from_f32(0.25) * abs_z / (abs_z + threshold)
        } else if flagged {
            F::from_f32(0.5) + F::from_f32(0.25) * (abs_z - threshold) / abs_z
        } else {
            F::from_f32(0.5) * abs_z / (abs_z + threshold)
        };
        let class = if novel || flagged {
            Class::Anomaly
        } else if judged {
            Class::Normal
        } else {
            Class::WarmingUp
        };
        Verdict {
            value: x,
            mean: expected,
            std: if judged { std } else { F::ZERO },
            z,
            score,
            class,
            excluded,
            novel,
        }
    }

    /// The end of learning, with the period finder's buffer half full: start a first guess at
    /// the period from the values so far, so a cycle is followed from soon after here rather
    /// than from the end of buffering. Its profile goes after the finder's scratch (periods up
    /// to what fits there: 247 at the board's capacities).
    fn guess_period(&mut self, buffered: usize, lags: usize) {
        let a = &mut self.adaptive;
        if a.finder.len() >= buffered {
            return; // one search, at the end of buffering, does it all
        }
        let room = S.saturating_sub(buffered + lags);
        let at = buffered + lags;
        a.search = a.finder.search(buffered, at, lags.min(room), at, room);
        a.guessing = true;
    }

    /// The period finder's buffer is full: start the search of all of it (a first guess still
    /// under way gives way to it). If a period shows, its profile is folded at the array's
    /// start.
    fn find_period(&mut self, buffered: usize, lags: usize) {
        let a = &mut self.adaptive;
        let n = a.finder.len();
        a.search = a.finder.search(buffered, buffered, lags, 0, n);
        a.guessing = false;
    }

    /// One bounded step of the search under way; when it ends, its answer is taken: a first
    /// guess is followed if it found a period; the search of the whole buffer confirms,
    /// replaces or removes it, and a period other than the one followed starts the window
    /// afresh. Positions count every value seen, so the phase is the next value's.
    #[inline]
    fn search_step(&mut self, buffered: usize, lags: usize) {
        let a = &mut self.adaptive;
        if !a.search.running() {
            return;
        }
        // This update's value went into the finder's buffer (and its lag products): a small
        // step.
        let budget = if (a.seen as usize) <= buffered {
            SEARCH_STEP_BUFFERING
        } else {
            SEARCH_STEP
        };
        let Some(found) = a.search.step(&mut self.profile, budget) else {
            return;
        };
        let before = a.period;
        if a.guessing {
            let Some(period) = found else {
                return;
            };
            a.profile_at = buffered + lags;
            a.period = period;
        } else {
            a.profile_at = 0;
            a.period = found.unwrap_or(0);
        }
        if a.period > 0 {
            self.phase = a.seen as usize % a.period;
        }
        if a.period != before || a.guessing {
            self.inner.window_mut().clear();
            a.spreads[0] = Spread::default();
            a.holt_n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::{SimConfig, Simulator};
    use std::boxed::Box;
    use std::vec::Vec;

    fn seasonal(period: u32, alpha: f32) -> DetectorConfig {
        DetectorConfig {
            baseline: Baseline::Seasonal { period, alpha },
            ..DetectorConfig::with_window(32)
        }
    }

    #[test]
    fn with_the_window_baseline_it_is_the_rolling_z_score_bit_for_bit() {
        let mut a: Detector<f32, 64, 16> = Detector::new(DetectorConfig::with_window(32)).unwrap();
        let mut b: RollingZScore<f32, 64> =
            RollingZScore::new(DetectorConfig::with_window(32)).unwrap();
        for s in Simulator::new(SimConfig::default()).unwrap().take(5000) {
            let (va, vb) = (a.update(s.value), b.update(s.value));
            assert_eq!(va.z.to_bits(), vb.z.to_bits());
            assert_eq!(va.class, vb.class);
        }
    }

    #[test]
    fn refuses_periods_it_cannot_hold_and_bad_alphas() {
        assert_eq!(
            Detector::<f32, 64, 100>::new(seasonal(101, 0.5)).err(),
            Some(ConfigError::Period {
                period: 101,
                capacity: 100
            })
        );
        for alpha in [0.0, -0.5, 1.5, f32::NAN] {
            assert_eq!(
                Detector::<f32, 64, 100>::new(seasonal(10, alpha)).err(),
                Some(ConfigError::Alpha)
            );
        }
        let mut d: Detector<f32, 64, 100> = Detector::new(seasonal(10, 0.5)).unwrap();
        assert!(d.set_config(seasonal(0, 0.5)).is_err());
        assert_eq!(
            d.config().baseline,
            Baseline::Seasonal {
                period: 10,
                alpha: 0.5
            }
        );
    }

    /// A fast wave of 10 noise sigmas defeats the plain rolling Z-score (the window spans much
    /// of a cycle); against the seasonal profile the spikes stand out.
    #[test]
    fn finds_spikes_on_a_fast_wave_that_the_plain_z_score_misses() {
        let sim = SimConfig {
            amplitude: 1.0,
            period: 100,
            ..SimConfig::default()
        };
        let samples: Vec<_> = Simulator::new(sim).unwrap().take(50_000).collect();
        let recall = |flags: &[bool]| {
            let hits = samples
                .iter()
                .zip(flags)
                .filter(|(s, f)| s.truth.is_anomaly() && **f)
                .count();
            hits as f64 / samples.iter().filter(|s| s.truth.is_anomaly()).count() as f64
        };
        let plain_config = DetectorConfig {
            threshold: 3.5,
            ..DetectorConfig::with_window(64)
        };
        let seasonal_config = DetectorConfig {
            baseline: Baseline::Seasonal {
                period: 100,
                alpha: 0.3,
            },
            ..plain_config
        };
        let mut plain: Detector<f32, 64, 128> = Detector::new(plain_config).unwrap();
        let mut seasonal: Detector<f32, 64, 128> = Detector::new(seasonal_config).unwrap();
        let plain_flags: Vec<bool> = samples
            .iter()
            .map(|s| plain.update(s.value).is_anomaly())
            .collect();
        let seasonal_flags: Vec<bool> = samples
            .iter()
            .map(|s| seasonal.update(s.value).is_anomaly())
            .collect();
        let (rp, rs) = (recall(&plain_flags), recall(&seasonal_flags));
        assert!(rp < 0.5, "plain recall {rp}");
        assert!(rs > 0.9, "seasonal recall {rs}");
        let false_alarms = samples
            .iter()
            .zip(&seasonal_flags)
            .filter(|(s, f)| !s.truth.is_anomaly() && **f)
            .count();
        assert!(
            false_alarms < samples.len() / 100,
            "{false_alarms} false alarms"
        );
    }

    #[test]
    fn the_expected_value_follows_the_wave_and_a_spike_leaves_no_echo() {
        let mut d: Detector<f64, 64, 16> = Detector::new(DetectorConfig {
            warmup: Some(8),
            ..seasonal(8, 0.5)
        })
        .unwrap();
        let wave = |i: usize| {
            [0.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0][i % 8] + 0.01 * ((i * 7) % 5) as f64
        };
        for i in 0..200 {
            d.update(wave(i));
        }
        let v = d.update(wave(200));
        assert!(
            (v.mean - wave(200)).abs() < 0.05,
            "expected {} got {}",
            wave(200),
            v.mean
        );
        // A spike is flagged, and the same phase a period later is normal again.
        assert!(d.update(wave(201) + 5.0).is_anomaly());
        for i in 202..209 {
            d.update(wave(i));
        }
        assert!(!d.update(wave(209)).is_anomaly());
    }

    #[test]
    fn nan_is_invalid_and_the_phase_still_advances() {
        let mut d: Detector<f64, 64, 4> = Detector::new(DetectorConfig {
            warmup: Some(2),
            ..seasonal(4, 1.0)
        })
        .unwrap();
        for i in 0..40 {
            d.update([0.0, 10.0, 20.0, 10.0][i % 4]);
        }
        assert_eq!(d.update(f64::NAN).class, Class::Invalid); // phase 0
        let v = d.update(10.0); // phase 1
        assert_eq!(v.class, Class::Normal);
        assert!((v.mean - 10.0).abs() < 1e-9);
    }

    /// The board computes in f32: the periods must come out as in f64.
    #[test]
    fn the_adaptive_detector_finds_periods_in_f32_as_in_f64() {
        for (period, amplitude) in [(24u32, 2.0f32), (100, 1.0), (288, 0.5)] {
            let sim = SimConfig {
                amplitude,
                period,
                ..SimConfig::default()
            };
            let (p32, p64) = (period_of::<f32>(sim), period_of::<f64>(sim));
            // Exact for short periods; a long one with four cycles and 1% spikes of 6-10
            // sigma can come out a sample off.
            let slack = if period > 200 { 1 } else { 0 };
            for (name, p) in [("f32", p32), ("f64", p64)] {
                assert!(
                    p.is_some_and(|p| p.abs_diff(period as usize) <= slack),
                    "{name}: {p:?}, period {period}"
                );
            }
        }
        // And none in noise with spikes (the simulator's default wave is too slow to show).
        assert_eq!(period_of::<f32>(SimConfig::default()), None);
    }

    /// The period the default detector finds in 1600 values of `sim` (its search of the 1200
    /// buffered values ends within 200 more), computing in `F`.
    fn period_of<F: Float>(sim: SimConfig) -> Option<usize> {
        let mut d: Box<Detector<F, 64, 2048>> =
            Box::new(Detector::new(DetectorConfig::default()).unwrap());
        for s in Simulator::new(sim).unwrap().take(1600) {
            d.update(F::from_f32(s.value));
        }
        d.found_period()
    }

    /// The default detector, at capacities a test can hold, in f64.
    fn adaptive() -> Box<Detector<f64, 64, 2048>> {
        Box::new(Detector::new(DetectorConfig::default()).unwrap())
    }

    /// A flat stream, then a change: every verdict finite (no ±∞ z, no score of exactly 1
    /// from a zero std); the change is flagged.
    #[test]
    fn the_default_gives_finite_scores_on_a_flat_stream_and_flags_its_change() {
        let mut d = adaptive();
        for _ in 0..3000 {
            let v = d.update(5.0);
            assert!(
                v.z.is_finite() && v.score.is_finite() && v.score < 1.0,
                "{v:?}"
            );
            assert!(!v.is_anomaly());
        }
        let v = d.update(5.5);
        assert!(v.is_anomaly() && v.z.is_finite() && v.score < 1.0, "{v:?}");
        // Zero: a flat stream of zeros is the hardest scale (no magnitude to take a fraction of).
        let mut d = adaptive();
        for _ in 0..3000 {
            assert!(d.update(0.0).z.is_finite());
        }
        let v = d.update(1.0);
        assert!(v.is_anomaly() && v.z.is_finite() && v.score < 1.0, "{v:?}");
    }

    /// Integer counts (mostly 0, 1, 2): the scale never falls below one count, so an ordinary
    /// count is not an anomaly and a burst is.
    #[test]
    fn quantised_counts_get_a_scale_of_at_least_one_count() {
        let mut d = adaptive();
        let mut flagged = 0;
        let mut state: u64 = 5;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let count = [0.0, 0.0, 0.0, 1.0, 1.0, 2.0][(state >> 33) as usize % 6];
            let v = d.update(count);
            assert!(v.z.is_finite() && v.std >= 1.0 - 1e-12 || v.class == Class::WarmingUp);
            flagged += v.is_anomaly() as u32;
        }
        assert!(flagged < 20, "{flagged} of 20000 ordinary counts flagged");
        assert!(d.update(40.0).is_anomaly(), "a burst of 40");
    }

    #[test]
    fn an_invalid_value_changes_nothing_but_the_phase() {
        let mut a = adaptive();
        let mut b = a.clone();
        let values: Vec<f64> = Simulator::new(SimConfig {
            amplitude: 1.0,
            period: 50,
            ..SimConfig::default()
        })
        .unwrap()
        .take(3000)
        .map(|s| s.value as f64)
        .collect();
        for (i, &x) in values.iter().enumerate() {
            let (va, vb) = (a.update(x), b.update(if i == 2500 { f64::NAN } else { x }));
            if i == 2500 {
                assert_eq!(vb.class, Class::Invalid);
                continue;
            }
            if i > 2600 {
                // After the gap the detectors agree again on what is anomalous.
                assert_eq!(va.class, vb.class, "value {i}");
            }
        }
        assert_eq!(a.found_period(), Some(50));
    }

    /// A cycle is followed from soon after the end of learning (a first guess from 600 values,
    /// searched a bounded step each update), then confirmed on 1200; a cycle too long to guess
    /// from 600 values is found from the 1200.
    #[test]
    fn the_period_is_guessed_at_the_end_of_learning_and_confirmed_later() {
        let wave = |period| -> Vec<f64> {
            let sim = SimConfig {
                amplitude: 1.0,
                period,
                ..SimConfig::default()
            };
            let values = Simulator::new(sim).unwrap().take(1600);
            values.map(|s| s.value as f64).collect()
        };
        let mut d = adaptive();
        let mut followed = None;
        for (i, &x) in wave(50).iter().enumerate() {
            d.update(x);
            if followed.is_none() && d.found_period().is_some() {
                followed = Some(i);
            }
            if matches!(i, 1199 | 1599) {
                assert_eq!(d.found_period(), Some(50), "value {i}");
            }
        }
        let followed = followed.unwrap_or(usize::MAX);
        assert!(
            (599..1000).contains(&followed),
            "followed from value {followed}"
        );
        let mut d = adaptive();
        for (i, &x) in wave(280).iter().enumerate() {
            d.update(x);
            if i == 1000 {
                assert_eq!(d.found_period(), None, "two cycles are not enough to guess");
            }
        }
        assert!(
            d.found_period().is_some_and(|p| p.abs_diff(280) <= 1),
            "{:?}",
            d.found_period()
        );
    }

    /// Standard normal values from a fixed LCG (Box-Muller).
    fn gaussian(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        let mut uniform = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        move || {
            let (u1, u2) = (uniform(), uniform());
            libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
        }
    }

    /// `n` values of one of the every-offset streams, each with local noise of sigma 1.
    fn offset_stream(kind: &str, n: usize) -> Vec<f64> {
        let mut g = gaussian(11);
        let mut level = 0.0;
        (0..n)
            .map(|i| match kind {
                "sine" => 5.0 * libm::sin(core::f64::consts::TAU * i as f64 / 100.0) + g(),
                "walk" => {
                    level += g();
                    level
                }
                _ => g(),
            })
            .collect()
    }

    /// From the tenth value on every value is judged: no span where z is held at 0 (there
    /// were 32 values of it after learning and again when a period was adopted). One spike of
    /// 8 sigma of the local noise, placed at each offset from 10 to 2 500 in a run of its own
    /// (the detector cloned just before it), is flagged nearly everywhere and never missed
    /// more than a few offsets in a row. Where one is missed, the noise at that offset pulled
    /// the spike toward the expected value (an 8-sigma spike on a value 3.5 sigma low stands
    /// 4.5 sigma out), or a walk's own 4-sigma step just before it was flagged and held out.
    #[test]
    fn every_value_from_the_tenth_is_judged_and_a_spike_is_flagged_at_every_offset() {
        // (stream, least flagged of 2 491 offsets, longest run of misses), a little below what
        // was measured (+8 / -8): sine 2 430 / 2 436 (runs 3 / 4), noise 2 491 / 2 491, walk
        // 2 491 / 2 490 (run 1). `zscope eval --sim offsets` reports the same on other streams.
        for (kind, least, longest) in [("sine", 2400, 5), ("noise", 2485, 2), ("walk", 2480, 3)] {
            let values = offset_stream(kind, 2501);
            for sign in [1.0, -1.0] {
                let mut d = adaptive();
                let (mut flagged, mut run, mut worst) = (0, 0, 0);
                for (i, &x) in values.iter().enumerate() {
                    if i >= 10 {
                        let v = d.clone().update(x + sign * 8.0);
                        assert!(
                            v.class != Class::WarmingUp && v.z != 0.0,
                            "{kind}: value {i} not judged: {v:?}"
                        );
                        if v.is_anomaly() {
                            flagged += 1;
                            run = 0;
                        } else {
                            run += 1;
                            worst = worst.max(run);
                        }
                    }
                    d.update(x);
                }
                std::println!("{kind} {sign}: {flagged} flagged, longest run of misses {worst}");
                assert!(flagged >= least, "{kind} {sign}: {flagged} of 2491");
                assert!(worst <= longest, "{kind} {sign}: {worst} missed in a row");
            }
        }
    }

    /// A value far outside the spread is kept out of every statistic: the spread after it is
    /// the spread before it, and an 8-sigma spike two values later is flagged (on a real
    /// recording a -10 sigma value let in once raised the std sixfold and hid the channel's
    /// largest swing two values later).
    #[test]
    fn a_far_value_masks_nothing_after_it() {
        let mut g = gaussian(5);
        let mut d = adaptive();
        for _ in 0..3000 {
            d.update(10.0 + g());
        }
        let before = d.clone().update(10.0).std;
        for far in [-30.0, -10.0, 40.0, 1e6] {
            let mut d = d.clone();
            assert!(d.update(10.0 + far).is_anomaly(), "{far}");
            let next = d.update(10.0 + g());
            assert!(
                (next.std - before).abs() < before * 0.02,
                "{far}: std {} after, {before} before",
                next.std
            );
            assert!(d.update(10.0 + 8.0).is_anomaly(), "{far}: the spike after");
        }
    }

    /// A level shift is flagged once and learnt at once: the next value at the new level is
    /// judged against it (the verdict's band moves there), nothing after is flagged, and a
    /// spike at the new level is.
    #[test]
    fn a_level_shift_is_flagged_once_and_learnt_at_once() {
        let mut g = gaussian(8);
        let mut d = adaptive();
        for _ in 0..3000 {
            d.update(g());
        }
        assert!(d.update(20.0 + g()).is_anomaly(), "the shift");
        let next = d.update(20.0 + g());
        assert!(
            !next.is_anomaly() && (next.mean - 20.0).abs() < 4.0,
            "{next:?}"
        );
        // Nothing beyond the band; the novelty channel reports the new region's levels as the
        // noise first visits them, at most one a rest period (100 values).
        let (mut beyond, mut novel) = (0, 0);
        for _ in 0..2000 {
            let v = d.update(20.0 + g());
            beyond += (v.is_anomaly() && !v.novel) as u32;
            novel += v.novel as u32;
        }
        assert_eq!(beyond, 0, "flags beyond the band after the shift");
        assert!(novel <= 20, "{novel} novel levels");
        assert!(
            d.update(20.0 + 9.0).is_anomaly(),
            "a spike at the new level"
        );
    }

    /// The threshold means what it says: every residual verdict is flagged exactly when the
    /// value is outside the band it reports (`mean ± threshold × std`); a flag inside the band
    /// is novelty, and says so. On the simulator, Student-t noise and a random walk.
    #[test]
    fn the_band_is_exactly_what_flags() {
        let mut g = gaussian(21);
        let mut level = 0.0;
        let sim: Vec<f64> = Simulator::new(SimConfig::default())
            .unwrap()
            .take(20_000)
            .map(|s| s.value as f64)
            .collect();
        let t3: Vec<f64> = (0..20_000)
            .map(|_| g() / libm::sqrt((g() * g() + g() * g() + g() * g()) / 3.0))
            .collect();
        let walk: Vec<f64> = (0..20_000)
            .map(|_| {
                level += g();
                level
            })
            .collect();
        let threshold = f64::from(DetectorConfig::default().threshold);
        for (name, values) in [("sim", sim), ("t3", t3), ("walk", walk)] {
            let mut d = adaptive();
            let (mut novel, mut beyond) = (0, 0);
            for x in values {
                let v = d.update(x);
                if v.class == Class::WarmingUp {
                    continue;
                }
                let outside = (v.value - v.mean).abs() > threshold * v.std;
                assert_eq!(v.is_anomaly() && !v.novel, outside, "{name}: {v:?}");
                assert!(!v.novel || v.is_anomaly(), "{name}: {v:?}");
                if v.novel {
                    novel += 1;
                } else if v.is_anomaly() {
                    beyond += 1;
                    assert!(v.z.abs() > threshold, "{name}: {v:?}");
                }
            }
            assert!(
                beyond > 0 || name != "sim",
                "{name}: no flag beyond the band"
            );
            std::println!("{name}: {beyond} beyond the band, {novel} novel");
        }
    }

    proptest::proptest! {
        /// On any stream (noise of any scale, steps, spikes up to 10^6, NaN, flat runs): every
        /// judged verdict is flagged beyond the band exactly when its value is outside
        /// `mean ± threshold × std`, novelty flags lie inside it, and z and std are finite.
        #[test]
        fn the_band_is_what_flags_on_any_stream(
            parts in proptest::collection::vec(
                (0u8..5, -1e3f64..1e3, 0.0f64..10.0, 1usize..200),
                1..12,
            ),
            seed in 0u64..1000,
        ) {
            let mut g = gaussian(seed);
            let mut d = adaptive();
            let threshold = f64::from(DetectorConfig::default().threshold);
            for (kind, level, scale, len) in parts {
                for i in 0..len {
                    let x = match kind {
                        0 => level + scale * g(),
                        1 => level,
                        2 if i % 17 == 0 => level + 1e6,
                        3 if i % 29 == 0 => f64::NAN,
                        _ => level + scale * g() + i as f64 * 0.01 * scale,
                    };
                    let v = d.update(x);
                    if matches!(v.class, Class::WarmingUp | Class::Invalid) {
                        continue;
                    }
                    proptest::prop_assert!(v.z.is_finite() && v.std.is_finite() && v.std > 0.0, "{v:?}");
                    let outside = (v.value - v.mean).abs() > threshold * v.std;
                    proptest::prop_assert_eq!(v.is_anomaly() && !v.novel, outside, "{:?}", v);
                    proptest::prop_assert!(!v.novel || !outside, "{v:?}");
                }
            }
        }
    }
}
