//! Model quality from accumulated [`Outcomes`]: realised performance where true labels exist
//! (regression: RMSE, MAE, mean error; binary classification: Evidently's
//! `DatasetClassificationQuality` figures — accuracy, precision, recall, F1, ROC AUC, log
//! loss, TPR/TNR/FPR/FNR — as scikit-learn computes them), and performance *estimated* from
//! calibrated probabilities before labels arrive, as NannyML 0.13's CBPE does (with its
//! sampling error and ±3σ confidence band).
//!
//! Every figure comes from counts and sums per (target, predicted) cell, except the two ROC
//! AUCs and the AUC sampling error, which walk the sorted probability runs once.

use crate::error::{DriftError, Result};
use crate::outcome::{canonical_label, Cell, OutcomeCounts, Outcomes, ABSENT};
use crate::report::{ConfusionMatrix, Estimate, EstimatedPerformance, Estimates, Metrics, Performance};
use crate::runs;
use crate::stats::Sum;
use crate::Task;

/// NannyML's `SAMPLING_ERROR_RANGE`: the confidence band is the estimate ± 3 sampling errors.
const SAMPLING_ERROR_RANGE: f64 = 3.0;

/// One side of the comparison: its outcomes and the file they came from (for messages).
#[derive(Clone, Copy, Debug)]
pub struct Side<'a> {
    /// Accumulated outcomes.
    pub outcomes: &'a Outcomes,
    /// Where they came from.
    pub source: &'a str,
}

/// Column names and options for [`build`].
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// Target column.
    pub target: &'a str,
    /// Prediction column.
    pub prediction: &'a str,
    /// Probability column.
    pub probability: &'a str,
    /// Regression, classification or decide from the data.
    pub task: Task,
    /// The positive class, when given.
    pub pos_label: Option<&'a str>,
    /// The prediction is derived from the probability (no prediction column).
    pub derived_prediction: bool,
}

/// What [`build`] found.
#[derive(Debug, Default)]
pub struct Built {
    /// `classification` or `regression`, when there were outcomes at all.
    pub task: Option<&'static str>,
    /// The positive class (classification).
    pub pos_label: Option<String>,
    /// Share of positive predictions (reference, current), classification only.
    pub share_of_positives: (Option<f64>, Option<f64>),
    /// Realised performance (needs targets on at least one side).
    pub performance: Option<Performance>,
    /// CBPE (classification with probabilities).
    pub estimated: Option<EstimatedPerformance>,
}

/// Computes realised and estimated performance. `reference` and `current` are the files'
/// own outcomes (current: every scored row); `labelled` the current rows joined to labels
/// that arrived later, when there are such.
pub fn build(
    setup: &Setup<'_>,
    reference: Option<Side<'_>>,
    current: Option<Side<'_>>,
    labelled: Option<Side<'_>>,
) -> Result<Built> {
    let sides: Vec<Side<'_>> = [reference, current, labelled].into_iter().flatten().collect();
    for s in &sides {
        if let Some(bad) = &s.outcomes.counts.bad_probability {
            return Err(DriftError::BadProbability {
                column: setup.probability.to_owned(),
                file: s.source.to_owned(),
                count: s.outcomes.counts.bad_probabilities,
                example: bad.clone(),
            });
        }
    }
    if sides.iter().all(|s| s.outcomes.counts.rows == 0) {
        return Ok(Built::default());
    }
    // The current side's realised figures come from joined labels when given.
    let current_truth = labelled.or(current);
    let has_target =
        |s: Option<Side<'_>>| s.is_some_and(|s| s.outcomes.counts.cells[..2].iter().flatten().any(|c| c.n > 0));
    let has_probability = sides.iter().any(|s| s.outcomes.counts.cells.iter().flatten().any(|c| c.scored > 0));
    let classification = match setup.task {
        Task::Regression => false,
        Task::Classification => true,
        Task::Auto => {
            has_probability
                || sides.iter().all(|s| !s.outcomes.counts.targets.overflowed())
                    && (sides.iter().any(|s| !s.outcomes.counts.targets.values.is_empty())
                        || sides.iter().all(|s| !s.outcomes.counts.predictions.overflowed()))
        }
    };
    if !classification {
        let metrics = |s: Option<Side<'_>>| s.map(|s| regression_metrics(&s.outcomes.counts));
        let performance = (has_target(reference) || has_target(current_truth))
            .then(|| performance_section(setup, "regression", None, metrics(reference), metrics(current_truth), None));
        return Ok(Built { task: Some("regression"), performance, ..Built::default() });
    }

    let binary = Binary::decide(setup, &sides)?;
    let share = |s: Option<Side<'_>>| s.and_then(|s| binary.share_of_positive_predictions(&s.outcomes.counts));
    let realised = |s: Option<Side<'_>>| -> Result<Option<Metrics>> {
        match s {
            Some(s) if has_target(Some(s)) => binary.metrics(s.outcomes).map(Some),
            _ => Ok(None),
        }
    };
    let (ref_metrics, cur_metrics) = (realised(reference)?, realised(current_truth)?);
    let labels_rows = labelled.map(|l| l.outcomes.counts.rows);
    let performance = (ref_metrics.is_some() || cur_metrics.is_some()).then(|| {
        performance_section(
            setup,
            "classification",
            Some(binary.pos.clone()),
            ref_metrics.clone(),
            cur_metrics.clone(),
            labels_rows,
        )
    });

    let estimated = if has_probability {
        let components = match (reference, &ref_metrics) {
            (Some(r), Some(m)) => Some(binary.sampling_components(r.outcomes, m)?),
            _ => None,
        };
        let estimate = |s: Option<Side<'_>>, realised: &Option<Metrics>| -> Result<Option<Estimates>> {
            match s {
                Some(s) => binary.estimate(s.outcomes, components.as_ref(), realised.as_ref()),
                None => Ok(None),
            }
        };
        let reference_estimates = estimate(reference, &ref_metrics)?;
        let current_estimates = estimate(current, &cur_metrics)?;
        (reference_estimates.is_some() || current_estimates.is_some()).then(|| EstimatedPerformance {
            method: "CBPE",
            pos_label: binary.pos.clone(),
            reference: reference_estimates,
            current: current_estimates,
        })
    } else {
        None
    };
    Ok(Built {
        task: Some("classification"),
        pos_label: Some(binary.pos.clone()),
        share_of_positives: (share(reference), share(current)),
        performance,
        estimated,
    })
}

fn performance_section(
    setup: &Setup<'_>,
    task: &'static str,
    pos_label: Option<String>,
    reference: Option<Metrics>,
    current: Option<Metrics>,
    labelled_rows: Option<u64>,
) -> Performance {
    let delta = match (&reference, &current) {
        (Some(a), Some(b)) => Some(difference(a, b)),
        _ => None,
    };
    Performance {
        task,
        target: setup.target.to_owned(),
        prediction: setup.prediction.to_owned(),
        probability: (task == "classification").then(|| setup.probability.to_owned()),
        pos_label,
        labels_joined: labelled_rows,
        reference,
        current,
        delta,
    }
}

fn regression_metrics(c: &OutcomeCounts) -> Metrics {
    let r = &c.regression;
    if r.rows == 0 {
        return Metrics::default();
    }
    let n = r.rows as f64;
    Metrics {
        rows: r.rows,
        rmse: Some((r.sq_error.value() / n).sqrt()),
        mae: Some(r.abs_error.value() / n),
        mean_error: Some(r.error.value() / n),
        ..Metrics::default()
    }
}

/// `x / d`, or `zero` when `d` is 0 (scikit-learn's `zero_division`).
fn ratio(x: f64, d: f64, zero: f64) -> f64 {
    if d == 0.0 {
        zero
    } else {
        x / d
    }
}

/// Which label is positive, and how each side's slots map to it.
#[derive(Debug)]
struct Binary {
    pos: String,
    /// Predictions are `"1"`/`"0"` markers derived from the probability.
    derived: bool,
}

/// NannyML's sampling error components, from the reference's realised outcomes.
#[derive(Debug)]
struct Components {
    /// (std, fraction) per metric; accuracy's fraction is 1.
    accuracy: (f64, f64),
    precision: (f64, f64),
    recall: (f64, f64),
    f1: (f64, f64),
    roc_auc: (f64, f64),
}

impl Binary {
    /// Picks the positive class: `--pos-label`, else `1` for 0/1 labels and `True` for
    /// booleans; errors for more than two label values or an ambiguous pair.
    fn decide(setup: &Setup<'_>, sides: &[Side<'_>]) -> Result<Binary> {
        let mut values: Vec<String> = Vec::new();
        let mut extra: Vec<String> = Vec::new();
        let mut add = |labels: &crate::outcome::Labels| {
            for v in &labels.values {
                if !values.contains(v) {
                    values.push(v.clone());
                }
            }
            extra.extend(labels.extra.iter().cloned());
        };
        for s in sides {
            add(&s.outcomes.counts.targets);
            if !setup.derived_prediction {
                add(&s.outcomes.counts.predictions);
            }
        }
        if values.len() > 2 || !extra.is_empty() {
            let mut shown = values.clone();
            shown.extend(extra);
            shown.dedup();
            return Err(DriftError::NonBinaryLabels {
                target: setup.target.to_owned(),
                prediction: setup.prediction.to_owned(),
                values: shown.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", "),
            });
        }
        let pos = match setup.pos_label {
            Some(p) => {
                let p = canonical_label(p.as_bytes());
                if !values.is_empty() && !values.contains(&p) {
                    return Err(DriftError::InvalidOption(format!(
                        "--pos-label '{p}' is not one of the label values ({})",
                        values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
                    )));
                }
                p
            }
            None if values.iter().all(|v| v == "0" || v == "1") => "1".to_owned(),
            None if values.iter().all(|v| v == "True" || v == "False") => "True".to_owned(),
            None => {
                return Err(DriftError::AmbiguousPositiveLabel {
                    values: values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", "),
                })
            }
        };
        Ok(Binary { pos, derived: setup.derived_prediction })
    }

    /// Whether each target slot (0, 1) holds the positive class; `None` for an empty slot.
    fn target_positive(&self, c: &OutcomeCounts) -> [Option<bool>; 2] {
        let at = |i: usize| c.targets.values.get(i).map(|v| *v == self.pos);
        [at(0), at(1)]
    }

    fn prediction_positive(&self, c: &OutcomeCounts) -> [Option<bool>; 2] {
        let at = |i: usize| c.predictions.values.get(i).map(|v| if self.derived { v == "1" } else { *v == self.pos });
        [at(0), at(1)]
    }

    /// Cells summed by (target positive?, predicted positive?): `[[tn, fp], [fn, tp]]`, and
    /// the predicted-positive/negative sums over every target (absent included).
    fn quadrants(&self, c: &OutcomeCounts) -> ([[Cell; 2]; 2], [Cell; 2]) {
        let (tp_of, pp_of) = (self.target_positive(c), self.prediction_positive(c));
        let mut q = [[Cell::default(); 2]; 2];
        let mut by_prediction = [Cell::default(); 2];
        for (ti, row) in c.cells.iter().enumerate() {
            for (pi, cell) in row.iter().enumerate().take(2) {
                let Some(pp) = pp_of[pi] else { continue };
                by_prediction[usize::from(pp)].merge(cell);
                if ti == ABSENT {
                    continue;
                }
                if let Some(tp) = tp_of[ti] {
                    q[usize::from(tp)][usize::from(pp)].merge(cell);
                }
            }
        }
        (q, by_prediction)
    }

    fn share_of_positive_predictions(&self, c: &OutcomeCounts) -> Option<f64> {
        let (_, by_prediction) = self.quadrants(c);
        let n = by_prediction[0].n + by_prediction[1].n;
        (n > 0).then(|| by_prediction[1].n as f64 / n as f64)
    }

    /// The probability runs of positive and negative targets.
    fn runs_by_truth<'a>(&self, o: &'a Outcomes) -> (Vec<&'a runs::Runs>, Vec<&'a runs::Runs>) {
        let tp_of = self.target_positive(&o.counts);
        let (mut pos, mut neg) = (Vec::new(), Vec::new());
        for (i, t) in tp_of.iter().enumerate() {
            match t {
                Some(true) => pos.push(&o.probabilities[i]),
                Some(false) => neg.push(&o.probabilities[i]),
                None => {}
            }
        }
        (pos, neg)
    }

    /// Realised metrics of the rows with a target and a prediction.
    fn metrics(&self, o: &Outcomes) -> Result<Metrics> {
        let (q, _) = self.quadrants(&o.counts);
        let (tn, fp, fn_, tp) = (q[0][0].n, q[0][1].n, q[1][0].n, q[1][1].n);
        let n = tn + fp + fn_ + tp;
        let f = |x: u64| x as f64;
        let scored: u64 = q.iter().flatten().map(|c| c.scored).sum();
        let log_loss = (scored > 0).then(|| {
            let mut s = Sum::default();
            for c in &q[1] {
                s.merge(c.sum_ln_p);
            }
            for c in &q[0] {
                s.merge(c.sum_ln_q);
            }
            -s.value() / scored as f64
        });
        let roc_auc = self.realised_auc(o)?;
        let histogram_total: u64 = o.counts.histogram.iter().sum();
        Ok(Metrics {
            rows: n,
            accuracy: (n > 0).then(|| f(tp + tn) / f(n)),
            precision: (n > 0).then(|| ratio(f(tp), f(tp + fp), 0.0)),
            recall: (n > 0).then(|| ratio(f(tp), f(tp + fn_), 0.0)),
            f1: (n > 0).then(|| ratio(f(2 * tp), f(2 * tp + fp + fn_), 0.0)),
            roc_auc,
            log_loss,
            tpr: (n > 0).then(|| ratio(f(tp), f(tp + fn_), f64::NAN)),
            tnr: (n > 0).then(|| ratio(f(tn), f(tn + fp), f64::NAN)),
            fpr: (n > 0).then(|| ratio(f(fp), f(fp + tn), f64::NAN)),
            fnr: (n > 0).then(|| ratio(f(fn_), f(fn_ + tp), f64::NAN)),
            positive_rate: (n > 0).then(|| f(tp + fp) / f(n)),
            target_positive_rate: (n > 0).then(|| f(tp + fn_) / f(n)),
            confusion_matrix: (n > 0).then_some(ConfusionMatrix { tp, fp, tn, fn_ }),
            confidence_distribution: (histogram_total > 0)
                .then(|| o.counts.histogram.iter().map(|&c| c as f64 / histogram_total as f64).collect()),
            ..Metrics::default()
        })
    }

    /// ROC AUC of the rows with a target and a probability (Mann–Whitney U, ties counted
    /// half, which is what `roc_auc_score`'s trapezoids come to); `None` with one class.
    fn realised_auc(&self, o: &Outcomes) -> Result<Option<f64>> {
        let (pos, neg) = self.runs_by_truth(o);
        let n_pos: u64 = pos.iter().map(|r| r.len()).sum();
        let n_neg: u64 = neg.iter().map(|r| r.len()).sum();
        if n_pos == 0 || n_neg == 0 {
            return Ok(None);
        }
        let split = pos.len();
        let all: Vec<&runs::Runs> = pos.into_iter().chain(neg).collect();
        let mut below_neg = 0u64;
        let mut u = Sum::default();
        runs::walk(&all, &mut |_, counts| {
            let (p, n): (u64, u64) = (counts[..split].iter().sum(), counts[split..].iter().sum());
            u.add(p as f64 * (below_neg as f64 + n as f64 / 2.0));
            below_neg += n;
        })?;
        Ok(Some(u.value() / (n_pos as f64 * n_neg as f64)))
    }

    /// NannyML's `*_sampling_error_components` from the reference's realised outcomes.
    fn sampling_components(&self, o: &Outcomes, m: &Metrics) -> Result<Components> {
        let cm = m.confusion_matrix.unwrap_or_default();
        let (tp, fp, fn_, tn) = (cm.tp as f64, cm.fp as f64, cm.fn_ as f64, cm.tn as f64);
        let n = tp + fp + fn_ + tn;
        // np.std of a 0/1 indicator with share q of ones (NaN for no rows, as numpy's).
        let std01 = |q: f64| (q * (1.0 - q)).sqrt();
        let precision = (std01(ratio(tp, tp + fp, f64::NAN)), (tp + fp) / n);
        let recall = (std01(ratio(tp, tp + fn_, f64::NAN)), (tp + fn_) / n);
        let relevant = tp + fn_ + fp;
        let f1 = if relevant == 0.0 {
            (f64::NAN, 0.0)
        } else {
            let correcting = relevant / ((fn_ + fp) * 0.5 + tp);
            (correcting * std01(tp / relevant), relevant / n)
        };
        Ok(Components {
            accuracy: (std01((tp + tn) / n), 1.0),
            precision,
            recall,
            f1,
            roc_auc: self.auc_components(o)?,
        })
    }

    /// `auroc_sampling_error_components`: the standard deviation over positives of the share
    /// of negatives ranked below each (the class with more rows becomes the negative one), and
    /// the share of positives. Ties count half; NannyML's dropping of a positive ranked first
    /// (and the +1 it gives the others) is reproduced.
    fn auc_components(&self, o: &Outcomes) -> Result<(f64, f64)> {
        let (pos, neg) = self.runs_by_truth(o);
        let n_pos: u64 = pos.iter().map(|r| r.len()).sum();
        let n_neg: u64 = neg.iter().map(|r| r.len()).sum();
        let total = n_pos + n_neg;
        if n_pos == 0 || n_neg == 0 {
            return Ok((f64::NAN, n_pos as f64 / total.max(1) as f64));
        }
        // NannyML flips labels and scores when most rows are positive: ranks then go by
        // descending probability and the roles swap.
        let flip = n_pos > n_neg;
        let split = pos.len();
        let all: Vec<&runs::Runs> = pos.into_iter().chain(neg).collect();
        // Per distinct value in ascending probability: (positives, negatives).
        let (mut s1, mut s2) = (Sum::default(), Sum::default());
        let (mut seen_pos, mut seen_neg) = (0u64, 0u64);
        let mut first_is_positive = None;
        runs::walk(&all, &mut |_, counts| {
            let (p, n): (u64, u64) = (counts[..split].iter().sum(), counts[split..].iter().sum());
            // In the ranking's terms: "positives" and "negatives below" them.
            let (rp, below, tied) = if flip { (n, n_pos - seen_pos - p, p) } else { (p, seen_neg, n) };
            let s = below as f64 + tied as f64 / 2.0;
            s1.add(rp as f64 * s);
            s2.add(rp as f64 * s * s);
            if !flip && first_is_positive.is_none() {
                first_is_positive = Some(n == 0);
            }
            if flip {
                // The ranking starts at the highest probability: the last value walked.
                first_is_positive = Some(p == 0);
            }
            seen_pos += p;
            seen_neg += n;
        })?;
        let (positives, negatives) = if flip { (n_neg, n_pos) } else { (n_pos, n_neg) };
        let (mut m, mut sum, mut sum_sq) = (positives as f64, s1.value(), s2.value());
        if first_is_positive == Some(true) {
            // np.unique(positive_ranks)[1:] drops the positive at rank 0 (its rank is 0 like
            // every negative's), and each later positive's count is then one higher.
            m -= 1.0;
            sum_sq += 2.0 * sum + m;
            sum += m;
        }
        if m <= 0.0 {
            return Ok((f64::NAN, positives as f64 / total as f64));
        }
        let scale = negatives as f64;
        let mean = sum / m / scale;
        let var = (sum_sq / m / (scale * scale) - mean * mean).max(0.0);
        Ok((var.sqrt(), positives as f64 / total as f64))
    }

    /// CBPE estimates for one side (rows with a predicted label and a probability).
    fn estimate(
        &self,
        o: &Outcomes,
        components: Option<&Components>,
        realised: Option<&Metrics>,
    ) -> Result<Option<Estimates>> {
        let (_, by_prediction) = self.quadrants(&o.counts);
        let n = by_prediction[0].scored + by_prediction[1].scored;
        if n == 0 {
            return Ok(None);
        }
        // Expected confusion matrix: a row predicted positive is a true positive with
        // probability p, a row predicted negative a false negative with probability p.
        let tp = by_prediction[1].sum_p.value();
        let fp = by_prediction[1].sum_q();
        let fn_ = by_prediction[0].sum_p.value();
        let tn = by_prediction[0].sum_q();
        let scored_all: u64 = o.probabilities.iter().map(|r| r.len()).sum();
        let band = |value: f64, c: Option<(f64, f64)>, rows: u64, realised: Option<f64>| {
            let sampling_error = c
                .map(|(std, fraction)| std / (rows as f64 * fraction).sqrt())
                .filter(|s| s.is_finite() && value.is_finite());
            Estimate {
                value,
                sampling_error,
                upper_confidence_boundary: sampling_error.map(|s| (value + SAMPLING_ERROR_RANGE * s).min(1.0)),
                lower_confidence_boundary: sampling_error.map(|s| (value - SAMPLING_ERROR_RANGE * s).max(0.0)),
                realized: realised,
            }
        };
        let get = |f: fn(&Metrics) -> Option<f64>| realised.and_then(f);
        Ok(Some(Estimates {
            rows: n,
            accuracy: band((tp + tn) / n as f64, components.map(|c| c.accuracy), n, get(|m| m.accuracy)),
            precision: band(ratio(tp, tp + fp, 0.0), components.map(|c| c.precision), n, get(|m| m.precision)),
            recall: band(ratio(tp, tp + fn_, 0.0), components.map(|c| c.recall), n, get(|m| m.recall)),
            f1: band(ratio(tp, tp + 0.5 * (fp + fn_), 0.0), components.map(|c| c.f1), n, get(|m| m.f1)),
            roc_auc: band(self.estimated_auc(o)?, components.map(|c| c.roc_auc), scored_all, get(|m| m.roc_auc)),
        }))
    }

    /// CBPE's ROC AUC: the ROC curve the calibrated probabilities imply (each row counts p as
    /// a positive and 1 − p as a negative, ranked by descending probability), integrated by
    /// trapezoids from (0, 0).
    fn estimated_auc(&self, o: &Outcomes) -> Result<f64> {
        let all: Vec<&runs::Runs> = o.probabilities.iter().collect();
        let mut total_p = Sum::default();
        let mut total_n = 0u64;
        runs::walk(&all, &mut |x, counts| {
            let c: u64 = counts.iter().sum();
            total_p.add(c as f64 * x);
            total_n += c;
        })?;
        let (tp_total, fp_total) = (total_p.value(), total_n as f64 - total_p.value());
        if tp_total <= 0.0 || fp_total <= 0.0 {
            return Ok(f64::NAN);
        }
        // Walking upwards, `below_tp` is what lies under the current value: the curve's
        // points just above and below a value have TP = total − below and total − below − c·x.
        let mut below_tp = Sum::default();
        let mut area = Sum::default();
        runs::walk(&all, &mut |x, counts| {
            let c = counts.iter().sum::<u64>() as f64;
            let tp_hi = tp_total - below_tp.value();
            let (dtp, dfp) = (c * x, c * (1.0 - x));
            let tp_lo = tp_hi - dtp;
            area.add(dfp / fp_total * (tp_hi + tp_lo) / (2.0 * tp_total));
            below_tp.add(dtp);
        })?;
        Ok(area.value())
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
        precision: d(a.precision, b.precision),
        recall: d(a.recall, b.recall),
        f1: d(a.f1, b.f1),
        roc_auc: d(a.roc_auc, b.roc_auc),
        log_loss: d(a.log_loss, b.log_loss),
        tpr: d(a.tpr, b.tpr),
        tnr: d(a.tnr, b.tnr),
        fpr: d(a.fpr, b.fpr),
        fnr: d(a.fnr, b.fnr),
        positive_rate: d(a.positive_rate, b.positive_rate),
        target_positive_rate: d(a.target_positive_rate, b.target_positive_rate),
        confusion_matrix: None,
        confidence_distribution: match (&a.confidence_distribution, &b.confidence_distribution) {
            (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(p, q)| q - p).collect()),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{OutcomePlan, OutcomeTally};
    use crate::runs::Budget;
    use std::sync::Mutex;

    fn outcomes(y: &[u8], p: &[f64]) -> Outcomes {
        let plan = OutcomePlan { target: Some(0), prediction: None, probability: Some(2), threshold: 0.5 };
        let budget = Budget::new(1 << 20, 3, None).unwrap();
        let shared = Mutex::new(Outcomes::new(&budget));
        let mut tally = OutcomeTally::default();
        for (&y, &p) in y.iter().zip(p) {
            tally.observe(&plan, Some(if y == 1 { b"1" } else { b"0" }), None, Some(format!("{p}").as_bytes()));
        }
        Outcomes::absorb(&shared, &budget, &mut tally).unwrap();
        let mut o = shared.into_inner().unwrap();
        o.seal().unwrap();
        o
    }

    fn check(what: &str, got: f64, want: f64) {
        assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{what}: {got} != {want}");
    }

    fn binary() -> Binary {
        Binary { pos: "1".into(), derived: true }
    }

    const Y: [u8; 10] = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0];
    const P: [f64; 10] = [0.9, 0.4, 0.65, 0.3, 0.2, 0.55, 0.8, 0.1, 0.55, 0.55];

    /// Values printed by scikit-learn 1.9 (`accuracy_score`, …, `roc_auc_score`, `log_loss`).
    #[test]
    fn realised_metrics_follow_sklearn() {
        let m = binary().metrics(&outcomes(&Y, &P)).unwrap();
        check("accuracy", m.accuracy.unwrap(), 0.7);
        check("precision", m.precision.unwrap(), 0.6666666666666666);
        check("recall", m.recall.unwrap(), 0.8);
        check("f1", m.f1.unwrap(), 0.7272727272727273);
        check("roc_auc (ties)", m.roc_auc.unwrap(), 0.84);
        check("log_loss", m.log_loss.unwrap(), 0.4997441871319618);
        let one_class = binary().metrics(&outcomes(&[1, 1], &[0.2, 0.9])).unwrap();
        assert_eq!(one_class.roc_auc, None);
        check(
            "precision without positives",
            binary().metrics(&outcomes(&[1, 0], &[0.1, 0.2])).unwrap().precision.unwrap(),
            0.0,
        );
    }

    /// Values printed by NannyML 0.13 (`estimate_*`, `*_sampling_error_components`).
    #[test]
    fn cbpe_follows_nannyml() {
        let o = outcomes(&Y, &P);
        let b = binary();
        let m = b.metrics(&o).unwrap();
        let c = b.sampling_components(&o, &m).unwrap();
        check("accuracy std", c.accuracy.0, 0.45825756949558405);
        check("precision std", c.precision.0, 0.4714045207910317);
        check("precision fraction", c.precision.1, 0.6);
        check("recall", c.recall.0, 0.4);
        check("recall fraction", c.recall.1, 0.5);
        check("f1 std", c.f1.0, 0.6298366572977735);
        check("f1 fraction", c.f1.1, 0.7);
        let e = b.estimate(&o, Some(&c), Some(&m)).unwrap().unwrap();
        check("estimated accuracy", e.accuracy.value, 0.7);
        check("estimated precision", e.precision.value, 0.6666666666666666);
        check("estimated recall", e.recall.value, 0.8);
        check("estimated f1", e.f1.value, 0.7272727272727273);
        check("estimated roc_auc", e.roc_auc.value, 0.772);
        check("accuracy sampling error", e.accuracy.sampling_error.unwrap(), 0.45825756949558405 / 10f64.sqrt());
        check("band", e.accuracy.lower_confidence_boundary.unwrap(), 0.7 - 3.0 * 0.45825756949558405 / 10f64.sqrt());
        assert_eq!(e.accuracy.upper_confidence_boundary, Some(1.0), "clipped to the metric's range");

        let no_ties = [0.9, 0.4, 0.65, 0.3, 0.2, 0.56, 0.8, 0.1, 0.57, 0.58];
        let (std, fraction) = b.auc_components(&outcomes(&Y, &no_ties)).unwrap();
        check("auc std", std, 0.233238075793812);
        check("auc fraction", fraction, 0.5);
        // Most rows positive: NannyML flips labels and scores.
        let (std, fraction) =
            b.auc_components(&outcomes(&[1, 1, 1, 0, 1, 1, 0, 1], &[0.1, 0.8, 0.7, 0.3, 0.9, 0.6, 0.2, 0.65])).unwrap();
        check("flipped auc std", std, 0.0);
        check("flipped auc fraction", fraction, 0.25);

        // No positive prediction in the reference: NannyML's precision error is NaN (np.std of
        // nothing), so there is no band rather than a zero-width one.
        let o = outcomes(&[1, 0, 1, 0], &[0.4, 0.1, 0.3, 0.2]);
        let m = b.metrics(&o).unwrap();
        let c = b.sampling_components(&o, &m).unwrap();
        let e = b.estimate(&o, Some(&c), Some(&m)).unwrap().unwrap();
        assert_eq!((e.precision.sampling_error, e.precision.upper_confidence_boundary), (None, None));
        assert!(e.accuracy.sampling_error.is_some());
    }
}
