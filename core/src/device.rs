//! What a device does with a command from the host, sans-IO: one responder for the firmware
//! and for the host's replay of a CSV file (which behaves as a device), so the two cannot
//! answer differently.
//!
//! [`Responder::execute`] applies a [`HostMsg`] to a [`Detector`] and returns the [`Ack`]
//! (and whether a fresh hello should follow it). A config change that takes effect bumps the
//! config version; a refused one changes nothing and says why. What a sample rate means is the
//! caller's: it is handed over as a closure.
//!
//! ```
//! use zscope_core::device::Responder;
//! use zscope_core::wire::{AckResult, HostMsg};
//! use zscope_core::{Detector, DetectorConfig};
//!
//! let mut detector: Detector<f32, 64, 64> = Detector::new(DetectorConfig::with_window(32)).unwrap();
//! let mut device = Responder::new();
//! let no_rates = |hz| AckResult::RateRejected { hz, max: 0 };
//! let (ack, hello) = device.execute(
//!     &mut detector,
//!     HostMsg::SetConfig { id: 7, config: DetectorConfig::with_window(16) },
//!     no_rates,
//! );
//! assert_eq!((ack.id, ack.result, ack.config_version, hello), (7, AckResult::Ok, 2, false));
//! assert_eq!(detector.config().window, 16);
//! ```

use crate::detector::Detector;
use crate::float::Float;
use crate::simulator::SimConfig;
use crate::wire::{Ack, AckResult, Hello, HostMsg, Name, PROTOCOL_VERSION};

/// The config version a device starts at, and bumps on every change that takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responder {
    /// Version of the config in force (1 at start).
    pub config_version: u32,
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder {
    /// A device with its first config: version 1.
    pub const fn new() -> Self {
        Responder { config_version: 1 }
    }

    /// The hello of a device running `detector`: the protocol, the capacities (the
    /// detector's own), the config and its version all come from here, so they cannot
    /// disagree with what the device does.
    pub fn hello<F: Float, const N: usize, const S: usize>(
        &self,
        detector: &Detector<F, N, S>,
        firmware: Name,
        board: Name,
        sample_rate_hz: u32,
        simulator: Option<SimConfig>,
    ) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            firmware,
            board,
            capacity: N as u32,
            sample_rate_hz,
            config_version: self.config_version,
            detector: *detector.config(),
            simulator,
            season_capacity: S as u32,
        }
    }

    /// Apply `cmd`: the acknowledgement, and whether a hello should follow (after a ping or a
    /// rate change, so the host learns the device's state afresh). `set_rate` answers a
    /// `SetRate` (apply it and say `Ok`, or refuse it).
    pub fn execute<F: Float, const N: usize, const S: usize>(
        &mut self,
        detector: &mut Detector<F, N, S>,
        cmd: HostMsg,
        set_rate: impl FnOnce(u32) -> AckResult,
    ) -> (Ack, bool) {
        let (id, result, hello) = match cmd {
            HostMsg::SetConfig { id, config } => match detector.set_config(config) {
                Ok(()) => {
                    self.config_version = self.config_version.wrapping_add(1);
                    (id, AckResult::Ok, false)
                }
                Err(e) => (id, AckResult::Rejected(e), false),
            },
            HostMsg::Reset { id } => {
                detector.reset();
                (id, AckResult::Ok, false)
            }
            HostMsg::Ping { id } => (id, AckResult::Ok, true),
            HostMsg::SetRate { id, hz } => (id, set_rate(hz), true),
        };
        let ack = Ack {
            id,
            result,
            config_version: self.config_version,
            config: *detector.config(),
        };
        (ack, hello)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConfigError, DetectorConfig};

    #[test]
    fn refused_configs_change_nothing_and_say_why() {
        let mut d: Detector<f64, 64, 16> = Detector::new(DetectorConfig::with_window(32)).unwrap();
        let mut device = Responder::new();
        let (ack, hello) = device.execute(
            &mut d,
            HostMsg::SetConfig {
                id: 3,
                config: DetectorConfig::with_window(1000),
            },
            |_| AckResult::Ok,
        );
        assert_eq!(
            ack.result,
            AckResult::Rejected(ConfigError::Window {
                window: 1000,
                capacity: 64
            })
        );
        assert_eq!(
            (ack.config_version, ack.config.window, hello),
            (1, 32, false)
        );
        let (ack, hello) = device.execute(&mut d, HostMsg::Ping { id: 4 }, |_| AckResult::Ok);
        assert_eq!((ack.id, ack.result, hello), (4, AckResult::Ok, true));
        let (ack, hello) = device.execute(&mut d, HostMsg::SetRate { id: 5, hz: 9 }, |hz| {
            AckResult::RateRejected { hz, max: 0 }
        });
        assert_eq!(
            (ack.result, hello),
            (AckResult::RateRejected { hz: 9, max: 0 }, true)
        );
    }
}
