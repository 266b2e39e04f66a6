//! MQTT publishing (`--mqtt URL`): every device's points, anomaly events, status and config,
//! through a real broker (Mosquitto, or any MQTT 3.1.1 broker), for other programs and other
//! zscope daemons to read.
//!
//! | topic | payload | QoS | retained |
//! |---|---|---|---|
//! | `zscope/<device>/points` | a batch of points as columns, the WebSocket's JSON | 0 | no |
//! | `zscope/<device>/events` | the first point of each anomaly event (JSON) | 1 | no |
//! | `zscope/<device>/status` | the device's status (JSON, as `/api/status`), twice a second | 0 | yes |
//! | `zscope/<device>/config` | the config in force and its version (JSON, as `/api/config`) | 1 | yes |
//! | `zscope/daemons/<client id>/online` | `true`, or `false` when the daemon leaves (its last will) | 1 | yes |
//! | `zscope/<device>/command` | a command for the device (JSON `HostMsg`), from a central daemon | 1 | no |
//! | `zscope/<device>/ack` | its acknowledgement (JSON `Ack`, under the central daemon's id) | 1 | no |
//!
//! A daemon started with `--subscribe URL` is a central one: [`subscribe`] makes each device
//! published to the broker one of its own devices (state, logs, page, notifications), and
//! sends config changes from its page back through `command`, acknowledged through `ack`.
//!
//! JSON rather than the device's postcard frames: any MQTT tool can read it, and it is what
//! the page reads already. Publishing never holds up ingest: each device's messages come from
//! its WebSocket broadcast (already encoded) and go to the client's bounded queue; a message
//! that finds it full, or that a slow broker made the broadcast skip, is dropped and counted.
//! A broker that is down or goes away is retried every second up to every 30 s, and the
//! status says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::HashMap;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use zscope_core::wire::{Ack, AckResult, DeviceMsg, Flags, Hello, HostMsg, Sample, name};
use zscope_core::{DetectorConfig, SimConfig};

use crate::daemon::{Device, Factory, Link, Points, Registry};

/// Messages waiting for the broker at most (per daemon).
pub const QUEUE: usize = 1024;

/// Where to publish: `mqtt://[user[:password]@]host[:port]` (1883 by default), or
/// `mqtts://…` over TLS (8883 by default), checked against the system's usual roots (Mozilla's,
/// built in) or the CA given with `--mqtt-ca`.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSetting {
    /// The broker's URL, as given (shown in the status, without the password).
    pub url: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// This daemon's client id (also its presence topic).
    pub client_id: String,
    /// Whether to speak TLS (`mqtts://`).
    pub tls: bool,
    /// The certificate authority (PEM) to check the broker's certificate against, instead of
    /// the usual roots (a private CA, a self-signed broker).
    pub ca: Option<std::path::PathBuf>,
}

impl MqttSetting {
    /// Parse `mqtt://…` or `mqtts://…`; the reason when it is not one.
    pub fn parse(url: &str, client_id: String) -> Result<MqttSetting, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--mqtt '{url}': {e}"))?;
        let (tls, default_port) = match parsed.scheme() {
            "mqtt" => (false, 1883),
            "mqtts" => (true, 8883),
            _ => {
                return Err(format!(
                    "--mqtt '{url}': the scheme must be mqtt:// or mqtts:// (TLS)"
                ));
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("--mqtt '{url}' has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let decode = |s: &str| {
            percent_decode(s)
                .ok_or_else(|| format!("--mqtt '{url}': the user or password is not UTF-8"))
        };
        let credentials = match parsed.username() {
            "" => None,
            user => Some((
                decode(user)?,
                decode(parsed.password().unwrap_or_default())?,
            )),
        };
        let mut shown = parsed.clone();
        let _ = shown.set_password(None);
        Ok(MqttSetting {
            url: shown.to_string(),
            host,
            port: parsed.port().unwrap_or(default_port),
            credentials,
            client_id,
            tls,
            ca: None,
        })
    }

    /// Check the broker's certificate against the CA in `ca` (PEM).
    pub fn with_ca(mut self, ca: Option<std::path::PathBuf>) -> Self {
        self.ca = ca;
        self
    }

    /// The client's options under `client_id`: a persistent session (the broker keeps what
    /// was sent at QoS 1 for it while it is away, and it sends again what the broker had not
    /// acknowledged), credentials, TLS. An unreadable CA file is an error that says so.
    pub fn options(&self, client_id: &str) -> anyhow::Result<MqttOptions> {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_clean_session(false);
        options.set_max_packet_size(4 << 20, 4 << 20);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user, password);
        }
        if self.tls {
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(self.tls_config()?)),
            ));
        }
        Ok(options)
    }

    fn tls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        use anyhow::Context;
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .with_context(|| {
                        format!("--mqtt-ca {}: not a PEM certificate file", path.display())
                    })?;
                anyhow::ensure!(
                    !certs.is_empty(),
                    "--mqtt-ca {}: no certificate in it",
                    path.display()
                );
                for cert in certs {
                    roots.add(cert).with_context(|| {
                        format!("--mqtt-ca {}: a certificate rustls refuses", path.display())
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS setup")?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// `%XX` sequences of a URL's user or password, decoded (`+` stays `+`: this is not a query).
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// What `/api/status` says of MQTT.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MqttStatus {
    /// The broker (without a password).
    pub url: String,
    /// Whether the broker has accepted the connection.
    pub connected: bool,
    /// Messages handed to the client.
    pub published: u64,
    /// Messages dropped: the client's queue was full, or the broadcast skipped them.
    pub dropped: u64,
    /// Messages the broker had not acknowledged when the connection broke, and could not be
    /// sent again because the broker had forgotten this client's session (it restarted
    /// without persistence).
    pub lost_unacknowledged: u64,
    /// The last connection error, while not connected.
    pub last_error: Option<String>,
}

fn lock(s: &Mutex<MqttStatus>) -> std::sync::MutexGuard<'_, MqttStatus> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// A config message as the WebSocket sends it (`{"type": "config", ...}`).
#[derive(Serialize)]
struct ConfigUpdate {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    view: crate::daemon::state::ConfigView,
}

/// The presence topic of a daemon.
pub fn online_topic(client_id: &str) -> String {
    format!("zscope/daemons/{client_id}/online")
}

/// The topic where a daemon lists the devices it publishes (retained), so a central daemon
/// knows which go offline with it.
fn roster_topic(client_id: &str) -> String {
    format!("zscope/daemons/{client_id}/devices")
}

/// Start publishing the registry's devices to the broker, those there now and those added
/// later: the status, updated as it goes, and the client (to say goodbye with).
pub fn spawn(
    setting: &MqttSetting,
    registry: Arc<Registry>,
) -> anyhow::Result<(Arc<Mutex<MqttStatus>>, AsyncClient)> {
    let status = Arc::new(Mutex::new(MqttStatus {
        url: setting.url.clone(),
        ..MqttStatus::default()
    }));
    let mut options = setting.options(&setting.client_id)?;
    let online = online_topic(&setting.client_id);
    options.set_last_will(LastWill::new(&online, "false", QoS::AtLeastOnce, true));
    let (client, mut eventloop) = AsyncClient::new(options, QUEUE);
    eventloop.set_network_options(low_latency());
    // Bumped at each (re)connection: the devices' tasks publish their retained topics again
    // (a broker that restarted without persistence has forgotten them).
    let (connections, _) = tokio::sync::watch::channel(0u64);
    let local = |registry: &Registry| -> Vec<Device> {
        registry.list().into_iter().filter(|d| !d.remote).collect()
    };
    // The connection: (re)connect with backoff, and say so; commands for our devices (from a
    // central daemon's page) are carried out and acknowledged back.
    {
        let status = status.clone();
        let client = client.clone();
        let online = online.clone();
        let registry = registry.clone();
        let connections = connections.clone();
        let roster = roster_topic(&setting.client_id);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            // Sent but not acknowledged when the connection broke: sent again if the
            // broker kept our session, lost (and counted) if it did not.
            let mut unacknowledged = 0;
            let mut added = registry.watch();
            let announce = |devices: &[Device]| {
                for d in devices {
                    let topic = format!("zscope/{}/command", d.name);
                    let _ = client.try_subscribe(topic, QoS::AtLeastOnce);
                }
                let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
                let roster_json = serde_json::to_vec(&names).unwrap_or_default();
                let _ = client.try_publish(&roster, QoS::AtLeastOnce, true, roster_json);
            };
            loop {
                let event = tokio::select! {
                    event = eventloop.poll() => event,
                    changed = added.changed() => {
                        if changed.is_ok() && lock(&status).connected {
                            announce(&local(&registry));
                        }
                        continue;
                    }
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        tracing::info!(
                            "MQTT: connected to {} (session {})",
                            lock(&status).url,
                            if ack.session_present {
                                "resumed"
                            } else {
                                "new"
                            }
                        );
                        {
                            let mut s = lock(&status);
                            s.connected = true;
                            s.last_error = None;
                        }
                        backoff = Duration::from_secs(1);
                        if !ack.session_present {
                            lock(&status).lost_unacknowledged += unacknowledged as u64;
                        }
                        unacknowledged = 0;
                        let _ = client.try_publish(&online, QoS::AtLeastOnce, true, "true");
                        announce(&local(&registry));
                        connections.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let Some((name, "command")) = split_topic(&p.topic) else {
                            continue;
                        };
                        let Some(device) = registry.find(Some(name)).filter(|d| !d.remote) else {
                            continue;
                        };
                        match serde_json::from_slice::<HostMsg>(&p.payload) {
                            Ok(cmd) => relay(&client, &device, cmd),
                            Err(e) => tracing::warn!("MQTT: a command for {name} is not one: {e}"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let e = explain(&e);
                        unacknowledged = eventloop.pending.len();
                        let was = {
                            let mut s = lock(&status);
                            let was = s.connected || s.last_error.is_none();
                            s.connected = false;
                            s.last_error = Some(e.clone());
                            was
                        };
                        if was {
                            tracing::warn!("MQTT: {e}; retrying");
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
    }
    // Each device, those there now and those added later: its broadcast of encoded updates,
    // and its events, to topics.
    {
        let (client, status) = (client.clone(), status.clone());
        tokio::spawn(async move {
            let mut added = registry.watch();
            let mut publishing = std::collections::HashSet::new();
            loop {
                for d in local(&registry) {
                    if publishing.insert(d.name.clone()) {
                        d.shared.set_mqtt(status.clone());
                        publish_device(&d, client.clone(), status.clone(), connections.subscribe());
                    }
                }
                if added.changed().await.is_err() {
                    return;
                }
            }
        });
    }
    Ok((status, client))
}

/// Publish `d`'s points, status, config and events, until its broadcasts close.
fn publish_device(
    d: &Device,
    client: AsyncClient,
    status: Arc<Mutex<MqttStatus>>,
    mut reconnected: tokio::sync::watch::Receiver<u64>,
) {
    let name = d.name.clone();
    let mut updates = d.shared.updates.subscribe();
    let mut events = d.shared.events.subscribe();
    // The config as last published, to publish again after a reconnection.
    let mut config = {
        let view = d.shared.state().config_view();
        serde_json::to_vec(&ConfigUpdate {
            kind: "config",
            view,
        })
        .ok()
    };
    tokio::spawn(async move {
        let publish = |topic: &str, qos: QoS, retain: bool, payload: Vec<u8>| {
            let sent = client.try_publish(format!("zscope/{name}/{topic}"), qos, retain, payload);
            let mut s = lock(&status);
            match sent {
                Ok(()) => s.published += 1,
                Err(_) => s.dropped += 1,
            }
        };
        loop {
            tokio::select! {
                update = updates.recv() => match update {
                    Ok(text) => {
                        let (topic, qos, retain) = match kind(&text) {
                            Some("points") => ("points", QoS::AtLeastOnce, false),
                            Some("status") => ("status", QoS::AtMostOnce, true),
                            Some("config") => ("config", QoS::AtLeastOnce, true),
                            _ => continue,
                        };
                        if topic == "config" {
                            config = Some(text.as_bytes().to_vec());
                        }
                        publish(topic, qos, retain, text.as_bytes().to_vec());
                    }
                    Err(RecvError::Lagged(n)) => lock(&status).dropped += n,
                    Err(RecvError::Closed) => return,
                },
                changed = reconnected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if let Some(c) = &config {
                        publish("config", QoS::AtLeastOnce, true, c.clone());
                    }
                }
                event = events.recv() => match event {
                    Ok(point) => {
                        let payload = serde_json::to_vec(&point).unwrap_or_default();
                        publish("events", QoS::AtLeastOnce, false, payload);
                    }
                    Err(RecvError::Lagged(n)) => lock(&status).dropped += n,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
}

/// What went wrong with the broker, said for a person.
fn explain(e: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E};
    match e {
        E::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => {
            "the broker refused the user name or password (mqtt://USER:PASSWORD@…)".into()
        }
        E::ConnectionRefused(code) => format!("the broker refused the connection: {code:?}"),
        E::Tls(e) => format!("TLS: {e} (is the broker's certificate signed by --mqtt-ca?)"),
        E::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("cannot reach the broker: {e}")
        }
        e => e.to_string(),
    }
}

/// Small messages go out at once (no Nagle delay: with the peer's delayed acks it held
/// batches back by up to 40 ms).
fn low_latency() -> rumqttc::NetworkOptions {
    let mut options = rumqttc::NetworkOptions::new();
    options.set_tcp_nodelay(true);
    options
}

/// `zscope/<device>/<kind>` as (device, kind).
fn split_topic(topic: &str) -> Option<(&str, &str)> {
    let mut parts = topic.strip_prefix("zscope/")?.split('/');
    let (name, kind) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && name != "daemons").then_some((name, kind))
}

/// Carry out `cmd` (from a central daemon) on `device`, and publish its acknowledgement under
/// the central daemon's id.
fn relay(client: &AsyncClient, device: &Device, cmd: HostMsg) {
    let remote_id = cmd.id();
    let rx = device.shared.command(|id| cmd.with_id(id));
    let (client, topic) = (client.clone(), format!("zscope/{}/ack", device.name));
    tokio::spawn(async move {
        if let Ok(Ok(mut ack)) = tokio::time::timeout(Duration::from_secs(3), rx).await {
            ack.id = remote_id;
            let payload = serde_json::to_vec(&ack).unwrap_or_default();
            let _ = client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await;
        }
    });
}

/// Show the devices other daemons publish to the broker: each becomes a device of this
/// daemon (its own state, logs, page, notifications), fed from its topics: the retained
/// status and config say hello, the points batches are its samples, acks complete the config
/// changes this daemon's page sends it through `zscope/<device>/command`. A daemon's presence
/// going `false` (it said goodbye, or the broker sent its last will) marks its devices
/// disconnected.
pub fn subscribe(
    setting: &MqttSetting,
    registry: Arc<Registry>,
    factory: Arc<Factory>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let options = setting.options(&setting.client_id)?;
    let (client, mut eventloop) = AsyncClient::new(options, QUEUE);
    eventloop.set_network_options(low_latency());
    let url = setting.url.clone();
    Ok(tokio::spawn(async move {
        let mut remotes: HashMap<String, Remote> = HashMap::new();
        let mut daemons = Daemons::default();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut backoff = Duration::from_secs(1);
        loop {
            tokio::select! {
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        tracing::info!(
                            "MQTT: subscribed to the devices on {url} (session {})",
                            if ack.session_present { "resumed" } else { "new" }
                        );
                        backoff = Duration::from_secs(1);
                        for kind in ["status", "config", "points", "ack"] {
                            let _ = client.try_subscribe(format!("zscope/+/{kind}"), QoS::AtLeastOnce);
                        }
                        let _ = client.try_subscribe("zscope/daemons/+/+", QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(rest) = p.topic.strip_prefix("zscope/daemons/") {
                            for (name, why) in daemons.receive(rest, &p.payload) {
                                if let Some(r) = remotes.get_mut(&name) {
                                    r.gateway_gone(why);
                                }
                            }
                            continue;
                        }
                        let Some((name, kind)) = split_topic(&p.topic) else { continue };
                        let remote = match remotes.get_mut(name) {
                            Some(r) => r,
                            None => {
                                let Some(r) = Remote::create(name, &url, &registry, &factory) else {
                                    continue;
                                };
                                remotes.entry(name.to_string()).or_insert(r)
                            }
                        };
                        remote.receive(kind, &p.payload, daemons.offline(name));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let e = explain(&e);
                        tracing::warn!("MQTT ({url}): {e}; retrying");
                        for r in remotes.values_mut() {
                            r.link.update(|s, _| s.disconnected(format!("broker {url}: {e}")));
                            r.connected = false;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                },
                _ = tick.tick() => {
                    // Config changes from this daemon's page, to the device's gateway.
                    for (name, r) in &remotes {
                        while let Ok(cmd) = r.link.commands.try_recv() {
                            let payload = serde_json::to_vec(&cmd).unwrap_or_default();
                            let _ = client.try_publish(
                                format!("zscope/{name}/command"),
                                QoS::AtLeastOnce,
                                false,
                                payload,
                            );
                        }
                    }
                }
            }
        }
    }))
}

/// The daemons publishing to the broker, as their presence and device lists say.
#[derive(Default)]
struct Daemons {
    /// Each daemon's devices (its retained `devices` topic).
    devices: HashMap<String, Vec<String>>,
    /// The daemons whose presence is `false`.
    offline: std::collections::HashSet<String>,
}

impl Daemons {
    /// A message on `zscope/daemons/<rest>`; the devices that went offline with it, and why.
    fn receive(&mut self, rest: &str, payload: &[u8]) -> Vec<(String, String)> {
        let Some((daemon, kind)) = rest.split_once('/') else {
            return Vec::new();
        };
        match kind {
            "devices" => {
                let names: Vec<String> = serde_json::from_slice(payload).unwrap_or_default();
                self.devices.insert(daemon.to_string(), names);
                if !self.offline.contains(daemon) {
                    return Vec::new();
                }
            }
            "online" if payload == b"false" => {
                self.offline.insert(daemon.to_string());
            }
            "online" => {
                self.offline.remove(daemon);
                return Vec::new();
            }
            _ => return Vec::new(),
        }
        let why = format!("its daemon ({daemon}) is offline");
        self.devices
            .get(daemon)
            .into_iter()
            .flatten()
            .map(|name| (name.clone(), why.clone()))
            .collect()
    }

    /// Why `device` is offline, if the daemon that publishes it is.
    fn offline(&self, device: &str) -> Option<String> {
        self.devices
            .iter()
            .find(|(d, names)| self.offline.contains(*d) && names.iter().any(|n| n == device))
            .map(|(d, _)| format!("its daemon ({d}) is offline"))
    }
}

/// A `points` message (`{"type": "points", "points": {...}}`), read straight into columns.
#[derive(serde::Deserialize)]
struct Batch {
    points: Points,
}

/// A device another daemon publishes, as this daemon sees it.
struct Remote {
    link: Link,
    hello: bool,
    connected: bool,
    /// The last point taken (its gateway's time, which never goes back, and sequence
    /// number): a batch the broker delivers twice (QoS 1 is at least once) is taken once.
    last: Option<(f64, u64)>,
}

impl Remote {
    fn create(name: &str, url: &str, registry: &Registry, factory: &Factory) -> Option<Remote> {
        if registry.find(Some(name)).is_some() {
            tracing::warn!("MQTT: a device called {name} is here already; its topics are ignored");
            return None;
        }
        let port = format!("{url}zscope/{name}");
        let (device, link) = match factory.create(name, port, &format!("published to {url}")) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("MQTT: cannot add {name}: {e:#}");
                return None;
            }
        };
        tokio::spawn(crate::web::broadcaster(device.shared.clone()));
        registry.add(Device {
            remote: true,
            ..device
        });
        Some(Remote {
            link,
            hello: false,
            connected: false,
            last: None,
        })
    }

    /// Its daemon went offline (said goodbye, or its last will came).
    fn gateway_gone(&mut self, why: String) {
        self.link.update(|state, _| state.disconnected(why));
        self.connected = false;
    }

    /// One message of its topics; `offline`: why its daemon is offline, if it is (a retained
    /// status saying connected is then out of date).
    fn receive(&mut self, kind: &str, payload: &[u8], offline: Option<String>) {
        let now = chrono::Utc::now();
        match kind {
            "status" => {
                let Ok(status) = serde_json::from_slice::<serde_json::Value>(payload) else {
                    return;
                };
                let connected = status["connected"] == serde_json::json!(true) && offline.is_none();
                let hello = (!self.hello).then(|| hello(&status)).flatten();
                let said = hello.is_some();
                let was = self.connected;
                self.link.update(|state, out| {
                    if connected && !was {
                        state.connected();
                    } else if !connected && was {
                        let why = match &offline {
                            Some(why) => why.clone(),
                            None => {
                                let why = status["link_error"].as_str().unwrap_or("disconnected");
                                format!("at its gateway: {why}")
                            }
                        };
                        state.disconnected(why);
                    }
                    if let Some(h) = hello {
                        state.ingest(DeviceMsg::Hello(h), now, out);
                    }
                });
                self.connected = connected;
                self.hello |= said;
            }
            "config" if self.hello => {
                let Ok(view) = serde_json::from_slice::<serde_json::Value>(payload) else {
                    return;
                };
                let (Some(version), Ok(config)) = (
                    view["version"].as_u64(),
                    serde_json::from_value::<DetectorConfig>(view["config"].clone()),
                ) else {
                    return;
                };
                let ack = Ack {
                    id: 0,
                    result: AckResult::Ok,
                    config_version: version as u32,
                    config,
                };
                self.link
                    .update(|state, out| state.ingest(DeviceMsg::Ack(ack), now, out));
            }
            "points" => {
                let Ok(Batch { points }) = serde_json::from_slice::<Batch>(payload) else {
                    return;
                };
                let last = &mut self.last;
                self.link.update(|state, out| {
                    for i in 0..points.seq.len() {
                        let key = (points.t[i], points.seq[i]);
                        if last.is_some_and(|l| key <= l) {
                            continue;
                        }
                        *last = Some(key);
                        let sample = Sample {
                            seq: points.seq[i],
                            time_ms: points.device_time_ms[i],
                            value: points.value[i],
                            mean: points.mean[i],
                            std: points.std[i],
                            z: points.z[i],
                            score: points.score[i],
                            flags: Flags(points.flags[i]),
                            config_version: points.config_version[i],
                        };
                        state.ingest(DeviceMsg::Sample(sample), now, out);
                    }
                });
            }
            "ack" => {
                if let Ok(ack) = serde_json::from_slice::<Ack>(payload) {
                    self.link
                        .update(|state, out| state.ingest(DeviceMsg::Ack(ack), now, out));
                }
            }
            _ => {}
        }
    }
}

/// The hello a remote device said to its gateway, rebuilt from its status.
fn hello(status: &serde_json::Value) -> Option<Hello> {
    let device: crate::daemon::state::DeviceInfo =
        serde_json::from_value(status["device"].clone()).ok()?;
    let config: DetectorConfig = serde_json::from_value(status["config"].clone()).ok()?;
    Some(Hello {
        protocol: device.protocol,
        firmware: name(&device.firmware),
        board: name(&device.board),
        capacity: device.capacity,
        sample_rate_hz: device.sample_rate_hz,
        config_version: status["config_version"].as_u64()? as u32,
        detector: config,
        simulator: device.has_truth.then(SimConfig::default),
        season_capacity: device.season_capacity,
    })
}

/// The `type` of an update (`{"type":"points",…}`), read from its first bytes.
fn kind(json: &str) -> Option<&str> {
    let rest = json.strip_prefix("{\"type\":\"")?;
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_read_or_refused_with_the_reason() {
        let s = MqttSetting::parse("mqtt://zs:pw@broker.lan:1884", "gw".into()).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("broker.lan", 1884));
        assert_eq!(s.credentials, Some(("zs".into(), "pw".into())));
        assert!(!s.url.contains("pw"), "{}", s.url);
        let s = MqttSetting::parse("mqtt://127.0.0.1", "gw".into()).unwrap();
        assert_eq!((s.port, s.credentials), (1883, None));
        let e = MqttSetting::parse("http://broker", "gw".into()).unwrap_err();
        assert!(e.contains("must be mqtt://"), "{e}");
        let e = MqttSetting::parse("broker:1883", "gw".into()).unwrap_err();
        assert!(e.contains("--mqtt"), "{e}");
        // TLS, and a password with characters a URL must escape.
        let s = MqttSetting::parse("mqtts://zs:a%2Fb%40c@broker.lan", "gw".into()).unwrap();
        assert!(s.tls);
        assert_eq!(s.port, 8883);
        assert_eq!(s.credentials, Some(("zs".into(), "a/b@c".into())));
        let plus = MqttSetting::parse("mqtt://zs:p+q@broker.lan", "gw".into()).unwrap();
        assert_eq!(plus.credentials, Some(("zs".into(), "p+q".into())));
        let missing = s.with_ca(Some("/nonexistent/ca.pem".into())).options("gw");
        let e = format!("{:#}", missing.err().unwrap());
        assert!(e.contains("--mqtt-ca /nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_daemon_going_offline_takes_its_devices_with_it() {
        let mut d = Daemons::default();
        assert!(d.receive("gw1/devices", br#"["a","b"]"#).is_empty());
        assert!(d.receive("gw1/online", b"true").is_empty());
        assert_eq!(d.offline("a"), None);
        let gone = d.receive("gw1/online", b"false");
        let names: Vec<&str> = gone.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(gone[0].1.contains("(gw1) is offline"), "{}", gone[0].1);
        assert!(d.offline("b").is_some());
        assert_eq!(d.offline("c"), None);
        // Retained messages come in any order: a list after the will still counts.
        assert_eq!(d.receive("gw2/online", b"false"), []);
        assert_eq!(d.receive("gw2/devices", br#"["c"]"#).len(), 1);
        assert!(d.receive("gw1/online", b"true").is_empty());
        assert_eq!(d.offline("a"), None);
    }

    #[test]
    fn the_kind_of_an_update_is_read_from_its_start() {
        assert_eq!(kind(r#"{"type":"points","points":{}}"#), Some("points"));
        assert_eq!(kind(r#"{"type":"status"}"#), Some("status"));
        assert_eq!(kind(r#"{"t":1}"#), None);
    }
}
