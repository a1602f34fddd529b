//! The tracking store: one implementation over `sqlx::Any` serving SQLite and PostgreSQL.
//! Dialect differences (LIKE/ILIKE, migrations, pool shape) are isolated in `db.rs` and
//! `sql::Sql`. [`Store`] holds the pools and caches; each resource is a narrow view of it with
//! its own module: [`Experiments`], [`Runs`], [`Metrics`], [`Datasets`], [`LoggedModels`],
//! [`RegisteredModels`] and [`ModelVersions`] (`store.runs().get(id)`). Every search
//! compiles through one skeleton, `compile`, with a column table per entity.

mod compile;
mod datasets;
mod experiments;
mod group_commit;
mod hydrate;
mod logged_models;
mod metrics;
#[cfg(test)]
mod props;
mod registry;
mod run_cache;
mod runs;
mod sql;
pub mod validate;

pub use compile::{compile_search, SearchKind};
pub use datasets::Datasets;
pub use experiments::Experiments;
pub use logged_models::{LoggedModelOrder, LoggedModelSearch, LoggedModels, NewLoggedModel, LOGGED_MODEL_STATUSES};
pub use metrics::Metrics;
pub use registry::{
    after_scheme, canonical_stage, parse_version, ModelVersions, NewModelVersion, RegisteredModels, STAGES,
};
pub use runs::{RunSearch, RunUpdate, Runs, RUN_NAME_TAG};

use crate::db::{Dialect, Pools};
use crate::error::{Result, StoreError};
use crate::model::Page;
use base64::Engine as _;
use sql::Sql;
use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// The tracking store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    pools: Pools,
    metric_writer: group_commit::MetricWriter,
    /// Hydrated runs by `(run_uuid, data_version)`, for searches.
    run_cache: run_cache::RunCache,
    /// Group-commit and run-cache figures (docs/metrics.md).
    stats: crate::stats::StoreStats,
    /// Root under which experiments get their default artifact location,
    /// e.g. `mlflow-artifacts:` (proxied) or `s3://bucket/prefix`.
    artifact_root: String,
    /// MLflow's `MLFLOW_TRUNCATE_LONG_VALUES` (off by default here, on in MLflow): over-long run
    /// param and tag values are cut to their limit instead of refused (see `validate::truncated`).
    truncate_long_values: bool,
}

/// The default experiment, which always exists (MLflow's "Default", id 0).
pub const DEFAULT_EXPERIMENT_ID: &str = "0";

/// The largest `max_results` MLflow accepts for searches.
pub const SEARCH_MAX_RESULTS: i64 = 50_000;

impl Store {
    /// Connects to `backend_uri`, applies migrations and makes sure the default experiment exists.
    pub async fn open(backend_uri: &str, artifact_root: &str) -> Result<Store> {
        let pools = Pools::connect(backend_uri).await?;
        let stats = crate::stats::StoreStats::default();
        let metric_writer = group_commit::MetricWriter::spawn(pools.write.clone(), pools.dialect, stats.clone());
        let store = Store {
            pools,
            metric_writer,
            run_cache: run_cache::RunCache::new(stats.clone()),
            stats,
            artifact_root: artifact_root.trim_end_matches('/').to_string(),
            truncate_long_values: false,
        };
        store.experiments().ensure_default().await?;
        Ok(store)
    }

    /// The root new experiments get their artifact location under (`--default-artifact-root`).
    pub fn artifact_root(&self) -> &str {
        &self.artifact_root
    }

    /// MLflow's `MLFLOW_TRUNCATE_LONG_VALUES`, a setting of its server: on, a run's param value
    /// over 6000 characters and tag value over 8000 are cut to that length (`log-parameter`,
    /// `set-tag`, `log-batch`); off, they are refused with MLflow's message and nothing of the
    /// call is stored. Off by default (MLflow's default is on): bad input gets an error and loses
    /// nothing silently. The binary reads the variable; this library only takes the setting.
    pub fn set_truncate_long_values(&mut self, on: bool) {
        self.truncate_long_values = on;
    }

    pub fn dialect(&self) -> Dialect {
        self.pools.dialect
    }

    /// Experiments: create, read, search, rename, trash, tags.
    pub fn experiments(&self) -> Experiments<'_> {
        Experiments { s: self }
    }

    /// Runs: lifecycle, params, tags, batches, reads and search.
    pub fn runs(&self) -> Runs<'_> {
        Runs { s: self }
    }

    /// Metric logging (group-committed) and metric history.
    pub fn metrics(&self) -> Metrics<'_> {
        Metrics { s: self }
    }

    /// The datasets (and logged models) a run used.
    pub fn datasets(&self) -> Datasets<'_> {
        Datasets { s: self }
    }

    /// MLflow 3 logged models and the runs' outputs.
    pub fn logged_models(&self) -> LoggedModels<'_> {
        LoggedModels { s: self }
    }

    /// The registry's models: tags, aliases, search, and the history of alias and stage moves.
    pub fn registered_models(&self) -> RegisteredModels<'_> {
        RegisteredModels { s: self }
    }

    /// The registry's model versions: stages, tags, aliases resolved, search.
    pub fn model_versions(&self) -> ModelVersions<'_> {
        ModelVersions { s: self }
    }

    /// Group-commit and run-cache figures.
    pub fn stats(&self) -> &crate::stats::StoreStats {
        &self.stats
    }

    /// The connection pools now (SQLite: `write` and `read`; PostgreSQL: one, as `read`), and
    /// the bytes the run cache holds.
    pub fn pool_stats(&self) -> Vec<crate::stats::PoolStats> {
        let one = |name: &'static str, pool: &AnyPool| {
            let size = pool.size();
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
            crate::stats::PoolStats { pool: name, idle, in_use: size - idle, max: pool.options().get_max_connections() }
        };
        match self.pools.dialect {
            Dialect::Sqlite => vec![one("write", &self.pools.write), one("read", &self.pools.read)],
            Dialect::Postgres => vec![one("read", &self.pools.read)],
        }
    }

    /// Estimated bytes of the runs the run cache holds.
    pub fn run_cache_bytes(&self) -> u64 {
        self.run_cache.bytes()
    }

    fn w(&self) -> &AnyPool {
        &self.pools.write
    }

    fn r(&self) -> &AnyPool {
        &self.pools.read
    }

    /// Answers whether the database is reachable (for `/health`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.r()).await?;
        Ok(())
    }

    /// The one row `sql` selects, read with `row`; `missing()` when there is none.
    async fn fetch_one<T>(
        &self,
        sql: Sql,
        row: fn(&AnyRow) -> Result<T>,
        missing: impl FnOnce() -> StoreError,
    ) -> Result<T> {
        row(&sql.query().fetch_optional(self.r()).await?.ok_or_else(missing)?)
    }

    /// Runs a compiled search page (see `compile`) selecting `columns` and reads each row
    /// with `row`.
    async fn fetch_page<T>(
        &self,
        columns: &str,
        mut compiled: compile::Compiled,
        row: fn(&AnyRow) -> Result<T>,
    ) -> Result<Page<T>> {
        compiled.sql.prepend(&format!("SELECT {columns}"));
        let rows = compiled.sql.query().fetch_all(self.r()).await?;
        let items = rows.iter().map(row).collect::<Result<Vec<_>>>()?;
        Ok(compiled.paging.page(items))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Parses an experiment id (a decimal integer in MLflow's API), with `_parse_experiment_id`'s message.
pub(crate) fn parse_experiment_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| {
        StoreError::InvalidParameter(format!("Invalid experiment ID '{id}'. Experiment ID must be a valid integer."))
    })
}

/// Where a page starts and how long it is, checked against MLflow's bounds.
#[derive(Debug, Clone, Copy)]
struct Paging {
    max_results: i64,
    offset: i64,
}

impl Paging {
    /// Checks `max_results` against `1..=limit`, then decodes the page token.
    fn new(max_results: i64, limit: i64, page_token: Option<&str>) -> Result<Paging> {
        let max_results = check_max_results(max_results, limit)?;
        Ok(Paging { max_results, offset: decode_page_token(page_token)? })
    }

    /// The first `max_results` rows.
    fn first(max_results: i64) -> Paging {
        Paging { max_results, offset: 0 }
    }

    /// The page out of one more row than asked for: the next token is only offered when
    /// more rows exist.
    fn page<T>(self, mut items: Vec<T>) -> Page<T> {
        let next_page_token = if items.len() as i64 > self.max_results {
            items.truncate(self.max_results as usize);
            Some(encode_page_token(self.offset + self.max_results))
        } else {
            None
        };
        Page { items, next_page_token }
    }
}

/// Page tokens are base64 JSON `{"offset": N}`, as the stock server makes them. Clients
/// treat them as opaque, so only our own tokens need to parse.
fn decode_page_token(token: Option<&str>) -> Result<i64> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bad = || StoreError::InvalidParameter(format!("Invalid page token '{token}'"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    value.get("offset").and_then(|o| o.as_i64()).filter(|o| *o >= 0).ok_or_else(bad)
}

fn encode_page_token(offset: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Checks `max_results` against MLflow's bounds.
fn check_max_results(max_results: i64, limit: i64) -> Result<i64> {
    if max_results <= 0 || max_results > limit {
        return Err(StoreError::InvalidParameter(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer at most {limit}"
        )));
    }
    Ok(max_results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyValue;

    /// Each key/value table deletes one key of one owner (`KvTable::delete`): that key goes,
    /// the owner's other key stays; a key that is not there is NOT_FOUND where MLflow says so.
    #[tokio::test]
    async fn tags_delete_one_key_of_one_owner() {
        let s = Store::open("sqlite://", "mlflow-artifacts:").await.unwrap();
        let kv = |k: &str| KeyValue { key: k.into(), value: "v".into() };
        let keys = |tags: &[KeyValue]| tags.iter().map(|t| t.key.clone()).collect::<Vec<_>>();
        let exp = s.experiments().create("e", None, &[kv("a"), kv("b")]).await.unwrap();
        s.experiments().delete_tag(&exp, "a").await.unwrap();
        assert_eq!(keys(&s.experiments().get(&exp).await.unwrap().tags), ["b"]);
        assert!(matches!(s.experiments().delete_tag(&exp, "a").await, Err(StoreError::NotFound(_))));

        let run = s.runs().create(&exp, "u", Some("r"), None, &[kv("a"), kv("b")]).await.unwrap().info.run_id;
        s.runs().delete_tag(&run, "a").await.unwrap();
        assert!(keys(&s.runs().get(&run).await.unwrap().tags).contains(&"b".to_string()));
        assert!(!keys(&s.runs().get(&run).await.unwrap().tags).contains(&"a".to_string()));
        assert!(matches!(s.runs().delete_tag(&run, "a").await, Err(StoreError::NotFound(_))));

        let new = NewLoggedModel { experiment_id: exp.clone(), tags: vec![kv("a"), kv("b")], ..Default::default() };
        let model = s.logged_models().create(new).await.unwrap().model_id;
        s.logged_models().delete_tag(&model, "a").await.unwrap();
        assert_eq!(keys(&s.logged_models().get(&model).await.unwrap().tags), ["b"]);
        assert!(matches!(s.logged_models().delete_tag(&model, "a").await, Err(StoreError::NotFound(_))));

        s.registered_models().create("m", None, &[kv("a"), kv("b")]).await.unwrap();
        s.registered_models().delete_tag("m", "a").await.unwrap();
        assert_eq!(keys(&s.registered_models().get("m").await.unwrap().tags), ["b"]);
        let version = NewModelVersion {
            name: "m".into(),
            source: "s3://b/k".into(),
            tags: vec![kv("a"), kv("b")],
            ..Default::default()
        };
        let v = s.model_versions().create(version).await.unwrap().version;
        s.model_versions().delete_tag("m", v, "a").await.unwrap();
        assert_eq!(keys(&s.model_versions().get("m", v).await.unwrap().tags), ["b"]);
    }

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
