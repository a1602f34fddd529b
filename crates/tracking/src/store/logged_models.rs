//! MLflow 3 logged models: created PENDING by `log_model`, finalized READY once the files
//! are uploaded, linked to runs as outputs, searched when the client resolves `runs:/` URIs.

use super::compile::{compile_on, write_model_metric, Column, Columns, Sort, LOGGED_MODEL_PARAMS, LOGGED_MODEL_TAGS};
use super::hydrate::loaded_value;
use super::sql::{Arg, Sql};
use super::{now_ms, parse_experiment_id, validate, Paging, Store};
use crate::error::{Result, StoreError};
use crate::model::{KeyValue, LifecycleStage, LoggedModel, Metric, ModelOutput, Page, RunMetric};
use crate::search::{parse_filter, DatasetRef, Entity, Op, OrderBy};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Logged models of one store (`store.logged_models()`).
#[derive(Clone, Copy)]
pub struct LoggedModels<'s> {
    pub(super) s: &'s Store,
}

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms, \
     m.last_updated_timestamp_ms, m.status, m.status_message, m.lifecycle_stage, m.model_type, m.source_run_id";

/// The statuses a logged model can have.
pub const LOGGED_MODEL_STATUSES: [&str; 3] =
    ["LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"];

fn from_row(row: &AnyRow) -> Result<LoggedModel> {
    Ok(LoggedModel {
        model_id: row.try_get(0)?,
        experiment_id: row.try_get::<i64, _>(1)?.to_string(),
        name: row.try_get(2)?,
        artifact_location: row.try_get(3)?,
        creation_timestamp_ms: row.try_get(4)?,
        last_updated_timestamp_ms: row.try_get(5)?,
        status: row.try_get(6)?,
        status_message: row.try_get(7)?,
        lifecycle_stage: LifecycleStage::parse(&row.try_get::<String, _>(8)?),
        model_type: row.try_get(9)?,
        source_run_id: row.try_get(10)?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

/// Accepts `LOGGED_MODEL_READY` and the short `READY`.
fn normalize_status(status: &str) -> Result<String> {
    let full = if status.starts_with("LOGGED_MODEL_") { status.to_string() } else { format!("LOGGED_MODEL_{status}") };
    if LOGGED_MODEL_STATUSES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(StoreError::InvalidParameter(format!(
            "Invalid logged model status '{status}'. Valid values are {LOGGED_MODEL_STATUSES:?}"
        )))
    }
}

/// What a new logged model starts with.
#[derive(Debug, Default, Clone)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

/// How logged-model searches map the filter language: `name`, `model_id`, `status`,
/// `model_type`, `source_run_id` (string comparators), `creation_timestamp`,
/// `last_updated_timestamp` (numeric), `tags.<k>`, `params.<k>`; ordered by attribute names.
pub(in crate::store) const SEARCH: Columns = Columns {
    from: "logged_models m",
    filter: |entity, key, _: Op| match entity {
        Entity::Attribute => match key {
            "name" | "model_id" | "status" | "model_type" | "source_run_id" => {
                Ok(Column::Text { column: format!("m.{key}"), what: format!("attribute '{key}'") })
            }
            "creation_timestamp" | "creation_time" => Ok(Column::Number {
                column: "m.creation_timestamp_ms".into(),
                what: "creation_timestamp".into(),
                parse: None,
            }),
            "last_updated_timestamp" => Ok(Column::Number {
                column: "m.last_updated_timestamp_ms".into(),
                what: "last_updated_timestamp".into(),
                parse: None,
            }),
            other => Err(StoreError::InvalidParameter(format!("Invalid attribute key '{other}' for logged models"))),
        },
        Entity::Tag => Ok(Column::Kv(&LOGGED_MODEL_TAGS)),
        Entity::Param => Ok(Column::Kv(&LOGGED_MODEL_PARAMS)),
        Entity::Metric => Ok(Column::ModelMetric),
        other => Err(StoreError::InvalidParameter(format!(
            "Filtering logged models by {other:?} is not supported; use attributes, metrics, tags or params"
        ))),
    },
    order: |entity, field| match (entity, field) {
        (Entity::Metric, _) => Ok(Sort::ModelMetric),
        (_, field) => attribute_order(field),
    },
    default_order: &[],
    tie_break: &[("m.creation_timestamp_ms", "DESC"), ("m.model_id", "ASC")],
};

fn attribute_order(field: &str) -> Result<Sort> {
    match field {
        "name" => Ok(Sort::Column("m.name")),
        "model_id" => Ok(Sort::Column("m.model_id")),
        "status" => Ok(Sort::Column("m.status")),
        "model_type" => Ok(Sort::Column("m.model_type")),
        "source_run_id" => Ok(Sort::Column("m.source_run_id")),
        "creation_timestamp" | "creation_time" => Ok(Sort::Column("m.creation_timestamp_ms")),
        "last_updated_timestamp" => Ok(Sort::Column("m.last_updated_timestamp_ms")),
        other => Err(StoreError::InvalidParameter(format!("Invalid order by field name: {other}"))),
    }
}

/// `search_logged_models`: models of these experiments matching `filter`; with `datasets`,
/// metric conditions look only at metrics logged on them, and without a metric condition
/// only models with some metric on them are found (MLflow's rules).
#[derive(Debug, Clone, Default)]
pub struct LoggedModelSearch {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub datasets: Vec<DatasetRef>,
    /// Attributes by name, metrics as `metrics.<key>` (optionally on one dataset).
    pub order_by: Vec<LoggedModelOrder>,
    pub max_results: i64,
    pub page_token: Option<String>,
}

/// One `order_by` entry of [`LoggedModelSearch`].
#[derive(Debug, Clone)]
pub struct LoggedModelOrder {
    pub field: String,
    pub ascending: bool,
    pub dataset: Option<DatasetRef>,
}

impl LoggedModelOrder {
    pub(in crate::store) fn parse(&self) -> Result<OrderBy> {
        let (entity, key) = match self.field.split_once('.') {
            None => (Entity::Attribute, self.field.clone()),
            Some(("metrics", key)) => (Entity::Metric, key.to_string()),
            Some(_) => {
                return Err(StoreError::InvalidParameter(format!(
                    "Invalid order by field name: {}. Only metrics are supported.",
                    self.field
                )))
            }
        };
        Ok(OrderBy { entity, key, ascending: self.ascending, dataset: self.dataset.clone() })
    }
}

impl LoggedModels<'_> {
    pub async fn create(&self, new: NewLoggedModel) -> Result<LoggedModel> {
        for p in &new.params {
            validate::param(&p.key, &p.value)?;
        }
        for t in &new.tags {
            validate::tag(&t.key, &t.value)?;
        }
        let exp = self.s.experiments().get(&new.experiment_id).await?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidParameter(format!(
                "Could not create a logged model in non-active experiment {}",
                new.experiment_id
            )));
        }
        // `source_run_id` is recorded as given, as MLflow does (it names a run that may live
        // elsewhere, or no longer exist); docs/mlflow-compat.md.
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let name = new.name.filter(|n| !n.is_empty()).unwrap_or_else(super::runs::random_name);
        if let Some(c) = name.chars().find(|c| matches!(c, '/' | ':' | '.' | '%' | '"' | '\'')) {
            return Err(StoreError::InvalidParameter(format!(
                "Invalid model name '{name}': names cannot contain ('/', ':', '.', '%', '\"', \"'\"); found {c:?}"
            )));
        }
        validate::key("model", &name)?;
        let location = format!("{}/models/{model_id}/artifacts", exp.artifact_location.trim_end_matches('/'));
        let now = now_ms();
        let mut tx = self.s.w().begin().await?;
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms, \
             last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id) \
             VALUES ($1, $2, $3, $4, $5, $5, 'LOGGED_MODEL_PENDING', 'active', $6, $7)",
        )
        .bind(&model_id)
        .bind(parse_experiment_id(&new.experiment_id)?)
        .bind(&name)
        .bind(&location)
        .bind(now)
        .bind(new.model_type.as_deref())
        .bind(new.source_run_id.as_deref().filter(|r| !r.is_empty()))
        .execute(&mut *tx)
        .await?;
        for (table, items) in [(&LOGGED_MODEL_PARAMS, &new.params), (&LOGGED_MODEL_TAGS, &new.tags)] {
            for kv in items {
                table.upsert(&[Arg::Text(model_id.clone())], &kv.key, &kv.value).query().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.get(&model_id).await
    }

    pub async fn get(&self, model_id: &str) -> Result<LoggedModel> {
        let sql = Sql::with_args(
            &format!("SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = $1 AND m.lifecycle_stage = 'active'"),
            vec![Arg::Text(model_id.into())],
        );
        let missing = || StoreError::NotFound(format!("Logged model with ID '{model_id}' not found."));
        let mut model = self.s.fetch_one(sql, from_row, missing).await?;
        self.attach(std::slice::from_mut(&mut model)).await?;
        Ok(model)
    }

    async fn attach(&self, models: &mut [LoggedModel]) -> Result<()> {
        if models.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = models.iter().map(|m| m.model_id.as_str()).collect();
        let select = |head: &str, tail: &str| Sql::in_list(head, ids.iter().copied(), tail);
        let tags = select("SELECT model_id, key, value FROM logged_model_tags WHERE model_id IN ", " ORDER BY key");
        let params = select("SELECT model_id, key, value FROM logged_model_params WHERE model_id IN ", " ORDER BY key");
        let metrics = select(
            "SELECT model_id, run_uuid, key, value, is_nan, timestamp, step, dataset_name, dataset_digest \
             FROM metrics WHERE model_id IN ",
            " ORDER BY key, step, timestamp, is_nan, value",
        );
        let (tags, params, metrics) = tokio::try_join!(
            tags.query().fetch_all(self.s.r()),
            params.query().fetch_all(self.s.r()),
            metrics.query().fetch_all(self.s.r())
        )?;
        for (rows, is_tag) in [(&tags, true), (&params, false)] {
            for row in rows {
                let id: String = row.try_get(0)?;
                if let Some(m) = models.iter_mut().find(|m| m.model_id == id) {
                    let kv = KeyValue { key: row.try_get(1)?, value: row.try_get(2)? };
                    if is_tag {
                        m.tags.push(kv)
                    } else {
                        m.params.push(kv)
                    }
                }
            }
        }
        for row in &metrics {
            let id: String = row.try_get(0)?;
            let Some(m) = models.iter_mut().find(|m| m.model_id == id) else {
                continue;
            };
            let is_nan: i64 = row.try_get(4)?;
            let metric = Metric {
                key: row.try_get(2)?,
                value: loaded_value(row.try_get(3)?, is_nan),
                timestamp: row.try_get(5)?,
                step: row.try_get(6)?,
                model_id: Some(id.clone()),
                dataset_name: row.try_get(7)?,
                dataset_digest: row.try_get(8)?,
            };
            let run_id: String = row.try_get(1)?;
            // Rows come ordered by (key, step, timestamp, value): keep the last per key and dataset.
            m.metrics.retain(|old| {
                !(old.metric.key == metric.key
                    && old.metric.dataset_name == metric.dataset_name
                    && old.metric.dataset_digest == metric.dataset_digest)
            });
            m.metrics.push(RunMetric { run_id, metric });
        }
        Ok(())
    }

    /// Sets the status (finalize); `READY` is what the client sends once files are uploaded.
    pub async fn finalize(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        let status = normalize_status(status)?;
        self.get(model_id).await?;
        sqlx::query("UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 WHERE model_id = $3")
            .bind(&status)
            .bind(now_ms())
            .bind(model_id)
            .execute(self.s.w())
            .await?;
        self.get(model_id).await
    }

    pub async fn set_tags(&self, model_id: &str, tags: &[KeyValue]) -> Result<()> {
        for t in tags {
            validate::tag(&t.key, &t.value)?;
        }
        self.get(model_id).await?;
        let mut tx = self.s.w().begin().await?;
        for t in tags {
            LOGGED_MODEL_TAGS.upsert(&[Arg::Text(model_id.into())], &t.key, &t.value).query().execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE logged_models SET last_updated_timestamp_ms = $1 WHERE model_id = $2")
            .bind(now_ms())
            .bind(model_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_tag(&self, model_id: &str, key: &str) -> Result<()> {
        self.get(model_id).await?;
        let done = LOGGED_MODEL_TAGS.delete(&[Arg::Text(model_id.into())], key).query().execute(self.s.w()).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with key '{key}' on logged model '{model_id}'")));
        }
        Ok(())
    }

    pub async fn log_params(&self, model_id: &str, params: &[KeyValue]) -> Result<()> {
        for p in params {
            validate::param(&p.key, &p.value)?;
        }
        self.get(model_id).await?;
        let mut tx = self.s.w().begin().await?;
        for p in params {
            LOGGED_MODEL_PARAMS
                .upsert(&[Arg::Text(model_id.into())], &p.key, &p.value)
                .query()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete(&self, model_id: &str) -> Result<()> {
        self.get(model_id).await?;
        sqlx::query(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = $1 WHERE model_id = $2",
        )
        .bind(now_ms())
        .bind(model_id)
        .execute(self.s.w())
        .await?;
        Ok(())
    }

    /// Links logged models to the run that produced them.
    pub async fn log_outputs(&self, run_id: &str, outputs: &[ModelOutput]) -> Result<()> {
        for o in outputs {
            self.get(&o.model_id).await?;
        }
        let mut tx = self.s.w().begin().await?;
        self.s.runs().touch_active(&mut tx, run_id).await?;
        for o in outputs {
            sqlx::query(
                "INSERT INTO run_outputs (run_uuid, model_id, step) VALUES ($1, $2, $3) \
                 ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step",
            )
            .bind(run_id)
            .bind(&o.model_id)
            .bind(o.step)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Searches logged models of some experiments. Filters: `name`, `model_id`, `status`,
    /// `model_type`, `source_run_id` (string comparators), `creation_timestamp`,
    /// `last_updated_timestamp` (numeric), `tags.<k>`, `params.<k>`, `metrics.<k>` (numeric, any
    /// value of the key on the searched datasets). Order: attribute names and `metrics.<k>`.
    pub async fn search(&self, q: &LoggedModelSearch) -> Result<Page<LoggedModel>> {
        if q.datasets.iter().any(|d| d.name.is_empty()) {
            return Err(StoreError::InvalidParameter(
                "`dataset_name` in the `datasets` clause must be specified.".into(),
            ));
        }
        let paging = Paging::new(q.max_results, super::SEARCH_MAX_RESULTS, q.page_token.as_deref())?;
        let experiment_ids =
            q.experiment_ids.iter().map(|id| Ok(Arg::Int(parse_experiment_id(id)?))).collect::<Result<Vec<_>>>()?;
        let filter = parse_filter(&q.filter)?;
        let metric_condition = filter.clauses.iter().any(|c| c.entity == Entity::Metric);
        let compiled = compile_on(
            self.s.dialect(),
            &SEARCH,
            filter,
            &q.datasets,
            q.order_by.iter().map(LoggedModelOrder::parse),
            paging,
            |w| {
                w.and().push("m.lifecycle_stage = 'active'");
                if !experiment_ids.is_empty() {
                    w.and().push("m.experiment_id IN ").bind_args(experiment_ids);
                }
                if !q.datasets.is_empty() && !metric_condition {
                    write_model_metric(w.and(), true, None, None, &q.datasets);
                }
            },
        )?;
        let mut page = self.s.fetch_page(COLUMNS, compiled, from_row).await?;
        self.attach(&mut page.items).await?;
        Ok(page)
    }
}
