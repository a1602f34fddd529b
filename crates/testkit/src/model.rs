//! Small trained models: a regressor on two numeric columns, fitted in milliseconds, and
//! its packaged model folder (what `factory serve` and the gateway tests load).

use learn::{Column, Frame, GbmParams, Model, ModelSpec, Task};
use std::path::{Path, PathBuf};

/// `n` rows of the two features `x1`, `x2` (deterministic).
pub fn rows(n: usize) -> Frame {
    let x1: Vec<f64> = (0..n).map(|i| (i % 17) as f64 * 0.5).collect();
    let x2: Vec<f64> = (0..n).map(|i| ((i * 7) % 23) as f64 - 11.0).collect();
    Frame::from_columns(vec![Column::numeric("x1", x1), Column::numeric("x2", x2)]).unwrap()
}

/// A 5-tree regressor of `2·x1 + x2` on [`rows`]`(200)`, and those rows.
pub fn regressor() -> (Model, Frame) {
    let x = rows(200);
    let y: Vec<f64> = (0..200).map(|i| 2.0 * ((i % 17) as f64 * 0.5) + ((i * 7) % 23) as f64 - 11.0).collect();
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 5, min_samples_leaf: 5, ..GbmParams::default() });
    let (model, _) = learn::fit(&x, &y, Task::Regression, &spec, &mut |_, _| {}).unwrap();
    (model, x)
}

/// Packages [`regressor`] in `dir` (an MLflow model folder with a 3-row input example).
pub fn write_package(dir: &Path) {
    let (model, x) = regressor();
    let provenance = package::Provenance {
        run_id: Some("run-1".into()),
        model_id: Some("m-1".into()),
        created_utc: "2025-01-01 00:00:00.000000".into(),
        profile: Some(package::profile_of(&x)),
    };
    package::save(dir, &model, &x.select_rows(&[0, 1, 2]), &provenance).unwrap();
}

/// A packaged [`regressor`] shared by the tests of one process.
pub fn model_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        write_package(&t.path().join("model"));
        t
    })
    .path()
    .join("model")
}

/// [`rows`]`(n)` as an MLflow `dataframe_split` scoring payload.
pub fn invocation(n: usize) -> serde_json::Value {
    serde_json::json!({ "dataframe_split": package::input::to_dataframe_split(&rows(n)) })
}
