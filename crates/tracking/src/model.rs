//! Plain domain types of the tracking store. No serde: adapters convert them by hand.

/// A key/value pair: params, tags of runs, experiments and inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue { key: key.into(), value: value.into() }
    }
}

/// Whether an entity is live or in the trash (MLflow's `lifecycle_stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }
    pub(crate) fn parse(s: &str) -> Self {
        if s == "deleted" {
            LifecycleStage::Deleted
        } else {
            LifecycleStage::Active
        }
    }
}

/// Which lifecycle stages a search returns (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    /// Parses MLflow's enum names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE_ONLY" | "1" => Some(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(ViewType::DeletedOnly),
            "ALL" | "3" => Some(ViewType::All),
            _ => None,
        }
    }
    pub(crate) fn stages(self) -> &'static [&'static str] {
        match self {
            ViewType::ActiveOnly => &["active"],
            ViewType::DeletedOnly => &["deleted"],
            ViewType::All => &["active", "deleted"],
        }
    }
}

/// An experiment with its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: LifecycleStage,
    pub creation_time: i64,
    pub last_update_time: i64,
    pub tags: Vec<KeyValue>,
}

/// MLflow's `RunStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Running, RunStatus::Scheduled, RunStatus::Finished, RunStatus::Failed, RunStatus::Killed];
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
    /// Parses the enum name (or its proto number, as some clients send).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" | "1" => RunStatus::Running,
            "SCHEDULED" | "2" => RunStatus::Scheduled,
            "FINISHED" | "3" => RunStatus::Finished,
            "FAILED" | "4" => RunStatus::Failed,
            "KILLED" | "5" => RunStatus::Killed,
            _ => return None,
        })
    }
}

/// The identity and lifecycle of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: LifecycleStage,
}

/// One metric observation. `value` may be NaN or infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// MLflow 3: the logged model the metric belongs to, and the dataset it was computed on.
    pub model_id: Option<String>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// A metric observation tagged with its run (bulk history reads).
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetric {
    pub run_id: String,
    pub metric: Metric,
}

/// A dataset as MLflow describes it (`mlflow.data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
}

/// One dataset an experiment's runs used, with the context an input gave it (MLflow's
/// `_DatasetSummary`, for the UI's `experiments/search-datasets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    /// The input's `mlflow.data.context` tag, if it had one.
    pub context: Option<String>,
}

/// A dataset used by a run, with the input's tags (e.g. `mlflow.data.context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInput {
    pub tags: Vec<KeyValue>,
    pub dataset: Dataset,
}

/// A run with its latest metrics, params, tags and inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
    pub inputs: Vec<DatasetInput>,
    /// Logged models this run used (`log_inputs` with models).
    pub model_inputs: Vec<String>,
    /// Logged models this run produced.
    pub model_outputs: Vec<ModelOutput>,
}

/// A run as searches share it (from the store's cache of hydrated runs): immutable, so the
/// reader may keep one text rendering of it beside it, made on first use and reused by every
/// later read of this state of the run (the REST layer keeps the run's JSON there).
#[derive(Debug)]
pub struct SharedRun {
    run: Run,
    rendered: std::sync::OnceLock<Box<str>>,
}

impl SharedRun {
    pub fn new(run: Run) -> SharedRun {
        SharedRun { run, rendered: std::sync::OnceLock::new() }
    }

    /// The run's rendering by `render`, made once.
    pub fn rendered(&self, render: impl FnOnce(&Run) -> String) -> &str {
        self.rendered.get_or_init(|| render(&self.run).into_boxed_str())
    }
}

impl std::ops::Deref for SharedRun {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

/// A page of search results and the token for the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// A logged model produced by a run, at a step (MLflow 3's `ModelOutput`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutput {
    pub model_id: String,
    pub step: i64,
}

/// MLflow 3's model object: what `log_model` creates before the files are uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    /// `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`.
    pub status: String,
    pub status_message: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub params: Vec<KeyValue>,
    /// Latest value of each metric logged against this model.
    pub metrics: Vec<RunMetric>,
}

/// A registered model with its tags, aliases and latest version per stage.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub description: Option<String>,
    pub tags: Vec<KeyValue>,
    /// (alias, version)
    pub aliases: Vec<(String, i64)>,
    pub latest_versions: Vec<ModelVersion>,
}

/// One version of a registered model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub name: String,
    pub version: i64,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub description: Option<String>,
    pub user_id: Option<String>,
    /// `None`, `Staging`, `Production` or `Archived`.
    pub current_stage: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub model_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub aliases: Vec<String>,
}

/// One recorded move of an alias or a stage (`kind` is `alias` or `stage`; `target` is the
/// alias or stage name). `None` versions mean "nobody had it" / "removed".
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEvent {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub version_before: Option<i64>,
    pub version_after: Option<i64>,
    pub time: i64,
    pub user_id: Option<String>,
}
