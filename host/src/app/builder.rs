//! [`DeviceBuilder`]: the one place a device is made, at start and as devices appear (USB
//! boards plugged in with `--auto`, devices published to the broker a central daemon
//! subscribes to): its CSV logs and store with their writer thread, its hub, its notices, the
//! pump of its updates, and its place in the registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::settings::Settings;
use crate::device::{
    Attach, Device, Feed, Hub, Registry, Sink, SinkStatus, check_name, lock, pump,
};
use crate::model::NotifyStatus;
use crate::model::state::REMOTE_HISTORY;
use crate::sink::csv::{CsvLog, LogWriter};
use crate::sink::notify::{DeviceNotices, NotifySender};
use crate::sink::store::Store;

/// Makes the daemon's devices (see the module's docs).
pub struct DeviceBuilder {
    settings: Settings,
    /// Whether each device logs into a folder of its own (several devices, or devices that
    /// may appear), or into the log folder itself (one device, as always).
    own_folders: bool,
    notify: Option<(NotifySender, Arc<Mutex<NotifyStatus>>)>,
    page: String,
    registry: Arc<Registry>,
    writers: Mutex<Vec<LogWriter>>,
    /// The one writer thread of every remote device (made with the first).
    remote_writer: Mutex<Option<LogWriter>>,
    pumps: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Devices made or being made: at most `settings.max_devices`.
    places: AtomicUsize,
}

/// Why a device was not made: the daemon holds as many as it may.
#[derive(Debug, thiserror::Error)]
#[error(
    "this daemon holds {max} devices already, as many as it may (--max-devices {max}); \
     {refused} refused so far"
)]
pub struct Full {
    /// The cap.
    pub max: usize,
    /// Devices refused so far, this one included.
    pub refused: u64,
}

impl DeviceBuilder {
    /// A builder of devices into `registry`, logging under `settings.log_dir`, each in its own
    /// folder, with no notifications (what a test of `--auto` uses).
    pub fn new(settings: Settings, page: String, registry: Arc<Registry>) -> Arc<DeviceBuilder> {
        Self::with(settings, true, None, page, registry)
    }

    /// A builder as the daemon makes it: `notify` where notices go (and where the notifier
    /// reports), `page` the dashboard's address for the notices' links.
    pub(super) fn with(
        settings: Settings,
        own_folders: bool,
        notify: Option<(NotifySender, Arc<Mutex<NotifyStatus>>)>,
        page: String,
        registry: Arc<Registry>,
    ) -> Arc<DeviceBuilder> {
        registry.set_max(settings.max_devices);
        Arc::new(DeviceBuilder {
            settings,
            own_folders,
            notify,
            page,
            registry,
            writers: Mutex::new(Vec::new()),
            remote_writer: Mutex::new(None),
            pumps: Mutex::new(Vec::new()),
            places: AtomicUsize::new(0),
        })
    }

    /// The device called `name`, reading `port` (`what` says where, for the log line): its
    /// logs, store and writer (a thread of its own, or the remote devices' shared one), its
    /// hub, and the feed its source writes through.
    fn build(
        &self,
        name: &str,
        port: String,
        what: &str,
        remote: bool,
    ) -> anyhow::Result<(Arc<Hub>, Feed)> {
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
        // A store that cannot be opened (a damaged file, a folder it cannot write) does not
        // take the logs and the page down: the device goes on without it, and says why.
        let (store, failed) = match s.store.map(|retention| Store::open(&dir, retention)) {
            Some(Ok(store)) => (Some(store), None),
            Some(Err(e)) => {
                tracing::error!("device {name}: {e}; going on without the store");
                eprintln!("zscope: device {name}: {e}; going on without the store");
                (
                    None,
                    Some((dir.join(crate::sink::store::FILE), e.to_string())),
                )
            }
            None => (None, None),
        };
        let store_path = store.as_ref().map(|s| s.path().to_path_buf());
        let (writer, rows) = if remote {
            let mut shared = lock(&self.remote_writer);
            let writer = match &mut *shared {
                Some(writer) => writer,
                None => {
                    let writer = LogWriter::start().context("cannot start the log writer")?;
                    self.registry.writer_started();
                    shared.insert(writer)
                }
            };
            writer.open(samples_log, anomalies_log, store)
        } else {
            let (thread, writer, rows) = LogWriter::spawn(samples_log, anomalies_log, store)
                .context("cannot start the log writer")?;
            lock(&self.writers).push(thread);
            self.registry.writer_started();
            (writer, rows)
        };
        if let Some((path, why)) = failed {
            writer.store_failed(path.display().to_string(), why);
        }
        let (hub, commands) = Hub::with_sinks(
            port,
            SinkStatus {
                logs: writer.status(),
                store: writer.store_status(),
                store_path,
                notify: self.notify.as_ref().map(|(_, status)| status.clone()),
            },
        );
        println!(
            "zscope: device {name}: {what}, logging to {}",
            std::fs::canonicalize(&dir).unwrap_or(dir.clone()).display()
        );
        let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(rows)];
        if let Some((sender, _)) = &self.notify {
            sinks.push(Box::new(DeviceNotices {
                sender: sender.clone(),
                page: self.page.clone(),
                name: name.to_string(),
            }));
        }
        Ok((hub.clone(), Feed::new(hub, commands, sinks)))
    }

    /// Stop every device's pump.
    pub(super) fn stop_pumps(&self) {
        for pump in lock(&self.pumps).drain(..) {
            pump.abort();
        }
    }

    /// Ask every device's source to end.
    pub(super) fn stop_sources(&self) {
        for d in self.registry.list() {
            d.hub.stop();
        }
    }

    /// Wait for every writer to write what it was sent (every feed must be gone).
    pub(super) fn finish_writers(&self) {
        let writers = std::mem::take(&mut *lock(&self.writers));
        let shared = lock(&self.remote_writer).take();
        for w in writers.into_iter().chain(shared) {
            w.finish();
        }
    }
}

impl Attach for DeviceBuilder {
    fn attach(&self, name: &str, port: String, what: &str, remote: bool) -> anyhow::Result<Feed> {
        // Its folder is `log_dir/name`: a name from outside never reaches elsewhere.
        check_name(name).with_context(|| format!("a device cannot be called {name:?}"))?;
        anyhow::ensure!(
            self.registry.find(Some(name)).is_none(),
            "a device called {name} is here already"
        );
        // A place first, so that sources attaching at once cannot pass the cap together.
        let max = self.settings.max_devices;
        if self.places.fetch_add(1, Ordering::SeqCst) >= max {
            self.places.fetch_sub(1, Ordering::SeqCst);
            let refused = self.registry.refuse();
            return Err(Full { max, refused }.into());
        }
        let (hub, feed) = match self.build(name, port, what, remote) {
            Ok(made) => made,
            Err(e) => {
                self.places.fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
        };
        if remote {
            // Another daemon reads it: a snapshot's worth in memory, the rest in the store.
            hub.state().keep_at_most(REMOTE_HISTORY);
        }
        lock(&self.pumps).push(tokio::spawn(pump(hub.clone())));
        self.registry.add(Device {
            name: name.to_string(),
            hub,
            remote,
        });
        Ok(feed)
    }
}
