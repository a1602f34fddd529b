//! Experiments: create, read, search, rename, delete/restore and tags.

use super::compile::{compile, parse_orders, Column, Columns, Sort, EXPERIMENT_TAGS};
use super::runs::{move_runs, RunsOf};
use super::sql::{Arg, Sql};
use super::{now_ms, parse_experiment_id, validate, Paging, Store};
use crate::db::Dialect;
use crate::error::{Result, StoreError};
use crate::model::{Experiment, KeyValue, LifecycleStage, Page, ViewType};
use crate::search::{parse_filter, Entity, Op};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Experiments of one store (`store.experiments()`).
#[derive(Clone, Copy)]
pub struct Experiments<'s> {
    pub(super) s: &'s Store,
}

const COLUMNS: &str =
    "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

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

/// How experiment searches map the filter language: `name`, `creation_time`,
/// `last_update_time` and `tags.<key>`; default order `creation_time DESC, experiment_id ASC`.
pub(in crate::store) const SEARCH: Columns = Columns {
    from: "experiments e",
    filter: |entity, key, op: Op| {
        match entity {
        Entity::Attribute => match key {
            // `SearchUtils.validate_list_supported`: of the attributes only ids take a list.
            "name" if matches!(op, Op::In | Op::NotIn) => Err(StoreError::InvalidParameter(
                "Only ['experiment_id'] attributes support comparison with a list of quoted string values.".into(),
            )),
            "name" => Ok(Column::Text { column: "e.name".into(), what: "attribute 'name'".into() }),
            "experiment_id" => Ok(Column::Id { column: "e.experiment_id", what: "experiment_id" }),
            "creation_time" | "last_update_time" => {
                Ok(Column::Number { column: format!("e.{key}"), what: key.into(), parse: None })
            }
            other => Err(StoreError::InvalidParameter(format!(
                "Invalid attribute key '{other}' specified. Valid keys are ['name', 'experiment_id', 'creation_time', 'last_update_time']"
            ))),
        },
        Entity::Tag => Ok(Column::Kv(&EXPERIMENT_TAGS)),
        other => Err(StoreError::InvalidParameter(format!(
            "Invalid entity type '{other:?}' in experiment filter; use attributes or tags"
        ))),
    }
    },
    order: |entity, key| match (entity, key) {
        (Entity::Attribute, "name") => Ok(Sort::Column("e.name")),
        (Entity::Attribute, "experiment_id") => Ok(Sort::Column("e.experiment_id")),
        (Entity::Attribute, "creation_time") => Ok(Sort::Column("e.creation_time")),
        (Entity::Attribute, "last_update_time") => Ok(Sort::Column("e.last_update_time")),
        _ => Err(StoreError::InvalidParameter(format!(
            "Invalid order_by key '{key}' for experiments (valid keys: name, experiment_id, creation_time, \
             last_update_time)"
        ))),
    },
    default_order: &[("e.creation_time", "DESC")],
    tie_break: &[("e.experiment_id", "ASC")],
};

impl Experiments<'_> {
    /// Where an experiment's artifacts go when the client gives no location.
    fn default_location(&self, experiment_id: i64) -> String {
        format!("{}/{experiment_id}", self.s.artifact_root)
    }

    pub(super) async fn ensure_default(&self) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES (0, 'Default', $1, 'active', $2, $2) ON CONFLICT DO NOTHING",
        )
        .bind(self.default_location(0))
        .bind(now)
        .execute(self.s.w())
        .await?;
        Ok(())
    }

    /// Creates an experiment; its artifact location defaults to `<artifact root>/<id>`.
    pub async fn create(&self, name: &str, artifact_location: Option<&str>, tags: &[KeyValue]) -> Result<String> {
        let created = self.create_then(name, artifact_location, tags, |_| async { Ok::<_, StoreError>(()) });
        created.await?
    }

    /// As [`Experiments::create`], running `then(id)` before the creation commits: the
    /// experiment exists (for everyone else) only if `then` succeeded, and its id cannot be
    /// taken meanwhile. For work in another database that must go with the creation (the auth
    /// app's owner grant). `Err` is the store's failure, `Ok(Err)` the hook's (nothing created).
    pub async fn create_then<E, F, Fut>(
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
        let mut tx = self.s.w().begin().await?;
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
        let artifact_location = artifact_location.map(absolute_if_local);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, 'active', $3, $3) RETURNING experiment_id",
        )
        .bind(name)
        .bind(artifact_location.as_deref().unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if artifact_location.as_deref().is_none_or(str::is_empty) {
            sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
                .bind(self.default_location(id))
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

    pub async fn get(&self, experiment_id: &str) -> Result<Experiment> {
        let id = parse_experiment_id(experiment_id)?;
        let sql = Sql::with_args(
            &format!("SELECT {COLUMNS} FROM experiments e WHERE e.experiment_id = $1"),
            vec![Arg::Int(id)],
        );
        let mut exp = self.s.fetch_one(sql, experiment_from_row, || not_found(experiment_id)).await?;
        self.attach_tags(std::slice::from_mut(&mut exp)).await?;
        Ok(exp)
    }

    pub async fn get_by_name(&self, name: &str) -> Result<Experiment> {
        let sql = Sql::with_args(
            &format!("SELECT {COLUMNS} FROM experiments e WHERE e.name = $1"),
            vec![Arg::Text(name.into())],
        );
        let missing = || StoreError::NotFound(format!("Could not find experiment with name '{name}'"));
        let mut exp = self.s.fetch_one(sql, experiment_from_row, missing).await?;
        self.attach_tags(std::slice::from_mut(&mut exp)).await?;
        Ok(exp)
    }

    async fn attach_tags(&self, exps: &mut [Experiment]) -> Result<()> {
        if exps.is_empty() {
            return Ok(());
        }
        let ids =
            exps.iter().map(|e| Ok(Arg::Int(parse_experiment_id(&e.experiment_id)?))).collect::<Result<Vec<_>>>()?;
        let mut sql = Sql::new("SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ");
        sql.bind_args(ids).push(" ORDER BY key");
        let rows = sql.query().fetch_all(self.s.r()).await?;
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
    pub async fn search(
        &self,
        view: ViewType,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>> {
        let paging = Paging::new(max_results, super::SEARCH_MAX_RESULTS, page_token)?;
        let compiled =
            compile(self.s.dialect(), &SEARCH, parse_filter(filter)?, parse_orders(order_by), paging, |w| {
                w.and().push("e.lifecycle_stage IN ").bind_list(view.stages().iter().copied());
            })?;
        let mut page = self.s.fetch_page(COLUMNS, compiled, experiment_from_row).await?;
        self.attach_tags(&mut page.items).await?;
        Ok(page)
    }

    pub async fn rename(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        validate::experiment_name(new_name)?;
        let exp = self.get(experiment_id).await?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidParameter(format!(
                "Cannot rename a non-active experiment with id={experiment_id}"
            )));
        }
        if exp.name == new_name {
            return Ok(());
        }
        if self.get_by_name(new_name).await.is_ok() {
            return Err(StoreError::AlreadyExists(format!("Experiment(name={new_name}) already exists.")));
        }
        sqlx::query("UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3")
            .bind(new_name)
            .bind(now_ms())
            .bind(parse_experiment_id(experiment_id)?)
            .execute(self.s.w())
            .await?;
        Ok(())
    }

    /// Moves an experiment (and its runs) to or from the trash.
    pub async fn set_lifecycle(&self, experiment_id: &str, stage: LifecycleStage) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        if stage == LifecycleStage::Deleted && experiment_id.trim() == super::DEFAULT_EXPERIMENT_ID {
            return Err(StoreError::InvalidParameter("Cannot delete the default experiment '0'.".into()));
        }
        let exp = self.get(experiment_id).await?;
        if exp.lifecycle_stage == stage {
            // MLflow looks the experiment up among those it could act on: an already deleted
            // experiment "does not exist" for delete, an active one does for restore.
            return Err(StoreError::NotFound(format!(
                "No {} experiment with id={experiment_id} exists",
                if stage == LifecycleStage::Deleted { "active" } else { "deleted" }
            )));
        }
        let now = now_ms();
        let mut tx = self.s.w().begin().await?;
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
        if self.s.dialect() == Dialect::Postgres {
            sqlx::query("SELECT run_uuid FROM runs WHERE experiment_id = $1 ORDER BY run_uuid FOR NO KEY UPDATE")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        move_runs(&mut *tx, RunsOf::Experiment(id), stage, deleted_time).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_tag(&self, experiment_id: &str, key: &str, value: &str) -> Result<()> {
        validate::key("tag", key)?;
        validate::value_length("Tag", key, value, validate::MAX_EXPERIMENT_TAG_VAL_LENGTH)?;
        let exp = self.get(experiment_id).await?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(StoreError::InvalidParameter(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
            )));
        }
        EXPERIMENT_TAGS
            .upsert(&[Arg::Int(parse_experiment_id(experiment_id)?)], key, value)
            .query()
            .execute(self.s.w())
            .await?;
        Ok(())
    }

    pub async fn delete_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        self.get(experiment_id).await?;
        let owner = [Arg::Int(parse_experiment_id(experiment_id)?)];
        let done = EXPERIMENT_TAGS.delete(&owner, key).query().execute(self.s.w()).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("No tag with name: {key} in experiment with id {experiment_id}")));
        }
        Ok(())
    }
}

/// A relative local path made absolute against the server's working directory, as MLflow's
/// `resolve_uri_if_local` does; URIs (`s3://`, `file:///`, `mlflow-artifacts:`) and absolute
/// paths stay as given.
pub(crate) fn absolute_if_local(location: &str) -> String {
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if location.is_empty() || has_scheme || location.starts_with('/') {
        return location.to_string();
    }
    let relative: std::path::PathBuf =
        std::path::Path::new(location).components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(relative).to_string_lossy().into_owned(),
        Err(_) => location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::absolute_if_local;

    #[test]
    fn relative_locations_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute_if_local("my_location"), cwd.join("my_location").to_string_lossy());
        assert_eq!(absolute_if_local("./a/b"), cwd.join("a/b").to_string_lossy());
        for kept in ["/abs/x", "s3://b/p", "file:///tmp/x", "mlflow-artifacts:/1", ""] {
            assert_eq!(absolute_if_local(kept), kept);
        }
    }
}
