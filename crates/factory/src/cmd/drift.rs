//! `factory drift`: compare a current CSV (e.g. the production request log) with a reference
//! CSV (e.g. the training data) the way Evidently 0.7.23's `DataDriftPreset` does, write JSON
//! and HTML reports, and exit 0 (no significant drift) or 3 (significant drift). With
//! `--sketches` / `--sketch-service`, the current data is what running `factory serve` replicas
//! scored (their online drift sketches) and the reference their model's profile.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Flags of `factory drift`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 = no significant drift, 3 = significant drift, 1 = error.\n\
Significant drift: some column's PSI > --psi-threshold, or the share of drifted columns > --drift-share.\n\
Tests available for --stattest: ks, wasserstein, psi, jensenshannon, chisquare, z, kl_div, hellinger.")]
pub struct DriftArgs {
    /// Reference data set (CSV with a header row), e.g. the training data.
    #[arg(long, value_name = "CSV", required_unless_present_any = ["sketches", "sketch_service"])]
    pub reference: Option<PathBuf>,
    /// Current data set (CSV with a header row), e.g. the production request log.
    #[arg(long, value_name = "CSV", required_unless_present_any = ["sketches", "sketch_service"])]
    pub current: Option<PathBuf>,
    /// Instead of --reference and --current: what running `factory serve` replicas scored.
    /// Their online drift sketches (`GET /drift/sketch?open=true`: every window they keep, the
    /// open one too) are merged and judged against the served model's own reference profile,
    /// as `factory loop` does with `[drift] sketches`. Base URLs, comma-separated.
    #[arg(long, value_name = "URL,...", value_delimiter = ',', conflicts_with_all = ["reference", "current", "psi_bins_from"])]
    pub sketches: Vec<String>,
    /// With or instead of --sketches: a `host:port` resolved to every replica's address (a
    /// Kubernetes headless Service).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["reference", "current", "psi_bins_from"])]
    pub sketch_service: Option<String>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Compare only these columns (comma-separated); default: every column in both files.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Free-text columns (comma-separated): tested through Evidently's text descriptors
    /// (length, words, sentences, non-letter and out-of-vocabulary shares). Text columns with
    /// more distinct values than half their rows are detected without this.
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub text_columns: Vec<String>,
    /// Word list (words separated by spaces or lines) for the out-of-vocabulary descriptor;
    /// default: the reference's own words.
    #[arg(long, value_name = "FILE")]
    pub vocabulary: Option<PathBuf>,
    /// A column whose PSI exceeds this makes the drift significant.
    #[arg(long, default_value_t = 0.2, value_name = "PSI")]
    pub psi_threshold: f64,
    /// Share of drifted columns: dataset drift when reached (as Evidently's drift_share),
    /// significant drift when exceeded.
    #[arg(long, default_value_t = 0.3, value_name = "SHARE")]
    pub drift_share: f64,
    /// Bin numeric columns for PSI (and the other binned tests) with a model's reference
    /// profile instead of Evidently's Sturges bins over both files: its `drift_profile.json`,
    /// or the model folder holding it. The figures then equal those `serve` computes online.
    #[arg(long, value_name = "FILE|DIR")]
    pub psi_bins_from: Option<PathBuf>,
    /// Use this test for a column instead of Evidently's default choice (repeatable).
    #[arg(long, value_name = "COLUMN=TEST")]
    pub stattest: Vec<String>,
    /// Use this threshold for a column instead of the test's default (repeatable).
    #[arg(long, value_name = "COLUMN=VALUE")]
    pub threshold: Vec<String>,
    /// Target (true label) column: enables performance drift together with the prediction
    /// column; with --labels, the label column of the labels file.
    #[arg(long, value_name = "COLUMN")]
    pub target: Option<String>,
    /// Prediction column: the predicted label (classification) or value (regression).
    #[arg(long, default_value = "prediction", value_name = "COLUMN")]
    pub prediction: String,
    /// Probability of the positive class (classification): confidence drift, ROC AUC, log
    /// loss and estimated performance (CBPE).
    #[arg(long, default_value = "probability", value_name = "COLUMN")]
    pub probability: String,
    /// The positive class (default: 1 for 0/1 labels, True for booleans).
    #[arg(long, value_name = "LABEL")]
    pub pos_label: Option<String>,
    /// Without a prediction column, a probability at or above this predicts the positive class.
    #[arg(long, default_value_t = 0.5, value_name = "P")]
    pub decision_threshold: f64,
    /// Request id column: never compared; joins --labels to the current predictions.
    #[arg(long, default_value = "request_id", value_name = "COLUMN")]
    pub id_column: String,
    /// Labels that arrived later: CSV with the request id column and the --target column,
    /// joined to the current file's predictions by request id.
    #[arg(long, value_name = "CSV")]
    pub labels: Option<PathBuf>,
    /// How to score target vs prediction.
    #[arg(long, value_enum, default_value_t = TaskArg::Auto)]
    pub task: TaskArg,
    /// Memory for numeric values before sorted runs spill to temporary files.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub memory_mb: usize,
    /// Directory for spilled runs (default: the system temporary directory).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Parser threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print nothing on stdout (reports and exit status only).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--task` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TaskArg {
    /// Classification when there are probabilities or at most two label values, regression otherwise.
    Auto,
    /// RMSE, MAE, mean error.
    Regression,
    /// Binary classification: accuracy, precision, recall, F1, ROC AUC, log loss, CBPE.
    Classification,
}

fn pairs<T>(flag: &str, raw: &[String], parse: impl Fn(&str) -> anyhow::Result<T>) -> anyhow::Result<Vec<(String, T)>> {
    raw.iter()
        .map(|item| {
            let (col, val) =
                item.split_once('=').with_context(|| format!("{flag} expects COLUMN=VALUE, got '{item}'"))?;
            let v = parse(val.trim()).with_context(|| format!("{flag} {item}"))?;
            Ok((col.trim().to_owned(), v))
        })
        .collect()
}

fn options(args: &DriftArgs, reference: &Path, current: &Path) -> anyhow::Result<drift::DriftOptions> {
    let mut o = drift::DriftOptions::new(reference, current);
    o.columns =
        args.columns.as_ref().map(|c| c.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
    o.psi_threshold = args.psi_threshold;
    o.drift_share = args.drift_share;
    o.stattests = pairs("--stattest", &args.stattest, |name| {
        drift::StatTest::from_name(name).with_context(|| {
            let names: Vec<&str> = drift::StatTest::ALL.iter().map(|t| t.name()).collect();
            format!("unknown test '{name}'; available: {}", names.join(", "))
        })
    })?;
    o.thresholds =
        pairs("--threshold", &args.threshold, |v| v.parse::<f64>().with_context(|| format!("'{v}' is not a number")))?;
    if let Some(from) = &args.psi_bins_from {
        let path = if from.is_dir() { from.join(package::PROFILE_FILE) } else { from.clone() };
        let text = std::fs::read(&path).with_context(|| format!("reading the drift profile {}", path.display()))?;
        let profile: sketch::Profile =
            serde_json::from_slice(&text).with_context(|| format!("{} is not a drift profile", path.display()))?;
        profile.check().with_context(|| path.display().to_string())?;
        o.psi_edges = profile
            .columns
            .into_iter()
            .filter_map(|c| match c.kind {
                sketch::ProfileKind::Numeric(n) => Some((c.name, n.psi_edges)),
                sketch::ProfileKind::Categorical(_) => None,
            })
            .collect();
    }
    o.text_columns = args.text_columns.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    o.vocabulary = args.vocabulary.clone();
    o.target = args.target.clone();
    o.prediction = args.prediction.clone();
    o.probability = args.probability.clone();
    o.pos_label = args.pos_label.clone();
    o.decision_threshold = args.decision_threshold;
    o.id_column = args.id_column.clone();
    o.labels = args.labels.clone();
    o.task = match args.task {
        TaskArg::Auto => drift::Task::Auto,
        TaskArg::Regression => drift::Task::Regression,
        TaskArg::Classification => drift::Task::Classification,
    };
    o.memory_budget = args.memory_mb.saturating_mul(1 << 20);
    o.temp_dir = args.temp_dir.clone();
    o.threads = args.threads;
    Ok(o)
}

/// Runs the comparison; returns the exit status (0 or 3).
pub fn run(args: DriftArgs) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let report = match (&args.reference, &args.current) {
        (Some(reference), Some(current)) => {
            drift::run(&options(&args, reference, current)?, &drift::progress::Bar::stderr())?
        }
        _ => from_sketches(&args)?,
    };
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "drift computed");
    if let Some(path) = &args.report_json {
        std::fs::write(path, report.to_json()).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.report_html {
        std::fs::write(path, drift::html::render(&report)).with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet {
        print!("{}", summary(&report));
    }
    Ok(report.exit_code())
}

/// `--sketches` / `--sketch-service`: every replica's sketches, merged per model profile; the
/// profile that scored the most rows is judged (`drift::online::report`).
fn from_sketches(args: &DriftArgs) -> anyhow::Result<drift::DriftReport> {
    let sources =
        pipeline::sketches::Sources { sketches: &args.sketches, service: args.sketch_service.as_deref(), open: true };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::new();
    let got = runtime
        .block_on(pipeline::sketches::gather(&http, sources, &Default::default()))
        .context("reading the replicas' drift sketches")?;
    // A replica left out was named on stderr by `gather`.
    let judged = got.judged.context("the replicas have sketched no rows yet")?;
    if judged.other_rows > 0 {
        tracing::warn!(rows = judged.other_rows, "rows scored by other model versions are not judged");
    }
    let versions: Vec<&str> = judged.versions.iter().map(String::as_str).collect();
    let reference = judged.profile.reference_label(&versions.join(","));
    let current = format!("sketches from {} replica(s)", got.replicas.len() - got.failed.len());
    let options = options(args, Path::new(&reference), Path::new(&current))?;
    Ok(drift::online::report(&judged.profile, &judged.sketch, &options)?)
}

fn summary(r: &drift::DriftReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let width = r.columns.iter().map(|c| c.name.len()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        s,
        "{:<width$}  type  {:<13}  {:>12}  {:>9}  drift  {:>10}",
        "column", "test", "score", "threshold", "psi"
    );
    for c in &r.columns {
        let _ = writeln!(
            s,
            "{:<width$}  {:<4}  {:<13}  {:>12.6}  {:>9}  {:<5}  {:>10.6}",
            c.name,
            c.column_type.as_str(),
            c.stattest.name(),
            c.drift_score,
            c.threshold,
            if c.drift_detected { "yes" } else { "no" },
            c.psi
        );
    }
    for k in &r.skipped_columns {
        let _ = writeln!(s, "{:<width$}  skipped: {}", k.column, k.reason);
    }
    let _ = writeln!(
        s,
        "drifted columns: {}/{} (share {:.3}), dataset drift: {}, max PSI: {:.4}",
        r.number_of_drifted_columns, r.number_of_columns, r.share_of_drifted_columns, r.dataset_drift, r.max_psi
    );
    if let Some(p) = &r.prediction_drift {
        if let (Some(pos), Some(a), Some(b)) =
            (&p.pos_label, p.reference_share_of_positives, p.current_share_of_positives)
        {
            let _ = writeln!(s, "share of positive predictions ('{pos}'): reference {a:.4}, current {b:.4}");
        }
    }
    let fmt = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.4}"));
    if let Some(p) = r.performance.as_ref().filter(|p| p.task == "classification") {
        for (side, m) in [("reference", &p.reference), ("current", &p.current)] {
            if let Some(m) = m {
                let _ = writeln!(
                    s,
                    "{side} performance ({} rows): accuracy {}, precision {}, recall {}, F1 {}, ROC AUC {}",
                    m.rows,
                    fmt(m.accuracy),
                    fmt(m.precision),
                    fmt(m.recall),
                    fmt(m.f1),
                    fmt(m.roc_auc)
                );
            }
        }
    }
    if let Some(e) = r.estimated_performance.as_ref().and_then(|e| e.current.as_ref()) {
        let _ = writeln!(
            s,
            "current performance estimated (CBPE, {} rows): accuracy {}, precision {}, recall {}, F1 {}, ROC AUC {}",
            e.rows,
            fmt(Some(e.accuracy.value)),
            fmt(Some(e.precision.value)),
            fmt(Some(e.recall.value)),
            fmt(Some(e.f1.value)),
            fmt(Some(e.roc_auc.value))
        );
    }
    if r.significant_drift {
        let _ = writeln!(s, "SIGNIFICANT DRIFT: {}", r.significant_drift_reasons.join("; "));
    } else {
        let _ = writeln!(s, "no significant drift");
    }
    s
}
