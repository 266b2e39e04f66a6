//! Instruction counts on the Cortex-M4F, in QEMU: `firmware/qemu-bench.sh` (or by hand,
//! `qemu-system-arm -M netduinoplus2 -nographic -icount shift=0 -semihosting-config
//! enable=on,target=native -kernel <this ELF>`).
//!
//! With `-icount shift=0` QEMU advances virtual time by exactly 1 ns per guest instruction and
//! TIM2 (prescaler 0) counts in step with it, so `TIM2.CNT` differences are instruction counts:
//! deterministic, identical run to run. Instructions are not cycles (loads, branches and
//! divisions take more than one on a real M4): confirm on a board with DWT CYCCNT.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::{debug, hprintln};
    use stm32f4::stm32f401::{Peripherals, TIM2};
    use zscope_core::source::{Pin, Source};
    use zscope_core::wire::{self, DeviceMsg, MAX_FRAME, Sample};
    use zscope_core::{DetectorConfig, RollingZScore, SimConfig, Simulator};
    use zscope_firmware::app::{App, Encoding, Settings};
    use zscope_firmware::board::sensor::Converter;
    use zscope_firmware::monitor::Monitor;
    use zscope_firmware::sensing;

    const N: u32 = 4096;

    fn count(tim: &TIM2) -> u32 {
        tim.cnt().read().bits()
    }

    /// Instructions per call of `f`, measured over `N` calls, less the loop's own cost.
    fn per_call(tim: &TIM2, overhead: u32, mut f: impl FnMut(u32)) -> u32 {
        let start = count(tim);
        for i in 0..N {
            f(i);
        }
        (count(tim).wrapping_sub(start) / N).saturating_sub(overhead)
    }

    #[entry]
    fn main() -> ! {
        let Some(dp) = Peripherals::take() else {
            panic!("peripherals taken twice");
        };
        dp.RCC.apb1enr().modify(|_, w| w.tim2en().set_bit());
        let tim = dp.TIM2;
        tim.psc().write(|w| w.psc().set(0));
        tim.arr().write(|w| w.arr().set(u32::MAX));
        tim.cr1().write(|w| w.cen().set_bit());

        let mut sim = Simulator::new(SimConfig::default()).unwrap_or_else(|_| panic!());
        let mut data = [0f32; 1024];
        for x in data.iter_mut() {
            *x = sim.next_sample().value;
        }
        let overhead = per_call(&tim, 0, |i| {
            core::hint::black_box(data[(i & 1023) as usize]);
        });
        hprintln!("zscope-firmware-bench: instructions per call (QEMU -icount shift=0, TIM2)");
        hprintln!("loop overhead subtracted: {}", overhead);
        // Calibration: ten `nop`s must count as ten.
        let ten = per_call(&tim, overhead, |i| {
            core::hint::black_box(data[(i & 1023) as usize]);
            for _ in 0..10 {
                cortex_m::asm::nop();
            }
        });
        hprintln!("calibration, 10 nops: {}", ten);

        for window in [64u32, 1024] {
            let cfg = DetectorConfig::with_window(window);
            let mut d32: RollingZScore<f32, 1024> =
                RollingZScore::new(cfg).unwrap_or_else(|_| panic!());
            let n = per_call(&tim, overhead, |i| {
                core::hint::black_box(d32.update(data[(i & 1023) as usize]));
            });
            hprintln!("detector update, f32, window {}: {}", window, n);
            let mut d64: RollingZScore<f64, 1024> =
                RollingZScore::new(cfg).unwrap_or_else(|_| panic!());
            let n = per_call(&tim, overhead, |i| {
                core::hint::black_box(d64.update(data[(i & 1023) as usize] as f64));
            });
            hprintln!(
                "detector update, f64 (soft-float), window {}: {}",
                window,
                n
            );
        }

        let seasonal = DetectorConfig {
            baseline: zscope_core::Baseline::Seasonal {
                period: 100,
                alpha: 0.3,
            },
            ..DetectorConfig::with_window(64)
        };
        let mut ds: zscope_core::Detector<f32, 1024, 1024> =
            zscope_core::Detector::new(seasonal).unwrap_or_else(|_| panic!());
        let n = per_call(&tim, overhead, |i| {
            core::hint::black_box(ds.update(data[(i & 1023) as usize]));
        });
        hprintln!("detector update, f32, seasonal(100), window 64: {}", n);

        adaptive(&tim, overhead, &mut data);
        let mut sim = Simulator::new(SimConfig::default()).unwrap_or_else(|_| panic!());
        for x in data.iter_mut() {
            *x = sim.next_sample().value;
        }

        let n = per_call(&tim, overhead, |_| {
            core::hint::black_box(sim.next_sample());
        });
        hprintln!("simulator sample: {}", n);

        let mut frame = [0u8; MAX_FRAME];
        let msg = DeviceMsg::Sample(Sample {
            seq: 1000,
            time_ms: 20_000,
            value: 0.5,
            mean: 0.1,
            std: 0.1,
            z: 4.0,
            score: 0.6,
            flags: wire::Flags::empty(),
            config_version: 1,
        });
        let n = per_call(&tim, overhead, |_| {
            core::hint::black_box(wire::encode(&msg, &mut frame).ok());
        });
        hprintln!("sample frame encode (postcard + CRC-32C + COBS): {}", n);

        app_paths(&tim);
        sensor_paths(&tim, overhead, &data, &dp.RCC);
        debug::exit(debug::EXIT_SUCCESS);
        loop {
            cortex_m::asm::wfi();
        }
    }

    /// The adaptive detector (the default), at the firmware's capacities; each part of the
    /// bench in a frame of its own, so the stack holds one part's detectors and apps at a time.
    #[inline(never)]
    fn adaptive(tim: &TIM2, overhead: u32, data: &mut [f32; 1024]) {
        // The adaptive detector (the default), at the firmware's capacities.
        type Adaptive = zscope_core::Detector<f32, 1024, 2048>;
        let mut da: Adaptive =
            zscope_core::Detector::new(DetectorConfig::default()).unwrap_or_else(|_| panic!());
        // Learning: the first 1200 values (grid until 600; the period finder's products to
        // 1200); the period searches run a bounded step an update (from value 600, the first
        // guess; from 1200, the search of all 1200), so they are in these averages and in the
        // worst single update below.
        let start = count(tim);
        for i in 0..1200u32 {
            core::hint::black_box(da.update(data[(i & 1023) as usize]));
        }
        let learning = count(tim).wrapping_sub(start) / 1200;
        hprintln!(
            "adaptive (default), f32: per update while learning (first 1200): {}",
            learning.saturating_sub(overhead)
        );
        // The search of the 1200 ends within a few hundred updates.
        for i in 0..600u32 {
            core::hint::black_box(da.update(data[(i & 1023) as usize]));
        }
        let n = per_call(tim, overhead, |i| {
            core::hint::black_box(da.update(data[(i & 1023) as usize]));
        });
        hprintln!("adaptive (default), f32, after learning, no period: {}", n);
        // A wave of period 100 (10 noise sigmas): the period the adaptive detector finds.
        let wave_of_100 = SimConfig {
            amplitude: 1.0,
            period: 100,
            ..SimConfig::default()
        };
        let mut wave = Simulator::new(wave_of_100).unwrap_or_else(|_| panic!());
        let mut dw: Adaptive =
            zscope_core::Detector::new(DetectorConfig::default()).unwrap_or_else(|_| panic!());
        let mut followed = None;
        for i in 0..1800u32 {
            core::hint::black_box(dw.update(wave.next_sample().value));
            if followed.is_none() && dw.found_period().is_some() {
                followed = Some(i);
            }
        }
        let found = dw.found_period().unwrap_or(0);
        hprintln!(
            "adaptive (default), f32: a period of {} followed from value {} (the guess's steps \
         from 600)",
            found,
            followed.unwrap_or(0)
        );
        for x in data.iter_mut() {
            *x = wave.next_sample().value;
        }
        let n = per_call(tim, overhead, |i| {
            core::hint::black_box(dw.update(data[(i & 1023) as usize]));
        });
        hprintln!(
            "adaptive (default), f32, after learning, period {} found: {}",
            found,
            n
        );
        hprintln!(
            "adaptive (default), f32: state {} bytes",
            core::mem::size_of::<Adaptive>()
        );
        // The worst single update over a run through learning and a period's adoption, a
        // config change that restarts learning (learn 600 -> 400), and 10 000 values after:
        // the figure that says how long one update can stall a sampling loop.
        let mut wave = Simulator::new(wave_of_100).unwrap_or_else(|_| panic!());
        let mut dm: Adaptive =
            zscope_core::Detector::new(DetectorConfig::default()).unwrap_or_else(|_| panic!());
        let (mut worst, mut worst_at) = (0u32, 0u32);
        for i in 0..12_600u32 {
            if i == 1_300 {
                let restart = DetectorConfig {
                    baseline: zscope_core::Baseline::Adaptive {
                        learn: 400,
                        rest: DetectorConfig::DEFAULT_REST,
                    },
                    ..DetectorConfig::default()
                };
                dm.set_config(restart).unwrap_or_else(|_| panic!());
            }
            let x = wave.next_sample().value;
            let start = count(tim);
            core::hint::black_box(dm.update(x));
            let n = count(tim).wrapping_sub(start);
            if n > worst {
                (worst, worst_at) = (n, i);
            }
        }
        hprintln!("max instructions in one update: {}", worst);
        hprintln!("  (the update of value {} of that run)", worst_at);
    }

    /// A whole simulated sample in the app, one frame each and in batches.
    #[inline(never)]
    fn app_paths(tim: &TIM2) {
        // The whole path of one sample in the app, after learning: simulate, judge, frame,
        // queue, hand over; one frame per sample, then in batches (quantise, judge, add to the
        // batch, a frame per batch).
        for (encoding, what) in [
            (
                Encoding::Frames,
                "app, one whole sample (simulate, judge, frame, queue)",
            ),
            (
                Encoding::Batches,
                "app, one whole sample in batches (simulate, quantise, judge, batch)",
            ),
        ] {
            let mut app = App::new(Settings {
                rate_hz: 0,
                encoding,
                ..Settings::default()
            })
            .unwrap_or_else(|_| panic!());
            // Past the learning phase (its first 1 200 values cost 10 570 each, above).
            for i in 0..200 {
                app.tick(i / 64);
                let (a, b) = app.pending_tx();
                let n = a.len() + b.len();
                app.consume_tx(n);
            }
            let before = app.status().samples;
            let start = count(tim);
            for i in 0..N {
                app.tick(4 + i as u64 / 1024);
                let (a, b) = app.pending_tx();
                let n = a.len() + b.len();
                app.consume_tx(n);
            }
            let spent = count(tim).wrapping_sub(start);
            let made = (app.status().samples - before) as u32;
            hprintln!("{}: {}  ({} samples)", what, spent / made.max(1), made);
        }
    }

    /// The sensor paths and the monitor, in a frame of their own: the bench's `main` holds
    /// several detectors and apps on its stack already.
    #[inline(never)]
    fn sensor_paths(tim: &TIM2, overhead: u32, data: &[f32; 1024], rcc: &stm32f4::stm32f401::RCC) {
        // The sensor paths. QEMU's ADC converts at once (no wait for the end of conversion):
        // these are the instructions around the conversions, not their time on the board
        // (4.6 us a pin conversion, 23 us an internal one, at 21 MHz).
        // SAFETY: the ADC is used by this bench only, after the timer took what it needed.
        #[allow(unsafe_code)]
        let (adc, common) = unsafe {
            (
                stm32f4::stm32f401::ADC1::steal(),
                stm32f4::stm32f401::ADC_COMMON::steal(),
            )
        };
        let mut converter = Converter::new(adc, &common, rcc, false);
        let a0 = Source::Adc(Pin {
            port: b'A',
            number: 0,
        });
        let n = per_call(tim, overhead, |_| {
            core::hint::black_box(converter.read(a0));
        });
        hprintln!(
            "adc:PA0 reading ({} conversions averaged, in volts): {}",
            sensing::oversample(a0),
            n
        );
        let n = per_call(tim, overhead, |_| {
            core::hint::black_box(converter.read(Source::Temperature));
        });
        hprintln!(
            "temperature reading (reference and sensor, supply-corrected degrees): {}",
            n
        );
        // A conversion that never ends is a sensor error, not a hang: QEMU's ADC never sets
        // the end-of-conversion flag, so a converter that waits for it gives up after its
        // bound, every time.
        // SAFETY: as above; the converter before is not used again.
        #[allow(unsafe_code)]
        let (adc, common) = unsafe {
            (
                stm32f4::stm32f401::ADC1::steal(),
                stm32f4::stm32f401::ADC_COMMON::steal(),
            )
        };
        let mut waiting = Converter::new(adc, &common, rcc, true);
        let start = count(tim);
        let stuck = waiting.read(a0);
        let spent = count(tim).wrapping_sub(start);
        if stuck.is_some() {
            hprintln!("a conversion that never ended gave a reading: {:?}", stuck);
            debug::exit(debug::EXIT_FAILURE);
        }
        hprintln!(
            "a stuck conversion: no reading (a sensor error) after {} instructions",
            spent
        );
        // A whole sensor sample in the app, after learning: read, judge, frame or batch, queue.
        for (encoding, rate_hz, what) in [
            (
                Encoding::Frames,
                50,
                "app, one adc:PA0 sample at 50 Hz (read, judge, frame, queue)",
            ),
            (
                Encoding::Batches,
                1000,
                "app, one adc:PA0 sample at 1 kHz in batches",
            ),
        ] {
            let mut app = App::new(Settings {
                rate_hz,
                encoding,
                source: a0,
                sources: sensing::sources(),
                ..Settings::default()
            })
            .unwrap_or_else(|_| panic!());
            app.tick(0);
            let drain = |app: &mut App| {
                let (a, b) = app.pending_tx();
                let n = a.len() + b.len();
                app.consume_tx(n);
            };
            for _ in 0..1300 {
                app.reading(data[0]);
                drain(&mut app);
            }
            let start = count(tim);
            for i in 0..N {
                let v = converter.read(a0).unwrap_or(data[(i & 1023) as usize]);
                // Batches go out full: the line is taken to be busy (no tick while it idles).
                app.reading(v);
                drain(&mut app);
            }
            let spent = count(tim).wrapping_sub(start);
            hprintln!("{}: {}", what, spent / N);
        }
        // zscope inside your own firmware: the monitor, a reading at a time.
        // A static, as a firmware keeps it (16 KiB would overflow this bench's stack).
        let monitor = Monitor::new("bench", zscope_core::source::Unit::Volts, 100)
            .unwrap_or_else(|_| panic!());
        let Some(monitor) = cortex_m::singleton!(: Monitor = monitor) else {
            panic!("the bench runs once");
        };
        let mut out = [0u8; 64];
        for i in 0..1300u64 {
            monitor.reading(i * 10, data[(i & 1023) as usize]);
            while monitor.transmit(&mut out) > 0 {}
        }
        let mut t = 13_000u64;
        let n = per_call(tim, overhead, |i| {
            t += 10;
            monitor.reading(t, data[(i & 1023) as usize]);
            while monitor.transmit(&mut out) > 0 {}
        });
        hprintln!(
            "Monitor::reading after learning (judge, frame, queue, copy out): {}",
            n
        );
        hprintln!("Monitor: {} bytes", core::mem::size_of::<Monitor>());
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("zscope-firmware-bench runs in QEMU: see firmware/qemu-bench.sh");
    std::process::exit(2);
}
