//! The Numenta Anomaly Benchmark's scoring rules, in Rust: `zscope eval --nab DIR`.
//!
//! A [`Corpus`] is a NAB checkout's data files with their labelled windows and scoring profiles
//! (`data/**/*.csv`, `labels/combined_windows.json`, `config/profiles.json`). [`Corpus::score`]
//! scores one anomaly score per row of every file exactly as NAB's `run.py --optimize --score
//! --normalize` does:
//!
//! * the first `min(floor(0.15·rows), 750)` rows of a file are probationary and not scored;
//! * inside a window only the earliest detection counts, weighted by a scaled sigmoid of its
//!   position (about +1 at the window's start, 0 at its end); a window with no detection costs
//!   `fnWeight`; a detection outside every window costs up to `fpWeight` (less just after a
//!   window);
//! * per profile, one threshold on the score is chosen for the whole corpus, the one that
//!   maximises the total (the highest such threshold on ties, as NAB's stable sort picks);
//! * the total is normalised against the null detector (no detections: 0) and a perfect one
//!   (100).
//!
//! [`Corpus::score_at`] skips the optimisation and counts `score >= threshold` as a detection:
//! the score of a detector *as configured* (0/1 flags scored at threshold 1).
//!
//! This module reads files and computes; it does not run detectors (see [`crate::batch::eval`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::batch::dataset::parse_time;

/// NAB's probationary share of a file, and the cap on its length (`0.15 · 5000`).
const PROBATION_PERCENT: f64 = 0.15;

/// Why a NAB corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what NAB's layout says it should be.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The results for one file do not match it.
    #[error("{file}: {message}")]
    Results {
        /// The data file (relative to `data/`).
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// One scoring profile's weights (`config/profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostMatrix {
    /// Weight of a detected window.
    pub tp_weight: f64,
    /// Weight of a false detection.
    pub fp_weight: f64,
    /// Cost of a missed window.
    pub fn_weight: f64,
}

#[derive(Debug, Deserialize)]
struct ProfileEntry {
    #[serde(rename = "CostMatrix")]
    cost_matrix: CostMatrix,
}

/// A named profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// `standard`, `reward_low_FP_rate` or `reward_low_FN_rate`.
    pub name: String,
    /// Its weights.
    pub costs: CostMatrix,
}

/// Where a row stands for scoring.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// In the probationary period: never scored.
    Probation,
    /// Inside labelled window number `id` (corpus-wide), with its unweighted sigmoid reward.
    Window { id: u32, reward: f64 },
    /// Outside every window, with its unweighted (negative) sigmoid cost.
    Outside { cost: f64 },
}

/// One data file of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// Path relative to `data/`, with `/` separators, as NAB names it.
    pub name: String,
    /// Timestamps, ms since the epoch.
    pub timestamps: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
    places: Vec<Place>,
}

/// A NAB corpus, ready to score detectors on.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The data files, sorted by name.
    pub files: Vec<CorpusFile>,
    /// The scoring profiles, sorted by name.
    pub profiles: Vec<Profile>,
    /// Labelled windows in the corpus (NAB's "perfect" count).
    pub windows: usize,
}

/// One profile's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileScore {
    /// Profile name.
    pub profile: String,
    /// The threshold used (chosen, or given).
    pub threshold: f64,
    /// The raw total.
    pub raw: f64,
    /// Normalised: null detector 0, perfect 100.
    pub normalized: f64,
    /// Windows with at least one detection.
    pub windows_hit: usize,
    /// Detections outside every window (probation excluded).
    pub fp_rows: usize,
}

/// NAB's scaled sigmoid: +0.987 at a window's left edge (-1), 0 at its right edge, towards -1
/// past it; -1 beyond 3.
fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

fn probation_length(rows: usize) -> usize {
    let p = (PROBATION_PERCENT * rows as f64).floor();
    p.min(PROBATION_PERCENT * 5000.0) as usize
}

/// The rows' places, replaying `Sweeper.calcSweepScore` (window entry by exact timestamp match,
/// the right edge found by its first occurrence).
fn places(timestamps: &[i64], windows: &[(i64, i64)], first_id: u32) -> Result<Vec<Place>, String> {
    let index_of = |t: i64| {
        timestamps
            .iter()
            .position(|&x| x == t)
            .ok_or_else(|| format!("window edge {t} ms is not a timestamp of the file"))
    };
    let probation = probation_length(timestamps.len());
    let mut pending = windows.iter().enumerate().peekable();
    // (id, start, right index, width) of the window we are in.
    let mut current: Option<(u32, i64, usize, f64)> = None;
    let mut previous: Option<(usize, f64)> = None;
    let mut out = Vec::with_capacity(timestamps.len());
    for (i, &t) in timestamps.iter().enumerate() {
        if let Some(&(k, &(start, end))) = pending.peek()
            && t == start
        {
            pending.next();
            let right = index_of(end)?;
            let width = (right as f64) - (index_of(start)? as f64) + 1.0;
            current = Some((first_id + k as u32, end, right, width));
        }
        let place = match current {
            Some((id, _, right, width)) => Place::Window {
                id,
                reward: scaled_sigmoid(-((right as f64) - i as f64 + 1.0) / width),
            },
            None => Place::Outside {
                cost: match previous {
                    None => -1.0,
                    Some((right, width)) => {
                        scaled_sigmoid((right as f64 - i as f64).abs() / (width - 1.0))
                    }
                },
            },
        };
        out.push(if i >= probation {
            place
        } else {
            Place::Probation
        });
        if let Some((_, end, _, width)) = current
            && t == end
        {
            previous = Some((i, width));
            current = None;
        }
    }
    if pending.peek().is_some() {
        return Err("a labelled window starts at no timestamp of the file".into());
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, NabError> {
    std::fs::read_to_string(path).map_err(|source| NabError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), NabError> {
    let entries = std::fs::read_dir(dir).map_err(|source| NabError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| NabError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            csv_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "csv") {
            out.push(path);
        }
    }
    Ok(())
}

/// Read a NAB data file's timestamp and value columns.
fn read_data(path: &Path) -> Result<(Vec<i64>, Vec<f64>), NabError> {
    let invalid = |message: String| NabError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| invalid(e.to_string()))?;
    let headers = reader.headers().map_err(|e| invalid(e.to_string()))?;
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| invalid(format!("no `{name}` column")))
    };
    let (t_col, v_col) = (column("timestamp")?, column("value")?);
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| invalid(e.to_string()))?;
        let line = n + 2;
        let t = record
            .get(t_col)
            .and_then(parse_time)
            .ok_or_else(|| invalid(format!("line {line}: bad timestamp")))?;
        let v = record
            .get(v_col)
            .and_then(|f| f.trim().parse::<f64>().ok())
            .ok_or_else(|| invalid(format!("line {line}: bad value")))?;
        ts.push(t);
        vs.push(v);
    }
    Ok((ts, vs))
}

impl Corpus {
    /// Read the corpus in a NAB checkout: `data/`, `labels/combined_windows.json`,
    /// `config/profiles.json`.
    pub fn load(dir: &Path) -> Result<Corpus, NabError> {
        let labels_path = dir.join("labels").join("combined_windows.json");
        let labels: HashMap<String, Vec<(String, String)>> =
            serde_json::from_str(&read(&labels_path)?).map_err(|e| NabError::Invalid {
                path: labels_path.clone(),
                message: e.to_string(),
            })?;
        let profiles_path = dir.join("config").join("profiles.json");
        let profiles: HashMap<String, ProfileEntry> = serde_json::from_str(&read(&profiles_path)?)
            .map_err(|e| NabError::Invalid {
                path: profiles_path.clone(),
                message: e.to_string(),
            })?;
        let mut profiles: Vec<Profile> = profiles
            .into_iter()
            .map(|(name, p)| Profile {
                name,
                costs: p.cost_matrix,
            })
            .collect();
        profiles.sort_by(|a, b| a.name.cmp(&b.name));

        let data_dir = dir.join("data");
        let mut paths = Vec::new();
        csv_files(&data_dir, &mut paths)?;
        paths.sort();
        let mut files = Vec::new();
        let mut windows = 0usize;
        for path in paths {
            let name = path
                .strip_prefix(&data_dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let Some(limits) = labels.get(&name) else {
                continue; // NAB scores only labelled files.
            };
            let mut parsed = Vec::with_capacity(limits.len());
            for (a, b) in limits {
                let edge = |s: &str| {
                    parse_time(s).ok_or_else(|| NabError::Invalid {
                        path: labels_path.clone(),
                        message: format!("{name}: bad window edge {s:?}"),
                    })
                };
                parsed.push((edge(a)?, edge(b)?));
            }
            let (timestamps, values) = read_data(&path)?;
            let places = places(&timestamps, &parsed, windows as u32).map_err(|message| {
                NabError::Invalid {
                    path: path.clone(),
                    message,
                }
            })?;
            windows += parsed.len();
            files.push(CorpusFile {
                name,
                timestamps,
                values,
                places,
            });
        }
        if files.is_empty() {
            return Err(NabError::Invalid {
                path: data_dir,
                message: "no labelled data files (is this a NAB checkout?)".into(),
            });
        }
        Ok(Corpus {
            files,
            profiles,
            windows,
        })
    }

    /// Rows in all files.
    pub fn rows(&self) -> usize {
        self.files.iter().map(|f| f.values.len()).sum()
    }

    fn check(&self, scores: &[Vec<f64>]) -> Result<(), NabError> {
        if scores.len() != self.files.len() {
            return Err(NabError::Results {
                file: String::new(),
                message: format!(
                    "{} score lists for {} files",
                    scores.len(),
                    self.files.len()
                ),
            });
        }
        for (f, s) in self.files.iter().zip(scores) {
            if s.len() != f.values.len() {
                return Err(NabError::Results {
                    file: f.name.clone(),
                    message: format!("{} scores for {} rows", s.len(), f.values.len()),
                });
            }
            if let Some(i) = s.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Err(NabError::Results {
                    file: f.name.clone(),
                    message: format!("row {}: score {} is outside [0, 1]", i + 1, s[i]),
                });
            }
        }
        Ok(())
    }

    /// Score `scores` (one list per file, in [`Corpus::files`] order, one score in [0, 1] per
    /// row) with the threshold NAB's optimiser chooses for each profile.
    pub fn score(&self, scores: &[Vec<f64>]) -> Result<Vec<ProfileScore>, NabError> {
        self.check(scores)?;
        Ok(self
            .profiles
            .iter()
            .map(|p| {
                let threshold = self.optimise(scores, &p.costs).0;
                self.tally(scores, p, threshold)
            })
            .collect())
    }

    /// Score with a fixed threshold in every profile: `score >= threshold` is a detection.
    pub fn score_at(
        &self,
        scores: &[Vec<f64>],
        threshold: f64,
    ) -> Result<Vec<ProfileScore>, NabError> {
        self.check(scores)?;
        Ok(self
            .profiles
            .iter()
            .map(|p| self.tally(scores, p, threshold))
            .collect())
    }

    /// The threshold (and raw total) that maximise the total: `Sweeper.calcScoreByThreshold`.
    fn optimise(&self, scores: &[Vec<f64>], costs: &CostMatrix) -> (f64, f64) {
        let max_tp = scaled_sigmoid(-1.0);
        let mut points: Vec<(f64, Place)> = Vec::with_capacity(self.rows());
        for (f, s) in self.files.iter().zip(scores) {
            points.extend(
                s.iter()
                    .zip(&f.places)
                    .filter(|(_, p)| **p != Place::Probation)
                    .map(|(&x, &p)| (x, p)),
            );
        }
        points.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut best_window: HashMap<u32, f64> = HashMap::new();
        for (_, p) in &points {
            if let Place::Window { id, .. } = p {
                best_window.insert(*id, -costs.fn_weight);
            }
        }
        let mut total: f64 = best_window.values().sum();
        let mut current = 1.1;
        let mut best = (current, total);
        for (x, p) in points {
            if x != current {
                if total > best.1 {
                    best = (current, total);
                }
                current = x;
            }
            match p {
                Place::Window { id, reward } => {
                    let w = reward * costs.tp_weight / max_tp;
                    let slot = best_window.entry(id).or_insert(-costs.fn_weight);
                    if w > *slot {
                        total += w - *slot;
                        *slot = w;
                    }
                }
                Place::Outside { cost } => total += cost * costs.fp_weight,
                Place::Probation => {}
            }
        }
        if total > best.1 {
            best = (current, total);
        }
        best
    }

    /// The raw null-detector total for `costs` (every row scored 0.5, then optimised).
    fn null_total(&self, costs: &CostMatrix) -> f64 {
        let null: Vec<Vec<f64>> = self
            .files
            .iter()
            .map(|f| vec![0.5; f.values.len()])
            .collect();
        self.optimise(&null, costs).1
    }

    fn tally(&self, scores: &[Vec<f64>], profile: &Profile, threshold: f64) -> ProfileScore {
        let costs = &profile.costs;
        let max_tp = scaled_sigmoid(-1.0);
        let mut raw = 0.0;
        let mut windows_hit = 0;
        let mut fp_rows = 0;
        for (f, s) in self.files.iter().zip(scores) {
            let mut best: HashMap<u32, f64> = HashMap::new();
            for (&x, &p) in s.iter().zip(&f.places) {
                match p {
                    Place::Probation => {}
                    Place::Window { id, reward } => {
                        let slot = best.entry(id).or_insert(-costs.fn_weight);
                        if x >= threshold {
                            *slot = slot.max(reward * costs.tp_weight / max_tp);
                        }
                    }
                    Place::Outside { cost } => {
                        if x >= threshold {
                            raw += cost * costs.fp_weight;
                            fp_rows += 1;
                        }
                    }
                }
            }
            windows_hit += best.values().filter(|&&v| v > -costs.fn_weight).count();
            raw += best.values().sum::<f64>();
        }
        let null = self.null_total(costs);
        let perfect = self.windows as f64 * costs.tp_weight;
        ProfileScore {
            profile: profile.name.clone(),
            threshold,
            raw,
            normalized: 100.0 * (raw - null) / (perfect - null),
            windows_hit,
            fp_rows,
        }
    }

    /// How many scored (non-probationary) rows share the top score, and how many rows are
    /// scored: NAB's optimiser cannot cut between tied rows.
    pub fn top_ties(&self, scores: &[Vec<f64>]) -> (f64, usize, usize) {
        let scored = || {
            self.files
                .iter()
                .zip(scores)
                .flat_map(|(f, s)| f.places.iter().zip(s))
                .filter(|(p, _)| **p != Place::Probation)
                .map(|(_, &x)| x)
        };
        let top = scored().fold(f64::NEG_INFINITY, f64::max);
        let ties = scored().filter(|&x| x == top).count();
        (top, ties, scored().count())
    }

    /// Read a NAB results folder (`<dir>/<category>/<detector>_<file>.csv`, with an
    /// `anomaly_score` column), one list per corpus file: the published results of NAB's own
    /// detectors, or any tool's.
    pub fn read_results(&self, dir: &Path) -> Result<Vec<Vec<f64>>, NabError> {
        let mut out = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let (category, base) = f.name.rsplit_once('/').unwrap_or(("", &f.name));
            let folder = dir.join(category);
            let wanted = format!("_{base}");
            let entries = std::fs::read_dir(&folder).map_err(|source| NabError::Read {
                path: folder.clone(),
                source,
            })?;
            let mut found = None;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(&wanted) {
                    found = Some(e.path());
                    break;
                }
            }
            let path = found.ok_or_else(|| NabError::Results {
                file: f.name.clone(),
                message: format!("no <detector>{wanted} in {}", folder.display()),
            })?;
            let invalid = |message: String| NabError::Invalid {
                path: path.clone(),
                message,
            };
            let mut reader = csv::Reader::from_path(&path).map_err(|e| invalid(e.to_string()))?;
            let col = reader
                .headers()
                .map_err(|e| invalid(e.to_string()))?
                .iter()
                .position(|h| h == "anomaly_score")
                .ok_or_else(|| invalid("no anomaly_score column".into()))?;
            let mut scores = Vec::with_capacity(f.values.len());
            for r in reader.records() {
                let r = r.map_err(|e| invalid(e.to_string()))?;
                let x = r
                    .get(col)
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| invalid(format!("bad score on row {}", scores.len() + 1)))?;
                scores.push(x);
            }
            out.push(scores);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sigmoid_matches_nab() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-15);
        assert!((scaled_sigmoid(-0.5) - 0.848_283_639_957_512_9).abs() < 1e-15);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert_eq!(probation_length(1000), 150);
        assert_eq!(probation_length(20_000), 750);
    }

    /// A corpus of one file small enough to score by hand: 20 rows a minute apart, one window
    /// over rows 8..=11, probation rows 0..=2 (floor(0.15 * 20)).
    fn mini_corpus() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data/cat")).unwrap();
        std::fs::create_dir_all(root.join("labels")).unwrap();
        std::fs::create_dir_all(root.join("config")).unwrap();
        let mut data = String::from("timestamp,value\n");
        for i in 0..20 {
            data += &format!("2020-01-01 00:{i:02}:00,{}\n", i % 3);
        }
        std::fs::write(root.join("data/cat/mini.csv"), data).unwrap();
        std::fs::write(
            root.join("labels/combined_windows.json"),
            r#"{"cat/mini.csv": [["2020-01-01 00:08:00.000000", "2020-01-01 00:11:00.000000"]]}"#,
        )
        .unwrap();
        std::fs::write(
            root.join("config/profiles.json"),
            r#"{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}},
                "reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0}},
                "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}}}"#,
        )
        .unwrap();
        dir
    }

    /// Worked out by hand, and pinned against NAB's own scorer (../shared/eval/nab on the same
    /// files gave 97.6177 / 98.3495 / 97.6177):
    ///
    /// * a detection at row 9 (score 1.0) sits at -(11 - 9 + 1)/4 = -0.75 in the window:
    ///   2/(1 + e^-3.75) - 1 = 0.95404, over the maximum 0.98661: +0.96699;
    /// * a score of 0.8 at row 15 lies below the chosen threshold (1.0: adding it costs
    ///   0.11 * 0.99746), so the raw total is 0.96699 in every profile;
    /// * the null detector (every row 0.5) is best off flagging everything where false
    ///   positives are cheap: window +1.0, 13 rows outside costing 1.38568 * fpWeight:
    ///   -0.38568 for standard and low FN (better than missing the window: -1, -2), -1 for
    ///   low FP (-1.77137 otherwise);
    /// * normalised: 100 * (0.96699 + 0.38568) / (1 + 0.38568) = 97.618 (standard, low FN),
    ///   100 * (0.96699 + 1) / 2 = 98.350 (low FP).
    #[test]
    fn a_hand_worked_corpus_scores_as_nab_does() {
        let dir = mini_corpus();
        let corpus = Corpus::load(dir.path()).unwrap();
        assert_eq!(
            (corpus.files.len(), corpus.windows, corpus.rows()),
            (1, 1, 20)
        );
        let mut scores = vec![0.0; 20];
        scores[9] = 1.0;
        scores[15] = 0.8;
        let got = corpus.score(&[scores.clone()]).unwrap();
        let by = |name: &str| got.iter().find(|p| p.profile == name).unwrap().clone();
        for (name, want) in [
            ("standard", 97.6177),
            ("reward_low_FP_rate", 98.3495),
            ("reward_low_FN_rate", 97.6177),
        ] {
            let p = by(name);
            assert!((p.normalized - want).abs() < 1e-4, "{name}: {p:?}");
            assert_eq!(
                (p.threshold, p.windows_hit, p.fp_rows),
                (1.0, 1, 0),
                "{name}"
            );
        }
        assert!((by("standard").raw - 0.966_99).abs() < 1e-5);
        // As configured at 0.8: the false positive at row 15 counts too.
        let at = corpus.score_at(&[scores], 0.8).unwrap();
        let standard = at.iter().find(|p| p.profile == "standard").unwrap();
        assert_eq!((standard.windows_hit, standard.fp_rows), (1, 1));
        assert!((standard.raw - (0.966_99 - 0.11 * 0.997_46)).abs() < 1e-5);
    }

    #[test]
    fn results_that_do_not_fit_are_refused_with_the_file_named() {
        let dir = mini_corpus();
        let corpus = Corpus::load(dir.path()).unwrap();
        let e = corpus.score(&[vec![0.0; 19]]).unwrap_err().to_string();
        assert!(
            e.contains("cat/mini.csv") && e.contains("19 scores for 20 rows"),
            "{e}"
        );
        let mut bad = vec![0.0; 20];
        bad[4] = 1.5;
        let e = corpus.score(&[bad]).unwrap_err().to_string();
        assert!(e.contains("row 5: score 1.5 is outside [0, 1]"), "{e}");
        let e = Corpus::load(&dir.path().join("nowhere"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("combined_windows.json"), "{e}");
    }
}
