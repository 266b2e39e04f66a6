//! `zscope score`: run the detector over a data file (or standard input, or a folder of files),
//! as fast as the disk allows, and write the rows back with the detector's verdicts.
//!
//! Plain output: every input row, its fields as they were, plus `mean,std,z,anomaly_score,
//! is_anomaly`. `--format nab`: `timestamp,value,anomaly_score,label` in that order, the file
//! the Numenta Anomaly Benchmark's scorer reads. Exactly one output row per input data row:
//! during warm-up the score is 0 and nothing is flagged; an invalid value (NaN, ±∞, too large
//! for f64) gets an empty z and score 0; a row without a usable value (missing, not a number)
//! gets an empty verdict in plain output (score 0, not flagged, in NAB output, whose scorer
//! needs a number) and goes to the detector as a missing value, so a seasonal phase stays in
//! step. Numbers are written at full precision (the shortest digits that read back exactly).
//! The output is `-` for standard output; the summary goes to standard error.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use zscope_core::Class;

use crate::batch::dataset::{BadRow, Columns, Dataset, DatasetError, Row, median_interval};
use crate::model::detector::DetectorSpec;
pub use crate::model::detector::{HOST_CAPACITY, HostDetector, detector};

/// Output layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The input rows plus mean, std, z, anomaly_score, is_anomaly.
    Plain,
    /// timestamp, value, anomaly_score, label (Numenta Anomaly Benchmark).
    Nab,
}

/// What `score` was asked to do.
#[derive(Debug, Clone)]
pub struct ScoreJob {
    /// Input file (`-`: standard input).
    pub input: PathBuf,
    /// Output file (`-`: standard output).
    pub output: PathBuf,
    /// Output layout.
    pub format: Format,
    /// Column choice.
    pub columns: Columns,
    /// Stop at the first bad row.
    pub strict: bool,
    /// Detector settings (a seasonal period given as a duration is resolved with the file's
    /// sampling interval).
    pub detector: DetectorSpec,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct ScoreSummary {
    /// Data rows read, and written.
    pub rows: u64,
    /// Rows without a usable value (empty verdict).
    pub bad_rows: u64,
    /// Rows with a bad or backwards timestamp (judged all the same).
    pub time_issues: u64,
    /// Rows with a label that is not 0 or 1.
    pub label_issues: u64,
    /// Rows with more fields than the header (judged; the extra fields are not copied).
    pub extra_fields: u64,
    /// The first problems, with line numbers.
    pub bad: Vec<BadRow>,
    /// Rows whose value the detector could not judge (NaN, ±∞).
    pub invalid: u64,
    /// Rows flagged.
    pub anomalies: u64,
    /// Which columns were taken (`time 'timestamp', value 'value', no label`).
    pub columns: String,
    /// Wall time.
    pub seconds: f64,
}

/// Why scoring stopped.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The input.
    #[error(transparent)]
    Input(#[from] DatasetError),
    /// The detector settings.
    #[error("invalid detector settings: {0}")]
    Config(String),
    /// The output.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A folder of inputs needs a folder to write to.
    #[error("{0}")]
    Layout(String),
}

fn out_err(path: &Path) -> impl Fn(std::io::Error) -> ScoreError + '_ {
    move |source| ScoreError::Output {
        path: if path.as_os_str() == "-" {
            "<stdout>".into()
        } else {
            path.display().to_string()
        },
        source,
    }
}

/// The columns plain output adds after the input's: `mean,std,z,anomaly_score,is_anomaly`,
/// each prefixed `zscope_` where the input has a column of that name already (re-scoring a
/// zscope log, or a scored file), so no name appears twice.
fn output_names(header: &[String]) -> Vec<String> {
    ["mean", "std", "z", "anomaly_score", "is_anomaly"]
        .iter()
        .map(|name| {
            let taken = |n: &str| header.iter().any(|h| h.trim().eq_ignore_ascii_case(n));
            let mut name = name.to_string();
            while taken(&name) {
                name = format!("zscope_{name}");
            }
            name
        })
        .collect()
}

/// Append `field` to `line` as a CSV field, quoted only if it must be.
fn push_field(line: &mut Vec<u8>, field: &[u8]) {
    if field
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        line.push(b'"');
        for &b in field {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(field);
    }
}

/// Rows read ahead to find the sampling interval before the detector starts, when a seasonal
/// period was given as a duration.
const LOOKAHEAD: usize = 1000;

/// Score `job.input` into `job.output`: one file (or standard input) into one file (or
/// standard output).
///
/// Lines are assembled by hand (input fields re-quoted only where needed, numbers as the
/// shortest digits that read back exactly): the csv writer's per-field overhead made writing,
/// not parsing, the bottleneck.
pub fn score(job: &ScoreJob) -> Result<ScoreSummary, ScoreError> {
    let started = Instant::now();
    let mut data = Dataset::open(&job.input, &job.columns, job.strict)?;
    // A duration needs the interval: read ahead (bounded), then replay those rows.
    let mut ahead: Vec<(Row, csv::ByteRecord)> = Vec::new();
    let interval = if job.detector.period_ms.is_some() {
        while ahead.len() < LOOKAHEAD {
            match data.next_row()? {
                Some(row) => ahead.push((row, data.fields().clone())),
                None => break,
            }
        }
        let times: Vec<i64> = ahead.iter().filter_map(|(r, _)| r.time_ms).collect();
        median_interval(&times)
    } else {
        None
    };
    let config = job
        .detector
        .resolve(interval)
        .map_err(|e| ScoreError::Config(e.to_string()))?;
    let mut det = detector(config).map_err(|e| ScoreError::Config(e.to_string()))?;
    let to_stdout = job.output.as_os_str() == "-";
    if !to_stdout && same_file(&job.input, &job.output) {
        return Err(ScoreError::Layout(format!(
            "{} is the input: scoring into it would destroy it; write elsewhere (-o FILE)",
            job.output.display()
        )));
    }
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        if let Some(parent) = job.output.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(out_err(&job.output))?;
        }
        Box::new(std::fs::File::create(&job.output).map_err(out_err(&job.output))?)
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    match job.format {
        Format::Plain => {
            for (i, h) in data.layout.header.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                push_field(&mut line, h.as_bytes());
            }
            for name in output_names(&data.layout.header) {
                line.push(b',');
                line.extend_from_slice(name.as_bytes());
            }
            line.push(b'\n');
        }
        Format::Nab => line.extend_from_slice(b"timestamp,value,anomaly_score,label\n"),
    }
    out.write_all(&line).map_err(out_err(&job.output))?;
    let size = if job.input.as_os_str() == "-" {
        0
    } else {
        std::fs::metadata(&job.input).map(|m| m.len()).unwrap_or(0)
    };
    let progress = (size > 64 << 20 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut summary = ScoreSummary::default();
    let mut num = ryu::Buffer::new();
    let columns = data.layout.header.len();
    let (time_col, value_col) = (data.layout.time, data.layout.value);
    let mut ahead = ahead.into_iter();
    loop {
        let (row, fields) = match ahead.next() {
            Some((row, fields)) => (row, std::borrow::Cow::Owned(fields)),
            None => match data.next_row()? {
                Some(row) => (row, std::borrow::Cow::Borrowed(data.fields())),
                None => break,
            },
        };
        let v = det.update(row.value.unwrap_or(f64::NAN));
        let judged = matches!(v.class, Class::Normal | Class::Anomaly);
        let anomaly = v.class == Class::Anomaly;
        summary.anomalies += anomaly as u64;
        let has_value = row.value.is_some();
        summary.invalid += (has_value && v.class == Class::Invalid) as u64;
        let score = if judged { v.score } else { 0.0 };
        line.clear();
        match job.format {
            Format::Plain => {
                for i in 0..columns {
                    if i > 0 {
                        line.push(b',');
                    }
                    push_field(&mut line, fields.get(i).unwrap_or_default());
                }
                if has_value {
                    line.push(b',');
                    line.extend_from_slice(fmt_f64(&mut num, v.mean).as_bytes());
                    line.push(b',');
                    line.extend_from_slice(fmt_f64(&mut num, v.std).as_bytes());
                    line.push(b',');
                    if v.class != Class::Invalid {
                        line.extend_from_slice(fmt_f64(&mut num, v.z).as_bytes());
                    }
                    line.push(b',');
                    line.extend_from_slice(fmt_f64(&mut num, score).as_bytes());
                    line.extend_from_slice(if anomaly { b",1\n" } else { b",0\n" });
                } else {
                    line.extend_from_slice(b",,,,,\n");
                }
            }
            Format::Nab => {
                push_field(&mut line, fields.get(time_col).unwrap_or_default());
                line.push(b',');
                push_field(&mut line, fields.get(value_col).unwrap_or_default());
                line.push(b',');
                line.extend_from_slice(fmt_f64(&mut num, score).as_bytes());
                line.extend_from_slice(if row.label == Some(true) {
                    b",1\n"
                } else {
                    b",0\n"
                });
            }
        }
        out.write_all(&line).map_err(out_err(&job.output))?;
        summary.rows += 1;
        if let Some(bar) = &progress
            && summary.rows % 65_536 == 0
        {
            bar.set_position(data.byte_position());
        }
    }
    out.flush().map_err(out_err(&job.output))?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    summary.bad_rows = data.bad_count;
    summary.time_issues = data.time_issues;
    summary.label_issues = data.label_issues;
    summary.extra_fields = data.extra_fields;
    summary.bad = std::mem::take(&mut data.bad);
    summary.seconds = started.elapsed().as_secs_f64();
    summary.columns = data.layout.describe();
    Ok(summary)
}

/// Score every `*.csv` below the folder `job.input` into the folder `job.output`, with the same
/// relative layout. Returns each file's input and summary, in path order.
pub fn score_folder(job: &ScoreJob) -> Result<Vec<(PathBuf, ScoreSummary)>, ScoreError> {
    if job.output.as_os_str() == "-" || job.output.is_file() {
        return Err(ScoreError::Layout(format!(
            "{} is a folder: give a folder to write into (-o DIR), not a file or -",
            job.input.display()
        )));
    }
    let mut files = Vec::new();
    collect_csv(&job.input, &mut files).map_err(|source| ScoreError::Output {
        path: job.input.display().to_string(),
        source,
    })?;
    files.sort();
    let mut done = Vec::with_capacity(files.len());
    for file in files {
        let relative = file.strip_prefix(&job.input).unwrap_or(&file).to_path_buf();
        let one = ScoreJob {
            input: file.clone(),
            output: job.output.join(&relative),
            ..job.clone()
        };
        let summary = score(&one)?;
        done.push((file, summary));
    }
    Ok(done)
}

/// Whether `a` and `b` are one file (the same path, a link to it, or another name of it).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The CSV files under `dir`, in its folders too; links to folders are not followed (a link
/// back up would go round for ever), links to files are taken.
fn collect_csv(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_csv(&path, out)?;
        } else if path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// `x` at full precision: the shortest digits that read back to the same f64; `inf`, `-inf`,
/// `NaN`.
fn fmt_f64(buf: &mut ryu::Buffer, x: f64) -> &str {
    if x.is_finite() {
        buf.format_finite(x)
    } else if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// The summary a user reads after `zscope score`.
pub fn report(job: &ScoreJob, s: &ScoreSummary) -> String {
    let name = |p: &Path, stdio: &str| {
        if p.as_os_str() == "-" {
            stdio.to_string()
        } else {
            p.display().to_string()
        }
    };
    let mut out = format!(
        "scored {} rows of {} into {} in {:.2} s ({:.1} M rows/s): {} flagged",
        s.rows,
        name(&job.input, "<stdin>"),
        name(&job.output, "<stdout>"),
        s.seconds,
        s.rows as f64 / s.seconds.max(1e-9) / 1e6,
        s.anomalies
    );
    if s.invalid > 0 {
        out += &format!(
            ", {} values invalid (NaN or infinite: not judged)",
            s.invalid
        );
    }
    if !s.columns.is_empty() {
        out += &format!("\ncolumns: {}", s.columns);
    }
    let total = s.bad_rows + s.time_issues + s.label_issues + s.extra_fields;
    if total > 0 {
        out += &format!(
            "\n{} row(s) without a usable value (empty verdict), {} with a bad or backwards \
             timestamp (judged), {} with a bad label, {} with more fields than the header \
             (judged):",
            s.bad_rows, s.time_issues, s.label_issues, s.extra_fields
        );
        for b in s.bad.iter().take(10) {
            out += &format!("\n  line {}: {}", b.line, b.problem);
        }
        let shown = s.bad.len().min(10) as u64;
        if total > shown {
            out += &format!("\n  … and {} more", total - shown);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &Path, input: &str, format: Format) -> ScoreJob {
        let path = dir.join("in.csv");
        std::fs::write(&path, input).unwrap();
        ScoreJob {
            input: path,
            output: dir.join("out.csv"),
            format,
            columns: Columns::default(),
            strict: false,
            detector: DetectorSpec {
                config: zscope_core::DetectorConfig::with_window(4),
                period_ms: None,
            },
        }
    }

    fn run(
        input: &str,
        format: Format,
    ) -> (Result<ScoreSummary, ScoreError>, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let j = job(dir.path(), input, format);
        let r = score(&j);
        let out = std::fs::read_to_string(dir.path().join("out.csv")).unwrap_or_default();
        (r, out, dir)
    }

    fn series(n: usize, spike_at: usize) -> String {
        let mut s = String::from("timestamp,value,label\n");
        for i in 0..n {
            let v = if i == spike_at {
                50.0
            } else {
                [0.1, -0.2, 0.15, -0.05][i % 4]
            };
            s += &format!("2026-11-24 10:00:{:02},{v},{}\n", i, (i == spike_at) as u8);
        }
        s
    }

    #[test]
    fn plain_output_keeps_the_rows_and_adds_the_verdicts() {
        let (r, out, _d) = run(&series(12, 8), Format::Plain);
        let s = r.unwrap();
        assert_eq!((s.rows, s.anomalies, s.bad_rows), (12, 1, 0));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "timestamp,value,label,mean,std,z,anomaly_score,is_anomaly"
        );
        assert_eq!(lines.len(), 13);
        assert!(
            lines[9].starts_with("2026-11-24 10:00:08,50,1,") && lines[9].ends_with(",1"),
            "{}",
            lines[9]
        );
        // Warm-up rows: score 0, never flagged.
        assert!(lines[1].ends_with(",0.0,0"), "{}", lines[1]);
    }

    #[test]
    fn nab_output_has_the_nab_columns_in_order() {
        let (r, out, _d) = run(&series(12, 8), Format::Nab);
        r.unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "timestamp,value,anomaly_score,label");
        let spike: Vec<&str> = lines[9].split(',').collect();
        assert_eq!(
            (spike[0], spike[1], spike[3]),
            ("2026-11-24 10:00:08", "50", "1")
        );
        assert!(spike[2].parse::<f64>().unwrap() > 0.9);
    }

    #[test]
    fn malformed_files_give_the_stated_errors_and_counts() {
        // Empty file, header only.
        let (r, _, _d) = run("", Format::Plain);
        assert!(r.unwrap_err().to_string().contains("is empty"));
        let (r, _, _d) = run("timestamp,value\n", Format::Plain);
        assert_eq!(r.unwrap().rows, 0);
        // A missing value column is named, with the columns there are.
        let (r, _, _d) = run("time,a,b\n1,2,3\n", Format::Plain);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("cannot tell which column is the value") && e.contains("--value-col"),
            "{e}"
        );
        // One output row per input row. Without a usable value (non-numeric, missing field):
        // an empty verdict, counted. A bad or backwards timestamp: judged, counted. NaN and
        // huge numbers are rows the detector calls invalid.
        let input = "timestamp,value\n\
            2026-11-24 10:00:00,1.0\n\
            2026-11-24 10:00:01,abc\n\
            2026-11-24 10:00:02\n\
            not-a-time,1.0\n\
            2026-11-24 10:00:03,NaN\n\
            2026-11-24 10:00:04,1e400\n\
            2026-11-24 09:00:00,1.0\n\
            2026-11-24 10:00:05,2.0\n";
        let (r, out, _d) = run(input, Format::Plain);
        let s = r.unwrap();
        assert_eq!((s.rows, s.bad_rows, s.time_issues, s.invalid), (8, 2, 2, 2));
        let lines: Vec<(u64, &str)> = s.bad.iter().map(|b| (b.line, b.problem.as_str())).collect();
        assert_eq!(lines[0], (3, "'abc' is not a number"));
        assert_eq!(lines[1], (4, "missing field 'value'"));
        assert_eq!(lines[2], (5, "'not-a-time' is not a timestamp"));
        assert_eq!(
            lines[3],
            (8, "timestamp '2026-11-24 09:00:00' goes backwards")
        );
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 9, "{out}");
        assert_eq!(rows[2], "2026-11-24 10:00:01,abc,,,,,");
        assert_eq!(rows[3], "2026-11-24 10:00:02,,,,,,");
        assert!(
            rows[4].starts_with("not-a-time,1.0,") && rows[4].ends_with(",0"),
            "{}",
            rows[4]
        );
        assert!(rows[5].starts_with("2026-11-24 10:00:03,NaN,"), "{out}");
        assert!(rows[7].starts_with("2026-11-24 09:00:00,1.0,"), "{out}");
        let report = report(&job(Path::new("/tmp"), "", Format::Plain), &s);
        assert!(report.contains("line 3: 'abc' is not a number"), "{report}");
        // --strict stops at the first.
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), input, Format::Plain);
        j.strict = true;
        let e = score(&j).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("'abc' is not a number"),
            "{e}"
        );
    }

    #[test]
    fn crlf_and_a_byte_order_mark_are_accepted() {
        let input = "\u{feff}timestamp,value\r\n1795514400,1.5\r\n1795514401,2.5\r\n";
        let (r, out, _d) = run(input, Format::Nab);
        assert_eq!(r.unwrap().rows, 2);
        assert!(
            out.lines().nth(1).unwrap().starts_with("1795514400,1.5,"),
            "{out}"
        );
    }

    #[test]
    fn named_columns_and_a_clear_error_for_a_wrong_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(
            dir.path(),
            "when,reading_a,reading_b\n1,2,3\n2,3,4\n",
            Format::Plain,
        );
        j.columns = Columns {
            time: Some("when".into()),
            value: Some("reading_b".into()),
            label: None,
        };
        assert_eq!(score(&j).unwrap().rows, 2);
        j.columns.value = Some("reading_c".into());
        let e = score(&j).unwrap_err().to_string();
        assert!(
            e.contains("no column named 'reading_c'") && e.contains("when, reading_a, reading_b"),
            "{e}"
        );
    }

    #[test]
    fn scoring_into_its_own_input_is_refused_and_the_input_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), &series(50, 30), Format::Plain);
        let before = std::fs::read(&j.input).unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&j.input, &link).unwrap();
        let hard = dir.path().join("hard.csv");
        std::fs::hard_link(&j.input, &hard).unwrap();
        for output in [j.input.clone(), link, hard] {
            j.output = output.clone();
            let e = score(&j).unwrap_err().to_string();
            assert!(e.contains("is the input"), "{}: {e}", output.display());
            assert_eq!(
                std::fs::read(&j.input).unwrap(),
                before,
                "the input is whole"
            );
        }
    }

    #[test]
    fn a_folder_with_a_link_back_up_is_scored_once() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::create_dir_all(input.join("sub")).unwrap();
        std::fs::write(input.join("a.csv"), series(20, 10)).unwrap();
        std::fs::write(input.join("sub/b.csv"), series(20, 10)).unwrap();
        std::os::unix::fs::symlink(&input, input.join("sub/loop")).unwrap();
        let mut j = job(dir.path(), "", Format::Plain);
        j.input = input;
        j.output = dir.path().join("out");
        let done = score_folder(&j).unwrap();
        let names: Vec<_> = done
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.csv", "b.csv"]);
    }

    #[test]
    fn a_zscope_log_rescores_against_its_truth_not_its_own_verdicts() {
        // samples.csv's columns: the device flagged rows 3 and 4 (`anomaly`), the truth is
        // row 30 only.
        let mut text = String::from(
            "host_time,seq,device_time_ms,value,mean,std,z,score,threshold,window,\
             config_version,anomaly,reason,truth,lost_before\n",
        );
        for i in 0..50 {
            let v = if i == 30 {
                50.0
            } else {
                [0.1, -0.2, 0.15, -0.05][i % 4]
            };
            let flagged = u8::from(i == 3 || i == 4);
            let truth = u8::from(i == 30);
            text += &format!(
                "2026-11-24 10:00:{i:02}.000,{i},{},{v},0,1,0,0,4.5,64,1,{flagged},,{truth},0\n",
                i * 20
            );
        }
        let (r, out, _d) = run(&text, Format::Plain);
        let s = r.unwrap();
        assert_eq!(s.columns, "time 'host_time', value 'value', label 'truth'");
        assert_eq!(s.time_issues, 0);
        let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
        let mut unique = header.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), header.len(), "no name twice: {header:?}");
        assert!(header.ends_with(&[
            "zscope_mean",
            "zscope_std",
            "zscope_z",
            "anomaly_score",
            "is_anomaly"
        ]));
        let report = report(&job(Path::new("/tmp"), "", Format::Plain), &s);
        assert!(
            report.contains("columns: time 'host_time', value 'value', label 'truth'"),
            "{report}"
        );

        // Without a detector's output, `anomaly` is a label as before.
        let (r, _, _d) = run("timestamp,value,anomaly\n1,1.0,0\n2,2.0,1\n", Format::Plain);
        assert_eq!(
            r.unwrap().columns,
            "time 'timestamp', value 'value', label 'anomaly'"
        );
    }

    #[test]
    fn every_missing_named_column_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(dir.path(), "when,reading\n1,2\n", Format::Plain);
        j.columns = Columns {
            time: Some("t".into()),
            value: Some("reading".into()),
            label: Some("lbl".into()),
        };
        let e = score(&j).unwrap_err().to_string();
        assert!(
            e.contains("no column named 't', 'lbl'") && e.contains("when, reading"),
            "{e}"
        );
    }
}
