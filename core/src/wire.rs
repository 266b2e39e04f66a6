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
//! A [`Sample`] frame is **34 bytes** on the line for sample 1000 at 20 s (sequence numbers
//! and times are varints, so sizes grow by a byte at a time over days; 53 bytes at the very
//! most). A 115 200-baud link (11 520 bytes/s) carries about 338 samples/s that way. For more,
//! a device sends [`Batch`] frames ([`compact`](crate::compact)): up to 128 samples in one
//! frame, values as steps on a grid, verdict flags once per batch with every anomaly in full;
//! a full batch of the default simulated stream is 166 bytes, 1.3 bytes a sample. No frame exceeds
//! [`MAX_FRAME`] bytes. The `frame_sizes` test keeps these figures true.
//!
//! # Versions
//!
//! Protocol 5 added [`DeviceMsg::Batch`] at the end and changed nothing else. Protocol 6 added
//! sources ([`HostMsg::SetSource`], the hello's list of sources and the one in force, the
//! status frame's source and sensor errors). A host speaking 6 reads a device speaking 4 or 5
//! ([`OLDEST_PROTOCOL`]): their hello and status frames, shorter by the new fields, are read as
//! a simulator's (or, without a simulator, an external source's).
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
//!     seq: 1, time_ms: 20, value: 0.5, mean: 0.1, std: 0.2, z: 2.0, score: 0.4,
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

pub use crate::compact::Batch;
use crate::config::{ConfigError, DetectorConfig};
pub use crate::sample::{Flags, MAX_PAYLOAD, Sample};
use crate::simulator::SimConfig;
use crate::source::{Refusal, Source, Sources, Unit};

/// Version of this protocol. A host and a device must speak the same one.
/// 2: `DetectorConfig` gained `baseline` (the seasonal detector).
/// 3: `Baseline::Adaptive` (the adaptive detector, the default) and `ConfigError::Learn`.
/// 4: `Sample::score` (the detector's own score, so the host never recomputes it).
/// 5: `DeviceMsg::Batch` (compact frames of many samples); nothing else changed.
/// 6: sources: `HostMsg::SetSource`, `AckResult::SourceRejected`, `Hello::{sources, source,
///    unit}`, `Status::{source, sensor_errors}`.
pub const PROTOCOL_VERSION: u16 = 6;

/// The oldest device protocol this build still reads: 4's messages are 5's minus the batch,
/// 5's are 6's minus the sources (see [`DeviceMsg`]'s decoding).
pub const OLDEST_PROTOCOL: u16 = 4;

/// Length of the CRC-32C that follows the message.
pub const CRC_LEN: usize = 4;
/// Largest frame on the line, delimiter included.
pub const MAX_FRAME: usize = cobs::max_encoding_length(MAX_PAYLOAD + CRC_LEN) + 1;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A board or firmware name as it crosses the wire.
pub type Name = heapless::String<24>;

/// `s` as a [`Name`], cut to its first 24 bytes' worth of whole characters.
pub fn name(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
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
    /// Longest seasonal period `SetConfig` accepts.
    pub season_capacity: u32,
    /// The sources the device can switch to (protocol 6).
    pub sources: Sources,
    /// The source in force (protocol 6).
    pub source: Source,
    /// The unit of its values (protocol 6).
    pub unit: Unit,
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
    /// The source in force (protocol 6).
    pub source: Source,
    /// Readings the sensor failed to give since boot (a conversion that never ended, an
    /// overrun, a reading that makes no sense): counted, not judged (protocol 6).
    pub sensor_errors: u32,
}

/// How a device answered a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckResult {
    /// Done.
    Ok,
    /// The config was refused; the one in force is unchanged.
    Rejected(ConfigError),
    /// The sample rate was refused (above what the device supports); the rate is unchanged.
    RateRejected {
        /// The rate asked for.
        hz: u32,
        /// The highest rate the device accepts.
        max: u32,
    },
    /// The source was refused; the one in force is unchanged (protocol 6).
    SourceRejected(Refusal),
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
// A batch is large beside the others (about 750 bytes in memory): without an allocator it is
// held inline, and a message is built once per frame and dropped after it.
#[allow(clippy::large_enum_variant)]
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
    /// Many judged samples in one frame (protocol 5).
    Batch(Batch),
}

impl DeviceMsg {
    /// The samples it carries, in order: a sample frame's one, a batch's all, none otherwise.
    pub fn samples(&self) -> Carried<'_> {
        match self {
            DeviceMsg::Sample(s) => Carried::One(Some(*s)),
            DeviceMsg::Batch(b) => Carried::Batch(b.samples()),
            _ => Carried::One(None),
        }
    }
}

/// The samples a [`DeviceMsg`] carries, from [`DeviceMsg::samples`].
#[derive(Debug, Clone)]
pub enum Carried<'a> {
    /// A sample frame's (or nothing).
    One(Option<Sample>),
    /// A batch's.
    Batch(crate::compact::Samples<'a>),
}

impl Iterator for Carried<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        match self {
            Carried::One(s) => s.take(),
            Carried::Batch(samples) => samples.next(),
        }
    }
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
    /// Change the sample rate at once: samples per second, or 0 for "as fast as the link
    /// carries" (the device then never drops a sample, and stamps each with its clock).
    SetRate {
        /// Chosen by the host, echoed in the ack.
        id: u32,
        /// Samples per second, 0 for as fast as the link carries.
        hz: u32,
    },
    /// Judge another source from now on: the detector learns afresh (the config version
    /// goes up, a hello follows). Refused with the reason when the device lacks it or cannot
    /// sample it at the rate in force (protocol 6).
    SetSource {
        /// Chosen by the host, echoed in the ack.
        id: u32,
        /// The source to judge.
        source: Source,
    },
}

impl HostMsg {
    /// Its id.
    pub fn id(&self) -> u32 {
        match *self {
            HostMsg::SetConfig { id, .. }
            | HostMsg::Reset { id }
            | HostMsg::Ping { id }
            | HostMsg::SetRate { id, .. }
            | HostMsg::SetSource { id, .. } => id,
        }
    }

    /// The same command under another id (a relay numbers what it forwards itself).
    pub fn with_id(self, id: u32) -> HostMsg {
        match self {
            HostMsg::SetConfig { config, .. } => HostMsg::SetConfig { id, config },
            HostMsg::Reset { .. } => HostMsg::Reset { id },
            HostMsg::Ping { .. } => HostMsg::Ping { id },
            HostMsg::SetRate { hz, .. } => HostMsg::SetRate { id, hz },
            HostMsg::SetSource { source, .. } => HostMsg::SetSource { id, source },
        }
    }
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

impl core::error::Error for EncodeError {}

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
                "device speaks protocol version {device}, this host speaks \
                 {OLDEST_PROTOCOL} to {host}: update the firmware or the host so both match"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// Frame `msg` into `out`: postcard, CRC-32C, COBS, delimiter. Returns the frame's length.
pub fn encode<T: Serialize>(msg: &T, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut raw = [0u8; MAX_PAYLOAD + CRC_LEN];
    let len = postcard::to_slice(msg, &mut raw[..MAX_PAYLOAD])
        .map_err(|_| EncodeError::BufferTooSmall)?
        .len();
    let crc = CRC32C.checksum(&raw[..len]);
    raw[len..len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let n =
        cobs::try_encode(&raw[..len + CRC_LEN], out).map_err(|_| EncodeError::BufferTooSmall)?;
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
    /// Also checks the hello's protocol version (any from [`OLDEST_PROTOCOL`] to
    /// [`PROTOCOL_VERSION`]), even when the rest of it is unreadable, and that a batch is
    /// consistent.
    fn from_payload(payload: &[u8]) -> Result<Self, FrameError> {
        let version_error = |device| FrameError::Version {
            device,
            host: PROTOCOL_VERSION,
        };
        let known = |v| (OLDEST_PROTOCOL..=PROTOCOL_VERSION).contains(&v);
        match postcard::take_from_bytes::<Self>(payload) {
            Ok((DeviceMsg::Hello(h), [])) if !known(h.protocol) => Err(version_error(h.protocol)),
            Ok((DeviceMsg::Batch(b), [])) if b.check().is_err() => Err(FrameError::Malformed),
            Ok((msg, [])) => Ok(msg),
            _ => {
                // A protocol 4 or 5 device's hello and status lack the sources.
                if let Ok((old, [])) = postcard::take_from_bytes::<legacy::DeviceMsg>(payload) {
                    return match old {
                        legacy::DeviceMsg::Hello(h) if !known(h.protocol) => {
                            Err(version_error(h.protocol))
                        }
                        // A hello that says 6 but lacks 6's fields is damaged, not old.
                        legacy::DeviceMsg::Hello(h) if h.protocol >= 6 => {
                            Err(FrameError::Malformed)
                        }
                        legacy::DeviceMsg::Hello(h) => Ok(DeviceMsg::Hello(h.into())),
                        legacy::DeviceMsg::Status(s) => Ok(DeviceMsg::Status(s.into())),
                        legacy::DeviceMsg::Sample(s) => Ok(DeviceMsg::Sample(s)),
                    };
                }
                // A hello (variant 0) from another version may not decode; its first field is
                // still the version.
                if let Some((0, rest)) = payload.split_first()
                    && let Ok((v, _)) = postcard::take_from_bytes::<u16>(rest)
                    && !known(v)
                {
                    return Err(version_error(v));
                }
                Err(FrameError::Malformed)
            }
        }
    }
}

/// The hello and status of protocols 4 and 5, before sources.
mod legacy {
    use super::*;

    #[derive(Deserialize)]
    pub struct Hello {
        pub protocol: u16,
        firmware: Name,
        board: Name,
        capacity: u32,
        sample_rate_hz: u32,
        config_version: u32,
        detector: DetectorConfig,
        simulator: Option<SimConfig>,
        season_capacity: u32,
    }

    #[derive(Deserialize)]
    pub struct Status {
        time_ms: u64,
        samples: u64,
        anomalies: u64,
        frames_sent: u64,
        dropped: u64,
        commands: u32,
        rx_errors: u32,
        config_version: u32,
    }

    /// The variants up to the status, in their order on the wire.
    #[derive(Deserialize)]
    pub enum DeviceMsg {
        Hello(Hello),
        Sample(Sample),
        Status(Status),
    }

    /// A device before sources judged its simulator, or values of its own when it had none.
    fn source(simulated: bool) -> Source {
        if simulated {
            Source::Simulator
        } else {
            Source::External
        }
    }

    impl From<Hello> for super::Hello {
        fn from(h: Hello) -> Self {
            let source = source(h.simulator.is_some());
            let sources = Sources {
                simulator: source == Source::Simulator,
                external: source == Source::External,
                ..Sources::default()
            };
            super::Hello {
                protocol: h.protocol,
                firmware: h.firmware,
                board: h.board,
                capacity: h.capacity,
                sample_rate_hz: h.sample_rate_hz,
                config_version: h.config_version,
                detector: h.detector,
                simulator: h.simulator,
                season_capacity: h.season_capacity,
                sources,
                source,
                unit: Unit::None,
            }
        }
    }

    impl From<Status> for super::Status {
        fn from(s: Status) -> Self {
            super::Status {
                time_ms: s.time_ms,
                samples: s.samples,
                anomalies: s.anomalies,
                frames_sent: s.frames_sent,
                dropped: s.dropped,
                commands: s.commands,
                rx_errors: s.rx_errors,
                config_version: s.config_version,
                // A status does not say; the host keeps the hello's.
                source: Source::Simulator,
                sensor_errors: 0,
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

    /// These counts and `other`'s together (a host sums its decoders across reconnections).
    pub fn plus(&self, other: &DecodeStats) -> DecodeStats {
        DecodeStats {
            bytes: self.bytes + other.bytes,
            frames: self.frames + other.frames,
            oversize: self.oversize + other.oversize,
            cobs: self.cobs + other.cobs,
            truncated: self.truncated + other.truncated,
            crc: self.crc + other.crc,
            malformed: self.malformed + other.malformed,
            version: self.version + other.version,
        }
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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::detector::AnomalyPolicy;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME];
        let n = encode(msg, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn decode_all(
        bytes: &[u8],
        chunks: &[usize],
    ) -> (Vec<Result<DeviceMsg, FrameError>>, DecodeStats) {
        let mut d: Decoder = Decoder::new();
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let take = (*sizes.next().unwrap_or(&usize::MAX)).clamp(1, rest.len());
            let (mut chunk, tail) = rest.split_at(take);
            rest = tail;
            while let Some(r) = d.next_message::<DeviceMsg>(&mut chunk) {
                out.push(r);
            }
        }
        (out, *d.stats())
    }

    fn sample(seq: u64) -> DeviceMsg {
        DeviceMsg::Sample(Sample {
            seq,
            time_ms: seq * 20,
            value: 0.25 + seq as f32,
            mean: 0.125,
            std: 0.5,
            z: 2.0,
            score: 0.5,
            flags: Flags(Flags::ANOMALY | Flags::TRUTH),
            config_version: 3,
        })
    }

    fn hello() -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            firmware: Name::try_from("0.1.0").unwrap(),
            board: Name::try_from("qemu-netduinoplus2").unwrap(),
            capacity: 1024,
            sample_rate_hz: 50,
            config_version: 1,
            detector: DetectorConfig::default(),
            simulator: Some(SimConfig::default()),
            season_capacity: 1024,
            sources: Sources::simulator(),
            source: Source::Simulator,
            unit: Unit::None,
        }
    }

    /// A board with every source: the longest hello.
    fn every_source() -> Sources {
        let mut sources = Sources {
            simulator: true,
            temperature: true,
            external: true,
            max_sensor_hz: u32::MAX,
            ..Sources::default()
        };
        for number in 0..16 {
            let pin = crate::source::Pin { port: b'K', number };
            sources.adc.push(pin).unwrap();
        }
        sources
    }

    /// `h` as a device of `protocol` (before sources) lays its hello out: postcard writes a
    /// struct as its fields in order, a variant as its index.
    fn hello_before_sources(h: &Hello, protocol: u16) -> impl Serialize + use<> {
        (
            0u8,
            protocol,
            h.firmware.clone(),
            h.board.clone(),
            h.capacity,
            h.sample_rate_hz,
            h.config_version,
            h.detector,
            h.simulator,
            h.season_capacity,
        )
    }

    #[test]
    fn protocol_5_hello_and_status_read_as_a_simulator_without_sources() {
        let h = hello();
        let old_hello = hello_before_sources(&h, 5);
        let mut raw = [0u8; MAX_PAYLOAD];
        let payload = postcard::to_slice(&old_hello, &mut raw).unwrap();
        let got = DeviceMsg::from_payload(payload).unwrap();
        assert_eq!(
            got,
            DeviceMsg::Hello(Hello {
                protocol: 5,
                ..hello()
            })
        );
        // Without a simulator, the values were the device's own.
        let own = Hello {
            simulator: None,
            ..h.clone()
        };
        let payload = postcard::to_slice(&hello_before_sources(&own, 4), &mut raw).unwrap();
        let DeviceMsg::Hello(got) = DeviceMsg::from_payload(payload).unwrap() else {
            panic!("not a hello");
        };
        assert_eq!(
            (got.source, got.sources.external, got.sources.simulator),
            (Source::External, true, false)
        );
        let old_status = (2u8, 1u64, 2u64, 3u64, 4u64, 5u64, 6u32, 7u32, 8u32);
        let payload = postcard::to_slice(&old_status, &mut raw).unwrap();
        let got = DeviceMsg::from_payload(payload).unwrap();
        let want = Status {
            time_ms: 1,
            samples: 2,
            anomalies: 3,
            frames_sent: 4,
            dropped: 5,
            commands: 6,
            rx_errors: 7,
            config_version: 8,
            ..Status::default()
        };
        assert_eq!(got, DeviceMsg::Status(want));
        // A protocol 6 hello without its new fields is not a protocol 5 one.
        let cut = hello_before_sources(&h, 6);
        let payload = postcard::to_slice(&cut, &mut raw).unwrap();
        assert_eq!(DeviceMsg::from_payload(payload), Err(FrameError::Malformed));
    }

    #[test]
    fn sample_bytes_are_pinned() {
        // postcard: variant 1, varint seq 1000, varint time 20000, 5 f32 LE, flags, varint 3;
        // then CRC-32C LE; then COBS and the delimiter. A change here breaks every device.
        let bytes = frame(&sample(1000));
        assert_eq!(
            bytes,
            [
                7, 1, 232, 7, 160, 156, 1, 4, 16, 122, 68, 1, 1, 2, 62, 1, 1, 2, 63, 1, 1, 2, 64,
                1, 1, 8, 63, 9, 3, 126, 121, 217, 168, 0
            ]
        );
    }

    fn batch() -> DeviceMsg {
        let mut steps = heapless::Vec::new();
        steps.extend_from_slice(&[128, 0, -2]).unwrap();
        let mut exceptions = heapless::Vec::new();
        exceptions
            .push(crate::compact::Exception {
                index: 1,
                flags: Flags(Flags::ANOMALY),
                value: 2.0,
                mean: 0.5,
                std: 0.25,
                z: 6.0,
                score: 0.625,
            })
            .unwrap();
        DeviceMsg::Batch(Batch {
            seq: 1000,
            time_ms: 1000,
            rate_hz: 1000,
            phase: 0,
            config_version: 3,
            scale: -8,
            mean: 0.5,
            std: 0.25,
            flags: Flags::empty(),
            steps,
            exceptions,
        })
    }

    #[test]
    fn batch_bytes_are_pinned() {
        // postcard: variant 4, varint seq 1000, time 1000, rate 1000, phase 0, version 3,
        // scale -8 (one byte), mean, std, flags; steps: length 3, zigzag varints 128 -> 256
        // (128, 2), 0, -2 -> 3; exceptions: length 1, index 1, flags 1, five f32s.
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = postcard::to_slice(&batch(), &mut payload).unwrap().len();
        assert_eq!(
            &payload[..n],
            [
                4, 232, 7, 232, 7, 232, 7, 0, 3, 248, 0, 0, 0, 63, 0, 0, 128, 62, 0, 3, 128, 2, 0,
                3, 1, 1, 1, 0, 0, 0, 64, 0, 0, 0, 63, 0, 0, 128, 62, 0, 0, 192, 64, 0, 0, 32, 63
            ]
        );
        let (got, _) = decode_all(&frame(&batch()), &[]);
        let DeviceMsg::Batch(b) = got[0].clone().unwrap() else {
            panic!("{got:?}")
        };
        let values: Vec<f32> = b.samples().map(|s| s.value).collect();
        assert_eq!(values, [0.5, 2.0, 0.4921875]);
        assert_eq!(frame(&batch()).len(), n + CRC_LEN + 2);
    }

    #[test]
    fn a_protocol_4_device_is_still_understood() {
        // A version-4 device's hello and sample, as it sends them: its hello lacks the sources.
        let v4_bytes = hello_before_sources(&hello(), 4);
        let v4 = DeviceMsg::Hello(Hello {
            protocol: 4,
            ..hello()
        });
        let line: Vec<u8> = [frame(&v4_bytes), frame(&sample(1000))].concat();
        let (got, stats) = decode_all(&line, &[]);
        assert_eq!(got, [Ok(v4), Ok(sample(1000))]);
        assert_eq!(stats.errors(), 0);
        // Protocol 3 is refused, saying which versions this host reads.
        let v3 = DeviceMsg::Hello(Hello {
            protocol: 3,
            ..hello()
        });
        let (got, _) = decode_all(&frame(&v3), &[]);
        let err = got[0].clone().unwrap_err();
        assert!(
            std::format!("{err}").contains("protocol version 3, this host speaks 4 to 6"),
            "{err}"
        );
    }

    #[test]
    fn an_inconsistent_batch_is_malformed() {
        let DeviceMsg::Batch(mut b) = batch() else {
            unreachable!()
        };
        b.exceptions[0].index = 7;
        let (got, stats) = decode_all(&frame(&DeviceMsg::Batch(b)), &[]);
        assert_eq!(got, [Err(FrameError::Malformed)]);
        assert_eq!(stats.malformed, 1);
    }

    #[test]
    fn host_message_bytes_are_pinned() {
        let set = HostMsg::SetConfig {
            id: 7,
            config: DetectorConfig {
                window: 128,
                threshold: 3.5,
                warmup: Some(32),
                policy: AnomalyPolicy::Exclude { max_run: 10 },
                baseline: crate::detector::Baseline::Window,
            },
        };
        assert_eq!(
            frame(&set),
            [
                1, 4, 7, 128, 1, 1, 7, 96, 64, 1, 32, 1, 10, 5, 88, 49, 201, 191, 0
            ]
        );
        // The adaptive baseline: threshold 4.5 (0x40900000), variant 2, varint learn 600
        // (216, 4), varint rest 100.
        let set = HostMsg::SetConfig {
            id: 7,
            config: DetectorConfig::default(),
        };
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = postcard::to_slice(&set, &mut payload).unwrap().len();
        assert_eq!(
            &payload[..n],
            [0, 7, 64, 0, 0, 144, 64, 0, 1, 10, 2, 216, 4, 100]
        );
        let ping = frame(&HostMsg::Ping { id: 1 });
        assert_eq!(ping.len(), 8);
        assert_eq!(&ping[..3], [7, 2, 1]);
    }

    #[test]
    fn frame_sizes() {
        // Documented in the module docs: keep them true.
        let typical = frame(&sample(1000));
        assert_eq!(typical.len(), 34);
        let worst = DeviceMsg::Sample(Sample {
            seq: u64::MAX,
            time_ms: u64::MAX,
            value: f32::MAX,
            mean: f32::MAX,
            std: f32::MAX,
            z: f32::MAX,
            score: f32::MAX,
            flags: Flags(0xff),
            config_version: u32::MAX,
        });
        assert_eq!(frame(&worst).len(), 53);
        let big_hello = Hello {
            firmware: Name::try_from("x".repeat(24).as_str()).unwrap(),
            board: Name::try_from("y".repeat(24).as_str()).unwrap(),
            capacity: u32::MAX,
            sample_rate_hz: u32::MAX,
            config_version: u32::MAX,
            detector: DetectorConfig {
                window: u32::MAX,
                threshold: 1.0,
                warmup: Some(u32::MAX),
                policy: AnomalyPolicy::Exclude { max_run: u32::MAX },
                baseline: crate::detector::Baseline::Seasonal {
                    period: u32::MAX,
                    alpha: 1.0,
                },
            },
            simulator: Some(SimConfig {
                seed: u64::MAX,
                period: u32::MAX,
                ..SimConfig::default()
            }),
            ..hello()
        };
        let n = frame(&DeviceMsg::Hello(big_hello.clone())).len();
        assert!(n <= MAX_FRAME, "{n} > {MAX_FRAME}");
        let adaptive = Hello {
            detector: DetectorConfig {
                baseline: crate::detector::Baseline::Adaptive {
                    learn: u32::MAX,
                    rest: u32::MAX,
                },
                ..big_hello.detector
            },
            ..big_hello
        };
        let n = frame(&DeviceMsg::Hello(adaptive)).len();
        assert!(n <= MAX_FRAME, "{n} > {MAX_FRAME}");
        // Batches: see `compact`'s tests for the largest a batcher makes.
        assert_eq!(frame(&batch()).len(), 53);
    }

    #[test]
    fn names_are_cut_at_whole_characters() {
        assert_eq!(
            super::name("qemu-netduinoplus2").as_str(),
            "qemu-netduinoplus2"
        );
        assert_eq!(super::name(&"é".repeat(20)).as_str(), "é".repeat(12));
        assert_eq!(super::name(&"x".repeat(30)).len(), 24);
    }

    #[test]
    fn too_small_buffer_is_an_error_not_a_panic() {
        let mut out = [0u8; 10];
        assert_eq!(
            encode(&sample(1), &mut out),
            Err(EncodeError::BufferTooSmall)
        );
    }

    #[test]
    fn garbage_then_frames_resynchronises_and_counts() {
        let mut line = Vec::new();
        line.extend_from_slice(&frame(&sample(1)));
        line.extend_from_slice(&[0x13, 0x37, 0x42, 0x00]); // garbage then a delimiter
        let mut cut = frame(&sample(2));
        cut.truncate(10); // a frame cut off mid-way, then the next one
        line.extend_from_slice(&cut);
        line.extend_from_slice(&frame(&sample(3)));
        line.extend_from_slice(&frame(&sample(4)));
        line.extend_from_slice(&[0x02, 0x05, 0x00]); // valid COBS, too short for a CRC
        line.extend_from_slice(&[0x00, 0x00]); // empty frames: skipped silently
        let (got, stats) = decode_all(&line, &[3, 7, 1]);
        let ok: Vec<DeviceMsg> = got.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(ok, [sample(1), sample(4)]);
        assert_eq!(stats.frames, 2);
        // The garbage and the cut frame merged with sample 3 are rejected: as invalid COBS or
        // by their CRC, whichever check their bytes happen to fail first.
        assert_eq!(stats.cobs + stats.crc, 2);
        assert_eq!(stats.truncated, 1);
        assert_eq!(stats.errors(), 3);
        assert_eq!(stats.bytes, line.len() as u64);
    }

    #[test]
    fn oversize_frames_are_skipped_and_counted() {
        let mut line = [0x55u8; 3 * MAX_FRAME].to_vec();
        line.push(0);
        line.extend_from_slice(&frame(&sample(9)));
        let (got, stats) = decode_all(&line, &[MAX_FRAME - 1]);
        assert_eq!(got, [Err(FrameError::Oversize), Ok(sample(9))]);
        assert_eq!(stats.oversize, 1);
        // A small decoder refuses a frame it cannot hold, and recovers.
        let mut d: Decoder<16> = Decoder::new();
        let mut input = &line[3 * MAX_FRAME + 1..];
        assert_eq!(
            d.next_message::<DeviceMsg>(&mut input),
            Some(Err(FrameError::Oversize))
        );
    }

    #[test]
    fn a_good_crc_over_a_non_message_is_malformed() {
        // Variant 9 does not exist.
        let raw_frame = |payload: &[u8]| {
            let mut raw = payload.to_vec();
            raw.extend_from_slice(&CRC32C.checksum(payload).to_le_bytes());
            let mut out = [0u8; 64];
            let n = cobs::encode(&raw, &mut out);
            let mut v = out[..n].to_vec();
            v.push(0);
            v
        };
        let (got, stats) = decode_all(&raw_frame(&[9, 1, 2]), &[]);
        assert_eq!(got, [Err(FrameError::Malformed)]);
        assert_eq!(stats.malformed, 1);
        // Trailing bytes after a valid message are malformed too.
        let mut bytes = postcard::to_slice(&HostMsg::Ping { id: 3 }, &mut [0u8; 16])
            .unwrap()
            .to_vec();
        bytes.push(0x42);
        let mut d: Decoder = Decoder::new();
        let f = raw_frame(&bytes);
        let mut input = &f[..];
        assert_eq!(
            d.next_message::<HostMsg>(&mut input),
            Some(Err(FrameError::Malformed))
        );
    }

    #[test]
    fn protocol_version_mismatch_is_a_typed_error() {
        // A hello of another version, same layout.
        let other = DeviceMsg::Hello(Hello {
            protocol: PROTOCOL_VERSION + 1,
            ..hello()
        });
        let (got, stats) = decode_all(&frame(&other), &[]);
        let err = FrameError::Version {
            device: PROTOCOL_VERSION + 1,
            host: PROTOCOL_VERSION,
        };
        assert_eq!(got, [Err(err)]);
        assert_eq!(stats.version, 1);
        // A hello of a future version whose layout we cannot read: the version still shows.
        let mut payload = [0u8; 8];
        let bytes = postcard::to_slice(&(0u8, 7u16, [0xffu8; 3]), &mut payload).unwrap();
        let mut raw = bytes.to_vec();
        raw.extend_from_slice(&CRC32C.checksum(bytes).to_le_bytes());
        let mut line = [0u8; 32];
        let n = cobs::encode(&raw, &mut line);
        let (got, _) = decode_all(&line[..n + 1], &[]);
        assert_eq!(
            got,
            [Err(FrameError::Version {
                device: 7,
                host: PROTOCOL_VERSION
            })]
        );
        assert!(std::format!("{}", got[0].clone().unwrap_err()).contains("protocol version 7"));
    }

    // ---- property tests ----

    fn finite() -> impl Strategy<Value = f32> {
        prop_oneof![
            -1e6f32..1e6,
            Just(0.0),
            Just(f32::MAX),
            Just(f32::MIN_POSITIVE)
        ]
    }

    fn detector_config() -> impl Strategy<Value = DetectorConfig> {
        (
            any::<u32>(),
            finite(),
            proptest::option::of(any::<u32>()),
            prop_oneof![
                Just(AnomalyPolicy::Include),
                any::<u32>().prop_map(|max_run| AnomalyPolicy::Exclude { max_run })
            ],
            prop_oneof![
                Just(crate::detector::Baseline::Window),
                (any::<u32>(), finite()).prop_map(|(period, alpha)| {
                    crate::detector::Baseline::Seasonal { period, alpha }
                }),
                (any::<u32>(), any::<u32>()).prop_map(|(learn, rest)| {
                    crate::detector::Baseline::Adaptive { learn, rest }
                })
            ],
        )
            .prop_map(
                |(window, threshold, warmup, policy, baseline)| DetectorConfig {
                    window,
                    threshold,
                    warmup,
                    policy,
                    baseline,
                },
            )
    }

    fn sim_config() -> impl Strategy<Value = SimConfig> {
        (
            any::<u64>(),
            finite(),
            finite(),
            any::<u32>(),
            finite(),
            finite(),
            finite(),
        )
            .prop_map(
                |(seed, offset, amplitude, period, sigma, anomaly_rate, magnitude_min)| SimConfig {
                    seed,
                    offset,
                    amplitude,
                    period,
                    sigma,
                    anomaly_rate,
                    magnitude_min,
                    magnitude_max: magnitude_min,
                    level_shift_share: anomaly_rate,
                },
            )
    }

    fn name() -> impl Strategy<Value = Name> {
        "[a-z0-9.-]{0,24}".prop_map(|s| Name::try_from(s.as_str()).unwrap())
    }

    fn device_msg() -> impl Strategy<Value = DeviceMsg> {
        let hello = (
            name(),
            name(),
            any::<(u32, u32, u32)>(),
            detector_config(),
            proptest::option::of(sim_config()),
        )
            .prop_map(
                |(
                    firmware,
                    board,
                    (capacity, sample_rate_hz, config_version),
                    detector,
                    simulator,
                )| {
                    DeviceMsg::Hello(Hello {
                        protocol: PROTOCOL_VERSION,
                        firmware,
                        board,
                        capacity,
                        sample_rate_hz,
                        config_version,
                        detector,
                        simulator,
                        season_capacity: capacity / 2,
                        sources: every_source(),
                        source: Source::Adc(crate::source::Pin {
                            port: b'K',
                            number: 15,
                        }),
                        unit: Unit::Volts,
                    })
                },
            );
        let sample = (
            any::<(u64, u64, u8, u32)>(),
            finite(),
            finite(),
            finite(),
            finite(),
            finite(),
        )
            .prop_map(
                |((seq, time_ms, flags, config_version), value, mean, std, z, score)| {
                    DeviceMsg::Sample(Sample {
                        seq,
                        time_ms,
                        value,
                        mean,
                        std,
                        z,
                        score,
                        flags: Flags(flags),
                        config_version,
                    })
                },
            );
        let status = any::<(u64, u64, u64, u64, u64, u32, u32, u32)>().prop_map(
            |(
                time_ms,
                samples,
                anomalies,
                frames_sent,
                dropped,
                commands,
                rx_errors,
                config_version,
            )| {
                DeviceMsg::Status(Status {
                    time_ms,
                    samples,
                    anomalies,
                    frames_sent,
                    dropped,
                    commands,
                    rx_errors,
                    config_version,
                    source: Source::Temperature,
                    sensor_errors: commands,
                })
            },
        );
        let ack = (any::<(u32, u32)>(), detector_config(), any::<bool>()).prop_map(
            |((id, config_version), config, ok)| {
                DeviceMsg::Ack(Ack {
                    id,
                    result: match (ok, id % 3) {
                        (true, _) => AckResult::Ok,
                        (false, 0) => AckResult::Rejected(ConfigError::Warmup {
                            warmup: id,
                            window: config_version,
                        }),
                        (false, 1) => AckResult::SourceRejected(crate::source::Refusal::Rate {
                            hz: id,
                            max: config_version,
                        }),
                        (false, _) => AckResult::RateRejected {
                            hz: id,
                            max: config_version,
                        },
                    },
                    config_version,
                    config,
                })
            },
        );
        let batch = (
            any::<(u64, u64, u32, u32)>(),
            -crate::compact::MAX_SCALE..=crate::compact::MAX_SCALE,
            proptest::collection::vec(
                (
                    prop_oneof![8 => -64i32..64, 1 => -8192i32..8192, 1 => any::<i32>()],
                    proptest::option::weighted(0.1, (any::<u8>(), finite())),
                ),
                1..crate::compact::MAX_SAMPLES,
            ),
            (finite(), finite(), any::<u8>()),
        )
            .prop_map(
                |((seq, time_ms, rate_hz, config_version), scale, samples, (mean, std, flags))| {
                    let mut steps = heapless::Vec::new();
                    let mut exceptions = heapless::Vec::new();
                    for (i, (step, exception)) in samples.into_iter().enumerate() {
                        let _ = steps.push(step);
                        if let Some((flags, value)) = exception {
                            let _ = exceptions.push(crate::compact::Exception {
                                index: i as u8,
                                flags: Flags(flags),
                                value,
                                mean: value,
                                std: mean,
                                z: std,
                                score: 0.5,
                            });
                        }
                    }
                    DeviceMsg::Batch(Batch {
                        seq,
                        time_ms,
                        rate_hz,
                        phase: rate_hz / 2,
                        config_version,
                        scale,
                        mean,
                        std,
                        flags: Flags(flags),
                        steps,
                        exceptions,
                    })
                },
            )
            .prop_filter("a batch a batcher could make fits a frame", |m| {
                postcard::to_slice(m, &mut [0u8; MAX_PAYLOAD]).is_ok()
            });
        prop_oneof![1 => hello, 2 => sample, 1 => status, 1 => ack, 1 => batch]
    }

    fn host_msg() -> impl Strategy<Value = HostMsg> {
        prop_oneof![
            (any::<u32>(), detector_config())
                .prop_map(|(id, config)| HostMsg::SetConfig { id, config }),
            any::<u32>().prop_map(|id| HostMsg::Reset { id }),
            any::<u32>().prop_map(|id| HostMsg::Ping { id }),
            any::<(u32, u32)>().prop_map(|(id, hz)| HostMsg::SetRate { id, hz }),
            (any::<u32>(), 0u8..16).prop_map(|(id, number)| HostMsg::SetSource {
                id,
                source: Source::Adc(crate::source::Pin { port: b'C', number }),
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(msg in device_msg(), cmd in host_msg()) {
            let (got, _) = decode_all(&frame(&msg), &[]);
            prop_assert_eq!(got, [Ok(msg)]);
            let f = frame(&cmd);
            let mut d: Decoder = Decoder::new();
            let mut input = &f[..];
            prop_assert_eq!(d.next_message::<HostMsg>(&mut input), Some(Ok(cmd)));
            prop_assert!(input.is_empty());
        }

        #[test]
        fn random_bytes_never_panic_and_every_byte_is_counted(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            chunks in proptest::collection::vec(1usize..300, 1..8),
        ) {
            let (got, stats) = decode_all(&bytes, &chunks);
            prop_assert_eq!(stats.bytes, bytes.len() as u64);
            prop_assert_eq!(got.len() as u64, stats.frames + stats.errors());
        }

        /// Any way of cutting a valid stream into chunks decodes the same messages.
        #[test]
        fn random_cuts_of_a_valid_stream(
            msgs in proptest::collection::vec(device_msg(), 1..20),
            chunks in proptest::collection::vec(1usize..64, 1..10),
        ) {
            let line: Vec<u8> = msgs.iter().flat_map(frame).collect();
            let (got, stats) = decode_all(&line, &chunks);
            let expected: Vec<Result<DeviceMsg, FrameError>> = msgs.into_iter().map(Ok).collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(stats.errors(), 0);
        }

        /// Flipped bits: no corrupted frame is ever taken as valid, and every frame after the
        /// damaged ones decodes.
        #[test]
        fn flipped_bits_never_yield_a_corrupt_message(
            msgs in proptest::collection::vec(device_msg(), 2..12),
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 1..4),
            chunks in proptest::collection::vec(1usize..64, 1..10),
        ) {
            let frames: Vec<Vec<u8>> = msgs.iter().map(frame).collect();
            let mut line: Vec<u8> = frames.concat();
            // Damage only the first half of the stream, so the rest must come through.
            let half: usize = frames[..frames.len() / 2].iter().map(Vec::len).sum::<usize>().max(1);
            let mut last_damaged = 0;
            for (at, bit) in &flips {
                let i = at.index(half);
                line[i] ^= 1 << bit;
                last_damaged = last_damaged.max(i);
            }
            let (got, _) = decode_all(&line, &chunks);
            let good: Vec<DeviceMsg> = got.into_iter().filter_map(Result::ok).collect();
            // Every message decoded is one that was sent, in order.
            let mut sent = msgs.iter();
            for g in &good {
                prop_assert!(sent.any(|m| m == g), "decoded a message never sent: {:?}", g);
            }
            // Every frame that starts after the next delimiter following the damage decodes.
            let mut start = 0;
            let resync = line[last_damaged..].iter().position(|b| *b == 0).map(|p| last_damaged + p + 1).unwrap_or(line.len());
            for (f, m) in frames.iter().zip(&msgs) {
                if start >= resync {
                    prop_assert!(good.contains(m), "lost an undamaged frame after resync");
                }
                start += f.len();
            }
        }
    }
}
