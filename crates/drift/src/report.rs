//! The drift report: plain data produced by [`crate::run`], serialised as the JSON report
//! (fields named as the issue fixes them, plus extras) and rendered to HTML by [`crate::html`].

use crate::stats::{ColumnType, StatTest};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Evidently version whose `DataDriftPreset` this report reproduces.
pub const EVIDENTLY_VERSION: &str = "0.7.23";

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct DriftReport {
    /// Share of drifted columns ≥ `drift_share` (Evidently's dataset drift rule).
    pub dataset_drift: bool,
    /// Drifted columns / compared columns.
    pub share_of_drifted_columns: f64,
    /// Columns whose test detected drift.
    pub number_of_drifted_columns: u64,
    /// Columns compared.
    pub number_of_columns: u64,
    /// Some column's PSI > `psi_threshold`, or share of drifted columns > `drift_share`.
    pub significant_drift: bool,
    /// Why `significant_drift` holds (empty when it does not).
    pub significant_drift_reasons: Vec<String>,
    /// Share threshold used for `dataset_drift` and `significant_drift`.
    pub drift_share: f64,
    /// PSI threshold used for `significant_drift`.
    pub psi_threshold: f64,
    /// Largest per-column PSI.
    pub max_psi: f64,
    /// Per-column results, in the current file's column order.
    #[serde(serialize_with = "columns_as_map")]
    pub columns: Vec<ColumnReport>,
    /// Columns not compared, with the reason.
    pub skipped_columns: Vec<SkippedColumn>,
    /// Free-text columns, tested through their descriptors.
    pub text_columns: Vec<TextColumn>,
    /// Drift of the prediction and probability columns, when there are such.
    pub prediction_drift: Option<PredictionDrift>,
    /// Model quality in each file, when targets and predictions are present.
    pub performance: Option<Performance>,
    /// Model quality estimated from probabilities (CBPE), for classifiers.
    pub estimated_performance: Option<EstimatedPerformance>,
    /// The reference file.
    pub reference: DatasetSummary,
    /// The current file.
    pub current: DatasetSummary,
    /// Evidently version reproduced.
    pub evidently_version: &'static str,
}

/// One file.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetSummary {
    /// Path as given.
    pub path: String,
    /// Data rows.
    pub rows: u64,
}

/// One compared column.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnReport {
    /// Column name (the key in the JSON map).
    #[serde(skip)]
    pub name: String,
    /// Evidently column type.
    pub column_type: ColumnType,
    /// Registry name of the test.
    #[serde(serialize_with = "stattest_name")]
    pub stattest: StatTest,
    /// Evidently's display name of the test.
    pub stattest_display_name: &'static str,
    /// Test result: a p-value (`ks`, `chisquare`, `z`) or a distance.
    pub drift_score: f64,
    /// Threshold the score was compared with.
    pub threshold: f64,
    /// Whether the test detected drift.
    pub drift_detected: bool,
    /// PSI of the column, computed as Evidently's `psi` test does.
    pub psi: f64,
    /// Reference-side statistics.
    pub reference: ColumnStats,
    /// Current-side statistics.
    pub current: ColumnStats,
    /// The text column and descriptor this column was derived from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_descriptor: Option<DescriptorOf>,
    /// `ks`: the statistic D, the largest gap between the two ECDFs (the drift score is its
    /// p-value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    /// Computed online from sketches: how far the test's statistic (KS: D; Wasserstein: the
    /// normed distance) may be from the one the rows themselves give (`drift::online`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sketch_error_bound: Option<f64>,
    /// Histogram for the HTML report.
    #[serde(skip)]
    pub histogram: Histogram,
}

/// Summary statistics of one column in one file.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnStats {
    /// Values used (missing and infinite values dropped).
    pub count: u64,
    /// Missing or infinite values dropped.
    pub missing: u64,
    /// Distinct values among `count`.
    pub distinct: u64,
    /// Mean (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Population standard deviation (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Minimum (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Maximum (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Reference vs current distribution for display.
#[derive(Clone, Debug)]
pub enum Histogram {
    /// Equal-width bins over the pooled range.
    Numeric {
        /// Bin edges (one more than bins).
        edges: Vec<f64>,
        /// Per-bin counts `(reference, current)`.
        counts: Vec<(u64, u64)>,
    },
    /// The most frequent categories; the rest pooled as "other".
    Categorical {
        /// Category labels.
        labels: Vec<String>,
        /// Per-category counts `(reference, current)`.
        counts: Vec<(u64, u64)>,
    },
}

/// A column left out of the comparison.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedColumn {
    /// Column name.
    pub column: String,
    /// Why.
    pub reason: String,
}

/// Drift of the model's outputs: the predicted label (or value) and the probability column,
/// each tested like any column, and the share of positive predictions.
#[derive(Clone, Debug, Serialize)]
pub struct PredictionDrift {
    /// Either column's test detected drift.
    pub drift_detected: bool,
    /// The predicted label (classification) or value (regression) column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<OutputDrift>,
    /// The probability-of-the-positive-class column (the confidence distribution).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<OutputDrift>,
    /// The positive class (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_label: Option<String>,
    /// Share of positive predictions in the reference (the champion's predictions on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_share_of_positives: Option<f64>,
    /// Share of positive predictions in the current data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_share_of_positives: Option<f64>,
}

/// The drift of one output column (a summary of its entry in `columns`).
#[derive(Clone, Debug, Serialize)]
pub struct OutputDrift {
    /// The column.
    pub column: String,
    /// Its test name.
    #[serde(serialize_with = "stattest_name")]
    pub stattest: StatTest,
    /// Its score.
    pub drift_score: f64,
    /// Its threshold.
    pub threshold: f64,
    /// Whether its test detected drift.
    pub drift_detected: bool,
    /// Its PSI.
    pub psi: f64,
    /// Mean in the reference (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_mean: Option<f64>,
    /// Mean in the current data (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_mean: Option<f64>,
}

impl OutputDrift {
    /// The summary of a tested column.
    pub fn of(c: &ColumnReport) -> Self {
        OutputDrift {
            column: c.name.clone(),
            stattest: c.stattest,
            drift_score: c.drift_score,
            threshold: c.threshold,
            drift_detected: c.drift_detected,
            psi: c.psi,
            reference_mean: c.reference.mean,
            current_mean: c.current.mean,
        }
    }
}

/// Model quality per file and the change between them.
#[derive(Clone, Debug, Serialize)]
pub struct Performance {
    /// `regression` or `classification`.
    pub task: &'static str,
    /// Target (true label) column.
    pub target: String,
    /// Prediction column.
    pub prediction: String,
    /// Probability column (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<String>,
    /// The positive class (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos_label: Option<String>,
    /// Rows of the labels file joined to current predictions (`--labels`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels_joined: Option<u64>,
    /// Metrics on the reference file, when it has targets.
    pub reference: Option<Metrics>,
    /// Metrics on the current data, when it has targets (or joined labels).
    pub current: Option<Metrics>,
    /// `current − reference` for each metric present in both.
    pub delta: Option<Metrics>,
}

/// Quality metrics (the ones of the task are set). Classification figures carry the names of
/// Evidently's `DatasetClassificationQuality`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Metrics {
    /// Rows with both target and prediction.
    pub rows: u64,
    /// Root mean squared error (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Mean absolute error (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Mean of prediction − target (regression).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_error: Option<f64>,
    /// Share of correct predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// TP / (TP + FP), 0 without positive predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    /// TP / (TP + FN), 0 without positive targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f1: Option<f64>,
    /// Area under the ROC curve of the probabilities (both classes needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc_auc: Option<f64>,
    /// Mean negative log-likelihood of the probabilities (clipped to [ε, 1 − ε]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_loss: Option<f64>,
    /// True positive rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpr: Option<f64>,
    /// True negative rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tnr: Option<f64>,
    /// False positive rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fpr: Option<f64>,
    /// False negative rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fnr: Option<f64>,
    /// Share of positive predictions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_rate: Option<f64>,
    /// Share of positive targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_positive_rate: Option<f64>,
    /// Confusion counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion_matrix: Option<ConfusionMatrix>,
    /// Share of probabilities in each tenth of [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_distribution: Option<Vec<f64>>,
}

/// Binary confusion counts.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ConfusionMatrix {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// True negatives.
    pub tn: u64,
    /// False negatives.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

/// Performance estimated from probabilities before labels arrive (NannyML's CBPE).
#[derive(Clone, Debug, Serialize)]
pub struct EstimatedPerformance {
    /// `CBPE`.
    pub method: &'static str,
    /// The positive class.
    pub pos_label: String,
    /// On the reference (where it can be checked against the realised figures).
    pub reference: Option<Estimates>,
    /// On the current data.
    pub current: Option<Estimates>,
}

/// CBPE estimates of one data set.
#[derive(Clone, Debug, Serialize)]
pub struct Estimates {
    /// Rows with a prediction and a probability.
    pub rows: u64,
    /// Estimated accuracy.
    pub accuracy: Estimate,
    /// Estimated precision.
    pub precision: Estimate,
    /// Estimated recall.
    pub recall: Estimate,
    /// Estimated F1.
    pub f1: Estimate,
    /// Estimated ROC AUC.
    pub roc_auc: Estimate,
}

/// One estimated metric, named as NannyML's result columns are.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Estimate {
    /// NannyML `estimated_<metric>`.
    pub value: f64,
    /// NannyML `sampling_error_<metric>` (needs targets in the reference).
    pub sampling_error: Option<f64>,
    /// `value + 3 · sampling_error`, at most 1.
    pub upper_confidence_boundary: Option<f64>,
    /// `value − 3 · sampling_error`, at least 0.
    pub lower_confidence_boundary: Option<f64>,
    /// NannyML `realized_<metric>`: the figure from true labels, when they are there.
    pub realized: Option<f64>,
}

/// A free-text column and the descriptors it was turned into.
#[derive(Clone, Debug, Serialize)]
pub struct TextColumn {
    /// Column name.
    pub column: String,
    /// `declared` (`--text-columns`) or `detected` (more distinct values than half the rows).
    pub source: &'static str,
    /// Non-missing values in the reference.
    pub reference_values: u64,
    /// Non-missing values in the current data.
    pub current_values: u64,
    /// The descriptor columns (`<column>.<descriptor>`), tested in `columns`.
    pub descriptors: Vec<String>,
    /// The vocabulary the OOV percentage was measured against.
    pub vocabulary: VocabularySummary,
}

/// The vocabulary sketch behind `oov_words_percentage`.
#[derive(Clone, Debug, Serialize)]
pub struct VocabularySummary {
    /// `reference` (the reference's own words, leave-one-out for reference rows) or `file`.
    pub source: &'static str,
    /// Counters in the sketch.
    pub counters: u64,
    /// Bytes the sketch holds.
    pub bytes: u64,
    /// Distinct words held, estimated from the fill.
    pub estimated_words: f64,
    /// Probability that an unseen word reads as seen.
    pub false_positive_rate: f64,
}

/// A descriptor column's origin.
#[derive(Clone, Debug, Serialize)]
pub struct DescriptorOf {
    /// The text column.
    pub column: String,
    /// Descriptor name (`text_length`, …).
    pub descriptor: &'static str,
    /// Evidently's descriptor.
    pub evidently_descriptor: &'static str,
    /// Evidently's display name (`Text Length for body`).
    pub display_name: String,
}

impl DescriptorOf {
    /// Describes descriptor `d` of text column `column`.
    pub fn new(column: &str, d: crate::text::Descriptor) -> Self {
        DescriptorOf {
            column: column.to_owned(),
            descriptor: d.name(),
            evidently_descriptor: d.evidently_name(),
            display_name: d.display_name(column),
        }
    }

    /// The descriptor column's name, `<column>.<descriptor>`.
    pub fn descriptor_column(&self) -> String {
        format!("{}.{}", self.column, self.descriptor)
    }
}

fn stattest_name<S: Serializer>(t: &StatTest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.name())
}

fn columns_as_map<S: Serializer>(columns: &[ColumnReport], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(columns.len()))?;
    for c in columns {
        map.serialize_entry(&c.name, c)?;
    }
    map.end()
}

impl DriftReport {
    /// The JSON report, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serialises")
    }

    /// The process exit code the CLI uses: 3 for significant drift, 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.significant_drift {
            3
        } else {
            0
        }
    }
}
