//! The JSON API: typed answers, typed errors ([`ApiError`]).
//!
//! | route | |
//! |---|---|
//! | `GET /api/devices` | every device: name, port, connected, board, rate, counters |
//! | `GET /api/fleet?offset=&limit=&match=&alerting_first=` | a page of the devices, how many match, the cap and the refused |
//! | `GET /api/status` | device, connection, counters, bad frames per kind, live precision/recall, logs |
//! | `GET /api/samples?from=&to=&limit=` | points with chart time (ms since epoch) in `[from, to]`, as columns |
//! | `GET /api/anomalies?limit=` | the latest anomalies, as columns |
//! | `GET /api/config` | the detector config in force, its version, the device's capacities |
//! | `POST /api/config` | change any detector setting; answers once the device acknowledges |
//! | `POST /api/source` | `{"source": "temperature"}`: judge another of the device's sources |
//!
//! Each route but `/api/devices` is also `/api/devices/{name}/…` for one device; without it
//! (or `?device=`), the first device answers.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use zscope_core::wire::{AckResult, HostMsg};
use zscope_core::{AnomalyPolicy, Baseline, DetectorConfig};

use super::error::ApiError;
use super::extract::{App, Dev};
use super::ws::SNAPSHOT_POINTS;
use crate::model::state::{ANOMALY_HISTORY, HISTORY};
use crate::model::{ConfigView, Points, StatusView};

/// How long `POST /api/config` waits for the device's acknowledgement.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(3);

/// `?from=&to=&limit=&points=`.
#[derive(Deserialize)]
pub struct Range {
    from: Option<f64>,
    to: Option<f64>,
    limit: Option<usize>,
    points: Option<usize>,
}

/// `GET /api/samples?from=&to=&limit=`: the points in memory with chart time in `[from, to]`,
/// as columns. With `points=N`: any range of the stored history (the whole of it without
/// `from`/`to`) as at most N columns of min, max, mean, count and flagged, from the points or
/// their rollups, plus every anomaly in the range ([`crate::sink::store::Range`]).
pub(super) async fn samples(
    Dev(dev): Dev,
    Query(q): Query<Range>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let Some(columns) = q.points else {
        let limit = q.limit.unwrap_or(SNAPSHOT_POINTS).min(HISTORY);
        let points =
            dev.hub
                .state()
                .range(q.from.unwrap_or(f64::MIN), q.to.unwrap_or(f64::MAX), limit);
        return Ok(Json(points).into_response());
    };
    if columns == 0 || columns > 100_000 {
        return Err(ApiError::BadQuery(format!(
            "points={columns}: ask for 1 to 100000 columns"
        )));
    }
    let path = dev
        .hub
        .store_path()
        .map(std::path::Path::to_path_buf)
        .ok_or(ApiError::NoStore)?;
    let range = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let reader = crate::sink::store::Reader::open(&path).map_err(|e| e.to_string())?;
        let (from, to) = match (q.from, q.to) {
            (Some(f), Some(t)) => (f, t),
            (f, t) => {
                let span = reader
                    .span()
                    .map_err(|e| e.to_string())?
                    .unwrap_or((0.0, 0.0));
                (f.unwrap_or(span.0), t.unwrap_or(span.1))
            }
        };
        reader.range(from, to, columns).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::Store(e.to_string()))?
    .map_err(ApiError::Store)?;
    Ok(Json(range).into_response())
}

/// `?limit=`.
#[derive(Deserialize)]
pub struct Limit {
    limit: Option<usize>,
}

/// `GET /api/anomalies?limit=`: the latest anomalies, as columns.
pub(super) async fn anomalies(Dev(dev): Dev, Query(q): Query<Limit>) -> Json<Points> {
    let n = q.limit.unwrap_or(1000).min(ANOMALY_HISTORY);
    Json(dev.hub.state().latest_anomalies(n))
}

/// One device in `/api/devices`.
#[derive(Debug, Serialize)]
pub struct DeviceSummary {
    /// Its name: `/api/devices/{name}/…`, `/ws?device={name}`, the page's `?device={name}`.
    pub name: String,
    /// Its port (or pty, or replayed file).
    pub port: String,
    /// Whether the port is open.
    pub connected: bool,
    /// Its board, once it said hello.
    pub board: Option<String>,
    /// Points per second.
    pub rate: f64,
    /// Samples, anomalies, events, frames lost.
    pub counters: crate::model::state::Counters,
    /// What is wrong with its link, if anything.
    pub link_error: Option<String>,
    /// Anomalies lately, and a sparkline of the last minute.
    #[serde(flatten)]
    pub overview: crate::model::state::Overview,
}

impl DeviceSummary {
    fn of(d: &crate::device::Device, now_ms: f64) -> DeviceSummary {
        let s = d.hub.status();
        let overview = d.hub.state().overview(now_ms);
        DeviceSummary {
            overview,
            name: d.name.clone(),
            port: s.port,
            connected: s.connected,
            board: s.device.map(|i| i.board),
            rate: s.rate,
            counters: s.counters,
            link_error: s.link_error,
        }
    }
}

fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64
}

/// `GET /api/devices`: every device, in the order given.
pub(super) async fn devices(State(app): State<App>) -> Json<Vec<DeviceSummary>> {
    let now = now_ms();
    Json(
        app.devices
            .list()
            .iter()
            .map(|d| DeviceSummary::of(d, now))
            .collect(),
    )
}

/// Devices in one page of `/api/fleet` unless `limit` says.
pub const FLEET_PAGE: usize = 50;
/// Devices in one page of `/api/fleet` at most.
pub const MAX_FLEET_PAGE: usize = 500;

/// Which devices `/api/fleet` answers with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetQuery {
    /// Skip this many (of those that match, in the order they came, or alerting first).
    offset: Option<usize>,
    /// Those with anomalies in the last minute first (most first); else in the order they
    /// came (a list that does not move under the reader).
    alerting_first: Option<bool>,
    /// At most this many ([`FLEET_PAGE`]; up to [`MAX_FLEET_PAGE`]).
    limit: Option<usize>,
    /// Only the devices whose name holds this (any case).
    #[serde(rename = "match")]
    matching: Option<String>,
}

/// `/api/fleet`: a page of the devices, and how many there are.
#[derive(Debug, Serialize)]
pub struct Fleet {
    /// Devices the daemon holds.
    pub total: usize,
    /// Of them, those whose name matches.
    pub matching: usize,
    /// Where this page starts among those.
    pub offset: usize,
    /// How many the daemon may hold (`--max-devices`).
    pub max_devices: usize,
    /// Devices refused because it held as many.
    pub refused: u64,
    /// The device that answers the routes without a name (the first to come).
    pub first: Option<String>,
    /// This page: in the order they came (or, with `alerting_first=true`, those with
    /// anomalies in the last minute first, most first).
    pub devices: Vec<DeviceSummary>,
}

/// `GET /api/fleet?offset=&limit=&match=&alerting_first=`: a page of the devices, so that a
/// page with a thousand of them draws fifty; only the page's devices are summarised.
pub(super) async fn fleet(State(app): State<App>, Query(q): Query<FleetQuery>) -> Json<Fleet> {
    let now = now_ms();
    let list = app.devices.list();
    let needle = q.matching.as_deref().unwrap_or("").to_lowercase();
    let mut matching: Vec<(usize, &crate::device::Device)> = list
        .iter()
        .filter(|d| d.name.to_lowercase().contains(&needle))
        .map(|d| (d.hub.state().anomalies_since(now - 60_000.0), d))
        .collect();
    if q.alerting_first == Some(true) {
        // Stable: among equals, the order they came.
        matching.sort_by_key(|m| std::cmp::Reverse(m.0));
    }
    let offset = q.offset.unwrap_or(0).min(matching.len());
    let limit = q.limit.unwrap_or(FLEET_PAGE).clamp(1, MAX_FLEET_PAGE);
    let devices = matching[offset..]
        .iter()
        .take(limit)
        .map(|(_, d)| DeviceSummary::of(d, now))
        .collect();
    Json(Fleet {
        total: list.len(),
        matching: matching.len(),
        offset,
        max_devices: app.devices.max(),
        refused: app.devices.refused(),
        first: list.first().map(|d| d.name.clone()),
        devices,
    })
}

/// What `/api/status` says of the daemon beside its device.
#[derive(Debug, Serialize)]
pub struct DaemonView {
    /// Devices it holds.
    pub devices: usize,
    /// As many as it may hold (`--max-devices`).
    pub max_devices: usize,
    /// Devices refused because it held as many.
    pub devices_refused: u64,
    /// Threads writing the devices' logs and stores: one a device read here, one for all
    /// the devices other daemons read.
    pub log_writer_threads: usize,
}

/// `/api/status`: the device's status, and the daemon's.
#[derive(Debug, Serialize)]
pub struct StatusAnswer {
    /// The device's.
    #[serde(flatten)]
    pub status: StatusView,
    /// The daemon's.
    pub daemon: DaemonView,
}

/// `GET /api/status`.
pub(super) async fn status(State(app): State<App>, Dev(dev): Dev) -> Json<StatusAnswer> {
    Json(StatusAnswer {
        status: dev.hub.status(),
        daemon: DaemonView {
            devices: app.devices.len(),
            max_devices: app.devices.max(),
            devices_refused: app.devices.refused(),
            log_writer_threads: app.devices.writer_threads(),
        },
    })
}

/// `GET /api/config`.
pub(super) async fn config(Dev(dev): Dev) -> Json<ConfigView> {
    Json(dev.hub.state().config_view())
}

/// A config change: any field left out keeps its current value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// `adaptive`, `zscore` or `seasonal` (unset: the one in force, or as `seasonal_period`
    /// implies).
    detector: Option<crate::model::detector::Method>,
    window: Option<u32>,
    threshold: Option<f32>,
    /// A warm-up, or null for the default.
    #[serde(default, deserialize_with = "present")]
    warmup: Option<Option<u32>>,
    /// A longest run kept out, or null to let every value in.
    #[serde(default, deserialize_with = "present")]
    max_run: Option<Option<u32>>,
    /// A seasonal period (1: EWMA baseline), or null for the window's mean.
    #[serde(default, deserialize_with = "present")]
    seasonal_period: Option<Option<u32>>,
    alpha: Option<f32>,
    /// Adaptive: the learning phase.
    learn: Option<u32>,
    /// Adaptive: values of quiet after a novel level.
    rest: Option<u32>,
}

/// A field that is present, even as `null` (serde alone reads `null` as absent).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl ConfigChange {
    /// The config this change makes of `current`, or why it cannot.
    pub fn apply(&self, current: DetectorConfig) -> Result<DetectorConfig, ApiError> {
        let mut config = current;
        if let Some(w) = self.window {
            config.window = w;
        }
        if let Some(t) = self.threshold {
            config.threshold = t;
        }
        if let Some(w) = self.warmup {
            config.warmup = w;
        }
        config.baseline = apply_detector(config.baseline, self).map_err(ApiError::InvalidConfig)?;
        if let Some(m) = self.max_run {
            config.policy = match m {
                Some(max_run) => AnomalyPolicy::Exclude { max_run },
                None => AnomalyPolicy::Include,
            };
        }
        Ok(config)
    }
}

/// The detector `change` asks for, from the one in force: refused (with the reason) when it
/// names a setting that the chosen detector does not have.
fn apply_detector(current: Baseline, change: &ConfigChange) -> Result<Baseline, String> {
    use crate::model::detector::{Method, Setting};
    let method = change.detector.unwrap_or(match change.seasonal_period {
        Some(Some(_)) => Method::Seasonal,
        Some(None) => Method::Zscore,
        None => Method::of(current),
    });
    let given = [
        (Setting::Learn, change.learn.is_some()),
        (Setting::Rest, change.rest.is_some()),
        (
            Setting::Period,
            matches!(change.seasonal_period, Some(Some(_))),
        ),
        (Setting::Alpha, change.alpha.is_some()),
    ];
    if let Some(setting) = Setting::misplaced(method, &given) {
        let (field, what) = match setting {
            Setting::Learn => ("learn", "adaptive"),
            Setting::Rest => ("rest", "adaptive"),
            Setting::Period => ("seasonal_period", "seasonal"),
            Setting::Alpha => ("alpha", "seasonal"),
        };
        return Err(format!("{field} applies to the {what} detector only"));
    }
    Ok(match method {
        Method::Zscore => Baseline::Window,
        Method::Adaptive => {
            let (learn, rest) = match current {
                Baseline::Adaptive { learn, rest } => (learn, rest),
                _ => (
                    zscope_core::DetectorConfig::DEFAULT_LEARN,
                    zscope_core::DetectorConfig::DEFAULT_REST,
                ),
            };
            Baseline::Adaptive {
                learn: change.learn.unwrap_or(learn),
                rest: change.rest.unwrap_or(rest),
            }
        }
        Method::Seasonal => {
            let (period, alpha) = match current {
                Baseline::Seasonal { period, alpha } => (Some(period), alpha),
                _ => (None, crate::model::detector::DEFAULT_ALPHA),
            };
            let period = match change.seasonal_period {
                Some(Some(p)) => p,
                _ => period.ok_or("the seasonal detector needs its period: seasonal_period")?,
            };
            Baseline::Seasonal {
                period,
                alpha: change.alpha.unwrap_or(alpha),
            }
        }
    })
}

/// Why a JSON body was not taken: too large, not declared as JSON, or (`other`) not the JSON
/// asked for.
fn refused_body(e: JsonRejection, other: impl FnOnce(String) -> ApiError) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(e.body_text()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::NotJson(e.body_text()),
        _ => other(e.body_text()),
    }
}

/// Send the command `make` builds (with the id the hub gives it) and wait for the device's
/// acknowledgement, [`ACK_TIMEOUT`] at most.
async fn acknowledged(
    dev: &crate::device::Device,
    make: impl FnOnce(u32) -> HostMsg,
) -> Result<zscope_core::wire::Ack, ApiError> {
    match tokio::time::timeout(ACK_TIMEOUT, dev.hub.command(make)).await {
        Ok(Ok(ack)) => Ok(ack),
        Ok(Err(_)) => Err(ApiError::LinkDown),
        Err(_) => Err(ApiError::AckTimeout(ACK_TIMEOUT)),
    }
}

/// What `POST /api/config` answers once the device took the change.
#[derive(Debug, Serialize)]
pub struct Applied {
    /// The new config version.
    pub version: u32,
    /// The config now in force.
    pub config: DetectorConfig,
}

/// `POST /api/config`: check the change, send it, answer with the device's acknowledgement.
pub(super) async fn set_config(
    Dev(dev): Dev,
    body: Result<Json<ConfigChange>, JsonRejection>,
) -> Result<Json<Applied>, ApiError> {
    let Json(change) = body.map_err(|e| refused_body(e, ApiError::BadJson))?;
    let (current, view, connected) = {
        let s = dev.hub.state();
        if let Some(why) = s.read_only() {
            return Err(ApiError::ReadOnly(why.to_string()));
        }
        (s.config(), s.config_view(), s.is_connected())
    };
    let (Some(current), Some(capacity), true) = (current, view.capacity, connected) else {
        return Err(ApiError::NoDevice);
    };
    let config = change.apply(current)?;
    config
        .validate_for(
            capacity as usize,
            view.season_capacity.unwrap_or(0) as usize,
        )
        .map_err(|e| ApiError::InvalidConfig(e.to_string()))?;
    let ack = acknowledged(&dev, |id| HostMsg::SetConfig { id, config }).await?;
    match ack.result {
        AckResult::Ok => Ok(Json(Applied {
            version: ack.config_version,
            config: ack.config,
        })),
        AckResult::Rejected(e) => Err(ApiError::Refused(format!("the config: {e}"))),
        AckResult::RateRejected { hz, max } => {
            Err(ApiError::Refused(format!("rate {hz} Hz (max {max})")))
        }
        AckResult::SourceRejected(why) => Err(ApiError::Refused(format!("the source: {why}"))),
    }
}

/// `POST /api/source`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceChange {
    /// `simulator`, `temperature`, `adc:PA0`, `external`.
    pub source: String,
}

/// What `POST /api/source` answers once the device took the change.
#[derive(Debug, Serialize)]
pub struct SourceApplied {
    /// The new config version (a source change starts the detector's learning afresh).
    pub version: u32,
    /// The source now judged.
    pub source: String,
}

/// `POST /api/source`: check the name against the device's list, send it, answer with the
/// device's acknowledgement (or its reason for refusing).
pub(super) async fn set_source(
    Dev(dev): Dev,
    body: Result<Json<SourceChange>, JsonRejection>,
) -> Result<Json<SourceApplied>, ApiError> {
    let Json(change) = body.map_err(|e| {
        refused_body(e, |why| {
            ApiError::InvalidSource(format!("{why}: send {{\"source\": \"temperature\"}}"))
        })
    })?;
    let source = zscope_core::source::Source::parse(&change.source)
        .map_err(|e| ApiError::InvalidSource(format!("{:?}: {e}", change.source)))?;
    let listed = {
        let s = dev.hub.state();
        if let Some(why) = s.read_only() {
            return Err(ApiError::ReadOnly(why.to_string()));
        }
        if !s.is_connected() {
            return Err(ApiError::NoDevice);
        }
        s.device_sources()
    };
    let name = source.to_string();
    if !listed.contains(&name) {
        return Err(ApiError::InvalidSource(format!(
            "{name}: this device has {}",
            if listed.is_empty() {
                "no sources to choose from".to_string()
            } else {
                listed.join(", ")
            }
        )));
    }
    let ack = acknowledged(&dev, |id| HostMsg::SetSource { id, source }).await?;
    match ack.result {
        AckResult::Ok => Ok(Json(SourceApplied {
            version: ack.config_version,
            source: name,
        })),
        AckResult::SourceRejected(why) => Err(ApiError::Refused(format!("{name}: {why}"))),
        other => Err(ApiError::Refused(format!("{name}: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(json: &str) -> ConfigChange {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_detector_and_its_settings_are_chosen_and_checked() {
        let adaptive = Baseline::Adaptive {
            learn: 600,
            rest: 100,
        };
        // Switching detectors, with their own settings.
        assert_eq!(
            apply_detector(adaptive, &change(r#"{"detector": "zscore"}"#)),
            Ok(Baseline::Window)
        );
        assert_eq!(
            apply_detector(adaptive, &change(r#"{"rest": 50}"#)),
            Ok(Baseline::Adaptive {
                learn: 600,
                rest: 50
            })
        );
        assert_eq!(
            apply_detector(
                Baseline::Window,
                &change(r#"{"detector": "seasonal", "seasonal_period": 288, "alpha": 0.1}"#)
            ),
            Ok(Baseline::Seasonal {
                period: 288,
                alpha: 0.1
            })
        );
        assert_eq!(
            apply_detector(Baseline::Window, &change(r#"{"detector": "adaptive"}"#)),
            Ok(adaptive)
        );
        // The old API: a period chooses the seasonal detector, null the plain window.
        assert_eq!(
            apply_detector(adaptive, &change(r#"{"seasonal_period": 50}"#)),
            Ok(Baseline::Seasonal {
                period: 50,
                alpha: crate::model::detector::DEFAULT_ALPHA
            })
        );
        assert_eq!(
            apply_detector(adaptive, &change(r#"{"seasonal_period": null}"#)),
            Ok(Baseline::Window)
        );
        // Settings the chosen detector does not have are refused, with the reason.
        let e = apply_detector(Baseline::Window, &change(r#"{"rest": 50}"#)).unwrap_err();
        assert!(
            e.contains("rest applies to the adaptive detector only"),
            "{e}"
        );
        let e = apply_detector(adaptive, &change(r#"{"alpha": 0.5}"#)).unwrap_err();
        assert!(
            e.contains("alpha applies to the seasonal detector only"),
            "{e}"
        );
        let e = apply_detector(adaptive, &change(r#"{"detector": "seasonal"}"#)).unwrap_err();
        assert!(e.contains("needs its period"), "{e}");
        assert!(serde_json::from_str::<ConfigChange>(r#"{"detector": "magic"}"#).is_err());
    }
}
