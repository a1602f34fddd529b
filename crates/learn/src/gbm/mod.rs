//! Histogram gradient boosting, modelled on scikit-learn's `HistGradientBoostingRegressor` /
//! `Classifier`; the defaults differ from theirs where measured better (see [`GbmParams`]).
//!
//! Training: bin the rows (module `binning`), start from the mean (regression) or the
//! log-odds of the positive rate (binary), then per iteration compute gradients of the
//! squared error or the log-loss, grow one leaf-wise tree on them (module `grow`), and add
//! its shrunk leaf values to the raw predictions. Missing values have their own bin whose
//! direction is learned per split; categorical columns are split natively on sets of levels.
//!
//! Early stopping (by default at every size; scikit-learn's `'auto'` only above 10 000 rows)
//! holds out a seeded 10% of the rows and stops when the loss on them stops improving. By
//! default ([`GbmParams::refit`]), up to 200 000 rows, the returned model is then the one
//! grown on *all* rows for the iteration count with the lowest held-out loss: a second run,
//! alongside the first, cut to that length. Boosting is sequential, so its first `k` trees
//! are exactly what a `k`-iteration run would give.
//!
//! Parallelism (rayon, within whatever pool the caller installs): columns are binned in
//! parallel; a node's histograms and its partition are cut into chunks of rows (module
//! `hist`), and an iteration's per-row work (gradients, losses, validation scores) into
//! chunks of [`ROW_CHUNK`] rows. Every cut depends on sizes only and every sum adds its
//! chunks in order.
//!
//! Architecture Invariant: nothing here draws random numbers except the validation split,
//! and every floating-point sum is taken in an order fixed by the data alone, so a seed fixes
//! the model to the bit whatever the number of threads.

mod binning;
mod exits;
mod flat;
mod grow;
mod hist;
mod tree;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::LearnError;
use crate::frame::{categorical_levels, ColumnData, Frame};
use crate::split::{stratified_split, train_test_split};
use crate::task::{sigmoid, softplus, Task, TrainReport};
use binning::Coding;
use flat::Flat;
use grow::{GrowParams, Grower, TrainData};
use tree::{Coded, Tree};

/// Gradient boosting hyper-parameters. [`Default`] gives scikit-learn's
/// `HistGradientBoostingRegressor()` defaults except where a field says "ours": early
/// stopping at every size, up to 150 iterations, and `refit` up to 200 000 rows (see
/// `bench/learn/README.md` for the measurements behind them). scikit-learn's exact defaults
/// are `GbmParams { max_iter: 100, early_stopping_min_samples: 10_000, refit: false, .. }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbmParams {
    /// Shrinkage applied to every leaf value (0.1).
    pub learning_rate: f64,
    /// Maximum number of boosting iterations, i.e. trees (ours: 150, scikit-learn's 100;
    /// early stopping picks the count below it).
    pub max_iter: usize,
    /// Maximum leaves per tree (31).
    pub max_leaf_nodes: usize,
    /// Maximum depth of a tree, root at depth 0 (`None`: unlimited).
    pub max_depth: Option<usize>,
    /// Minimum training rows in a leaf (20).
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (0).
    pub l2_regularization: f64,
    /// Maximum bins per numeric feature, and maximum levels kept per categorical feature,
    /// between 2 and 255 (255).
    pub max_bins: usize,
    /// Early stopping on a held-out validation split, enabled only when the training frame
    /// has more than `early_stopping_min_samples` rows (true: scikit-learn's `'auto'`).
    pub early_stopping: bool,
    /// Row count above which early stopping engages (ours: 0, i.e. whenever
    /// `early_stopping` is on and the rows can be split; scikit-learn's `'auto'`: 10 000).
    pub early_stopping_min_samples: usize,
    /// Share of rows held out for early stopping (0.1).
    pub validation_fraction: f64,
    /// Stop when none of the last `n_iter_no_change` iterations improved the validation
    /// loss by more than `tol` over the one before them (10).
    pub n_iter_no_change: usize,
    /// Minimum improvement of the validation loss (1e-7).
    pub tol: f64,
    /// When early stopping held rows out, return the model grown on all rows for the number
    /// of iterations after which the validation loss was lowest (true, ours), rather than
    /// the one grown on the remaining 90% with every iteration it ran (false, scikit-learn's
    /// behaviour). The second run is a job of the current rayon
    /// pool running alongside the first: about twice the CPU, little more wall time with two
    /// or more threads. With refit, the seed only matters through the iteration count.
    pub refit: bool,
    /// Largest number of rows `refit` applies to (ours: 200 000). Above it, holding 10% out
    /// costs the model little: on Friedman #1 × 20 refitting improved the test RMSE by 0.12%
    /// at 100 000 rows, 0.04% at 300 000 and not at all at 1 000 000, while the second run
    /// doubles the CPU and, at a million rows, took half again the wall time
    /// (`bench/learn/README.md`).
    pub refit_max_samples: usize,
    /// Seed of the validation split (the only randomness).
    pub seed: u64,
}

impl Default for GbmParams {
    fn default() -> GbmParams {
        GbmParams {
            learning_rate: 0.1,
            max_iter: 150,
            max_leaf_nodes: 31,
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            early_stopping: true,
            early_stopping_min_samples: 0,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            refit: true,
            refit_max_samples: 200_000,
            seed: 0,
        }
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> LearnError {
    LearnError::InvalidParam { name, reason: reason.into() }
}

impl GbmParams {
    fn validate(&self) -> Result<(), LearnError> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(invalid("learning_rate", "must be a positive number"));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter", "must be at least 1"));
        }
        if self.max_leaf_nodes < 2 {
            return Err(invalid("max_leaf_nodes", "must be at least 2"));
        }
        if self.max_depth == Some(0) {
            return Err(invalid("max_depth", "must be at least 1 (or unset)"));
        }
        if self.min_samples_leaf == 0 {
            return Err(invalid("min_samples_leaf", "must be at least 1"));
        }
        if !(self.l2_regularization >= 0.0 && self.l2_regularization.is_finite()) {
            return Err(invalid("l2_regularization", "must be a number >= 0"));
        }
        if !(2..=255).contains(&self.max_bins) {
            return Err(invalid("max_bins", "must be between 2 and 255"));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return Err(invalid("validation_fraction", "must be in (0, 1)"));
        }
        if self.n_iter_no_change == 0 {
            return Err(invalid("n_iter_no_change", "must be at least 1"));
        }
        if self.tol.is_nan() || self.tol < 0.0 {
            return Err(invalid("tol", "must be a number >= 0"));
        }
        Ok(())
    }
}

/// A fitted ensemble. `codings` are aligned with the model schema's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GbmModel {
    baseline: f64,
    codings: Vec<Coding>,
    trees: Vec<Tree>,
    /// `trees` compiled for scoring, at the first prediction (not serialised).
    #[serde(skip)]
    flat: Compiled,
}

/// The compiled form of a model's trees; derived from them, so never part of equality.
#[derive(Debug, Clone, Default)]
struct Compiled(OnceLock<Flat>);

impl PartialEq for Compiled {
    fn eq(&self, _: &Compiled) -> bool {
        true
    }
}

/// Rows per block of [`GbmModel::predict_raw`]: large enough that a tree's nodes are read
/// from cache many times over, small enough that 1,000 rows keep two cores busy.
const PREDICT_BLOCK: usize = 128;

/// Coded columns for tree walks (`cols` aligned with `codings`).
fn code_columns<'a>(codings: &[Coding], cols: &[&'a ColumnData]) -> Vec<Coded<'a>> {
    codings
        .iter()
        .zip(cols)
        .map(|(coding, col)| match (coding, col) {
            (Coding::Numeric, ColumnData::Numeric(v)) => Coded::Numeric(Cow::Borrowed(v)),
            (Coding::Categorical { levels }, ColumnData::Categorical(v) | ColumnData::Text(v)) => {
                Coded::Codes(binning::level_codes(levels, v.iter().map(|s| s.as_deref())))
            }
            // The caller checks kinds against the schema; a mismatch reads as all missing.
            (Coding::Numeric, c) => Coded::Numeric(Cow::Owned(vec![f64::NAN; c.len()])),
            (Coding::Categorical { .. }, c) => Coded::Codes(vec![binning::MISSING; c.len()]),
        })
        .collect()
}

impl GbmModel {
    /// Raw scores (before the link function) of the rows of `cols`, which are aligned with
    /// the schema and checked to be of its kinds.
    ///
    /// Rows go in blocks of [`PREDICT_BLOCK`] through the compiled trees (module `flat`),
    /// each block tree by tree (one tree's nodes stay in cache for the whole block); every row still adds baseline, tree 0, tree 1, … in that
    /// order, so the numbers do not depend on the blocking. A single block runs on the
    /// calling thread.
    pub(crate) fn predict_raw(&self, cols: &[&ColumnData]) -> Vec<f64> {
        let n = cols.first().map_or(0, |c| c.len());
        let coded = code_columns(&self.codings, cols);
        let flat = self.flat.0.get_or_init(|| Flat::new(&self.trees, self.codings.len()));
        let mut out = vec![self.baseline; n];
        let block = |index: usize, o: &mut [f64]| flat.add_block(&coded, index * PREDICT_BLOCK, o);
        if n <= PREDICT_BLOCK {
            block(0, &mut out);
        } else {
            out.par_chunks_mut(PREDICT_BLOCK).enumerate().for_each(|(i, o)| block(i, o));
        }
        out
    }

    /// Checks what deserialising cannot: every tree has nodes, every child comes after its
    /// parent and inside its tree (so walks end), every split reads a model column of its own
    /// kind. The reason names the tree and the node.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.nodes.is_empty() {
                return Err(format!("tree {t} has no nodes"));
            }
            for (i, node) in tree.nodes.iter().enumerate() {
                let (feature, left, right, categorical) = match node {
                    tree::Node::Leaf { .. } => continue,
                    tree::Node::Numeric { feature, left, right, .. } => (*feature, *left, *right, false),
                    tree::Node::Categorical { feature, left, right, .. } => (*feature, *left, *right, true),
                };
                let at = |what: &str| format!("tree {t}, node {i}: {what}");
                for c in [left, right] {
                    if c as usize <= i || c as usize >= tree.nodes.len() {
                        return Err(at(&format!(
                            "child {c} is not a later node of the tree ({} nodes)",
                            tree.nodes.len()
                        )));
                    }
                }
                match self.codings.get(feature as usize) {
                    None => {
                        return Err(at(&format!("feature {feature} is not one of the {} columns", self.codings.len())))
                    }
                    Some(Coding::Numeric) if categorical => return Err(at("a categorical split on a numeric column")),
                    Some(Coding::Categorical { .. }) if !categorical => {
                        return Err(at("a numeric split on a categorical column"))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    pub(crate) fn n_trees(&self) -> usize {
        self.trees.len()
    }
}

/// The loss being boosted, in raw-score space.
#[derive(Clone, Copy)]
enum Loss {
    /// Squared error; reported as the mean squared error.
    Squared,
    /// Binary cross-entropy of `sigmoid(raw)`; reported as the mean log-loss.
    Binomial,
}

impl Loss {
    fn baseline(self, y: &[f64]) -> f64 {
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        match self {
            Loss::Squared => mean,
            Loss::Binomial => {
                let p = mean.clamp(1e-15, 1.0 - 1e-15);
                (p / (1.0 - p)).ln()
            }
        }
    }

    /// Fills gradients (and hessians, for the binomial loss), chunks of rows in parallel.
    fn gradients(self, y: &[f64], raw: &[f64], grad: &mut [f64], hess: &mut [f64]) {
        match self {
            Loss::Squared => grad.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(k, grad)| {
                let at = k * ROW_CHUNK;
                for ((g, &r), &t) in grad.iter_mut().zip(&raw[at..]).zip(&y[at..]) {
                    *g = r - t;
                }
            }),
            Loss::Binomial => grad.par_chunks_mut(ROW_CHUNK).zip(hess.par_chunks_mut(ROW_CHUNK)).enumerate().for_each(
                |(k, (grad, hess))| {
                    let at = k * ROW_CHUNK;
                    for (((g, h), &r), &t) in grad.iter_mut().zip(hess.iter_mut()).zip(&raw[at..]).zip(&y[at..]) {
                        let p = sigmoid(r);
                        *g = p - t;
                        *h = p * (1.0 - p);
                    }
                },
            ),
        }
    }

    fn mean(self, y: &[f64], raw: &[f64]) -> f64 {
        let total = chunked_sum(y.len(), |rows| {
            let (y, raw) = (&y[rows.clone()], &raw[rows]);
            match self {
                Loss::Squared => y.iter().zip(raw).map(|(t, r)| (t - r) * (t - r)).sum::<f64>(),
                Loss::Binomial => y.iter().zip(raw).map(|(t, r)| softplus(*r) - t * r).sum(),
            }
        });
        total / y.len() as f64
    }
}

/// Rows per chunk of the per-row work of an iteration (gradients, losses, validation
/// scores), done in parallel. Sums are taken chunk by chunk and the chunk sums added in
/// order, so they never depend on the thread count.
const ROW_CHUNK: usize = 1 << 14;

/// `f` summed over the chunks of `0..n`, in chunk order.
fn chunked_sum(n: usize, f: impl Fn(std::ops::Range<usize>) -> f64 + Sync) -> f64 {
    if n <= ROW_CHUNK {
        return f(0..n);
    }
    let parts: Vec<f64> =
        (0..n.div_ceil(ROW_CHUNK)).into_par_iter().map(|k| f(k * ROW_CHUNK..((k + 1) * ROW_CHUNK).min(n))).collect();
    parts.iter().sum()
}

/// scikit-learn's rule: stop when none of the last `n` scores beats the score before them
/// by more than `tol` (scores are negated losses, the first one before any tree).
fn should_stop(scores: &[f64], n: usize, tol: f64) -> bool {
    if scores.len() < n + 1 {
        return false;
    }
    let reference = scores[scores.len() - n - 1] + tol;
    !scores[scores.len() - n..].iter().any(|&s| s > reference)
}

/// The number of trees (at least 1) after which the validation loss was lowest; the first
/// such count on ties. `losses[i]` is the loss after `i + 1` trees.
fn best_length(losses: &[f64]) -> usize {
    let mut best = 0;
    for (i, l) in losses.iter().enumerate() {
        if *l < losses[best] {
            best = i;
        }
    }
    best + 1
}

/// One boosting run: the trees grown on `rows`, scored on `val_rows` if any.
struct Run {
    baseline: f64,
    codings: Vec<Coding>,
    trees: Vec<Tree>,
    /// `(feature, gain)` of each tree's splits, per tree.
    tree_gains: Vec<Vec<(usize, f64)>>,
    train_loss: Vec<f64>,
    validation_loss: Vec<f64>,
}

/// A tree grower with the histogram bins of the loss.
enum Growers<'a> {
    Unit(Grower<'a, hist::Unit>),
    Newton(Grower<'a, hist::Newton>),
}

/// One feature column coded for training: the codes of the training rows, the validation
/// rows ready for tree walks, and what the trees need to know of the coding.
struct ColumnCoding {
    codes: Vec<u8>,
    validation: Coded<'static>,
    coding: Coding,
    n_bins: usize,
    /// Numeric bin edges (empty for categorical columns).
    edges: Vec<f64>,
}

fn code_column(data: &ColumnData, rows: &[usize], val_rows: &[usize], max_bins: usize) -> ColumnCoding {
    match data {
        ColumnData::Numeric(v) => {
            let train: Vec<f64> = rows.iter().map(|&i| v[i]).collect();
            let edges = binning::numeric_edges(&train, max_bins);
            let codes = train.iter().map(|&x| binning::bin_of(&edges, x)).collect();
            ColumnCoding {
                codes,
                validation: Coded::Numeric(Cow::Owned(val_rows.iter().map(|&i| v[i]).collect())),
                coding: Coding::Numeric,
                n_bins: edges.len() + 1,
                edges,
            }
        }
        // `model::fit` refuses text columns for trees before we get here.
        ColumnData::Categorical(v) | ColumnData::Text(v) => {
            let levels = categorical_levels(rows.iter().map(|&i| v[i].as_deref()), max_bins);
            ColumnCoding {
                codes: binning::level_codes(&levels, rows.iter().map(|&i| v[i].as_deref())),
                validation: Coded::Codes(binning::level_codes(&levels, val_rows.iter().map(|&i| v[i].as_deref()))),
                n_bins: levels.len(),
                coding: Coding::Categorical { levels },
                edges: Vec::new(),
            }
        }
    }
}

/// Bins `rows`, codes `val_rows` alike, and boosts while fewer than `limit` trees exist (the
/// limit may be lowered from another thread) and `after_iter(trees, validation loss)` says
/// go on. `after_iter` is first called with 0 trees, for the baseline's validation loss.
#[allow(clippy::too_many_arguments)]
fn boost(
    features: &Frame,
    target: &[f64],
    rows: &[usize],
    val_rows: &[usize],
    loss: Loss,
    params: &GbmParams,
    limit: &AtomicUsize,
    mut after_iter: impl FnMut(usize, Option<f64>) -> bool,
) -> Run {
    // Each column is binned on its own, in parallel: finding the edges and coding every value.
    let coded: Vec<ColumnCoding> =
        features.columns().par_iter().map(|col| code_column(&col.data, rows, val_rows, params.max_bins)).collect();
    let mut data = TrainData {
        n_rows: rows.len(),
        n_features: coded.len(),
        codes: Vec::new(),
        columns: Vec::with_capacity(coded.len()),
        n_bins: Vec::with_capacity(coded.len()),
        has_missing: Vec::with_capacity(coded.len()),
        categorical: Vec::with_capacity(coded.len()),
        edges: Vec::with_capacity(coded.len()),
    };
    let mut codings = Vec::with_capacity(coded.len());
    let mut val_cols = Vec::with_capacity(coded.len());
    for c in coded {
        data.n_bins.push(c.n_bins);
        data.categorical.push(matches!(c.coding, Coding::Categorical { .. }));
        data.has_missing.push(c.codes.contains(&binning::MISSING));
        data.columns.push(c.codes);
        data.edges.push(c.edges);
        codings.push(c.coding);
        val_cols.push(c.validation);
    }
    let nf = data.n_features;
    data.codes = vec![0; rows.len() * nf];
    for (f, col) in data.columns.iter().enumerate() {
        for (row, &code) in data.codes.chunks_exact_mut(nf).zip(col) {
            row[f] = code;
        }
    }
    let y: Vec<f64> = rows.iter().map(|&i| target[i]).collect();
    let y_val: Vec<f64> = val_rows.iter().map(|&i| target[i]).collect();

    let baseline = loss.baseline(&y);
    let mut raw = vec![baseline; y.len()];
    let mut raw_val = vec![baseline; y_val.len()];
    let mut grad = vec![0.0; y.len()];
    let mut hess = match loss {
        Loss::Squared => Vec::new(),
        Loss::Binomial => vec![0.0; y.len()],
    };
    let grow_params = GrowParams {
        max_leaf_nodes: params.max_leaf_nodes,
        max_depth: params.max_depth,
        min_samples_leaf: params.min_samples_leaf,
        l2: params.l2_regularization,
        learning_rate: params.learning_rate,
    };
    let mut grower = match loss {
        Loss::Squared => Growers::Unit(Grower::new(&data, grow_params)),
        Loss::Binomial => Growers::Newton(Grower::new(&data, grow_params)),
    };
    let mut run = Run {
        baseline,
        codings,
        trees: Vec::new(),
        tree_gains: Vec::new(),
        train_loss: Vec::new(),
        validation_loss: Vec::new(),
    };
    let initial = (!val_rows.is_empty()).then(|| loss.mean(&y_val, &raw_val));
    if !after_iter(0, initial) {
        return run;
    }
    while run.trees.len() < limit.load(Ordering::Relaxed) {
        loss.gradients(&y, &raw, &mut grad, &mut hess);
        let grown = match &mut grower {
            Growers::Unit(g) => g.grow(&grad, None),
            Growers::Newton(g) => g.grow(&grad, Some(&hess)),
        };
        match &grower {
            Growers::Unit(g) => g.add_leaf_values(&grown, &mut raw),
            Growers::Newton(g) => g.add_leaf_values(&grown, &mut raw),
        }
        run.train_loss.push(loss.mean(&y, &raw));
        let val_loss = (!val_rows.is_empty()).then(|| {
            raw_val.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(k, raw)| {
                for (i, r) in raw.iter_mut().enumerate() {
                    *r += grown.tree.predict_row(&val_cols, k * ROW_CHUNK + i);
                }
            });
            loss.mean(&y_val, &raw_val)
        });
        run.validation_loss.extend(val_loss);
        run.trees.push(grown.tree);
        run.tree_gains.push(grown.gains);
        if !after_iter(run.trees.len(), val_loss) {
            break;
        }
    }
    run
}

/// Fits a boosted ensemble; the caller has validated the target for the task.
pub(crate) fn fit(
    features: &Frame,
    target: &[f64],
    task: Task,
    params: &GbmParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(GbmModel, TrainReport), LearnError> {
    params.validate()?;
    let n = features.n_rows();
    let loss = match task {
        Task::Regression => Loss::Squared,
        Task::BinaryClassification => Loss::Binomial,
    };
    let all: Vec<usize> = (0..n).collect();
    let max_iter = params.max_iter;
    // Holding rows out needs a row on either side of the split; with fewer rows (a class
    // each, for a classifier), every row trains for `max_iter` trees.
    let split = (params.early_stopping && n > params.early_stopping_min_samples)
        .then(|| match task {
            Task::Regression => train_test_split(n, params.validation_fraction, params.seed),
            Task::BinaryClassification => stratified_split(target, params.validation_fraction, params.seed),
        })
        .filter(|(train, val)| !train.is_empty() && !val.is_empty());

    let (run, validation_loss) = if let Some((train_rows, val_rows)) = split {
        // The monitored run on the remaining rows decides the iteration count; with
        // `refit`, a run on all rows goes alongside and is cut to the count after which the
        // validation loss was lowest (boosting is sequential, so its first k trees are
        // exactly a k-iteration model).
        let monitor_limit = AtomicUsize::new(max_iter);
        let full_limit = AtomicUsize::new(max_iter);
        let monitor = |progress: &mut dyn FnMut(usize, usize)| {
            let mut scores = Vec::new();
            let run = boost(features, target, &train_rows, &val_rows, loss, params, &monitor_limit, |i, val_loss| {
                progress(i, max_iter);
                scores.push(-val_loss.expect("validation rows are scored"));
                // scores[0] is the loss of the baseline alone.
                !should_stop(&scores, params.n_iter_no_change, params.tol)
            });
            full_limit.store(best_length(&run.validation_loss), Ordering::Relaxed);
            run
        };
        if params.refit && n <= params.refit_max_samples {
            // The refit run is a job of the current rayon pool, so `ThreadPool::install`
            // bounds it too; on a one-thread pool it simply runs after the monitored run.
            let mut full = None;
            let monitored = rayon::in_place_scope(|s| {
                s.spawn(|_| {
                    full = Some(boost(features, target, &all, &[], loss, params, &full_limit, |_, _| true));
                });
                monitor(progress)
            });
            let mut full = full.expect("the refit run has finished with its scope");
            let k = best_length(&monitored.validation_loss);
            full.trees.truncate(k);
            full.tree_gains.truncate(k);
            full.train_loss.truncate(k);
            (full, monitored.validation_loss)
        } else {
            let mut run = monitor(progress);
            let v = std::mem::take(&mut run.validation_loss);
            (run, v)
        }
    } else {
        let limit = AtomicUsize::new(max_iter);
        let run = boost(features, target, &all, &[], loss, params, &limit, |i, _| {
            progress(i, max_iter);
            true
        });
        (run, Vec::new())
    };
    progress(run.trees.len(), run.trees.len());

    let mut gains = vec![0.0; features.columns().len()];
    for &(f, g) in run.tree_gains.iter().flatten() {
        gains[f] += g;
    }
    let total: f64 = gains.iter().sum();
    let mut feature_importance: Vec<(String, f64)> = features
        .columns()
        .iter()
        .zip(&gains)
        .map(|(c, &g)| (c.name.to_string(), if total > 0.0 { g / total } else { 0.0 }))
        .collect();
    feature_importance.sort_by(|a, b| b.1.total_cmp(&a.1));
    let report =
        TrainReport { n_iter: run.trees.len(), train_loss: run.train_loss, validation_loss, feature_importance };
    Ok((GbmModel { baseline: run.baseline, codings: run.codings, trees: run.trees, flat: Compiled::default() }, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopping_rule_matches_scikit_learn() {
        // Scores improve, then plateau: stop once the last 2 do not beat the one before.
        assert!(!should_stop(&[-3.0, -2.0], 2, 0.0));
        assert!(!should_stop(&[-3.0, -2.0, -1.0], 2, 0.0));
        assert!(should_stop(&[-3.0, -2.0, -2.0, -2.0], 2, 0.0));
        assert!(!should_stop(&[-3.0, -2.0, -2.0, -1.5], 2, 0.0));
        assert!(should_stop(&[-3.0, -2.0, -2.0, -1.5], 2, 1.0));
    }

    #[test]
    fn link_helpers_are_stable() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
        assert!((softplus(800.0) - 800.0).abs() < 1e-9);
        assert!(softplus(-800.0) >= 0.0);
    }
}
