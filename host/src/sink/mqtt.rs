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
//! A daemon started with `--subscribe URL` is a central one: `crate::source::mqtt` makes each
//! device published to the broker one of its own devices (state, logs, page, notifications),
//! and sends config changes from its page back through `command`, acknowledged through `ack`.
//!
//! JSON rather than the device's postcard frames: any MQTT tool can read it, and it is what
//! the page reads already. Publishing never holds up ingest: each device's typed updates come
//! from its hub ([`crate::device::Message`]: the topic from the update's kind, the payload its
//! JSON, encoded once for the pages and MQTT alike) and go to the client's bounded queue; a
//! message that finds it full, or that a slow broker made the updates skip, is dropped and
//! counted.
//! A broker that is down or goes away is retried every second up to every 30 s, and the
//! status says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::broadcast::error::RecvError;
use zscope_core::wire::HostMsg;

use super::command::{CommandKey, Gate};
use crate::device::{Device, Message, Registry, Update, lock};
use crate::model::MqttStatus;
use crate::retry::Backoff;

/// Messages waiting for the broker at most (per client).
pub const BROKER_QUEUE: usize = 1024;

/// The largest packet MQTT can carry: a remaining length of 268 435 455 bytes and its fixed
/// header.
const MQTT_MAX_PACKET: usize = 268_435_455 + 5;

/// The largest message the daemon takes from the broker (a command, a device's status or
/// points: a second of points at 10 kHz is about 200 KB); a larger one is refused and counted.
pub const MAX_MESSAGE: usize = 1 << 20;

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
    /// The key commands between daemons are signed with (`--mqtt-command-key`): a gateway
    /// takes only commands signed with it, a central daemon signs with it.
    pub command_key: Option<CommandKey>,
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
            command_key: None,
        })
    }

    /// Check the broker's certificate against the CA in `ca` (PEM).
    pub fn with_ca(mut self, ca: Option<std::path::PathBuf>) -> Self {
        self.ca = ca;
        self
    }

    /// Sign (central) or check (gateway) commands with `key`.
    pub fn with_command_key(mut self, key: Option<CommandKey>) -> Self {
        self.command_key = key;
        self
    }

    /// The client's options under `client_id`: a persistent session (the broker keeps what
    /// was sent at QoS 1 for it while it is away, and it sends again what the broker had not
    /// acknowledged), credentials, TLS. An unreadable CA file is an error that says so.
    pub fn options(&self, client_id: &str) -> anyhow::Result<MqttOptions> {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_clean_session(false);
        // Any packet MQTT can carry is read, so one oversize message never breaks the
        // connection (at QoS 1 the broker would send it again at every reconnection, for
        // ever); whoever reads a message refuses one over MAX_MESSAGE.
        options.set_max_packet_size(MQTT_MAX_PACKET, 4 << 20);
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
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
    let (client, mut eventloop) = AsyncClient::new(options, BROKER_QUEUE);
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
        let mut gate = Gate::new(setting.command_key.clone());
        tokio::spawn(async move {
            let mut backoff = Backoff::broker();
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
                        backoff.succeeded();
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
                        if p.payload.len() > MAX_MESSAGE {
                            tracing::warn!(
                                "MQTT: a command for {name} of {} bytes refused (at most {MAX_MESSAGE})",
                                p.payload.len()
                            );
                            continue;
                        }
                        let now_ms = chrono::Utc::now().timestamp_millis();
                        match gate.take(name, &p.payload, now_ms) {
                            Ok(cmd) => relay(&client, &device, cmd),
                            Err(why) => {
                                let refused = {
                                    let mut s = lock(&status);
                                    s.commands_refused += 1;
                                    s.commands_refused
                                };
                                // Said at the 1st, 2nd, 4th, 8th…: a flood is counted, not logged.
                                if refused.is_power_of_two() {
                                    tracing::warn!(
                                        "MQTT: a command for {name} refused: {why} ({refused} so far)"
                                    );
                                }
                            }
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
                        tokio::time::sleep(backoff.failed()).await;
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
                        d.hub.set_mqtt(status.clone());
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
    let mut updates = d.hub.updates.subscribe();
    let mut events = d.hub.events.subscribe();
    // The config as last published, to publish again after a reconnection.
    let mut config = Message::new(Update::Config(d.hub.state().config_view()));
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
                    Ok(message) => {
                        let (topic, qos, retain) = match &message.update {
                            Update::Points { .. } => ("points", QoS::AtLeastOnce, false),
                            Update::Status(_) => ("status", QoS::AtMostOnce, true),
                            Update::Config(_) => ("config", QoS::AtLeastOnce, true),
                        };
                        publish(topic, qos, retain, message.json.as_bytes().to_vec());
                        if let Update::Config(_) = message.update {
                            config = message;
                        }
                    }
                    Err(RecvError::Lagged(n)) => lock(&status).dropped += n,
                    Err(RecvError::Closed) => return,
                },
                changed = reconnected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    publish("config", QoS::AtLeastOnce, true, config.json.as_bytes().to_vec());
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
pub fn explain(e: &rumqttc::ConnectionError) -> String {
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
pub fn low_latency() -> rumqttc::NetworkOptions {
    let mut options = rumqttc::NetworkOptions::new();
    options.set_tcp_nodelay(true);
    options
}

/// `zscope/<device>/<kind>` as (device, kind).
pub fn split_topic(topic: &str) -> Option<(&str, &str)> {
    let mut parts = topic.strip_prefix("zscope/")?.split('/');
    let (name, kind) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && name != "daemons").then_some((name, kind))
}

/// Carry out `cmd` (from a central daemon) on `device`, and publish its acknowledgement under
/// the central daemon's id.
fn relay(client: &AsyncClient, device: &Device, cmd: HostMsg) {
    let remote_id = cmd.id();
    let rx = device.hub.command(|id| cmd.with_id(id));
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
}
