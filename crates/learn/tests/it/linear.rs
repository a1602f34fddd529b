//! The linear baseline: coefficient recovery, encoding, shrinkage, logistic regression.

use learn::{fit, Column, Frame, LinearParams, Model, ModelSpec, Task};

use crate::{cats, frame, Gen};

fn train(f: &Frame, y: &[f64], task: Task, alpha: f64) -> Model {
    let spec = ModelSpec::Linear(LinearParams { alpha, ..LinearParams::default() });
    fit(f, y, task, &spec, &mut |_, _| {}).unwrap().0
}

/// `y = 2 + 3 a − 1.5 b + 4·[c = "y"]` (+ noise): returns the frame and target.
fn linear_data(n: usize, noise: f64) -> (Frame, Vec<f64>) {
    let mut g = Gen::new(21);
    let (mut a, mut b, mut c, mut y) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let va = g.normal() * 2.0 + 1.0;
        let vb = g.uniform() * 10.0;
        let vc = if g.uniform() < 0.5 { "x" } else { "y" };
        y.push(2.0 + 3.0 * va - 1.5 * vb + if vc == "y" { 4.0 } else { 0.0 } + noise * g.normal());
        a.push(va);
        b.push(vb);
        c.push(vc);
    }
    let f = frame(vec![Column::numeric("a", a), Column::numeric("b", b), Column::categorical("c", cats(&c))]);
    (f, y)
}

fn check_coefficients(m: &Model, expect: &[(&str, f64)], tol: f64) {
    let (intercept, coefs) = m.linear_coefficients().unwrap();
    let mut got = vec![("(intercept)".to_string(), intercept)];
    got.extend(coefs);
    assert_eq!(got.len(), expect.len(), "{got:?}");
    for ((name, v), (en, ev)) in got.iter().zip(expect) {
        assert_eq!(name, en);
        assert!((v - ev).abs() < tol, "{name}: {v} vs {ev}");
    }
}

#[test]
fn ridge_recovers_known_coefficients() {
    let (f, y) = linear_data(500, 0.0);
    let m = train(&f, &y, Task::Regression, 1e-9);
    assert_eq!(m.kind(), "linear");
    // Full one-hot with an intercept is collinear: only differences between levels and
    // the level-specific intercepts are identified, so compare the predictions they imply.
    let (intercept, coefs) = m.linear_coefficients().unwrap();
    let get = |n: &str| coefs.iter().find(|(k, _)| k == n).unwrap().1;
    assert!((get("a") - 3.0).abs() < 1e-6);
    assert!((get("b") + 1.5).abs() < 1e-6);
    assert!((get("c=y") - get("c=x") - 4.0).abs() < 1e-6);
    assert!((intercept + get("c=x") - 2.0).abs() < 1e-6);
    let p = m.predict(&f).unwrap();
    assert!(learn::rmse(&y, &p) < 1e-6);
}

#[test]
fn ridge_with_noise_is_close() {
    let (f, y) = linear_data(5000, 1.0);
    let m = train(&f, &y, Task::Regression, 1.0);
    let (_, coefs) = m.linear_coefficients().unwrap();
    assert!((coefs[0].1 - 3.0).abs() < 0.05, "{coefs:?}");
    assert!((coefs[1].1 + 1.5).abs() < 0.05, "{coefs:?}");
}

#[test]
fn alpha_shrinks_coefficients() {
    let (f, y) = linear_data(200, 0.5);
    let size = |alpha| {
        let m = train(&f, &y, Task::Regression, alpha);
        m.linear_coefficients().unwrap().1.iter().map(|(_, v)| v.abs()).sum::<f64>()
    };
    assert!(size(1000.0) < 0.5 * size(0.01));
}

#[test]
fn numeric_only_coefficients_are_exact() {
    let a: Vec<f64> = (0..50).map(f64::from).collect();
    let y: Vec<f64> = a.iter().map(|v| 5.0 - 0.25 * v).collect();
    let m = train(&frame(vec![Column::numeric("a", a)]), &y, Task::Regression, 0.0);
    check_coefficients(&m, &[("(intercept)", 5.0), ("a", -0.25)], 1e-9);
}

#[test]
fn missing_and_unseen_values_are_imputed() {
    let f = frame(vec![
        Column::numeric("a", vec![1.0, 2.0, 3.0, f64::NAN]),
        Column::categorical("c", cats(&["x", "y", "x", ""])),
    ]);
    let y = [1.0, 2.0, 3.0, 2.0];
    let m = train(&f, &y, Task::Regression, 0.1);
    let (_, coefs) = m.linear_coefficients().unwrap();
    let names: Vec<&str> = coefs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "c=x", "c=y", "c=<missing>"]);
    let q = frame(vec![Column::numeric("a", vec![f64::NAN, 2.0]), Column::categorical("c", cats(&["never-seen", ""]))]);
    let p = m.predict(&q).unwrap();
    // NaN is the training mean (2.0), and the unseen level is the missing level.
    assert!((p[0] - p[1]).abs() < 1e-12, "{p:?}");
}

#[test]
fn logistic_regression_probabilities() {
    let mut g = Gen::new(5);
    let (mut a, mut y) = (vec![], vec![]);
    for _ in 0..2000 {
        let v = g.normal();
        let p = 1.0 / (1.0 + (-(0.5 + 2.0 * v)).exp());
        a.push(v);
        y.push(if g.uniform() < p { 1.0 } else { 0.0 });
    }
    let f = frame(vec![Column::numeric("a", a)]);
    let (m, r) =
        fit(&f, &y, Task::BinaryClassification, &ModelSpec::Linear(LinearParams::default()), &mut |_, _| {}).unwrap();
    let p = m.predict(&f).unwrap();
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(learn::roc_auc(&y, &p) > 0.85);
    let (b, coefs) = m.linear_coefficients().unwrap();
    assert!((coefs[0].1 - 2.0).abs() < 0.3, "{coefs:?}");
    assert!((b - 0.5).abs() < 0.3, "{b}");
    assert!(r.train_loss.windows(2).all(|w| w[1] <= w[0] + 1e-12));
    assert_eq!(r.n_iter, r.train_loss.len());
}

#[test]
fn infinite_and_all_missing_columns_are_imputed() {
    let f = frame(vec![
        Column::numeric("a", vec![1.0, 2.0, f64::INFINITY, 4.0]),
        Column::numeric("empty", vec![f64::NAN; 4]),
    ]);
    let y = [1.0, 2.0, 3.0, 4.0];
    for alpha in [0.0, 1.0] {
        let m = train(&f, &y, Task::Regression, alpha);
        let p = m.predict(&f).unwrap();
        assert!(p.iter().all(|v| v.is_finite()), "{p:?}");
    }
}
