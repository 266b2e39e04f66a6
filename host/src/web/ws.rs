//! The WebSocket: a snapshot when a page connects, then what the broadcaster sends every
//! [`BATCH_EVERY`] (10 ms): new points (as columns), config changes, and the status twice a
//! second.
//!
//! Updates are encoded once and fanned out with a bounded `broadcast` channel: a page that
//! falls behind skips ahead (and is told how much it missed); it never slows ingest, and what
//! the pages hold is bounded by the channel ([`QUEUE`] updates of at most [`MAX_BATCH`]
//! points, shared by all).
//! At most [`MAX_WS_CLIENTS`] pages at once; one more is refused (503) with the reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::{App, Dev};
use crate::daemon::state::ConfigView;
use crate::daemon::{Points, Shared, StatusView};

/// Points sent to a page when it connects (its chart's history).
pub const SNAPSHOT_POINTS: usize = 10_000;
/// Points in one WebSocket message at most (about 40 KB of JSON): a connection's write buffer
/// grows to its largest message and keeps that size, so messages stay small; a snapshot goes
/// out as several.
pub const MAX_BATCH: usize = 400;
/// Updates a page may fall behind by before it skips ahead (and is told).
pub const QUEUE: usize = 128;
/// Live WebSocket clients at most; one more is refused (503) with the reason.
pub const MAX_WS_CLIENTS: usize = 256;

/// One WebSocket message, `{"type": "...", ...}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Update {
    /// What a page starts from.
    Snapshot {
        status: Box<StatusView>,
        config: ConfigView,
        points: Points,
    },
    /// New points.
    Points { points: Points },
    /// The config changed.
    Config(ConfigView),
    /// The status, twice a second.
    Status(Box<StatusView>),
    /// This page fell behind and missed updates.
    Lagged { skipped_updates: u64 },
}

impl Update {
    fn encode(&self) -> Utf8Bytes {
        // Our own types always serialise.
        Utf8Bytes::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// A WebSocket client's place, given back when it goes (or its upgrade never happens).
struct WsSlot(Arc<AtomicUsize>);

impl Drop for WsSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /ws`: a place for the page, or 503 past [`MAX_WS_CLIENTS`].
pub(super) async fn ws(
    State(app): State<App>,
    Dev(dev): Dev,
    upgrade: WebSocketUpgrade,
) -> Response {
    let before = app.ws_clients.fetch_add(1, Ordering::SeqCst);
    let slot = WsSlot(app.ws_clients.clone());
    if before >= MAX_WS_CLIENTS {
        return ApiError::TooManyClients(MAX_WS_CLIENTS).into_response();
    }
    upgrade
        // A page sends nothing but pings and a close: small read buffers. Writes go out at
        // once rather than gathering in a 128 KiB buffer per client.
        .read_buffer_size(4 * 1024)
        .max_message_size(64 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            client(dev.shared, socket).await;
        })
}

async fn client(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut updates = shared.updates.subscribe();
    let status = Box::new(shared.status());
    let (config, points) = {
        let s = shared.state();
        (s.config_view(), s.latest_points(SNAPSHOT_POINTS))
    };
    // The snapshot's first batch, then the rest as ordinary batches.
    let mut batches = points.chunks(MAX_BATCH);
    let first = Update::Snapshot {
        status,
        config,
        points: batches.next().unwrap_or_default().iter().collect(),
    };
    let rest = batches.map(|chunk| Update::Points {
        points: chunk.iter().collect(),
    });
    for update in std::iter::once(first).chain(rest) {
        if socket.send(Message::Text(update.encode())).await.is_err() {
            return;
        }
    }
    drop(points);
    loop {
        tokio::select! {
            update = updates.recv() => {
                let text = match update {
                    Ok(text) => text,
                    Err(RecvError::Lagged(skipped)) => {
                        Update::Lagged { skipped_updates: skipped }.encode()
                    }
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(text)).await.is_err() {
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// How often new points go out to the pages (and to MQTT): short, so a point reaches a page
/// (or, through a broker, a central daemon's page) within tens of milliseconds.
pub const BATCH_EVERY: Duration = Duration::from_millis(10);

/// Every [`BATCH_EVERY`]: push new points (and config changes) to every page; status twice a
/// second.
/// What is sent is copied out under the lock and encoded after it is released.
pub async fn broadcaster(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(BATCH_EVERY);
    let status_every = (500 / BATCH_EVERY.as_millis().max(1)) as u64;
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen_config = u64::MAX;
    let mut n = 0u64;
    loop {
        tick.tick().await;
        n += 1;
        let (points, config) = {
            let mut s = shared.state();
            let config = (s.config_events() != seen_config).then(|| {
                seen_config = s.config_events();
                s.config_view()
            });
            (s.take_outbox(), config)
        };
        let status = n
            .is_multiple_of(status_every)
            .then(|| Box::new(shared.status()));
        // At most MAX_BATCH points a message, so the channel's memory is bounded (32
        // messages) however fast ingest runs.
        let mut messages: Vec<Update> = points
            .chunks(MAX_BATCH)
            .map(|chunk| Update::Points {
                points: chunk.iter().collect(),
            })
            .collect();
        messages.extend(config.map(Update::Config));
        messages.extend(status.map(Update::Status));
        for m in messages {
            // No page connected is fine.
            let _ = shared.updates.send(m.encode());
        }
    }
}
