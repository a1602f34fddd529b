//! Metrics against values computed with scikit-learn 1.9 on the same inputs.

use learn::{accuracy, log_loss, mae, r2, rmse, roc_auc};

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
