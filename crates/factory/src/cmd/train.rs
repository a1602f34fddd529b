//! `factory train`: train the California housing regressor (or any CSV target), log the run,
//! register the model, and optionally compare with / promote over the current champion.

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ModelKind {
    Gbm,
    Linear,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TaskArg {
    Regression,
    Classification,
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Training data: a CSV path (gzip when it ends in .gz) or an http(s) URL (downloaded once
    /// into the cache). Default: the California housing CSV bundled in the binary (works offline).
    #[arg(long)]
    pub data: Option<String>,
    /// Score on this CSV (path or URL) instead of holding out --test-fraction of --data; all of
    /// --data then trains.
    #[arg(long, value_name = "CSV")]
    pub test_data: Option<String>,
    /// Column to predict.
    #[arg(long, default_value = "median_house_value")]
    pub target: String,
    #[arg(long, value_enum, default_value = "regression")]
    pub task: TaskArg,
    /// Classification: the target value that is the positive class (e.g. spam). Default: 1 for a
    /// 0/1 target; of two string values, the greater (as scikit-learn's classes_[1]).
    #[arg(long, value_name = "VALUE")]
    pub positive_label: Option<String>,
    /// Free-text columns (comma-separated), turned into TF-IDF word features for the linear
    /// model. Default with --model linear: the string columns that read as text (more distinct
    /// values than half the rows, two or more words on average); pass "" for none.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub text_columns: Option<Vec<String>>,
    /// Linear model: L2 penalty on numeric and categorical columns (scikit-learn's alpha, or 1/C).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Linear model: L2 penalty on the words of text columns (TF-IDF rows have unit length, so
    /// their words need a lighter penalty than standardised columns).
    #[arg(long, default_value_t = 0.1)]
    pub text_alpha: f64,
    /// Experiment to log the run in (created when missing).
    #[arg(long, default_value = "california-housing")]
    pub experiment: String,
    /// Registered model name.
    #[arg(long, default_value = "california-housing-model")]
    pub model_name: String,
    /// Point this alias at the new version (e.g. `prod`).
    #[arg(long)]
    pub alias: Option<String>,
    /// Compare with the version behind this alias on the same holdout (champion/challenger).
    #[arg(long)]
    pub compare_with: Option<String>,
    /// With --compare-with: move the alias to the new version only when it wins.
    #[arg(long, requires = "compare_with")]
    pub promote: bool,
    /// Relative improvement required to win, e.g. 0.01 = 1% lower RMSE (or 1% higher F1).
    #[arg(long, default_value_t = 0.0)]
    pub margin: f64,
    /// The holdout metric the champion and challenger are compared by: rmse, mae, r2
    /// (regression); log_loss, roc_auc, f1, accuracy, precision, recall (classification).
    /// Default: rmse or log_loss.
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
    /// Stage given to a version when an alias is set on it.
    #[arg(long, default_value = "Production")]
    pub stage: String,
    /// Do not change stages, only aliases.
    #[arg(long)]
    pub no_stage: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "gbm")]
    pub model: ModelKind,
    /// Boosting iterations (upper bound: early stopping on a held-out 10% picks the count).
    #[arg(long, default_value_t = learn::GbmParams::default().max_iter)]
    pub max_iter: usize,
    #[arg(long, default_value_t = 0.1)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    #[arg(long)]
    pub run_name: Option<String>,
    /// Where downloads are cached.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Tracking server.
    #[arg(long, env = "MLFLOW_TRACKING_URI", default_value = "http://127.0.0.1:5000")]
    pub tracking_uri: String,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Basic-auth credentials from MLflow's client variables, when both are set.
pub fn tracking_auth() -> Option<(String, String)> {
    match (std::env::var("MLFLOW_TRACKING_USERNAME"), std::env::var("MLFLOW_TRACKING_PASSWORD")) {
        (Ok(u), Ok(p)) if !u.is_empty() => Some((u, p)),
        _ => None,
    }
}

pub fn config(args: &TrainArgs) -> anyhow::Result<training::TrainConfig> {
    if !(0.0..1.0).contains(&args.test_fraction) || args.test_fraction == 0.0 {
        anyhow::bail!("--test-fraction must be between 0 and 1 (exclusive), got {}", args.test_fraction);
    }
    let spec = match args.model {
        ModelKind::Gbm => learn::ModelSpec::Gbm(learn::GbmParams {
            max_iter: args.max_iter,
            learning_rate: args.learning_rate,
            seed: args.seed,
            ..learn::GbmParams::default()
        }),
        ModelKind::Linear => learn::ModelSpec::Linear(learn::LinearParams {
            alpha: args.alpha,
            text_alpha: args.text_alpha,
            seed: args.seed,
        }),
    };
    Ok(training::TrainConfig {
        data: training::data::Source::from_arg(args.data.as_deref()),
        test_data: args.test_data.as_deref().map(|d| training::data::Source::from_arg(Some(d))),
        text_columns: args
            .text_columns
            .as_ref()
            .map(|c| c.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()),
        positive_label: args.positive_label.clone(),
        cache_dir: super::datasets_cache_dir(args.cache_dir.as_deref()),
        target: args.target.clone(),
        task: match args.task {
            TaskArg::Regression => learn::Task::Regression,
            TaskArg::Classification => learn::Task::BinaryClassification,
        },
        spec,
        experiment: args.experiment.clone(),
        run_name: args.run_name.clone(),
        model_name: args.model_name.clone(),
        seed: args.seed,
        test_fraction: args.test_fraction,
        holdout_from_row: None,
        alias: args.alias.clone(),
        compare_with: args.compare_with.clone(),
        promote: args.promote,
        margin: args.margin,
        metric: args.metric.clone(),
        stage: (!args.no_stage).then(|| args.stage.clone()),
        show_progress: true,
    })
}

pub fn run(args: TrainArgs) -> anyhow::Result<u8> {
    let cfg = config(&args)?;
    let client = mlflow_client::Client::new(&args.tracking_uri, tracking_auth())?;
    let runtime = super::runtime(0)?;
    let out = runtime.block_on(training::train(&cfg, &client)).context("training failed")?;
    if args.json {
        let c = out.comparison.as_ref();
        let summary = serde_json::json!({
            "run_id": out.run_id, "model_id": out.model_id, "model_name": out.model_name, "version": out.version,
            "metrics": out.holdout.metrics.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "n_iter": out.n_iter, "promoted": out.promoted,
            "comparison": c.map(|c| serde_json::json!({
                "alias": c.alias, "champion_version": c.champion_version, "champion_score": c.champion_score,
                "challenger_score": c.challenger_score, "challenger_wins": c.challenger_wins, "reason": c.reason,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!("run {} → {} version {} ({} iterations)", out.run_id, out.model_name, out.version, out.n_iter);
        for (k, v) in &out.holdout.metrics {
            eprintln!("  holdout {k}: {v:.6}");
        }
        if let Some(c) = &out.comparison {
            eprintln!("  {}", c.reason);
        }
        if out.promoted {
            eprintln!("  promoted version {} of {}", out.version, out.model_name);
        }
    }
    Ok(0)
}
