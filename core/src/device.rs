//! What a device does with a command from the host, sans-IO: one responder for the firmware
//! and for the host's replay of a CSV file (which behaves as a device), so the two cannot
//! answer differently.
//!
//! [`Responder::execute`] applies a [`HostMsg`] to a [`Detector`] and returns the [`Ack`]
//! (and whether a fresh hello should follow it). A config change that takes effect bumps the
//! config version; a refused one changes nothing and says why. What a sample rate or a source
//! means is the caller's: a [`Change`] is handed to a closure that applies or refuses it. A
//! source that takes effect restarts the detector's learning and bumps the config version, so
//! the host logs it as a config event.
//!
//! ```
//! use zscope_core::device::{Change, Responder};
//! use zscope_core::wire::{AckResult, HostMsg};
//! use zscope_core::{Detector, DetectorConfig};
//!
//! let mut detector: Detector<f32, 64, 64> = Detector::new(DetectorConfig::with_window(32)).unwrap();
//! let mut device = Responder::new();
//! let fixed = |change| match change {
//!     Change::Rate(hz) => AckResult::RateRejected { hz, max: 0 },
//!     Change::Source(_) => AckResult::SourceRejected(zscope_core::source::Refusal::Missing),
//! };
//! let (ack, hello) = device.execute(
//!     &mut detector,
//!     HostMsg::SetConfig { id: 7, config: DetectorConfig::with_window(16) },
//!     fixed,
//! );
//! assert_eq!((ack.id, ack.result, ack.config_version, hello), (7, AckResult::Ok, 2, false));
//! assert_eq!(detector.config().window, 16);
//! ```

use crate::detector::Detector;
use crate::float::Float;
use crate::simulator::SimConfig;
use crate::source::{Source, Sources, Unit};
use crate::wire::{Ack, AckResult, Hello, HostMsg, Name, PROTOCOL_VERSION};

/// A change only the device's caller can make: apply it and answer `Ok`, or refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Samples per second (0: as fast as the link carries).
    Rate(u32),
    /// Judge this source from now on.
    Source(Source),
}

/// Where a device's values come from, as its hello says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The sources it can switch to.
    pub sources: Sources,
    /// The one in force.
    pub source: Source,
    /// The unit of its values.
    pub unit: Unit,
}

impl Origin {
    /// A device that only simulates.
    pub fn simulator() -> Origin {
        Origin {
            sources: Sources::simulator(),
            source: Source::Simulator,
            unit: Unit::None,
        }
    }
}

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
        origin: &Origin,
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
            sources: origin.sources.clone(),
            source: origin.source,
            unit: origin.unit,
        }
    }

    /// Apply `cmd`: the acknowledgement, and whether a hello should follow (after a ping, a
    /// rate or a source change, so the host learns the device's state afresh). `apply`
    /// answers a `SetRate` or a `SetSource` (apply it and say `Ok`, or refuse it).
    pub fn execute<F: Float, const N: usize, const S: usize>(
        &mut self,
        detector: &mut Detector<F, N, S>,
        cmd: HostMsg,
        apply: impl FnOnce(Change) -> AckResult,
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
            HostMsg::SetRate { id, hz } => (id, apply(Change::Rate(hz)), true),
            HostMsg::SetSource { id, source } => match apply(Change::Source(source)) {
                AckResult::Ok => {
                    // Another signal: what was learnt of the last one says nothing of it.
                    detector.reset();
                    self.config_version = self.config_version.wrapping_add(1);
                    (id, AckResult::Ok, true)
                }
                refused => (id, refused, false),
            },
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
        let (ack, hello) = device.execute(&mut d, HostMsg::SetRate { id: 5, hz: 9 }, |c| {
            assert_eq!(c, Change::Rate(9));
            AckResult::RateRejected { hz: 9, max: 0 }
        });
        assert_eq!(
            (ack.result, hello),
            (AckResult::RateRejected { hz: 9, max: 0 }, true)
        );
    }

    #[test]
    fn a_new_source_restarts_learning_and_a_refused_one_changes_nothing() {
        let mut d: Detector<f64, 64, 16> = Detector::new(DetectorConfig::with_window(8)).unwrap();
        for i in 0..20 {
            d.update(f64::from(i));
        }
        let mut device = Responder::new();
        let refusal = crate::source::Refusal::Rate { hz: 0, max: 1000 };
        let set = HostMsg::SetSource {
            id: 6,
            source: Source::Temperature,
        };
        let (ack, hello) = device.execute(&mut d, set, |_| AckResult::SourceRejected(refusal));
        assert_eq!(
            (ack.result, ack.config_version, hello),
            (AckResult::SourceRejected(refusal), 1, false)
        );
        assert!(
            d.update(20.0).class != crate::Class::WarmingUp,
            "refused: still judging"
        );
        let (ack, hello) = device.execute(&mut d, set, |c| {
            assert_eq!(c, Change::Source(Source::Temperature));
            AckResult::Ok
        });
        assert_eq!(
            (ack.result, ack.config_version, hello),
            (AckResult::Ok, 2, true)
        );
        assert_eq!(
            d.update(21.0).class,
            crate::Class::WarmingUp,
            "learning afresh"
        );
    }
}
