//! Pipeline definitions: one TOML file per pipeline, read from a folder (the seed's
//! git-synced DAG folder) and validated once into a typed [`Pipeline`].
//!
//! Layers, lowest first: built-in defaults → the file → command-line overrides
//! ([`Overrides`], applied by the binary). A file that does not parse or validate is
//! reported by [`load_dir`] and never replaces the last good version of that pipeline.
//! The file as written and its validation are in `file`, the folder in `folder`.
//!
//! ```toml
//! steps = ["drift", "retrain", "promote", "rollout"]   # a prefix of this list
//!
//! [schedule]
//! cron = "0 2 * * *"      # five fields, minute first
//! timezone = "UTC"        # any IANA name, e.g. "Europe/Paris"
//! missed = "run-once"     # or "skip"
//!
//! [drift]
//! reference = "data/housing.csv"   # the training data
//! request_logs = ["requests"]      # `factory serve --request-log` folders, or online drift:
//! # sketches = ["http://serve-0:8080", "http://serve-1:8080"]   # serve replicas' GET /drift/sketch
//! # sketch_service = "factory-serve-headless:8080"             # every address a name resolves to
//! psi_threshold = 0.2
//! drift_share = 0.3
//! min_rows = 200
//! triggers = ["data"]              # classifiers also: "prediction", "performance", "estimated_performance"
//! labels = "labels-by-id"          # classifiers: CSVs of request_id + target, joined to predictions
//! performance_drop = 0.05          # F1 drop (realised, or estimated by CBPE) that triggers
//!
//! [retrain]
//! data = "data/housing.csv"       # default: the reference
//! labels = "labels"               # folder of labelled CSVs, appended when present
//! target = "median_house_value"
//! task = "regression"             # or "classification"
//! model = "gbm"                   # or "linear" (the default with text_columns)
//! text_columns = []               # free-text columns (TF-IDF words, linear model)
//! positive_label = "spam"         # classification: the positive target value
//! metric = "f1"                   # champion vs challenger by this holdout metric (default rmse / log_loss)
//! pipeline = "train"              # optional: retrain with the user's stages (below) instead
//!
//! [stages.train]                  # DVC-style stages, see `stages`
//! cmd = "python3 train.py"
//! deps = ["train.py", "${FACTORY_TRAINING_DATA}"]
//!
//! [rollout]
//! mode = "hot-reload"             # or "blue-green" / "canary" (with `gateway`)
//! serving = "http://127.0.0.1:8080"
//! serving_admin = "http://127.0.0.1:8081"  # serve --admin-port (blue-green: blue_admin, green_admin)
//!
//! [rollout.canary]                # mode = "canary": the gateway's POST /canary (docs/gateway.md)
//! steps = [5, 25, 50, 100]
//! interval_secs = 30
//! max_error_rate = 0.01           # default: rollout.error_budget
//! max_p99_ms = 50
//! min_requests = 20
//! ```

mod file;
mod folder;

pub use file::{from_overrides, parse};
pub use folder::{load_dir, Folder};

use crate::stages::Definition;
use serde::Deserialize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// The steps of a cycle, in the only order they can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Compare the request log since the last check with the reference.
    Drift,
    /// On significant drift, train a challenger and score it against the champion.
    Retrain,
    /// Move the production alias (and stage) to a winning challenger.
    Promote,
    /// Roll the promoted version out to the serving side.
    Rollout,
}

/// What to do about scheduled times that passed while the loop was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Run one cycle at start-up when at least one scheduled time was missed (never more
    /// than one, however many were missed).
    RunOnce,
    /// Wait for the next scheduled time.
    Skip,
}

/// How a promoted version reaches the serving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutMode {
    /// `factory serve` follows the production alias; the loop asks it to reload and waits
    /// until its `/health` reports the new version.
    HotReload,
    /// Two `factory serve` behind `factory gateway`, each following an alias named after its
    /// colour; the idle colour gets the new version, then the gateway switches to it.
    BlueGreen,
    /// As blue-green, but the gateway moves traffic to the idle colour in judged steps
    /// (`[rollout.canary]`, the gateway's `POST /canary`) and aborts on a breach.
    Canary,
}

/// When a cycle runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: croner::Cron,
    pub expression: String,
    pub timezone: chrono_tz::Tz,
    pub missed: Missed,
}

impl Schedule {
    /// Parses a five-field cron expression in a timezone.
    pub fn new(expression: &str, timezone: &str, missed: Missed) -> Result<Schedule, String> {
        if expression.split_whitespace().count() != 5 {
            return Err(format!(
                "schedule.cron '{expression}' must have five fields (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = croner::Cron::from_str(expression.trim())
            .map_err(|e| format!("schedule.cron '{expression}' is not a cron expression: {e}"))?;
        let timezone = chrono_tz::Tz::from_str(timezone.trim()).map_err(|_| {
            format!("schedule.timezone '{timezone}' is not an IANA timezone name (e.g. UTC, Europe/Paris)")
        })?;
        Ok(Schedule { cron, expression: expression.trim().to_string(), timezone, missed })
    }

    /// The first scheduled time strictly after `after`.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let t = chrono::DateTime::<chrono::Utc>::from(after).with_timezone(&self.timezone);
        let next = self.cron.find_next_occurrence(&t, false).ok()?;
        Some(SystemTime::from(next.with_timezone(&chrono::Utc)))
    }
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    /// Where it came from (`None` when built from flags alone).
    pub source: Option<PathBuf>,
    pub steps: Vec<Step>,
    pub schedule: Schedule,
    pub tracking_uri: String,
    /// Experiment that records every cycle as a run.
    pub experiment: String,
    pub drift: DriftSettings,
    pub retrain: RetrainSettings,
    pub rollout: RolloutSettings,
    pub webhook: WebhookSettings,
    /// Where the file came from in git, when it did (recorded in every cycle's run).
    pub revision: Option<Revision>,
}

/// A git source's URL (credentials never included) and the commit a pipeline was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub url: String,
    pub commit: String,
}

impl Pipeline {
    pub fn has(&self, step: Step) -> bool {
        self.steps.contains(&step)
    }
}

#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// The reference data set (the training data); `None` = the default data source.
    pub reference: Option<String>,
    pub request_logs: Vec<PathBuf>,
    /// Online drift instead of request logs: serve replicas' base URLs, whose
    /// `GET /drift/sketch` answers are merged.
    pub sketches: Vec<String>,
    /// Online drift: `host:port` resolved to every address at each cycle (a Kubernetes
    /// headless Service lists every serve pod).
    pub sketch_service: Option<String>,
    pub columns: Option<Vec<String>>,
    pub psi_threshold: f64,
    pub drift_share: f64,
    /// Fewer new rows than this: the check is recorded as skipped.
    pub min_rows: u64,
    /// Which drifts make a cycle retrain.
    pub triggers: Vec<Trigger>,
    /// Labels that arrived after the predictions: a CSV, or a folder of CSVs, of the request id
    /// and the target (classifiers: performance drift).
    pub labels_by_id: Option<PathBuf>,
    /// The F1 drop (reference → current, realised or estimated) at which the performance
    /// triggers fire.
    pub performance_drop: f64,
}

/// A kind of drift that can make a cycle retrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The features: a column's PSI over `psi_threshold`, or more drifted columns than
    /// `drift_share`.
    Data,
    /// The model's outputs (classifiers): the predicted label's or the probability's test
    /// against the champion's predictions on the reference.
    Prediction,
    /// Realised F1 on labels joined by request id, against the reference's.
    Performance,
    /// F1 estimated from the probabilities (CBPE), against the reference's realised F1.
    EstimatedPerformance,
}

#[derive(Debug, Clone)]
pub struct RetrainSettings {
    /// Training data when no labels arrived (`None`: the reference).
    pub data: Option<String>,
    /// Folder of labelled CSVs (features + target) appended to the training data.
    pub labels: Option<PathBuf>,
    pub target: String,
    pub experiment: String,
    pub model_name: String,
    /// The champion's alias, moved on promotion.
    pub alias: String,
    /// Stage given on promotion (MLflow's `Production`), if any.
    pub stage: Option<String>,
    pub margin: f64,
    pub seed: u64,
    pub max_iter: usize,
    pub cache_dir: Option<PathBuf>,
    /// Regression or binary classification.
    pub task: learn::Task,
    /// The linear model instead of the GBM (the default with text columns).
    pub linear: bool,
    /// Free-text columns (`None`: as `factory train` detects them for the linear model).
    pub text_columns: Option<Vec<String>>,
    /// Classification: the target value that is the positive class.
    pub positive_label: Option<String>,
    /// The holdout metric champion and challenger are compared by (`None`: RMSE or log loss).
    pub metric: Option<String>,
    /// Retrain with the user's stages instead of the built-in GBM.
    pub stages: Option<UserStages>,
}

/// `retrain.pipeline`: which stages retrain, from which file.
#[derive(Debug, Clone)]
pub struct UserStages {
    pub definition: std::sync::Arc<Definition>,
    /// Run (forced) with everything they depend on (cached as usual).
    pub targets: Vec<String>,
    /// For stages without their own `timeout_secs`.
    pub timeout: Duration,
    /// Share of the new labelled rows (or, without labels, of all rows) kept out of the
    /// training data to judge champion and challenger.
    pub holdout_fraction: f64,
}

#[derive(Debug, Clone)]
pub struct RolloutSettings {
    pub mode: RolloutMode,
    /// `factory serve` base URL (hot-reload).
    pub serving: Option<String>,
    /// `factory gateway` admin URL (blue-green).
    pub gateway: Option<String>,
    /// serve's admin listener (`--admin-port`) for hot reload; without it the rollout waits for
    /// serve's own registry poll.
    pub serving_admin: Option<String>,
    /// The blue and green serves' admin listeners (blue-green), same fallback.
    pub blue_admin: Option<String>,
    pub green_admin: Option<String>,
    /// Bearer token for the admin planes (from the binary's `--admin-token-file` /
    /// `FACTORY_ADMIN_TOKEN`, never from the pipeline file).
    pub admin_token: Option<String>,
    /// How long the new version may take to be served.
    pub timeout: Duration,
    /// After the rollout, watch health and errors this long.
    pub window: Duration,
    /// Largest share of failed requests on the new version within the window.
    pub error_budget: f64,
    /// The canary's steps and limits (`mode = "canary"`); `to`, `expect_version` and `note`
    /// are set by the rollout.
    pub canary: admin_api::CanaryRequest,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    pub url: Option<String>,
    /// Name of the secret holding the bearer token (an environment variable of the binary).
    pub token_env: String,
    pub attempts: u32,
    pub event_type: String,
}

/// Command-line values that win over the file (the binary fills them from flags/env).
// The flag layer names the settings it overrides (`RolloutSettings::serving`, ...), as the file
// layer (`file::RolloutFile`) does: one struct per layer, declarations rather than logic.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub tracking_uri: Option<String>,
    pub webhook: Option<String>,
    pub serving: Option<String>,
    pub gateway: Option<String>,
    pub serving_admin: Option<String>,
    pub blue_admin: Option<String>,
    pub green_admin: Option<String>,
    pub admin_token: Option<String>,
    pub reference: Option<String>,
    pub request_logs: Vec<PathBuf>,
    pub sketches: Vec<String>,
    pub sketch_service: Option<String>,
    pub labels: Option<PathBuf>,
    pub model_name: Option<String>,
}
#[cfg(test)]
mod tests;
