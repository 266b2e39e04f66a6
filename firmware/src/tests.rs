//! Unit tests of the app on the host: the sans-IO app driven by hand.

extern crate std;
use std::vec::Vec;

use crate::app::{
    App, CAPACITY, Encoding, SEASON_CAPACITY, STATUS_PERIOD_MS, Settings, TX_QUEUE, scale_for,
};
use zscope_core::compact::Batcher;
use zscope_core::wire::{self, AckResult, Decoder, DeviceMsg, HostMsg, Sample};
use zscope_core::{ConfigError, Detector, DetectorConfig, SimConfig, Simulator};

/// Drain the app's transmit queue and decode everything in it.
fn drain(app: &mut App, decoder: &mut Decoder) -> Vec<DeviceMsg> {
    let (a, b) = app.pending_tx();
    let bytes: Vec<u8> = a.iter().chain(b).copied().collect();
    app.consume_tx(bytes.len());
    let mut input = &bytes[..];
    let mut out = Vec::new();
    while let Some(r) = decoder.next_message::<DeviceMsg>(&mut input) {
        out.push(r.expect("the app only sends valid frames"));
    }
    out
}

fn samples(msgs: &[DeviceMsg]) -> Vec<Sample> {
    msgs.iter().flat_map(DeviceMsg::samples).collect()
}

/// Tick every 10 ms from `from` to `to` (inclusive), draining the queue each time, like a
/// line that keeps up.
fn run(app: &mut App, dec: &mut Decoder, from: u64, to: u64) -> Vec<DeviceMsg> {
    let mut out = Vec::new();
    for t in (from..=to).step_by(10) {
        app.tick(t);
        out.extend(drain(app, dec));
    }
    out
}

fn command(app: &mut App, cmd: HostMsg, now: u64) {
    let mut buf = [0u8; wire::MAX_FRAME];
    let n = wire::encode(&cmd, &mut buf).unwrap();
    app.receive(&buf[..n], now);
}

fn settings() -> Settings {
    Settings {
        board: "test",
        ..Settings::default()
    }
}

#[test]
fn boots_with_a_hello_then_samples_at_the_rate_and_a_status_each_second() {
    let mut app = App::new(settings()).unwrap();
    let mut dec = Decoder::new();
    app.tick(0);
    let first = drain(&mut app, &mut dec);
    let DeviceMsg::Hello(hello) = &first[0] else {
        panic!("first frame is not a hello: {first:?}")
    };
    assert_eq!(hello.protocol, wire::PROTOCOL_VERSION);
    assert_eq!(hello.board.as_str(), "test");
    assert_eq!(hello.capacity, CAPACITY as u32);
    assert_eq!(hello.sample_rate_hz, 50);
    assert_eq!(hello.config_version, 1);
    assert_eq!(hello.simulator, Some(SimConfig::default()));
    let mut all = first;
    for t in (10..=2000).step_by(10) {
        app.tick(t);
        all.extend(drain(&mut app, &mut dec));
    }
    let s = samples(&all);
    // 50 Hz for 2 s: samples 0..=100, each stamped with its scheduled time.
    assert_eq!(s.len(), 101);
    for (i, x) in s.iter().enumerate() {
        assert_eq!((x.seq, x.time_ms), (i as u64, 20 * i as u64));
    }
    let statuses: Vec<_> = all
        .iter()
        .filter_map(|m| match m {
            DeviceMsg::Status(st) => Some(*st),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].time_ms, STATUS_PERIOD_MS);
    assert_eq!(statuses[1].samples, 101);
    assert_eq!(statuses[1].dropped, 0);
}

#[test]
fn verdicts_are_bit_identical_to_the_core_run_directly() {
    let mut app = App::new(Settings {
        rate_hz: 0,
        encoding: Encoding::Frames,
        ..settings()
    })
    .unwrap();
    let mut dec = Decoder::new();
    let mut got = Vec::new();
    let mut t = 0;
    while got.len() < 5000 {
        app.tick(t);
        t += 1;
        got.extend(samples(&drain(&mut app, &mut dec)));
    }
    let mut sim = Simulator::new(SimConfig::default()).unwrap();
    let mut det: Box<Detector<f32, CAPACITY, SEASON_CAPACITY>> =
        Box::new(Detector::new(DetectorConfig::default()).unwrap());
    for (i, s) in got.iter().enumerate() {
        let x = sim.next_sample();
        let v = det.update(x.value);
        let want = Sample::from_verdict(i as u64, s.time_ms, &v, x.truth.is_anomaly(), 1);
        assert_eq!(s.seq, i as u64);
        // Compare bits, so NaN or -0.0 could not hide a difference.
        let bits = |s: &Sample| {
            (
                s.value.to_bits(),
                s.mean.to_bits(),
                s.std.to_bits(),
                s.z.to_bits(),
                s.flags,
            )
        };
        assert_eq!(bits(s), bits(&want), "sample {i}");
    }
}

/// In batches the device judges each value on the grid; the host gets exactly that value and
/// verdict, and every anomaly's own z and score.
#[test]
fn batched_verdicts_are_bit_identical_to_the_core_run_on_the_grid() {
    let mut app = App::new(Settings {
        rate_hz: 0,
        ..settings()
    })
    .unwrap();
    assert!(app.batching());
    let mut dec = Decoder::new();
    let mut got = Vec::new();
    let mut batches = 0;
    let mut t = 0;
    while got.len() < 20_000 {
        app.tick(t);
        t += 1;
        let msgs = drain(&mut app, &mut dec);
        batches += msgs
            .iter()
            .filter(|m| matches!(m, DeviceMsg::Batch(_)))
            .count();
        assert!(!msgs.iter().any(|m| matches!(m, DeviceMsg::Sample(_))));
        got.extend(samples(&msgs));
    }
    assert!(batches > 0 && batches < got.len() / 20, "{batches} batches");
    let mut sim = Simulator::new(SimConfig::default()).unwrap();
    let grid = Batcher::new(scale_for(&SimConfig::default()));
    let mut det: Box<Detector<f32, CAPACITY, SEASON_CAPACITY>> =
        Box::new(Detector::new(DetectorConfig::default()).unwrap());
    let mut anomalies = 0;
    for (i, s) in got.iter().enumerate() {
        let x = sim.next_sample();
        let v = det.update(grid.quantise(x.value));
        let want = Sample::from_verdict(i as u64, s.time_ms, &v, x.truth.is_anomaly(), 1);
        assert_eq!(s.seq, i as u64);
        assert_eq!(
            (s.value.to_bits(), s.flags),
            (want.value.to_bits(), want.flags),
            "sample {i}"
        );
        assert!((s.value - x.value).abs() <= 0.1 / 32.0, "sample {i}");
        if s.flags.contains(wire::Flags::ANOMALY) {
            anomalies += 1;
            let bits = |s: &Sample| (s.mean.to_bits(), s.std.to_bits(), s.z.to_bits());
            assert_eq!(bits(s), bits(&want), "anomaly {i}");
            assert_eq!(s.score.to_bits(), want.score.to_bits());
        }
    }
    assert!(anomalies > 100, "{anomalies}");
}

/// A UART at 115 200 baud, simulated byte by byte: the app's bytes leave at 11.52 a
/// millisecond, the loop polls ten times a millisecond. Returns every sample with the
/// millisecond its frame's last byte left, and the bytes sent.
fn over_a_uart(app: &mut App, ms: u64) -> (Vec<(Sample, u64)>, u64) {
    let mut dec: Decoder = Decoder::new();
    let (mut budget, mut sent) = (0.0f64, 0u64);
    let mut out = Vec::new();
    for t in 0..ms {
        for _ in 0..10 {
            app.tick(t);
            budget += 1.152;
            let (a, b) = app.pending_tx();
            let n = (budget as usize).min(a.len() + b.len());
            let bytes: Vec<u8> = a.iter().chain(b).take(n).copied().collect();
            app.consume_tx(n);
            budget -= n as f64;
            sent += n as u64;
            let mut input = &bytes[..];
            while let Some(m) = dec.next_message::<DeviceMsg>(&mut input) {
                out.extend(m.unwrap().samples().map(|s| (s, t)));
            }
        }
    }
    (out, sent)
}

#[test]
fn at_115200_baud_batches_carry_4000_samples_a_second_and_1_khz_within_20_ms() {
    // Whatever the link can carry in single frames: 338 a second.
    let mut app = App::new(Settings {
        rate_hz: 4000,
        encoding: Encoding::Frames,
        ..settings()
    })
    .unwrap();
    let (frames, _) = over_a_uart(&mut app, 3000);
    assert!(frames.len() < 3 * 400, "{}", frames.len());
    // Batches: every one of 4 000 a second, in order, under 2.88 bytes each.
    let mut app = App::new(Settings {
        rate_hz: 4000,
        ..settings()
    })
    .unwrap();
    assert!(app.batching());
    let (got, bytes) = over_a_uart(&mut app, 3000);
    assert_eq!(app.status().dropped, 0);
    let delivered = got.len() as u64;
    assert!(delivered >= 11_800, "{delivered}");
    assert!(got.iter().enumerate().all(|(i, (s, _))| s.seq == i as u64));
    // The link is the bound: batches grow just enough to keep up, so it is kept busy.
    assert!(bytes <= 3 * 11_520, "{bytes}");
    let worst = got.iter().map(|(s, at)| at - s.time_ms).max().unwrap();
    std::eprintln!("4 kHz: worst {worst} ms");
    assert!(worst <= 100, "a sample {worst} ms late at 4 kHz");
    // At 1 kHz: every sample within 20 ms of its time.
    let mut app = App::new(Settings {
        rate_hz: 1000,
        ..settings()
    })
    .unwrap();
    let (got, _) = over_a_uart(&mut app, 3000);
    assert!(got.len() >= 2990, "{}", got.len());
    let worst = got.iter().map(|(s, at)| at - s.time_ms).max().unwrap();
    std::eprintln!("1 kHz: worst {worst} ms");
    assert!(worst <= 20, "a sample {worst} ms late");
}

#[test]
fn set_config_takes_effect_at_once_and_is_acknowledged() {
    let mut app = App::new(settings()).unwrap();
    let mut dec = Decoder::new();
    app.tick(0);
    drain(&mut app, &mut dec);
    let new = DetectorConfig {
        threshold: 1.0,
        ..DetectorConfig::with_window(32)
    };
    command(&mut app, HostMsg::SetConfig { id: 7, config: new }, 5);
    let msgs = run(&mut app, &mut dec, 10, 2000);
    let DeviceMsg::Ack(ack) = &msgs[0] else {
        panic!("no ack first: {msgs:?}")
    };
    assert_eq!(
        (ack.id, ack.result, ack.config_version),
        (7, AckResult::Ok, 2)
    );
    assert_eq!(ack.config, new);
    let s = samples(&msgs);
    assert!(s.iter().all(|x| x.config_version == 2));
    // Threshold 1 flags about a third of normal points.
    let flagged = s
        .iter()
        .filter(|x| x.flags.contains(wire::Flags::ANOMALY))
        .count();
    assert!(flagged > s.len() / 5, "{flagged} of {}", s.len());
    // A refused config is answered with the reason and changes nothing.
    command(
        &mut app,
        HostMsg::SetConfig {
            id: 8,
            config: DetectorConfig::with_window(5000),
        },
        2001,
    );
    let msgs = drain(&mut app, &mut dec);
    let DeviceMsg::Ack(ack) = &msgs[0] else {
        panic!("no ack: {msgs:?}")
    };
    assert_eq!(
        ack.result,
        AckResult::Rejected(ConfigError::Window {
            window: 5000,
            capacity: CAPACITY as u32
        })
    );
    assert_eq!((ack.config_version, ack.config), (2, new));
}

#[test]
fn ping_reset_and_rate_are_acknowledged() {
    let mut app = App::new(settings()).unwrap();
    let mut dec = Decoder::new();
    app.tick(0);
    drain(&mut app, &mut dec);
    command(&mut app, HostMsg::Ping { id: 1 }, 1);
    command(&mut app, HostMsg::Reset { id: 2 }, 1);
    command(&mut app, HostMsg::SetRate { id: 3, hz: 10 }, 1);
    command(
        &mut app,
        HostMsg::SetRate {
            id: 4,
            hz: u32::MAX,
        },
        1,
    );
    let msgs = drain(&mut app, &mut dec);
    let acks: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            DeviceMsg::Ack(a) => Some((a.id, a.result)),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks[..3],
        [(1, AckResult::Ok), (2, AckResult::Ok), (3, AckResult::Ok)]
    );
    assert!(matches!(acks[3], (4, AckResult::RateRejected { .. })));
    assert!(
        msgs.iter()
            .any(|m| matches!(m, DeviceMsg::Hello(h) if h.sample_rate_hz == 10))
    );
    assert_eq!(app.rate_hz(), 10);
    // At 10 Hz, for a second from the change: 11 samples (1 ms .. 1001 ms).
    assert_eq!(samples(&run(&mut app, &mut dec, 1, 1001)).len(), 11);
}

#[test]
fn malformed_commands_are_counted_and_the_stream_goes_on() {
    let mut app = App::new(settings()).unwrap();
    let mut dec = Decoder::new();
    app.tick(0);
    drain(&mut app, &mut dec);
    app.receive(&[0x13, 0x37, 0x00, 0xff, 0xff, 0x00], 1);
    command(&mut app, HostMsg::Ping { id: 9 }, 1);
    let msgs = run(&mut app, &mut dec, 10, 1000);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, DeviceMsg::Ack(a) if a.id == 9))
    );
    assert_eq!(samples(&msgs).len(), 50);
    assert_eq!(app.status().rx_errors, 2);
    assert_eq!(app.status().commands, 1);
}

/// An app at 1 kHz whose line takes nothing for a second (the queue fills, samples are
/// dropped), then a ping: the app, its decoder, and what the queue then held.
fn stalled_for_a_second(encoding: Encoding) -> (App, Decoder, Vec<DeviceMsg>) {
    let mut app = App::new(Settings {
        rate_hz: 1000,
        encoding,
        ..settings()
    })
    .unwrap();
    let mut dec = Decoder::new();
    for t in 0..=1000 {
        app.tick(t);
    }
    command(&mut app, HostMsg::Ping { id: 5 }, 1000);
    let msgs = drain(&mut app, &mut dec);
    (app, dec, msgs)
}

#[test]
fn a_slow_link_drops_samples_counts_them_and_still_answers() {
    let (app, _, msgs) = stalled_for_a_second(Encoding::Frames);
    let sent = samples(&msgs);
    assert!(
        sent.len() < 40,
        "{} samples fit a {TX_QUEUE}-byte queue?",
        sent.len()
    );
    let dropped = app.status().dropped;
    assert_eq!(dropped + sent.len() as u64, 1001);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, DeviceMsg::Ack(a) if a.id == 5))
    );
    // The host sees the gap in sequence numbers.
    assert!(sent.windows(2).any(|w| w[1].seq > w[0].seq + 1) || sent.last().unwrap().seq < 1000);
    // The status frame made at 1000 ms got through the full queue and reports the drops.
    let st = msgs.iter().find_map(|m| match m {
        DeviceMsg::Status(s) => Some(*s),
        _ => None,
    });
    assert_eq!(st.map(|s| s.dropped), Some(dropped));
}

#[test]
fn a_link_that_takes_nothing_drops_whole_batches_and_counts_every_sample() {
    let (mut app, mut dec, mut msgs) = stalled_for_a_second(Encoding::Auto);
    assert!(app.batching());
    // The queue is empty now: what is still batched goes.
    app.tick(1000);
    msgs.extend(drain(&mut app, &mut dec));
    let sent = samples(&msgs);
    assert_eq!(app.status().dropped + sent.len() as u64, 1001);
    assert!(app.status().dropped > 0);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, DeviceMsg::Ack(a) if a.id == 5))
    );
    // Samples go in order, with the gaps where batches were dropped.
    assert!(sent.windows(2).all(|w| w[1].seq > w[0].seq));
}

#[test]
fn a_loop_more_than_a_second_late_skips_ahead_and_says_so() {
    let mut app = App::new(settings()).unwrap();
    let mut dec = Decoder::new();
    app.tick(0);
    drain(&mut app, &mut dec);
    app.tick(10_000); // the loop stalled for 10 s
    let s = samples(&drain(&mut app, &mut dec));
    assert_eq!(s.first().map(|x| x.seq), Some(500));
    assert!(app.status().dropped >= 499);
}

#[test]
fn bad_settings_are_refused() {
    assert!(
        App::new(Settings {
            rate_hz: u32::MAX,
            ..settings()
        })
        .is_err()
    );
    assert!(
        App::new(Settings {
            detector: DetectorConfig::with_window(2000),
            ..settings()
        })
        .is_err()
    );
}

#[test]
fn the_seasonal_baseline_is_selectable_over_the_wire() {
    use zscope_core::Baseline;
    let mut app = App::new(settings()).unwrap();
    let mut dec = Decoder::new();
    app.tick(0);
    drain(&mut app, &mut dec);
    let seasonal = DetectorConfig {
        baseline: Baseline::Seasonal {
            period: 100,
            alpha: 0.3,
        },
        ..DetectorConfig::default()
    };
    command(
        &mut app,
        HostMsg::SetConfig {
            id: 1,
            config: seasonal,
        },
        1,
    );
    let too_long = DetectorConfig {
        baseline: Baseline::Seasonal {
            period: 5000,
            alpha: 0.3,
        },
        ..DetectorConfig::default()
    };
    command(
        &mut app,
        HostMsg::SetConfig {
            id: 2,
            config: too_long,
        },
        1,
    );
    let msgs = run(&mut app, &mut dec, 10, 6000);
    let acks: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            DeviceMsg::Ack(a) => Some((a.id, a.result, a.config_version)),
            _ => None,
        })
        .collect();
    assert_eq!(acks[0], (1, AckResult::Ok, 2));
    assert_eq!(
        acks[1],
        (
            2,
            AckResult::Rejected(ConfigError::Period {
                period: 5000,
                capacity: crate::app::SEASON_CAPACITY as u32
            }),
            2
        )
    );
    // The first period fills the profile (warming up), then verdicts resume.
    let s = samples(&msgs);
    assert!(
        s[..100]
            .iter()
            .all(|x| x.flags.contains(wire::Flags::WARMING_UP))
    );
    assert!(
        s.iter()
            .skip(200)
            .any(|x| !x.flags.contains(wire::Flags::WARMING_UP))
    );
}
