//! Connecting to the backing database: URI parsing (MLflow's `--backend-store-uri` forms),
//! per-dialect pools and migrations. Everything above this module speaks one SQL dialect
//! subset through `sqlx::Any`; the few differences are asked of [`Dialect`].

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
                sqlx::migrate!("./migrations/sqlite").run(&write).await?;
                Ok(Pools { dialect, write, read })
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(&url)
                    .await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Ok(Pools { dialect, write: pool.clone(), read: pool })
            }
        }
    }
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
}
