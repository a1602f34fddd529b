//! Data drift between a reference and a current CSV file, reproducing Evidently 0.7.23's
//! `DataDriftPreset` (column typing, default test choice, thresholds, scores) and its PSI;
//! free-text columns drift-tested through Evidently's text descriptors ([`text`]);
//! prediction drift (predicted label, probability, share of positives); realised
//! performance, with labels joined later by request id ([`labels`]); and performance
//! estimated before labels arrive, as NannyML's CBPE ([`performance`]). Rendered as a JSON
//! and a self-contained HTML report.
//!
//! The entry point is [`run`]. Data is streamed: each file is read in blocks parsed in
//! parallel; numeric columns and text descriptors go to sorted runs kept within a memory
//! budget (spilling to temporary files beyond it, see [`runs`]), categorical text to
//! per-value counts, outcomes to counts, sums and runs ([`outcome`]); every column is then
//! scored in parallel from merged walks over its runs. The reference is read a second time
//! (its text columns only) for the out-of-vocabulary descriptor, whose vocabulary is the
//! whole reference.
//!
//! Architecture Invariant: no command-line parsing and no HTTP here; the crate takes typed
//! [`DriftOptions`] and returns a [`report::DriftReport`] or a [`DriftError`].

pub mod column;
pub mod error;
mod fields;
pub mod html;
pub mod ingest;
pub mod labels;
pub mod online;
pub mod outcome;
pub mod performance;
pub mod progress;
pub mod report;
pub mod runs;
pub mod special;
pub mod stats;
pub mod text;

pub use error::{DriftError, Result};
pub use report::DriftReport;
pub use stats::StatTest;

use column::{ColumnOptions, Files};
use ingest::{ColumnData, FileData, Header, Plan, TextPlan};
use outcome::OutcomePlan;
use progress::Progress;
use rayon::prelude::*;
use report::{
    ColumnReport, DatasetSummary, DescriptorOf, OutputDrift, PredictionDrift, SkippedColumn, TextColumn,
    VocabularySummary,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use text::{Descriptor, Vocabulary};

/// How to read the target/prediction pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Task {
    /// Classification when there are probabilities or at most two label values, regression
    /// otherwise.
    #[default]
    Auto,
    /// RMSE, MAE, mean error.
    Regression,
    /// Binary classification metrics, prediction drift with shares of positives, CBPE.
    Classification,
}

/// Counters of a vocabulary sketch by default: 2^24 (4 MiB per text column).
pub const VOCABULARY_BITS: u32 = 24;

/// Everything a drift computation needs.
#[derive(Clone, Debug)]
pub struct DriftOptions {
    /// Reference CSV (e.g. training data, scored by the champion).
    pub reference: PathBuf,
    /// Current CSV (e.g. the production request log).
    pub current: PathBuf,
    /// Columns to compare; `None` compares every column present in both files.
    pub columns: Option<Vec<String>>,
    /// Free-text columns, described (text descriptors) instead of counted per value.
    pub text_columns: Vec<String>,
    /// A word list (one or more words a line) for the OOV descriptor instead of the
    /// reference's own words.
    pub vocabulary: Option<PathBuf>,
    /// log2 of the counters in each vocabulary sketch.
    pub vocabulary_bits: u32,
    /// A column's PSI above this makes the drift significant.
    pub psi_threshold: f64,
    /// Share of drifted columns for dataset drift (≥, as Evidently) and significant drift (>).
    pub drift_share: f64,
    /// Per-column test overrides.
    pub stattests: Vec<(String, StatTest)>,
    /// Per-column threshold overrides.
    pub thresholds: Vec<(String, f64)>,
    /// Per-column fixed PSI bin edges (a model's reference profile's, `sketch::Profile`)
    /// instead of Evidently's Sturges bins over both samples; values beyond them count in the
    /// end bins.
    pub psi_edges: Vec<(String, Vec<f64>)>,
    /// Target (true label) column for performance metrics.
    pub target: Option<String>,
    /// Prediction column: predicted label (classification) or value (regression).
    pub prediction: String,
    /// Probability-of-the-positive-class column (classification).
    pub probability: String,
    /// The positive class; by default `1` for 0/1 labels and `True` for booleans.
    pub pos_label: Option<String>,
    /// Without a prediction column, a probability at or above this predicts the positive class.
    pub decision_threshold: f64,
    /// Request id column (never compared; the key that joins `labels` to predictions).
    pub id_column: String,
    /// Labels that arrived later: a CSV with `id_column` and `target`.
    pub labels: Option<PathBuf>,
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
            text_columns: Vec::new(),
            vocabulary: None,
            vocabulary_bits: VOCABULARY_BITS,
            psi_threshold: 0.2,
            drift_share: 0.3,
            stattests: Vec::new(),
            thresholds: Vec::new(),
            psi_edges: Vec::new(),
            target: None,
            prediction: "prediction".into(),
            probability: "probability".into(),
            pos_label: None,
            decision_threshold: 0.5,
            id_column: "request_id".into(),
            labels: None,
            task: Task::Auto,
            memory_budget: 16 << 20,
            temp_dir: None,
            threads: None,
        }
    }

    /// Whether predicted labels come from the probability (no separate prediction column).
    fn derived_prediction(&self, current: &Header) -> bool {
        self.prediction == self.probability || !current.names.contains(&self.prediction)
    }
}

/// Why drift over `columns` is significant (empty when it is not): each column whose PSI
/// exceeds `psi_threshold`, and the share of drifted columns when it exceeds `drift_share`.
/// The report's `significant_drift_reasons` over all its columns; callers may pass a subset
/// (e.g. the loop, the features without a classifier's outputs).
pub fn significance<'a>(
    columns: impl IntoIterator<Item = &'a report::ColumnReport> + Clone,
    psi_threshold: f64,
    drift_share: f64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let (mut n, mut drifted) = (0u64, 0u64);
    for c in columns.clone() {
        n += 1;
        drifted += u64::from(c.drift_detected);
        if c.psi > psi_threshold {
            reasons.push(format!("column '{}': PSI {:.4} > {}", c.name, c.psi, psi_threshold));
        }
    }
    let share = drifted as f64 / n as f64;
    if share > drift_share {
        reasons.push(format!("{drifted} of {n} columns drifted ({:.1}% > {}%)", share * 100.0, drift_share * 100.0));
    }
    reasons
}

/// A report of the compared `columns` with its dataset-level figures; the rest (text columns,
/// prediction drift, performance) is filled in by the caller when it has them.
fn report_of(
    options: &DriftOptions,
    columns: Vec<ColumnReport>,
    skipped: Vec<SkippedColumn>,
    (reference, current): (DatasetSummary, DatasetSummary),
) -> DriftReport {
    let number_of_columns = columns.len() as u64;
    let number_of_drifted_columns = columns.iter().filter(|c| c.drift_detected).count() as u64;
    let share = number_of_drifted_columns as f64 / number_of_columns as f64;
    let reasons = significance(&columns, options.psi_threshold, options.drift_share);
    DriftReport {
        dataset_drift: share >= options.drift_share,
        share_of_drifted_columns: share,
        number_of_drifted_columns,
        number_of_columns,
        significant_drift: !reasons.is_empty(),
        significant_drift_reasons: reasons,
        drift_share: options.drift_share,
        psi_threshold: options.psi_threshold,
        max_psi: columns.iter().map(|c| c.psi).fold(f64::NEG_INFINITY, f64::max),
        columns,
        skipped_columns: skipped,
        text_columns: Vec::new(),
        prediction_drift: None,
        performance: None,
        estimated_performance: None,
        reference,
        current,
        evidently_version: report::EVIDENTLY_VERSION,
    }
}

/// Compares the current file with the reference file.
pub fn run(options: &DriftOptions, progress: &dyn Progress) -> Result<DriftReport> {
    validate(options)?;
    let ref_header = ingest::read_header(&options.reference)?;
    let cur_header = ingest::read_header(&options.current)?;
    let (names, skipped) = select_columns(options, &ref_header.names, &cur_header.names)?;
    for t in &options.text_columns {
        if !names.contains(t) {
            return Err(DriftError::UnknownOptionColumn { option: "--text-columns", column: t.clone() });
        }
    }
    check_option_columns(options, &names)?;
    let fixed = match &options.vocabulary {
        Some(path) => {
            let list = std::fs::read_to_string(path).map_err(|e| DriftError::io(path, e))?;
            Some(Arc::new(Vocabulary::from_word_list(&list, options.vocabulary_bits)))
        }
        None => None,
    };
    let new_vocabulary = || fixed.clone().unwrap_or_else(|| Arc::new(Vocabulary::new(options.vocabulary_bits)));
    let mut vocabularies: Vec<Option<Arc<Vocabulary>>> =
        names.iter().map(|n| options.text_columns.contains(n).then(new_vocabulary)).collect();
    let mut sources: Vec<Option<&'static str>> = vocabularies.iter().map(|v| v.as_ref().map(|_| "declared")).collect();

    let derived = options.derived_prediction(&cur_header);
    let index_in = |h: &Header, n: &str| h.names.iter().position(|x| x == n);
    let outcomes_for = |h: &Header| OutcomePlan {
        target: options.target.as_deref().and_then(|t| index_in(h, t)),
        prediction: if derived { None } else { index_in(h, &options.prediction) },
        probability: index_in(h, &options.probability),
        threshold: options.decision_threshold,
    };
    let plan_for = |h: &Header, subset: &[usize], text: &dyn Fn(usize) -> Option<TextPlan>, outcomes: bool| Plan {
        indices: subset.iter().map(|&i| index_in(h, &names[i]).expect("selected columns exist")).collect(),
        text: subset.iter().map(|&i| text(i)).collect(),
        outcomes: if outcomes { outcomes_for(h) } else { OutcomePlan::default() },
    };
    let declared = vocabularies.iter().flatten().count();
    // Run buffers are sized per sorted stream: each column, five per free-text column, and
    // the probability runs (three target slots per side that has probabilities).
    let scored = [&ref_header, &cur_header].iter().filter(|h| h.names.contains(&options.probability)).count()
        + usize::from(options.labels.is_some());
    let streams = names.len() + 5 * declared + 3 * scored;
    let budget = runs::Budget::new(options.memory_budget, streams, options.temp_dir.as_deref())?;
    let workers = options.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let read = |path: &Path, header: &Header, plan: &Plan, progress: &dyn Progress| {
        ingest::read_file(path, header, plan, &budget, workers, progress)
    };
    let all: Vec<usize> = (0..names.len()).collect();
    // How each side reads a free-text column: the reference builds the vocabulary (or is
    // judged against a fixed one), the current data is judged against it.
    let reference_text = |v: &Option<Arc<Vocabulary>>| {
        v.as_ref().map(|v| TextPlan {
            describe: true,
            build: (!v.is_fixed()).then(|| v.clone()),
            oov: v.is_fixed().then(|| (v.clone(), v.rule(true))),
        })
    };
    let current_text = |v: &Option<Arc<Vocabulary>>| {
        v.as_ref().map(|v| TextPlan { describe: true, build: None, oov: Some((v.clone(), v.rule(false))) })
    };

    let ref_len = file_len(&options.reference);
    let oov_pass_len = if fixed.is_none() && declared > 0 { ref_len } else { 0 };
    progress.start("reading", ref_len + file_len(&options.current) + oov_pass_len);
    let result = (|| -> Result<(FileData, FileData)> {
        let mut reference = read(
            &options.reference,
            &ref_header,
            &plan_for(&ref_header, &all, &|i| reference_text(&vocabularies[i]), true),
            progress,
        )?;
        let mut current = read(
            &options.current,
            &cur_header,
            &plan_for(&cur_header, &all, &|i| current_text(&vocabularies[i]), true),
            progress,
        )?;

        // Text columns counted per value that turn out to be free text (Evidently's rule, on
        // the current data) are described from their tables, or read again as free text
        // when a table overflowed.
        let mut reread = Vec::new();
        for i in 0..names.len() {
            let (ColumnData::Text(r), ColumnData::Text(c)) = (&reference.columns[i], &current.columns[i]) else {
                continue;
            };
            if !column::is_free_text(c) {
                if r.overflow {
                    return Err(DriftError::TooManyCategories {
                        column: names[i].clone(),
                        path: options.reference.clone(),
                        limit: format!("{} values or {} MiB", ingest::MAX_CATEGORIES, ingest::MAX_TABLE_BYTES >> 20),
                    });
                }
                continue;
            }
            sources[i] = Some("detected");
            if r.overflow || c.overflow {
                vocabularies[i] = Some(new_vocabulary());
                reread.push(i);
                continue;
            }
            let vocabulary = fixed.clone().unwrap_or_else(|| {
                let v = Vocabulary::new(options.vocabulary_bits);
                ingest::build_vocabulary(r, &v);
                Arc::new(v)
            });
            let rd = ingest::describe_table(r, &budget, Some((&vocabulary, vocabulary.rule(true))))?;
            let cd = ingest::describe_table(c, &budget, Some((&vocabulary, vocabulary.rule(false))))?;
            reference.columns[i] = ColumnData::FreeText(rd);
            current.columns[i] = ColumnData::FreeText(cd);
            vocabularies[i] = Some(vocabulary);
        }
        if !reread.is_empty() {
            let silent = progress::Silent;
            let r = read(
                &options.reference,
                &ref_header,
                &plan_for(&ref_header, &reread, &|i| reference_text(&vocabularies[i]), false),
                &silent,
            )?;
            let c = read(
                &options.current,
                &cur_header,
                &plan_for(&cur_header, &reread, &|i| current_text(&vocabularies[i]), false),
                &silent,
            )?;
            for ((&i, rc), cc) in reread.iter().zip(r.columns).zip(c.columns) {
                reference.columns[i] = rc;
                current.columns[i] = cc;
            }
        }
        // The reference's OOV descriptor needs its whole vocabulary: one more read of the
        // streamed free-text columns.
        let oov: Vec<usize> = (0..names.len())
            .filter(|&i| matches!(&reference.columns[i], ColumnData::FreeText(f) if f.descriptors[Descriptor::OovWordsPercentage.index()].is_none()))
            .collect();
        if !oov.is_empty() {
            let text = |i: usize| {
                vocabularies[i].as_ref().map(|v| TextPlan {
                    describe: false,
                    build: None,
                    oov: Some((v.clone(), v.rule(true))),
                })
            };
            let again = read(&options.reference, &ref_header, &plan_for(&ref_header, &oov, &text, false), progress)?;
            for (&i, col) in oov.iter().zip(again.columns) {
                if let (ColumnData::FreeText(mine), ColumnData::FreeText(theirs)) = (&mut reference.columns[i], col) {
                    mine.fill_from(theirs);
                }
            }
        }
        Ok((reference, current))
    })();
    progress.finish();
    let (reference, current) = result?;

    let columns = analyze_columns(options, &names, &reference, &current)?;
    let text_columns = text_summaries(&names, &sources, &vocabularies, &reference, &current);

    let labelled = match &options.labels {
        Some(path) => {
            let Some(target) = options.target.as_deref() else {
                return Err(DriftError::InvalidOption("--labels needs --target (the label column's name)".into()));
            };
            let spec = labels::JoinSpec {
                labels: path,
                current: &options.current,
                id_column: &options.id_column,
                target,
                prediction: (!derived).then_some(options.prediction.as_str()),
                probability: cur_header.names.contains(&options.probability).then_some(options.probability.as_str()),
                threshold: options.decision_threshold,
                memory: options.memory_budget,
                temp_dir: options.temp_dir.as_deref(),
            };
            Some(labels::join(&spec, &budget)?.0)
        }
        None => None,
    };
    let labels_source = options.labels.as_ref().map(|p| p.display().to_string());
    let side = |o: &Option<outcome::Outcomes>, path: &Path| o.as_ref().map(|_| path.display().to_string());
    let (ref_source, cur_source) =
        (side(&reference.outcomes, &options.reference), side(&current.outcomes, &options.current));
    let setup = performance::Setup {
        target: options.target.as_deref().unwrap_or(""),
        prediction: &options.prediction,
        probability: &options.probability,
        task: options.task,
        pos_label: options.pos_label.as_deref(),
        derived_prediction: derived,
    };
    fn mk<'a>(o: &'a Option<outcome::Outcomes>, s: &'a Option<String>) -> Option<performance::Side<'a>> {
        Some(performance::Side { outcomes: o.as_ref()?, source: s.as_deref()? })
    }
    let built = performance::build(
        &setup,
        mk(&reference.outcomes, &ref_source),
        mk(&current.outcomes, &cur_source),
        labelled.as_ref().zip(labels_source.as_deref()).map(|(o, s)| performance::Side { outcomes: o, source: s }),
    )?;

    let find = |name: &str| columns.iter().find(|c| c.name == name).map(OutputDrift::of);
    let prediction = if derived { None } else { find(&options.prediction) };
    let probability = find(&options.probability);
    let prediction_drift = (prediction.is_some() || probability.is_some()).then(|| PredictionDrift {
        drift_detected: prediction.iter().chain(&probability).any(|c| c.drift_detected),
        prediction,
        probability,
        pos_label: built.pos_label.clone(),
        reference_share_of_positives: built.share_of_positives.0,
        current_share_of_positives: built.share_of_positives.1,
    });
    let summaries = (
        DatasetSummary { path: options.reference.display().to_string(), rows: reference.rows },
        DatasetSummary { path: options.current.display().to_string(), rows: current.rows },
    );
    Ok(DriftReport {
        text_columns,
        prediction_drift,
        performance: built.performance,
        estimated_performance: built.estimated,
        ..report_of(options, columns, skipped, summaries)
    })
}

/// The compared units: plain columns, and each descriptor of a free-text column in its place.
fn analyze_columns(
    options: &DriftOptions,
    names: &[String],
    reference: &FileData,
    current: &FileData,
) -> Result<Vec<ColumnReport>> {
    enum Unit<'a> {
        Column(usize),
        Descriptor(&'a ingest::NumericData, &'a ingest::NumericData, DescriptorOf),
    }
    let mut units = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match (&reference.columns[i], &current.columns[i]) {
            (ColumnData::FreeText(r), ColumnData::FreeText(c)) => {
                for d in Descriptor::ALL {
                    if let (Some(rd), Some(cd)) = (&r.descriptors[d.index()], &c.descriptors[d.index()]) {
                        units.push(Unit::Descriptor(rd, cd, DescriptorOf::new(name, d)));
                    }
                }
            }
            _ => units.push(Unit::Column(i)),
        }
    }
    let unit_name = |u: &Unit<'_>| match u {
        Unit::Column(i) => names[*i].clone(),
        Unit::Descriptor(_, _, of) => of.descriptor_column(),
    };
    let unit_names: Vec<String> = units.iter().map(unit_name).collect();
    let column_options = column_options(options, &unit_names)?;
    let files = Files { reference: &options.reference, current: &options.current };
    let reports: Vec<Result<ColumnReport>> = units
        .par_iter()
        .zip(&column_options)
        .map(|(u, o)| match u {
            Unit::Column(i) => column::analyze(&names[*i], &reference.columns[*i], &current.columns[*i], files, o),
            Unit::Descriptor(r, c, of) => column::analyze_descriptor(r, c, o, of.clone()),
        })
        .collect();
    reports.into_iter().collect()
}

/// The `text_columns` section: which columns became descriptors, and their vocabularies.
fn text_summaries(
    names: &[String],
    sources: &[Option<&'static str>],
    vocabularies: &[Option<Arc<Vocabulary>>],
    reference: &FileData,
    current: &FileData,
) -> Vec<TextColumn> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (ColumnData::FreeText(r), ColumnData::FreeText(c), Some(v)) =
            (&reference.columns[i], &current.columns[i], &vocabularies[i])
        else {
            continue;
        };
        out.push(TextColumn {
            column: name.clone(),
            source: sources[i].unwrap_or("detected"),
            reference_values: r.values,
            current_values: c.values,
            descriptors: Descriptor::ALL.iter().map(|d| d.column_name(name)).collect(),
            vocabulary: VocabularySummary {
                source: if v.is_fixed() { "file" } else { "reference" },
                counters: v.counters(),
                bytes: v.bytes(),
                estimated_words: v.estimated_words(),
                false_positive_rate: v.false_positive_rate(),
            },
        });
    }
    out
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
    if !(0.0..=1.0).contains(&options.decision_threshold) {
        return Err(DriftError::InvalidOption(format!(
            "--decision-threshold must be between 0 and 1, got {}",
            options.decision_threshold
        )));
    }
    if options.memory_budget < 1 << 20 {
        return Err(DriftError::InvalidOption("the memory budget must be at least 1 MiB".into()));
    }
    if !(10..=32).contains(&options.vocabulary_bits) {
        return Err(DriftError::InvalidOption(format!(
            "the vocabulary sketch needs 10 to 32 bits of counters, got {}",
            options.vocabulary_bits
        )));
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
            if reference.contains(&options.id_column) && current.contains(&options.id_column) {
                skipped.push(SkippedColumn { column: options.id_column.clone(), reason: "request id column".into() });
            }
            current.iter().filter(|n| reference.contains(n) && **n != options.id_column).cloned().collect()
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

/// Checks before reading that `--stattest`/`--threshold` name a compared column or one of a
/// compared column's descriptors (`<column>.<descriptor>`).
fn check_option_columns(options: &DriftOptions, names: &[String]) -> Result<()> {
    let known = |col: &str| names.iter().any(|n| n == col || Descriptor::ALL.iter().any(|d| d.column_name(n) == col));
    let named = options.stattests.iter().map(|(c, _)| ("--stattest", c));
    for (option, col) in named.chain(options.thresholds.iter().map(|(c, _)| ("--threshold", c))) {
        if !known(col) {
            return Err(DriftError::UnknownOptionColumn { option, column: col.clone() });
        }
    }
    Ok(())
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
    for (col, edges) in &options.psi_edges {
        if edges.len() < 2 || edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DriftError::InvalidOption(format!(
                "PSI edges for '{col}' must be at least two finite, ascending numbers"
            )));
        }
        // Edges for a column not compared here (e.g. a profile's column the files lack) are
        // not an error: a profile covers every feature of its model.
        if let Some(i) = names.iter().position(|n| n == col) {
            out[i].psi_edges = Some(edges.clone());
        }
    }
    Ok(out)
}
