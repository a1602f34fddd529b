//! ONNX and ONNX-ML models, run by ONNX Runtime.
//!
//! The runtime is a shared library loaded when the first ONNX model is (the `ort` crate with
//! `load-dynamic`: nothing is downloaded or linked at build time). It is the
//! `libonnxruntime.so.1.*` that `pip install onnxruntime` puts in
//! `site-packages/onnxruntime/capi/`, or one from ONNX Runtime's release archives; the binary
//! says where with [`set_runtime_library`] (flag `--onnxruntime-lib`, env `ORT_DYLIB_PATH`),
//! else the system's library search path is asked for `libonnxruntime.so`.
//!
//! Before the model reaches the runtime, its graph is decoded here (prost, from
//! `proto/onnx.proto`), so that:
//! - inputs and outputs are known with their element types and shapes (initializers that old
//!   files also list as inputs are not inputs);
//! - tensors kept in files beside the model (`mlflow.onnx.save_model` writes those by
//!   default) are read into the model, from inside the model's folder only;
//! - a `ZipMap` that turns class probabilities into a list of maps (skl2onnx's default for
//!   classifiers) becomes an `Identity`: the output keeps its name and carries the
//!   probabilities as a `[N, classes]` tensor, and the class labels are kept beside it, so
//!   callers can shape answers as MLflow does without a map-typed value crossing the FFI;
//! - operators from domains ONNX Runtime does not implement, and inputs or outputs of types
//!   that cannot be fed or read, are refused by name before a session is built.
//!
//! Graphs made only of the operators converters emit for numeric regressors (`Scaler`,
//! `LinearRegressor`, `TreeEnsembleRegressor`, `Cast`, `Identity`, `Concat`) are evaluated
//! by [`native`] instead, without the runtime (and without needing its library): for them
//! the runtime's per-call overhead is most of the time. Everything else goes to the runtime.
//!
//! Sessions are single-threaded (one request uses one core; requests run in parallel) and
//! pooled, one per core, because a session runs one call at a time.

mod native;

use crate::proto::{
    tensor_proto, tensor_shape_proto, type_proto, GraphProto, ModelProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::{ElemType, Feed, FormatError, Result, Tensor, TensorSpec, Values};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use prost::Message;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The library name asked for when no path was set.
pub const DEFAULT_LIBRARY: &str = "libonnxruntime.so";

static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();

/// Says where ONNX Runtime's shared library is. Call before the first ONNX model is loaded;
/// returns false if a path was already set.
pub fn set_runtime_library(path: PathBuf) -> bool {
    LIBRARY.set(path).is_ok()
}

/// Loads the runtime library once; the error says how to get it.
fn environment() -> Result<&'static ort::environment::Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        let path = LIBRARY.get().cloned().unwrap_or_else(|| PathBuf::from(DEFAULT_LIBRARY));
        let how = "ONNX models are run by ONNX Runtime's shared library: `pip install onnxruntime` ships it as \
                   site-packages/onnxruntime/capi/libonnxruntime.so.1.*; give its path with --onnxruntime-lib or \
                   ORT_DYLIB_PATH";
        let builder = ort::init_from(&path).map_err(|e| format!("{how} ({e})"))?;
        builder.with_name("factory").build().map_err(|e| format!("starting ONNX Runtime from {}: {e}", path.display()))
    });
    env.as_ref().map_err(|e| FormatError::Unsupported(e.clone()))
}

/// Operator domains ONNX Runtime's CPU build implements.
const KNOWN_DOMAINS: [&str; 4] = ["", "ai.onnx", "ai.onnx.ml", "com.microsoft"];

/// An output as the caller sees it: the tensor, and for an unwrapped `ZipMap` the class
/// label of each probability column.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub spec: TensorSpec,
    pub class_labels: Option<Values>,
}

/// What evaluates a loaded model.
enum Engine {
    Native(native::Plan),
    /// ONNX Runtime sessions, and why the graph is not evaluated natively.
    Runtime {
        sessions: Vec<Mutex<Session>>,
        next: AtomicUsize,
        why: String,
    },
}

/// A loaded ONNX model.
pub struct OnnxModel {
    inputs: Vec<TensorSpec>,
    outputs: Vec<OutputSpec>,
    /// `domain:version` of every imported operator set, for metadata.
    pub opsets: Vec<String>,
    pub producer: String,
    engine: Engine,
}

/// An attribute of a node by name.
fn attr_by_name<'a>(
    attributes: &'a [crate::proto::AttributeProto],
    name: &str,
) -> Option<&'a crate::proto::AttributeProto> {
    attributes.iter().find(|a| a.name() == name)
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

fn invalid(path: &Path, msg: impl std::fmt::Display) -> FormatError {
    FormatError::Invalid(format!("{}: {msg}", path.display()))
}

impl OnnxModel {
    /// Reads, checks and prepares the model at `path` (external data is looked up beside it)
    /// and builds `sessions` runtime sessions (at least one).
    pub fn load(path: &Path, sessions: usize) -> Result<OnnxModel> {
        Self::load_with(path, sessions, true)
    }

    /// [`OnnxModel::load`], evaluating natively only when `native` (tests compare both).
    pub fn load_with(path: &Path, sessions: usize, native: bool) -> Result<OnnxModel> {
        let bytes = std::fs::read(path).map_err(|source| FormatError::Io { path: path.into(), source })?;
        let mut model =
            ModelProto::decode(&bytes[..]).map_err(|e| invalid(path, format!("not an ONNX model ({e})")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let graph = model.graph.as_mut().ok_or_else(|| invalid(path, "the ONNX model has no graph"))?;
        inline_external_data(graph, dir, &mut HashMap::new())?;
        check_domains(graph)?;
        let labels = unwrap_zipmaps(graph)?;
        if labels.values().next().is_some() && !model.opset_import.iter().any(|o| o.domain().is_empty()) {
            model.opset_import.push(OperatorSetIdProto { domain: Some(String::new()), version: Some(13) });
        }
        let graph = model.graph.as_ref().expect("checked above");
        let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name()))
            .map(|v| tensor_spec(v, "input"))
            .collect::<Result<Vec<_>>>()?;
        if inputs.is_empty() {
            return Err(invalid(path, "the ONNX graph has no inputs"));
        }
        let outputs = graph
            .output
            .iter()
            .map(|v| {
                tensor_spec(v, "output").map(|spec| OutputSpec { class_labels: labels.get(&spec.name).cloned(), spec })
            })
            .collect::<Result<Vec<_>>>()?;
        let opsets = model.opset_import.iter().map(|o| format!("{}:{}", o.domain(), o.version())).collect();
        let producer = format!("{} {}", model.producer_name(), model.producer_version()).trim().to_string();
        let why = match native::Plan::build(graph, &inputs, &outputs) {
            Ok(plan) if native => {
                return Ok(OnnxModel { inputs, outputs, opsets, producer, engine: Engine::Native(plan) });
            }
            Ok(_) => "native evaluation was turned off".to_string(),
            Err(why) => format!("{why}: not evaluated natively"),
        };
        let prepared = model.encode_to_vec();
        let env = environment()?;
        let sessions = (0..sessions.max(1))
            .map(|_| {
                let fail =
                    |e: String| FormatError::Unsupported(format!("ONNX Runtime cannot load {}: {e}", path.display()));
                Session::builder(env)
                    .map_err(|e| fail(e.to_string()))?
                    .with_intra_threads(1)
                    .map_err(|e| fail(e.to_string()))?
                    .with_inter_threads(1)
                    .map_err(|e| fail(e.to_string()))?
                    .with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(|e| fail(e.to_string()))?
                    .commit_from_memory(&prepared)
                    .map(Mutex::new)
                    .map_err(|e| fail(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let engine = Engine::Runtime { sessions, next: AtomicUsize::new(0), why };
        Ok(OnnxModel { inputs, outputs, opsets, producer, engine })
    }

    /// What runs the model: `native` (this crate's evaluator) or `onnxruntime (<why not
    /// native>)`.
    pub fn engine(&self) -> String {
        match &self.engine {
            Engine::Native(_) => "native".into(),
            Engine::Runtime { why, .. } => format!("onnxruntime ({why})"),
        }
    }

    pub fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[OutputSpec] {
        &self.outputs
    }

    /// A free session, or the next one in turn when all are busy.
    fn session<'a>(sessions: &'a [Mutex<Session>], next: &AtomicUsize) -> MutexGuard<'a, Session> {
        let n = sessions.len();
        let start = next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Ok(s) = sessions[(start + k) % n].try_lock() {
                return s;
            }
        }
        sessions[start % n].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the model on `rows` rows: one feed per input, in [`OnnxModel::inputs`] order,
    /// holding `rows × width` values. Returns every output, in declaration order.
    pub fn run(&self, feeds: Vec<Feed>, rows: usize) -> Result<Vec<Tensor>> {
        if feeds.len() != self.inputs.len() {
            return Err(FormatError::Input(format!(
                "{} inputs given, the model takes {}",
                feeds.len(),
                self.inputs.len()
            )));
        }
        let (sessions, next) = match &self.engine {
            Engine::Native(plan) => return plan.run(feeds, rows, &self.inputs),
            Engine::Runtime { sessions, next, .. } => (sessions, next),
        };
        let values = self
            .inputs
            .iter()
            .zip(feeds)
            .map(|(spec, feed)| Ok((spec.name.clone(), ort_value(spec, feed, rows)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut session = Self::session(sessions, next);
        let out = session.run(values).map_err(|e| FormatError::Run(format!("ONNX Runtime: {e}")))?;
        self.outputs
            .iter()
            .map(|o| {
                let name = &o.spec.name;
                let v = out.get(name.as_str()).ok_or_else(|| FormatError::Run(format!("no output '{name}'")))?;
                read_output(name, o.spec.elem, v)
            })
            .collect()
    }
}

/// The shape fed for `rows` rows of `len` values: the declared shape with the first
/// dimension set to `rows` and one unknown later dimension (if any) inferred.
fn feed_shape(spec: &TensorSpec, rows: usize, len: usize) -> Result<Vec<i64>> {
    let width = len.checked_div(rows).unwrap_or(0);
    if rows == 0 || len != rows * width {
        return Err(FormatError::Input(format!("input '{}': {len} values for {rows} rows", spec.name)));
    }
    if spec.shape.len() <= 1 {
        if width != 1 {
            return Err(FormatError::Input(format!("input '{}' takes one value per row, got {width}", spec.name)));
        }
        return Ok(vec![rows as i64]);
    }
    let fixed: usize = spec.shape[1..].iter().filter(|&&d| d > 0).map(|&d| d as usize).product();
    let mut inferred = false;
    let mut shape = vec![rows as i64];
    for &d in &spec.shape[1..] {
        if d > 0 {
            shape.push(d);
        } else if !inferred {
            inferred = true;
            shape.push((width / fixed.max(1)) as i64);
        } else {
            shape.push(1);
        }
    }
    let total: i64 = shape[1..].iter().product();
    if total as usize != width {
        return Err(FormatError::Input(format!(
            "input '{}' takes {} values per row (shape {:?}), got {width}",
            spec.name,
            spec.width(),
            spec.shape
        )));
    }
    Ok(shape)
}

/// A feed as an ONNX Runtime value of the input's type; numbers are cast (f64 → f32 as
/// `mlflow.pyfunc` does; integers must be whole, and missing values cannot be integers).
fn ort_value(spec: &TensorSpec, feed: Feed, rows: usize) -> Result<ort::value::DynValue> {
    let name = &spec.name;
    let bad = |msg: String| FormatError::Input(format!("input '{name}': {msg}"));
    let ort_err = |e: ort::Error| FormatError::Run(format!("input '{name}': {e}"));
    let len = match &feed {
        Feed::Numbers(v) => v.len(),
        Feed::Text(v) => v.len(),
    };
    let shape = feed_shape(spec, rows, len)?;
    let width = len / rows;
    let integer = |v: &[f64]| -> Result<Vec<i64>> {
        v.iter()
            .enumerate()
            .map(|(i, &x)| {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
                    Ok(x as i64)
                } else {
                    Err(bad(format!(
                        "row {}: {x} is not a whole number (the model takes {:?})",
                        i / width + 1,
                        spec.elem
                    )))
                }
            })
            .collect()
    };
    Ok(match (spec.elem, feed) {
        (ElemType::F32, Feed::Numbers(v)) => {
            ort::value::Tensor::from_array((shape, v.into_iter().map(|x| x as f32).collect::<Vec<f32>>()))
                .map_err(ort_err)?
                .into_dyn()
        }
        (ElemType::F64, Feed::Numbers(v)) => ort::value::Tensor::from_array((shape, v)).map_err(ort_err)?.into_dyn(),
        (ElemType::I64, Feed::Numbers(v)) => {
            ort::value::Tensor::from_array((shape, integer(&v)?)).map_err(ort_err)?.into_dyn()
        }
        (ElemType::I32, Feed::Numbers(v)) => {
            let v = integer(&v)?
                .into_iter()
                .map(|x| i32::try_from(x).map_err(|_| bad(format!("{x} does not fit INT32"))))
                .collect::<Result<Vec<i32>>>()?;
            ort::value::Tensor::from_array((shape, v)).map_err(ort_err)?.into_dyn()
        }
        (ElemType::Bool, Feed::Numbers(v)) => {
            ort::value::Tensor::from_array((shape, v.into_iter().map(|x| x != 0.0).collect::<Vec<bool>>()))
                .map_err(ort_err)?
                .into_dyn()
        }
        (ElemType::Str, Feed::Text(v)) => {
            ort::value::Tensor::from_string_array((shape, &v[..])).map_err(ort_err)?.into_dyn()
        }
        (ElemType::Str, Feed::Numbers(_)) => return Err(bad("the model takes text (a string tensor)".into())),
        (_, Feed::Text(_)) => return Err(bad(format!("the model takes numbers ({:?})", spec.elem))),
    })
}

fn read_output(name: &str, elem: ElemType, v: &ort::value::DynValue) -> Result<Tensor> {
    let fail = |e: ort::Error| FormatError::Run(format!("reading output '{name}': {e}"));
    fn dims(s: &ort::value::Shape) -> Vec<usize> {
        s.iter().map(|&d| d.max(0) as usize).collect()
    }
    let (shape, values) = match elem {
        ElemType::F32 => {
            let (s, d) = v.try_extract_tensor::<f32>().map_err(fail)?;
            (dims(s), Values::F32(d.to_vec()))
        }
        ElemType::F64 => {
            let (s, d) = v.try_extract_tensor::<f64>().map_err(fail)?;
            (dims(s), Values::F64(d.to_vec()))
        }
        ElemType::I64 => {
            let (s, d) = v.try_extract_tensor::<i64>().map_err(fail)?;
            (dims(s), Values::I64(d.to_vec()))
        }
        ElemType::I32 => {
            let (s, d) = v.try_extract_tensor::<i32>().map_err(fail)?;
            (dims(s), Values::I64(d.iter().map(|&x| i64::from(x)).collect()))
        }
        ElemType::Bool => {
            let (s, d) = v.try_extract_tensor::<bool>().map_err(fail)?;
            (dims(s), Values::Bool(d.to_vec()))
        }
        ElemType::Str => {
            let (s, d) = v.try_extract_strings().map_err(fail)?;
            (dims(s), Values::Str(d))
        }
    };
    Ok(Tensor { name: name.to_string(), shape, values })
}

/// ONNX's element type code as ours.
fn elem_type(code: i32) -> Option<ElemType> {
    use tensor_proto::DataType as D;
    Some(match D::try_from(code).ok()? {
        D::Float => ElemType::F32,
        D::Double => ElemType::F64,
        D::Int64 => ElemType::I64,
        D::Int32 => ElemType::I32,
        D::Bool => ElemType::Bool,
        D::String => ElemType::Str,
        _ => return None,
    })
}

fn type_name(t: Option<&TypeProto>) -> String {
    match t.and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => format!(
            "tensor({})",
            tensor_proto::DataType::try_from(t.elem_type())
                .map_or_else(|_| t.elem_type().to_string(), |d| { d.as_str_name().to_lowercase() })
        ),
        Some(type_proto::Value::SequenceType(s)) => format!("seq({})", type_name(s.elem_type.as_deref())),
        Some(type_proto::Value::MapType(m)) => format!("map(…, {})", type_name(m.value_type.as_deref())),
        Some(type_proto::Value::OptionalType(_)) => "optional".into(),
        Some(type_proto::Value::SparseTensorType(_)) => "sparse_tensor".into(),
        Some(type_proto::Value::OpaqueType(_)) => "opaque".into(),
        None => "no type".into(),
    }
}

/// A graph input or output as a [`TensorSpec`]; other types are refused by name.
fn tensor_spec(v: &ValueInfoProto, what: &str) -> Result<TensorSpec> {
    let unsupported = || {
        FormatError::Unsupported(format!(
            "{what} '{}' is {}; factory feeds and reads tensors of float, double, int64, int32, bool or string",
            v.name(),
            type_name(v.r#type.as_ref())
        ))
    };
    let Some(type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(unsupported());
    };
    let elem = elem_type(t.elem_type()).ok_or_else(unsupported)?;
    let shape = match &t.shape {
        Some(s) => s
            .dim
            .iter()
            .map(|d| match d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(n)) if n > 0 => n,
                _ => -1,
            })
            .collect(),
        None => vec![-1, -1],
    };
    Ok(TensorSpec { name: v.name().to_string(), elem, shape })
}

/// Refuses operators from domains the runtime has no kernels for, naming the first one.
fn check_domains(graph: &GraphProto) -> Result<()> {
    for node in &graph.node {
        if !KNOWN_DOMAINS.contains(&node.domain()) {
            return Err(FormatError::Unsupported(format!(
                "operator '{}' of domain '{}' (node '{}') is not an ONNX or ONNX-ML operator; ONNX Runtime has no \
                 implementation of it",
                node.op_type(),
                node.domain(),
                node.name()
            )));
        }
        for a in &node.attribute {
            for g in a.g.iter().chain(&a.graphs) {
                check_domains(g)?;
            }
        }
    }
    Ok(())
}

/// Replaces every `ZipMap` that produces a graph output by an `Identity`, so the output is
/// the probability tensor; returns each such output's class labels.
fn unwrap_zipmaps(graph: &mut GraphProto) -> Result<HashMap<String, Values>> {
    let mut labels = HashMap::new();
    for node in &mut graph.node {
        if node.op_type() != "ZipMap" || node.domain() != "ai.onnx.ml" {
            continue;
        }
        let Some(out) = node.output.first().cloned() else { continue };
        let Some(graph_output) = graph.output.iter_mut().find(|o| o.name() == out) else { continue };
        let attr = |n: &str| attr_by_name(&node.attribute, n);
        let classes = match (attr("classlabels_int64s"), attr("classlabels_strings")) {
            (Some(a), _) if !a.ints.is_empty() => Values::I64(a.ints.clone()),
            (_, Some(a)) => Values::Str(a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
            _ => {
                return Err(FormatError::Invalid(format!("ZipMap node '{}' has no class labels", node.name())));
            }
        };
        let k = classes.len() as i64;
        node.op_type = Some("Identity".into());
        node.domain = Some(String::new());
        node.attribute.clear();
        let dim = |value| tensor_shape_proto::Dimension { value: Some(value), denotation: None };
        graph_output.r#type = Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(tensor_proto::DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(tensor_shape_proto::dimension::Value::DimParam("N".into())),
                        dim(tensor_shape_proto::dimension::Value::DimValue(k)),
                    ],
                }),
            })),
            denotation: None,
        });
        labels.insert(out, classes);
    }
    Ok(labels)
}

/// Reads tensors stored outside the model file into it. Locations must stay inside `dir`.
fn inline_external_data(graph: &mut GraphProto, dir: &Path, files: &mut HashMap<String, Vec<u8>>) -> Result<()> {
    for t in &mut graph.initializer {
        inline_tensor(t, dir, files)?;
    }
    for s in &mut graph.sparse_initializer {
        for t in s.values.iter_mut().chain(s.indices.iter_mut()) {
            inline_tensor(t, dir, files)?;
        }
    }
    for node in &mut graph.node {
        for a in &mut node.attribute {
            for t in a.t.iter_mut().chain(a.tensors.iter_mut()) {
                inline_tensor(t, dir, files)?;
            }
            for g in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                inline_external_data(g, dir, files)?;
            }
        }
    }
    Ok(())
}

fn inline_tensor(t: &mut TensorProto, dir: &Path, files: &mut HashMap<String, Vec<u8>>) -> Result<()> {
    if t.data_location() != tensor_proto::DataLocation::External {
        return Ok(());
    }
    let name = t.name().to_string();
    let bad = |msg: String| FormatError::Invalid(format!("tensor '{name}': external data {msg}"));
    let (mut location, mut offset, mut length) = (None, 0usize, None);
    for e in &t.external_data {
        match e.key() {
            "location" => location = Some(e.value().to_string()),
            "offset" => offset = e.value().parse().map_err(|_| bad(format!("offset '{}'", e.value())))?,
            "length" => length = Some(e.value().parse::<usize>().map_err(|_| bad(format!("length '{}'", e.value())))?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| bad("has no location".into()))?;
    let rel = Path::new(&location);
    if location.contains('\\') || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad(format!("location '{location}' is not a plain file name inside the model folder")));
    }
    if !files.contains_key(&location) {
        let path = dir.join(rel);
        let bytes = std::fs::read(&path).map_err(|source| FormatError::Io { path, source })?;
        files.insert(location.clone(), bytes);
    }
    let data = &files[&location];
    let end = match length {
        Some(n) => offset.checked_add(n),
        None => Some(data.len()),
    };
    let slice = end
        .filter(|&e| offset <= e && e <= data.len())
        .map(|e| &data[offset..e])
        .ok_or_else(|| bad(format!("range {offset}+{length:?} is outside '{location}' ({} bytes)", data.len())))?;
    t.raw_data = Some(slice.to_vec());
    t.external_data.clear();
    t.data_location = None;
    Ok(())
}
