//! The native evaluator against ONNX Runtime itself (the library `testkit::onnx` finds):
//! random graphs of every operator, mode, aggregate and attribute form it takes, on rows
//! with NaN, infinities and values equal to thresholds, must give the runtime's answers.

use super::super::{set_runtime_library, OnnxModel};
use crate::export::{attr, doubles, int, ints, string, strings, value_info};
use crate::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, ValueInfoProto,
};
use crate::{Feed, Values};
use prost::Message;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

/// Points `onnx` at the runtime library (only the first call of the process sets it).
fn runtime() {
    set_runtime_library(testkit::onnx::runtime_library());
}

fn floats(name: &str, v: &[f64]) -> AttributeProto {
    AttributeProto { floats: v.iter().map(|&x| x as f32).collect(), ..attr(name, AttributeType::Floats) }
}
/// Float or double values, as the plain attribute or its `_as_tensor` form.
fn values(name: &str, v: &[f64], as_tensor: bool) -> AttributeProto {
    if as_tensor {
        doubles(&format!("{name}_as_tensor"), v.to_vec())
    } else {
        floats(name, v)
    }
}

fn matrix(name: &str, elem: DataType, width: i64) -> ValueInfoProto {
    value_info(name, elem, &[None, Some(width)])
}

fn node(op: &str, domain: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: Some(format!("{op}_{output}")),
        op_type: Some(op.into()),
        domain: Some(domain.into()),
        attribute,
        ..Default::default()
    }
}

/// A random tree ensemble over `width` columns whose values come from `pool`.
/// `double`: the input is a double matrix (only then may attributes be double tensors).
fn forest(rng: &mut Pcg64, width: usize, pool: &[f64], targets: usize, input: &str, double: bool) -> NodeProto {
    const MODES: [&str; 6] = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"];
    let as_tensor = double && rng.random_bool(0.5);
    let one_mode = rng.random_bool(0.5).then(|| MODES[rng.random_range(0..MODES.len())]);
    let (mut tree_ids, mut node_ids, mut features, mut modes, mut thresholds) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut yes, mut no, mut missing) = (vec![], vec![], vec![]);
    let (mut t_trees, mut t_nodes, mut t_ids, mut weights) = (vec![], vec![], vec![], vec![]);
    let n_trees = rng.random_range(1..12);
    for tree in 0..n_trees {
        // Node ids in creation order; a branch's children are the next two ids.
        let depth = rng.random_range(0..5u32);
        let mut frontier = vec![(0i64, 0u32)];
        let mut next_id = 1i64;
        while let Some((id, d)) = frontier.pop() {
            tree_ids.push(tree);
            node_ids.push(id);
            let branch = d < depth && rng.random_bool(0.8);
            if branch {
                features.push(rng.random_range(0..width) as i64);
                modes.push(one_mode.unwrap_or(MODES[rng.random_range(0..MODES.len())]));
                let t = pool[rng.random_range(0..pool.len())];
                thresholds.push(if t.is_finite() { t } else { 0.25 });
                yes.push(next_id);
                no.push(next_id + 1);
                missing.push(i64::from(rng.random_bool(0.5)));
                frontier.push((next_id, d + 1));
                frontier.push((next_id + 1, d + 1));
                next_id += 2;
            } else {
                features.push(0);
                modes.push("LEAF");
                thresholds.push(0.0);
                yes.push(0);
                no.push(0);
                missing.push(0);
                // One vote at most with one target; several (for any targets) with more.
                for _ in 0..rng.random_range(0..if targets == 1 { 2 } else { 4 }) {
                    t_trees.push(tree);
                    t_nodes.push(id);
                    t_ids.push(rng.random_range(0..targets) as i64);
                    weights.push(rng.random_range(-10.0..10.0));
                }
            }
        }
    }
    let aggregate = ["SUM", "AVERAGE"][rng.random_range(0..2)];
    let mut attrs = vec![
        ints("nodes_treeids", tree_ids),
        ints("nodes_nodeids", node_ids),
        ints("nodes_featureids", features),
        strings("nodes_modes", modes.iter().map(|m| m.to_string())),
        values("nodes_values", &thresholds, as_tensor),
        ints("nodes_truenodeids", yes),
        ints("nodes_falsenodeids", no),
        ints("target_treeids", t_trees),
        ints("target_nodeids", t_nodes),
        ints("target_ids", t_ids),
        values("target_weights", &weights, as_tensor),
        int("n_targets", targets as i64),
        string("aggregate_function", aggregate),
        string("post_transform", if targets > 1 && rng.random_bool(0.3) { "LOGISTIC" } else { "NONE" }),
    ];
    if rng.random_bool(0.7) {
        attrs.push(ints("nodes_missing_value_tracks_true", missing));
    }
    if rng.random_bool(0.6) {
        let base: Vec<f64> = (0..targets).map(|_| rng.random_range(-5.0..5.0)).collect();
        attrs.push(values("base_values", &base, as_tensor));
    }
    node("TreeEnsembleRegressor", "ai.onnx.ml", &[input], "Y", attrs)
}

/// A random graph: [Scaler] → [Cast] → [Concat with the input] → trees or a linear model.
fn random_model(rng: &mut Pcg64, pool: &[f64]) -> (ModelProto, DataType, usize, usize) {
    let elem = if rng.random_bool(0.5) { DataType::Float } else { DataType::Double };
    let width = rng.random_range(1..6usize);
    let mut nodes = vec![];
    let (mut cur, mut cur_elem, mut cur_width) = ("X".to_string(), elem, width);
    if rng.random_bool(0.6) {
        let n = if rng.random_bool(0.5) { 1 } else { width };
        let offset: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let scale: Vec<f64> = (0..n).map(|_| rng.random_range(0.1..3.0)).collect();
        nodes.push(node(
            "Scaler",
            "ai.onnx.ml",
            &["X"],
            "scaled",
            vec![floats("offset", &offset), floats("scale", &scale)],
        ));
        (cur, cur_elem) = ("scaled".into(), DataType::Float);
    }
    if rng.random_bool(0.3) {
        let to = if rng.random_bool(0.5) { DataType::Float } else { DataType::Double };
        nodes.push(node("Cast", "", &[&cur], "cast", vec![int("to", to as i64)]));
        (cur, cur_elem) = ("cast".into(), to);
    }
    if cur_elem == elem && cur != "X" && rng.random_bool(0.4) {
        nodes.push(node("Concat", "", &[&cur, "X"], "joined", vec![int("axis", 1)]));
        cur = "joined".into();
        cur_width += width;
    }
    let targets = rng.random_range(1..4usize);
    if cur_elem == DataType::Double || rng.random_bool(0.75) {
        nodes.push(forest(rng, cur_width, pool, targets, &cur, cur_elem == DataType::Double));
    } else {
        let coef: Vec<f64> = (0..targets * cur_width).map(|_| rng.random_range(-3.0..3.0)).collect();
        let mut attrs = vec![floats("coefficients", &coef), int("targets", targets as i64)];
        if rng.random_bool(0.7) {
            let b: Vec<f64> = (0..targets).map(|_| rng.random_range(-3.0..3.0)).collect();
            attrs.push(floats("intercepts", &b));
        }
        if targets > 1 && rng.random_bool(0.3) {
            attrs.push(string("post_transform", "LOGISTIC"));
        }
        nodes.push(node("LinearRegressor", "ai.onnx.ml", &[&cur], "Y", attrs));
    }
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![
            OperatorSetIdProto { domain: Some(String::new()), version: Some(17) },
            OperatorSetIdProto { domain: Some("ai.onnx.ml".into()), version: Some(3) },
        ],
        graph: Some(GraphProto {
            node: nodes,
            name: Some("random".into()),
            input: vec![matrix("X", elem, width as i64)],
            output: vec![matrix("Y", DataType::Float, targets as i64)],
            ..Default::default()
        }),
        ..Default::default()
    };
    (model, elem, width, targets)
}

#[test]
fn native_evaluation_gives_onnx_runtimes_answers() {
    runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Pcg64::seed_from_u64(7);
    let pool = [-3.0, -1.5, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.75, 4.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    for case in 0..400 {
        let (model, elem, width, targets) = random_model(&mut rng, &pool);
        let path = dir.path().join(format!("m{case}.onnx"));
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let native = OnnxModel::load(&path, 1).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(native.engine(), "native", "case {case}");
        let runtime = OnnxModel::load_with(&path, 1, false).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert!(runtime.engine().starts_with("onnxruntime"));
        assert_eq!(native.inputs(), runtime.inputs());
        let rows = rng.random_range(1..40);
        let x: Vec<f64> =
            (0..rows * width)
                .map(|_| {
                    if rng.random_bool(0.4) {
                        pool[rng.random_range(0..pool.len())]
                    } else {
                        rng.random_range(-4.0..4.0)
                    }
                })
                .collect();
        let a = native.run(vec![Feed::Numbers(x.clone())], rows).unwrap();
        let b = runtime.run(vec![Feed::Numbers(x.clone())], rows).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((&a[0].name, &a[0].shape), (&b[0].name, &b[0].shape), "case {case}");
        let (Values::F32(a), Values::F32(b)) = (&a[0].values, &b[0].values) else {
            panic!("case {case}: {:?} / {:?}", a[0].values.elem(), b[0].values.elem())
        };
        assert_eq!(a.len(), rows * targets);
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            let same = (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= 1e-5 * q.abs().max(1.0);
            assert!(same, "case {case} ({elem:?}, {width} wide), value {i}: native {p}, runtime {q}\nrow {:?}", {
                let r = i / targets;
                &x[r * width..(r + 1) * width]
            });
        }
    }
}

#[test]
fn other_graphs_go_to_the_runtime_and_malformed_trees_are_not_evaluated() {
    runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Pcg64::seed_from_u64(1);
    let (mut model, ..) = random_model(&mut rng, &[0.0, 1.0]);
    let graph = model.graph.as_mut().unwrap();
    // A node ONNX Runtime runs but this evaluator does not: the runtime takes the graph.
    let last = graph.node.last_mut().unwrap();
    last.output = vec!["Y0".into()];
    graph.node.push(node("Abs", "", &["Y0"], "Y", vec![]));
    let path = dir.path().join("abs.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let m = OnnxModel::load(&path, 1).unwrap();
    assert!(m.engine().contains("operator :Abs"), "{}", m.engine());

    // A tree whose node points back at its root is refused natively (and by the runtime).
    let cyclic = node(
        "TreeEnsembleRegressor",
        "ai.onnx.ml",
        &["X"],
        "Y",
        vec![
            ints("nodes_treeids", vec![0, 0, 0]),
            ints("nodes_nodeids", vec![0, 1, 2]),
            ints("nodes_featureids", vec![0, 0, 0]),
            strings("nodes_modes", ["BRANCH_LEQ", "BRANCH_LEQ", "LEAF"].map(String::from)),
            floats("nodes_values", &[0.5, 0.5, 0.0]),
            ints("nodes_truenodeids", vec![1, 0, 0]),
            ints("nodes_falsenodeids", vec![2, 2, 0]),
            ints("target_treeids", vec![0]),
            ints("target_nodeids", vec![2]),
            ints("target_ids", vec![0]),
            floats("target_weights", &[1.0]),
        ],
    );
    let graph = GraphProto {
        node: vec![cyclic],
        input: vec![matrix("X", DataType::Float, 1)],
        output: vec![matrix("Y", DataType::Float, 1)],
        ..Default::default()
    };
    assert!(build(&graph).unwrap_err().contains("reached twice"));

    // A fixed batch size (the runtime enforces it) and two outputs of one value are left to the runtime.
    let scaler = || node("Scaler", "ai.onnx.ml", &["X"], "Y", vec![floats("offset", &[0.0]), floats("scale", &[2.0])]);
    let mut graph = GraphProto {
        node: vec![scaler()],
        input: vec![matrix("X", DataType::Float, 1)],
        output: vec![matrix("Y", DataType::Float, 1)],
        ..Default::default()
    };
    assert!(build(&graph).is_ok());
    graph.input = vec![value_info("X", DataType::Float, &[Some(1), Some(1)])];
    assert!(build(&graph).unwrap_err().contains("[N, width]"));
    graph.input = vec![matrix("X", DataType::Float, 1)];
    graph.output.push(matrix("Y", DataType::Float, 1));
    assert!(build(&graph).unwrap_err().contains("two outputs"));
}

fn build(graph: &GraphProto) -> Result<super::Plan, String> {
    let spec = |v| super::super::tensor_spec(v, "value").unwrap();
    let outputs: Vec<super::OutputSpec> =
        graph.output.iter().map(|o| super::OutputSpec { spec: spec(o), class_labels: None }).collect();
    super::Plan::build(graph, &graph.input.iter().map(spec).collect::<Vec<_>>(), &outputs)
}

/// Damaged models (random bytes changed in valid ones) never panic the native path: each
/// either decodes to a graph `Plan::build` refuses, or to one it compiles and runs.
#[test]
fn damaged_models_are_refused_or_run_without_panicking() {
    let mut rng = Pcg64::seed_from_u64(3);
    let pool = [-1.0, 0.0, 0.5, 2.0, f64::NAN];
    let (mut built, mut ran) = (0, 0);
    for _ in 0..3000 {
        let (model, ..) = random_model(&mut rng, &pool);
        let mut bytes = model.encode_to_vec();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..bytes.len());
            bytes[i] = rng.random();
        }
        let Ok(model) = ModelProto::decode(&bytes[..]) else { continue };
        let Some(graph) = model.graph else { continue };
        let spec = |v: &ValueInfoProto| super::super::tensor_spec(v, "value").ok();
        let Some(inputs) = graph.input.iter().map(spec).collect::<Option<Vec<_>>>() else { continue };
        let Some(outputs) = graph.output.iter().map(spec).collect::<Option<Vec<_>>>() else { continue };
        let outputs: Vec<super::OutputSpec> =
            outputs.into_iter().map(|spec| super::OutputSpec { spec, class_labels: None }).collect();
        let Ok(plan) = super::Plan::build(&graph, &inputs, &outputs) else { continue };
        built += 1;
        let rows = rng.random_range(1..4);
        let feeds = inputs
            .iter()
            .map(|s| Feed::Numbers((0..rows * s.width()).map(|_| pool[rng.random_range(0..pool.len())]).collect()))
            .collect();
        if plan.run(feeds, rows, &inputs).is_ok() {
            ran += 1;
        }
    }
    assert!(built > 100 && ran > 100, "{built} damaged models compiled, {ran} ran: too few to have tested much");
}
