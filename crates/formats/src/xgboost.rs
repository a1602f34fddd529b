//! XGBoost's JSON and UBJSON model formats (`Booster.save_model("model.json" | "model.ubj")`;
//! `mlflow.xgboost.log_model` writes `model.ubj` by default), evaluated as XGBoost's CPU
//! predictor does: features as `f32`, `x < split_condition` goes left, missing values take
//! the node's default direction, leaf values added in tree order to the base margin in
//! `f32`, then the objective's transform (sigmoid, softmax, exp) in `f32`.
//!
//! Refused when loaded, by name: `gblinear` and `dart` boosters, categorical splits,
//! multi-target trees, objectives whose transform is not listed here.

use crate::{ubjson, FormatError, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
struct Tree {
    left: Vec<i32>,
    right: Vec<i32>,
    feature: Vec<usize>,
    /// Split threshold of an internal node; the leaf value of a leaf.
    condition: Vec<f32>,
    default_left: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transform {
    Identity,
    Sigmoid,
    Softmax,
    /// `multi:softmax`: the index of the largest margin.
    ArgMax,
    Hinge,
    Exp,
}

/// An XGBoost tree booster.
#[derive(Debug, Clone, PartialEq)]
pub struct Booster {
    /// Feature names saved with the model (empty when it was trained on arrays).
    pub feature_names: Vec<String>,
    pub num_feature: usize,
    pub objective: String,
    /// Margins per row: 1, or the number of classes.
    pub num_groups: usize,
    base_margin: Vec<f32>,
    transform: Transform,
    trees: Vec<Tree>,
    tree_group: Vec<usize>,
}

fn bad(msg: impl std::fmt::Display) -> FormatError {
    FormatError::Invalid(format!("XGBoost model: {msg}"))
}

fn unsupported(msg: impl std::fmt::Display) -> FormatError {
    FormatError::Unsupported(format!("XGBoost model: {msg}"))
}

/// A number written as a JSON number or (XGBoost's parameters) a string.
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn array<'a>(tree: &'a Value, key: &str, index: usize) -> Result<&'a Vec<Value>> {
    tree.get(key).and_then(Value::as_array).ok_or_else(|| bad(format!("tree {index} has no '{key}' array")))
}

fn numbers<T>(tree: &Value, key: &str, index: usize, conv: impl Fn(f64) -> Option<T>) -> Result<Vec<T>> {
    array(tree, key, index)?
        .iter()
        .map(|v| num(v).and_then(&conv).ok_or_else(|| bad(format!("tree {index}: '{key}' has {v}"))))
        .collect()
}

impl Booster {
    /// Reads a model saved as JSON (starts with `{`) or UBJSON.
    pub fn parse(bytes: &[u8]) -> Result<Booster> {
        // Both start with `{`; a UBJSON file is never valid JSON text.
        let doc: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(_) => ubjson::parse(bytes)?,
        };
        Booster::from_value(&doc)
    }

    fn from_value(doc: &Value) -> Result<Booster> {
        let learner = doc.get("learner").ok_or_else(|| bad("no 'learner' (not an XGBoost JSON/UBJSON model)"))?;
        let params = &learner["learner_model_param"];
        let num_feature = num(&params["num_feature"]).ok_or_else(|| bad("no num_feature"))? as usize;
        let num_class = num(&params["num_class"]).unwrap_or(0.0) as usize;
        let num_target = num(&params["num_target"]).unwrap_or(1.0) as usize;
        if num_target > 1 {
            return Err(unsupported(format!("{num_target} targets (multi-output regression)")));
        }
        let objective = learner["objective"]["name"].as_str().unwrap_or("reg:squarederror").to_string();
        let (transform, margin) = objective_transform(&objective)?;
        let booster = &learner["gradient_booster"];
        match booster["name"].as_str() {
            Some("gbtree") => {}
            Some(other) => return Err(unsupported(format!("booster '{other}' (only gbtree is evaluated)"))),
            None => return Err(bad("no gradient_booster.name")),
        }
        let model = &booster["model"];
        let trees_json = model["trees"].as_array().ok_or_else(|| bad("no gradient_booster.model.trees"))?;
        let tree_group: Vec<usize> = match model.get("tree_info").and_then(Value::as_array) {
            Some(info) => info
                .iter()
                .map(|v| num(v).map(|g| g as usize).ok_or_else(|| bad("tree_info")))
                .collect::<Result<_>>()?,
            None => vec![0; trees_json.len()],
        };
        let num_groups = num_class.max(1);
        if tree_group.len() != trees_json.len() || tree_group.iter().any(|&g| g >= num_groups) {
            return Err(bad(format!("tree_info does not fit {} trees of {num_groups} groups", trees_json.len())));
        }
        let trees = trees_json.iter().enumerate().map(|(i, t)| tree(t, i, num_feature)).collect::<Result<Vec<_>>>()?;
        let base_score: Vec<f64> = match &params["base_score"] {
            Value::String(s) => s
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|x| x.trim().parse::<f64>().map_err(|_| bad(format!("base_score '{s}'"))))
                .collect::<Result<_>>()?,
            v => vec![num(v).unwrap_or(0.5)],
        };
        let base_margin: Vec<f32> =
            (0..num_groups).map(|g| margin(*base_score.get(g).or(base_score.first()).unwrap_or(&0.5)) as f32).collect();
        let feature_names = learner
            .get("feature_names")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Booster { feature_names, num_feature, objective, num_groups, base_margin, transform, trees, tree_group })
    }

    /// Values per row of [`Booster::predict`]: the number of classes for `multi:softprob`,
    /// else 1.
    pub fn outputs_per_row(&self) -> usize {
        if self.transform == Transform::Softmax {
            self.num_groups
        } else {
            1
        }
    }

    /// Predictions as `Booster.predict(DMatrix(x))` returns them, for `rows` rows of `x`
    /// (row-major, `num_feature` values each, NaN = missing): `rows × outputs_per_row()`.
    pub fn predict(&self, x: &[f64], rows: usize) -> Result<Vec<f32>> {
        let nf = self.num_feature;
        if x.len() != rows * nf {
            return Err(FormatError::Input(format!("{} values for {rows} rows of {nf} features", x.len())));
        }
        let k = self.num_groups;
        let mut out = Vec::with_capacity(rows * self.outputs_per_row());
        let mut margin = vec![0f32; k];
        let mut row32 = vec![0f32; nf];
        for row in x.chunks_exact(nf.max(1)).take(rows) {
            for (d, &s) in row32.iter_mut().zip(row) {
                *d = s as f32;
            }
            margin.copy_from_slice(&self.base_margin);
            for (t, &g) in self.trees.iter().zip(&self.tree_group) {
                margin[g] += t.predict(&row32);
            }
            match self.transform {
                Transform::Identity => out.extend_from_slice(&margin[..1]),
                Transform::Sigmoid => out.push(1.0 / (1.0 + (-margin[0]).exp())),
                Transform::Hinge => out.push(if margin[0] > 0.0 { 1.0 } else { 0.0 }),
                Transform::Exp => out.push(margin[0].exp()),
                Transform::Softmax => {
                    let max = margin.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = margin.iter().map(|m| (m - max).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    out.extend(e.iter().map(|v| v / sum));
                }
                Transform::ArgMax => {
                    let best = (0..k).fold(0, |b, i| if margin[i] > margin[b] { i } else { b });
                    out.push(best as f32);
                }
            }
        }
        Ok(out)
    }
}

/// XGBoost's `ProbToMargin`: `base_score` (in output space) as a margin.
type ProbToMargin = fn(f64) -> f64;

/// The objective's output transform and its `ProbToMargin` for `base_score`.
fn objective_transform(objective: &str) -> Result<(Transform, ProbToMargin)> {
    fn same(p: f64) -> f64 {
        p
    }
    fn logit(p: f64) -> f64 {
        -(1.0 / p - 1.0).ln()
    }
    fn ln(p: f64) -> f64 {
        p.ln()
    }
    Ok(match objective {
        "reg:squarederror"
        | "reg:squaredlogerror"
        | "reg:pseudohubererror"
        | "reg:absoluteerror"
        | "reg:quantileerror"
        | "rank:pairwise"
        | "rank:ndcg"
        | "rank:map" => (Transform::Identity, same),
        "binary:logitraw" => (Transform::Identity, logit),
        "reg:logistic" | "binary:logistic" => (Transform::Sigmoid, logit),
        "binary:hinge" => (Transform::Hinge, same),
        "multi:softprob" => (Transform::Softmax, same),
        "multi:softmax" => (Transform::ArgMax, same),
        "count:poisson" | "reg:gamma" | "reg:tweedie" => (Transform::Exp, ln),
        other => return Err(unsupported(format!("objective '{other}'"))),
    })
}

fn tree(t: &Value, index: usize, num_feature: usize) -> Result<Tree> {
    if num(&t["tree_param"]["size_leaf_vector"]).unwrap_or(1.0) > 1.0 {
        return Err(unsupported(format!("tree {index} has vector leaves (multi_strategy='multi_output_tree')")));
    }
    if let Some(types) = t.get("split_type").and_then(Value::as_array) {
        if types.iter().any(|v| num(v).unwrap_or(0.0) != 0.0) {
            return Err(unsupported(format!(
                "tree {index} has categorical splits (enable_categorical=True); train on numeric codes"
            )));
        }
    }
    let as_i32 =
        |x: f64| (x.fract() == 0.0 && x >= f64::from(i32::MIN) && x <= f64::from(i32::MAX)).then_some(x as i32);
    let tree = Tree {
        left: numbers(t, "left_children", index, as_i32)?,
        right: numbers(t, "right_children", index, as_i32)?,
        feature: numbers(t, "split_indices", index, |x| (x >= 0.0 && x.fract() == 0.0).then_some(x as usize))?,
        condition: numbers(t, "split_conditions", index, |x| Some(x as f32))?,
        default_left: numbers(t, "default_left", index, |x| Some(x != 0.0))?,
    };
    let n = tree.left.len();
    let lens = [tree.right.len(), tree.feature.len(), tree.condition.len(), tree.default_left.len()];
    if n == 0 || lens.iter().any(|&l| l != n) {
        return Err(bad(format!("tree {index}: node arrays of lengths {n} and {lens:?}")));
    }
    for i in 0..n {
        let (l, r) = (tree.left[i], tree.right[i]);
        let leaf = l == -1;
        // Children come after their parent (so every walk ends) and split on known features.
        let ok = if leaf {
            r == -1
        } else {
            l as usize > i && (l as usize) < n && r as usize > i && (r as usize) < n && tree.feature[i] < num_feature
        };
        if !ok {
            return Err(bad(format!("tree {index}: node {i} has children {l}, {r} (of {n} nodes)")));
        }
    }
    Ok(tree)
}

impl Tree {
    fn predict(&self, row: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            let l = self.left[i];
            if l == -1 {
                return self.condition[i];
            }
            let x = row[self.feature[i]];
            let go_left = if x.is_nan() { self.default_left[i] } else { x < self.condition[i] };
            i = if go_left { l as usize } else { self.right[i] as usize };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(objective: &str, base_score: &str) -> Value {
        let stump = |v: f64| {
            json!({"left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [0, 0, 0],
                   "split_conditions": [0.5, -v, v], "default_left": [1, 0, 0], "split_type": [0, 0, 0],
                   "tree_param": {"num_nodes": "3", "size_leaf_vector": "1"}})
        };
        json!({"learner": {
            "feature_names": ["a"],
            "learner_model_param": {"base_score": base_score, "num_class": "0", "num_feature": "1", "num_target": "1"},
            "objective": {"name": objective},
            "gradient_booster": {"name": "gbtree", "model": {"trees": [stump(0.25), stump(0.5)], "tree_info": [0, 0]}}
        }})
    }

    #[test]
    fn margins_transforms_and_missing_values() {
        let b = Booster::from_value(&model("reg:squarederror", "[1E0]")).unwrap();
        // 0.4 < 0.5 → left (-0.25, -0.5); NaN → default left; 0.5 is not < 0.5 → right.
        assert_eq!(b.predict(&[0.4, f64::NAN, 0.5], 3).unwrap(), vec![0.25, 0.25, 1.75]);
        let b = Booster::from_value(&model("binary:logistic", "5E-1")).unwrap();
        let p = b.predict(&[0.9], 1).unwrap()[0];
        assert_eq!(p, 1.0 / (1.0 + (-0.75f32).exp()));
    }

    #[test]
    fn json_text_and_ubjson_bytes_are_told_apart() {
        // JSON text parses as JSON; anything else as UBJSON (the real `.ubj` files are read
        // in tests/python/test_user_models.py, saved by XGBoost itself).
        let doc = model("reg:squarederror", "5E-1");
        assert_eq!(Booster::parse(doc.to_string().as_bytes()).unwrap(), Booster::from_value(&doc).unwrap());
        let e = Booster::parse(b"{U\x07learnerZ}").unwrap_err().to_string();
        assert!(e.contains("no num_feature"), "{e}");
        assert!(Booster::parse(b"{U\x07learner").is_err());
    }

    #[test]
    fn refusals_name_the_part() {
        let mut m = model("reg:squarederror", "5E-1");
        m["learner"]["gradient_booster"]["name"] = json!("gblinear");
        assert!(Booster::from_value(&m).unwrap_err().to_string().contains("booster 'gblinear'"));
        let e = Booster::from_value(&model("survival:aft", "0")).unwrap_err().to_string();
        assert!(e.contains("objective 'survival:aft'"), "{e}");
        let mut m = model("reg:squarederror", "5E-1");
        m["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"] = json!([1, 0, 0]);
        assert!(Booster::from_value(&m).unwrap_err().to_string().contains("categorical"));
        let mut m = model("reg:squarederror", "5E-1");
        m["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"] = json!([0, -1, -1]);
        assert!(Booster::from_value(&m).unwrap_err().to_string().contains("node 0 has children"));
    }
}
