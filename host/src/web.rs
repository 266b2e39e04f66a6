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
use zscope_core::wire::{AckResult, HostMsg};
use zscope_core::{AnomalyPolicy, Baseline};

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
    /// Host names requests may be addressed to; `None`: any.
    hosts: Option<Arc<[String]>>,
    /// Live WebSocket clients.
    ws_clients: Arc<std::sync::atomic::AtomicUsize>,
}

/// Live WebSocket clients at most; one more is refused (503) with the reason.
pub const MAX_WS_CLIENTS: usize = 256;

/// A WebSocket client's place, given back when it goes (or its upgrade never happens).
struct WsSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for WsSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Every API error: a status code and a message that says what to do.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The router, with its state: `token` guards writes (and reads off loopback), `hosts` are
/// the names requests may be addressed to (`None`: any).
pub fn router(shared: Arc<Shared>, token: Option<String>, hosts: Option<Vec<String>>) -> Router {
    let app = App {
        shared,
        token: token.map(Arc::from),
        hosts: hosts.map(Arc::from),
        ws_clients: Arc::default(),
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
        .layer(middleware::from_fn_with_state(app.clone(), addressed))
        .layer(middleware::map_response(secure_headers))
        .with_state(app)
}

/// What every response says about how a browser may use it: only this origin's scripts,
/// styles and connections; never inside another site's frame; types as declared.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// The host name in a `Host` header or an origin's authority, lowercased, without its port.
fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if a.starts_with('[') {
        return a.find(']').map_or(a.clone(), |end| a[..=end].to_string());
    }
    match a.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
        _ => a,
    }
}

/// Requests must be addressed to one of the daemon's names, and come from a page of one
/// (when the browser says where from): a web page elsewhere cannot rebind its own name to
/// 127.0.0.1 and drive the daemon, nor open its WebSocket.
async fn addressed(
    State(app): State<App>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(hosts) = &app.hosts else {
        return Ok(next.run(request).await);
    };
    let allowed = |name: &str| hosts.iter().any(|h| h == name);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_name)
        .or_else(|| request.uri().host().map(host_name))
        .unwrap_or_default();
    let refuse = |what: String| {
        ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "{what}: zscope answers to {} (start it with --allow-host NAME for another name)",
                hosts.join(", ")
            ),
        )
    };
    if !allowed(&host) {
        return Err(refuse(format!(
            "a request addressed to '{host}' is refused"
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let name = origin
            .split_once("://")
            .map(|(_, authority)| host_name(authority))
            .unwrap_or_default();
        if !allowed(&name) {
            return Err(refuse(format!(
                "a request from a page at '{origin}' is refused"
            )));
        }
    }
    Ok(next.run(request).await)
}

/// How long a client may take to send a request's headers before its connection is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed as they arrive (a slow client cannot take
/// every file descriptor).
pub const MAX_CONNECTIONS: usize = 1024;

/// Serve `app` on `listener` until `stop` completes: HTTP/1 (WebSocket upgrades included),
/// every connection's headers due within [`HEADER_TIMEOUT`], at most [`MAX_CONNECTIONS`] at
/// once. On `stop`, connections are asked to finish and given a second.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let (closing_tx, closing_rx) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, or a connection reset while queued: go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("{peer}: refused, {MAX_CONNECTIONS} connections already open");
            drop(stream);
            continue;
        };
        let app = app.clone();
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(req.map(axum::body::Body::new))
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("{peer}: {e}");
                    }
                }
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
            drop(slot);
        });
    }
    let _ = closing_tx.send(true);
    // Give the connections their second to finish.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        slots.acquire_many(MAX_CONNECTIONS as u32),
    )
    .await;
}

/// Name of the cookie that carries the token for a browser.
const TOKEN_COOKIE: &str = "zscope_token";

/// Writes need the token whenever one is set; reads need it from anywhere but loopback.
///
/// The token comes as `Authorization: Bearer T`, or (for a browser, which cannot set headers on
/// its script, fetch and WebSocket requests) once as `?token=T` in the page's URL, after which
/// an HttpOnly, SameSite=Strict cookie carries it.
async fn guard(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = &app.token else {
        return Ok(next.run(request).await);
    };
    let write = request.method() != Method::GET && request.method() != Method::HEAD;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='));
    let query = request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(|t| {
                // As a browser encodes it (`+` is a space in a query).
                let t = t.replace('+', " ");
                percent_encoding::percent_decode_str(&t)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    // Compared in constant time: how long a wrong guess takes says nothing about the token.
    let matches = |given: Option<&str>| {
        given.is_some_and(|g| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                g.as_bytes(),
                token.as_bytes(),
            ))
        })
    };
    let from_query = matches(query.as_deref());
    if !(matches(bearer) || matches(cookie) || from_query) && (write || !peer.ip().is_loopback()) {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "this needs the daemon's token: send `Authorization: Bearer TOKEN`, or open the \
             page once as /?token=TOKEN"
                .into(),
        ));
    }
    let mut response = next.run(request).await;
    if from_query
        && let Ok(value) = header::HeaderValue::from_str(&format!(
            "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
        ))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
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
        "season_capacity": s.device.as_ref().map(|d| d.season_capacity),
    })
}

async fn config(State(app): State<App>) -> Json<Value> {
    Json(config_json(&app.shared.state()))
}

/// A config change: any field left out keeps its current value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    /// `adaptive`, `zscore` or `seasonal` (unset: the one in force, or as `seasonal_period`
    /// implies).
    detector: Option<crate::cli::Method>,
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

/// The detector `change` asks for, from the one in force: refused (with the reason) when it
/// names a setting that the chosen detector does not have.
fn apply_detector(current: Baseline, change: &ConfigChange) -> Result<Baseline, String> {
    use crate::cli::Method;
    let method = change
        .detector
        .unwrap_or(match (change.seasonal_period, current) {
            (Some(Some(_)), _) => Method::Seasonal,
            (Some(None), _) | (None, Baseline::Window) => Method::Zscore,
            (None, Baseline::Seasonal { .. }) => Method::Seasonal,
            (None, Baseline::Adaptive { .. }) => Method::Adaptive,
        });
    let not_for =
        |field: &str, what: &str| Err(format!("{field} applies to the {what} detector only"));
    if method != Method::Adaptive {
        if change.learn.is_some() {
            return not_for("learn", "adaptive");
        }
        if change.rest.is_some() {
            return not_for("rest", "adaptive");
        }
    }
    if method != Method::Seasonal {
        if matches!(change.seasonal_period, Some(Some(_))) {
            return not_for("seasonal_period", "seasonal");
        }
        if change.alpha.is_some() {
            return not_for("alpha", "seasonal");
        }
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
                _ => (None, crate::cli::DEFAULT_ALPHA),
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

async fn set_config(
    State(app): State<App>,
    body: Result<Json<ConfigChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(change) = body.map_err(|e| {
        ApiError(
            // 413 for a body over the limit, 415 without a JSON content type, 400 for the rest.
            match e.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                _ => StatusCode::BAD_REQUEST,
            },
            format!(
                "{}: send JSON like {{\"threshold\": 3.5, \"window\": 128}}",
                e.body_text()
            ),
        )
    })?;
    if let Some(why) = app.shared.state().read_only.clone() {
        return Err(ApiError(StatusCode::CONFLICT, why));
    }
    let (current, capacity, season_capacity, connected) = {
        let s = app.shared.state();
        (
            s.config(),
            s.device.as_ref().map(|d| d.capacity),
            s.device.as_ref().map_or(0, |d| d.season_capacity),
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
    config.baseline = apply_detector(config.baseline, &change)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("invalid config: {e}")))?;
    if let Some(m) = change.max_run {
        config.policy = match m {
            Some(max_run) => AnomalyPolicy::Exclude { max_run },
            None => AnomalyPolicy::Include,
        };
    }
    config
        .validate(capacity as usize)
        .and_then(|()| match config.baseline {
            Baseline::Seasonal { period, .. } if !(1..=season_capacity).contains(&period) => {
                Err(zscope_core::ConfigError::Period {
                    period,
                    capacity: season_capacity,
                })
            }
            Baseline::Seasonal { alpha, .. } if !(alpha > 0.0 && alpha <= 1.0) => {
                Err(zscope_core::ConfigError::Alpha)
            }
            Baseline::Adaptive { learn, .. } if !(16..=100_000).contains(&learn) => {
                Err(zscope_core::ConfigError::Learn { learn })
            }
            _ => Ok(()),
        })
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
    let before = app
        .ws_clients
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let slot = WsSlot(app.ws_clients.clone());
    if before >= MAX_WS_CLIENTS {
        return ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{MAX_WS_CLIENTS} live pages are connected already: close one, or use the JSON \
                 API (/api/samples, /api/status) to read"
            ),
        )
        .into_response();
    }
    upgrade.on_upgrade(move |socket| async move {
        let _slot = slot;
        client(app.shared, socket).await;
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        peer: [u8; 4],
        extra: Option<(&str, &str)>,
    ) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        let mut req = req
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
        app.clone().oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn the_token_guards_writes_everywhere_and_reads_off_loopback() {
        let (shared, _commands) = Shared::new("test".into());
        let app = router(shared, Some("s3cret".into()), None);
        let local = [127, 0, 0, 1];
        let remote = [192, 0, 2, 7];
        // Reads from loopback are open; writes are not.
        assert_eq!(
            call(&app, "GET", "/api/status", local, None).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "POST", "/api/config", local, None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        // With the token, the write gets through the guard (503: no device here).
        let bearer = Some(("authorization", "Bearer s3cret"));
        let wrong = Some(("authorization", "Bearer nope"));
        assert_eq!(
            call(&app, "POST", "/api/config", local, bearer)
                .await
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(&app, "POST", "/api/config", local, wrong)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        // From elsewhere, even reads need it.
        assert_eq!(
            call(&app, "GET", "/", remote, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&app, "GET", "/api/status", remote, bearer)
                .await
                .status(),
            StatusCode::OK
        );
        // A browser opens /?token=… once and gets a cookie that works for the rest.
        let first = call(&app, "GET", "/?token=s3cret", remote, None).await;
        assert_eq!(first.status(), StatusCode::OK);
        let cookie = first.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let jar = cookie.split(';').next().unwrap();
        assert_eq!(
            call(&app, "GET", "/app.js", remote, Some(("cookie", jar)))
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            call(
                &app,
                "GET",
                "/app.js",
                remote,
                Some(("cookie", "zscope_token=x"))
            )
            .await
            .status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn without_a_token_everything_is_open_on_loopback() {
        let (shared, _commands) = Shared::new("test".into());
        let app = router(shared, None, None);
        let res = call(&app, "GET", "/api/config", [127, 0, 0, 1], None).await;
        assert_eq!(res.status(), StatusCode::OK);
        // Bad JSON is a 400 that says what to send.
        let mut req = Request::builder()
            .method("POST")
            .uri("/api/config")
            .header("content-type", "application/json")
            .body(Body::from("{\"threshold\": \"high\"}"))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 1))));
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("send JSON like"), "{text}");
    }

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
                alpha: crate::cli::DEFAULT_ALPHA
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

    /// A request with any headers and body, from loopback.
    async fn send(
        app: &Router,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Response {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(body).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        app.clone().oneshot(req).await.unwrap()
    }

    fn loopback_names() -> Option<Vec<String>> {
        Some(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
    }

    /// DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1 sends
    /// `Host: evil.example`; a page elsewhere sends its `Origin`. Both are refused (403, with
    /// the names that are answered), before any handler runs; the daemon's own names pass.
    #[tokio::test]
    async fn requests_for_other_names_or_from_other_pages_are_refused() {
        let (shared, _commands) = Shared::new("test".into());
        let app = router(shared, None, loopback_names());
        let status = |r: Response| r.status();
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
        ] {
            let r = send(&app, "GET", "/api/status", &[("host", host)], Body::empty()).await;
            assert_eq!(status(r), StatusCode::OK, "{host}");
        }
        let r = send(
            &app,
            "POST",
            "/api/config",
            &[
                ("host", "evil.example:8080"),
                ("content-type", "application/json"),
            ],
            Body::from(r#"{"threshold": 9}"#),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("'evil.example' is refused") && text.contains("--allow-host"),
            "{text}"
        );
        for origin in [
            "http://evil.example",
            "null",
            "http://127.0.0.1.evil.example:8080",
        ] {
            let r = send(
                &app,
                "GET",
                "/ws",
                &[("host", "127.0.0.1:8080"), ("origin", origin)],
                Body::empty(),
            )
            .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin}");
        }
        let r = send(
            &app,
            "GET",
            "/api/status",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://localhost:8080"),
            ],
            Body::empty(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        // Listening on all interfaces with no names given: any name (the token guards).
        let (shared, _commands) = Shared::new("test".into());
        let open = router(shared, Some("t".into()), None);
        let r = send(
            &open,
            "GET",
            "/",
            &[("host", "box.lan:8080")],
            Body::empty(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn every_response_carries_the_security_headers() {
        let (shared, _commands) = Shared::new("test".into());
        let app = router(shared, None, loopback_names());
        for uri in ["/", "/app.js", "/api/status", "/nowhere"] {
            let r = send(&app, "GET", uri, &[("host", "127.0.0.1")], Body::empty()).await;
            let h = r.headers();
            assert_eq!(h["x-frame-options"], "DENY", "{uri}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(
                csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
                "{uri}"
            );
        }
        // Refusals carry them too.
        let r = send(&app, "GET", "/", &[("host", "evil.example")], Body::empty()).await;
        assert_eq!(r.headers()["x-frame-options"], "DENY");
    }

    #[tokio::test]
    async fn an_oversized_body_is_413_and_the_token_is_read_as_browsers_send_it() {
        let (shared, _commands) = Shared::new("test".into());
        let app = router(shared, Some("s3cr+t/=".into()), loopback_names());
        let huge = format!(r#"{{"threshold": 3, "pad": "{}"}}"#, "x".repeat(3 << 20));
        let r = send(
            &app,
            "POST",
            "/api/config",
            &[
                ("host", "127.0.0.1"),
                ("content-type", "application/json"),
                ("authorization", "Bearer s3cr+t/="),
            ],
            Body::from(huge),
        )
        .await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // ?token= percent-encoded (as a browser's address bar sends it) opens the page and sets
        // the cookie; the raw form (with '+' read as a space) does not.
        let r = send(
            &app,
            "POST",
            "/api/config?token=s3cr%2Bt%2F%3D",
            &[("host", "127.0.0.1")],
            Body::empty(),
        )
        .await;
        assert_ne!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "the decoded token matches"
        );
        let r = send(
            &app,
            "POST",
            "/api/config?token=s3cr+t/=",
            &[("host", "127.0.0.1")],
            Body::empty(),
        )
        .await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "'+' is a space in a query"
        );
    }
}
