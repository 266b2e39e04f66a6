//! The parts of the adaptive detector ([`Baseline::Adaptive`](crate::Baseline::Adaptive)), the
//! default: each a small sans-IO piece that [`Detector`](crate::Detector) composes.
//!
//! * [`LevelNovelty`]: values on a grid of ten levels spanning what the learning phase saw; a
//!   value on a level never visited before is *novel*. After a novel value, further novelty is
//!   not reported for `rest` values, so one new behaviour is one detection (this is the signal
//!   that scores on real data: the first time a stream goes somewhere it has never been).
//! * [`PeriodFinder`]: the autocorrelation of the learning phase, accumulated value by value
//!   (at most `max_lag` multiply-adds per value, only while learning), and [`Search`], which
//!   takes the strongest clear peak as the period a bounded step per update, so the residual
//!   channel can compare each value with its phase of the cycle without the user naming a
//!   period, and no update stalls a board.
//! * [`Spread`] and [`Recent`]: the robust spread of a predictor's errors, and the last values
//!   let in (the local predictors' memory).
//! * [`Tail`]: how heavy the residuals' tails are, from two quantiles of `|z|`: a factor of 1
//!   for Gaussian noise, more for heavier tails, folded into the verdict's std so the same
//!   threshold flags a 5-sigma spike on a clean sensor and stays quiet on Student-t noise.
//!
//! None of these allocate, read a clock or branch on anything but the values given.

use crate::float::Float;

/// Levels the learning phase's range is cut into.
pub const LEVELS: i32 = 10;
/// Lowest level index kept apart (values further below share it).
const LEVEL_MIN: i32 = -59;
/// Level indices kept apart: `LEVEL_MIN..LEVEL_MIN + 128`, one bit each.
const LEVEL_SPAN: i32 = 128;

/// Largest integer not above `x`, saturating to the `i32` range (NaN gives 0).
fn floor_i32(x: f32) -> i32 {
    let t = x as i32; // truncates toward zero, saturating
    if (t as f32) > x {
        t.saturating_sub(1)
    } else {
        t
    }
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

    /// The level index of `x` (clamped to the kept span). Computed in `F` and floored as f32:
    /// one hardware conversion on a Cortex-M4F (f64 there is software).
    fn level(&self, x: F) -> i32 {
        let q = floor_i32(((x - self.lo) / self.width).to_f32());
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
}

/// The one-shot search, all in one call: the reference [`Search`] is tested against (the
/// stepped search must give its period and profile at any step size), and the simplest
/// statement of what both compute. The detector runs only the stepped search.
#[cfg(test)]
impl<F: Float> PeriodFinder<F> {
    /// The period, if the buffered values show one clearly (`None` for noise, trends and
    /// anything under two cycles). Turns `acc` into the autocorrelation `r(l)` in place (the
    /// finder cannot take more values after this). Among the local maxima of `r` above 0.5
    /// that rise at least 0.3 above the lowest point before them, the shortest lag within 90%
    /// of the highest wins (a cycle's multiples, which noise can lift a little, do not), then
    /// it is refined, within 10% either way, to the lag whose multiples repeat the values most
    /// closely. Exact for periods up to a sixth of the buffer; with only two or three cycles
    /// buffered, a period can come out a sample or two off.
    pub fn period(&mut self, buf: &[F], acc: &mut [F]) -> Option<usize> {
        let lags = acc.len();
        let (lags, line) = self.correlate(buf, acc, 0, 0, lags);
        self.pick(buf, &acc[..lags], line)
    }

    /// The period the autocorrelation `r` shows (see `period`).
    fn pick(&self, buf: &[F], r: &[F], line: (f64, f64)) -> Option<usize> {
        let lags = r.len();
        // The qualifying peaks, in lag order (one pass; the trough is a running minimum).
        let peaks = || {
            let mut trough = F::INFINITY;
            (2..lags.saturating_sub(1)).filter(move |&l| {
                let (before, here, after) = (r[l - 2], r[l - 1], r[l]);
                if here < trough {
                    trough = here;
                }
                here >= before
                    && here >= after
                    && here.to_f64() > PEAK_MIN
                    && (here - trough).to_f64() > PEAK_RISE
            })
        };
        let best = peaks()
            .map(|l| r[l - 1])
            .fold(F::ZERO, |m, x| if x > m { x } else { m });
        let p = peaks().find(|&l| r[l - 1] >= best * F::from_f32(0.9))?;
        // The autocorrelation is flat at its top, and spikes and slow trends move its maximum:
        // search 10% either way for the lag whose multiples differ least from the values a
        // cycle before (mean absolute difference of the detrended values: a spike counts
        // once, not squared).
        let n = self.n;
        let (a, b) = (F::from_f64(line.0), F::from_f64(line.1));
        let e = |i: usize| buf[i] - a - b * F::from_usize(i);
        let cycles = ((n / 2) / (p + 1)).clamp(1, 2);
        let amdf = |l: usize| {
            let mut d = F::ZERO;
            for i in l..n {
                d += (e(i) - e(i - l)).abs();
            }
            d / F::from_usize(n - l)
        };
        let misfit = |q: usize| {
            let mut m = F::ZERO;
            for k in 1..=cycles {
                m += amdf(k * q);
            }
            m
        };
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

    /// The autocorrelation `r(1..=lags)` of the values less their least-squares line (a slow
    /// trend, or a longer cycle, would otherwise move the peaks), from the lag products at
    /// `store[products_at..]`, written to `store[r_at..]` (the same place, or after them);
    /// returns how many lags (0 when nothing varies) and the line `(a, b)`: `a + b i`.
    ///
    /// In `F` throughout (the lag products already are): the line is fitted about the
    /// buffer's middle, so no sum of squared indices meets the values' precision.
    fn correlate(
        &self,
        buf: &[F],
        store: &mut [F],
        products_at: usize,
        r_at: usize,
        lags: usize,
    ) -> (usize, (f64, f64)) {
        let n = self.n;
        let buf = &buf[..n];
        let lags = lags.min(n / 2);
        if n < 8 || lags < 3 {
            return (0, (0.0, 0.0));
        }
        let nf = F::from_usize(n);
        let two = F::from_f32(2.0);
        let half = F::from_usize(n - 1) / two;
        // Centred index: c(i) = i - (n - 1)/2, so that sum c = 0.
        let c = |i: usize| F::from_usize(i) - half;
        let (mut total, mut total_c, mut sum_c2) = (F::ZERO, F::ZERO, F::ZERO);
        for (i, &y) in buf.iter().enumerate() {
            total += y;
            total_c += c(i) * y;
            sum_c2 += c(i) * c(i);
        }
        let slope = total_c / sum_c2;
        let mean = total / nf;
        // The line a + b c(i) = mean + slope c(i).
        let line = |i: usize| mean + slope * c(i);
        let mut c0 = F::ZERO;
        for (i, &y) in buf.iter().enumerate() {
            let e = y - line(i);
            c0 += e * e;
        }
        if c0 <= F::ZERO {
            return (
                0,
                (
                    mean.to_f64() - slope.to_f64() * half.to_f64(),
                    slope.to_f64(),
                ),
            );
        }
        // Sums of y and c*y over the front (i < l) and the back (i >= n - l).
        let (mut head, mut head_c, mut back, mut back_c) = (F::ZERO, F::ZERO, F::ZERO, F::ZERO);
        // Sums of 1, c and c^2 over i in [l, n), kept by removing i = l - 1 each step.
        let (mut m, mut sum_i, mut sum_i2) = (nf, F::ZERO, sum_c2);
        for l in 1..=lags {
            let (front, rear) = (l - 1, n - l);
            head += buf[front];
            head_c += c(front) * buf[front];
            back += buf[rear];
            back_c += c(rear) * buf[rear];
            m -= F::ONE;
            sum_i -= c(front);
            sum_i2 -= c(front) * c(front);
            let lf = F::from_usize(l);
            // Over i in [l, n): y_i and c_i y_i; over j = i - l in [0, n - l): y_j, c_j y_j.
            let (s_y, s_cy) = (total - head, total_c - head_c);
            let (s_yj, s_cyj) = (total - back, total_c - back_c);
            // e_i e_j with e = y - mean - slope c, and c_j = c_i - l.
            let cross_i = mean * s_y + slope * (s_cy - lf * s_y);
            let cross_j = mean * s_yj + slope * (s_cyj + lf * s_yj);
            let sum_u = mean * m + slope * sum_i;
            let sum_u2 = mean * mean * m + two * mean * slope * sum_i + slope * slope * sum_i2;
            let cov =
                store[products_at + l - 1] - cross_i - cross_j + (sum_u2 - slope * lf * sum_u);
            // Unbiased: each lag's mean product over the whole buffer's variance (dividing by
            // the full sum instead would tilt a long period's peak toward shorter lags).
            store[r_at + l - 1] = (cov / F::from_usize(n - l)) / (c0 / nf);
        }
        let b = slope.to_f64();
        (lags, (mean.to_f64() - b * half.to_f64(), b))
    }

    /// The mean of the buffered values at phase `k` of a `period`-sample cycle, unshifted.
    fn phase_mean(&self, buf: &[F], k: usize, period: usize) -> F {
        let (mut sum, mut count) = (F::ZERO, 0usize);
        let mut i = k;
        while i < self.n {
            sum += buf[i];
            count += 1;
            i += period;
        }
        sum / F::from_usize(count) + self.origin
    }

    /// Fold the buffer into a profile of `period` slots in place (`buf[k]` becomes the mean
    /// of the values at phase `k`, unshifted: it reads only positions from `k` on).
    pub fn fold(&self, buf: &mut [F], period: usize) {
        for k in 0..period.min(self.n) {
            buf[k] = self.phase_mean(buf, k, period);
        }
    }
}

impl<F: Float> PeriodFinder<F> {
    /// A search of the values buffered so far, to be run a step at a time
    /// ([`Search::step`]): `store` holds the values from 0, the lag products at `products_at`;
    /// the autocorrelation of up to `lags` lags goes to `r_at` (over the products when it is
    /// the same place), and the period's profile, if one shows and fits in `room` slots, to
    /// `out_at`. The values buffered later are not part of it.
    pub fn search(
        &self,
        products_at: usize,
        r_at: usize,
        lags: usize,
        out_at: usize,
        room: usize,
    ) -> Search<F> {
        let n = self.n;
        let lags = lags.min(n / 2);
        let mut s = Search {
            stage: Stage::Copy,
            n,
            origin: self.origin,
            products_at,
            r_at,
            lags,
            out_at,
            room,
            half: F::from_usize(n.saturating_sub(1)) / F::from_f32(2.0),
            ..Search::default()
        };
        if n < 8 || lags < 3 {
            s.stage = Stage::Done;
        }
        s
    }
}

/// Where a [`Search`] stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    /// Nothing to do.
    #[default]
    Idle,
    /// Copying the lag products to where the autocorrelation goes (the finder goes on adding
    /// to the products meanwhile).
    Copy,
    /// Sums for the least-squares line.
    Line,
    /// The values' variance about it.
    Resid,
    /// The autocorrelation, lag by lag.
    Lags,
    /// The highest qualifying peak.
    Best,
    /// The first peak within 90 % of it.
    First,
    /// The refinement: each candidate lag's mean absolute difference a cycle (and two) apart.
    Refine,
    /// The profile: the mean of the values at each phase.
    Fold,
    /// Finished: the answer is ready.
    Done,
}

/// A period search spread over many updates, so no single update does more than a bounded
/// amount of work: the same computation as the tests' one-shot search (the least-squares
/// line, the detrended autocorrelation, the first clear peak, its refinement by the values'
/// mean absolute difference a cycle apart, the fold into a profile), in steps of at most a
/// given number of inner-loop iterations. The same values give the same period as the one-shot
/// search (a test checks it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Search<F> {
    stage: Stage,
    n: usize,
    origin: F,
    products_at: usize,
    r_at: usize,
    lags: usize,
    out_at: usize,
    room: usize,
    /// Position in the current stage's loop.
    i: usize,
    half: F,
    total: F,
    total_c: F,
    sum_c2: F,
    mean: F,
    slope: F,
    c0: F,
    head: F,
    head_c: F,
    back: F,
    back_c: F,
    m: F,
    sum_i: F,
    sum_i2: F,
    trough: F,
    best: F,
    /// The peak, then the refinement's candidates and choice.
    p: usize,
    q: usize,
    q_lo: usize,
    q_hi: usize,
    k: usize,
    cycles: usize,
    d: F,
    misfit: F,
    chosen: usize,
    chosen_misfit: F,
    refining_p: bool,
    /// The least-squares line `a + b i`, as the refinement uses it.
    a: F,
    b: F,
    /// The period found (0: none).
    period: usize,
    /// Fold: the sum and count of the current phase.
    sum: F,
    count: usize,
}

impl<F: Float> Search<F> {
    /// True while the search has work left.
    #[inline]
    pub fn running(&self) -> bool {
        !matches!(self.stage, Stage::Idle)
    }

    /// Do at most `budget` inner-loop iterations (a lag counts four) over `store`; `Some`
    /// with the answer (the period, its profile written) once finished, after which the
    /// search is idle.
    #[inline(never)]
    pub fn step(&mut self, store: &mut [F], budget: usize) -> Option<Option<usize>> {
        let mut left = budget;
        while left > 0 {
            match self.stage {
                Stage::Idle => return None,
                Stage::Done => {
                    self.stage = Stage::Idle;
                    return Some((self.period > 0).then_some(self.period));
                }
                Stage::Copy => {
                    if self.products_at != self.r_at {
                        while self.i < self.lags && left > 0 {
                            store[self.r_at + self.i] = store[self.products_at + self.i];
                            self.i += 1;
                            left -= 1;
                        }
                        if self.i < self.lags {
                            continue;
                        }
                    }
                    self.next(Stage::Line);
                }
                Stage::Line => {
                    while self.i < self.n && left > 0 {
                        let (y, c) = (store[self.i], self.c(self.i));
                        self.total += y;
                        self.total_c += c * y;
                        self.sum_c2 += c * c;
                        self.i += 1;
                        left -= 1;
                    }
                    if self.i == self.n {
                        self.slope = self.total_c / self.sum_c2;
                        self.mean = self.total / F::from_usize(self.n);
                        self.next(Stage::Resid);
                    }
                }
                Stage::Resid => {
                    while self.i < self.n && left > 0 {
                        let e = store[self.i] - (self.mean + self.slope * self.c(self.i));
                        self.c0 += e * e;
                        self.i += 1;
                        left -= 1;
                    }
                    if self.i == self.n {
                        if self.c0 <= F::ZERO {
                            self.stage = Stage::Done;
                        } else {
                            (self.m, self.sum_i2) = (F::from_usize(self.n), self.sum_c2);
                            self.next(Stage::Lags);
                            self.i = 1;
                        }
                    }
                }
                Stage::Lags => {
                    while self.i <= self.lags && left > 0 {
                        self.lag(store, self.i);
                        self.i += 1;
                        left = left.saturating_sub(4);
                    }
                    if self.i > self.lags {
                        self.trough = F::INFINITY;
                        self.next(Stage::Best);
                        self.i = 2;
                    }
                }
                Stage::Best | Stage::First => {
                    let end = self.lags.saturating_sub(1);
                    let r = |l: usize| store[self.r_at + l - 1];
                    while self.i < end && left > 0 {
                        let l = self.i;
                        let (before, here, after) = (r(l - 1), r(l), r(l + 1));
                        if here < self.trough {
                            self.trough = here;
                        }
                        let peak = here >= before
                            && here >= after
                            && here.to_f64() > PEAK_MIN
                            && (here - self.trough).to_f64() > PEAK_RISE;
                        self.i += 1;
                        left -= 1;
                        if peak && self.stage == Stage::Best && here > self.best {
                            self.best = here;
                        }
                        if peak
                            && self.stage == Stage::First
                            && here >= self.best * F::from_f32(0.9)
                        {
                            self.p = l;
                            self.begin_refinement();
                            break;
                        }
                    }
                    if self.stage == Stage::Best && self.i >= end {
                        self.trough = F::INFINITY;
                        self.next(Stage::First);
                        self.i = 2;
                    } else if self.stage == Stage::First && self.i >= end {
                        self.stage = Stage::Done; // no clear peak: no period
                    }
                }
                Stage::Refine => {
                    let l = self.k * self.q;
                    while self.i < self.n && left > 0 {
                        let d = self.e(store, self.i) - self.e(store, self.i - l);
                        self.d += d.abs();
                        self.i += 1;
                        left -= 1;
                    }
                    if self.i >= self.n {
                        left = left.saturating_sub(1);
                        self.misfit += self.d / F::from_usize(self.n - l);
                        self.d = F::ZERO;
                        if self.k < self.cycles {
                            self.k += 1;
                        } else {
                            self.candidate_done();
                        }
                        self.i = self.k * self.q;
                    }
                }
                Stage::Fold => {
                    let period = self.period;
                    while self.k < period.min(self.n) && left > 0 {
                        if self.i < self.n {
                            self.sum += store[self.i];
                            self.count += 1;
                            self.i += period;
                            left -= 1;
                        } else {
                            store[self.out_at + self.k] =
                                self.sum / F::from_usize(self.count) + self.origin;
                            self.k += 1;
                            (self.i, self.sum, self.count) = (self.k, F::ZERO, 0);
                        }
                    }
                    if self.k >= period.min(self.n) {
                        self.stage = Stage::Done;
                    }
                }
            }
        }
        None
    }

    /// Go to `stage`, its loop from 0.
    fn next(&mut self, stage: Stage) {
        self.stage = stage;
        self.i = 0;
    }

    /// Centred index: `i - (n - 1) / 2`.
    fn c(&self, i: usize) -> F {
        F::from_usize(i) - self.half
    }

    /// The detrended value at `i`, as the one-shot search computes it.
    fn e(&self, store: &[F], i: usize) -> F {
        store[i] - self.a - self.b * F::from_usize(i)
    }

    /// Lag `l` of the detrended autocorrelation (as the one-shot search computes it), over its
    /// product in the store.
    fn lag(&mut self, store: &mut [F], l: usize) {
        let n = self.n;
        let (front, rear) = (l - 1, n - l);
        self.head += store[front];
        self.head_c += self.c(front) * store[front];
        self.back += store[rear];
        self.back_c += self.c(rear) * store[rear];
        self.m -= F::ONE;
        self.sum_i -= self.c(front);
        self.sum_i2 -= self.c(front) * self.c(front);
        let lf = F::from_usize(l);
        let two = F::from_f32(2.0);
        let (mean, slope) = (self.mean, self.slope);
        let (s_y, s_cy) = (self.total - self.head, self.total_c - self.head_c);
        let (s_yj, s_cyj) = (self.total - self.back, self.total_c - self.back_c);
        let cross_i = mean * s_y + slope * (s_cy - lf * s_y);
        let cross_j = mean * s_yj + slope * (s_cyj + lf * s_yj);
        let sum_u = mean * self.m + slope * self.sum_i;
        let sum_u2 =
            mean * mean * self.m + two * mean * slope * self.sum_i + slope * slope * self.sum_i2;
        let cov = store[self.r_at + l - 1] - cross_i - cross_j + (sum_u2 - slope * lf * sum_u);
        store[self.r_at + l - 1] = (cov / F::from_usize(n - l)) / (self.c0 / F::from_usize(n));
    }

    /// The peak `p` is found: refine it (first `p` itself, then every lag within 10 %).
    fn begin_refinement(&mut self) {
        let (n, p) = (self.n, self.p);
        let b = self.slope.to_f64();
        self.a = F::from_f64(self.mean.to_f64() - b * self.half.to_f64());
        self.b = F::from_f64(b);
        self.cycles = ((n / 2) / (p + 1)).clamp(1, 2);
        let reach = (p / 10).max(1);
        self.q_lo = p.saturating_sub(reach).max(2);
        self.q_hi = (p + reach).min(n / 2);
        (self.q, self.k, self.refining_p) = (p, 1, true);
        (self.d, self.misfit) = (F::ZERO, F::ZERO);
        self.stage = Stage::Refine;
        self.i = p;
    }

    /// One candidate's misfit is complete: keep the best, go to the next or fold.
    fn candidate_done(&mut self) {
        if self.refining_p {
            (self.chosen, self.chosen_misfit) = (self.p, self.misfit);
            self.refining_p = false;
            self.q = self.q_lo;
        } else {
            if self.misfit < self.chosen_misfit {
                (self.chosen, self.chosen_misfit) = (self.q, self.misfit);
            }
            self.q += 1;
        }
        (self.k, self.misfit) = (1, F::ZERO);
        if !self.refining_p && self.q > self.q_hi {
            if self.chosen <= self.room {
                self.period = self.chosen;
                (self.k, self.sum, self.count) = (0, F::ZERO, 0);
                self.stage = Stage::Fold;
                self.i = 0;
            } else {
                self.stage = Stage::Done;
            }
            self.q = self.q_lo; // keeps `k * q` in range for the caller's reset
            self.k = 0;
        }
    }
}

/// How heavy the tails of the residuals' z-scores are, from two quantiles of `|z|` tracked
/// value by value (stochastic approximation, a multiplicative step either way): the 90th and
/// the 97.5th percentile of the values within six spreads. Their ratio is 1.363 for Gaussian
/// noise and grows with the tails (within six spreads: Laplace 1.60, Student-t with 5 degrees
/// of freedom 1.56, with 3 1.71, with 2 1.91). The factor on the threshold is
/// `(1 + 1.15 x)^8` with `x` the ratio's excess over Gaussian's less 0.04 (the trackers' own
/// noise, which the eighth power would otherwise lift to a factor of 1.5-2 for hundreds of
/// values of a Gaussian stream): it brings Student-t's rate beyond 4 (3 degrees of freedom:
/// factor 5.9, as needed; 5: 2.5 of 2.6 needed) back to Gaussian's, and is conservative for
/// Laplace tails (3.1 where 1.9 would do).
///
/// Values beyond six spreads are left out: the tail's shape shows within them, and what lies
/// beyond is as often an anomaly as a tail (1 % of spikes at 6-10 sigma would otherwise read
/// as heavy tails and raise the threshold over the spikes themselves).
#[derive(Debug, Clone, Copy)]
pub struct Tail<F> {
    q90: F,
    q975: F,
}

impl<F: Float> Default for Tail<F> {
    fn default() -> Self {
        // Gaussian's, until the stream shows otherwise.
        Tail {
            q90: F::from_f32(1.644_854),
            q975: F::from_f32(2.241_403),
        }
    }
}

/// Steady step of the quantile trackers (relative): a quantile too low rises within tens of
/// values, one too high falls by half in about 2 800 values.
const TAIL_STEP: f32 = 0.01;
/// Values this many spreads out are left out of the tail's quantiles.
const TAIL_REACH: f32 = 6.0;
/// The 97.5th over the 90th percentile of `|z|` for Gaussian noise.
const TAIL_GAUSS_RATIO: f32 = 1.363;
/// Excess of that ratio taken as the trackers' own noise.
const TAIL_DEAD_ZONE: f32 = 0.04;
/// Growth of the factor with the excess of that ratio: the factor is `(1 + a x)^8`.
const TAIL_SLOPE: f32 = 1.15;
/// The factor's bound.
const TAIL_MAX: f32 = 100.0;

impl<F: Float> Tail<F> {
    /// Take one `|z|` (against the residual's robust spread, before any factor).
    pub fn push(&mut self, abs_z: F) {
        // NaN is no value to learn from either.
        if !abs_z.is_finite() || abs_z > F::from_f32(TAIL_REACH) {
            return;
        }
        let step = F::from_f32(TAIL_STEP);
        let track = |q: &mut F, p: f32| {
            if abs_z > *q {
                *q = *q * (F::ONE + step * F::from_f32(p));
            } else {
                *q = *q * (F::ONE - step * F::from_f32(1.0 - p));
            }
        };
        track(&mut self.q90, 0.9);
        track(&mut self.q975, 0.975);
    }

    /// The factor on the threshold: 1 for Gaussian residuals (and anything lighter), more for
    /// heavier tails (see the type's docs), at most 100.
    pub fn factor(&self) -> F {
        if self.q90 <= F::ZERO {
            return F::ONE;
        }
        let excess = self.q975 / self.q90 / F::from_f32(TAIL_GAUSS_RATIO)
            - F::ONE
            - F::from_f32(TAIL_DEAD_ZONE);
        if !excess.is_finite() || excess <= F::ZERO {
            return F::ONE;
        }
        // (1 + a x)^8: three squarings, basic operations only (the same bits on every target).
        let mut f = F::ONE + F::from_f32(TAIL_SLOPE) * excess;
        f = f * f;
        f = f * f;
        f = f * f;
        if f > F::from_f32(TAIL_MAX) {
            F::from_f32(TAIL_MAX)
        } else {
            f
        }
    }
}

/// The robust spread of one predictor's errors: `sqrt(pi/2)` times their mean absolute value
/// (the standard deviation, for Gaussian errors), a plain mean over the first `horizon` errors
/// and a moving one after. An error is clipped at six spreads before it counts, so one large
/// value raises the spread by at most `(6 sqrt(pi/2) - 1) / horizon` of itself (5 % at 128).
#[derive(Debug, Clone, Copy)]
pub struct Spread<F> {
    mean_abs: F,
    count: u32,
}

impl<F: Float> Default for Spread<F> {
    fn default() -> Self {
        Spread {
            mean_abs: F::ZERO,
            count: 0,
        }
    }
}

/// Horizon of a predictor's spread, in values.
pub const SPREAD_HORIZON: u32 = 128;
/// Horizon of the fast spread, which follows a burst within a few values.
pub const FAST_HORIZON: u32 = 16;
/// An error counts in a spread up to this many spreads.
const SPREAD_CLIP: f32 = 6.0;

impl<F: Float> Spread<F> {
    /// Take one error, clipped at six spreads, into a mean over `horizon` errors.
    pub fn push(&mut self, error: F, horizon: u32) {
        let mut e = error.abs();
        if self.count >= 8 {
            let clip = self.scale() * F::from_f32(SPREAD_CLIP);
            if e > clip {
                e = clip;
            }
        }
        self.take(e, horizon);
    }

    /// Take one error as it is (no clip).
    pub fn take(&mut self, error: F, horizon: u32) {
        if self.count < horizon {
            self.count += 1;
        }
        self.mean_abs += (error.abs() - self.mean_abs) / F::from_usize(self.count as usize);
    }

    /// The spread: the errors' standard deviation, were they Gaussian.
    pub fn scale(&self) -> F {
        self.mean_abs * F::from_f32(1.253_314_1)
    }

    /// Errors taken (up to the horizon).
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// The last few values let in, for the local predictors: their mean (which follows a wave
/// or a wandering level with little lag) and the last one (a random walk's best guess).
#[derive(Debug, Clone, Copy)]
pub struct Recent<F> {
    values: [F; RECENT],
    len: usize,
    at: usize,
}

/// Values the local mean spans.
pub const RECENT: usize = 4;

impl<F: Float> Default for Recent<F> {
    fn default() -> Self {
        Recent {
            values: [F::ZERO; RECENT],
            len: 0,
            at: 0,
        }
    }
}

impl<F: Float> Recent<F> {
    /// Forget every value.
    pub fn clear(&mut self) {
        self.len = 0;
        self.at = 0;
    }

    /// Let `x` in.
    pub fn push(&mut self, x: F) {
        self.values[self.at] = x;
        self.at = (self.at + 1) % RECENT;
        if self.len < RECENT {
            self.len += 1;
        }
    }

    /// The mean of the values held (`None` when empty).
    pub fn mean(&self) -> Option<F> {
        if self.len == 0 {
            return None;
        }
        let mut sum = F::ZERO;
        for &v in &self.values[..self.len] {
            sum += v;
        }
        Some(sum / F::from_usize(self.len))
    }

    /// The last value let in.
    pub fn last(&self) -> Option<F> {
        (self.len > 0).then(|| self.values[(self.at + RECENT - 1) % RECENT])
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn floor_matches_f64_floor() {
        for x in [-2.5f32, -2.0, -0.1, 0.0, 0.1, 1.0, 1.9, 1e12, -1e12] {
            let f = floor_i32(x);
            assert_eq!(
                f as f64,
                (x as f64).floor().clamp(i32::MIN as f64, i32::MAX as f64)
            );
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

    /// The search in steps (any step size) gives what the one-shot search gives, period and
    /// profile alike, in f64 and f32: waves, a square wave, a sawtooth, noise, a walk, a trend.
    #[test]
    fn the_search_in_steps_finds_what_the_one_shot_search_finds() {
        fn check<F: Float>(values: &[F], lags: usize, budget: usize) -> Option<usize> {
            let n = values.len();
            let (mut buf, mut acc) = (vec![F::ZERO; n], vec![F::ZERO; lags]);
            let mut one = PeriodFinder::default();
            for &v in values {
                one.push(Some(v), &mut buf, &mut acc);
            }
            let mut store = vec![F::ZERO; n + lags];
            let mut stepped = PeriodFinder::default();
            for &v in values {
                let (b, a) = store.split_at_mut(n);
                stepped.push(Some(v), b, a);
            }
            let expected = one.period(&buf, &mut acc);
            let mut search = stepped.search(n, n, lags, 0, n);
            let mut steps = 0;
            let got = loop {
                steps += 1;
                if let Some(got) = search.step(&mut store, budget) {
                    break got;
                }
                assert!(steps < 1_000_000, "a search that never ends");
            };
            assert_eq!(got, expected, "budget {budget}");
            assert!(!search.running());
            if let Some(p) = got {
                one.fold(&mut buf, p);
                for k in 0..p {
                    assert_eq!(store[k].to_f64(), buf[k].to_f64(), "phase {k} of {p}");
                }
            }
            got
        }
        let mut rnd = noise(17);
        let mut walk = 0.0;
        let streams: std::vec::Vec<std::vec::Vec<f64>> = vec![
            (0..1200)
                .map(|i| (i as f64 * core::f64::consts::TAU / 24.0).sin() + 0.3 * rnd())
                .collect(),
            (0..1200)
                .map(|i| 3.0 * (i as f64 * core::f64::consts::TAU / 100.0).sin() + rnd())
                .collect(),
            (0..1200)
                .map(|i| if i % 40 < 20 { 1.0 } else { 5.0 })
                .collect(),
            (0..1200).map(|i| (i % 64) as f64).collect(),
            (0..1200).map(|_| rnd()).collect(),
            (0..1200)
                .map(|_| {
                    walk += rnd();
                    walk
                })
                .collect(),
            (0..1200).map(|i| i as f64 * 0.5).collect(),
        ];
        let mut found = 0;
        for values in &streams {
            for budget in [1, 7, 256, 100_000] {
                found += check(values, 600, budget).is_some() as usize;
                let v32: std::vec::Vec<f32> = values.iter().map(|&v| v as f32).collect();
                check(&v32, 600, budget);
            }
        }
        assert_eq!(found, 4 * 4, "the four periodic streams, at every budget");
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
        let (lags, (a, b)) = p.correlate(&buf, &mut acc, 0, 0, 50);
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
        let mut rnd = noise(1);
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

    /// Standard normal values (Box-Muller over the LCG).
    fn gaussian(seed: u64) -> impl FnMut() -> f64 {
        let mut half = noise(seed);
        move || {
            let (u1, u2) = (half() + 0.5 + 0.5 / (1u64 << 53) as f64, half() + 0.5);
            libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
        }
    }

    #[test]
    fn the_tail_factor_is_one_for_gaussian_noise_and_large_for_heavy_tails() {
        let mut g = gaussian(7);
        let mut gauss = Tail::<f64>::default();
        let mut t3 = Tail::<f64>::default();
        let mut spiky = Tail::<f64>::default();
        for i in 0..50_000 {
            gauss.push(g().abs());
            let chi2 = g().powi(2) + g().powi(2) + g().powi(2);
            // Student-t (3) in units of its robust spread (1.382).
            t3.push((g() / libm::sqrt(chi2 / 3.0)).abs() / 1.382);
            spiky.push(if i % 100 == 0 { 8.0 } else { g().abs() });
        }
        assert!(gauss.factor() < 1.25, "{}", gauss.factor());
        assert!((3.5..12.0).contains(&t3.factor()), "{}", t3.factor());
        assert!(spiky.factor() < 1.25, "{}", spiky.factor());
    }

    #[test]
    fn a_spread_is_the_std_of_gaussian_errors_and_one_error_barely_moves_it() {
        let mut g = gaussian(3);
        let mut s = Spread::<f64>::default();
        for _ in 0..5000 {
            s.push(2.0 * g(), SPREAD_HORIZON);
        }
        assert!((s.scale() - 2.0).abs() < 0.4, "{}", s.scale());
        let before = s.scale();
        s.push(1e9, SPREAD_HORIZON);
        assert!(s.scale() < before * 1.052, "{} -> {}", before, s.scale());
    }

    #[test]
    fn recent_values_give_their_mean_and_the_last() {
        let mut r = Recent::<f64>::default();
        assert_eq!((r.mean(), r.last()), (None, None));
        for x in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] {
            r.push(x);
        }
        assert_eq!((r.mean(), r.last()), (Some(4.5), Some(6.0)));
    }
}
