//! Tracking routes (`/api/2.0/mlflow/experiments/*`, `runs/*`, `metrics/*`): each declared
//! once in [`routes`] with the rule over its typed request, and handled by parse → call the
//! store → shape the reply. Listings show only what the caller may read.

use crate::access::{param, readable, tier_open, Need, Withheld};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{self, Encoded, Msg, Reply};
use crate::routes::{Api, GET, GET_POST, POST};
use crate::wire::{self, tags_in, KeyValue, Paged};
use crate::{owners, AppState};
use ::auth::permission::{Action, EXPERIMENT, RUN};
use serde::Deserialize;
use serde_json::{json, Value};
use tracking::{validate, LifecycleStage, Metric, RunSearch, RunStatus, RunUpdate, ViewType};

pub fn routes(api: &mut Api) {
    api.rule(POST, "/experiments/create", create_experiment, |_| Ok(Need::CreateExperiment));
    api.listing(GET_POST, "/experiments/search", search_experiments);
    api.listing(GET, "/experiments/list", search_experiments);
    api.rule(GET, "/experiments/get", get_experiment, |r| experiment(&r.experiment_id, Action::Read));
    api.rule(GET, "/experiments/get-by-name", get_experiment_by_name, |r| {
        Ok(Need::ExperimentByName(param(&r.experiment_name, "experiment_name")?))
    });
    api.rule(POST, "/experiments/delete", delete_experiment, |r| {
        Ok(Need::DeleteExperiment(param(&r.experiment_id, "experiment_id")?))
    });
    api.rule(POST, "/experiments/restore", restore_experiment, |r| {
        Ok(Need::DeleteExperiment(param(&r.experiment_id, "experiment_id")?))
    });
    api.rule(POST, "/experiments/update", update_experiment, |r| experiment(&r.experiment_id, Action::Update));
    api.rule(POST, "/experiments/set-experiment-tag", set_experiment_tag, |r| {
        experiment(&r.experiment_id, Action::Update)
    });
    api.rule(POST, "/experiments/delete-experiment-tag", delete_experiment_tag, |r| {
        experiment(&r.experiment_id, Action::Update)
    });
    api.rule(POST, "/runs/create", create_run, |r| Ok(Need::CreateRun(param(&r.experiment_id, "experiment_id")?)));
    api.rule(POST, "/runs/update", update_run, |r| Ok(Need::Run(r.run.id()?, Action::Update)));
    api.rule(POST, "/runs/delete", delete_run, |r| Ok(Need::Run(r.id()?, Action::Delete)));
    api.rule(POST, "/runs/restore", restore_run, |r| Ok(Need::Run(r.id()?, Action::Delete)));
    api.rule(GET, "/runs/get", get_run, |r| Ok(Need::Run(r.id()?, Action::Read)));
    api.rule(POST, "/runs/log-metric", log_metric, |r| {
        Ok(Need::RunAndModels(r.run.id()?, model_ids([r.metric.model_id.as_deref()])))
    });
    api.rule(POST, "/runs/log-parameter", log_param, |r| Ok(Need::Run(r.run.id()?, Action::Update)));
    api.rule(POST, "/runs/set-tag", set_tag, |r| Ok(Need::Run(r.run.id()?, Action::Update)));
    api.rule(POST, "/runs/delete-tag", delete_tag, |r| Ok(Need::Run(r.run.id()?, Action::Update)));
    api.rule(POST, "/runs/log-batch", log_batch, |r| {
        // Sizes first: the decision looks up every logged model the metrics name.
        validate::batch_sizes(r.metrics.len(), r.params.len(), r.tags.len())?;
        Ok(Need::RunAndModels(r.run.id()?, model_ids(r.metrics.iter().map(|m| m.model_id.as_deref()))))
    });
    api.rule(POST, "/runs/log-inputs", log_inputs, |r| {
        Ok(Need::RunAndModels(r.run.id()?, model_ids(r.models.iter().map(|m| Some(m.model_id.as_str())))))
    });
    api.rule(POST, "/runs/outputs", log_outputs, |r| {
        Ok(Need::RunAndModels(r.run.id()?, model_ids(r.models.iter().map(|m| Some(m.model_id.as_str())))))
    });
    api.listing(GET_POST, "/runs/search", search_runs);
    api.rule(GET, "/metrics/get-history", get_metric_history, |r| Ok(Need::Run(r.run.id()?, Action::Read)));
    api.rule(GET, "/metrics/get-history-bulk-interval", get_metric_history_bulk_interval, |r| {
        validate::bulk_run_ids(r.run_ids.len())?;
        Ok(Need::RunsBulk(r.run_ids.clone()))
    });
}

/// Routes MLflow serves under `/ajax-api/2.0/mlflow` only (for its UI).
pub fn ajax_routes(api: &mut Api) {
    api.rule(POST, "/experiments/search-datasets", search_datasets, |r| {
        Ok(Need::Experiments(r.checked()?.to_vec(), Action::Read))
    });
    api.rule(GET, "/metrics/get-history-bulk", get_metric_history_bulk, |r| {
        r.check()?;
        Ok(Need::RunsBulk(r.run_id.clone()))
    });
}

fn experiment(id: &Option<String>, action: Action) -> ApiResult<Need> {
    Ok(Need::Experiment(param(id, "experiment_id")?, action))
}

/// The distinct, non-empty logged-model ids a request writes to (`_validate_can_update_run_and_models`).
fn model_ids<'a>(ids: impl IntoIterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids.into_iter().flatten().filter(|s| !s.is_empty()) {
        if !out.iter().any(|x| x == id) {
            out.push(id.to_string());
        }
    }
    out
}

/// MLflow refetches after filtering a search page, until it is full or the results end; so do
/// we, for at most this many more store pages, and then answer a shorter page whose token
/// still reaches every row (so one request cannot make the server walk the whole table).
const MAX_REFILLS: usize = 16;

/// Drops the rows `keep` refuses and refills the page from the following ones.
pub(crate) async fn refill<T, F, Fut>(
    page: &mut tracking::Page<T>,
    max_results: i64,
    keep: impl Fn(&T) -> bool,
    mut next: F,
) -> ApiResult<()>
where
    F: FnMut(String, i64) -> Fut,
    Fut: std::future::Future<Output = tracking::Result<tracking::Page<T>>>,
{
    page.items.retain(&keep);
    for _ in 0..MAX_REFILLS {
        let missing = max_results - page.items.len() as i64;
        if missing <= 0 {
            break;
        }
        let Some(token) = page.next_page_token.take() else { break };
        let more = next(token, missing).await?;
        page.next_page_token = more.next_page_token;
        page.items.extend(more.items.into_iter().filter(|row| keep(row)));
    }
    Ok(())
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
    /// The one derivation of the run id, used by the rule and the handler alike.
    fn id(&self) -> ApiResult<String> {
        required_str(self.run_id.clone().filter(|s| !s.is_empty()).or_else(|| self.run_uuid.clone()), "run_id")
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

async fn create_experiment(s: AppState, who: Caller, Msg(r): Msg<CreateExperiment>) -> ApiResult<Reply<Value>> {
    let name = required_str(r.name, "name")?;
    let location = r.artifact_location.filter(|l| !l.is_empty());
    if let Some(loc) = &location {
        crate::artifacts::check_experiment_location(loc, s.store.artifact_root())?;
    }
    for t in &r.tags {
        validate::experiment_tag(&t.key, &t.value)?;
    }
    let id = owners::create_experiment(&s, &who, &name, location.as_deref(), &tags_in(r.tags)).await?;
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

/// `filter_search_experiments`: only experiments the caller may read, pages refilled.
async fn search_experiments(
    s: AppState,
    who: Caller,
    Msg(r): Msg<SearchExperiments>,
) -> ApiResult<Reply<Paged<wire::Experiment>>> {
    validate::search(0, r.order_by.len())?;
    let (view, filter, max) = (view_type(r.view_type)?, r.filter.unwrap_or_default(), r.max_results.unwrap_or(1000));
    let search = |token: Option<String>, n: i64| {
        let (store, filter, order_by) = (&s.store, &filter, &r.order_by);
        async move { store.experiments().search(view, filter, order_by, n, token.as_deref()).await }
    };
    let mut page = search(r.page_token, max).await?;
    if let Some(g) = who.grants() {
        refill(&mut page, max, |e| readable(g, EXPERIMENT, &e.experiment_id), |t, n| search(Some(t), n)).await?;
    }
    Ok(Reply(Paged::of("experiments", &page)))
}

#[derive(Deserialize)]
struct ExperimentRef {
    #[serde(default, deserialize_with = "json::string_opt")]
    experiment_id: Option<String>,
}

async fn get_experiment(s: AppState, _: Caller, Msg(r): Msg<ExperimentRef>) -> ApiResult<Reply<Value>> {
    let exp = s.store.experiments().get(&required_str(r.experiment_id, "experiment_id")?).await?;
    Ok(Reply(json!({ "experiment": wire::Experiment::from(&exp) })))
}

#[derive(Deserialize)]
struct ExperimentByName {
    experiment_name: Option<String>,
}

async fn get_experiment_by_name(s: AppState, _: Caller, Msg(r): Msg<ExperimentByName>) -> ApiResult<Reply<Value>> {
    let exp = s.store.experiments().get_by_name(&required_str(r.experiment_name, "experiment_name")?).await?;
    Ok(Reply(json!({ "experiment": wire::Experiment::from(&exp) })))
}

async fn delete_experiment(s: AppState, _: Caller, Msg(r): Msg<ExperimentRef>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    s.store.experiments().set_lifecycle(&id, LifecycleStage::Deleted).await?;
    Ok(Reply(json!({})))
}

async fn restore_experiment(s: AppState, _: Caller, Msg(r): Msg<ExperimentRef>) -> ApiResult<Reply<Value>> {
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

async fn update_experiment(s: AppState, _: Caller, Msg(r): Msg<UpdateExperiment>) -> ApiResult<Reply<Value>> {
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

async fn set_experiment_tag(s: AppState, _: Caller, Msg(r): Msg<ExperimentTag>) -> ApiResult<Reply<Value>> {
    let id = required_str(r.experiment_id, "experiment_id")?;
    let key = required_str(r.key, "key")?;
    let value = required(r.value, "value")?;
    validate::experiment_tag(&key, &value)?;
    s.store.experiments().set_tag(&id, &key, &value).await?;
    Ok(Reply(json!({})))
}

async fn delete_experiment_tag(s: AppState, _: Caller, Msg(r): Msg<ExperimentTag>) -> ApiResult<Reply<Value>> {
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

async fn create_run(s: AppState, _: Caller, Msg(r): Msg<CreateRun>) -> ApiResult<Reply<Value>> {
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

async fn update_run(s: AppState, _: Caller, Msg(r): Msg<UpdateRun>) -> ApiResult<Reply<Value>> {
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

async fn delete_run(s: AppState, _: Caller, Msg(r): Msg<RunRef>) -> ApiResult<Reply<Value>> {
    s.store.runs().set_lifecycle(&r.id()?, LifecycleStage::Deleted).await?;
    Ok(Reply(json!({})))
}

async fn restore_run(s: AppState, _: Caller, Msg(r): Msg<RunRef>) -> ApiResult<Reply<Value>> {
    s.store.runs().set_lifecycle(&r.id()?, LifecycleStage::Active).await?;
    Ok(Reply(json!({})))
}

async fn get_run(s: AppState, who: Caller, Msg(r): Msg<RunRef>) -> ApiResult<Reply<Value>> {
    let mut run = s.store.runs().get(&r.id()?).await?;
    Withheld::of(&who).run(&mut run);
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
        self.into_metric_named("")
    }

    /// With `prefix` (`metrics[3].`) before each field name in the errors, as MLflow names a
    /// batch's fields.
    fn into_metric_named(self, prefix: &str) -> ApiResult<Metric> {
        Ok(Metric {
            key: required_str(self.key, &format!("{prefix}key"))?,
            value: required(self.value, &format!("{prefix}value"))?,
            timestamp: required(self.timestamp, &format!("{prefix}timestamp"))?,
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

async fn log_metric(s: AppState, _: Caller, Msg(r): Msg<LogMetric>) -> ApiResult<Reply<Value>> {
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

async fn log_param(s: AppState, _: Caller, Msg(r): Msg<RunKeyValue>) -> ApiResult<Reply<Value>> {
    let (run_id, kv) = r.split()?;
    s.store.runs().log_param(&run_id, &kv).await?;
    Ok(Reply(json!({})))
}

async fn set_tag(s: AppState, _: Caller, Msg(r): Msg<RunKeyValue>) -> ApiResult<Reply<Value>> {
    let (run_id, kv) = r.split()?;
    s.store.runs().set_tag(&run_id, &kv).await?;
    Ok(Reply(json!({})))
}

async fn delete_tag(s: AppState, _: Caller, Msg(r): Msg<RunKeyValue>) -> ApiResult<Reply<Value>> {
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

async fn log_batch(s: AppState, _: Caller, Msg(r): Msg<LogBatch>) -> ApiResult<Reply<Value>> {
    // The store checks the batch as MLflow does: entities (long values truncated), sizes, keys.
    let run_id = r.run.id()?;
    let metrics = r.metrics.into_iter().enumerate();
    let metrics =
        metrics.map(|(i, m)| m.into_metric_named(&format!("metrics[{i}]."))).collect::<ApiResult<Vec<_>>>()?;
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

async fn log_inputs(s: AppState, _: Caller, Msg(r): Msg<LogInputs>) -> ApiResult<Reply<Value>> {
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

async fn log_outputs(s: AppState, _: Caller, Msg(r): Msg<LogOutputs>) -> ApiResult<Reply<Value>> {
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

/// `search_runs_impl`: the experiment ids are narrowed to those the caller may read
/// (`filter_experiment_ids`) before the query runs.
async fn search_runs(s: AppState, who: Caller, Msg(r): Msg<SearchRuns>) -> ApiResult<Encoded> {
    validate::search(r.experiment_ids.len(), r.order_by.len())?;
    let mut experiment_ids = r.experiment_ids;
    if let Some(g) = who.grants() {
        let runs_open = tier_open(g, RUN);
        experiment_ids.retain(|id| runs_open && readable(g, EXPERIMENT, id));
    }
    let search = RunSearch {
        experiment_ids,
        filter: r.filter.unwrap_or_default(),
        view: view_type(r.run_view_type)?,
        max_results: r.max_results.unwrap_or(1000),
        order_by: r.order_by,
        page_token: r.page_token,
    };
    let page = s.store.runs().search(&search).await?;
    let withheld = Withheld::of(&who);
    if withheld.logged_models {
        // Rendered for this caller alone (rare: a denied logged-model tier).
        let runs: Vec<String> = page
            .items
            .iter()
            .map(|run| {
                let mut run = tracking::Run::clone(run);
                withheld.run(&mut run);
                wire::Run(&run).to_json()
            })
            .collect();
        return Ok(Encoded::raw_page("runs", runs.iter().map(String::as_str), page.next_page_token.as_deref()));
    }
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
    s: AppState,
    who: Caller,
    Msg(r): Msg<MetricHistory>,
) -> ApiResult<Reply<Paged<wire::Metric>>> {
    let run_id = r.run.id()?;
    let key = required_str(r.metric_key, "metric_key")?;
    let mut page = s.store.metrics().history(&run_id, &key, r.max_results, r.page_token.as_deref()).await?;
    Withheld::of(&who).metrics(&mut page.items);
    Ok(Reply(Paged::of("metrics", &page)))
}

#[derive(Deserialize)]
struct SearchDatasets {
    #[serde(default)]
    experiment_ids: Vec<String>,
}

/// MLflow's `MAX_EXPERIMENT_IDS_PER_REQUEST` for `search-datasets`.
const SEARCH_DATASETS_MAX_EXPERIMENTS: usize = 20;

impl SearchDatasets {
    /// `search_datasets_impl`'s checks, in its words.
    fn checked(&self) -> ApiResult<&[String]> {
        if self.experiment_ids.is_empty() {
            return Err(ApiError::invalid("SearchDatasets request must specify at least one experiment_id."));
        }
        if self.experiment_ids.len() > SEARCH_DATASETS_MAX_EXPERIMENTS {
            return Err(ApiError::invalid(format!(
                "SearchDatasets request cannot specify more than {SEARCH_DATASETS_MAX_EXPERIMENTS} experiment_ids. \
                 Received {} experiment_ids.",
                self.experiment_ids.len()
            )));
        }
        Ok(&self.experiment_ids)
    }
}

/// The datasets the experiments' runs used, for the UI (`experiments/search-datasets`).
async fn search_datasets(s: AppState, _: Caller, Msg(r): Msg<SearchDatasets>) -> ApiResult<Reply<Value>> {
    let summaries = s.store.datasets().summaries(r.checked()?).await?;
    let summaries: Vec<Value> = summaries
        .into_iter()
        .map(|d| {
            let mut v = json!({"experiment_id": d.experiment_id, "name": d.name, "digest": d.digest});
            if let Some(context) = d.context {
                v["context"] = json!(context);
            }
            v
        })
        .collect();
    Ok(Reply(match summaries.is_empty() {
        true => json!({}),
        false => json!({ "dataset_summaries": summaries }),
    }))
}

#[derive(Deserialize)]
struct HistoryBulk {
    /// Repeated `run_id` query parameters.
    #[serde(default)]
    run_id: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "json::opt_int")]
    max_results: Option<i64>,
}

/// `get_metric_history_bulk_handler`'s limits.
const HISTORY_BULK_MAX_RUNS: usize = 100;
const HISTORY_BULK_MAX_RESULTS: i64 = 25_000;

impl HistoryBulk {
    /// MLflow's checks, in its order and words.
    fn check(&self) -> ApiResult<String> {
        if self.run_id.is_empty() {
            return Err(ApiError::invalid("GetMetricHistoryBulk request must specify at least one run_id."));
        }
        if self.run_id.len() > HISTORY_BULK_MAX_RUNS {
            return Err(ApiError::invalid(format!(
                "GetMetricHistoryBulk request cannot specify more than {HISTORY_BULK_MAX_RUNS} run_ids. Received {} \
                 run_ids.",
                self.run_id.len()
            )));
        }
        self.metric_key
            .clone()
            .ok_or_else(|| ApiError::invalid("GetMetricHistoryBulk request must specify a metric_key."))
    }
}

/// The UI's full history of one metric over several runs: by run id, then (timestamp, step,
/// value), at most `max_results` points in all (MLflow's `get_metric_history_bulk`).
async fn get_metric_history_bulk(s: AppState, who: Caller, Msg(r): Msg<HistoryBulk>) -> ApiResult<Reply<Value>> {
    let key = r.check()?;
    let max_results = r.max_results.unwrap_or(HISTORY_BULK_MAX_RESULTS).min(HISTORY_BULK_MAX_RESULTS);
    let mut run_ids = r.run_id.clone();
    run_ids.sort();
    run_ids.dedup();
    let mut metrics = vec![];
    for run_id in &run_ids {
        let left = max_results - metrics.len() as i64;
        if left <= 0 {
            break;
        }
        let mut page = s.store.metrics().history(run_id, &key, Some(left), None).await?;
        Withheld::of(&who).metrics(&mut page.items);
        metrics.extend(page.items.iter().map(|m| {
            json!({"key": m.key, "value": json::PyFloat(m.value), "timestamp": m.timestamp, "step": m.step,
                   "run_id": run_id})
        }));
    }
    Ok(Reply(json!({ "metrics": metrics })))
}

/// MLflow's `MAX_RESULTS_PER_RUN` for the bulk-interval read.
const BULK_INTERVAL_MAX_RESULTS: i64 = 2500;

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
    s: AppState,
    _: Caller,
    Msg(r): Msg<BulkInterval>,
) -> ApiResult<Reply<Value>> {
    if r.run_ids.is_empty() {
        return Err(ApiError::invalid(
            "Missing value for required parameter 'run_ids'. See the API docs for more information about request \
             parameters.",
        ));
    }
    validate::bulk_run_ids(r.run_ids.len())?;
    if r.max_results.is_some_and(|n| !(1..=BULK_INTERVAL_MAX_RESULTS).contains(&n)) {
        return Err(ApiError::invalid(format!(
            "max_results must be between 1 and {BULK_INTERVAL_MAX_RESULTS}. See the API docs for more information \
             about request parameters."
        )));
    }
    let key = required_str(r.metric_key, "metric_key")?;
    match (r.start_step, r.end_step) {
        (Some(start), Some(end)) if start > end => {
            return Err(ApiError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
            )))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ApiError::invalid("If either start step or end step are specified, both must be specified."))
        }
        _ => {}
    }
    let points = s
        .store
        .metrics()
        .history_bulk_interval(
            &r.run_ids,
            &key,
            r.start_step,
            r.end_step,
            r.max_results.unwrap_or(BULK_INTERVAL_MAX_RESULTS),
        )
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
