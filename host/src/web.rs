//! The dashboard's server: one page with its assets embedded in the binary (works offline), a
//! WebSocket of live updates, and a small JSON API.
//!
//! | route | |
//! |---|---|
//! | `GET /` | the dashboard |
//! | `GET /ws` | live updates: a snapshot, then batches of points every 50 ms, status twice a second, config changes |
//! | `GET /api/status` | device, connection, counters, bad frames per kind, live precision/recall, logs |
//! | `GET /api/samples?from=&to=&limit=` | points with chart time (ms since epoch) in `[from, to]` |
//! | `GET /api/anomalies?limit=` | the latest anomalies |
//! | `GET /api/config` | the detector config in force, its version, the device's window capacity |
//! | `POST /api/config` | change window / threshold / warm-up / policy; answers once the device acknowledges |
//!
//! Updates are serialised once and fanned out with a bounded `broadcast` channel: a browser
//! that falls behind skips ahead (and is told how much it missed); it never slows ingest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use zscope_core::AnomalyPolicy;
use zscope_core::wire::{AckResult, HostMsg};

use crate::source::Shared;
use crate::state::{Point, State as DaemonState};

/// Points sent to a browser when it connects (its chart's history).
pub const SNAPSHOT_POINTS: usize = 10_000;
/// Points in one WebSocket message at most.
pub const MAX_BATCH: usize = 2_000;
/// How long `POST /api/config` waits for the device's acknowledgement.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    token: Option<Arc<str>>,
}

/// Every API error: a status code and a message that says what to do.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The router, with its state.
pub fn router(shared: Arc<Shared>, token: Option<String>) -> Router {
    let app = App {
        shared,
        token: token.map(Arc::from),
    };
    Router::new()
        .route("/", get(|| asset("index.html")))
        .route("/app.js", get(|| asset("app.js")))
        .route("/app.css", get(|| asset("app.css")))
        .route(
            "/vendor/uPlot.iife.min.js",
            get(|| asset("uPlot.iife.min.js")),
        )
        .route("/vendor/uPlot.min.css", get(|| asset("uPlot.min.css")))
        .route("/vendor/uPlot.LICENSE", get(|| asset("uPlot.LICENSE")))
        .route("/ws", get(ws))
        .route("/api/status", get(status))
        .route("/api/samples", get(samples))
        .route("/api/anomalies", get(anomalies))
        .route("/api/config", get(config).post(set_config))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Writes need the token whenever one is set; reads need it from anywhere but loopback.
async fn guard(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(token) = &app.token {
        let write = request.method() != Method::GET && request.method() != Method::HEAD;
        let query_token = request.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .map(str::to_string)
        });
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
            .or(query_token);
        let ok = given.as_deref() == Some(token.as_ref());
        if !ok && (write || !peer.ip().is_loopback()) {
            return Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "this needs the daemon's token: send `Authorization: Bearer TOKEN`".into(),
            ));
        }
    }
    Ok(next.run(request).await)
}

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const UPLOT_JS: &str = include_str!("../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/vendor/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../assets/vendor/uplot/LICENSE");

async fn asset(name: &str) -> Response {
    let (body, kind) = match name {
        "index.html" => (INDEX, "text/html; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "uPlot.iife.min.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uPlot.min.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        "uPlot.LICENSE" => (UPLOT_LICENSE, "text/plain; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A point as the page receives it: `[t, value, mean, std, z, threshold, flags, seq,
/// lost_before, config_version]`.
fn compact(p: &Point) -> Value {
    json!([
        p.t,
        p.value,
        p.mean,
        p.std,
        p.z,
        p.threshold,
        p.flags,
        p.seq,
        p.lost_before,
        p.config_version
    ])
}

fn status_json(shared: &Shared, s: &DaemonState) -> Value {
    let has_truth = s.device.as_ref().is_some_and(|d| d.has_truth);
    json!({
        "port": s.port,
        "connected": s.connected,
        "link_error": s.link_error,
        "device": s.device,
        "device_status": s.device_status,
        "config_version": s.config_version,
        "config": s.config(),
        "counters": s.counters,
        "bad_frames": {
            "total": s.decode.oversize + s.decode.cobs + s.decode.truncated + s.decode.crc
                + s.decode.malformed + s.decode.version,
            "oversize": s.decode.oversize,
            "cobs": s.decode.cobs,
            "truncated": s.decode.truncated,
            "crc": s.decode.crc,
            "malformed": s.decode.malformed,
            "version": s.decode.version,
        },
        "bytes": s.decode.bytes,
        "rate": s.rate,
        "quality": has_truth.then_some(s.quality),
        "logs": s.logs,
        "uptime_s": shared.started.elapsed().as_secs(),
    })
}

async fn status(State(app): State<App>) -> Json<Value> {
    let state = app.shared.state();
    Json(status_json(&app.shared, &state))
}

#[derive(Deserialize)]
struct Range {
    from: Option<f64>,
    to: Option<f64>,
    limit: Option<usize>,
}

async fn samples(State(app): State<App>, Query(q): Query<Range>) -> Json<Vec<Point>> {
    let state = app.shared.state();
    let limit = q
        .limit
        .unwrap_or(SNAPSHOT_POINTS)
        .min(crate::state::HISTORY);
    Json(state.range(q.from.unwrap_or(f64::MIN), q.to.unwrap_or(f64::MAX), limit))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn anomalies(State(app): State<App>, Query(q): Query<Limit>) -> Json<Vec<Point>> {
    let state = app.shared.state();
    let n = q.limit.unwrap_or(1000);
    let skip = state.anomalies.len().saturating_sub(n);
    Json(state.anomalies.iter().skip(skip).copied().collect())
}

fn config_json(s: &DaemonState) -> Value {
    json!({
        "version": s.config_version,
        "config": s.config(),
        "capacity": s.device.as_ref().map(|d| d.capacity),
    })
}

async fn config(State(app): State<App>) -> Json<Value> {
    Json(config_json(&app.shared.state()))
}

/// A config change: any field left out keeps its current value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    window: Option<u32>,
    threshold: Option<f32>,
    warmup: Option<Option<u32>>,
    max_run: Option<Option<u32>>,
}

async fn set_config(
    State(app): State<App>,
    body: Result<Json<ConfigChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(change) = body.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "{}: send JSON like {{\"threshold\": 3.5, \"window\": 128}}",
                e.body_text()
            ),
        )
    })?;
    let (current, capacity, connected) = {
        let s = app.shared.state();
        (
            s.config(),
            s.device.as_ref().map(|d| d.capacity),
            s.connected,
        )
    };
    let (Some(current), Some(capacity), true) = (current, capacity, connected) else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "no device connected: the config cannot be changed now".into(),
        ));
    };
    let mut config = current;
    if let Some(w) = change.window {
        config.window = w;
    }
    if let Some(t) = change.threshold {
        config.threshold = t;
    }
    if let Some(w) = change.warmup {
        config.warmup = w;
    }
    if let Some(m) = change.max_run {
        config.policy = match m {
            Some(max_run) => AnomalyPolicy::Exclude { max_run },
            None => AnomalyPolicy::Include,
        };
    }
    config
        .validate(capacity as usize)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("invalid config: {e}")))?;
    let rx = app.shared.command(|id| HostMsg::SetConfig { id, config });
    let ack = match tokio::time::timeout(ACK_TIMEOUT, rx).await {
        Ok(Ok(ack)) => ack,
        Ok(Err(_)) => {
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the device link is down: the config was not sent".into(),
            ));
        }
        Err(_) => {
            return Err(ApiError(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the device did not acknowledge within {ACK_TIMEOUT:?}"),
            ));
        }
    };
    match ack.result {
        AckResult::Ok => Ok(Json(json!({
            "version": ack.config_version,
            "config": ack.config,
        }))),
        AckResult::Rejected(e) => Err(ApiError(
            StatusCode::CONFLICT,
            format!("the device refused the config: {e}"),
        )),
        AckResult::RateRejected { hz, max } => Err(ApiError(
            StatusCode::CONFLICT,
            format!("the device refused rate {hz} Hz (max {max})"),
        )),
    }
}

async fn ws(State(app): State<App>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| client(app.shared, socket))
}

async fn client(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut updates = shared.updates.subscribe();
    let snapshot = {
        let s = shared.state();
        let skip = s.history.len().saturating_sub(SNAPSHOT_POINTS);
        let points: Vec<Value> = s.history.iter().skip(skip).map(compact).collect();
        json!({
            "type": "snapshot",
            "status": status_json(&shared, &s),
            "config": config_json(&s),
            "points": points,
        })
        .to_string()
    };
    if socket.send(Message::Text(snapshot.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(text) => {
                    if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    let note = json!({ "type": "lagged", "skipped_updates": skipped }).to_string();
                    if socket.send(Message::Text(note.into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Every 50 ms: push new points (and config changes) to every browser; status twice a second.
pub async fn broadcaster(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen_config = u64::MAX;
    let mut n = 0u64;
    loop {
        tick.tick().await;
        n += 1;
        let mut messages = Vec::new();
        {
            let mut s = shared.state();
            let points = std::mem::take(&mut s.outbox);
            // At most MAX_BATCH points a message, so the channel's memory is bounded
            // (32 messages) however fast ingest runs.
            for chunk in points.chunks(MAX_BATCH) {
                let compacted: Vec<Value> = chunk.iter().map(compact).collect();
                messages.push(json!({ "type": "points", "points": compacted }).to_string());
            }
            if s.config_events != seen_config {
                seen_config = s.config_events;
                let mut c = config_json(&s);
                c["type"] = json!("config");
                messages.push(c.to_string());
            }
            if n.is_multiple_of(10) {
                let mut st = status_json(&shared, &s);
                st["type"] = json!("status");
                messages.push(st.to_string());
            }
        }
        for m in messages {
            // No browser connected is fine.
            let _ = shared.updates.send(Arc::from(m));
        }
    }
}
