//! Reading a recorded data file (CSV): which columns hold the time, the value and the label,
//! how timestamps are written, and what to do with bad rows.
//!
//! * A header row is required. Columns are chosen by name (`--time-col`, `--value-col`,
//!   `--label-col`) or guessed when unambiguous: time from `timestamp`, `time`, `datetime`,
//!   `date`, `ts`; value from `value`, `val`, `y`, `reading`, or the only other numeric column;
//!   label from `label`, `is_anomaly`, `anomaly`, `labels`.
//! * Timestamps: RFC 3339 (`2026-11-24T10:00:00.5Z`, offsets allowed), `YYYY-MM-DD HH:MM:SS`
//!   (with optional fraction, taken as UTC), or epoch seconds or milliseconds (numbers; above
//!   10¹¹ they are milliseconds).
//! * A UTF-8 byte-order mark and CRLF line ends are accepted.
//! * Bad rows (a number that does not parse, a missing field, a timestamp going backwards) are
//!   reported with their line number and skipped, and counted; with `strict` the first one is
//!   an error. `NaN` and numbers too large for f64 are valid rows whose value the detector
//!   reports as invalid.

use std::path::Path;

/// Which columns to use; `None` means guess.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// Timestamp column.
    pub time: Option<String>,
    /// Value column.
    pub value: Option<String>,
    /// Label column (0/1), optional.
    pub label: Option<String>,
}

/// A problem that stops reading the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CSV is malformed at the byte level.
    #[error("{path}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No header row.
    #[error("{0} is empty: a header row naming the columns is needed")]
    Empty(String),
    /// A named column is not in the header.
    #[error("{path}: no column named '{name}' (the columns are: {columns})")]
    NoSuchColumn {
        /// The file.
        path: String,
        /// The name asked for.
        name: String,
        /// The header.
        columns: String,
    },
    /// A column could not be guessed.
    #[error("{path}: cannot tell which column is the {what} (columns: {columns}); pass --{flag}")]
    Ambiguous {
        /// The file.
        path: String,
        /// time or value.
        what: &'static str,
        /// The flag that settles it.
        flag: &'static str,
        /// The header.
        columns: String,
    },
    /// A bad row under `--strict`.
    #[error("{path}, line {line}: {problem} (without --strict, bad rows are skipped and counted)")]
    BadRow {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        problem: String,
    },
}

/// One good row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Line number in the file (1 is the header).
    pub line: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The value (may be NaN or infinite: the detector reports it invalid).
    pub value: f64,
    /// The label, when the file has a label column.
    pub label: Option<bool>,
}

/// A skipped row.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub problem: String,
}

/// The chosen columns' positions and names.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Header names.
    pub header: Vec<String>,
    /// Index of the time column.
    pub time: usize,
    /// Index of the value column.
    pub value: usize,
    /// Index of the label column.
    pub label: Option<usize>,
}

fn find(header: &[String], name: &str, path: &str) -> Result<usize, DatasetError> {
    header
        .iter()
        .position(|h| h == name)
        .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
        .ok_or_else(|| DatasetError::NoSuchColumn {
            path: path.into(),
            name: name.into(),
            columns: header.join(", "),
        })
}

fn guess(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.trim().eq_ignore_ascii_case(n)))
}

impl Layout {
    /// Choose columns from the header (and the first data row, for guessing the value).
    pub fn choose(
        header: Vec<String>,
        first: Option<&csv::ByteRecord>,
        cols: &Columns,
        path: &str,
    ) -> Result<Layout, DatasetError> {
        let columns = header.join(", ");
        let time = match &cols.time {
            Some(n) => find(&header, n, path)?,
            None => guess(&header, &["timestamp", "time", "datetime", "date", "ts"]).ok_or(
                DatasetError::Ambiguous {
                    path: path.into(),
                    what: "time",
                    flag: "time-col",
                    columns: columns.clone(),
                },
            )?,
        };
        let label = match &cols.label {
            Some(n) => Some(find(&header, n, path)?),
            None => guess(&header, &["label", "is_anomaly", "anomaly", "labels"]),
        };
        let value = match &cols.value {
            Some(n) => find(&header, n, path)?,
            None => match guess(&header, &["value", "val", "y", "reading"]) {
                Some(i) => i,
                None => {
                    let numeric: Vec<usize> = (0..header.len())
                        .filter(|&i| i != time && Some(i) != label)
                        .filter(|&i| {
                            first
                                .and_then(|r| r.get(i))
                                .and_then(|f| std::str::from_utf8(f).ok())
                                .is_some_and(|f| f.trim().parse::<f64>().is_ok())
                        })
                        .collect();
                    match numeric[..] {
                        [i] => i,
                        _ => {
                            return Err(DatasetError::Ambiguous {
                                path: path.into(),
                                what: "value",
                                flag: "value-col",
                                columns,
                            });
                        }
                    }
                }
            },
        };
        Ok(Layout {
            header,
            time,
            value,
            label,
        })
    }
}

/// Days from 1970-01-01 to the civil date `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64))
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]` without allocation; `None` for anything else (including
/// offsets, which [`parse_time`] hands to chrono).
fn fast_datetime(s: &[u8]) -> Option<i64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || !(s[10] == b'T' || s[10] == b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, sec) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0;
    if let [b'.', frac @ ..] = rest {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut f = digits(&frac[..n.min(3)])?;
        for _ in n.min(3)..3 {
            f *= 10;
        }
        ms = f;
        rest = &frac[n..];
    }
    if !(rest.is_empty() || rest == b"Z") {
        return None;
    }
    Some(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

/// The median step between the first (up to 1,000) timestamps, in ms: the sampling interval
/// a seasonal period given as a duration is converted with. `None` with fewer than two
/// timestamps or no positive step.
pub fn median_interval(times_ms: &[i64]) -> Option<f64> {
    let mut steps: Vec<i64> = times_ms
        .windows(2)
        .take(1000)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|d| *d > 0)
        .collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    Some(steps[steps.len() / 2] as f64)
}

/// Parse one timestamp into ms since the epoch.
pub fn parse_time(field: &str) -> Option<i64> {
    let f = field.trim();
    if let Some(ms) = fast_datetime(f.as_bytes()) {
        return Some(ms);
    }
    if let Ok(n) = f.parse::<f64>() {
        if !n.is_finite() {
            return None;
        }
        return Some(if n.abs() >= 1e11 {
            n as i64
        } else {
            (n * 1000.0).round() as i64
        });
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(f) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(f, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

fn parse_label(field: &str) -> Option<bool> {
    match field.trim() {
        "1" | "1.0" | "true" | "TRUE" | "True" => Some(true),
        "0" | "0.0" | "false" | "FALSE" | "False" | "" => Some(false),
        _ => None,
    }
}

/// Reads a data file row by row.
pub struct Dataset {
    reader: csv::Reader<std::io::BufReader<std::fs::File>>,
    /// The chosen columns.
    pub layout: Layout,
    path: String,
    strict: bool,
    record: csv::ByteRecord,
    pending: Option<csv::ByteRecord>,
    last_time: Option<i64>,
    /// Rows skipped so far (all of them counted, the first 1000 kept for the report).
    pub bad: Vec<BadRow>,
    /// Bad rows in all.
    pub bad_count: u64,
    /// Good rows so far.
    pub rows: u64,
}

const KEEP_BAD: usize = 1000;

impl Dataset {
    /// Open `path` and choose its columns.
    pub fn open(path: &Path, cols: &Columns, strict: bool) -> Result<Dataset, DatasetError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
            path: name.clone(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| DatasetError::Csv {
                path: name.clone(),
                message: e.to_string(),
            })?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(DatasetError::Empty(name));
        }
        let mut first = csv::ByteRecord::new();
        let has_first = reader
            .read_byte_record(&mut first)
            .map_err(|e| DatasetError::Csv {
                path: name.clone(),
                message: e.to_string(),
            })?;
        let layout = Layout::choose(header, has_first.then_some(&first), cols, &name)?;
        Ok(Dataset {
            reader,
            layout,
            path: name,
            strict,
            record: csv::ByteRecord::new(),
            pending: has_first.then_some(first),
            last_time: None,
            bad: Vec::new(),
            bad_count: 0,
            rows: 0,
        })
    }

    /// Bytes of the file read so far.
    pub fn byte_position(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The fields of the row last returned by [`Dataset::next_record`].
    pub fn fields(&self) -> &csv::ByteRecord {
        &self.record
    }

    fn skip(&mut self, line: u64, problem: String) -> Result<(), DatasetError> {
        if self.strict {
            return Err(DatasetError::BadRow {
                path: self.path.clone(),
                line,
                problem,
            });
        }
        self.bad_count += 1;
        if self.bad.len() < KEEP_BAD {
            self.bad.push(BadRow { line, problem });
        }
        Ok(())
    }

    /// The next good row, skipping (and counting) bad ones; `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, DatasetError> {
        loop {
            if let Some(first) = self.pending.take() {
                self.record = first;
            } else {
                match self.reader.read_byte_record(&mut self.record) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                            self.skip(line, "not valid UTF-8".into())?;
                            continue;
                        }
                        return Err(DatasetError::Csv {
                            path: self.path.clone(),
                            message: e.to_string(),
                        });
                    }
                }
            }
            let line = self.record.position().map_or(0, |p| p.line());
            let field = |i: usize| self.record.get(i).and_then(|f| std::str::from_utf8(f).ok());
            let l = &self.layout;
            let (Some(t), Some(v)) = (field(l.time), field(l.value)) else {
                let missing = if field(l.time).is_none() {
                    &l.header[l.time]
                } else {
                    &l.header[l.value]
                };
                let problem = format!("missing field '{missing}'");
                self.skip(line, problem)?;
                continue;
            };
            let Some(time_ms) = parse_time(t) else {
                let problem = format!("'{t}' is not a timestamp");
                self.skip(line, problem)?;
                continue;
            };
            let value = match v.trim().parse::<f64>() {
                Ok(v) => v,
                Err(_) => {
                    let problem = format!("'{v}' is not a number");
                    self.skip(line, problem)?;
                    continue;
                }
            };
            let label = match l.label {
                Some(i) => match field(i).map(parse_label) {
                    Some(Some(b)) => Some(b),
                    _ => {
                        let problem = format!("label '{}' is not 0 or 1", field(i).unwrap_or(""));
                        self.skip(line, problem)?;
                        continue;
                    }
                },
                None => None,
            };
            if let Some(last) = self.last_time
                && time_ms < last
            {
                self.skip(line, format!("timestamp '{t}' goes backwards"))?;
                continue;
            }
            self.last_time = Some(time_ms);
            self.rows += 1;
            return Ok(Some(Record {
                line,
                time_ms,
                value,
                label,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_accepted_form() {
        let base = 1_795_507_200_000; // 2026-11-24T08:00:00Z
        assert_eq!(parse_time("2026-11-24T08:00:00Z"), Some(base));
        assert_eq!(parse_time("2026-11-24 08:00:00"), Some(base));
        assert_eq!(parse_time("2026-11-24 08:00:00.25"), Some(base + 250));
        assert_eq!(parse_time("2026-11-24T09:00:00+01:00"), Some(base));
        assert_eq!(parse_time("1795507200"), Some(base));
        assert_eq!(parse_time("1795507200.5"), Some(base + 500));
        assert_eq!(parse_time("1795507200000"), Some(base));
        assert_eq!(parse_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_time("2000-02-29 00:00:00"), Some(951_782_400_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01 00:00:00",
            "2026-11-24 25:00:00",
            "NaN",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        for s in [
            "2026-11-24T08:00:00.123Z",
            "1999-12-31 23:59:59",
            "2024-02-29 12:34:56.7",
        ] {
            let chrono = chrono::NaiveDateTime::parse_from_str(
                &s.replace('T', " ").replace('Z', ""),
                "%Y-%m-%d %H:%M:%S%.f",
            )
            .unwrap()
            .and_utc()
            .timestamp_millis();
            assert_eq!(fast_datetime(s.as_bytes()), Some(chrono), "{s}");
        }
    }
}
