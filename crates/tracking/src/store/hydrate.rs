//! Reading whole runs: one statement returns every run of a page with its latest metrics,
//! params, tags, inputs and outputs as one JSON array built by the database, and the cache
//! of hydrated runs keyed by `(run_uuid, data_version)` (`run_cache`) spares reading again
//! the runs that did not change.

use super::sql::Sql;
use super::Store;
use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::model::{
    Dataset, DatasetInput, KeyValue, LifecycleStage, Metric, ModelOutput, Run, RunInfo, RunStatus, SharedRun,
};
use sqlx::Row;
use std::sync::Arc;

/// Most rows read from the database in one `IN (...)` list.
const CHUNK: usize = 2000;

/// A run's columns, then its `data_version` (migration 0006).
pub(super) const RUN_COLUMNS: &str = "r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, \
     r.end_time, r.artifact_uri, r.lifecycle_stage, r.data_version";

/// NaN is stored as value 0 with `is_nan` 1 (SQLite turns a NaN REAL into NULL).
pub(super) fn loaded_value(v: f64, is_nan: i64) -> f64 {
    if is_nan != 0 {
        f64::NAN
    } else {
        v
    }
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

impl Store {
    /// Loads full runs (info, latest metrics, params, tags, inputs) with their `data_version`,
    /// in the order of `ids`; unknown ids are skipped.
    pub(super) async fn load_runs(&self, ids: &[&str]) -> Result<Vec<(i64, Run)>> {
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
    pub(super) async fn cached_runs(&self, page: &[(String, i64)]) -> Result<Vec<Arc<SharedRun>>> {
        let mut runs: Vec<Option<Arc<SharedRun>>> = page.iter().map(|(id, v)| self.run_cache.get(id, *v)).collect();
        let missing: Vec<&str> =
            page.iter().zip(&runs).filter(|(_, r)| r.is_none()).map(|((id, _), _)| id.as_str()).collect();
        if missing.is_empty() {
            return Ok(runs.into_iter().flatten().collect());
        }
        let mut loaded: std::collections::HashMap<String, Arc<SharedRun>> = std::collections::HashMap::new();
        for (version, run) in self.load_runs(&missing).await? {
            let run = Arc::new(SharedRun::new(run));
            self.run_cache.insert(version, run.clone());
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
    pub(super) async fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        page: Sql,
        items: &str,
        order: &str,
    ) -> Result<T> {
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
}
