//! The CSV logs a user reads with any tool: `samples.csv` (every point, unless turned off) and
//! `anomalies.csv` (flagged points), in the log folder.
//!
//! * Header once; files are appended across restarts. On opening, a last row cut short (power
//!   lost mid-write) is cut back to the last whole row, and a file whose header is not ours is
//!   set aside as `STEM.old-N.csv`, never appended to: both said in the log and in
//!   `/api/status`.
//! * Rows go to an unbuffered file in whole rows, at most [`WRITE_CHUNK`] bytes a `write`: a
//!   crash can cut only the last row, which the next start repairs. A write that fails
//!   part-way (a full disk) is cut back to the last whole row, so the file stays valid CSV.
//! * Rows that cannot be written (disk full, folder gone) wait in memory (up to
//!   [`MAX_PENDING`] rows per file) and are retried every second, in order; the error shows in
//!   `/api/status`. Only past that bound are the oldest waiting rows given up, and counted.
//! * Size-based rotation: past `rotate_bytes`, `samples.csv` becomes `samples.1.csv` (`.1`
//!   becomes `.2`, …) and a fresh file starts with the header; `keep` rotated files are kept.
//! * Rows come from the daemon's ingest over a bounded channel to one writer thread
//!   ([`LogWriter`]): no disk I/O happens under the state lock that the API waits on.
//!
//! Columns (both files): the fields of [`Row`] (see [`header`]) and the README.
//!
//! The writer thread also owns the device's store ([`super::store`]): one thread does a
//! device's disk I/O.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::device::{Sink, lock};
use crate::model::point::header_line;
pub use crate::model::point::{Row, header};
use crate::model::{ConfigRecord, Entry, LogStatus, Output, StoreStatus};
use crate::sink::store::Store;

/// Bytes handed to one `write` at most (whole rows).
pub const WRITE_CHUNK: usize = 64 * 1024;

/// Rows kept in memory per file while it cannot be written.
pub const MAX_PENDING: usize = 200_000;
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Why a log could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open the log {path}: {source}. Check that the folder is writable, or pass --log-dir"
)]
pub struct LogError {
    path: PathBuf,
    source: std::io::Error,
}

/// One CSV file with rotation and retry.
pub struct CsvLog {
    dir: PathBuf,
    stem: &'static str,
    file: Option<File>,
    size: u64,
    rotate_bytes: u64,
    keep: u32,
    pending: VecDeque<Vec<u8>>,
    /// Scratch space for a write of several rows.
    chunk: Vec<u8>,
    last_try: Option<Instant>,
    status: LogStatus,
}

/// Cut `file` (of `size` bytes) back to just after its last newline, when its last byte is
/// not one; the bytes cut, if any.
fn cut_torn_row(file: &mut File, size: u64) -> std::io::Result<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    if size == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(size - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    // Back through the file in chunks for the last newline (rows are short: one chunk).
    let mut end = size;
    let mut keep = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buf)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    Ok(Some(size - keep))
}

fn encode(row: &Row) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let _ = w.serialize(row);
    w.into_inner().unwrap_or_default()
}

impl CsvLog {
    /// Open (or create) `dir/stem.csv` for appending.
    pub fn open(
        dir: &Path,
        stem: &'static str,
        rotate_bytes: u64,
        keep: u32,
    ) -> Result<Self, LogError> {
        let path = dir.join(format!("{stem}.csv"));
        std::fs::create_dir_all(dir).map_err(|source| LogError {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut log = CsvLog {
            dir: dir.to_path_buf(),
            stem,
            file: None,
            size: 0,
            rotate_bytes,
            keep,
            pending: VecDeque::new(),
            chunk: Vec::new(),
            last_try: None,
            status: LogStatus {
                path: path.display().to_string(),
                ..LogStatus::default()
            },
        };
        // A file that cannot even be opened is a setup error; one that refuses writes (a full
        // disk) is retried like any later write.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LogError { path, source })?;
        if let Err(e) = log.reopen() {
            tracing::error!("cannot write {}: {e}; will retry", log.status.path);
            log.status.error = Some(format!("{}: {e}", log.status.path));
        }
        Ok(log)
    }

    fn path(&self, generation: u32) -> PathBuf {
        match generation {
            0 => self.dir.join(format!("{}.csv", self.stem)),
            n => self.dir.join(format!("{}.{n}.csv", self.stem)),
        }
    }

    /// Open the current file for appending; write the header if it is empty. A file that
    /// does not start with our header is set aside first, and a torn last row cut off.
    fn reopen(&mut self) -> std::io::Result<()> {
        self.file = None;
        let path = self.path(0);
        if let Some(note) = self.set_aside_if_foreign(&path)? {
            tracing::warn!("{note}");
            self.status.repaired = Some(note);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        self.size = file.metadata()?.len();
        let regular = file.metadata()?.is_file();
        if let Some(cut) = regular
            .then(|| cut_torn_row(&mut file, self.size))
            .transpose()?
            .flatten()
        {
            let note = format!(
                "{}: cut a torn last row ({cut} bytes, written when the power or the process \
                 went) back to the last whole row",
                path.display()
            );
            tracing::warn!("{note}");
            self.status.repaired = Some(note);
            self.size -= cut;
        }
        if self.size == 0 {
            let header = header_line();
            file.write_all(&header)?;
            self.size = header.len() as u64;
        }
        self.file = Some(file);
        Ok(())
    }

    /// If `path` holds something that does not start with our header (another tool's file,
    /// an older zscope's columns), rename it to `STEM.old-N.csv` and say so.
    fn set_aside_if_foreign(&self, path: &Path) -> std::io::Result<Option<String>> {
        use std::io::Read;
        // Only a regular file can be ours or foreign (a device, such as /dev/full, is left be).
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let header = header_line();
        let mut start = vec![0u8; header.len()];
        let read = match File::open(path) {
            Ok(mut f) => {
                let mut n = 0;
                while n < start.len() {
                    match f.read(&mut start[n..])? {
                        0 => break,
                        k => n += k,
                    }
                }
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // Empty, ours, or the beginning of ours (a header cut short is repaired as torn).
        if read == 0 || start[..read] == header[..read] {
            return Ok(None);
        }
        let mut n = 1;
        let aside = loop {
            let p = self.dir.join(format!("{}.old-{n}.csv", self.stem));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        std::fs::rename(path, &aside)?;
        Ok(Some(format!(
            "{} did not start with zscope's header; set it aside as {} and started a new file",
            path.display(),
            aside.display()
        )))
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let _ = std::fs::remove_file(self.path(self.keep));
        for generation in (0..self.keep).rev() {
            let from = self.path(generation);
            if from.exists() {
                std::fs::rename(&from, self.path(generation + 1))?;
            }
        }
        if self.keep == 0 {
            std::fs::remove_file(self.path(0))?;
        }
        self.reopen()
    }

    /// Log a row (now, or as soon as the file takes it).
    pub fn append(&mut self, row: &Row) {
        self.queue(row);
        self.flush_when_due();
    }

    /// Queue a row to be written by the next flush (the writer queues a batch, then
    /// flushes it in as few writes as it can).
    pub fn queue(&mut self, row: &Row) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.status.dropped += 1;
        }
        self.pending.push_back(encode(row));
    }

    /// Write what waits: at once while the file takes writes, and after an error once a
    /// second.
    pub fn flush_when_due(&mut self) {
        let retry_due = self.last_try.is_none_or(|t| t.elapsed() >= RETRY_EVERY);
        if !self.pending.is_empty() && (self.status.error.is_none() || retry_due) {
            self.flush_pending();
        }
    }

    /// Write every waiting row, whole rows at most [`WRITE_CHUNK`] bytes a write.
    pub fn flush_pending(&mut self) {
        self.last_try = Some(Instant::now());
        while !self.pending.is_empty() {
            match self.write_some() {
                Ok(n) => {
                    self.pending.drain(..n);
                    self.status.written += n as u64;
                    self.status.error = None;
                }
                Err(e) => {
                    if self.status.error.is_none() {
                        tracing::error!(
                            "cannot write {}: {e}; keeping rows in memory and retrying",
                            self.status.path
                        );
                    }
                    self.status.error = Some(format!("{}: {e}", self.status.path));
                    self.file = None;
                    break;
                }
            }
        }
    }

    /// Write the first waiting rows (at least one; as many as fit in a chunk and before the
    /// rotation size) in one call; how many. A write that fails part-way is cut back, so the
    /// file ends with a whole row.
    fn write_some(&mut self) -> std::io::Result<usize> {
        if self.file.is_none() {
            self.reopen()?;
        }
        let first = self.pending.front().map_or(0, Vec::len) as u64;
        if self.size + first > self.rotate_bytes && self.size > header_line().len() as u64 {
            self.rotate()?;
        }
        let room = self.rotate_bytes.saturating_sub(self.size);
        let (mut n, mut len) = (0usize, 0usize);
        for row in &self.pending {
            let more = len + row.len();
            if n > 0 && (more > WRITE_CHUNK || more as u64 > room) {
                break;
            }
            n += 1;
            len = more;
        }
        self.chunk.clear();
        for row in self.pending.iter().take(n) {
            self.chunk.extend_from_slice(row);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("log file not open"));
        };
        if let Err(e) = file.write_all(&self.chunk) {
            // Cut a partial row off, so the file stays valid CSV.
            let _ = file.set_len(self.size);
            return Err(e);
        }
        self.size += len as u64;
        Ok(n)
    }

    /// Counters for `/api/status`.
    pub fn status(&self) -> LogStatus {
        LogStatus {
            pending: self.pending.len(),
            ..self.status.clone()
        }
    }
}

/// Hand-overs waiting for the writer at most. Past it, ingest waits for the disk (the device's
/// own buffers then hold, and what it drops is counted as lost frames): memory stays bounded.
pub const WRITER_QUEUE: usize = 64;

/// What ingest hands the writer at once: points, and the configs the device took.
#[derive(Debug, Default)]
pub struct Handover {
    /// The points.
    pub entries: Vec<Entry>,
    /// Config changes (for the store).
    pub configs: Vec<ConfigRecord>,
}

/// Where ingest sends one device's rows: a bounded channel to the writer thread, and which of
/// its devices they are for.
#[derive(Clone)]
pub struct LogSender {
    jobs: SyncSender<Job>,
    desk: usize,
}

impl LogSender {
    /// Hand rows to the writer (waiting while its queue is full); empty hand-overs are skipped.
    pub fn send(&self, rows: Handover) {
        if (!rows.entries.is_empty() || !rows.configs.is_empty())
            && self.jobs.send(Job::Rows(self.desk, rows)).is_err()
        {
            tracing::error!("the log writer has stopped: rows not logged");
        }
    }
}

impl Sink for LogSender {
    fn take(&self, out: &Output, _device: Option<&str>) {
        self.send(Handover {
            entries: out.log.clone(),
            configs: out.configs.clone(),
        });
    }
}

/// What the writer thread is asked to do.
enum Job {
    /// Write a new device's rows from now on, under this number.
    Open(usize, Box<Desk>),
    /// Rows for the device of that number.
    Rows(usize, Handover),
}

/// One device's files on the writer thread: its CSV logs and its store, and where their
/// counters are published.
struct Desk {
    samples: Option<CsvLog>,
    anomalies: CsvLog,
    store: Option<Store>,
    status: DeskStatus,
}

impl Desk {
    fn write(&mut self, entries: &[Entry], configs: &[ConfigRecord]) {
        if let Some(store) = &mut self.store {
            store.write(entries, configs);
        }
        for e in entries {
            let row = Row::judged(&e.point, e.host_ms, e.truth, e.source, e.unit, e.detector);
            if let Some(log) = &mut self.samples {
                log.queue(&row);
            }
            if e.point.is_anomaly() {
                self.anomalies.queue(&row);
            }
        }
    }

    /// When the store's waiting points are due, if any wait.
    fn due_in(&self) -> Option<Duration> {
        self.store.as_ref().and_then(Store::due_in)
    }

    /// Write what is due (the store's transaction, rows waiting on a full disk) and publish.
    fn flush_when_due(&mut self) {
        if let Some(store) = &mut self.store {
            store.flush_when_due();
        }
        for log in self
            .samples
            .iter_mut()
            .chain(std::iter::once(&mut self.anomalies))
        {
            log.flush_when_due();
        }
        self.publish();
    }

    /// Write everything (the end).
    fn finish(&mut self) {
        if let Some(store) = &mut self.store {
            store.flush();
        }
        // Last chance for rows still waiting on a full disk.
        for log in self
            .samples
            .iter_mut()
            .chain(std::iter::once(&mut self.anomalies))
        {
            log.flush_pending();
        }
        self.publish();
    }

    fn publish(&self) {
        let now: Vec<LogStatus> = self
            .samples
            .iter()
            .chain(std::iter::once(&self.anomalies))
            .map(CsvLog::status)
            .collect();
        *lock(&self.status.logs) = now;
        // Without a store, what was said of it stays (one that could not be opened).
        if let Some(store) = &self.store {
            *lock(&self.status.store) = Some(store.status());
        }
    }
}

/// Where one device's writer publishes its counters for `/api/status`.
#[derive(Clone, Default)]
pub struct DeskStatus {
    logs: Arc<Mutex<Vec<LogStatus>>>,
    store: Arc<Mutex<Option<StoreStatus>>>,
}

impl DeskStatus {
    /// The CSV logs' counters, as last published.
    pub fn status(&self) -> Arc<Mutex<Vec<LogStatus>>> {
        self.logs.clone()
    }

    /// The store's counters, as last published (`None` without a store).
    pub fn store_status(&self) -> Arc<Mutex<Option<StoreStatus>>> {
        self.store.clone()
    }

    /// The store at `path` could not be opened (`why`): the status says so, while the CSV logs
    /// and the page go on without it.
    pub fn store_failed(&self, path: String, why: String) {
        *lock(&self.store) = Some(StoreStatus {
            path,
            error: Some(why),
            ..StoreStatus::default()
        });
    }
}

/// Hand-overs the writer takes at most before it writes (so one busy device cannot hold the
/// others' rows back for long, and a store transaction stays bounded).
const TAKE_AT_ONCE: usize = 64;

/// The thread that owns the CSV files and the stores of one or more devices: it writes what
/// ingest sends (one store transaction per device per flush), retries waiting rows once a
/// second, and publishes each device's counters for `/api/status`. A device read here has one
/// of its own ([`LogWriter::spawn`]); the devices a central daemon shows from the broker share
/// one ([`LogWriter::start`], [`LogWriter::open`]), so a thousand of them cost no thousand
/// threads.
pub struct LogWriter {
    thread: JoinHandle<()>,
    jobs: SyncSender<Job>,
    next: usize,
}

impl LogWriter {
    /// A writer for one device, writing to `samples` (if kept), `anomalies` and `store`; the
    /// sender feeds it. It ends, having written everything sent, once every sender is gone
    /// ([`LogWriter::finish`]).
    pub fn spawn(
        samples: Option<CsvLog>,
        anomalies: CsvLog,
        store: Option<Store>,
    ) -> std::io::Result<(LogWriter, DeskStatus, LogSender)> {
        let mut writer = LogWriter::start()?;
        let (status, sender) = writer.open(samples, anomalies, store);
        Ok((writer, status, sender))
    }

    /// A writer thread with no device yet ([`LogWriter::open`] adds them).
    pub fn start() -> std::io::Result<LogWriter> {
        let (tx, rx) = sync_channel::<Job>(WRITER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("zscope-log".into())
            .spawn(move || write_until_done(&rx))?;
        Ok(LogWriter {
            thread,
            jobs: tx,
            next: 0,
        })
    }

    /// Write a device's `samples` (if kept), `anomalies` and `store` on this thread from now
    /// on: where its counters are published, and the sender that feeds it.
    pub fn open(
        &mut self,
        samples: Option<CsvLog>,
        anomalies: CsvLog,
        store: Option<Store>,
    ) -> (DeskStatus, LogSender) {
        let status = DeskStatus::default();
        let desk = Desk {
            samples,
            anomalies,
            store,
            status: status.clone(),
        };
        desk.publish();
        let number = self.next;
        self.next += 1;
        let jobs = self.jobs.clone();
        if jobs.send(Job::Open(number, Box::new(desk))).is_err() {
            tracing::error!("the log writer has stopped: a device's rows will not be logged");
        }
        let sender = LogSender { jobs, desk: number };
        (status, sender)
    }

    /// Wait until everything sent has been written (every sender must be gone).
    pub fn finish(self) {
        let LogWriter { thread, jobs, .. } = self;
        drop(jobs);
        let _ = thread.join();
    }
}

/// The writer thread: jobs until every sender is gone, then everything written.
fn write_until_done(jobs: &std::sync::mpsc::Receiver<Job>) {
    let mut desks: std::collections::BTreeMap<usize, Box<Desk>> = Default::default();
    let mut last_sweep = Instant::now();
    loop {
        // Woken when a store's waiting points are due, too.
        let wait = desks
            .values()
            .filter_map(|d| d.due_in())
            .min()
            .map_or(RETRY_EVERY, |due| due.min(RETRY_EVERY));
        let mut touched: Vec<usize> = Vec::new();
        match jobs.recv_timeout(wait) {
            Ok(first) => {
                // Several hand-overs at once: bigger writes, one store transaction a device,
                // a bounded queue of rows.
                let mut rows: std::collections::BTreeMap<usize, Handover> = Default::default();
                for job in std::iter::once(first).chain(jobs.try_iter().take(TAKE_AT_ONCE - 1)) {
                    match job {
                        Job::Open(n, desk) => {
                            desks.insert(n, desk);
                        }
                        Job::Rows(n, h) => {
                            let r = rows.entry(n).or_default();
                            r.entries.extend(h.entries);
                            r.configs.extend(h.configs);
                        }
                    }
                }
                for (n, h) in rows {
                    if let Some(desk) = desks.get_mut(&n) {
                        desk.write(&h.entries, &h.configs);
                        touched.push(n);
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Those written to, those whose store is due, and once a second all (rows waiting on
        // a full disk are retried, counters published).
        let sweep = last_sweep.elapsed() >= RETRY_EVERY;
        if sweep {
            last_sweep = Instant::now();
        }
        for (n, desk) in desks.iter_mut() {
            let due = desk.due_in().is_some_and(|d| d.is_zero());
            if sweep || due || touched.contains(n) {
                desk.flush_when_due();
            }
        }
    }
    for desk in desks.values_mut() {
        desk.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64) -> Row {
        Row {
            host_time: "2026-11-24T10:00:00.000Z".into(),
            seq,
            device_time_ms: seq * 20,
            value: 0.5,
            mean: 0.25,
            std: 0.125,
            z: 2.0,
            score: 0.4,
            threshold: 3.0,
            window: 64,
            config_version: 1,
            anomaly: 0,
            reason: "",
            truth: None,
            lost_before: 0,
            source: "adc:PA0".into(),
            unit: "V",
            detector: "adaptive",
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn header_once_and_appended_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 3).unwrap();
        log.append(&row(1));
        drop(log);
        let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 3).unwrap();
        log.append(&row(2));
        let l = lines(&dir.path().join("samples.csv"));
        assert_eq!(l[0], header());
        assert_eq!(l.len(), 3);
        assert!(
            l[1].starts_with("2026-11-24T10:00:00.000Z,1,20,0.5,0.25,0.125,2.0,0.4,3.0,64,1,0,,,0"),
            "{}",
            l[1]
        );
        assert!(l[2].contains(",2,40,"));
    }

    #[test]
    fn rotates_by_size_and_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CsvLog::open(dir.path(), "samples", 1000, 2).unwrap();
        for seq in 0..200 {
            log.append(&row(seq));
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["samples.1.csv", "samples.2.csv", "samples.csv"]);
        for name in &names {
            let l = lines(&dir.path().join(name));
            assert_eq!(l[0], header(), "{name}");
            assert!(std::fs::metadata(dir.path().join(name)).unwrap().len() <= 1000);
        }
        // The newest rows are in the current file, the last before it in .1.
        let current = lines(&dir.path().join("samples.csv"));
        assert!(current.last().unwrap().contains(",199,"));
        assert_eq!(log.status().written, 200);
    }

    /// A batch written at once (as the writer thread does) rotates at the same boundaries as
    /// rows written one by one: whole rows, in order, no file past the size, every file with
    /// its header.
    #[test]
    fn a_queued_batch_is_written_in_whole_rows_and_rotates_like_single_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = CsvLog::open(dir.path(), "samples", 4000, 100).unwrap();
        for seq in 0..300 {
            log.queue(&row(seq));
        }
        log.flush_pending();
        assert_eq!(log.status().written, 300);
        let mut files: Vec<(u32, Vec<String>)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|name| {
                let generation = name
                    .strip_prefix("samples.")
                    .and_then(|n| n.strip_suffix(".csv"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let path = dir.path().join(&name);
                assert!(std::fs::metadata(&path).unwrap().len() <= 4000, "{name}");
                (generation, lines(&path))
            })
            .collect();
        assert!(files.len() > 5, "it rotated: {} files", files.len());
        // Oldest first: the highest generation.
        files.sort_by_key(|(g, _)| std::cmp::Reverse(*g));
        let mut seqs = Vec::new();
        for (g, l) in &files {
            assert_eq!(l[0], header(), "samples.{g}.csv");
            seqs.extend(
                l[1..]
                    .iter()
                    .map(|r| r.split(',').nth(1).unwrap().to_string()),
            );
        }
        let expected: Vec<String> = (0..300).map(|s: u64| s.to_string()).collect();
        assert_eq!(seqs, expected);
    }

    #[test]
    fn a_full_disk_keeps_rows_in_memory_and_writes_them_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        // /dev/full opens fine but refuses every write, like a full disk.
        let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 3).unwrap();
        log.append(&row(1));
        log.append(&row(2));
        let st = log.status();
        assert_eq!(st.pending, 2);
        assert!(
            st.error
                .as_deref()
                .unwrap_or("")
                .contains("No space left on device"),
            "{st:?}"
        );
        // Space returns (the path is now a real, empty file).
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        log.last_try = None;
        log.append(&row(3));
        assert_eq!(log.status().pending, 0);
        assert_eq!(log.status().error, None);
        let l = lines(&path);
        assert_eq!(l.len(), 4, "{l:?}");
        assert_eq!(l[0], header());
        assert!(l[1].contains(",1,20,") && l[2].contains(",2,40,") && l[3].contains(",3,60,"));
    }

    #[test]
    fn an_unwritable_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, "x").unwrap();
        let e = CsvLog::open(&file, "samples", 1 << 20, 3)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not-a-folder") && e.contains("--log-dir"), "{e}");
    }

    /// Power lost mid-write leaves a last row without its newline; the next start cuts it back
    /// to the last whole row instead of gluing the next row to it.
    #[test]
    fn a_torn_last_row_is_cut_back_on_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 2).unwrap();
            log.append(&row(1));
            log.append(&row(2));
        }
        let path = dir.path().join("samples.csv");
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"2026-11-24T10:00:00.000Z,3,60,0.5");
        std::fs::write(&path, &torn).unwrap();
        let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 2).unwrap();
        let note = log.status().repaired.unwrap_or_default();
        assert!(note.contains("cut a torn last row (33 bytes"), "{note}");
        log.append(&row(4));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], header());
        assert!(
            lines[3].starts_with("2026-11-24T10:00:00.000Z,4,"),
            "{text}"
        );
        assert!(text.starts_with(std::str::from_utf8(&whole).unwrap()));
        // A header cut short is torn too: the file starts again with the whole header.
        std::fs::write(&path, "host_time,seq,dev").unwrap();
        let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 2).unwrap();
        log.append(&row(5));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(header().as_str()));
        assert_eq!(text.lines().count(), 2);
    }

    /// A samples.csv that is not ours (another tool's, or older columns) is set aside whole,
    /// never appended to under a header that does not describe our rows.
    #[test]
    fn a_file_with_another_header_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        std::fs::write(&path, "time,reading\n1,2\n").unwrap();
        let mut log = CsvLog::open(dir.path(), "samples", 1 << 20, 2).unwrap();
        log.append(&row(1));
        let note = log.status().repaired.unwrap_or_default();
        assert!(
            note.contains("set it aside as") && note.contains("samples.old-1.csv"),
            "{note}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("samples.old-1.csv")).unwrap(),
            "time,reading\n1,2\n"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(header().as_str()));
        assert_eq!(text.lines().count(), 2);
        // Again: the next free name.
        std::fs::write(&path, "other\n").unwrap();
        drop(log);
        let log = CsvLog::open(dir.path(), "samples", 1 << 20, 2).unwrap();
        assert!(dir.path().join("samples.old-2.csv").exists());
        assert!(log.status().repaired.is_some());
    }
}
