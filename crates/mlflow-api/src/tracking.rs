//! Tracking routes (`/api/2.0/mlflow/experiments/*`, `runs/*`, `metrics/*`): parse the
//! request message, call the store, shape the reply. No logic beyond that.

use crate::error::{ApiError, ApiResult};
use crate::json::{self, Encoded, Msg, Reply};
use crate::wire::{self, tags_in, KeyValue, Paged};
use crate::AppState;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tracking::{LifecycleStage, Metric, RunSearch, RunStatus, RunUpdate, ViewType};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/search", get(search_experiments).post(search_experiments))
        .route("/experiments/list", get(search_experiments))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route("/experiments/delete-experiment-tag", post(delete_experiment_tag))
        .route("/runs/create", post(create_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/get", get(get_run))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/runs/outputs", post(log_outputs))
        .route("/runs/search", get(search_runs).post(search_runs))
        .route("/metrics/get-history", get(get_metric_history))
        .route("/metrics/get-history-bulk-interval", get(get_metric_history_bulk_interval))
}

pub(crate) fn required<T>(value: Option<T>, name: &str) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::invalid(format!("Missing value for required parameter '{name}'.")))
}

pub(crate) fn required_str(value: Option<String>, name: &str) -> ApiResult<String> {
    required(value.filter(|v| !v.is_empty()), name)
}

fn view_type(v: Option<String>) -> ApiResult<ViewType> {
    match v {
        None => Ok(ViewType::ActiveOnly),
        Some(s) => ViewType::parse(&s).ok_or_else(|| {
            ApiError::invalid(format!("Invalid view type '{s}'. Valid values are ACTIVE_ONLY, DELETED_ONLY, ALL"))
        }),
    }
}

/// The run id of a request: `run_id`, or the legacy `run_uuid` the client also sends.
#[derive(Deserialize, Default)]
struct RunRef {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunRef {
    fn id(self) -> ApiResult<String> {
        required_str(self.run_id.filter(|s| !s.is_empty()).or(self.run_uuid), "run_id")
    }
}

// ---- experiments ----

#[derive(Deserialize)]
struct CreateExperiment {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_experiment(State(s): State<AppState>, Msg(r): Msg<CreateExperiment>) -> ApiResult<Reply<Value>> {
    let name = required_str(r.name, "name")?;
    let location = r.artifact_location.filter(|l| !l.is_empty());
    if let Some(loc) = &location {
        crate::artifacts::check_artifact_location(loc)?;
    }
    let id = s.store.experiments().create(&name, location.as_deref(), &tags_in(r.tags)).await?;
    Ok(Reply(json!({ "experiment_id": id })))
}

#[derive(Deserialize)]
struct SearchExperiments {
    #[serde(default, deserialize_with = "json::opt_int")]
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<String>,
}

async fn search_experiments(
    State(s): State<AppState>,
    Msg(r): Msg<SearchExperiments>,
) -> ApiResult<Reply<Paged<wire::Experiment>>> {
    let page = s
        .store
        .experiments()
        .search(
            view_type(r.view_type)?,
            r.filter.as_deref().unwrap_or(""),
            &r.order_by,
            r.max_results.unwrap_or(1000),
            r.page_token.as_deref(),
        )
        .await?;
    Ok(Reply(Paged::of("experiments", &page)))
}

#[derive(Deserialize)]
struct ExperimentRef {
    #[serde(default, deserialize_with = "json::string_opt")]
    experiment_id: Option<String>,
}

async fn get_experiment(State(s): State<AppState>, Msg(r): Msg<ExperimentRef>) -> ApiResult<Reply<Value>> {
    let exp = s.store.experiments().get(&required_str(r.experiment_id, "experiment_id")?).await?;
    Ok(Reply(json!({ "experiment": wire::Experiment::from(&exp) })))
}

#[derive(Deserialize)]
struct ExperimentByName {
    experiment_name: Option<String>,
}

async fn get_experiment_by_name(State(s): State<AppState>, Msg(r): Msg<ExperimentByName>) -> ApiResult<Reply<Value>> {
    let exp = s.store.experiments().get_by_name(&required_str(r.experiment_name, "experiment_name")?).await?;
    Ok(Reply(json!({ "experiment": wire::Experiment::from(&exp) })))
}

async fn delete_experiment(State(s): State<AppState>, Msg(r): Msg<ExperimentRef>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    s.store.experiments().set_lifecycle(&id, LifecycleStage::Deleted).await?;
    Ok(Reply(json!({})))
}

async fn restore_experiment(State(s): State<AppState>, Msg(r): Msg<ExperimentRef>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    s.store.experiments().set_lifecycle(&id, LifecycleStage::Active).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct UpdateExperiment {
    #[serde(default, deserialize_with = "json::string_opt")]
    experiment_id: Option<String>,
    new_name: Option<String>,
}

async fn update_experiment(State(s): State<AppState>, Msg(r): Msg<UpdateExperiment>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    s.store.experiments().rename(&id, &required_str(r.new_name, "new_name")?).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct ExperimentTag {
    #[serde(default, deserialize_with = "json::string_opt")]
    experiment_id: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

async fn set_experiment_tag(State(s): State<AppState>, Msg(r): Msg<ExperimentTag>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    let key = required_str(r.key, "key")?;
    s.store.experiments().set_tag(&id, &key, &required(r.value, "value")?).await?;
    Ok(Reply(json!({})))
}

async fn delete_experiment_tag(State(s): State<AppState>, Msg(r): Msg<ExperimentTag>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    s.store.experiments().delete_tag(&id, &required_str(r.key, "key")?).await?;
    Ok(Reply(json!({})))
}

// ---- runs ----

#[derive(Deserialize)]
struct CreateRun {
    #[serde(default, deserialize_with = "json::string_opt")]
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "json::opt_int")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_run(State(s): State<AppState>, Msg(r): Msg<CreateRun>) -> ApiResult<Reply<Value>> {
    let exp = r.experiment_id.filter(|e| !e.is_empty()).unwrap_or_else(|| tracking::DEFAULT_EXPERIMENT_ID.into());
    let run = s
        .store
        .runs()
        .create(&exp, r.user_id.as_deref().unwrap_or(""), r.run_name.as_deref(), r.start_time, &tags_in(r.tags))
        .await?;
    Ok(Reply(json!({ "run": wire::Run::from(&run) })))
}

#[derive(Deserialize)]
struct UpdateRun {
    #[serde(flatten)]
    run: RunRef,
    status: Option<String>,
    #[serde(default, deserialize_with = "json::opt_int")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

async fn update_run(State(s): State<AppState>, Msg(r): Msg<UpdateRun>) -> ApiResult<Reply<Value>> {
    let status = match r.status {
        None => None,
        Some(st) => Some(RunStatus::parse(&st).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid run status '{st}'. Valid values are RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"
            ))
        })?),
    };
    let info =
        s.store.runs().update(&r.run.id()?, RunUpdate { status, end_time: r.end_time, run_name: r.run_name }).await?;
    Ok(Reply(json!({ "run_info": wire::RunInfo::from(&info) })))
}

async fn delete_run(State(s): State<AppState>, Msg(r): Msg<RunRef>) -> ApiResult<Reply<Value>> {
    s.store.runs().set_lifecycle(&r.id()?, LifecycleStage::Deleted).await?;
    Ok(Reply(json!({})))
}

async fn restore_run(State(s): State<AppState>, Msg(r): Msg<RunRef>) -> ApiResult<Reply<Value>> {
    s.store.runs().set_lifecycle(&r.id()?, LifecycleStage::Active).await?;
    Ok(Reply(json!({})))
}

async fn get_run(State(s): State<AppState>, Msg(r): Msg<RunRef>) -> ApiResult<Reply<Value>> {
    let run = s.store.runs().get(&r.id()?).await?;
    Ok(Reply(json!({ "run": wire::Run::from(&run) })))
}

/// A metric as logged: `value` may be NaN or infinite; `timestamp` is required.
#[derive(Deserialize)]
struct MetricIn {
    key: Option<String>,
    #[serde(default, deserialize_with = "json::opt_float")]
    value: Option<f64>,
    #[serde(default, deserialize_with = "json::opt_int")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "json::opt_int")]
    step: Option<i64>,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

impl MetricIn {
    fn into_metric(self) -> ApiResult<Metric> {
        Ok(Metric {
            key: required_str(self.key, "key")?,
            value: required(self.value, "value")?,
            timestamp: required(self.timestamp, "timestamp")?,
            step: self.step.unwrap_or(0),
            model_id: self.model_id.filter(|s| !s.is_empty()),
            dataset_name: self.dataset_name.filter(|s| !s.is_empty()),
            dataset_digest: self.dataset_digest.filter(|s| !s.is_empty()),
        })
    }
}

#[derive(Deserialize)]
struct LogMetric {
    #[serde(flatten)]
    run: RunRef,
    #[serde(flatten)]
    metric: MetricIn,
}

async fn log_metric(State(s): State<AppState>, Msg(r): Msg<LogMetric>) -> ApiResult<Reply<Value>> {
    let run_id = r.run.id()?;
    s.store.metrics().log(&run_id, &r.metric.into_metric()?).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct RunKeyValue {
    #[serde(flatten)]
    run: RunRef,
    key: Option<String>,
    value: Option<String>,
}

impl RunKeyValue {
    fn split(self) -> ApiResult<(String, tracking::KeyValue)> {
        let run_id = self.run.id()?;
        let key = required_str(self.key, "key")?;
        Ok((run_id, tracking::KeyValue { key, value: required(self.value, "value")? }))
    }
}

async fn log_param(State(s): State<AppState>, Msg(r): Msg<RunKeyValue>) -> ApiResult<Reply<Value>> {
    let (run_id, kv) = r.split()?;
    s.store.runs().log_param(&run_id, &kv).await?;
    Ok(Reply(json!({})))
}

async fn set_tag(State(s): State<AppState>, Msg(r): Msg<RunKeyValue>) -> ApiResult<Reply<Value>> {
    let (run_id, kv) = r.split()?;
    s.store.runs().set_tag(&run_id, &kv).await?;
    Ok(Reply(json!({})))
}

async fn delete_tag(State(s): State<AppState>, Msg(r): Msg<RunKeyValue>) -> ApiResult<Reply<Value>> {
    let run_id = r.run.id()?;
    s.store.runs().delete_tag(&run_id, &required_str(r.key, "key")?).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct LogBatch {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default)]
    metrics: Vec<MetricIn>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn log_batch(State(s): State<AppState>, Msg(r): Msg<LogBatch>) -> ApiResult<Reply<Value>> {
    let run_id = r.run.id()?;
    let metrics = r.metrics.into_iter().map(MetricIn::into_metric).collect::<ApiResult<Vec<_>>>()?;
    s.store.runs().log_batch(&run_id, &metrics, &tags_in(r.params), &tags_in(r.tags)).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct LogInputs {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default)]
    datasets: Vec<wire::DatasetInput>,
    #[serde(default)]
    models: Vec<wire::ModelInput>,
}

async fn log_inputs(State(s): State<AppState>, Msg(r): Msg<LogInputs>) -> ApiResult<Reply<Value>> {
    let run_id = r.run.id()?;
    let inputs: Vec<tracking::DatasetInput> = r.datasets.into_iter().map(Into::into).collect();
    let models: Vec<String> = r.models.into_iter().map(|m| m.model_id).filter(|m| !m.is_empty()).collect();
    s.store.datasets().log_inputs(&run_id, &inputs, &models).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct LogOutputs {
    #[serde(flatten)]
    run: RunRef,
    #[serde(default)]
    models: Vec<wire::ModelOutput>,
}

async fn log_outputs(State(s): State<AppState>, Msg(r): Msg<LogOutputs>) -> ApiResult<Reply<Value>> {
    let run_id = r.run.id()?;
    let outputs: Vec<tracking::ModelOutput> = r
        .models
        .into_iter()
        .map(|m| tracking::ModelOutput { model_id: m.model_id, step: m.step.unwrap_or(0) })
        .collect();
    s.store.logged_models().log_outputs(&run_id, &outputs).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "json::opt_int")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

async fn search_runs(State(s): State<AppState>, Msg(r): Msg<SearchRuns>) -> ApiResult<Encoded> {
    let search = RunSearch {
        experiment_ids: r.experiment_ids,
        filter: r.filter.unwrap_or_default(),
        view: view_type(r.run_view_type)?,
        max_results: r.max_results.unwrap_or(1000),
        order_by: r.order_by,
        page_token: r.page_token,
    };
    let page = s.store.runs().search(&search).await?;
    // Each run's JSON is made once per state of the run and kept beside it in the store's
    // cache: a page of runs seen before is copied, not encoded again.
    let runs = page.items.iter().map(|run| run.rendered(|r| wire::Run(r).to_json()));
    Ok(Encoded::raw_page("runs", runs, page.next_page_token.as_deref()))
}

#[derive(Deserialize)]
struct MetricHistory {
    #[serde(flatten)]
    run: RunRef,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "json::opt_int")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

async fn get_metric_history(
    State(s): State<AppState>,
    Msg(r): Msg<MetricHistory>,
) -> ApiResult<Reply<Paged<wire::Metric>>> {
    let run_id = r.run.id()?;
    let key = required_str(r.metric_key, "metric_key")?;
    let page = s.store.metrics().history(&run_id, &key, r.max_results, r.page_token.as_deref()).await?;
    Ok(Reply(Paged::of("metrics", &page)))
}

#[derive(Deserialize)]
struct BulkInterval {
    #[serde(default)]
    run_ids: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "json::opt_int")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "json::opt_int")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "json::opt_int")]
    max_results: Option<i64>,
}

async fn get_metric_history_bulk_interval(
    State(s): State<AppState>,
    Msg(r): Msg<BulkInterval>,
) -> ApiResult<Reply<Value>> {
    let key = required_str(r.metric_key, "metric_key")?;
    let points = s
        .store
        .metrics()
        .history_bulk_interval(&r.run_ids, &key, r.start_step, r.end_step, r.max_results.unwrap_or(320))
        .await?;
    let metrics: Vec<wire::Metric> = points
        .iter()
        .map(|p| {
            let mut m = wire::Metric::from(&p.metric);
            m.run_id = Some(p.run_id.clone());
            m
        })
        .collect();
    Ok(Reply(json!({ "metrics": metrics })))
}
