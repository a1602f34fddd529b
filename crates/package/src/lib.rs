//! The model package and model inputs.
//!
//! A package is a folder in MLflow's model layout. `factory train` writes:
//!
//! ```text
//! MLmodel              flavors `factory`, `onnx`, `python_function` (loader `mlflow.onnx`), signature,
//!                      input example info, size (JSON text; YAML reads it)
//! model.bin            the trained `learn::Model`
//! model.onnx           the same model as ONNX-ML (`formats::export`), for `mlflow.pyfunc.load_model`
//! input_example.json   a few rows in MLflow's `dataframe_split` form
//! requirements.txt, python_env.yaml   what the `python_function` flavor needs (onnx, onnxruntime)
//! manifest.json        sha256 of every other file; checked on load
//! ```
//!
//! [`load`] also reads folders logged by the stock `mlflow` client with the `onnx`,
//! `lightgbm` or `xgboost` flavor ([`model`]: one interface over all of them; no manifest
//! there, as MLflow writes none). [`input`] turns CSV and MLflow scoring payloads into frames
//! checked against the model's columns; [`output`] writes predictions as MLflow does.
//!
//! Architecture invariant: no I/O but the package folder; fetching packages from a tracking
//! server is `mlflow-client`'s job.

pub mod input;
pub mod model;
pub mod output;

use learn::{ColumnKind, Frame, Schema};
pub use model::{Flavor, Layout, Model, OutputInfo, Predictions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
pub use sketch;
use std::path::{Path, PathBuf};

/// The flavor name in `MLmodel`.
pub const FLAVOR: &str = "factory";
pub const MODEL_FILE: &str = "model.bin";
pub const MLMODEL_FILE: &str = "MLmodel";
pub const EXAMPLE_FILE: &str = "input_example.json";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const ONNX_FILE: &str = "model.onnx";
/// The reference data's drift profile (`sketch::Profile` as JSON), for online drift.
pub const PROFILE_FILE: &str = "drift_profile.json";
/// `mlflow models serve` / `input_example` files MLflow 3 writes beside a logged model.
const SERVING_EXAMPLE_FILE: &str = "serving_input_example.json";

/// Why a package could not be written, read or used.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: checksum mismatch (manifest {expected}, file {actual}); the package is corrupt or was altered")]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error(transparent)]
    Model(#[from] learn::LearnError),
    /// The model failed on input that passed validation.
    #[error("prediction failed: {0}")]
    Predict(String),
    /// Input data that does not fit the model's signature; the message names the column/row.
    #[error("{0}")]
    Input(String),
}

pub type Result<T, E = PackageError> = std::result::Result<T, E>;

/// A loaded package: the model, its `MLmodel` description and, for packages `factory train`
/// wrote, the drift profile of its training data.
#[derive(Debug)]
pub struct Package {
    pub dir: PathBuf,
    pub model: Model,
    pub mlmodel: Value,
    pub profile: Option<sketch::Profile>,
}

impl Package {
    pub fn schema(&self) -> &Schema {
        self.model.schema()
    }

    /// The package's input example as a frame of the model's columns, if it has one that
    /// fits: MLflow 3's `serving_input_example.json` (a scoring payload), else
    /// `input_example.json` (`{"columns", "data"}`, or a payload).
    pub fn example_frame(&self) -> Option<Frame> {
        let read =
            |name: &str| -> Option<Value> { serde_json::from_slice(&std::fs::read(self.dir.join(name)).ok()?).ok() };
        let payloads = [
            read(SERVING_EXAMPLE_FILE),
            read(EXAMPLE_FILE).map(|v| if v.get("columns").is_some() { json!({ "dataframe_split": v }) } else { v }),
        ];
        payloads.into_iter().flatten().find_map(|p| input::from_json(p, self.schema()).ok())
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io { path: path.to_path_buf(), source }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// MLflow's column-spec type for a column kind.
fn mlflow_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numeric => "double",
        ColumnKind::Categorical | ColumnKind::Text => "string",
    }
}

/// The signature in MLflow's form: `inputs`/`outputs` are JSON strings of column specs.
pub fn signature(schema: &Schema, output_name: &str) -> Value {
    let inputs: Vec<Value> = schema
        .fields
        .iter()
        .map(|f| json!({ "type": mlflow_type(f.kind), "name": f.name, "required": true }))
        .collect();
    json!({
        "inputs": Value::Array(inputs).to_string(),
        "outputs": json!([{ "type": "double", "name": output_name, "required": true }]).to_string(),
        "params": null,
    })
}

/// Extra facts recorded in the package: which run and model produced it (in `MLmodel`), and
/// the drift profile of the data it was trained on ([`PROFILE_FILE`], from [`profile_of`]).
#[derive(Debug, Default, Clone)]
pub struct Provenance {
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub created_utc: String,
    pub profile: Option<sketch::Profile>,
}

/// The drift profile of a model's reference data: its numeric and categorical columns (free
/// text has no profile).
pub fn profile_of(frame: &Frame) -> sketch::Profile {
    let columns: Vec<(&str, sketch::ColumnInput<'_>)> = frame
        .columns()
        .iter()
        .filter_map(|c| {
            let input = match &c.data {
                learn::ColumnData::Numeric(v) => sketch::ColumnInput::Numeric(v),
                learn::ColumnData::Categorical(v) => sketch::ColumnInput::Categorical(v),
                learn::ColumnData::Text(_) => return None,
            };
            Some((&*c.name, input))
        })
        .collect();
    sketch::Profile::build(&columns)
}

/// Writes a package for `model` into `dir` (created; must be empty or absent).
pub fn save(dir: &Path, model: &learn::Model, example: &Frame, provenance: &Provenance) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let model_bytes = model.to_bytes();
    // Text columns have no ONNX export yet (tokenising needs onnxruntime's contrib
    // `Tokenizer`): such models keep the factory flavor only.
    let exportable = model.schema().fields.iter().all(|f| f.kind != ColumnKind::Text);
    let onnx = exportable
        .then(|| formats::export::onnx_from_learn(&model_bytes))
        .transpose()
        .map_err(|e| PackageError::Invalid { path: dir.join(ONNX_FILE), message: e.to_string() })?;
    let example_json = input::to_dataframe_split(example).to_string();
    let mut files: Vec<(&str, Vec<u8>)> = vec![(MODEL_FILE, model_bytes), (EXAMPLE_FILE, example_json.into_bytes())];
    if let Some(onnx) = onnx {
        files.push((ONNX_FILE, onnx));
        files.push(("requirements.txt", b"mlflow\nonnx\nonnxruntime\n".to_vec()));
        files.push((
            "python_env.yaml",
            b"python: \"3.11\"\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n".to_vec(),
        ));
    }
    if let Some(p) = &provenance.profile {
        files.push((PROFILE_FILE, serde_json::to_vec(p).unwrap_or_default()));
    }
    let size: usize = files.iter().map(|(_, b)| b.len()).sum();
    let output_name = match model.task() {
        learn::Task::Regression => "prediction",
        learn::Task::BinaryClassification => "probability",
    };
    let mut mlmodel = json!({
        "artifact_path": "model",
        "flavors": {
            FLAVOR: {
                "model_file": MODEL_FILE,
                "model_kind": model.kind(),
                "task": match model.task() { learn::Task::Regression => "regression", learn::Task::BinaryClassification => "binary_classification" },
                "factory_version": env!("CARGO_PKG_VERSION"),
            },
            // As `mlflow.onnx.save_model` writes them, so the stock `mlflow.pyfunc.load_model`
            // (with onnxruntime installed) scores the ONNX copy.
            "onnx": {
                "onnx_version": "1.17.0",
                "data": ONNX_FILE,
                "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
                "onnx_session_options": null,
                "code": null,
            },
            "python_function": {
                "loader_module": "mlflow.onnx",
                "python_version": "3.11",
                "data": ONNX_FILE,
                "env": { "virtualenv": "python_env.yaml" },
            },
        },
        "model_size_bytes": size,
        "signature": signature(model.schema(), output_name),
        "saved_input_example_info": { "artifact_path": EXAMPLE_FILE, "type": "dataframe", "pandas_orient": "split" },
        "utc_time_created": provenance.created_utc,
    });
    if !exportable {
        let flavors = mlmodel["flavors"].as_object_mut().expect("built above");
        flavors.remove("onnx");
        flavors.remove("python_function");
    }
    if let Some(r) = &provenance.run_id {
        mlmodel["run_id"] = r.clone().into();
    }
    if let Some(m) = &provenance.model_id {
        mlmodel["model_id"] = m.clone().into();
    }
    files.push((MLMODEL_FILE, serde_json::to_vec_pretty(&mlmodel).unwrap_or_default()));
    let manifest: serde_json::Map<String, Value> =
        files.iter().map(|(name, bytes)| (name.to_string(), Value::from(sha256(bytes)))).collect();
    files.push((MANIFEST_FILE, serde_json::to_vec_pretty(&json!({ "sha256": manifest })).unwrap_or_default()));
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))?;
    }
    Ok(())
}

/// Reads and checks every file `manifest.json` lists; returns their contents by name.
fn verify_manifest(dir: &Path, manifest_bytes: &[u8]) -> Result<std::collections::HashMap<String, Vec<u8>>> {
    let invalid = |path: &Path, message: String| PackageError::Invalid { path: path.to_path_buf(), message };
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest: Value =
        serde_json::from_slice(manifest_bytes).map_err(|e| invalid(&manifest_path, format!("not JSON: {e}")))?;
    let sums = manifest["sha256"].as_object().ok_or_else(|| invalid(&manifest_path, "no 'sha256' table".into()))?;
    let mut contents = std::collections::HashMap::new();
    for (name, expected) in sums {
        if name.contains('/') || name.contains('\\') || name == ".." {
            return Err(invalid(&manifest_path, format!("unsafe file name '{name}'")));
        }
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let actual = sha256(&bytes);
        let expected = expected.as_str().unwrap_or_default().to_string();
        if actual != expected {
            return Err(PackageError::Checksum { path, expected, actual });
        }
        contents.insert(name.clone(), bytes);
    }
    Ok(contents)
}

/// Loads a package: a factory package (every file verified against `manifest.json` first),
/// or a model logged by the stock client with a flavor [`model::Model`] serves.
pub fn load(dir: &Path) -> Result<Package> {
    let invalid = |path: &Path, message: String| PackageError::Invalid { path: path.to_path_buf(), message };
    let manifest_path = dir.join(MANIFEST_FILE);
    let mlmodel_path = dir.join(MLMODEL_FILE);
    let contents = match std::fs::read(&manifest_path) {
        Ok(bytes) => Some(verify_manifest(dir, &bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(PackageError::Io { path: manifest_path, source: e }),
    };
    let mlmodel_bytes = match contents.as_ref().and_then(|c| c.get(MLMODEL_FILE)) {
        Some(b) => b.clone(),
        None => std::fs::read(&mlmodel_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                invalid(dir, format!("not an MLflow model folder (no {MLMODEL_FILE})"))
            } else {
                PackageError::Io { path: mlmodel_path.clone(), source: e }
            }
        })?,
    };
    // MLflow writes MLmodel as YAML; ours is JSON, which is YAML too.
    let mlmodel: Value =
        serde_yaml_ng::from_slice(&mlmodel_bytes).map_err(|e| invalid(&mlmodel_path, format!("not YAML: {e}")))?;
    let flavors: Vec<&str> =
        mlmodel["flavors"].as_object().map(|f| f.keys().map(String::as_str).collect()).unwrap_or_default();
    if flavors.contains(&FLAVOR) {
        let contents = contents.ok_or_else(|| invalid(dir, format!("a factory package needs {MANIFEST_FILE}")))?;
        let bytes =
            contents.get(MODEL_FILE).ok_or_else(|| invalid(&manifest_path, format!("does not list {MODEL_FILE}")))?;
        let model = Model::from_factory(learn::Model::from_bytes(bytes)?);
        let profile = match contents.get(PROFILE_FILE) {
            Some(bytes) => {
                let path = dir.join(PROFILE_FILE);
                let p: sketch::Profile =
                    serde_json::from_slice(bytes).map_err(|e| invalid(&path, format!("not a drift profile: {e}")))?;
                p.check().map_err(|e| invalid(&path, e.to_string()))?;
                Some(p)
            }
            None => None,
        };
        return Ok(Package { dir: dir.to_path_buf(), model, mlmodel, profile });
    }
    let flavor = [Flavor::Onnx, Flavor::LightGbm, Flavor::XgBoost]
        .into_iter()
        .find(|f| flavors.contains(&f.name()))
        .ok_or_else(|| {
            invalid(
                &mlmodel_path,
                format!(
                    "has the flavor(s) {}; factory serves models with the factory, onnx, lightgbm or xgboost flavor \
                     (convert scikit-learn models with skl2onnx and log them with mlflow.onnx.log_model)",
                    if flavors.is_empty() { "(none)".to_string() } else { flavors.join(", ") }
                ),
            )
        })?;
    let model = Model::load_flavor(dir, flavor, &mlmodel)?;
    Ok(Package { dir: dir.to_path_buf(), model, mlmodel, profile: None })
}

#[cfg(test)]
mod tests;
