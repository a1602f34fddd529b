//! The model registry: registered models, versions, stages, aliases, tags, search, and the
//! history of alias and stage moves.

use super::sql::{
    number_condition, order_terms, string_condition, Arg, Sql, MODEL_VERSION_TAGS, REGISTERED_MODEL_TAGS,
};
use super::{check_max_results, decode_page_token, now_ms, paginate, validate, Store};
use crate::error::{Result, StoreError};
use crate::model::{KeyValue, ModelVersion, Page, RegisteredModel, RegistryEvent};
use crate::search::{parse_filter, Entity, Op, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// MLflow's stages, in their canonical spelling.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];
const DELETED: &str = "Deleted_Internal";
pub const SEARCH_MODELS_MAX: i64 = 1000;
pub const SEARCH_VERSIONS_MAX: i64 = 200_000;

const MV_COLUMNS: &str = "v.name, v.version, v.creation_time, v.last_updated_time, v.description, v.user_id, \
     v.current_stage, v.source, v.run_id, v.run_link, v.status, v.status_message, v.model_id";

fn version_from_row(row: &AnyRow) -> Result<ModelVersion> {
    Ok(ModelVersion {
        name: row.try_get(0)?,
        version: row.try_get(1)?,
        creation_time: row.try_get(2)?,
        last_updated_time: row.try_get(3)?,
        description: row.try_get(4)?,
        user_id: row.try_get(5)?,
        current_stage: row.try_get(6)?,
        source: row.try_get(7)?,
        run_id: row.try_get(8)?,
        run_link: row.try_get(9)?,
        status: row.try_get(10)?,
        status_message: row.try_get(11)?,
        model_id: row.try_get(12)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidParameter(msg)
}

/// Registered model names become parts of paths and URIs (`models:/<name>/<version>`), so
/// separators, traversal and URI syntax are refused.
pub fn validate_model_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid("Registered model name cannot be empty.".into()));
    }
    if name.chars().count() > 256 {
        return Err(invalid(format!("Registered model name '{name}' is longer than 256 characters.")));
    }
    if name.contains("..")
        || name.chars().any(|c| matches!(c, '/' | '\\' | ':' | '#' | '?' | '%' | '\0') || c.is_control())
    {
        return Err(invalid(format!(
            "Invalid registered model name '{name}'. Names cannot contain '/', '\\\\', ':', '#', '?', '%', '..' or control characters."
        )));
    }
    Ok(())
}

/// Alias characters: `[A-Za-z0-9_-]`, 1 to 255 of them (enough to keep aliases out of paths).
fn validate_alias_chars(alias: &str) -> Result<()> {
    let bad = |why: &str| invalid(format!("Invalid alias name '{alias}': {why}"));
    if alias.is_empty() || alias.len() > 255 {
        return Err(bad("it must have 1 to 255 characters"));
    }
    if !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad("only letters, digits, '_' and '-' are allowed"));
    }
    Ok(())
}

/// MLflow's rule for setting an alias: valid characters, not `latest`, not `v<N>`.
pub fn validate_alias(alias: &str) -> Result<()> {
    validate_alias_chars(alias)?;
    let bad = |why: &str| invalid(format!("Invalid alias name '{alias}': {why}"));
    let lower = alias.to_ascii_lowercase();
    if lower == "latest" {
        return Err(bad("'latest' is reserved"));
    }
    if lower.len() > 1 && lower.starts_with('v') && lower[1..].chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("aliases like 'v<number>' are reserved for version numbers"));
    }
    Ok(())
}

/// Canonical stage name for a case-insensitive input.
pub fn canonical_stage(stage: &str) -> Result<&'static str> {
    STAGES.iter().copied().find(|s| s.eq_ignore_ascii_case(stage.trim())).ok_or_else(|| {
        invalid(format!("Invalid Model Version stage: {stage}. Value must be one of {}.", STAGES.join(", ")))
    })
}

/// Model version sources may point at stores the client reads from, never at local files
/// or arbitrary hosts (CVE-2023-1177, CVE-2024-1483: local paths, traversal, `#`/`?`).
pub fn validate_source(source: &str) -> Result<()> {
    let bad = |why: &str| invalid(format!("Invalid model version source '{source}': {why}"));
    if source.is_empty() {
        return Err(invalid("Missing value for required parameter 'source'.".into()));
    }
    let mut decoded = source.to_string();
    for _ in 0..3 {
        decoded = percent_decode(&decoded);
    }
    if decoded.contains('#') || decoded.contains('?') || decoded.contains('\0') || decoded.contains('\\') {
        return Err(bad("'#', '?', '\\\\' and NUL are not allowed"));
    }
    let Some((scheme, rest)) = decoded.split_once(':') else {
        return Err(bad("local paths are not allowed; use a URI such as runs:/, models:/ or mlflow-artifacts:/"));
    };
    let allowed = ["mlflow-artifacts", "models", "runs", "s3", "gs", "wasbs", "abfss", "hdfs", "dbfs"];
    if !allowed.contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err(bad(&format!("scheme '{scheme}' is not allowed (allowed: {})", allowed.join(", "))));
    }
    if rest.split('/').any(|seg| seg == "..") {
        return Err(bad("'..' segments are not allowed"));
    }
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn model_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Registered Model with name={name} not found"))
}

fn version_not_found(name: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!("Model Version (name={name}, version={version}) not found"))
}

/// Parses a version number given as a string.
/// Parses a version number given as a string (`0` or negative simply match no version).
pub fn parse_version(v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| invalid(format!("Parameter 'version' must be an integer, got '{v}'.")))
}

/// `models:/m-<id>`: the logged model a source names, if it names one.
fn logged_model_source(source: &str) -> Option<&str> {
    source.strip_prefix("models:/").filter(|id| id.starts_with("m-") && !id.contains('/') && !id.contains('@'))
}

/// Whether `source` lies inside the artifact folder `root`.
fn within(source: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    source == root || source.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// What a new model version is made of.
#[derive(Debug, Default, Clone)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
    pub tags: Vec<KeyValue>,
    pub user_id: Option<String>,
}

impl Store {
    async fn record(
        tx: &mut Transaction<'_, Any>,
        name: &str,
        kind: &str,
        target: &str,
        before: Option<i64>,
        after: Option<i64>,
        user: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO registry_history (name, kind, target, version_before, version_after, time, user_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(name)
        .bind(kind)
        .bind(target)
        .bind(before)
        .bind(after)
        .bind(now_ms())
        .bind(user)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn model_exists(&self, tx: &mut Transaction<'_, Any>, name: &str) -> Result<()> {
        let found: Option<String> = sqlx::query_scalar("SELECT name FROM registered_models WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
        found.map(|_| ()).ok_or_else(|| model_not_found(name))
    }

    async fn touch_model(tx: &mut Transaction<'_, Any>, name: &str) -> Result<()> {
        sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
            .bind(now_ms())
            .bind(name)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<RegisteredModel> {
        let created = self.create_registered_model_then(name, description, tags, |_| async { Ok::<_, StoreError>(()) });
        created.await?
    }

    /// As [`Store::create_registered_model`], running `then(name)` before the creation commits
    /// (see [`Store::create_experiment_then`]).
    pub async fn create_registered_model_then<E, F, Fut>(
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
        let mut tx = self.w().begin().await?;
        if self.model_exists(&mut tx, name).await.is_ok() {
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
        self.get_registered_model(name).await.map(Ok)
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let row = sqlx::query(
            "SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.r())
        .await?
        .ok_or_else(|| model_not_found(name))?;
        let mut models = vec![registered_from_row(&row)?];
        self.attach_registered_model_data(&mut models).await?;
        Ok(models.remove(0))
    }

    async fn attach_registered_model_data(&self, models: &mut [RegisteredModel]) -> Result<()> {
        if models.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        let select = |head: &str, tail: &str| {
            let mut sql = Sql::new(head);
            sql.bind_list(names.iter().copied()).push(tail);
            sql
        };
        let tags = select("SELECT name, key, value FROM registered_model_tags WHERE name IN ", " ORDER BY key");
        let aliases =
            select("SELECT name, alias, version FROM registered_model_aliases WHERE name IN ", " ORDER BY alias");
        let latest = select(
            &format!("SELECT {MV_COLUMNS} FROM model_versions v WHERE v.name IN "),
            &format!(" AND v.current_stage != '{DELETED}' ORDER BY v.name, v.version"),
        );
        let (tags, aliases, versions) = tokio::try_join!(
            tags.query().fetch_all(self.r()),
            aliases.query().fetch_all(self.r()),
            latest.query().fetch_all(self.r())
        )?;
        let find = |models: &mut [RegisteredModel], name: &str| models.iter().position(|m| m.name == name);
        for row in &tags {
            if let Some(i) = find(models, &row.try_get::<String, _>(0)?) {
                models[i].tags.push(KeyValue { key: row.try_get(1)?, value: row.try_get(2)? });
            }
        }
        for row in &aliases {
            if let Some(i) = find(models, &row.try_get::<String, _>(0)?) {
                models[i].aliases.push((row.try_get(1)?, row.try_get(2)?));
            }
        }
        // Latest version per stage (versions arrive in ascending order, so the last wins).
        for row in &versions {
            let v = version_from_row(row)?;
            if let Some(i) = find(models, &v.name) {
                let latest = &mut models[i].latest_versions;
                latest.retain(|old| old.current_stage != v.current_stage);
                latest.push(v);
            }
        }
        for m in models.iter_mut() {
            m.latest_versions.sort_by_key(|v| v.version);
        }
        Ok(())
    }

    pub async fn update_registered_model(&self, name: &str, description: Option<&str>) -> Result<RegisteredModel> {
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, name).await?;
        sqlx::query("UPDATE registered_models SET description = $1, last_updated_time = $2 WHERE name = $3")
            .bind(description)
            .bind(now_ms())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_registered_model(name).await
    }

    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        let renamed = self.rename_registered_model_then(name, new_name, |_, _| async { Ok::<_, StoreError>(()) });
        renamed.await?
    }

    /// As [`Store::rename_registered_model`], running `then(old, new)` before the rename
    /// commits (see [`Store::create_experiment_then`]); not run when the name does not change.
    pub async fn rename_registered_model_then<E, F, Fut>(
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
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, name).await?;
        if name == new_name {
            drop(tx);
            return self.get_registered_model(name).await.map(Ok);
        }
        if self.model_exists(&mut tx, new_name).await.is_ok() {
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
        self.get_registered_model(new_name).await.map(Ok)
    }

    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, name).await?;
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

    pub async fn set_registered_model_tag(&self, name: &str, tag: &KeyValue) -> Result<()> {
        validate::registry_tag(&tag.key, &tag.value)?;
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, name).await?;
        REGISTERED_MODEL_TAGS.upsert(&[Arg::Text(name.into())], &tag.key, &tag.value).query().execute(&mut *tx).await?;
        Self::touch_model(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, name).await?;
        sqlx::query("DELETE FROM registered_model_tags WHERE name = $1 AND key = $2")
            .bind(name)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn search_registered_models(
        &self,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<RegisteredModel>> {
        if max_results == 0 {
            return Ok(Page { items: Vec::new(), next_page_token: None });
        }
        let max_results = check_max_results(max_results, SEARCH_MODELS_MAX)?;
        let offset = decode_page_token(page_token)?;
        let dialect = self.dialect();
        let mut sql = Sql::new(
            "SELECT m.name, m.creation_time, m.last_updated_time, m.description FROM registered_models m WHERE 1 = 1",
        );
        for c in parse_filter(filter)?.clauses {
            sql.push(" AND ");
            match c.entity {
                Entity::Attribute if c.key == "name" => {
                    string_condition(&mut sql, dialect, "m.name", c.op, &c.value, "'name'")?
                }
                Entity::Tag => REGISTERED_MODEL_TAGS.condition(&mut sql, dialect, &c.key, c.op, &c.value)?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid filter for registered models on '{}': only name and tags.<key> are supported",
                        c.key
                    )))
                }
            }
        }
        let mut order = order_terms(
            order_by,
            |_, key| match key {
                "name" => Some("m.name"),
                "timestamp" | "creation_timestamp" | "creation_time" => Some("m.creation_time"),
                "last_updated_timestamp" | "last_updated_time" => Some("m.last_updated_time"),
                _ => None,
            },
            "registered models",
        )?;
        if !order.iter().any(|o| o.starts_with("m.name ")) {
            order.push("m.name ASC".into());
        }
        sql.push(" ORDER BY ").push(&order.join(", "));
        sql.push(" LIMIT ").bind_int(max_results + 1).push(" OFFSET ").bind_int(offset);
        let rows = sql.query().fetch_all(self.r()).await?;
        let items = rows.iter().map(registered_from_row).collect::<Result<Vec<_>>>()?;
        let mut page = paginate(items, offset, max_results);
        self.attach_registered_model_data(&mut page.items).await?;
        Ok(page)
    }

    /// Latest version per requested stage (all stages when empty).
    pub async fn get_latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<ModelVersion>> {
        let model = self.get_registered_model(name).await?;
        let wanted = stages.iter().map(|s| canonical_stage(s)).collect::<Result<Vec<_>>>()?;
        let mut out: Vec<ModelVersion> = model
            .latest_versions
            .into_iter()
            .filter(|v| wanted.is_empty() || wanted.contains(&v.current_stage.as_str()))
            .collect();
        self.attach_version_data(&mut out).await?;
        Ok(out)
    }

    pub async fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion> {
        validate_model_name(&new.name)?;
        validate_source(&new.source)?;
        for t in &new.tags {
            validate::registry_tag(&t.key, &t.value)?;
        }
        let model_id = new.model_id.as_deref().filter(|m| !m.is_empty());
        let logged = match model_id {
            Some(id) => Some(self.get_logged_model(id).await?),
            None => None,
        };
        // A version registered from a logged model belongs to the run that produced it.
        let run_id = new
            .run_id
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| logged.as_ref().and_then(|m| m.source_run_id.clone()));
        let run = match run_id.as_deref() {
            Some(r) => Some(self.get_run_info(r).await?),
            None => None,
        };
        self.check_source_location(&new.source, run.as_ref(), logged.as_ref()).await?;
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, &new.name).await?;
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM model_versions WHERE name = $1")
            .bind(&new.name)
            .fetch_one(&mut *tx)
            .await?;
        let version = max.unwrap_or(0) + 1;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, \
             current_stage, source, run_id, run_link, status, model_id) \
             VALUES ($1, $2, $3, $3, $4, $5, 'None', $6, $7, $8, 'READY', $9)",
        )
        .bind(&new.name)
        .bind(version)
        .bind(now)
        .bind(new.description.as_deref())
        .bind(new.user_id.as_deref())
        .bind(&new.source)
        .bind(run_id.as_deref())
        .bind(new.run_link.as_deref().filter(|r| !r.is_empty()))
        .bind(model_id)
        .execute(&mut *tx)
        .await?;
        for t in &new.tags {
            upsert_version_tag(&mut tx, &new.name, version, t).await?;
        }
        Self::touch_model(&mut tx, &new.name).await?;
        tx.commit().await?;
        self.get_model_version(&new.name, version).await
    }

    /// The source must be something the version may point at (MLflow's rules): a logged model
    /// given as `model_id`, an existing registered version, or files inside the run named by
    /// `run_id` (or inside the logged model). Remote stores (`s3://`, ...) are taken as given.
    async fn check_source_location(
        &self,
        source: &str,
        run: Option<&crate::model::RunInfo>,
        logged: Option<&crate::model::LoggedModel>,
    ) -> Result<()> {
        let foreign = || {
            invalid(format!(
                "Invalid model version source: '{source}'. To use a local path or a run's artifacts as a model \
                 version source, the run_id request parameter must identify the resource that contains the source."
            ))
        };
        if let Some(id) = logged_model_source(source) {
            return match logged {
                Some(m) if m.model_id == id => Ok(()),
                Some(m) => Err(invalid(format!("source '{source}' does not match model_id '{}'", m.model_id))),
                None => Err(invalid(format!(
                    "Model version source '{source}' refers to a logged model; 'model_id' is required with it."
                ))),
            };
        }
        if let Some(rest) = source.strip_prefix("models:/") {
            match rest.split_once('@') {
                Some((name, alias)) => self.get_model_version_by_alias(name, alias).await.map(|_| ()),
                None => {
                    let (name, version) =
                        rest.rsplit_once('/').ok_or_else(|| invalid(format!("Invalid model URI '{source}'")))?;
                    self.get_model_version(name, parse_version(version)?).await.map(|_| ())
                }
            }?;
            return Ok(());
        }
        if let Some(rest) = source.strip_prefix("runs:/") {
            let source_run = rest.split('/').next().unwrap_or("");
            return match run {
                Some(r) if r.run_id == source_run => Ok(()),
                _ => Err(foreign()),
            };
        }
        if source.starts_with("mlflow-artifacts:") {
            let in_run = run.is_some_and(|r| within(source, &r.artifact_uri));
            let in_model = logged.is_some_and(|m| within(source, &m.artifact_location));
            return if in_run || in_model { Ok(()) } else { Err(foreign()) };
        }
        Ok(())
    }

    pub async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let row = sqlx::query(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions v WHERE v.name = $1 AND v.version = $2 AND v.current_stage != '{DELETED}'"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(self.r())
        .await?
        .ok_or_else(|| version_not_found(name, version))?;
        let mut v = vec![version_from_row(&row)?];
        self.attach_version_data(&mut v).await?;
        Ok(v.remove(0))
    }

    async fn attach_version_data(&self, versions: &mut [ModelVersion]) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        let mut tags = Sql::new("SELECT name, version, key, value FROM model_version_tags WHERE name IN ");
        tags.bind_list(names.iter().copied()).push(" ORDER BY key");
        let mut aliases = Sql::new("SELECT name, version, alias FROM registered_model_aliases WHERE name IN ");
        aliases.bind_list(names.iter().copied()).push(" ORDER BY alias");
        let (tags, aliases) = tokio::try_join!(tags.query().fetch_all(self.r()), aliases.query().fetch_all(self.r()))?;
        for row in &tags {
            let (name, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            if let Some(v) = versions.iter_mut().find(|v| v.name == name && v.version == version) {
                v.tags.push(KeyValue { key: row.try_get(2)?, value: row.try_get(3)? });
            }
        }
        for row in &aliases {
            let (name, version): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            if let Some(v) = versions.iter_mut().find(|v| v.name == name && v.version == version) {
                v.aliases.push(row.try_get(2)?);
            }
        }
        Ok(())
    }

    pub async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> Result<ModelVersion> {
        self.get_model_version(name, version).await?;
        sqlx::query(
            "UPDATE model_versions SET description = $1, last_updated_time = $2 WHERE name = $3 AND version = $4",
        )
        .bind(description)
        .bind(now_ms())
        .bind(name)
        .bind(version)
        .execute(self.w())
        .await?;
        self.get_model_version(name, version).await
    }

    /// Marks a version deleted (its number is never reused) and drops its aliases.
    pub async fn delete_model_version(&self, name: &str, version: i64, user: Option<&str>) -> Result<()> {
        self.get_model_version(name, version).await?;
        let mut tx = self.w().begin().await?;
        let aliases: Vec<String> =
            sqlx::query_scalar("SELECT alias FROM registered_model_aliases WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .fetch_all(&mut *tx)
                .await?;
        for alias in &aliases {
            Self::record(&mut tx, name, "alias", alias, Some(version), None, user).await?;
        }
        sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM model_version_tags WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "UPDATE model_versions SET current_stage = '{DELETED}', last_updated_time = $1 WHERE name = $2 AND version = $3"
        ))
        .bind(now_ms())
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        Self::touch_model(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a version to a stage; with `archive_existing`, other versions in that stage
    /// (Staging/Production) go to Archived. Recorded in the history.
    pub async fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: &str,
        archive_existing: bool,
        user: Option<&str>,
    ) -> Result<ModelVersion> {
        let stage = canonical_stage(stage)?;
        if archive_existing && !matches!(stage, "Staging" | "Production") {
            return Err(invalid(format!(
                "Model version transition cannot archive existing model versions because '{stage}' is not an \
                 Active stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        self.get_model_version(name, version).await?;
        let mut tx = self.w().begin().await?;
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM model_versions WHERE name = $1 AND current_stage = $2 AND version != $3",
        )
        .bind(name)
        .bind(stage)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        let now = now_ms();
        if archive_existing {
            sqlx::query(
                "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = $1 \
                 WHERE name = $2 AND current_stage = $3 AND version != $4",
            )
            .bind(now)
            .bind(name)
            .bind(stage)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE model_versions SET current_stage = $1, last_updated_time = $2 WHERE name = $3 AND version = $4",
        )
        .bind(stage)
        .bind(now)
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        Self::record(&mut tx, name, "stage", stage, previous, Some(version), user).await?;
        Self::touch_model(&mut tx, name).await?;
        tx.commit().await?;
        self.get_model_version(name, version).await
    }

    pub async fn set_model_version_tag(&self, name: &str, version: i64, tag: &KeyValue) -> Result<()> {
        validate::registry_tag(&tag.key, &tag.value)?;
        self.get_model_version(name, version).await?;
        let mut tx = self.w().begin().await?;
        upsert_version_tag(&mut tx, name, version, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        self.get_model_version(name, version).await?;
        sqlx::query("DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3")
            .bind(name)
            .bind(version)
            .bind(key)
            .execute(self.w())
            .await?;
        Ok(())
    }

    /// Points `alias` at `version` (moving it if it pointed elsewhere); recorded in the history.
    pub async fn set_alias(&self, name: &str, alias: &str, version: i64, user: Option<&str>) -> Result<()> {
        validate_alias(alias)?;
        self.get_model_version(name, version).await?;
        let mut tx = self.w().begin().await?;
        let before: Option<i64> =
            sqlx::query_scalar("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
                .bind(name)
                .bind(alias)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3) \
             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(name)
        .bind(alias)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        Self::record(&mut tx, name, "alias", alias, before, Some(version), user).await?;
        Self::touch_model(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_alias(&self, name: &str, alias: &str, user: Option<&str>) -> Result<()> {
        validate_alias_chars(alias)?;
        let mut tx = self.w().begin().await?;
        self.model_exists(&mut tx, name).await?;
        let before: Option<i64> =
            sqlx::query_scalar("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
                .bind(name)
                .bind(alias)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(before) = before {
            sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2")
                .bind(name)
                .bind(alias)
                .execute(&mut *tx)
                .await?;
            Self::record(&mut tx, name, "alias", alias, Some(before), None, user).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The version an alias points at. A missing alias is INVALID_PARAMETER_VALUE, as in MLflow.
    pub async fn get_model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        if alias.eq_ignore_ascii_case("latest") {
            let newest: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT MAX(version) FROM model_versions WHERE name = $1 AND current_stage != '{DELETED}'"
            ))
            .bind(name)
            .fetch_one(self.r())
            .await?;
            return match newest {
                Some(v) => self.get_model_version(name, v).await,
                None => Err(StoreError::NotFound(format!("Latest version not found for model {name}."))),
            };
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
                .bind(name)
                .bind(alias)
                .fetch_optional(self.r())
                .await?;
        match version {
            Some(v) => self.get_model_version(name, v).await,
            None => {
                self.get_registered_model(name).await?;
                Err(invalid(format!("Registered model alias {alias} not found.")))
            }
        }
    }

    /// Where the client downloads a version's files from.
    pub async fn get_model_version_download_uri(&self, name: &str, version: i64) -> Result<String> {
        let v = self.get_model_version(name, version).await?;
        if let Some(model_id) = &v.model_id {
            return Ok(self.get_logged_model(model_id).await?.artifact_location);
        }
        if let Some(rest) = v.source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let info = self.get_run_info(run_id).await?;
            return Ok(if path.is_empty() { info.artifact_uri } else { format!("{}/{path}", info.artifact_uri) });
        }
        Ok(v.source)
    }

    pub async fn search_model_versions(
        &self,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let max_results = check_max_results(max_results, SEARCH_VERSIONS_MAX)?;
        let offset = decode_page_token(page_token)?;
        let dialect = self.dialect();
        let mut sql =
            Sql::new(&format!("SELECT {MV_COLUMNS} FROM model_versions v WHERE v.current_stage != '{DELETED}'"));
        for c in parse_filter(filter)?.clauses {
            sql.push(" AND ");
            match (c.entity, c.key.as_str()) {
                (Entity::Attribute, k @ ("name" | "run_id" | "source_path" | "source")) => {
                    let column = match k {
                        "name" => "v.name",
                        "run_id" => "v.run_id",
                        _ => "v.source",
                    };
                    if matches!(c.op, Op::In | Op::NotIn) && k != "run_id" {
                        return Err(invalid(format!("IN is only supported for run_id, not '{k}'")));
                    }
                    string_condition(&mut sql, dialect, column, c.op, &c.value, &format!("'{k}'"))?
                }
                (Entity::Attribute, "version_number" | "version") => {
                    let value = match &c.value {
                        Value::Str(s) => Value::Num(s.parse().map_err(|_| invalid(format!("Invalid version_number '{s}'")))?),
                        other => other.clone(),
                    };
                    number_condition(&mut sql, "v.version", c.op, &value, "version_number")?
                }
                (Entity::Tag, _) => MODEL_VERSION_TAGS.condition(&mut sql, dialect, &c.key, c.op, &c.value)?,
                _ => {
                    return Err(invalid(format!(
                        "Invalid filter for model versions on '{}': supported are name, run_id, source_path, version_number and tags.<key>",
                        c.key
                    )))
                }
            }
        }
        let mut order = order_terms(
            order_by,
            |_, key| match key {
                "name" => Some("v.name"),
                "version_number" | "version" => Some("v.version"),
                "creation_timestamp" | "timestamp" => Some("v.creation_time"),
                "last_updated_timestamp" => Some("v.last_updated_time"),
                "run_id" => Some("v.run_id"),
                "current_stage" => Some("v.current_stage"),
                _ => None,
            },
            "model versions",
        )?;
        order.push("v.name ASC".into());
        order.push("v.version DESC".into());
        sql.push(" ORDER BY ").push(&order.join(", "));
        sql.push(" LIMIT ").bind_int(max_results + 1).push(" OFFSET ").bind_int(offset);
        let rows = sql.query().fetch_all(self.r()).await?;
        let items = rows.iter().map(version_from_row).collect::<Result<Vec<_>>>()?;
        let mut page = paginate(items, offset, max_results);
        self.attach_version_data(&mut page.items).await?;
        Ok(page)
    }

    /// Alias and stage moves of a model, oldest first; `target` narrows to one alias or stage.
    pub async fn registry_history(&self, name: &str, target: Option<&str>) -> Result<Vec<RegistryEvent>> {
        let mut sql = Sql::new(
            "SELECT id, name, kind, target, version_before, version_after, time, user_id FROM registry_history WHERE name = ",
        );
        sql.bind_str(name);
        if let Some(t) = target {
            sql.push(" AND target = ").bind_str(t);
        }
        sql.push(" ORDER BY id");
        let rows = sql.query().fetch_all(self.r()).await?;
        if rows.is_empty() {
            self.get_registered_model(name).await?;
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

async fn upsert_version_tag(tx: &mut Transaction<'_, Any>, name: &str, version: i64, t: &KeyValue) -> Result<()> {
    MODEL_VERSION_TAGS
        .upsert(&[Arg::Text(name.into()), Arg::Int(version)], &t.key, &t.value)
        .query()
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_sources() {
        for ok in ["california-housing-model", "m 1", "My_Model.v2"] {
            assert!(validate_model_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "..", "a..b", "x:y", "a#b", "a?b", "a%2fb", "a\\b", "a\0"] {
            assert!(validate_model_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["prod", "champion", "blue-green_2"] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in ["", "latest", "Latest", "v1", "V12", "a b", "a/b", "prod!"] {
            assert!(validate_alias(bad).is_err(), "{bad:?}");
        }
        for ok in ["models:/m-0123", "runs:/abc/model", "mlflow-artifacts:/1/m/artifacts", "s3://b/k"] {
            assert!(validate_source(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/etc/passwd",
            "file:///etc",
            "http://169.254.169.254/latest",
            "runs:/abc/../../x",
            "mlflow-artifacts:/1/%2e%2e/x",
            "mlflow-artifacts:/1/%252e%252e/x",
            "s3://b/k#frag",
            "s3://b/k?x=1",
            "relative/path",
            "",
        ] {
            assert!(validate_source(bad).is_err(), "{bad:?}");
        }
        assert_eq!(canonical_stage("production").unwrap(), "Production");
        assert!(canonical_stage("prod").is_err());
    }
}
