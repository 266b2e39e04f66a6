//! The firmware, for real: the thumb binary in QEMU and the host emulation, each over a real
//! pseudo-terminal, against each other and against the core run directly.

use std::time::Duration;

use zscope_core::compact::Batcher;
use zscope_core::wire::{AckResult, DeviceMsg, Flags, HostMsg, PROTOCOL_VERSION, Sample};
use zscope_core::{ConfigError, Detector, DetectorConfig, SimConfig, Simulator};
use zscope_firmware::Settings;
use zscope_firmware::app::{CAPACITY, SEASON_CAPACITY, scale_for};
use zscope_host::source::emulated::{BOARD, Emulator};
use zscope_tests::{Line, QEMU_TOOLS, Qemu, build_qemu_firmware, framed, have_tools};

const SECONDS: fn(u64) -> Duration = Duration::from_secs;

/// Everything a sample says except the device's clock, as bits (NaN and -0.0 cannot hide).
fn verdict_bits(s: &Sample) -> (u64, u32, u32, u32, u32, Flags, u32) {
    (
        s.seq,
        s.value.to_bits(),
        s.mean.to_bits(),
        s.std.to_bits(),
        s.z.to_bits(),
        s.flags,
        s.config_version,
    )
}

/// The same stream computed by the core directly, with `change` applied before sample `at`;
/// from sample `grid_from` on, each value on the grid batches use before it is judged.
fn reference(n: u64, change: Option<(u64, DetectorConfig)>, grid_from: u64) -> Vec<Sample> {
    let mut sim = Simulator::new(SimConfig::default()).expect("default config is valid");
    let mut det: Box<Detector<f32, CAPACITY, SEASON_CAPACITY>> =
        Box::new(Detector::new(DetectorConfig::default()).expect("default config is valid"));
    let grid = Batcher::new(scale_for(&SimConfig::default()));
    let mut version = 1;
    (0..n)
        .map(|seq| {
            if let Some((at, config)) = change
                && seq == at
            {
                det.set_config(config).expect("test config is valid");
                version = 2;
            }
            let x = sim.next_sample();
            let value = if seq >= grid_from {
                grid.quantise(x.value)
            } else {
                x.value
            };
            let v = det.update(value);
            Sample::from_verdict(seq, 0, &v, x.truth.is_anomaly(), version)
        })
        .collect()
}

/// Whether `got` says what `want` says, bit for bit: all of it for a sample frame or a batch's
/// exception (every anomaly is one), and for a batch's plain sample all it carries (its value,
/// flags, sequence number and config version; its band is the batch's, its z not sent).
fn same_verdict(got: &(Sample, bool), want: &Sample) -> bool {
    let (g, batched) = got;
    if *batched && g.z.is_nan() {
        let plain = |s: &Sample| (s.seq, s.value.to_bits(), s.flags, s.config_version);
        !g.flags.contains(Flags::ANOMALY) && plain(g) == plain(want)
    } else {
        verdict_bits(g) == verdict_bits(want)
    }
}

/// The first sequence number that came in a batch (`u64::MAX` when none did).
fn first_batched(got: &[(Sample, bool)]) -> u64 {
    got.iter()
        .find(|(_, batched)| *batched)
        .map_or(u64::MAX, |(s, _)| s.seq)
}

/// Wait for the hello, take the first 100 samples at the boot rate (50 a second: one frame
/// each), switch to "as fast as the link carries" (batches), collect samples up to n. Also
/// returns the first sample made after the device took the switch: the samples it had already
/// queued come before its acknowledgement, the new rate's after.
fn stream(line: &mut Line, n: u64) -> (zscope_core::wire::Hello, Vec<(Sample, bool)>, u64) {
    let hello = line.expect(SECONDS(20), "the hello", |m| match m {
        DeviceMsg::Hello(h) => Some(h.clone()),
        _ => None,
    });
    let mut samples = line.framed_samples_until(99, SECONDS(20));
    line.send(&HostMsg::SetRate { id: 1, hz: 0 });
    while let Some(carried) = line.expect(SECONDS(20), "the switch's acknowledgement", |m| {
        if let DeviceMsg::Ack(a) = m
            && a.id == 1
        {
            assert_eq!(a.result, AckResult::Ok, "the switch refused");
            return Some(None);
        }
        let carried = framed(m);
        (!carried.is_empty()).then_some(Some(carried))
    }) {
        samples.extend(carried);
    }
    let switched = samples.last().map_or(0, |(s, _)| s.seq + 1);
    samples.extend(line.framed_samples_until(n - 1, SECONDS(120)));
    (hello, samples, switched)
}

#[test]
fn qemu_and_host_emulation_stream_bit_identical_verdicts() {
    const N: u64 = 10_000;
    if !have_tools(
        "qemu_and_host_emulation_stream_bit_identical_verdicts",
        QEMU_TOOLS,
    ) {
        return;
    }
    let elf = build_qemu_firmware();
    let mut qemu = Qemu::start(&elf);
    let mut on_qemu = Line::open(qemu.tty());
    let emulator = Emulator::spawn(Settings {
        board: BOARD,
        ..Settings::default()
    })
    .unwrap();
    let mut on_host = Line::open(emulator.path());

    let (hello_q, from_qemu, switched_q) = stream(&mut on_qemu, N);
    let (hello_h, from_host, switched_h) = stream(&mut on_host, N);
    assert!(qemu.running(), "QEMU stopped:\n{}", qemu.log());

    assert_eq!(hello_q.protocol, PROTOCOL_VERSION);
    assert_eq!(hello_q.board.as_str(), "qemu-netduinoplus2");
    assert_eq!(hello_h.board.as_str(), "emulated");
    assert_eq!(
        (hello_q.capacity, hello_q.detector, hello_q.simulator),
        (hello_h.capacity, hello_h.detector, hello_h.simulator)
    );

    // Every sample 0..N, in order, from both (nothing dropped at either rate): one frame each
    // at 50 a second, then batches from the first sample made after the switch (where that
    // falls depends on when the test read the line), the values on the grid from there on.
    for (name, got, switched) in [
        ("QEMU", &from_qemu, switched_q),
        ("emulation", &from_host, switched_h),
    ] {
        assert_eq!(got.len() as u64, N, "{name} sent {} samples", got.len());
        let grid_from = first_batched(got);
        assert!(
            grid_from >= 100 && grid_from == switched,
            "{name}: first batched sample {grid_from}, first after the switch {switched}"
        );
        assert!(
            got[grid_from as usize..]
                .iter()
                .all(|(_, batched)| *batched)
        );
        let expected = reference(N, None, grid_from);
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                same_verdict(g, e),
                "{name}, sample {}: {g:?} vs {e:?}",
                e.seq
            );
        }
    }
    // The board and the emulation cut batches where their own timing says, so a plain
    // sample's band may differ; what each sample carries of its own may not.
    let grid_from = first_batched(&from_qemu).max(first_batched(&from_host));
    let own = |s: &Sample| (s.seq, s.value.to_bits(), s.flags, s.config_version);
    for (q, h) in from_qemu.iter().zip(&from_host).skip(grid_from as usize) {
        assert_eq!(own(&q.0), own(&h.0), "sample {}", q.0.seq);
    }
    let anomalies = from_qemu
        .iter()
        .filter(|(s, _)| s.flags.contains(Flags::ANOMALY))
        .count();
    assert!(anomalies > 50, "only {anomalies} anomalies in {N} samples");
    assert_eq!(on_qemu.stats().errors(), 0);
    assert_eq!(on_host.stats().errors(), 0);
    emulator.stop().unwrap();
}

#[test]
fn set_config_in_qemu_is_acknowledged_and_changes_verdicts() {
    if !have_tools(
        "set_config_in_qemu_is_acknowledged_and_changes_verdicts",
        QEMU_TOOLS,
    ) {
        return;
    }
    let elf = build_qemu_firmware();
    let mut qemu = Qemu::start(&elf);
    let mut line = Line::open(qemu.tty());
    line.expect(SECONDS(20), "the hello", |m| {
        matches!(m, DeviceMsg::Hello(_)).then_some(())
    });

    // Garbage on the line first: counted by the device, never fatal.
    line.send_raw(&[0x13, 0x37, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00]);
    let new = DetectorConfig {
        threshold: 1.5,
        ..DetectorConfig::with_window(32)
    };
    line.send(&HostMsg::SetConfig {
        id: 42,
        config: new,
    });
    let ack = line.expect(SECONDS(10), "the ack", |m| match m {
        DeviceMsg::Ack(a) if a.id == 42 => Some(*a),
        _ => None,
    });
    assert_eq!(ack.result, AckResult::Ok);
    assert_eq!((ack.config_version, ack.config), (2, new));

    // Verdicts change from the first sample judged under version 2, exactly as the core says.
    line.send(&HostMsg::SetRate { id: 43, hz: 0 });
    let got = line.framed_samples_until(3_000, SECONDS(60));
    let first_v2 = got
        .iter()
        .find(|(s, _)| s.config_version == 2)
        .map(|(s, _)| s.seq)
        .expect("samples under the new config");
    let expected = reference(3_001, Some((first_v2, new)), first_batched(&got));
    let seq0 = got[0].0.seq;
    for g in &got {
        let e = &expected[g.0.seq as usize];
        assert!(same_verdict(g, e), "sample {}: {g:?} vs {e:?}", e.seq);
    }
    let got: Vec<Sample> = got.into_iter().map(|(s, _)| s).collect();
    assert_eq!(got.last().map(|s| s.seq), Some(3_000));
    assert_eq!(got.len() as u64, 3_001 - seq0, "no sample lost");
    // Against the same samples under the unchanged config: threshold 1.5 flags far more.
    let unchanged = reference(3_001, None, u64::MAX);
    let flagged = |xs: &mut dyn Iterator<Item = &Sample>| {
        xs.filter(|s| s.seq >= first_v2 && s.flags.contains(Flags::ANOMALY))
            .count()
    };
    let (now, before) = (flagged(&mut got.iter()), flagged(&mut unchanged.iter()));
    assert!(
        now > 3 * before.max(10),
        "{now} flagged under v2, {before} under v1"
    );

    // A config the device cannot hold is refused with the reason; nothing changes.
    line.send(&HostMsg::SetConfig {
        id: 44,
        config: DetectorConfig::with_window(4096),
    });
    let refused = line.expect(SECONDS(10), "the refusal", |m| match m {
        DeviceMsg::Ack(a) if a.id == 44 => Some(*a),
        _ => None,
    });
    assert_eq!(
        refused.result,
        AckResult::Rejected(ConfigError::Window {
            window: 4096,
            capacity: CAPACITY as u32
        })
    );
    assert_eq!(refused.config_version, 2);

    // The status frame counts the garbage and the commands.
    let status = line.expect(SECONDS(20), "a status", |m| match m {
        DeviceMsg::Status(s) => Some(*s),
        _ => None,
    });
    assert_eq!(status.commands, 3);
    assert_eq!(status.rx_errors, 2);
    assert_eq!(status.config_version, 2);
    assert!(qemu.running(), "QEMU stopped:\n{}", qemu.log());
}

/// The acknowledgement of command `id`, skipping what comes before it.
fn ack_of(line: &mut Line, id: u32) -> zscope_core::wire::Ack {
    line.expect(SECONDS(30), "the acknowledgement", |m| match m {
        DeviceMsg::Ack(a) if a.id == id => Some(*a),
        _ => None,
    })
}

#[test]
fn qemu_judges_its_adc_and_temperature_sensor_on_a_timer() {
    use zscope_core::source::{Pin, Refusal, Source, Unit};
    use zscope_firmware::sensing::{self, FULL_SCALE, MAX_SENSOR_HZ, VDDA};
    if !have_tools(
        "qemu_judges_its_adc_and_temperature_sensor_on_a_timer",
        QEMU_TOOLS,
    ) {
        return;
    }
    let elf = build_qemu_firmware();
    let mut qemu = Qemu::start(&elf);
    let mut line = Line::open(qemu.tty());
    let hello = line.expect(SECONDS(20), "the hello", |m| match m {
        DeviceMsg::Hello(h) => Some(h.clone()),
        _ => None,
    });
    // The board lists its sources: the simulator (in force), the sensor, 16 pins.
    assert_eq!(hello.sources, sensing::sources());
    assert_eq!((hello.source, hello.unit), (Source::Simulator, Unit::None));

    // A pin the package has no ADC input on, and a rate a sensor cannot be sampled at, are
    // refused with the reason; nothing changes.
    let a9 = Pin {
        port: b'A',
        number: 9,
    };
    line.send(&HostMsg::SetSource {
        id: 1,
        source: Source::Adc(a9),
    });
    let refused = ack_of(&mut line, 1);
    assert_eq!(
        refused.result,
        AckResult::SourceRejected(Refusal::NoPin(a9))
    );
    assert_eq!(refused.config_version, 1);

    // adc:PA0 at the boot rate (50 a second): acknowledged, a new config version, a hello
    // saying so, then readings on TIM2's beat.
    let a0 = Source::Adc(Pin {
        port: b'A',
        number: 0,
    });
    line.send(&HostMsg::SetSource { id: 2, source: a0 });
    let ack = ack_of(&mut line, 2);
    assert_eq!((ack.result, ack.config_version), (AckResult::Ok, 2));
    let hello = line.expect(SECONDS(30), "the hello after the switch", |m| match m {
        DeviceMsg::Hello(h) => Some(h.clone()),
        _ => None,
    });
    assert_eq!(
        (hello.source, hello.unit, hello.simulator),
        (a0, Unit::Volts, None)
    );
    let first = line.expect(SECONDS(30), "a reading", |m| match m {
        DeviceMsg::Sample(s) if s.config_version == 2 => Some(*s),
        _ => None,
    });
    let mut got = vec![first];
    while got.len() < 150 {
        let s = line.expect(SECONDS(30), "readings", |m| match m {
            DeviceMsg::Sample(s) => Some(*s),
            _ => None,
        });
        got.push(s);
    }
    // On the timer's schedule: consecutive numbers, 20 ms apart.
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "{w:?}");
        assert_eq!(w[1].time_ms - w[0].time_ms, 20, "{w:?}");
    }
    // QEMU's ADC model adds 7 to its data register at every conversion (12 bits, wrapping):
    // a reading averages `oversample` of them, so readings climb by 7 x oversample counts.
    let n = sensing::oversample(a0) as f32;
    let counts = |v: f32| v * FULL_SCALE / VDDA;
    let steps = got
        .windows(2)
        .filter(|w| (counts(w[1].value) - counts(w[0].value) - 7.0 * n).abs() < 0.01)
        .count();
    assert!(
        steps as f64 >= 0.9 * 149.0,
        "{steps} of 149 steps are QEMU's 7 x {n}: {:?}",
        got.iter().map(|s| counts(s.value)).collect::<Vec<_>>()
    );
    // Judged by the same detector as on the host, learning afresh from the switch.
    let mut det: Box<Detector<f32, CAPACITY, SEASON_CAPACITY>> =
        Box::new(Detector::new(DetectorConfig::default()).expect("default config is valid"));
    for s in &got {
        let v = det.update(s.value);
        let want = Sample::from_verdict(s.seq, s.time_ms, &v, false, 2);
        assert_eq!(verdict_bits(s), verdict_bits(&want), "seq {}", s.seq);
    }
    // A sensor is sampled on a timer: "as fast as the link carries" is refused.
    line.send(&HostMsg::SetRate { id: 3, hz: 0 });
    let refused = ack_of(&mut line, 3);
    assert_eq!(
        refused.result,
        AckResult::RateRejected {
            hz: 0,
            max: MAX_SENSOR_HZ
        }
    );

    // The temperature sensor: QEMU's model makes no sense of a supply (its reference sweeps
    // 0-4095), so most readings are sensor errors, counted; the rest are judged.
    line.send(&HostMsg::SetSource {
        id: 4,
        source: Source::Temperature,
    });
    let ack = ack_of(&mut line, 4);
    assert_eq!((ack.result, ack.config_version), (AckResult::Ok, 3));
    let status = line.expect(
        SECONDS(30),
        "a status counting sensor errors",
        |m| match m {
            DeviceMsg::Status(s) if s.source == Source::Temperature && s.sensor_errors > 0 => {
                Some(*s)
            }
            _ => None,
        },
    );
    let reading = line.expect(SECONDS(60), "a temperature", |m| match m {
        DeviceMsg::Sample(s) if s.config_version == 3 => Some(*s),
        _ => None,
    });
    assert!(reading.value.is_finite(), "{reading:?}");
    assert_eq!(status.dropped, 0, "{status:?}");
    assert!(qemu.running(), "QEMU stopped:\n{}", qemu.log());
}
