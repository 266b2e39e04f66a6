//! A detector's answer for one value ([`Verdict`], its [`Class`]): what [`crate::zscore`] and
//! [`crate::detector`] give, and what a sample frame is made from.

use crate::float::Float;

/// The class of one verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Judged, within the threshold.
    Normal,
    /// Judged, beyond the threshold.
    Anomaly,
    /// Not judged yet: the window holds fewer than `warmup` values.
    WarmingUp,
    /// NaN or ±∞: not judged, state unchanged.
    Invalid,
}

/// The detector's answer for one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict<F> {
    /// The value judged.
    pub value: F,
    /// Mean of the window before this value (0 when the window was empty).
    pub mean: F,
    /// Sample std of the window before this value (0 with fewer than two values).
    pub std: F,
    /// `(value − mean) / std`; ±∞ on a flat window, 0 when undefined or invalid.
    pub z: F,
    /// `|z| / (|z| + threshold)` in `[0, 1]`; 0 for invalid values.
    pub score: F,
    /// Normal, anomaly, warming up or invalid.
    pub class: Class,
    /// True when the value was kept out of the window by the policy.
    pub excluded: bool,
    /// True when the adaptive detector's novelty channel flagged it (the first visit to a
    /// level the stream had never been at); false for a flag beyond the band (`|z|` above the
    /// threshold) and for every verdict of the other detectors.
    pub novel: bool,
}

impl<F: Float> Verdict<F> {
    /// The verdict on a NaN or ±∞: not judged, nothing changed; the window as it stands.
    pub(crate) fn invalid(value: F, stats: crate::window::Stats<F>) -> Self {
        Verdict {
            value,
            mean: stats.mean,
            std: stats.std,
            z: F::ZERO,
            score: F::ZERO,
            class: Class::Invalid,
            excluded: true,
            novel: false,
        }
    }
}

impl<F> Verdict<F> {
    /// True for [`Class::Anomaly`].
    pub fn is_anomaly(&self) -> bool {
        self.class == Class::Anomaly
    }
}
