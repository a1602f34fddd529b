//! Row-aligned model outcomes of one file: the true label (target), the predicted label and
//! the predicted probability of the positive class, accumulated while the file streams by
//! (or while labels are joined to predictions, see [`crate::labels`]) into counts, sums and
//! sorted runs from which [`crate::performance`] computes realised and estimated quality.
//!
//! Labels are kept as canonical strings (numbers in shortest form, booleans as
//! `True`/`False`) in at most two slots per side; which one is positive is decided only at
//! the end, so every aggregate is kept per (target slot, predicted slot) cell. Probabilities
//! are stored as order-preserving keys in [`Runs`] per target slot, for the exact ROC AUC and
//! NannyML's sampling error, within the crate's memory budget.

use crate::error::Result;
use crate::fields::{is_bool, is_na, parse_number};
use crate::runs::{self, Budget, Runs};
use crate::stats::Sum;
use std::sync::{Arc, Mutex};

/// Slot index for "no value" (missing target or prediction).
pub const ABSENT: usize = 2;
/// Distinct label values kept per side (binary classification).
const SLOTS: usize = 2;
/// Values beyond the two slots remembered for error messages.
const EXAMPLES: usize = 3;
/// sklearn's `log_loss` clips probabilities to [eps, 1 − eps] with the float64 epsilon.
const EPS: f64 = f64::EPSILON;

/// Which fields of a row hold the outcome (indices in the file's row).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OutcomePlan {
    /// True label.
    pub target: Option<usize>,
    /// Predicted label.
    pub prediction: Option<usize>,
    /// Predicted probability of the positive class.
    pub probability: Option<usize>,
    /// Without a prediction column: the label is "positive" when the probability is at least this.
    pub threshold: f64,
}

impl OutcomePlan {
    /// Whether the plan reads anything.
    pub fn is_empty(&self) -> bool {
        self.target.is_none() && self.prediction.is_none() && self.probability.is_none()
    }
}

/// The distinct values of one label column (at most two), and a few more if there were.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    /// Values in order of first appearance.
    pub values: Vec<String>,
    /// Values beyond the first two (a few, for messages).
    pub extra: Vec<String>,
}

impl Labels {
    /// The slot of `value`, inserting it when there is room; `None` when both slots are taken.
    fn slot(&mut self, value: &str) -> Option<usize> {
        if let Some(i) = self.values.iter().position(|v| v == value) {
            return Some(i);
        }
        if self.values.len() < SLOTS {
            self.values.push(value.to_owned());
            return Some(self.values.len() - 1);
        }
        if self.extra.len() < EXAMPLES && !self.extra.iter().any(|v| v == value) {
            self.extra.push(value.to_owned());
        }
        None
    }

    /// More than two distinct values were seen.
    pub fn overflowed(&self) -> bool {
        !self.extra.is_empty()
    }
}

/// Aggregates of the rows of one (target, prediction) cell.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cell {
    /// Rows.
    pub n: u64,
    /// Rows with a probability.
    pub scored: u64,
    /// Σ p.
    pub sum_p: Sum,
    /// Σ ln(clip(p)).
    pub sum_ln_p: Sum,
    /// Σ ln(clip(1 − p)).
    pub sum_ln_q: Sum,
}

impl Cell {
    /// Adds another cell's rows.
    pub fn merge(&mut self, o: &Cell) {
        self.n += o.n;
        self.scored += o.scored;
        self.sum_p.merge(o.sum_p);
        self.sum_ln_p.merge(o.sum_ln_p);
        self.sum_ln_q.merge(o.sum_ln_q);
    }

    /// Σ (1 − p).
    pub fn sum_q(&self) -> f64 {
        self.scored as f64 - self.sum_p.value()
    }
}

/// Sums for regression metrics over rows where target and prediction are both numbers.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegressionSums {
    /// Rows.
    pub rows: u64,
    /// Σ (prediction − target).
    pub error: Sum,
    /// Σ |prediction − target|.
    pub abs_error: Sum,
    /// Σ (prediction − target)².
    pub sq_error: Sum,
}

impl RegressionSums {
    fn merge(&mut self, o: &RegressionSums) {
        self.rows += o.rows;
        self.error.merge(o.error);
        self.abs_error.merge(o.abs_error);
        self.sq_error.merge(o.sq_error);
    }
}

/// Counts and sums of outcomes (no sorted values): what a block of rows contributes, and the
/// counting part of a file's [`Outcomes`].
#[derive(Clone, Debug, Default)]
pub struct OutcomeCounts {
    /// Rows seen.
    pub rows: u64,
    /// Target values.
    pub targets: Labels,
    /// Predicted values (with a derived prediction: `"1"` positive, `"0"` negative).
    pub predictions: Labels,
    /// `[target slot][predicted slot]`, [`ABSENT`] for missing.
    pub cells: [[Cell; 3]; 3],
    /// Regression sums.
    pub regression: RegressionSums,
    /// Probabilities per tenth of [0, 1].
    pub histogram: [u64; 10],
    /// Probability fields that are not numbers in [0, 1].
    pub bad_probabilities: u64,
    /// The first such field.
    pub bad_probability: Option<String>,
}

/// What a block of rows contributes: counts plus the probability keys per target slot.
#[derive(Debug, Default)]
pub struct OutcomeTally {
    /// Counts and sums.
    pub counts: OutcomeCounts,
    /// Probability keys by target slot (for [`Outcomes::probabilities`]).
    keys: [Vec<u64>; 3],
}

/// The canonical text of a label: numbers in shortest form (`1.0` → `1`), every boolean
/// spelling as `True`/`False`, other text as is.
pub fn canonical_label(field: &[u8]) -> String {
    if is_bool(field) {
        return if field.eq_ignore_ascii_case(b"true") { "True".into() } else { "False".into() };
    }
    match parse_number(field) {
        Some((v, _)) if v.is_finite() => {
            let v = v + 0.0;
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                format!("{v}")
            }
        }
        _ => String::from_utf8_lossy(field).into_owned(),
    }
}

impl OutcomeTally {
    /// Adds one row given its (target, prediction, probability) fields.
    pub fn observe(&mut self, plan: &OutcomePlan, target: Option<&[u8]>, prediction: Option<&[u8]>, p: Option<&[u8]>) {
        let c = &mut self.counts;
        c.rows += 1;
        fn present(f: Option<&[u8]>) -> Option<&[u8]> {
            f.filter(|f| !is_na(f))
        }
        let (target, prediction, p) = (present(target), present(prediction), present(p));
        if let (Some(t), Some(y)) = (target, prediction) {
            if let (Some((t, _)), Some((y, _))) = (parse_number(t), parse_number(y)) {
                if t.is_finite() && y.is_finite() {
                    let e = y - t;
                    c.regression.rows += 1;
                    c.regression.error.add(e);
                    c.regression.abs_error.add(e.abs());
                    c.regression.sq_error.add(e * e);
                }
            }
        }
        let probability = match p {
            None => None,
            Some(f) => match parse_number(f) {
                Some((v, _)) if (0.0..=1.0).contains(&v) => Some(v + 0.0),
                _ => {
                    c.bad_probabilities += 1;
                    c.bad_probability.get_or_insert_with(|| String::from_utf8_lossy(f).into_owned());
                    None
                }
            },
        };
        let ti = target.map_or(ABSENT, |t| c.targets.slot(&canonical_label(t)).unwrap_or(usize::MAX));
        let pi = match (plan.prediction, prediction, probability) {
            (Some(_), Some(y), _) => c.predictions.slot(&canonical_label(y)).unwrap_or(usize::MAX),
            (None, _, Some(v)) => c.predictions.slot(if v >= plan.threshold { "1" } else { "0" }).unwrap_or(usize::MAX),
            _ => ABSENT,
        };
        if ti == usize::MAX || pi == usize::MAX {
            return; // a third label value: reported as non-binary, not counted
        }
        let cell = &mut c.cells[ti][pi];
        cell.n += 1;
        if let Some(v) = probability {
            cell.scored += 1;
            cell.sum_p.add(v);
            cell.sum_ln_p.add(v.clamp(EPS, 1.0 - EPS).ln());
            cell.sum_ln_q.add((1.0 - v).clamp(EPS, 1.0 - EPS).ln());
            c.histogram[((v * 10.0) as usize).min(9)] += 1;
            self.keys[ti].push(runs::key(v));
        }
    }

    /// Whether nothing was observed since the last merge.
    pub fn is_empty(&self) -> bool {
        self.counts.rows == 0
    }
}

impl OutcomeCounts {
    /// Adds `o`, whose slots may differ; returns where each of `o`'s target slots went (for
    /// its keys), `None` for values that found no slot.
    fn merge(&mut self, o: &OutcomeCounts) -> [Option<usize>; 3] {
        self.rows += o.rows;
        self.regression.merge(&o.regression);
        for (a, b) in self.histogram.iter_mut().zip(o.histogram) {
            *a += b;
        }
        self.bad_probabilities += o.bad_probabilities;
        if self.bad_probability.is_none() {
            self.bad_probability.clone_from(&o.bad_probability);
        }
        let remap = |mine: &mut Labels, theirs: &Labels| -> [Option<usize>; 3] {
            let mut m = [None, None, Some(ABSENT)];
            for (i, v) in theirs.values.iter().enumerate() {
                m[i] = mine.slot(v);
            }
            for v in &theirs.extra {
                mine.slot(v);
            }
            m
        };
        let tm = remap(&mut self.targets, &o.targets);
        let pm = remap(&mut self.predictions, &o.predictions);
        for (ti, row) in o.cells.iter().enumerate() {
            for (pi, cell) in row.iter().enumerate() {
                if let (Some(t), Some(p)) = (tm[ti], pm[pi]) {
                    self.cells[t][p].merge(cell);
                }
            }
        }
        tm
    }
}

/// The outcomes of one file (or of the labelled current rows).
#[derive(Debug)]
pub struct Outcomes {
    /// Counts and sums.
    pub counts: OutcomeCounts,
    /// Probabilities by target slot ([`ABSENT`] = no target), sorted runs.
    pub probabilities: [Runs; 3],
}

impl Outcomes {
    /// Empty outcomes storing probabilities under `budget`.
    pub fn new(budget: &Arc<Budget>) -> Self {
        Outcomes {
            counts: OutcomeCounts::default(),
            probabilities: [Runs::new(budget.clone()), Runs::new(budget.clone()), Runs::new(budget.clone())],
        }
    }

    /// Moves a tally into the shared outcomes (sorting full buffers outside the lock) and
    /// leaves it empty.
    pub fn absorb(shared: &Mutex<Outcomes>, budget: &Budget, tally: &mut OutcomeTally) -> Result<()> {
        let slots = shared.lock().expect("outcomes lock").counts.merge(&tally.counts);
        tally.counts = OutcomeCounts::default();
        for (i, keys) in tally.keys.iter_mut().enumerate() {
            if let Some(slot) = slots[i] {
                runs::store(shared, |o: &mut Outcomes| Some(&mut o.probabilities[slot]), budget, keys)?;
            }
            keys.clear();
        }
        Ok(())
    }

    /// Seals the probability runs (after the last [`Outcomes::absorb`]).
    pub fn seal(&mut self) -> Result<()> {
        for r in &mut self.probabilities {
            r.seal()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(field: &str, want: &str) {
        assert_eq!(canonical_label(field.as_bytes()), want, "{field:?}");
    }

    #[test]
    fn labels_are_canonical() {
        check("1", "1");
        check("1.0", "1");
        check("-0.0", "0");
        check("0.5", "0.5");
        check("TRUE", "True");
        check("false", "False");
        check("spam", "spam");
    }

    #[test]
    fn tallies_merge_across_different_slot_orders() {
        let plan = OutcomePlan { target: Some(0), prediction: Some(1), probability: Some(2), threshold: 0.5 };
        let budget = Budget::new(1 << 20, 3, None).unwrap();
        let shared = Mutex::new(Outcomes::new(&budget));
        let mut a = OutcomeTally::default();
        a.observe(&plan, Some(b"spam"), Some(b"spam"), Some(b"0.9"));
        a.observe(&plan, Some(b"ham"), Some(b"spam"), Some(b"0.6"));
        let mut b = OutcomeTally::default();
        b.observe(&plan, Some(b"ham"), Some(b"ham"), Some(b"0.1"));
        b.observe(&plan, Some(b"spam"), Some(b"NA"), Some(b"x"));
        b.observe(&plan, Some(b"eggs"), Some(b"ham"), Some(b"0.2"));
        Outcomes::absorb(&shared, &budget, &mut a).unwrap();
        Outcomes::absorb(&shared, &budget, &mut b).unwrap();
        let mut o = shared.into_inner().unwrap();
        o.seal().unwrap();
        let c = &o.counts;
        assert_eq!(c.targets.values, ["spam", "ham"]);
        assert_eq!(c.targets.extra, ["eggs"]);
        assert_eq!(c.rows, 5);
        assert_eq!((c.cells[0][0].n, c.cells[1][0].n, c.cells[1][1].n, c.cells[0][ABSENT].n), (1, 1, 1, 1));
        assert_eq!((c.bad_probabilities, c.bad_probability.as_deref()), (1, Some("x")));
        assert_eq!([o.probabilities[0].len(), o.probabilities[1].len(), o.probabilities[2].len()], [1, 2, 0]);
        assert!((c.cells[1][0].sum_p.value() - 0.6).abs() < 1e-15);
    }
}
