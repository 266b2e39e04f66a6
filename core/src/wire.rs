//! The wire protocol between a device and the host: every message, the framing, and a
//! streaming decoder. This module is the single source of truth (the "ICD") for both sides.
//!
//! # Framing
//!
//! A frame on the line is `COBS(postcard(message) ‖ crc32c_le(postcard(message))) ‖ 0x00`:
//!
//! * the message is serialised with [postcard] (field order is the schema; enum variants are
//!   indices, so variants are only ever added at the end and fields never reordered: change
//!   the layout and bump [`PROTOCOL_VERSION`]);
//! * a CRC-32C (Castagnoli) of those bytes, little-endian, follows them, so a corrupted frame
//!   is rejected rather than decoded into wrong numbers;
//! * COBS removes every zero byte, and one `0x00` ends the frame, so a receiver that joins
//!   mid-stream or loses bytes resynchronises at the next zero.
//!
//! A [`Sample`] frame is 31 to 39 bytes on the line (31 for a typical sample in its first
//! hours: sequence < 2²¹, time < 2²¹ ms… see `sample_frame_size` in the tests; 39 at most),
//! so a 115 200-baud link carries about 370 samples/s. No frame exceeds [`MAX_FRAME`] bytes.
//!
//! # Decoding
//!
//! [`Decoder`] takes arbitrary byte chunks, as they come off a serial port, and yields one
//! result per frame. It never panics, refuses frames longer than its buffer, resynchronises at
//! the next delimiter after garbage, a truncated frame or a bad CRC, and counts every kind of
//! error in [`DecodeStats`].
//!
//! ```
//! use zscope_core::wire::{self, Decoder, DeviceMsg, Sample, Flags};
//!
//! let msg = DeviceMsg::Sample(Sample {
//!     seq: 1, time_ms: 20, value: 0.5, mean: 0.1, std: 0.2, z: 2.0,
//!     flags: Flags::empty(), config_version: 1,
//! });
//! let mut line = [0u8; wire::MAX_FRAME];
//! let n = wire::encode(&msg, &mut line).unwrap();
//!
//! let mut decoder: Decoder = Decoder::new();
//! let mut input = &line[..n];
//! let got = decoder.next_message::<DeviceMsg>(&mut input).unwrap().unwrap();
//! assert_eq!(got, msg);
//! ```

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::detector::{ConfigError, DetectorConfig, Verdict};
use crate::float::Float;
use crate::simulator::SimConfig;

/// Version of this protocol. A host and a device must speak the same one.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest serialised message, in bytes, before the CRC and COBS.
pub const MAX_PAYLOAD: usize = 160;
/// Length of the CRC-32C that follows the message.
pub const CRC_LEN: usize = 4;
/// Largest frame on the line, delimiter included.
pub const MAX_FRAME: usize = cobs::max_encoding_length(MAX_PAYLOAD + CRC_LEN) + 1;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A board or firmware name as it crosses the wire.
pub type Name = heapless::String<24>;

/// Per-sample flags, one byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Flags(pub u8);

impl Flags {
    /// `|z|` beyond the threshold, after warm-up.
    pub const ANOMALY: u8 = 1 << 0;
    /// The window held fewer values than the warm-up: no verdict.
    pub const WARMING_UP: u8 = 1 << 1;
    /// The value was NaN or ±∞: not judged.
    pub const INVALID: u8 = 1 << 2;
    /// The source injected an anomaly here (simulator ground truth).
    pub const TRUTH: u8 = 1 << 3;
    /// The value was kept out of the window by the anomaly policy.
    pub const EXCLUDED: u8 = 1 << 4;

    /// No flag set.
    pub const fn empty() -> Self {
        Flags(0)
    }

    /// True when every bit of `bits` is set.
    pub const fn contains(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// The flags of a detector verdict, plus the ground truth if known.
    pub fn from_verdict<F>(verdict: &Verdict<F>, truth: bool) -> Self {
        use crate::detector::Class;
        let mut bits = match verdict.class {
            Class::Normal => 0,
            Class::Anomaly => Self::ANOMALY,
            Class::WarmingUp => Self::WARMING_UP,
            Class::Invalid => Self::INVALID,
        };
        if truth {
            bits |= Self::TRUTH;
        }
        if verdict.excluded && verdict.class != Class::Invalid {
            bits |= Self::EXCLUDED;
        }
        Flags(bits)
    }
}

/// Sent by a device once on boot, and again when asked (a ping) or after a reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The device's [`PROTOCOL_VERSION`]. First field, so a host can read it from any version.
    pub protocol: u16,
    /// Firmware version, e.g. `0.1.0`.
    pub firmware: Name,
    /// Board name, e.g. `nucleo-f401re`, `qemu-netduinoplus2`, `emulated`.
    pub board: Name,
    /// Window capacity compiled into the firmware: the largest window `SetConfig` accepts.
    pub capacity: u32,
    /// Samples per second the device aims for.
    pub sample_rate_hz: u32,
    /// Version of the detector config in force (starts at 1, +1 on every accepted change).
    pub config_version: u32,
    /// The detector config in force.
    pub detector: DetectorConfig,
    /// The simulator's config when the stream is simulated, `None` for a real sensor.
    pub simulator: Option<SimConfig>,
}

/// One judged sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Sequence number, from 0 at boot, +1 per sample; a gap means lost frames.
    pub seq: u64,
    /// Device time in milliseconds since boot.
    pub time_ms: u64,
    /// The value.
    pub value: f32,
    /// Window mean before this value.
    pub mean: f32,
    /// Window sample std before this value.
    pub std: f32,
    /// The Z-score (±∞ on a flat window).
    pub z: f32,
    /// Anomaly, warming up, invalid, truth, excluded.
    pub flags: Flags,
    /// Version of the detector config that judged it.
    pub config_version: u32,
}

impl Sample {
    /// A sample frame from a detector verdict.
    pub fn from_verdict<F: Float>(
        seq: u64,
        time_ms: u64,
        verdict: &Verdict<F>,
        truth: bool,
        config_version: u32,
    ) -> Self {
        Sample {
            seq,
            time_ms,
            value: verdict.value.to_f32(),
            mean: verdict.mean.to_f32(),
            std: verdict.std.to_f32(),
            z: verdict.z.to_f32(),
            flags: Flags::from_verdict(verdict, truth),
            config_version,
        }
    }
}

/// Periodic counters from the device (once a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// Device time in milliseconds since boot.
    pub time_ms: u64,
    /// Samples judged since boot.
    pub samples: u64,
    /// Of which anomalies.
    pub anomalies: u64,
    /// Frames written to the line since boot (this one excluded).
    pub frames_sent: u64,
    /// Samples judged but not sent because the link was busy (link slower than the rate).
    pub dropped: u64,
    /// Commands received and decoded.
    pub commands: u32,
    /// Bytes or frames from the host that could not be decoded.
    pub rx_errors: u32,
    /// Version of the detector config in force.
    pub config_version: u32,
}

/// How a device answered a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckResult {
    /// Done.
    Ok,
    /// The config was refused; the one in force is unchanged.
    Rejected(ConfigError),
}

/// The answer to every [`HostMsg`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The command's `id`.
    pub id: u32,
    /// Done or refused.
    pub result: AckResult,
    /// Version of the detector config now in force.
    pub config_version: u32,
    /// The detector config now in force.
    pub config: DetectorConfig,
}

/// Everything a device sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeviceMsg {
    /// Who the device is and how it is set up.
    Hello(Hello),
    /// One judged sample.
    Sample(Sample),
    /// Periodic counters.
    Status(Status),
    /// The answer to a command.
    Ack(Ack),
}

/// Everything a host sends. Each is answered with an [`Ack`] carrying the same `id`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum HostMsg {
    /// Apply a new detector config at once (window, threshold, warm-up, policy).
    SetConfig {
        /// Chosen by the host, echoed in the ack.
        id: u32,
        /// The new config.
        config: DetectorConfig,
    },
    /// Empty the detector's window (a new warm-up starts); the config stays.
    Reset {
        /// Chosen by the host, echoed in the ack.
        id: u32,
    },
    /// Ask for an ack (and a fresh hello) to check the line.
    Ping {
        /// Chosen by the host, echoed in the ack.
        id: u32,
    },
}

/// Why a message could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The message or the output buffer is too small for the frame.
    BufferTooSmall,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("frame does not fit the buffer")
    }
}

/// Why a frame was rejected. Every kind is counted in [`DecodeStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The frame was longer than the decoder's buffer; skipped up to the next delimiter.
    Oversize,
    /// Not valid COBS.
    Cobs,
    /// Shorter than a CRC plus one byte: a truncated frame or stray bytes.
    Truncated,
    /// The CRC does not match: corrupted, truncated or garbage.
    Crc,
    /// The CRC matches but the bytes are not a message of this protocol.
    Malformed,
    /// The device speaks another protocol version.
    Version {
        /// The version the device sent.
        device: u16,
        /// The version this build speaks ([`PROTOCOL_VERSION`]).
        host: u16,
    },
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::Oversize => write!(f, "frame longer than {MAX_FRAME} bytes"),
            FrameError::Cobs => f.write_str("frame is not valid COBS"),
            FrameError::Truncated => f.write_str("frame too short to hold a CRC"),
            FrameError::Crc => f.write_str("frame CRC mismatch"),
            FrameError::Malformed => f.write_str("frame does not hold a valid message"),
            FrameError::Version { device, host } => write!(
                f,
                "device speaks protocol version {device}, this host speaks {host}: \
                 update the firmware or the host so both match"
            ),
        }
    }
}

/// Frame `msg` into `out`: postcard, CRC-32C, COBS, delimiter. Returns the frame's length.
pub fn encode<T: Serialize>(msg: &T, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut raw = [0u8; MAX_PAYLOAD + CRC_LEN];
    let len = postcard::to_slice(msg, &mut raw[..MAX_PAYLOAD])
        .map_err(|_| EncodeError::BufferTooSmall)?
        .len();
    let crc = CRC32C.checksum(&raw[..len]);
    raw[len..len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let n = cobs::try_encode(&raw[..len + CRC_LEN], out).map_err(|_| EncodeError::BufferTooSmall)?;
    let delimiter = out.get_mut(n).ok_or(EncodeError::BufferTooSmall)?;
    *delimiter = 0;
    Ok(n + 1)
}

/// A message type that can be read from a checked payload.
pub trait Message: DeserializeOwned {
    /// Decode a payload whose CRC has been checked.
    fn from_payload(payload: &[u8]) -> Result<Self, FrameError> {
        match postcard::take_from_bytes::<Self>(payload) {
            Ok((msg, [])) => Ok(msg),
            _ => Err(FrameError::Malformed),
        }
    }
}

impl Message for HostMsg {}

impl Message for DeviceMsg {
    /// Also checks the hello's protocol version, even when the rest of it is unreadable.
    fn from_payload(payload: &[u8]) -> Result<Self, FrameError> {
        let version_error = |device| FrameError::Version {
            device,
            host: PROTOCOL_VERSION,
        };
        match postcard::take_from_bytes::<Self>(payload) {
            Ok((DeviceMsg::Hello(h), [])) if h.protocol != PROTOCOL_VERSION => {
                Err(version_error(h.protocol))
            }
            Ok((msg, [])) => Ok(msg),
            _ => {
                // A hello (variant 0) from another version may not decode; its first field is
                // still the version.
                if let Some((0, rest)) = payload.split_first() {
                    if let Ok((v, _)) = postcard::take_from_bytes::<u16>(rest) {
                        if v != PROTOCOL_VERSION {
                            return Err(version_error(v));
                        }
                    }
                }
                Err(FrameError::Malformed)
            }
        }
    }
}

/// What a [`Decoder`] has seen, per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DecodeStats {
    /// Bytes fed in.
    pub bytes: u64,
    /// Frames decoded into messages.
    pub frames: u64,
    /// Frames longer than the buffer.
    pub oversize: u64,
    /// Frames that were not valid COBS.
    pub cobs: u64,
    /// Frames too short to hold a CRC.
    pub truncated: u64,
    /// Frames with a CRC mismatch.
    pub crc: u64,
    /// Frames with a good CRC that are not a valid message.
    pub malformed: u64,
    /// Frames from another protocol version.
    pub version: u64,
}

impl DecodeStats {
    /// Rejected frames of every kind.
    pub fn errors(&self) -> u64 {
        self.oversize + self.cobs + self.truncated + self.crc + self.malformed + self.version
    }

    fn count(&mut self, err: FrameError) {
        let slot = match err {
            FrameError::Oversize => &mut self.oversize,
            FrameError::Cobs => &mut self.cobs,
            FrameError::Truncated => &mut self.truncated,
            FrameError::Crc => &mut self.crc,
            FrameError::Malformed => &mut self.malformed,
            FrameError::Version { .. } => &mut self.version,
        };
        *slot += 1;
    }
}

/// A streaming frame decoder with a fixed buffer of `B` bytes (default [`MAX_FRAME`]).
#[derive(Debug, Clone)]
pub struct Decoder<const B: usize = MAX_FRAME> {
    buf: [u8; B],
    len: usize,
    overflowed: bool,
    stats: DecodeStats,
}

impl<const B: usize> Default for Decoder<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> Decoder<B> {
    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; B],
            len: 0,
            overflowed: false,
            stats: DecodeStats {
                bytes: 0,
                frames: 0,
                oversize: 0,
                cobs: 0,
                truncated: 0,
                crc: 0,
                malformed: 0,
                version: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Bytes of an unfinished frame held.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Drop any unfinished frame (e.g. when the port was reopened).
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    /// Consume bytes from `input` up to and including the next frame's delimiter and return
    /// that frame's checked payload (message bytes without the CRC). `None` when `input` ran
    /// out first; the partial frame is kept for the next call. Empty frames (two zeros in a
    /// row) are skipped silently. Errors are not counted here; [`Decoder::next_message`] does.
    pub fn next_frame(&mut self, input: &mut &[u8]) -> Option<Result<&[u8], FrameError>> {
        loop {
            let Some(end) = input.iter().position(|b| *b == 0) else {
                self.stats.bytes += input.len() as u64;
                self.take(input);
                *input = &[];
                return None;
            };
            let (body, rest) = input.split_at(end);
            self.stats.bytes += end as u64 + 1;
            self.take(body);
            *input = &rest[1..];
            if self.overflowed {
                self.clear();
                return Some(Err(FrameError::Oversize));
            }
            if self.len == 0 {
                continue;
            }
            let len = core::mem::take(&mut self.len);
            return Some(Self::check(&mut self.buf[..len]));
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflowed = true,
        }
    }

    fn check(frame: &mut [u8]) -> Result<&[u8], FrameError> {
        let n = cobs::decode_in_place(frame).map_err(|_| FrameError::Cobs)?;
        if n <= CRC_LEN {
            return Err(FrameError::Truncated);
        }
        let (payload, crc) = frame[..n].split_at(n - CRC_LEN);
        let mut le = [0u8; CRC_LEN];
        le.copy_from_slice(crc);
        if CRC32C.checksum(payload) != u32::from_le_bytes(le) {
            return Err(FrameError::Crc);
        }
        Ok(payload)
    }

    /// Like [`Decoder::next_frame`], decoded into a message `M`, and counted.
    pub fn next_message<M: Message>(&mut self, input: &mut &[u8]) -> Option<Result<M, FrameError>> {
        let result = match self.next_frame(input)? {
            Ok(payload) => M::from_payload(payload),
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => self.stats.frames += 1,
            Err(e) => self.stats.count(e),
        }
        Some(result)
    }
}
