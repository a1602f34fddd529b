//! Per-user grants (on the user's synthetic role), and the owner grants that follow a
//! resource's creation, rename and deletion.

use super::{synthetic_role_name, AuthStore, GrantCopy, GrantRows, DEFAULT_WORKSPACE};
use crate::error::{AuthError, Result};
use crate::permission::{validate_grant, validate_resource_type, Grant, Grants, Pattern, Permission, WORKSPACE};
use sqlx::{AnyConnection, Row};

/// The ids of the per-user (synthetic) roles in the default workspace (`$3`), as a subquery.
const SYNTHETIC_ROLE_IDS: &str = "SELECT id FROM roles WHERE name LIKE '\\_\\_user\\_%' ESCAPE '\\' AND workspace = $3";

impl AuthStore {
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
