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
//!
//! JSON rather than the device's postcard frames: any MQTT tool can read it, and it is what
//! the page reads already. Publishing never holds up ingest: each device's messages come from
//! its WebSocket broadcast (already encoded) and go to the client's bounded queue; a message
//! that finds it full, or that a slow broker made the broadcast skip, is dropped and counted.
//! A broker that is down or goes away is retried every second up to every 30 s, and the
//! status says so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::daemon::Device;

/// Messages waiting for the broker at most (per daemon).
pub const QUEUE: usize = 1024;

/// Where to publish: `mqtt://[user[:password]@]host[:port]` (1883 by default).
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
}

impl MqttSetting {
    /// Parse `mqtt://…`; the reason when it is not one.
    pub fn parse(url: &str, client_id: String) -> Result<MqttSetting, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--mqtt '{url}': {e}"))?;
        if parsed.scheme() != "mqtt" {
            return Err(format!(
                "--mqtt '{url}': the scheme must be mqtt:// (TLS brokers are not supported yet)"
            ));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("--mqtt '{url}' has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let credentials = match parsed.username() {
            "" => None,
            user => Some((
                user.to_string(),
                parsed.password().unwrap_or_default().to_string(),
            )),
        };
        let mut shown = parsed.clone();
        let _ = shown.set_password(None);
        Ok(MqttSetting {
            url: shown.to_string(),
            host,
            port: parsed.port().unwrap_or(1883),
            credentials,
            client_id,
        })
    }
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
    /// The last connection error, while not connected.
    pub last_error: Option<String>,
}

fn lock(s: &Mutex<MqttStatus>) -> std::sync::MutexGuard<'_, MqttStatus> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The presence topic of a daemon.
pub fn online_topic(client_id: &str) -> String {
    format!("zscope/daemons/{client_id}/online")
}

/// Start publishing `devices` to the broker: the status, updated as it goes, and the client
/// (to say goodbye with).
pub fn spawn(setting: &MqttSetting, devices: &[Device]) -> (Arc<Mutex<MqttStatus>>, AsyncClient) {
    let status = Arc::new(Mutex::new(MqttStatus {
        url: setting.url.clone(),
        ..MqttStatus::default()
    }));
    let mut options = MqttOptions::new(&setting.client_id, &setting.host, setting.port);
    options.set_keep_alive(Duration::from_secs(10));
    let online = online_topic(&setting.client_id);
    options.set_last_will(LastWill::new(&online, "false", QoS::AtLeastOnce, true));
    if let Some((user, password)) = &setting.credentials {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, QUEUE);
    // The connection: (re)connect with backoff, and say so.
    {
        let status = status.clone();
        let client = client.clone();
        let online = online.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!("MQTT: connected to {}", lock(&status).url);
                        {
                            let mut s = lock(&status);
                            s.connected = true;
                            s.last_error = None;
                        }
                        backoff = Duration::from_secs(1);
                        let _ = client.try_publish(&online, QoS::AtLeastOnce, true, "true");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let was = {
                            let mut s = lock(&status);
                            let was = s.connected || s.last_error.is_none();
                            s.connected = false;
                            s.last_error = Some(e.to_string());
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
    // Each device: its broadcast of encoded updates, and its events, to topics.
    for d in devices {
        let (client, status, name) = (client.clone(), status.clone(), d.name.clone());
        let mut updates = d.shared.updates.subscribe();
        let mut events = d.shared.events.subscribe();
        tokio::spawn(async move {
            let publish = |topic: &str, qos: QoS, retain: bool, payload: Vec<u8>| {
                let sent =
                    client.try_publish(format!("zscope/{name}/{topic}"), qos, retain, payload);
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
                                Some("points") => ("points", QoS::AtMostOnce, false),
                                Some("status") => ("status", QoS::AtMostOnce, true),
                                Some("config") => ("config", QoS::AtLeastOnce, true),
                                _ => continue,
                            };
                            publish(topic, qos, retain, text.as_bytes().to_vec());
                        }
                        Err(RecvError::Lagged(n)) => lock(&status).dropped += n,
                        Err(RecvError::Closed) => return,
                    },
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
    (status, client)
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
    }

    #[test]
    fn the_kind_of_an_update_is_read_from_its_start() {
        assert_eq!(kind(r#"{"type":"points","points":{}}"#), Some("points"));
        assert_eq!(kind(r#"{"type":"status"}"#), Some("status"));
        assert_eq!(kind(r#"{"t":1}"#), None);
    }
}
