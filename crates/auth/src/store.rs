//! The auth database (MLflow 3.17's schema: users, roles, role_permissions,
//! user_role_assignments) over `sqlx::Any`, SQLite or PostgreSQL, in its own database named
//! by `database_uri`. Per-user grants live, as in MLflow, on a synthetic role
//! `__user_<id>__` in the `default` workspace that the user is assigned to.

use crate::config::{AuthConfig, LEGACY_ADMIN_PASSWORD};
use crate::error::{AuthError, Result};
use crate::password::{self, CredentialCache};
use crate::permission::{validate_grant, validate_resource_type, Grant, Grants, Pattern, Permission, WORKSPACE};
use sqlx::any::{install_default_drivers, AnyPoolOptions, AnyRow};
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor, Row};
use std::time::Duration;
use tracking::Dialect;

/// Workspaces are disabled (as in a stock `mlflow server`): every grant that counts lives in
/// roles of this workspace.
pub const DEFAULT_WORKSPACE: &str = "default";
const SYNTHETIC_PREFIX: &str = "__user_";
/// The ids of the per-user (synthetic) roles in the default workspace (`$3`), as a subquery.
const SYNTHETIC_ROLE_IDS: &str = "SELECT id FROM roles WHERE name LIKE '\\_\\_user\\_%' ESCAPE '\\' AND workspace = $3";

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
            Dialect::Sqlite => include_str!("../migrations/sqlite/0001_auth.sql"),
            Dialect::Postgres => include_str!("../migrations/postgres/0001_auth.sql"),
        };
        for stmt in schema.split(';').map(str::trim).filter(|s| s.lines().any(|l| !l.trim().starts_with("--"))) {
            if !stmt.is_empty() {
                sqlx::query(stmt).execute(&pool).await?;
            }
        }
        Ok(AuthStore { pool, cache: CredentialCache::new() })
    }

    /// `create_admin_user`: creates the configured admin on first start (refusing without a
    /// usable password), and rotates a legacy `password1234` admin to the configured one.
    pub async fn bootstrap_admin(&self, cfg: &AuthConfig) -> Result<()> {
        let username = cfg.admin_username.as_str();
        if username.is_empty() {
            return Err(AuthError::Config(
                "MLflow Authentication needs a username for the admin user, but none is configured (or it is empty). \
                 Set `admin_username` in the configuration file referenced by MLFLOW_AUTH_CONFIG_PATH."
                    .into(),
            ));
        }
        if !self.has_user(username).await? {
            let password = AuthConfig::check_bootstrap_password(username, cfg.admin_password.as_deref())?;
            match self.create_user(username, &password, true).await {
                Ok(_) => tracing::info!(username, "created admin user"),
                Err(AuthError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        } else if let Some(pw) = cfg.admin_password.as_deref().filter(|p| *p != LEGACY_ADMIN_PASSWORD) {
            if self.verify_stored(username, LEGACY_ADMIN_PASSWORD).await?.is_some() {
                let pw = AuthConfig::check_bootstrap_password(username, Some(pw))?;
                self.update_password(username, &pw).await?;
                tracing::warn!(username, "replaced the insecure default admin password with the configured one");
            }
        }
        Ok(())
    }

    async fn verify_stored(&self, username: &str, password: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, username, is_admin, password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            password::verify_dummy(password);
            return Ok(None);
        };
        let stored: String = row.try_get("password_hash")?;
        password::verify(password, &stored).then(|| user_from(&row)).transpose()
    }

    /// The user these credentials belong to, or `None`. An admin using the legacy default
    /// password is refused, as MLflow refuses it.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>> {
        if self.cache.check(username, password) {
            if let Ok(user) = self.get_user(username).await {
                return Ok(Some(user));
            }
        }
        let Some(user) = self.verify_stored(username, password).await? else {
            return Ok(None);
        };
        if user.is_admin && password == LEGACY_ADMIN_PASSWORD {
            tracing::warn!(username, "rejected an admin login with the insecure legacy default password");
            return Ok(None);
        }
        self.cache.remember(username, password);
        Ok(Some(user))
    }

    pub async fn create_user(&self, username: &str, password: &str, is_admin: bool) -> Result<User> {
        if username.is_empty() {
            return Err(AuthError::InvalidParameter("Username cannot be empty.".into()));
        }
        validate_password(password)?;
        let hash = password::hash(password)?;
        let res = sqlx::query("INSERT INTO users (username, password_hash, is_admin) VALUES ($1, $2, $3) RETURNING id")
            .bind(username)
            .bind(hash)
            .bind(is_admin as i64)
            .fetch_one(&self.pool)
            .await;
        match res {
            Ok(row) => Ok(User { id: row.try_get(0)?, username: username.to_string(), is_admin }),
            Err(e) if is_unique_violation(&e) => {
                Err(AuthError::AlreadyExists(format!("User (username={username}) already exists.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn has_user(&self, username: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub async fn get_user(&self, username: &str) -> Result<User> {
        let row = sqlx::query("SELECT id, username, is_admin FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("User with username={username} not found")))?;
        user_from(&row)
    }

    async fn get_user_by_id(&self, id: i64) -> Result<User> {
        let row = sqlx::query("SELECT id, username, is_admin FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("User with id={id} not found")))?;
        user_from(&row)
    }

    /// Every user with the roles assigned to them, in id order.
    pub async fn list_users_with_roles(&self) -> Result<Vec<(User, Vec<Role>)>> {
        let rows = sqlx::query("SELECT id, username, is_admin FROM users ORDER BY id").fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let user = user_from(row)?;
            let roles = self.list_user_roles(user.id).await?;
            out.push((user, roles));
        }
        Ok(out)
    }

    pub async fn update_password(&self, username: &str, password: &str) -> Result<()> {
        validate_password(password)?;
        self.get_user(username).await?;
        let hash = password::hash(password)?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(username)
            .execute(&self.pool)
            .await?;
        self.cache.forget(username);
        Ok(())
    }

    pub async fn update_admin(&self, username: &str, is_admin: bool) -> Result<()> {
        self.get_user(username).await?;
        sqlx::query("UPDATE users SET is_admin = $1 WHERE username = $2")
            .bind(is_admin as i64)
            .bind(username)
            .execute(&self.pool)
            .await?;
        self.cache.forget(username);
        Ok(())
    }

    /// Deletes the user, their synthetic roles (with the grants on them) and assignments.
    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let user = self.get_user(username).await?;
        let mut tx = self.pool.begin().await?;
        let synthetic = synthetic_role_name(user.id);
        sqlx::query("DELETE FROM role_permissions WHERE role_id IN (SELECT id FROM roles WHERE name = $1)")
            .bind(&synthetic)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM user_role_assignments WHERE user_id = $1 OR role_id IN (SELECT id FROM roles WHERE name = $2)",
        )
        .bind(user.id)
        .bind(&synthetic)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM roles WHERE name = $1").bind(&synthetic).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM users WHERE id = $1").bind(user.id).execute(&mut *tx).await?;
        tx.commit().await?;
        self.cache.forget(username);
        Ok(())
    }

    /// The grants `user_id` holds through every role assigned in the default workspace.
    pub async fn grants(&self, user_id: i64, default: Permission) -> Result<Grants> {
        let rows = sqlx::query(
            "SELECT rp.resource_type, rp.resource_pattern, rp.permission FROM role_permissions rp \
             JOIN roles r ON r.id = rp.role_id JOIN user_role_assignments a ON a.role_id = r.id \
             WHERE a.user_id = $1 AND r.workspace = $2",
        )
        .bind(user_id)
        .bind(DEFAULT_WORKSPACE)
        .fetch_all(&self.pool)
        .await?;
        let mut grants = Vec::with_capacity(rows.len());
        for row in rows {
            let permission: String = row.try_get(2)?;
            let pattern: String = row.try_get(1)?;
            if let Some(p) = Permission::parse(&permission) {
                grants.push(Grant::new(&row.try_get::<String, _>(0)?, Pattern::from_stored(&pattern), p));
            }
        }
        Ok(Grants::new(grants, default))
    }

    /// `_get_or_create_synthetic_user_role`: the user's `__user_<id>__` role in the default
    /// workspace, assigned to them. Idempotent and race-free (`ON CONFLICT DO NOTHING`), so it
    /// can run inside a transaction on PostgreSQL, where a failed insert would abort it.
    async fn synthetic_role(conn: &mut AnyConnection, user_id: i64) -> Result<i64> {
        let name = synthetic_role_name(user_id);
        sqlx::query(
            "INSERT INTO roles (name, workspace, description) VALUES ($1, $2, NULL) \
             ON CONFLICT (workspace, name) DO NOTHING",
        )
        .bind(&name)
        .bind(DEFAULT_WORKSPACE)
        .execute(&mut *conn)
        .await?;
        let role_id: i64 = sqlx::query_scalar("SELECT id FROM roles WHERE name = $1 AND workspace = $2")
            .bind(&name)
            .bind(DEFAULT_WORKSPACE)
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO user_role_assignments (user_id, role_id) VALUES ($1, $2) ON CONFLICT (user_id, role_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(role_id)
        .execute(&mut *conn)
        .await?;
        Ok(role_id)
    }

    async fn synthetic_grant_row(
        conn: &mut AnyConnection,
        role_id: i64,
        resource_type: &str,
        pattern: &Pattern,
    ) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT id FROM role_permissions WHERE role_id = $1 AND resource_type = $2 AND resource_pattern = $3",
        )
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern.to_stored())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// `grant_user_resource_permission`: insert only; a second grant on the same resource is
    /// `RESOURCE_ALREADY_EXISTS` as in MLflow.
    pub async fn grant_user_permission(
        &self,
        username: &str,
        resource_type: &str,
        pattern: &Pattern,
        permission: &str,
    ) -> Result<()> {
        reject_workspace_type(resource_type)?;
        validate_grant(resource_type, pattern, permission).map_err(AuthError::InvalidParameter)?;
        let user = self.get_user(username).await?;
        let duplicate = || {
            AuthError::AlreadyExists(format!(
                "Permission for user={username} on resource_type={resource_type}, resource_id={pattern} already exists."
            ))
        };
        let mut tx = self.pool.begin().await?;
        let role_id = Self::synthetic_role(&mut tx, user.id).await?;
        if Self::synthetic_grant_row(&mut tx, role_id, resource_type, pattern).await?.is_some() {
            return Err(duplicate());
        }
        let inserted = Self::insert_role_permission(&mut tx, role_id, resource_type, pattern, permission).await;
        match inserted {
            Err(AuthError::AlreadyExists(_)) => return Err(duplicate()),
            other => other?,
        };
        tx.commit().await?;
        Ok(())
    }

    pub async fn revoke_user_permission(&self, username: &str, resource_type: &str, pattern: &Pattern) -> Result<()> {
        reject_workspace_type(resource_type)?;
        validate_resource_type(resource_type).map_err(AuthError::InvalidParameter)?;
        let user = self.get_user(username).await?;
        let res = sqlx::query(
            "DELETE FROM role_permissions WHERE resource_type = $1 AND resource_pattern = $2 AND role_id IN \
             (SELECT id FROM roles WHERE name = $3 AND workspace = $4)",
        )
        .bind(resource_type)
        .bind(pattern.to_stored())
        .bind(synthetic_role_name(user.id))
        .bind(DEFAULT_WORKSPACE)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(AuthError::NotFound(format!(
                "Permission for user={username} on resource_type={resource_type}, resource_id={pattern} not found."
            )));
        }
        Ok(())
    }

    // ---- grants that follow a resource's life (creation, rename, deletion) ----
    //
    // The tracking store may be another database, so none of these can share its transaction.
    // Each is one transaction here, and returns the ids of the rows it wrote or will remove, so
    // the caller can undo or finish exactly those rows, never rows someone else wrote since
    // (see ARCHITECTURE.md, "Owner grants").

    /// The creator's `MANAGE` on a resource being created, in one transaction: per-user grants
    /// left on the id by a resource that no longer exists (a crash between a delete and its
    /// grant cleanup, say) are removed first, so they cannot reach the new resource. Called
    /// while the resource's creation is still uncommitted, which keeps its id from anyone else.
    pub async fn claim(&self, username: &str, resource_type: &str, id: &str) -> Result<GrantRows> {
        let user = self.get_user(username).await?;
        let pattern = Pattern::id(id);
        let mut tx = self.pool.begin().await?;
        Self::delete_synthetic_grants(&mut tx, resource_type, &pattern).await?;
        let role_id = Self::synthetic_role(&mut tx, user.id).await?;
        let grant =
            Self::insert_role_permission(&mut tx, role_id, resource_type, &pattern, Permission::Manage.name()).await?;
        tx.commit().await?;
        Ok(GrantRows(vec![grant.id]))
    }

    /// For a rename: copies every per-user grant on `old` to `new` (after removing leftovers on
    /// `new`), in one transaction. The caller removes `originals` once the rename committed,
    /// or `copies` if it did not.
    pub async fn copy_grants(&self, resource_type: &str, old: &str, new: &str) -> Result<GrantCopy> {
        let (old, new) = (Pattern::id(old), Pattern::id(new));
        let mut tx = self.pool.begin().await?;
        Self::delete_synthetic_grants(&mut tx, resource_type, &new).await?;
        let rows = sqlx::query(&format!(
            "SELECT id, role_id, permission FROM role_permissions WHERE resource_type = $1 AND resource_pattern = $2 \
             AND role_id IN ({SYNTHETIC_ROLE_IDS}) ORDER BY id"
        ))
        .bind(resource_type)
        .bind(old.to_stored())
        .bind(DEFAULT_WORKSPACE)
        .fetch_all(&mut *tx)
        .await?;
        let mut copy = GrantCopy::default();
        for row in rows {
            let (id, role_id, permission): (i64, i64, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let copied = Self::insert_role_permission(&mut tx, role_id, resource_type, &new, &permission).await?;
            copy.originals.0.push(id);
            copy.copies.0.push(copied.id);
        }
        tx.commit().await?;
        Ok(copy)
    }

    /// The per-user grants on one resource, to remove once its deletion committed
    /// (`delete_grants_for_resource`, synthetic roles only, as in MLflow).
    pub async fn grants_on(&self, resource_type: &str, id: &str) -> Result<GrantRows> {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM role_permissions WHERE resource_type = $1 AND resource_pattern = $2 \
             AND role_id IN ({SYNTHETIC_ROLE_IDS}) ORDER BY id"
        ))
        .bind(resource_type)
        .bind(Pattern::id(id).to_stored())
        .bind(DEFAULT_WORKSPACE)
        .fetch_all(&self.pool)
        .await?;
        Ok(GrantRows(ids))
    }

    /// Removes exactly these grant rows (those already gone are skipped).
    pub async fn remove(&self, rows: &GrantRows) -> Result<()> {
        for chunk in rows.0.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("DELETE FROM role_permissions WHERE id IN ({})", marks.join(", "));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    async fn delete_synthetic_grants(conn: &mut AnyConnection, resource_type: &str, pattern: &Pattern) -> Result<()> {
        sqlx::query(&format!(
            "DELETE FROM role_permissions WHERE resource_type = $1 AND resource_pattern = $2 \
             AND role_id IN ({SYNTHETIC_ROLE_IDS})"
        ))
        .bind(resource_type)
        .bind(pattern.to_stored())
        .bind(DEFAULT_WORKSPACE)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    // ---- roles ----

    pub async fn create_role(&self, name: &str, workspace: &str, description: Option<&str>) -> Result<Role> {
        reject_synthetic_name(name)?;
        let res = sqlx::query("INSERT INTO roles (name, workspace, description) VALUES ($1, $2, $3) RETURNING id")
            .bind(name)
            .bind(workspace)
            .bind(description.map(str::to_string))
            .fetch_one(&self.pool)
            .await;
        match res {
            Ok(row) => self.get_role(row.try_get(0)?).await,
            Err(e) if is_unique_violation(&e) => {
                Err(AuthError::AlreadyExists(format!("Role (name={name}, workspace={workspace}) already exists.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_role(&self, role_id: i64) -> Result<Role> {
        let row = sqlx::query("SELECT id, name, workspace, description FROM roles WHERE id = $1")
            .bind(role_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("Role with id={role_id} not found")))?;
        self.role_from(&row).await
    }

    async fn role_from(&self, row: &AnyRow) -> Result<Role> {
        let id: i64 = row.try_get(0)?;
        Ok(Role {
            id,
            name: row.try_get(1)?,
            workspace: row.try_get(2)?,
            description: row.try_get(3)?,
            permissions: self.list_role_permissions(id).await?,
        })
    }

    async fn roles_where(&self, sql: &str, bind: Option<i64>) -> Result<Vec<Role>> {
        let mut q = sqlx::query(sql);
        if let Some(b) = bind {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.role_from(row).await?);
        }
        Ok(out)
    }

    /// Roles, optionally only those of the given workspaces; synthetic per-user roles are
    /// listed too, as MLflow lists them.
    pub async fn list_roles(&self, workspaces: &[String]) -> Result<Vec<Role>> {
        let all = self.roles_where("SELECT id, name, workspace, description FROM roles ORDER BY id", None).await?;
        Ok(all.into_iter().filter(|r| workspaces.is_empty() || workspaces.contains(&r.workspace)).collect())
    }

    pub async fn update_role(&self, role_id: i64, name: Option<&str>, description: Option<&str>) -> Result<Role> {
        let role = self.get_role(role_id).await?;
        if let Some(name) = name {
            reject_synthetic_name(name)?;
        }
        let res = sqlx::query("UPDATE roles SET name = $1, description = $2 WHERE id = $3")
            .bind(name.unwrap_or(&role.name).to_string())
            .bind(description.map(str::to_string).or(role.description.clone()))
            .bind(role_id)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => self.get_role(role_id).await,
            Err(e) if is_unique_violation(&e) => Err(AuthError::AlreadyExists(format!(
                "Role (name={}, workspace={}) already exists.",
                name.unwrap_or_default(),
                role.workspace
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete_role(&self, role_id: i64) -> Result<()> {
        self.get_role(role_id).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM role_permissions WHERE role_id = $1").bind(role_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM user_role_assignments WHERE role_id = $1").bind(role_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM roles WHERE id = $1").bind(role_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_role_permission(
        conn: &mut AnyConnection,
        role_id: i64,
        resource_type: &str,
        pattern: &Pattern,
        permission: &str,
    ) -> Result<RolePermission> {
        let res = sqlx::query(
            "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, permission) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern.to_stored())
        .bind(permission)
        .fetch_one(&mut *conn)
        .await;
        match res {
            Ok(row) => Ok(RolePermission {
                id: row.try_get(0)?,
                role_id,
                resource_type: resource_type.to_string(),
                resource_pattern: pattern.clone(),
                permission: permission.to_string(),
            }),
            Err(e) if is_unique_violation(&e) => Err(AuthError::AlreadyExists(format!(
                "Role permission (role_id={role_id}, resource_type={resource_type}, resource_pattern={pattern}) already exists."
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn add_role_permission(
        &self,
        role_id: i64,
        resource_type: &str,
        pattern: &Pattern,
        permission: &str,
    ) -> Result<RolePermission> {
        validate_grant(resource_type, pattern, permission).map_err(AuthError::InvalidParameter)?;
        self.get_role(role_id).await?;
        let mut conn = self.pool.acquire().await?;
        Self::insert_role_permission(&mut conn, role_id, resource_type, pattern, permission).await
    }

    pub async fn get_role_permission(&self, id: i64) -> Result<RolePermission> {
        let row = sqlx::query(
            "SELECT id, role_id, resource_type, resource_pattern, permission FROM role_permissions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("Role permission with id={id} not found")))?;
        role_permission_from(&row)
    }

    pub async fn remove_role_permission(&self, id: i64) -> Result<()> {
        self.get_role_permission(id).await?;
        sqlx::query("DELETE FROM role_permissions WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn list_role_permissions(&self, role_id: i64) -> Result<Vec<RolePermission>> {
        let rows = sqlx::query(
            "SELECT id, role_id, resource_type, resource_pattern, permission FROM role_permissions \
             WHERE role_id = $1 ORDER BY id",
        )
        .bind(role_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(role_permission_from).collect()
    }

    pub async fn update_role_permission(&self, id: i64, permission: &str) -> Result<RolePermission> {
        let rp = self.get_role_permission(id).await?;
        validate_grant(&rp.resource_type, &rp.resource_pattern, permission).map_err(AuthError::InvalidParameter)?;
        sqlx::query("UPDATE role_permissions SET permission = $1 WHERE id = $2")
            .bind(permission)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.get_role_permission(id).await
    }

    pub async fn assign_role(&self, user_id: i64, role_id: i64) -> Result<Assignment> {
        self.get_user_by_id(user_id).await?;
        self.get_role(role_id).await?;
        let res = sqlx::query("INSERT INTO user_role_assignments (user_id, role_id) VALUES ($1, $2) RETURNING id")
            .bind(user_id)
            .bind(role_id)
            .fetch_one(&self.pool)
            .await;
        match res {
            Ok(row) => Ok(Assignment { id: row.try_get(0)?, user_id, role_id }),
            Err(e) if is_unique_violation(&e) => Err(AuthError::AlreadyExists(format!(
                "User role assignment (user_id={user_id}, role_id={role_id}) already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn unassign_role(&self, user_id: i64, role_id: i64) -> Result<()> {
        let res = sqlx::query("DELETE FROM user_role_assignments WHERE user_id = $1 AND role_id = $2")
            .bind(user_id)
            .bind(role_id)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(AuthError::NotFound(format!(
                "User role assignment (user_id={user_id}, role_id={role_id}) not found"
            )));
        }
        Ok(())
    }

    pub async fn list_user_roles(&self, user_id: i64) -> Result<Vec<Role>> {
        self.roles_where(
            "SELECT r.id, r.name, r.workspace, r.description FROM roles r JOIN user_role_assignments a \
             ON a.role_id = r.id WHERE a.user_id = $1 ORDER BY r.id",
            Some(user_id),
        )
        .await
    }

    pub async fn list_role_users(&self, role_id: i64) -> Result<Vec<Assignment>> {
        self.get_role(role_id).await?;
        let rows = sqlx::query("SELECT id, user_id, role_id FROM user_role_assignments WHERE role_id = $1 ORDER BY id")
            .bind(role_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(Assignment { id: r.try_get(0)?, user_id: r.try_get(1)?, role_id: r.try_get(2)? }))
            .collect()
    }

    /// Workspaces where the user holds a role granting `(workspace, *, MANAGE)`.
    pub async fn workspace_admin_workspaces(&self, user_id: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.workspace FROM roles r JOIN user_role_assignments a ON a.role_id = r.id \
             JOIN role_permissions rp ON rp.role_id = r.id WHERE a.user_id = $1 AND rp.resource_type = $2 \
             AND rp.resource_pattern = '*' AND rp.permission = 'MANAGE'",
        )
        .bind(user_id)
        .bind(WORKSPACE)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Workspaces in which the user holds any role.
    pub async fn present_workspaces(&self, user_id: i64) -> Result<Vec<String>> {
        Ok(self.list_user_roles(user_id).await?.into_iter().map(|r| r.workspace).collect())
    }
}

fn user_from(row: &AnyRow) -> Result<User> {
    let is_admin: i64 = row.try_get("is_admin")?;
    Ok(User { id: row.try_get("id")?, username: row.try_get("username")?, is_admin: is_admin != 0 })
}

fn role_permission_from(row: &AnyRow) -> Result<RolePermission> {
    let pattern: String = row.try_get(3)?;
    Ok(RolePermission {
        id: row.try_get(0)?,
        role_id: row.try_get(1)?,
        resource_type: row.try_get(2)?,
        resource_pattern: Pattern::from_stored(&pattern),
        permission: row.try_get(4)?,
    })
}

fn reject_synthetic_name(name: &str) -> Result<()> {
    if name.starts_with(SYNTHETIC_PREFIX) {
        return Err(AuthError::InvalidParameter(format!(
            "Role name '{name}' uses the reserved '__user_' prefix, which is held for the per-user permission \
             representation. Choose a different name."
        )));
    }
    Ok(())
}

fn reject_workspace_type(resource_type: &str) -> Result<()> {
    if resource_type == WORKSPACE {
        return Err(AuthError::InvalidParameter(
            "resource_type 'workspace' is not supported by the per-user permission convenience APIs. Use \
             set_workspace_permission / delete_workspace_permission for workspace-wide grants."
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::{Action, Requirement, EXPERIMENT, REGISTERED_MODEL, RUN};

    async fn store() -> AuthStore {
        AuthStore::open("sqlite://").await.unwrap()
    }

    #[tokio::test]
    async fn users_grants_and_roles() {
        let s = store().await;
        let cfg = AuthConfig { admin_password: Some("admin-password-1".into()), ..AuthConfig::default() };
        s.bootstrap_admin(&cfg).await.unwrap();
        assert!(s.authenticate("admin", "admin-password-1").await.unwrap().unwrap().is_admin);
        assert!(s.authenticate("admin", "wrong").await.unwrap().is_none());
        assert!(s.authenticate("nobody", "wrong").await.unwrap().is_none());

        let alice = s.create_user("alice", "alice-password", false).await.unwrap();
        assert!(matches!(s.create_user("alice", "alice-password", false).await, Err(AuthError::AlreadyExists(_))));
        assert!(matches!(s.create_user("bob", "short", false).await, Err(AuthError::InvalidParameter(_))));

        let one = Pattern::id("1");
        s.grant_user_permission("alice", EXPERIMENT, &one, "EDIT").await.unwrap();
        assert!(matches!(
            s.grant_user_permission("alice", EXPERIMENT, &one, "READ").await,
            Err(AuthError::AlreadyExists(_))
        ));
        let g = s.grants(alice.id, Permission::Read).await.unwrap();
        assert_eq!(g.permission(EXPERIMENT, "1"), Permission::Edit);
        assert_eq!(g.permission(EXPERIMENT, "2"), Permission::Read);

        // A role denying the run tier overrides the experiment grant for runs.
        let role = s.create_role("no-runs", DEFAULT_WORKSPACE, Some("d")).await.unwrap();
        s.add_role_permission(role.id, RUN, &Pattern::Any, "DENY").await.unwrap();
        s.assign_role(alice.id, role.id).await.unwrap();
        let g = s.grants(alice.id, Permission::Read).await.unwrap();
        assert!(!g.authorize(&[Requirement::tier(RUN, Action::Read, EXPERIMENT, "1")]));
        s.unassign_role(alice.id, role.id).await.unwrap();

        s.revoke_user_permission("alice", EXPERIMENT, &one).await.unwrap();
        assert!(matches!(s.revoke_user_permission("alice", EXPERIMENT, &one).await, Err(AuthError::NotFound(_))));

        s.update_password("alice", "alice-password-2").await.unwrap();
        assert!(s.authenticate("alice", "alice-password").await.unwrap().is_none());
        s.delete_user("alice").await.unwrap();
        assert!(s.authenticate("alice", "alice-password-2").await.unwrap().is_none());
        assert_eq!(s.list_roles(&[]).await.unwrap().len(), 1);
    }

    /// Owner grants: claimed (clearing leftovers), copied for a rename, removed by row id.
    #[tokio::test]
    async fn grants_follow_a_resource_by_row() {
        let s = store().await;
        let alice = s.create_user("alice", "alice-password", false).await.unwrap();
        let bob = s.create_user("bob", "bob-password-1", false).await.unwrap();
        let perm = |u: i64, name: &'static str| {
            let s = &s;
            async move { s.grants(u, Permission::NoPermissions).await.unwrap().permission(REGISTERED_MODEL, name) }
        };
        // A leftover grant of bob's on a free name is gone once alice claims the name.
        s.grant_user_permission("bob", REGISTERED_MODEL, &Pattern::id("m"), "MANAGE").await.unwrap();
        let claim = s.claim("alice", REGISTERED_MODEL, "m").await.unwrap();
        assert_eq!(
            (perm(alice.id, "m").await, perm(bob.id, "m").await),
            (Permission::Manage, Permission::NoPermissions)
        );
        // A model named `*` is owned by name, not as a wildcard.
        s.claim("alice", REGISTERED_MODEL, "*").await.unwrap();
        assert_eq!(perm(alice.id, "other").await, Permission::NoPermissions);
        assert_eq!(perm(alice.id, "*").await, Permission::Manage);
        // Rename: copies first; the originals go once the rename committed.
        let copy = s.copy_grants(REGISTERED_MODEL, "m", "n").await.unwrap();
        assert_eq!(copy.originals, claim);
        assert_eq!((perm(alice.id, "m").await, perm(alice.id, "n").await), (Permission::Manage, Permission::Manage));
        s.remove(&copy.originals).await.unwrap();
        assert_eq!(
            (perm(alice.id, "m").await, perm(alice.id, "n").await),
            (Permission::NoPermissions, Permission::Manage)
        );
        // Deletion removes the rows it saw, and not one written after.
        let seen = s.grants_on(REGISTERED_MODEL, "n").await.unwrap();
        s.claim("bob", REGISTERED_MODEL, "n").await.unwrap();
        s.remove(&seen).await.unwrap();
        assert_eq!(perm(bob.id, "n").await, Permission::Manage);
        // Role grants written by an admin are never touched.
        let role = s.create_role("readers", DEFAULT_WORKSPACE, None).await.unwrap();
        s.add_role_permission(role.id, REGISTERED_MODEL, &Pattern::id("n"), "READ").await.unwrap();
        s.claim("alice", REGISTERED_MODEL, "n").await.unwrap();
        assert_eq!(s.list_role_permissions(role.id).await.unwrap().len(), 1);
        assert!(is_synthetic_role_name(&synthetic_role_name(alice.id)) && !is_synthetic_role_name("readers"));
        assert!(!is_synthetic_role_name("__user_x__") && !is_synthetic_role_name("__user___"));
    }

    #[test]
    fn auth_database_must_not_be_the_tracking_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| format!("sqlite:///{}", dir.path().join(name).display());
        std::fs::write(dir.path().join("mlflow.db"), b"").unwrap();
        assert!(check_separate_from_tracking(&file("mlflow.db"), &file("mlflow.db")).is_err());
        assert!(check_separate_from_tracking(&file("basic_auth.db"), &file("mlflow.db")).is_ok());
        let pg = "postgresql://u@h:5432/db";
        assert!(check_separate_from_tracking(pg, pg).is_ok());
    }

    #[tokio::test]
    async fn bootstrap_refuses_without_a_password() {
        let s = store().await;
        let err = s.bootstrap_admin(&AuthConfig::default()).await.unwrap_err();
        assert!(err.to_string().contains("MLFLOW_AUTH_ADMIN_PASSWORD"), "{err}");
        let legacy = AuthConfig { admin_password: Some(LEGACY_ADMIN_PASSWORD.into()), ..AuthConfig::default() };
        assert!(s.bootstrap_admin(&legacy).await.is_err());
    }
}
