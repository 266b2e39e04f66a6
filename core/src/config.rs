//! What a detector is set to: [`DetectorConfig`] (window, threshold, warm-up, the anomaly
//! policy, the [`Baseline`] a value is judged against), which also crosses the wire, and why a
//! config is refused ([`ConfigError`]). Shared by [`crate::zscore`] and [`crate::detector`],
//! below both.

use serde::{Deserialize, Serialize};

/// What a flagged value does to the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnomalyPolicy {
    /// Every valid value enters the window, flagged or not.
    Include,
    /// Flagged values stay out of the window, at most `max_run` in a row; after that they
    /// enter until a normal value arrives (so a level shift is learnt). `max_run = u32::MAX`
    /// excludes forever; `0` is the same as `Include`.
    Exclude {
        /// Longest run of consecutive flagged values kept out.
        max_run: u32,
    },
}

impl AnomalyPolicy {
    /// Whether a value, flagged or not, stays out of the window, given `run` (the flagged
    /// values in a row before it, updated here: one more when flagged, 0 otherwise).
    pub fn keeps_out(&self, flagged: bool, run: &mut u32) -> bool {
        if !flagged {
            *run = 0;
            return false;
        }
        let out = match *self {
            AnomalyPolicy::Include => false,
            AnomalyPolicy::Exclude { max_run } => *run < max_run,
        };
        *run = run.saturating_add(1);
        out
    }
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        AnomalyPolicy::Exclude {
            max_run: DetectorConfig::DEFAULT_MAX_RUN,
        }
    }
}

/// What each value is compared against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Baseline {
    /// The rolling window's mean: the plain rolling Z-score.
    Window,
    /// A seasonal profile: the value expected at this phase of a `period`-sample cycle (an
    /// exponentially weighted mean, factor `alpha`, of earlier periods at the same phase); the
    /// rolling Z-score then judges the residual. `period = 1` is an EWMA baseline, which follows
    /// level shifts and trends. Used by [`Detector`](crate::detector::Detector).
    Seasonal {
        /// Samples per cycle (`1..=` the detector's season capacity).
        period: u32,
        /// Weight of the newest period in the profile, `(0, 1]`.
        alpha: f32,
    },
    /// The adaptive detector, the default (see [`crate::adaptive`]): the first `learn` values
    /// set a grid of levels over their range and, where the stream repeats, its period. From
    /// then on a value on a level never visited is an anomaly (then `rest` values of quiet
    /// for further novelty), and so is a residual (against the window, or the value's phase
    /// of the period) beyond `threshold` standard deviations times the tail factor, which
    /// grows with how bursty the stream has shown itself to be.
    Adaptive {
        /// Values that set the level grid and the period (`16..=100000`). The residual
        /// channel judges from the start.
        learn: u32,
        /// Values after a novel level during which further novelty is not reported.
        rest: u32,
    },
}

/// Settings of a [`RollingZScore`](crate::zscore::RollingZScore). This is also what crosses the wire in `SetConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Window length: how many past values each verdict is judged against (`2..=capacity`).
    pub window: u32,
    /// `|z|` above this is an anomaly (finite, > 0).
    pub threshold: f32,
    /// Values the window must hold before any verdict flags; `None` means the default:
    /// the window length up to 64 values (half the window for the adaptive detector).
    /// When set: `2..=window`.
    pub warmup: Option<u32>,
    /// What a flagged value does to the window.
    pub policy: AnomalyPolicy,
    /// What each value is compared against (a [`RollingZScore`](crate::zscore::RollingZScore) alone uses the window).
    pub baseline: Baseline,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            window: Self::DEFAULT_WINDOW,
            threshold: Self::ADAPTIVE_THRESHOLD,
            warmup: None,
            policy: AnomalyPolicy::default(),
            baseline: Baseline::Adaptive {
                learn: Self::DEFAULT_LEARN,
                rest: Self::DEFAULT_REST,
            },
        }
    }
}

/// Why a [`DetectorConfig`] was refused. Crosses the wire in a rejected acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigError {
    /// The window must be between 2 and the detector's capacity.
    Window {
        /// The window asked for.
        window: u32,
        /// The largest window this detector holds.
        capacity: u32,
    },
    /// The threshold must be a finite number above 0.
    Threshold,
    /// The warm-up must be between 2 and the window length.
    Warmup {
        /// The warm-up asked for.
        warmup: u32,
        /// The window length it must not exceed.
        window: u32,
    },
    /// The seasonal period must be between 1 and the detector's season capacity.
    Period {
        /// The period asked for.
        period: u32,
        /// The longest period this detector holds.
        capacity: u32,
    },
    /// The seasonal profile's weight must be in (0, 1].
    Alpha,
    /// The adaptive detector's learning phase must be 16 to 100000 values.
    Learn {
        /// The length asked for.
        learn: u32,
    },
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Window { window, capacity } => {
                write!(f, "window {window} is outside 2..={capacity}")
            }
            ConfigError::Threshold => f.write_str("threshold must be a finite number above 0"),
            ConfigError::Warmup { warmup, window } => {
                write!(
                    f,
                    "warm-up {warmup} is outside 2..={window} (the window length)"
                )
            }
            ConfigError::Period { period, capacity } => {
                write!(f, "seasonal period {period} is outside 1..={capacity}")
            }
            ConfigError::Alpha => f.write_str("seasonal alpha must be above 0 and at most 1"),
            ConfigError::Learn { learn } => {
                write!(f, "learning phase {learn} is outside 16..=100000 values")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

impl DetectorConfig {
    /// Default window length.
    pub const DEFAULT_WINDOW: u32 = 64;
    /// Default threshold on `|z|` of the rolling and seasonal Z-scores.
    pub const DEFAULT_THRESHOLD: f32 = 3.0;
    /// Default threshold of the adaptive detector, on `|z|` against its calibrated spread:
    /// about 7 in a million Gaussian values lie beyond it, so an anomaly-free stream raises at
    /// most about one false event in 10 000 values (measured in `zscope eval`).
    pub const ADAPTIVE_THRESHOLD: f32 = 4.5;
    /// Default longest run of flagged values kept out of the window.
    pub const DEFAULT_MAX_RUN: u32 = 10;
    /// Longest default warm-up of the rolling Z-score: values the window holds before it
    /// judges, when no warm-up is set.
    pub const DEFAULT_WARMUP: u32 = 64;
    /// Default learning phase of the adaptive detector.
    pub const DEFAULT_LEARN: u32 = 600;
    /// Default rest after a novel level.
    pub const DEFAULT_REST: u32 = 100;
    /// The adaptive detector's default warm-up: errors a predictor's spread rests on before it
    /// judges (so it judges from about the tenth value).
    pub const ADAPTIVE_WARMUP: u32 = 8;

    /// The rolling Z-score ([`Baseline::Window`]) over `window` values, with the default
    /// threshold and policy.
    pub const fn with_window(window: u32) -> Self {
        DetectorConfig {
            window,
            threshold: Self::DEFAULT_THRESHOLD,
            warmup: None,
            policy: AnomalyPolicy::Exclude {
                max_run: Self::DEFAULT_MAX_RUN,
            },
            baseline: Baseline::Window,
        }
    }

    /// The warm-up in force: `warmup`, or when unset the window length up to
    /// [`DEFAULT_WARMUP`](Self::DEFAULT_WARMUP) values (a long window starts judging once its
    /// std rests on 64 values, not when it is full), and half the window for the adaptive
    /// detector, whose residual channel starts judging early.
    pub fn effective_warmup(&self) -> u32 {
        match self.baseline {
            Baseline::Adaptive { .. } => self.warmup.unwrap_or(Self::ADAPTIVE_WARMUP),
            _ => self.warmup.unwrap_or(self.window.min(Self::DEFAULT_WARMUP)),
        }
    }

    /// Check every field against a detector of window capacity `capacity`.
    pub fn validate(&self, capacity: usize) -> Result<(), ConfigError> {
        let cap = u32::try_from(capacity).unwrap_or(u32::MAX);
        if !(2..=cap).contains(&self.window) {
            return Err(ConfigError::Window {
                window: self.window,
                capacity: cap,
            });
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(ConfigError::Threshold);
        }
        if let Some(warmup) = self.warmup
            && !(2..=self.window).contains(&warmup)
        {
            return Err(ConfigError::Warmup {
                warmup,
                window: self.window,
            });
        }
        Ok(())
    }

    /// Check every field, the baseline's included, against a device that holds windows up to
    /// `capacity` and seasonal periods up to `season_capacity` (what its hello says): the
    /// check a host makes before sending a config, and on a device's hello.
    pub fn validate_for(&self, capacity: usize, season_capacity: usize) -> Result<(), ConfigError> {
        self.validate(capacity)?;
        self.check_baseline(season_capacity)
    }
}

impl DetectorConfig {
    /// Whether the baseline's own settings hold (a learning phase, a period that fits
    /// `season_capacity`, an alpha in (0, 1]).
    pub(crate) fn check_baseline(&self, season_capacity: usize) -> Result<(), ConfigError> {
        let config = self;
        if let Baseline::Adaptive { learn, .. } = config.baseline
            && !(16..=100_000).contains(&learn)
        {
            return Err(ConfigError::Learn { learn });
        }
        if let Baseline::Seasonal { period, alpha } = config.baseline {
            let cap = u32::try_from(season_capacity).unwrap_or(u32::MAX);
            if !(1..=cap).contains(&period) {
                return Err(ConfigError::Period {
                    period,
                    capacity: cap,
                });
            }
            if !(alpha.is_finite() && alpha > 0.0 && alpha <= 1.0) {
                return Err(ConfigError::Alpha);
            }
        }
        Ok(())
    }
}
