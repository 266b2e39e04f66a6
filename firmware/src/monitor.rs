//! zscope inside your own firmware: hand [`Monitor`] each reading of your sensor with its time,
//! write the bytes it gives you to your serial port, and hand it the bytes you receive. It
//! judges every reading with the same detector as the zscope board (bit for bit), frames it for
//! the host daemon, and applies the host's commands (detector config, reset, rate) at once,
//! acknowledged. No allocation, no clock, no I/O inside: your code owns the UART, the timer and
//! the sensor, blocking or async (see `examples/blocking.rs` and the embassy example in
//! `examples/embassy-nucleo`).
//!
//! ```
//! use zscope_firmware::monitor::Monitor;
//! use zscope_firmware::zscope_core::source::Unit;
//! use zscope_firmware::zscope_core::wire::{self, AckResult, Decoder, DeviceMsg, HostMsg};
//!
//! let mut zscope = Monitor::new("my-board", Unit::Volts, 100).unwrap();
//! let mut line = [0u8; 512];
//! let mut sent = Vec::new();
//! for k in 0..200u64 {
//!     // Your sensor, read every 10 ms by your timer.
//!     let volts = 1.2 + 0.01 * (k as f32 * 0.3).sin();
//!     zscope.reading(k * 10, volts);
//!     // What goes to your UART.
//!     let n = zscope.transmit(&mut line);
//!     sent.extend_from_slice(&line[..n]);
//! }
//! // The host says hello, then gets every reading judged.
//! let mut decoder: Decoder = Decoder::new();
//! let mut input = &sent[..];
//! let mut msgs = Vec::new();
//! while let Some(m) = decoder.next_message::<DeviceMsg>(&mut input) {
//!     msgs.push(m.unwrap());
//! }
//! assert!(matches!(&msgs[0], DeviceMsg::Hello(h) if h.unit == Unit::Volts));
//! assert_eq!(msgs.iter().flat_map(DeviceMsg::samples).count(), 200);
//!
//! // A command from the host (bytes off your UART): applied and acknowledged.
//! let mut frame = [0u8; wire::MAX_FRAME];
//! let n = wire::encode(&HostMsg::Reset { id: 7 }, &mut frame).unwrap();
//! zscope.received(&frame[..n], 2000);
//! let n = zscope.transmit(&mut line);
//! let mut input = &line[..n];
//! let ack = decoder.next_message::<DeviceMsg>(&mut input).unwrap().unwrap();
//! assert!(matches!(ack, DeviceMsg::Ack(a) if a.id == 7 && a.result == AckResult::Ok));
//! ```
//!
//! Costs (see the README's "Add zscope to your firmware"): the monitor is the zscope app
//! without its simulator: about 16 KiB of RAM (a detector of window capacity 1024 and season
//! capacity 2048, a 1.5 KiB transmit queue) and the detector's instructions per reading.

use zscope_core::DetectorConfig;
use zscope_core::source::{Source, Sources, Unit};

use crate::app::{App, Settings, SetupError};

/// The zscope device side for a firmware of your own: readings in, bytes out, commands applied.
pub struct Monitor {
    app: App,
}

impl Monitor {
    /// A monitor for readings in `unit`, taken about `rate_hz` times a second (the hello says
    /// so, and above 169 a second at 115 200 baud readings go in batches), named `board` in the
    /// host's page.
    pub fn new(board: &'static str, unit: Unit, rate_hz: u32) -> Result<Monitor, SetupError> {
        Monitor::with_settings(Settings {
            board,
            rate_hz,
            external_unit: unit,
            ..Settings::default()
        })
    }

    /// A monitor with every setting of the app (detector config at boot, link baud rate,
    /// encoding, the grid batched values are put on: your sensor's resolution as `2^scale`).
    /// The source is always your firmware's own ([`Source::External`]).
    pub fn with_settings(settings: Settings) -> Result<Monitor, SetupError> {
        let app = App::new(Settings {
            source: Source::External,
            sources: Sources {
                external: true,
                ..Sources::default()
            },
            // A reading's value is judged as given, unless batches put it on this grid.
            scale: settings.scale.or(Some(-12)),
            ..settings
        })?;
        Ok(Monitor { app })
    }

    /// Judge a reading taken at `time_ms` (your clock, in milliseconds; never going back):
    /// its frame, or its place in a batch, waits for [`Monitor::transmit`]. The first reading
    /// also queues the hello; a status frame follows each second.
    pub fn reading(&mut self, time_ms: u64, value: f32) {
        self.app.reading_at(time_ms, value);
        self.app.tick(time_ms);
    }

    /// Bytes received from the host, at `time_ms`: each whole command is applied at once and
    /// its acknowledgement queued; an undecodable frame is counted in the status frame.
    pub fn received(&mut self, bytes: &[u8], time_ms: u64) {
        self.app.receive(bytes, time_ms);
    }

    /// Time passes without a reading (call it from an idle loop or a timer): the status frame
    /// when due, and a batch that waits while the line is idle.
    pub fn tick(&mut self, time_ms: u64) {
        self.app.tick(time_ms);
    }

    /// Copy up to `out.len()` bytes to send into `out` and forget them: how many.
    pub fn transmit(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek().len().min(out.len());
        out[..n].copy_from_slice(&self.peek()[..n]);
        self.app.consume_tx(n);
        n
    }

    /// The bytes waiting to be sent, oldest first (part of them: call again after
    /// [`Monitor::sent`]); for a driver that writes from a slice without copying.
    pub fn peek(&self) -> &[u8] {
        self.app.pending_tx().0
    }

    /// The first `n` bytes of [`Monitor::peek`] were written.
    pub fn sent(&mut self, n: usize) {
        self.app.consume_tx(n);
    }

    /// The rate the host asked for with `SetRate` (the one given at start until then): pace
    /// your readings to it if you can. 0: as fast as the link carries.
    pub fn rate_hz(&self) -> u32 {
        self.app.rate_hz()
    }

    /// The detector config in force and its version.
    pub fn config(&self) -> (u32, DetectorConfig) {
        self.app.config()
    }

    /// Tell the monitor that a reading failed (your sensor's own error): counted in the
    /// status frame as a sensor error, not judged.
    pub fn sensor_error(&mut self) {
        let errors = self.app.status().sensor_errors.wrapping_add(1);
        self.app.set_sensor_errors(errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;
    use zscope_core::wire::{self, AckResult, Decoder, DeviceMsg, HostMsg};
    use zscope_core::{Detector, DetectorConfig};

    fn decode(bytes: &[u8], decoder: &mut Decoder) -> Vec<DeviceMsg> {
        let mut input = bytes;
        let mut out = Vec::new();
        while let Some(m) = decoder.next_message::<DeviceMsg>(&mut input) {
            out.push(m.expect("the monitor sends valid frames"));
        }
        out
    }

    #[test]
    fn readings_are_judged_as_the_core_judges_them_and_commands_apply() {
        let mut zscope = Monitor::new("test", Unit::Celsius, 50).unwrap();
        let mut decoder = Decoder::new();
        let mut core: Detector<f32, 1024, 2048> = Detector::new(DetectorConfig::default()).unwrap();
        let mut buf = [0u8; 64];
        let mut msgs = Vec::new();
        let values: Vec<f32> = (0..1500)
            .map(|k| 20.0 + (k as f32 * 0.05).sin() + if k == 1300 { 5.0 } else { 0.0 })
            .collect();
        for (k, &v) in values.iter().enumerate() {
            zscope.reading(k as u64 * 20, v);
            // A small buffer, as a UART driver's: everything still comes out, in order.
            loop {
                let n = zscope.transmit(&mut buf);
                if n == 0 {
                    break;
                }
                msgs.extend(decode(&buf[..n], &mut decoder));
            }
        }
        let DeviceMsg::Hello(hello) = &msgs[0] else {
            panic!("no hello first: {:?}", msgs[0]);
        };
        assert_eq!(
            (hello.source, hello.unit),
            (Source::External, Unit::Celsius)
        );
        assert_eq!(hello.simulator, None);
        let samples: Vec<_> = msgs.iter().flat_map(DeviceMsg::samples).collect();
        assert_eq!(samples.len(), values.len());
        for (s, &v) in samples.iter().zip(&values) {
            let want = core.update(v);
            assert_eq!(s.value.to_bits(), v.to_bits());
            assert_eq!(s.z.to_bits(), want.z.to_bits(), "seq {}", s.seq);
            assert_eq!(s.time_ms, s.seq * 20);
        }
        assert!(samples[1300].flags.contains(wire::Flags::ANOMALY));
        assert!(msgs.iter().any(|m| matches!(m, DeviceMsg::Status(_))));

        // The host's commands: a config applied (the next reading judged under it), a
        // source it cannot have refused.
        let config = DetectorConfig::with_window(32);
        let mut frame = [0u8; wire::MAX_FRAME];
        let n = wire::encode(&HostMsg::SetConfig { id: 3, config }, &mut frame).unwrap();
        zscope.received(&frame[..n], 30_000);
        let n = wire::encode(
            &HostMsg::SetSource {
                id: 4,
                source: Source::Temperature,
            },
            &mut frame,
        )
        .unwrap();
        zscope.received(&frame[..n], 30_000);
        zscope.sensor_error();
        zscope.reading(30_020, 20.0);
        zscope.tick(31_000);
        let mut out = Vec::new();
        loop {
            let n = zscope.transmit(&mut buf);
            if n == 0 {
                break;
            }
            out.extend(decode(&buf[..n], &mut decoder));
        }
        let acks: Vec<_> = out
            .iter()
            .filter_map(|m| match m {
                DeviceMsg::Ack(a) => Some((a.id, a.result)),
                _ => None,
            })
            .collect();
        assert_eq!(acks[0], (3, AckResult::Ok));
        assert!(matches!(acks[1], (4, AckResult::SourceRejected(_))));
        assert_eq!(zscope.config(), (2, config));
        let last = out.iter().flat_map(DeviceMsg::samples).last().unwrap();
        assert_eq!(last.config_version, 2);
        let status = out
            .iter()
            .find_map(|m| match m {
                DeviceMsg::Status(s) => Some(*s),
                _ => None,
            })
            .unwrap();
        assert_eq!(status.sensor_errors, 1);
    }
}
