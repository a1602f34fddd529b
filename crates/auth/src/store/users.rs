//! Users: the bootstrap admin, log-in (with the credential cache), creation, password and
//! admin changes, deletion.

use super::{is_unique_violation, synthetic_role_name, validate_password, AuthStore, Role, User};
use crate::config::{AuthConfig, LEGACY_ADMIN_PASSWORD};
use crate::error::{AuthError, Result};
use crate::password;
use sqlx::any::AnyRow;
use sqlx::Row;

impl AuthStore {
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

    pub(super) async fn get_user_by_id(&self, id: i64) -> Result<User> {
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
}

fn user_from(row: &AnyRow) -> Result<User> {
    let is_admin: i64 = row.try_get("is_admin")?;
    Ok(User { id: row.try_get("id")?, username: row.try_get("username")?, is_admin: is_admin != 0 })
}
