//! The auth app's own API, as MLflow 3.17.2 serves it (`mlflow/server/auth/routes.py`):
//! users under `/api/2.0/mlflow/users/…`, per-user grants under
//! `/api/3.0/mlflow/users/permissions/…` and roles under `/api/3.0/mlflow/roles/…`, each also
//! under `/ajax-api/`. Mounted only with `--app-name basic-auth`. Each route is declared once
//! with its rule (MLflow's `BEFORE_REQUEST_VALIDATORS` for these paths); the handlers scope
//! what they list to what the caller may see.
//!
//! Departure: a non-admin never sees another user's per-user grant role (`__user_<id>__`,
//! which carries that user's grants) in `roles/list`, `roles/get` or `roles/permissions/list`;
//! MLflow shows them to anyone holding a role in the workspace.

use crate::access::{self, param, Need, RoleTarget};
use crate::auth::{Caller, Session};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::{Msg, Reply};
use crate::routes::{Api, Input, DELETE, GET, MLFLOW_V2, MLFLOW_V3, PATCH, POST};
use crate::AppState;
use ::auth::{is_synthetic_role_name, synthetic_role_name, Pattern, Role, RolePermission, User};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(api: &mut Api) {
    api.under(MLFLOW_V2, |api| {
        api.rule(POST, "/users/create", create_user, |_| Ok(Need::CreateUser));
        api.rule(GET, "/users/get", get_user, |r| Ok(Need::OwnAccount(param(&r.username, "username")?)));
        api.listing(GET, "/users/current", current_user);
        api.listing(GET, "/users/list", list_users);
        api.rule(PATCH, "/users/update-password", update_password, |r| {
            Ok(Need::OwnAccount(param(&r.username, "username")?))
        });
        api.rule(PATCH, "/users/update-admin", update_admin, |_| Ok(Need::Admin));
        api.rule(DELETE, "/users/delete", delete_user, |_| Ok(Need::Admin));
    });
    api.under(MLFLOW_V3, |api| {
        api.listing(GET, "/users/current/permissions", current_permissions);
        api.rule(GET, "/users/permissions/list", list_user_permissions, |r| {
            Ok(Need::ViewUserRoles(param(&r.username, "username")?))
        });
        api.rule(POST, "/users/permissions/grant", grant, manage_resource);
        api.rule(POST, "/users/permissions/revoke", revoke, manage_resource);
        api.rule(GET, "/users/permissions/get", get_permission, |r| {
            Ok(Need::GetUserPermission {
                resource_type: param(&r.resource_type, "resource_type")?,
                username: param(&r.username, "username")?,
            })
        });
        api.rule(GET, "/users/roles/list", list_user_roles, |r| {
            Ok(Need::ViewUserRoles(param(&r.username, "username")?))
        });
        api.rule(POST, "/roles/create", create_role, manage_roles);
        api.rule(GET, "/roles/get", get_role, view_roles);
        api.listing_with(GET, "/roles/list", list_roles, |r| Ok(Need::ListRoles(r.workspace.clone())));
        api.rule(PATCH, "/roles/update", update_role, manage_roles);
        api.rule(DELETE, "/roles/delete", delete_role, manage_roles);
        api.rule(POST, "/roles/permissions/add", add_role_permission, manage_roles);
        api.rule(DELETE, "/roles/permissions/remove", remove_role_permission, manage_roles);
        api.rule(GET, "/roles/permissions/list", list_role_permissions, view_roles);
        api.rule(PATCH, "/roles/permissions/update", update_role_permission, manage_roles);
        api.rule(POST, "/roles/assign", assign_role, manage_roles);
        api.rule(DELETE, "/roles/unassign", unassign_role, manage_roles);
        api.rule(GET, "/roles/users/list", list_role_users, manage_roles);
    });
}

fn manage_resource(r: &Msg<GrantReq>) -> ApiResult<Need> {
    let pattern = Pattern::from_wire(&param(&r.resource_id, "resource_id")?);
    Ok(Need::ManageResource(param(&r.resource_type, "resource_type")?, pattern))
}

fn manage_roles(r: &Msg<RoleReq>) -> ApiResult<Need> {
    Ok(Need::ManageRoles(r.target()?))
}

fn view_roles(r: &Msg<RoleReq>) -> ApiResult<Need> {
    Ok(Need::ViewRoles(r.target()?))
}

// ---- requests ----

#[derive(Deserialize)]
struct UserReq {
    username: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    /// A JSON boolean, or `"true"`/`"false"`, or a number, as MLflow takes it.
    is_admin: Option<Value>,
}

#[derive(Deserialize)]
struct GrantReq {
    username: Option<String>,
    resource_type: Option<String>,
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    resource_id: Option<String>,
    permission: Option<String>,
}

#[derive(Deserialize)]
struct RoleReq {
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    role_id: Option<String>,
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    role_permission_id: Option<String>,
    /// One workspace (role create), or the repeated `workspace` of `roles/list`.
    #[serde(default, deserialize_with = "one_or_many")]
    workspace: Vec<String>,
    username: Option<String>,
    name: Option<Value>,
    description: Option<Value>,
    resource_type: Option<String>,
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    resource_pattern: Option<String>,
    permission: Option<String>,
}

/// `workspace`: a string in a body, one or several (repeated) in a query.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_string()])
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<String>()? {
                out.push(v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

impl RoleReq {
    fn target(&self) -> ApiResult<RoleTarget> {
        RoleTarget::of(&self.role_id, &self.role_permission_id, &self.workspace.first().cloned())
    }

    fn role_id(&self) -> ApiResult<i64> {
        access::int_param("role_id", &param(&self.role_id, "role_id")?)
    }

    fn role_permission_id(&self) -> ApiResult<i64> {
        access::int_param("role_permission_id", &param(&self.role_permission_id, "role_permission_id")?)
    }
}

/// A request whose content type matters (`users/create` wants JSON).
struct WithType<T> {
    json: bool,
    msg: T,
}

impl<T: DeserializeOwned + Send + 'static> Input for WithType<T> {
    async fn parse(req: Request, s: &AppState) -> ApiResult<Self> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        Ok(WithType { json, msg: Msg::<T>::parse(req, s).await?.0 })
    }
}

// ---- replies ----

fn ok(v: Value) -> ApiResult<Response> {
    Ok(Reply(v).into_response())
}

fn user_json(u: &User) -> Value {
    json!({"id": u.id, "username": u.username, "is_admin": u.is_admin})
}

fn rp_json(p: &RolePermission) -> Value {
    json!({"id": p.id, "role_id": p.role_id, "resource_type": p.resource_type,
           "resource_pattern": p.resource_pattern.to_wire(), "permission": p.permission})
}

fn role_json(r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "workspace": r.workspace, "description": r.description,
           "permissions": r.permissions.iter().map(rp_json).collect::<Vec<_>>()})
}

/// The authenticated session (user API routes are mounted only with auth on).
fn session(who: &Caller) -> ApiResult<&Session> {
    who.session().ok_or_else(|| ApiError::new(ErrorCode::InternalError, "the user API needs an authenticated caller"))
}

/// Which of `user`'s roles the caller may see (`list_user_roles`' scoping): all for an admin
/// or the user themself, else those in workspaces the caller administers.
async fn visible_roles(me: &Session, user: &User, roles: Vec<Role>) -> ApiResult<Vec<Role>> {
    if me.user.is_admin || me.user.id == user.id {
        return Ok(roles);
    }
    let mine = me.auth.store.workspace_admin_workspaces(me.user.id).await?;
    Ok(roles.into_iter().filter(|r| mine.contains(&r.workspace)).collect())
}

/// Whether a non-admin may see this role: never another user's per-user grant role, unless
/// they administer its workspace.
async fn role_visible(me: &Session, role: &Role) -> ApiResult<bool> {
    if me.user.is_admin || !is_synthetic_role_name(&role.name) || role.name == synthetic_role_name(me.user.id) {
        return Ok(true);
    }
    Ok(me.auth.store.workspace_admin_workspaces(me.user.id).await?.contains(&role.workspace))
}

// ---- users ----

async fn create_user(_: AppState, who: Caller, r: WithType<UserReq>) -> ApiResult<Response> {
    if !r.json {
        return Ok((StatusCode::BAD_REQUEST, "Invalid content type. Must be application/json").into_response());
    }
    let username = param(&r.msg.username, "username")?;
    let password = param(&r.msg.password, "password")?;
    if username.is_empty() || password.is_empty() {
        return Ok((StatusCode::BAD_REQUEST, "Username and password cannot be empty.").into_response());
    }
    let user = session(&who)?.auth.store.create_user(&username, &password, false).await?;
    ok(json!({"user": user_json(&user)}))
}

async fn get_user(_: AppState, who: Caller, Msg(r): Msg<UserReq>) -> ApiResult<Response> {
    let user = session(&who)?.auth.store.get_user(&param(&r.username, "username")?).await?;
    ok(json!({"user": user_json(&user)}))
}

async fn current_user(_: AppState, who: Caller, _: ()) -> ApiResult<Response> {
    ok(json!({"user": user_json(&session(&who)?.user), "is_basic_auth": true}))
}

/// Every user; their roles as `list_user_roles` would show them to the caller.
async fn list_users(_: AppState, who: Caller, _: ()) -> ApiResult<Response> {
    let me = session(&who)?;
    let mut out = Vec::new();
    for (u, roles) in me.auth.store.list_users_with_roles().await? {
        let roles: Vec<Value> = visible_roles(me, &u, roles).await?.iter().map(role_json).collect();
        out.push(json!({"id": u.id, "username": u.username, "is_admin": u.is_admin, "roles": roles}));
    }
    ok(json!({"users": out}))
}

/// Admin or self; changing one's own password needs `current_password`.
async fn update_password(_: AppState, who: Caller, Msg(r): Msg<UserReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let username = param(&r.username, "username")?;
    let password = param(&r.password, "password")?;
    if username == me.user.username {
        let current = r
            .current_password
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::invalid("Current password is required when changing your own password."))?;
        if me.auth.store.authenticate(&username, &current).await?.is_none() {
            return Err(ApiError::invalid("Current password does not match."));
        }
        if password == current {
            return Err(ApiError::invalid("New password must differ from the current password."));
        }
    }
    me.auth.store.update_password(&username, &password).await?;
    ok(json!({}))
}

async fn update_admin(_: AppState, who: Caller, Msg(r): Msg<UserReq>) -> ApiResult<Response> {
    let username = param(&r.username, "username")?;
    let is_admin = match r.is_admin {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        _ => {
            param(&None, "is_admin")?;
            false
        }
    };
    session(&who)?.auth.store.update_admin(&username, is_admin).await?;
    ok(json!({}))
}

/// Admins only, and not themselves.
async fn delete_user(_: AppState, who: Caller, Msg(r): Msg<UserReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let username = param(&r.username, "username")?;
    if username == me.user.username {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Users cannot delete their own account. Ask another admin to delete this user instead.",
        ));
    }
    me.auth.store.delete_user(&username).await?;
    ok(json!({}))
}

// ---- per-user permissions ----

async fn permission_rows(me: &Session, user: &User) -> ApiResult<Vec<Value>> {
    let roles = visible_roles(me, user, me.auth.store.list_user_roles(user.id).await?).await?;
    Ok(roles
        .iter()
        .flat_map(|r| {
            r.permissions.iter().map(move |p| {
                json!({"role_id": r.id, "role_name": r.name, "workspace": r.workspace,
                       "resource_type": p.resource_type, "resource_pattern": p.resource_pattern.to_wire(),
                       "permission": p.permission})
            })
        })
        .collect())
}

async fn current_permissions(_: AppState, who: Caller, _: ()) -> ApiResult<Response> {
    let me = session(&who)?;
    ok(json!({"is_admin": me.user.is_admin, "permissions": permission_rows(me, &me.user).await?}))
}

async fn list_user_permissions(_: AppState, who: Caller, Msg(r): Msg<UserReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let user = me.auth.store.get_user(&param(&r.username, "username")?).await?;
    ok(json!({"is_admin": user.is_admin, "permissions": permission_rows(me, &user).await?}))
}

async fn grant(_: AppState, who: Caller, Msg(r): Msg<GrantReq>) -> ApiResult<Response> {
    let store = &session(&who)?.auth.store;
    let (t, id) = (param(&r.resource_type, "resource_type")?, param(&r.resource_id, "resource_id")?);
    let (username, permission) = (param(&r.username, "username")?, param(&r.permission, "permission")?);
    store.get_user(&username).await?;
    store.grant_user_permission(&username, &t, &Pattern::from_wire(&id), &permission).await?;
    ok(json!({}))
}

async fn revoke(_: AppState, who: Caller, Msg(r): Msg<GrantReq>) -> ApiResult<Response> {
    let store = &session(&who)?.auth.store;
    let (t, id) = (param(&r.resource_type, "resource_type")?, param(&r.resource_id, "resource_id")?);
    let username = param(&r.username, "username")?;
    store.get_user(&username).await?;
    store.revoke_user_permission(&username, &t, &Pattern::from_wire(&id)).await?;
    ok(json!({}))
}

/// `allowed` mirrors `can_use`, as in MLflow.
async fn get_permission(_: AppState, who: Caller, Msg(r): Msg<GrantReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let t = param(&r.resource_type, "resource_type")?;
    access::check_grant_type(&t)?;
    let username = param(&r.username, "username")?;
    let id = param(&r.resource_id, "resource_id")?;
    let user = me.auth.store.get_user(&username).await?;
    let perm = me.auth.grants(&user).await?.permission_at(&t, &Pattern::from_wire(&id));
    ok(json!({"allowed": perm.can_use(), "permission": perm.name()}))
}

// ---- roles ----

async fn create_role(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let name = match &r.name {
        Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => return Err(ApiError::invalid("Role name cannot be empty.")),
    };
    let workspace = param(&r.workspace.first().cloned(), "workspace")?;
    if workspace.trim().is_empty() {
        return Err(ApiError::invalid("Workspace cannot be empty."));
    }
    let description = match &r.description {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid("Role description must be a string or null.")),
    };
    let role = session(&who)?.auth.store.create_role(&name, &workspace, description.as_deref()).await?;
    ok(json!({"role": role_json(&role)}))
}

async fn get_role(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let role = me.auth.store.get_role(r.role_id()?).await?;
    if !role_visible(me, &role).await? {
        return Ok(crate::auth::forbidden());
    }
    ok(json!({"role": role_json(&role)}))
}

/// Unscoped listing is admin-only (the rule); another user's per-user role is listed only to
/// an admin of its workspace.
async fn list_roles(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let workspaces = r.workspace;
    if workspaces.iter().any(|w| w.trim().is_empty()) {
        return Err(ApiError::invalid("Parameter 'workspace' must be a non-empty string when provided."));
    }
    let mut out = Vec::new();
    for role in me.auth.store.list_roles(&workspaces).await? {
        if role_visible(me, &role).await? {
            out.push(role_json(&role));
        }
    }
    ok(json!({"roles": out}))
}

async fn update_role(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let id = r.role_id()?;
    let text = |v: &Option<Value>, what: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("Role {what} must be a string."))),
    };
    let (name, description) = (text(&r.name, "name")?, text(&r.description, "description")?);
    if name.is_none() && description.is_none() {
        return Err(ApiError::invalid("At least one of 'name' or 'description' must be provided to update a role."));
    }
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid("Role name cannot be empty."));
    }
    let role = session(&who)?.auth.store.update_role(id, name.as_deref(), description.as_deref()).await?;
    ok(json!({"role": role_json(&role)}))
}

async fn delete_role(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    session(&who)?.auth.store.delete_role(r.role_id()?).await?;
    ok(json!({}))
}

async fn add_role_permission(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let id = r.role_id()?;
    let t = param(&r.resource_type, "resource_type")?;
    let pattern = Pattern::from_wire(&param(&r.resource_pattern, "resource_pattern")?);
    let perm = param(&r.permission, "permission")?;
    let rp = session(&who)?.auth.store.add_role_permission(id, &t, &pattern, &perm).await?;
    ok(json!({"role_permission": rp_json(&rp)}))
}

async fn remove_role_permission(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    session(&who)?.auth.store.remove_role_permission(r.role_permission_id()?).await?;
    ok(json!({}))
}

async fn list_role_permissions(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let role = me.auth.store.get_role(r.role_id()?).await?;
    if !role_visible(me, &role).await? {
        return Ok(crate::auth::forbidden());
    }
    ok(json!({"role_permissions": role.permissions.iter().map(rp_json).collect::<Vec<_>>()}))
}

async fn update_role_permission(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let id = r.role_permission_id()?;
    let rp = session(&who)?.auth.store.update_role_permission(id, &param(&r.permission, "permission")?).await?;
    ok(json!({"role_permission": rp_json(&rp)}))
}

async fn assign_role(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let store = &session(&who)?.auth.store;
    let user = store.get_user(&param(&r.username, "username")?).await?;
    let a = store.assign_role(user.id, r.role_id()?).await?;
    ok(json!({"assignment": {"id": a.id, "user_id": a.user_id, "role_id": a.role_id}}))
}

async fn unassign_role(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let store = &session(&who)?.auth.store;
    let user = store.get_user(&param(&r.username, "username")?).await?;
    store.unassign_role(user.id, r.role_id()?).await?;
    ok(json!({}))
}

async fn list_user_roles(_: AppState, who: Caller, Msg(r): Msg<UserReq>) -> ApiResult<Response> {
    let me = session(&who)?;
    let user = me.auth.store.get_user(&param(&r.username, "username")?).await?;
    let roles = visible_roles(me, &user, me.auth.store.list_user_roles(user.id).await?).await?;
    ok(json!({"roles": roles.iter().map(role_json).collect::<Vec<_>>()}))
}

async fn list_role_users(_: AppState, who: Caller, Msg(r): Msg<RoleReq>) -> ApiResult<Response> {
    let users = session(&who)?.auth.store.list_role_users(r.role_id()?).await?;
    let out: Vec<Value> =
        users.iter().map(|a| json!({"id": a.id, "user_id": a.user_id, "role_id": a.role_id})).collect();
    ok(json!({"assignments": out}))
}
