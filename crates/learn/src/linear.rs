//! The linear baseline: ridge regression and L2-penalised logistic regression, on
//! standardised numeric columns, one-hot categorical columns and TF-IDF text columns.
//!
//! Encoding, learned on the training rows and stored in the model: a numeric column is
//! centred and scaled by its mean and (population) standard deviation over non-missing
//! values, and a missing (or infinite) value becomes the mean (0 after scaling); a categorical column
//! becomes one 0/1 column per level (at most [`MAX_LEVELS`], the most frequent), plus a
//! "missing" column when training had missing values. Unseen levels at predict time count as
//! missing (all zeros if training had none). A text column becomes its TF-IDF vector
//! (module `text`). The intercept is not penalised.
//!
//! Objectives, as scikit-learn's `Ridge(alpha)` and `LogisticRegression(C = 1 / alpha)`:
//! `‖y − Xw − b‖² + α‖w‖²` and `Σ log-loss + α/2 ‖w‖²`, where text columns' coefficients take
//! `text_alpha` instead of `α`.
//!
//! Solvers: up to [`DIRECT_WIDTH`] encoded columns the design is dense and the solve direct
//! (normal equations by Cholesky; Newton steps with the full Hessian). Wider designs (text)
//! stay sparse and are solved by truncated Newton: each step solves `H s = g` by conjugate
//! gradients from Hessian-vector products (two passes over the non-zeros), to a tolerance
//! that tightens as the gradient shrinks, then backtracks until the objective falls enough.
//! Both stop at the same optimum; the sparse passes run on every core, each output value
//! summed in a fixed order, so the model bytes do not depend on the thread count.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::LearnError;
use crate::frame::{categorical_levels, ColumnData, Frame};
use crate::task::{sigmoid, softplus, Task, TrainReport};
use crate::text::Tfidf;

/// Most levels one-hot encoded per categorical column; rarer levels count as missing.
pub(crate) const MAX_LEVELS: usize = 1000;
/// Newton iterations at most for the logistic regression.
const MAX_NEWTON: usize = 100;
/// Widest design solved directly; wider ones by truncated Newton on the sparse design.
const DIRECT_WIDTH: usize = 1024;
/// Conjugate-gradient iterations at most per Newton step.
const MAX_CG: usize = 250;

/// Linear model hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearParams {
    /// L2 penalty on the coefficients of the encoded numeric and categorical columns (1.0).
    /// With 0 a tiny ridge is still added if needed to make collinear one-hot columns solvable.
    pub alpha: f64,
    /// L2 penalty on the coefficients of TF-IDF (text) columns (0.1): their rows have unit
    /// length, so each word's weight needs a lighter hand than a standardised column's.
    #[serde(default = "default_text_alpha")]
    pub text_alpha: f64,
    /// Unused: both fits are deterministic closed-form or Newton solves. Kept so every model
    /// spec records a seed.
    pub seed: u64,
}

impl Default for LinearParams {
    fn default() -> LinearParams {
        LinearParams { alpha: 1.0, text_alpha: default_text_alpha(), seed: 0 }
    }
}

fn default_text_alpha() -> f64 {
    0.1
}

/// How one input column becomes encoded columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Encoder {
    Numeric { mean: f64, scale: f64 },
    Categorical { levels: Vec<String>, missing: bool },
    Text(Tfidf),
}

impl Encoder {
    fn width(&self) -> usize {
        match self {
            Encoder::Numeric { .. } => 1,
            Encoder::Categorical { levels, missing } => levels.len() + usize::from(*missing),
            Encoder::Text(t) => t.width(),
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

/// Encoded rows of one input column: one value per row, a one-hot position (`None` = all
/// zeros), or sorted (position, value) pairs.
enum Encoded {
    Value(Vec<f64>),
    Hot(Vec<Option<usize>>),
    Sparse(Vec<Vec<(u32, f64)>>),
}

fn encode(enc: &Encoder, col: &ColumnData) -> Encoded {
    match (enc, col) {
        (Encoder::Numeric { mean, scale }, ColumnData::Numeric(v)) => {
            Encoded::Value(v.iter().map(|&x| if x.is_finite() { (x - mean) / scale } else { 0.0 }).collect())
        }
        (Encoder::Categorical { levels, missing }, ColumnData::Categorical(v) | ColumnData::Text(v)) => {
            let lookup: HashMap<&str, usize> = levels.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
            let missing_pos = missing.then_some(levels.len());
            Encoded::Hot(v.iter().map(|s| s.as_deref().and_then(|s| lookup.get(s).copied()).or(missing_pos)).collect())
        }
        (Encoder::Text(t), ColumnData::Text(v) | ColumnData::Categorical(v)) => {
            Encoded::Sparse(v.par_iter().map(|s| t.transform(s.as_deref())).collect())
        }
        // Kinds are checked against the schema before we get here; treat as missing.
        (Encoder::Numeric { .. }, c) => Encoded::Value(vec![0.0; c.len()]),
        (Encoder::Categorical { levels, missing }, c) => Encoded::Hot(vec![missing.then_some(levels.len()); c.len()]),
        (Encoder::Text(_), c) => Encoded::Sparse(vec![Vec::new(); c.len()]),
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
                Encoded::Value(_) | Encoded::Sparse(_) => false,
            };
            match enc {
                Encoder::Categorical { levels, .. } => Encoder::Categorical { levels, missing },
                other => other,
            }
        }
        ColumnData::Text(v) => Encoder::Text(Tfidf::fit(v)),
    }
}

/// The encoded rows, compressed by row: row `i`'s non-zeros are `idx/val[ptr[i]..ptr[i + 1]]`,
/// positions increasing.
struct Design {
    n: usize,
    p: usize,
    ptr: Vec<usize>,
    idx: Vec<u32>,
    val: Vec<f64>,
}

fn design(encoders: &[Encoder], cols: &[&ColumnData], n: usize) -> Design {
    let p: usize = encoders.iter().map(Encoder::width).sum();
    let encoded: Vec<(usize, Encoded)> = encoders
        .iter()
        .zip(cols)
        .scan(0, |offset, (enc, col)| {
            let at = *offset;
            *offset += enc.width();
            Some((at, encode(enc, col)))
        })
        .collect();
    let mut d = Design { n, p, ptr: Vec::with_capacity(n + 1), idx: Vec::new(), val: Vec::new() };
    d.ptr.push(0);
    for i in 0..n {
        for (offset, e) in &encoded {
            let mut push = |j: usize, x: f64| {
                if x != 0.0 {
                    d.idx.push((offset + j) as u32);
                    d.val.push(x);
                }
            };
            match e {
                Encoded::Value(v) => push(0, v[i]),
                Encoded::Hot(h) => {
                    if let Some(k) = h[i] {
                        push(k, 1.0);
                    }
                }
                Encoded::Sparse(s) => s[i].iter().for_each(|&(j, x)| push(j as usize, x)),
            }
        }
        d.ptr.push(d.idx.len());
    }
    d
}

impl Design {
    /// Row-major `n × p` copy, for the direct solvers.
    fn dense(&self) -> Vec<f64> {
        let mut x = vec![0.0; self.n * self.p];
        for i in 0..self.n {
            for k in self.ptr[i]..self.ptr[i + 1] {
                x[i * self.p + self.idx[k] as usize] = self.val[k];
            }
        }
        x
    }

    /// The same matrix compressed by column (for `Xᵀu` one output per column).
    fn transpose(&self) -> Design {
        let mut count = vec![0usize; self.p + 1];
        for &j in &self.idx {
            count[j as usize + 1] += 1;
        }
        for j in 0..self.p {
            count[j + 1] += count[j];
        }
        let mut next = count.clone();
        let (mut idx, mut val) = (vec![0u32; self.idx.len()], vec![0.0; self.val.len()]);
        for i in 0..self.n {
            for k in self.ptr[i]..self.ptr[i + 1] {
                let j = self.idx[k] as usize;
                idx[next[j]] = i as u32;
                val[next[j]] = self.val[k];
                next[j] += 1;
            }
        }
        Design { n: self.p, p: self.n, ptr: count, idx, val }
    }

    /// `self · v + b` (one value per row).
    fn times(&self, v: &[f64], b: f64) -> Vec<f64> {
        (0..self.n)
            .into_par_iter()
            .with_min_len(256)
            .map(|i| b + (self.ptr[i]..self.ptr[i + 1]).map(|k| self.val[k] * v[self.idx[k] as usize]).sum::<f64>())
            .collect()
    }
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

/// Solves `(a + diag(penalty)) x = b`, adding a growing jitter on the diagonal when `a` is
/// singular (collinear columns with no penalty). `penalty` is 0 for the intercept.
fn solve_ridge(a: &[f64], b: &[f64], p: usize, penalty: &[f64]) -> Result<Vec<f64>, LearnError> {
    let mean_diag = (0..p).map(|j| a[j * p + j]).sum::<f64>() / p.max(1) as f64;
    let mut jitter = 0.0;
    // 0, then 1e-10 … 1e+10 times the mean diagonal: past that the system is hopeless.
    for _ in 0..22 {
        let mut m = a.to_vec();
        for j in 0..p {
            m[j * p + j] += penalty[j] + jitter;
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
    for (name, value) in [("alpha", params.alpha), ("text_alpha", params.text_alpha)] {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(LearnError::InvalidParam { name, reason: "must be a number >= 0".into() });
        }
    }
    let n = features.n_rows();
    let cols: Vec<&ColumnData> = features.columns().iter().map(|c| &c.data).collect();
    let encoders: Vec<Encoder> = cols.iter().map(|c| learn_encoder(c)).collect();
    let d = design(&encoders, &cols, n);
    // The penalty of each encoded column.
    let penalty: Vec<f64> = encoders
        .iter()
        .flat_map(|e| {
            let a = if matches!(e, Encoder::Text(_)) { params.text_alpha } else { params.alpha };
            std::iter::repeat_n(a, e.width())
        })
        .collect();
    let (intercept, weights, train_loss) = if d.p > DIRECT_WIDTH {
        truncated_newton(&d, target, task, &penalty, progress)
    } else {
        fit_direct(&d, target, task, &penalty, progress)?
    };
    let importance = importance(features, &encoders, &weights);
    let report = TrainReport {
        n_iter: train_loss.len(),
        train_loss,
        validation_loss: Vec::new(),
        feature_importance: importance,
    };
    Ok((LinearModel { encoders, intercept, weights }, report))
}

/// Summed |weight| of each input column's encoded columns, as shares, highest first.
fn importance(features: &Frame, encoders: &[Encoder], weights: &[f64]) -> Vec<(String, f64)> {
    let mut importance = Vec::new();
    let mut offset = 0;
    for (col, enc) in features.columns().iter().zip(encoders) {
        let w = enc.width();
        importance.push((col.name.to_string(), weights[offset..offset + w].iter().map(|v| v.abs()).sum::<f64>()));
        offset += w;
    }
    let total: f64 = importance.iter().map(|(_, v)| v).sum();
    for (_, v) in &mut importance {
        *v = if total > 0.0 { *v / total } else { 0.0 };
    }
    importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    importance
}

/// Intercept, weights and the training loss per iteration.
type Solution = (f64, Vec<f64>, Vec<f64>);

/// The direct solves on the dense design: normal equations, or Newton with the full Hessian.
fn fit_direct(
    d: &Design,
    target: &[f64],
    task: Task,
    penalty: &[f64],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Solution, LearnError> {
    let (n, p, x) = (d.n, d.p, d.dense());
    Ok(match task {
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
            let w = solve_ridge(&a, &b, p, penalty)?;
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
            let penalised: Vec<f64> = penalty.iter().copied().chain([0.0]).collect();
            let mean = target.iter().sum::<f64>() / n as f64;
            let mut theta = vec![0.0; q];
            theta[p] = (mean / (1.0 - mean)).ln();
            let z_of = |theta: &[f64], i: usize| theta[p] + (0..p).map(|j| x[i * p + j] * theta[j]).sum::<f64>();
            let objective = |theta: &[f64]| {
                let data: f64 = (0..n).map(|i| softplus(z_of(theta, i)) - target[i] * z_of(theta, i)).sum();
                let pen: f64 = theta[..p].iter().zip(penalty).map(|(w, a)| a * w * w).sum::<f64>();
                (data + pen / 2.0, data / n as f64)
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
                    grad[j] += penalty[j] * theta[j];
                }
                let step = solve_ridge(&hess, &grad, q, &penalised)?;
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
    })
}

/// Minimises `Σ loss(xᵢ·w + b, yᵢ) + α/2 ‖w‖²` by truncated Newton on the sparse design
/// (squared loss ½(z − y)² for regression, whose optimum is ridge's; log-loss for binary).
fn truncated_newton(
    d: &Design,
    target: &[f64],
    task: Task,
    penalty: &[f64],
    progress: &mut dyn FnMut(usize, usize),
) -> Solution {
    let (n, p) = (d.n, d.p);
    // A wide design has more columns than rows: keep the problem strictly convex.
    let alpha: Vec<f64> = penalty.iter().map(|a| a.max(1e-10)).collect();
    let xt = d.transpose();
    let logistic = task == Task::BinaryClassification;
    let mean = target.iter().sum::<f64>() / n as f64;
    let mut b = if logistic { (mean / (1.0 - mean)).ln() } else { mean };
    let mut w = vec![0.0; p];
    let mut z = vec![b; n];
    // Objective, first and second derivatives of the loss at z.
    let objective = |z: &[f64], w: &[f64]| -> (f64, f64) {
        let data: f64 = if logistic {
            z.iter().zip(target).map(|(&z, &y)| softplus(z) - y * z).sum()
        } else {
            z.iter().zip(target).map(|(&z, &y)| 0.5 * (z - y) * (z - y)).sum()
        };
        let mean_loss = if logistic { data / n as f64 } else { 2.0 * data / n as f64 };
        (data + w.iter().zip(&alpha).map(|(v, a)| a * v * v).sum::<f64>() / 2.0, mean_loss)
    };
    let derivatives = |z: &[f64]| -> (Vec<f64>, Vec<f64>) {
        if logistic {
            z.iter()
                .zip(target)
                .map(|(&z, &y)| {
                    let s = sigmoid(z);
                    (s - y, (s * (1.0 - s)).max(1e-12))
                })
                .unzip()
        } else {
            (z.iter().zip(target).map(|(&z, &y)| z - y).collect(), vec![1.0; n])
        }
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mut obj, _) = objective(&z, &w);
    let mut losses = Vec::new();
    // The largest gradient entry at the start: convergence is judged relative to it, so the
    // target's units do not matter.
    let mut first_gmax = None;
    for iter in 0..MAX_NEWTON {
        let (r, h) = derivatives(&z);
        let mut g = xt.times(&r, 0.0);
        for ((gj, wj), a) in g.iter_mut().zip(&w).zip(&alpha) {
            *gj += a * wj;
        }
        let gb: f64 = r.iter().sum();
        let gmax = g.iter().fold(gb.abs(), |m, v| m.max(v.abs()));
        let start = *first_gmax.get_or_insert(gmax);
        if gmax == 0.0 || gmax <= 1e-9 * start {
            break;
        }
        // Conjugate gradients on H s = g, (s, sb) the step for (w, b).
        let hess = |v: &[f64], vb: f64| -> (Vec<f64>, f64) {
            let u: Vec<f64> = d.times(v, vb).iter().zip(&h).map(|(a, h)| a * h).collect();
            let mut hv = xt.times(&u, 0.0);
            for ((o, vj), a) in hv.iter_mut().zip(v).zip(&alpha) {
                *o += a * vj;
            }
            (hv, u.iter().sum())
        };
        let gnorm = (dot(&g, &g) + gb * gb).sqrt();
        let tol = (gnorm / n as f64).sqrt().min(0.5) * gnorm;
        let (mut s, mut sb) = (vec![0.0; p], 0.0);
        let (mut res, mut rb) = (g.clone(), gb);
        let (mut dir, mut db) = (g.clone(), gb);
        let mut rr = gnorm * gnorm;
        for _ in 0..MAX_CG {
            let (hd, hdb) = hess(&dir, db);
            let curvature = dot(&dir, &hd) + db * hdb;
            if curvature <= 0.0 {
                break;
            }
            let step = rr / curvature;
            for j in 0..p {
                s[j] += step * dir[j];
                res[j] -= step * hd[j];
            }
            sb += step * db;
            rb -= step * hdb;
            let rr_new = dot(&res, &res) + rb * rb;
            if rr_new.sqrt() <= tol {
                break;
            }
            let beta = rr_new / rr;
            for j in 0..p {
                dir[j] = res[j] + beta * dir[j];
            }
            db = rb + beta * db;
            rr = rr_new;
        }
        // Backtracking (Armijo) along -s; z moves along -(X s + sb).
        let xs = d.times(&s, sb);
        let slope = dot(&g, &s) + gb * sb;
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let zc: Vec<f64> = z.iter().zip(&xs).map(|(z, x)| z - t * x).collect();
            let wc: Vec<f64> = w.iter().zip(&s).map(|(w, s)| w - t * s).collect();
            let (o, l) = objective(&zc, &wc);
            if o <= obj - 1e-4 * t * slope {
                accepted = Some((zc, wc, o, l));
                break;
            }
            t /= 2.0;
        }
        let Some((zc, wc, o, l)) = accepted else { break };
        let improvement = obj - o;
        (z, w, obj) = (zc, wc, o);
        b -= t * sb;
        losses.push(l);
        progress(iter + 1, MAX_NEWTON);
        if improvement <= 1e-12 * (1.0 + obj.abs()) {
            break;
        }
    }
    if losses.is_empty() {
        losses.push(objective(&z, &w).1);
    }
    progress(losses.len(), losses.len());
    (b, w, losses)
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
                Encoded::Sparse(rows) => {
                    for (o, row) in out.iter_mut().zip(rows) {
                        *o += row.iter().map(|&(j, x)| self.weights[offset + j as usize] * x).sum::<f64>();
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
                Encoder::Text(t) => {
                    for k in 0..t.width() {
                        out.push((format!("{name}:{}", t.term(k)), self.weights[offset + k]));
                    }
                }
            }
            offset += enc.width();
        }
        (intercept, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Column;

    /// Two categorical columns with dozens of levels each and a numeric one: narrow enough
    /// for the direct solve, so both solvers can be run on the same design.
    fn frame(n: usize) -> (Frame, Vec<f64>, Vec<f64>) {
        let mut rng = crate::split::rng(7);
        use rand::RngExt;
        let a: Vec<usize> = (0..n).map(|_| rng.random_range(0..60)).collect();
        let b: Vec<usize> = (0..n).map(|_| rng.random_range(0..40)).collect();
        let x: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let score: Vec<f64> =
            (0..n).map(|i| ((a[i] % 7) as f64 - 3.0) * 0.4 + ((b[i] % 5) as f64 - 2.0) * 0.3 + x[i]).collect();
        let y_reg: Vec<f64> = score.iter().map(|s| 3.0 * s + rng.random_range(-0.5..0.5)).collect();
        let y_bin: Vec<f64> = score.iter().map(|s| f64::from(rng.random_range(0.0..1.0) < sigmoid(2.0 * s))).collect();
        let f = Frame::from_columns(vec![
            Column::categorical("a", a.iter().map(|v| Some(format!("a{v}"))).collect()),
            Column::categorical("b", b.iter().map(|v| Some(format!("b{v}"))).collect()),
            Column::numeric("x", x),
        ])
        .unwrap();
        (f, y_reg, y_bin)
    }

    #[test]
    fn truncated_newton_reaches_the_direct_solution() {
        let (f, y_reg, y_bin) = frame(2000);
        let cols: Vec<&ColumnData> = f.columns().iter().map(|c| &c.data).collect();
        let encoders: Vec<Encoder> = cols.iter().map(|c| learn_encoder(c)).collect();
        let d = design(&encoders, &cols, f.n_rows());
        assert!(d.p > 100 && d.p <= DIRECT_WIDTH);
        // Targets in small units too: convergence is judged relative to the first gradient.
        let y_small: Vec<f64> = y_reg.iter().map(|y| y * 1e-5).collect();
        for (task, y, alpha) in [
            (Task::Regression, &y_reg, 1.0),
            (Task::Regression, &y_small, 1.0),
            (Task::BinaryClassification, &y_bin, 0.5),
        ] {
            let penalty = vec![alpha; d.p];
            let (b1, w1, _) = fit_direct(&d, y, task, &penalty, &mut |_, _| {}).unwrap();
            let (b2, w2, _) = truncated_newton(&d, y, task, &penalty, &mut |_, _| {});
            let scale = w1.iter().fold(b1.abs(), |m, v| m.max(v.abs()));
            let worst = w1.iter().zip(&w2).fold((b1 - b2).abs(), |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-4 * scale, "{task:?}: worst difference {worst} (scale {scale})");
        }
    }

    #[test]
    fn a_text_column_becomes_tfidf_and_predicts_the_same_after_a_round_trip() {
        let docs = ["win cash now", "free cash prize", "meeting at noon", "lunch meeting tomorrow", "cash cash win"];
        let rows: Vec<Option<String>> = (0..40).map(|i| Some(docs[i % 5].to_string())).collect();
        let y: Vec<f64> = (0..40).map(|i| f64::from(matches!(i % 5, 0 | 1 | 4))).collect();
        let f = Frame::from_columns(vec![Column::text("t", rows)]).unwrap();
        let (m, _) = fit(&f, &y, Task::BinaryClassification, &LinearParams::default(), &mut |_, _| {}).unwrap();
        let cols: Vec<&ColumnData> = f.columns().iter().map(|c| &c.data).collect();
        let raw = m.predict_raw(&cols);
        assert!(raw.iter().zip(&y).all(|(r, y)| (*r > 0.0) == (*y == 1.0)));
        let back: LinearModel = serde_json::from_slice(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(back.predict_raw(&cols), raw);
        let unseen = ColumnData::Text(vec![Some("CASH".into()), Some("noon".into()), Some("zzz".into()), None]);
        let p = back.predict_raw(&[&unseen]);
        assert!(p[0] > 0.0 && p[1] < 0.0 && p[2] == p[3], "{p:?}");
    }
}
