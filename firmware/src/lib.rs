//! zscope firmware: the device side of zscope, written once and run three ways.
//!
//! * [`app`]: the application (simulate, detect, frame, send; answer commands), sans-IO, and
//!   [`app::poll`], the main-loop step, generic over an `embedded-io` serial line and a clock.
//! * [`monitor`]: [`Monitor`](monitor::Monitor), zscope inside your own firmware: readings in,
//!   bytes out, the host's commands applied.
//! * [`sensing`]: the sensors' arithmetic (ADC channels, oversampling, volts, degrees).
//! * `board` (Cortex-M builds with the default `board` feature only): one module per board, each bringing up a UART, a
//!   millisecond clock and the sensors (ADC1 paced by TIM2): `nucleo_f401re` (the real board)
//!   and `qemu` (QEMU's `netduinoplus2`).
//!
//! The same app also runs on a PC, over a pseudo-terminal: `zscope emulate` (in `zscope-host`).
//!
//! The binaries (`src/main.rs`, `src/bin/*.rs`) only wire a board to the app.
#![cfg_attr(not(test), no_std)]

pub mod app;
#[cfg(all(target_os = "none", feature = "board"))]
pub mod board;
pub mod monitor;
pub mod sensing;

pub use app::{App, Clock, Encoding, Settings, poll};
pub use zscope_core;

#[cfg(test)]
mod tests;
