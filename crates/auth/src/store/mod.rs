//! The auth database (MLflow 3.17's schema: users, roles, role_permissions,
//! user_role_assignments) over `sqlx::Any`, SQLite or PostgreSQL, in its own database named
//! by `database_uri`. Per-user grants live, as in MLflow, on a synthetic role
//! `__user_<id>__` in the `default` workspace that the user is assigned to.

mod grants;
mod roles;
#[cfg(test)]
mod tests;
mod users;

use crate::error::{AuthError, Result};
use crate::password::CredentialCache;
use crate::permission::Pattern;
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::time::Duration;
use tracking::Dialect;

/// Workspaces are disabled (as in a stock `mlflow server`): every grant that counts lives in
/// roles of this workspace.
pub const DEFAULT_WORKSPACE: &str = "default";
const SYNTHETIC_PREFIX: &str = "__user_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePermission {
    pub id: i64,
    pub role_id: i64,
    pub resource_type: String,
    pub resource_pattern: Pattern,
    pub permission: String,
}

/// Grant rows one operation wrote or will remove, by id, so that finishing or undoing it
/// touches exactly those rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantRows(pub Vec<i64>);

/// What [`AuthStore::copy_grants`] did: the rows on the old name and their copies on the new.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantCopy {
    pub originals: GrantRows,
    pub copies: GrantRows,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub workspace: String,
    pub description: Option<String>,
    pub permissions: Vec<RolePermission>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub id: i64,
    pub user_id: i64,
    pub role_id: i64,
}

pub use crate::password::validate_password;

/// The name of the role that carries `user_id`'s per-user grants.
pub fn synthetic_role_name(user_id: i64) -> String {
    format!("{SYNTHETIC_PREFIX}{user_id}__")
}

/// Whether a role is some user's per-user grant carrier rather than a role an admin made.
pub fn is_synthetic_role_name(name: &str) -> bool {
    name.strip_prefix(SYNTHETIC_PREFIX)
        .and_then(|rest| rest.strip_suffix("__"))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// Refuses an auth database that is the tracking store's own SQLite file. Owner grants are
/// written while the tracking store's creation transaction is open (ARCHITECTURE.md, "Owner
/// grants"), and SQLite lets one writer at a time into a file: the grant would wait for the
/// transaction that waits for it. (One PostgreSQL database for both is fine.)
pub fn check_separate_from_tracking(database_uri: &str, backend_store_uri: &str) -> Result<()> {
    let sqlite_file = |uri: &str| match tracking::parse_backend_uri(uri) {
        Ok((Dialect::Sqlite, url)) if url != "sqlite::memory:" => {
            let path = url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_string();
            let path = std::path::PathBuf::from(path);
            Some(std::fs::canonicalize(&path).unwrap_or(path))
        }
        _ => None,
    };
    match (sqlite_file(database_uri), sqlite_file(backend_store_uri)) {
        (Some(a), Some(b)) if a == b => Err(AuthError::Config(format!(
            "the auth database_uri '{database_uri}' is the tracking store's SQLite file; give the auth app its own \
             file (MLflow's default is sqlite:///basic_auth.db) or use PostgreSQL"
        ))),
        _ => Ok(()),
    }
}

/// The users, roles and grants of the auth app.
pub struct AuthStore {
    pool: AnyPool,
    cache: CredentialCache,
}

impl AuthStore {
    /// Connects to `database_uri` (`sqlite:///basic_auth.db`, `postgresql://...`) and creates
    /// the tables if they are missing.
    pub async fn open(database_uri: &str) -> Result<AuthStore> {
        install_default_drivers();
        let (dialect, url) =
            tracking::parse_backend_uri(database_uri).map_err(|e| AuthError::Config(format!("database_uri: {e}")))?;
        let pool = match dialect {
            Dialect::Sqlite => {
                let memory = url == "sqlite::memory:";
                AnyPoolOptions::new()
                    .max_connections(if memory { 1 } else { 4 })
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Dialect::Postgres => {
                AnyPoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(30)).connect(&url).await?
            }
        };
        let schema = match dialect {
            Dialect::Sqlite => include_str!("../../migrations/sqlite/0001_auth.sql"),
            Dialect::Postgres => include_str!("../../migrations/postgres/0001_auth.sql"),
        };
        for stmt in schema.split(';').map(str::trim).filter(|s| s.lines().any(|l| !l.trim().starts_with("--"))) {
            if !stmt.is_empty() {
                sqlx::query(stmt).execute(&pool).await?;
            }
        }
        Ok(AuthStore { pool, cache: CredentialCache::new() })
    }
}
