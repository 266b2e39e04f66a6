//! Compact sample frames: many judged samples in one frame, for rates a serial link cannot carry
//! one [`Sample`] frame (34 bytes) per sample at. A 115 200-baud line carries 11 520 bytes/s: 338
//! single frames a second, or 8 800 samples in full batches of the default simulated stream
//! (128 samples in 166 bytes).
//!
//! A [`Batch`] holds up to [`MAX_SAMPLES`] consecutive samples of one config version and one
//! schedule, in at most [`MAX_PAYLOAD`](crate::wire::MAX_PAYLOAD) bytes:
//!
//! * **values** are multiples of `2^scale`, sent as steps from the value before (the first from
//!   0), each a zigzag varint: a step of under 64 grid units costs one byte, under 8 192 two.
//!   The device judges the value *on the grid* ([`Batcher::quantise`]), and `k · 2^scale` is
//!   exact in `f32` on both sides, so the host gets exactly the value the detector judged;
//! * **times** follow from the device's schedule: sample `i` is at
//!   `time_ms + (phase + i · 1000) / rate_hz` (integer division, the device's own formula), or
//!   at `time_ms` for all when `rate_hz` is 0; sequence numbers run on from `seq`;
//! * **verdicts**: every sample has the batch's `flags`, except the **exceptions**: every
//!   anomaly, every invalid value, every sample whose flags differ from the batch's or whose
//!   value is off the grid travels with its own exact value, flags, mean, std, z and score;
//! * **the band** (mean and std before the sample) is sent once, the first plain sample's.
//!
//! So every sample's sequence number, time, value and flags arrive exactly: the host's verdicts
//! are the device's, bit for bit; so are the z and score of every anomaly. What a batch does not
//! carry is the z and score of a plain (unflagged) sample: [`Batch::samples`] gives those as NaN
//! ("not sent"), and the batch's band as their mean and std. A value the user needs exactly
//! can be scored again offline from the values (`zscope score`), which are exact.
//!
//! ```
//! use zscope_core::compact::{Batcher, Timing};
//! use zscope_core::{Detector, DetectorConfig};
//!
//! let mut batcher = Batcher::new(-8); // values on a grid of 1/256
//! let mut detector: Detector<f32, 64, 64> = Detector::new(DetectorConfig::with_window(32)).unwrap();
//! for seq in 0..10u64 {
//!     let value = batcher.quantise(0.1 * seq as f32);
//!     let verdict = detector.update(value);
//!     let at = Timing { time_ms: seq, rate_hz: 1000, phase: 0 };
//!     assert!(batcher.push(seq, at, &verdict, false, 1));
//! }
//! let batch = batcher.take().unwrap();
//! let samples: Vec<_> = batch.samples().collect();
//! assert_eq!(samples.len(), 10);
//! assert_eq!(samples[9].value, batcher.quantise(0.9));
//! assert_eq!(samples[9].time_ms, 9);
//! ```

use serde::{Deserialize, Serialize};

use crate::float::Float;
use crate::sample::{Flags, MAX_PAYLOAD, Sample};
use crate::verdict::Verdict;

/// Samples in one batch at most.
pub const MAX_SAMPLES: usize = 128;
/// Exceptions in one batch at most (a batch with this many closes).
pub const MAX_EXCEPTIONS: usize = 8;
/// The grid's exponent is kept within `±MAX_SCALE`, where `2^scale` and `2^-scale` are normal
/// `f32`s.
pub const MAX_SCALE: i8 = 64;
/// Largest grid value: `|k| ≤ 2^24`, so `k` is exact in `f32`.
const MAX_GRID: f32 = 16_777_216.0;

/// Bytes a batch's fixed fields take at most: variant 1, seq 10, time 10, rate 5, phase 5,
/// config version 5, scale 1, mean 4, std 4, flags 1, steps' length 2, exceptions' length 1.
const HEADER_BOUND: usize = 49;
/// Bytes one step takes at most (a zigzag varint of an `i32`).
const STEP_BOUND: usize = 5;
/// Bytes one exception takes: index 1, flags 1, five `f32`s.
const EXCEPTION_BYTES: usize = 22;

/// A sample the batch carries in full: an anomaly, an invalid value, flags other than the
/// batch's, or a value off the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exception {
    /// Its index in the batch.
    pub index: u8,
    /// Its flags.
    pub flags: Flags,
    /// The value judged.
    pub value: f32,
    /// Mean before it.
    pub mean: f32,
    /// Std before it.
    pub std: f32,
    /// Its Z-score.
    pub z: f32,
    /// The detector's score.
    pub score: f32,
}

/// Consecutive judged samples of one config version and schedule (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Sequence number of the first sample; the others follow one by one.
    pub seq: u64,
    /// Device time of the first sample, ms since boot.
    pub time_ms: u64,
    /// The schedule's rate: sample `i` is at `time_ms + (phase + i·1000) / rate_hz`; 0: every
    /// sample at `time_ms`.
    pub rate_hz: u32,
    /// Where the first sample falls in the schedule's millisecond (`< rate_hz`).
    pub phase: u32,
    /// Version of the detector config that judged them all.
    pub config_version: u32,
    /// Values are multiples of `2^scale` (`|scale| ≤ 64`).
    pub scale: i8,
    /// Mean before the first plain sample.
    pub mean: f32,
    /// Std before the first plain sample.
    pub std: f32,
    /// Flags of every sample that is not an exception.
    pub flags: Flags,
    /// Each sample's value minus the one before, in grid units (the first's from 0); 0 for an
    /// exception, whose value is its own.
    pub steps: heapless::Vec<i32, MAX_SAMPLES>,
    /// The samples sent in full, by increasing index.
    pub exceptions: heapless::Vec<Exception, MAX_EXCEPTIONS>,
}

/// Why a batch that passed the CRC cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchError {
    /// No samples.
    Empty,
    /// `phase` is not below a nonzero `rate_hz`.
    Phase,
    /// `scale` beyond `±MAX_SCALE`.
    Scale,
    /// An exception's index is past the samples or not above the one before.
    Exception,
}

/// `2^e` for `|e| ≤ 126`, exactly.
fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e) as u32) << 23)
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True when it holds no sample (never on the wire: such a batch is refused).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether its fields are consistent (the decoder refuses one that is not, as malformed).
    pub fn check(&self) -> Result<(), BatchError> {
        if self.steps.is_empty() {
            return Err(BatchError::Empty);
        }
        if self.rate_hz > 0 && self.phase >= self.rate_hz {
            return Err(BatchError::Phase);
        }
        if self.scale.unsigned_abs() > MAX_SCALE.unsigned_abs() {
            return Err(BatchError::Scale);
        }
        let mut next = 0usize;
        for e in &self.exceptions {
            let i = e.index as usize;
            if i < next || i >= self.steps.len() {
                return Err(BatchError::Exception);
            }
            next = i + 1;
        }
        Ok(())
    }

    /// Device time of sample `i`, by the schedule.
    pub fn time_of(&self, i: usize) -> u64 {
        if self.rate_hz == 0 {
            return self.time_ms;
        }
        let ms = (u64::from(self.phase) + i as u64 * 1000) / u64::from(self.rate_hz);
        self.time_ms.saturating_add(ms)
    }

    /// Its samples, in order (see the module docs for what a plain sample's z and score are).
    pub fn samples(&self) -> Samples<'_> {
        Samples {
            batch: self,
            next: 0,
            exception: 0,
            k: 0,
            step: pow2(i32::from(self.scale.clamp(-MAX_SCALE, MAX_SCALE))),
        }
    }
}

/// The samples of a [`Batch`], from [`Batch::samples`].
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    batch: &'a Batch,
    next: usize,
    exception: usize,
    k: i32,
    step: f32,
}

impl Iterator for Samples<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        let b = self.batch;
        let i = self.next;
        let step = *b.steps.get(i)?;
        self.next += 1;
        self.k = self.k.wrapping_add(step);
        let sample = Sample {
            seq: b.seq.wrapping_add(i as u64),
            time_ms: b.time_of(i),
            value: self.k as f32 * self.step,
            mean: b.mean,
            std: b.std,
            z: f32::NAN,
            score: f32::NAN,
            flags: b.flags,
            config_version: b.config_version,
        };
        match b.exceptions.get(self.exception) {
            Some(e) if usize::from(e.index) == i => {
                self.exception += 1;
                Some(Sample {
                    value: e.value,
                    mean: e.mean,
                    std: e.std,
                    z: e.z,
                    score: e.score,
                    flags: e.flags,
                    ..sample
                })
            }
            _ => Some(sample),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batch.steps.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Samples<'_> {}

/// When a sample was taken: its device time, and where it falls in the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Device time, ms since boot.
    pub time_ms: u64,
    /// The schedule's rate (0: samples made as fast as the link carries, stamped with the
    /// clock).
    pub rate_hz: u32,
    /// `(k · 1000) mod rate_hz` for the schedule's `k`-th sample (0 when `rate_hz` is 0).
    pub phase: u32,
}

/// Fills a [`Batch`] on the device, one judged sample at a time, and says when it is full.
///
/// A sample that does not continue the batch (a gap in sequence numbers, another config
/// version, another schedule) or that would not fit is refused: take the batch, then push it
/// again.
#[derive(Debug, Clone)]
pub struct Batcher {
    batch: Batch,
    /// Grid value of the last plain sample.
    k: i32,
    /// Payload bytes the steps and exceptions take at most.
    bytes: usize,
    /// Whether a plain sample has set the batch's flags and band.
    plain: bool,
}

impl Batcher {
    /// An empty batcher whose values go on a grid of `2^scale` (clamped to `±MAX_SCALE`).
    pub const fn new(scale: i8) -> Self {
        let scale = if scale > MAX_SCALE {
            MAX_SCALE
        } else if scale < -MAX_SCALE {
            -MAX_SCALE
        } else {
            scale
        };
        Batcher {
            batch: Batch {
                seq: 0,
                time_ms: 0,
                rate_hz: 0,
                phase: 0,
                config_version: 0,
                scale,
                mean: 0.0,
                std: 0.0,
                flags: Flags::empty(),
                steps: heapless::Vec::new(),
                exceptions: heapless::Vec::new(),
            },
            k: 0,
            bytes: 0,
            plain: false,
        }
    }

    /// The grid's exponent.
    pub fn scale(&self) -> i8 {
        self.batch.scale
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.batch.steps.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.batch.steps.is_empty()
    }

    /// `x` on the grid, when it is finite and within `±2^24` grid units.
    fn grid(&self, x: f32) -> Option<i32> {
        if !x.is_finite() {
            return None;
        }
        let k = libm::roundf(x * pow2(-i32::from(self.batch.scale)));
        (k.abs() <= MAX_GRID).then_some(k as i32)
    }

    /// The value the device should judge in place of `x`: the nearest grid value (exact, and
    /// what the host will rebuild), or `x` itself when it is not finite or too large for the
    /// grid (then it travels as an exception).
    pub fn quantise(&self, x: f32) -> f32 {
        match self.grid(x) {
            Some(k) => k as f32 * pow2(i32::from(self.batch.scale)),
            None => x,
        }
    }

    /// No room for another sample: take the batch.
    pub fn is_full(&self) -> bool {
        self.batch.steps.len() == MAX_SAMPLES
            || self.batch.exceptions.len() == MAX_EXCEPTIONS
            || HEADER_BOUND + self.bytes + STEP_BOUND + EXCEPTION_BYTES > MAX_PAYLOAD
    }

    fn continues(&self, seq: u64, at: Timing, config_version: u32) -> bool {
        let b = &self.batch;
        let n = b.steps.len();
        seq == b.seq.wrapping_add(n as u64)
            && config_version == b.config_version
            && at.rate_hz == b.rate_hz
            && at.time_ms == b.time_of(n)
            && (at.rate_hz == 0
                || u64::from(at.phase)
                    == (u64::from(b.phase) + n as u64 * 1000) % u64::from(b.rate_hz))
    }

    /// Add a judged sample. False when it does not continue the batch or the batch is full:
    /// take the batch, then push again (an empty batcher takes any sample).
    pub fn push<F: Float>(
        &mut self,
        seq: u64,
        at: Timing,
        verdict: &Verdict<F>,
        truth: bool,
        config_version: u32,
    ) -> bool {
        if self.is_empty() {
            // A fresh batcher (from `new` or `take`): only the header is this sample's.
            let b = &mut self.batch;
            b.seq = seq;
            b.time_ms = at.time_ms;
            b.rate_hz = at.rate_hz;
            b.phase = if at.rate_hz == 0 {
                0
            } else {
                at.phase % at.rate_hz
            };
            b.config_version = config_version;
        } else if self.is_full() || !self.continues(seq, at, config_version) {
            return false;
        }
        let flags = Flags::from_verdict(verdict, truth);
        let value = verdict.value.to_f32();
        // On the grid exactly: what the host rebuilds is this value.
        let grid = self.grid(value).filter(|&k| {
            (k as f32 * pow2(i32::from(self.batch.scale))).to_bits() == value.to_bits()
        });
        let flagged = flags.0 & (Flags::ANOMALY | Flags::INVALID) != 0;
        let step = match grid {
            Some(k) if !flagged && (!self.plain || flags == self.batch.flags) => {
                if !self.plain {
                    self.plain = true;
                    self.batch.flags = flags;
                    self.batch.mean = verdict.mean.to_f32();
                    self.batch.std = verdict.std.to_f32();
                }
                let step = k - self.k;
                self.k = k;
                step
            }
            _ => {
                let index = self.batch.steps.len() as u8;
                // Room was checked by `is_full` above.
                let _ = self.batch.exceptions.push(Exception {
                    index,
                    flags,
                    value,
                    mean: verdict.mean.to_f32(),
                    std: verdict.std.to_f32(),
                    z: verdict.z.to_f32(),
                    score: verdict.score.to_f32(),
                });
                self.bytes += EXCEPTION_BYTES;
                0
            }
        };
        let _ = self.batch.steps.push(step);
        self.bytes += varint_len(zigzag(step));
        true
    }

    /// The batch so far, leaving the batcher empty; `None` when it held nothing.
    pub fn take(&mut self) -> Option<Batch> {
        if self.is_empty() {
            return None;
        }
        let fresh = Batcher::new(self.batch.scale);
        Some(core::mem::replace(self, fresh).batch)
    }
}

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn varint_len(v: u32) -> usize {
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::detector::Class;
    use crate::wire::DeviceMsg;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn verdict(value: f32, class: Class) -> Verdict<f32> {
        Verdict {
            value,
            mean: 0.5,
            std: 0.25,
            z: (value - 0.5) / 0.25,
            score: 0.3,
            class,
            excluded: false,
            novel: false,
        }
    }

    fn at(time_ms: u64) -> Timing {
        Timing {
            time_ms,
            rate_hz: 1000,
            phase: 0,
        }
    }

    fn encoded_len(b: &Batch) -> usize {
        let mut buf = [0u8; 1024];
        postcard::to_slice(&DeviceMsg::Batch(b.clone()), &mut buf)
            .unwrap()
            .len()
    }

    #[test]
    fn grid_values_and_flags_come_back_exactly() {
        let mut b = Batcher::new(-8);
        let values = [0.1f32, 0.2, -3.7, 1e4, f32::NAN, 0.15, 5e9, 0.0];
        let mut sent = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let q = b.quantise(*v);
            let class = match i {
                2 => Class::Anomaly,
                4 => Class::Invalid,
                _ => Class::Normal,
            };
            let v = verdict(q, class);
            assert!(b.push(i as u64 + 7, at(i as u64), &v, i == 5, 3));
            sent.push((v, i == 5));
        }
        let batch = b.take().unwrap();
        assert!(b.take().is_none());
        batch.check().unwrap();
        // The anomaly, the NaN, the sample with truth (other flags), 5e9 (off the grid).
        let exceptions: Vec<u8> = batch.exceptions.iter().map(|e| e.index).collect();
        assert_eq!(exceptions, [2, 4, 5, 6]);
        for ((got, (v, truth)), i) in batch.samples().zip(&sent).zip(0u64..) {
            assert_eq!(got.seq, 7 + i);
            assert_eq!(got.time_ms, i);
            assert_eq!(got.value.to_bits(), v.value.to_bits(), "sample {i}");
            assert_eq!(got.flags, Flags::from_verdict(v, *truth));
            assert_eq!(got.config_version, 3);
            if batch.exceptions.iter().any(|e| u64::from(e.index) == i) {
                assert_eq!((got.mean, got.std, got.score), (0.5, 0.25, 0.3));
                assert_eq!(got.z.to_bits(), v.z.to_bits());
            } else {
                assert_eq!((got.mean, got.std), (0.5, 0.25));
                assert!(got.z.is_nan() && got.score.is_nan());
            }
        }
        assert_eq!(batch.samples().len(), values.len());
    }

    #[test]
    fn times_follow_the_device_schedule() {
        // 3 kHz from the schedule's sample 5: times 1, 2, 2, 2, 3, 3, 3, 4 ...
        let rate = 3000u32;
        let mut b = Batcher::new(0);
        for k in 5u64..40 {
            let t = k * 1000 / u64::from(rate);
            let timing = Timing {
                time_ms: t,
                rate_hz: rate,
                phase: (k * 1000 % u64::from(rate)) as u32,
            };
            assert!(b.push(k, timing, &verdict(1.0, Class::Normal), false, 1));
        }
        let batch = b.take().unwrap();
        for (s, k) in batch.samples().zip(5u64..) {
            assert_eq!(s.time_ms, k * 1000 / u64::from(rate));
        }
        // A sample off the schedule, a gap, another config, another rate: a new batch.
        let mut b = Batcher::new(0);
        assert!(b.push(0, at(0), &verdict(1.0, Class::Normal), false, 1));
        assert!(!b.push(1, at(5), &verdict(1.0, Class::Normal), false, 1));
        assert!(!b.push(2, at(2), &verdict(1.0, Class::Normal), false, 1));
        assert!(!b.push(1, at(1), &verdict(1.0, Class::Normal), false, 2));
        let other_rate = Timing {
            rate_hz: 500,
            ..at(1)
        };
        assert!(!b.push(1, other_rate, &verdict(1.0, Class::Normal), false, 1));
        assert!(b.push(1, at(1), &verdict(1.0, Class::Normal), false, 1));
        // At rate 0 every sample shares the batch's millisecond.
        let mut b = Batcher::new(0);
        let asap = |t| Timing {
            time_ms: t,
            rate_hz: 0,
            phase: 0,
        };
        assert!(b.push(0, asap(9), &verdict(1.0, Class::Normal), false, 1));
        assert!(b.push(1, asap(9), &verdict(1.0, Class::Normal), false, 1));
        assert!(!b.push(2, asap(10), &verdict(1.0, Class::Normal), false, 1));
    }

    #[test]
    fn a_full_batch_fits_the_payload_and_refuses_more() {
        // Worst case: steps of five bytes and as many exceptions as fit.
        let mut b = Batcher::new(-MAX_SCALE);
        let mut seq = u64::MAX - 1000;
        let timing = |s: u64| Timing {
            time_ms: u64::MAX - 2000 + (s - (u64::MAX - 1000)),
            rate_hz: 1000,
            phase: 0,
        };
        // Grid values alternating between -2^24 and 2^24: steps of 2^25, four bytes each.
        let edge = pow2(24 - i32::from(MAX_SCALE));
        while !b.is_full() {
            let class = if seq % 17 == 0 {
                Class::Anomaly
            } else {
                Class::Normal
            };
            let q = b.quantise(if seq % 2 == 0 { edge } else { -edge });
            assert!(b.push(seq, timing(seq), &verdict(q, class), false, u32::MAX));
            seq += 1;
        }
        assert!(!b.push(
            seq,
            timing(seq),
            &verdict(0.0, Class::Normal),
            false,
            u32::MAX
        ));
        let batch = b.take().unwrap();
        let n = encoded_len(&batch);
        assert!(n <= MAX_PAYLOAD, "{n} > {MAX_PAYLOAD}");
        // The default stream's batch (past the warm-up) holds 100 samples or more.
        let mut sim = crate::Simulator::new(crate::SimConfig::default()).unwrap();
        let mut d: crate::Detector<f32, 64, 64> =
            crate::Detector::new(crate::DetectorConfig::with_window(32)).unwrap();
        let mut b = Batcher::new(-8);
        for _ in 0..2000 {
            d.update(b.quantise(sim.next_sample().value));
        }
        let mut seq = 0;
        while b.push(
            seq,
            at(seq),
            &d.update(b.quantise(sim.next_sample().value)),
            false,
            1,
        ) {
            seq += 1;
        }
        let batch = b.take().unwrap();
        let n = encoded_len(&batch);
        assert!(n <= MAX_PAYLOAD, "{n}");
        std::eprintln!("default stream: {} samples in {n} bytes", batch.len());
        assert!(batch.len() >= 100, "{} samples in {n} bytes", batch.len());
    }

    #[test]
    fn inconsistent_batches_are_refused() {
        let mut b = Batcher::new(0);
        for i in 0..3 {
            let class = if i == 1 {
                Class::Anomaly
            } else {
                Class::Normal
            };
            b.push(i, at(i), &verdict(1.0, class), false, 1);
        }
        let good = b.take().unwrap();
        good.check().unwrap();
        let mut bad = good.clone();
        bad.steps.clear();
        assert_eq!(bad.check(), Err(BatchError::Empty));
        let mut bad = good.clone();
        bad.phase = 1000;
        assert_eq!(bad.check(), Err(BatchError::Phase));
        let mut bad = good.clone();
        bad.scale = 65;
        assert_eq!(bad.check(), Err(BatchError::Scale));
        let mut bad = good.clone();
        bad.exceptions[0].index = 3;
        assert_eq!(bad.check(), Err(BatchError::Exception));
        let mut bad = good;
        let e = bad.exceptions[0];
        bad.exceptions.push(e).unwrap();
        assert_eq!(bad.check(), Err(BatchError::Exception));
    }

    proptest! {
        /// Whatever the values and verdicts, every sample comes back with its exact value (as
        /// judged), time, sequence number and flags, and the batch fits its payload.
        #[test]
        fn batches_round_trip_exactly(
            scale in -MAX_SCALE..=MAX_SCALE,
            values in proptest::collection::vec(
                prop_oneof![
                    8 => -1e3f32..1e3,
                    1 => any::<f32>(),
                    1 => Just(f32::NAN),
                ],
                1..400,
            ),
            classes in proptest::collection::vec(0u8..4, 1..50),
            rate in prop_oneof![Just(0u32), 1u32..100_000],
            start in any::<u32>(),
        ) {
            let mut b = Batcher::new(scale);
            let mut sent = Vec::new();
            let mut got = Vec::new();
            for (i, x) in values.iter().enumerate() {
                let k = u64::from(start) + i as u64;
                let timing = if rate == 0 {
                    Timing { time_ms: k / 7, rate_hz: 0, phase: 0 }
                } else {
                    Timing {
                        time_ms: k * 1000 / u64::from(rate),
                        rate_hz: rate,
                        phase: (k * 1000 % u64::from(rate)) as u32,
                    }
                };
                let class = match classes[i % classes.len()] {
                    0 | 1 => Class::Normal,
                    2 => Class::Anomaly,
                    _ => Class::WarmingUp,
                };
                let q = b.quantise(*x);
                let class = if q.is_finite() { class } else { Class::Invalid };
                let v = verdict(q, class);
                if !b.push(k, timing, &v, false, 1) {
                    let batch = b.take().unwrap();
                    prop_assert!(encoded_len(&batch) <= MAX_PAYLOAD);
                    prop_assert!(batch.check().is_ok());
                    got.extend(batch.samples());
                    prop_assert!(b.push(k, timing, &v, false, 1));
                }
                sent.push((k, timing.time_ms, v));
            }
            if let Some(batch) = b.take() {
                prop_assert!(encoded_len(&batch) <= MAX_PAYLOAD);
                got.extend(batch.samples());
            }
            prop_assert_eq!(got.len(), sent.len());
            for (g, (k, t, v)) in got.iter().zip(&sent) {
                prop_assert_eq!(g.seq, *k);
                prop_assert_eq!(g.time_ms, *t);
                prop_assert_eq!(g.value.to_bits(), v.value.to_bits());
                prop_assert_eq!(g.flags, Flags::from_verdict(v, false));
                if g.flags.contains(Flags::ANOMALY) {
                    prop_assert_eq!(g.z.to_bits(), v.z.to_bits());
                    prop_assert_eq!(g.score, v.score);
                }
            }
        }
    }
}
