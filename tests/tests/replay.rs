//! Replay: a recorded session reproduces its verdicts exactly, and a CSV file streams through the
//! same detector and API as a live device.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use zscope_core::{DetectorConfig, SimConfig, Simulator};
use zscope_firmware::Settings;
use zscope_host::source::SourceSetting;
use zscope_host::source::emulated::{BOARD, Emulator};
use zscope_host::source::replay::Speed;
use zscope_tests::{Daemon, wait_for};

fn rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).expect("the CSV log exists");
    r.records()
        .map(|rec| {
            rec.expect("a valid CSV row")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn finished(daemon: &Daemon) -> Value {
    wait_for(Duration::from_secs(30), "the replay to finish", || {
        // The end of the file is how a replay ends: said, and no error.
        let s = daemon.get("/api/status");
        (s["ended"]
            .as_str()
            .is_some_and(|e| e.contains("replay finished"))
            && s["link_error"].is_null())
        .then_some(s)
    })
}

#[test]
fn a_recorded_session_replays_with_exactly_the_same_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("tty");
    let recording = dir.path().join("session.zsr");
    let dev = Emulator::spawn_linked(
        Settings {
            board: BOARD,
            rate_hz: 1000,
            ..Settings::default()
        },
        Some(&link),
    )
    .unwrap();
    let rec = recording.clone();
    let live = Daemon::start(
        SourceSetting::Serial {
            port: link.display().to_string(),
            baud: 115_200,
        },
        move |s| s.record = Some(rec),
    );
    wait_for(Duration::from_secs(20), "2000 samples", || {
        (live.get("/api/status")["counters"]["samples"].as_u64() >= Some(2000)).then_some(())
    });
    // A config change mid-session is in the recording too.
    let (code, _) = live.post("/api/config", &json!({ "threshold": 2.0 }));
    assert_eq!(code, 200);
    wait_for(Duration::from_secs(20), "1000 more samples", || {
        (live.get("/api/status")["counters"]["samples"].as_u64() >= Some(3000)).then_some(())
    });
    let written = dev.silence().unwrap();
    live.wait_read(written);
    let live_log = live.log_dir.join("samples.csv");
    let _live_dir = live.stop();

    let replay = Daemon::start(
        SourceSetting::ReplayFrames {
            path: recording.clone(),
            speed: Speed::Max,
        },
        |_| {},
    );
    let status = finished(&replay);
    assert_eq!(status["bad_frames"], json!(0), "{status}");
    // The verdicts are the device's: they cannot be changed.
    let (code, answer) = replay.post("/api/config", &json!({ "threshold": 4.0 }));
    assert_eq!(code, 409, "{answer}");
    assert!(
        answer["error"].as_str().unwrap_or("").contains("recording"),
        "{answer}"
    );
    let replay_log = replay.log_dir.join("samples.csv");
    let _replay_dir = replay.stop();

    let (a, b) = (rows(&live_log), rows(&replay_log));
    assert!(a.len() >= 3000, "{} live rows", a.len());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        // Every column but the host's arrival time.
        assert_eq!(x[1..], y[1..], "live {x:?} vs replay {y:?}");
    }
    assert!(
        a.iter().any(|r| r[10] == "2"),
        "the config change is in the session"
    );
}

#[test]
fn a_csv_file_replays_through_the_same_detector_as_score() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("data.csv");
    let mut text = String::from("timestamp,value,label\n");
    for s in Simulator::new(SimConfig::default()).unwrap().take(3000) {
        let ms = 1_795_507_200_000i64 + 20 * s.index as i64;
        text += &format!("{ms},{},{}\n", s.value, s.truth.is_anomaly() as u8);
    }
    text += "1795507300000,not-a-number,0\n";
    std::fs::write(&input, text).unwrap();

    // What `score` flags on this file.
    let out = dir.path().join("scored.csv");
    zscope_host::batch::score::score(&zscope_host::batch::score::ScoreJob {
        input: input.clone(),
        output: out.clone(),
        format: zscope_host::batch::score::Format::Plain,
        columns: Default::default(),
        strict: false,
        detector: zscope_host::model::detector::DetectorSpec {
            config: DetectorConfig::default(),
            period_ms: None,
        },
    })
    .unwrap();
    let scored: Vec<bool> = rows(&out).iter().map(|r| r[7] == "1").collect();

    let replay = Daemon::start(
        SourceSetting::ReplayCsv {
            path: input,
            speed: Speed::Max,
            columns: Default::default(),
            strict: false,
            detector: DetectorConfig::default(),
        },
        |_| {},
    );
    let status = finished(&replay);
    assert_eq!(status["counters"]["samples"], json!(3001), "{status}");
    let msg = status["ended"].as_str().unwrap_or("");
    assert!(
        msg.contains("1 row(s) without a usable value")
            && msg.contains("line 3002: 'not-a-number' is not a number"),
        "{msg}"
    );
    assert!(
        status["quality"]["recall"].is_number(),
        "labels give live quality: {status}"
    );
    let points = replay.get("/api/samples?limit=10000");
    let flagged: Vec<bool> = points["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap_or(0) & 1 == 1)
        .collect();
    assert_eq!(flagged, scored, "replay and score flag the same rows");
    // Charted and logged at the file's own times, not today's.
    let t = points["t"].as_array().unwrap();
    assert_eq!(t[0], json!(1_795_507_200_000.0_f64));
    assert_eq!(t[2999], json!(1_795_507_200_000.0_f64 + 20.0 * 2999.0));
    let log_dir = replay.log_dir.clone();
    let _dir = replay.stop();
    let logged = rows(&log_dir.join("samples.csv"));
    assert_eq!(logged[0][0], "2026-11-24T08:00:00.000Z", "{:?}", logged[0]);
    assert_eq!(
        logged[2999][0], "2026-11-24T08:00:59.980Z",
        "{:?}",
        logged[2999]
    );
}

#[test]
fn a_paced_csv_replay_takes_config_changes_from_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("data.csv");
    let mut text = String::from("time,value\n");
    for s in Simulator::new(SimConfig::default()).unwrap().take(4000) {
        text += &format!("{},{}\n", s.index * 20, s.value); // epoch-ms-like small numbers: seconds
    }
    std::fs::write(&input, text).unwrap();
    // 4000 rows 20 s apart (the numbers read as epoch seconds), at 20 000x: about 4 s.
    let replay = Daemon::start(
        SourceSetting::ReplayCsv {
            path: input,
            speed: Speed::Factor(20_000.0),
            columns: Default::default(),
            strict: true,
            detector: DetectorConfig::default(),
        },
        |_| {},
    );
    wait_for(Duration::from_secs(10), "the replay to start", || {
        (replay.get("/api/status")["counters"]["samples"].as_u64() > Some(100)).then_some(())
    });
    let (code, answer) = replay.post(
        "/api/config",
        &json!({ "threshold": 2.5, "seasonal_period": 1 }),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["version"], json!(2));
    assert_eq!(answer["config"]["baseline"]["Seasonal"]["period"], json!(1));
    let status = finished(&replay);
    assert_eq!(status["config_version"], json!(2));
    let _ = replay.stop();
}
