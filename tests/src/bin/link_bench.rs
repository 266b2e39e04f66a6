//! `cargo run --release -p zscope-tests --bin link-bench`: what the device app sustains over a
//! serial link of a given baud rate, one frame per sample against batches, side by side.
//!
//! The app runs as host emulation on a real pty (same code as the board), and the reader takes
//! bytes at exactly `baud / 10` bytes per second (8N1), like a UART. The emulated line holds at
//! most 32 unread bytes (a UART's FIFO, `Emulator::spawn_uart`), so the app feels the line's
//! back-pressure as a board does; after a 2-second settling period the rates are the link's. QEMU is not used here: its UART ignores the baud rate and
//! its socket buffers about 200 KB before the guest feels any back-pressure. What the board's
//! CPU can feed is a separate figure: instructions per sample from `firmware/qemu-bench.sh`.
//!
//! Latency is the time a sample's frame is taken off the line minus the sample's device time.
//! The device's clock starts after the bench's, so the figure is an upper bound (by the
//! emulator's start-up, well under a millisecond).

use std::io::Read;
use std::time::{Duration, Instant};

use zscope_core::wire::{Decoder, DeviceMsg, Status};
use zscope_firmware::{Encoding, Settings};
use zscope_host::source::emulated::{BOARD, Emulator, UART_FIFO};

struct Run {
    bytes_per_s: f64,
    samples_per_s: f64,
    bytes_per_sample: f64,
    device_dropped_per_s: f64,
    latency_ms: Vec<f64>,
}

fn run(baud: u32, rate_hz: u32, encoding: Encoding, settle: Duration, measure: Duration) -> Run {
    let start = Instant::now();
    let emulator = Emulator::spawn_uart(
        Settings {
            board: BOARD,
            rate_hz,
            encoding,
            link_baud: baud,
            ..Settings::default()
        },
        UART_FIFO,
    )
    .expect("emulator starts");
    let mut port = serialport::new(emulator.path().to_string_lossy(), baud)
        .timeout(Duration::from_millis(5))
        .open()
        .expect("pty opens");
    let budget_per_s = baud as f64 / 10.0;
    let mut decoder: Decoder = Decoder::new();
    let mut buf = vec![0u8; 4096];
    let (mut taken, mut bytes, mut samples, mut sample_bytes) = (0f64, 0u64, 0u64, 0u64);
    let mut statuses: Vec<Status> = Vec::new();
    let mut latency_ms = Vec::new();
    let mut last_frame_end = 0u64;
    let end = settle + measure;
    while start.elapsed() < end {
        // Token bucket: never more than baud/10 bytes per second since the start.
        let allowed = (start.elapsed().as_secs_f64() * budget_per_s - taken).floor() as usize;
        if allowed == 0 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let n = match port.read(&mut buf[..allowed.min(4096)]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => panic!("read: {e}"),
        };
        taken += n as f64;
        let now_ms = start.elapsed().as_secs_f64() * 1000.0;
        let measuring = start.elapsed() >= settle;
        let mut input = &buf[..n];
        while !input.is_empty() {
            let before = input.len();
            let msg = decoder.next_message::<DeviceMsg>(&mut input);
            let used = (before - input.len()) as u64;
            if measuring {
                bytes += used;
            }
            match msg {
                Some(Ok(m @ (DeviceMsg::Sample(_) | DeviceMsg::Batch(_)))) if measuring => {
                    for s in m.samples() {
                        samples += 1;
                        latency_ms.push(now_ms - s.time_ms as f64);
                    }
                    sample_bytes += last_frame_end + used;
                    last_frame_end = 0;
                }
                Some(Ok(DeviceMsg::Status(s))) if measuring => statuses.push(s),
                Some(_) => last_frame_end = 0,
                None => last_frame_end += used,
            }
        }
    }
    drop(emulator);
    let secs = measure.as_secs_f64();
    let (first, last) = (statuses.first(), statuses.last());
    let span = |f: fn(&Status) -> u64| match (first, last) {
        (Some(a), Some(b)) if b.time_ms > a.time_ms => {
            (f(b) - f(a)) as f64 * 1000.0 / (b.time_ms - a.time_ms) as f64
        }
        _ => f64::NAN,
    };
    latency_ms.sort_by(f64::total_cmp);
    Run {
        bytes_per_s: bytes as f64 / secs,
        samples_per_s: samples as f64 / secs,
        bytes_per_sample: sample_bytes as f64 / samples.max(1) as f64,
        device_dropped_per_s: span(|s| s.dropped),
        latency_ms,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let settle = Duration::from_secs(2);
    let measure = Duration::from_secs(
        std::env::var("ZSCOPE_LINK_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(6),
    );
    println!("link-bench: device app (host emulation, real pty) -> reader limited to baud/10 B/s");
    println!("settle {settle:?}, measure {measure:?}");
    println!();
    println!(
        "{:>7} {:>6} {:>8} | {:>8} {:>6} | {:>10} {:>8} {:>9} | {:>9} | {:>7} {:>7}",
        "baud",
        "rate",
        "frames",
        "line B/s",
        "use",
        "samples/s",
        "B/sample",
        "of rate",
        "dropped/s",
        "p50 ms",
        "p99 ms"
    );
    let runs = [
        (115_200, 0),
        (921_600, 0),
        (115_200, 50),
        (115_200, 1000),
        (115_200, 4000),
        (921_600, 10_000),
    ];
    for (baud, rate) in runs {
        for encoding in [Encoding::Frames, Encoding::Batches] {
            let r = run(baud, rate, encoding, settle, measure);
            let line = baud as f64 / 10.0;
            println!(
                "{:>7} {:>6} {:>8} | {:>8.0} {:>5.1}% | {:>10.1} {:>8.2} {:>9} | {:>9.1} | {:>7.1} {:>7.1}",
                baud,
                if rate == 0 {
                    "max".to_string()
                } else {
                    rate.to_string()
                },
                match encoding {
                    Encoding::Frames => "single",
                    _ => "batched",
                },
                r.bytes_per_s,
                100.0 * r.bytes_per_s / line,
                r.samples_per_s,
                r.bytes_per_sample,
                if rate == 0 {
                    "-".to_string()
                } else {
                    format!("{:.1}%", 100.0 * r.samples_per_s / rate as f64)
                },
                r.device_dropped_per_s,
                percentile(&r.latency_ms, 0.5),
                percentile(&r.latency_ms, 0.99),
            );
        }
    }
    println!();
    println!("B/sample: bytes of sample-carrying frames per sample delivered; 8N1 carries");
    println!("baud/10 bytes a second (11 520 at 115 200). 'dropped' is the device's own count");
    println!("(judged, but no room on the link). Latency: off the line minus the sample's time.");
    println!("Batches grow while the link is busy, so at a rate the link carries their B/sample");
    println!("is what the link leaves, not the least they can be ('max' shows that).");
}
