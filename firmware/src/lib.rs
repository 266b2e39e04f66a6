//! zscope firmware library: the app loop shared by the board build, QEMU and host emulation.
//!
//! The app itself arrives with the firmware issue; today this crate only proves that the core
//! links into it.
#![no_std]

pub use zscope_core;
