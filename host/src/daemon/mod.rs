//! The daemon: what it knows ([`State`], behind [`Shared`]), how frames change it
//! ([`ingest`]), and [`serve`], which wires a source, the log writer and the web server.
//!
//! Threads and tasks, and what they share:
//!
//! * the source's thread (serial port, emulator, replay) decodes frames and runs
//!   [`State::ingest`] under the state lock; then, with the lock released, it hands rows to the
//!   log writer (a bounded channel) and acknowledgements to the requests waiting for them;
//! * the log writer thread owns the CSV files ([`crate::log::LogWriter`]);
//! * the web server's handlers copy typed views out of the state and encode them after the
//!   lock is released; the broadcaster does the same every 10 ms for the WebSocket clients.

pub mod ingest;
pub mod point;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{broadcast, oneshot};
use zscope_core::wire::{Ack, HostMsg};

pub use ingest::Output;
pub use point::{Point, Points};
pub use state::{State, StatusView};

use crate::cli::Settings;
use crate::log::{Batch, CsvLog, LogSender, LogStatus, LogWriter};
use crate::mqtt::MqttStatus;
use crate::notify::{Notice, Notifier, NotifySender, NotifyStatus};
use crate::source::Source;
use crate::store::{Store, StoreStatus};

/// What the source's thread, the web server and the broadcaster share.
pub struct Shared {
    state: Mutex<State>,
    commands: Mutex<Sender<HostMsg>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Ack>>>,
    next_id: AtomicU32,
    stop: AtomicBool,
    logs: Arc<Mutex<Vec<LogStatus>>>,
    store: Arc<Mutex<Option<StoreStatus>>>,
    /// The device's store, for the API's ranges (None with `--no-store`).
    pub store_path: Option<std::path::PathBuf>,
    notify: Option<Arc<Mutex<NotifyStatus>>>,
    mqtt: std::sync::OnceLock<Arc<Mutex<MqttStatus>>>,
    /// The first point of each anomaly event, for MQTT.
    pub events: broadcast::Sender<Point>,
    /// JSON updates for the browsers, encoded once and shared (a clone is a reference count,
    /// not a copy).
    pub updates: broadcast::Sender<axum::extract::ws::Utf8Bytes>,
    /// When the daemon started.
    pub started: Instant,
}

impl Shared {
    /// Shared state for a device on `port`, and the receiving end of its command queue.
    pub fn new(port: String) -> (Arc<Self>, Receiver<HostMsg>) {
        Self::with_status(port, Arc::default(), Arc::default(), None, None)
    }

    fn with_status(
        port: String,
        logs: Arc<Mutex<Vec<LogStatus>>>,
        store: Arc<Mutex<Option<StoreStatus>>>,
        store_path: Option<std::path::PathBuf>,
        notify: Option<Arc<Mutex<NotifyStatus>>>,
    ) -> (Arc<Self>, Receiver<HostMsg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        // A page further behind skips ahead (bounded memory).
        let (updates, _) = broadcast::channel(crate::web::ws::QUEUE);
        let (events, _) = broadcast::channel(256);
        let shared = Shared {
            state: Mutex::new(State::new(port)),
            commands: Mutex::new(tx),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            stop: AtomicBool::new(false),
            logs,
            store,
            store_path,
            notify,
            mqtt: std::sync::OnceLock::new(),
            events,
            updates,
            started: Instant::now(),
        };
        (Arc::new(shared), rx)
    }

    /// The state, locked. A panic elsewhere never makes it unreadable.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything `/api/status` shows (copied under the lock; encode it after).
    pub fn status(&self) -> StatusView {
        let logs = self.logs.lock().map(|l| l.clone()).unwrap_or_default();
        let notify = self
            .notify
            .as_ref()
            .and_then(|n| n.lock().ok().map(|n| n.clone()));
        let mqtt = self
            .mqtt
            .get()
            .and_then(|m| m.lock().ok().map(|m| m.clone()));
        let mut status = self
            .state()
            .status(logs, notify, self.started.elapsed().as_secs());
        status.mqtt = mqtt;
        status.store = self.store.lock().ok().and_then(|s| s.clone());
        status
    }

    /// Where the MQTT publisher reports (once it is started).
    pub fn set_mqtt(&self, status: Arc<Mutex<MqttStatus>>) {
        let _ = self.mqtt.set(status);
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u32, oneshot::Sender<Ack>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
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
        let sent = self
            .commands
            .lock()
            .map(|c| c.send(make(id)).is_ok())
            .unwrap_or(false);
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
    pub shared: Arc<Shared>,
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
}

impl Registry {
    /// A registry of `devices`.
    pub fn new(devices: Vec<Device>) -> Arc<Self> {
        let (added, _) = tokio::sync::watch::channel(devices.len());
        Arc::new(Registry {
            devices: std::sync::RwLock::new(devices),
            added,
        })
    }

    /// Follow the number of devices (it changes when one is added).
    pub fn watch(&self) -> tokio::sync::watch::Receiver<usize> {
        self.added.subscribe()
    }

    /// Every device, in the order they came.
    pub fn list(&self) -> Vec<Device> {
        self.devices.read().map(|d| d.clone()).unwrap_or_default()
    }

    /// The device called `name`, or the first without a name.
    pub fn find(&self, name: Option<&str>) -> Option<Device> {
        let devices = self.devices.read().ok()?;
        match name {
            Some(n) => devices.iter().find(|d| d.name == n).cloned(),
            None => devices.first().cloned(),
        }
    }

    /// Add `device`; false (and nothing added) if its name is taken.
    pub fn add(&self, device: Device) -> bool {
        let Ok(mut devices) = self.devices.write() else {
            return false;
        };
        if devices.iter().any(|d| d.name == device.name) {
            return false;
        }
        devices.push(device);
        self.added.send_replace(devices.len());
        true
    }
}

/// What a source's thread holds: the shared state, the device's command queue, and the way
/// to the log writer.
pub struct Link {
    /// The shared state.
    pub shared: Arc<Shared>,
    /// Commands for the device, queued by the API.
    pub commands: Receiver<HostMsg>,
    logs: LogSender,
    /// Where notices go, the page's address, the device's name.
    notify: Option<(NotifySender, String, String)>,
}

impl Link {
    /// A link for a source, with its own shared state and log writer (tests, benches).
    pub fn new(shared: Arc<Shared>, commands: Receiver<HostMsg>, logs: LogSender) -> Self {
        Link {
            shared,
            commands,
            logs,
            notify: None,
        }
    }

    /// Also notify `sender` of each anomaly event of the device `name`, with a link into the
    /// page at `page` (`http://HOST:PORT/`).
    pub fn notifying(mut self, sender: NotifySender, page: String, name: String) -> Self {
        self.notify = Some((sender, page, name));
        self
    }

    /// Run `f` under the state lock (ingest frames, note the link's state); then, with the
    /// lock released, send on what it produced: rows to the log writer (waiting while its
    /// queue is full), acknowledgements to the requests waiting for them.
    pub fn update<R>(&self, f: impl FnOnce(&mut State, &mut Output) -> R) -> R {
        let mut out = Output::default();
        let (result, device) = {
            let mut state = self.shared.state();
            let result = f(&mut state, &mut out);
            let device = (!out.events.is_empty()).then(|| state.device_name());
            (result, device)
        };
        self.logs.send(Batch {
            entries: out.log,
            configs: out.configs,
        });
        self.shared.complete(out.acks);
        for p in &out.events {
            // No MQTT publisher listening is fine.
            let _ = self.shared.events.send(*p);
        }
        if let (Some((sender, page, name)), Some(device)) = (&self.notify, device) {
            for p in &out.events {
                sender.send(notice(name, &device, p, page));
            }
        }
        result
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.shared.stopping()
    }
}

/// The notification for an event that starts at `p` on the device `name` (`what`: its board
/// and port).
fn notice(name: &str, what: &str, p: &Point, page: &str) -> Notice {
    let time = chrono::DateTime::from_timestamp_millis(p.t as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let url = format!("{page}?device={name}&at={}", p.t as i64);
    Notice {
        text: if p.reason() == "new level" {
            format!(
                "zscope: anomaly on {name} ({what}) at {time}: a new level, value {} (z {:.2}, \
                 inside the band), score {:.2} <{url}>",
                p.value, p.z, p.score
            )
        } else {
            format!(
                "zscope: anomaly on {name} ({what}) at {time}: beyond the band, value {}, z {:.2}, \
                 score {:.2} <{url}>",
                p.value, p.z, p.score
            )
        },
        device: name.to_string(),
        time,
        t_ms: p.t,
        seq: p.seq,
        value: p.value,
        z: p.z,
        score: p.score,
        url,
    }
}

/// Run the daemon until Ctrl-C (or SIGTERM), printing where it serves and logs.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    serve(settings, |_| {}, shutdown()).await
}

/// Run the daemon until `stop` completes; `ready` gets the address it listens on.
pub async fn serve(
    settings: Settings,
    ready: impl FnOnce(SocketAddr),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let notifier = match settings.notify.is_empty() {
        true => None,
        false => Some(
            Notifier::spawn(settings.notify.clone(), settings.notify_cooldown)
                .context("cannot start the notifier")?,
        ),
    };
    let listener = crate::web::listen(settings.listen).with_context(|| {
        format!(
            "cannot listen on {}: is another zscope running? Choose another with --listen",
            settings.listen
        )
    })?;
    let addr = listener.local_addr()?;
    println!("zscope: dashboard on http://{addr}/");
    let factory = Arc::new(Factory {
        // One device logs into the folder itself (as always); several, each into its own.
        own_folders: settings.devices.len() > 1
            || settings.subscribe.is_some()
            || settings.auto.is_some(),
        settings: settings.clone(),
        notify: notifier.as_ref().map(|(n, s)| (s.clone(), n.status())),
        page: format!("http://{addr}/"),
        writers: Mutex::new(Vec::new()),
    });
    let registry = Registry::new(Vec::new());
    let mut running = Vec::new();
    for d in &settings.devices {
        let source = Source::open(&d.source, settings.record.as_deref())
            .with_context(|| format!("device {}", d.name))?;
        let (device, link) = factory.create(&d.name, source.port(), &source.describe())?;
        let thread = source
            .spawn(link)
            .with_context(|| format!("cannot start the reader thread of {}", d.name))?;
        running.push(thread);
        registry.add(device);
    }
    let devices = registry.list();
    let mqtt = match &settings.mqtt {
        Some(m) => {
            let (_, client) = crate::mqtt::spawn(m, registry.clone())?;
            println!("zscope: publishing to {}", m.url);
            Some((client, crate::mqtt::online_topic(&m.client_id)))
        }
        None => None,
    };
    let subscriber = match &settings.subscribe {
        Some(m) => {
            println!("zscope: showing the devices published to {}", m.url);
            Some(crate::mqtt::subscribe(
                m,
                registry.clone(),
                factory.clone(),
            )?)
        }
        None => None,
    };
    let watcher = settings.auto.as_ref().map(|auto| {
        println!("zscope: attaching USB dev-board probes as they appear (--auto)");
        let watcher = Arc::new(Mutex::new(crate::source::usb::Watcher::new(
            factory.clone(),
            registry.clone(),
            auto.baud,
            auto.extra.clone(),
        )));
        let task = {
            let watcher = watcher.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    let found = tokio::task::spawn_blocking(crate::source::usb::Watcher::scan)
                        .await
                        .unwrap_or_default();
                    if let Ok(mut w) = watcher.lock() {
                        w.reconcile(&found);
                    }
                }
            })
        };
        (watcher, task)
    });
    let broadcasters: Vec<_> = devices
        .iter()
        .map(|d| tokio::spawn(crate::web::broadcaster(d.shared.clone())))
        .collect();
    let app = crate::web::router(
        registry.clone(),
        settings.token.clone(),
        settings.allowed_hosts.clone(),
    );
    ready(addr);
    crate::web::serve_http(listener, app, stop).await;
    tracing::info!("stopping");
    if let Some((client, online)) = mqtt {
        // Say goodbye (the last will is for when the daemon cannot).
        let bye = async {
            let _ = client
                .publish(online, rumqttc::QoS::AtLeastOnce, true, "false")
                .await;
            let _ = client.disconnect().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
    }
    let auto_threads = match watcher {
        Some((watcher, task)) => {
            task.abort();
            let _ = task.await;
            watcher
                .lock()
                .map(|mut w| std::mem::take(&mut w.threads))
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    if let Some(task) = subscriber {
        // Its links go with it, so their log writers can finish.
        task.abort();
        let _ = task.await;
    }
    for b in broadcasters {
        b.abort();
    }
    for d in registry.list() {
        d.shared.stop();
    }
    // Each source's thread ends and drops its sender; then the writers write what is left.
    let notifier = notifier.map(|(n, _)| n);
    let _ = tokio::task::spawn_blocking(move || {
        for thread in running {
            thread.join();
        }
        for thread in auto_threads {
            let _ = thread.join();
        }
        factory.finish();
        // The factory holds a notice sender too: the notifier ends once it is gone.
        drop(factory);
        if let Some(n) = notifier {
            n.finish();
        }
    })
    .await;
    Ok(())
}

/// Makes a device: its CSV logs and their writer, its shared state, and the link that feeds
/// it (with notifications); the daemon's devices at start and those that appear later.
pub struct Factory {
    settings: Settings,
    own_folders: bool,
    notify: Option<(NotifySender, Arc<Mutex<NotifyStatus>>)>,
    page: String,
    writers: Mutex<Vec<LogWriter>>,
}

impl Factory {
    /// A factory for devices logging under `settings.log_dir`, each in its own folder, with
    /// no notifications (what `--auto` and a central daemon use; tests build one with it).
    pub fn new(settings: Settings, page: String) -> Arc<Factory> {
        Arc::new(Factory {
            settings,
            own_folders: true,
            notify: None,
            page,
            writers: Mutex::new(Vec::new()),
        })
    }

    /// A device called `name` reading `port` (`what` says where, for the log line).
    pub fn create(&self, name: &str, port: String, what: &str) -> anyhow::Result<(Device, Link)> {
        let s = &self.settings;
        let dir = match self.own_folders {
            true => s.log_dir.join(name),
            false => s.log_dir.clone(),
        };
        let samples_log = match s.samples_log {
            true => Some(CsvLog::open(&dir, "samples", s.rotate_bytes, s.keep_files)?),
            false => None,
        };
        let anomalies_log = CsvLog::open(&dir, "anomalies", s.rotate_bytes, s.keep_files)?;
        let store = match s.store {
            Some(retention) => Some(Store::open(&dir, retention)?),
            None => None,
        };
        let store_path = store.as_ref().map(|s| s.path().to_path_buf());
        let (writer, logs) = LogWriter::spawn(samples_log, anomalies_log, store)
            .context("cannot start the log writer")?;
        let (shared, commands) = Shared::with_status(
            port,
            writer.status(),
            writer.store_status(),
            store_path,
            self.notify.as_ref().map(|(_, status)| status.clone()),
        );
        if let Ok(mut w) = self.writers.lock() {
            w.push(writer);
        }
        println!(
            "zscope: device {name}: {what}, logging to {}",
            std::fs::canonicalize(&dir).unwrap_or(dir.clone()).display()
        );
        let mut link = Link::new(shared.clone(), commands, logs);
        if let Some((sender, _)) = &self.notify {
            link = link.notifying(sender.clone(), self.page.clone(), name.to_string());
        }
        Ok((
            Device {
                name: name.to_string(),
                shared,
                remote: false,
            },
            link,
        ))
    }

    /// Wait for every writer to write what it was sent (every link must be gone).
    fn finish(&self) {
        let writers = self
            .writers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for w in writers {
            w.finish();
        }
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
