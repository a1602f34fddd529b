//! The `factory` model package and model inputs.
//!
//! A package is a folder in MLflow's model layout, so MLflow tooling can list and show it:
//!
//! ```text
//! MLmodel              flavor `factory`, signature, input example info, size (JSON text; YAML reads it)
//! model.bin            the trained `learn::Model`
//! input_example.json   a few rows in MLflow's `dataframe_split` form
//! manifest.json        sha256 of every other file; checked on load
//! ```
//!
//! [`input`] turns CSV and MLflow scoring payloads into frames checked against the signature.
//!
//! Architecture invariant: no I/O but the package folder; fetching packages from a tracking
//! server is `mlflow-client`'s job.

pub mod input;

use learn::{ColumnKind, Frame, Model, Schema};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The flavor name in `MLmodel`.
pub const FLAVOR: &str = "factory";
pub const MODEL_FILE: &str = "model.bin";
pub const MLMODEL_FILE: &str = "MLmodel";
pub const EXAMPLE_FILE: &str = "input_example.json";
pub const MANIFEST_FILE: &str = "manifest.json";

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
    /// Input data that does not fit the model's signature; the message names the column/row.
    #[error("{0}")]
    Input(String),
}

pub type Result<T, E = PackageError> = std::result::Result<T, E>;

/// A loaded package: the model and its `MLmodel` description.
pub struct Package {
    pub dir: PathBuf,
    pub model: Model,
    pub mlmodel: Value,
}

impl Package {
    pub fn schema(&self) -> &Schema {
        self.model.schema()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io { path: path.to_path_buf(), source }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// MLflow's column-spec type for a column kind.
fn mlflow_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numeric => "double",
        ColumnKind::Categorical => "string",
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

/// Extra facts recorded in `MLmodel` (which run and model produced the package).
#[derive(Debug, Default, Clone)]
pub struct Provenance {
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub created_utc: String,
}

/// Writes a package for `model` into `dir` (created; must be empty or absent).
pub fn save(dir: &Path, model: &Model, example: &Frame, provenance: &Provenance) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let model_bytes = model.to_bytes();
    let example_json = input::to_dataframe_split(example).to_string();
    let mut files: Vec<(&str, Vec<u8>)> = vec![(MODEL_FILE, model_bytes), (EXAMPLE_FILE, example_json.into_bytes())];
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
            }
        },
        "model_size_bytes": size,
        "signature": signature(model.schema(), output_name),
        "saved_input_example_info": { "artifact_path": EXAMPLE_FILE, "type": "dataframe", "pandas_orient": "split" },
        "utc_time_created": provenance.created_utc,
    });
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

/// Loads a package, verifying every file against the manifest first.
pub fn load(dir: &Path) -> Result<Package> {
    let invalid = |path: &Path, message: String| PackageError::Invalid { path: path.to_path_buf(), message };
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest_bytes = std::fs::read(&manifest_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            invalid(dir, format!("not a factory model package (no {MANIFEST_FILE})"))
        } else {
            PackageError::Io { path: manifest_path.clone(), source: e }
        }
    })?;
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| invalid(&manifest_path, format!("not JSON: {e}")))?;
    let sums = manifest["sha256"].as_object().ok_or_else(|| invalid(&manifest_path, "no 'sha256' table".into()))?;
    for required in [MODEL_FILE, MLMODEL_FILE] {
        if !sums.contains_key(required) {
            return Err(invalid(&manifest_path, format!("does not list {required}")));
        }
    }
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
    let mlmodel_path = dir.join(MLMODEL_FILE);
    let mlmodel: Value = serde_json::from_slice(&contents[MLMODEL_FILE])
        .map_err(|e| invalid(&mlmodel_path, format!("not JSON: {e}")))?;
    if mlmodel["flavors"].get(FLAVOR).is_none() {
        return Err(invalid(&mlmodel_path, format!("has no '{FLAVOR}' flavor; only factory packages can be loaded")));
    }
    let model = Model::from_bytes(&contents[MODEL_FILE])?;
    Ok(Package { dir: dir.to_path_buf(), model, mlmodel })
}

#[cfg(test)]
mod tests;
