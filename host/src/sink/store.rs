//! The embedded store: every judged point, every anomaly and every config change of a
//! device, in one SQLite file (bundled: nothing to install, no server), so any range of its
//! history can be drawn and exported long after the in-memory window has moved on.
//!
//! * Written by the disk writer's thread ([`super::csv::LogWriter`]): one transaction per
//!   flush (up to 8 of ingest's hand-overs), in WAL mode with `synchronous = NORMAL`: a commit
//!   survives the process being killed at any moment, and the file always opens.
//! * Rollups per second and per minute (min, max, sum, count, anomalies) are kept as the points
//!   come, so a week draws from ~10 000 minute rows instead of 600 million points.
//! * Retention by age and size: the oldest points (and second rollups) go first; anomalies,
//!   minute rollups and config changes go only by age.
//! * A full disk is reported (`/api/status` → `store.error`) and the rows that could not be
//!   stored are counted (`not_stored`); ingest goes on, and storing resumes with space.
//!
//! [`Reader`] answers ranges for the API ([`Reader::range`], decimated so spikes survive) and
//! `zscope export`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use crate::model::Method;
use crate::model::point::{Field, Kind};
use crate::model::{ConfigRecord, Entry, Point, Points, StoreStatus};

/// The store's file name, in the device's log folder.
pub const FILE: &str = "zscope.db";

/// How long the oldest data is kept, and how large the file may grow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Data older than this (by chart time) is deleted; `None`: kept.
    pub max_age: Option<Duration>,
    /// Past this size the oldest points are deleted; `None`: no limit.
    pub max_bytes: Option<u64>,
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Its folder cannot be made.
    #[error(
        "cannot make the folder {path} for the store: {source}. Pass another --log-dir (or --no-store)"
    )]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite cannot open or set up the file.
    #[error("cannot open the store {path}: {source}. {}", open_hint(.source))]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
}

/// What to do about a store SQLite cannot open, by its cause.
fn open_hint(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::NotADatabase | C::DatabaseCorrupt) => {
            "The file is damaged or is not a zscope store: move it aside (the daemon makes a \
             new one; `sqlite3 zscope.db .recover` may save its points), or pass --no-store"
        }
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            "Another program holds it locked: stop it (another zscope on the same --log-dir?), \
             or pass another --log-dir"
        }
        Some(C::DiskFull) => "The disk is full: free space, or pass another --log-dir",
        Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
            "Check that the folder and the file are writable, or pass another --log-dir (or \
             --no-store)"
        }
        _ => "Pass another --log-dir (or --no-store)",
    }
}

/// A rollup bucket being filled.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    /// Bucket number: chart time in ms divided by the bucket's length.
    n: i64,
    min: f64,
    max: f64,
    sum: f64,
    count: i64,
    anomalies: i64,
}

impl Bucket {
    fn empty(n: i64) -> Bucket {
        Bucket {
            n,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
            anomalies: 0,
        }
    }

    fn add(&mut self, value: f64, anomaly: bool) {
        if value.is_finite() {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
            self.sum += value;
            self.count += 1;
        }
        self.anomalies += i64::from(anomaly);
    }
}

/// The two rollup tables and their bucket lengths.
const ROLLUPS: [(&str, f64); 2] = [("rollup_1s", 1_000.0), ("rollup_1m", 60_000.0)];

/// The columns of a stored point (`samples` and `anomalies`): the point's own fields, derived
/// from its schema ([`Point::FIELDS`]: a real for a float, an integer otherwise), then when it
/// arrived and its ground truth.
fn point_columns() -> String {
    let mut columns: Vec<String> = Point::FIELDS
        .iter()
        .map(|(name, kind)| match kind {
            Kind::Real => format!("{name} REAL"),
            Kind::Integer => format!("{name} INTEGER NOT NULL"),
        })
        .collect();
    columns.extend([
        "host_ms INTEGER NOT NULL".into(),
        "truth INTEGER".into(),
        "PRIMARY KEY (t, seq)".into(),
    ]);
    columns.join(", ")
}

/// The names of a stored point's columns, in order (see [`point_columns`]).
fn column_names() -> String {
    let mut names: Vec<&str> = Point::FIELDS.iter().map(|(name, _)| *name).collect();
    names.extend(["host_ms", "truth"]);
    names.join(", ")
}

/// `?1, ?2, …`, one for each of a stored point's columns.
fn placeholders() -> String {
    (1..=Point::FIELDS.len() + 2)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bind `e` to `stmt`'s placeholders in [`column_names`]' order: NaN as NULL (SQLite has no
/// NaN; ±∞ is kept), integers as SQLite's (signed) integers.
fn bind(stmt: &mut rusqlite::Statement<'_>, e: &Entry) -> rusqlite::Result<()> {
    let mut i = 0;
    let mut result = Ok(());
    e.point.each(|f| {
        i += 1;
        if result.is_err() {
            return;
        }
        result = match f {
            Field::F64(v) => stmt.raw_bind_parameter(i, (!v.is_nan()).then_some(v)),
            Field::F32(v) => stmt.raw_bind_parameter(i, (!v.is_nan()).then_some(f64::from(v))),
            Field::U64(v) => stmt.raw_bind_parameter(i, v as i64),
        };
    });
    result?;
    stmt.raw_bind_parameter(i + 1, e.host_ms)?;
    let truth = e.truth.then_some(e.point.is_truth() as u8);
    stmt.raw_bind_parameter(i + 2, truth)
}

/// The columns of a rollup (`rollup_1s`, `rollup_1m`).
const ROLLUP_COLUMNS: &str = "
    bucket INTEGER PRIMARY KEY, min REAL, max REAL, sum REAL NOT NULL,
    count INTEGER NOT NULL, anomalies INTEGER NOT NULL";

/// Every table, created if missing.
fn schema() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS samples ({points}) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS anomalies ({points}) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS rollup_1s ({ROLLUP_COLUMNS});
         CREATE TABLE IF NOT EXISTS rollup_1m ({ROLLUP_COLUMNS});
         CREATE TABLE IF NOT EXISTS configs (
             host_ms INTEGER NOT NULL, version INTEGER NOT NULL, config TEXT NOT NULL,
             source TEXT NOT NULL DEFAULT '', unit TEXT NOT NULL DEFAULT '');",
        points = point_columns()
    )
}

/// How often retention runs.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Points wait at most this long for their transaction (or until [`COMMIT_POINTS`] wait):
/// one commit per 50 ms, not per batch, keeps a slow stream cheap. A `kill -9` can lose what
/// waits (it is in the CSV log already); what was committed stays.
pub const COMMIT_EVERY: Duration = Duration::from_millis(50);

/// Points that make a transaction at once.
pub const COMMIT_POINTS: usize = 8192;

/// A device's store, open for writing (by the log writer's thread).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    retention: Retention,
    /// The rollup buckets being filled: per second, per minute.
    buckets: [Option<Bucket>; 2],
    status: StoreStatus,
    last_trim: Instant,
    /// Points and configs waiting for the next commit.
    waiting: (Vec<Entry>, Vec<ConfigRecord>),
    /// When the oldest of them came.
    waiting_since: Option<Instant>,
    /// Why the file is known to be damaged (SQLite found it so while running): said in the
    /// status until the daemon stops, whatever later writes do (they may land on pages that
    /// are sound).
    damaged: Option<String>,
}

/// Whether `e` says the file itself is damaged.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

fn open_rw(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL: readers (the API, export) never wait for the writer; NORMAL: a commit survives
    // the process dying (not a power cut mid-checkpoint, which costs the last commits only).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(&schema())?;
    // A store from before sources: its configs gain the source and unit columns (empty for
    // the configs it holds: those devices did not say).
    let mut has_source = false;
    {
        let mut columns = conn.prepare("SELECT name FROM pragma_table_info('configs')")?;
        let mut rows = columns.query([])?;
        while let Some(r) = rows.next()? {
            has_source |= r.get::<_, String>(0)? == "source";
        }
    }
    if !has_source {
        conn.execute_batch(
            "ALTER TABLE configs ADD COLUMN source TEXT NOT NULL DEFAULT '';
             ALTER TABLE configs ADD COLUMN unit TEXT NOT NULL DEFAULT '';",
        )?;
    }
    Ok(conn)
}

impl Store {
    /// Open (or create) `dir/zscope.db`.
    pub fn open(dir: &Path, retention: Retention) -> Result<Store, StoreError> {
        let folder = |source| StoreError::Folder {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(folder)?;
        // Absolute, as the status shows it (the daemon may have been given a relative folder).
        let path = std::fs::canonicalize(dir).map_err(folder)?.join(FILE);
        let conn = open_rw(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Store {
            conn,
            status: StoreStatus {
                path: path.display().to_string(),
                ..StoreStatus::default()
            },
            path,
            retention,
            buckets: [None, None],
            last_trim: Instant::now() - TRIM_EVERY,
            waiting: (Vec::new(), Vec::new()),
            waiting_since: None,
            damaged: None,
        })
    }

    /// SQLite found the file damaged while `doing` something: said from now on.
    fn found_damage(&mut self, doing: &str, e: &rusqlite::Error) {
        if self.damaged.is_none() {
            let why = format!(
                "the store {} is damaged ({doing}: {e}). Its points go on to the CSV logs; \
                 stop the daemon and move the file aside (the daemon makes a new one; \
                 `sqlite3 zscope.db .recover` may save its points), or pass --no-store",
                self.path.display()
            );
            tracing::error!("{why}");
            self.damaged = Some(why);
        }
        self.status.error.clone_from(&self.damaged);
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `/api/status` shows.
    pub fn status(&self) -> StoreStatus {
        self.status.clone()
    }

    /// Store `entries` and `configs`: they join the next transaction, committed once
    /// [`COMMIT_EVERY`] has passed since the oldest waiting or [`COMMIT_POINTS`] wait (and by
    /// [`Store::flush_when_due`], [`Store::flush`]).
    pub fn write(&mut self, entries: &[Entry], configs: &[ConfigRecord]) {
        if entries.is_empty() && configs.is_empty() {
            return;
        }
        self.waiting.0.extend_from_slice(entries);
        self.waiting.1.extend_from_slice(configs);
        self.waiting_since.get_or_insert_with(Instant::now);
        if self.waiting.0.len() >= COMMIT_POINTS {
            self.flush();
        } else {
            self.flush_when_due();
        }
    }

    /// How long until the waiting points are due (`None`: none wait).
    pub fn due_in(&self) -> Option<Duration> {
        self.waiting_since
            .map(|since| COMMIT_EVERY.saturating_sub(since.elapsed()))
    }

    /// Commit what waits if it is due.
    pub fn flush_when_due(&mut self) {
        if self.due_in() == Some(Duration::ZERO) {
            self.flush();
        }
    }

    /// Commit what waits now.
    pub fn flush(&mut self) {
        self.waiting_since = None;
        let (mut entries, mut configs) = std::mem::take(&mut self.waiting);
        self.commit(&entries, &configs);
        // The vectors' room is kept for the next ones.
        entries.clear();
        configs.clear();
        self.waiting = (entries, configs);
    }

    /// Store `entries` and `configs` in one transaction; a failure is counted and reported,
    /// never fatal.
    fn commit(&mut self, entries: &[Entry], configs: &[ConfigRecord]) {
        if entries.is_empty() && configs.is_empty() {
            return;
        }
        let before = self.buckets;
        match self.try_write(entries, configs) {
            Ok(()) => {
                self.status.stored += entries.len() as u64;
                self.status.error.clone_from(&self.damaged);
            }
            Err(e) if is_damage(&e) => {
                self.buckets = before;
                self.status.not_stored += entries.len() as u64;
                self.found_damage("storing points", &e);
            }
            Err(e) => {
                // The rollups go back to what is stored.
                self.buckets = before;
                self.status.not_stored += entries.len() as u64;
                let why = format!(
                    "cannot store {} points in {}: {e}",
                    entries.len(),
                    self.path.display()
                );
                if self.status.error.as_deref() != Some(why.as_str()) {
                    tracing::error!("{why}");
                }
                self.status.error = Some(why);
            }
        }
        let newest = entries.last().map(|e| e.point.t);
        if let Some(newest) = newest.filter(|_| self.last_trim.elapsed() >= TRIM_EVERY) {
            self.last_trim = Instant::now();
            match self.trim(newest) {
                Ok(n) => self.status.expired += n,
                Err(e) if is_damage(&e) => self.found_damage("deleting old points", &e),
                Err(e) => tracing::warn!("retention in {}: {e}", self.path.display()),
            }
        }
    }

    fn try_write(&mut self, entries: &[Entry], configs: &[ConfigRecord]) -> rusqlite::Result<()> {
        let Store { conn, buckets, .. } = self;
        let tx = conn.transaction()?;
        {
            let (names, values) = (column_names(), placeholders());
            let mut sample = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO samples ({names}) VALUES ({values})"
            ))?;
            let mut anomaly = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO anomalies ({names}) VALUES ({values})"
            ))?;
            for e in entries {
                let p = &e.point;
                bind(&mut sample, e)?;
                sample.raw_execute()?;
                if p.is_anomaly() {
                    bind(&mut anomaly, e)?;
                    anomaly.raw_execute()?;
                }
                for (i, (table, len)) in ROLLUPS.iter().enumerate() {
                    let n = (p.t / len).floor() as i64;
                    let bucket = match &mut buckets[i] {
                        Some(b) if b.n == n => b,
                        slot => {
                            if let Some(done) = slot.take() {
                                save_bucket(&tx, table, &done)?;
                            }
                            slot.insert(load_bucket(&tx, table, n)?.unwrap_or(Bucket::empty(n)))
                        }
                    };
                    bucket.add(f64::from(p.value), p.is_anomaly());
                }
            }
            // The buckets being filled, as they are now (replaced as they fill).
            for (i, (table, _)) in ROLLUPS.iter().enumerate() {
                if let Some(b) = &buckets[i] {
                    save_bucket(&tx, table, b)?;
                }
            }
            let mut config = tx.prepare_cached(
                "INSERT INTO configs (host_ms, version, config, source, unit) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for c in configs {
                let json = serde_json::to_string(&c.config).unwrap_or_default();
                let source = c.source.map(|s| s.to_string()).unwrap_or_default();
                config.execute(params![c.host_ms, c.version, json, source, c.unit.symbol()])?;
            }
        }
        tx.commit()
    }

    /// Apply retention as of `now` (chart time, ms: the newest point, so a replay of old data
    /// or a wrong clock keeps its history); the points deleted.
    pub fn trim(&mut self, now: f64) -> rusqlite::Result<u64> {
        let mut deleted = 0;
        if let Some(age) = self.retention.max_age {
            let cutoff = now - age.as_millis() as f64;
            deleted +=
                self.conn
                    .execute("DELETE FROM samples WHERE t < ?1", [cutoff])? as u64;
            self.conn
                .execute("DELETE FROM anomalies WHERE t < ?1", [cutoff])?;
            for (table, len) in ROLLUPS {
                self.conn.execute(
                    &format!("DELETE FROM {table} WHERE bucket < ?1"),
                    [(cutoff / len).floor() as i64],
                )?;
            }
            self.conn
                .execute("DELETE FROM configs WHERE host_ms < ?1", [cutoff as i64])?;
        }
        if let Some(max) = self.retention.max_bytes {
            // Deleted pages are reused: the file stops growing at the limit. A tenth of the
            // points goes at a time, oldest first, with their second rollups.
            while self.used_bytes()? > max {
                let cut: Option<f64> = self
                    .conn
                    .query_row(
                        "SELECT t FROM samples ORDER BY t LIMIT 1 OFFSET \
                         (SELECT count(*) / 10 FROM samples)",
                        [],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(cut) = cut else { break };
                let n = self
                    .conn
                    .execute("DELETE FROM samples WHERE t < ?1", [cut])?
                    as u64;
                self.conn.execute(
                    "DELETE FROM rollup_1s WHERE bucket < ?1",
                    [(cut / 1_000.0).floor() as i64],
                )?;
                if n == 0 {
                    break;
                }
                deleted += n;
                // What counts is the pages in use: freed ones are reused, not returned.
                if self.used_bytes()? <= max {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Bytes in pages holding data (the file's size less its free pages).
    fn used_bytes(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    #[cfg(test)]
    fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for Store {
    /// What waits is committed when the store closes (the daemon stopping).
    fn drop(&mut self) {
        self.flush();
    }
}

fn load_bucket(conn: &Connection, table: &str, n: i64) -> rusqlite::Result<Option<Bucket>> {
    conn.query_row(
        &format!("SELECT min, max, sum, count, anomalies FROM {table} WHERE bucket = ?1"),
        [n],
        |r| {
            Ok(Bucket {
                n,
                min: r.get::<_, Option<f64>>(0)?.unwrap_or(f64::INFINITY),
                max: r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NEG_INFINITY),
                sum: r.get(2)?,
                count: r.get(3)?,
                anomalies: r.get(4)?,
            })
        },
    )
    .optional()
}

fn save_bucket(conn: &Connection, table: &str, b: &Bucket) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} (bucket, min, max, sum, count, anomalies) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?;
    stmt.execute(params![
        b.n,
        b.min.is_finite().then_some(b.min),
        b.max.is_finite().then_some(b.max),
        b.sum,
        b.count,
        b.anomalies
    ])?;
    Ok(())
}

/// A range of a device's history with at most a given number of columns: each column's
/// min, max, mean, count and anomalies (from the points, or from rollups when a column spans
/// a second or more), plus every anomaly in the range, exactly.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Range {
    /// Where the columns come from: `points`, `seconds` or `minutes`.
    pub source: &'static str,
    /// A column's width, ms.
    pub bucket_ms: f64,
    /// Each column's start (chart time, ms since the Unix epoch); empty columns are left out.
    pub t: Vec<f64>,
    /// The smallest value in the column.
    pub min: Vec<Option<f64>>,
    /// The largest.
    pub max: Vec<Option<f64>>,
    /// The mean.
    pub mean: Vec<Option<f64>>,
    /// How many points.
    pub count: Vec<i64>,
    /// How many of them flagged.
    pub flagged: Vec<i64>,
    /// Every anomaly in the range (up to `MAX_ANOMALIES`, the latest).
    pub anomalies: Points,
    /// Whether older anomalies in the range were left out.
    pub anomalies_truncated: bool,
}

/// Anomalies a range answer carries at most.
pub const MAX_ANOMALIES: usize = 10_000;

/// What one config version judged with, as the store recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The source (`simulator`, `temperature`, ...; empty for a device that did not say).
    pub source: String,
    /// Its unit's symbol (or empty).
    pub unit: String,
    /// The detector (`None` where the recorded config does not read as one).
    pub detector: Option<Method>,
}

/// A read-only view of a device's store (the API, `zscope export`): any number at once,
/// beside the writer.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Open `path` for reading.
    pub fn open(path: &Path) -> rusqlite::Result<Reader> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Reader { conn })
    }

    /// The history in `[from, to]` (chart time, ms) as at most `columns` columns.
    pub fn range(&self, from: f64, to: f64, columns: usize) -> rusqlite::Result<Range> {
        let columns = columns.clamp(1, 100_000);
        let width = ((to - from) / columns as f64).max(1.0);
        let (source, sql) = if width >= 60_000.0 {
            ("minutes", rollup_sql("rollup_1m", 60_000.0))
        } else if width >= 1_000.0 {
            ("seconds", rollup_sql("rollup_1s", 1_000.0))
        } else {
            (
                "points",
                "SELECT CAST((t - ?1) / ?3 AS INTEGER) AS c, min(value), max(value), \
                 avg(value), count(value), sum(flags & 1) \
                 FROM samples WHERE t >= ?1 AND t <= ?2 GROUP BY c ORDER BY c"
                    .to_string(),
            )
        };
        let mut range = Range {
            source,
            bucket_ms: width,
            ..Range::default()
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![from, to, width])?;
        while let Some(r) = rows.next()? {
            let c: i64 = r.get(0)?;
            range.t.push(from + c as f64 * width);
            range.min.push(r.get(1)?);
            range.max.push(r.get(2)?);
            range.mean.push(r.get(3)?);
            range.count.push(r.get::<_, Option<i64>>(4)?.unwrap_or(0));
            range.flagged.push(r.get::<_, Option<i64>>(5)?.unwrap_or(0));
        }
        let (anomalies, truncated) = self.anomalies(from, to, MAX_ANOMALIES)?;
        range.anomalies = anomalies.iter().collect();
        range.anomalies_truncated = truncated;
        Ok(range)
    }

    /// The anomalies in `[from, to]`, the latest `limit`; whether there were more.
    pub fn anomalies(
        &self,
        from: f64,
        to: f64,
        limit: usize,
    ) -> rusqlite::Result<(Vec<Point>, bool)> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM anomalies WHERE t >= ?1 AND t <= ?2 ORDER BY t DESC LIMIT ?3",
            column_names()
        ))?;
        let mut points: Vec<Point> = stmt
            .query_map(params![from, to, limit as i64 + 1], |r| Ok(stored(r)?.0))?
            .collect::<rusqlite::Result<_>>()?;
        let truncated = points.len() > limit;
        points.truncate(limit);
        points.reverse();
        Ok((points, truncated))
    }

    /// What each config version judged with: its source, unit and detector (the latest
    /// record of each version: a source change is acknowledged before the hello that names
    /// the new source).
    pub fn versions(&self) -> rusqlite::Result<std::collections::HashMap<u32, Version>> {
        let mut stmt = self
            .conn
            .prepare("SELECT version, source, unit, config FROM configs ORDER BY host_ms, rowid")?;
        let mut rows = stmt.query([])?;
        let mut out = std::collections::HashMap::new();
        while let Some(r) = rows.next()? {
            let config: String = r.get(3)?;
            let detector = serde_json::from_str::<zscope_core::DetectorConfig>(&config)
                .ok()
                .map(|c| Method::of(c.baseline));
            let version = Version {
                source: r.get(1)?,
                unit: r.get(2)?,
                detector,
            };
            out.insert(r.get::<_, u32>(0)?, version);
        }
        Ok(out)
    }

    /// Every stored point in `[from, to]`, oldest first, to `each` (with its arrival time and
    /// whether its source had ground truth): `zscope export`. Memory stays flat.
    pub fn each_point(
        &self,
        from: f64,
        to: f64,
        mut each: impl FnMut(&Point, i64, bool) -> std::io::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM samples WHERE t >= ?1 AND t <= ?2 ORDER BY t, seq",
            column_names()
        ))?;
        let mut rows = stmt.query(params![from, to])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let (p, host_ms, truth) = stored(r)?;
            each(&p, host_ms, truth)?;
            n += 1;
        }
        Ok(n)
    }

    /// The first and last chart times stored.
    pub fn span(&self) -> rusqlite::Result<Option<(f64, f64)>> {
        self.conn
            .query_row("SELECT min(t), max(t) FROM samples", [], |r| {
                Ok(
                    match (r.get::<_, Option<f64>>(0)?, r.get::<_, Option<f64>>(1)?) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ => None,
                    },
                )
            })
    }
}

fn rollup_sql(table: &str, len: f64) -> String {
    format!(
        "SELECT CAST((bucket * {len} - ?1) / ?3 AS INTEGER) AS c, min(min), max(max), \
         sum(sum) / nullif(sum(count), 0), sum(count), sum(anomalies) \
         FROM {table} WHERE bucket >= CAST(?1 / {len} AS INTEGER) - (?1 < 0) \
         AND bucket * {len} <= ?2 GROUP BY c ORDER BY c"
    )
}

/// A stored point, with when it arrived and whether its source had ground truth, from a row
/// of [`column_names`] (NULL reals as NaN).
fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Point, i64, bool)> {
    let mut i = 0;
    let mut result = Ok(());
    let point = Point::from_fields(|kind| {
        let got = match kind {
            Kind::Real => r
                .get::<_, Option<f64>>(i)
                .map(|v| Field::F64(v.unwrap_or(f64::NAN))),
            Kind::Integer => r.get::<_, i64>(i).map(|v| Field::U64(v as u64)),
        };
        i += 1;
        got.unwrap_or_else(|e| {
            result = Err(e);
            Field::U64(0)
        })
    });
    result?;
    let truth: Option<u8> = r.get(i + 1)?;
    Ok((point, r.get(i)?, truth.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zscope_core::wire::Flags;

    /// A point at chart time `t` (ms) with `value`, flagged if `anomaly`.
    #[test]
    fn a_store_from_before_sources_gains_their_columns_and_records_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE configs (host_ms INTEGER NOT NULL, version INTEGER NOT NULL, \
                 config TEXT NOT NULL); INSERT INTO configs VALUES (1, 1, '{}');",
            )
            .unwrap();
        }
        let mut store = Store::open(dir.path(), no_retention()).unwrap();
        let record = |host_ms, version, source| ConfigRecord {
            host_ms,
            version,
            config: zscope_core::DetectorConfig::default(),
            source,
            unit: zscope_core::source::Unit::Celsius,
        };
        // Version 2 acknowledged while the old source was in force, then its hello.
        let configs = [
            record(2, 2, Some(zscope_core::source::Source::Simulator)),
            record(3, 2, Some(zscope_core::source::Source::Temperature)),
        ];
        store.write(&[], &configs);
        store.flush();
        let versions = Reader::open(&path).unwrap().versions().unwrap();
        let said = |v: u32| {
            let v = &versions[&v];
            (v.source.as_str(), v.unit.as_str(), v.detector)
        };
        assert_eq!(said(1), ("", "", None));
        assert_eq!(said(2), ("temperature", "°C", Some(Method::Adaptive)));
    }

    fn entry(t: f64, seq: u64, value: f32, anomaly: bool) -> Entry {
        Entry {
            point: Point {
                t,
                seq,
                device_time_ms: seq * 10,
                value,
                mean: 0.0,
                std: 1.0,
                z: value,
                score: 0.5,
                threshold: 3.0,
                window: 64,
                config_version: 1,
                flags: if anomaly { Flags::ANOMALY } else { 0 },
                lost_before: 0,
            },
            host_ms: t as i64,
            truth: false,
            source: None,
            unit: zscope_core::source::Unit::None,
            detector: None,
        }
    }

    /// A day at one point every 10 s (8 640 points) from `t0`, value a slow wave, with a
    /// spike at `spike` and anomalies every 1000th point.
    fn day(store: &mut Store, t0: f64, spike: u64) -> Vec<Entry> {
        let entries: Vec<Entry> = (0..8640u64)
            .map(|i| {
                let v = if i == spike {
                    1000.0
                } else {
                    (i as f32 / 500.0).sin()
                };
                entry(t0 + i as f64 * 10_000.0, i, v, i % 1000 == 0)
            })
            .collect();
        for chunk in entries.chunks(500) {
            store.write(chunk, &[]);
            store.flush();
        }
        entries
    }

    fn no_retention() -> Retention {
        Retention {
            max_age: None,
            max_bytes: None,
        }
    }

    #[test]
    fn ranges_keep_extremes_and_every_anomaly_at_every_zoom() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), no_retention()).unwrap();
        let t0 = 1_700_000_000_000.0;
        let entries = day(&mut store, t0, 4321);
        assert_eq!(store.status().stored, 8640);
        let reader = Reader::open(store.path()).unwrap();
        let end = t0 + 86_400_000.0;
        // A day in 200 columns (432 s each): from the minute rollups.
        let r = reader.range(t0, end, 200).unwrap();
        assert_eq!(r.source, "minutes");
        assert!(r.t.len() <= 200, "{}", r.t.len());
        assert_eq!(r.count.iter().sum::<i64>(), 8640);
        assert_eq!(r.flagged.iter().sum::<i64>(), 9);
        let top = r.max.iter().flatten().fold(f64::MIN, |a, b| a.max(*b));
        assert_eq!(top, 1000.0, "the spike survives decimation");
        // Every anomaly, exactly, whatever the zoom.
        let seqs: Vec<u64> = (0..9).map(|i| i * 1000).collect();
        assert_eq!(r.anomalies.seq, seqs);
        // An hour in 100 columns (36 s): from the second rollups.
        let r = reader.range(t0, t0 + 3_600_000.0, 100).unwrap();
        assert_eq!(r.source, "seconds");
        assert_eq!(r.count.iter().sum::<i64>(), 361);
        // Ten minutes in 1000 columns (0.6 s): from the points themselves.
        let r = reader
            .range(t0 + 43_000_000.0, t0 + 43_600_000.0, 1000)
            .unwrap();
        assert_eq!(r.source, "points");
        assert_eq!(r.count.iter().sum::<i64>(), 61, "both ends included");
        assert_eq!(r.anomalies.seq, [] as [u64; 0]);
        let r = reader
            .range(t0 + 43_000_000.0, t0 + 43_300_000.0, 1000)
            .unwrap();
        let spike = r.max.iter().flatten().fold(f64::MIN, |a, b| a.max(*b));
        assert_eq!(spike, 1000.0);
        // Means agree with the points.
        let r = reader.range(t0, end, 1).unwrap();
        let mean = entries
            .iter()
            .map(|e| f64::from(e.point.value))
            .sum::<f64>()
            / 8640.0;
        assert!(
            (r.mean[0].unwrap() - mean).abs() < 1e-9,
            "{:?} vs {mean}",
            r.mean
        );
        // Export reads every point back as it was stored.
        let mut back = Vec::new();
        let n = reader
            .each_point(f64::MIN, f64::MAX, |p, _, _| {
                back.push(*p);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 8640);
        assert!(back.iter().zip(&entries).all(|(a, b)| *a == b.point));
    }

    #[test]
    fn a_restart_inside_a_bucket_adds_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = 1_700_000_000_000.0;
        {
            let mut store = Store::open(dir.path(), no_retention()).unwrap();
            store.write(
                &[entry(t0, 0, 1.0, false), entry(t0 + 100.0, 1, 5.0, true)],
                &[],
            );
            store.flush();
        }
        let mut store = Store::open(dir.path(), no_retention()).unwrap();
        store.write(&[entry(t0 + 200.0, 0, -2.0, false)], &[]);
        store.flush();
        let r = Reader::open(store.path())
            .unwrap()
            .range(t0, t0 + 999.0, 1)
            .unwrap();
        assert_eq!(r.source, "points");
        let rollup = load_bucket(store.connection(), "rollup_1s", (t0 / 1000.0) as i64)
            .unwrap()
            .unwrap();
        assert_eq!((rollup.min, rollup.max, rollup.count), (-2.0, 5.0, 3));
        assert_eq!(rollup.anomalies, 1);
        assert_eq!(r.count, [3]);
    }

    /// A point comes back as it went in, field for field (the columns are the schema's): a flat
    /// window's infinite z stays infinite (not JSON's 1e30), a value not sent (NaN) comes back
    /// NaN, the largest sequence numbers survive SQLite's signed integers.
    #[test]
    fn a_point_comes_back_as_it_went_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), no_retention()).unwrap();
        let mut e = entry(1_700_000_000_000.0, 12, 2.5, true);
        e.point.seq = u64::MAX - 3;
        e.point.z = f32::NEG_INFINITY;
        e.point.score = f32::NAN;
        e.point.lost_before = 7;
        e.truth = true;
        store.write(&[e], &[]);
        store.flush();
        let reader = Reader::open(store.path()).unwrap();
        let (got, _) = reader.anomalies(0.0, f64::MAX, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].score.is_nan());
        assert_eq!(got[0].z, f32::NEG_INFINITY);
        assert_eq!(
            Point {
                score: 0.0,
                ..got[0]
            },
            Point {
                score: 0.0,
                ..e.point
            }
        );
        let mut seen = Vec::new();
        reader
            .each_point(0.0, f64::MAX, |p, host_ms, truth| {
                seen.push((p.seq, host_ms, truth));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(u64::MAX - 3, e.host_ms, true)]);
    }

    /// A full disk (SQLite's own "database or disk is full", from a page limit): rows are
    /// counted as not stored, the error is said, ingest is not stopped, and storing resumes
    /// once there is room; what was committed stays.
    #[test]
    fn a_full_disk_is_reported_counted_and_survived() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), no_retention()).unwrap();
        let t0 = 1_700_000_000_000.0;
        store.write(&[entry(t0, 0, 1.0, false)], &[]);
        store.flush();
        let pages: i64 = store
            .connection()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        store
            .connection()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let batch: Vec<Entry> = (1..5001)
            .map(|i| entry(t0 + i as f64, i, i as f32, false))
            .collect();
        store.write(&batch, &[]);
        store.flush();
        let s = store.status();
        assert_eq!((s.stored, s.not_stored), (1, 5000));
        assert!(s.error.as_deref().unwrap_or("").contains("full"), "{s:?}");
        store
            .connection()
            .pragma_update(None, "max_page_count", 1_000_000_000)
            .unwrap();
        store.write(&batch[..10], &[]);
        store.flush();
        let s = store.status();
        assert_eq!((s.stored, s.not_stored, s.error), (11, 5000, None));
        let reader = Reader::open(store.path()).unwrap();
        assert_eq!(
            reader
                .range(t0, t0 + 999.0, 10)
                .unwrap()
                .count
                .iter()
                .sum::<i64>(),
            11
        );
    }

    #[test]
    fn retention_by_age_and_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(
            dir.path(),
            Retention {
                max_age: Some(Duration::from_secs(12 * 3600)),
                max_bytes: None,
            },
        )
        .unwrap();
        let t0 = 1_700_000_000_000.0;
        day(&mut store, t0, 100);
        let end = t0 + 86_400_000.0;
        let deleted = store.trim(end).unwrap();
        assert_eq!(deleted, 4320);
        let reader = Reader::open(store.path()).unwrap();
        let (first, _) = reader.span().unwrap().unwrap();
        assert!(first >= end - 43_200_000.0, "{first}");
        // Rollups and anomalies go with them: a range across the boundary counts what is kept
        // (rollups go by whole buckets: the minute the cut falls in stays whole, 6 points here).
        let r = reader.range(t0, end, 100).unwrap();
        assert_eq!(r.source, "minutes");
        let counted = r.count.iter().sum::<i64>();
        assert!((4320..4326).contains(&counted), "{counted}");
        let r = reader.range(t0, end, 100_000).unwrap();
        assert_eq!(r.source, "points");
        assert_eq!(r.count.iter().sum::<i64>(), 4320);
        assert!(r.anomalies.t.iter().all(|t| *t >= end - 43_200_000.0));
        drop(reader);
        // By size: past the limit the oldest go first, and the file's data shrinks under it.
        let mut store = Store::open(
            dir.path(),
            Retention {
                max_age: None,
                max_bytes: Some(200 << 10),
            },
        )
        .unwrap();
        let deleted = store.trim(end).unwrap();
        assert!(deleted > 0);
        assert!(store.used_bytes().unwrap() <= 200 << 10);
        let reader = Reader::open(store.path()).unwrap();
        let (first, last) = reader.span().unwrap().unwrap();
        assert!(
            first > end - 43_200_000.0 && last == end - 10_000.0,
            "{first} {last}"
        );
    }
}
