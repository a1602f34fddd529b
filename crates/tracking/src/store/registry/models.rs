//! Registered models: create, read, rename, delete, tags, aliases, search, and the history
//! of alias and stage moves.

use super::versions::{version_from_row, MV_COLUMNS};
use super::{
    alias_version, canonical_stage, exclude_prompts, model_exists, model_not_found, py_repr, record, touch_model,
    validate_alias, validate_alias_chars, validate_model_name, write_no_prompt, DELETED, SEARCH_MODELS_MAX,
};
use crate::error::{Result, StoreError};
use crate::model::{KeyValue, ModelVersion, Page, RegisteredModel, RegistryEvent};
use crate::search::{parse_filter, Entity, Op};
use crate::store::compile::{compile, parse_orders, Column, Columns, Sort, REGISTERED_MODEL_TAGS};
use crate::store::sql::{Arg, Sql};
use crate::store::{now_ms, validate, Paging, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

/// Registered models of one store (`store.registered_models()`).
#[derive(Clone, Copy)]
pub struct RegisteredModels<'s> {
    pub(in crate::store) s: &'s Store,
}

const COLUMNS: &str = "m.name, m.creation_time, m.last_updated_time, m.description";

/// How registered-model searches map the filter language: `name` and `tags.<key>`; ordered
/// by name or timestamps, then by name.
pub(in crate::store) const SEARCH: Columns = Columns {
    from: "registered_models m",
    filter: |entity, key, _: Op| match entity {
        Entity::Attribute if key == "name" => Ok(Column::Text { column: "m.name".into(), what: "'name'".into() }),
        Entity::Tag => Ok(Column::Kv(&REGISTERED_MODEL_TAGS)),
        _ => Err(StoreError::InvalidParameter(format!(
            "Invalid filter for registered models on '{key}': only name and tags.<key> are supported"
        ))),
    },
    // `SearchUtils.parse_order_by_for_search_registered_models` and
    // `_parse_search_registered_models_order_by`: `timestamp` is the last update.
    order: |entity, key| match (entity, key) {
        (Entity::Attribute, "name") => Ok(Sort::Column("m.name")),
        (Entity::Attribute, "timestamp" | "last_updated_timestamp") => Ok(Sort::Column("m.last_updated_time")),
        _ => Err(StoreError::InvalidParameter(format!(
            "Invalid order by key '{key}' specified. Valid keys are '{{'name', 'timestamp'}}'"
        ))),
    },
    default_order: &[],
    tie_break: &[("m.name", "ASC")],
};

impl RegisteredModels<'_> {
    pub async fn create(&self, name: &str, description: Option<&str>, tags: &[KeyValue]) -> Result<RegisteredModel> {
        let created = self.create_then(name, description, tags, |_| async { Ok::<_, StoreError>(()) });
        created.await?
    }

    /// As [`RegisteredModels::create`], running `then(name)` before the creation commits
    /// (see [`crate::Experiments::create_then`]).
    pub async fn create_then<E, F, Fut>(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
        then: F,
    ) -> Result<std::result::Result<RegisteredModel, E>>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        validate_model_name(name)?;
        for t in tags {
            validate::registry_tag(&t.key, &t.value)?;
        }
        let mut tx = self.s.w().begin().await?;
        if model_exists(&mut tx, name).await.is_ok() {
            return Err(StoreError::AlreadyExists(format!("Registered Model (name={name}) already exists.")));
        }
        let now = now_ms();
        sqlx::query("INSERT INTO registered_models (name, creation_time, last_updated_time, description) VALUES ($1, $2, $2, $3)")
            .bind(name)
            .bind(now)
            .bind(description)
            .execute(&mut *tx)
            .await?;
        for t in tags {
            REGISTERED_MODEL_TAGS.upsert(&[Arg::Text(name.into())], &t.key, &t.value).query().execute(&mut *tx).await?;
        }
        if let Err(e) = then(name.to_string()).await {
            return Ok(Err(e));
        }
        tx.commit().await?;
        self.get(name).await.map(Ok)
    }

    pub async fn get(&self, name: &str) -> Result<RegisteredModel> {
        let sql = Sql::with_args(
            &format!("SELECT {COLUMNS} FROM registered_models m WHERE m.name = $1"),
            vec![Arg::Text(name.into())],
        );
        let mut model = self.s.fetch_one(sql, registered_from_row, || model_not_found(name)).await?;
        self.attach(std::slice::from_mut(&mut model)).await?;
        Ok(model)
    }

    async fn attach(&self, models: &mut [RegisteredModel]) -> Result<()> {
        if models.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        let select = |head: &str, tail: &str| Sql::in_list(head, names.iter().copied(), tail);
        let tags = select("SELECT name, key, value FROM registered_model_tags WHERE name IN ", " ORDER BY key");
        let aliases =
            select("SELECT name, alias, version FROM registered_model_aliases WHERE name IN ", " ORDER BY alias");
        let latest = select(
            &format!("SELECT {MV_COLUMNS} FROM model_versions v WHERE v.name IN "),
            &format!(" AND v.current_stage != '{DELETED}' ORDER BY v.name, v.version"),
        );
        // The latest versions carry their tags, not their aliases (`SqlModelVersion.to_mlflow_entity`).
        let version_tags =
            select("SELECT name, version, key, value FROM model_version_tags WHERE name IN ", " ORDER BY key");
        let (tags, aliases, versions, version_tags) = tokio::try_join!(
            tags.query().fetch_all(self.s.r()),
            aliases.query().fetch_all(self.s.r()),
            latest.query().fetch_all(self.s.r()),
            version_tags.query().fetch_all(self.s.r())
        )?;
        // A page holds up to 1000 models: rows find theirs by name through an index.
        let index: HashMap<String, usize> = models.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
        let find = |name: &str| index.get(name).copied();
        for row in &tags {
            if let Some(i) = find(&row.try_get::<String, _>(0)?) {
                models[i].tags.push(KeyValue { key: row.try_get(1)?, value: row.try_get(2)? });
            }
        }
        for row in &aliases {
            if let Some(i) = find(&row.try_get::<String, _>(0)?) {
                models[i].aliases.push((row.try_get(1)?, row.try_get(2)?));
            }
        }
        // Latest version per stage (versions arrive in ascending order, so the last wins).
        for row in &versions {
            let v = version_from_row(row)?;
            if let Some(i) = find(&v.name) {
                let latest = &mut models[i].latest_versions;
                latest.retain(|old| old.current_stage != v.current_stage);
                latest.push(v);
            }
        }
        for m in models.iter_mut() {
            m.latest_versions.sort_by_key(|v| v.version);
        }
        for row in &version_tags {
            let (name, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            let Some(i) = find(&name) else { continue };
            // At most one latest version per stage.
            if let Some(v) = models[i].latest_versions.iter_mut().find(|v| v.version == version) {
                v.tags.push(KeyValue { key: row.try_get(2)?, value: row.try_get(3)? });
            }
        }
        Ok(())
    }

    pub async fn update(&self, name: &str, description: Option<&str>) -> Result<RegisteredModel> {
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, name).await?;
        sqlx::query("UPDATE registered_models SET description = $1, last_updated_time = $2 WHERE name = $3")
            .bind(description)
            .bind(now_ms())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get(name).await
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        let renamed = self.rename_then(name, new_name, |_, _| async { Ok::<_, StoreError>(()) });
        renamed.await?
    }

    /// As [`RegisteredModels::rename`], running `then(old, new)` before the rename commits
    /// (see [`crate::Experiments::create_then`]); not run when the name does not change.
    pub async fn rename_then<E, F, Fut>(
        &self,
        name: &str,
        new_name: &str,
        then: F,
    ) -> Result<std::result::Result<RegisteredModel, E>>
    where
        F: FnOnce(String, String) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
    {
        validate_model_name(new_name)?;
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, name).await?;
        if name == new_name {
            drop(tx);
            return self.get(name).await.map(Ok);
        }
        if model_exists(&mut tx, new_name).await.is_ok() {
            return Err(StoreError::AlreadyExists(format!("Registered Model (name={new_name}) already exists.")));
        }
        // Child rows follow through ON UPDATE CASCADE; history is keyed by name too.
        sqlx::query("UPDATE registered_models SET name = $1, last_updated_time = $2 WHERE name = $3")
            .bind(new_name)
            .bind(now_ms())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE registry_history SET name = $1 WHERE name = $2")
            .bind(new_name)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if let Err(e) = then(name.to_string(), new_name.to_string()).await {
            return Ok(Err(e));
        }
        tx.commit().await?;
        self.get(new_name).await.map(Ok)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, name).await?;
        for table in [
            "model_version_tags",
            "registered_model_aliases",
            "model_versions",
            "registered_model_tags",
            "registered_models",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE name = $1")).bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_tag(&self, name: &str, tag: &KeyValue) -> Result<()> {
        validate::registry_tag(&tag.key, &tag.value)?;
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, name).await?;
        REGISTERED_MODEL_TAGS.upsert(&[Arg::Text(name.into())], &tag.key, &tag.value).query().execute(&mut *tx).await?;
        touch_model(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_tag(&self, name: &str, key: &str) -> Result<()> {
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, name).await?;
        REGISTERED_MODEL_TAGS.delete(&[Arg::Text(name.into())], key).query().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn search(
        &self,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>> {
        if max_results == 0 {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let paging = Paging::new(max_results, SEARCH_MODELS_MAX, page_token)?;
        let mut filter = parse_filter(filter)?;
        let no_prompts = exclude_prompts(&mut filter);
        let mut orders = Vec::new();
        let mut fields = Vec::new();
        for o in parse_orders(order_by) {
            let o = o?;
            if let Sort::Column(field) = (SEARCH.order)(o.entity, &o.key)? {
                // MLflow raises this without an error code (a 500, which the client retries);
                // it is a bad request, so here a 400.
                if fields.contains(&field) {
                    let list = order_by.iter().map(|o| py_repr(o)).collect::<Vec<_>>().join(", ");
                    return Err(StoreError::InvalidParameter(format!(
                        "`order_by` contains duplicate fields: [{list}]"
                    )));
                }
                fields.push(field);
            }
            orders.push(Ok(o));
        }
        let compiled = compile(self.s.dialect(), &SEARCH, filter, orders, paging, |w| {
            if no_prompts {
                write_no_prompt(w.and(), "registered_model_tags", "m.name");
            }
        })?;
        let mut page = self.s.fetch_page(COLUMNS, compiled, registered_from_row).await?;
        self.attach(&mut page.items).await?;
        Ok(page)
    }

    /// Latest version per requested stage (all stages when empty).
    pub async fn latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        let model = self.get(name).await?;
        let wanted = stages.iter().map(|s| canonical_stage(s)).collect::<Result<Vec<_>>>()?;
        let mut out: Vec<ModelVersion> = model
            .latest_versions
            .into_iter()
            .filter(|v| wanted.is_empty() || wanted.contains(&v.current_stage.as_str()))
            .collect();
        self.s.model_versions().attach(&mut out).await?;
        Ok(out)
    }

    /// Points `alias` at `version` (moving it if it pointed elsewhere); recorded in the history.
    pub async fn set_alias(&self, name: &str, alias: &str, version: i64, user: Option<&str>) -> Result<()> {
        validate_alias(alias)?;
        self.s.model_versions().get(name, version).await?;
        let mut tx = self.s.w().begin().await?;
        let before = alias_version(&mut *tx, name, alias).await?;
        sqlx::query(
            "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3) \
             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(name)
        .bind(alias)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        record(&mut tx, name, "alias", alias, before, Some(version), user).await?;
        touch_model(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_alias(&self, name: &str, alias: &str, user: Option<&str>) -> Result<()> {
        validate_alias_chars(alias)?;
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, name).await?;
        let before = alias_version(&mut *tx, name, alias).await?;
        if let Some(before) = before {
            sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2")
                .bind(name)
                .bind(alias)
                .execute(&mut *tx)
                .await?;
            record(&mut tx, name, "alias", alias, Some(before), None, user).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Alias and stage moves of a model, oldest first; `target` narrows to one alias or stage.
    pub async fn history(&self, name: &str, target: Option<&str>) -> Result<Vec<RegistryEvent>> {
        let mut sql = Sql::new(
            "SELECT id, name, kind, target, version_before, version_after, time, user_id FROM registry_history WHERE name = ",
        );
        sql.bind_str(name);
        if let Some(t) = target {
            sql.push(" AND target = ").bind_str(t);
        }
        sql.push(" ORDER BY id");
        let rows = sql.query().fetch_all(self.s.r()).await?;
        if rows.is_empty() {
            self.get(name).await?;
        }
        rows.iter()
            .map(|row| {
                Ok(RegistryEvent {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    kind: row.try_get(2)?,
                    target: row.try_get(3)?,
                    version_before: row.try_get(4)?,
                    version_after: row.try_get(5)?,
                    time: row.try_get(6)?,
                    user_id: row.try_get(7)?,
                })
            })
            .collect()
    }
}

fn registered_from_row(row: &AnyRow) -> Result<RegisteredModel> {
    Ok(RegisteredModel {
        name: row.try_get(0)?,
        creation_time: row.try_get(1)?,
        last_updated_time: row.try_get(2)?,
        description: row.try_get(3)?,
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    })
}
