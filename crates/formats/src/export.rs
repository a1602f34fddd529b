//! A factory model written as ONNX, so that the stock `mlflow.pyfunc` (its `mlflow.onnx`
//! loader, with `onnxruntime`) and any ONNX runtime score it.
//!
//! The input is the model's saved form, `model.bin` (`learn-model/1` JSON): a persisted,
//! versioned format that old packages keep using, read here through its own serde types so
//! that `learn` needs no exporter inside it. Tests pin the export against
//! `learn::Model::predict`.
//!
//! The graph takes one input per feature, shaped `[N]` (so `mlflow.onnx`'s DataFrame path,
//! which feeds `df[column].values` per input, works; `[N, 1]` when there is one feature,
//! because it then feeds `df.values`): `double` for numeric columns (NaN = missing), `string`
//! for categorical ones. One output, `[N]`: `prediction` (regression, the raw sum) or
//! `probability` (binary classification, after a `Sigmoid`).
//!
//! - Gradient boosting: numeric columns go straight into one `[N, F]` matrix for an ONNX-ML
//!   `TreeEnsembleRegressor` (`BRANCH_LEQ`, thresholds and leaf values as double tensors,
//!   missing values following each node's learned direction). A categorical split "level
//!   in set S goes left" becomes an extra matrix column computed by a `LabelEncoder`
//!   (levels in S → 0, other known levels → 1, anything else → NaN, i.e. missing) split at
//!   0.5, because tree ensembles up to ai.onnx.ml opset 4 have no set-membership test.
//! - Linear: per column, `(x − mean) / scale · w` with NaN → 0, or for a categorical column
//!   a `LabelEncoder` from level to its coefficient (unseen → the missing column's
//!   coefficient or 0); summed after the intercept in the same order as `learn` does.
//!
//! Numbers: the linear graph computes in `f64` exactly as `learn` does. The tree ensemble's
//! output is `float` (ONNX-ML defines it so): predictions equal `factory serve`'s to `f32`
//! rounding (relative error below 6e-8, plus the summation order of the trees).

use crate::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::{FormatError, Result};
use prost::Message;
use serde::Deserialize;

/// The `model.bin` format version this exporter reads.
pub const LEARN_FORMAT: &str = "learn-model/1";

// ---- the saved form of a `learn::Model` --------------------------------------------------

#[derive(Deserialize)]
struct Saved {
    format: String,
    schema: SavedSchema,
    task: String,
    body: Body,
}

#[derive(Deserialize)]
struct SavedSchema {
    fields: Vec<SavedField>,
}

#[derive(Deserialize)]
struct SavedField {
    name: String,
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Body {
    Gbm(Gbm),
    Linear(Linear),
}

#[derive(Deserialize)]
struct Gbm {
    baseline: f64,
    codings: Vec<Coding>,
    trees: Vec<Tree>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Coding {
    Numeric,
    Categorical { levels: Vec<String> },
}

#[derive(Deserialize)]
struct Tree {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Node {
    Leaf { value: f64 },
    Numeric { feature: u32, threshold: f64, missing_left: bool, left: u32, right: u32 },
    Categorical { feature: u32, left_codes: [u64; 4], missing_left: bool, left: u32, right: u32 },
}

#[derive(Deserialize)]
struct Linear {
    encoders: Vec<Encoder>,
    intercept: f64,
    weights: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Encoder {
    Numeric { mean: f64, scale: f64 },
    Categorical { levels: Vec<String>, missing: bool },
}

// ---- graph building ---------------------------------------------------------------------

fn bad(msg: impl std::fmt::Display) -> FormatError {
    FormatError::Invalid(format!("exporting to ONNX: {msg}"))
}

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    count: usize,
}

pub(crate) fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(kind as i32), ..Default::default() }
}

pub(crate) fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto { ints: v, ..attr(name, AttributeType::Ints) }
}

pub(crate) fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}

pub(crate) fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, AttributeType::String) }
}

pub(crate) fn strings(name: &str, v: impl IntoIterator<Item = String>) -> AttributeProto {
    AttributeProto { strings: v.into_iter().map(String::into_bytes).collect(), ..attr(name, AttributeType::Strings) }
}

pub(crate) fn doubles(name: &str, v: Vec<f64>) -> AttributeProto {
    AttributeProto { t: Some(double_tensor("", vec![v.len() as i64], v)), ..attr(name, AttributeType::Tensor) }
}

fn double_tensor(name: &str, dims: Vec<i64>, v: Vec<f64>) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims,
        data_type: Some(DataType::Double as i32),
        double_data: v,
        ..Default::default()
    }
}

pub(crate) fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = |d: &Option<i64>| tensor_shape_proto::Dimension {
        value: Some(match d {
            Some(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
            None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
        }),
        denotation: None,
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim: dims.iter().map(dim).collect() }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

impl Graph {
    /// Adds a node with fresh output name(s); returns the first output.
    fn op(&mut self, op: &str, domain: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        self.count += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.count);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: Some(format!("{op}_{}", self.count)),
            op_type: Some(op.into()),
            domain: Some(domain.into()),
            attribute: attributes,
            ..Default::default()
        });
        out
    }

    fn constant(&mut self, dims: Vec<i64>, v: Vec<f64>) -> String {
        self.count += 1;
        let name = format!("const_{}", self.count);
        self.initializers.push(double_tensor(&name, dims, v));
        name
    }

    fn shape_constant(&mut self, v: Vec<i64>) -> String {
        self.count += 1;
        let name = format!("shape_{}", self.count);
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![v.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            int64_data: v,
            ..Default::default()
        });
        name
    }

    /// `LabelEncoder` (ai.onnx.ml opset 4): text → double, `default` for anything else.
    fn encode_levels(&mut self, input: &str, keys: Vec<String>, values: Vec<f64>, default: f64) -> String {
        let default = double_tensor("", vec![1], vec![default]);
        self.op(
            "LabelEncoder",
            "ai.onnx.ml",
            &[input],
            vec![
                strings("keys_strings", keys),
                AttributeProto {
                    t: Some(double_tensor("", vec![values.len() as i64], values)),
                    ..attr("values_tensor", AttributeType::Tensor)
                },
                AttributeProto { t: Some(default), ..attr("default_tensor", AttributeType::Tensor) },
            ],
        )
    }
}

/// Writes the model whose `model.bin` bytes are `saved` as an ONNX model file.
pub fn onnx_from_learn(saved: &[u8]) -> Result<Vec<u8>> {
    let saved: Saved = serde_json::from_slice(saved).map_err(|e| bad(format!("model.bin: {e}")))?;
    if saved.format != LEARN_FORMAT {
        return Err(bad(format!("model format '{}' (this exporter reads '{LEARN_FORMAT}')", saved.format)));
    }
    let fields = &saved.schema.fields;
    if fields.is_empty() {
        return Err(bad("the model has no input columns"));
    }
    let one = fields.len() == 1;
    let mut g = Graph::default();
    let mut inputs = Vec::new();
    // Each input as a `[N]` column (a `[N, 1]` input is flattened first).
    let mut columns = Vec::new();
    for f in fields {
        let elem = match f.kind.as_str() {
            "numeric" => DataType::Double,
            "categorical" => DataType::String,
            other => return Err(bad(format!("column '{}' has kind '{other}'", f.name))),
        };
        let dims: &[Option<i64>] = if one { &[None, Some(1)] } else { &[None] };
        inputs.push(value_info(&f.name, elem, dims));
        columns.push(if one {
            let flat = g.shape_constant(vec![-1]);
            g.op("Reshape", "", &[&f.name, &flat], vec![])
        } else {
            f.name.clone()
        });
    }
    let raw = match &saved.body {
        Body::Gbm(m) => gbm(&mut g, m, &columns, fields.len())?,
        Body::Linear(m) => linear(&mut g, m, &columns)?,
    };
    let (out_name, out_elem) = match saved.task.as_str() {
        "regression" => {
            ("prediction", if matches!(saved.body, Body::Gbm(_)) { DataType::Float } else { DataType::Double })
        }
        "binary_classification" => {
            ("probability", if matches!(saved.body, Body::Gbm(_)) { DataType::Float } else { DataType::Double })
        }
        other => return Err(bad(format!("task '{other}'"))),
    };
    let last = if saved.task == "binary_classification" { g.op("Sigmoid", "", &[&raw], vec![]) } else { raw };
    g.nodes.push(NodeProto {
        input: vec![last],
        output: vec![out_name.into()],
        name: Some("output".into()),
        op_type: Some("Identity".into()),
        domain: Some(String::new()),
        ..Default::default()
    });
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![
            OperatorSetIdProto { domain: Some(String::new()), version: Some(15) },
            OperatorSetIdProto { domain: Some("ai.onnx.ml".into()), version: Some(4) },
        ],
        producer_name: Some("factory".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(GraphProto {
            node: g.nodes,
            name: Some("factory".into()),
            initializer: g.initializers,
            input: inputs,
            output: vec![value_info(out_name, out_elem, &[None])],
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// The tree ensemble; returns the `[N]` raw-score output (float).
fn gbm(g: &mut Graph, m: &Gbm, columns: &[String], n_fields: usize) -> Result<String> {
    if m.codings.len() != n_fields {
        return Err(bad(format!("{} codings for {n_fields} columns", m.codings.len())));
    }
    // Matrix columns: every numeric input, then one per distinct categorical split.
    let mut matrix: Vec<String> = Vec::new();
    let mut numeric_col = vec![None; n_fields];
    for (i, c) in m.codings.iter().enumerate() {
        if matches!(c, Coding::Numeric) {
            numeric_col[i] = Some(matrix.len());
            matrix.push(columns[i].clone());
        }
    }
    let mut split_cols: Vec<((u32, [u64; 4]), usize)> = Vec::new();
    let (mut treeids, mut nodeids, mut featureids, mut modes, mut values) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut trues, mut falses, mut missing) = (vec![], vec![], vec![]);
    let (mut t_tree, mut t_node, mut t_weight) = (vec![], vec![], vec![]);
    for (t, tree) in m.trees.iter().enumerate() {
        for (n, node) in tree.nodes.iter().enumerate() {
            let (feature, threshold, miss, left, right) = match node {
                Node::Leaf { value } => {
                    treeids.push(t as i64);
                    nodeids.push(n as i64);
                    featureids.push(0);
                    modes.push("LEAF".to_string());
                    values.push(0.0);
                    trues.push(0);
                    falses.push(0);
                    missing.push(0);
                    t_tree.push(t as i64);
                    t_node.push(n as i64);
                    t_weight.push(*value);
                    continue;
                }
                Node::Numeric { feature, threshold, missing_left, left, right } => {
                    let col = numeric_col
                        .get(*feature as usize)
                        .copied()
                        .flatten()
                        .ok_or_else(|| bad(format!("tree {t} node {n}: numeric split on column {feature}")))?;
                    (col, *threshold, *missing_left, *left, *right)
                }
                Node::Categorical { feature, left_codes, missing_left, left, right } => {
                    let key = (*feature, *left_codes);
                    let col = match split_cols.iter().find(|(k, _)| *k == key) {
                        Some((_, c)) => *c,
                        None => {
                            let Some(Coding::Categorical { levels }) = m.codings.get(*feature as usize) else {
                                return Err(bad(format!("tree {t} node {n}: categorical split on column {feature}")));
                            };
                            let goes_left = |code: usize| (left_codes[code >> 6] >> (code & 63)) & 1 == 1;
                            let side: Vec<f64> =
                                (0..levels.len()).map(|c| if goes_left(c) { 0.0 } else { 1.0 }).collect();
                            let encoded = g.encode_levels(&columns[*feature as usize], levels.clone(), side, f64::NAN);
                            matrix.push(encoded);
                            split_cols.push((key, matrix.len() - 1));
                            matrix.len() - 1
                        }
                    };
                    (col, 0.5, *missing_left, *left, *right)
                }
            };
            if left as usize >= tree.nodes.len() || right as usize >= tree.nodes.len() {
                return Err(bad(format!("tree {t} node {n}: child out of range")));
            }
            treeids.push(t as i64);
            nodeids.push(n as i64);
            featureids.push(feature as i64);
            modes.push("BRANCH_LEQ".to_string());
            values.push(threshold);
            trues.push(i64::from(left));
            falses.push(i64::from(right));
            missing.push(i64::from(miss));
        }
    }
    let two_d = g.shape_constant(vec![-1, 1]);
    let parts: Vec<String> = matrix.iter().map(|c| g.op("Reshape", "", &[c, &two_d], vec![])).collect();
    let part_refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let x = g.op("Concat", "", &part_refs, vec![int("axis", 1)]);
    let n_leaves = t_weight.len();
    let y = g.op(
        "TreeEnsembleRegressor",
        "ai.onnx.ml",
        &[&x],
        vec![
            int("n_targets", 1),
            string("aggregate_function", "SUM"),
            string("post_transform", "NONE"),
            doubles("base_values_as_tensor", vec![m.baseline]),
            ints("nodes_treeids", treeids),
            ints("nodes_nodeids", nodeids),
            ints("nodes_featureids", featureids),
            strings("nodes_modes", modes),
            doubles("nodes_values_as_tensor", values),
            ints("nodes_truenodeids", trues),
            ints("nodes_falsenodeids", falses),
            ints("nodes_missing_value_tracks_true", missing),
            ints("target_treeids", t_tree),
            ints("target_nodeids", t_node),
            ints("target_ids", vec![0; n_leaves]),
            doubles("target_weights_as_tensor", t_weight),
        ],
    );
    let flat = g.shape_constant(vec![-1]);
    Ok(g.op("Reshape", "", &[&y, &flat], vec![]))
}

/// The linear model; returns the `[N]` raw-score output (double).
fn linear(g: &mut Graph, m: &Linear, columns: &[String]) -> Result<String> {
    if m.encoders.len() != columns.len() {
        return Err(bad(format!("{} encoders for {} columns", m.encoders.len(), columns.len())));
    }
    let mut terms = vec![g.constant(vec![1], vec![m.intercept])];
    let mut offset = 0;
    for (enc, col) in m.encoders.iter().zip(columns) {
        match enc {
            Encoder::Numeric { mean, scale } => {
                let w = *m.weights.get(offset).ok_or_else(|| bad("fewer weights than encoded columns"))?;
                let (mean, scale, w, zero) = (
                    g.constant(vec![1], vec![*mean]),
                    g.constant(vec![1], vec![*scale]),
                    g.constant(vec![1], vec![w]),
                    g.constant(vec![1], vec![0.0]),
                );
                let centred = g.op("Sub", "", &[col, &mean], vec![]);
                let scaled = g.op("Div", "", &[&centred, &scale], vec![]);
                let nan = g.op("IsNaN", "", &[&scaled], vec![]);
                let filled = g.op("Where", "", &[&nan, &zero, &scaled], vec![]);
                terms.push(g.op("Mul", "", &[&filled, &w], vec![]));
                offset += 1;
            }
            Encoder::Categorical { levels, missing } => {
                let width = levels.len() + usize::from(*missing);
                let w =
                    m.weights.get(offset..offset + width).ok_or_else(|| bad("fewer weights than encoded columns"))?;
                let default = if *missing { w[levels.len()] } else { 0.0 };
                terms.push(g.encode_levels(col, levels.clone(), w[..levels.len()].to_vec(), default));
                offset += width;
            }
        }
    }
    if offset != m.weights.len() {
        return Err(bad(format!("{} weights for {offset} encoded columns", m.weights.len())));
    }
    // Added one at a time, in learn's order: ((intercept + t1) + t2) + …
    let mut acc = terms[0].clone();
    for t in &terms[1..] {
        acc = g.op("Add", "", &[&acc, t], vec![]);
    }
    Ok(acc)
}
