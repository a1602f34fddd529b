//! Runs: lifecycle, logging (metrics, params, tags, inputs), reads and search.

use super::sql::{number_condition, string_condition, Arg, Sql, RUN_PARAMS, RUN_TAGS};
use super::{
    check_max_results, decode_page_token, group_commit, now_ms, paginate, parse_experiment_id, validate, Store,
};
use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::model::{
    Dataset, DatasetInput, KeyValue, LifecycleStage, Metric, ModelOutput, Page, Run, RunInfo, RunMetric, RunStatus,
    SharedRun, ViewType,
};
use crate::search::{parse_filter, parse_order_by, Entity, Op, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::sync::Arc;

/// The tag that mirrors a run's name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";
/// Most rows read from the database in one `IN (...)` list.
const CHUNK: usize = 2000;
/// The largest page of metric history returned at once (the client asks for 2500).
pub const METRIC_HISTORY_MAX: i64 = 25_000;

/// A run's columns, then its `data_version` (migration 0006).
const RUN_COLUMNS: &str = "r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, \
     r.artifact_uri, r.lifecycle_stage, r.data_version";

fn run_info_from_row(row: &AnyRow) -> Result<RunInfo> {
    Ok(RunInfo {
        run_id: row.try_get(0)?,
        run_name: row.try_get(1)?,
        experiment_id: row.try_get::<i64, _>(2)?.to_string(),
        user_id: row.try_get(3)?,
        status: RunStatus::parse(&row.try_get::<String, _>(4)?).unwrap_or(RunStatus::Running),
        start_time: row.try_get(5)?,
        end_time: row.try_get(6)?,
        artifact_uri: row.try_get(7)?,
        lifecycle_stage: LifecycleStage::parse(&row.try_get::<String, _>(8)?),
    })
}

/// NaN is stored as value 0 with `is_nan` 1 (SQLite turns a NaN REAL into NULL).
fn loaded_value(v: f64, is_nan: i64) -> f64 {
    if is_nan != 0 {
        f64::NAN
    } else {
        v
    }
}

fn run_not_found(run_id: &str) -> StoreError {
    StoreError::NotFound(format!("Run with id={run_id} not found"))
}

/// A run's lifecycle stage (`None`: no such run) must be active for it to take writes.
fn require_active(run_id: &str, stage: Option<String>) -> Result<()> {
    match stage.as_deref() {
        None => Err(run_not_found(run_id)),
        Some("active") => Ok(()),
        Some(other) => Err(StoreError::InvalidParameter(format!(
            "The run {run_id} must be in the 'active' state. Current state is {other}."
        ))),
    }
}

/// Generated run names, `adjective-noun-number` like MLflow's.
fn random_run_name() -> String {
    const ADJ: [&str; 16] = [
        "bold", "calm", "clever", "crisp", "eager", "gentle", "keen", "lucky", "merry", "nimble", "quiet", "rare",
        "sharp", "swift", "vivid", "wise",
    ];
    const NOUN: [&str; 16] = [
        "bass", "crane", "deer", "fox", "hare", "hawk", "lark", "lynx", "mole", "newt", "owl", "seal", "shrew",
        "stork", "wolf", "wren",
    ];
    let u = uuid::Uuid::new_v4().as_u128();
    format!("{}-{}-{}", ADJ[(u % 16) as usize], NOUN[((u >> 8) % 16) as usize], (u >> 16) % 1000)
}

/// One run as [`Store::hydrate`] reads it: its columns, then its latest metrics (value as
/// text), params, tags, dataset inputs (with their tags), model outputs and model inputs.
#[derive(serde::Deserialize)]
struct RunRow(
    String,
    String,
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
    i64,
    #[serde(deserialize_with = "null_as_empty")] Vec<(String, String, i64, i64, i64)>,
    #[serde(deserialize_with = "null_as_empty")] Vec<(String, String)>,
    #[serde(deserialize_with = "null_as_empty")] Vec<(String, String)>,
    #[serde(deserialize_with = "null_as_empty")] Vec<InputRow>,
    #[serde(deserialize_with = "null_as_empty")] Vec<(String, i64)>,
    #[serde(deserialize_with = "null_as_empty")] Vec<String>,
);

#[derive(serde::Deserialize)]
struct InputRow(
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    #[serde(deserialize_with = "null_as_empty")] Vec<(String, String)>,
);

/// SQLite's `json_group_array` over no rows is `[]`, but keep a `null` harmless too.
fn null_as_empty<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> std::result::Result<Vec<T>, D::Error> {
    Ok(<Option<Vec<T>> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

/// What `update_run` may change.
#[derive(Debug, Default, Clone)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

/// Parameters of a run search (MLflow's `SearchRuns`).
#[derive(Debug, Clone)]
pub struct RunSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub view: ViewType,
    pub max_results: i64,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

impl Store {
    /// Creates a run in an active experiment. The name comes from `run_name`, else from an
    /// `mlflow.runName` tag, else is generated; the tag is kept in step with it.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        user_id: &str,
        run_name: Option<&str>,
        start_time: Option<i64>,
        tags: &[KeyValue],
    ) -> Result<Run> {
        for t in tags {
            validate::tag(&t.key, &t.value)?;
        }
        let exp = self.get_experiment(experiment_id).await?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidParameter(format!(
                "Could not create run under non-active experiment with ID {experiment_id}."
            )));
        }
        let tag_name = tags.iter().find(|t| t.key == RUN_NAME_TAG).map(|t| t.value.as_str());
        if let (Some(a), Some(b)) = (run_name.filter(|n| !n.is_empty()), tag_name) {
            if a != b {
                return Err(StoreError::InvalidParameter(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values \
                     (run_name='{a}', mlflow.runName='{b}')."
                )));
            }
        }
        let name = run_name.filter(|n| !n.is_empty()).or(tag_name).map(str::to_string).unwrap_or_else(random_run_name);
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let artifact_uri = format!("{}/{run_id}/artifacts", exp.artifact_location.trim_end_matches('/'));
        let start_time = start_time.unwrap_or_else(now_ms);
        let exp_id = parse_experiment_id(experiment_id)?;
        let mut tx = self.w().begin().await?;
        sqlx::query(
            "INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage) \
             VALUES ($1, $2, $3, $4, 'RUNNING', $5, NULL, $6, 'active')",
        )
        .bind(&run_id)
        .bind(&name)
        .bind(exp_id)
        .bind(user_id)
        .bind(start_time)
        .bind(&artifact_uri)
        .execute(&mut *tx)
        .await?;
        let mut all_tags: Vec<KeyValue> = tags.iter().filter(|t| t.key != RUN_NAME_TAG).cloned().collect();
        all_tags.push(KeyValue::new(RUN_NAME_TAG, name));
        for t in &all_tags {
            upsert_tag(&mut tx, &run_id, &t.key, &t.value).await?;
        }
        tx.commit().await?;
        self.get_run(&run_id).await
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        Ok(self.load_runs(&[run_id]).await?.pop().ok_or_else(|| run_not_found(run_id))?.1)
    }

    pub async fn get_run_info(&self, run_id: &str) -> Result<RunInfo> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1"))
            .bind(run_id)
            .fetch_optional(self.r())
            .await?
            .ok_or_else(|| run_not_found(run_id))?;
        run_info_from_row(&row)
    }

    /// Loads full runs (info, latest metrics, params, tags, inputs) with their `data_version`,
    /// in the order of `ids`; unknown ids are skipped.
    async fn load_runs(&self, ids: &[&str]) -> Result<Vec<(i64, Run)>> {
        let mut runs = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut page = Sql::new(&format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid IN "));
            page.bind_set(self.dialect(), chunk.iter().copied());
            let loaded = self.hydrate(page, "p.run_uuid").await?;
            // Return in the caller's order.
            let mut by_id: std::collections::HashMap<String, (i64, Run)> =
                loaded.into_iter().map(|r| (r.1.info.run_id.clone(), r)).collect();
            runs.extend(chunk.iter().filter_map(|id| by_id.remove(*id)));
        }
        Ok(runs)
    }

    /// The runs of a search page, given as `(run_uuid, data_version)` in order: those cached at
    /// that version come from memory, the others are loaded (at whatever version they have
    /// now) and cached. A run deleted in between is left out.
    async fn cached_runs(&self, page: &[(String, i64)]) -> Result<Vec<Arc<SharedRun>>> {
        let mut runs: Vec<Option<Arc<SharedRun>>> = page.iter().map(|(id, v)| self.runs.get(id, *v)).collect();
        let missing: Vec<&str> =
            page.iter().zip(&runs).filter(|(_, r)| r.is_none()).map(|((id, _), _)| id.as_str()).collect();
        if missing.is_empty() {
            return Ok(runs.into_iter().flatten().collect());
        }
        let mut loaded: std::collections::HashMap<String, Arc<SharedRun>> = std::collections::HashMap::new();
        for (version, run) in self.load_runs(&missing).await? {
            let run = Arc::new(SharedRun::new(run));
            self.runs.insert(version, run.clone());
            loaded.insert(run.info.run_id.clone(), run);
        }
        for ((id, _), slot) in page.iter().zip(runs.iter_mut()) {
            if slot.is_none() {
                *slot = loaded.get(id).cloned();
            }
        }
        Ok(runs.into_iter().flatten().collect())
    }

    /// Loads the runs selected by `page` (a query over `runs r` yielding [`RUN_COLUMNS`] and
    /// any sort keys) with a single statement: one JSON array with one entry per run, in the
    /// order of `order` (terms over the page `p`), each holding the run's columns followed by
    /// its metrics, params, tags, inputs and outputs as nested arrays (correlated subqueries on
    /// each table's `run_uuid` index). Reading
    /// thousands of small rows one by one (sqlx's SQLite driver hands every row across
    /// threads), or a statement per table, costs far more than building and parsing the JSON.
    async fn hydrate(&self, page: Sql, order: &str) -> Result<Vec<(i64, Run)>> {
        let dialect = self.dialect();
        let (array, agg, empty) = match dialect {
            Dialect::Sqlite => ("json_array", "json_group_array", "json_array()"),
            Dialect::Postgres => ("json_build_array", "json_agg", "CAST('[]' AS json)"),
        };
        let sub = |item: &str, from: &str, owner: &str| match dialect {
            Dialect::Sqlite => format!("(SELECT {agg}({item}) FROM {from} WHERE {owner})"),
            Dialect::Postgres => format!("(SELECT COALESCE({agg}({item}), {empty}) FROM {from} WHERE {owner})"),
        };
        // Tables that are often entirely empty (datasets, logged models) are only looked up
        // per run when they hold any row: the uncorrelated EXISTS runs once per statement.
        let guarded = |table: &str, lookup: String| {
            format!("CASE WHEN EXISTS (SELECT 1 FROM {table}) THEN {lookup} ELSE {empty} END")
        };
        // Metric values travel as exact text (17 significant digits; PostgreSQL's float text is
        // already exact) so that infinities survive JSON.
        let value_text = match dialect {
            Dialect::Sqlite => "printf('%.17g', x.value)",
            Dialect::Postgres => "CAST(x.value AS TEXT)",
        };
        let input_tags = sub(&format!("{array}(t.key, t.value)"), "input_tags t", "t.input_uuid = x.input_uuid");
        let columns = [
            "p.run_uuid, p.name, p.experiment_id, p.user_id, p.status, p.start_time, p.end_time, p.artifact_uri, \
             p.lifecycle_stage, p.data_version"
                .to_string(),
            sub(
                &format!("{array}(x.key, {value_text}, x.is_nan, x.timestamp, x.step)"),
                "latest_metrics x",
                "x.run_uuid = p.run_uuid",
            ),
            sub(&format!("{array}(x.key, x.value)"), "params x", "x.run_uuid = p.run_uuid"),
            sub(&format!("{array}(x.key, x.value)"), "tags x", "x.run_uuid = p.run_uuid"),
            guarded(
                "run_inputs",
                sub(
                    &format!("{array}(d.name, d.digest, d.source_type, d.source, d.schema, d.profile, {input_tags})"),
                    "run_inputs x JOIN datasets d ON d.dataset_uuid = x.dataset_uuid",
                    "x.run_uuid = p.run_uuid",
                ),
            ),
            guarded(
                "run_outputs",
                sub(&format!("{array}(x.model_id, x.step)"), "run_outputs x", "x.run_uuid = p.run_uuid"),
            ),
            guarded("run_model_inputs", sub("x.model_id", "run_model_inputs x", "x.run_uuid = p.run_uuid")),
        ];
        let rows: Vec<RunRow> = self.json_rows(page, &columns.join(", "), order).await?;
        let decode = |e: String| StoreError::Database(sqlx::Error::Decode(e.into()));
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let RunRow(
                run_id,
                run_name,
                experiment_id,
                user_id,
                status,
                start_time,
                end_time,
                artifact_uri,
                stage,
                version,
                metric_rows,
                params,
                tags,
                input_rows,
                output_rows,
                mut model_inputs,
            ) = row;
            let mut metrics = Vec::with_capacity(metric_rows.len());
            for (key, value, is_nan, timestamp, step) in metric_rows {
                let value: f64 =
                    value.trim().parse().map_err(|_| decode(format!("metric value '{value}' is not a number")))?;
                let value = loaded_value(value, is_nan);
                metrics.push(Metric {
                    key,
                    value,
                    timestamp,
                    step,
                    model_id: None,
                    dataset_name: None,
                    dataset_digest: None,
                });
            }
            metrics.sort_by(|a, b| a.key.cmp(&b.key));
            let kvs = |mut rows: Vec<(String, String)>| {
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                rows.into_iter().map(|(key, value)| KeyValue { key, value }).collect::<Vec<_>>()
            };
            let mut inputs: Vec<DatasetInput> = input_rows
                .into_iter()
                .map(|InputRow(name, digest, source_type, source, schema, profile, tags)| DatasetInput {
                    tags: kvs(tags),
                    dataset: Dataset { name, digest, source_type, source, schema, profile },
                })
                .collect();
            inputs.sort_by(|a, b| a.dataset.name.cmp(&b.dataset.name));
            let mut model_outputs: Vec<ModelOutput> =
                output_rows.into_iter().map(|(model_id, step)| ModelOutput { model_id, step }).collect();
            model_outputs.sort_by(|a, b| (a.step, &a.model_id).cmp(&(b.step, &b.model_id)));
            model_inputs.sort();
            runs.push((
                version,
                Run {
                    info: RunInfo {
                        run_id,
                        run_name,
                        experiment_id: experiment_id.to_string(),
                        user_id,
                        status: RunStatus::parse(&status).unwrap_or(RunStatus::Running),
                        start_time,
                        end_time,
                        artifact_uri,
                        lifecycle_stage: LifecycleStage::parse(&stage),
                    },
                    metrics,
                    params: kvs(params),
                    tags: kvs(tags),
                    inputs,
                    model_inputs,
                    model_outputs,
                },
            ));
        }
        Ok(runs)
    }

    /// Runs `page` (a query over `runs r`) and reads its rows as one JSON array built by the
    /// database: one entry per row of `page` (aliased `p`), the array of `items` (expressions
    /// over `p`), in the order of `order` (terms over `p`).
    async fn json_rows<T: serde::de::DeserializeOwned>(&self, page: Sql, items: &str, order: &str) -> Result<T> {
        let mut sql = page;
        sql.prepend("WITH p AS MATERIALIZED (");
        match self.dialect() {
            Dialect::Sqlite => {
                sql.push(&format!(") SELECT json_group_array(json_array({items}) ORDER BY {order}) FROM p"))
            }
            Dialect::Postgres => sql.push(&format!(
                ") SELECT CAST(COALESCE(json_agg(json_build_array({items}) ORDER BY {order}), '[]') AS TEXT) FROM p"
            )),
        };
        let text: String = sql.query().fetch_one(self.r()).await?.try_get(0)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Database(sqlx::Error::Decode(e.to_string().into())))
    }

    /// Fails unless the run exists and is active (MLflow refuses writes to deleted runs).
    async fn check_active(&self, run_id: &str) -> Result<()> {
        let stage: Option<String> = sqlx::query_scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = $1")
            .bind(run_id)
            .fetch_optional(self.r())
            .await?;
        require_active(run_id, stage)
    }

    /// Opens a write to a run: bumps its `data_version` (the run's row lock is then taken
    /// before anything else of the run, so its writers queue there) and fails unless the run
    /// exists and is active (the transaction is then dropped, undoing the bump). Every
    /// transaction that changes how a run reads starts here.
    pub(super) async fn touch_active(&self, tx: &mut Transaction<'_, Any>, run_id: &str) -> Result<()> {
        let stage: Option<String> = sqlx::query_scalar(
            "UPDATE runs SET data_version = data_version + 1 WHERE run_uuid = $1 RETURNING lifecycle_stage",
        )
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await?;
        require_active(run_id, stage)
    }

    pub async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        if let Some(name) = &update.run_name {
            validate::value_length("Run name", RUN_NAME_TAG, name, validate::MAX_TAG_VAL_LENGTH)?;
        }
        let mut tx = self.w().begin().await?;
        self.touch_active(&mut tx, run_id).await?;
        if let Some(status) = update.status {
            sqlx::query("UPDATE runs SET status = $1 WHERE run_uuid = $2")
                .bind(status.as_str())
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(end_time) = update.end_time {
            sqlx::query("UPDATE runs SET end_time = $1 WHERE run_uuid = $2")
                .bind(end_time)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(name) = update.run_name.as_deref().filter(|n| !n.is_empty()) {
            set_run_name(&mut tx, run_id, name).await?;
        }
        tx.commit().await?;
        self.get_run_info(run_id).await
    }

    pub async fn set_run_lifecycle(&self, run_id: &str, stage: LifecycleStage) -> Result<()> {
        let info = self.get_run_info(run_id).await?;
        if stage == LifecycleStage::Active {
            let exp = self.get_experiment(&info.experiment_id).await?;
            if exp.lifecycle_stage != LifecycleStage::Active {
                return Err(StoreError::InvalidParameter(format!(
                    "Cannot restore run {run_id}: its experiment {} is deleted.",
                    info.experiment_id
                )));
            }
        }
        let deleted_time = (stage == LifecycleStage::Deleted).then(now_ms);
        sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2, data_version = data_version + 1 \
             WHERE run_uuid = $3",
        )
        .bind(stage.as_str())
        .bind(deleted_time)
        .bind(run_id)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// The hot path of experiment tracking: group-committed, one statement per 64 metrics of a group.
    pub async fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<()> {
        validate::key("metric", &metric.key)?;
        if !self.metrics.write(run_id, metric).await? {
            // Nothing inserted: a duplicate of a stored value (fine), or a missing or deleted run.
            self.check_active(run_id).await?;
        }
        Ok(())
    }

    pub async fn log_param(&self, run_id: &str, param: &KeyValue) -> Result<()> {
        self.log_batch(run_id, &[], std::slice::from_ref(param), &[]).await
    }

    pub async fn set_tag(&self, run_id: &str, tag: &KeyValue) -> Result<()> {
        self.log_batch(run_id, &[], &[], std::slice::from_ref(tag)).await
    }

    /// Logs metrics, params and tags atomically: all are stored or none.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<()> {
        validate::batch_sizes(metrics.len(), params.len(), tags.len())?;
        for m in metrics {
            validate::key("metric", &m.key)?;
        }
        for p in params {
            validate::param(&p.key, &p.value)?;
        }
        for t in tags {
            validate::tag(&t.key, &t.value)?;
        }
        for (i, p) in params.iter().enumerate() {
            if let Some(q) = params[..i].iter().find(|q| q.key == p.key && q.value != p.value) {
                return Err(StoreError::InvalidParameter(format!(
                    "Duplicate parameter keys have been submitted: key '{}' with values '{}' and '{}'",
                    p.key, q.value, p.value
                )));
            }
        }
        let mut tx = self.w().begin().await?;
        self.touch_active(&mut tx, run_id).await?;
        for p in params {
            let existing: Option<String> =
                sqlx::query_scalar("SELECT value FROM params WHERE run_uuid = $1 AND key = $2")
                    .bind(run_id)
                    .bind(&p.key)
                    .fetch_optional(&mut *tx)
                    .await?;
            match existing {
                Some(old) if old != p.value => {
                    return Err(StoreError::InvalidParameter(format!(
                        "Changing param values is not allowed. Param with key='{}' was already logged with \
                         value='{old}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                        p.key, p.value
                    )))
                }
                Some(_) => {}
                None => {
                    sqlx::query("INSERT INTO params (run_uuid, key, value) VALUES ($1, $2, $3)")
                        .bind(run_id)
                        .bind(&p.key)
                        .bind(&p.value)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        let rows: Vec<(&str, &Metric)> = metrics.iter().map(|m| (run_id, m)).collect();
        group_commit::insert_metrics(&mut tx, &rows).await?;
        for t in tags {
            if t.key == RUN_NAME_TAG {
                set_run_name(&mut tx, run_id, &t.value).await?;
            } else {
                upsert_tag(&mut tx, run_id, &t.key, &t.value).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let mut tx = self.w().begin().await?;
        self.touch_active(&mut tx, run_id).await?;
        let done = sqlx::query("DELETE FROM tags WHERE run_uuid = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with name: {key} in run with id {run_id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records datasets used by a run (deduplicated per experiment by name and digest).
    pub async fn log_inputs(&self, run_id: &str, inputs: &[DatasetInput], model_ids: &[String]) -> Result<()> {
        for i in inputs {
            for t in &i.tags {
                validate::tag(&t.key, &t.value)?;
            }
            if i.dataset.name.is_empty() || i.dataset.digest.is_empty() {
                return Err(StoreError::InvalidParameter("A dataset input needs a name and a digest".into()));
            }
        }
        let info = self.get_run_info(run_id).await?;
        let exp_id = parse_experiment_id(&info.experiment_id)?;
        let mut tx = self.w().begin().await?;
        self.touch_active(&mut tx, run_id).await?;
        for input in inputs {
            let d = &input.dataset;
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(exp_id)
            .bind(&d.name)
            .bind(&d.digest)
            .fetch_optional(&mut *tx)
            .await?;
            let dataset_uuid = match existing {
                Some(id) => id,
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    sqlx::query(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&id)
                    .bind(exp_id)
                    .bind(&d.name)
                    .bind(&d.digest)
                    .bind(&d.source_type)
                    .bind(&d.source)
                    .bind(d.schema.as_deref())
                    .bind(d.profile.as_deref())
                    .execute(&mut *tx)
                    .await?;
                    id
                }
            };
            let input_uuid: Option<String> =
                sqlx::query_scalar("SELECT input_uuid FROM run_inputs WHERE run_uuid = $1 AND dataset_uuid = $2")
                    .bind(run_id)
                    .bind(&dataset_uuid)
                    .fetch_optional(&mut *tx)
                    .await?;
            if input_uuid.is_some() {
                continue;
            }
            let input_uuid = uuid::Uuid::new_v4().simple().to_string();
            sqlx::query("INSERT INTO run_inputs (input_uuid, run_uuid, dataset_uuid) VALUES ($1, $2, $3)")
                .bind(&input_uuid)
                .bind(run_id)
                .bind(&dataset_uuid)
                .execute(&mut *tx)
                .await?;
            for t in &input.tags {
                sqlx::query(
                    "INSERT INTO input_tags (input_uuid, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&input_uuid)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await?;
            }
        }
        for model_id in model_ids {
            sqlx::query("INSERT INTO run_model_inputs (run_uuid, model_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(run_id)
                .bind(model_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every value of one metric, ordered by timestamp, step and value, paged.
    pub async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        let offset = decode_page_token(page_token)?;
        let mut sql = Sql::new(
            "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest FROM metrics \
             WHERE run_uuid = ",
        );
        // MLflow orders history by (timestamp, step, value); an unknown run has no history.
        sql.bind_str(run_id).push(" AND key = ").bind_str(key).push(" ORDER BY timestamp, step, is_nan, value");
        let limit = match max_results {
            Some(n) => Some(check_max_results(n, METRIC_HISTORY_MAX)?),
            None => None,
        };
        if let Some(n) = limit {
            sql.push(" LIMIT ").bind_int(n + 1).push(" OFFSET ").bind_int(offset);
        }
        let rows = sql.query().fetch_all(self.r()).await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(Metric {
                    key: row.try_get(0)?,
                    value: loaded_value(row.try_get(1)?, row.try_get(2)?),
                    timestamp: row.try_get(3)?,
                    step: row.try_get(4)?,
                    model_id: row.try_get(5)?,
                    dataset_name: row.try_get(6)?,
                    dataset_digest: row.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(match limit {
            Some(n) => paginate(items, offset, n),
            None => Page { items, next_page_token: None },
        })
    }

    /// The UI's bulk read: one metric of several runs within a step range, at most
    /// `max_results` points per run, evenly sampled (first and last point kept).
    pub async fn get_metric_history_bulk_interval(
        &self,
        run_ids: &[String],
        key: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_results: i64,
    ) -> Result<Vec<RunMetric>> {
        if run_ids.is_empty() || run_ids.len() > 100 {
            return Err(StoreError::InvalidParameter(format!(
                "GetMetricHistoryBulkInterval request must specify between 1 and 100 run_ids, got {}",
                run_ids.len()
            )));
        }
        let max_results = check_max_results(max_results, METRIC_HISTORY_MAX)? as usize;
        let mut out = Vec::new();
        for run_id in run_ids {
            let all = self.get_metric_history(run_id, key, None, None).await?.items;
            let in_range: Vec<Metric> = all
                .into_iter()
                .filter(|m| start_step.is_none_or(|s| m.step >= s) && end_step.is_none_or(|e| m.step <= e))
                .collect();
            let n = in_range.len();
            let picked: Vec<Metric> = if n <= max_results {
                in_range
            } else {
                let last = n - 1;
                let mut idx: Vec<usize> = (0..max_results).map(|i| i * last / (max_results - 1).max(1)).collect();
                idx.dedup();
                idx.into_iter().map(|i| in_range[i].clone()).collect()
            };
            out.extend(picked.into_iter().map(|metric| RunMetric { run_id: run_id.clone(), metric }));
        }
        Ok(out)
    }

    /// MLflow's `search_runs`, compiled to one SQL query with every value bound.
    pub async fn search_runs(&self, search: &RunSearch) -> Result<Page<Arc<SharedRun>>> {
        let max_results = check_max_results(search.max_results, super::SEARCH_MAX_RESULTS)?;
        let offset = decode_page_token(search.page_token.as_deref())?;
        let filter = parse_filter(&search.filter)?;
        let orders = search.order_by.iter().map(|o| parse_order_by(o)).collect::<std::result::Result<Vec<_>, _>>()?;
        let mut exp_ids = Vec::new();
        for id in &search.experiment_ids {
            exp_ids.push(parse_experiment_id(id)?);
        }
        if exp_ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let dialect = self.dialect();
        let mut sql = Sql::new("");
        // One LEFT JOIN per order-by key, so runs without the key still appear (last).
        let mut order_terms = Vec::new();
        for (i, o) in orders.iter().enumerate() {
            let alias = format!("o{i}");
            let dir = if o.ascending { "ASC" } else { "DESC" };
            match o.entity {
                Entity::Metric => {
                    sql.push(&format!(
                        " LEFT JOIN latest_metrics {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = "
                    ));
                    sql.bind_str(&o.key);
                    order_terms.push((format!("({alias}.value IS NULL)"), "ASC"));
                    order_terms.push((format!("{alias}.is_nan"), "ASC"));
                    order_terms.push((format!("{alias}.value"), dir));
                }
                Entity::Param | Entity::Tag => {
                    let table = if o.entity == Entity::Param { "params" } else { "tags" };
                    sql.push(&format!(
                        " LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = "
                    ));
                    sql.bind_str(&o.key);
                    order_terms.push((format!("({alias}.value IS NULL)"), "ASC"));
                    order_terms.push((format!("{alias}.value"), dir));
                }
                Entity::Attribute => {
                    let column = run_attribute_column(&o.key).ok_or_else(|| {
                        StoreError::InvalidParameter(format!(
                            "Invalid order_by attribute key '{}'. Valid keys are {ORDER_ATTRIBUTES}",
                            o.key
                        ))
                    })?;
                    order_terms.push((format!("({column} IS NULL)"), "ASC"));
                    order_terms.push((column.to_string(), dir));
                }
                Entity::Dataset => {
                    return Err(StoreError::InvalidParameter(format!(
                        "Invalid order_by entity for '{}': datasets cannot be ordered by",
                        o.key
                    )))
                }
            }
        }
        sql.push(" WHERE r.experiment_id IN (");
        for (i, id) in exp_ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind_int(*id);
        }
        sql.push(") AND r.lifecycle_stage IN ");
        sql.bind_list(search.view.stages().iter().copied());
        for c in &filter.clauses {
            sql.push(" AND ");
            run_condition(&mut sql, dialect, c.entity, &c.key, c.op, &c.value)?;
        }
        order_terms.push(("r.start_time".into(), "DESC"));
        order_terms.push(("r.run_uuid".into(), "ASC"));
        // The page (one more run than asked, to know whether another page follows) is matched
        // by one statement that returns its ids and data versions; the runs are then taken from
        // the cache or loaded. The sort keys are also selected (`s0`, `s1`, ...) so that the
        // database can return the rows in order as one JSON array.
        let terms = order_terms.iter().map(|(e, dir)| format!("{e} {dir}")).collect::<Vec<_>>().join(", ");
        let keys = order_terms.iter().enumerate().map(|(i, (e, _))| format!("{e} AS s{i}")).collect::<Vec<_>>();
        let order =
            order_terms.iter().enumerate().map(|(i, (_, dir))| format!("p.s{i} {dir}")).collect::<Vec<_>>().join(", ");
        sql.prepend(&format!("SELECT r.run_uuid, r.data_version, {} FROM runs r", keys.join(", ")));
        sql.push(" ORDER BY ").push(&terms);
        sql.push(" LIMIT ").bind_int(max_results + 1).push(" OFFSET ").bind_int(offset);
        let started = std::time::Instant::now();
        let ids: Vec<(String, i64)> = self.json_rows(sql, "p.run_uuid, p.data_version", &order).await?;
        let page = paginate(ids, offset, max_results);
        let items = self.cached_runs(&page.items).await?;
        tracing::debug!(runs = items.len(), elapsed = ?started.elapsed(), "search_runs");
        Ok(Page { items, next_page_token: page.next_page_token })
    }
}

const ORDER_ATTRIBUTES: &str =
    "['run_id', 'run_name', 'experiment_id', 'user_id', 'status', 'start_time', 'end_time', 'artifact_uri', 'created']";

fn run_attribute_column(key: &str) -> Option<&'static str> {
    Some(match key {
        "run_id" | "run_uuid" => "r.run_uuid",
        "run_name" | "runName" => "r.name",
        "experiment_id" => "r.experiment_id",
        "user_id" => "r.user_id",
        "status" => "r.status",
        "start_time" | "created" | "Created" => "r.start_time",
        "end_time" => "r.end_time",
        "artifact_uri" => "r.artifact_uri",
        "lifecycle_stage" => "r.lifecycle_stage",
        _ => return None,
    })
}

/// One filter clause of a run search as SQL.
fn run_condition(sql: &mut Sql, dialect: Dialect, entity: Entity, key: &str, op: Op, value: &Value) -> Result<()> {
    match entity {
        Entity::Metric => {
            if matches!(op, Op::IsNull | Op::IsNotNull) {
                sql.push(if op == Op::IsNull { "NOT EXISTS" } else { "EXISTS" });
                sql.push(" (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ");
                sql.bind_str(key).push(")");
                return Ok(());
            }
            sql.push("EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = ");
            sql.bind_str(key).push(" AND m.is_nan = 0 AND ");
            number_condition(sql, "m.value", op, value, &format!("metric '{key}'"))?;
            sql.push(")");
        }
        Entity::Param => RUN_PARAMS.condition(sql, dialect, key, op, value)?,
        Entity::Tag => RUN_TAGS.condition(sql, dialect, key, op, value)?,
        Entity::Attribute => {
            let column = run_attribute_column(key).ok_or_else(|| {
                StoreError::InvalidParameter(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are {ORDER_ATTRIBUTES}"
                ))
            })?;
            if matches!(op, Op::In | Op::NotIn) && column != "r.run_uuid" {
                return Err(StoreError::InvalidParameter(format!(
                    "Invalid comparator '{}' for attribute '{key}': IN and NOT IN are only supported for run_id",
                    super::sql::op_text(op)
                )));
            }
            match column {
                "r.start_time" | "r.end_time" => {
                    number_condition(sql, column, op, value, &format!("attribute '{key}'"))?
                }
                "r.experiment_id" => {
                    // experiment ids are integers in the database but strings in the API.
                    let as_num = |s: &str| {
                        s.parse::<f64>()
                            .map_err(|_| StoreError::InvalidParameter(format!("Invalid experiment id '{s}' in filter")))
                    };
                    match value {
                        Value::Str(s) => {
                            number_condition(sql, column, op, &Value::Num(as_num(s)?), "attribute 'experiment_id'")?
                        }
                        Value::List(items) => {
                            sql.push(column).push(if op == Op::NotIn { " NOT IN (" } else { " IN (" });
                            for (i, s) in items.iter().enumerate() {
                                if i > 0 {
                                    sql.push(", ");
                                }
                                sql.bind(Arg::Float(as_num(s)?));
                            }
                            sql.push(")");
                        }
                        _ => number_condition(sql, column, op, value, "attribute 'experiment_id'")?,
                    }
                }
                _ => string_condition(sql, dialect, column, op, value, &format!("attribute '{key}'"))?,
            }
        }
        Entity::Dataset => {
            let column = match key {
                "name" => "d.name",
                "digest" => "d.digest",
                "context" => "t.value",
                other => {
                    return Err(StoreError::InvalidParameter(format!(
                        "Invalid dataset key '{other}'. Valid keys are ['name', 'digest', 'context']"
                    )))
                }
            };
            sql.push(
                "EXISTS (SELECT 1 FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid \
                 LEFT JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.key = 'mlflow.data.context' \
                 WHERE i.run_uuid = r.run_uuid AND ",
            );
            string_condition(sql, dialect, column, op, value, &format!("dataset '{key}'"))?;
            sql.push(")");
        }
    }
    Ok(())
}

pub(super) async fn upsert_tag(tx: &mut Transaction<'_, Any>, run_id: &str, key: &str, value: &str) -> Result<()> {
    RUN_TAGS.upsert(&[Arg::Text(run_id.into())], key, value).query().execute(&mut **tx).await?;
    Ok(())
}

/// Keeps the run's name column and its `mlflow.runName` tag in step.
async fn set_run_name(tx: &mut Transaction<'_, Any>, run_id: &str, name: &str) -> Result<()> {
    sqlx::query("UPDATE runs SET name = $1 WHERE run_uuid = $2").bind(name).bind(run_id).execute(&mut **tx).await?;
    upsert_tag(tx, run_id, RUN_NAME_TAG, name).await
}
