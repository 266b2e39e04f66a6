//! The two obvious O(1) rolling-statistics designs that `Window` was measured against, shared by
//! the `exactness` example and the benchmark. Not part of the library.

/// Running sums of x and x², add/remove: fast, and wrong at large offsets.
pub struct NaiveSums<const N: usize> {
    buf: [f64; N],
    len: usize,
    count: usize,
    head: usize,
    s1: f64,
    s2: f64,
}

/// Welford's mean and M2, with the sliding add/remove update: stable per step, but rounding
/// error accumulates without bound over a long stream.
pub struct Welford<const N: usize> {
    buf: [f64; N],
    len: usize,
    count: usize,
    head: usize,
    mean: f64,
    m2: f64,
}

impl<const N: usize> NaiveSums<N> {
    /// Empty, active length `len`.
    pub fn new(len: usize) -> Self {
        NaiveSums {
            buf: [0.0; N],
            len,
            count: 0,
            head: 0,
            s1: 0.0,
            s2: 0.0,
        }
    }

    /// Add a value, evicting the oldest when full.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.count == self.len {
            let old = self.buf[(self.head + N - self.len) % N];
            self.s1 += x - old;
            self.s2 += x * x - old * old;
        } else {
            self.count += 1;
            self.s1 += x;
            self.s2 += x * x;
        }
        self.buf[self.head] = x;
        self.head = (self.head + 1) % N;
    }

    /// (mean, sample std)
    pub fn stats(&self) -> (f64, f64) {
        let n = self.count as f64;
        let mean = self.s1 / n;
        let var = ((self.s2 - self.s1 * mean) / (n - 1.0)).max(0.0);
        (mean, var.sqrt())
    }
}

impl<const N: usize> Welford<N> {
    /// Empty, active length `len`.
    pub fn new(len: usize) -> Self {
        Welford {
            buf: [0.0; N],
            len,
            count: 0,
            head: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// Add a value, evicting the oldest when full.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.count == self.len {
            let old = self.buf[(self.head + N - self.len) % N];
            let mean = self.mean + (x - old) / self.count as f64;
            self.m2 += (x - old) * (x - mean + old - self.mean);
            self.mean = mean;
        } else {
            self.count += 1;
            let delta = x - self.mean;
            self.mean += delta / self.count as f64;
            self.m2 += delta * (x - self.mean);
        }
        self.buf[self.head] = x;
        self.head = (self.head + 1) % N;
    }

    /// (mean, sample std)
    pub fn stats(&self) -> (f64, f64) {
        let var = (self.m2 / (self.count as f64 - 1.0)).max(0.0);
        (self.mean, var.sqrt())
    }
}
