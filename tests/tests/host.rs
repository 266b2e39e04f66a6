//! The daemon against a device on a real pty: what it logs and serves matches what the device
//! sent, through garbage on the line, a device killed and restarted, and a config change.

use std::time::Duration;

use serde_json::{Value, json};
use zscope_core::{SimConfig, Simulator};
use zscope_firmware::Encoding;
use zscope_host::source::SourceSetting;
use zscope_tests::{Daemon, device, device_with, on, points, pty_device_seeded, wait_for};

fn samples(status: &Value) -> u64 {
    status["counters"]["samples"].as_u64().unwrap_or(0)
}

/// One frame per sample here, so a frame lost to garbage is exactly one sample (batches are
/// `a_batched_device_is_logged_exactly_and_a_protocol_4_device_still_works`).
#[test]
fn logs_and_api_match_the_device_through_garbage_restarts_and_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyZSCOPE");
    let framed = |link: &std::path::Path| device_with(link, 500, Encoding::Frames);
    let dev = framed(&link);
    let daemon = Daemon::start(on(&link), |_| {});
    let secs = Duration::from_secs;

    wait_for(secs(20), "300 samples", || {
        (samples(&daemon.get("/api/status")) >= 300).then_some(())
    });
    // Garbage ending in a delimiter: rejected on its own, nothing lost.
    dev.inject(&[0x11, 0x22, 0x33, 0x00]);
    // Garbage with no delimiter: it merges with the next frame, which is lost and counted.
    dev.inject(&[0x44, 0x55]);
    wait_for(secs(20), "600 samples", || {
        (samples(&daemon.get("/api/status")) >= 600).then_some(())
    });

    // Unplug the device: the daemon says so and keeps serving.
    dev.stop().unwrap();
    let status = wait_for(secs(5), "the daemon to notice the device is gone", || {
        let s = daemon.get("/api/status");
        (s["connected"] == json!(false)).then_some(s)
    });
    assert!(
        status["link_error"]
            .as_str()
            .unwrap_or("")
            .contains("ttyZSCOPE"),
        "{status}"
    );
    let before_restart = samples(&status);
    // All the first connection brought in (the daemon reads no more of it).
    let read_before_restart = status["decode"]["bytes"].as_u64().unwrap_or(0);

    // Plug it back (it reboots: sequence numbers start again): the daemon resumes on its own.
    let dev = framed(&link);
    let status = wait_for(secs(10), "the daemon to reconnect", || {
        let s = daemon.get("/api/status");
        (s["connected"] == json!(true) && samples(&s) > before_restart + 200).then_some(s)
    });
    assert_eq!(status["counters"]["device_restarts"], json!(1), "{status}");
    assert_eq!(status["counters"]["connections"], json!(2), "{status}");

    // Change the detector and its threshold through the API: answered once the device
    // acknowledges.
    let (code, answer) = daemon.post(
        "/api/config",
        &json!({ "detector": "zscore", "threshold": 2.5 }),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["version"], json!(2));
    assert_eq!(answer["config"]["threshold"], json!(2.5));
    wait_for(secs(10), "samples judged under config 2", || {
        let pts = points(&daemon.get("/api/samples?limit=10"));
        pts.last()
            .filter(|p| p["config_version"] == json!(2))
            .map(|_| ())
    });
    // Bad configs are refused with a clear message, and nothing is sent.
    for (body, needle) in [
        (
            json!({ "threshold": 0 }),
            "threshold must be a finite number above 0",
        ),
        (json!({ "window": 5000 }), "window 5000 is outside 2..=1024"),
        (json!({ "window": 1 }), "window 1 is outside 2..=1024"),
        (json!({ "thresold": 3 }), "unknown field `thresold`"),
    ] {
        let (code, answer) = daemon.post("/api/config", &body);
        assert_eq!(code, 400, "{body} -> {answer}");
        assert!(
            answer["error"].as_str().unwrap_or("").contains(needle),
            "{answer}"
        );
    }
    assert_eq!(daemon.get("/api/config")["version"], json!(2));

    let written = dev.silence().unwrap();
    daemon.wait_read(read_before_restart + written);
    let status = daemon.get("/api/status");
    let api: Vec<Value> = points(&daemon.get("/api/samples?limit=200000"));
    let anomalies = points(&daemon.get("/api/anomalies?limit=10000"));
    let log_dir = daemon.log_dir.clone();
    let _logs = daemon.stop();

    // Counters: exactly one frame lost (the one the garbage merged into), two bad frames.
    assert_eq!(status["counters"]["frames_lost"], json!(1), "{status}");
    assert_eq!(status["bad_frames"], json!(2), "{status}");
    assert!(status["quality"]["precision"].is_number(), "{status}");

    // samples.csv: every sample the API has, in order, with the same numbers.
    let mut reader = csv::Reader::from_path(log_dir.join("samples.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>().join(","),
        zscope_host::sink::csv::header()
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as u64, samples(&status));
    assert_eq!(rows.len(), api.len());
    let col = |r: &csv::StringRecord, name: &str| -> String {
        let i = headers.iter().position(|h| h == name).unwrap();
        r[i].to_string()
    };
    for (row, point) in rows.iter().zip(&api) {
        assert_eq!(col(row, "seq"), point["seq"].to_string());
        let v: f32 = col(row, "value").parse().unwrap();
        assert_eq!(v, point["value"].as_f64().unwrap() as f32);
        // The score is the device's own (the same number in the log and the API).
        let score: f32 = col(row, "score").parse().unwrap();
        assert_eq!(score, point["score"].as_f64().unwrap() as f32);
        assert!((0.0..=1.0).contains(&score), "{score}");
        assert_eq!(
            col(row, "config_version"),
            point["config_version"].to_string()
        );
        assert!(
            chrono_like(&col(row, "host_time")),
            "{}",
            col(row, "host_time")
        );
        assert!(matches!(col(row, "truth").as_str(), "0" | "1"));
    }
    let lost: u64 = rows
        .iter()
        .map(|r| col(r, "lost_before").parse::<u64>().unwrap())
        .sum();
    assert_eq!(lost, 1);

    // The values are the device's: both sessions replay the simulator from its seed.
    let reference: Vec<f32> = Simulator::new(SimConfig::default())
        .unwrap()
        .take(100_000)
        .map(|s| s.value)
        .collect();
    for row in &rows {
        let seq: usize = col(row, "seq").parse().unwrap();
        let v: f32 = col(row, "value").parse().unwrap();
        assert_eq!(v.to_bits(), reference[seq].to_bits(), "seq {seq}");
    }
    // Detector, threshold and window columns follow the config version (the device's
    // default: the adaptive detector at 4.5; then the rolling Z-score at 2.5).
    for row in &rows {
        let expected = if col(row, "config_version") == "2" {
            ("zscore", "2.5")
        } else {
            ("adaptive", "4.5")
        };
        assert_eq!(
            (
                col(row, "detector").as_str(),
                col(row, "threshold").as_str()
            ),
            expected
        );
        assert_eq!(col(row, "window"), "64");
    }
    assert!(rows.iter().any(|r| col(r, "detector") == "zscore"));

    // Every flagged row says why, in words; a row not judged says why not (learning, an
    // invalid value); a row judged normal says nothing.
    for row in &rows {
        let reason = col(row, "reason");
        match col(row, "anomaly").as_str() {
            "1" => assert!(
                reason == "beyond band" || reason == "new level",
                "{reason:?}"
            ),
            _ => assert!(
                ["", "learning", "invalid value"].contains(&reason.as_str()),
                "{reason:?}"
            ),
        }
    }
    assert_eq!(
        col(&rows[0], "reason"),
        "learning",
        "the first rows are learning"
    );
    assert!(
        rows.iter().any(|r| col(r, "reason").is_empty()),
        "judged rows say nothing"
    );

    // anomalies.csv: exactly the flagged rows.
    let flagged: Vec<String> = rows
        .iter()
        .filter(|r| col(r, "anomaly") == "1")
        .map(|r| col(r, "seq"))
        .collect();
    let mut reader = csv::Reader::from_path(log_dir.join("anomalies.csv")).unwrap();
    let logged: Vec<String> = reader.records().map(|r| col(&r.unwrap(), "seq")).collect();
    assert_eq!(logged, flagged);
    assert!(!logged.is_empty());
    assert_eq!(anomalies.len(), logged.len());
}

/// A device sending batches (protocol 5's compact frames) is logged exactly: every sample in
/// order, each value the grid value the device judged, each verdict the core's on it, and every
/// anomaly's own z and score; what a batch does not carry (a plain sample's z and score) is
/// `NaN` in the CSV and `null` in the API, never made up. Then a device that speaks protocol 4
/// (one frame per sample, as before batches existed) is still read.
#[test]
fn a_batched_device_is_logged_exactly_and_a_protocol_4_device_still_works() {
    use zscope_core::compact::Batcher;
    use zscope_core::wire::{self, DeviceMsg, Flags, Sample};
    use zscope_core::{Detector, DetectorConfig};
    use zscope_firmware::app::{CAPACITY, SEASON_CAPACITY, scale_for};

    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("tty");
    let dev = device_with(&link, 1000, Encoding::Batches);
    let daemon = Daemon::start(on(&link), |_| {});
    wait_for(Duration::from_secs(20), "3000 samples", || {
        (samples(&daemon.get("/api/status")) >= 3000).then_some(())
    });
    let written = dev.silence().unwrap();
    daemon.wait_read(written);
    let status = daemon.get("/api/status");
    let api = points(&daemon.get("/api/samples?limit=200000"));
    let log_dir = daemon.log_dir.clone();
    let _logs = daemon.stop();
    assert_eq!(status["device"]["protocol"], json!(wire::PROTOCOL_VERSION));
    assert_eq!(status["counters"]["batched"], status["counters"]["samples"]);
    assert_eq!(status["counters"]["frames_lost"], json!(0), "{status}");
    assert_eq!(status["bad_frames"], json!(0), "{status}");

    let mut reader = csv::Reader::from_path(log_dir.join("samples.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), api.len());
    let col = |r: &csv::StringRecord, name: &str| -> String {
        r[headers.iter().position(|h| h == name).unwrap()].to_string()
    };
    let mut sim = Simulator::new(SimConfig::default()).unwrap();
    let grid = Batcher::new(scale_for(&SimConfig::default()));
    let mut det: Box<Detector<f32, CAPACITY, SEASON_CAPACITY>> =
        Box::new(Detector::new(DetectorConfig::default()).unwrap());
    let mut anomalies = 0;
    for (i, (row, point)) in rows.iter().zip(&api).enumerate() {
        let x = sim.next_sample();
        let v = det.update(grid.quantise(x.value));
        let want = Sample::from_verdict(i as u64, 0, &v, x.truth.is_anomaly(), 1);
        assert_eq!(col(row, "seq"), i.to_string(), "every sample, in order");
        let value: f32 = col(row, "value").parse().unwrap();
        assert_eq!(value.to_bits(), want.value.to_bits(), "seq {i}");
        let anomaly = want.flags.contains(Flags::ANOMALY);
        assert_eq!(col(row, "anomaly"), (anomaly as u8).to_string(), "seq {i}");
        let z: f32 = col(row, "z").parse().unwrap();
        let score: f32 = col(row, "score").parse().unwrap();
        anomalies += anomaly as usize;
        if z.is_nan() && !anomaly {
            // A plain sample: its z and score were not sent, and are not made up.
            assert!(score.is_nan(), "seq {i}: score {score}");
            assert!(point["z"].is_null() && point["score"].is_null(), "{point}");
        } else {
            // Sent in full (every anomaly is): the device's own z and score.
            let got = (z.to_bits(), score.to_bits());
            assert_eq!(got, (want.z.to_bits(), want.score.to_bits()), "seq {i}");
            assert_eq!(point["score"].as_f64().map(|s| s as f32), Some(want.score));
        }
    }
    assert!(
        anomalies >= 10,
        "{anomalies} anomalies in {} samples",
        rows.len()
    );

    // A protocol-4 device: its hello says 4, its samples are single frames.
    let (mut master, slave) = serialport::TTYPort::pair().unwrap();
    let path = serialport::SerialPort::name(&slave).unwrap();
    let daemon = Daemon::start(on(std::path::Path::new(&path)), |_| {});
    wait_for(Duration::from_secs(10), "the pty open", || {
        (daemon.get("/api/status")["connected"] == json!(true)).then_some(())
    });
    // Its hello as protocol 4 laid it out: no sources (postcard writes a struct as its
    // fields in order, a variant as its index).
    let v4_hello = (
        0u8,
        4u16,
        wire::name("0.0.9"),
        wire::name("old-board"),
        1024u32,
        100u32,
        1u32,
        *det.config(),
        None::<zscope_core::SimConfig>,
        2048u32,
    );
    let mut line = Vec::new();
    let mut frame = [0u8; wire::MAX_FRAME];
    let n = wire::encode(&v4_hello, &mut frame).unwrap();
    line.extend_from_slice(&frame[..n]);
    for msg in (0..100u64).map(|seq| {
        DeviceMsg::Sample(Sample {
            seq,
            time_ms: seq * 10,
            value: seq as f32,
            mean: 1.0,
            std: 2.0,
            z: 0.5,
            score: 0.1,
            flags: Flags::empty(),
            config_version: 1,
        })
    }) {
        let n = wire::encode(&msg, &mut frame).unwrap();
        line.extend_from_slice(&frame[..n]);
    }
    std::io::Write::write_all(&mut master, &line).unwrap();
    let status = wait_for(Duration::from_secs(10), "100 samples", || {
        let s = daemon.get("/api/status");
        (samples(&s) == 100).then_some(s)
    });
    assert_eq!(status["device"]["protocol"], json!(4), "{status}");
    assert_eq!(status["device"]["board"], json!("old-board"));
    assert_eq!(status["link_error"], json!(null), "{status}");
    assert_eq!(status["bad_frames"], json!(0), "{status}");
    let api = points(&daemon.get("/api/samples?limit=1000"));
    assert_eq!(api.len(), 100);
    assert_eq!(api[99]["score"].as_f64().map(|s| s as f32), Some(0.1));
    drop(daemon);
}

/// `2026-11-24T10:01:32.066Z`
fn chrono_like(s: &str) -> bool {
    s.len() == 24 && s.ends_with('Z') && &s[10..11] == "T" && &s[19..20] == "."
}

#[test]
fn a_full_disk_loses_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    // samples.csv is /dev/full: every write fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", log_dir.join("samples.csv")).unwrap();
    let link = dir.path().join("tty");
    let dev = device(&link);
    let ld = log_dir.clone();
    let daemon = Daemon::start(on(&link), move |s| s.log_dir = ld);
    let status = wait_for(
        Duration::from_secs(20),
        "rows waiting on the full disk",
        || {
            let s = daemon.get("/api/status");
            let log = &s["logs"][0];
            (log["pending"].as_u64().unwrap_or(0) > 100).then_some(s)
        },
    );
    let error = status["logs"][0]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("No space left on device"), "{status}");
    // The page and the API keep working; anomalies.csv is unaffected.
    assert_eq!(status["connected"], json!(true));
    // Space comes back.
    std::fs::remove_file(log_dir.join("samples.csv")).unwrap();
    std::fs::write(log_dir.join("samples.csv"), "").unwrap();
    wait_for(
        Duration::from_secs(10),
        "the waiting rows to be written",
        || {
            let s = daemon.get("/api/status");
            (s["logs"][0]["pending"] == json!(0) && s["logs"][0]["error"].is_null()).then_some(())
        },
    );
    let written = dev.silence().unwrap();
    daemon.wait_read(written);
    let received = samples(&daemon.get("/api/status"));
    daemon.stop();
    let text = std::fs::read_to_string(log_dir.join("samples.csv")).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        seqs.len() as u64,
        received,
        "every received sample is in the log"
    );
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gap"
    );
}

/// Send raw HTTP/1.1 (any Host and Origin) over a real socket; the status code and the body.
fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the daemon listens");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("a timeout");
    stream
        .write_all(request.as_bytes())
        .expect("the request goes out");
    // Read until the whole answer is in (its headers and Content-Length bytes of body), or
    // the daemon closes: a refused upgrade keeps the connection open.
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                break;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, answer)
}

/// DNS rebinding against the real daemon (loopback, no token, the default setup): a request
/// addressed to another name, or a WebSocket opened by another page, is refused, and the
/// config stays as it was. The daemon's own name still works.
#[test]
fn a_rebound_name_or_a_foreign_page_cannot_drive_the_daemon() {
    let daemon = Daemon::start(
        SourceSetting::Emulated {
            rate_hz: 50,
            seed: 3,
        },
        |_| {},
    );
    wait_for(Duration::from_secs(20), "the device's hello", || {
        daemon.get("/api/status")["device"]
            .is_object()
            .then_some(())
    });
    let body = r#"{"threshold": 9.5}"#;
    let post = |host: &str| {
        format!(
            "POST /api/config HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (code, answer) = raw(daemon.addr, &post("evil.example:8080"));
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("'evil.example' is refused"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-frame-options: deny"),
        "{answer}"
    );
    let upgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\
        Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (code, answer) = raw(daemon.addr, upgrade);
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        daemon.get("/api/config")["version"],
        json!(1),
        "nothing changed"
    );
    // Another site on the same machine (another port, or another scheme) is not the daemon's
    // page: its POST and its WebSocket are refused.
    let own = daemon.addr.to_string();
    let other = format!(
        "{}:{}",
        daemon.addr.ip(),
        daemon.addr.port().wrapping_add(1)
    );
    let from = |origin: &str| post(&own).replacen("\r\n", &format!("\r\nOrigin: {origin}\r\n"), 1);
    for origin in [
        format!("http://{other}"),
        format!("https://{own}"),
        format!("http://localhost:{}", daemon.addr.port().wrapping_add(1)),
    ] {
        let (code, answer) = raw(daemon.addr, &from(&origin));
        assert_eq!(code, 403, "{origin}: {answer}");
        assert!(answer.contains("is refused"), "{answer}");
        let upgrade = upgrade
            .replace("http://evil.example", &origin)
            .replace("Host: 127.0.0.1\r\n", &format!("Host: {own}\r\n"));
        let (code, answer) = raw(daemon.addr, &upgrade);
        assert_eq!(code, 403, "{origin}: {answer}");
    }
    assert_eq!(daemon.get("/api/config")["version"], json!(1));
    // Addressed to the daemon's own name, from its own page (by any of its names), the same
    // request is acknowledged.
    let (code, answer) = raw(daemon.addr, &from(&format!("http://{own}")));
    assert_eq!(code, 200, "{answer}");
    let port = daemon.addr.port();
    let (code, answer) = raw(daemon.addr, &from(&format!("http://localhost:{port}")));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(daemon.get("/api/config")["config"]["threshold"], json!(9.5));
}

/// Slowloris: connections that never finish their headers hold nothing for long. With more of
/// them than the daemon serves at once, the API still answers at once (the oldest unfinished
/// one is closed to make room), and each is closed when its headers are overdue.
#[test]
fn connections_that_never_finish_their_headers_are_closed() {
    use std::io::{Read, Write};
    let daemon = Daemon::start(
        SourceSetting::Emulated {
            rate_hz: 50,
            seed: 4,
        },
        // The header timeout, shortened (10 s in use): each stalled connection's closing is
        // then waited for below, not slept past.
        |s| s.header_timeout = Duration::from_secs(1),
    );
    let mut stalled: Vec<std::net::TcpStream> = (0..zscope_host::web::MAX_CONNECTIONS + 200)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(daemon.addr).expect("connects");
            s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .expect("half a request");
            s
        })
        .collect();
    let started = std::time::Instant::now();
    let status = daemon.get("/api/status");
    let took = started.elapsed();
    assert!(status["counters"].is_object(), "{status}");
    assert!(took < Duration::from_millis(500), "the API took {took:?}");
    for (i, s) in stalled.iter_mut().enumerate() {
        // A deadline for the fact (the daemon closes it), far beyond the timeout.
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a timeout");
        let mut buf = [0u8; 256];
        // Closed: end of stream (perhaps after a 408), not a read that would block.
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) => {
                    break e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut;
                }
            }
        };
        assert!(closed, "stalled connection {i} is still open");
    }
}

/// Read `s` to its end (the daemon closes it), 20 s at most: what came, and whether it closed.
fn read_to_close(s: &mut std::net::TcpStream) -> (String, bool) {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                break e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut;
            }
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// A body that never comes in full gets a 408 once the request is overdue, and an idle
/// keep-alive connection is closed once its next request's headers are overdue: neither holds
/// a connection for ever.
#[test]
fn slow_bodies_and_idle_keep_alives_are_closed() {
    use std::io::Write;
    let daemon = Daemon::start(
        SourceSetting::Emulated {
            rate_hz: 50,
            seed: 6,
        },
        // 1 s for headers (10 s in use); a request must then be answered within 1 s + the
        // 3 s an acknowledgement may take.
        |s| s.header_timeout = Duration::from_secs(1),
    );
    let mut slow = std::net::TcpStream::connect(daemon.addr).expect("connects");
    slow.write_all(
        b"POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100000\r\n\r\n{",
    )
    .expect("headers and one byte of the body");
    let (answer, closed) = read_to_close(&mut slow);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("its body came too slowly"), "{answer}");
    assert!(closed, "the slow connection is still open: {answer}");

    let mut idle = std::net::TcpStream::connect(daemon.addr).expect("connects");
    idle.write_all(b"GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("a whole request, keep-alive");
    let (answer, closed) = read_to_close(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "the idle keep-alive connection is still open");
    assert_eq!(daemon.get("/api/config")["version"], json!(1));
}

/// A WebSocket handshake over a real socket; the status line's code, and the socket.
fn ws_handshake(addr: std::net::SocketAddr) -> (u16, String, std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the daemon listens");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .expect("the handshake goes out");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head, s)
}

/// At most 256 live pages: one more is refused with the reason, and a page that leaves gives
/// its place back.
#[test]
fn websocket_clients_are_capped_with_a_clear_refusal() {
    use std::io::Read;
    let daemon = Daemon::start(
        SourceSetting::Emulated {
            rate_hz: 50,
            seed: 5,
        },
        |_| {},
    );
    let mut open = Vec::new();
    for i in 0..zscope_host::web::ws::MAX_WS_CLIENTS {
        let (code, head, s) = ws_handshake(daemon.addr);
        assert_eq!(code, 101, "client {i}: {head}");
        open.push(s);
    }
    let (code, head, mut s) = ws_handshake(daemon.addr);
    assert_eq!(code, 503, "{head}");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    assert!(body.contains("live pages are connected already"), "{body}");
    // One leaves; its place is free again once the daemon notices.
    drop(open.pop());
    wait_for(Duration::from_secs(10), "a freed place", || {
        let (code, _, s) = ws_handshake(daemon.addr);
        (code == 101).then(|| open.push(s))
    });
}

/// A local HTTP receiver: records each request's body; answers 500 to the first request (to
/// make the notifier retry), 200 to the rest.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            if n > 0 {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                bodies.lock().unwrap_or_else(|p| p.into_inner()).push(v);
            }
            let _ = reader.get_mut().write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (url, got)
}

/// Webhooks: exactly one notification per anomaly event (a run of consecutive flagged
/// samples), to a real local HTTP server, through a refusal (retried); each names the device
/// and links to the page at that moment. A cooldown then suppresses (and counts) the rest.
#[test]
fn each_anomaly_event_is_notified_once() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyNOTIFY");
    let dev = device(&link);
    let (url, got) = receiver();
    let hook = url.clone();
    let daemon = Daemon::start(on(&link), move |s| {
        s.notify = vec![hook];
        s.notify_cooldown = Duration::ZERO;
    });
    wait_for(Duration::from_secs(30), "a few anomaly events", || {
        (daemon.get("/api/status")["counters"]["events"].as_u64() >= Some(5)).then_some(())
    });
    dev.stop().unwrap();
    // Every event sent (the first after one retry) before comparing.
    let status = wait_for(Duration::from_secs(20), "every event notified", || {
        let s = daemon.get("/api/status");
        let events = s["counters"]["events"].as_u64().unwrap_or(0);
        (s["notify"]["sent"].as_u64() == Some(events)).then_some(s)
    });
    let anomalies = points(&daemon.get("/api/anomalies?limit=10000"));
    // Events from the API's anomalies: a flagged sample whose predecessor was not flagged.
    let mut starts = Vec::new();
    let mut last = None;
    for p in &anomalies {
        let seq = p["seq"].as_u64().unwrap();
        if last != seq.checked_sub(1) || seq == 0 {
            starts.push(seq);
        }
        last = Some(seq);
    }
    let bodies = got.lock().unwrap().clone();
    let sent: Vec<u64> = bodies.iter().map(|b| b["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        sent, starts,
        "one notification per event, in order: {status}"
    );
    assert_eq!(status["notify"]["failed"], json!(0), "{status}");
    let first = &bodies[0];
    assert_eq!(first["device"], json!("ttyNOTIFY"), "{first}");
    let page = format!("http://{}/?device=ttyNOTIFY&at=", daemon.addr);
    assert!(first["url"].as_str().unwrap().starts_with(&page), "{first}");
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("zscope: anomaly on ttyNOTIFY (emulated on "),
        "{first}"
    );
    drop(daemon);

    // With a cooldown, one notification, the other events counted as suppressed.
    let link = dir.path().join("ttyNOTIFY2");
    let dev = device(&link);
    let (url, got) = receiver();
    let daemon = Daemon::start(on(&link), move |s| {
        s.notify = vec![url];
        s.notify_cooldown = Duration::from_secs(600);
    });
    let status = wait_for(Duration::from_secs(30), "events under a cooldown", || {
        let s = daemon.get("/api/status");
        (s["notify"]["suppressed"].as_u64() >= Some(3) && s["notify"]["sent"] == json!(1))
            .then_some(s)
    });
    dev.stop().unwrap();
    assert_eq!(got.lock().unwrap().len(), 1, "{status}");
}

/// An emulated device on `link` with its own simulator seed.
/// Two devices on one daemon, each on its own real pty: each has its own points, config,
/// counters and log folder; a config change reaches only its device; one unplugged and
/// replugged while the other streams on; the routes without a device name answer for the
/// first; an unknown name is a 404 naming the devices.
#[test]
fn two_devices_on_one_daemon_keep_their_own_state() {
    use zscope_host::app::DeviceSetting;
    let dir = tempfile::tempdir().unwrap();
    let (left_link, right_link) = (dir.path().join("ttyLEFT"), dir.path().join("ttyRIGHT"));
    let left = pty_device_seeded(&left_link, 1);
    let right = pty_device_seeded(&right_link, 2);
    let (l, r) = (on(&left_link), on(&right_link));
    let daemon = Daemon::start(l.clone(), move |s| {
        s.devices = vec![
            DeviceSetting {
                name: "left".into(),
                source: l,
                judge: None,
            },
            DeviceSetting {
                name: "right".into(),
                source: r,
                judge: None,
            },
        ];
    });
    let count = |name: &str| -> u64 {
        daemon.get(&format!("/api/devices/{name}/status"))["counters"]["samples"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(20), "both devices streaming", || {
        (count("left") > 300 && count("right") > 300).then_some(())
    });
    let list = daemon.get("/api/devices");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["left", "right"], "{list}");
    assert!(list[0]["connected"] == json!(true) && list[1]["connected"] == json!(true));
    // Their own streams (other seeds), and the unnamed routes are the first device's.
    let values = |path: &str| -> Vec<f64> {
        points(&daemon.get(path))
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect()
    };
    let (lv, rv) = (
        values("/api/devices/left/samples?limit=50"),
        values("/api/devices/right/samples?limit=50"),
    );
    assert_ne!(lv, rv);
    assert_eq!(
        daemon.get("/api/status")["port"],
        daemon.get("/api/devices/left/status")["port"]
    );
    // A config change reaches the right device only.
    let (code, answer) = daemon.post("/api/devices/right/config", &json!({ "threshold": 4.5 }));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["version"], json!(2));
    assert_eq!(daemon.get("/api/devices/left/config")["version"], json!(1));
    assert_eq!(
        daemon.get("/api/devices/right/config")["config"]["threshold"],
        json!(4.5)
    );
    // Unplug the left one: it says so, the right streams on; replugged, it resumes.
    left.stop().unwrap();
    wait_for(Duration::from_secs(10), "the left device gone", || {
        (daemon.get("/api/devices/left/status")["connected"] == json!(false)).then_some(())
    });
    let before = count("right");
    wait_for(
        Duration::from_secs(10),
        "the right one streaming on",
        || (count("right") > before + 200).then_some(()),
    );
    // Back means its samples again, not only its hello (the restart shows in the first one).
    let left_before = count("left");
    let _left = pty_device_seeded(&left_link, 1);
    let status = wait_for(Duration::from_secs(10), "the left device back", || {
        let s = daemon.get("/api/devices/left/status");
        (s["connected"] == json!(true)
            && s["counters"]["connections"] == json!(2)
            && s["counters"]["samples"].as_u64() > Some(left_before))
        .then_some(s)
    });
    assert_eq!(status["counters"]["device_restarts"], json!(1), "{status}");
    // An unknown device: 404, naming the devices.
    let response = ureq::get(&daemon.url("/api/devices/middle/status"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(response.status(), 404);
    let text = response.into_body().read_to_string().unwrap();
    assert!(
        text.contains("no device 'middle'") && text.contains("left, right"),
        "{text}"
    );
    // Each device's log folder.
    let log_dir = daemon.log_dir.clone();
    drop(right);
    let _logs = daemon.stop();
    for name in ["left", "right"] {
        let rows = std::fs::read_to_string(log_dir.join(name).join("samples.csv"))
            .unwrap_or_default()
            .lines()
            .count();
        assert!(rows > 300, "{name}: {rows} rows");
    }
}

/// `--auto`'s watcher against emulated boards on real ptys, given as what a USB scan would
/// report (this machine has no USB boards; the scan itself reads `/sys/class/tty`): a known
/// probe is attached as a device named by its serial number, an unknown id is not; unplugged,
/// the device stays, disconnected; plugged in again at another path, the same device (same
/// logs, same name) reads it there; a board without a serial number is named by its port.
#[test]
fn auto_attaches_known_probes_and_follows_a_board_to_its_new_port() {
    use zscope_host::app::DeviceBuilder;
    use zscope_host::device::Registry;
    use zscope_host::source::usb::{Found, Watcher};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let dir = tempfile::tempdir().unwrap();
    let s = zscope_tests::settings(on(&dir.path().join("unused")), dir.path().join("log"));
    let registry = Registry::new(Vec::new());
    let builder = DeviceBuilder::new(s, "http://127.0.0.1:0/".into(), registry.clone());
    let mut watcher = Watcher::new(builder, registry.clone(), 115_200, Vec::new());
    let found = |link: &std::path::Path, vid: u16, serial: Option<&str>| Found {
        path: link.display().to_string(),
        vid,
        pid: 0x374b,
        serial: serial.map(str::to_string),
    };
    let status = |name: &str| {
        let d = registry.find(Some(name)).expect("the device is listed");
        serde_json::to_value(d.hub.status()).unwrap()
    };
    let (a, b) = (dir.path().join("ttyACM0"), dir.path().join("ttyACM1"));
    let board = device(&a);
    let other = device(&b);
    let added = watcher.reconcile(&[found(&a, 0x0483, Some("066DFF55")), found(&b, 0x1234, None)]);
    assert_eq!(added, ["stlink-066DFF55"]);
    assert_eq!(
        registry.list().len(),
        1,
        "an unknown USB id is not attached"
    );
    wait_for(Duration::from_secs(10), "samples from the board", || {
        (samples(&status("stlink-066DFF55")) > 200).then_some(())
    });
    // Unplugged: the device stays, disconnected.
    drop(board);
    watcher.reconcile(&[]);
    let s = wait_for(Duration::from_secs(10), "the board gone", || {
        let s = status("stlink-066DFF55");
        (s["connected"] == json!(false)).then_some(s)
    });
    assert!(s["link_error"].is_string(), "{s}");
    let before = samples(&s);
    // Plugged in again, at another path (ttyACM1's emulator stops first: it is the other
    // board, never attached).
    drop(other);
    let c = dir.path().join("ttyACM2");
    let board = device(&c);
    let added = watcher.reconcile(&[found(&c, 0x0483, Some("066DFF55"))]);
    assert!(
        added.is_empty(),
        "the same board, not a new device: {added:?}"
    );
    let s = wait_for(Duration::from_secs(10), "the board back", || {
        let s = status("stlink-066DFF55");
        (s["connected"] == json!(true) && samples(&s) > before + 100).then_some(s)
    });
    assert_eq!(s["counters"]["connections"], json!(2), "{s}");
    assert!(dir.path().join("log/stlink-066DFF55/samples.csv").exists());
    // No serial number: named by its port.
    let added = watcher.reconcile(&[found(&c, 0x0483, Some("066DFF55")), found(&b, 0x0483, None)]);
    assert_eq!(added, ["ttyACM1"]);
    drop(board);
    for d in registry.list() {
        d.hub.stop();
    }
    for t in std::mem::take(&mut watcher.threads) {
        t.join().unwrap();
    }
}

/// A daemon started after the device (its hello went to an earlier reader) asks the device who
/// it is, and knows it: its board, its config, and a threshold on every row from then on.
#[test]
fn a_daemon_that_missed_the_hello_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyLATE");
    let dev = device(&link);
    // The first reader takes the hello, and goes.
    let first = Daemon::start(on(&link), |_| {});
    wait_for(Duration::from_secs(20), "the first daemon's hello", || {
        first.get("/api/status")["device"].is_object().then_some(())
    });
    drop(first.stop());
    // The second sees samples first: it asks, and the device answers with a fresh hello.
    let late = Daemon::start(on(&link), |_| {});
    let s = wait_for(Duration::from_secs(20), "the device identified", || {
        let s = late.get("/api/status");
        s["device"].is_object().then_some(s)
    });
    assert!(
        s["device"]["board"]
            .as_str()
            .unwrap_or("")
            .contains("emulated"),
        "{s}"
    );
    assert_eq!(s["config_version"], json!(1), "{s}");
    let (code, answer) = late.post("/api/config", &json!({ "threshold": 5.0 }));
    assert_eq!(code, 200, "config changes work once it is known: {answer}");
    // Rows logged once it is known carry the threshold of the config that judged them.
    let log = late.log_dir.join("samples.csv");
    wait_for(Duration::from_secs(20), "rows at threshold 5", || {
        let text = std::fs::read_to_string(&log).ok()?;
        let header: Vec<&str> = text.lines().next()?.split(',').collect();
        let col = header.iter().position(|h| *h == "threshold")?;
        let thresholds: Vec<String> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(col).map(String::from))
            .collect();
        // Before the hello: no threshold invented; after: the device's own.
        let known = thresholds
            .iter()
            .position(|t| t != "NaN" && !t.is_empty())?;
        assert!(
            thresholds[known..]
                .iter()
                .all(|t| t != "NaN" && !t.is_empty())
        );
        thresholds
            .iter()
            .any(|t| t == "5" || t == "5.0")
            .then_some(())
    });
    dev.stop().unwrap();
}

/// `GET /metrics`, checked as Prometheus' text format (a HELP and a TYPE before each family's
/// series, every series `name{labels} value` once, a histogram's named `_bucket`, `_sum` or
/// `_count`): its content type, its text and its series by key.
fn scrape(daemon: &Daemon) -> (String, String, std::collections::HashMap<String, f64>) {
    let mut answer = ureq::get(&daemon.url("/metrics"))
        .call()
        .expect("/metrics answers");
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = answer
        .body_mut()
        .read_to_string()
        .expect("/metrics is text");
    let mut family: Option<String> = None;
    let mut kind = "";
    let mut series = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            family = rest.split(' ').next().map(String::from);
            kind = "";
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, k) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(Some(name), family.as_deref(), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&k), "{line}");
            kind = if k == "histogram" {
                "histogram"
            } else {
                "plain"
            };
        } else {
            let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
            let name = key.split('{').next().unwrap_or(key);
            let family = family.as_deref().unwrap_or_else(|| panic!("{line}"));
            let named = match kind {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family)),
                "plain" => name == family,
                _ => false,
            };
            assert!(named, "{line} (family {family}, {kind:?})");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{line}: not a number"));
            assert!(
                series.insert(key.to_string(), value).is_none(),
                "{line} twice"
            );
        }
    }
    (content_type, text, series)
}

/// `GET /metrics` from the real daemon: Prometheus' text format (its content type, a HELP and
/// a TYPE before each family's series, every series `name{labels} value`), with the device's
/// counters as `/api/status` gives them.
#[test]
fn metrics_are_prometheus_text_with_the_devices_counters() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyPROM");
    let dev = device(&link);
    let daemon = Daemon::start(on(&link), |_| {});
    wait_for(Duration::from_secs(20), "200 samples", || {
        (samples(&daemon.get("/api/status")) >= 200).then_some(())
    });
    let before = samples(&daemon.get("/api/status"));
    let (content_type, text, series) = scrape(&daemon);
    let after = samples(&daemon.get("/api/status"));
    assert_eq!(
        content_type, "text/plain; version=0.0.4; charset=utf-8",
        "{text}"
    );
    let get = |key: &str| *series.get(key).unwrap_or_else(|| panic!("{key}:\n{text}"));
    let samples_now = get(r#"zscope_samples_total{device="ttyPROM"}"#);
    assert!(
        (before as f64..=after as f64).contains(&samples_now),
        "{before} <= {samples_now} <= {after}"
    );
    assert_eq!(get(r#"zscope_connected{device="ttyPROM"}"#), 1.0);
    assert_eq!(get(r#"zscope_identified{device="ttyPROM"}"#), 1.0);
    assert_eq!(get(r#"zscope_config_version{device="ttyPROM"}"#), 1.0);
    assert_eq!(
        get(r#"zscope_bad_frames_total{device="ttyPROM",kind="crc"}"#),
        0.0
    );
    assert_eq!(get(r#"zscope_store_healthy{device="ttyPROM"}"#), 1.0);
    let log = daemon.log_dir.join("samples.csv");
    let written = format!(
        r#"zscope_log_rows_written_total{{device="ttyPROM",file="{}"}}"#,
        log.display()
    );
    assert!(get(&written) > 0.0);
    assert!(get("zscope_uptime_seconds") >= 0.0);

    // A page that reads: its live messages are timed from their oldest point's arrival to
    // its socket taking them, a histogram that fills as they go out.
    let count = r#"zscope_page_latency_seconds_count{device="ttyPROM"}"#;
    assert_eq!(get(count), 0.0, "no page yet");
    let (code, _, mut page) = ws_handshake(daemon.addr);
    assert_eq!(code, 101);
    page.set_read_timeout(None).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while matches!(std::io::Read::read(&mut page, &mut buf), Ok(n) if n > 0) {}
    });
    let series = wait_for(Duration::from_secs(20), "50 live messages timed", || {
        let (_, _, series) = scrape(&daemon);
        (series.get(count).copied().unwrap_or(0.0) >= 50.0).then_some(series)
    });
    let bucket = |le: &str| {
        series[&format!(r#"zscope_page_latency_seconds_bucket{{device="ttyPROM",le="{le}"}}"#)]
    };
    let les = [
        "0.001", "0.0025", "0.005", "0.01", "0.02", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
        "+Inf",
    ];
    for pair in les.windows(2) {
        assert!(bucket(pair[0]) <= bucket(pair[1]), "cumulative at {pair:?}");
    }
    assert_eq!(bucket("+Inf"), series[count]);
    assert!(series[r#"zscope_page_latency_seconds_sum{device="ttyPROM"}"#] >= 0.0);
    dev.stop().unwrap();
    drop(daemon);
    reader.join().unwrap();
}

/// A store that cannot be opened (here a damaged file where the store should be) does not take
/// the daemon down: it starts, logs CSV, serves the page, and says why the store is missing,
/// with a hint that names the cause.
#[test]
fn a_damaged_store_leaves_the_logs_and_the_page_running() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyDMG");
    let log_dir = dir.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(log_dir.join("zscope.db"), &garbage).unwrap();
    let dev = device(&link);
    let logs = log_dir.clone();
    let daemon = Daemon::start(on(&link), move |s| s.log_dir = logs);
    let s = wait_for(Duration::from_secs(20), "200 samples", || {
        let s = daemon.get("/api/status");
        (samples(&s) >= 200).then_some(s)
    });
    let error = s["store"]["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.contains("not a database") && error.contains("damaged"),
        "{s}"
    );
    assert!(
        s["store"]["path"]
            .as_str()
            .unwrap_or("")
            .ends_with("zscope.db"),
        "{s}"
    );
    wait_for(Duration::from_secs(20), "rows in samples.csv", || {
        let text = std::fs::read_to_string(log_dir.join("samples.csv")).ok()?;
        (text.lines().count() > 100).then_some(())
    });
    assert_eq!(
        std::fs::read(log_dir.join("zscope.db")).unwrap(),
        garbage,
        "the damaged file is left as it was"
    );
    let metrics = ureq::get(&daemon.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("zscope_store_healthy{device=\"ttyDMG\"} 0"),
        "{metrics}"
    );
    dev.stop().unwrap();
}

/// The emulated board with a temperature sensor (a sysfs file of this test's making): the API
/// lists its sources, refuses one it lacks, switches to the sensor, and the daemon shows its
/// values in °C, follows them, and counts a sensor that fails while the stream goes on.
#[test]
fn the_api_switches_a_device_to_its_temperature_sensor_and_counts_failures() {
    use zscope_core::source::Sources;
    use zscope_host::source::emulated::{BOARD, Emulator, find_thermal};
    let secs = Duration::from_secs;
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("class/thermal/thermal_zone0");
    std::fs::create_dir_all(&zone).unwrap();
    let file = zone.join("temp");
    std::fs::write(&file, "41500\n").unwrap();
    assert_eq!(find_thermal(dir.path()).unwrap(), file);
    let empty = tempfile::tempdir().unwrap();
    let why = find_thermal(empty.path()).unwrap_err();
    assert!(why.contains("no temperature sensor"), "{why}");

    let settings = zscope_firmware::Settings {
        board: BOARD,
        sources: Sources::simulator(),
        ..zscope_firmware::Settings::default()
    };
    let link = dir.path().join("ttyTEMP");
    let dev = Emulator::spawn_sensing(settings, Some(&link), file.clone()).unwrap();
    let daemon = Daemon::start(on(&link), |_| {});
    let status = wait_for(secs(20), "the hello", || {
        let s = daemon.get("/api/status");
        (s["device"]["sources"] == json!(["simulator", "temperature"])).then_some(s)
    });
    assert_eq!(status["device"]["source"], json!("simulator"), "{status}");
    assert_eq!(status["device"]["unit"], json!(""));

    // Not a source's name; a source this device lacks: refused, saying what it has.
    let (code, body) = daemon.post("/api/source", &json!({"source": "adc:PZ0"}));
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("not a pin name"), "{body}");
    let (code, body) = daemon.post("/api/source", &json!({"source": "adc:PA0"}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string()
            .contains("this device has simulator, temperature"),
        "{body}"
    );

    let (code, body) = daemon.post("/api/source", &json!({"source": "temperature"}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body, json!({"version": 2, "source": "temperature"}));
    let status = wait_for(secs(10), "the source in the status", || {
        let s = daemon.get("/api/status");
        (s["device"]["source"] == json!("temperature")).then_some(s)
    });
    assert_eq!(status["device"]["unit"], json!("°C"), "{status}");
    let d = &daemon;
    let judged = |value: f64| {
        move || {
            let got = points(&d.get("/api/samples?limit=20"));
            got.last()
                .filter(|p| p["config_version"] == json!(2) && p["value"] == json!(value))
                .cloned()
        }
    };
    wait_for(secs(10), "41.5 °C judged", judged(41.5));
    // The CSV log says what was judged and in what unit, row by row.
    let log = daemon.log_dir.join("samples.csv");
    wait_for(secs(10), "a row of the sensor in the CSV", || {
        let text = std::fs::read_to_string(&log).ok()?;
        let header: Vec<&str> = text.lines().next()?.split(',').collect();
        let at = |name| header.iter().position(|c| *c == name);
        let (value, source, unit) = (at("value")?, at("source")?, at("unit")?);
        text.lines().skip(1).find_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f[source] == "temperature")
                .then(|| assert_eq!((f[value], f[unit]), ("41.5", "°C"), "{line}"))
        })
    });
    std::fs::write(&file, "43250\n").unwrap();
    wait_for(secs(10), "43.25 °C judged", judged(43.25));

    // The sensor fails: counted in the device's status; the daemon and the link stay up.
    std::fs::write(&file, "not a number\n").unwrap();
    let status = wait_for(secs(10), "sensor errors counted", || {
        let s = daemon.get("/api/status");
        (s["device_status"]["sensor_errors"].as_u64().unwrap_or(0) > 0).then_some(s)
    });
    assert_eq!(status["connected"], json!(true), "{status}");
    std::fs::write(&file, "40000\n").unwrap();
    wait_for(secs(10), "40 °C judged again", judged(40.0));
    drop(daemon);
    dev.stop().unwrap();

    // --source: the daemon asks a device that boots on its simulator to switch after its
    // hello; a source the device does not have is said in the status, with the ones it has.
    for (wanted, expect_error) in [("temperature", false), ("adc:PA0", true)] {
        let settings = zscope_firmware::Settings {
            board: BOARD,
            ..zscope_firmware::Settings::default()
        };
        let dev = Emulator::spawn_sensing(settings, Some(&link), file.clone()).unwrap();
        let judge = zscope_core::source::Source::parse(wanted).ok();
        let daemon = Daemon::start(on(&link), |s| s.devices[0].judge = judge);
        let status = wait_for(secs(20), "the source asked for, or why not", || {
            let s = daemon.get("/api/status");
            let switched = s["device"]["source"] == json!(wanted);
            (switched || !s["source_error"].is_null()).then_some(s)
        });
        if expect_error {
            assert_eq!(
                status["source_error"],
                json!("--source adc:PA0: this device has simulator, temperature"),
                "{status}"
            );
            assert_eq!(status["device"]["source"], json!("simulator"));
        } else {
            assert_eq!(status["source_error"], json!(null), "{status}");
            wait_for(secs(10), "40 °C judged after --source", || {
                let got = points(&daemon.get("/api/samples?limit=5"));
                got.last().filter(|p| p["value"] == json!(40.0)).cloned()
            });
        }
        drop(daemon);
        dev.stop().unwrap();
    }
}

/// A page that connects while points stream gets each point once: its snapshot, then the
/// live points after it, with none twice (the pump's batch may hold points the snapshot
/// already had) and none missing, for pages that connect at several moments.
#[test]
fn a_page_gets_each_point_once_across_its_snapshot_and_the_live_stream() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyONCE");
    // 1 kHz: enough that the pump's batches hold points a snapshot has, light enough beside
    // the tests this one runs with.
    let dev = device_with(&link, 1000, Encoding::Auto);
    let daemon = Daemon::start(on(&link), |_| {});
    wait_for(Duration::from_secs(20), "500 samples", || {
        (samples(&daemon.get("/api/status")) >= 500).then_some(())
    });
    for page in 0..4 {
        let stream = std::net::TcpStream::connect(daemon.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (mut ws, _) =
            tungstenite::client(format!("ws://{}/ws", daemon.addr), stream).expect("handshake");
        let mut seqs: Vec<u64> = Vec::new();
        let mut snapshot = 0;
        let mut lagged = false;
        while seqs.len() < snapshot + 1000 {
            let text = match ws.read().expect("the page's messages") {
                tungstenite::Message::Text(text) => text,
                _ => continue,
            };
            let m: Value = serde_json::from_str(&text).unwrap();
            match m["type"].as_str() {
                Some("snapshot") | Some("points") => {
                    let got = m["points"]["seq"].as_array().unwrap();
                    seqs.extend(got.iter().map(|s| s.as_u64().unwrap()));
                    if m["type"] == "snapshot" {
                        snapshot = seqs.len();
                    }
                }
                Some("lagged") => lagged = true,
                _ => {}
            }
        }
        for pair in seqs.windows(2) {
            assert!(
                pair[0] < pair[1],
                "page {page}: {} then {}",
                pair[0],
                pair[1]
            );
            if !lagged {
                assert_eq!(pair[1], pair[0] + 1, "page {page}: a point missing");
            }
        }
    }
    drop(daemon);
    dev.stop().unwrap();
}
