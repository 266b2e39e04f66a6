//! Reading a recorded data file (CSV): which columns hold the time, the value and the label,
//! how timestamps are written, and what to do with bad rows.
//!
//! * A header row is required. Columns are chosen by name (`--time-col`, `--value-col`,
//!   `--label-col`) or guessed when unambiguous: time from `timestamp`, `time`, `datetime`,
//!   `date`, `ts`, `host_time` (zscope's own logs); value from `value`, `val`, `y`, `reading`,
//!   or the only other numeric column; label from `label`, `labels`, `truth` (zscope's logs),
//!   `is_anomaly`, `anomaly`, but never a detector's verdict: in a file that carries a
//!   detector's output (a `z`, `score` or `anomaly_score` column, as zscope's logs and scored
//!   files do), `anomaly` and `is_anomaly` are what was flagged, not ground truth. Every named
//!   column missing is reported at once.
//! * Timestamps: RFC 3339 (`2026-11-24T10:00:00.5Z`, offsets allowed), `YYYY-MM-DD HH:MM:SS`
//!   (with optional fraction, taken as UTC), or epoch seconds or milliseconds (numbers; above
//!   10¹¹ they are milliseconds).
//! * A UTF-8 byte-order mark and CRLF line ends are accepted. `-` reads standard input.
//! * Every data row comes out as one [`Row`], so a scored file has exactly one output row per
//!   input row. A row whose value is missing or not a number has no value (its verdict is
//!   empty); a timestamp that does not parse or goes backwards, and a label that is not 0/1,
//!   are kept as they are, since the detector does not use them. Each such problem is counted
//!   and reported with its line number; with `strict` the first one is an error. `NaN` and
//!   numbers too large for f64 are values the detector reports as invalid.

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
    #[error(
        "{path}: no column named {} (the columns are: {columns})",
        .names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    )]
    NoSuchColumn {
        /// The file.
        path: String,
        /// Every name asked for that is not there.
        names: Vec<String>,
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

/// One data row, good or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Line number in the file (1 is the header).
    pub line: u64,
    /// Milliseconds since the Unix epoch, when the timestamp parses.
    pub time_ms: Option<i64>,
    /// The value, when it parses (may be NaN or infinite: the detector reports it invalid).
    pub value: Option<f64>,
    /// The label, when the file has a label column and it reads 0 or 1.
    pub label: Option<bool>,
}

/// One row with a value, for readers that need a time for every value (eval, replay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Line number in the file (1 is the header).
    pub line: u64,
    /// Milliseconds since the Unix epoch (a row whose timestamp does not parse gets the one
    /// before it).
    pub time_ms: i64,
    /// The value (may be NaN or infinite: the detector reports it invalid).
    pub value: f64,
    /// The label, when the file has a label column.
    pub label: Option<bool>,
}

/// A problem with one row.
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

/// Column `name` (exactly, else ignoring case); a name not there is added to `missing`.
fn find(header: &[String], name: &str, missing: &mut Vec<String>) -> Option<usize> {
    let found = header
        .iter()
        .position(|h| h == name)
        .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)));
    if found.is_none() {
        missing.push(name.to_string());
    }
    found
}

/// Columns that hold a detector's output: a file with one of them was judged already, and
/// its verdict columns are not labels.
const DETECTOR_OUTPUT: &[&str] = &["z", "score", "anomaly_score"];

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
        let columns = list_columns(&header);
        // Every name given that is not there, said at once.
        let mut missing = Vec::new();
        let named: Vec<Option<usize>> = [&cols.time, &cols.value, &cols.label]
            .iter()
            .map(|n| n.as_deref().and_then(|n| find(&header, n, &mut missing)))
            .collect();
        if !missing.is_empty() {
            return Err(DatasetError::NoSuchColumn {
                path: path.into(),
                names: missing,
                columns,
            });
        }
        let time = match named[0] {
            Some(i) => i,
            None => guess(
                &header,
                &["timestamp", "time", "datetime", "date", "ts", "host_time"],
            )
            .ok_or(DatasetError::Ambiguous {
                path: path.into(),
                what: "time",
                flag: "time-col",
                columns: columns.clone(),
            })?,
        };
        let judged = guess(&header, DETECTOR_OUTPUT).is_some();
        let label = match named[2] {
            Some(i) => Some(i),
            None if judged => guess(&header, &["label", "labels", "truth"]),
            None => guess(
                &header,
                &["label", "labels", "truth", "is_anomaly", "anomaly"],
            ),
        };
        let value = match named[1] {
            Some(i) => i,
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

impl Layout {
    /// Which columns were taken, in words: `time 'host_time', value 'value', label 'truth'`.
    pub fn describe(&self) -> String {
        let name = |i: usize| clip(self.header.get(i).map_or("?", String::as_str));
        let label = match self.label {
            Some(i) => format!("label '{}'", name(i)),
            None => "no label".into(),
        };
        format!(
            "time '{}', value '{}', {label}",
            name(self.time),
            name(self.value)
        )
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
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(f, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    // A date alone: its midnight, UTC.
    chrono::NaiveDate::parse_from_str(f, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
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
    reader: csv::Reader<Box<dyn std::io::Read + Send>>,
    /// The chosen columns.
    pub layout: Layout,
    path: String,
    strict: bool,
    record: csv::ByteRecord,
    pending: Option<csv::ByteRecord>,
    last_time: Option<i64>,
    /// Problems so far (all of them counted, the first 1000 kept for the report).
    pub bad: Vec<BadRow>,
    /// Rows without a usable value (missing or not a number).
    pub bad_count: u64,
    /// Rows whose timestamp does not parse or goes backwards (kept, and judged).
    pub time_issues: u64,
    /// Rows whose label is not 0 or 1 (kept, without a label).
    pub label_issues: u64,
    /// Rows with more fields than the header (kept, their extra fields ignored).
    pub extra_fields: u64,
    /// Data rows so far.
    pub rows: u64,
}

const KEEP_BAD: usize = 1000;

impl Dataset {
    /// Open `path` (`-`: standard input) and choose its columns.
    pub fn open(path: &Path, cols: &Columns, strict: bool) -> Result<Dataset, DatasetError> {
        let stdin = path.as_os_str() == "-";
        let name = if stdin {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        let input: Box<dyn std::io::Read + Send> = if stdin {
            Box::new(LineLimit::new(std::io::stdin()))
        } else {
            Box::new(LineLimit::new(std::fs::File::open(path).map_err(
                |source| DatasetError::Io {
                    path: name.clone(),
                    source,
                },
            )?))
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(1 << 20)
            .from_reader(input);
        let header = reader.byte_headers().map_err(|e| DatasetError::Csv {
            path: name.clone(),
            message: e.to_string(),
        })?;
        if too_long(header) {
            return Err(DatasetError::Csv {
                path: name,
                message: format!(
                    "the header line is longer than {} MiB: is this a CSV file?",
                    MAX_LINE >> 20
                ),
            });
        }
        let header: Vec<String> = header
            .iter()
            .map(String::from_utf8_lossy)
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
            time_issues: 0,
            label_issues: 0,
            extra_fields: 0,
            rows: 0,
        })
    }

    /// The name the file is reported by (`<stdin>` for standard input).
    pub fn name(&self) -> &str {
        &self.path
    }

    /// Bytes of the file read so far.
    pub fn byte_position(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The fields of the row last returned by [`Dataset::next_record`].
    pub fn fields(&self) -> &csv::ByteRecord {
        &self.record
    }

    /// The next data row, whatever is wrong with it (counted and reported); `None` at the
    /// end. With `strict`, the first problem is an error instead.
    pub fn next_row(&mut self) -> Result<Option<Row>, DatasetError> {
        if let Some(first) = self.pending.take() {
            self.record = first;
        } else {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                        // The csv reader hands back no fields for such a row.
                        self.rows += 1;
                        self.bad_count += 1;
                        self.note(line, "not valid UTF-8".into())?;
                        return Ok(Some(Row {
                            line,
                            time_ms: None,
                            value: None,
                            label: None,
                        }));
                    }
                    return Err(DatasetError::Csv {
                        path: self.path.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        self.rows += 1;
        let line = self.record.position().map_or(0, |p| p.line());
        if too_long(&self.record) {
            // Its fields are not kept: a scored copy gets an empty row in its place.
            self.record.clear();
            self.bad_count += 1;
            self.note(line, format!("longer than {} MiB: skipped", MAX_LINE >> 20))?;
            return Ok(Some(Row {
                line,
                time_ms: None,
                value: None,
                label: None,
            }));
        }
        let field = |i: usize| {
            self.record
                .get(i)
                .map(|f| std::str::from_utf8(f).map_err(|_| ()))
        };
        let l = &self.layout;
        let (time_name, value_name) = (l.header[l.time].clone(), l.header[l.value].clone());
        let label_index = l.label;
        let time_field = field(l.time);
        let value_field = field(l.value);
        let label_field = label_index.map(field);

        let mut problems: Vec<String> = Vec::new();
        let value = present(value_field, &value_name, &mut problems).and_then(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| problems.push(format!("'{}' is not a number", clip(v))))
                .ok()
        });
        let value_bad = value.is_none();
        let time_ms = present(time_field, &time_name, &mut problems).and_then(|t| {
            let Some(ms) = parse_time(t) else {
                problems.push(format!("'{}' is not a timestamp", clip(t)));
                return None;
            };
            if let Some(last) = self.last_time
                && ms < last
            {
                problems.push(format!("timestamp '{}' goes backwards", clip(t)));
            } else {
                self.last_time = Some(ms);
            }
            Some(ms)
        });
        let time_bad = problems.len() > value_bad as usize;
        let label = match label_field {
            None => None,
            Some(f) => match f.and_then(Result::ok).map(parse_label) {
                Some(Some(b)) => Some(b),
                _ => {
                    self.label_issues += 1;
                    let text = f.and_then(Result::ok).unwrap_or("");
                    problems.push(format!("label '{}' is not 0 or 1", clip(text)));
                    None
                }
            },
        };
        let (fields, columns) = (self.record.len(), self.layout.header.len());
        if fields > columns {
            // Its value is still read from its column; the extra fields are reported.
            self.extra_fields += 1;
            problems.push(format!("{fields} fields where the header has {columns}"));
        }
        self.bad_count += value_bad as u64;
        self.time_issues += time_bad as u64;
        if !problems.is_empty() {
            self.note(line, problems.join("; "))?;
        }
        Ok(Some(Row {
            line,
            time_ms,
            value,
            label,
        }))
    }

    fn note(&mut self, line: u64, problem: String) -> Result<(), DatasetError> {
        if self.strict {
            return Err(DatasetError::BadRow {
                path: self.path.clone(),
                line,
                problem,
            });
        }
        if self.bad.len() < KEEP_BAD {
            self.bad.push(BadRow { line, problem });
        }
        Ok(())
    }

    /// The next row that has a value, skipping (and counting) those without; a row whose
    /// timestamp does not parse gets the last good one. `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, DatasetError> {
        while let Some(row) = self.next_row()? {
            let Some(value) = row.value else { continue };
            return Ok(Some(Record {
                line: row.line,
                time_ms: row.time_ms.or(self.last_time).unwrap_or(0),
                value,
                label: row.label,
            }));
        }
        Ok(None)
    }

    /// A short summary of the problems: their count and the first few, one per line.
    pub fn problems(&self) -> Option<String> {
        let total = self.bad_count + self.time_issues + self.label_issues + self.extra_fields;
        if total == 0 && self.bad.is_empty() {
            return None;
        }
        let mut out = format!(
            "{}: {} row(s) without a usable value, {} with a bad or backwards timestamp, {} with \
             a bad label, {} with more fields than the header",
            self.path, self.bad_count, self.time_issues, self.label_issues, self.extra_fields
        );
        for b in self.bad.iter().take(10) {
            out += &format!("\n  line {}: {}", b.line, b.problem);
        }
        if self.bad.len() > 10 {
            out += &format!("\n  ... ({} more lines)", self.bad.len() - 10);
        }
        Some(out)
    }
}

/// A field's text, or why there is none (missing, or not UTF-8) added to `problems`.
fn present<'a>(
    field: Option<Result<&'a str, ()>>,
    name: &str,
    problems: &mut Vec<String>,
) -> Option<&'a str> {
    match field {
        None => {
            problems.push(format!("missing field '{name}'"));
            None
        }
        Some(Err(())) => {
            problems.push(format!("field '{name}' is not valid UTF-8"));
            None
        }
        Some(Ok(text)) => Some(text),
    }
}

/// The longest line (a CSV record, quoted newlines included) read as a row: a longer one is a
/// bad row, skipped, so memory per row is bounded however the input is made.
pub const MAX_LINE: usize = 1 << 20;

/// What a line over [`MAX_LINE`] becomes on its way to the CSV reader: one field no real file
/// has (it starts with a NUL byte), so the row is reported for what it was.
const TOO_LONG: &[u8] = b"\0zscope: line too long\n";

/// A reader that passes whole lines on, and replaces each line longer than [`MAX_LINE`]
/// (counting quoted newlines as inside the line, as CSV does) with [`TOO_LONG`]. It holds at
/// most one line and one chunk, whatever the input: a 2 GiB one-line file streams through in
/// bounded memory. A quote left open is closed by the limit: reading resumes at the next
/// newline. A line is reported as too long as soon as it passes the limit, so a header that
/// never ends (`score - < /dev/zero`) is an error at once, not a read for ever.
pub struct LineLimit<R> {
    inner: R,
    chunk: Vec<u8>,
    /// The current line so far (not yet passed on).
    line: Vec<u8>,
    /// Whole lines ready to pass on, from `sent`.
    ready: Vec<u8>,
    sent: usize,
    quoted: bool,
    /// Dropping the rest of a line that went over the limit.
    skipping: bool,
    eof: bool,
}

impl<R: std::io::Read> LineLimit<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        LineLimit {
            inner,
            chunk: vec![0; 64 * 1024],
            line: Vec::new(),
            ready: Vec::new(),
            sent: 0,
            quoted: false,
            skipping: false,
            eof: false,
        }
    }

    /// Read a chunk and sort it into whole lines; false at the end of the input.
    fn fill(&mut self) -> std::io::Result<bool> {
        self.ready.clear();
        self.sent = 0;
        if self.eof {
            return Ok(false);
        }
        let n = loop {
            match self.inner.read(&mut self.chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            self.eof = true;
            // The last line, unterminated (one over the limit was passed on as TOO_LONG).
            if !self.skipping {
                self.ready.append(&mut self.line);
            }
            self.line = Vec::new();
            return Ok(true);
        }
        // Jump from quote to newline with memchr (this runs over every byte of every file).
        let (mut i, mut start) = (0, 0);
        while i < n {
            if self.skipping {
                match memchr::memchr(b'\n', &self.chunk[i..n]) {
                    Some(k) => {
                        self.skipping = false;
                        self.quoted = false;
                        i += k + 1;
                        start = i;
                    }
                    None => {
                        i = n;
                        start = n;
                    }
                }
                continue;
            }
            let next = memchr::memchr2(b'"', b'\n', &self.chunk[i..n]).map(|k| i + k);
            let stop = next.unwrap_or(n);
            if self.line.len() + (stop - start) > MAX_LINE {
                // Over the limit: the line is TOO_LONG at once (a line that never ends, as
                // from /dev/zero, is reported all the same), and the rest of it is dropped.
                self.line = Vec::new();
                self.skipping = true;
                self.ready.extend_from_slice(TOO_LONG);
                i = stop;
                start = stop;
                continue;
            }
            match next {
                None => i = n,
                Some(p) if self.chunk[p] == b'"' => {
                    self.quoted = !self.quoted;
                    i = p + 1;
                }
                Some(p) if self.quoted => i = p + 1,
                Some(p) => {
                    self.line.extend_from_slice(&self.chunk[start..=p]);
                    self.ready.append(&mut self.line);
                    i = p + 1;
                    start = i;
                }
            }
        }
        if !self.skipping {
            self.line.extend_from_slice(&self.chunk[start..n]);
        }
        Ok(true)
    }
}

impl<R: std::io::Read> std::io::Read for LineLimit<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.sent == self.ready.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.ready.len() - self.sent);
        out[..n].copy_from_slice(&self.ready[self.sent..self.sent + n]);
        self.sent += n;
        Ok(n)
    }
}

/// Whether a record is what [`LineLimit`] made of a line over the limit.
fn too_long(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && record.get(0) == Some(&TOO_LONG[..TOO_LONG.len() - 1])
}

/// Column names as listed in a message: at most 200 characters' worth.
fn list_columns(header: &[String]) -> String {
    clip_to(&header.join(", "), 200)
}

/// A field as shown in a message: at most 60 characters.
fn clip(s: &str) -> String {
    clip_to(s, 60)
}

/// `s` cut to `max` characters, its control characters escaped (`\x1b`, `\n`): a file's
/// bytes echoed in a message never drive the terminal that shows it.
fn clip_to(s: &str, max: usize) -> String {
    let shown = |t: &str| -> String {
        t.chars()
            .map(|c| match c {
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect()
    };
    if s.chars().count() <= max {
        shown(s)
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{}... ({} bytes)", shown(&cut), s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_control_characters_never_reach_the_terminal_raw() {
        let shown = clip("a\x1b[2Jb\u{7}c\r\nd");
        assert_eq!(shown, "a\\u{1b}[2Jb\\u{7}c\\r\\nd");
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(clip("température"), "température");
        let long = format!("\x1b{}", "x".repeat(100));
        assert!(clip(&long).starts_with("\\u{1b}xxx") && clip(&long).ends_with("(101 bytes)"));
    }

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

    fn read_all(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LineLimit::new(input), &mut out).unwrap();
        out
    }

    /// Lines within the limit pass unchanged (quoted newlines included); a longer one, or an
    /// unclosed quote running past the limit, becomes one marker line and reading resumes
    /// at the next newline.
    #[test]
    fn long_lines_become_one_marked_row() {
        let ok = b"time,value\n1,\"a\nb\"\n2,3";
        assert_eq!(read_all(ok), ok);
        let mut long = b"time,value\n1,".to_vec();
        long.extend(std::iter::repeat_n(b'9', MAX_LINE + 10));
        long.extend_from_slice(b"\n2,3\n");
        let out = read_all(&long);
        assert_eq!(out, [&b"time,value\n"[..], TOO_LONG, b"2,3\n"].concat());
        let mut quote = b"time,value\n1,\"".to_vec();
        quote.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        quote.extend_from_slice(b"\n2,3\n");
        assert_eq!(read_all(&quote), out);
        let mut tail = b"t,v\n".to_vec();
        tail.extend(std::iter::repeat_n(b'9', MAX_LINE + 1));
        assert_eq!(read_all(&tail), [&b"t,v\n"[..], TOO_LONG].concat());
    }

    /// A line over the limit is a bad row with a short message; extra fields are reported
    /// as such; a header line over the limit is a clear error.
    #[test]
    fn overlong_rows_and_extra_fields_are_reported_for_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        let mut text = b"time,value\n1,1\n2,".to_vec();
        text.extend(std::iter::repeat_n(b'7', MAX_LINE * 2));
        text.extend_from_slice(b"\n3,3,extra\n4,4\n");
        std::fs::write(&path, &text).unwrap();
        let mut data = Dataset::open(&path, &Columns::default(), false).unwrap();
        let mut values = Vec::new();
        while let Some(row) = data.next_row().unwrap() {
            values.push(row.value);
        }
        assert_eq!(values, [Some(1.0), None, Some(3.0), Some(4.0)]);
        let report = data.problems().unwrap();
        assert!(
            report.contains("line 3: longer than 1 MiB: skipped"),
            "{report}"
        );
        assert!(
            report.contains("line 4: 3 fields where the header has 2"),
            "{report}"
        );
        assert!(report.len() < 1000, "{report}");
        let mut header = vec![b'h'; MAX_LINE + 5];
        header.extend_from_slice(b"\n1,2\n");
        std::fs::write(&path, &header).unwrap();
        let e = Dataset::open(&path, &Columns::default(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("header line is longer than 1 MiB"), "{e}");
        assert!(e.len() < 300, "{e}");
    }
}
