//! LightGBM's text model format (`Booster.save_model`, what `mlflow.lightgbm.log_model`
//! writes as `model.lgb` for a `lightgbm.Booster`), evaluated as LightGBM's own `predict`
//! does: the same decision rule per node (missing-value types, default directions), leaf
//! values summed in tree order in `f64`, then the objective's transform (sigmoid for binary
//! and cross-entropy, softmax for multiclass, exp for count and positive objectives),
//! averaged for random forests.
//!
//! Refused when loaded, by name: linear trees, categorical splits, and objectives whose
//! transform is not listed here.

use crate::{FormatError, Result};

/// One tree: internal nodes `0..n-1`, children `< 0` are leaves `!child`.
#[derive(Debug, Clone, PartialEq)]
struct Tree {
    split_feature: Vec<usize>,
    threshold: Vec<f64>,
    decision_type: Vec<u8>,
    left: Vec<i32>,
    right: Vec<i32>,
    leaf_value: Vec<f64>,
}

/// How raw scores become predictions.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transform {
    Identity,
    Sigmoid(f64),
    Softmax,
    /// One-vs-all multiclass: a sigmoid per class.
    SigmoidPerClass(f64),
    Exp,
}

/// A LightGBM booster.
#[derive(Debug, Clone, PartialEq)]
pub struct Booster {
    pub feature_names: Vec<String>,
    /// The `objective=` line, e.g. `binary sigmoid:1`.
    pub objective: String,
    /// Outputs per row: 1, or the number of classes.
    pub num_class: usize,
    average_output: bool,
    transform: Transform,
    trees: Vec<Tree>,
}

fn bad(msg: impl std::fmt::Display) -> FormatError {
    FormatError::Invalid(format!("LightGBM model: {msg}"))
}

fn numbers<T: std::str::FromStr>(key: &str, text: &str) -> Result<Vec<T>> {
    text.split_whitespace().map(|s| s.parse::<T>().map_err(|_| bad(format!("'{key}' has '{s}'")))).collect()
}

impl Booster {
    /// Parses the text format.
    pub fn parse(text: &str) -> Result<Booster> {
        let mut lines = text.lines().map(str::trim);
        if lines.next() != Some("tree") {
            return Err(bad("not a LightGBM text model (the first line is not 'tree')"));
        }
        let mut header: Vec<(&str, &str)> = Vec::new();
        let mut trees = Vec::new();
        let mut current: Option<Vec<(&str, &str)>> = None;
        for line in lines {
            if line == "end of trees" {
                break;
            }
            if let Some(n) = line.strip_prefix("Tree=") {
                if let Some(t) = current.take() {
                    trees.push(tree(&t, trees.len())?);
                }
                n.parse::<usize>().map_err(|_| bad(format!("'{line}'")))?;
                current = Some(Vec::new());
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                if !line.is_empty() && current.is_none() {
                    header.push((line, ""));
                }
                continue;
            };
            match current.as_mut() {
                Some(t) => t.push((k, v)),
                None => header.push((k, v)),
            }
        }
        if let Some(t) = current.take() {
            trees.push(tree(&t, trees.len())?);
        }
        let get = |k: &str| header.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let num_class: usize = get("num_class").unwrap_or("1").parse().map_err(|_| bad("num_class"))?;
        let per_iteration: usize =
            get("num_tree_per_iteration").unwrap_or("1").parse().map_err(|_| bad("num_tree_per_iteration"))?;
        if per_iteration != num_class.max(1) {
            return Err(FormatError::Unsupported(format!(
                "LightGBM model: {per_iteration} trees per iteration for {num_class} classes"
            )));
        }
        let max_feature: usize = get("max_feature_idx")
            .ok_or_else(|| bad("no max_feature_idx"))?
            .parse()
            .map_err(|_| bad("max_feature_idx"))?;
        let feature_names: Vec<String> = match get("feature_names") {
            Some(names) => names.split_whitespace().map(str::to_string).collect(),
            None => (0..=max_feature).map(|i| format!("Column_{i}")).collect(),
        };
        if feature_names.len() != max_feature + 1 {
            return Err(bad(format!("{} feature names for {} features", feature_names.len(), max_feature + 1)));
        }
        if let Some(t) = trees.iter().position(|t: &Tree| t.split_feature.iter().any(|&f| f > max_feature)) {
            return Err(bad(format!("tree {t} splits on a feature past max_feature_idx={max_feature}")));
        }
        let objective = get("objective").unwrap_or("regression").to_string();
        let transform = transform(&objective)?;
        Ok(Booster {
            feature_names,
            objective,
            num_class: num_class.max(1),
            average_output: header.iter().any(|(k, _)| *k == "average_output"),
            transform,
            trees,
        })
    }

    /// Predictions for `rows` rows of `x` (row-major, one value per feature, NaN =
    /// missing): `rows × num_class` values, as `Booster.predict` returns them.
    pub fn predict(&self, x: &[f64], rows: usize) -> Result<Vec<f64>> {
        let nf = self.feature_names.len();
        if x.len() != rows * nf {
            return Err(FormatError::Input(format!("{} values for {rows} rows of {nf} features", x.len())));
        }
        let k = self.num_class;
        let iterations = (self.trees.len() / k).max(1) as f64;
        let mut out = vec![0.0; rows * k];
        for (row, o) in x.chunks_exact(nf.max(1)).zip(out.chunks_exact_mut(k)) {
            for (i, t) in self.trees.iter().enumerate() {
                o[i % k] += t.predict(row);
            }
            if self.average_output {
                o.iter_mut().for_each(|v| *v /= iterations);
            }
            match self.transform {
                Transform::Identity => {}
                Transform::Sigmoid(s) | Transform::SigmoidPerClass(s) => {
                    o.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-s * *v).exp()));
                }
                Transform::Exp => o.iter_mut().for_each(|v| *v = v.exp()),
                Transform::Softmax => {
                    let max = o.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let mut sum = 0.0;
                    for v in o.iter_mut() {
                        *v = (*v - max).exp();
                        sum += *v;
                    }
                    o.iter_mut().for_each(|v| *v /= sum);
                }
            }
        }
        Ok(out)
    }
}

fn transform(objective: &str) -> Result<Transform> {
    let mut words = objective.split_whitespace();
    let name = words.next().unwrap_or("regression");
    let param = |key: &str, default: f64| {
        objective
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(default)
    };
    if objective.split_whitespace().any(|w| w == "sqrt") {
        return Err(FormatError::Unsupported(format!("LightGBM objective '{objective}' (sqrt-transformed labels)")));
    }
    Ok(match name {
        "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" | "lambdarank" | "rank_xendcg"
        | "custom" => Transform::Identity,
        "binary" => Transform::Sigmoid(param("sigmoid", 1.0)),
        "cross_entropy" | "xentropy" => Transform::Sigmoid(1.0),
        "multiclass" | "softmax" => Transform::Softmax,
        "multiclassova" | "multiclass_ova" | "ova" | "ovr" => Transform::SigmoidPerClass(param("sigmoid", 1.0)),
        "poisson" | "gamma" | "tweedie" => Transform::Exp,
        other => return Err(FormatError::Unsupported(format!("LightGBM objective '{other}'"))),
    })
}

fn tree(fields: &[(&str, &str)], index: usize) -> Result<Tree> {
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let need = |k: &str| get(k).ok_or_else(|| bad(format!("tree {index} has no '{k}'")));
    if get("is_linear").is_some_and(|v| v.trim() != "0") {
        return Err(FormatError::Unsupported(format!(
            "LightGBM model: tree {index} is a linear tree (linear_tree=True)"
        )));
    }
    if get("num_cat").is_some_and(|v| v.trim() != "0") {
        return Err(FormatError::Unsupported(format!(
            "LightGBM model: tree {index} has categorical splits (categorical_feature); train with numeric codes"
        )));
    }
    let num_leaves: usize = need("num_leaves")?.trim().parse().map_err(|_| bad("num_leaves"))?;
    let leaf_value: Vec<f64> = numbers("leaf_value", need("leaf_value")?)?;
    if leaf_value.len() != num_leaves {
        return Err(bad(format!("tree {index}: {} leaf values for {num_leaves} leaves", leaf_value.len())));
    }
    if num_leaves <= 1 {
        return Ok(Tree {
            split_feature: vec![],
            threshold: vec![],
            decision_type: vec![],
            left: vec![],
            right: vec![],
            leaf_value,
        });
    }
    let t = Tree {
        split_feature: numbers("split_feature", need("split_feature")?)?,
        threshold: numbers("threshold", need("threshold")?)?,
        decision_type: numbers("decision_type", need("decision_type")?)?,
        left: numbers("left_child", need("left_child")?)?,
        right: numbers("right_child", need("right_child")?)?,
        leaf_value,
    };
    let n = num_leaves - 1;
    let lens = [t.split_feature.len(), t.threshold.len(), t.decision_type.len(), t.left.len(), t.right.len()];
    if lens.iter().any(|&l| l != n) {
        return Err(bad(format!("tree {index}: node arrays of lengths {lens:?} for {n} internal nodes")));
    }
    // Leaves in range; internal children after their parent (so every walk ends).
    let in_range =
        |node: usize, c: i32| if c < 0 { ((!c) as usize) < num_leaves } else { (c as usize) < n && c as usize > node };
    if !(0..n).all(|i| in_range(i, t.left[i]) && in_range(i, t.right[i])) {
        return Err(bad(format!("tree {index}: a child index is out of range")));
    }
    Ok(t)
}

impl Tree {
    /// LightGBM's numerical decision: NaN counts as 0 unless the missing type is NaN; a
    /// missing value (zero or NaN, by the missing type) takes the default direction.
    fn predict(&self, row: &[f64]) -> f64 {
        if self.left.is_empty() {
            return self.leaf_value[0];
        }
        let mut node = 0usize;
        // Children only point forward (checked at load), so this ends.
        loop {
            let dt = self.decision_type[node];
            let missing_type = (dt >> 2) & 3;
            let default_left = dt & 2 != 0;
            let mut x = row[self.split_feature[node]];
            if x.is_nan() && missing_type != 2 {
                x = 0.0;
            }
            let is_missing = (missing_type == 1 && x.abs() <= 1e-35) || (missing_type == 2 && x.is_nan());
            let go_left = if is_missing { default_left } else { x <= self.threshold[node] };
            let child = if go_left { self.left[node] } else { self.right[node] };
            if child < 0 {
                return self.leaf_value[(!child) as usize];
            }
            node = child as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\nmax_feature_idx=1\n\
objective=binary sigmoid:1\nfeature_names=a b\nfeature_infos=[0:1] [0:1]\ntree_sizes=1 1\n\n\
Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=0 1\nsplit_gain=1 1\nthreshold=0.5 2.5\ndecision_type=10 2\n\
left_child=1 -1\nright_child=-2 -3\nleaf_value=0.25 -0.5 1\nshrinkage=1\n\n\
Tree=1\nnum_leaves=1\nnum_cat=0\nleaf_value=0.125\nshrinkage=1\n\n\nend of trees\n";

    fn check(row: [f64; 2], raw: f64) {
        let b = Booster::parse(MODEL).unwrap();
        let p = b.predict(&row, 1).unwrap()[0];
        assert_eq!(p, 1.0 / (1.0 + (-raw).exp()), "{row:?}");
    }

    #[test]
    fn decisions_and_missing_values() {
        // Node 0: x0 <= 0.5 → node 1, else leaf 1 (-0.5); NaN (missing type NaN) → left.
        // Node 1: x1 <= 2.5 → leaf 0 (0.25), else leaf 2 (1); NaN → 0 → left.
        check([0.0, 0.0], 0.25 + 0.125);
        check([0.0, 3.0], 1.0 + 0.125);
        check([1.0, 0.0], -0.5 + 0.125);
        check([f64::NAN, 3.0], 1.0 + 0.125);
        check([0.0, f64::NAN], 0.25 + 0.125);
    }

    #[test]
    fn refusals_name_the_part() {
        let e = Booster::parse(&MODEL.replace("binary sigmoid:1", "lambdaloss")).unwrap_err().to_string();
        assert!(e.contains("objective 'lambdaloss'"), "{e}");
        let e = Booster::parse(&MODEL.replacen("num_cat=0", "num_cat=1", 1)).unwrap_err().to_string();
        assert!(e.contains("categorical"), "{e}");
        let e = Booster::parse("{}").unwrap_err().to_string();
        assert!(e.contains("not a LightGBM text model"), "{e}");
        let e = Booster::parse(&MODEL.replace("left_child=1 -1", "left_child=7 -1")).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }
}
