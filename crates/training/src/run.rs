//! One training run against a tracking server: data → split → fit → evaluate → log →
//! package → register → (champion/challenger) → promote.

use crate::data::{self, Source};
use crate::{plot, Result, TrainError};
use learn::{Frame, Model, ModelSpec, Task};
use mlflow_client::{Client, ModelUri};
use std::path::{Path, PathBuf};

/// Everything a training run needs to know.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub data: Source,
    pub cache_dir: PathBuf,
    pub target: String,
    pub task: Task,
    /// Free-text columns (tokens, TF-IDF); `None` takes the columns that read as text when the
    /// model is linear (`learn::Frame::text_like_columns`).
    pub text_columns: Option<Vec<String>>,
    /// Classification: the target value that is the positive class (1). `None`: a 0/1 target
    /// as is, or of two string values the greater (scikit-learn's `classes_[1]`).
    pub positive_label: Option<String>,
    /// Score on this data set instead of holding rows of `data` out (all of `data` trains).
    pub test_data: Option<Source>,
    pub spec: ModelSpec,
    pub experiment: String,
    pub run_name: Option<String>,
    pub model_name: String,
    pub seed: u64,
    pub test_fraction: f64,
    /// Draw the holdout only from rows at this index and after (e.g. newly labelled rows
    /// appended to the old training data, which the champion never saw); `None` draws it
    /// from all rows.
    pub holdout_from_row: Option<usize>,
    /// Set this alias on the new version unconditionally.
    pub alias: Option<String>,
    /// Compare with the version behind this alias on the same holdout.
    pub compare_with: Option<String>,
    /// With `compare_with`: move the alias to the new version when it wins.
    pub promote: bool,
    /// Relative improvement the challenger needs (0.01 = 1% lower loss, or 1% higher score).
    pub margin: f64,
    /// The holdout metric champion and challenger are compared by (e.g. `f1`, `roc_auc`,
    /// `mae`); `None`: RMSE for regression, log loss for classification.
    pub metric: Option<String>,
    /// Stage given to a promoted version (MLflow's `Production`), if any.
    pub stage: Option<String>,
    pub show_progress: bool,
}

/// Scores on the holdout; `primary` is the one champion and challenger are compared by (RMSE or
/// log loss unless [`TrainConfig::metric`] names another; [`higher_is_better`] says which way).
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    pub primary: (String, f64),
    pub metrics: Vec<(String, f64)>,
}

impl Holdout {
    /// A metric's value by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// The same scores, compared by `name` (a metric of the task) from now on.
    pub fn judged_by(mut self, name: &str) -> Result<Holdout> {
        let value = self.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.metrics.iter().map(|(k, _)| k.as_str()).collect();
            TrainError::Data(format!("metric '{name}' is not a holdout metric of this task ({})", names.join(", ")))
        })?;
        self.primary = (name.to_owned(), value);
        Ok(self)
    }
}

/// The holdout metrics of a task, by name (what `TrainConfig::metric` may name).
pub fn holdout_metrics(task: Task) -> &'static [&'static str] {
    match task {
        Task::Regression => &["rmse", "mae", "r2"],
        Task::BinaryClassification => &["log_loss", "roc_auc", "accuracy", "precision", "recall", "f1"],
    }
}

/// Whether a larger value of the holdout metric `name` is better (F1, ROC AUC, accuracy,
/// precision, recall, R²) or worse (RMSE, MAE, log loss).
pub fn higher_is_better(name: &str) -> bool {
    matches!(name, "f1" | "roc_auc" | "accuracy" | "precision" | "recall" | "r2")
}

/// Champion vs challenger on the same holdout.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub alias: String,
    pub champion_version: Option<String>,
    pub champion_score: Option<f64>,
    pub challenger_score: f64,
    pub challenger_wins: bool,
    pub reason: String,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    pub run_id: String,
    pub model_id: String,
    pub model_name: String,
    pub version: String,
    pub holdout: Holdout,
    pub n_iter: usize,
    pub comparison: Option<Comparison>,
    pub promoted: bool,
}

/// Holdout scores of `model` on (`features`, `y`).
pub fn evaluate(model: &Model, features: &Frame, y: &[f64]) -> Result<Holdout> {
    let p = model.predict(features)?;
    Ok(score(model.task(), y, &p))
}

/// Holdout scores of a packaged model of any flavor: a factory model scores as itself; a
/// model of another flavor (e.g. ONNX logged by a team's own `train.py`) by its first output
/// (a classifier's positive-class probability), judged as `task`.
pub fn evaluate_packaged(model: &package::Model, task: Task, features: &Frame, y: &[f64]) -> Result<Holdout> {
    match model.factory() {
        Some(m) => evaluate(m, features, y),
        None => Ok(score(task, y, &model.predict(features)?.scores())),
    }
}

/// Holdout scores of predictions `p` for targets `y`.
fn score(task: Task, y: &[f64], p: &[f64]) -> Holdout {
    match task {
        Task::Regression => {
            let rmse = learn::rmse(y, p);
            Holdout {
                primary: ("rmse".into(), rmse),
                metrics: vec![("rmse".into(), rmse), ("mae".into(), learn::mae(y, p)), ("r2".into(), learn::r2(y, p))],
            }
        }
        Task::BinaryClassification => {
            let ll = learn::log_loss(y, p);
            let (precision, recall, f1) = learn::precision_recall_f1(y, p);
            Holdout {
                primary: ("log_loss".into(), ll),
                metrics: vec![
                    ("log_loss".into(), ll),
                    ("roc_auc".into(), learn::roc_auc(y, p)),
                    ("accuracy".into(), learn::accuracy(y, p)),
                    ("precision".into(), precision),
                    ("recall".into(), recall),
                    ("f1".into(), f1),
                ],
            }
        }
    }
}

/// The features and the numeric target of a frame; rows without a target are dropped. For
/// classification, `positive` names the positive class (see [`TrainConfig::positive_label`]);
/// a string target becomes 1 for it and 0 for the other value.
pub fn split_target(frame: &Frame, target: &str, task: Task, positive: Option<&str>) -> Result<(Frame, Vec<f64>)> {
    let col = frame.column(target).ok_or_else(|| {
        let names: Vec<&str> = frame.columns().iter().map(|c| &*c.name).collect();
        TrainError::Data(format!("target column '{target}' is not in the data (columns: {})", names.join(", ")))
    })?;
    let values: Vec<f64> = match (&col.data, task, positive) {
        (learn::ColumnData::Numeric(v), _, None) => v.clone(),
        (learn::ColumnData::Numeric(v), Task::BinaryClassification, Some(label)) => {
            let want: f64 = label.trim().parse().map_err(|_| {
                TrainError::Data(format!("--positive-label '{label}': target column '{target}' holds numbers"))
            })?;
            v.iter().map(|&x| if x.is_finite() { f64::from(x == want) } else { f64::NAN }).collect()
        }
        (data, Task::BinaryClassification, _) if data.strings().is_some() => {
            let strings = data.strings().unwrap_or_default();
            let levels: std::collections::BTreeSet<&str> = strings.iter().flatten().map(String::as_str).collect();
            let shown = || levels.iter().take(10).copied().collect::<Vec<_>>().join(", ");
            let pos = match positive {
                Some(p) if levels.contains(p) => p,
                Some(p) => {
                    return Err(TrainError::Data(format!(
                        "--positive-label '{p}' is not a value of target column '{target}' (values: {})",
                        shown()
                    )))
                }
                None if levels.len() == 2 => levels.last().copied().unwrap_or_default(),
                None => {
                    return Err(TrainError::Data(format!(
                        "target column '{target}' has {} values ({}): binary classification needs two, or \
                         --positive-label to say which value is positive",
                        levels.len(),
                        shown()
                    )))
                }
            };
            strings.iter().map(|s| s.as_deref().map_or(f64::NAN, |s| f64::from(s == pos))).collect()
        }
        (_, Task::Regression, Some(_)) => {
            return Err(TrainError::Data("--positive-label is for classification (--task classification)".into()))
        }
        _ => return Err(TrainError::Data(format!("target column '{target}' must be numeric"))),
    };
    let keep: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_finite()).collect();
    if keep.is_empty() {
        return Err(TrainError::Data(format!("target column '{target}' has no values")));
    }
    let y = keep.iter().map(|&i| values[i]).collect();
    Ok((frame.without(target).select_rows(&keep), y))
}

fn spec_params(spec: &ModelSpec) -> Vec<(String, String)> {
    let p = |k: &str, v: String| (k.to_string(), v);
    match spec {
        ModelSpec::Gbm(g) => vec![
            p("model", "gbm".into()),
            p("learning_rate", g.learning_rate.to_string()),
            p("max_iter", g.max_iter.to_string()),
            p("max_leaf_nodes", g.max_leaf_nodes.to_string()),
            p("max_depth", g.max_depth.map_or("None".into(), |d| d.to_string())),
            p("min_samples_leaf", g.min_samples_leaf.to_string()),
            p("l2_regularization", g.l2_regularization.to_string()),
            p("max_bins", g.max_bins.to_string()),
            p("early_stopping", g.early_stopping.to_string()),
            p("validation_fraction", g.validation_fraction.to_string()),
            p("n_iter_no_change", g.n_iter_no_change.to_string()),
        ],
        ModelSpec::Linear(l) => vec![
            p("model", "linear".into()),
            p("alpha", l.alpha.to_string()),
            p("text_alpha", l.text_alpha.to_string()),
        ],
    }
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn progress(show: bool, len: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("boosting [{bar:30}] {pos}/{len} iterations {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Train/test row indices: a seeded split of all rows, or with `holdout_from = Some(k)` a
/// split of rows `k..n` only, rows `0..k` all going to training.
fn split(n: usize, test_fraction: f64, seed: u64, holdout_from: Option<usize>) -> (Vec<usize>, Vec<usize>) {
    match holdout_from {
        Some(k) if k > 0 && k < n => {
            let (train, test) = learn::train_test_split(n - k, test_fraction, seed);
            ((0..k).chain(train.into_iter().map(|i| i + k)).collect(), test.into_iter().map(|i| i + k).collect())
        }
        _ => learn::train_test_split(n, test_fraction, seed),
    }
}

/// Reads a CSV file, gzip-compressed when its name ends in `.gz`.
pub fn read_frame(path: &Path) -> Result<Frame> {
    Ok(learn::read_csv(data::open(path)?)?)
}

/// Trains, logs and registers one model; see the module docs for the steps.
pub async fn train(cfg: &TrainConfig, client: &Client) -> Result<TrainOutcome> {
    if let Some(m) = cfg.metric.as_deref().filter(|m| !holdout_metrics(cfg.task).contains(m)) {
        return Err(TrainError::Data(format!(
            "metric '{m}' is not a holdout metric of this task ({})",
            holdout_metrics(cfg.task).join(", ")
        )));
    }
    let path = data::resolve(&cfg.data, &cfg.cache_dir, cfg.show_progress).await?;
    let frame = read_frame(&path)?;
    let text_columns = match &cfg.text_columns {
        Some(names) => names.clone(),
        None => {
            let found: Vec<String> = frame.text_like_columns().into_iter().filter(|c| c != &cfg.target).collect();
            if matches!(cfg.spec, ModelSpec::Linear(_)) {
                found
            } else {
                if !found.is_empty() {
                    tracing::warn!(
                        columns = found.join(", "),
                        "these columns read as free text; the GBM takes them as categories (the most frequent \
                         levels): train --model linear to use their words"
                    );
                }
                Vec::new()
            }
        }
    };
    let positive = cfg.positive_label.as_deref();
    let (features, y) = split_target(&frame.with_text(&text_columns)?, &cfg.target, cfg.task, positive)?;
    // Online drift compares what serving scores with all of the training data's features.
    let profile = package::profile_of(&features);
    let (x_train, y_train, x_test, y_test) = match &cfg.test_data {
        Some(source) => {
            let test_path = data::resolve(source, &cfg.cache_dir, cfg.show_progress).await?;
            let test = read_frame(&test_path)?.with_text(&text_columns)?;
            let (x_test, y_test) = split_target(&test, &cfg.target, cfg.task, positive)?;
            (features, y, x_test, y_test)
        }
        None => {
            let (train_idx, test_idx) = split(features.n_rows(), cfg.test_fraction, cfg.seed, cfg.holdout_from_row);
            let (x_train, x_test) = (features.select_rows(&train_idx), features.select_rows(&test_idx));
            let y_train: Vec<f64> = train_idx.iter().map(|&i| y[i]).collect();
            let y_test: Vec<f64> = test_idx.iter().map(|&i| y[i]).collect();
            (x_train, y_train, x_test, y_test)
        }
    };
    if x_test.n_rows() == 0 {
        return Err(TrainError::Data("the holdout has no rows with a target".into()));
    }

    let experiment_id = client.experiment_id(&cfg.experiment).await?;
    let run_name = cfg.run_name.clone().unwrap_or_else(|| format!("train-{}", cfg.model_name));
    let (run_id, artifact_uri) = client
        .create_run(
            &experiment_id,
            &run_name,
            &[("mlflow.source.type", "LOCAL"), ("mlflow.source.name", "factory train")],
        )
        .await?;
    let result = train_in_run(
        cfg,
        client,
        &experiment_id,
        &run_id,
        &artifact_uri,
        &path,
        &text_columns,
        &x_train,
        &y_train,
        &x_test,
        &y_test,
        profile,
    )
    .await;
    let status = if result.is_ok() { "FINISHED" } else { "FAILED" };
    if let Err(e) = client.end_run(&run_id, status).await {
        tracing::warn!(error = %e, run_id, "could not end the run");
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn train_in_run(
    cfg: &TrainConfig,
    client: &Client,
    experiment_id: &str,
    run_id: &str,
    artifact_uri: &str,
    data_path: &Path,
    text_columns: &[String],
    x_train: &Frame,
    y_train: &[f64],
    x_test: &Frame,
    y_test: &[f64],
    profile: package::sketch::Profile,
) -> Result<TrainOutcome> {
    let max_iter = match &cfg.spec {
        ModelSpec::Gbm(g) => g.max_iter,
        ModelSpec::Linear(_) => 1,
    };
    let bar = progress(cfg.show_progress, max_iter);
    let (model, report) =
        learn::fit(x_train, y_train, cfg.task, &cfg.spec, &mut |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    // The holdout's predictions, scored here and drawn by the classifier plots below.
    let p_test = model.predict(x_test)?;
    let holdout = score(model.task(), y_test, &p_test);
    let holdout = match &cfg.metric {
        Some(name) => holdout.judged_by(name)?,
        None => holdout,
    };

    // Params, metric history, holdout scores.
    let mut params = spec_params(&cfg.spec);
    params.extend([
        ("seed".to_string(), cfg.seed.to_string()),
        ("target".to_string(), cfg.target.clone()),
        (
            "test_fraction".to_string(),
            if cfg.test_data.is_some() { "none".into() } else { cfg.test_fraction.to_string() },
        ),
        ("text_columns".to_string(), if text_columns.is_empty() { "none".into() } else { text_columns.join(",") }),
        ("positive_label".to_string(), cfg.positive_label.clone().unwrap_or_else(|| "default".into())),
        ("holdout_from_row".to_string(), cfg.holdout_from_row.map_or_else(|| "none".into(), |k| k.to_string())),
        ("data".to_string(), data_path.display().to_string()),
        ("train_rows".to_string(), x_train.n_rows().to_string()),
        ("test_rows".to_string(), x_test.n_rows().to_string()),
    ]);
    let mut metrics: Vec<(String, f64, i64)> = Vec::new();
    for (i, l) in report.train_loss.iter().enumerate() {
        metrics.push(("train_loss".into(), *l, i as i64));
    }
    for (i, l) in report.validation_loss.iter().enumerate() {
        metrics.push(("validation_loss".into(), *l, i as i64));
    }
    metrics.extend(holdout.metrics.iter().map(|(k, v)| (k.clone(), *v, 0)));
    metrics.push(("n_iter".into(), report.n_iter as f64, 0));

    // The calls below need nothing of one another, so they go to the server together; only
    // the package's steps (logged model, files, finalize, version) follow one another.
    let history = async {
        client.log_batch(run_id, &params, &[], &metrics).await?;
        Ok::<_, TrainError>(())
    };
    // Dataset input with its digest.
    let dataset = async {
        let digest = data::sha256_file(data_path)?;
        let schema = serde_json::json!({ "mlflow_colspec": x_train.schema().fields.iter().map(|f| serde_json::json!({"name": f.name, "type": if f.kind == learn::ColumnKind::Numeric { "double" } else { "string" }})).collect::<Vec<_>>() });
        let dataset_name =
            data_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
        client
            .log_dataset(
                run_id,
                &dataset_name,
                &digest[..16],
                &data_path.display().to_string(),
                &schema.to_string(),
                "training",
            )
            .await?;
        Ok(())
    };
    // Plots and tables: feature importance, and a classifier's confusion matrix and calibration.
    let plots = async {
        let mut files = Vec::new();
        if cfg.task == Task::BinaryClassification {
            let p = &p_test;
            let confusion = learn::confusion(y_test, p);
            files.push(("confusion_matrix.svg", plot::confusion_svg(confusion).into_bytes()));
            let [tn, fp, fn_, tp] = confusion;
            let json = serde_json::json!({ "labels": [0, 1], "matrix": [[tn, fp], [fn_, tp]] });
            files.push(("confusion_matrix.json", json.to_string().into_bytes()));
            files.push(("calibration.svg", plot::calibration_svg(y_test, p).into_bytes()));
        }
        let title = format!("Feature importance ({} model)", model.kind());
        files.push(("feature_importance.svg", plot::bar_chart_svg(&title, &report.feature_importance).into_bytes()));
        let importance: serde_json::Map<String, serde_json::Value> =
            report.feature_importance.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
        files.push(("feature_importance.json", serde_json::to_vec_pretty(&importance).unwrap_or_default()));
        futures::future::try_join_all(
            files.into_iter().map(|(name, bytes)| client.upload_artifact(artifact_uri, name, bytes)),
        )
        .await?;
        Ok(())
    };
    // The package, as an MLflow 3 logged model, registered.
    let registered = async {
        let (model_id, model_uri) = client.create_logged_model(experiment_id, "model", run_id, "factory").await?;
        let dir = tempfile::tempdir().map_err(|source| TrainError::Io { path: std::env::temp_dir(), source })?;
        let example_rows: Vec<usize> = (0..x_test.n_rows().min(5)).collect();
        package::save(
            dir.path(),
            &model,
            &x_test.select_rows(&example_rows),
            &package::Provenance {
                run_id: Some(run_id.into()),
                model_id: Some(model_id.clone()),
                created_utc: utc_now(),
                profile: Some(profile),
            },
        )?;
        client.upload_dir(&model_uri, dir.path()).await?;
        client.finalize_logged_model(&model_id, run_id).await?;
        let version = client
            .create_model_version(&cfg.model_name, &format!("models:/{model_id}"), run_id, Some(&model_id))
            .await?;
        Ok((model_id, version))
    };
    let ((), (), (), (model_id, version)) = tokio::try_join!(history, dataset, plots, registered)?;

    // Champion / challenger.
    let comparison = match &cfg.compare_with {
        Some(alias) => {
            Some(compare(client, &cfg.model_name, alias, &model, &holdout, x_test, y_test, cfg.margin).await?)
        }
        None => None,
    };
    let mut tags = vec![("factory.model_version".to_string(), version.version.clone())];
    let mut comparison_metrics = Vec::new();
    if let Some(c) = &comparison {
        tags.push(("factory.decision".into(), c.reason.clone()));
        tags.push(("factory.champion_version".into(), c.champion_version.clone().unwrap_or_else(|| "none".into())));
        comparison_metrics.push((format!("challenger_{}", holdout.primary.0), c.challenger_score, 0));
        if let Some(s) = c.champion_score {
            comparison_metrics.push((format!("champion_{}", holdout.primary.0), s, 0));
        }
    }
    let promote_to = match (&comparison, &cfg.alias) {
        (Some(c), _) if cfg.promote && c.challenger_wins => Some(c.alias.clone()),
        (_, Some(alias)) => Some(alias.clone()),
        _ => None,
    };
    if let Some(alias) = &promote_to {
        client.set_alias(&cfg.model_name, alias, &version.version).await?;
        if let Some(stage) = &cfg.stage {
            client.transition_stage(&cfg.model_name, &version.version, stage).await?;
        }
        tags.push(("factory.promoted_to".into(), alias.clone()));
    }
    client.log_batch(run_id, &[], &tags, &comparison_metrics).await?;
    Ok(TrainOutcome {
        run_id: run_id.into(),
        model_id,
        model_name: cfg.model_name.clone(),
        version: version.version,
        holdout,
        n_iter: report.n_iter,
        comparison,
        promoted: promote_to.is_some(),
    })
}

/// Whether `features` has every column of `schema`, numbers where it takes numbers and strings
/// where it takes strings (levels or text: a model reads strings either way, as
/// `learn::Model::predict` does).
fn same_columns(schema: &learn::Schema, features: &Frame) -> bool {
    let numeric = |k: learn::ColumnKind| k == learn::ColumnKind::Numeric;
    schema.fields.iter().all(|f| features.column(&f.name).is_some_and(|c| numeric(c.kind()) == numeric(f.kind)))
}

/// Scores the model behind `alias` on the same holdout as the challenger.
#[allow(clippy::too_many_arguments)]
async fn compare(
    client: &Client,
    model_name: &str,
    alias: &str,
    challenger: &Model,
    holdout: &Holdout,
    x_test: &Frame,
    y_test: &[f64],
    margin: f64,
) -> Result<Comparison> {
    let challenger_score = holdout.primary.1;
    let uri = ModelUri::Alias { name: model_name.into(), alias: alias.into() };
    let Some((artifact_uri, version)) = client.resolve_existing(&uri).await? else {
        return Ok(Comparison {
            alias: alias.into(),
            champion_version: None,
            champion_score: None,
            challenger_score,
            challenger_wins: true,
            reason: format!("no champion behind '{alias}'"),
        });
    };
    let dir = tempfile::tempdir().map_err(|source| TrainError::Io { path: std::env::temp_dir(), source })?;
    client.download_dir(&artifact_uri, dir.path()).await?;
    let champion = package::load(dir.path())?;
    let champion_version = version.map(|v| v.version);
    let same_inputs = match champion.model.factory() {
        Some(m) => m.task() == challenger.task() && same_columns(m.schema(), x_test),
        // A model of another flavor (e.g. ONNX logged by a team's own train.py) competes
        // on the same holdout when it takes these columns; its first output is the score.
        None => same_columns(champion.schema(), x_test),
    };
    if !same_inputs {
        return Ok(Comparison {
            alias: alias.into(),
            champion_version,
            champion_score: None,
            challenger_score,
            challenger_wins: true,
            reason: "champion takes different inputs; challenger wins".into(),
        });
    }
    let name = &holdout.primary.0;
    let champion_score =
        evaluate_packaged(&champion.model, challenger.task(), x_test, y_test)?.judged_by(name)?.primary.1;
    // `margin` of the champion's magnitude (R² and the like can be negative).
    let wins = if higher_is_better(name) {
        challenger_score > champion_score + margin * champion_score.abs()
    } else {
        challenger_score < champion_score - margin * champion_score.abs()
    };
    let reason = if wins {
        format!(
            "challenger {name} {challenger_score:.6} beats champion {champion_score:.6} by more than {:.2}%",
            margin * 100.0
        )
    } else {
        format!(
            "champion kept: challenger {name} {challenger_score:.6} vs champion {champion_score:.6} (margin {:.2}%)",
            margin * 100.0
        )
    };
    Ok(Comparison {
        alias: alias.into(),
        champion_version,
        champion_score: Some(champion_score),
        challenger_score,
        challenger_wins: wins,
        reason,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn holdout_from_the_newest_rows() {
        let (train, test) = super::split(100, 0.2, 7, Some(90));
        assert_eq!(test.len(), 2);
        assert!(test.iter().all(|&i| i >= 90), "{test:?}");
        assert_eq!(train.len(), 98);
        assert!((0..90).all(|i| train.contains(&i)));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(super::split(100, 0.2, 7, None), learn::train_test_split(100, 0.2, 7));
    }

    #[test]
    fn a_holdout_is_judged_by_the_chosen_metric_in_its_direction() {
        let h = super::score(learn::Task::BinaryClassification, &[0.0, 1.0, 1.0], &[0.2, 0.9, 0.4]);
        assert_eq!(h.primary.0, "log_loss");
        let f1 = h.clone().judged_by("f1").unwrap();
        assert_eq!(f1.primary, ("f1".to_string(), h.get("f1").unwrap()));
        let err = h.judged_by("rmse").unwrap_err().to_string();
        assert!(err.contains("'rmse'") && err.contains("roc_auc"), "{err}");
        assert!(super::higher_is_better("f1") && super::higher_is_better("r2"));
        assert!(!super::higher_is_better("log_loss") && !super::higher_is_better("rmse"));
    }

    #[test]
    fn utc_format() {
        let s = super::utc_now();
        assert_eq!(s.len(), 19, "{s}");
        assert!(s.starts_with("20"), "{s}");
    }
}
