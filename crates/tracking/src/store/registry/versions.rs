//! Model versions: create (with MLflow's rules for what a source may point at), read,
//! update, delete (numbers are never reused), stages, tags, aliases resolved, search.

use super::{
    after_scheme, alias_version, canonical_stage, exclude_prompts, invalid, logged_model_source, model_exists,
    parse_version, record, touch_model, validate_model_name, validate_source, version_not_found, within,
    write_no_prompt, DELETED, SEARCH_VERSIONS_MAX,
};
use crate::error::{Result, StoreError};
use crate::model::{KeyValue, LoggedModel, ModelVersion, Page};
use crate::search::{parse_filter, Entity, Op};
use crate::store::compile::{compile, parse_orders, Column, Columns, Sort, LOGGED_MODEL_TAGS, MODEL_VERSION_TAGS};
use crate::store::sql::{Arg, Sql};
use crate::store::{now_ms, validate, Paging, Store};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Model versions of one store (`store.model_versions()`).
#[derive(Clone, Copy)]
pub struct ModelVersions<'s> {
    pub(in crate::store) s: &'s Store,
}

pub(super) const MV_COLUMNS: &str =
    "v.name, v.version, v.creation_time, v.last_updated_time, v.description, v.user_id, \
     v.current_stage, v.source, v.run_id, v.run_link, v.status, v.status_message, v.model_id";

pub(super) fn version_from_row(row: &AnyRow) -> Result<ModelVersion> {
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

/// How model-version searches map the filter language: `name`, `run_id`, `source_path`,
/// `version_number` and `tags.<key>`; ordered by name, version, timestamps, run or stage
/// (by default: the last updated first, as MLflow), then by name and newest version.
pub(in crate::store) const SEARCH: Columns = Columns {
    from: "model_versions v",
    filter: |entity, key, op| match (entity, key) {
        (Entity::Attribute, "name" | "run_id" | "source_path" | "source") => {
            if matches!(op, Op::In | Op::NotIn) && key != "run_id" {
                return Err(invalid(format!("IN is only supported for run_id, not '{key}'")));
            }
            let column = match key {
                "name" => "v.name",
                "run_id" => "v.run_id",
                _ => "v.source",
            };
            Ok(Column::Text { column: column.into(), what: format!("'{key}'") })
        }
        (Entity::Attribute, "version_number" | "version") => Ok(Column::Number {
            column: "v.version".into(),
            what: "version_number".into(),
            parse: Some(|s| s.parse().map_err(|_| invalid(format!("Invalid version_number '{s}'")))),
        }),
        (Entity::Tag, _) => Ok(Column::Kv(&MODEL_VERSION_TAGS)),
        _ => Err(invalid(format!(
            "Invalid filter for model versions on '{key}': supported are name, run_id, source_path, version_number \
             and tags.<key>"
        ))),
    },
    order: |_, key| match key {
        "name" => Ok(Sort::Column("v.name")),
        "version_number" | "version" => Ok(Sort::Column("v.version")),
        "creation_timestamp" | "timestamp" => Ok(Sort::Column("v.creation_time")),
        "last_updated_timestamp" => Ok(Sort::Column("v.last_updated_time")),
        "run_id" => Ok(Sort::Column("v.run_id")),
        "current_stage" => Ok(Sort::Column("v.current_stage")),
        _ => Err(invalid(format!("Invalid order_by key '{key}' for model versions"))),
    },
    default_order: &[("v.last_updated_time", "DESC")],
    tie_break: &[("v.name", "ASC"), ("v.version", "DESC")],
};

impl ModelVersions<'_> {
    pub async fn create(&self, new: NewModelVersion) -> Result<ModelVersion> {
        validate_model_name(&new.name)?;
        let local = local_source_path(&new.source);
        if local.is_none() {
            if new.source.starts_with("file:") {
                // A `file:` URI on another host (MLflow answers 500 here; bad input gets a 400).
                return Err(invalid(format!(
                    "{} is not a valid remote uri. For remote access on windows, please consider using a different \
                     scheme such as SMB (e.g. smb://<hostname>/<path>).",
                    new.source
                )));
            }
            validate_source(&new.source)?;
        }
        for t in &new.tags {
            validate::registry_tag(&t.key, &t.value)?;
        }
        let model_id = new.model_id.as_deref().filter(|m| !m.is_empty());
        let logged = match model_id {
            Some(id) => Some(self.s.logged_models().get(id).await?),
            None => None,
        };
        // A version registered from a logged model belongs to the run that produced it.
        let run_id = new
            .run_id
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| logged.as_ref().and_then(|m| m.source_run_id.clone()));
        match &local {
            Some(path) => self.check_local_source(&new.source, path, run_id.as_deref(), logged.as_ref()).await?,
            None => self.check_source_location(&new.source, run_id.as_deref(), logged.as_ref()).await?,
        }
        let mut tx = self.s.w().begin().await?;
        model_exists(&mut tx, &new.name).await?;
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
        touch_model(&mut tx, &new.name).await?;
        if let Some(m) = &logged {
            record_version_on_model(&mut tx, &m.model_id, &new.name, version).await?;
        }
        tx.commit().await?;
        self.get(&new.name, version).await
    }

    /// A local path (or `file:` URI) as a source, MLflow's `_validate_source_run` /
    /// `_validate_source_model`: allowed only inside the local artifact folder of the logged
    /// model named by `model_id`, or else of the run named by `run_id`. The server never reads
    /// such a source itself.
    async fn check_local_source(
        &self,
        source: &str,
        path: &str,
        run_id: Option<&str>,
        logged: Option<&LoggedModel>,
    ) -> Result<()> {
        let (container, id_name, owner) = match (logged, run_id) {
            (Some(m), _) => (Some(m.artifact_location.clone()), "model_id", "run specified by the model_id"),
            (None, Some(r)) => {
                (Some(self.s.runs().info(r).await?.artifact_uri), "run_id", "run specified by the run_id")
            }
            (None, None) => (None, "run_id", "run specified by the run_id"),
        };
        let inside = container
            .as_deref()
            .and_then(local_source_path)
            .and_then(|root| Some((normalize_local(&root)?, normalize_local(path)?)))
            .is_some_and(|(root, path)| path == root || path.starts_with(&format!("{}/", root.trim_end_matches('/'))));
        if inside {
            return Ok(());
        }
        Err(invalid(format!(
            "Invalid model version source: '{source}'. To use a local path as a model version source, the {id_name} \
             request parameter has to be specified and the local path has to be contained within the artifact \
             directory of the {owner}."
        )))
    }

    /// The source must be something the version may point at (MLflow's rules): a logged model
    /// given as `model_id`, an existing registered version, or files inside the run named by
    /// `run_id` (or inside the logged model). Remote stores (`s3://`, ...) are taken as given.
    /// As in MLflow, the run is only looked up when the source lies in the server's artifacts:
    /// otherwise `run_id` is recorded as given, even if no such run exists (docs/mlflow-compat.md).
    async fn check_source_location(
        &self,
        source: &str,
        run_id: Option<&str>,
        logged: Option<&LoggedModel>,
    ) -> Result<()> {
        // MLflow's `_raise_invalid_model_version_source`.
        let foreign = |id_name: &str| {
            invalid(format!(
                "Invalid model version source: '{source}'. The {id_name} request parameter must identify the \
                 resource that contains the source."
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
        // Schemes in any case, as MLflow reads them (`urlparse`); `models:`/`runs:` without the
        // `/` or with an authority (`models://…`) are not URIs MLflow resolves.
        if let Some(rest) = after_scheme(source, "models") {
            let rest = rest.strip_prefix('/').filter(|r| !r.starts_with('/')).ok_or_else(|| foreign("model_id"))?;
            match rest.split_once('@') {
                Some((name, alias)) => self.by_alias(name, alias).await.map(|_| ()),
                None => {
                    let (name, version) =
                        rest.rsplit_once('/').ok_or_else(|| invalid(format!("Invalid model URI '{source}'")))?;
                    self.get(name, parse_version(version)?).await.map(|_| ())
                }
            }?;
            return Ok(());
        }
        if let Some(rest) = after_scheme(source, "runs") {
            let source_run = rest.strip_prefix('/').and_then(|r| r.split('/').next()).unwrap_or("");
            return match run_id {
                Some(r) if !source_run.is_empty() && r == source_run => Ok(()),
                _ => Err(foreign("run_id")),
            };
        }
        if after_scheme(source, "mlflow-artifacts").is_some() {
            let run = match run_id {
                Some(r) => Some(self.s.runs().info(r).await?),
                None => None,
            };
            let in_run = run.is_some_and(|r| within(source, &r.artifact_uri));
            let in_model = logged.is_some_and(|m| within(source, &m.artifact_location));
            return if in_run || in_model {
                Ok(())
            } else {
                Err(foreign(if logged.is_some() { "model_id" } else { "run_id" }))
            };
        }
        Ok(())
    }

    pub async fn get(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let sql = Sql::with_args(
            &format!(
                "SELECT {MV_COLUMNS} FROM model_versions v \
                 WHERE v.name = $1 AND v.version = $2 AND v.current_stage != '{DELETED}'"
            ),
            vec![Arg::Text(name.into()), Arg::Int(version)],
        );
        let mut v = self.s.fetch_one(sql, version_from_row, || version_not_found(name, version)).await?;
        self.attach(std::slice::from_mut(&mut v)).await?;
        Ok(v)
    }

    pub(super) async fn attach(&self, versions: &mut [ModelVersion]) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        let select = |head: &str, tail: &str| Sql::in_list(head, names.iter().copied(), tail);
        let tags = select("SELECT name, version, key, value FROM model_version_tags WHERE name IN ", " ORDER BY key");
        let aliases =
            select("SELECT name, version, alias FROM registered_model_aliases WHERE name IN ", " ORDER BY alias");
        let (tags, aliases) =
            tokio::try_join!(tags.query().fetch_all(self.s.r()), aliases.query().fetch_all(self.s.r()))?;
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

    pub async fn update(&self, name: &str, version: i64, description: Option<&str>) -> Result<ModelVersion> {
        self.get(name, version).await?;
        sqlx::query(
            "UPDATE model_versions SET description = $1, last_updated_time = $2 WHERE name = $3 AND version = $4",
        )
        .bind(description)
        .bind(now_ms())
        .bind(name)
        .bind(version)
        .execute(self.s.w())
        .await?;
        self.get(name, version).await
    }

    /// Marks a version deleted (its number is never reused) and drops its aliases.
    pub async fn delete(&self, name: &str, version: i64, user: Option<&str>) -> Result<()> {
        self.get(name, version).await?;
        let mut tx = self.s.w().begin().await?;
        let aliases: Vec<String> =
            sqlx::query_scalar("SELECT alias FROM registered_model_aliases WHERE name = $1 AND version = $2")
                .bind(name)
                .bind(version)
                .fetch_all(&mut *tx)
                .await?;
        for alias in &aliases {
            record(&mut tx, name, "alias", alias, Some(version), None, user).await?;
        }
        for table in ["registered_model_aliases", "model_version_tags"] {
            let delete = format!("DELETE FROM {table} WHERE name = $1 AND version = $2");
            sqlx::query(&delete).bind(name).bind(version).execute(&mut *tx).await?;
        }
        sqlx::query(&format!(
            "UPDATE model_versions SET current_stage = '{DELETED}', last_updated_time = $1 WHERE name = $2 AND version = $3"
        ))
        .bind(now_ms())
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        touch_model(&mut tx, name).await?;
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
        self.get(name, version).await?;
        let mut tx = self.s.w().begin().await?;
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
        record(&mut tx, name, "stage", stage, previous, Some(version), user).await?;
        touch_model(&mut tx, name).await?;
        tx.commit().await?;
        self.get(name, version).await
    }

    pub async fn set_tag(&self, name: &str, version: i64, tag: &KeyValue) -> Result<()> {
        validate::registry_tag(&tag.key, &tag.value)?;
        self.get(name, version).await?;
        let mut tx = self.s.w().begin().await?;
        upsert_version_tag(&mut tx, name, version, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        self.get(name, version).await?;
        let owner = [Arg::Text(name.into()), Arg::Int(version)];
        MODEL_VERSION_TAGS.delete(&owner, key).query().execute(self.s.w()).await?;
        Ok(())
    }

    /// The version an alias points at. A missing alias is INVALID_PARAMETER_VALUE, as in MLflow.
    pub async fn by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        if alias.eq_ignore_ascii_case("latest") {
            let newest: Option<i64> = sqlx::query_scalar(&format!(
                "SELECT MAX(version) FROM model_versions WHERE name = $1 AND current_stage != '{DELETED}'"
            ))
            .bind(name)
            .fetch_one(self.s.r())
            .await?;
            return match newest {
                Some(v) => self.get(name, v).await,
                None => Err(StoreError::NotFound(format!("Latest version not found for model {name}."))),
            };
        }
        let version = alias_version(self.s.r(), name, alias).await?;
        match version {
            Some(v) => self.get(name, v).await,
            None => {
                self.s.registered_models().get(name).await?;
                Err(invalid(format!("Registered model alias {alias} not found.")))
            }
        }
    }

    /// Where the client downloads a version's files from.
    pub async fn download_uri(&self, name: &str, version: i64) -> Result<String> {
        let v = self.get(name, version).await?;
        if let Some(model_id) = &v.model_id {
            return Ok(self.s.logged_models().get(model_id).await?.artifact_location);
        }
        if let Some(rest) = v.source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let info = self.s.runs().info(run_id).await?;
            return Ok(if path.is_empty() { info.artifact_uri } else { format!("{}/{path}", info.artifact_uri) });
        }
        Ok(v.source)
    }

    // Registered models and their versions are parallel resources of MLflow's registry: this
    // search's signature, the row reader, `attach` and a stage move have the form of their
    // counterparts in models.rs over other tables and columns; the steps themselves
    // (`compile`, `fetch_page`, `Sql::in_list`, `record`, `touch_model`) are shared.
    pub async fn search(
        &self,
        filter: &str,
        order_by: &[String],
        max_results: i64,
        page_token: Option<&str>,
    ) -> Result<Page<ModelVersion>> {
        let paging = Paging::new(max_results, SEARCH_VERSIONS_MAX, page_token)?;
        let mut filter = parse_filter(filter)?;
        let no_prompts = exclude_prompts(&mut filter);
        let compiled = compile(self.s.dialect(), &SEARCH, filter, parse_orders(order_by), paging, |w| {
            w.and().push(&format!("v.current_stage != '{DELETED}'"));
            if no_prompts {
                write_no_prompt(w.and(), "model_version_tags", "v.name");
            }
        })?;
        let mut page = self.s.fetch_page(MV_COLUMNS, compiled, version_from_row).await?;
        self.attach(&mut page.items).await?;
        Ok(page)
    }
}

async fn upsert_version_tag(tx: &mut Transaction<'_, Any>, name: &str, version: i64, t: &KeyValue) -> Result<()> {
    MODEL_VERSION_TAGS
        .upsert(&[Arg::Text(name.into()), Arg::Int(version)], &t.key, &t.value)
        .query()
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `is_local_uri`: the path a source names when it is a local path (no scheme) or a `file:`
/// URI on this host (percent-decoded); `None` for any other URI.
fn local_source_path(source: &str) -> Option<String> {
    if let Some(rest) = source.strip_prefix("file:") {
        let rest = match rest.strip_prefix("//") {
            Some(hosted) => ["localhost", "127.0.0.1", "."]
                .iter()
                .find_map(|h| hosted.strip_prefix(h).filter(|r| r.starts_with('/')))
                .unwrap_or(hosted),
            None => rest,
        };
        let decoded = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?;
        return decoded.starts_with('/').then(|| decoded.into_owned());
    }
    let has_scheme = source.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    (!has_scheme && !source.is_empty()).then(|| source.to_string())
}

/// A local path made absolute (against the working directory) with `.` and `..` resolved
/// lexically; `None` for NUL or a `..` above the root.
fn normalize_local(path: &str) -> Option<String> {
    if path.contains('\0') {
        return None;
    }
    let absolute = match path.starts_with('/') {
        true => path.to_string(),
        false => format!("{}/{path}", std::env::current_dir().ok()?.to_string_lossy()),
    };
    let mut parts: Vec<&str> = vec![];
    for seg in absolute.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            seg => parts.push(seg),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Adds `{"name", "version"}` to the logged model's `mlflow.modelVersions` tag, written as
/// Python's `json.dumps` writes it (MLflow's `set_model_versions_tags`).
async fn record_version_on_model(
    tx: &mut Transaction<'_, Any>,
    model_id: &str,
    name: &str,
    version: i64,
) -> Result<()> {
    const KEY: &str = "mlflow.modelVersions";
    let existing: Option<String> =
        sqlx::query_scalar("SELECT value FROM logged_model_tags WHERE model_id = $1 AND key = $2")
            .bind(model_id)
            .bind(KEY)
            .fetch_optional(&mut **tx)
            .await?;
    let mut entries: Vec<(String, i64)> = existing
        .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(&v).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| Some((e.get("name")?.as_str()?.to_string(), e.get("version")?.as_i64()?)))
        .collect();
    if !entries.iter().any(|(n, v)| n == name && *v == version) {
        entries.push((name.to_string(), version));
    }
    let items: Vec<String> =
        entries.iter().map(|(n, v)| format!("{{\"name\": {}, \"version\": {v}}}", pyjson::dumps_str(n))).collect();
    let value = format!("[{}]", items.join(", "));
    LOGGED_MODEL_TAGS.upsert(&[Arg::Text(model_id.to_string())], KEY, &value).query().execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::logged_models::NewLoggedModel;

    /// A local source is allowed only inside the local artifact folder of the run named by
    /// `run_id` (or of the logged model named by `model_id`), `.`/`..` resolved first; a
    /// version from a logged model is listed in its `mlflow.modelVersions` tag.
    #[tokio::test]
    async fn local_sources_as_mlflow() {
        let s = Store::open("sqlite://", "file:///srv/artifacts").await.unwrap();
        let exp = s.experiments().create("e", None, &[]).await.unwrap();
        let run = s.runs().create(&exp, "u", Some("r"), None, &[]).await.unwrap().info;
        s.registered_models().create("m", None, &[]).await.unwrap();
        let version = |source: String, run_id: Option<&str>, model_id: Option<&str>| {
            let new = NewModelVersion {
                name: "m".into(),
                source,
                run_id: run_id.map(str::to_string),
                model_id: model_id.map(str::to_string),
                ..Default::default()
            };
            let s = &s;
            async move { s.model_versions().create(new).await }
        };
        let uri = run.artifact_uri.clone();
        let path = uri.strip_prefix("file://").unwrap().to_string();
        for ok in [uri.clone(), format!("{uri}/model"), format!("{uri}/."), format!("{uri}/model/.."), path.clone()] {
            version(ok.clone(), Some(&run.run_id), None).await.unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let refused = [
            (uri.clone(), None),                      // no run_id
            (path.clone(), None),                     // no run_id
            (format!("{uri}/.."), Some(&run.run_id)), // out of the run's folder
            ("/etc".into(), Some(&run.run_id)),
            ("file:///srv/artifacts".into(), Some(&run.run_id)),
        ];
        for (bad, run_id) in refused {
            let err = version(bad.clone(), run_id.map(String::as_str), None).await.unwrap_err();
            assert!(err.to_string().contains("To use a local path as a model version source"), "{bad}: {err}");
        }
        let remote = version("file://10.0.0.1/x".into(), Some(&run.run_id), None).await.unwrap_err();
        assert!(remote.to_string().contains("is not a valid remote uri"), "{remote}");

        let model = NewLoggedModel { experiment_id: exp.clone(), ..Default::default() };
        let model = s.logged_models().create(model).await.unwrap();
        for _ in 0..2 {
            version(model.artifact_location.clone(), None, Some(&model.model_id)).await.unwrap();
        }
        let tags = s.logged_models().get(&model.model_id).await.unwrap().tags;
        let listed = tags.iter().find(|t| t.key == "mlflow.modelVersions").map(|t| t.value.clone());
        assert_eq!(listed.as_deref(), Some(r#"[{"name": "m", "version": 6}, {"name": "m", "version": 7}]"#));
    }
}
