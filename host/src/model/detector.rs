//! The host's detector and how a user chooses one: [`Method`], the settings each method has
//! (one rule, [`Setting::misplaced`], that the command line and the API's config change both
//! apply), a seasonal [`Period`] given in samples or as a duration, and the [`DetectorSpec`]
//! that waits for the data's sampling interval to turn a duration into samples.

use serde::Deserialize;
use zscope_core::{Baseline, Detector, DetectorConfig};

/// Largest window, and longest seasonal period, the host's detectors hold (f64, 64 KiB each:
/// built on the stack, then boxed).
pub const HOST_CAPACITY: usize = 8192;

/// The host's detector.
pub type HostDetector = Detector<f64, HOST_CAPACITY, HOST_CAPACITY>;

/// A boxed detector (its buffers are too big for small thread stacks).
pub fn detector(config: DetectorConfig) -> Result<Box<HostDetector>, zscope_core::ConfigError> {
    Detector::new(config).map(Box::new)
}

/// Which detector judges the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The default: novel levels plus a residual Z-score calibrated to the stream's tails,
    /// against a period it finds by itself.
    Adaptive,
    /// The rolling Z-score against the window's mean (the seed's method).
    Zscore,
    /// The rolling Z-score against a seasonal profile of a given period.
    Seasonal,
}

/// Default weight of the newest cycle in a seasonal profile.
pub const DEFAULT_ALPHA: f32 = 0.3;

impl Method {
    /// The method a config runs.
    pub fn of(baseline: Baseline) -> Method {
        match baseline {
            Baseline::Window => Method::Zscore,
            Baseline::Seasonal { .. } => Method::Seasonal,
            Baseline::Adaptive { .. } => Method::Adaptive,
        }
    }

    /// Its name, as `--detector` and the API's `detector` take it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Adaptive => "adaptive",
            Method::Zscore => "zscore",
            Method::Seasonal => "seasonal",
        }
    }
}

/// A setting that only one method has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The adaptive detector's learning phase.
    Learn,
    /// The adaptive detector's quiet after a novel level.
    Rest,
    /// The seasonal profile's period.
    Period,
    /// The seasonal profile's weight of the newest cycle.
    Alpha,
}

impl Setting {
    /// The one method that has it.
    pub fn method(self) -> Method {
        match self {
            Setting::Learn | Setting::Rest => Method::Adaptive,
            Setting::Period | Setting::Alpha => Method::Seasonal,
        }
    }

    /// Of the settings `given` (each with whether it was given), the first that `method` does
    /// not have: a choice that would have no effect, which both the command line and the API
    /// refuse (each in its own words).
    pub fn misplaced(method: Method, given: &[(Setting, bool)]) -> Option<Setting> {
        given
            .iter()
            .find(|(s, is_given)| *is_given && s.method() != method)
            .map(|(s, _)| *s)
    }
}

/// Why a detector spec cannot be resolved into a config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// A seasonal period as given: in samples, or as a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Period {
    /// Samples per cycle.
    Samples(u32),
    /// A duration in milliseconds, converted with the data's sampling interval.
    Millis(f64),
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u32>() {
            return Ok(Period::Samples(n));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let factor = match unit.trim() {
            "ms" => 1.0,
            "s" => 1e3,
            "m" | "min" => 60e3,
            "h" => 3600e3,
            "d" => 86_400e3,
            "w" => 7.0 * 86_400e3,
            _ => f64::NAN,
        };
        match num.parse::<f64>() {
            Ok(n) if factor.is_finite() && n > 0.0 && n.is_finite() => {
                Ok(Period::Millis(n * factor))
            }
            _ => Err(format!(
                "period {s:?} is neither a number of samples (288) nor a duration (1d, 12h, 30m, \
                 90s, 500ms, 1w)"
            )),
        }
    }
}

/// A detector config whose seasonal period may still wait for the data's sampling interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSpec {
    /// The config (with the period in samples, or a placeholder of 1 for a duration).
    pub config: zscope_core::DetectorConfig,
    /// A period given as a duration, in ms.
    pub period_ms: Option<f64>,
}

impl DetectorSpec {
    /// The config, with a duration turned into samples at `interval_ms` per sample.
    pub fn resolve(
        &self,
        interval_ms: Option<f64>,
    ) -> Result<zscope_core::DetectorConfig, SpecError> {
        let mut config = self.config;
        if let (Some(ms), zscope_core::Baseline::Seasonal { alpha, .. }) =
            (self.period_ms, config.baseline)
        {
            let interval = interval_ms.filter(|i| *i > 0.0).ok_or_else(|| {
                SpecError(
                    "a seasonal period given as a duration needs timestamps to convert it: \
                     give the period in samples instead"
                        .into(),
                )
            })?;
            let samples = (ms / interval).round();
            if !(1.0..=u32::MAX as f64).contains(&samples) {
                return Err(SpecError(format!(
                    "a period of {ms} ms is {samples} samples at {interval} ms per sample"
                )));
            }
            config.baseline = zscope_core::Baseline::Seasonal {
                period: samples as u32,
                alpha,
            };
            HostDetector::validate(&config).map_err(|e| {
                SpecError(format!(
                    "invalid detector settings: {e} ({ms} ms at {interval} ms per sample)"
                ))
            })?;
        }
        Ok(config)
    }
}
