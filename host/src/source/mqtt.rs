//! `--subscribe URL`: a central daemon. Each device other daemons publish to the broker (see
//! [`crate::sink::mqtt`] for the topics) becomes a device of this daemon, made through
//! [`Attach`] like any other (its own state, logs, page, notifications), fed from its topics:
//! the retained status and config say hello, the points batches are its samples, acks complete
//! the config changes this daemon's page sends it through `zscope/<device>/command`. A
//! daemon's presence going `false` (it said goodbye, or the broker sent its last will) marks
//! its devices disconnected.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, QoS};
use zscope_core::DetectorConfig;
use zscope_core::wire::{Ack, DeviceMsg};

use crate::device::{Attach, Feed, Registry};
use crate::model::Points;
use crate::model::state::{DeviceInfo, MAX_CLOCK_JUMP_MS};
use crate::retry::Backoff;
use crate::sink::mqtt::{
    BROKER_QUEUE, MAX_MESSAGE, MqttSetting, explain, low_latency, split_topic,
};

/// Names refused (not a safe name, or a device of this daemon's own) remembered so that their
/// refusal is logged once: at most this many, so a broker cannot grow the daemon's memory.
const MAX_REFUSED: usize = 1024;

/// Show the devices other daemons publish to the broker: each becomes a device of this
/// daemon (its own state, logs, page, notifications), fed from its topics: the retained
/// status and config say hello, the points batches are its samples, acks complete the config
/// changes this daemon's page sends it through `zscope/<device>/command`. A daemon's presence
/// going `false` (it said goodbye, or the broker sent its last will) marks its devices
/// disconnected.
pub fn subscribe(
    setting: &MqttSetting,
    registry: Arc<Registry>,
    attach: Arc<dyn Attach>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let options = setting.options(&setting.client_id)?;
    let (client, mut eventloop) = AsyncClient::new(options, BROKER_QUEUE);
    eventloop.set_network_options(low_latency());
    let url = setting.url.clone();
    let key = setting.command_key.clone();
    Ok(tokio::spawn(async move {
        let mut remotes: HashMap<String, Remote> = HashMap::new();
        let mut refused: HashSet<String> = HashSet::new();
        let mut daemons = Daemons::default();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut backoff = Backoff::broker();
        loop {
            tokio::select! {
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        tracing::info!(
                            "MQTT: subscribed to the devices on {url} (session {})",
                            if ack.session_present { "resumed" } else { "new" }
                        );
                        backoff.succeeded();
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
                        if p.payload.len() > MAX_MESSAGE {
                            // Read (the connection stays up) and refused; counted for its device.
                            if let Some(r) = remotes.get_mut(name) {
                                r.refuse(kind, p.payload.len());
                            } else {
                                tracing::warn!(
                                    "MQTT: a message of {} bytes on {:?} refused (at most {MAX_MESSAGE})",
                                    p.payload.len(),
                                    p.topic
                                );
                            }
                            continue;
                        }
                        let remote = match remotes.get_mut(name) {
                            Some(r) => r,
                            None if refused.contains(name) => continue,
                            None => {
                                let r = match Remote::create(name, &url, &registry, attach.as_ref()) {
                                    Ok(r) => r,
                                    Err(why) => {
                                        // Said once; its later messages are ignored quietly
                                        // (past MAX_REFUSED names, none is said).
                                        if refused.len() < MAX_REFUSED {
                                            tracing::warn!("MQTT: {why}");
                                            refused.insert(name.to_string());
                                        }
                                        continue;
                                    }
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
                            r.feed.update(|s, _| s.disconnected(format!("broker {url}: {e}")));
                            r.connected = false;
                        }
                        tokio::time::sleep(backoff.failed()).await;
                    }
                },
                _ = tick.tick() => {
                    // Config changes from this daemon's page, to the device's gateway.
                    for (name, r) in remotes.iter_mut() {
                        while let Ok(cmd) = r.feed.commands.try_recv() {
                            let payload = match &key {
                                Some(key) => {
                                    // Each newer than the last: the gateway refuses one that is not.
                                    let now = chrono::Utc::now().timestamp_millis();
                                    r.signed_at = now.max(r.signed_at + 1);
                                    key.sign(name, &cmd, r.signed_at)
                                }
                                None => serde_json::to_vec(&cmd).unwrap_or_default(),
                            };
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
    offline: HashSet<String>,
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
struct PointsMessage {
    points: Points,
}

/// A device another daemon publishes, as this daemon sees it.
struct Remote {
    feed: Feed,
    hello: bool,
    connected: bool,
    /// The last point taken (its gateway's time, which never goes back, and sequence
    /// number): a batch the broker delivers twice (QoS 1 is at least once) is taken once.
    last: Option<(f64, u64)>,
    /// The time the last command to it was signed at (ms since the Unix epoch).
    signed_at: i64,
}

impl Remote {
    /// The device `name` publishes, made a device of this daemon; or why not (said once by
    /// the caller).
    fn create(
        name: &str,
        url: &str,
        registry: &Registry,
        attach: &dyn Attach,
    ) -> Result<Remote, String> {
        if registry.find(Some(name)).is_some() {
            return Err(format!(
                "a device called {name} is here already; its topics are ignored"
            ));
        }
        let port = format!("{}/zscope/{name}", url.trim_end_matches('/'));
        let feed = attach
            .attach(name, port, &format!("published to {url}"), true)
            .map_err(|e| format!("cannot add {name:?}: {e:#}; its topics are ignored"))?;
        Ok(Remote {
            feed,
            hello: false,
            connected: false,
            last: None,
            signed_at: 0,
        })
    }

    /// A message of `bytes` on its `kind` topic, refused for its size: counted (said once).
    fn refuse(&mut self, kind: &str, bytes: usize) {
        let first = self.feed.update(|state, _| state.refuse_message() == 1);
        if first {
            tracing::warn!(
                "MQTT: a {kind} message of {bytes} bytes for {} refused (at most {MAX_MESSAGE}); \
                 the next are counted in its status",
                self.feed.hub.state().device_name()
            );
        }
    }

    /// Its daemon went offline (said goodbye, or its last will came).
    fn gateway_gone(&mut self, why: String) {
        self.feed.update(|state, _| state.disconnected(why));
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
                let hello = (!self.hello).then(|| greeting(&status)).flatten();
                let said = hello.is_some();
                let was = self.connected;
                self.feed.update(|state, out| {
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
                    if let Some((device, version, config)) = hello {
                        state.greet(device, version, config, now, out);
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
                self.feed
                    .update(|state, out| state.adopt(version as u32, config, true, now, out));
            }
            "points" => {
                let Ok(PointsMessage { points }) = serde_json::from_slice::<PointsMessage>(payload)
                else {
                    return;
                };
                // A batch the broker delivers twice (QoS 1 is at least once) is taken once:
                // only points after the last one taken (its gateway's time, which never goes
                // back, and sequence number). A point stamped beyond the clock's leeway (a
                // wild gateway clock, a forged batch) is taken as now and sets no mark: one
                // such batch must not make every later point look old.
                let last = self.last;
                let fresh = points
                    .iter()
                    .skip_while(|p| last.is_some_and(|l| (p.t, p.seq) <= l));
                let horizon = now.timestamp_millis() as f64 + MAX_CLOCK_JUMP_MS;
                let mut newest = None;
                self.feed.update(|state, out| {
                    let marked = fresh.inspect(|p| {
                        if p.t <= horizon {
                            newest = Some((p.t, p.seq));
                        }
                    });
                    state.take_points(marked, now, out);
                });
                self.last = newest.or(last);
            }
            "ack" => {
                if let Ok(ack) = serde_json::from_slice::<Ack>(payload) {
                    self.feed
                        .update(|state, out| state.ingest(DeviceMsg::Ack(ack), now, out));
                }
            }
            _ => {}
        }
    }
}

/// What a remote device told its gateway (who it is, its config version and config), from
/// its retained status.
fn greeting(status: &serde_json::Value) -> Option<(DeviceInfo, u32, DetectorConfig)> {
    let device: DeviceInfo = serde_json::from_value(status["device"].clone()).ok()?;
    let config: DetectorConfig = serde_json::from_value(status["config"].clone()).ok()?;
    let version = u32::try_from(status["config_version"].as_u64()?).ok()?;
    Some((device, version, config))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
