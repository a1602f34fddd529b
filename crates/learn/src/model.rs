//! The one training entry point, [`fit`], and the [`Model`] it returns: schema, task and the
//! fitted ensemble or linear model, serialisable to bytes and back.
//!
//! Prediction checks the input against the training schema by column name (order and extra
//! columns do not matter; absent columns and other kinds are errors). Categorical levels not
//! seen in training are treated as missing values: the trees send them where missing values
//! go at each split, the linear model to its "missing" column (or nowhere).

use serde::{Deserialize, Serialize};

use crate::error::LearnError;
use crate::frame::{ColumnData, Frame};
use crate::gbm::{self, GbmModel, GbmParams};
use crate::linear::{self, LinearModel, LinearParams};
use crate::schema::{ColumnKind, Schema};
use crate::task::{sigmoid, Task, TrainReport};

/// Which model to train, with its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSpec {
    Gbm(GbmParams),
    Linear(LinearParams),
}

/// Version tag written into every serialised model.
const FORMAT: &str = "learn-model/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Body {
    Gbm(GbmModel),
    Linear(LinearModel),
}

/// A trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    format: String,
    schema: Schema,
    task: Task,
    body: Body,
}

/// Checks the target for the task; errors name the 1-based row.
fn check_target(target: &[f64], task: Task) -> Result<(), LearnError> {
    for (i, &y) in target.iter().enumerate() {
        if !y.is_finite() {
            return Err(LearnError::InvalidTarget { row: i + 1, value: y, reason: "not a finite number" });
        }
        if task == Task::BinaryClassification && y != 0.0 && y != 1.0 {
            return Err(LearnError::InvalidTarget {
                row: i + 1,
                value: y,
                reason: "binary classification needs 0 or 1",
            });
        }
    }
    if task == Task::BinaryClassification {
        let ones = target.iter().filter(|&&y| y == 1.0).count();
        if ones == 0 || ones == target.len() {
            return Err(LearnError::BadTrainingData("the target has only one class".into()));
        }
    }
    Ok(())
}

/// Trains a model on `features` (every column is an input) and `target` (one value per
/// row).
///
/// `progress(done, total)` is called on the calling thread as iterations complete (`done`
/// never decreases); the last call is `(n_iter, n_iter)`, so `total` shrinks once when early
/// stopping ends training before `max_iter`.
pub fn fit(
    features: &Frame,
    target: &[f64],
    task: Task,
    spec: &ModelSpec,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Model, TrainReport), LearnError> {
    if target.len() != features.n_rows() {
        return Err(LearnError::LengthMismatch {
            what: "target (one value per row of the features)".into(),
            expected: features.n_rows(),
            found: target.len(),
        });
    }
    if features.n_rows() == 0 {
        return Err(LearnError::BadTrainingData("no rows".into()));
    }
    if features.columns().is_empty() {
        return Err(LearnError::BadTrainingData("no feature columns".into()));
    }
    check_target(target, task)?;
    if let (ModelSpec::Gbm(_), Some(text)) = (spec, features.columns().iter().find(|c| c.kind() == ColumnKind::Text)) {
        return Err(LearnError::BadTrainingData(format!(
            "column '{}' is text, which the gradient-boosting model does not take; train the linear model on text",
            text.name
        )));
    }
    let (body, report) = match spec {
        ModelSpec::Gbm(p) => {
            let (m, r) = gbm::fit(features, target, task, p, progress)?;
            (Body::Gbm(m), r)
        }
        ModelSpec::Linear(p) => {
            let (m, r) = linear::fit(features, target, task, p, progress)?;
            (Body::Linear(m), r)
        }
    };
    let model = Model { format: FORMAT.into(), schema: features.schema(), task, body };
    Ok((model, report))
}

impl Model {
    /// The columns the model was trained on.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The task it was trained for.
    pub fn task(&self) -> Task {
        self.task
    }

    /// `"gbm"` or `"linear"`.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Gbm(_) => "gbm",
            Body::Linear(_) => "linear",
        }
    }

    /// Number of trees (0 for a linear model).
    pub fn n_trees(&self) -> usize {
        match &self.body {
            Body::Gbm(m) => m.n_trees(),
            Body::Linear(_) => 0,
        }
    }

    /// For a linear model, the intercept and coefficients in the inputs' own units (numeric
    /// columns per unit; one-hot columns named `column=level`, `column=<missing>`; TF-IDF
    /// columns `column:term`); `None`
    /// for trees.
    pub fn linear_coefficients(&self) -> Option<(f64, Vec<(String, f64)>)> {
        match &self.body {
            Body::Linear(m) => {
                let names: Vec<String> = self.schema.fields.iter().map(|f| f.name.to_string()).collect();
                Some(m.coefficients(&names))
            }
            Body::Gbm(_) => None,
        }
    }

    /// Predictions for every row: values (regression) or probabilities of class 1 (binary).
    /// `features` needs every schema column, of the schema's kind; other columns are ignored.
    pub fn predict(&self, features: &Frame) -> Result<Vec<f64>, LearnError> {
        let cols: Vec<&ColumnData> = features
            .columns_for(&self.schema)
            .map_err(|columns| LearnError::MissingColumns { columns })?
            .into_iter()
            .zip(&self.schema.fields)
            .map(|(c, f)| {
                // Strings are strings: levels and text are told apart by the schema.
                if (c.kind() == ColumnKind::Numeric) == (f.kind == ColumnKind::Numeric) {
                    Ok(&c.data)
                } else {
                    Err(LearnError::KindMismatch { column: f.name.to_string(), expected: f.kind, found: c.kind() })
                }
            })
            .collect::<Result<_, _>>()?;
        let mut raw = match &self.body {
            Body::Gbm(m) => m.predict_raw(&cols),
            Body::Linear(m) => m.predict_raw(&cols),
        };
        if self.task == Task::BinaryClassification {
            for r in &mut raw {
                *r = sigmoid(*r);
            }
        }
        Ok(raw)
    }

    /// The model as bytes (UTF-8 JSON, tagged with a format version). The same model always
    /// gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a model always serialises")
    }

    /// Reads bytes written by [`Model::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Model, LearnError> {
        #[derive(Deserialize)]
        struct Tag {
            format: String,
        }
        let tag: Tag = serde_json::from_slice(b).map_err(|e| LearnError::ModelFormat(e.to_string()))?;
        if tag.format != FORMAT {
            return Err(LearnError::ModelFormat(format!("format '{}' (this version reads '{FORMAT}')", tag.format)));
        }
        let model: Model = serde_json::from_slice(b).map_err(|e| LearnError::ModelFormat(e.to_string()))?;
        if let Body::Gbm(g) = &model.body {
            g.check().map_err(LearnError::ModelFormat)?;
        }
        Ok(model)
    }
}
