//! Export → ONNX Runtime → the same predictions as `learn`.

use formats::onnx::OnnxModel;
use formats::{Feed, Values};
use learn::{Column, ColumnData, Frame, GbmParams, LinearParams, Model, ModelSpec, Task};

/// Rows with a numeric, a categorical column and missing values in both.
fn data(n: usize) -> (Frame, Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n).map(|i| if i % 17 == 3 { f64::NAN } else { (i as f64 * 0.37).sin() * 10.0 }).collect();
    let z: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let levels = ["red", "green", "blue", "teal"];
    let c: Vec<Option<String>> =
        (0..n).map(|i| if i % 13 == 5 { None } else { Some(levels[(i * 7 / 3) % 4].to_string()) }).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let base = if x[i].is_nan() { 1.0 } else { x[i] };
            base * 2.0 + z[i] + if c[i].as_deref() == Some("blue") { 5.0 } else { 0.0 }
        })
        .collect();
    let label: Vec<f64> = y.iter().map(|v| if *v > 4.0 { 1.0 } else { 0.0 }).collect();
    let frame =
        Frame::from_columns(vec![Column::numeric("x", x), Column::categorical("colour", c), Column::numeric("z", z)])
            .unwrap();
    (frame, y, label)
}

fn feeds(frame: &Frame) -> Vec<Feed> {
    frame
        .columns()
        .iter()
        .map(|c| match &c.data {
            ColumnData::Numeric(v) => Feed::Numbers(v.clone()),
            // An unknown level reads as missing, as in learn.
            ColumnData::Categorical(v) | ColumnData::Text(v) => {
                Feed::Text(v.iter().map(|s| s.clone().unwrap_or_default()).collect())
            }
        })
        .collect()
}

/// Exports `model`, runs it on `frame` and compares with `learn` (relative `tol`).
fn check(model: &Model, frame: &Frame, tol: f64) {
    super::runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, formats::export::onnx_from_learn(&model.to_bytes()).unwrap()).unwrap();
    let onnx = OnnxModel::load(&path, 1).unwrap();
    let names: Vec<&str> = onnx.inputs().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["x", "colour", "z"]);
    let out = onnx.run(feeds(frame), frame.n_rows()).unwrap();
    let expect = model.predict(frame).unwrap();
    assert_eq!(out.len(), 1);
    let want_name = if model.task() == Task::Regression { "prediction" } else { "probability" };
    assert_eq!(out[0].name, want_name);
    assert_eq!(out[0].shape, vec![frame.n_rows()]);
    let got: Vec<f64> = match &out[0].values {
        Values::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Values::F64(v) => v.clone(),
        other => panic!("unexpected output {other:?}"),
    };
    for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
        let rel = (g - e).abs() / e.abs().max(1e-3);
        assert!(rel <= tol, "row {i}: onnx {g}, learn {e} (relative {rel:e})");
    }
}

#[test]
fn gbm_regression_with_categorical_splits_and_missing_values() {
    let (f, y, _) = data(600);
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 40, min_samples_leaf: 5, ..GbmParams::default() });
    let (m, _) = learn::fit(&f, &y, Task::Regression, &spec, &mut |_, _| {}).unwrap();
    check(&m, &f, 1e-5);
}

#[test]
fn gbm_classification() {
    let (f, _, label) = data(600);
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 30, min_samples_leaf: 5, ..GbmParams::default() });
    let (m, _) = learn::fit(&f, &label, Task::BinaryClassification, &spec, &mut |_, _| {}).unwrap();
    // ONNX Runtime sums the trees in f32: about 1e-6 relative here.
    check(&m, &f, 1e-5);
}

#[test]
fn linear_models_agree_exactly() {
    let (f, y, label) = data(300);
    let spec = ModelSpec::Linear(LinearParams::default());
    let (m, _) = learn::fit(&f, &y, Task::Regression, &spec, &mut |_, _| {}).unwrap();
    check(&m, &f, 1e-12);
    let (m, _) = learn::fit(&f, &label, Task::BinaryClassification, &spec, &mut |_, _| {}).unwrap();
    check(&m, &f, 1e-12);
}

#[test]
fn unknown_operators_are_refused_at_load_by_name() {
    super::runtime();
    let (f, y, _) = data(100);
    let spec = ModelSpec::Linear(LinearParams::default());
    let (m, _) = learn::fit(&f, &y, Task::Regression, &spec, &mut |_, _| {}).unwrap();
    let bytes = formats::export::onnx_from_learn(&m.to_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The same model with one operator renamed, in a domain the runtime has and in one it has not.
    for (from, to, needle) in
        [(&b"IsNaN"[..], &b"IsNaX"[..], "IsNaX"), (&b"ai.onnx.ml"[..], &b"ai.onnx.zz"[..], "ai.onnx.zz")]
    {
        let mut b = bytes.clone();
        while let Some(at) = b.windows(from.len()).position(|w| w == from) {
            b[at..at + from.len()].copy_from_slice(to);
        }
        let path = dir.path().join("bad.onnx");
        std::fs::write(&path, &b).unwrap();
        let err = OnnxModel::load(&path, 1).unwrap_err().to_string();
        assert!(err.contains(needle), "{err} should name {needle}");
    }
    std::fs::write(dir.path().join("junk.onnx"), b"not a model at all").unwrap();
    let err = OnnxModel::load(&dir.path().join("junk.onnx"), 1).unwrap_err().to_string();
    assert!(err.contains("not an ONNX model"), "{err}");
}
