//! Our own evaluator for the ONNX-ML graphs that scikit-learn's, LightGBM's and XGBoost's
//! converters emit for numeric regressors: `Scaler`, `LinearRegressor`,
//! `TreeEnsembleRegressor`, `Cast`, `Identity` and `Concat` over `float`/`double` matrices.
//!
//! Why: for these graphs ONNX Runtime's per-call overhead (building tensors, a session
//! lock, its executor) is several times the work: ≈ 8 µs per `Run`, against ≈ 2 µs here for
//! a one-row call of a 100-tree ensemble. A graph with any other operator, type or shape is
//! run by ONNX Runtime, and so is one where ONNX Runtime departs from the operator's text in
//! a way this module does not copy: the fast path never gives a second opinion.
//!
//! Numbers follow the operators' definitions and ONNX Runtime's choices where those leave
//! room: every value keeps the precision of its ONNX type (a `float` tensor holds values
//! rounded to `f32`, carried here in `f64`); tree thresholds compare in the input's type
//! (`f32` input against `f32` thresholds is exact in `f64`); a tree ensemble sums leaf
//! values in its input's type (as ONNX Runtime instantiates it), adds `base_values` after
//! aggregating (a target no tree voted for is 0, as in ONNX Runtime) and writes `float`.
//! Results agree with ONNX Runtime to `f32` rounding and the summation order (tests: relative
//! 1e-5 against the runtime itself, `native/tests.rs`).

use super::{attr_by_name, OutputSpec};
use crate::proto::{tensor_proto::DataType, AttributeProto, GraphProto, NodeProto, TensorProto};
use crate::{ElemType, Feed, FormatError, Result, Tensor, TensorSpec, Values};
use std::collections::HashMap;

/// A graph this module can evaluate, compiled.
#[derive(Debug)]
pub(super) struct Plan {
    /// Slot of each graph input, in input order.
    inputs: Vec<usize>,
    steps: Vec<Step>,
    /// Name, slot and type of each graph output, in output order.
    outputs: Vec<(String, usize, ElemType)>,
    /// Per slot: values per row and element type.
    slots: Vec<(usize, ElemType)>,
}

#[derive(Debug)]
struct Step {
    op: Op,
    inputs: Vec<usize>,
    output: usize,
}

#[derive(Debug)]
enum Op {
    Identity,
    /// To `float` (rounds) or `double`.
    Cast,
    /// `(x - offset) * scale` per column, in the input's precision, written as `float`.
    Scaler {
        offset: Vec<f64>,
        scale: Vec<f64>,
    },
    /// `x · coefficientsᵀ + intercepts`, `targets` values per row, as `float`.
    Linear {
        coefficients: Vec<f64>,
        intercepts: Vec<f64>,
        targets: usize,
        post: Post,
    },
    Trees(Box<Forest>),
    /// Columns of every input side by side.
    Concat,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Post {
    None,
    Logistic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Average,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

/// One node: a branch (`feature`, `threshold`, children `yes`/`no`) or a leaf (its votes are
/// `votes[yes..no]`).
#[derive(Debug, Clone, Copy)]
struct Node {
    mode: Mode,
    missing_true: bool,
    feature: u32,
    threshold: f64,
    yes: u32,
    no: u32,
}

#[derive(Debug)]
struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// (target, weight) of the leaves.
    votes: Vec<(u32, f64)>,
    targets: usize,
    base: Vec<f64>,
    aggregate: Aggregate,
    post: Post,
    /// Sums in `f32` (a float input), else in `f64`.
    single: bool,
}

/// Targets of a tree ensemble evaluated here (each row keeps one score per target).
const MAX_TARGETS: usize = 1 << 16;

/// Why a graph is left to ONNX Runtime (not an error: the runtime may well run it).
pub(super) type NotNative = String;

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    attr_by_name(&node.attribute, name)
}

fn floats(node: &NodeProto, name: &str) -> Vec<f64> {
    attr(node, name).map(|a| a.floats.iter().map(|&x| f64::from(x)).collect()).unwrap_or_default()
}

fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    attr(node, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn text(node: &NodeProto, name: &str, default: &str) -> String {
    attr(node, name).and_then(|a| a.s.as_ref()).map_or_else(|| default.into(), |s| String::from_utf8_lossy(s).into())
}

/// A `double` tensor attribute's values.
fn double_tensor(node: &NodeProto, name: &str) -> Result<Option<Vec<f64>>, NotNative> {
    let Some(t) = attr(node, name).and_then(|a| a.t.as_ref()) else { return Ok(None) };
    tensor_values(t).map(Some)
}

fn tensor_values(t: &TensorProto) -> Result<Vec<f64>, NotNative> {
    match DataType::try_from(t.data_type()) {
        Ok(DataType::Double) if !t.double_data.is_empty() => Ok(t.double_data.clone()),
        Ok(DataType::Double) => {
            Ok(t.raw_data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect())
        }
        Ok(DataType::Float) if !t.float_data.is_empty() => Ok(t.float_data.iter().map(|&x| f64::from(x)).collect()),
        Ok(DataType::Float) => Ok(t
            .raw_data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect()),
        _ => Err(format!("tensor attribute '{}' is not float or double", t.name())),
    }
}

fn post_transform(node: &NodeProto) -> Result<Post, NotNative> {
    match text(node, "post_transform", "NONE").as_str() {
        "NONE" => Ok(Post::None),
        "LOGISTIC" => Ok(Post::Logistic),
        other => Err(format!("post_transform {other}")),
    }
}

impl Plan {
    /// Compiles `graph` when every node is one this module evaluates on known widths; the
    /// error says what is not (the caller then uses ONNX Runtime).
    pub(super) fn build(graph: &GraphProto, inputs: &[TensorSpec], outputs: &[OutputSpec]) -> Result<Plan, NotNative> {
        let mut slots: Vec<(usize, ElemType)> = Vec::new();
        let mut names: HashMap<&str, usize> = HashMap::new();
        let numeric = |e: ElemType| matches!(e, ElemType::F32 | ElemType::F64);
        let mut input_slots = Vec::new();
        for spec in inputs {
            // A fixed first dimension is a batch size the runtime enforces: left to it.
            if !numeric(spec.elem) || spec.shape.len() != 2 || spec.shape[0] > 0 || spec.shape[1] <= 0 {
                return Err(format!("input '{}' is not a float or double [N, width] matrix", spec.name));
            }
            names.insert(&spec.name, slots.len());
            input_slots.push(slots.len());
            slots.push((spec.width(), spec.elem));
        }
        if !graph.initializer.is_empty() || !graph.sparse_initializer.is_empty() {
            return Err("the graph has initializers".into());
        }
        let mut steps = Vec::new();
        for node in &graph.node {
            let op_name = node.op_type();
            let domain = node.domain();
            let ins = node
                .input
                .iter()
                .map(|n| names.get(n.as_str()).copied().ok_or_else(|| format!("input '{n}' of node '{}'", node.name())))
                .collect::<Result<Vec<usize>, _>>()?;
            let [output] = node.output.as_slice() else {
                return Err(format!("node '{}' has {} outputs", node.name(), node.output.len()));
            };
            let first = *ins.first().ok_or_else(|| format!("node '{}' has no input", node.name()))?;
            let (width, elem) = slots[first];
            let one_input = || if ins.len() == 1 { Ok(()) } else { Err(format!("node '{}' inputs", node.name())) };
            let (op, out) = match (domain, op_name) {
                ("" | "ai.onnx", "Identity") => {
                    one_input()?;
                    (Op::Identity, (width, elem))
                }
                ("" | "ai.onnx", "Cast") => {
                    one_input()?;
                    let to = match attr(node, "to")
                        .and_then(|a| a.i)
                        .and_then(|i| i32::try_from(i).ok())
                        .map(DataType::try_from)
                    {
                        Some(Ok(DataType::Float)) => ElemType::F32,
                        Some(Ok(DataType::Double)) => ElemType::F64,
                        _ => return Err(format!("Cast '{}' to a type other than float or double", node.name())),
                    };
                    (Op::Cast, (width, to))
                }
                ("" | "ai.onnx", "Concat") => {
                    let axis = attr(node, "axis").and_then(|a| a.i).unwrap_or(0);
                    if axis != 1 && axis != -1 {
                        return Err(format!("Concat '{}' on axis {axis}", node.name()));
                    }
                    let total = ins.iter().map(|&s| slots[s].0).sum();
                    if ins.iter().any(|&s| slots[s].1 != elem) {
                        return Err(format!("Concat '{}' of mixed types", node.name()));
                    }
                    (Op::Concat, (total, elem))
                }
                ("ai.onnx.ml", "Scaler") => {
                    one_input()?;
                    let (offset, scale) = (floats(node, "offset"), floats(node, "scale"));
                    let fits = |v: &[f64]| v.len() == 1 || v.len() == width;
                    if !fits(&offset) || !fits(&scale) {
                        return Err(format!("Scaler '{}' sizes", node.name()));
                    }
                    (Op::Scaler { offset, scale }, (width, ElemType::F32))
                }
                ("ai.onnx.ml", "LinearRegressor") => {
                    one_input()?;
                    if elem != ElemType::F32 {
                        // ONNX Runtime implements it for float input only.
                        return Err(format!("LinearRegressor '{}' on {elem:?}", node.name()));
                    }
                    let targets = attr(node, "targets").and_then(|a| a.i).unwrap_or(1);
                    let coefficients = floats(node, "coefficients");
                    let mut intercepts = floats(node, "intercepts");
                    let targets = usize::try_from(targets).ok().filter(|&t| t > 0 && coefficients.len() == t * width);
                    let targets = targets.ok_or_else(|| format!("LinearRegressor '{}' sizes", node.name()))?;
                    if intercepts.is_empty() {
                        intercepts = vec![0.0; targets];
                    } else if intercepts.len() != targets {
                        return Err(format!("LinearRegressor '{}' intercepts", node.name()));
                    }
                    let post = post_transform(node)?;
                    if post == Post::Logistic && targets == 1 {
                        // ONNX Runtime applies no LOGISTIC to a single-target regressor's output.
                        return Err(format!("LinearRegressor '{}': LOGISTIC with one target", node.name()));
                    }
                    (Op::Linear { coefficients, intercepts, targets, post }, (targets, ElemType::F32))
                }
                ("ai.onnx.ml", "TreeEnsembleRegressor") => {
                    one_input()?;
                    let forest = Forest::build(node, width, elem)
                        .map_err(|e| format!("TreeEnsembleRegressor '{}': {e}", node.name()))?;
                    let targets = forest.targets;
                    (Op::Trees(Box::new(forest)), (targets, ElemType::F32))
                }
                _ => return Err(format!("operator {domain}:{op_name}")),
            };
            names.insert(output, slots.len());
            steps.push(Step { op, inputs: ins, output: slots.len() });
            slots.push(out);
        }
        let outputs = outputs
            .iter()
            .map(|o| {
                let slot = *names.get(o.spec.name.as_str()).ok_or_else(|| format!("output '{}'", o.spec.name))?;
                let (width, elem) = slots[slot];
                let shape_fits = o.spec.shape.len() == 2 && (o.spec.shape[1] <= 0 || o.spec.shape[1] as usize == width);
                if o.class_labels.is_some() || elem != o.spec.elem || !shape_fits {
                    return Err(format!("output '{}' is not a {width}-wide {:?} matrix", o.spec.name, elem));
                }
                Ok((o.spec.name.clone(), slot, elem))
            })
            .collect::<Result<Vec<_>, NotNative>>()?;
        // `run` moves each output's values out of its slot.
        let mut slots_out: Vec<usize> = outputs.iter().map(|o| o.1).collect();
        slots_out.sort_unstable();
        if slots_out.windows(2).any(|w| w[0] == w[1]) {
            return Err("two outputs name one value".into());
        }
        Ok(Plan { inputs: input_slots, steps, outputs, slots })
    }

    /// Runs the plan on `rows` rows (feeds as [`super::OnnxModel::run`] takes them).
    pub(super) fn run(&self, feeds: Vec<Feed>, rows: usize, specs: &[TensorSpec]) -> Result<Vec<Tensor>> {
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); self.slots.len()];
        for ((feed, &slot), spec) in feeds.into_iter().zip(&self.inputs).zip(specs) {
            let elem = self.slots[slot].1;
            let Feed::Numbers(mut v) = feed else {
                return Err(FormatError::Input(format!("input '{}': the model takes numbers ({elem:?})", spec.name)));
            };
            super::feed_shape(spec, rows, v.len())?;
            if elem == ElemType::F32 {
                v.iter_mut().for_each(|x| *x = f64::from(*x as f32));
            }
            values[slot] = v;
        }
        for step in &self.steps {
            let (width, elem) = self.slots[step.output];
            let out = {
                let x = &values[step.inputs[0]];
                let in_elem = self.slots[step.inputs[0]].1;
                match &step.op {
                    Op::Identity => x.clone(),
                    Op::Cast if elem == ElemType::F32 => x.iter().map(|&v| f64::from(v as f32)).collect(),
                    Op::Cast => x.clone(),
                    Op::Scaler { offset, scale } => scaler(x, width, offset, scale, in_elem),
                    Op::Linear { coefficients, intercepts, targets, post } => {
                        linear(x, self.slots[step.inputs[0]].0, coefficients, intercepts, *targets, *post)
                    }
                    Op::Trees(forest) => forest.predict(x, self.slots[step.inputs[0]].0, rows),
                    Op::Concat => {
                        let mut out = Vec::with_capacity(rows * width);
                        for r in 0..rows {
                            for &s in &step.inputs {
                                let w = self.slots[s].0;
                                out.extend_from_slice(&values[s][r * w..(r + 1) * w]);
                            }
                        }
                        out
                    }
                }
            };
            values[step.output] = out;
        }
        Ok(self
            .outputs
            .iter()
            .map(|(name, slot, elem)| {
                let v = std::mem::take(&mut values[*slot]);
                let values = match elem {
                    ElemType::F32 => Values::F32(v.iter().map(|&x| x as f32).collect()),
                    _ => Values::F64(v),
                };
                Tensor { name: name.clone(), shape: vec![rows, self.slots[*slot].0], values }
            })
            .collect())
    }
}

fn scaler(x: &[f64], width: usize, offset: &[f64], scale: &[f64], elem: ElemType) -> Vec<f64> {
    let at = |v: &[f64], j: usize| if v.len() == 1 { v[0] } else { v[j] };
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let j = i % width;
            if elem == ElemType::F32 {
                f64::from((v as f32 - at(offset, j) as f32) * at(scale, j) as f32)
            } else {
                f64::from(((v - at(offset, j)) * at(scale, j)) as f32)
            }
        })
        .collect()
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn linear(x: &[f64], width: usize, coef: &[f64], intercepts: &[f64], targets: usize, post: Post) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len() / width * targets);
    for row in x.chunks_exact(width) {
        for t in 0..targets {
            let w = &coef[t * width..(t + 1) * width];
            let s = intercepts[t] + row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
            let s = if post == Post::Logistic { logistic(s) } else { s };
            out.push(f64::from(s as f32));
        }
    }
    out
}

impl Forest {
    fn build(node: &NodeProto, width: usize, elem: ElemType) -> Result<Forest, String> {
        // ONNX Runtime compares and sums in the input's type; it reads `*_as_tensor`
        // (double) attributes only for a double input.
        let single = elem == ElemType::F32;
        let tensors = ["nodes_values_as_tensor", "target_weights_as_tensor", "base_values_as_tensor"];
        if single && tensors.iter().any(|n| attr(node, n).is_some()) {
            return Err("double tensor attributes on a float input".into());
        }
        let tree_ids = ints(node, "nodes_treeids");
        let node_ids = ints(node, "nodes_nodeids");
        let features = ints(node, "nodes_featureids");
        let modes: Vec<String> = attr(node, "nodes_modes")
            .map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            .unwrap_or_default();
        let thresholds = match double_tensor(node, "nodes_values_as_tensor")? {
            Some(v) => v,
            None => floats(node, "nodes_values"),
        };
        let yes_ids = ints(node, "nodes_truenodeids");
        let no_ids = ints(node, "nodes_falsenodeids");
        let missing = ints(node, "nodes_missing_value_tracks_true");
        let n = tree_ids.len();
        let same = [node_ids.len(), features.len(), modes.len(), thresholds.len(), yes_ids.len(), no_ids.len()];
        if n == 0 || same.iter().any(|&l| l != n) || (!missing.is_empty() && missing.len() != n) {
            return Err("the nodes_* attributes differ in length".into());
        }
        let mut index: HashMap<(i64, i64), u32> = HashMap::with_capacity(n);
        let mut trees: Vec<i64> = Vec::new();
        let mut seen_trees = std::collections::HashSet::new();
        for i in 0..n {
            if index.insert((tree_ids[i], node_ids[i]), i as u32).is_some() {
                return Err(format!("node {} of tree {} appears twice", node_ids[i], tree_ids[i]));
            }
            if seen_trees.insert(tree_ids[i]) {
                trees.push(tree_ids[i]);
            }
        }
        let roots = trees
            .iter()
            .map(|&t| index.get(&(t, 0)).copied().ok_or_else(|| format!("tree {t} has no node 0")))
            .collect::<Result<Vec<u32>, String>>()?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mode = match modes[i].as_str() {
                "BRANCH_LEQ" => Mode::Leq,
                "BRANCH_LT" => Mode::Lt,
                "BRANCH_GTE" => Mode::Gte,
                "BRANCH_GT" => Mode::Gt,
                "BRANCH_EQ" => Mode::Eq,
                "BRANCH_NEQ" => Mode::Neq,
                "LEAF" => Mode::Leaf,
                other => return Err(format!("node mode '{other}'")),
            };
            let child = |id: i64| {
                index.get(&(tree_ids[i], id)).copied().ok_or_else(|| format!("tree {} has no node {id}", tree_ids[i]))
            };
            let (feature, yes, no) = if mode == Mode::Leaf {
                (0, 0, 0)
            } else {
                let f = u32::try_from(features[i]).ok().filter(|&f| (f as usize) < width);
                let f = f.ok_or_else(|| format!("feature {} of a {width}-wide input", features[i]))?;
                (f, child(yes_ids[i])?, child(no_ids[i])?)
            };
            let missing_true = missing.get(i).is_some_and(|&m| m != 0);
            nodes.push(Node { mode, missing_true, feature, threshold: thresholds[i], yes, no });
        }
        // Each tree a tree: every node reached at most once from its root (no cycles).
        let mut seen = vec![false; n];
        for &root in &roots {
            let mut stack = vec![root];
            while let Some(i) = stack.pop() {
                if std::mem::replace(&mut seen[i as usize], true) {
                    return Err(format!(
                        "node {} of tree {} is reached twice",
                        node_ids[i as usize], tree_ids[i as usize]
                    ));
                }
                let nd = nodes[i as usize];
                if nd.mode != Mode::Leaf {
                    stack.extend([nd.yes, nd.no]);
                }
            }
        }
        let targets = attr(node, "n_targets").and_then(|a| a.i).unwrap_or(1);
        let targets = usize::try_from(targets).ok().filter(|&t| t > 0 && t <= MAX_TARGETS).ok_or("n_targets")?;
        let t_trees = ints(node, "target_treeids");
        let t_nodes = ints(node, "target_nodeids");
        let t_ids = ints(node, "target_ids");
        let weights = match double_tensor(node, "target_weights_as_tensor")? {
            Some(v) => v,
            None => floats(node, "target_weights"),
        };
        if [t_nodes.len(), t_ids.len(), weights.len()].iter().any(|&l| l != t_trees.len()) {
            return Err("the target_* attributes differ in length".into());
        }
        // ONNX Runtime reads a leaf's votes as one contiguous run of the target_* lists and,
        // with one target, only the first of them (a leaf without votes votes 0); graphs
        // where that differs from the operator's definition are left to the runtime.
        let mut by_leaf: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        let mut last = None;
        for k in 0..t_trees.len() {
            let i = *index
                .get(&(t_trees[k], t_nodes[k]))
                .ok_or_else(|| format!("a vote for missing node {}", t_nodes[k]))?;
            let t =
                u32::try_from(t_ids[k]).ok().filter(|&t| (t as usize) < targets).ok_or("a target id out of range")?;
            if nodes[i as usize].mode != Mode::Leaf {
                return Err(format!("a vote for branch node {}", t_nodes[k]));
            }
            let leaf = &mut by_leaf[i as usize];
            if !leaf.is_empty() && (last != Some(i) || targets == 1) {
                return Err(format!(
                    "leaf {} of tree {} has votes apart or several for one target",
                    t_nodes[k], t_trees[k]
                ));
            }
            leaf.push((t, weights[k]));
            last = Some(i);
        }
        if targets == 1 {
            by_leaf.iter_mut().filter(|v| v.is_empty()).for_each(|v| v.push((0, 0.0)));
        }
        let mut votes = Vec::with_capacity(t_trees.len());
        for (nd, v) in nodes.iter_mut().zip(by_leaf) {
            if nd.mode == Mode::Leaf {
                nd.yes = votes.len() as u32;
                votes.extend(v);
                nd.no = votes.len() as u32;
            }
        }
        let base = match double_tensor(node, "base_values_as_tensor")? {
            Some(v) => v,
            None => floats(node, "base_values"),
        };
        if !base.is_empty() && base.len() != targets {
            return Err(format!("{} base values for {targets} targets", base.len()));
        }
        let aggregate = match text(node, "aggregate_function", "SUM").as_str() {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            // MIN and MAX (which no converter emits) are left to the runtime: it treats a
            // target without votes differently from the operator's definition.
            other => return Err(format!("aggregate_function {other}")),
        };
        let post = post_transform(node)?;
        if post == Post::Logistic && targets == 1 {
            // ONNX Runtime applies no LOGISTIC to a single-target regressor's output.
            return Err("post_transform LOGISTIC with one target".into());
        }
        Ok(Forest { nodes, roots, votes, targets, base, aggregate, post, single })
    }

    /// The leaf `row` reaches in the tree at `root`.
    fn leaf(&self, root: u32, row: &[f64]) -> &Node {
        let mut nd = &self.nodes[root as usize];
        while nd.mode != Mode::Leaf {
            let x = row[nd.feature as usize];
            let t = nd.threshold;
            let go = match nd.mode {
                Mode::Leq => x <= t,
                Mode::Lt => x < t,
                Mode::Gte => x >= t,
                Mode::Gt => x > t,
                Mode::Eq => x == t,
                Mode::Neq => x != t,
                Mode::Leaf => unreachable!(),
            } || (nd.missing_true && x.is_nan());
            nd = &self.nodes[if go { nd.yes } else { nd.no } as usize];
        }
        nd
    }

    fn predict(&self, x: &[f64], width: usize, rows: usize) -> Vec<f64> {
        let k = self.targets;
        let mut out = Vec::with_capacity(rows * k);
        let mut scores: Vec<Option<f64>> = vec![None; k];
        let round = |v: f64| if self.single { f64::from(v as f32) } else { v };
        for row in x.chunks_exact(width).take(rows) {
            scores.iter_mut().for_each(|s| *s = None);
            for &root in &self.roots {
                let leaf = self.leaf(root, row);
                for &(t, w) in &self.votes[leaf.yes as usize..leaf.no as usize] {
                    let s = &mut scores[t as usize];
                    *s = Some(round(s.unwrap_or(0.0) + w));
                }
            }
            for (t, &s) in scores.iter().enumerate() {
                // As ONNX Runtime: a target no tree voted for is 0, without its base value.
                let Some(mut v) = s else {
                    out.push(if self.post == Post::Logistic { 0.5 } else { 0.0 });
                    continue;
                };
                if self.aggregate == Aggregate::Average {
                    v = round(v / self.roots.len() as f64);
                }
                v = round(v + self.base.get(t).copied().unwrap_or(0.0));
                if self.post == Post::Logistic {
                    v = logistic(v);
                }
                out.push(f64::from(v as f32));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
