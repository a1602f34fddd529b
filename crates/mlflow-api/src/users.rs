//! The auth app's own API, as MLflow 3.17.2 serves it (`mlflow/server/auth/routes.py`):
//! users under `/api/2.0/mlflow/users/…`, per-user grants under
//! `/api/3.0/mlflow/users/permissions/…` and roles under `/api/3.0/mlflow/roles/…`, each also
//! under `/ajax-api/`. Mounted only with `--app-name basic-auth`, behind [`crate::auth::layer`],
//! which has already authenticated the caller; each handler makes MLflow's authorization
//! decision for its route (admin, self, or MANAGE on the resource) and replies as MLflow does.

use crate::auth::{forbidden, Auth, CurrentUser, Params};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::Reply;
use crate::AppState;
use ::auth::permission::{validate_resource_type, EXPERIMENT, REGISTERED_MODEL, WORKSPACE};
use ::auth::{Role, RolePermission, User};
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

/// One call to the user API: the auth state, the caller and the request parameters.
pub struct Call {
    auth: Arc<Auth>,
    me: User,
    params: Params,
    is_json: bool,
}

impl FromRequest<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request(req: Request, s: &AppState) -> ApiResult<Self> {
        let auth = s.auth.clone().ok_or_else(|| ApiError::new(ErrorCode::EndpointNotFound, "auth is off"))?;
        let me = req
            .extensions()
            .get::<CurrentUser>()
            .map(|c| c.0.clone())
            .ok_or_else(|| ApiError::new(ErrorCode::InternalError, "unauthenticated call reached the user API"))?;
        let method = req.method().clone();
        let query = req.uri().query().unwrap_or("").to_string();
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = axum::body::Bytes::from_request(req, s)
            .await
            .map_err(|e| ApiError::invalid(format!("Could not read the request body: {e}")))?;
        Ok(Call { auth, me, params: Params::read(&method, &query, &body, is_json), is_json })
    }
}

type Reply2 = ApiResult<Response>;

fn ok(v: Value) -> Reply2 {
    Ok(Reply(v).into_response())
}

fn user_json(u: &User) -> Value {
    json!({"id": u.id, "username": u.username, "is_admin": u.is_admin})
}

fn rp_json(p: &RolePermission) -> Value {
    json!({"id": p.id, "role_id": p.role_id, "resource_type": p.resource_type,
           "resource_pattern": p.resource_pattern, "permission": p.permission})
}

fn role_json(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "workspace": r.workspace, "description": r.description,
           "permissions": r.permissions.iter().map(rp_json).collect::<Vec<_>>()})
}

fn int_param(p: &Params, name: &str) -> ApiResult<i64> {
    let raw = p.req(name)?;
    raw.trim().parse().map_err(|_| ApiError::invalid(format!("Parameter '{name}' must be an integer. Got: '{raw}'")))
}

pub fn routes() -> Router<AppState> {
    let v2 = Router::new()
        .route("/users/create", post(create_user))
        .route("/users/get", get(get_user))
        .route("/users/current", get(current_user))
        .route("/users/list", get(list_users))
        .route("/users/update-password", patch(update_password))
        .route("/users/update-admin", patch(update_admin))
        .route("/users/delete", delete(delete_user));
    let v3 = Router::new()
        .route("/users/current/permissions", get(current_permissions))
        .route("/users/permissions/list", get(list_user_permissions))
        .route("/users/permissions/grant", post(grant))
        .route("/users/permissions/revoke", post(revoke))
        .route("/users/permissions/get", get(get_permission))
        .route("/users/roles/list", get(list_user_roles))
        .route("/roles/create", post(create_role))
        .route("/roles/get", get(get_role))
        .route("/roles/list", get(list_roles))
        .route("/roles/update", patch(update_role))
        .route("/roles/delete", delete(delete_role))
        .route("/roles/permissions/add", post(add_role_permission))
        .route("/roles/permissions/remove", delete(remove_role_permission))
        .route("/roles/permissions/list", get(list_role_permissions))
        .route("/roles/permissions/update", patch(update_role_permission))
        .route("/roles/assign", post(assign_role))
        .route("/roles/unassign", delete(unassign_role))
        .route("/roles/users/list", get(list_role_users));
    Router::new()
        .nest("/api/2.0/mlflow", v2.clone())
        .nest("/ajax-api/2.0/mlflow", v2)
        .nest("/api/3.0/mlflow", v3.clone())
        .nest("/ajax-api/3.0/mlflow", v3)
}

// ---- users ----

/// Only admins create users (workspace admins too, in MLflow; we have no workspaces).
async fn create_user(c: Call) -> Reply2 {
    if !c.me.is_admin && c.auth.store.workspace_admin_workspaces(c.me.id).await?.is_empty() {
        return Ok(forbidden());
    }
    if !c.is_json {
        return Ok((StatusCode::BAD_REQUEST, "Invalid content type. Must be application/json").into_response());
    }
    let username = c.params.req("username")?;
    let password = c.params.req("password")?;
    if username.is_empty() || password.is_empty() {
        return Ok((StatusCode::BAD_REQUEST, "Username and password cannot be empty.").into_response());
    }
    let user = c.auth.store.create_user(&username, &password, false).await?;
    ok(json!({"user": user_json(&user)}))
}

/// Admin or self.
async fn get_user(c: Call) -> Reply2 {
    let username = c.params.req("username")?;
    if !c.me.is_admin && username != c.me.username {
        return Ok(forbidden());
    }
    ok(json!({"user": user_json(&c.auth.store.get_user(&username).await?)}))
}

async fn current_user(c: Call) -> Reply2 {
    ok(json!({"user": user_json(&c.me), "is_basic_auth": true}))
}

/// Any authenticated user (workspaces are off); others' roles are shown to admins only.
async fn list_users(c: Call) -> Reply2 {
    let users = c.auth.store.list_users_with_roles().await?;
    let out: Vec<Value> = users
        .iter()
        .map(|(u, roles)| {
            let visible: Vec<Value> =
                if c.me.is_admin || u.id == c.me.id { roles.iter().map(role_json).collect() } else { Vec::new() };
            json!({"id": u.id, "username": u.username, "is_admin": u.is_admin, "roles": visible})
        })
        .collect();
    ok(json!({"users": out}))
}

/// Admin or self; changing one's own password needs `current_password`.
async fn update_password(c: Call) -> Reply2 {
    let username = c.params.req("username")?;
    let password = c.params.req("password")?;
    if !c.me.is_admin && username != c.me.username {
        return Ok(forbidden());
    }
    if username == c.me.username {
        let current = c
            .params
            .opt("current_password")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::invalid("Current password is required when changing your own password."))?;
        if c.auth.store.authenticate(&username, &current).await?.is_none() {
            return Err(ApiError::invalid("Current password does not match."));
        }
        if password == current {
            return Err(ApiError::invalid("New password must differ from the current password."));
        }
    }
    c.auth.store.update_password(&username, &password).await?;
    ok(json!({}))
}

/// Admins only.
async fn update_admin(c: Call) -> Reply2 {
    if !c.me.is_admin {
        return Ok(forbidden());
    }
    let username = c.params.req("username")?;
    let is_admin = match c.params.0.get("is_admin") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        _ => {
            c.params.req("is_admin")?;
            false
        }
    };
    c.auth.store.update_admin(&username, is_admin).await?;
    ok(json!({}))
}

/// Admins only, and not themselves.
async fn delete_user(c: Call) -> Reply2 {
    if !c.me.is_admin {
        return Ok(forbidden());
    }
    let username = c.params.req("username")?;
    if username == c.me.username {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        ));
    }
    c.auth.store.delete_user(&username).await?;
    ok(json!({}))
}

// ---- per-user permissions ----

async fn permission_rows(auth: &Auth, user: &User) -> ApiResult<Vec<Value>> {
    let roles = auth.store.list_user_roles(user.id).await?;
    Ok(roles
        .iter()
        .flat_map(|r| {
            r.permissions.iter().map(move |p| {
                json!({"role_id": r.id, "role_name": r.name, "workspace": r.workspace,
                       "resource_type": p.resource_type, "resource_pattern": p.resource_pattern,
                       "permission": p.permission})
            })
        })
        .collect())
}

async fn current_permissions(c: Call) -> Reply2 {
    ok(json!({"is_admin": c.me.is_admin, "permissions": permission_rows(&c.auth, &c.me).await?}))
}

/// Admin or self.
async fn list_user_permissions(c: Call) -> Reply2 {
    let username = c.params.req("username")?;
    if !c.me.is_admin && username != c.me.username {
        return Ok(forbidden());
    }
    let user = c.auth.store.get_user(&username).await?;
    ok(json!({"is_admin": user.is_admin, "permissions": permission_rows(&c.auth, &user).await?}))
}

fn check_type(resource_type: &str) -> ApiResult<()> {
    if resource_type == WORKSPACE {
        return Err(ApiError::invalid(
            "resource_type 'workspace' is not supported by the per-user permission convenience APIs. Use \
             set_workspace_permission / delete_workspace_permission for workspace-wide grants.",
        ));
    }
    validate_resource_type(resource_type).map_err(ApiError::invalid)
}

/// `validate_can_manage_resource`: MANAGE on the resource (admins always; a `*` grant needs
/// an admin).
async fn may_manage(c: &Call, resource_type: &str, resource_id: &str) -> ApiResult<bool> {
    check_type(resource_type)?;
    if c.me.is_admin {
        return Ok(true);
    }
    if resource_id == "*" {
        return Ok(false);
    }
    if ![EXPERIMENT, REGISTERED_MODEL].contains(&resource_type) && resource_type != "prompt" {
        return Err(ApiError::invalid(format!(
            "resource_type '{resource_type}' is not supported by the per-user permission convenience APIs."
        )));
    }
    Ok(c.auth.grants(&c.me).await?.permission(resource_type, resource_id).can_manage())
}

async fn grant(c: Call) -> Reply2 {
    let (t, id) = (c.params.req("resource_type")?, c.params.req("resource_id")?);
    if !may_manage(&c, &t, &id).await? {
        return Ok(forbidden());
    }
    let (username, permission) = (c.params.req("username")?, c.params.req("permission")?);
    c.auth.store.get_user(&username).await?;
    c.auth.store.grant_user_permission(&username, &t, &id, &permission).await?;
    ok(json!({}))
}

async fn revoke(c: Call) -> Reply2 {
    let (t, id) = (c.params.req("resource_type")?, c.params.req("resource_id")?);
    if !may_manage(&c, &t, &id).await? {
        return Ok(forbidden());
    }
    let username = c.params.req("username")?;
    c.auth.store.get_user(&username).await?;
    c.auth.store.revoke_user_permission(&username, &t, &id).await?;
    ok(json!({}))
}

/// Admin or self; `allowed` mirrors `can_use`, as in MLflow.
async fn get_permission(c: Call) -> Reply2 {
    let t = c.params.req("resource_type")?;
    check_type(&t)?;
    let username = c.params.req("username")?;
    if !c.me.is_admin && username != c.me.username {
        return Ok(forbidden());
    }
    let id = c.params.req("resource_id")?;
    let user = c.auth.store.get_user(&username).await?;
    let perm = c.auth.grants(&user).await?.permission(&t, &id);
    ok(json!({"allowed": perm.can_use(), "permission": perm.name()}))
}

// ---- roles ----

/// The workspace a role request targets (`_get_role_workspace_from_request`); `None` when
/// the role does not exist.
async fn role_workspace(c: &Call) -> ApiResult<Option<String>> {
    let missing = |r: Result<String, ::auth::AuthError>| match r {
        Ok(w) => Ok(Some(w)),
        Err(::auth::AuthError::NotFound(_)) => Ok(None),
        Err(e) => Err(ApiError::from(e)),
    };
    if c.params.has("role_id") {
        let id = int_param(&c.params, "role_id")?;
        return missing(c.auth.store.get_role(id).await.map(|r| r.workspace));
    }
    if c.params.has("role_permission_id") {
        let id = int_param(&c.params, "role_permission_id")?;
        let rp = c.auth.store.get_role_permission(id).await;
        return match rp {
            Ok(rp) => missing(c.auth.store.get_role(rp.role_id).await.map(|r| r.workspace)),
            Err(e) => missing(Err(e)),
        };
    }
    match c.params.opt("workspace") {
        Some(w) if !w.trim().is_empty() => Ok(Some(w)),
        Some(_) => Err(ApiError::invalid("Parameter 'workspace' must be a non-empty string.")),
        None => Err(ApiError::invalid("Request must include one of: role_id, role_permission_id, workspace.")),
    }
}

/// `validate_can_manage_roles`: admin, or workspace admin of the role's workspace.
async fn may_manage_roles(c: &Call) -> ApiResult<bool> {
    if c.me.is_admin {
        return Ok(true);
    }
    match role_workspace(c).await? {
        None => Ok(false),
        Some(w) => Ok(c.auth.store.workspace_admin_workspaces(c.me.id).await?.contains(&w)),
    }
}

/// `validate_can_view_roles`: admin, or holding any role in the role's workspace.
async fn may_view_roles(c: &Call) -> ApiResult<bool> {
    if c.me.is_admin {
        return Ok(true);
    }
    match role_workspace(c).await? {
        None => Ok(false),
        Some(w) => Ok(c.auth.store.present_workspaces(c.me.id).await?.contains(&w)),
    }
}

macro_rules! gate {
    ($cond:expr) => {
        if !$cond {
            return Ok(forbidden());
        }
    };
}

async fn create_role(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let name = c.params.req("name")?;
    let workspace = c.params.req("workspace")?;
    if name.trim().is_empty() {
        return Err(ApiError::invalid("Role name cannot be empty."));
    }
    let description = match c.params.0.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid("Role description must be a string or null.")),
    };
    let role = c.auth.store.create_role(&name, &workspace, description.as_deref()).await?;
    ok(json!({"role": role_json(&role)}))
}

async fn get_role(c: Call) -> Reply2 {
    gate!(may_view_roles(&c).await?);
    ok(json!({"role": role_json(&c.auth.store.get_role(int_param(&c.params, "role_id")?).await?)}))
}

/// Unscoped listing is admin-only; scoped, the caller must hold a role in every workspace.
async fn list_roles(c: Call) -> Reply2 {
    let workspaces = c.params.list("workspace");
    if workspaces.iter().any(|w| w.trim().is_empty()) {
        return Err(ApiError::invalid("Parameter 'workspace' must be a non-empty string when provided."));
    }
    if !c.me.is_admin {
        let present = c.auth.store.present_workspaces(c.me.id).await?;
        gate!(!workspaces.is_empty() && workspaces.iter().all(|w| present.contains(w)));
    }
    let roles = c.auth.store.list_roles(&workspaces).await?;
    ok(json!({"roles": roles.iter().map(role_json).collect::<Vec<_>>()}))
}

async fn update_role(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let id = int_param(&c.params, "role_id")?;
    let name = c.params.0.get("name").and_then(Value::as_str);
    let description = c.params.0.get("description").and_then(Value::as_str);
    if name.is_none() && description.is_none() {
        return Err(ApiError::invalid("At least one of 'name' or 'description' must be provided to update a role."));
    }
    if name.is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid("Role name cannot be empty."));
    }
    ok(json!({"role": role_json(&c.auth.store.update_role(id, name, description).await?)}))
}

async fn delete_role(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    c.auth.store.delete_role(int_param(&c.params, "role_id")?).await?;
    ok(json!({}))
}

async fn add_role_permission(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let id = int_param(&c.params, "role_id")?;
    let (t, pattern, perm) =
        (c.params.req("resource_type")?, c.params.req("resource_pattern")?, c.params.req("permission")?);
    let rp = c.auth.store.add_role_permission(id, &t, &pattern, &perm).await?;
    ok(json!({"role_permission": rp_json(&rp)}))
}

async fn remove_role_permission(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    c.auth.store.remove_role_permission(int_param(&c.params, "role_permission_id")?).await?;
    ok(json!({}))
}

async fn list_role_permissions(c: Call) -> Reply2 {
    gate!(may_view_roles(&c).await?);
    let perms = c.auth.store.list_role_permissions(int_param(&c.params, "role_id")?).await?;
    ok(json!({"role_permissions": perms.iter().map(rp_json).collect::<Vec<_>>()}))
}

async fn update_role_permission(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let id = int_param(&c.params, "role_permission_id")?;
    let rp = c.auth.store.update_role_permission(id, &c.params.req("permission")?).await?;
    ok(json!({"role_permission": rp_json(&rp)}))
}

async fn assign_role(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let user = c.auth.store.get_user(&c.params.req("username")?).await?;
    let a = c.auth.store.assign_role(user.id, int_param(&c.params, "role_id")?).await?;
    ok(json!({"assignment": {"id": a.id, "user_id": a.user_id, "role_id": a.role_id}}))
}

async fn unassign_role(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let user = c.auth.store.get_user(&c.params.req("username")?).await?;
    c.auth.store.unassign_role(user.id, int_param(&c.params, "role_id")?).await?;
    ok(json!({}))
}

/// Admin or self.
async fn list_user_roles(c: Call) -> Reply2 {
    let username = c.params.req("username")?;
    gate!(c.me.is_admin || username == c.me.username);
    let user = c.auth.store.get_user(&username).await?;
    let roles = c.auth.store.list_user_roles(user.id).await?;
    ok(json!({"roles": roles.iter().map(role_json).collect::<Vec<_>>()}))
}

async fn list_role_users(c: Call) -> Reply2 {
    gate!(may_manage_roles(&c).await?);
    let users = c.auth.store.list_role_users(int_param(&c.params, "role_id")?).await?;
    let out: Vec<Value> =
        users.iter().map(|a| json!({"id": a.id, "user_id": a.user_id, "role_id": a.role_id})).collect();
    ok(json!({"assignments": out}))
}
