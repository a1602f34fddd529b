//! The model inside a package, whatever its flavor, behind one interface: the columns a
//! request gives ([`Model::schema`], a `learn::Schema`, so every input format — CSV, MLflow
//! payloads, V2 tensors — is read and checked the same way), the outputs it answers
//! ([`Model::outputs`]) and [`Model::predict`] from a frame to named [`Predictions`].
//!
//! Flavors, in the order they are tried (the first one present in `MLmodel` is used):
//!
//! | flavor | file | engine | columns |
//! |---|---|---|---|
//! | `factory` | `model.bin` | `learn` | the model's schema |
//! | `onnx` | `data` (`model.onnx`) | ONNX Runtime (`formats::onnx`) | one per ONNX input of width 1, or the signature's column names spread over a wider input |
//! | `lightgbm` | `data` (`model.lgb`, text) | `formats::lightgbm` | the signature's names, else the booster's |
//! | `xgboost` | `data` (`model.ubj` / `.json`) | `formats::xgboost` | the signature's names, else the booster's |

use crate::{PackageError, Result};
use formats::{ElemType, Feed, TensorSpec, Values};
use learn::{Column, ColumnData, ColumnKind, Field, Frame, Schema};
use serde_json::Value;
use std::path::Path;

/// Which flavor a package was loaded through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Factory,
    Onnx,
    LightGbm,
    XgBoost,
}

impl Flavor {
    /// The flavor's name in `MLmodel`.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Factory => "factory",
            Flavor::Onnx => "onnx",
            Flavor::LightGbm => "lightgbm",
            Flavor::XgBoost => "xgboost",
        }
    }
}

/// How `mlflow models serve` shapes this flavor's answer to `/invocations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The one output as a (nested) list: numpy arrays (`lightgbm`, `xgboost`) and factory
    /// models.
    Array,
    /// One record per row with a key per output: the DataFrame `mlflow.onnx`'s pyfunc returns.
    Records,
}

/// An output as V2 metadata lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputInfo {
    pub name: String,
    pub elem: ElemType,
    /// `-1` = any size (the first dimension is the row).
    pub shape: Vec<i64>,
}

/// What a model answered for a batch: named outputs, first dimension = row.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub rows: usize,
    pub outputs: Vec<formats::Tensor>,
    /// Per output: the class label of each column (an unwrapped ONNX `ZipMap`).
    pub class_labels: Vec<Option<Values>>,
    pub layout: Layout,
}

impl Predictions {
    fn single(name: &str, shape: Vec<usize>, values: Values, rows: usize, layout: Layout) -> Predictions {
        Predictions {
            rows,
            outputs: vec![formats::Tensor { name: name.into(), shape, values }],
            class_labels: vec![None],
            layout,
        }
    }

    /// Values per row of output `t` (1 for `[N]`, `k` for `[N, k]`).
    pub fn width(&self, t: &formats::Tensor) -> usize {
        t.values.len().checked_div(self.rows).unwrap_or(0)
    }

    /// One number per row, for the request log and for scoring a holdout: the first
    /// output's first column, or for a probability matrix the last class's column (the
    /// positive class of a binary classifier). Text outputs give NaN.
    pub fn scores(&self) -> Vec<f64> {
        let (t, labels) = self
            .outputs
            .iter()
            .zip(&self.class_labels)
            .find(|(_, l)| l.is_some())
            .map(|(t, l)| (t, l.is_some()))
            .unwrap_or((&self.outputs[0], false));
        let width = self.width(t);
        let col = if labels { width.saturating_sub(1) } else { 0 };
        (0..self.rows).map(|r| t.values.number(r * width + col).unwrap_or(f64::NAN)).collect()
    }

    /// False when a number in any output is NaN or infinite.
    pub fn all_finite(&self) -> bool {
        self.outputs.iter().all(|t| (0..t.values.len()).all(|i| t.values.number(i).is_none_or(f64::is_finite)))
    }

    /// Rows `start..end` (for splitting a batched call).
    pub fn slice_rows(&self, start: usize, end: usize) -> Predictions {
        let outputs = self
            .outputs
            .iter()
            .map(|t| {
                let w = self.width(t);
                let mut shape = t.shape.clone();
                if let Some(first) = shape.first_mut() {
                    *first = end - start;
                }
                formats::Tensor { name: t.name.clone(), shape, values: t.values.slice(start * w, end * w) }
            })
            .collect();
        Predictions { rows: end - start, outputs, class_labels: self.class_labels.clone(), layout: self.layout }
    }
}

enum Engine {
    Factory(learn::Model),
    /// Per ONNX input, the schema columns that fill it (row-major).
    Onnx {
        model: formats::onnx::OnnxModel,
        feeds: Vec<Vec<usize>>,
    },
    LightGbm(formats::lightgbm::Booster),
    /// `labels`: the pyfunc is a scikit-learn `XGBClassifier`, whose `predict` gives labels.
    XgBoost {
        booster: formats::xgboost::Booster,
        labels: bool,
    },
}

/// A loaded model of any supported flavor.
pub struct Model {
    flavor: Flavor,
    schema: Schema,
    outputs: Vec<OutputInfo>,
    engine: Engine,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("flavor", &self.flavor).field("schema", &self.schema).finish_non_exhaustive()
    }
}

/// Column names from an MLflow signature's `inputs` when they are column specs.
fn signature_columns(mlmodel: &Value) -> Option<Vec<(String, String)>> {
    let text = mlmodel["signature"]["inputs"].as_str()?;
    let specs: Vec<Value> = serde_json::from_str(text).ok()?;
    specs
        .iter()
        .map(|s| {
            let ty = s["type"].as_str().filter(|t| *t != "tensor")?;
            Some((s["name"].as_str()?.to_string(), ty.to_string()))
        })
        .collect()
}

/// Column names from the input example MLflow saved (`{"columns": [...], "data": ...}`):
/// `mlflow.onnx.log_model` records no signature, but keeps the example's columns.
fn example_columns(dir: &Path, mlmodel: &Value) -> Option<Vec<(String, String)>> {
    let file = mlmodel["saved_input_example_info"]["artifact_path"].as_str()?;
    if file.contains('/') || file.contains('\\') || file.contains("..") {
        return None;
    }
    let example: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).ok()?).ok()?;
    let columns = example.get("columns").or_else(|| example["dataframe_split"].get("columns"))?.as_array()?;
    columns.iter().map(|c| Some((c.as_str()?.to_string(), String::new()))).collect()
}

fn invalid(path: &Path, message: String) -> PackageError {
    PackageError::Invalid { path: path.to_path_buf(), message }
}

fn format_error(path: &Path, e: formats::FormatError) -> PackageError {
    invalid(path, e.to_string())
}

impl Model {
    /// A factory model.
    pub fn from_factory(model: learn::Model) -> Model {
        let name = match model.task() {
            learn::Task::Regression => "prediction",
            learn::Task::BinaryClassification => "probability",
        };
        Model {
            flavor: Flavor::Factory,
            schema: model.schema().clone(),
            outputs: vec![OutputInfo { name: name.into(), elem: ElemType::F64, shape: vec![-1] }],
            engine: Engine::Factory(model),
        }
    }

    /// Loads the model file of `flavor` from `dir`, as its `MLmodel` describes it.
    pub(crate) fn load_flavor(dir: &Path, flavor: Flavor, mlmodel: &Value) -> Result<Model> {
        let conf = &mlmodel["flavors"][flavor.name()];
        let data = conf["data"].as_str().ok_or_else(|| {
            invalid(&dir.join(crate::MLMODEL_FILE), format!("the '{}' flavor names no 'data' file", flavor.name()))
        })?;
        if data.contains("..") || data.starts_with('/') || data.contains('\\') {
            return Err(invalid(&dir.join(crate::MLMODEL_FILE), format!("unsafe data path '{data}'")));
        }
        let path = dir.join(data);
        let columns = signature_columns(mlmodel).or_else(|| example_columns(dir, mlmodel));
        match flavor {
            Flavor::Factory => unreachable!("factory packages are loaded by package::load"),
            Flavor::Onnx => {
                let sessions = std::thread::available_parallelism().map_or(2, |n| n.get());
                let model = formats::onnx::OnnxModel::load(&path, sessions).map_err(|e| format_error(&path, e))?;
                let (schema, feeds) = onnx_columns(model.inputs(), columns.as_deref());
                let outputs = model
                    .outputs()
                    .iter()
                    .map(|o| OutputInfo { name: o.spec.name.clone(), elem: o.spec.elem, shape: o.spec.shape.clone() })
                    .collect();
                Ok(Model { flavor, schema, outputs, engine: Engine::Onnx { model, feeds } })
            }
            Flavor::LightGbm => {
                if conf["model_class"].as_str().is_some_and(|c| c != "lightgbm.basic.Booster") {
                    return Err(invalid(
                        &path,
                        format!(
                            "this {} was saved as a pickle, which factory does not load; log its booster instead: \
                             mlflow.lightgbm.log_model(model.booster_, ...)",
                            conf["model_class"].as_str().unwrap_or_default()
                        ),
                    ));
                }
                let text = std::fs::read_to_string(&path).map_err(crate::io(&path))?;
                let booster = formats::lightgbm::Booster::parse(&text).map_err(|e| format_error(&path, e))?;
                let schema = numeric_schema(&booster.feature_names, columns.as_deref());
                let k = booster.num_class as i64;
                let shape = if k > 1 { vec![-1, k] } else { vec![-1] };
                let outputs = vec![OutputInfo { name: "prediction".into(), elem: ElemType::F64, shape }];
                Ok(Model { flavor, schema, outputs, engine: Engine::LightGbm(booster) })
            }
            Flavor::XgBoost => {
                let bytes = std::fs::read(&path).map_err(crate::io(&path))?;
                let booster = formats::xgboost::Booster::parse(&bytes).map_err(|e| format_error(&path, e))?;
                let names = if booster.feature_names.len() == booster.num_feature {
                    booster.feature_names.clone()
                } else {
                    (0..booster.num_feature).map(|i| format!("f{i}")).collect()
                };
                let schema = numeric_schema(&names, columns.as_deref());
                let labels = conf["model_class"].as_str().is_some_and(|c| c.ends_with("XGBClassifier"));
                let k = booster.outputs_per_row() as i64;
                let outputs = vec![if labels {
                    OutputInfo { name: "label".into(), elem: ElemType::I64, shape: vec![-1] }
                } else {
                    OutputInfo {
                        name: "prediction".into(),
                        elem: ElemType::F32,
                        shape: if k > 1 { vec![-1, k] } else { vec![-1] },
                    }
                }];
                Ok(Model { flavor, schema, outputs, engine: Engine::XgBoost { booster, labels } })
            }
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The columns a request gives.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The outputs, in the order predictions carry them.
    pub fn outputs(&self) -> &[OutputInfo] {
        &self.outputs
    }

    /// The ONNX inputs as the model declares them (V2 metadata lists them); `None` for the
    /// other flavors, whose inputs are the schema's columns.
    pub fn onnx_inputs(&self) -> Option<&[TensorSpec]> {
        match &self.engine {
            Engine::Onnx { model, .. } => Some(model.inputs()),
            _ => None,
        }
    }

    /// `gbm` / `linear` for factory models, else the flavor name.
    pub fn kind(&self) -> &'static str {
        match &self.engine {
            Engine::Factory(m) => m.kind(),
            _ => self.flavor.name(),
        }
    }

    /// What evaluates the model: `native` for every flavor but ONNX graphs that only ONNX
    /// Runtime runs (`onnxruntime (why)`).
    pub fn engine(&self) -> String {
        match &self.engine {
            Engine::Onnx { model, .. } => model.engine(),
            _ => "native".into(),
        }
    }

    /// The factory model, for factory packages.
    pub fn factory(&self) -> Option<&learn::Model> {
        match &self.engine {
            Engine::Factory(m) => Some(m),
            _ => None,
        }
    }

    /// One row to warm a model up with when the package has no input example: every value
    /// missing for factory models (they handle that natively), zeros and empty text for the
    /// others (a scaler or an integer input would turn a missing value into NaN or an error).
    pub fn missing_row(&self) -> Frame {
        let number = if self.flavor == Flavor::Factory { f64::NAN } else { 0.0 };
        let text = if self.flavor == Flavor::Factory { None } else { Some(String::new()) };
        let columns = self
            .schema
            .fields
            .iter()
            .map(|f| match f.kind {
                ColumnKind::Numeric => Column::numeric(f.name.clone(), vec![number]),
                kind @ (ColumnKind::Categorical | ColumnKind::Text) => {
                    Column { name: f.name.clone(), data: ColumnData::from_strings(kind, vec![text.clone()]) }
                }
            })
            .collect();
        Frame::from_columns(columns).expect("schema names are unique")
    }

    /// Scores the rows of `frame`, which has the schema's columns.
    pub fn predict(&self, frame: &Frame) -> Result<Predictions> {
        let rows = frame.n_rows();
        let fail = |e: formats::FormatError| match e {
            formats::FormatError::Input(m) => PackageError::Input(m),
            other => PackageError::Predict(other.to_string()),
        };
        let columns =
            frame.columns_for(&self.schema).map_err(|m| PackageError::Input(format!("missing column '{}'", m[0])))?;
        match &self.engine {
            Engine::Factory(m) => {
                let p = m.predict(frame)?;
                Ok(Predictions::single(&self.outputs[0].name, vec![rows], Values::F64(p), rows, Layout::Array))
            }
            Engine::Onnx { model, feeds } => {
                let feeds = feeds.iter().map(|cols| feed(&columns, cols, rows)).collect();
                let outputs = model.run(feeds, rows).map_err(fail)?;
                let class_labels = model.outputs().iter().map(|o| o.class_labels.clone()).collect();
                Ok(Predictions { rows, outputs, class_labels, layout: Layout::Records })
            }
            Engine::LightGbm(b) => {
                let x = matrix(&columns, rows);
                let p = b.predict(&x, rows).map_err(fail)?;
                let shape = if b.num_class > 1 { vec![rows, b.num_class] } else { vec![rows] };
                Ok(Predictions::single("prediction", shape, Values::F64(p), rows, Layout::Array))
            }
            Engine::XgBoost { booster, labels } => {
                let x = matrix(&columns, rows);
                let p = booster.predict(&x, rows).map_err(fail)?;
                let k = booster.outputs_per_row();
                if *labels {
                    // XGBClassifier.predict: the most likely class (p > 0.5 for two classes).
                    let l: Vec<i64> = p
                        .chunks_exact(k)
                        .map(|r| {
                            if k == 1 {
                                i64::from(r[0] > 0.5)
                            } else {
                                (0..k).fold(0, |b, i| if r[i] > r[b] { i } else { b }) as i64
                            }
                        })
                        .collect();
                    return Ok(Predictions::single("label", vec![rows], Values::I64(l), rows, Layout::Array));
                }
                let shape = if k > 1 { vec![rows, k] } else { vec![rows] };
                Ok(Predictions::single("prediction", shape, Values::F32(p), rows, Layout::Array))
            }
        }
    }
}

/// The values of `cols` (schema indices) for every row, row-major, as one feed.
fn feed(columns: &[&Column], cols: &[usize], rows: usize) -> Feed {
    let text = cols.iter().any(|&c| columns[c].kind() != ColumnKind::Numeric);
    if text {
        let mut out = Vec::with_capacity(rows * cols.len());
        for r in 0..rows {
            for &c in cols {
                out.push(match &columns[c].data {
                    ColumnData::Categorical(v) | ColumnData::Text(v) => v[r].clone().unwrap_or_default(),
                    ColumnData::Numeric(v) => v[r].to_string(),
                });
            }
        }
        Feed::Text(out)
    } else {
        Feed::Numbers(matrix(&cols.iter().map(|&c| columns[c]).collect::<Vec<_>>(), rows))
    }
}

/// Numeric columns as one row-major matrix (text reads as missing; the schema has none).
fn matrix(columns: &[&Column], rows: usize) -> Vec<f64> {
    let mut x = Vec::with_capacity(rows * columns.len());
    for r in 0..rows {
        for c in columns {
            x.push(match &c.data {
                ColumnData::Numeric(v) => v[r],
                ColumnData::Categorical(_) | ColumnData::Text(_) => f64::NAN,
            });
        }
    }
    x
}

/// All-numeric columns named by the signature (when it names as many) or by the model.
fn numeric_schema(model_names: &[String], signature: Option<&[(String, String)]>) -> Schema {
    let names: Vec<String> = match signature {
        Some(cols) if cols.len() == model_names.len() => cols.iter().map(|(n, _)| n.clone()).collect(),
        _ => model_names.to_vec(),
    };
    Schema { fields: names.into_iter().map(|name| Field { name: name.into(), kind: ColumnKind::Numeric }).collect() }
}

/// The request columns of an ONNX model and which of them fill each input: an input of
/// width 1 is one column named like the input; a wider input takes the signature's (or the
/// saved input example's) column names when the model has just that input and they are as
/// many, else `<input>_<j>`. Text inputs are categorical columns.
fn onnx_columns(inputs: &[TensorSpec], signature: Option<&[(String, String)]>) -> (Schema, Vec<Vec<usize>>) {
    let mut fields: Vec<Field> = Vec::new();
    let mut feeds = Vec::new();
    for spec in inputs {
        let kind = if spec.elem == ElemType::Str { ColumnKind::Categorical } else { ColumnKind::Numeric };
        // A single input of unknown width takes as many columns as the signature names.
        let width = match signature {
            Some(cols) if inputs.len() == 1 && spec.shape.iter().skip(1).any(|&d| d < 0) => cols.len().max(1),
            _ => spec.width(),
        };
        let names: Vec<String> = match signature {
            Some(cols) if inputs.len() == 1 && cols.len() == width && width > 1 => {
                cols.iter().map(|(n, _)| n.clone()).collect()
            }
            _ if width == 1 => vec![spec.name.clone()],
            _ => (0..width).map(|j| format!("{}_{j}", spec.name)).collect(),
        };
        let start = fields.len();
        fields.extend(names.into_iter().map(|name| Field { name: name.into(), kind }));
        feeds.push((start..fields.len()).collect());
    }
    (Schema { fields }, feeds)
}
