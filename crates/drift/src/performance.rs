//! Performance drift: model quality on each file from row-aligned (target, prediction)
//! pairs, and the change from reference to current. Regression gets RMSE, MAE and mean
//! error; classification gets accuracy, the share of positive predictions and the
//! distribution of prediction scores (confidence).

use crate::ingest::PairStats;
use crate::report::{Metrics, Performance};
use crate::Task;

/// Builds the performance section, or `None` when neither file has target and prediction.
pub fn build(
    target: &str,
    prediction: &str,
    task: Task,
    reference: Option<&PairStats>,
    current: Option<&PairStats>,
) -> Option<Performance> {
    let present = |p: Option<&PairStats>| p.filter(|p| p.numeric_rows + p.label_rows > 0).cloned();
    let (reference, current) = (present(reference), present(current));
    if reference.is_none() && current.is_none() {
        return None;
    }
    let both = [reference.as_ref(), current.as_ref()];
    let classification = match task {
        Task::Regression => false,
        Task::Classification => true,
        Task::Auto => both
            .iter()
            .flatten()
            .all(|p| (p.numeric_rows > 0 && p.non_binary_targets == 0) || (p.numeric_rows == 0 && p.label_rows > 0)),
    };
    let metrics = |p: &PairStats| {
        if classification {
            classification_metrics(p)
        } else {
            regression_metrics(p)
        }
    };
    let r = reference.as_ref().map(metrics);
    let c = current.as_ref().map(metrics);
    let delta = match (&r, &c) {
        (Some(a), Some(b)) => Some(difference(a, b)),
        _ => None,
    };
    Some(Performance {
        task: if classification { "classification" } else { "regression" },
        target: target.to_owned(),
        prediction: prediction.to_owned(),
        reference: r,
        current: c,
        delta,
    })
}

fn regression_metrics(p: &PairStats) -> Metrics {
    let n = p.numeric_rows as f64;
    if p.numeric_rows == 0 {
        return Metrics { rows: 0, ..Metrics::default() };
    }
    Metrics {
        rows: p.numeric_rows,
        rmse: Some((p.sum_sq_error.value() / n).sqrt()),
        mae: Some(p.sum_abs_error.value() / n),
        mean_error: Some(p.sum_error.value() / n),
        ..Metrics::default()
    }
}

fn classification_metrics(p: &PairStats) -> Metrics {
    if p.numeric_rows == 0 {
        let n = p.label_rows;
        return Metrics { rows: n, accuracy: (n > 0).then(|| p.label_matches as f64 / n as f64), ..Metrics::default() };
    }
    let n = p.numeric_rows as f64;
    Metrics {
        rows: p.numeric_rows,
        accuracy: Some(p.correct_at_half as f64 / n),
        positive_rate: Some(p.positive_predictions as f64 / n),
        target_positive_rate: Some(p.positive_targets as f64 / n),
        confidence_distribution: (p.non_probability_predictions == 0)
            .then(|| p.prediction_histogram.iter().map(|&c| c as f64 / n).collect()),
        ..Metrics::default()
    }
}

fn difference(a: &Metrics, b: &Metrics) -> Metrics {
    let d = |x: Option<f64>, y: Option<f64>| Some(y? - x?);
    Metrics {
        rows: b.rows,
        rmse: d(a.rmse, b.rmse),
        mae: d(a.mae, b.mae),
        mean_error: d(a.mean_error, b.mean_error),
        accuracy: d(a.accuracy, b.accuracy),
        positive_rate: d(a.positive_rate, b.positive_rate),
        target_positive_rate: d(a.target_positive_rate, b.target_positive_rate),
        confidence_distribution: match (&a.confidence_distribution, &b.confidence_distribution) {
            (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(p, q)| q - p).collect()),
            _ => None,
        },
    }
}
