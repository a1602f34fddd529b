//! Connecting to the backing database: URI parsing (MLflow's `--backend-store-uri` forms),
//! per-dialect pools and migrations. Everything above this module speaks one SQL dialect
//! subset through `sqlx::Any`; the few differences are asked of [`Dialect`].
//!
//! It also tells what a database holds ([`inspect`]: empty, factory's schema, or MLflow's
//! alembic schema) and adopts an MLflow database in place ([`adopt`], `factory db upgrade`):
//! additive changes only (`migrations/adopt/<dialect>/up.sql`), undone exactly by [`release`]
//! (`down.sql`, `factory db downgrade`), so `mlflow server` keeps reading and writing it.

use crate::error::{Result, StoreError};
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// The SQL dialect of the connected database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// MLflow's alembic head that [`adopt`] accepts: MLflow 3.17 (the release whose API and schema
/// factory follows). Older MLflow databases are first brought there by MLflow's own
/// `mlflow db upgrade`, which factory does not reimplement.
pub const MLFLOW_REVISION: &str = "dc11669786a5";

/// Alembic heads of MLflow releases, for messages (the newest revision of each release).
const MLFLOW_RELEASES: &[(&str, &str)] = &[("dc11669786a5", "3.17"), ("0584bdc529eb", "2.22")];

/// What a database holds before anything is migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// No tracking tables yet: factory creates its schema.
    Empty,
    /// factory's own schema (its migrations table is there).
    Factory,
    /// MLflow's schema at alembic `revision`; `adopted` once `factory db upgrade` added
    /// factory's objects to it.
    Mlflow { revision: String, adopted: bool },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Empty => write!(f, "an empty database"),
            Origin::Factory => write!(f, "factory's schema"),
            Origin::Mlflow { revision, adopted } => {
                write!(f, "MLflow's schema at alembic revision {revision}")?;
                match MLFLOW_RELEASES.iter().find(|(r, _)| r == revision) {
                    Some((_, release)) => write!(f, " (MLflow {release})")?,
                    None => write!(f, " (an MLflow release factory does not know)")?,
                }
                if *adopted {
                    write!(f, ", adopted by factory db upgrade")?;
                }
                Ok(())
            }
        }
    }
}

/// Pools for one database: SQLite has one writer connection (it serialises writers anyway,
/// and one connection avoids `SQLITE_BUSY` storms) and several readers (WAL lets them run
/// beside the writer). PostgreSQL uses one pool for both.
pub(crate) struct Pools {
    pub dialect: Dialect,
    pub write: AnyPool,
    pub read: AnyPool,
}

/// Turns an MLflow backend-store URI into a sqlx URL and its dialect.
///
/// `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute (SQLAlchemy's convention);
/// `postgresql+psycopg2://` and `postgres://` are accepted.
pub fn parse_backend_uri(uri: &str) -> Result<(Dialect, String)> {
    if let Some(rest) = uri.strip_prefix("sqlite://") {
        let path = rest.strip_prefix('/').unwrap_or(rest);
        if path.is_empty() || path == ":memory:" {
            return Ok((Dialect::Sqlite, "sqlite::memory:".to_string()));
        }
        let path = path.split('?').next().unwrap_or(path);
        return Ok((Dialect::Sqlite, format!("sqlite://{path}?mode=rwc")));
    }
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        StoreError::InvalidParameter(format!(
            "backend store URI '{uri}' has no scheme; expected sqlite:///path or postgresql://..."
        ))
    })?;
    let base = scheme.split('+').next().unwrap_or(scheme);
    match base {
        "postgresql" | "postgres" => Ok((Dialect::Postgres, format!("postgres://{rest}"))),
        _ => Err(StoreError::InvalidParameter(format!(
            "unsupported backend store URI scheme '{scheme}': use sqlite:///path or postgresql://user@host:port/db"
        ))),
    }
}

impl Pools {
    pub async fn connect(uri: &str) -> Result<Pools> {
        install_default_drivers();
        let (dialect, url) = parse_backend_uri(uri)?;
        match dialect {
            Dialect::Sqlite => {
                let memory = url == "sqlite::memory:";
                let opts = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .min_connections(1)
                        .acquire_timeout(Duration::from_secs(30))
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                // WAL + synchronous=NORMAL: a committed write survives a crash of
                                // the process (it is in the WAL file) without an fsync per commit.
                                conn.execute(
                                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                                     PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;",
                                )
                                .await?;
                                Ok(())
                            })
                        })
                };
                let write = opts(1).connect(&url).await?;
                // An in-memory database exists once per connection: share the writer.
                let read = if memory { write.clone() } else { opts(4).connect(&url).await? };
                check_servable(uri, &origin(&write, dialect).await?)?;
                sqlx::migrate!("./migrations/sqlite").run(&write).await?;
                Ok(Pools { dialect, write, read })
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(&url)
                    .await?;
                check_servable(uri, &origin(&pool, dialect).await?)?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Ok(Pools { dialect, write: pool.clone(), read: pool })
            }
        }
    }
}

/// Refuses, with what to do instead, a database this store cannot serve: MLflow's schema.
fn check_servable(uri: &str, origin: &Origin) -> Result<()> {
    match origin {
        Origin::Empty | Origin::Factory => Ok(()),
        Origin::Mlflow { adopted: false, .. } => Err(StoreError::Schema(format!(
            "{uri} holds {origin}; factory server does not change it on its own: see what \
             `factory db upgrade --backend-store-uri {uri}` would do with `factory db status`"
        ))),
        Origin::Mlflow { adopted: true, .. } => Err(StoreError::Schema(format!(
            "{uri} holds {origin}; this build of factory can adopt such a database and give it back \
             (factory db downgrade) but its store does not yet read and write MLflow's tables"
        ))),
    }
}

/// The tables of the connected database's default schema.
async fn tables(pool: &AnyPool, dialect: Dialect) -> Result<Vec<String>> {
    let sql = match dialect {
        Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Dialect::Postgres => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
        }
    };
    Ok(sqlx::query_scalar::<_, String>(sql).fetch_all(pool).await?)
}

async fn origin(pool: &AnyPool, dialect: Dialect) -> Result<Origin> {
    let tables = tables(pool, dialect).await?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    if has("_sqlx_migrations") {
        return Ok(Origin::Factory);
    }
    if has("alembic_version") {
        let revision: String = sqlx::query_scalar("SELECT version_num FROM alembic_version").fetch_one(pool).await?;
        return Ok(Origin::Mlflow { revision, adopted: has("factory_schema") });
    }
    if has("experiments") {
        return Err(StoreError::Schema(
            "the database has an experiments table but neither factory's nor MLflow's migration records; \
             refusing to touch it"
                .into(),
        ));
    }
    Ok(Origin::Empty)
}

/// One plain connection pool, without migrations (for inspecting and adopting).
async fn connect_plain(uri: &str) -> Result<(AnyPool, Dialect)> {
    install_default_drivers();
    let (dialect, url) = parse_backend_uri(uri)?;
    let url = match dialect {
        // Inspecting must not create a file that is not there.
        Dialect::Sqlite => url.replace("?mode=rwc", "?mode=rw"),
        Dialect::Postgres => url,
    };
    let pool = AnyPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(30)).connect(&url).await?;
    Ok((pool, dialect))
}

/// What the database at `uri` holds. A SQLite file that does not exist is [`Origin::Empty`].
pub async fn inspect(uri: &str) -> Result<Origin> {
    if let Ok((Dialect::Sqlite, url)) = parse_backend_uri(uri) {
        let path = url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_string();
        if url != "sqlite::memory:" && !std::path::Path::new(&path).exists() {
            return Ok(Origin::Empty);
        }
    }
    let (pool, dialect) = connect_plain(uri).await?;
    let origin = origin(&pool, dialect).await;
    pool.close().await;
    origin
}

/// The SQL of the adoption (`up`) or its undoing (`down`) for `dialect`.
fn adoption_sql(dialect: Dialect, up: bool) -> &'static str {
    match (dialect, up) {
        (Dialect::Sqlite, true) => include_str!("../migrations/adopt/sqlite/up.sql"),
        (Dialect::Sqlite, false) => include_str!("../migrations/adopt/sqlite/down.sql"),
        (Dialect::Postgres, true) => include_str!("../migrations/adopt/postgres/up.sql"),
        (Dialect::Postgres, false) => include_str!("../migrations/adopt/postgres/down.sql"),
    }
}

/// The `-- change:` lines of an adoption script: what it does, in words.
pub fn describe(sql: &str) -> Vec<String> {
    sql.lines().filter_map(|l| l.trim().strip_prefix("-- change:")).map(|l| l.trim().to_string()).collect()
}

/// What [`adopt`] or [`release`] did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub origin: Origin,
    pub changes: Vec<String>,
    pub applied: bool,
}

/// Runs one adoption script in a transaction (both databases have transactional DDL).
async fn run_script(uri: &str, up: bool, dry_run: bool) -> Result<Plan> {
    let (pool, dialect) = connect_plain(uri).await?;
    let origin = origin(&pool, dialect).await?;
    let sql = adoption_sql(dialect, up);
    let ready = match &origin {
        Origin::Mlflow { revision, adopted } if revision == MLFLOW_REVISION => *adopted != up,
        _ => false,
    };
    if !ready {
        pool.close().await;
        return Err(StoreError::Schema(refusal(uri, &origin, up)));
    }
    let plan = Plan { origin, changes: describe(sql), applied: !dry_run };
    if !dry_run {
        let mut tx = pool.begin().await?;
        tx.execute(sql).await?;
        if up {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            sqlx::query("INSERT INTO factory_schema (adopted_revision, adopted_time) VALUES ($1, $2)")
                .bind(MLFLOW_REVISION)
                .bind(now.as_millis() as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    pool.close().await;
    Ok(plan)
}

fn refusal(uri: &str, origin: &Origin, up: bool) -> String {
    match (origin, up) {
        (Origin::Mlflow { revision, adopted: false }, true) if revision != MLFLOW_REVISION => format!(
            "{uri} holds {origin}. Bring it to MLflow 3.17's schema with MLflow's own migration first \
             (mlflow 3.17.2: `mlflow db upgrade {uri}`), then run factory db upgrade again"
        ),
        (Origin::Mlflow { adopted: true, .. }, true) => format!("{uri} holds {origin} already; nothing to do"),
        (Origin::Mlflow { adopted: false, .. }, false) => {
            format!("{uri} holds {origin}, not adopted by factory; nothing to give back")
        }
        (_, true) => format!("{uri} holds {origin}: there is no MLflow database to adopt"),
        (_, false) => format!("{uri} holds {origin}: only a database adopted by factory db upgrade can be given back"),
    }
}

/// `factory db upgrade` on an MLflow 3.17 database: adds factory's objects (new table, column,
/// triggers; `migrations/adopt/<dialect>/up.sql`) in one transaction, changing nothing of
/// MLflow's. With `dry_run` it only says what it would change.
pub async fn adopt(uri: &str, dry_run: bool) -> Result<Plan> {
    run_script(uri, true, dry_run).await
}

/// `factory db downgrade`: removes what [`adopt`] added, giving MLflow back its schema exactly.
pub async fn release(uri: &str, dry_run: bool) -> Result<Plan> {
    run_script(uri, false, dry_run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expect: Option<(Dialect, &str)>) {
        let got = parse_backend_uri(uri).ok();
        assert_eq!(got.as_ref().map(|(d, u)| (*d, u.as_str())), expect, "{uri}");
    }

    #[test]
    fn backend_uris() {
        check("sqlite:///mlflow.db", Some((Dialect::Sqlite, "sqlite://mlflow.db?mode=rwc")));
        check("sqlite:////tmp/x.db", Some((Dialect::Sqlite, "sqlite:///tmp/x.db?mode=rwc")));
        check("sqlite://", Some((Dialect::Sqlite, "sqlite::memory:")));
        check("postgresql://u@h:5432/db", Some((Dialect::Postgres, "postgres://u@h:5432/db")));
        check("postgresql+psycopg2://u@h/db", Some((Dialect::Postgres, "postgres://u@h/db")));
        check("mysql://u@h/db", None);
        check("mlflow.db", None);
    }

    #[test]
    fn adoption_scripts_say_what_they_change() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let up = describe(adoption_sql(dialect, true));
            let down = describe(adoption_sql(dialect, false));
            assert_eq!(up.len(), 5, "{up:?}");
            assert_eq!(down.len(), 4, "{down:?}");
            assert!(up.iter().all(|c| c.starts_with("new ")) && down.iter().all(|c| c.starts_with("drop ")));
        }
    }
}
