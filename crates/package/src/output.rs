//! Predictions in MLflow's scoring form (`{"predictions": ...}` from `/invocations`), shaped
//! as `mlflow models serve` shapes each flavor's answer:
//!
//! - factory, `lightgbm`, `xgboost` (a numpy array): the one output as a list, nested by its
//!   shape (`[N]` → `[v, ...]`, `[N, k]` → `[[...], ...]`);
//! - `onnx` (the DataFrame `mlflow.onnx`'s pyfunc returns, written as records): one object
//!   per row with a key per output; an unwrapped `ZipMap` output is an object from class
//!   label to probability, as pandas writes the maps. Where a multi-column output would
//!   make MLflow's own DataFrame fail (a probability matrix without `ZipMap`), the row's
//!   values are a list instead.
//!
//! Non-finite numbers are `null` (JSON has no NaN).

use crate::model::{Layout, Predictions};
use formats::Values;
use serde_json::{Map, Value};

fn element(v: &Values, i: usize) -> Value {
    let num = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
    match v {
        Values::F32(x) => num(f64::from(x[i])),
        Values::F64(x) => num(x[i]),
        Values::I64(x) => Value::from(x[i]),
        Values::Bool(x) => Value::Bool(x[i]),
        Values::Str(x) => Value::String(x[i].clone()),
    }
}

/// A CSV cell: the shortest text that reads back to the same number (empty for NaN),
/// text with quotes when it needs them.
pub fn text(v: &Values, i: usize) -> String {
    match v {
        Values::F32(x) if x[i].is_nan() => String::new(),
        Values::F64(x) if x[i].is_nan() => String::new(),
        Values::F32(x) => x[i].to_string(),
        Values::F64(x) => x[i].to_string(),
        Values::I64(x) => x[i].to_string(),
        Values::Bool(x) => x[i].to_string(),
        Values::Str(x) if x[i].contains([',', '"', '\n', '\r']) => format!("\"{}\"", x[i].replace('"', "\"\"")),
        Values::Str(x) => x[i].clone(),
    }
}

/// The class label of probability column `j`, as text.
pub fn label(labels: &Values, j: usize) -> String {
    match labels {
        Values::Str(s) => s[j].clone(),
        other => match element(other, j) {
            Value::String(s) => s,
            v => v.to_string(),
        },
    }
}

/// The value of `predictions` in the `/invocations` answer.
pub fn to_mlflow_json(p: &Predictions) -> Value {
    let rows = p.rows;
    let width = |t: &formats::Tensor| p.width(t);
    match p.layout {
        Layout::Array => {
            let t = &p.outputs[0];
            let w = width(t);
            if t.shape.len() <= 1 {
                Value::Array((0..t.values.len()).map(|i| element(&t.values, i)).collect())
            } else {
                Value::Array(
                    (0..rows).map(|r| Value::Array((0..w).map(|j| element(&t.values, r * w + j)).collect())).collect(),
                )
            }
        }
        Layout::Records => Value::Array(
            (0..rows)
                .map(|r| {
                    let mut rec = Map::new();
                    for (t, labels) in p.outputs.iter().zip(&p.class_labels) {
                        let w = width(t);
                        let v = match labels {
                            Some(l) => {
                                Value::Object((0..w).map(|j| (label(l, j), element(&t.values, r * w + j))).collect())
                            }
                            None if w == 1 => element(&t.values, r),
                            None => Value::Array((0..w).map(|j| element(&t.values, r * w + j)).collect()),
                        };
                        rec.insert(t.name.clone(), v);
                    }
                    Value::Object(rec)
                })
                .collect(),
        ),
    }
}
