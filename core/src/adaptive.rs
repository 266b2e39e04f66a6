//! The parts of the adaptive detector ([`Baseline::Adaptive`](crate::Baseline::Adaptive)), the
//! default: each a small sans-IO piece that [`Detector`](crate::Detector) composes.
//!
//! * [`LevelNovelty`]: values on a grid of ten levels spanning what the learning phase saw; a
//!   value on a level never visited before is *novel*. After a novel value, further novelty is
//!   not reported for `rest` values, so one new behaviour is one detection (this is the signal
//!   that scores on real data: the first time a stream goes somewhere it has never been).
//! * [`PeriodFinder`]: the autocorrelation of the learning phase, accumulated value by value
//!   (at most `max_lag` multiply-adds per value, only while learning), and the strongest
//!   clear peak taken as the period, so the residual channel can compare each value with its
//!   phase of the cycle without the user naming a period.
//! * [`Tail`]: how heavy the residuals' tails are, as the ratio of their root-mean-square to
//!   `√(π/2)` times their mean absolute deviation: 1 for Gaussian noise, far above 1 for bursty
//!   data. The residual threshold is multiplied by its cube, so the same default flags a
//!   4-sigma spike on a clean sensor and stays quiet on a stream that bursts every day.
//!
//! None of these allocate, read a clock or branch on anything but the values given.

use crate::float::Float;

/// Levels the learning phase's range is cut into.
pub const LEVELS: i32 = 10;
/// Lowest level index kept apart (values further below share it).
const LEVEL_MIN: i32 = -59;
/// Level indices kept apart: `LEVEL_MIN..LEVEL_MIN + 128`, one bit each.
const LEVEL_SPAN: i32 = 128;

/// Largest integer not above `x` (finite `x`), saturating to the `i32` range.
fn floor_i32(x: f64) -> i32 {
    if x >= i32::MAX as f64 {
        return i32::MAX;
    }
    if x <= i32::MIN as f64 {
        return i32::MIN;
    }
    let t = x as i32; // truncates toward zero
    if (t as f64) > x { t - 1 } else { t }
}

/// Novel levels: see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct LevelNovelty<F> {
    lo: F,
    hi: F,
    width: F,
    seen: u128,
    ready: bool,
    /// Values since the last novel one (saturating).
    since: u32,
}

impl<F: Float> Default for LevelNovelty<F> {
    fn default() -> Self {
        LevelNovelty {
            lo: F::INFINITY,
            hi: -F::INFINITY,
            width: F::ONE,
            seen: 0,
            ready: false,
            since: u32::MAX,
        }
    }
}

impl<F: Float> LevelNovelty<F> {
    /// While learning: widen the range to hold `x`.
    pub fn learn(&mut self, x: F) {
        if x < self.lo {
            self.lo = x;
        }
        if x > self.hi {
            self.hi = x;
        }
    }

    /// End of learning: fix the grid (ten levels over the learnt range; at least a
    /// thousandth of its magnitude wide, so a flat or nearly flat range is not cut finer than
    /// its values' precision). Which levels are *normal* is learnt from here on: each level's
    /// first visit after learning is new, and a rest period starts now, so the stream's usual
    /// levels are visited (and extend that rest) before anything is reported.
    pub fn fix_grid(&mut self) {
        if self.lo > self.hi {
            // Nothing valid was learnt: the grid is set by the first value.
            return;
        }
        let span = self.hi - self.lo;
        let magnitude = if self.lo.abs() > self.hi.abs() {
            self.lo.abs()
        } else {
            self.hi.abs()
        };
        let floor = magnitude * F::from_f32(1e-3);
        let tiny = F::from_f32(1e-30);
        let mut width = span / F::from_usize(LEVELS as usize);
        if width < floor {
            width = floor;
        }
        if width < tiny {
            width = tiny;
        }
        self.width = width;
        self.ready = true;
        self.since = 0;
    }

    /// The level index of `x` (clamped to the kept span).
    fn level(&self, x: F) -> i32 {
        let q = floor_i32(((x - self.lo) / self.width).to_f64());
        q.clamp(LEVEL_MIN, LEVEL_MIN + LEVEL_SPAN - 1)
    }

    /// Judge `x` after learning: `true` when its level is new and the rest period is over.
    /// Any new level (reported or not) starts a new rest period.
    pub fn update(&mut self, x: F, rest: u32) -> bool {
        if !self.ready {
            self.lo = x;
            self.hi = x;
            self.fix_grid();
        }
        let bit = 1u128 << (self.level(x) - LEVEL_MIN);
        let new = self.seen & bit == 0;
        self.seen |= bit;
        if new {
            let report = self.since > rest;
            self.since = 0;
            report
        } else {
            self.since = self.since.saturating_add(1);
            false
        }
    }
}

/// The period finder: see the module docs. Its buffers are borrowed from the caller (the
/// detector lends its seasonal profile as scratch space while it learns).
#[derive(Debug, Clone, Copy, Default)]
pub struct PeriodFinder<F> {
    /// Values buffered so far.
    n: usize,
    /// First value, subtracted from all (keeps f32 products small).
    origin: F,
    /// Last valid value, held in place of invalid ones so positions stay true.
    held: F,
    /// Sum of squares (lag 0) of the shifted values.
    acc0: F,
}

/// Smallest autocorrelation a period's peak needs.
const PEAK_MIN: f64 = 0.5;
/// How far a peak must rise above the lowest autocorrelation before it.
const PEAK_RISE: f64 = 0.3;

impl<F: Float> PeriodFinder<F> {
    /// Values buffered so far.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True before the first value.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Add `x` (or, for an invalid value, the last valid one) at the next position: `buf`
    /// holds the values (shifted), `acc[l - 1]` the sum of products at lag `l`.
    pub fn push(&mut self, x: Option<F>, buf: &mut [F], acc: &mut [F]) {
        let i = self.n;
        if i >= buf.len() {
            return;
        }
        let x = match x {
            Some(x) => {
                self.held = x;
                x
            }
            None => self.held,
        };
        if i == 0 {
            self.origin = x;
        }
        let y = x - self.origin;
        buf[i] = y;
        self.acc0 += y * y;
        let lags = acc.len().min(i);
        for l in 1..=lags {
            acc[l - 1] += y * buf[i - l];
        }
        self.n = i + 1;
    }

    /// The period, if the buffered values show one clearly (`None` for noise, trends and
    /// anything under two cycles). Turns `acc` into the autocorrelation `r(l)` in place (the
    /// finder cannot take more values after this). Among the local maxima of `r` above 0.5
    /// that rise at least 0.3 above the lowest point before them, the shortest lag within 90%
    /// of the highest wins (a cycle's multiples, which noise can lift a little, do not), then
    /// it is refined, within 10% either way, to the lag whose multiples repeat the values most
    /// closely. Exact for periods up to a sixth of the buffer; with only two or three cycles
    /// buffered, a period can come out a sample or two off.
    pub fn period(&mut self, buf: &[F], acc: &mut [F]) -> Option<usize> {
        let (lags, line) = self.correlate(buf, acc);
        let r = &acc[..lags];
        let at = |l: usize| r[l - 1].to_f64();
        let mut peaks = (2..lags).filter(|&l| {
            let trough = (2..=l).map(at).fold(f64::INFINITY, f64::min);
            at(l) >= at(l - 1)
                && at(l) >= at(l + 1)
                && at(l) > PEAK_MIN
                && at(l) - trough > PEAK_RISE
        });
        let best = peaks.clone().map(at).fold(0.0, f64::max);
        let p = peaks.find(|&l| at(l) >= 0.9 * best)?;
        // The autocorrelation is flat at its top, and spikes and slow trends move its maximum:
        // search 10% either way for the lag whose multiples differ least from the values a
        // cycle before (mean absolute difference of the detrended values: a spike counts
        // once, not squared).
        let n = self.n;
        let e = |i: usize| buf[i].to_f64() - line.0 - line.1 * i as f64;
        let cycles = ((n / 2) / (p + 1)).max(1);
        let amdf = |l: usize| {
            let d: f64 = (l..n).map(|i| (e(i) - e(i - l)).abs()).sum();
            d / (n - l) as f64
        };
        let misfit = |q: usize| (1..=cycles).map(|k| amdf(k * q)).sum::<f64>();
        let reach = (p / 10).max(1);
        let mut chosen = (p, misfit(p));
        for q in p.saturating_sub(reach).max(2)..=(p + reach).min(n / 2) {
            let m = misfit(q);
            if m < chosen.1 {
                chosen = (q, m);
            }
        }
        Some(chosen.0)
    }

    /// Replace the lag products in `acc` by the autocorrelation `r(1..=lags)` of the values
    /// less their least-squares line (a slow trend, or a longer cycle, would otherwise move
    /// the peaks); returns `lags` (0 when nothing varies) and the line `(a, b)`: `a + b i`.
    fn correlate(&mut self, buf: &[F], acc: &mut [F]) -> (usize, (f64, f64)) {
        let n = self.n;
        let buf = &buf[..n];
        let lags = acc.len().min(n / 2);
        if n < 8 || lags < 3 {
            return (0, (0.0, 0.0));
        }
        let nf = n as f64;
        // Sums over i < k of 1, i, i^2.
        let s1 = |k: usize| k as f64;
        let si = |k: usize| (k as f64) * (k as f64 - 1.0) / 2.0;
        let si2 = |k: usize| (k as f64 - 1.0) * k as f64 * (2.0 * k as f64 - 1.0) / 6.0;
        let y = |i: usize| buf[i].to_f64();
        let total: f64 = (0..n).map(y).sum();
        let total_i: f64 = (0..n).map(|i| i as f64 * y(i)).sum();
        let mean_i = si(n) / nf;
        let var_i = si2(n) - nf * mean_i * mean_i;
        let b = (total_i - mean_i * total) / var_i;
        let a = total / nf - b * mean_i;
        let c0: f64 = (0..n)
            .map(|i| {
                let e = y(i) - a - b * i as f64;
                e * e
            })
            .sum();
        if c0 <= 0.0 {
            return (0, (a, b));
        }
        // Prefix sums from the front (i < l) and the back (i >= n - l) of y and i*y.
        let (mut head, mut head_i, mut back, mut back_i) = (0.0, 0.0, 0.0, 0.0);
        for l in 1..=lags {
            head += y(l - 1);
            head_i += (l - 1) as f64 * y(l - 1);
            back += y(n - l);
            back_i += (n - l) as f64 * y(n - l);
            let lf = l as f64;
            // Over i in [l, n): y_i, i*y_i; over j = i - l in [0, n - l): y_j, j*y_j.
            let (s_y, s_iy) = (total - head, total_i - head_i);
            let (s_yj, s_jyj) = (total - back, total_i - back_i);
            // The line's own terms over i in [l, n): u_i = a + b i.
            let m = s1(n) - s1(l);
            let sum_i = si(n) - si(l);
            let sum_i2 = si2(n) - si2(l);
            let sum_u = a * m + b * sum_i;
            let sum_u2 = a * a * m + 2.0 * a * b * sum_i + b * b * sum_i2;
            let c = acc[l - 1].to_f64()
                - (a * s_y + b * (s_iy - lf * s_y))
                - (a * s_yj + b * (s_jyj + lf * s_yj))
                + (sum_u2 - b * lf * sum_u);
            // Unbiased: each lag's mean product over the whole buffer's variance (dividing by
            // the full sum instead would tilt a long period's peak toward shorter lags).
            acc[l - 1] = F::from_f64((c / (nf - lf)) / (c0 / nf));
        }
        (lags, (a, b))
    }

    /// Fold the buffer into a profile of `period` slots in place (`buf[k]` becomes the mean
    /// of the values at phase `k`, unshifted).
    pub fn fold(&self, buf: &mut [F], period: usize) {
        for k in 0..period.min(self.n) {
            let (mut sum, mut count) = (F::ZERO, 0usize);
            let mut i = k;
            while i < self.n {
                sum += buf[i];
                count += 1;
                i += period;
            }
            buf[k] = sum / F::from_usize(count) + self.origin;
        }
    }
}

/// Tail heaviness of the residuals: see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Tail<F> {
    mean_abs: F,
    mean_sq: F,
    /// Residuals taken, up to the horizon (plain means until then: unbiased from the start).
    count: u32,
}

impl<F: Float> Default for Tail<F> {
    fn default() -> Self {
        Tail {
            mean_abs: F::ZERO,
            mean_sq: F::ZERO,
            count: 0,
        }
    }
}

/// Horizon of the tail's moving averages, in values.
const TAIL_HORIZON: u32 = 2000;

impl<F: Float> Tail<F> {
    /// Take one residual (its deviation from the window's mean).
    pub fn push(&mut self, d: F) {
        if self.count < TAIL_HORIZON {
            self.count += 1;
        }
        let a = F::ONE / F::from_usize(self.count as usize);
        self.mean_abs += a * (d.abs() - self.mean_abs);
        self.mean_sq += a * (d * d - self.mean_sq);
    }

    /// The factor on the threshold: ρ³, at least 1, where ρ = rms / (√(π/2)·mean |d|) (1 for
    /// Gaussian residuals), widened by one standard error, `1 + 1/√n` for `n` residuals seen
    /// (up to the 2000 of the horizon): until the stream has shown its tails, it is given the
    /// benefit of the doubt.
    pub fn factor(&self) -> F {
        if self.mean_abs <= F::ZERO {
            return F::ONE;
        }
        let rho = self.mean_sq.sqrt() / (F::from_f32(1.253_314_1) * self.mean_abs);
        let rho = rho * (F::ONE + F::ONE / F::from_usize(self.count as usize).sqrt());
        if rho <= F::ONE {
            F::ONE
        } else {
            rho * rho * rho
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn floor_matches_f64_floor() {
        for x in [-2.5, -2.0, -0.1, 0.0, 0.1, 1.0, 1.9, 1e12, -1e12] {
            let f = floor_i32(x);
            assert_eq!(f as f64, x.floor().clamp(i32::MIN as f64, i32::MAX as f64));
        }
    }

    fn find(values: &[f64], max_lag: usize) -> Option<usize> {
        let mut buf = vec![0.0f64; values.len()];
        let mut acc = vec![0.0f64; max_lag];
        let mut p = PeriodFinder::default();
        for &v in values {
            p.push(Some(v), &mut buf, &mut acc);
        }
        p.period(&buf, &mut acc)
    }

    /// Uniform noise in [-0.5, 0.5) from a fixed LCG.
    fn noise(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    #[test]
    fn finds_the_period_of_noisy_waves() {
        for period in [7usize, 24, 50, 100] {
            let mut rnd = noise(period as u64);
            let values: std::vec::Vec<f64> = (0..600)
                .map(|i| {
                    let phase = (i % period) as f64 / period as f64;
                    10.0 + 3.0 * libm::sin(phase * core::f64::consts::TAU) + rnd()
                })
                .collect();
            assert_eq!(find(&values, 300), Some(period), "period {period}");
        }
    }

    #[test]
    fn the_detrended_autocorrelation_matches_a_direct_computation() {
        let mut rnd = noise(3);
        let values: std::vec::Vec<f64> = (0..200)
            .map(|i| 5.0 + 0.05 * i as f64 + (i as f64 / 7.0).sin() + rnd())
            .collect();
        let mut buf = vec![0.0f64; values.len()];
        let mut acc = vec![0.0f64; 50];
        let mut p = PeriodFinder::default();
        for &v in &values {
            p.push(Some(v), &mut buf, &mut acc);
        }
        let (lags, (a, b)) = p.correlate(&buf, &mut acc);
        assert_eq!(lags, 50);
        let n = values.len();
        let e: std::vec::Vec<f64> = (0..n).map(|i| buf[i] - a - b * i as f64).collect();
        assert!(
            e.iter().sum::<f64>().abs() < 1e-9,
            "the line is a least-squares fit"
        );
        let c0: f64 = e.iter().map(|x| x * x).sum::<f64>() / n as f64;
        for l in 1..=lags {
            let c: f64 = (l..n).map(|i| e[i] * e[i - l]).sum::<f64>() / (n - l) as f64;
            assert!(
                (acc[l - 1] - c / c0).abs() < 1e-9,
                "lag {l}: {} vs {}",
                acc[l - 1],
                c / c0
            );
        }
    }

    /// Four daily cycles (the detector buffers twice its learning phase of 600) find a daily
    /// period under a weekly one within a sample (two cycles were seen 7 to 11 short).
    #[test]
    fn a_daily_cycle_on_a_weekly_one_is_found_exactly() {
        let mut rnd = noise(9);
        let values: std::vec::Vec<f64> = (0..1200)
            .map(|i| {
                let t = i as f64;
                0.5 * (core::f64::consts::TAU * t / 288.0).sin()
                    + 0.3 * (core::f64::consts::TAU * t / 2016.0).sin()
                    + 0.2 * rnd()
            })
            .collect();
        let p = find(&values, 600).expect("a period");
        assert!(p.abs_diff(288) <= 1, "{p}");
    }

    #[test]
    fn a_square_wave_and_a_sawtooth_have_periods_too() {
        let square: std::vec::Vec<f64> = (0..600)
            .map(|i| if i % 40 < 20 { 1.0 } else { 5.0 })
            .collect();
        assert_eq!(find(&square, 300), Some(40));
        let saw: std::vec::Vec<f64> = (0..600).map(|i| (i % 64) as f64).collect();
        assert_eq!(find(&saw, 300), Some(64));
    }

    #[test]
    fn noise_trends_and_flat_lines_have_none() {
        let mut s: u64 = 1;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u128 << 53) as f64 - 0.5
        };
        let noise: std::vec::Vec<f64> = (0..600).map(|_| rnd()).collect();
        assert_eq!(find(&noise, 300), None);
        let mut walk = 0.0;
        let walk: std::vec::Vec<f64> = (0..600)
            .map(|_| {
                walk += rnd();
                walk
            })
            .collect();
        assert_eq!(find(&walk, 300), None);
        let trend: std::vec::Vec<f64> = (0..600).map(|i| i as f64 * 0.5).collect();
        assert_eq!(find(&trend, 300), None);
        assert_eq!(find(&[3.0; 600], 300), None);
    }

    #[test]
    fn a_period_over_half_the_buffer_is_not_claimed() {
        let values: std::vec::Vec<f64> = (0..600)
            .map(|i| libm::sin(i as f64 / 400.0 * core::f64::consts::TAU))
            .collect();
        assert_eq!(find(&values, 300), None);
    }

    #[test]
    fn folding_gives_the_mean_per_phase() {
        let values: std::vec::Vec<f64> = (0..12)
            .map(|i| [1.0, 2.0, 6.0][i % 3] + (i / 3) as f64)
            .collect();
        let mut buf = vec![0.0f64; 12];
        let mut acc = vec![0.0f64; 4];
        let mut p = PeriodFinder::default();
        for &v in &values {
            p.push(Some(v), &mut buf, &mut acc);
        }
        p.fold(&mut buf, 3);
        assert_eq!(&buf[..3], &[2.5, 3.5, 7.5]);
    }

    #[test]
    fn new_levels_are_novel_once_and_rest_holds_them_back() {
        let mut n: LevelNovelty<f64> = LevelNovelty::default();
        for x in [0.0, 10.0, 5.0] {
            n.learn(x);
        }
        n.fix_grid();
        for x in [5.0, 0.0, 10.0, 5.0, 5.0, 5.0] {
            assert!(!n.update(x, 3), "the rest period after learning");
        }
        assert!(!n.update(5.0, 3), "visited since learning");
        assert!(n.update(30.0, 3), "a level never seen");
        assert!(!n.update(30.0, 3), "seen now");
        assert!(!n.update(-20.0, 3), "new, but within the rest period");
        for _ in 0..4 {
            n.update(5.0, 3);
        }
        assert!(n.update(50.0, 3), "new again after the rest");
    }

    #[test]
    fn a_flat_learning_phase_flags_the_first_change_only() {
        let mut n: LevelNovelty<f32> = LevelNovelty::default();
        for _ in 0..100 {
            n.learn(0.0);
        }
        n.fix_grid();
        assert!(!n.update(0.0, 0), "visited during the rest");
        assert!(!n.update(0.0, 0));
        assert!(n.update(1.0, 0));
        assert!(!n.update(2.0, 0), "far values share the edge level");
    }

    #[test]
    fn the_tail_factor_is_one_for_gaussian_noise_and_large_for_bursts() {
        let mut s: u64 = 7;
        let mut uni = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u128 << 53) as f64
        };
        let mut gauss = Tail::<f64>::default();
        let mut bursty = Tail::<f64>::default();
        for i in 0..20_000 {
            let (u1, u2) = (uni(), uni());
            let g = libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2);
            gauss.push(g);
            bursty.push(if i % 100 == 0 { 50.0 } else { g });
        }
        assert!((gauss.factor() - 1.0).abs() < 0.2, "{}", gauss.factor());
        assert!(bursty.factor() > 20.0, "{}", bursty.factor());
        // Unbiased from the start: 200 Gaussian values give about (1 + 1/√200)³ = 1.23.
        let mut early = Tail::<f64>::default();
        for _ in 0..200 {
            let (u1, u2) = (uni(), uni());
            early.push(libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2));
        }
        assert!(early.factor() < 1.5, "{}", early.factor());
    }
}
