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
    /// Drift of the prediction column, when there is one.
    pub prediction_drift: Option<PredictionDrift>,
    /// Model quality in each file, when targets and predictions are present.
    pub performance: Option<Performance>,
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

/// Drift of the model's output column.
#[derive(Clone, Debug, Serialize)]
pub struct PredictionDrift {
    /// The column holding predictions.
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
}

/// Model quality per file and the change between them.
#[derive(Clone, Debug, Serialize)]
pub struct Performance {
    /// `regression` or `classification`.
    pub task: &'static str,
    /// Target column.
    pub target: String,
    /// Prediction column.
    pub prediction: String,
    /// Metrics on the reference file, when it has both columns.
    pub reference: Option<Metrics>,
    /// Metrics on the current file, when it has both columns.
    pub current: Option<Metrics>,
    /// `current − reference` for each metric present in both.
    pub delta: Option<Metrics>,
}

/// Quality metrics (the ones of the task are set).
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
    /// Share of correct predictions (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Share of positive predictions (score ≥ 0.5) (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_rate: Option<f64>,
    /// Share of positive targets (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_positive_rate: Option<f64>,
    /// Share of predictions in each tenth of [0, 1] (classification with scores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_distribution: Option<Vec<f64>>,
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
