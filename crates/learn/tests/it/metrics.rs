//! Metrics against values computed with scikit-learn 1.9 on the same inputs.

use learn::{accuracy, confusion, log_loss, mae, precision_recall_f1, r2, rmse, roc_auc};

fn check(metric: fn(&[f64], &[f64]) -> f64, y: &[f64], p: &[f64], expect: f64) {
    let got = metric(y, p);
    assert!((got - expect).abs() < 1e-12 || (got.is_nan() && expect.is_nan()), "got {got}, expected {expect}");
}

#[test]
fn regression_metrics() {
    let y = [3.0, -0.5, 2.0, 7.0];
    let p = [2.5, 0.0, 2.0, 8.0];
    check(rmse, &y, &p, 0.612_372_435_695_794_5);
    check(mae, &y, &p, 0.5);
    check(r2, &y, &p, 0.948_608_137_044_967_8);
    check(r2, &[1.0, 1.0], &[1.0, 1.0], 1.0);
    check(r2, &[1.0, 1.0], &[1.0, 2.0], 0.0);
    check(rmse, &[], &[], f64::NAN);
}

#[test]
fn classification_metrics() {
    let y = [0.0, 0.0, 1.0, 1.0];
    let p = [0.1, 0.4, 0.35, 0.8];
    check(roc_auc, &y, &p, 0.75);
    check(log_loss, &y, &p, 0.472_287_953_809_176_15);
    check(accuracy, &y, &p, 0.75);
    // Ties share ranks; 0.5 is class 0 (scikit-learn's argmax keeps the first class).
    check(roc_auc, &[0.0, 1.0, 0.0, 1.0], &[0.5, 0.5, 0.2, 0.9], 0.875);
    check(accuracy, &[0.0, 1.0], &[0.5, 0.5], 0.5);
    check(roc_auc, &[1.0, 1.0], &[0.2, 0.3], f64::NAN);
    check(log_loss, &[1.0, 0.0], &[0.0, 1.0], 36.043_653_389_117_15);
}

#[test]
fn precision_recall_f1_and_confusion_as_scikit_learn() {
    // sklearn.metrics on y = [0,0,1,1,1,0], predicted (p > 0.5) = [0,1,1,0,1,0]:
    // precision 2/3, recall 2/3, f1 2/3; confusion_matrix [[2,1],[1,2]].
    let y = [0.0, 0.0, 1.0, 1.0, 1.0, 0.0];
    let p = [0.2, 0.7, 0.9, 0.5, 0.6, 0.1];
    assert_eq!(confusion(&y, &p), [2, 1, 1, 2]);
    let (pr, re, f1) = precision_recall_f1(&y, &p);
    assert!((pr - 2.0 / 3.0).abs() < 1e-15 && (re - 2.0 / 3.0).abs() < 1e-15 && (f1 - 2.0 / 3.0).abs() < 1e-15);
    // No predicted positives: zero_division gives 0, as scikit-learn's default (with a warning).
    assert_eq!(precision_recall_f1(&[1.0, 0.0], &[0.1, 0.2]), (0.0, 0.0, 0.0));
    let (a, b, c) = precision_recall_f1(&[], &[]);
    assert!(a.is_nan() && b.is_nan() && c.is_nan());
}
