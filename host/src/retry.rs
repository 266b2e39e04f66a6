//! Trying again: the one [`Backoff`] every reconnecting part of the daemon waits with (a serial
//! port, an MQTT broker as publisher and as subscriber, a webhook's attempts).

use std::time::Duration;

/// Waits before trying again: the first wait, doubled after each failure up to a cap, and the
/// first wait again after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits from `first`, doubling up to `cap` (at least `first`).
    pub const fn new(first: Duration, cap: Duration) -> Self {
        let cap = if cap.as_nanos() < first.as_nanos() {
            first
        } else {
            cap
        };
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// A broker's: 1 s, doubling to 30 s, so a broker that is down for long is asked twice a
    /// minute and one back soon is found within a second or two.
    pub const fn broker() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// The same wait every time.
    pub const fn steady(every: Duration) -> Self {
        Backoff::new(every, every)
    }

    /// How long to wait after this failure; the next one waits longer, up to the cap.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.cap);
        wait
    }

    /// It worked: the next failure waits the first wait again.
    pub fn succeeded(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(b: &mut Backoff, n: usize) -> Vec<u64> {
        (0..n).map(|_| b.failed().as_secs()).collect()
    }

    #[test]
    fn doubles_to_its_cap_and_starts_again_after_a_success() {
        let mut b = Backoff::broker();
        assert_eq!(secs(&mut b, 7), [1, 2, 4, 8, 16, 30, 30]);
        b.succeeded();
        assert_eq!(secs(&mut b, 2), [1, 2]);
        let mut steady = Backoff::steady(Duration::from_secs(1));
        assert_eq!(secs(&mut steady, 3), [1, 1, 1]);
        // A cap below the first wait is the first wait.
        let mut odd = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(secs(&mut odd, 2), [5, 5]);
    }
}
