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
use serde::ser::{Serialize, SerializeMap, Serializer};

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
        // A number or a bool as JSON writes it (a non-finite number as `null`).
        other => serde_json::to_string(&Element(other, j)).unwrap_or_default(),
    }
}

/// The value of `predictions` in the `/invocations` answer, written straight to a serializer
/// (`serde_json::to_value` gives it as a `Value`).
pub struct Mlflow<'a>(pub &'a Predictions);

/// Element `i` of `v`: numbers as `f64` (non-finite ones serialize as `null` in JSON).
struct Element<'a>(&'a Values, usize);

impl Serialize for Element<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Element(v, i) = *self;
        match v {
            Values::F32(x) => s.serialize_f64(f64::from(x[i])),
            Values::F64(x) => s.serialize_f64(x[i]),
            Values::I64(x) => s.serialize_i64(x[i]),
            Values::Bool(x) => s.serialize_bool(x[i]),
            Values::Str(x) => s.serialize_str(&x[i]),
        }
    }
}

/// Elements `at..at + len` of `v`, as a list.
struct Run<'a>(&'a Values, usize, usize);

impl Serialize for Run<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Run(v, at, len) = *self;
        s.collect_seq((at..at + len).map(|i| Element(v, i)))
    }
}

/// Row `r` of output `t` as one record's value: an object from class label to value, the
/// one value, or a list.
struct Cell<'a> {
    p: &'a Predictions,
    t: usize,
    r: usize,
    /// The labels of output `t`'s columns in key order, with their column.
    labels: Option<&'a [(String, usize)]>,
}

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.p.outputs[self.t];
        let w = self.p.width(t);
        let at = self.r * w;
        match self.labels {
            Some(labels) => s.collect_map(labels.iter().map(|(l, j)| (l, Element(&t.values, at + j)))),
            None if w == 1 => Element(&t.values, self.r).serialize(s),
            None => Run(&t.values, at, w).serialize(s),
        }
    }
}

/// `keys` in the order a JSON object's keys are written (sorted; of equal keys the last one,
/// as an object that is built key by key keeps).
fn key_order<K: Ord>(keys: impl Iterator<Item = K>) -> Vec<(K, usize)> {
    let mut keys: Vec<(K, usize)> = keys.enumerate().map(|(i, k)| (k, i)).collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    keys.dedup_by(|later, kept| later.0 == kept.0);
    keys
}

impl Serialize for Mlflow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        match p.layout {
            Layout::Array => {
                let t = &p.outputs[0];
                if t.shape.len() <= 1 {
                    Run(&t.values, 0, t.values.len()).serialize(s)
                } else {
                    let w = p.width(t);
                    s.collect_seq((0..p.rows).map(|r| Run(&t.values, r * w, w)))
                }
            }
            Layout::Records => {
                // An output without an entry in `class_labels` is left out, as it always was.
                let names = key_order(p.outputs.iter().zip(&p.class_labels).map(|(t, _)| t.name.as_str()));
                let labels: Vec<Option<Vec<(String, usize)>>> = p
                    .outputs
                    .iter()
                    .zip(&p.class_labels)
                    .map(|(t, l)| l.as_ref().map(|l| key_order((0..p.width(t)).map(|j| label(l, j)))))
                    .collect();
                s.collect_seq((0..p.rows).map(|r| Record { p, r, names: &names, labels: &labels }))
            }
        }
    }
}

/// Row `r` as one record: a key per output.
struct Record<'a> {
    p: &'a Predictions,
    r: usize,
    names: &'a [(&'a str, usize)],
    labels: &'a [Option<Vec<(String, usize)>>],
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.names.len()))?;
        for &(name, t) in self.names {
            map.serialize_entry(name, &Cell { p: self.p, t, r: self.r, labels: self.labels[t].as_deref() })?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::Tensor;
    use serde_json::{json, Value};

    fn tensor(name: &str, shape: Vec<usize>, values: Values) -> Tensor {
        Tensor { name: name.into(), shape, values }
    }

    /// The answer as text and as a `Value` (which `serde_json` writes the same way).
    fn written(p: &Predictions) -> Value {
        let text = serde_json::to_string(&Mlflow(p)).unwrap();
        let value = serde_json::to_value(Mlflow(p)).unwrap();
        assert_eq!(text, value.to_string());
        value
    }

    #[test]
    fn arrays_nest_by_shape_and_write_nan_as_null() {
        let one = Predictions {
            rows: 3,
            outputs: vec![tensor("y", vec![3], Values::F32(vec![0.1, f32::NAN, -2.5]))],
            class_labels: vec![None],
            layout: Layout::Array,
        };
        // f32 widened to f64, as the answer always was.
        assert_eq!(written(&one), json!([f64::from(0.1f32), null, -2.5]));
        let wide = Predictions {
            rows: 2,
            outputs: vec![tensor("p", vec![2, 2], Values::F64(vec![0.25, 0.75, f64::INFINITY, 1.0]))],
            class_labels: vec![None],
            layout: Layout::Array,
        };
        assert_eq!(written(&wide), json!([[0.25, 0.75], [null, 1.0]]));
        let empty = Predictions { rows: 0, outputs: vec![tensor("y", vec![0], Values::F64(vec![]))], ..one };
        assert_eq!(written(&empty), json!([]));
    }

    #[test]
    fn records_key_outputs_and_labels_as_objects_do() {
        let p = Predictions {
            rows: 2,
            outputs: vec![
                tensor("output_probability", vec![2, 3], Values::F32(vec![0.5, 0.25, 0.25, 0.0, 1.0, 0.0])),
                tensor("output_label", vec![2], Values::I64(vec![10, 2])),
                tensor("scores", vec![2, 2], Values::F64(vec![1.0, 2.0, 3.0, 4.0])),
                tensor("flag", vec![2, 1], Values::Bool(vec![true, false])),
                tensor("name", vec![2], Values::Str(vec!["a,b".into(), "c".into()])),
            ],
            // Labels out of key order, one repeated (the later column's value is kept).
            class_labels: vec![Some(Values::I64(vec![2, 10, 2])), None, None, None, None],
            layout: Layout::Records,
        };
        assert_eq!(
            written(&p),
            json!([
                {"flag": true, "name": "a,b", "output_label": 10, "output_probability": {"10": 0.25, "2": 0.25},
                 "scores": [1.0, 2.0]},
                {"flag": false, "name": "c", "output_label": 2, "output_probability": {"10": 1.0, "2": 0.0},
                 "scores": [3.0, 4.0]},
            ])
        );
        // Labels as text: strings as they are, numbers and bools as JSON writes them.
        assert_eq!(label(&Values::I64(vec![2, 10]), 1), "10");
        assert_eq!(label(&Values::F32(vec![1.5, f32::NAN]), 0), "1.5");
        assert_eq!(label(&Values::F32(vec![1.5, f32::NAN]), 1), "null");
        assert_eq!(label(&Values::Bool(vec![true]), 0), "true");
        assert_eq!(label(&Values::Str(vec!["a,b".into()]), 0), "a,b");
        // Keys come out sorted in the text too.
        let text = serde_json::to_string(&Mlflow(&p)).unwrap();
        assert!(
            text.starts_with(
                r#"[{"flag":true,"name":"a,b","output_label":10,"output_probability":{"10":0.25,"2":0.25},"#
            ),
            "{text}"
        );
    }
}
