//! Model formats users already have, loaded and run on plain tensors, and the factory model
//! written out as ONNX.
//!
//! - [`onnx`]: ONNX and ONNX-ML models (skl2onnx, onnxmltools, torch.onnx exports) run by
//!   ONNX Runtime, loaded at run time from its shared library (the one the `onnxruntime`
//!   Python wheel ships); the graph is read first so that inputs, outputs and class labels
//!   are known, external data is inlined and `ZipMap` is unwrapped to a plain tensor.
//!   Graphs of numeric regressors (`Scaler`, `LinearRegressor`, `TreeEnsembleRegressor`,
//!   `Cast`, `Identity`, `Concat`) are evaluated natively instead, to ONNX Runtime's numbers.
//! - [`lightgbm`]: LightGBM's text model format, evaluated here (no LightGBM library).
//! - [`xgboost`]: XGBoost's JSON and UBJSON model formats, evaluated here.
//! - [`export`]: a factory model (`learn-model/1` JSON) as an ONNX-ML graph.
//!
//! Why these engines (measured, see ARCHITECTURE.md): ONNX Runtime runs every operator the
//! converters emit and is what `mlflow.pyfunc` itself runs, so answers agree to the bit; for
//! the few operators of numeric regressors its per-call overhead is most of a one-row call,
//! so those graphs are evaluated here (answers equal to the runtime's to `f32` rounding);
//! the two tree formats are simple enough to evaluate directly, which keeps their answers
//! equal to the libraries' own `predict` without linking either library.
//!
//! Architecture Invariant: no HTTP, no MLflow: callers (the `package` crate) read `MLmodel`
//! and turn frames into [`Tensor`]s; this crate only knows model files and tensors.
//! Architecture Invariant: a model that cannot run is refused when it is loaded, with the
//! operator, input or output named — never at its first request.

pub mod export;
pub mod lightgbm;
pub mod onnx;
mod proto;
mod ubjson;
pub mod xgboost;

/// Why a model file could not be read, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// The file is not a model of the expected format, or uses a part of it this reader
    /// does not know; the message names the part.
    #[error("{0}")]
    Invalid(String),
    /// The model is valid but needs something that is not here (an operator, a data type,
    /// the ONNX Runtime library); the message names it.
    #[error("{0}")]
    Unsupported(String),
    /// Input that does not fit the model (wrong width, a non-integer for an integer input).
    #[error("{0}")]
    Input(String),
    /// The runtime failed on input that passed the checks.
    #[error("{0}")]
    Run(String),
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Element types of model inputs and outputs (ONNX's names; the V2 protocol's in
/// [`ElemType::v2_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    F32,
    F64,
    I64,
    I32,
    Bool,
    Str,
}

impl ElemType {
    /// The Open Inference Protocol datatype name.
    pub fn v2_name(self) -> &'static str {
        match self {
            ElemType::F32 => "FP32",
            ElemType::F64 => "FP64",
            ElemType::I64 => "INT64",
            ElemType::I32 => "INT32",
            ElemType::Bool => "BOOL",
            ElemType::Str => "BYTES",
        }
    }

    /// Numeric (fed from numbers) rather than text.
    pub fn is_numeric(self) -> bool {
        self != ElemType::Str
    }
}

/// A model input or output as the model declares it; `-1` marks a dimension of any size.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub elem: ElemType,
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// Values per row: the product of the fixed dimensions after the first (1 for `[N]`).
    pub fn width(&self) -> usize {
        self.shape.iter().skip(1).map(|&d| d.max(1) as usize).product()
    }
}

/// Tensor values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elem(&self) -> ElemType {
        match self {
            Values::F32(_) => ElemType::F32,
            Values::F64(_) => ElemType::F64,
            Values::I64(_) => ElemType::I64,
            Values::Bool(_) => ElemType::Bool,
            Values::Str(_) => ElemType::Str,
        }
    }

    /// Element `i` as a number (text is `None`).
    pub fn number(&self, i: usize) -> Option<f64> {
        match self {
            Values::F32(v) => Some(f64::from(v[i])),
            Values::F64(v) => Some(v[i]),
            Values::I64(v) => Some(v[i] as f64),
            Values::Bool(v) => Some(if v[i] { 1.0 } else { 0.0 }),
            Values::Str(_) => None,
        }
    }

    /// Elements `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Values {
        match self {
            Values::F32(v) => Values::F32(v[start..end].to_vec()),
            Values::F64(v) => Values::F64(v[start..end].to_vec()),
            Values::I64(v) => Values::I64(v[start..end].to_vec()),
            Values::Bool(v) => Values::Bool(v[start..end].to_vec()),
            Values::Str(v) => Values::Str(v[start..end].to_vec()),
        }
    }
}

/// A named tensor; the first dimension is the row.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Values,
}

/// What feeds a model input: numbers (cast to the input's type by the engine, NaN =
/// missing) or text, `rows × width` values row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    Numbers(Vec<f64>),
    Text(Vec<String>),
}
