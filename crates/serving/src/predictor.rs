//! The model being served and the slot that holds it.
//!
//! [`Predictor`] keeps the current [`LoadedModel`] behind an [`ArcSwapOption`]: a request
//! takes one `Arc` at its start and uses it for decoding, predicting and logging, so a
//! reload that swaps in a new version never changes the model under a request in flight —
//! in-flight requests finish on the old model, new ones see the new one, and nobody waits
//! on a lock. The old model is freed when its last request drops the `Arc`.

use arc_swap::ArcSwapOption;
use learn::{ColumnData, Frame, Schema};
use package::{Model, Predictions};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

use crate::error::ServeError;

/// A model ready to score, with what health and metadata report about it.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: Model,
    /// The name served: the registered model name, the logged-model id, or the folder name.
    pub name: String,
    /// The version label reported by health, V2 metadata and the request log
    /// (`MODEL_VERSION` when set, else the registry version, else the logged-model id).
    pub version: String,
    /// The registry version, when the model came from the registry.
    pub registry_version: Option<String>,
    /// The model URI as given (`models:/name@alias`, a folder, ...).
    pub uri: String,
    /// What identifies this exact artifact for change detection (registry version, or a
    /// hash of the package manifest — or of `MLmodel` without one — for a local folder).
    pub source_id: String,
    pub run_id: Option<String>,
    pub loaded_at: SystemTime,
    /// The drift profile of the model's training data, when its package has one.
    pub profile: Option<Arc<sketch::Profile>>,
    /// Sketches of the rows this model scores (online drift on and a profile).
    pub drift: Option<Arc<sketch::Recorder>>,
}

impl LoadedModel {
    pub fn schema(&self) -> &Schema {
        self.model.schema()
    }

    /// Whether this is a factory binary classifier: its answers then also carry a `label`
    /// (probability ≥ the serving threshold), and the request log writes both.
    pub fn binary_classifier(&self) -> bool {
        self.model.factory().is_some_and(|m| m.task() == learn::Task::BinaryClassification)
    }

    /// The name of the model's first output (`prediction` / `probability` for factory
    /// models): the request log's prediction column.
    pub fn output_name(&self) -> &str {
        self.model.outputs().first().map_or("prediction", |o| o.name.as_str())
    }

    /// Checks the outputs a V2 request asks for (`outputs: [{"name": ...}]`; none asked means
    /// all): each must be one of the model's, as KServe and Triton refuse an unknown one.
    pub fn check_outputs<'a>(&self, requested: impl IntoIterator<Item = &'a str>) -> Result<(), ServeError> {
        let outputs = self.model.outputs();
        for name in requested {
            if !outputs.iter().any(|o| o.name == name) {
                let known: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(ServeError::Invalid(format!(
                    "unknown output '{}' requested (the model's outputs: {})",
                    crate::error::shown(name, 200),
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Checks a request's model name (and version, when given) against this model.
    pub fn check_name(&self, name: &str, version: Option<&str>) -> Result<(), ServeError> {
        let version = version.filter(|v| !v.is_empty());
        if name == self.name && version.is_none_or(|v| v == self.version) {
            return Ok(());
        }
        Err(ServeError::ModelNotFound {
            name: crate::error::shown(name, 200).into_owned(),
            version: version.map(|v| crate::error::shown(v, 200).into_owned()),
            served: self.name.clone(),
            served_version: self.version.clone(),
        })
    }

    /// Predicts, after [`LoadedModel::check_input`].
    pub fn predict(&self, frame: &Frame) -> Result<Predictions, ServeError> {
        self.check_input(frame)?;
        self.model.predict(frame).map_err(|e| match e {
            // Input the engine refused (e.g. a fraction for an integer ONNX input).
            package::PackageError::Input(m) => ServeError::Invalid(m),
            other => ServeError::Predict(other.to_string()),
        })
    }

    /// Refuses an empty batch and infinite feature values (NaN / null is a missing value,
    /// which the models handle; ±inf is almost always a client bug).
    pub fn check_input(&self, frame: &Frame) -> Result<(), ServeError> {
        if frame.n_rows() == 0 {
            return Err(ServeError::Invalid("the batch is empty (0 rows)".into()));
        }
        for c in frame.columns() {
            if let ColumnData::Numeric(v) = &c.data {
                if let Some(i) = v.iter().position(|x| x.is_infinite()) {
                    return Err(ServeError::Invalid(format!(
                        "row {}, column '{}': infinite values are not allowed (use null/NaN for a missing value)",
                        i + 1,
                        c.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The slot holding the model being served.
pub struct Predictor {
    current: ArcSwapOption<LoadedModel>,
    ready: watch::Sender<bool>,
}

impl Default for Predictor {
    fn default() -> Self {
        Predictor { current: ArcSwapOption::empty(), ready: watch::channel(false).0 }
    }
}

impl Predictor {
    /// The model serving now (`NotReady` before the first load).
    pub fn current(&self) -> Result<Arc<LoadedModel>, ServeError> {
        self.current.load_full().ok_or(ServeError::NotReady)
    }

    /// Swaps in a new model atomically; returns the previous one.
    pub fn swap(&self, model: Arc<LoadedModel>) -> Option<Arc<LoadedModel>> {
        let old = self.current.swap(Some(model));
        self.ready.send_replace(true);
        old
    }

    /// Whether a model is loaded, as a watch (for gRPC health `Watch`).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }
}
