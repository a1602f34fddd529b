//! The linear baseline: ridge regression (closed form) and L2-penalised logistic regression
//! (Newton's method), on standardised numeric columns and one-hot categorical columns.
//!
//! Encoding, learned on the training rows and stored in the model: a numeric column is
//! centred and scaled by its mean and (population) standard deviation over non-missing
//! values, and a missing (or infinite) value becomes the mean (0 after scaling); a categorical column
//! becomes one 0/1 column per level (at most [`MAX_LEVELS`], the most frequent), plus a
//! "missing" column when training had missing values. Unseen levels at predict time count as
//! missing (all zeros if training had none). The intercept is not penalised.
//!
//! Objectives, as scikit-learn's `Ridge(alpha)` and `LogisticRegression(C = 1 / alpha)`:
//! `‖y − Xw − b‖² + α‖w‖²` and `Σ log-loss + α/2 ‖w‖²`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::LearnError;
use crate::frame::{categorical_levels, ColumnData, Frame};
use crate::task::{sigmoid, softplus, Task, TrainReport};

/// Most levels one-hot encoded per categorical column; rarer levels count as missing.
pub(crate) const MAX_LEVELS: usize = 1000;
/// Newton iterations at most for the logistic regression.
const MAX_NEWTON: usize = 100;

/// Linear model hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearParams {
    /// L2 penalty on the coefficients of the encoded columns (1.0). With 0 a tiny ridge is
    /// still added if needed to make collinear one-hot columns solvable.
    pub alpha: f64,
    /// Unused: both fits are deterministic closed-form or Newton solves. Kept so every model
    /// spec records a seed.
    pub seed: u64,
}

impl Default for LinearParams {
    fn default() -> LinearParams {
        LinearParams { alpha: 1.0, seed: 0 }
    }
}

/// How one input column becomes encoded columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Encoder {
    Numeric { mean: f64, scale: f64 },
    Categorical { levels: Vec<String>, missing: bool },
}

impl Encoder {
    fn width(&self) -> usize {
        match self {
            Encoder::Numeric { .. } => 1,
            Encoder::Categorical { levels, missing } => levels.len() + usize::from(*missing),
        }
    }
}

/// A fitted linear model: `intercept + weights · encode(row)` (then the sigmoid for binary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinearModel {
    encoders: Vec<Encoder>,
    intercept: f64,
    weights: Vec<f64>,
}

/// Encoded rows of one input column: either one value per row or a one-hot position
/// (`None` = all zeros).
enum Encoded {
    Value(Vec<f64>),
    Hot(Vec<Option<usize>>),
}

fn encode(enc: &Encoder, col: &ColumnData) -> Encoded {
    match (enc, col) {
        (Encoder::Numeric { mean, scale }, ColumnData::Numeric(v)) => {
            Encoded::Value(v.iter().map(|&x| if x.is_finite() { (x - mean) / scale } else { 0.0 }).collect())
        }
        (Encoder::Categorical { levels, missing }, ColumnData::Categorical(v)) => {
            let lookup: HashMap<&str, usize> = levels.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
            let missing_pos = missing.then_some(levels.len());
            Encoded::Hot(v.iter().map(|s| s.as_deref().and_then(|s| lookup.get(s).copied()).or(missing_pos)).collect())
        }
        // Kinds are checked against the schema before we get here; treat as missing.
        (Encoder::Numeric { .. }, c) => Encoded::Value(vec![0.0; c.len()]),
        (Encoder::Categorical { levels, missing }, c) => Encoded::Hot(vec![missing.then_some(levels.len()); c.len()]),
    }
}

fn learn_encoder(col: &ColumnData) -> Encoder {
    match col {
        ColumnData::Numeric(v) => {
            let present: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            if present.is_empty() {
                return Encoder::Numeric { mean: 0.0, scale: 1.0 };
            }
            let mean = present.iter().sum::<f64>() / present.len() as f64;
            let var = present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / present.len() as f64;
            let sd = var.sqrt();
            Encoder::Numeric { mean, scale: if sd > 0.0 && sd.is_finite() { sd } else { 1.0 } }
        }
        ColumnData::Categorical(v) => {
            let levels = categorical_levels(v.iter().map(|s| s.as_deref()), MAX_LEVELS);
            let enc = Encoder::Categorical { levels, missing: false };
            // A missing column only if some training row would land in it.
            let missing = match encode(&enc, col) {
                Encoded::Hot(h) => h.iter().any(Option::is_none),
                Encoded::Value(_) => false,
            };
            match enc {
                Encoder::Categorical { levels, .. } => Encoder::Categorical { levels, missing },
                other => other,
            }
        }
    }
}

/// Dense row-major design matrix (`n × p`) of the encoded columns.
fn design(encoders: &[Encoder], cols: &[&ColumnData], n: usize) -> (Vec<f64>, usize) {
    let p: usize = encoders.iter().map(Encoder::width).sum();
    let mut x = vec![0.0; n * p];
    let mut offset = 0;
    for (enc, col) in encoders.iter().zip(cols) {
        match encode(enc, col) {
            Encoded::Value(v) => {
                for (i, val) in v.into_iter().enumerate() {
                    x[i * p + offset] = val;
                }
            }
            Encoded::Hot(h) => {
                for (i, pos) in h.into_iter().enumerate() {
                    if let Some(k) = pos {
                        x[i * p + offset + k] = 1.0;
                    }
                }
            }
        }
        offset += enc.width();
    }
    (x, p)
}

/// Solves `a x = b` for symmetric positive definite `a` (`p × p`, row-major) by Cholesky;
/// `None` if `a` is not numerically positive definite.
fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut z = b.to_vec();
    for i in 0..p {
        for k in 0..i {
            z[i] -= l[i * p + k] * z[k];
        }
        z[i] /= l[i * p + i];
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            z[i] -= l[k * p + i] * z[k];
        }
        z[i] /= l[i * p + i];
    }
    Some(z)
}

/// Solves `(a + ridge·I_penalised) x = b`, adding a growing jitter on the diagonal when `a`
/// is singular (collinear columns with no penalty). `penalised[j]` is false for the
/// intercept.
fn solve_ridge(a: &[f64], b: &[f64], p: usize, ridge: f64, penalised: &[bool]) -> Result<Vec<f64>, LearnError> {
    let mean_diag = (0..p).map(|j| a[j * p + j]).sum::<f64>() / p.max(1) as f64;
    let mut jitter = 0.0;
    // 0, then 1e-10 … 1e+10 times the mean diagonal: past that the system is hopeless.
    for _ in 0..22 {
        let mut m = a.to_vec();
        for j in 0..p {
            m[j * p + j] += if penalised[j] { ridge } else { 0.0 } + jitter;
        }
        if let Some(x) = cholesky_solve(&m, b, p) {
            return Ok(x);
        }
        jitter = if jitter == 0.0 { 1e-10 * mean_diag.max(f64::MIN_POSITIVE) } else { jitter * 10.0 };
    }
    Err(LearnError::BadTrainingData("the linear system cannot be solved (values too large?)".into()))
}

pub(crate) fn fit(
    features: &Frame,
    target: &[f64],
    task: Task,
    params: &LinearParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(LinearModel, TrainReport), LearnError> {
    if !(params.alpha >= 0.0 && params.alpha.is_finite()) {
        return Err(LearnError::InvalidParam { name: "alpha", reason: "must be a number >= 0".into() });
    }
    let n = features.n_rows();
    let cols: Vec<&ColumnData> = features.columns().iter().map(|c| &c.data).collect();
    let encoders: Vec<Encoder> = cols.iter().map(|c| learn_encoder(c)).collect();
    let (x, p) = design(&encoders, &cols, n);

    let (intercept, weights, train_loss) = match task {
        Task::Regression => {
            let ym = target.iter().sum::<f64>() / n as f64;
            let xm: Vec<f64> = (0..p).map(|j| (0..n).map(|i| x[i * p + j]).sum::<f64>() / n as f64).collect();
            let mut a = vec![0.0; p * p];
            let mut b = vec![0.0; p];
            let mut xc = vec![0.0; p];
            for i in 0..n {
                for j in 0..p {
                    xc[j] = x[i * p + j] - xm[j];
                }
                let yc = target[i] - ym;
                for j in 0..p {
                    b[j] += xc[j] * yc;
                    for k in 0..=j {
                        a[j * p + k] += xc[j] * xc[k];
                    }
                }
            }
            for j in 0..p {
                for k in 0..j {
                    a[k * p + j] = a[j * p + k];
                }
            }
            let w = solve_ridge(&a, &b, p, params.alpha, &vec![true; p])?;
            let intercept = ym - xm.iter().zip(&w).map(|(m, w)| m * w).sum::<f64>();
            let mse = (0..n)
                .map(|i| {
                    let z = intercept + (0..p).map(|j| x[i * p + j] * w[j]).sum::<f64>();
                    (target[i] - z) * (target[i] - z)
                })
                .sum::<f64>()
                / n as f64;
            progress(1, 1);
            (intercept, w, vec![mse])
        }
        Task::BinaryClassification => {
            // Newton on θ = (w, b); the intercept is the last, unpenalised coordinate.
            let q = p + 1;
            let mut penalised = vec![true; q];
            penalised[p] = false;
            let mean = target.iter().sum::<f64>() / n as f64;
            let mut theta = vec![0.0; q];
            theta[p] = (mean / (1.0 - mean)).ln();
            let z_of = |theta: &[f64], i: usize| theta[p] + (0..p).map(|j| x[i * p + j] * theta[j]).sum::<f64>();
            let objective = |theta: &[f64]| {
                let data: f64 = (0..n).map(|i| softplus(z_of(theta, i)) - target[i] * z_of(theta, i)).sum();
                let pen: f64 = theta[..p].iter().map(|w| w * w).sum::<f64>();
                (data + params.alpha / 2.0 * pen, data / n as f64)
            };
            let (mut obj, _) = objective(&theta);
            let mut losses = Vec::new();
            for iter in 0..MAX_NEWTON {
                let mut grad = vec![0.0; q];
                let mut hess = vec![0.0; q * q];
                let mut row = vec![0.0; q];
                for i in 0..n {
                    row[..p].copy_from_slice(&x[i * p..(i + 1) * p]);
                    row[p] = 1.0;
                    let pr = sigmoid(z_of(&theta, i));
                    let r = pr - target[i];
                    let wgt = pr * (1.0 - pr);
                    for j in 0..q {
                        grad[j] += r * row[j];
                        for k in 0..=j {
                            hess[j * q + k] += wgt * row[j] * row[k];
                        }
                    }
                }
                for j in 0..q {
                    for k in 0..j {
                        hess[k * q + j] = hess[j * q + k];
                    }
                }
                for j in 0..p {
                    grad[j] += params.alpha * theta[j];
                }
                let step = solve_ridge(&hess, &grad, q, params.alpha, &penalised)?;
                // Backtracking: halve the step until the objective does not increase.
                let mut t = 1.0;
                let mut accepted = None;
                for _ in 0..40 {
                    let cand: Vec<f64> = theta.iter().zip(&step).map(|(a, s)| a - t * s).collect();
                    let (o, l) = objective(&cand);
                    if o <= obj {
                        accepted = Some((cand, o, l));
                        break;
                    }
                    t /= 2.0;
                }
                let Some((cand, o, l)) = accepted else { break };
                let improvement = obj - o;
                theta = cand;
                obj = o;
                losses.push(l);
                progress(iter + 1, MAX_NEWTON);
                if improvement <= 1e-12 * (1.0 + obj.abs()) {
                    break;
                }
            }
            if losses.is_empty() {
                losses.push(objective(&theta).1);
            }
            progress(losses.len(), losses.len());
            let intercept = theta[p];
            theta.truncate(p);
            (intercept, theta, losses)
        }
    };

    // Importance: summed |weight| of each input column's encoded columns, normalised.
    let mut importance = Vec::new();
    let mut offset = 0;
    for (col, enc) in features.columns().iter().zip(&encoders) {
        let w = enc.width();
        importance.push((col.name.clone(), weights[offset..offset + w].iter().map(|v| v.abs()).sum::<f64>()));
        offset += w;
    }
    let total: f64 = importance.iter().map(|(_, v)| v).sum();
    for (_, v) in &mut importance {
        *v = if total > 0.0 { *v / total } else { 0.0 };
    }
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    let report = TrainReport {
        n_iter: train_loss.len(),
        train_loss,
        validation_loss: Vec::new(),
        feature_importance: importance,
    };
    Ok((LinearModel { encoders, intercept, weights }, report))
}

impl LinearModel {
    /// Raw scores (before the link function); `cols` aligned with the schema.
    pub(crate) fn predict_raw(&self, cols: &[&ColumnData]) -> Vec<f64> {
        let n = cols.first().map_or(0, |c| c.len());
        let mut out = vec![self.intercept; n];
        let mut offset = 0;
        for (enc, col) in self.encoders.iter().zip(cols) {
            match encode(enc, col) {
                Encoded::Value(v) => {
                    let w = self.weights[offset];
                    for (o, x) in out.iter_mut().zip(v) {
                        *o += w * x;
                    }
                }
                Encoded::Hot(h) => {
                    for (o, pos) in out.iter_mut().zip(h) {
                        if let Some(k) = pos {
                            *o += self.weights[offset + k];
                        }
                    }
                }
            }
            offset += enc.width();
        }
        out
    }

    /// Intercept and per-encoded-column coefficients in the input's own units: numeric
    /// columns per unit of the raw value, one-hot columns named `column=level` (and
    /// `column=<missing>`).
    pub(crate) fn coefficients(&self, names: &[String]) -> (f64, Vec<(String, f64)>) {
        let mut intercept = self.intercept;
        let mut out = Vec::new();
        let mut offset = 0;
        for (enc, name) in self.encoders.iter().zip(names) {
            match enc {
                Encoder::Numeric { mean, scale } => {
                    let w = self.weights[offset] / scale;
                    intercept -= w * mean;
                    out.push((name.clone(), w));
                }
                Encoder::Categorical { levels, missing } => {
                    for (k, level) in levels.iter().enumerate() {
                        out.push((format!("{name}={level}"), self.weights[offset + k]));
                    }
                    if *missing {
                        out.push((format!("{name}=<missing>"), self.weights[offset + levels.len()]));
                    }
                }
            }
            offset += enc.width();
        }
        (intercept, out)
    }
}
