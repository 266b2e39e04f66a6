//! What ingest hands the sinks that write to disk: a judged point with its arrival time, and a
//! config the device took.

use zscope_core::DetectorConfig;
use zscope_core::source::{Source, Unit};

use super::detector::Method;
use super::point::Point;

/// A point for the logs: what the writer needs to make its row.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The point.
    pub point: Point,
    /// When it arrived, ms since the Unix epoch.
    pub host_ms: i64,
    /// Whether the source has ground truth (the `truth` column is filled).
    pub truth: bool,
    /// What the device judged (`None`: a device that does not say).
    pub source: Option<Source>,
    /// The unit of its value.
    pub unit: Unit,
    /// The detector that judged it (`None`: its config was never seen, as for a device not
    /// yet identified).
    pub detector: Option<Method>,
}

/// A config the device acknowledged (or said hello with), for the store.
#[derive(Debug, Clone, Copy)]
pub struct ConfigRecord {
    /// When, ms since the Unix epoch.
    pub host_ms: i64,
    /// Its version.
    pub version: u32,
    /// The config.
    pub config: DetectorConfig,
    /// The source judged under it (`None`: a device that does not say).
    pub source: Option<Source>,
    /// The unit of its values.
    pub unit: Unit,
}
