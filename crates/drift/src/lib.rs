//! Data drift between a reference and a current CSV file, reproducing Evidently 0.7.23's
//! `DataDriftPreset` (column typing, default test choice, thresholds, scores) and its PSI,
//! plus prediction and performance drift, rendered as a JSON and a self-contained HTML
//! report.
//!
//! The entry point is [`run`]. Data is streamed: each file is read once in blocks parsed in
//! parallel; numeric columns go to sorted runs kept within a memory budget (spilling to
//! temporary files beyond it, see [`runs`]), text columns to per-value counts; every column
//! is then scored in parallel from merged walks over its runs.
//!
//! Architecture Invariant: no command-line parsing and no HTTP here; the crate takes typed
//! [`DriftOptions`] and returns a [`report::DriftReport`] or a [`DriftError`].

pub mod column;
pub mod error;
pub mod html;
pub mod ingest;
pub mod performance;
pub mod progress;
pub mod report;
pub mod runs;
pub mod special;
pub mod stats;

pub use error::{DriftError, Result};
pub use report::DriftReport;
pub use stats::StatTest;

use column::{ColumnOptions, Files, Outcome};
use ingest::Plan;
use progress::Progress;
use rayon::prelude::*;
use report::{DatasetSummary, PredictionDrift, SkippedColumn};
use std::path::{Path, PathBuf};

/// How to read the target/prediction pair for performance metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Task {
    /// Classification when every target is 0/1 (or targets and predictions are labels),
    /// regression otherwise.
    #[default]
    Auto,
    /// RMSE, MAE, mean error.
    Regression,
    /// Accuracy, share of positive predictions, confidence distribution.
    Classification,
}

/// Everything a drift computation needs.
#[derive(Clone, Debug)]
pub struct DriftOptions {
    /// Reference CSV (e.g. training data).
    pub reference: PathBuf,
    /// Current CSV (e.g. the production request log).
    pub current: PathBuf,
    /// Columns to compare; `None` compares every column present in both files.
    pub columns: Option<Vec<String>>,
    /// A column's PSI above this makes the drift significant.
    pub psi_threshold: f64,
    /// Share of drifted columns for dataset drift (≥, as Evidently) and significant drift (>).
    pub drift_share: f64,
    /// Per-column test overrides.
    pub stattests: Vec<(String, StatTest)>,
    /// Per-column threshold overrides.
    pub thresholds: Vec<(String, f64)>,
    /// Target column for performance metrics.
    pub target: Option<String>,
    /// Prediction column (prediction drift; performance with `target`).
    pub prediction: String,
    /// How to read target and prediction.
    pub task: Task,
    /// Bytes of numeric values kept in memory before spilling sorted runs to disk.
    pub memory_budget: usize,
    /// Where spilled runs go (the system temporary directory by default).
    pub temp_dir: Option<PathBuf>,
    /// Parser threads (all cores by default).
    pub threads: Option<usize>,
}

impl DriftOptions {
    /// Options with the CLI's defaults for two files.
    pub fn new(reference: impl Into<PathBuf>, current: impl Into<PathBuf>) -> Self {
        DriftOptions {
            reference: reference.into(),
            current: current.into(),
            columns: None,
            psi_threshold: 0.2,
            drift_share: 0.3,
            stattests: Vec::new(),
            thresholds: Vec::new(),
            target: None,
            prediction: "prediction".into(),
            task: Task::Auto,
            memory_budget: 16 << 20,
            temp_dir: None,
            threads: None,
        }
    }
}

/// Compares the current file with the reference file.
pub fn run(options: &DriftOptions, progress: &dyn Progress) -> Result<DriftReport> {
    validate(options)?;
    let ref_header = ingest::read_header(&options.reference)?;
    let cur_header = ingest::read_header(&options.current)?;
    let (names, mut skipped) = select_columns(options, &ref_header.names, &cur_header.names)?;
    let column_options = column_options(options, &names)?;

    let index_in = |h: &ingest::Header, n: &str| h.names.iter().position(|x| x == n);
    let plan_for = |h: &ingest::Header| Plan {
        indices: names.iter().map(|n| index_in(h, n).expect("selected columns exist")).collect(),
        pair: options.target.as_deref().and_then(|t| Some((index_in(h, t)?, index_in(h, &options.prediction)?))),
    };
    let budget = runs::Budget::new(options.memory_budget, names.len(), options.temp_dir.as_deref())?;
    let workers = options.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let total = file_len(&options.reference) + file_len(&options.current);
    progress.start("reading", total);
    let reference =
        ingest::read_file(&options.reference, &ref_header, &plan_for(&ref_header), &budget, workers, progress);
    let current = reference.and_then(|r| {
        ingest::read_file(&options.current, &cur_header, &plan_for(&cur_header), &budget, workers, progress)
            .map(|c| (r, c))
    });
    progress.finish();
    let (reference, current) = current?;

    let files = Files { reference: &options.reference, current: &options.current };
    let outcomes: Vec<Result<Outcome>> = names
        .par_iter()
        .enumerate()
        .map(|(i, name)| column::analyze(name, &reference.columns[i], &current.columns[i], files, &column_options[i]))
        .collect();
    let mut columns = Vec::new();
    for outcome in outcomes {
        match outcome? {
            Outcome::Tested(c) => columns.push(*c),
            Outcome::Skipped(s) => skipped.push(s),
        }
    }
    if columns.is_empty() {
        return Err(DriftError::NoColumns("every shared column was skipped as free text".into()));
    }

    let number_of_columns = columns.len() as u64;
    let number_of_drifted_columns = columns.iter().filter(|c| c.drift_detected).count() as u64;
    let share = number_of_drifted_columns as f64 / number_of_columns as f64;
    let max_psi = columns.iter().map(|c| c.psi).fold(f64::NEG_INFINITY, f64::max);
    let mut reasons = Vec::new();
    for c in columns.iter().filter(|c| c.psi > options.psi_threshold) {
        reasons.push(format!("column '{}': PSI {:.4} > {}", c.name, c.psi, options.psi_threshold));
    }
    if share > options.drift_share {
        reasons.push(format!(
            "{number_of_drifted_columns} of {number_of_columns} columns drifted ({:.1}% > {}%)",
            share * 100.0,
            options.drift_share * 100.0
        ));
    }
    let prediction_drift = columns.iter().find(|c| c.name == options.prediction).map(|c| PredictionDrift {
        column: c.name.clone(),
        stattest: c.stattest,
        drift_score: c.drift_score,
        threshold: c.threshold,
        drift_detected: c.drift_detected,
        psi: c.psi,
    });
    let performance = options.target.as_ref().and_then(|t| {
        performance::build(t, &options.prediction, options.task, reference.pairs.as_ref(), current.pairs.as_ref())
    });
    Ok(DriftReport {
        dataset_drift: share >= options.drift_share,
        share_of_drifted_columns: share,
        number_of_drifted_columns,
        number_of_columns,
        significant_drift: !reasons.is_empty(),
        significant_drift_reasons: reasons,
        drift_share: options.drift_share,
        psi_threshold: options.psi_threshold,
        max_psi,
        columns,
        skipped_columns: skipped,
        prediction_drift,
        performance,
        reference: DatasetSummary { path: options.reference.display().to_string(), rows: reference.rows },
        current: DatasetSummary { path: options.current.display().to_string(), rows: current.rows },
        evidently_version: report::EVIDENTLY_VERSION,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn validate(options: &DriftOptions) -> Result<()> {
    if !(options.psi_threshold.is_finite() && options.psi_threshold >= 0.0) {
        return Err(DriftError::InvalidOption(format!(
            "--psi-threshold must be a non-negative number, got {}",
            options.psi_threshold
        )));
    }
    if !(0.0..=1.0).contains(&options.drift_share) {
        return Err(DriftError::InvalidOption(format!(
            "--drift-share must be between 0 and 1, got {}",
            options.drift_share
        )));
    }
    if options.memory_budget < 1 << 20 {
        return Err(DriftError::InvalidOption("the memory budget must be at least 1 MiB".into()));
    }
    Ok(())
}

/// The compared columns (current file order) and those left out.
fn select_columns(
    options: &DriftOptions,
    reference: &[String],
    current: &[String],
) -> Result<(Vec<String>, Vec<SkippedColumn>)> {
    let mut skipped = Vec::new();
    let names: Vec<String> = match &options.columns {
        Some(wanted) => {
            for w in wanted {
                for (header, path) in [(reference, &options.reference), (current, &options.current)] {
                    if !header.contains(w) {
                        return Err(DriftError::MissingColumn {
                            column: w.clone(),
                            path: path.clone(),
                            available: header.join(", "),
                        });
                    }
                }
            }
            let mut seen = std::collections::HashSet::new();
            wanted.iter().filter(|w| seen.insert(w.as_str())).cloned().collect()
        }
        None => {
            for n in reference.iter().filter(|n| !current.contains(n)) {
                skipped.push(SkippedColumn { column: n.clone(), reason: "only in the reference file".into() });
            }
            for n in current.iter().filter(|n| !reference.contains(n)) {
                skipped.push(SkippedColumn { column: n.clone(), reason: "only in the current file".into() });
            }
            current.iter().filter(|n| reference.contains(n)).cloned().collect()
        }
    };
    if names.is_empty() {
        return Err(DriftError::NoColumns(format!(
            "{} and {} share no column",
            options.reference.display(),
            options.current.display()
        )));
    }
    Ok((names, skipped))
}

fn column_options(options: &DriftOptions, names: &[String]) -> Result<Vec<ColumnOptions>> {
    let mut out = vec![ColumnOptions::default(); names.len()];
    let find = |option: &'static str, col: &str| {
        names
            .iter()
            .position(|n| n == col)
            .ok_or_else(|| DriftError::UnknownOptionColumn { option, column: col.to_owned() })
    };
    for (col, test) in &options.stattests {
        out[find("--stattest", col)?].stattest = Some(*test);
    }
    for (col, t) in &options.thresholds {
        if !t.is_finite() {
            return Err(DriftError::InvalidOption(format!("threshold for '{col}' must be a number")));
        }
        out[find("--threshold", col)?].threshold = Some(*t);
    }
    Ok(out)
}
