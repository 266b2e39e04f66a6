//! `cargo run --release -p zscope-tests --bin link-bench`: what the device app sustains over a
//! serial link of a given baud rate, against that link's physical limit.
//!
//! The app runs as host emulation on a real pty (same code as the board), and the reader takes
//! bytes at exactly `baud / 10` bytes per second (8N1), like a UART. The pty's small buffer
//! back-pressures the app within milliseconds, so after a 2-second settling period the rates
//! are the link's, not a buffer's. QEMU is not used here: its UART ignores the baud rate and
//! its socket buffers about 200 KB before the guest feels any back-pressure. What the board's
//! CPU can feed is a separate figure: instructions per sample from `firmware/qemu-bench.sh`.

use std::io::Read;
use std::time::{Duration, Instant};

use zscope_core::wire::{Decoder, DeviceMsg, Status};
use zscope_firmware::Settings;
use zscope_host::source::emulated::{BOARD, Emulator};

struct Run {
    bytes_per_s: f64,
    samples_per_s: f64,
    frame_bytes: f64,
    device_dropped_per_s: f64,
    device_samples_per_s: f64,
}

fn run(baud: u32, rate_hz: u32, settle: Duration, measure: Duration) -> Run {
    let emulator = Emulator::spawn(Settings {
        board: BOARD,
        rate_hz,
        ..Settings::default()
    })
    .expect("emulator starts");
    let mut port = serialport::new(emulator.path().to_string_lossy(), baud)
        .timeout(Duration::from_millis(5))
        .open()
        .expect("pty opens");
    let budget_per_s = baud as f64 / 10.0;
    let start = Instant::now();
    let mut decoder: Decoder = Decoder::new();
    let mut buf = vec![0u8; 4096];
    let (mut taken, mut bytes, mut samples, mut sample_bytes) = (0f64, 0u64, 0u64, 0u64);
    let mut statuses: Vec<Status> = Vec::new();
    let mut last_frame_end = 0u64;
    let end = settle + measure;
    while start.elapsed() < end {
        // Token bucket: never more than baud/10 bytes per second since the start.
        let allowed = (start.elapsed().as_secs_f64() * budget_per_s - taken).floor() as usize;
        if allowed == 0 {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        let n = match port.read(&mut buf[..allowed.min(4096)]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => panic!("read: {e}"),
        };
        taken += n as f64;
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
                Some(Ok(DeviceMsg::Sample(_))) if measuring => {
                    samples += 1;
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
    Run {
        bytes_per_s: bytes as f64 / secs,
        samples_per_s: samples as f64 / secs,
        frame_bytes: sample_bytes as f64 / samples.max(1) as f64,
        device_dropped_per_s: span(|s| s.dropped),
        device_samples_per_s: span(|s| s.samples),
    }
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
        "{:>7} {:>9} | {:>10} {:>9} | {:>11} {:>9} {:>11} | {:>9} {:>10}",
        "baud", "rate", "line B/s", "use", "samples/s", "limit", "of limit", "made/s", "dropped/s"
    );
    for (baud, rate) in [(115_200, 0), (921_600, 0), (115_200, 50), (115_200, 1000)] {
        let r = run(baud, rate, settle, measure);
        let line = baud as f64 / 10.0;
        let limit = line / r.frame_bytes;
        println!(
            "{:>7} {:>9} | {:>10.0} {:>8.1}% | {:>11.1} {:>9.1} {:>10.1}% | {:>9.1} {:>10.1}",
            baud,
            if rate == 0 {
                "max".to_string()
            } else {
                format!("{rate} Hz")
            },
            r.bytes_per_s,
            100.0 * r.bytes_per_s / line,
            r.samples_per_s,
            limit,
            100.0 * r.samples_per_s / limit,
            r.device_samples_per_s,
            r.device_dropped_per_s,
        );
    }
    println!();
    println!("limit = (baud/10) / mean sample frame bytes; 'made' and 'dropped' are the device's");
    println!("own counts from its status frames (dropped: judged, but no room on the link).");
}
