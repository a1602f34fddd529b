//! The model registry: registered models ([`RegisteredModels`]: tags, aliases, search, the
//! history of alias and stage moves) and their versions ([`ModelVersions`]: stages, tags,
//! search), with MLflow's rules for names, aliases, stages and sources.

mod models;
mod versions;

pub use models::RegisteredModels;
pub(in crate::store) use models::SEARCH as MODELS_SEARCH;
pub(in crate::store) use versions::SEARCH as VERSIONS_SEARCH;
pub use versions::{ModelVersions, NewModelVersion};

use super::now_ms;
use super::sql::Sql;
use crate::error::{Result, StoreError};
use crate::search::{Comparison, Entity, Filter, Op, Value};
use sqlx::{Any, Transaction};

/// MLflow's stages, in their canonical spelling.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];
const DELETED: &str = "Deleted_Internal";
const SEARCH_MODELS_MAX: i64 = 1000;
const SEARCH_VERSIONS_MAX: i64 = 200_000;

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidParameter(msg)
}

/// The tag that makes a registered model (and its versions) a prompt.
const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// MLflow's prompt rule for registry searches (`_is_querying_prompt` and
/// `_update_query_to_exclude_prompts` in `model_registry/sqlalchemy_store.py`): a search asks
/// for prompts when its first clause on the prompt tag is `= 'true'` or `!= 'false'` (any
/// case); that clause is then an ordinary tag condition. Any other search drops its clauses on
/// the prompt tag and leaves out every model with the tag set to `'true'` (the client adds
/// `tag.<prompt tag> != 'true'` to every model search). Returns whether prompts
/// are to be left out.
fn exclude_prompts(filter: &mut Filter) -> bool {
    let is_prompt_tag = |c: &Comparison| c.entity == Entity::Tag && c.key == IS_PROMPT_TAG;
    let querying = filter.clauses.iter().find(|c| is_prompt_tag(c)).is_some_and(|c| match (&c.op, &c.value) {
        (Op::Eq, Value::Str(v)) => v.to_lowercase() == "true",
        (Op::Ne, Value::Str(v)) => v.to_lowercase() == "false",
        _ => false,
    });
    if !querying {
        // MLflow refuses a comparator tags do not take before it drops the clause.
        filter.clauses.retain(|c| !is_prompt_tag(c) || !matches!(c.op, Op::Eq | Op::Ne | Op::Like | Op::ILike));
    }
    !querying
}

/// Python's `repr` of a string, as MLflow's messages print lists of them.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `NOT EXISTS` a `'true'` prompt tag among `table`'s rows of the searched model's name
/// (`name` is its column): for versions, any version of the model carrying it counts.
fn write_no_prompt(sql: &mut Sql, table: &str, name: &str) {
    sql.push(&format!("NOT EXISTS (SELECT 1 FROM {table} x WHERE x.name = {name} AND x.key = "))
        .bind_str(IS_PROMPT_TAG)
        .push(" AND x.value = ")
        .bind_str("true")
        .push(")");
}

/// Registered model names become parts of paths and URIs (`models:/<name>/<version>`), so
/// separators, traversal and URI syntax are refused.
fn validate_model_name(name: &str) -> Result<()> {
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
fn validate_alias(alias: &str) -> Result<()> {
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
fn validate_source(source: &str) -> Result<()> {
    let bad = |why: &str| invalid(format!("Invalid model version source '{source}': {why}"));
    if source.is_empty() {
        return Err(invalid("Missing value for required parameter 'source'.".into()));
    }
    let mut decoded = source.to_string();
    for _ in 0..3 {
        decoded = percent_encoding::percent_decode_str(&decoded).decode_utf8_lossy().into_owned();
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

/// What follows `<scheme>:` in `source` when its scheme is `scheme`, in any case: MLflow reads a
/// URI's scheme through `urllib.parse.urlparse`, which lowercases it, so `RUNS:/…` is a
/// `runs:/` source and is checked as one. The one scheme test of the registry's source rules,
/// the server's access rules and its artifact locations.
pub fn after_scheme<'a>(source: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = source.split_once(':')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// `models:/m-<id>`: the logged model a source names, if it names one.
fn logged_model_source(source: &str) -> Option<&str> {
    after_scheme(source, "models")?
        .strip_prefix('/')
        .filter(|id| id.starts_with("m-") && !id.contains('/') && !id.contains('@'))
}

/// Whether `source` lies inside the artifact folder `root` (schemes compared in any case, as
/// MLflow's `_is_uri_within_root`).
fn within(source: &str, root: &str) -> bool {
    let lower_scheme = |u: &str| match u.split_once(':') {
        Some((scheme, rest)) => format!("{}:{rest}", scheme.to_ascii_lowercase()),
        None => u.to_string(),
    };
    let (source, root) = (lower_scheme(source), lower_scheme(root));
    let root = root.trim_end_matches('/');
    source == root || source.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// Appends one alias or stage move to `registry_history`.
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

async fn model_exists(tx: &mut Transaction<'_, Any>, name: &str) -> Result<()> {
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

/// The version `alias` of model `name` points at, if any.
async fn alias_version<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    name: &str,
    alias: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2")
        .bind(name)
        .bind(alias)
        .fetch_optional(db)
        .await?)
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
        assert_eq!(logged_model_source("Models:/m-1"), Some("m-1"));
        assert_eq!(logged_model_source("models:m-1"), None);
        assert!(within("MLFLOW-ARTIFACTS:/1/r/artifacts/m", "mlflow-artifacts:/1/r/artifacts"));
        assert!(!within("mlflow-artifacts:/1/r/artifactsx", "mlflow-artifacts:/1/r/artifacts"));
        assert_eq!(canonical_stage("production").unwrap(), "Production");
        assert!(canonical_stage("prod").is_err());
    }
}
