//! The tracking store: one implementation over `sqlx::Any` serving SQLite and PostgreSQL.
//! Dialect differences (LIKE/ILIKE, migrations, pool shape) are isolated in `db.rs` and
//! [`Sql`]; each resource lives in its own module.

mod experiments;
mod group_commit;
mod logged_models;
mod registry;
mod run_cache;
pub use logged_models::{NewLoggedModel, LOGGED_MODEL_STATUSES};
pub use registry::{canonical_stage, parse_version, NewModelVersion, STAGES};
mod runs;
pub use runs::{RunSearch, RunUpdate, RUN_NAME_TAG};
pub(crate) mod sql;
pub mod validate;

use crate::db::{Dialect, Pools};
use crate::error::{Result, StoreError};
use base64::Engine as _;
use sqlx::AnyPool;

/// The tracking store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    pools: Pools,
    metrics: group_commit::MetricWriter,
    /// Hydrated runs by `(run_uuid, data_version)`, for searches.
    runs: run_cache::RunCache,
    /// Root under which experiments get their default artifact location,
    /// e.g. `mlflow-artifacts:` (proxied) or `s3://bucket/prefix`.
    artifact_root: String,
}

/// The default experiment, which always exists (MLflow's "Default", id 0).
pub const DEFAULT_EXPERIMENT_ID: &str = "0";

/// The largest `max_results` MLflow accepts for searches.
pub const SEARCH_MAX_RESULTS: i64 = 50_000;

impl Store {
    /// Connects to `backend_uri`, applies migrations and makes sure the default experiment exists.
    pub async fn open(backend_uri: &str, artifact_root: &str) -> Result<Store> {
        let pools = Pools::connect(backend_uri).await?;
        let metrics = group_commit::MetricWriter::spawn(pools.write.clone(), pools.dialect);
        let store = Store {
            pools,
            metrics,
            runs: run_cache::RunCache::new(),
            artifact_root: artifact_root.trim_end_matches('/').to_string(),
        };
        store.ensure_default_experiment().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.pools.dialect
    }

    fn w(&self) -> &AnyPool {
        &self.pools.write
    }

    fn r(&self) -> &AnyPool {
        &self.pools.read
    }

    /// Where an experiment's artifacts go when the client gives no location.
    fn default_artifact_location(&self, experiment_id: i64) -> String {
        format!("{}/{experiment_id}", self.artifact_root)
    }

    /// Answers whether the database is reachable (for `/health`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.r()).await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Parses an experiment id (a decimal integer in MLflow's API).
pub(crate) fn parse_experiment_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| {
        StoreError::InvalidParameter(format!("Invalid experiment ID: '{id}'. Experiment IDs are integers."))
    })
}

/// Page tokens are base64 JSON `{"offset": N}`, as the stock server makes them. Clients
/// treat them as opaque, so only our own tokens need to parse.
pub(crate) fn decode_page_token(token: Option<&str>) -> Result<i64> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bad = || StoreError::InvalidParameter(format!("Invalid page token '{token}'"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    value.get("offset").and_then(|o| o.as_i64()).filter(|o| *o >= 0).ok_or_else(bad)
}

pub(crate) fn encode_page_token(offset: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Checks `max_results` against MLflow's bounds.
pub(crate) fn check_max_results(max_results: i64, limit: i64) -> Result<i64> {
    if max_results <= 0 || max_results > limit {
        return Err(StoreError::InvalidParameter(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer at most {limit}"
        )));
    }
    Ok(max_results)
}

/// Fetches one more than a page so the next token is only offered when more rows exist.
pub(crate) fn paginate<T>(mut items: Vec<T>, offset: i64, max_results: i64) -> crate::model::Page<T> {
    let next_page_token = if items.len() as i64 > max_results {
        items.truncate(max_results as usize);
        Some(encode_page_token(offset + max_results))
    } else {
        None
    };
    crate::model::Page { items, next_page_token }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip() {
        for offset in [0, 1, 2500, 49_999] {
            assert_eq!(decode_page_token(Some(&encode_page_token(offset))).unwrap(), offset);
        }
        assert_eq!(decode_page_token(None).unwrap(), 0);
        assert_eq!(decode_page_token(Some("")).unwrap(), 0);
        for bad in ["x", "eyJvZmZzZXQiOiAtMX0=", "e30="] {
            assert!(decode_page_token(Some(bad)).is_err(), "{bad}");
        }
    }
}
