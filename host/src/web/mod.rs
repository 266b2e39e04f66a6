//! The dashboard's server: the page ([`assets`]), the live WebSocket ([`ws`]), the JSON API
//! ([`api`]), Prometheus' scrape ([`metrics`]), behind the edge's checks ([`auth`]), every
//! failure an [`ApiError`] ([`error`]).
//!
//! | route | |
//! |---|---|
//! | `GET /` | the dashboard (and its scripts and styles, embedded in the binary) |
//! | `GET /ws` | live updates: a snapshot, then points every 10 ms, status twice a second, config changes |
//! | `GET /api/...`, `POST /api/config` | see [`api`] |
//! | `GET /metrics` | every device's counters and health for Prometheus ([`metrics`]) |
//!
//! Served by [`serve_http`]: HTTP/1 with a header-read timeout and a connection cap.

pub mod api;
pub mod assets;
pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use axum::body::Body;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware;
use axum::routing::{get, post};

pub use error::ApiError;

use crate::device::{Registry, lock};
use assets::asset;
use extract::App;

/// The router, with its state: the devices (the first answers the routes without a device
/// name), `token` guards writes (and reads off loopback), `hosts` are the names requests may
/// be addressed to (`None`: any).
pub fn router(devices: Arc<Registry>, token: Option<String>, hosts: Option<Vec<String>>) -> Router {
    let app = App {
        devices,
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
        .route("/ws", get(ws::ws))
        .route("/metrics", get(metrics::metrics))
        .route("/api/devices", get(api::devices))
        .route("/api/fleet", get(api::fleet))
        .route("/api/status", get(api::status))
        .route("/api/samples", get(api::samples))
        .route("/api/anomalies", get(api::anomalies))
        .route("/api/config", get(api::config).post(api::set_config))
        .route("/api/source", post(api::set_source))
        .route("/api/devices/{device}/ws", get(ws::ws))
        .route("/api/devices/{device}/status", get(api::status))
        .route("/api/devices/{device}/samples", get(api::samples))
        .route("/api/devices/{device}/anomalies", get(api::anomalies))
        .route(
            "/api/devices/{device}/config",
            get(api::config).post(api::set_config),
        )
        .route("/api/devices/{device}/source", post(api::set_source))
        .layer(middleware::from_fn_with_state(app.clone(), auth::guard))
        .layer(middleware::from_fn_with_state(app.clone(), auth::addressed))
        .layer(middleware::map_response(auth::secure_headers))
        .with_state(app)
}

/// How long a client may take to send a request's headers before its connection is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once at most (a slow client cannot take every file descriptor): the
/// cap is this, or fewer when the process's descriptor limit leaves less ([`connection_cap`]).
/// At the cap, the oldest connection that is not being served (still sending a request's
/// headers, or idle between requests) is closed to make room; only when every connection is
/// being served is a new one turned away.
pub const MAX_CONNECTIONS: usize = 1024;

/// Descriptors kept for everything but connections: logs, stores, serial ports and ptys, MQTT,
/// the emulators' threads.
pub const FD_RESERVE: usize = 64;

/// The connection cap: the process's soft descriptor limit raised to its hard one (as far as
/// it goes), less [`FD_RESERVE`], at most [`MAX_CONNECTIONS`] and at least 16.
pub fn connection_cap() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return MAX_CONNECTIONS;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let limit = usize::try_from(soft).unwrap_or(usize::MAX);
    limit.saturating_sub(FD_RESERVE).clamp(16, MAX_CONNECTIONS)
}

/// Kernel send buffer of each connection: a page that stops reading holds this much, not the
/// megabytes loopback autotuning would give it (nor the CPU to fill them).
pub const SEND_BUFFER: u32 = 128 * 1024;

/// A listening socket on `addr` whose connections get [`SEND_BUFFER`] (accepted sockets
/// inherit it).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Connections not being served (sending a request's headers, or idle between requests),
/// oldest first, each with the way to close it.
#[derive(Default)]
struct Unserved {
    next: u64,
    waiting: BTreeMap<u64, Arc<tokio::sync::Notify>>,
}

type SharedUnserved = Arc<std::sync::Mutex<Unserved>>;

/// A connection slot: free at once, or made by closing the oldest unserved connection.
async fn slot(slots: &Arc<Semaphore>, unserved: &SharedUnserved) -> Option<OwnedSemaphorePermit> {
    if let Ok(s) = slots.clone().try_acquire_owned() {
        return Some(s);
    }
    let oldest = lock(unserved).waiting.pop_first();
    let (_, close) = oldest?;
    close.notify_one();
    tokio::time::timeout(Duration::from_millis(100), slots.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// A request's body that, once read to its end, takes its connection off the list of those
/// that may be closed to make room: a client sending its body slowly is as evictable as one
/// sending its headers slowly.
struct Watched {
    inner: hyper::body::Incoming,
    /// The list and the connection's place in it, until the body has ended.
    pending: Option<(SharedUnserved, u64)>,
}

impl Watched {
    /// Watch `body`, off the list at once if it is already at its end.
    fn new(body: hyper::body::Incoming, unserved: &SharedUnserved, id: u64) -> Self {
        let mut watched = Watched {
            inner: body,
            pending: Some((unserved.clone(), id)),
        };
        if hyper::body::Body::is_end_stream(&watched.inner) {
            watched.ended();
        }
        watched
    }

    fn ended(&mut self) {
        if let Some((unserved, id)) = self.pending.take() {
            lock(&unserved).waiting.remove(&id);
        }
    }
}

impl hyper::body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || this.inner.is_end_stream() {
            this.ended();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serve `app` on `listener` until `stop` completes: HTTP/1 (WebSocket upgrades included),
/// every connection's headers due within `header_timeout` ([`HEADER_TIMEOUT`] by default),
/// every request answered within that and [`api::ACK_TIMEOUT`] more (a body that does not come
/// in time gets a 408), at most [`connection_cap`] connections at once (see
/// [`MAX_CONNECTIONS`]). On `stop`, connections are asked to finish and given a second.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()> + Send,
    header_timeout: Duration,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let cap = connection_cap();
    tracing::info!("serving at most {cap} connections at once");
    let request_timeout = header_timeout + api::ACK_TIMEOUT;
    let slots = Arc::new(Semaphore::new(cap));
    let unserved = SharedUnserved::default();
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
        // Small WebSocket messages go out at once (Nagle's delay, with a client's delayed
        // acks, held some back by 40 ms).
        let _ = stream.set_nodelay(true);
        let Some(slot) = slot(&slots, &unserved).await else {
            tracing::warn!("{peer}: refused, {cap} connections already served");
            drop(stream);
            continue;
        };
        let close = Arc::new(tokio::sync::Notify::new());
        let id = {
            let mut u = lock(&unserved);
            let id = u.next;
            u.next += 1;
            u.waiting.insert(id, close.clone());
            id
        };
        let app = app.clone();
        let mut closing = closing_rx.clone();
        let unserved = unserved.clone();
        tokio::spawn(async move {
            let served = unserved.clone();
            let idle = close.clone();
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                // Its headers are in: no longer a candidate for closing once its body is
                // in too (at once when it has none).
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo(peer));
                let body = Body::new(Watched::new(body, &served, id));
                let req = Request::from_parts(parts, body);
                let (app, served, idle) = (app.clone(), served.clone(), idle.clone());
                async move {
                    let answered = tokio::time::timeout(request_timeout, app.oneshot(req)).await;
                    // Answered: idle until its next request's headers, a candidate again.
                    lock(&served).waiting.insert(id, idle);
                    match answered {
                        Ok(response) => response,
                        Err(_) => Ok(axum::response::IntoResponse::into_response(
                            error::ApiError::RequestTimeout(request_timeout),
                        )),
                    }
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            // Closed to make room when asked (only while not being served).
            let evicted = close.notified();
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("{peer}: {e}");
                    }
                }
                () = evicted => tracing::debug!("{peer}: closed to make room (not being served)"),
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
            lock(&unserved).waiting.remove(&id);
            drop(slot);
        });
    }
    let _ = closing_tx.send(true);
    // Give the connections their second to finish.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        slots.acquire_many(u32::try_from(cap).unwrap_or(u32::MAX)),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn one(hub: Arc<crate::device::Hub>) -> Arc<Registry> {
        Registry::new(vec![crate::device::Device {
            name: "test".into(),
            hub,
            remote: false,
        }])
    }
    use axum::http::{StatusCode, header};
    use axum::response::Response;
    use std::net::SocketAddr;
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
        let (hub, _commands) = crate::device::Hub::new("test".into());
        let app = router(one(hub), Some("s3cret".into()), None);
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
        let (hub, _commands) = crate::device::Hub::new("test".into());
        let app = router(one(hub), None, None);
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
        let (hub, _commands) = crate::device::Hub::new("test".into());
        let app = router(one(hub), None, loopback_names());
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
        let (hub, _commands) = crate::device::Hub::new("test".into());
        let open = router(one(hub), Some("t".into()), None);
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
        let (hub, _commands) = crate::device::Hub::new("test".into());
        let app = router(one(hub), None, loopback_names());
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
        let (hub, _commands) = crate::device::Hub::new("test".into());
        let app = router(one(hub), Some("s3cr+t/=".into()), loopback_names());
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
