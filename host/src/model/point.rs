//! One judged point, in the one shape every consumer reads: [`Point`] in memory, [`Points`] as
//! columns (`{"t": [...], "value": [...], ...}`, uPlot's own layout) for the WebSocket, the REST
//! API and MQTT alike, and [`Point::FIELDS`] with [`Point::each`] and [`Point::from_fields`],
//! from which the store derives its columns, binds and reads. All come from one field list
//! below, so a field cannot be added to one and forgotten in another; the CSV row ([`Row`]) is
//! made from a `Point` too.
//!
//! A point keeps its values as the device sent them (a flat window's z is ±∞). Only JSON, which
//! has no infinity, carries ±∞ as ±1e30 (and NaN as `null`).

use serde::Serialize;
use zscope_core::wire::{Flags, Sample};

/// What a column holds where JSON has `null`: JSON has no NaN, so a value that was not sent
/// (a batched sample's z and score) goes out as `null` and comes back as NaN.
trait Missing: Sized {
    const MISSING: Self;
}

impl Missing for f32 {
    const MISSING: Self = f32::NAN;
}

impl Missing for f64 {
    const MISSING: Self = f64::NAN;
}

macro_rules! missing_is_zero {
    ($($t:ty),*) => { $( impl Missing for $t { const MISSING: Self = 0; } )* };
}
missing_is_zero!(u8, u32, u64);

/// How a field goes into JSON: an infinite float as ±1e30 (JSON has none; a page reads ±1e30 as
/// ±∞), everything else as it is.
trait Json: Copy + Serialize {
    /// The value JSON carries.
    fn json(self) -> Self {
        self
    }
}

impl Json for f32 {
    fn json(self) -> Self {
        if self.is_infinite() {
            self.clamp(-1e30, 1e30)
        } else {
            self
        }
    }
}

impl Json for f64 {
    fn json(self) -> Self {
        if self.is_infinite() {
            self.clamp(-1e30, 1e30)
        } else {
            self
        }
    }
}

impl Json for u8 {}
impl Json for u32 {}
impl Json for u64 {}

/// One field of a point in JSON.
fn json_value<S: serde::Serializer, T: Json>(v: &T, serializer: S) -> Result<S::Ok, S::Error> {
    v.json().serialize(serializer)
}

/// One column of points in JSON.
fn json_column<S: serde::Serializer, T: Json>(v: &[T], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(v.iter().map(|x| x.json()))
}

/// A field's value, as a consumer that stores fields by kind (the store) reads and writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    /// A double.
    F64(f64),
    /// A float.
    F32(f32),
    /// An unsigned integer (u8, u32 or u64).
    U64(u64),
}

/// The kind of a field: a float (stored as a real, NaN as missing) or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `f32` or `f64`.
    Real,
    /// `u8`, `u32` or `u64`.
    Integer,
}

/// A field type of the schema.
trait FieldType: Copy {
    const KIND: Kind;
    fn field(self) -> Field;
    fn from_field(f: Field) -> Self;
}

impl FieldType for f64 {
    const KIND: Kind = Kind::Real;
    fn field(self) -> Field {
        Field::F64(self)
    }
    fn from_field(f: Field) -> Self {
        match f {
            Field::F64(v) => v,
            Field::F32(v) => f64::from(v),
            Field::U64(v) => v as f64,
        }
    }
}

impl FieldType for f32 {
    const KIND: Kind = Kind::Real;
    fn field(self) -> Field {
        Field::F32(self)
    }
    fn from_field(f: Field) -> Self {
        match f {
            Field::F64(v) => v as f32,
            Field::F32(v) => v,
            Field::U64(v) => v as f32,
        }
    }
}

macro_rules! integer_field {
    ($($t:ty),*) => { $(
        impl FieldType for $t {
            const KIND: Kind = Kind::Integer;
            fn field(self) -> Field {
                Field::U64(u64::from(self))
            }
            fn from_field(f: Field) -> Self {
                match f {
                    Field::U64(v) => <$t>::try_from(v).unwrap_or(<$t>::MAX),
                    Field::F64(v) => v as $t,
                    Field::F32(v) => v as $t,
                }
            }
        }
    )* };
}
integer_field!(u8, u32, u64);

/// A column read back from JSON, `null` as [`Missing::MISSING`].
fn column<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Missing,
{
    let values: Vec<Option<T>> = serde::Deserialize::deserialize(deserializer)?;
    Ok(values
        .into_iter()
        .map(|v| v.unwrap_or(T::MISSING))
        .collect())
}

macro_rules! schema {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ),* $(,)?) => {
        /// One judged point, as the daemon keeps it.
        #[derive(Debug, Clone, Copy, PartialEq, Serialize)]
        pub struct Point {
            $( $(#[$doc])* #[serde(serialize_with = "json_value")] pub $field: $ty, )*
        }

        /// Points as columns, one array per field of [`Point`], all the same length.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
        pub struct Points {
            $(
                $(#[$doc])*
                #[serde(serialize_with = "json_column", deserialize_with = "column")]
                pub $field: Vec<$ty>,
            )*
        }

        impl Point {
            /// Every field's name and kind, in order.
            pub const FIELDS: &'static [(&'static str, Kind)] =
                &[$( (stringify!($field), <$ty as FieldType>::KIND) ),*];

            /// Every field's value, in the order of [`Point::FIELDS`].
            pub fn each(&self, mut f: impl FnMut(Field)) {
                $( f(self.$field.field()); )*
            }

            /// A point from its fields, `next` giving each in the order of [`Point::FIELDS`]
            /// (told its kind).
            pub fn from_fields(mut next: impl FnMut(Kind) -> Field) -> Point {
                Point { $( $field: <$ty as FieldType>::from_field(next(<$ty as FieldType>::KIND)), )* }
            }
        }

        impl Points {
            /// Room for `n` points in every column.
            pub fn with_capacity(n: usize) -> Self {
                Points { $( $field: Vec::with_capacity(n), )* }
            }

            /// Append one point to every column.
            pub fn push(&mut self, p: &Point) {
                $( self.$field.push(p.$field); )*
            }

            /// How many points the columns hold (the shortest column's length, should a
            /// message from elsewhere have given them different lengths).
            pub fn len(&self) -> usize {
                [$( self.$field.len() ),*].into_iter().min().unwrap_or(0)
            }

            /// Whether there are no points.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Point `i`, if the columns hold it.
            pub fn get(&self, i: usize) -> Option<Point> {
                Some(Point { $( $field: *self.$field.get(i)?, )* })
            }

            /// Every point, in order.
            pub fn iter(&self) -> impl Iterator<Item = Point> + '_ {
                (0..self.len()).filter_map(|i| self.get(i))
            }

            /// The names of the columns, in order.
            pub const COLUMNS: &'static [&'static str] = &[$( stringify!($field) ),*];
        }
    };
}

schema! {
    /// Chart time: ms since the Unix epoch, from the device's clock anchored to the host's.
    t: f64,
    /// Device sequence number.
    seq: u64,
    /// Device time, ms since boot.
    device_time_ms: u64,
    /// The value.
    value: f32,
    /// The baseline's mean (or prediction) before it.
    mean: f32,
    /// The baseline's std before it.
    std: f32,
    /// Z-score (±∞ on a flat window; ±1e30 in JSON).
    z: f32,
    /// The detector's own score in [0, 1], as the device sent it.
    score: f32,
    /// Threshold of the config that judged it.
    threshold: f32,
    /// Window of that config.
    window: u32,
    /// Version of that config.
    config_version: u32,
    /// Flag bits (see `zscope_core::wire::Flags`).
    flags: u8,
    /// Frames lost just before this one (a gap in sequence numbers).
    lost_before: u64,
}

impl Point {
    /// Whether the detector flagged it.
    pub fn is_anomaly(&self) -> bool {
        Flags(self.flags).contains(Flags::ANOMALY)
    }

    /// Why the detector flagged it, in words: `beyond band` or `new level`; for a point it
    /// did not judge, why not: `learning` (still learning the stream) or `invalid value`
    /// (NaN, ±∞); empty for a point judged normal.
    pub fn reason(&self) -> &'static str {
        let flags = Flags(self.flags);
        match (self.is_anomaly(), flags.contains(Flags::NOVEL)) {
            (true, false) => "beyond band",
            (true, true) => "new level",
            (false, _) if flags.contains(Flags::INVALID) => "invalid value",
            (false, _) if flags.contains(Flags::WARMING_UP) => "learning",
            (false, _) => "",
        }
    }

    /// Whether the source injected an anomaly here (meaningful when it has ground truth).
    pub fn is_truth(&self) -> bool {
        Flags(self.flags).contains(Flags::TRUTH)
    }

    /// A point from a sample frame, at chart time `t`, judged by `threshold` and `window`.
    pub fn from_sample(s: &Sample, t: f64, threshold: f32, window: u32, lost_before: u64) -> Self {
        Point {
            t,
            seq: s.seq,
            device_time_ms: s.time_ms,
            value: s.value,
            mean: s.mean,
            std: s.std,
            z: s.z,
            score: s.score,
            threshold,
            window,
            config_version: s.config_version,
            flags: s.flags.0,
            lost_before,
        }
    }
}

impl<'a> FromIterator<&'a Point> for Points {
    fn from_iter<I: IntoIterator<Item = &'a Point>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut points = Points::with_capacity(iter.size_hint().0);
        for p in iter {
            points.push(p);
        }
        points
    }
}

/// One logged point: its fields, in order, are the file's columns (see [`header`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// Host time of arrival, RFC 3339 UTC with milliseconds.
    pub host_time: String,
    /// Device sequence number.
    pub seq: u64,
    /// Device time, ms since boot.
    pub device_time_ms: u64,
    /// The value.
    pub value: f32,
    /// Window mean before it.
    pub mean: f32,
    /// Window std before it.
    pub std: f32,
    /// Z-score.
    pub z: f32,
    /// The detector's own score in [0, 1].
    pub score: f32,
    /// Threshold of the config that judged it.
    pub threshold: f32,
    /// Window of that config.
    pub window: u32,
    /// Version of that config.
    pub config_version: u32,
    /// 1 if flagged.
    pub anomaly: u8,
    /// Why it was flagged, in words: `beyond band` (|z| above the threshold) or `new level`
    /// (the adaptive detector's novelty: a level the stream had never been at); empty when not
    /// flagged.
    pub reason: &'static str,
    /// 1 if injected, 0 if not, empty when the source has no ground truth.
    pub truth: Option<u8>,
    /// Frames lost just before this one (a gap in sequence numbers).
    pub lost_before: u64,
    /// What the device judged: `simulator`, `temperature`, `adc:PA0`, `external`; empty for
    /// a device that does not say.
    pub source: String,
    /// The value's unit: `°C`, `V`, or empty.
    pub unit: &'static str,
    /// The detector that judged it: `adaptive`, `zscore` or `seasonal` (the config behind
    /// `config_version`; empty for a device not yet identified).
    pub detector: &'static str,
}

impl Row {
    /// The row for `point`, which arrived at `host_ms` (ms since the Unix epoch); `truth` when
    /// the source has ground truth.
    pub fn new(point: &Point, host_ms: i64, truth: bool) -> Row {
        Row::judged(
            point,
            host_ms,
            truth,
            None,
            zscope_core::source::Unit::None,
            None,
        )
    }

    /// [`Row::new`] with the source the device judged, its unit and the detector.
    pub fn judged(
        point: &Point,
        host_ms: i64,
        truth: bool,
        source: Option<zscope_core::source::Source>,
        unit: zscope_core::source::Unit,
        detector: Option<super::detector::Method>,
    ) -> Row {
        let host_time = chrono::DateTime::from_timestamp_millis(host_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Row {
            host_time,
            seq: point.seq,
            device_time_ms: point.device_time_ms,
            value: point.value,
            mean: point.mean,
            std: point.std,
            z: point.z,
            score: point.score,
            threshold: point.threshold,
            window: point.window,
            config_version: point.config_version,
            anomaly: point.is_anomaly() as u8,
            reason: point.reason(),
            truth: truth.then_some(point.is_truth() as u8),
            lost_before: point.lost_before,
            source: source.map(|s| s.to_string()).unwrap_or_default(),
            unit: unit.symbol(),
            detector: detector.map_or("", super::detector::Method::name),
        }
    }
}

/// The header line, derived from [`Row`]'s fields.
pub fn header() -> String {
    let line = header_line();
    String::from_utf8_lossy(&line).trim_end().to_string()
}

/// The header line with its newline, as `csv` writes it before a first row.
pub fn header_line() -> Vec<u8> {
    // csv writes a struct's field names as the header before its first row: keep that line.
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.serialize(Row::default());
    let mut bytes = w.into_inner().unwrap_or_default();
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| i + 1);
    bytes.truncate(end);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_not_sent_go_as_null_and_come_back_as_nan() {
        let mut points = Points::default();
        let mut p = Point::from_sample(
            &Sample {
                seq: 1,
                time_ms: 2,
                value: 0.5,
                mean: 0.25,
                std: 0.125,
                z: f32::NAN,
                score: f32::NAN,
                flags: Flags::empty(),
                config_version: 1,
            },
            10.0,
            3.0,
            64,
            0,
        );
        points.push(&p);
        let json = serde_json::to_string(&points).unwrap();
        assert!(
            json.contains(r#""z":[null]"#) && json.contains(r#""score":[null]"#),
            "{json}"
        );
        let back: Points = serde_json::from_str(&json).unwrap();
        assert!(back.z[0].is_nan() && back.score[0].is_nan());
        (p.z, p.score) = (back.z[0], back.score[0]);
        let mut again = Points::default();
        again.push(&p);
        assert_eq!(serde_json::to_string(&again).unwrap(), json);
    }

    #[test]
    fn columns_are_named_by_field_and_keep_the_order() {
        let a = Point {
            t: 1.5,
            seq: 7,
            device_time_ms: 140,
            value: 0.5,
            mean: 0.25,
            std: 0.125,
            z: f32::INFINITY,
            score: 0.75,
            threshold: 3.0,
            window: 64,
            config_version: 2,
            flags: Flags::ANOMALY,
            lost_before: 3,
        };
        let b = Point { seq: 8, ..a };
        let json = serde_json::to_value([a, b].iter().collect::<Points>()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = Points::COLUMNS.to_vec();
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(json["seq"], serde_json::json!([7, 8]));
        assert_eq!(json["z"][0], serde_json::json!(1e30_f32));
        assert_eq!(json["lost_before"], serde_json::json!([3, 3]));
        assert!(a.is_anomaly() && !a.is_truth());
        // The point itself keeps ±∞; only JSON carries ±1e30.
        assert_eq!(a.z, f32::INFINITY);
        let one = serde_json::to_value(Point {
            z: f32::NEG_INFINITY,
            ..a
        })
        .unwrap();
        assert_eq!(one["z"], serde_json::json!(-1e30_f32));
        assert_eq!(Row::new(&a, 0, false).z, f32::INFINITY);
    }

    /// The store's view of the schema: every field, by name and kind, in order, and back.
    #[test]
    fn fields_go_out_and_come_back_in_order() {
        let a = Point {
            t: 1.5,
            seq: u64::MAX - 1,
            device_time_ms: 140,
            value: 0.5,
            mean: f32::NAN,
            std: 0.125,
            z: f32::NEG_INFINITY,
            score: 0.75,
            threshold: 3.0,
            window: 64,
            config_version: 2,
            flags: Flags::ANOMALY,
            lost_before: 3,
        };
        let mut fields = Vec::new();
        a.each(|f| fields.push(f));
        assert_eq!(fields.len(), Point::FIELDS.len());
        assert_eq!(Point::FIELDS.len(), Points::COLUMNS.len());
        for ((name, kind), column) in Point::FIELDS.iter().zip(Points::COLUMNS) {
            assert_eq!(name, column);
            assert_eq!(
                *kind == Kind::Real,
                ["t", "value", "mean", "std", "z", "score", "threshold"].contains(name),
                "{name}"
            );
        }
        let mut it = fields.into_iter();
        let back = Point::from_fields(|_| it.next().unwrap());
        assert!(back.mean.is_nan());
        assert_eq!(Point { mean: 0.0, ..back }, Point { mean: 0.0, ..a });
    }

    #[test]
    fn a_flag_says_why_in_words() {
        let p = |flags| Point {
            t: 0.0,
            seq: 0,
            device_time_ms: 0,
            value: 1.0,
            mean: 0.0,
            std: 0.1,
            z: 10.0,
            score: 0.6,
            threshold: 4.5,
            window: 64,
            config_version: 1,
            flags,
            lost_before: 0,
        };
        assert_eq!(p(0).reason(), "");
        assert_eq!(p(Flags::ANOMALY).reason(), "beyond band");
        assert_eq!(p(Flags::ANOMALY | Flags::NOVEL).reason(), "new level");
        assert_eq!(p(Flags::NOVEL).reason(), "", "no flag, no reason");
    }
}
