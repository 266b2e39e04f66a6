//! One judged sample as it crosses the wire ([`Sample`], its [`Flags`]) and the bound every
//! message keeps ([`MAX_PAYLOAD`]): what both the one-sample frame ([`crate::wire`]) and the
//! compact batch ([`crate::compact`]) carry, below both.

use serde::{Deserialize, Serialize};

use crate::float::Float;
use crate::verdict::Verdict;

/// Largest serialised message, in bytes, before the CRC and COBS.
pub const MAX_PAYLOAD: usize = 256;
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
    /// With [`ANOMALY`](Self::ANOMALY): the adaptive detector's novelty channel flagged it (a
    /// level never visited), not its band. A host that predates the bit ignores it; the other
    /// bits keep their meaning.
    pub const NOVEL: u8 = 1 << 5;

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
        use crate::verdict::Class;
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
        if verdict.novel && verdict.class == Class::Anomaly {
            bits |= Self::NOVEL;
        }
        Flags(bits)
    }
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
    /// The detector's anomaly score in [0, 1] (see [`Verdict::score`]).
    pub score: f32,
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
            score: verdict.score.to_f32(),
            flags: Flags::from_verdict(verdict, truth),
            config_version,
        }
    }
}
