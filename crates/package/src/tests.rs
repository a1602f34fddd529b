//! Package round trips and input validation, on a small model trained here.

use super::*;
use learn::{Column, ColumnData, GbmParams, ModelSpec, Task};
use serde_json::json;

fn frame() -> (Frame, Vec<f64>) {
    let n = 200;
    let x: Vec<f64> = (0..n).map(|i| i as f64 / 10.0).collect();
    let c: Vec<Option<String>> = (0..n).map(|i| Some(if i % 2 == 0 { "a" } else { "b" }.to_string())).collect();
    let y: Vec<f64> = (0..n).map(|i| x[i] * 2.0 + if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let f = Frame::from_columns(vec![
        Column { name: "x".into(), data: ColumnData::Numeric(x) },
        Column { name: "c".into(), data: ColumnData::Categorical(c) },
    ])
    .unwrap();
    (f, y)
}

fn model() -> (learn::Model, Frame) {
    let (f, y) = frame();
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 20, min_samples_leaf: 5, ..GbmParams::default() });
    let (m, _) = learn::fit(&f, &y, Task::Regression, &spec, &mut |_, _| {}).unwrap();
    (m, f)
}

#[test]
fn save_load_round_trip_predicts_the_same() {
    let (m, f) = model();
    let dir = tempfile::tempdir().unwrap();
    let example = f.select_rows(&[0, 1]);
    save(dir.path(), &m, &example, &Provenance { run_id: Some("r1".into()), ..Default::default() }).unwrap();
    let p = load(dir.path()).unwrap();
    assert_eq!(p.model.flavor(), Flavor::Factory);
    let predictions = p.model.predict(&f).unwrap();
    assert_eq!(predictions.scores(), m.predict(&f).unwrap());
    assert_eq!(serde_json::to_value(output::Mlflow(&predictions)).unwrap(), json!(m.predict(&f).unwrap()));
    assert_eq!(p.mlmodel["flavors"][FLAVOR]["model_kind"], m.kind());
    // The ONNX copy and the flavors the stock mlflow.pyfunc loads it through.
    assert_eq!(p.mlmodel["flavors"]["python_function"]["loader_module"], "mlflow.onnx");
    assert_eq!(p.mlmodel["flavors"]["onnx"]["data"], ONNX_FILE);
    assert!(dir.path().join(ONNX_FILE).is_file());
    assert_eq!(p.example_frame().unwrap().n_rows(), 2);
    assert_eq!(p.mlmodel["run_id"], "r1");
    let inputs: Value = serde_json::from_str(p.mlmodel["signature"]["inputs"].as_str().unwrap()).unwrap();
    assert_eq!(
        inputs,
        json!([{"type": "double", "name": "x", "required": true}, {"type": "string", "name": "c", "required": true}])
    );
    let ex: Value = serde_json::from_slice(&std::fs::read(dir.path().join(EXAMPLE_FILE)).unwrap()).unwrap();
    assert_eq!(ex["columns"], json!(["x", "c"]));
}

#[test]
fn tampering_is_detected() {
    let (m, f) = model();
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), &m, &f.select_rows(&[0]), &Provenance::default()).unwrap();
    let path = dir.path().join(MODEL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(load(dir.path()), Err(PackageError::Checksum { .. })));
    assert!(matches!(load(&dir.path().join("nope")), Err(PackageError::Invalid { .. })));
}

#[test]
fn stock_mlflow_folders_without_a_served_flavor_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mlmodel = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    pickled_model: model.pkl\n";
    std::fs::write(dir.path().join(MLMODEL_FILE), mlmodel).unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("python_function, sklearn") && err.contains("skl2onnx"), "{err}");
    std::fs::write(
        dir.path().join(MLMODEL_FILE),
        "flavors:\n  lightgbm:\n    data: model.pkl\n    model_class: lightgbm.sklearn.LGBMRegressor\n",
    )
    .unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("pickle") && err.contains("booster_"), "{err}");
    std::fs::write(dir.path().join(MLMODEL_FILE), "flavors:\n  xgboost:\n    data: ../../etc/passwd\n").unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("unsafe data path"), "{err}");
    std::fs::write(dir.path().join(MLMODEL_FILE), "flavors:\n  lightgbm:\n    data: model.lgb\n").unwrap();
    std::fs::write(
        dir.path().join("model.lgb"),
        "tree\nversion=v4\nmax_feature_idx=0\nobjective=lambdaloss\nfeature_names=a\n",
    )
    .unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("objective 'lambdaloss'"), "{err}");
}

fn check(payload: Value, expect: Result<usize, &str>) {
    let (m, _) = model();
    match (from_payload(&payload, m.schema()), expect) {
        (Ok(f), Ok(rows)) => assert_eq!(f.n_rows(), rows, "{payload}"),
        (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{payload}: {e} should mention {needle}"),
        (got, want) => panic!("{payload}: got {:?}, want {want:?}", got.map(|f| f.n_rows()).map_err(|e| e.to_string())),
    }
}

fn from_payload(v: &Value, s: &Schema) -> Result<Frame> {
    input::from_json(v.clone(), s)
}

#[test]
fn payload_formats_and_errors() {
    check(json!({"dataframe_split": {"columns": ["x", "c"], "data": [[1.0, "a"], [2.0, null]]}}), Ok(2));
    check(json!({"dataframe_split": {"columns": ["c", "x"], "data": [["a", 1.0]]}}), Ok(1));
    check(json!({"dataframe_records": [{"x": 1.0, "c": "a"}, {"x": null, "c": "b"}]}), Ok(2));
    check(json!({"instances": [{"x": 1.0, "c": "a"}]}), Ok(1));
    check(json!({"instances": [[1.0, "a"], [3, "b"]]}), Ok(2));
    check(json!({"inputs": {"x": [1.0, 2.0], "c": ["a", "zzz-unseen"]}}), Ok(2));
    check(json!({"inputs": [[1.0, "a"]]}), Ok(1));
    check(json!({"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}), Err("missing column(s): c"));
    check(json!({"dataframe_records": [{"x": 1.0, "c": "a", "y": 2}]}), Err("unexpected column(s): y"));
    check(json!({"dataframe_records": [{"x": "high", "c": "a"}]}), Err("row 1, column 'x': expected a number"));
    check(
        json!({"dataframe_records": [{"x": 1, "c": "a"}, {"x": 1, "c": 5}]}),
        Err("row 2, column 'c': expected a string"),
    );
    check(json!({"dataframe_records": []}), Err("no rows"));
    check(json!({"instances": [[1.0]]}), Err("row 1: 1 values"));
    check(json!({"data": []}), Err("one of the keys"));
    check(json!({"inputs": [], "instances": []}), Err("several input keys"));
    check(json!([1, 2]), Err("JSON object"));
    check(json!({"dataframe_split": {"columns": ["x", "c"], "data": [[1.0]]}}), Err("row 1: 1 values for 2 columns"));
}
