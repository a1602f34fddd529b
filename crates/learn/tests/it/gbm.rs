//! Gradient boosting: accuracy on synthetic tasks, missing values and categories, early
//! stopping, determinism, tree-shape parameters.

use learn::{fit, Column, Frame, GbmParams, Model, ModelSpec, Task, TrainReport};

use crate::{cats, frame, Gen};

/// `y = 3 sin(x1) + x2² + effect(c) + noise`; 5% of `x2` and of `c` missing.
fn regression_data(n: usize, seed: u64) -> (Frame, Vec<f64>) {
    let mut g = Gen::new(seed);
    let (mut x1, mut x2, mut c, mut y) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let a = g.uniform() * 6.0 - 3.0;
        let b = g.uniform() * 4.0 - 2.0;
        let level = ["a", "b", "c", "d"][(g.uniform() * 4.0) as usize];
        let effect = match level {
            "a" => 0.0,
            "b" => 2.0,
            "c" => -1.0,
            _ => 1.0,
        };
        y.push(3.0 * a.sin() + b * b + effect + 0.3 * g.normal());
        x1.push(a);
        x2.push(if g.uniform() < 0.05 { f64::NAN } else { b });
        c.push(if g.uniform() < 0.05 { None } else { Some(level.to_string()) });
    }
    let f = frame(vec![Column::numeric("x1", x1), Column::numeric("x2", x2), Column::categorical("c", c)]);
    (f, y)
}

/// `P(y = 1) = sigmoid(2 x1 - x2 + [c = "b"])`.
fn classification_data(n: usize, seed: u64) -> (Frame, Vec<f64>) {
    let mut g = Gen::new(seed);
    let (mut x1, mut x2, mut c, mut y) = (vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let a = g.normal();
        let b = g.normal();
        let level = ["a", "b"][(g.uniform() * 2.0) as usize];
        let z = 2.0 * a - b + if level == "b" { 1.0 } else { 0.0 };
        let p = 1.0 / (1.0 + (-z).exp());
        y.push(if g.uniform() < p { 1.0 } else { 0.0 });
        x1.push(a);
        x2.push(b);
        c.push(Some(level.to_string()));
    }
    let f = frame(vec![Column::numeric("x1", x1), Column::numeric("x2", x2), Column::categorical("c", c)]);
    (f, y)
}

fn train(f: &Frame, y: &[f64], task: Task, params: GbmParams) -> (Model, TrainReport) {
    fit(f, y, task, &ModelSpec::Gbm(params), &mut |_, _| {}).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Fits on `n_train` rows of a regression task and checks the holdout R².
fn check_regression(params: GbmParams, n_train: usize, min_r2: f64) {
    let (f, y) = regression_data(n_train + 1000, 7);
    let train_rows: Vec<usize> = (0..n_train).collect();
    let test_rows: Vec<usize> = (n_train..n_train + 1000).collect();
    let y_train: Vec<f64> = train_rows.iter().map(|&i| y[i]).collect();
    let y_test: Vec<f64> = test_rows.iter().map(|&i| y[i]).collect();
    let (m, _) = train(&f.select_rows(&train_rows), &y_train, Task::Regression, params);
    let p = m.predict(&f.select_rows(&test_rows)).unwrap();
    let r2 = learn::r2(&y_test, &p);
    let baseline = learn::rmse(&y_test, &vec![mean(&y_train); y_test.len()]);
    assert!(r2 >= min_r2, "R² {r2} < {min_r2}");
    assert!(learn::rmse(&y_test, &p) < 0.5 * baseline);
}

#[test]
fn regression_beats_the_mean_by_far() {
    check_regression(GbmParams::default(), 3000, 0.9);
    check_regression(GbmParams { early_stopping: false, ..GbmParams::default() }, 3000, 0.9);
    check_regression(
        GbmParams { max_depth: Some(3), l2_regularization: 1.0, max_bins: 16, ..GbmParams::default() },
        3000,
        0.85,
    );
}

#[test]
fn classification_gives_calibrated_probabilities() {
    let (f, y) = classification_data(4000, 3);
    let train_rows: Vec<usize> = (0..3000).collect();
    let test_rows: Vec<usize> = (3000..4000).collect();
    let y_train: Vec<f64> = train_rows.iter().map(|&i| y[i]).collect();
    let y_test: Vec<f64> = test_rows.iter().map(|&i| y[i]).collect();
    let (m, report) = train(
        &f.select_rows(&train_rows),
        &y_train,
        Task::BinaryClassification,
        GbmParams { early_stopping_min_samples: 0, ..GbmParams::default() },
    );
    assert_eq!(m.task(), Task::BinaryClassification);
    let p = m.predict(&f.select_rows(&test_rows)).unwrap();
    assert!(p.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let auc = learn::roc_auc(&y_test, &p);
    assert!(auc > 0.85, "AUC {auc}");
    let base = mean(&y_train);
    let base_loss = learn::log_loss(&y_test, &vec![base; y_test.len()]);
    let loss = learn::log_loss(&y_test, &p);
    assert!(loss < 0.75 * base_loss, "log-loss {loss} vs {base_loss}");
    // Calibration: the mean predicted probability tracks the positive rate.
    assert!((mean(&p) - mean(&y_test)).abs() < 0.05);
    assert!(learn::accuracy(&y_test, &p) > 0.75);
    // The monitored run goes past the best count by up to `n_iter_no_change`.
    assert!(report.validation_loss.len() >= report.n_iter && report.n_iter > 0);
}

#[test]
fn missing_values_learn_their_direction() {
    // y = x where x is known, 10 where it is missing: only a missing-aware split finds it.
    let mut g = Gen::new(1);
    let mut x = vec![];
    let mut y = vec![];
    for i in 0..1000 {
        if i % 5 == 0 {
            x.push(f64::NAN);
            y.push(10.0);
        } else {
            let v = g.uniform();
            x.push(v);
            y.push(v);
        }
    }
    let f = frame(vec![Column::numeric("x", x)]);
    let (m, _) = train(&f, &y, Task::Regression, GbmParams::default());
    let p = m.predict(&frame(vec![Column::numeric("x", vec![f64::NAN, 0.5])])).unwrap();
    assert!((p[0] - 10.0).abs() < 0.1, "{p:?}");
    assert!((p[1] - 0.5).abs() < 0.1, "{p:?}");
}

#[test]
fn missing_at_predict_time_when_training_had_none() {
    let (f, y) = regression_data(500, 2);
    let f = frame(vec![Column::numeric(
        "x1",
        match &f.column("x1").unwrap().data {
            learn::ColumnData::Numeric(v) => v.clone(),
            _ => unreachable!(),
        },
    )]);
    let (m, _) = train(&f, &y, Task::Regression, GbmParams::default());
    let p = m.predict(&frame(vec![Column::numeric("x1", vec![f64::NAN, 1.0])])).unwrap();
    assert!(p.iter().all(|v| v.is_finite()));
}

#[test]
fn unseen_category_is_treated_as_missing() {
    let (f, y) = regression_data(1500, 4);
    let (m, _) = train(&f, &y, Task::Regression, GbmParams::default());
    let rows = |c: Vec<Option<String>>| {
        frame(vec![
            Column::numeric("x1", vec![0.3; c.len()]),
            Column::numeric("x2", vec![-1.0; c.len()]),
            Column::categorical("c", c),
        ])
    };
    let p = m.predict(&rows(cats(&["zzz", "", "b"]))).unwrap();
    assert_eq!(p[0], p[1], "unseen = missing");
    assert_ne!(p[0], p[2]);
}

#[test]
fn categorical_splits_group_levels() {
    // a, c → 0 and b, d → 10: one native split separates them, an ordinal one cannot.
    let levels = ["a", "b", "c", "d"];
    let c: Vec<&str> = (0..400).map(|i| levels[i % 4]).collect();
    let y: Vec<f64> = (0..400).map(|i| if i % 2 == 1 { 10.0 } else { 0.0 }).collect();
    let f = frame(vec![Column::categorical("c", cats(&c))]);
    let (m, _) = train(
        &f,
        &y,
        Task::Regression,
        GbmParams { max_leaf_nodes: 2, max_iter: 1, learning_rate: 1.0, ..GbmParams::default() },
    );
    let p = m.predict(&f).unwrap();
    assert!(learn::rmse(&y, &p) < 1e-9, "{:?}", &p[..4]);
}

#[test]
fn tree_shape_parameters_bound_the_leaves() {
    let (f, y) = regression_data(2000, 5);
    let distinct = |params: GbmParams| {
        let (m, _) = train(&f, &y, Task::Regression, params);
        let mut p = m.predict(&f).unwrap();
        p.sort_by(f64::total_cmp);
        p.dedup();
        p.len()
    };
    let one_tree = GbmParams { max_iter: 1, ..GbmParams::default() };
    assert_eq!(distinct(one_tree.clone()), 31);
    assert_eq!(distinct(GbmParams { max_depth: Some(1), ..one_tree.clone() }), 2);
    assert_eq!(distinct(GbmParams { max_leaf_nodes: 3, ..one_tree.clone() }), 3);
    // No split can leave min_samples_leaf rows on both sides: a single leaf.
    assert_eq!(distinct(GbmParams { min_samples_leaf: 1001, ..one_tree.clone() }), 1);
    // Every leaf of a one-tree model holds at least min_samples_leaf training rows.
    let (m, _) = train(&f, &y, Task::Regression, GbmParams { min_samples_leaf: 150, ..one_tree });
    let p = m.predict(&f).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for v in p {
        *counts.entry(v.to_bits()).or_insert(0) += 1;
    }
    assert!(counts.values().all(|&c| c >= 150), "{counts:?}");
}

#[test]
fn early_stopping_stops_on_noise() {
    let mut g = Gen::new(9);
    let x: Vec<f64> = (0..3000).map(|_| g.uniform()).collect();
    let y: Vec<f64> = (0..3000).map(|_| g.normal()).collect();
    let f = frame(vec![Column::numeric("x", x)]);
    let params = GbmParams { early_stopping_min_samples: 0, ..GbmParams::default() };
    let mut last = (0, 0);
    let spec = ModelSpec::Gbm(params.clone());
    let (m, r) = fit(&f, &y, Task::Regression, &spec, &mut |d, t| last = (d, t)).unwrap();
    assert!(r.n_iter < 100, "{}", r.n_iter);
    assert_eq!(last, (r.n_iter, r.n_iter));
    // The model keeps the trees up to the lowest validation loss; the monitored run went
    // on for `n_iter_no_change` more without improving on it.
    let v = &r.validation_loss;
    let best = v.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(v.iter().position(|&l| l == best), Some(r.n_iter - 1));
    assert!(v.len() > r.n_iter);
    assert_eq!(r.train_loss.len(), r.n_iter);
    assert_eq!(m.n_trees(), r.n_iter);
    // Without refit (scikit-learn's way) every monitored tree is kept, grown on 90% of the rows.
    let (m2, r2) = train(&f, &y, Task::Regression, GbmParams { refit: false, ..params.clone() });
    assert_eq!(r2.n_iter, v.len());
    assert_eq!(&r2.validation_loss, v);
    assert_ne!(m2.to_bytes(), m.to_bytes());
    // Above `refit_max_samples` rows there is no refit either.
    let (m4, r4) = train(&f, &y, Task::Regression, GbmParams { refit_max_samples: 2999, ..params.clone() });
    assert_eq!(m4.to_bytes(), m2.to_bytes());
    assert_eq!(r4.n_iter, r2.n_iter);
    let (m5, _) = train(&f, &y, Task::Regression, GbmParams { refit_max_samples: 3000, ..params.clone() });
    assert_eq!(m5.to_bytes(), m.to_bytes());
    // Below the row threshold (here scikit-learn's 'auto', 10 000), nothing is held out.
    let sklearn_auto = GbmParams { early_stopping_min_samples: 10_000, ..params };
    let (_, r3) = train(&f, &y, Task::Regression, sklearn_auto);
    assert_eq!(r3.n_iter, GbmParams::default().max_iter);
    assert!(r3.validation_loss.is_empty());
}

#[test]
fn too_few_rows_to_hold_out_train_on_all_of_them() {
    // One row of each class: a stratified 10% split would leave nothing to train on, so
    // early stopping stands aside and every row trains for max_iter trees.
    let f = frame(vec![Column::numeric("x", vec![0.0, 1.0])]);
    let params = GbmParams { min_samples_leaf: 1, max_iter: 3, ..GbmParams::default() };
    let (m, r) = train(&f, &[0.0, 1.0], Task::BinaryClassification, params.clone());
    assert_eq!((r.n_iter, m.n_trees()), (3, 3));
    assert!(r.validation_loss.is_empty());
    let (_, r) = train(&f.select_rows(&[0]), &[2.0], Task::Regression, params);
    assert_eq!(r.n_iter, 3);
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    // Enough rows for every parallel cut: the 16-chunk histograms and partitions of a big
    // node, and several chunks of the per-row work of an iteration.
    let (f, y) = regression_data(70_000, 11);
    let bytes = |threads: usize, seed: u64, refit: bool| {
        let params = GbmParams { seed, refit, max_iter: 8, ..GbmParams::default() };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| train(&f, &y, Task::Regression, params).0.to_bytes())
    };
    for refit in [true, false] {
        let a = bytes(1, 5, refit);
        assert!(a == bytes(2, 5, refit), "1 vs 2 threads, refit {refit}");
        assert!(a == bytes(3, 5, refit), "1 vs 3 threads, refit {refit}");
    }
    // The log-loss, with its hessians, alike.
    let (fc, yc) = classification_data(70_000, 12);
    let class_bytes = |threads: usize| {
        let params = GbmParams { max_iter: 8, ..GbmParams::default() };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| train(&fc, &yc, Task::BinaryClassification, params).0.to_bytes())
    };
    let a = class_bytes(1);
    assert!(a == class_bytes(2) && a == class_bytes(3), "classifier: 1 vs 2 or 3 threads");
    // The seed picks the validation rows: it shapes the model grown on the others. (With
    // refit, it only matters through the iteration count early stopping picks.)
    assert!(bytes(2, 5, false) != bytes(2, 6, false));
}

#[test]
fn progress_reaches_the_end() {
    let (f, y) = regression_data(300, 1);
    let mut calls = vec![];
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 5, ..GbmParams::default() });
    fit(&f, &y, Task::Regression, &spec, &mut |d, t| calls.push((d, t))).unwrap();
    assert_eq!(calls.first(), Some(&(0, 5)));
    assert_eq!(calls.last(), Some(&(5, 5)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn feature_importance_ranks_the_signal_first() {
    let (f, y) = regression_data(2000, 8);
    let mut g = Gen::new(3);
    let noise: Vec<f64> = (0..2000).map(|_| g.uniform()).collect();
    let mut cols = f.columns().to_vec();
    cols.push(Column::numeric("noise", noise));
    let (_, r) = train(&frame(cols), &y, Task::Regression, GbmParams::default());
    let names: Vec<&str> = r.feature_importance.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4);
    assert_eq!(names[3], "noise");
    assert!(r.feature_importance.windows(2).all(|w| w[0].1 >= w[1].1));
    let total: f64 = r.feature_importance.iter().map(|(_, v)| v).sum();
    assert!((total - 1.0).abs() < 1e-9);
}

#[test]
fn bad_parameters_are_named() {
    let (f, y) = regression_data(100, 1);
    let err = |p: GbmParams| fit(&f, &y, Task::Regression, &ModelSpec::Gbm(p), &mut |_, _| {}).unwrap_err().to_string();
    assert_eq!(
        err(GbmParams { max_bins: 256, ..GbmParams::default() }),
        "parameter max_bins: must be between 2 and 255"
    );
    assert_eq!(
        err(GbmParams { learning_rate: 0.0, ..GbmParams::default() }),
        "parameter learning_rate: must be a positive number"
    );
    assert_eq!(
        err(GbmParams { validation_fraction: 1.0, ..GbmParams::default() }),
        "parameter validation_fraction: must be in (0, 1)"
    );
}

#[test]
fn predictions_do_not_depend_on_how_many_rows_come_at_once() {
    // Blocks of rows are scored tree by tree, in parallel past one block; each row must
    // still get exactly the numbers it gets alone (serve scores one row, predict thousands).
    let (f, y) = regression_data(1000, 21);
    let (m, _) = train(&f, &y, Task::Regression, GbmParams::default());
    let all = m.predict(&f).unwrap();
    for (row, want) in all.iter().enumerate() {
        let one = m.predict(&f.select_rows(&[row])).unwrap();
        assert_eq!(one[0].to_bits(), want.to_bits(), "row {row}");
    }
    let some: Vec<usize> = (0..1000).step_by(7).collect();
    let part = m.predict(&f.select_rows(&some)).unwrap();
    assert!(some.iter().zip(&part).all(|(&r, p)| p.to_bits() == all[r].to_bits()));
}
