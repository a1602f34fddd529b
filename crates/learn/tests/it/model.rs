//! The model as a whole: target checks, predict-time schema checks, bytes round trip.

use learn::{fit, read_csv, read_csv_with_schema, Column, GbmParams, LinearParams, Model, ModelSpec, Task};

use crate::{cats, frame};

fn small() -> learn::Frame {
    frame(vec![
        Column::numeric("x", (0..60).map(f64::from).collect()),
        Column::categorical("c", cats(&(0..60).map(|i| ["a", "b", "c"][i % 3]).collect::<Vec<_>>())),
    ])
}

fn check_fit_error(y: &[f64], task: Task, expect: &str) {
    let err = fit(&small(), y, task, &ModelSpec::Gbm(GbmParams::default()), &mut |_, _| {}).unwrap_err();
    assert_eq!(err.to_string(), expect);
}

#[test]
fn target_problems_are_named() {
    let mut y: Vec<f64> = (0..60).map(|i| f64::from(i % 2)).collect();
    check_fit_error(
        &y[..10],
        Task::Regression,
        "target (one value per row of the features): expected length 60, found 10",
    );
    y[2] = f64::NAN;
    check_fit_error(&y, Task::Regression, "target row 3: NaN is invalid (not a finite number)");
    y[2] = 2.0;
    check_fit_error(&y, Task::BinaryClassification, "target row 3: 2 is invalid (binary classification needs 0 or 1)");
    check_fit_error(&[1.0; 60], Task::BinaryClassification, "cannot train: the target has only one class");
}

fn trained(spec: ModelSpec) -> Model {
    let y: Vec<f64> = (0..60).map(|i| f64::from(i) * 2.0 + (i % 3) as f64).collect();
    fit(&small(), &y, Task::Regression, &spec, &mut |_, _| {}).unwrap().0
}

#[test]
fn predict_checks_the_schema() {
    let m = trained(ModelSpec::Gbm(GbmParams::default()));
    let err = |f: learn::Frame| m.predict(&f).unwrap_err().to_string();
    assert_eq!(err(frame(vec![Column::numeric("x", vec![1.0])])), "missing column(s): c");
    assert_eq!(
        err(frame(vec![Column::numeric("x", vec![1.0]), Column::numeric("c", vec![1.0]),])),
        "column 'c' is numeric but categorical was expected"
    );
    // Extra columns (the target, say) and another column order are fine.
    let ok = frame(vec![
        Column::numeric("target", vec![0.0]),
        Column::categorical("c", cats(&["b"])),
        Column::numeric("x", vec![3.0]),
    ]);
    assert_eq!(m.predict(&ok).unwrap().len(), 1);
}

fn check_round_trip(spec: ModelSpec, kind: &str) {
    let m = trained(spec);
    assert_eq!(m.kind(), kind);
    let bytes = m.to_bytes();
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.schema(), m.schema());
    assert_eq!(back.task(), Task::Regression);
    // Predict from CSV text read against the model's own schema.
    let csv = "c,x\na,1.5\nzz,\n,100\n";
    let f = read_csv_with_schema(csv.as_bytes(), m.schema()).unwrap();
    let p = m.predict(&f).unwrap();
    assert_eq!(back.predict(&f).unwrap(), p);
    assert!(p.iter().all(|v| v.is_finite()));
}

#[test]
fn bytes_round_trip_keeps_predictions() {
    check_round_trip(ModelSpec::Gbm(GbmParams::default()), "gbm");
    check_round_trip(ModelSpec::Linear(LinearParams::default()), "linear");
}

#[test]
fn unreadable_bytes_are_rejected() {
    let err = |b: &[u8]| Model::from_bytes(b).unwrap_err().to_string();
    assert!(err(b"not json").starts_with("not a readable model: "));
    let m = trained(ModelSpec::Linear(LinearParams::default()));
    let text = String::from_utf8(m.to_bytes()).unwrap();
    let other = text.replacen("learn-model/1", "learn-model/99", 1);
    assert_eq!(
        err(other.as_bytes()),
        "not a readable model: format 'learn-model/99' (this version reads 'learn-model/1')"
    );
}

#[test]
fn malformed_trees_are_refused_when_read() {
    // Serde accepts any node numbers; a walk needs children after their parent and inside the
    // tree (no cycles, no jumps into another tree), and splits on columns of their kind.
    let m = trained(ModelSpec::Gbm(GbmParams::default()));
    let good: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
    let root = |v: &serde_json::Value| -> (String, serde_json::Value) {
        let node = v["body"]["gbm"]["trees"][0]["nodes"][0].as_object().unwrap().clone();
        let (kind, fields) = node.into_iter().next().unwrap();
        (kind, fields)
    };
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = good.clone();
        let (kind, mut fields) = root(&v);
        edit(fields.as_object_mut().unwrap());
        v["body"]["gbm"]["trees"][0]["nodes"][0] = serde_json::json!({ kind: fields });
        Model::from_bytes(&serde_json::to_vec(&v).unwrap()).map(|_| ()).unwrap_err().to_string()
    };
    let cycle = with(&|f| {
        f.insert("left".into(), 0.into());
    });
    assert!(cycle.contains("tree 0, node 0: child 0 is not a later node of the tree"), "{cycle}");
    let beyond = with(&|f| {
        f.insert("right".into(), 100_000.into());
    });
    assert!(beyond.contains("tree 0, node 0: child 100000 is not a later node"), "{beyond}");
    let feature = with(&|f| {
        f.insert("feature".into(), 7.into());
    });
    assert!(feature.contains("tree 0, node 0: feature 7 is not one of the 2 columns"), "{feature}");
    let mut empty = good.clone();
    empty["body"]["gbm"]["trees"][1]["nodes"] = serde_json::json!([]);
    let err = Model::from_bytes(&serde_json::to_vec(&empty).unwrap()).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("tree 1 has no nodes"), "{err}");
    assert!(Model::from_bytes(&serde_json::to_vec(&good).unwrap()).is_ok());
}

#[test]
fn inferred_kinds_may_need_the_schema_reader() {
    // A categorical column whose predict-time values all look numeric: inference reads it as
    // numeric, which the model rejects by name; the schema reader gets it right.
    let m = trained(ModelSpec::Gbm(GbmParams::default()));
    let csv = "x,c\n1,7\n";
    let inferred = read_csv(csv.as_bytes()).unwrap();
    assert_eq!(m.predict(&inferred).unwrap_err().to_string(), "column 'c' is numeric but categorical was expected");
    let f = read_csv_with_schema(csv.as_bytes(), m.schema()).unwrap();
    assert!(m.predict(&f).is_ok());
}
