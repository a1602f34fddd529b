//! Roles, their permissions and their assignment to users.

use super::{is_unique_violation, Assignment, AuthStore, Role, RolePermission, SYNTHETIC_PREFIX};
use crate::error::{AuthError, Result};
use crate::permission::{validate_grant, Pattern, WORKSPACE};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

impl AuthStore {
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

    pub(super) async fn insert_role_permission(
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
