//! The auth database (MLflow 3.17's schema: users, roles, role_permissions,
//! user_role_assignments) over `sqlx::Any`, SQLite or PostgreSQL, in its own database named
//! by `database_uri`. Per-user grants live, as in MLflow, on a synthetic role
//! `__user_<id>__` in the `default` workspace that the user is assigned to.

use crate::config::{AuthConfig, LEGACY_ADMIN_PASSWORD};
use crate::error::{AuthError, Result};
use crate::password::{self, CredentialCache};
use crate::permission::{validate_grant, validate_resource_type, Grant, Grants, Permission, WORKSPACE};
use sqlx::any::{install_default_drivers, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
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
    pub resource_pattern: String,
    pub permission: String,
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

fn synthetic_role_name(user_id: i64) -> String {
    format!("{SYNTHETIC_PREFIX}{user_id}__")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
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
            if let Some(p) = Permission::parse(&permission) {
                grants.push(Grant { resource_type: row.try_get(0)?, pattern: row.try_get(1)?, permission: p });
            }
        }
        Ok(Grants::new(grants, default))
    }

    async fn synthetic_role(&self, user_id: i64) -> Result<i64> {
        let name = synthetic_role_name(user_id);
        let find = || {
            sqlx::query("SELECT id FROM roles WHERE name = $1 AND workspace = $2")
                .bind(name.clone())
                .bind(DEFAULT_WORKSPACE)
                .fetch_optional(&self.pool)
        };
        let role_id: i64 = match find().await? {
            Some(row) => row.try_get(0)?,
            None => {
                let res =
                    sqlx::query("INSERT INTO roles (name, workspace, description) VALUES ($1, $2, NULL) RETURNING id")
                        .bind(&name)
                        .bind(DEFAULT_WORKSPACE)
                        .fetch_one(&self.pool)
                        .await;
                match res {
                    Ok(row) => row.try_get(0)?,
                    Err(e) if is_unique_violation(&e) => {
                        find().await?.ok_or_else(|| AuthError::NotFound(name.clone()))?.try_get(0)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let res = sqlx::query("INSERT INTO user_role_assignments (user_id, role_id) VALUES ($1, $2)")
            .bind(user_id)
            .bind(role_id)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(role_id)
    }

    async fn synthetic_grant_row(&self, role_id: i64, resource_type: &str, pattern: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT id FROM role_permissions WHERE role_id = $1 AND resource_type = $2 AND resource_pattern = $3",
        )
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// `grant_user_permission`: upsert, used to make creators MANAGE their resources.
    pub async fn set_user_permission(
        &self,
        username: &str,
        resource_type: &str,
        pattern: &str,
        permission: Permission,
    ) -> Result<()> {
        let user = self.get_user(username).await?;
        let role_id = self.synthetic_role(user.id).await?;
        match self.synthetic_grant_row(role_id, resource_type, pattern).await? {
            Some(id) => {
                sqlx::query("UPDATE role_permissions SET permission = $1 WHERE id = $2")
                    .bind(permission.name())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                self.insert_role_permission(role_id, resource_type, pattern, permission.name()).await?;
            }
        }
        Ok(())
    }

    /// `grant_user_resource_permission`: insert only; a second grant on the same resource is
    /// `RESOURCE_ALREADY_EXISTS` as in MLflow.
    pub async fn grant_user_permission(
        &self,
        username: &str,
        resource_type: &str,
        pattern: &str,
        permission: &str,
    ) -> Result<()> {
        reject_workspace_type(resource_type)?;
        validate_grant(resource_type, pattern, permission).map_err(AuthError::InvalidParameter)?;
        let user = self.get_user(username).await?;
        let role_id = self.synthetic_role(user.id).await?;
        let duplicate = || {
            AuthError::AlreadyExists(format!(
                "Permission for user={username} on resource_type={resource_type}, resource_id={pattern} already exists."
            ))
        };
        if self.synthetic_grant_row(role_id, resource_type, pattern).await?.is_some() {
            return Err(duplicate());
        }
        match self.insert_role_permission(role_id, resource_type, pattern, permission).await {
            Err(AuthError::AlreadyExists(_)) => Err(duplicate()),
            other => other.map(|_| ()),
        }
    }

    pub async fn revoke_user_permission(&self, username: &str, resource_type: &str, pattern: &str) -> Result<()> {
        reject_workspace_type(resource_type)?;
        validate_resource_type(resource_type).map_err(AuthError::InvalidParameter)?;
        let user = self.get_user(username).await?;
        let res = sqlx::query(
            "DELETE FROM role_permissions WHERE resource_type = $1 AND resource_pattern = $2 AND role_id IN \
             (SELECT id FROM roles WHERE name = $3 AND workspace = $4)",
        )
        .bind(resource_type)
        .bind(pattern)
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

    /// Drops every per-user grant on a deleted resource, so a new one with the same name
    /// does not inherit them (`delete_grants_for_resource`, synthetic roles only).
    pub async fn delete_grants_for_resource(&self, resource_type: &str, pattern: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM role_permissions WHERE resource_type = $1 AND resource_pattern = $2 AND role_id IN \
             (SELECT id FROM roles WHERE name LIKE '\\_\\_user\\_%' ESCAPE '\\')",
        )
        .bind(resource_type)
        .bind(pattern)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Follows a rename with the per-user grants (`rename_grants_for_resource`).
    pub async fn rename_grants_for_resource(&self, resource_type: &str, old: &str, new: &str) -> Result<()> {
        sqlx::query(
            "UPDATE role_permissions SET resource_pattern = $1 WHERE resource_type = $2 AND resource_pattern = $3 \
             AND role_id IN (SELECT id FROM roles WHERE name LIKE '\\_\\_user\\_%' ESCAPE '\\')",
        )
        .bind(new)
        .bind(resource_type)
        .bind(old)
        .execute(&self.pool)
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
        &self,
        role_id: i64,
        resource_type: &str,
        pattern: &str,
        permission: &str,
    ) -> Result<RolePermission> {
        let res = sqlx::query(
            "INSERT INTO role_permissions (role_id, resource_type, resource_pattern, permission) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(role_id)
        .bind(resource_type)
        .bind(pattern)
        .bind(permission)
        .fetch_one(&self.pool)
        .await;
        match res {
            Ok(row) => Ok(RolePermission {
                id: row.try_get(0)?,
                role_id,
                resource_type: resource_type.to_string(),
                resource_pattern: pattern.to_string(),
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
        pattern: &str,
        permission: &str,
    ) -> Result<RolePermission> {
        validate_grant(resource_type, pattern, permission).map_err(AuthError::InvalidParameter)?;
        self.get_role(role_id).await?;
        self.insert_role_permission(role_id, resource_type, pattern, permission).await
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
    Ok(RolePermission {
        id: row.try_get(0)?,
        role_id: row.try_get(1)?,
        resource_type: row.try_get(2)?,
        resource_pattern: row.try_get(3)?,
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
    use crate::permission::{Action, Requirement, EXPERIMENT, RUN};

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

        s.grant_user_permission("alice", EXPERIMENT, "1", "EDIT").await.unwrap();
        assert!(matches!(
            s.grant_user_permission("alice", EXPERIMENT, "1", "READ").await,
            Err(AuthError::AlreadyExists(_))
        ));
        let g = s.grants(alice.id, Permission::Read).await.unwrap();
        assert_eq!(g.permission(EXPERIMENT, "1"), Permission::Edit);
        assert_eq!(g.permission(EXPERIMENT, "2"), Permission::Read);

        // A role denying the run tier overrides the experiment grant for runs.
        let role = s.create_role("no-runs", DEFAULT_WORKSPACE, Some("d")).await.unwrap();
        s.add_role_permission(role.id, RUN, "*", "DENY").await.unwrap();
        s.assign_role(alice.id, role.id).await.unwrap();
        let g = s.grants(alice.id, Permission::Read).await.unwrap();
        assert!(!g.authorize(&[Requirement::tier(RUN, Action::Read, EXPERIMENT, "1")]));
        s.unassign_role(alice.id, role.id).await.unwrap();

        s.revoke_user_permission("alice", EXPERIMENT, "1").await.unwrap();
        assert!(matches!(s.revoke_user_permission("alice", EXPERIMENT, "1").await, Err(AuthError::NotFound(_))));
        s.set_user_permission("alice", EXPERIMENT, "3", Permission::Manage).await.unwrap();
        s.rename_grants_for_resource(EXPERIMENT, "3", "4").await.unwrap();
        assert_eq!(s.grants(alice.id, Permission::Read).await.unwrap().permission(EXPERIMENT, "4"), Permission::Manage);
        s.delete_grants_for_resource(EXPERIMENT, "4").await.unwrap();
        assert_eq!(s.grants(alice.id, Permission::Read).await.unwrap().permission(EXPERIMENT, "4"), Permission::Read);

        s.update_password("alice", "alice-password-2").await.unwrap();
        assert!(s.authenticate("alice", "alice-password").await.unwrap().is_none());
        s.delete_user("alice").await.unwrap();
        assert!(s.authenticate("alice", "alice-password-2").await.unwrap().is_none());
        assert_eq!(s.list_roles(&[]).await.unwrap().len(), 1);
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
