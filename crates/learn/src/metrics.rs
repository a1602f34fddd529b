//! Holdout metrics, with scikit-learn's definitions: RMSE, MAE and R² for regression;
//! log-loss, ROC AUC and accuracy for binary classification (targets 0/1, predictions are
//! probabilities of class 1).
//!
//! All functions panic if `y` and `p` differ in length and return NaN on empty input.

fn check(y: &[f64], p: &[f64]) -> bool {
    assert_eq!(y.len(), p.len(), "targets and predictions differ in length");
    !y.is_empty()
}

/// Root mean squared error.
pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    mse(y, p).sqrt()
}

/// Mean squared error.
pub fn mse(y: &[f64], p: &[f64]) -> f64 {
    if !check(y, p) {
        return f64::NAN;
    }
    y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len() as f64
}

/// Mean absolute error.
pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    if !check(y, p) {
        return f64::NAN;
    }
    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}

/// Coefficient of determination; 1.0 for a perfect fit of a constant target, 0.0 for an
/// imperfect one (as scikit-learn's `force_finite`).
pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    if !check(y, p) {
        return f64::NAN;
    }
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// Mean binary cross-entropy; probabilities are clipped to `[ε, 1 - ε]` with ε the machine
/// epsilon, as scikit-learn does.
pub fn log_loss(y: &[f64], p: &[f64]) -> f64 {
    if !check(y, p) {
        return f64::NAN;
    }
    const EPS: f64 = f64::EPSILON;
    y.iter()
        .zip(p)
        .map(|(&a, &b)| {
            let b = b.clamp(EPS, 1.0 - EPS);
            -(a * b.ln() + (1.0 - a) * (1.0 - b).ln())
        })
        .sum::<f64>()
        / y.len() as f64
}

/// Area under the ROC curve (Mann–Whitney U with tied scores sharing their mean rank);
/// NaN if only one class is present. A target counts as positive when it equals 1.
pub fn roc_auc(y: &[f64], p: &[f64]) -> f64 {
    if !check(y, p) {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let n_pos = y.iter().filter(|&&v| v == 1.0).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return f64::NAN;
    }
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        // Ranks are 1-based; the tie group i..=j shares the mean rank.
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_group = order[i..=j].iter().filter(|&&k| y[k] == 1.0).count();
        rank_sum_pos += mean_rank * pos_in_group as f64;
        i = j + 1;
    }
    let n_pos = n_pos as f64;
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg as f64)
}

/// Share of rows whose predicted class (1 when the probability is above 0.5, else 0, as
/// scikit-learn's `predict` breaks the tie) equals the target.
pub fn accuracy(y: &[f64], p: &[f64]) -> f64 {
    if !check(y, p) {
        return f64::NAN;
    }
    let right = y.iter().zip(p).filter(|(&a, &b)| (b > 0.5) == (a == 1.0)).count();
    right as f64 / y.len() as f64
}

/// Counts of (true negatives, false positives, false negatives, true positives), the class
/// predicted as in [`accuracy`].
pub fn confusion(y: &[f64], p: &[f64]) -> [usize; 4] {
    let mut c = [0; 4];
    for (&a, &b) in y.iter().zip(p) {
        c[usize::from(a == 1.0) * 2 + usize::from(b > 0.5)] += 1;
    }
    c
}

/// Precision, recall and F1 of the positive class (0 where scikit-learn's `zero_division`
/// default gives 0), the class predicted as in [`accuracy`].
pub fn precision_recall_f1(y: &[f64], p: &[f64]) -> (f64, f64, f64) {
    if !check(y, p) {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let [_, fp, fn_, tp] = confusion(y, p).map(|c| c as f64);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    (ratio(tp, tp + fp), ratio(tp, tp + fn_), ratio(2.0 * tp, 2.0 * tp + fp + fn_))
}
