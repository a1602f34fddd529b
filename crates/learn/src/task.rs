//! What is learnt, shared by both learners and the model that wraps them: the [`Task`], the
//! [`TrainReport`] training returns, and the link functions between raw scores and
//! probabilities.

use serde::{Deserialize, Serialize};

/// What the target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// A real-valued target; predictions are values.
    Regression,
    /// A 0/1 target; predictions are probabilities of class 1.
    BinaryClassification,
}

/// What training observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Loss on the training rows after each iteration (mean squared error for regression,
    /// mean log-loss for binary classification). The linear regression has one entry; the
    /// logistic regression one per Newton step.
    pub train_loss: Vec<f64>,
    /// Loss on the early-stopping validation rows after each iteration; empty when no rows
    /// were held out.
    pub validation_loss: Vec<f64>,
    /// Iterations run (trees built; Newton steps; 1 for ridge).
    pub n_iter: usize,
    /// Every input column with its share of the total importance, highest first: summed
    /// split gain for trees, summed |coefficient| of its encoded columns for linear models.
    pub feature_importance: Vec<(String, f64)>,
}

/// The logistic function, without overflow for large |x|.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
pub(crate) fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}
