//! zscope-core: the part of zscope that runs everywhere, on a microcontroller and on a PC.
//!
//! `#![no_std]`, no allocation, no clock, no I/O: a sans-IO library driven by its caller, which
//! passes in values and bytes and gets back verdicts and frames. That is what lets one detector
//! run bit-identically on a Cortex-M, in host emulation and in tests.
//!
//! * [`window`]: a fixed-capacity rolling window with exact O(1) mean and std.
//! * [`adaptive`]: the parts of the adaptive detector, the default.
//! * [`zscore`]: [`RollingZScore`], the rolling Z-score against a window.
//! * [`detector`]: [`Detector`], the one detector every side runs, its config and verdicts.
//! * [`simulator`]: a seeded test stream with injected, labelled anomalies.
//! * [`source`]: where values come from (simulator, temperature, ADC pin, external), units.
//! * [`device`]: what a device does with a host's command (the firmware's and replay's).
//! * [`wire`]: the messages between device and host, their framing and a streaming decoder.
//! * [`compact`]: batches of many samples in one frame, for rates one frame per sample cannot
//!   carry.
//!
//! ```
//! use zscope_core::{DetectorConfig, RollingZScore, SimConfig, Simulator};
//!
//! let mut sim = Simulator::new(SimConfig::default()).unwrap();
//! let mut detector: RollingZScore<f32, 256> = RollingZScore::new(DetectorConfig::default()).unwrap();
//! let mut hits = 0;
//! for _ in 0..10_000 {
//!     let s = sim.next_sample();
//!     let verdict = detector.update(s.value);
//!     if verdict.is_anomaly() && s.truth.is_anomaly() {
//!         hits += 1;
//!     }
//! }
//! assert!(hits > 50);
//! ```
#![no_std]

pub mod adaptive;
pub mod compact;
pub mod config;
pub mod detector;
pub mod device;
pub mod float;
pub mod sample;
pub mod simulator;
pub mod source;
pub mod verdict;
pub mod window;
pub mod wire;
pub mod zscore;

pub use detector::{
    AnomalyPolicy, Baseline, Class, ConfigError, Detector, DetectorConfig, Verdict,
};
pub use float::Float;
pub use simulator::{SimConfig, SimConfigError, SimSample, Simulator, Truth};
pub use window::{Stats, Window, WindowError};
pub use zscore::RollingZScore;
