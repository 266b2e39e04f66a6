//! `--auto`: USB serial ports whose vendor and product ids (VID:PID) are a known dev-board
//! probe are attached as they appear, each as a device of its own, and followed when
//! unplugged and plugged in again (under the same or another port name: a board is known by
//! its USB serial number).
//!
//! [`Watcher::scan`] lists the ports once a second (Linux: `/sys/class/tty`, no libudev
//! needed); [`Watcher::reconcile`] turns what it found into devices. A device that goes away
//! stays in the list, disconnected (its reader retries its port every second, and says so);
//! when it comes back at another path, its reader is pointed there.

use std::collections::HashMap;
use std::sync::Arc;

use super::serial::{self, PortPath};
use crate::device::{Attach, Registry, clean_name};

/// A USB id to attach: a vendor, and one of its products or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsbId {
    /// Vendor id.
    pub vid: u16,
    /// Product id; `None` for every product of the vendor.
    pub pid: Option<u16>,
}

impl UsbId {
    /// Parse `1234:abcd` or `1234` (hex); the reason when it is not one.
    pub fn parse(s: &str) -> Result<UsbId, String> {
        let hex = |h: &str| {
            u16::from_str_radix(h.trim().trim_start_matches("0x"), 16)
                .map_err(|_| format!("--auto-id '{s}': expected VID:PID in hex, e.g. 0483:374b"))
        };
        Ok(match s.split_once(':') {
            Some((vid, pid)) => UsbId {
                vid: hex(vid)?,
                pid: Some(hex(pid)?),
            },
            None => UsbId {
                vid: hex(s)?,
                pid: None,
            },
        })
    }

    fn matches(&self, vid: u16, pid: u16) -> bool {
        self.vid == vid && self.pid.is_none_or(|p| p == pid)
    }
}

/// The dev-board probes and USB serial bridges `--auto` attaches (the README lists them).
pub const PROBES: &[(UsbId, &str)] = &[
    (id(0x0483, 0x374b), "stlink"),    // ST-LINK/V2-1 (Nucleo, Discovery)
    (id(0x0483, 0x374e), "stlink"),    // STLINK-V3E
    (id(0x0483, 0x374f), "stlink"),    // STLINK-V3
    (id(0x0483, 0x3752), "stlink"),    // ST-LINK/V2-1, no mass storage
    (id(0x0483, 0x3753), "stlink"),    // STLINK-V3, two VCPs
    (id(0x0483, 0x3754), "stlink"),    // STLINK-V3, no mass storage
    (id(0x1366, 0x0105), "jlink"),     // SEGGER J-Link OB (CDC)
    (id(0x1366, 0x1015), "jlink"),     // SEGGER J-Link (CDC + MSD)
    (id(0x1366, 0x1051), "jlink"),     // SEGGER J-Link OB (nRF DKs)
    (id(0x0d28, 0x0204), "daplink"),   // Arm DAPLink / CMSIS-DAP (micro:bit, FRDM)
    (id(0x2e8a, 0x000c), "picoprobe"), // Raspberry Pi Debug Probe
    (id(0x2e8a, 0x000a), "pico"),      // Raspberry Pi Pico (USB CDC)
    (id(0x303a, 0x1001), "esp32"),     // Espressif USB JTAG/serial (ESP32-C3/S3)
    (id(0x10c4, 0xea60), "cp210x"),    // Silicon Labs CP210x (ESP32 DevKits)
    (id(0x1a86, 0x7523), "ch340"),     // WCH CH340
    (id(0x1a86, 0x55d4), "ch9102"),    // WCH CH9102
    (id(0x0403, 0x6001), "ftdi"),      // FTDI FT232R
    (id(0x0403, 0x6010), "ftdi"),      // FTDI FT2232 (many on-board probes)
    (id(0x0403, 0x6014), "ftdi"),      // FTDI FT232H
    (id(0x0403, 0x6015), "ftdi"),      // FTDI FT-X
    (id(0x1fc9, 0x0143), "mculink"),   // NXP MCU-Link
];

const fn id(vid: u16, pid: u16) -> UsbId {
    UsbId {
        vid,
        pid: Some(pid),
    }
}

/// A USB serial port found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path, e.g. `/dev/ttyACM0`.
    pub path: String,
    /// Vendor id.
    pub vid: u16,
    /// Product id.
    pub pid: u16,
    /// Its USB serial number, if it has one.
    pub serial: Option<String>,
}

/// What kind of probe `vid:pid` is (`stlink`, `ftdi`, …), or `usb` for an id given with
/// `--auto-id`; `None` if neither.
pub fn kind(vid: u16, pid: u16, extra: &[UsbId]) -> Option<&'static str> {
    PROBES
        .iter()
        .find(|(id, _)| id.matches(vid, pid))
        .map(|(_, name)| *name)
        .or_else(|| extra.iter().any(|id| id.matches(vid, pid)).then_some("usb"))
}

/// Attaches the ports a scan finds.
pub struct Watcher {
    attach: Arc<dyn Attach>,
    registry: Arc<Registry>,
    baud: u32,
    extra: Vec<UsbId>,
    /// Each attached board, by its serial number (or its path when it has none): where its
    /// reader opens it.
    attached: HashMap<String, PortPath>,
    /// Boards that could not be attached (the daemon held as many devices as it may, say):
    /// said once, not at every scan, until they are unplugged.
    failed: std::collections::HashSet<String>,
    /// The readers' threads, to join when the daemon stops.
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// A watcher that makes devices with `attach` (named apart from those in `registry`), at
    /// `baud`, attaching the known probes and `extra`.
    pub fn new(
        attach: Arc<dyn Attach>,
        registry: Arc<Registry>,
        baud: u32,
        extra: Vec<UsbId>,
    ) -> Self {
        Watcher {
            attach,
            registry,
            baud,
            extra,
            attached: HashMap::new(),
            failed: std::collections::HashSet::new(),
            threads: Vec::new(),
        }
    }

    /// The USB serial ports on this machine now (none where the system has no tty class).
    pub fn scan() -> Vec<Found> {
        if !std::path::Path::new("/sys/class/tty").is_dir() && cfg!(target_os = "linux") {
            return Vec::new();
        }
        let ports = serialport::available_ports().unwrap_or_default();
        ports
            .into_iter()
            .filter_map(|p| match p.port_type {
                serialport::SerialPortType::UsbPort(u) => Some(Found {
                    path: p.port_name,
                    vid: u.vid,
                    pid: u.pid,
                    serial: u.serial_number.filter(|s| !s.trim().is_empty()),
                }),
                _ => None,
            })
            .collect()
    }

    /// Attach what is new in `found`, point a known board at its new path; the names of the
    /// devices added.
    pub fn reconcile(&mut self, found: &[Found]) -> Vec<String> {
        let mut added = Vec::new();
        // A board unplugged may be tried again when it comes back.
        self.failed.retain(|key| {
            found
                .iter()
                .any(|f| f.serial.as_ref().unwrap_or(&f.path) == key)
        });
        for f in found {
            let Some(kind) = kind(f.vid, f.pid, &self.extra) else {
                continue;
            };
            let key = f.serial.clone().unwrap_or_else(|| f.path.clone());
            if let Some(port) = self.attached.get(&key) {
                if port.get() != f.path {
                    tracing::info!("{key} is back, at {}", f.path);
                    port.set(f.path.clone());
                }
                continue;
            }
            if self.failed.contains(&key) {
                continue;
            }
            let name = self.name(kind, f);
            let what = format!("USB {:04x}:{:04x} ({kind}) on {}", f.vid, f.pid, f.path);
            let feed = match self.attach.attach(&name, f.path.clone(), &what, false) {
                Ok(feed) => feed,
                Err(e) => {
                    tracing::error!("--auto: cannot add {name}: {e:#}");
                    eprintln!("zscope: --auto: cannot add {name}: {e:#}");
                    self.failed.insert(key);
                    continue;
                }
            };
            let port = PortPath::new(f.path.clone());
            match serial::spawn(feed, port.clone(), self.baud, None) {
                Ok(thread) => self.threads.push(thread),
                Err(e) => {
                    tracing::error!("--auto: cannot start the reader of {name}: {e}");
                    continue;
                }
            }
            self.attached.insert(key, port);
            added.push(name);
        }
        added
    }

    /// A name for a new board: its kind and serial number (`stlink-066DFF555654`), or its
    /// port's file name; made unique among the devices.
    fn name(&self, kind: &str, f: &Found) -> String {
        let base = match &f.serial {
            Some(serial) => format!("{kind}-{serial}"),
            None => f.path.rsplit('/').next().unwrap_or(&f.path).to_string(),
        };
        let base = clean_name(&base);
        let mut name = base.clone();
        let mut n = 2;
        while self.registry.find(Some(&name)).is_some() {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_probes_and_extra_ids_are_recognised() {
        assert_eq!(kind(0x0483, 0x374b, &[]), Some("stlink"));
        assert_eq!(kind(0x10c4, 0xea60, &[]), Some("cp210x"));
        assert_eq!(kind(0x1234, 0x5678, &[]), None);
        let extra = [
            UsbId::parse("1234:5678").unwrap(),
            UsbId::parse("abcd").unwrap(),
        ];
        assert_eq!(kind(0x1234, 0x5678, &extra), Some("usb"));
        assert_eq!(kind(0xabcd, 0x0001, &extra), Some("usb"));
        assert_eq!(kind(0x1234, 0x5679, &extra), None);
        let e = UsbId::parse("st-link").unwrap_err();
        assert!(e.contains("VID:PID in hex"), "{e}");
        assert!(UsbId::parse("0483:").is_err());
        assert_eq!(UsbId::parse("0x0483:0x374B").unwrap(), id(0x0483, 0x374b));
    }
}
