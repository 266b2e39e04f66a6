//! A device as the host holds it: its [`Hub`] (state, commands, updates), a [`Device`] (its
//! name and hub) in the daemon's [`Registry`], the [`Feed`] its source's thread writes
//! through, and the [`pump`] that turns new points into typed [`Message`]s every
//! [`BATCH_EVERY`].
//!
//! Threads and tasks, and what they share:
//!
//! * the source's thread (serial port, emulator, replay) decodes frames and runs
//!   [`State::ingest`] under the state lock through its [`Feed`]; then, with the lock
//!   released, it hands what ingest produced to the feed's [`Sink`]s (the disk writer, the
//!   notifier) and acknowledgements to the requests waiting for them;
//! * the pump copies new points (and config changes, and the status) out under the lock every
//!   10 ms and sends them, encoded once, to every subscriber of [`Hub::updates`] (the pages'
//!   WebSockets, the MQTT publisher);
//! * the web server's handlers copy typed views out of the state and encode them after the
//!   lock is released.
//!
//! Above the model and below the sinks, sources and web: those that make devices at run time
//! do it through [`Attach`], which the daemon's builder implements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};
use zscope_core::wire::{Ack, HostMsg};

use crate::model::{
    ConfigView, LogStatus, MqttStatus, NotifyStatus, Output, PageLatency, Point, Points, State,
    StatusView, StoreStatus,
};

/// Updates a subscriber of [`Hub::updates`] may fall behind by before it skips ahead (and is
/// told how many it missed).
pub const UPDATE_BACKLOG: usize = 128;

/// The lock of `m`; a panic elsewhere while it was held never makes it unusable (what it
/// guards is plain data, whole after any one change).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] for reading a `RwLock`.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] for writing a `RwLock`.
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A name safe in a URL path and as a folder: other characters become `_`.
pub fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if safe_in_name(c) { c } else { '_' })
        .collect();
    match cleaned.trim_matches('.') {
        "" => "device".into(),
        _ => cleaned,
    }
}

/// The characters a device name may hold: letters, digits, `-`, `_` and `.`.
fn safe_in_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The longest device name: a folder, a URL path segment and an MQTT topic level, with room.
pub const MAX_NAME: usize = 64;

/// Why a device name from outside (an MQTT topic) cannot name a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing.
    #[error("an empty name")]
    Empty,
    /// `.`, `..` and the like: not a folder of its own.
    #[error("'{0}', only dots")]
    Dots(String),
    /// Anything but letters, digits, `-`, `_` and `.`.
    #[error("'{0}', with characters other than letters, digits, '-', '_' and '.'")]
    Characters(String),
    /// Over [`MAX_NAME`] bytes.
    #[error("a name of {0} bytes (at most {MAX_NAME})")]
    Long(usize),
}

/// Whether `name` can name a device as it is: one safe path component (its logs and store go
/// in a folder of that name under the log folder, never elsewhere), a URL path segment and a
/// topic level, at most [`MAX_NAME`] bytes.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME {
        return Err(NameError::Long(name.len()));
    }
    if name.chars().all(|c| c == '.') {
        return Err(NameError::Dots(name.to_string()));
    }
    if !name.chars().all(safe_in_name) {
        return Err(NameError::Characters(name.escape_debug().to_string()));
    }
    Ok(())
}

/// One device's hub: what its source's thread, the web server, the pump and the sinks share.
pub struct Hub {
    state: Mutex<State>,
    commands: Mutex<Sender<HostMsg>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Ack>>>,
    next_id: AtomicU32,
    stop: AtomicBool,
    sinks: SinkStatus,
    mqtt: std::sync::OnceLock<Arc<Mutex<MqttStatus>>>,
    /// The first point of each anomaly event, for MQTT.
    pub events: broadcast::Sender<Point>,
    /// The device's updates (new points, config changes, the status), typed and encoded once
    /// ([`Message`]), for the pages and MQTT alike.
    pub updates: broadcast::Sender<Arc<Message>>,
    /// When the daemon started.
    pub started: Instant,
    /// From a point's arrival to a page's socket.
    page_latency: Mutex<PageLatency>,
}

impl Hub {
    /// A hub for a device on `port` with no sinks reporting, and the receiving end of its
    /// command queue (tests, benches).
    pub fn new(port: String) -> (Arc<Self>, Receiver<HostMsg>) {
        Self::with_sinks(port, SinkStatus::default())
    }

    /// A hub for a device on `port` whose sinks report in `sinks`, and the receiving end of
    /// its command queue.
    pub fn with_sinks(port: String, sinks: SinkStatus) -> (Arc<Self>, Receiver<HostMsg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        // A page further behind skips ahead (bounded memory).
        let (updates, _) = broadcast::channel(UPDATE_BACKLOG);
        let (events, _) = broadcast::channel(256);
        let hub = Hub {
            state: Mutex::new(State::new(port)),
            commands: Mutex::new(tx),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            stop: AtomicBool::new(false),
            sinks,
            mqtt: std::sync::OnceLock::new(),
            events,
            updates,
            started: Instant::now(),
            page_latency: Mutex::new(PageLatency::default()),
        };
        (Arc::new(hub), rx)
    }

    /// The state, locked. A panic elsewhere never makes it unreadable.
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Everything `/api/status` shows (copied under the lock; encode it after).
    pub fn status(&self) -> StatusView {
        let logs = lock(&self.sinks.logs).clone();
        let notify = self.sinks.notify.as_ref().map(|n| lock(n).clone());
        let mqtt = self.mqtt.get().map(|m| lock(m).clone());
        let mut status = self
            .state()
            .status(logs, notify, self.started.elapsed().as_secs());
        status.mqtt = mqtt;
        status.store = lock(&self.sinks.store).clone();
        status.page_latency = lock(&self.page_latency).clone();
        status
    }

    /// A page's socket took a live message whose oldest point arrived at `arrived_us` (µs
    /// since the Unix epoch): count how long it waited.
    pub fn page_sent(&self, arrived_us: i64) {
        let waited = chrono::Utc::now().timestamp_micros() - arrived_us;
        lock(&self.page_latency).observe(waited as f64 / 1e6);
    }

    /// The device's store, for the API's ranges (`None` with `--no-store`).
    pub fn store_path(&self) -> Option<&std::path::Path> {
        self.sinks.store_path.as_deref()
    }

    /// Where the MQTT publisher reports (once it is started).
    pub fn set_mqtt(&self, status: Arc<Mutex<MqttStatus>>) {
        let _ = self.mqtt.set(status);
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u32, oneshot::Sender<Ack>>> {
        lock(&self.pending)
    }

    /// Queue a command for the device; the receiver gets its acknowledgement.
    pub fn command(&self, make: impl FnOnce(u32) -> HostMsg) -> oneshot::Receiver<Ack> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut pending = self.pending();
        // Commands whose caller stopped waiting (timed out) are forgotten here.
        pending.retain(|_, waiting| !waiting.is_closed());
        pending.insert(id, tx);
        drop(pending);
        let sent = lock(&self.commands).send(make(id)).is_ok();
        if !sent {
            self.pending().remove(&id);
        }
        rx
    }

    /// Ask the source's thread to end.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hand acknowledgements to the requests waiting for them.
    pub fn complete(&self, acks: impl IntoIterator<Item = Ack>) {
        let mut pending = self.pending();
        for ack in acks {
            if let Some(tx) = pending.remove(&ack.id) {
                let _ = tx.send(ack);
            }
        }
    }
}

/// One device of the daemon: its name and what is known of it.
#[derive(Clone)]
pub struct Device {
    /// Its name (in the page, the API and its log folder).
    pub name: String,
    /// Its state, commands and updates.
    pub hub: Arc<Hub>,
    /// Whether another daemon reads it (a device published to the broker this daemon
    /// subscribes to): this daemon does not publish it again.
    pub remote: bool,
}

/// The daemon's devices: those it started with, and those that appear later (USB boards
/// plugged in with `--auto`, devices published by other daemons through MQTT). The first
/// answers the routes without a device name.
pub struct Registry {
    devices: std::sync::RwLock<Vec<Device>>,
    /// How many devices there are, for those who follow new ones (the MQTT publisher).
    added: tokio::sync::watch::Sender<usize>,
    /// Devices refused because the daemon held as many as it may.
    refused: std::sync::atomic::AtomicU64,
    /// As many as it may hold (`usize::MAX` until the daemon's builder says).
    max: std::sync::atomic::AtomicUsize,
    /// Threads writing the devices' logs and stores (one a device read here, one for all
    /// the devices other daemons read): what the builder made.
    writer_threads: std::sync::atomic::AtomicUsize,
}

impl Registry {
    /// A registry of `devices`.
    pub fn new(devices: Vec<Device>) -> Arc<Self> {
        let (added, _) = tokio::sync::watch::channel(devices.len());
        Arc::new(Registry {
            devices: std::sync::RwLock::new(devices),
            added,
            refused: std::sync::atomic::AtomicU64::new(0),
            max: std::sync::atomic::AtomicUsize::new(usize::MAX),
            writer_threads: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Threads writing the devices' logs and stores.
    pub fn writer_threads(&self) -> usize {
        self.writer_threads.load(Ordering::Relaxed)
    }

    /// One more thread writes devices' logs.
    pub fn writer_started(&self) {
        self.writer_threads.fetch_add(1, Ordering::Relaxed);
    }

    /// How many devices the daemon may hold.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// The daemon may hold `max` devices (its builder enforces it).
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        read(&self.devices).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count a device refused for the daemon's cap; how many have been.
    pub fn refuse(&self) -> u64 {
        self.refused.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Devices refused for the daemon's cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Follow the number of devices (it changes when one is added).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<usize> {
        self.added.subscribe()
    }

    /// Every device, in the order they came.
    pub fn list(&self) -> Vec<Device> {
        read(&self.devices).clone()
    }

    /// The device called `name`, or the first without a name.
    pub fn find(&self, name: Option<&str>) -> Option<Device> {
        let devices = read(&self.devices);
        match name {
            Some(n) => devices.iter().find(|d| d.name == n).cloned(),
            None => devices.first().cloned(),
        }
    }

    /// Add `device`; false (and nothing added) if its name is taken.
    pub fn add(&self, device: Device) -> bool {
        let mut devices = write(&self.devices);
        if devices.iter().any(|d| d.name == device.name) {
            return false;
        }
        devices.push(device);
        self.added.send_replace(devices.len());
        true
    }
}

/// What a source's thread holds to feed its device: the hub, the device's command queue,
/// and the sinks that take what ingest produces.
pub struct Feed {
    /// The device's hub.
    pub hub: Arc<Hub>,
    /// Commands for the device, queued by the API.
    pub commands: Receiver<HostMsg>,
    sinks: Vec<Box<dyn Sink>>,
}

impl Feed {
    /// A feed for a source into `hub`, handing what ingest produces to `sinks`.
    pub fn new(hub: Arc<Hub>, commands: Receiver<HostMsg>, sinks: Vec<Box<dyn Sink>>) -> Self {
        Feed {
            hub,
            commands,
            sinks,
        }
    }

    /// Run `f` under the state lock (ingest frames, note the link's state); then, with the
    /// lock released, send on what it produced: to each sink (the disk writer waits while its
    /// queue is full), acknowledgements to the requests waiting for them, anomaly events to
    /// their subscribers.
    pub fn update<R>(&self, f: impl FnOnce(&mut State, &mut Output) -> R) -> R {
        let mut out = Output::default();
        let (result, device) = {
            let mut state = self.hub.state();
            let result = f(&mut state, &mut out);
            let device = (!out.events.is_empty()).then(|| state.device_name());
            (result, device)
        };
        for sink in &self.sinks {
            sink.take(&out, device.as_deref());
        }
        self.hub.complete(out.acks);
        for p in &out.events {
            // No MQTT publisher listening is fine.
            let _ = self.hub.events.send(*p);
        }
        result
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.hub.stopping()
    }
}

/// A sink fed by ingest directly (the disk writer, the notifier): it gets what each update
/// produced, once the state's lock is released.
pub trait Sink: Send {
    /// Take what one update produced; `device` names the device (its board and port) when
    /// the update started anomaly events.
    fn take(&self, out: &Output, device: Option<&str>);
}

/// Where a device's sinks report, for its status.
#[derive(Default)]
pub struct SinkStatus {
    /// The CSV logs.
    pub logs: Arc<Mutex<Vec<LogStatus>>>,
    /// The store (`None` inside: no store).
    pub store: Arc<Mutex<Option<StoreStatus>>>,
    /// The store's file, for the API's ranges.
    pub store_path: Option<std::path::PathBuf>,
    /// The notifications, when there are any.
    pub notify: Option<Arc<Mutex<NotifyStatus>>>,
}

/// What a source that finds devices as it runs (USB boards plugged in, devices published to a
/// broker) calls to make one: the daemon's device builder, which gives it logs, a store,
/// notifications, a pump for its updates and a place in the registry.
pub trait Attach: Send + Sync {
    /// Make the device called `name`, reading `port` (`what` says where, for the log line);
    /// `remote` when another daemon reads it. The feed its source's thread holds.
    fn attach(&self, name: &str, port: String, what: &str, remote: bool) -> anyhow::Result<Feed>;
}

/// One update of a device, `{"type": "...", ...}` in JSON.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Update {
    /// New points.
    Points {
        /// As columns.
        points: Box<Points>,
    },
    /// The config changed.
    Config(ConfigView),
    /// The status, twice a second.
    Status(Box<StatusView>),
}

/// An update, with its JSON encoded once for every subscriber (a clone of the text is a
/// reference count, not a copy).
#[derive(Debug)]
pub struct Message {
    /// What it says.
    pub update: Update,
    /// Its JSON.
    pub json: Utf8Bytes,
    /// For new points: when the oldest of them arrived at the host, µs since the Unix epoch
    /// (what a page's latency is measured from).
    pub arrived_us: Option<i64>,
    /// For new points: the history's number of the first (see [`State::history_end`]), so
    /// that a page whose snapshot already holds some skips them.
    pub first: Option<u64>,
}

impl Message {
    /// `update`, encoded.
    pub fn new(update: Update) -> Arc<Message> {
        Self::points(update, None, None)
    }

    /// `update`, encoded, of points the first of which is number `first` of the history and
    /// the oldest of which arrived at `arrived_us`.
    pub fn points(update: Update, first: Option<u64>, arrived_us: Option<i64>) -> Arc<Message> {
        // Our own types always serialise.
        let json = Utf8Bytes::from(serde_json::to_string(&update).unwrap_or_default());
        Arc::new(Message {
            update,
            json,
            arrived_us,
            first,
        })
    }
}

/// Points in one update at most (about 40 KB of JSON): a WebSocket's write buffer grows to its
/// largest message and keeps that size, so messages stay small.
pub const MAX_BATCH: usize = 400;

/// How often new points go out to the pages and MQTT: short, so a point reaches a page (or,
/// through a broker, a central daemon's page) within tens of milliseconds.
pub const BATCH_EVERY: Duration = Duration::from_millis(10);

/// How often a pump with no subscriber looks again (and drops the points no one took: a page
/// that comes later starts from the history, which has them).
pub const IDLE_EVERY: Duration = Duration::from_millis(100);

/// Every [`BATCH_EVERY`]: send new points (and config changes) to every subscriber of the
/// hub's updates; the status twice a second. What is sent is copied out under the lock and
/// encoded after it is released. With no subscriber (no page open on the device, no MQTT
/// publisher) nothing is encoded and it looks every [`IDLE_EVERY`]: a central daemon's
/// thousand devices cost no thousand encodings a tick.
pub async fn pump(hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(BATCH_EVERY);
    let status_every = (500 / BATCH_EVERY.as_millis().max(1)) as u64;
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen_config = u64::MAX;
    let mut n = 0u64;
    loop {
        tick.tick().await;
        n += 1;
        if hub.updates.receiver_count() == 0 {
            // A subscriber that comes gets the config in its snapshot; the next one's change
            // is sent as it happens.
            seen_config = {
                let mut s = hub.state();
                drop(s.take_outbox());
                s.config_events()
            };
            tokio::time::sleep(IDLE_EVERY.saturating_sub(BATCH_EVERY)).await;
            continue;
        }
        let (points, (arrived_us, first), config) = {
            let mut s = hub.state();
            let config = (s.config_events() != seen_config).then(|| {
                seen_config = s.config_events();
                s.config_view()
            });
            let (arrived_us, first) = (s.outbox_since_us(), s.outbox_start());
            (s.take_outbox(), (arrived_us, first), config)
        };
        let status = n
            .is_multiple_of(status_every)
            .then(|| Box::new(hub.status()));
        // At most MAX_BATCH points a message, so the channel's memory is bounded however fast
        // ingest runs.
        let mut updates: Vec<Arc<Message>> = points
            .chunks(MAX_BATCH)
            .enumerate()
            .map(|(i, chunk)| {
                let points = Box::new(chunk.iter().collect());
                let first = first + (i * MAX_BATCH) as u64;
                Message::points(Update::Points { points }, Some(first), arrived_us)
            })
            .collect();
        updates.extend(config.map(|c| Message::new(Update::Config(c))));
        updates.extend(status.map(|s| Message::new(Update::Status(s))));
        for u in updates {
            // No subscriber is fine.
            let _ = hub.updates.send(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_from_outside_is_one_safe_folder_or_refused() {
        for good in [
            "ttyACM0",
            "stlink-066DFF55",
            "a.b_c-d",
            ".x",
            &"n".repeat(MAX_NAME),
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(".."), Err(NameError::Dots("..".into())));
        assert_eq!(check_name("."), Err(NameError::Dots(".".into())));
        for bad in ["a/b", "../x", "a\\b", "a b", "é", "a\0", "%2e%2e"] {
            assert!(
                matches!(check_name(bad), Err(NameError::Characters(_))),
                "{bad}"
            );
        }
        assert_eq!(
            check_name(&"n".repeat(MAX_NAME + 1)),
            Err(NameError::Long(MAX_NAME + 1))
        );
        // What the daemon makes of names it is given is always a name it accepts.
        for given in ["", "..", "a/b", "ACM 0", "é"] {
            assert_eq!(check_name(&clean_name(given)), Ok(()), "{given}");
        }
    }
}
