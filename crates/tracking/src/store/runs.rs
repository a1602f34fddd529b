//! Runs: lifecycle, params, tags, batches, reads and search.

use super::compile::{compile, Column, Columns, Sort, RUN_PARAMS, RUN_TAGS};
use super::hydrate::RUN_COLUMNS;
use super::sql::{Arg, Sql};
use super::{now_ms, parse_experiment_id, validate, Paging, Store};
use crate::error::{Result, StoreError};
use crate::model::{KeyValue, LifecycleStage, Metric, Page, Run, RunInfo, RunStatus, SharedRun, ViewType};
use crate::search::{parse_filter, parse_order_by, Entity, Op};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::sync::Arc;

/// The tag that mirrors a run's name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// Runs of one store (`store.runs()`).
#[derive(Clone, Copy)]
pub struct Runs<'s> {
    pub(super) s: &'s Store,
}

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

/// Generated run and logged-model names, `adjective-noun-number` like MLflow's.
pub(super) fn random_name() -> String {
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

impl Runs<'_> {
    /// Creates a run in an active experiment. The name comes from `run_name`, else from an
    /// `mlflow.runName` tag, else is generated; the tag is kept in step with it.
    pub async fn create(
        &self,
        experiment_id: &str,
        user_id: &str,
        run_name: Option<&str>,
        start_time: Option<i64>,
        tags: &[KeyValue],
    ) -> Result<Run> {
        // MLflow's `create_run` checks no lengths (its SQLite columns take any; on PostgreSQL a
        // name over 250 characters or a tag value over 8000 fails in the database). Here the
        // tags are taken as `set-tag` takes them (long values truncated) and the name, also the
        // `mlflow.runName` tag, is held to a tag value's 8000 characters (`validate::run_name`).
        if let Some(name) = run_name {
            validate::run_name(name)?;
        }
        let truncate = self.s.truncate_long_values;
        let tags: Vec<KeyValue> = tags
            .iter()
            .map(|t| Ok(KeyValue::new(t.key.as_str(), validate::run_tag(&t.key, &t.value, "", truncate)?)))
            .collect::<Result<_>>()?;
        let tags = tags.as_slice();
        let exp = self.s.experiments().get(experiment_id).await?;
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
        let name = run_name.filter(|n| !n.is_empty()).or(tag_name).map(str::to_string).unwrap_or_else(random_name);
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let artifact_uri = format!("{}/{run_id}/artifacts", exp.artifact_location.trim_end_matches('/'));
        let start_time = start_time.unwrap_or_else(now_ms);
        let exp_id = parse_experiment_id(experiment_id)?;
        let mut tx = self.s.w().begin().await?;
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
        self.get(&run_id).await
    }

    pub async fn get(&self, run_id: &str) -> Result<Run> {
        Ok(self.s.load_runs(&[run_id]).await?.pop().ok_or_else(|| run_not_found(run_id))?.1)
    }

    pub async fn info(&self, run_id: &str) -> Result<RunInfo> {
        let sql = Sql::with_args(
            &format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1"),
            vec![Arg::Text(run_id.into())],
        );
        self.s.fetch_one(sql, run_info_from_row, || run_not_found(run_id)).await
    }

    /// Fails unless the run exists and is active (MLflow refuses writes to deleted runs).
    pub(super) async fn check_active(&self, run_id: &str) -> Result<()> {
        let stage: Option<String> = sqlx::query_scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = $1")
            .bind(run_id)
            .fetch_optional(self.s.r())
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

    pub async fn update(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        if let Some(name) = &update.run_name {
            validate::run_name(name)?;
        }
        let mut tx = self.s.w().begin().await?;
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
        self.info(run_id).await
    }

    pub async fn set_lifecycle(&self, run_id: &str, stage: LifecycleStage) -> Result<()> {
        let info = self.info(run_id).await?;
        if stage == LifecycleStage::Active {
            let exp = self.s.experiments().get(&info.experiment_id).await?;
            if exp.lifecycle_stage != LifecycleStage::Active {
                return Err(StoreError::InvalidParameter(format!(
                    "Cannot restore run {run_id}: its experiment {} is deleted.",
                    info.experiment_id
                )));
            }
        }
        let deleted_time = (stage == LifecycleStage::Deleted).then(now_ms);
        move_runs(self.s.w(), RunsOf::Run(run_id), stage, deleted_time).await
    }

    pub async fn log_param(&self, run_id: &str, param: &KeyValue) -> Result<()> {
        self.write(run_id, &[], std::slice::from_ref(param), &[], false).await
    }

    pub async fn set_tag(&self, run_id: &str, tag: &KeyValue) -> Result<()> {
        self.write(run_id, &[], &[], std::slice::from_ref(tag), false).await
    }

    /// Logs metrics, params and tags atomically: all are stored or none.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<()> {
        self.write(run_id, metrics, params, tags, true).await
    }

    /// [`Runs::log_batch`]; `batch` names a refused tag value by its place (`tags[3].value`).
    async fn write(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
        batch: bool,
    ) -> Result<()> {
        // MLflow's order (`SqlAlchemyStore.log_batch`): each entity (`_validate_batch_log_data`,
        // truncating long values), then the batch's sizes, then the params' keys unique.
        let truncate = self.s.truncate_long_values;
        for m in metrics {
            validate::key("metric", &m.key)?;
        }
        let params = params
            .iter()
            .map(|p| Ok(KeyValue::new(p.key.as_str(), validate::run_param(&p.key, &p.value, truncate)?)))
            .collect::<Result<Vec<_>>>()?;
        let path = |i: usize| if batch { format!("tags[{i}]") } else { String::new() };
        let tags = tags
            .iter()
            .enumerate()
            .map(|(i, t)| Ok(KeyValue::new(t.key.as_str(), validate::run_tag(&t.key, &t.value, &path(i), truncate)?)))
            .collect::<Result<Vec<_>>>()?;
        validate::batch_sizes(metrics.len(), params.len(), tags.len())?;
        validate::unique_param_keys(&params)?;
        let mut tx = self.s.w().begin().await?;
        self.touch_active(&mut tx, run_id).await?;
        for p in &params {
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
        super::group_commit::insert_metrics(&mut tx, &rows).await?;
        for t in &tags {
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
        let mut tx = self.s.w().begin().await?;
        self.touch_active(&mut tx, run_id).await?;
        let done = RUN_TAGS.delete(&[Arg::Text(run_id.into())], key).query().execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with name: {key} in run with id {run_id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records datasets used by a run (deduplicated per experiment by name and digest).
    /// MLflow's `search_runs`, compiled to one SQL query with every value bound.
    pub async fn search(&self, search: &RunSearch) -> Result<Page<Arc<SharedRun>>> {
        let paging = Paging::new(search.max_results, super::SEARCH_MAX_RESULTS, search.page_token.as_deref())?;
        let filter = parse_filter(&search.filter)?;
        let orders = search.order_by.iter().map(|o| parse_order_by(o)).collect::<std::result::Result<Vec<_>, _>>()?;
        let exp_ids = search
            .experiment_ids
            .iter()
            .map(|id| Ok(Arg::Int(parse_experiment_id(id)?)))
            .collect::<Result<Vec<_>>>()?;
        if exp_ids.is_empty() {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let compiled = compile(self.s.dialect(), &SEARCH, filter, orders.into_iter().map(Ok), paging, |w| {
            w.and().push("r.experiment_id IN ").bind_args(exp_ids);
            w.and().push("r.lifecycle_stage IN ").bind_list(search.view.stages().iter().copied());
        })?;
        // The page (one more run than asked, to know whether another page follows) is matched
        // by one statement that returns its ids and data versions; the runs are then taken from
        // the cache or loaded. The sort keys are also selected (`s0`, `s1`, ...) so that the
        // database can return the rows in order as one JSON array.
        let terms = &compiled.terms;
        let keys = terms.iter().enumerate().map(|(i, (e, _))| format!("{e} AS s{i}")).collect::<Vec<_>>();
        let order = terms.iter().enumerate().map(|(i, (_, dir))| format!("p.s{i} {dir}")).collect::<Vec<_>>();
        let mut sql = compiled.sql;
        sql.prepend(&format!("SELECT r.run_uuid, r.data_version, {}", keys.join(", ")));
        let started = std::time::Instant::now();
        let ids: Vec<(String, i64)> = self.s.json_rows(sql, "p.run_uuid, p.data_version", &order.join(", ")).await?;
        let page = paging.page(ids);
        let items = self.s.cached_runs(&page.items).await?;
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

/// How run searches map the filter language: latest metrics, params, tags, the run's columns
/// and its datasets; ordered by metrics, params, tags or columns, rows without the key last.
pub(in crate::store) const SEARCH: Columns = Columns {
    from: "runs r",
    filter: |entity, key, op| match entity {
        Entity::Metric => Ok(Column::Metric),
        Entity::Param => Ok(Column::Kv(&RUN_PARAMS)),
        Entity::Tag => Ok(Column::Kv(&RUN_TAGS)),
        Entity::Attribute => {
            let column = run_attribute_column(key).ok_or_else(|| {
                StoreError::InvalidParameter(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are {ORDER_ATTRIBUTES}"
                ))
            })?;
            if matches!(op, Op::In | Op::NotIn) && column != "r.run_uuid" {
                return Err(StoreError::InvalidParameter(format!(
                    "Invalid comparator '{}' for attribute '{key}': IN and NOT IN are only supported for run_id",
                    super::compile::op_text(op)
                )));
            }
            let what = format!("attribute '{key}'");
            Ok(match column {
                "r.start_time" | "r.end_time" => Column::Number { column: column.into(), what, parse: None },
                // Experiment ids are integers in the database but strings in the API.
                "r.experiment_id" => Column::Number {
                    column: column.into(),
                    what,
                    parse: Some(|s| {
                        s.parse::<f64>()
                            .map_err(|_| StoreError::InvalidParameter(format!("Invalid experiment id '{s}' in filter")))
                    }),
                },
                _ => Column::Text { column: column.into(), what },
            })
        }
        Entity::Dataset => Ok(Column::Dataset(match key {
            "name" => "d.name",
            "digest" => "d.digest",
            "context" => "t.value",
            other => {
                return Err(StoreError::InvalidParameter(format!(
                    "Invalid dataset key '{other}'. Valid keys are ['name', 'digest', 'context']"
                )))
            }
        })),
    },
    order: |entity, key| match entity {
        Entity::Metric => Ok(Sort::Key { table: "latest_metrics", owner: "run_uuid = r.run_uuid", nan: true }),
        Entity::Param => Ok(Sort::Key { table: "params", owner: "run_uuid = r.run_uuid", nan: false }),
        Entity::Tag => Ok(Sort::Key { table: "tags", owner: "run_uuid = r.run_uuid", nan: false }),
        Entity::Attribute => run_attribute_column(key).map(Sort::NullsLast).ok_or_else(|| {
            StoreError::InvalidParameter(format!(
                "Invalid order_by attribute key '{key}'. Valid keys are {ORDER_ATTRIBUTES}"
            ))
        }),
        Entity::Dataset => Err(StoreError::InvalidParameter(format!(
            "Invalid order_by entity for '{key}': datasets cannot be ordered by"
        ))),
    },
    default_order: &[],
    tie_break: &[("r.start_time", "DESC"), ("r.run_uuid", "ASC")],
};

/// The runs a lifecycle move applies to.
pub(super) enum RunsOf<'a> {
    Run(&'a str),
    Experiment(i64),
}

/// Moves runs to or from the trash (`deleted_time` set with the move there), bumping their
/// data versions: how they read changes.
pub(super) async fn move_runs<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    which: RunsOf<'_>,
    stage: LifecycleStage,
    deleted_time: Option<i64>,
) -> Result<()> {
    let column = match which {
        RunsOf::Run(_) => "run_uuid",
        RunsOf::Experiment(_) => "experiment_id",
    };
    let sql = format!(
        "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2, data_version = data_version + 1 WHERE {column} = $3"
    );
    let query = sqlx::query(&sql).bind(stage.as_str()).bind(deleted_time);
    let query = match which {
        RunsOf::Run(id) => query.bind(id),
        RunsOf::Experiment(id) => query.bind(id),
    };
    query.execute(db).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Dialect;
    use crate::search::parse_filter;

    /// The statement a run search compiles to: one EXISTS per condition, one LEFT JOIN per
    /// sorted key, every value a placeholder, the tie-breakers last.
    #[test]
    fn run_search_sql() {
        let compile_runs = |filter: &str, order_by: &[&str]| {
            let orders = order_by.iter().map(|o| Ok(parse_order_by(o)?));
            let c =
                compile(Dialect::Postgres, &SEARCH, parse_filter(filter).unwrap(), orders, Paging::first(100), |w| {
                    w.and().push("r.experiment_id IN ").bind_args([Arg::Int(1)]);
                })
                .unwrap();
            c.sql.text().to_string()
        };
        assert_eq!(
            compile_runs("metrics.m1 > 0.5", &[]),
            " FROM runs r WHERE r.experiment_id IN ($1) AND EXISTS (SELECT 1 FROM latest_metrics m WHERE \
             m.run_uuid = r.run_uuid AND m.key = $2 AND m.is_nan = 0 AND m.value > $3) \
             ORDER BY r.start_time DESC, r.run_uuid ASC LIMIT $4 OFFSET $5"
        );
        assert_eq!(
            compile_runs("params.p = 'x' AND attributes.run_name LIKE 'a%'", &["metrics.m DESC", "start_time"]),
            " FROM runs r LEFT JOIN latest_metrics o0 ON o0.run_uuid = r.run_uuid AND o0.key = $1 \
             WHERE r.experiment_id IN ($2) \
             AND EXISTS (SELECT 1 FROM params x WHERE x.run_uuid = r.run_uuid AND x.key = $3 AND x.value = $4) \
             AND r.name LIKE $5 \
             ORDER BY (o0.value IS NULL) ASC, o0.is_nan ASC, o0.value DESC, (r.start_time IS NULL) ASC, \
             r.start_time ASC, r.run_uuid ASC LIMIT $6 OFFSET $7"
        );
    }
}
