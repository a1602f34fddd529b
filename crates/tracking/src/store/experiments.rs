//! Experiments: create, read, search, rename, delete/restore and tags.

use super::sql::{number_condition, order_terms, string_condition, Arg, Sql, EXPERIMENT_TAGS};
use super::{check_max_results, decode_page_token, now_ms, paginate, parse_experiment_id, validate, Store};
use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::model::{Experiment, KeyValue, LifecycleStage, Page, ViewType};
use crate::search::{parse_filter, Entity};
use sqlx::any::AnyRow;
use sqlx::Row;

const COLUMNS: &str = "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn experiment_from_row(row: &AnyRow) -> Result<Experiment> {
    Ok(Experiment {
        experiment_id: row.try_get::<i64, _>(0)?.to_string(),
        name: row.try_get(1)?,
        artifact_location: row.try_get(2)?,
        lifecycle_stage: LifecycleStage::parse(&row.try_get::<String, _>(3)?),
        creation_time: row.try_get(4)?,
        last_update_time: row.try_get(5)?,
        tags: Vec::new(),
    })
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("No Experiment with id={id} exists"))
}

impl Store {
    pub(super) async fn ensure_default_experiment(&self) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES (0, 'Default', $1, 'active', $2, $2) ON CONFLICT DO NOTHING",
        )
        .bind(self.default_artifact_location(0))
        .bind(now)
        .execute(self.w())
        .await?;
        Ok(())
    }

    /// Creates an experiment; its artifact location defaults to `<artifact root>/<id>`.
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<String> {
        let created = self.create_experiment_then(name, artifact_location, tags, |_| async { Ok::<_, StoreError>(()) });
        created.await?
    }

    /// As [`Store::create_experiment`], running `then(id)` before the creation commits: the
    /// experiment exists (for everyone else) only if `then` succeeded, and its id cannot be
    /// taken meanwhile. For work in another database that must go with the creation (the auth
    /// app's owner grant). `Err` is the store's failure, `Ok(Err)` the hook's (nothing created).
    pub async fn create_experiment_then<E, F, Fut>(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[KeyValue],
        then: F,
    ) -> Result<std::result::Result<String, E>>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        validate::experiment_name(name)?;
        for t in tags {
            validate::key("tag", &t.key)?;
            validate::value_length("Tag", &t.key, &t.value, validate::MAX_EXPERIMENT_TAG_VAL_LENGTH)?;
        }
        let mut tx = self.w().begin().await?;
        let existing: Option<String> = sqlx::query_scalar("SELECT lifecycle_stage FROM experiments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(stage) = existing {
            let hint = if stage == "deleted" {
                " in deleted state. You can restore the experiment, or permanently delete it to reuse the name"
            } else {
                ""
            };
            return Err(StoreError::AlreadyExists(format!("Experiment(name={name}) already exists{hint}.")));
        }
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, 'active', $3, $3) RETURNING experiment_id",
        )
        .bind(name)
        .bind(artifact_location.unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if artifact_location.is_none_or(str::is_empty) {
            sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
                .bind(self.default_artifact_location(id))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for t in tags {
            EXPERIMENT_TAGS.upsert(&[Arg::Int(id)], &t.key, &t.value).query().execute(&mut *tx).await?;
        }
        if let Err(e) = then(id.to_string()).await {
            return Ok(Err(e));
        }
        tx.commit().await?;
        Ok(Ok(id.to_string()))
    }

    pub async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = parse_experiment_id(experiment_id)?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM experiments WHERE experiment_id = $1"))
            .bind(id)
            .fetch_optional(self.r())
            .await?
            .ok_or_else(|| not_found(experiment_id))?;
        let mut exp = experiment_from_row(&row)?;
        self.attach_experiment_tags(std::slice::from_mut(&mut exp)).await?;
        Ok(exp)
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM experiments WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.r())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Could not find experiment with name '{name}'")))?;
        let mut exp = experiment_from_row(&row)?;
        self.attach_experiment_tags(std::slice::from_mut(&mut exp)).await?;
        Ok(exp)
    }

    async fn attach_experiment_tags(&self, exps: &mut [Experiment]) -> Result<()> {
        if exps.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new("SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (");
        for (i, e) in exps.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Arg::Int(parse_experiment_id(&e.experiment_id)?));
        }
        sql.push(") ORDER BY key");
        let rows = sql.query().fetch_all(self.r()).await?;
        for row in rows {
            let id = row.try_get::<i64, _>(0)?.to_string();
            if let Some(e) = exps.iter_mut().find(|e| e.experiment_id == id) {
                e.tags.push(KeyValue { key: row.try_get(1)?, value: row.try_get(2)? });
            }
        }
        Ok(())
    }

    /// MLflow's `search_experiments`: filter on `name`, `creation_time`, `last_update_time`
    /// and `tags.<key>`; default order `creation_time DESC, experiment_id ASC`.
    pub async fn search_experiments(
        &self,
        view: ViewType,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>> {
        let max_results = check_max_results(max_results, super::SEARCH_MAX_RESULTS)?;
        let offset = decode_page_token(page_token)?;
        let dialect = self.dialect();
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM experiments e WHERE e.lifecycle_stage IN "));
        sql.bind_list(view.stages().iter().copied());
        for c in parse_filter(filter)?.clauses {
            sql.push(" AND ");
            match c.entity {
                Entity::Attribute => match c.key.as_str() {
                    "name" => string_condition(&mut sql, dialect, "e.name", c.op, &c.value, "attribute 'name'")?,
                    "creation_time" | "last_update_time" => {
                        number_condition(&mut sql, &format!("e.{}", c.key), c.op, &c.value, &c.key)?
                    }
                    other => {
                        return Err(StoreError::InvalidParameter(format!(
                            "Invalid attribute key '{other}' specified. Valid keys are \
                             ['name', 'creation_time', 'last_update_time']"
                        )))
                    }
                },
                Entity::Tag => EXPERIMENT_TAGS.condition(&mut sql, dialect, &c.key, c.op, &c.value)?,
                other => {
                    return Err(StoreError::InvalidParameter(format!(
                        "Invalid entity type '{other:?}' in experiment filter; use attributes or tags"
                    )))
                }
            }
        }
        let mut order = order_terms(
            order_by,
            |entity, key| match (entity, key) {
                (Entity::Attribute, "name") => Some("e.name"),
                (Entity::Attribute, "experiment_id") => Some("e.experiment_id"),
                (Entity::Attribute, "creation_time") => Some("e.creation_time"),
                (Entity::Attribute, "last_update_time") => Some("e.last_update_time"),
                _ => None,
            },
            "experiments (valid keys: name, experiment_id, creation_time, last_update_time)",
        )?;
        if order.is_empty() {
            order.push("e.creation_time DESC".into());
        }
        if !order.iter().any(|o| o.starts_with("e.experiment_id ")) {
            order.push("e.experiment_id ASC".into());
        }
        sql.push(" ORDER BY ").push(&order.join(", ")).push(" LIMIT ").bind_int(max_results + 1);
        sql.push(" OFFSET ").bind_int(offset);
        let rows = sql.query().fetch_all(self.r()).await?;
        let items = rows.iter().map(experiment_from_row).collect::<Result<Vec<_>>>()?;
        let mut page = paginate(items, offset, max_results);
        self.attach_experiment_tags(&mut page.items).await?;
        Ok(page)
    }

    pub async fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        validate::experiment_name(new_name)?;
        let exp = self.get_experiment(experiment_id).await?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidParameter(format!(
                "Cannot rename a non-active experiment with id={experiment_id}"
            )));
        }
        if exp.name == new_name {
            return Ok(());
        }
        if self.get_experiment_by_name(new_name).await.is_ok() {
            return Err(StoreError::AlreadyExists(format!("Experiment(name={new_name}) already exists.")));
        }
        sqlx::query("UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(new_name)
            .bind(now_ms())
            .bind(parse_experiment_id(experiment_id)?)
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// Moves an experiment (and its runs) to or from the trash.
    pub async fn set_experiment_lifecycle(&self, experiment_id: &str, stage: LifecycleStage) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        if stage == LifecycleStage::Deleted && experiment_id.trim() == super::DEFAULT_EXPERIMENT_ID {
            return Err(StoreError::InvalidParameter("Cannot delete the default experiment '0'.".into()));
        }
        let exp = self.get_experiment(experiment_id).await?;
        if exp.lifecycle_stage == stage {
            // MLflow looks the experiment up among those it could act on: an already deleted
            // experiment "does not exist" for delete, an active one does for restore.
            return Err(StoreError::NotFound(format!(
                "No {} experiment with id={experiment_id} exists",
                if stage == LifecycleStage::Deleted { "active" } else { "deleted" }
            )));
        }
        let now = now_ms();
        let mut tx = self.w().begin().await?;
        sqlx::query("UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(stage.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted_time = (stage == LifecycleStage::Deleted).then_some(now);
        // Every run of the experiment changes: bump their data versions. On PostgreSQL the
        // rows are locked in run id order first, the order the metric group commit locks them
        // in, so the two never wait for each other in a cycle.
        if self.dialect() == Dialect::Postgres {
            sqlx::query("SELECT run_uuid FROM runs WHERE experiment_id = $1 ORDER BY run_uuid FOR NO KEY UPDATE")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2, data_version = data_version + 1 \
             WHERE experiment_id = $3",
        )
        .bind(stage.as_str())
        .bind(deleted_time)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_experiment_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        validate::key("tag", key)?;
        validate::value_length("Tag", key, value, validate::MAX_EXPERIMENT_TAG_VAL_LENGTH)?;
        let exp = self.get_experiment(experiment_id).await?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidParameter(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
            )));
        }
        EXPERIMENT_TAGS
            .upsert(&[Arg::Int(parse_experiment_id(experiment_id)?)], key, value)
            .query()
            .execute(self.w())
            .await?;
        Ok(())
    }

    pub async fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        self.get_experiment(experiment_id).await?;
        let done = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
            .bind(parse_experiment_id(experiment_id)?)
            .bind(key)
            .execute(self.w())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with name: {key} in experiment with id {experiment_id}")));
        }
        Ok(())
    }
}
