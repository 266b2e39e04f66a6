//! The fleet through a real Mosquitto: a daemon publishing its devices, a central daemon
//! showing what gateways publish (and configuring their devices back through the broker),
//! broker restarts and crashes, presence, TLS and passwords.

use std::time::Duration;

use serde_json::{Value, json};
use zscope_host::source::SourceSetting;
use zscope_tests::{Daemon, device, on, points, wait_for};

/// MQTT through a real Mosquitto: the daemon publishes its device's points (every one, in
/// order), anomaly events, retained status and config, and its presence (`true`, then
/// `false` when it stops).
#[test]
fn the_daemon_publishes_to_a_real_broker() {
    use rumqttc::{Event, Packet};
    use zscope_tests::{MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools("the_daemon_publishes_to_a_real_broker", MQTT_TOOLS) {
        return;
    }
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyMQTT");
    let dev = device(&link);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let daemon = Daemon::start(on(&link), move |s| {
        s.mqtt = Some(
            zscope_host::sink::mqtt::MqttSetting::parse(&url, "gateway-1".into())
                .expect("a broker URL"),
        );
    });
    wait_for(
        Duration::from_secs(10),
        "the daemon connected to the broker",
        || (daemon.get("/api/status")["mqtt"]["connected"] == json!(true)).then_some(()),
    );
    // A subscriber, as another program would be.
    let (_reader, mut connection) = reader(broker.port, "reader", "zscope/#", 100);
    let mut got: Vec<(String, Value)> = Vec::new();
    let started = std::time::Instant::now();
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
            got.push((p.topic.clone(), v));
        }
        let events = got.iter().filter(|(t, _)| t.ends_with("/events")).count();
        if (events >= 2 && started.elapsed() > Duration::from_secs(3))
            || started.elapsed() > Duration::from_secs(30)
        {
            break;
        }
    }
    let topics = |suffix: &str| -> Vec<&Value> {
        got.iter()
            .filter(|(t, _)| t == &format!("zscope/ttyMQTT/{suffix}"))
            .map(|(_, v)| v)
            .collect()
    };
    // Retained on subscribing: the status, the config, the presence.
    assert!(
        topics("status")
            .iter()
            .any(|s| s["connected"] == json!(true))
    );
    assert!(
        topics("config")
            .iter()
            .any(|c| c["config"]["window"] == json!(64))
    );
    assert!(
        got.iter()
            .any(|(t, v)| t == "zscope/daemons/gateway-1/online" && *v == json!(true)),
        "{:?}",
        got.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    // Every point, in order, across batches.
    let seqs: Vec<u64> = topics("points")
        .iter()
        .flat_map(|b| b["points"]["seq"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s.as_u64())
        .collect();
    assert!(seqs.len() > 500, "{} points", seqs.len());
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap in the published points"
    );
    // Events: flagged points, each the start of a run.
    let events = topics("events");
    assert!(events.len() >= 2);
    assert!(
        events
            .iter()
            .all(|e| e["flags"].as_u64().unwrap_or(0) & 1 == 1)
    );
    let status = daemon.get("/api/status");
    assert_eq!(status["mqtt"]["dropped"], json!(0), "{status}");
    // Stopping says goodbye: presence false (retained).
    dev.stop().unwrap();
    let _logs = daemon.stop();
    let (_reader, mut connection) =
        reader(broker.port, "late-reader", "zscope/daemons/+/online", 10);
    let mut presence = None;
    for event in connection.iter().take(20) {
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            presence = Some(String::from_utf8_lossy(&p.payload).into_owned());
            break;
        }
    }
    assert_eq!(presence.as_deref(), Some("false"));
}

/// What comes from the broker comes from anyone who can publish to it. Device names come from
/// topics: a central daemon makes devices only of names that are one safe folder (`..`, `.`,
/// an empty level, a space or a name of 200 bytes are refused), and writes nothing outside its
/// log folder. A 10 MB message at QoS 1 is refused and counted, and the connection (and so
/// the whole fleet) stays up.
#[test]
fn a_central_daemon_refuses_hostile_names_and_oversize_messages() {
    use zscope_tests::{MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools(
        "a_central_daemon_refuses_hostile_names_and_oversize_messages",
        MQTT_TOOLS,
    ) {
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let central =
        central(zscope_host::sink::mqtt::MqttSetting::parse(&url, "central".into()).unwrap());
    let client = zscope_tests::mqtt_publisher("hostile", broker.port, 64);
    let publish = |name: &str| {
        client
            .publish(
                format!("zscope/{name}/status"),
                rumqttc::QoS::AtLeastOnce,
                false,
                r#"{"connected": true}"#,
            )
            .unwrap();
    };
    // A good name first (again until the centre, subscribed, lists it).
    let names = |d: &Daemon| -> Vec<String> {
        d.get("/api/devices")
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|d| d["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(20), "good-1 at the centre", || {
        publish("good-1");
        names(&central)
            .contains(&"good-1".to_string())
            .then_some(())
    });
    let long = "n".repeat(200);
    for bad in ["..", ".", "", "a b", "...", &long] {
        publish(bad);
    }
    // One client's messages reach the centre in the order sent: once good-2 is listed, every
    // bad name before it has been seen.
    publish("good-2");
    wait_for(Duration::from_secs(20), "good-2 at the centre", || {
        names(&central)
            .contains(&"good-2".to_string())
            .then_some(())
    });
    let mut listed = names(&central);
    listed.sort();
    assert_eq!(listed, ["good-1", "good-2"]);
    // Every file the centre wrote is in a device's folder under its log folder.
    let root = central.log_dir.parent().unwrap().to_path_buf();
    let mut stack = vec![root.clone()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "the good devices' logs are written");
    for f in &files {
        let folder = f
            .parent()
            .and_then(|p| p.strip_prefix(&central.log_dir).ok());
        assert!(
            folder.is_some_and(
                |d| d == std::path::Path::new("good-1") || d == std::path::Path::new("good-2")
            ),
            "{} is outside the good devices' folders",
            f.display()
        );
    }

    // 10 MB of points for good-1, at QoS 1: read, refused, counted; no reconnection.
    client
        .publish(
            "zscope/good-1/points",
            rumqttc::QoS::AtLeastOnce,
            false,
            vec![b'x'; 10 << 20],
        )
        .unwrap();
    publish("good-3");
    wait_for(Duration::from_secs(30), "good-3 at the centre", || {
        names(&central)
            .contains(&"good-3".to_string())
            .then_some(())
    });
    let s = central.get("/api/devices/good-1/status");
    assert_eq!(s["counters"]["messages_refused"], json!(1), "{s}");
    assert_eq!(
        s["counters"]["connections"],
        json!(1),
        "never reconnected: {s}"
    );
    assert_eq!(s["connected"], json!(true), "{s}");

    // A batch stamped a day ahead: taken as now and counted; the batch after it, stamped
    // now, is taken too (it once looked older than the day-ahead one and was dropped as a
    // duplicate, with every later point of the device).
    let now = chrono::Utc::now().timestamp_millis() as f64;
    let send = |payload: Vec<u8>| {
        client
            .publish(
                "zscope/good-1/points",
                rumqttc::QoS::AtLeastOnce,
                false,
                payload,
            )
            .unwrap();
    };
    send(zscope_tests::points_message(0, 10, now + 86_400_000.0));
    send(zscope_tests::points_message(10, 10, now));
    let s = wait_for(
        Duration::from_secs(20),
        "both batches at the centre",
        || {
            let s = central.get("/api/devices/good-1/status");
            (s["counters"]["samples"] == json!(20)).then_some(s)
        },
    );
    assert_eq!(s["counters"]["time_jumps"], json!(10), "{s}");
    let seqs: Vec<u64> = points(&central.get("/api/devices/good-1/samples?limit=100"))
        .iter()
        .filter_map(|p| p["seq"].as_u64())
        .collect();
    assert_eq!(seqs, (0..20).collect::<Vec<u64>>());
}

/// A central daemon holds at most `--max-devices` devices: the ones past it are refused, said
/// once and counted (`/api/status`'s daemon part, `/api/fleet`, `/metrics`); every device
/// from the broker is written by one shared thread, and keeps only a snapshot's worth of
/// points in memory (12 000 published: the latest 10 000 in memory, every one in its CSV).
#[test]
fn a_central_daemon_holds_at_most_its_cap_on_one_writer_thread() {
    use zscope_tests::{MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools(
        "a_central_daemon_holds_at_most_its_cap_on_one_writer_thread",
        MQTT_TOOLS,
    ) {
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let setting = zscope_host::sink::mqtt::MqttSetting::parse(&url, "central".into()).unwrap();
    let central = zscope_tests::central_daemon(setting, |s| s.max_devices = 3);
    let client = zscope_tests::mqtt_publisher("fleet", broker.port, 64);
    let t0 = chrono::Utc::now().timestamp_millis() as f64 - 60_000.0;
    let points_of = |from: u64, n: u64| zscope_tests::points_message(from, n, t0 + from as f64);
    let publish = |name: &str, kind: &str, payload: Vec<u8>| {
        client
            .publish(
                format!("zscope/{name}/{kind}"),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload,
            )
            .unwrap();
    };
    // The first device, until the centre (subscribed by then) lists it.
    wait_for(Duration::from_secs(20), "dev-1 at the centre", || {
        publish("dev-1", "status", br#"{"connected": true}"#.to_vec());
        (central.get("/api/fleet")["total"] == json!(1)).then_some(())
    });
    // 12 000 points for dev-1, in three messages; then four devices more, twice each.
    for k in 0..3 {
        publish("dev-1", "points", points_of(k * 4000, 4000));
    }
    for _ in 0..2 {
        for name in ["dev-2", "dev-3", "dev-4", "dev-5"] {
            publish(name, "status", br#"{"connected": true}"#.to_vec());
        }
    }
    let status = wait_for(Duration::from_secs(20), "two devices refused", || {
        let s = central.get("/api/devices/dev-1/status");
        (s["daemon"]["devices_refused"] == json!(2)).then_some(s)
    });
    assert_eq!(status["daemon"]["devices"], json!(3), "{status}");
    assert_eq!(status["daemon"]["max_devices"], json!(3), "{status}");
    assert_eq!(
        status["daemon"]["log_writer_threads"],
        json!(1),
        "three remote devices, one thread: {status}"
    );
    let fleet = central.get("/api/fleet");
    let names = |f: &Value| -> Vec<String> {
        f["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&fleet), ["dev-1", "dev-2", "dev-3"], "{fleet}");
    assert_eq!(
        (fleet["total"].clone(), fleet["refused"].clone()),
        (json!(3), json!(2))
    );
    // Paged and filtered.
    let page = central.get("/api/fleet?offset=1&limit=1");
    assert_eq!(names(&page), ["dev-2"], "{page}");
    assert_eq!(page["matching"], json!(3));
    let one = central.get("/api/fleet?match=V-3");
    assert_eq!(
        (names(&one), one["matching"].clone()),
        (vec!["dev-3".to_string()], json!(1))
    );
    // A flagged point for dev-3, stamped now: first with alerting_first, not otherwise.
    let mut flagged: Value = serde_json::from_slice(&zscope_tests::points_message(
        0,
        1,
        chrono::Utc::now().timestamp_millis() as f64,
    ))
    .unwrap();
    flagged["points"]["flags"] = json!([1]);
    publish("dev-3", "points", serde_json::to_vec(&flagged).unwrap());
    let alerting = wait_for(Duration::from_secs(10), "dev-3 alerting", || {
        let f = central.get("/api/fleet?alerting_first=true");
        (names(&f)[0] == "dev-3").then_some(f)
    });
    assert_eq!(names(&alerting), ["dev-3", "dev-1", "dev-2"]);
    assert_eq!(
        names(&central.get("/api/fleet")),
        ["dev-1", "dev-2", "dev-3"]
    );
    // Said once each, counted in /metrics too.
    let metrics = ureq::get(&central.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for line in [
        "zscope_devices 3",
        "zscope_max_devices 3",
        "zscope_devices_refused_total 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
    // dev-1: every point in its CSV, the latest 10 000 in memory.
    let csv = central.log_dir.join("dev-1/samples.csv");
    wait_for(
        Duration::from_secs(20),
        "12 000 rows in dev-1's CSV",
        || {
            let rows = std::fs::read_to_string(&csv).ok()?.lines().count();
            (rows == 12_001).then_some(())
        },
    );
    let kept = points(&central.get("/api/devices/dev-1/samples?limit=200000"));
    assert_eq!(kept.len(), 10_000);
    assert_eq!(kept[0]["seq"], json!(2000));
    assert_eq!(kept[9999]["seq"], json!(11_999));
    assert!(
        !central.log_dir.join("dev-4").exists(),
        "a refused device writes nothing"
    );
}

/// A gateway daemon next to the board publishes through a real Mosquitto; a central daemon
/// shows its device (same points), and a config change from the central side travels back
/// through the broker to the device, is acknowledged, and shows on both sides.
#[test]
fn a_central_daemon_shows_and_configures_a_gateways_device() {
    use zscope_tests::{MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools(
        "a_central_daemon_shows_and_configures_a_gateways_device",
        MQTT_TOOLS,
    ) {
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyGW");
    let dev = device(&link);
    let (gateway, central) = gateway_and_central(&url, on(&link), None);
    let status = wait_for(
        Duration::from_secs(20),
        "the gateway's device at the centre",
        || {
            let list = central.get("/api/devices");
            let s = list
                .as_array()?
                .iter()
                .find(|d| d["name"] == json!("ttyGW"))?
                .clone();
            (s["connected"] == json!(true) && s["counters"]["samples"].as_u64() > Some(300))
                .then_some(s)
        },
    );
    assert!(
        status["board"].as_str().unwrap_or("").contains("emulated"),
        "{status}"
    );
    // The same points on both sides (the centre's latest are the gateway's).
    let at_centre = points(&central.get("/api/devices/ttyGW/samples?limit=100"));
    let last = at_centre.last().unwrap()["seq"].as_u64().unwrap();
    let at_gateway = points(&gateway.get("/api/samples?limit=100000"));
    let same = |p: &Value| {
        let seq = p["seq"].as_u64().unwrap();
        at_gateway
            .iter()
            .find(|g| g["seq"].as_u64() == Some(seq))
            .is_some_and(|g| {
                g["value"] == p["value"] && g["z"] == p["z"] && g["flags"] == p["flags"]
            })
    };
    assert!(
        at_centre.iter().all(same),
        "the centre's points are the gateway's (to {last})"
    );
    // A config change from the centre: acknowledged by the device, through the broker.
    let (code, answer) = central.post("/api/devices/ttyGW/config", &json!({ "threshold": 4.5 }));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["version"], json!(2));
    assert_eq!(answer["config"]["threshold"], json!(4.5));
    assert_eq!(gateway.get("/api/config")["version"], json!(2));
    wait_for(
        Duration::from_secs(10),
        "the centre judged under config 2",
        || {
            let p = points(&central.get("/api/devices/ttyGW/samples?limit=5"));
            (p.last()?["config_version"] == json!(2)).then_some(())
        },
    );
    assert_eq!(
        central.get("/api/devices/ttyGW/config")["config"]["threshold"],
        json!(4.5)
    );
    dev.stop().unwrap();
    drop(gateway);
    drop(central);
}

/// With `--mqtt-command-key`, a gateway takes only commands signed with its key: the central
/// daemon holding it changes the device's config; one with another key, a plain command from
/// any client of the broker, and the good central's own signed command sent again are
/// refused and counted, and the config stays as it was.
#[test]
fn a_gateway_with_a_command_key_takes_only_commands_signed_with_it() {
    use zscope_host::sink::command::CommandKey;
    use zscope_host::sink::mqtt::MqttSetting;
    use zscope_tests::{MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools(
        "a_gateway_with_a_command_key_takes_only_commands_signed_with_it",
        MQTT_TOOLS,
    ) {
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let key = |k: &str| Some(CommandKey::new(k.as_bytes()).unwrap());
    let setting = |id: &str, k: &str| {
        MqttSetting::parse(&url, id.into())
            .unwrap()
            .with_command_key(key(k))
    };
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyKEY");
    let dev = device(&link);
    let gw = setting("gw", "the gateway's own secret key");
    let gateway = Daemon::start(on(&link), move |s| s.mqtt = Some(gw));
    let good = central(setting("central", "the gateway's own secret key"));
    let wrong = central(setting("other", "somebody else's secret key"));
    for c in [&good, &wrong] {
        wait_for(Duration::from_secs(20), "the device at a centre", || {
            // Listed first (its status is a 404 until then), then identified and connected.
            let listed = c
                .get("/api/devices")
                .as_array()?
                .iter()
                .any(|d| d["name"] == json!("ttyKEY"));
            let s = listed.then(|| c.get("/api/devices/ttyKEY/status"))?;
            (s["device"].is_object() && s["connected"] == json!(true)).then_some(())
        });
    }
    // Whatever crosses the command topic, as a client of the broker sees it.
    let mut options = rumqttc::MqttOptions::new("listener", "127.0.0.1", broker.port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = rumqttc::Client::new(options, 64);
    client
        .subscribe("zscope/ttyKEY/command", rumqttc::QoS::AtLeastOnce)
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen_in, subscribed) = (
        seen.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let subscribed_in = subscribed.clone();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    subscribed_in.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    seen_in.lock().unwrap().push(p.payload.to_vec());
                }
                _ => {}
            }
        }
    });
    wait_for(Duration::from_secs(10), "the listener subscribed", || {
        subscribed
            .load(std::sync::atomic::Ordering::SeqCst)
            .then_some(())
    });
    let refused = || gateway.get("/api/status")["mqtt"]["commands_refused"].clone();
    assert_eq!(refused(), json!(0));

    // The central daemon with the key: acknowledged.
    let (code, answer) = good.post("/api/devices/ttyKEY/config", &json!({ "threshold": 5.5 }));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(gateway.get("/api/config")["version"], json!(2));
    let signed = wait_for(Duration::from_secs(10), "the signed command seen", || {
        seen.lock().unwrap().first().cloned()
    });
    let text = String::from_utf8_lossy(&signed).to_string();
    assert!(
        text.contains("\"mac\"") && text.contains("\"at_ms\""),
        "{text}"
    );

    // Another key: refused, not acknowledged.
    let (code, answer) = wrong.post("/api/devices/ttyKEY/config", &json!({ "threshold": 2.0 }));
    assert_ne!(code, 200, "{answer}");
    wait_for(Duration::from_secs(10), "one command refused", || {
        (refused() == json!(1)).then_some(())
    });
    // A plain command from any client, and the good one's signed command sent again.
    let plain = serde_json::to_vec(&zscope_core::wire::HostMsg::Reset { id: 99 }).unwrap();
    for payload in [plain, signed] {
        client
            .publish(
                "zscope/ttyKEY/command",
                rumqttc::QoS::AtLeastOnce,
                false,
                payload,
            )
            .unwrap();
    }
    wait_for(Duration::from_secs(10), "three commands refused", || {
        (refused() == json!(3)).then_some(())
    });
    let config = gateway.get("/api/config");
    assert_eq!(config["version"], json!(2), "{config}");
    assert_eq!(config["config"]["threshold"], json!(5.5), "{config}");
    dev.stop().unwrap();
}

/// The broker crashes (no persistence: its retained messages go) and comes back on the same
/// port: the daemon says so, reconnects on its own, publishes its retained config again and
/// its points go on; what could not be queued meanwhile is counted.
#[test]
fn publishing_survives_a_broker_restart() {
    use rumqttc::{Event, Packet};
    use zscope_tests::{MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools("publishing_survives_a_broker_restart", MQTT_TOOLS) {
        return;
    }
    let mut broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRESTART");
    let dev = device(&link);
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let daemon = Daemon::start(on(&link), move |s| {
        s.mqtt = Some(zscope_host::sink::mqtt::MqttSetting::parse(&url, "gw-r".into()).unwrap());
    });
    let mqtt = |daemon: &Daemon| daemon.get("/api/status")["mqtt"].clone();
    wait_for(Duration::from_secs(10), "connected", || {
        (mqtt(&daemon)["connected"] == json!(true)).then_some(())
    });
    broker.restart(Duration::from_secs(2));
    let down = wait_for(Duration::from_secs(10), "the outage noticed", || {
        let m = mqtt(&daemon);
        m["last_error"].is_string().then_some(m)
    });
    let before = down["published"].as_u64().unwrap_or(0);
    let back = wait_for(
        Duration::from_secs(40),
        "reconnected and publishing",
        || {
            let m = mqtt(&daemon);
            (m["connected"] == json!(true) && m["published"].as_u64() > Some(before + 50))
                .then_some(m)
        },
    );
    assert!(back["last_error"].is_null(), "{back}");
    // A new reader gets the retained config again, and fresh points.
    let (_reader, mut connection) = reader(broker.port, "after", "zscope/ttyRESTART/#", 100);
    let (mut config, mut points) = (false, 0);
    let started = std::time::Instant::now();
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            // Live or retained: the re-published config may still have been queued behind
            // what waited during the outage when this reader subscribed.
            config |= p.topic.ends_with("/config");
            points += usize::from(p.topic.ends_with("/points"));
        }
        if (config && points >= 5) || started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    assert!(config, "the config is published again");
    assert!(points >= 5, "{points} point batches after the restart");
    // And the broker keeps it for readers to come.
    let (_reader, mut connection) = reader(broker.port, "later", "zscope/ttyRESTART/config", 10);
    let started = std::time::Instant::now();
    let mut retained = false;
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            retained = p.retain;
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    assert!(retained, "the config is retained again");
    eprintln!(
        "broker restart: published {} then {}, dropped {}",
        before, back["published"], back["dropped"]
    );
    dev.stop().unwrap();
}

/// A gateway and a central daemon on a broker that keeps sessions (persistence on): the
/// broker stopped and started again mid-stream loses no point (QoS 1, persistent sessions;
/// the centre takes a batch delivered twice once); the broker crashing and losing its saved
/// sessions loses points, and every point lost is counted at the centre. When the
/// gateway leaves, the centre marks its device offline.
#[test]
fn nothing_is_lost_at_qos1_across_a_broker_restart_and_a_crash_is_counted() {
    use zscope_tests::{BrokerSetup, MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools(
        "nothing_is_lost_at_qos1_across_a_broker_restart_and_a_crash_is_counted",
        MQTT_TOOLS,
    ) {
        return;
    }
    let mut broker = Mosquitto::start_with(BrokerSetup {
        persistence: true,
        ..BrokerSetup::default()
    });
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyQOS");
    let dev = device(&link);
    let (gateway, central) = gateway_and_central(&url, on(&link), None);
    let at_centre = |min: u64| {
        wait_for(Duration::from_secs(40), "points at the centre", || {
            let s = central.try_get("/api/devices/ttyQOS/status")?;
            (s["counters"]["samples"].as_u64()? >= min).then_some(s)
        })
    };
    at_centre(500);
    // Stopped and started again: everything arrives, once.
    broker.restart_gracefully(Duration::from_secs(2));
    let until = gateway.get("/api/status")["counters"]["samples"]
        .as_u64()
        .unwrap();
    let caught_up = |last_seq: u64| {
        wait_for(Duration::from_secs(60), "the centre caught up", || {
            let p = points(&central.get("/api/devices/ttyQOS/samples?limit=200000"));
            (p.last()?["seq"].as_u64()? >= last_seq).then_some(p)
        })
    };
    let seq_now = gateway_seq(&gateway);
    let p = caught_up(seq_now + 500);
    let s = central.get("/api/devices/ttyQOS/status");
    let seqs: Vec<u64> = p.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    let odd: Vec<_> = seqs
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .take(5)
        .collect();
    assert!(
        odd.is_empty(),
        "every point once, in order, across the restart (gateway at {until} samples then): \
         {odd:?} {s}"
    );
    assert_eq!(s["counters"]["frames_lost"], json!(0), "{s}");
    assert_eq!(s["counters"]["device_restarts"], json!(0), "{s}");
    let restarted = seqs.len();
    // A crash that loses the broker's sessions: what is lost is counted. Whether a crash loses
    // points at all depends on which daemon reconnects first (the centre resubscribing before
    // the gateway publishes again loses nothing), so crash up to three times until one does,
    // checking the count after each.
    let mut missing = 0;
    for crash in 1..=3 {
        broker.restart_forgetting(Duration::from_secs(1));
        let seq_now = gateway_seq(&gateway);
        let p = caught_up(seq_now + 500);
        let s = central.get("/api/devices/ttyQOS/status");
        let seqs: Vec<u64> = p.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
        missing = seqs.windows(2).map(|w| w[1] - w[0] - 1).sum();
        assert!(seqs.windows(2).all(|w| w[1] > w[0]), "no point twice");
        assert_eq!(
            s["counters"]["frames_lost"],
            json!(missing),
            "every point missing at the centre is counted (crash {crash}): {s}"
        );
        assert_eq!(s["counters"]["device_restarts"], json!(0), "{s}");
        if missing > 0 {
            break;
        }
    }
    assert!(
        missing > 0,
        "three crashes that forgot the sessions, and no point lost to count"
    );
    let m = gateway.get("/api/status")["mqtt"].clone();
    assert!(m["lost_unacknowledged"].is_u64(), "{m}");
    eprintln!("gateway after the crash: {m}");
    eprintln!(
        "QoS 1: {restarted} points through a broker restart, none lost; \
         after a crash that lost the broker's store, {missing} lost and counted"
    );
    // The gateway leaves: its device goes offline at the centre, and says why.
    wait_for(Duration::from_secs(10), "the device online again", || {
        let s = central.get("/api/devices/ttyQOS/status");
        (s["connected"] == json!(true)).then_some(())
    });
    drop(gateway);
    dev.stop().unwrap();
    let s = wait_for(Duration::from_secs(10), "the device offline", || {
        let s = central.get("/api/devices/ttyQOS/status");
        (s["connected"] == json!(false)).then_some(s)
    });
    assert!(
        s["link_error"]
            .as_str()
            .unwrap_or("")
            .contains("(gw) is offline"),
        "{s}"
    );
}

/// The last sequence number a daemon's only device sent.
fn gateway_seq(gateway: &Daemon) -> u64 {
    points(&gateway.get("/api/samples?limit=1"))
        .last()
        .and_then(|p| p["seq"].as_u64())
        .unwrap_or(0)
}

/// A gateway daemon (client id `gw`) on `source`, publishing to `url`, and a central daemon
/// (`central`) subscribed to it; both check the broker's certificate against `ca`.
fn gateway_and_central(
    url: &str,
    source: SourceSetting,
    ca: Option<std::path::PathBuf>,
) -> (Daemon, Daemon) {
    let setting = |id: &str| {
        zscope_host::sink::mqtt::MqttSetting::parse(url, id.into())
            .expect("a broker URL")
            .with_ca(ca.clone())
    };
    let (gw, centre) = (setting("gw"), setting("central"));
    let gateway = Daemon::start(source, move |s| s.mqtt = Some(gw));
    (gateway, central(centre))
}

/// A central daemon with no device of its own, showing what `setting`'s broker carries.
fn central(setting: zscope_host::sink::mqtt::MqttSetting) -> Daemon {
    zscope_tests::central_daemon(setting, |_| {})
}

/// A broker that speaks TLS only and lets in one user: a gateway and a central daemon with
/// the password and the CA get through (points and a config change); a wrong password, and
/// a broker whose certificate the usual roots do not vouch for, are clear errors in the
/// status.
#[test]
fn tls_and_passwords_against_a_tls_broker() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use zscope_tests::{BrokerSetup, MQTT_TOOLS, Mosquitto, have_tools};
    if !have_tools("tls_and_passwords_against_a_tls_broker", MQTT_TOOLS) {
        return;
    }
    // A certificate authority, and the broker's certificate signed by it.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let broker_key = KeyPair::generate().unwrap();
    let broker_cert = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&broker_key, &ca)
        .unwrap();
    let broker = Mosquitto::start_with(BrokerSetup {
        tls: Some((broker_cert.pem(), broker_key.serialize_pem())),
        users: vec![("zs".into(), "s3cret/pw".into())],
        ..BrokerSetup::default()
    });
    let ca_file = broker.dir().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTLS");
    let dev = device(&link);
    let url = format!("mqtts://zs:s3cret%2Fpw@127.0.0.1:{}", broker.port);
    let (gateway, central) = gateway_and_central(&url, on(&link), Some(ca_file.clone()));
    wait_for(Duration::from_secs(20), "the device at the centre", || {
        let s = central.try_get("/api/devices/ttyTLS/status")?;
        (s["connected"] == json!(true) && s["counters"]["samples"].as_u64()? > 200).then_some(())
    });
    assert_eq!(gateway.get("/api/status")["mqtt"]["connected"], json!(true));
    let (code, answer) = central.post("/api/devices/ttyTLS/config", &json!({ "threshold": 4.0 }));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        gateway.get("/api/config")["config"]["threshold"],
        json!(4.0)
    );

    // Refusals, said in the status.
    let refused = |url: String, ca: Option<std::path::PathBuf>| {
        let setting = zscope_host::sink::mqtt::MqttSetting::parse(&url, "intruder".into())
            .unwrap()
            .with_ca(ca);
        let daemon = Daemon::start(
            SourceSetting::Emulated {
                rate_hz: 10,
                seed: 2,
            },
            move |s| s.mqtt = Some(setting),
        );
        let m = wait_for(Duration::from_secs(20), "the refusal", || {
            let m = daemon.get("/api/status")["mqtt"].clone();
            m["last_error"].is_string().then_some(m)
        });
        assert_eq!(m["connected"], json!(false), "{m}");
        m["last_error"].as_str().unwrap_or("").to_string()
    };
    let port = broker.port;
    let wrong_password = refused(
        format!("mqtts://zs:guess@127.0.0.1:{port}"),
        Some(ca_file.clone()),
    );
    assert!(
        wrong_password.contains("user name or password"),
        "{wrong_password}"
    );
    let unknown_ca = refused(format!("mqtts://zs:s3cret%2Fpw@127.0.0.1:{port}"), None);
    assert!(unknown_ca.contains("certificate"), "{unknown_ca}");
    eprintln!("refusals: {wrong_password} | {unknown_ca}");
    dev.stop().unwrap();
}

/// A client of the broker on `port`, as another program would be, called `id`, subscribed to
/// `topic`, with room for `queue` requests; keep the client while reading its connection.
fn reader(
    port: u16,
    id: &str,
    topic: &str,
    queue: usize,
) -> (rumqttc::Client, rumqttc::Connection) {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, connection) = rumqttc::Client::new(options, queue);
    client
        .subscribe(topic, rumqttc::QoS::AtLeastOnce)
        .expect("the subscription is queued");
    (client, connection)
}
