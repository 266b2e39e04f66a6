//! The WebSocket: a snapshot when a page connects, then the device's updates as its pump
//! ([`crate::device::pump`]) sends them every 10 ms: new points (as columns), config changes,
//! and the status twice a second.
//!
//! Updates are encoded once and fanned out with the hub's bounded `broadcast` channel: a page
//! that falls behind skips ahead (and is told how much it missed); it never slows ingest, and
//! what the pages hold is bounded by the channel ([`UPDATE_BACKLOG`] updates of at most
//! [`MAX_BATCH`] points, shared by all).
//! At most [`MAX_WS_CLIENTS`] pages at once; one more is refused (503) with the reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::extract::{App, Dev};
use crate::device::{Hub, Update};
pub use crate::device::{MAX_BATCH, UPDATE_BACKLOG};
use crate::model::{ConfigView, Points, StatusView};

/// Points sent to a page when it connects (its chart's history).
pub const SNAPSHOT_POINTS: usize = 10_000;
/// Points in one message of the snapshot: small, since a page that never reads holds the
/// message its socket would not take (about 10 KB of JSON).
pub const SNAPSHOT_BATCH: usize = 100;
/// Live WebSocket clients at most; one more is refused (503) with the reason.
pub const MAX_WS_CLIENTS: usize = 256;

/// A message only a page gets, `{"type": "...", ...}` like the device's updates.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum PageMessage {
    /// What a page starts from.
    Snapshot {
        status: Box<StatusView>,
        config: ConfigView,
        points: Box<Points>,
    },
    /// This page fell behind and missed updates.
    Lagged { skipped_updates: u64 },
}

fn encode(message: &impl Serialize) -> Utf8Bytes {
    // Our own types always serialise.
    Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default())
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
            client(dev.hub, socket).await;
        })
}

async fn client(hub: Arc<Hub>, mut socket: WebSocket) {
    let mut updates = hub.updates.subscribe();
    let status = Box::new(hub.status());
    // The snapshot: the latest points when the page came, sent a batch at a time and each
    // batch taken from the history only when the one before is sent, so a page that does not
    // read holds one batch, not its whole snapshot.
    let (config, first, mut next, end) = {
        let s = hub.state();
        let end = s.history_end();
        let start = end.saturating_sub(SNAPSHOT_POINTS as u64);
        let (points, next) = s.history_chunk(start, end, SNAPSHOT_BATCH);
        (s.config_view(), points, next, end)
    };
    let first = encode(&PageMessage::Snapshot {
        status,
        config,
        points: Box::new(first),
    });
    if socket.send(Message::Text(first)).await.is_err() {
        return;
    }
    while next < end {
        let (points, after) = hub.state().history_chunk(next, end, SNAPSHOT_BATCH);
        if after == next {
            break;
        }
        next = after;
        let text = encode(&Update::Points {
            points: Box::new(points),
        });
        if socket.send(Message::Text(text)).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            update = updates.recv() => {
                let (text, arrived_us) = match update {
                    // Points the snapshot had: skipped (all of them), or the rest sent.
                    Ok(message) => match (&message.update, message.first) {
                        (Update::Points { points }, Some(first)) if first < end => {
                            let after = first + points.len() as u64;
                            if after <= end {
                                continue;
                            }
                            let (rest, _) = hub.state().history_chunk(end, after, MAX_BATCH);
                            let rest = encode(&Update::Points { points: Box::new(rest) });
                            (rest, message.arrived_us)
                        }
                        _ => (message.json.clone(), message.arrived_us),
                    },
                    Err(RecvError::Lagged(skipped)) => {
                        (encode(&PageMessage::Lagged { skipped_updates: skipped }), None)
                    }
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(text)).await.is_err() {
                    return;
                }
                if let Some(arrived_us) = arrived_us {
                    hub.page_sent(arrived_us);
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
