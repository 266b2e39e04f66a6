//! The daemon, wired: [`serve`] starts its components in order (the notifier, the dashboard's
//! listener, the devices and their sources, MQTT publishing, the central daemon's subscriber,
//! the USB watcher, the web server) and stops them in the order that loses nothing
//! (`Running::stop`); [`DeviceBuilder`] makes every device, at start and as devices appear.
//!
//! The only module that knows every other layer below the command line: sources, sinks and
//! the web meet here and nowhere else.

pub mod builder;
pub mod settings;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

pub use builder::DeviceBuilder;
pub use settings::{AutoSetting, DeviceSetting, Settings};

use crate::device::{Attach, Registry, lock};
use crate::sink::notify::Notifier;
use crate::source::Source;
use crate::source::usb::Watcher;

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
    let registry = Registry::new(Vec::new());
    let builder = DeviceBuilder::with(
        settings.clone(),
        // One device logs into the folder itself (as always); several, each into its own.
        settings.devices.len() > 1 || settings.subscribe.is_some() || settings.auto.is_some(),
        notifier.as_ref().map(|(n, s)| (s.clone(), n.status())),
        format!("http://{addr}/"),
        registry.clone(),
    );
    let mut running = Running {
        builder: builder.clone(),
        notifier: notifier.map(|(n, _)| n),
        sources: Vec::new(),
        mqtt: None,
        subscriber: None,
        watcher: None,
    };
    for d in &settings.devices {
        let source = Source::open(&d.source, settings.record.as_deref())
            .with_context(|| format!("device {}", d.name))?;
        let feed = builder.attach(&d.name, source.port(), &source.describe(), false)?;
        feed.hub.state().want_source(d.judge);
        let thread = source
            .spawn(feed)
            .with_context(|| format!("cannot start the reader thread of {}", d.name))?;
        running.sources.push(thread);
    }
    if let Some(m) = &settings.mqtt {
        let (_, client) = crate::sink::mqtt::spawn(m, registry.clone())?;
        println!("zscope: publishing to {}", m.url);
        running.mqtt = Some((client, crate::sink::mqtt::online_topic(&m.client_id)));
    }
    if let Some(m) = &settings.subscribe {
        println!("zscope: showing the devices published to {}", m.url);
        running.subscriber = Some(crate::source::mqtt::subscribe(
            m,
            registry.clone(),
            builder.clone(),
        )?);
    }
    if let Some(auto) = &settings.auto {
        println!("zscope: attaching USB dev-board probes as they appear (--auto)");
        let attach: Arc<dyn Attach> = builder.clone();
        let watcher = Arc::new(Mutex::new(Watcher::new(
            attach,
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
                    let found = tokio::task::spawn_blocking(Watcher::scan)
                        .await
                        .unwrap_or_default();
                    lock(&watcher).reconcile(&found);
                }
            })
        };
        running.watcher = Some((watcher, task));
    }
    let app = crate::web::router(
        registry.clone(),
        settings.token.clone(),
        settings.allowed_hosts.clone(),
    );
    ready(addr);
    crate::web::serve_http(listener, app, stop, settings.header_timeout).await;
    tracing::info!("stopping");
    // The running parts hold the builder now (its notice sender must go for the notifier to
    // end).
    drop(builder);
    running.stop().await;
    Ok(())
}

/// The daemon's running parts, besides the web server (which has stopped when these stop).
struct Running {
    builder: Arc<DeviceBuilder>,
    notifier: Option<Notifier>,
    sources: Vec<crate::source::Running>,
    mqtt: Option<(rumqttc::AsyncClient, String)>,
    subscriber: Option<tokio::task::JoinHandle<()>>,
    watcher: Option<(Arc<Mutex<Watcher>>, tokio::task::JoinHandle<()>)>,
}

impl Running {
    /// Stop, in the order that loses nothing:
    ///
    /// 1. say goodbye to the MQTT broker (the last will is for when the daemon cannot);
    /// 2. stop finding devices (the USB watcher, the central daemon's subscriber, whose feeds
    ///    go with it);
    /// 3. stop the pumps of updates (no page or broker is listening any more);
    /// 4. ask every source to end and wait for its thread: each drops its feed, so its writer
    ///    gets nothing more;
    /// 5. wait for every writer to write what it was sent;
    /// 6. then the notifier (the builder held its last sender).
    async fn stop(self) {
        let Running {
            builder,
            notifier,
            sources,
            mqtt,
            subscriber,
            watcher,
        } = self;
        if let Some((client, online)) = mqtt {
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
                std::mem::take(&mut lock(&watcher).threads)
            }
            None => Vec::new(),
        };
        if let Some(task) = subscriber {
            task.abort();
            let _ = task.await;
        }
        builder.stop_pumps();
        builder.stop_sources();
        let _ = tokio::task::spawn_blocking(move || {
            for thread in sources {
                thread.join();
            }
            for thread in auto_threads {
                let _ = thread.join();
            }
            builder.finish_writers();
            // The builder holds a notice sender too: the notifier ends once it is gone.
            drop(builder);
            if let Some(n) = notifier {
                n.finish();
            }
        })
        .await;
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
