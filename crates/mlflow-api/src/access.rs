//! What a request needs of its caller ([`Need`], built by each route's rule from its typed
//! request) and the decision ([`allows`]): MLflow 3.17.2's `BEFORE_REQUEST_HANDLERS`
//! validators (`mlflow/server/auth/__init__.py`), resolved with `auth::Grants`. Also the row
//! predicates the listing handlers filter with (`_role_based_read_predicate`).
//!
//! As in MLflow: a missing run, logged model or (for version routes) registered model is a
//! 403, not a 404, so the answer is no oracle for which ids exist; a missing required
//! parameter is a 400 before any decision. Admins never reach [`allows`].

use crate::artifact_path::safe_path;
use crate::auth::Session;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use ::auth::permission::{
    validate_resource_type, Action, Pattern, Requirement, EXPERIMENT, LOGGED_MODEL, REGISTERED_MODEL,
    REGISTERED_MODEL_VERSION, RUN, TRACE, WORKSPACE,
};
use ::auth::{Grants, DEFAULT_WORKSPACE};
use tracking::search::{parse_filter, Entity};
use tracking::StoreError;

/// What one request needs. Built from the typed request by the route's rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// Any logged-in user (listings filter their rows themselves).
    Anyone,
    /// Admins only (they skip every rule, so for anyone else this refuses).
    Admin,
    /// `validate_can_create_experiment`: the experiment type is not denied.
    CreateExperiment,
    /// A capability on one experiment, by id.
    Experiment(String, Action),
    /// A capability on every one of these experiments (`validate_can_search_datasets`).
    Experiments(Vec<String>, Action),
    /// READ on the experiment with this name (a 404 if there is none, as in MLflow).
    ExperimentByName(String),
    /// Delete (or restore) an experiment: delete on it and on every tier it contains.
    DeleteExperiment(String),
    /// Create a run: update on the experiment, the run tier not denied.
    CreateRun(String),
    /// An action on a run, judged through its experiment.
    Run(String, Action),
    /// Update a run and every logged model the request writes metrics or links to.
    RunAndModels(String, Vec<String>),
    /// READ on every run (a missing run is a 404 here, as in MLflow's bulk routes).
    RunsBulk(Vec<String>),
    /// Create a logged model in an experiment, reading its source run if one is named.
    CreateLoggedModel { experiment_id: String, source_run_id: Option<String> },
    /// An action on a logged model, judged through its experiment.
    LoggedModel(String, Action),
    /// A search whose filter selects runs (`run_id`, `source_run_id`) needs the run tier.
    SearchSelectingRuns,
    /// `validate_can_create_registered_model`: the name is not denied.
    CreateRegisteredModel(String),
    /// A capability on one registered model, by name (an absent model: the default).
    RegisteredModel(String, Action),
    /// Delete a model and all its versions.
    DeleteRegisteredModel(String),
    /// An action on a model's versions (the model must exist).
    Version(String, Action),
    /// Set (update) or delete (delete) an alias.
    Alias(String, Action),
    /// Create a version: update on the model, READ on the source it names.
    CreateVersion { name: String, source: String, run_id: Option<String>, model_id: Option<String> },
    /// The artifact proxy: an action on an `<experiment>/<run>/artifacts/…` path.
    Artifact(Action, String),
    // ---- the user API ----
    /// `username_is_sender`.
    OwnAccount(String),
    /// `validate_can_create_user`: a workspace admin somewhere.
    CreateUser,
    /// `validate_can_view_user_roles`: self, or admin of a workspace the user is in.
    ViewUserRoles(String),
    /// `validate_can_manage_resource`: MANAGE on the resource (the wildcard: admins).
    ManageResource(String, Pattern),
    /// `validate_can_get_user_permission`.
    GetUserPermission { resource_type: String, username: String },
    /// `validate_can_manage_roles`: admin of the role's workspace.
    ManageRoles(RoleTarget),
    /// `validate_can_view_roles`: a role in the role's workspace.
    ViewRoles(RoleTarget),
    /// `validate_can_list_roles`: a role in every listed workspace (none listed: admins).
    ListRoles(Vec<String>),
}

impl Need {
    /// Every experiment id this need keys a grant by; [`allows`] refuses the request unless
    /// each is in its canonical spelling ([`experiment_id`]). No `_` arm: a new need must say.
    fn experiment_ids(&self) -> Vec<&str> {
        match self {
            Need::Experiment(id, _) | Need::DeleteExperiment(id) | Need::CreateRun(id) => vec![id],
            Need::CreateLoggedModel { experiment_id, .. } => vec![experiment_id],
            Need::Experiments(ids, _) => ids.iter().map(String::as_str).collect(),
            Need::ManageResource(t, Pattern::Id(id)) if t == EXPERIMENT => vec![id],
            Need::ManageResource(..)
            | Need::Anyone
            | Need::Admin
            | Need::CreateExperiment
            | Need::ExperimentByName(_)
            | Need::Run(..)
            | Need::RunAndModels(..)
            | Need::RunsBulk(_)
            | Need::LoggedModel(..)
            | Need::SearchSelectingRuns
            | Need::CreateRegisteredModel(_)
            | Need::RegisteredModel(..)
            | Need::DeleteRegisteredModel(_)
            | Need::Version(..)
            | Need::Alias(..)
            | Need::CreateVersion { .. }
            | Need::Artifact(..)
            | Need::OwnAccount(_)
            | Need::CreateUser
            | Need::ViewUserRoles(_)
            | Need::GetUserPermission { .. }
            | Need::ManageRoles(_)
            | Need::ViewRoles(_)
            | Need::ListRoles(_) => vec![],
        }
    }
}

/// The role a role-API request is about (`_get_role_workspace_from_request`).
#[derive(Debug, Clone, PartialEq)]
pub enum RoleTarget {
    Role(i64),
    RolePermission(i64),
    Workspace(String),
}

impl RoleTarget {
    /// From the request's `role_id`, `role_permission_id` or `workspace`, in MLflow's order.
    pub fn of(
        role_id: &Option<String>,
        role_permission_id: &Option<String>,
        workspace: &Option<String>,
    ) -> ApiResult<RoleTarget> {
        if let Some(id) = role_id {
            return int_param("role_id", id).map(RoleTarget::Role);
        }
        if let Some(id) = role_permission_id {
            return int_param("role_permission_id", id).map(RoleTarget::RolePermission);
        }
        match workspace {
            Some(w) if !w.trim().is_empty() => Ok(RoleTarget::Workspace(w.clone())),
            Some(_) => Err(ApiError::invalid("Parameter 'workspace' must be a non-empty string.")),
            None => Err(ApiError::invalid("Request must include one of: role_id, role_permission_id, workspace.")),
        }
    }
}

/// `_coerce_int_param`.
pub fn int_param(name: &str, raw: &str) -> ApiResult<i64> {
    raw.trim().parse().map_err(|_| ApiError::invalid(format!("Parameter '{name}' must be an integer. Got: '{raw}'")))
}

/// A parameter a rule needs (`_get_request_param`): absent is a 400 before any decision.
pub fn param(value: &Option<String>, name: &str) -> ApiResult<String> {
    value.clone().ok_or_else(|| {
        ApiError::invalid(format!(
            "Missing value for required parameter '{name}'. See the API docs for more information about request parameters."
        ))
    })
}

/// Whether a search filter selects on `attribute` (`_filter_selects_attribute`); a filter that
/// does not parse counts as selecting it, so it is gated rather than waved through.
pub fn filter_selects(filter: Option<&str>, attribute: &str) -> bool {
    match filter.filter(|f| !f.trim().is_empty()) {
        None => false,
        Some(f) => parse_filter(f)
            .map(|p| p.clauses.iter().any(|c| c.entity == Entity::Attribute && c.key == attribute))
            .unwrap_or(true),
    }
}

/// Every tier an experiment delete reaches (`_EXPERIMENT_CASCADE_TIERS`).
const EXPERIMENT_CASCADE: [&str; 7] =
    [RUN, TRACE, LOGGED_MODEL, "assessment", "review_queue", "scorer", "scorer_version"];

/// An experiment id as grants are keyed by it, or a 400. The store reads ids leniently
/// (`trim().parse::<i64>()`: `03`, `+3`, ` 3` and `3\t` all reach experiment 3) while a grant
/// names one spelling, so a check on any other spelling would judge a key no grant names and
/// then act on experiment 3. Only the number's own decimal form is taken: for it the string
/// the check keys and the number the store reads are one experiment.
pub fn experiment_id(id: &str) -> ApiResult<&str> {
    match id.parse::<i64>() {
        Ok(_) if ::auth::permission::is_experiment_id(id) => Ok(id),
        Ok(_) => Err(ApiError::invalid(format!(
            "Invalid experiment ID '{id}'. Write it as a plain decimal integer, without sign, spaces or leading zeros."
        ))),
        Err(_) => {
            Err(ApiError::invalid(format!("Invalid experiment ID '{id}'. Experiment ID must be a valid integer.")))
        }
    }
}

/// `_role_based_read_predicate`: READ on the row's own key, else the workspace grant, else the
/// default. An experiment id in another spelling than its own ([`experiment_id`]) is unreadable.
pub fn readable(grants: &Grants, resource_type: &str, id: &str) -> bool {
    if resource_type == EXPERIMENT && experiment_id(id).is_err() {
        return false;
    }
    grants.satisfied(&Requirement::new(resource_type, id, Action::Read).or_else(WORKSPACE, Pattern::Any))
}

/// Whether a wildcard-only tier (`run`, `logged_model`, …) is not denied as a whole.
pub fn tier_open(grants: &Grants, tier: &str) -> bool {
    grants.satisfied(&Requirement::any(tier, Action::NotDenied))
}

/// The sub-resource tiers a caller is denied as a whole, for MLflow's `redact_*` after-request
/// handlers (`_denied_sibling_tiers`): a response the caller may read still withholds what it
/// says about a denied tier (a version's run, a run's logged models, a logged model's run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Withheld {
    pub runs: bool,
    pub logged_models: bool,
}

impl Withheld {
    pub fn of(who: &crate::auth::Caller) -> Withheld {
        match who.grants() {
            None => Withheld::default(),
            Some(g) => Withheld { runs: !tier_open(g, RUN), logged_models: !tier_open(g, LOGGED_MODEL) },
        }
    }

    /// `_withhold_denied_version_siblings`.
    pub fn version(self, v: &mut tracking::ModelVersion) {
        if self.runs {
            v.run_id = None;
            v.run_link = None;
        }
        if self.logged_models {
            v.model_id = None;
        }
    }

    /// `_withhold_denied_run_model_links`.
    pub fn run(self, r: &mut tracking::Run) {
        if self.logged_models {
            r.model_inputs.clear();
            r.model_outputs.clear();
            self.metrics(&mut r.metrics);
        }
    }

    /// `_withhold_denied_metric_references` for the logged-model tier.
    pub fn metrics(self, metrics: &mut [tracking::Metric]) {
        if self.logged_models {
            for m in metrics {
                m.model_id = None;
            }
        }
    }

    /// `_redact_logged_model_response`: the source run and the runs its metrics came from.
    pub fn logged_model(self, m: &mut tracking::LoggedModel) {
        if self.runs {
            m.source_run_id = None;
            for rm in &mut m.metrics {
                rm.run_id.clear();
            }
        }
    }
}

fn req(t: &str, id: &str, a: Action) -> Requirement {
    Requirement::new(t, id, a)
}

/// `None` for a missing resource (or a malformed id), which denies; other store failures
/// are errors, not denials.
fn found<T>(r: Result<T, StoreError>) -> ApiResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound(_) | StoreError::InvalidParameter(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Decides whether the (non-admin) caller of `session` may make a request that needs `need`.
pub async fn allows(s: &AppState, session: &Session, need: &Need) -> ApiResult<bool> {
    let Some(g) = session.grants.as_ref() else { return Ok(true) };
    let d = Decide { s, session, g };
    d.allows(need).await
}

struct Decide<'a> {
    s: &'a AppState,
    session: &'a Session,
    g: &'a Grants,
}

impl Decide<'_> {
    /// `_run_requirement`: READ on the run's experiment, the action on the run tier.
    async fn run(&self, run_id: &str, action: Action) -> ApiResult<bool> {
        let Some(run) = found(self.s.store.runs().info(run_id).await)? else { return Ok(false) };
        let exp = &run.experiment_id;
        Ok(self.g.authorize(&[req(EXPERIMENT, exp, Action::Read), Requirement::tier(RUN, action, EXPERIMENT, exp)]))
    }

    async fn logged_model(&self, model_id: &str, action: Action) -> ApiResult<bool> {
        let Some(model) = found(self.s.store.logged_models().get(model_id).await)? else { return Ok(false) };
        let exp = &model.experiment_id;
        Ok(self
            .g
            .authorize(&[req(EXPERIMENT, exp, Action::Read), Requirement::tier(LOGGED_MODEL, action, EXPERIMENT, exp)]))
    }

    /// `_registered_model_or_prompt_target`: the model must exist.
    async fn model_exists(&self, name: &str) -> ApiResult<bool> {
        Ok(found(self.s.store.registered_models().get(name).await)?.is_some())
    }

    fn version_tier(&self, name: &str, action: Action) -> bool {
        self.g.authorize(&[
            req(REGISTERED_MODEL, name, Action::Read),
            Requirement::tier(REGISTERED_MODEL_VERSION, action, REGISTERED_MODEL, name),
        ])
    }

    async fn allows(&self, need: &Need) -> ApiResult<bool> {
        for id in need.experiment_ids() {
            experiment_id(id)?;
        }
        let g = self.g;
        Ok(match need {
            Need::Anyone => true,
            Need::Admin => false,
            Need::SearchSelectingRuns => tier_open(g, RUN),
            Need::CreateExperiment => tier_open(g, EXPERIMENT),
            Need::Experiment(id, a) => a.met_by(g.permission(EXPERIMENT, id)),
            Need::Experiments(ids, a) => ids.iter().all(|id| a.met_by(g.permission(EXPERIMENT, id))),
            Need::ExperimentByName(name) => {
                let exp = match self.s.store.experiments().get_by_name(name).await {
                    Ok(e) => e,
                    Err(StoreError::NotFound(_)) => {
                        return Err(ApiError::not_found(format!("Could not find experiment with name {name}")))
                    }
                    Err(e) => return Err(e.into()),
                };
                g.permission(EXPERIMENT, &exp.experiment_id).can_read()
            }
            Need::DeleteExperiment(id) => {
                let mut reqs = vec![req(EXPERIMENT, id, Action::Delete)];
                reqs.extend(EXPERIMENT_CASCADE.iter().map(|t| Requirement::tier(t, Action::Delete, EXPERIMENT, id)));
                g.authorize(&reqs)
            }
            Need::CreateRun(exp) => {
                g.authorize(&[req(EXPERIMENT, exp, Action::Update), Requirement::any(RUN, Action::NotDenied)])
            }
            Need::Run(id, a) => self.run(id, *a).await?,
            Need::RunAndModels(run_id, model_ids) => {
                if !self.run(run_id, Action::Update).await? {
                    return Ok(false);
                }
                for model_id in model_ids {
                    if !self.logged_model(model_id, Action::Update).await? {
                        return Ok(false);
                    }
                }
                true
            }
            Need::RunsBulk(ids) => {
                if ids.is_empty() {
                    return Err(ApiError::invalid(
                        "GetMetricHistoryBulkInterval request must specify at least one run_id.",
                    ));
                }
                for id in ids {
                    let run = self.s.store.runs().info(id).await?;
                    let exp = &run.experiment_id;
                    let reqs =
                        [req(EXPERIMENT, exp, Action::Read), Requirement::tier(RUN, Action::Read, EXPERIMENT, exp)];
                    if !g.authorize(&reqs) {
                        return Ok(false);
                    }
                }
                true
            }
            Need::CreateLoggedModel { experiment_id, source_run_id } => {
                let create =
                    [req(EXPERIMENT, experiment_id, Action::Update), Requirement::any(LOGGED_MODEL, Action::NotDenied)];
                if !g.authorize(&create) {
                    return Ok(false);
                }
                match source_run_id.as_deref().filter(|r| !r.is_empty()) {
                    Some(run) => self.run(run, Action::Read).await?,
                    None => true,
                }
            }
            Need::LoggedModel(id, a) => self.logged_model(id, *a).await?,
            Need::CreateRegisteredModel(name) => {
                // `Requirement(type, name or "*", not_denied)`: the name is a key, never a pattern.
                g.satisfied(&match name.as_str() {
                    "" => Requirement::any(REGISTERED_MODEL, Action::NotDenied),
                    name => req(REGISTERED_MODEL, name, Action::NotDenied),
                })
            }
            Need::RegisteredModel(name, a) => a.met_by(g.permission(REGISTERED_MODEL, name)),
            Need::DeleteRegisteredModel(name) => {
                self.model_exists(name).await?
                    && g.authorize(&[
                        req(REGISTERED_MODEL, name, Action::Delete),
                        Requirement::tier(REGISTERED_MODEL_VERSION, Action::Delete, REGISTERED_MODEL, name),
                    ])
            }
            Need::Version(name, Action::Read) => {
                self.model_exists(name).await?
                    && g.authorize(&[
                        req(REGISTERED_MODEL, name, Action::Read),
                        Requirement::any(REGISTERED_MODEL_VERSION, Action::NotDenied),
                    ])
            }
            Need::Version(name, a) => self.model_exists(name).await? && self.version_tier(name, *a),
            Need::Alias(name, a) => {
                a.met_by(g.permission(REGISTERED_MODEL, name))
                    && self.model_exists(name).await?
                    && g.satisfied(&Requirement::tier(REGISTERED_MODEL_VERSION, Action::Read, REGISTERED_MODEL, name))
            }
            Need::CreateVersion { name, source, run_id, model_id } => {
                self.create_version(name, source, run_id.as_deref(), model_id.as_deref()).await?
            }
            Need::Artifact(a, path) => self.artifact(*a, path),
            Need::OwnAccount(username) => *username == self.session.user.username,
            Need::CreateUser => !self.store().workspace_admin_workspaces(self.me()).await?.is_empty(),
            Need::ViewUserRoles(target) => self.view_user_roles(target).await?,
            Need::ManageResource(resource_type, pattern) => self.manage_resource(resource_type, pattern).await?,
            Need::GetUserPermission { resource_type, username } => {
                check_grant_type(resource_type)?;
                if *username == self.session.user.username {
                    return Ok(true);
                }
                self.store().has_user(username).await? && self.workspace_admin(DEFAULT_WORKSPACE).await?
            }
            Need::ManageRoles(target) => match self.role_workspace(target).await? {
                None => false,
                Some(w) => self.workspace_admin(&w).await?,
            },
            Need::ViewRoles(target) => match self.role_workspace(target).await? {
                None => false,
                Some(w) => self.store().present_workspaces(self.me()).await?.contains(&w),
            },
            Need::ListRoles(workspaces) => {
                let requested: Vec<&str> = workspaces.iter().map(|w| w.trim()).filter(|w| !w.is_empty()).collect();
                let present = self.store().present_workspaces(self.me()).await?;
                !requested.is_empty() && requested.iter().all(|w| present.iter().any(|p| p == w))
            }
        })
    }

    fn store(&self) -> &::auth::AuthStore {
        &self.session.auth.store
    }

    fn me(&self) -> i64 {
        self.session.user.id
    }

    async fn workspace_admin(&self, workspace: &str) -> ApiResult<bool> {
        Ok(self.store().workspace_admin_workspaces(self.me()).await?.iter().any(|w| w == workspace))
    }

    /// `validate_can_view_user_roles`: self, or admin of a workspace the target has a role in.
    async fn view_user_roles(&self, target: &str) -> ApiResult<bool> {
        if target == self.session.user.username {
            return Ok(true);
        }
        if !self.store().has_user(target).await? {
            return Ok(false);
        }
        let target = self.store().get_user(target).await?;
        let mine = self.store().workspace_admin_workspaces(self.me()).await?;
        Ok(self.store().present_workspaces(target.id).await?.iter().any(|w| mine.contains(w)))
    }

    /// `validate_can_manage_resource`: a wildcard grant is written like a role grant (admins
    /// and workspace admins); a grant on one resource needs MANAGE on it.
    async fn manage_resource(&self, resource_type: &str, pattern: &Pattern) -> ApiResult<bool> {
        check_grant_type(resource_type)?;
        match pattern {
            Pattern::Any => self.workspace_admin(DEFAULT_WORKSPACE).await,
            Pattern::Id(id) => {
                if ![EXPERIMENT, REGISTERED_MODEL].contains(&resource_type) {
                    return Err(ApiError::invalid(format!(
                        "resource_type '{resource_type}' is not supported by the per-user permission convenience APIs."
                    )));
                }
                Ok(self.g.permission(resource_type, id).can_manage())
            }
        }
    }

    /// The workspace a role request targets; `None` when the role does not exist.
    async fn role_workspace(&self, target: &RoleTarget) -> ApiResult<Option<String>> {
        let missing = |r: Result<String, ::auth::AuthError>| match r {
            Ok(w) => Ok(Some(w)),
            Err(::auth::AuthError::NotFound(_)) => Ok(None),
            Err(e) => Err(ApiError::from(e)),
        };
        match target {
            RoleTarget::Role(id) => missing(self.store().get_role(*id).await.map(|r| r.workspace)),
            RoleTarget::RolePermission(id) => match self.store().get_role_permission(*id).await {
                Ok(rp) => missing(self.store().get_role(rp.role_id).await.map(|r| r.workspace)),
                Err(e) => missing(Err(e)),
            },
            RoleTarget::Workspace(w) => Ok(Some(w.clone())),
        }
    }

    /// `validate_can_create_model_version`: UPDATE on the model, and READ on the source.
    async fn create_version(
        &self,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        model_id: Option<&str>,
    ) -> ApiResult<bool> {
        if !self.model_exists(name).await?
            || !self.g.authorize(&[
                req(REGISTERED_MODEL, name, Action::Update),
                Requirement::any(REGISTERED_MODEL_VERSION, Action::NotDenied),
            ])
        {
            return Ok(false);
        }
        // The scheme in any case, as MLflow's `urlparse` reads it (`Models:/m/1` is `models:/m/1`).
        let models_uri = tracking::after_scheme(source, "models").and_then(|r| r.strip_prefix('/'));
        if let Some(rest) = models_uri {
            if let Some(cut) = rest.find(['/', '@']) {
                let source_model = &rest[..cut];
                return Ok(self.model_exists(source_model).await?
                    && self.g.permission(REGISTERED_MODEL, source_model).can_read());
            }
        }
        // Present means anchored to that source, even when empty (which then denies).
        if let Some(run) = run_id {
            if !self.run(run, Action::Read).await? {
                return Ok(false);
            }
        }
        if let Some(model) = model_id {
            if !self.logged_model(model, Action::Read).await? {
                return Ok(false);
            }
        }
        if let Some(model) = models_uri.filter(|r| !r.contains(['/', '@']) && !r.is_empty()) {
            return self.logged_model(model, Action::Read).await;
        }
        Ok(true)
    }

    /// The artifact proxy (`_authorize_flask_artifact_proxy`): `<experiment>/<run>/artifacts/…`
    /// is judged as the run, `models/…` as logged models, a recursive delete on every tier it
    /// reaches; a path that does not canonicalise is denied.
    fn artifact(&self, action: Action, path: &str) -> bool {
        let g = self.g;
        if path.is_empty() {
            return action.met_by(g.default_permission());
        }
        let Ok(canonical) = safe_path(path) else { return false };
        let canonical = canonical.to_string();
        let Some((exp, tiers)) = artifact_tiers(&canonical, action == Action::Manage) else {
            // No experiment in the path: the default permission decides.
            return action.met_by(g.default_permission());
        };
        if tiers.is_empty() {
            return action.met_by(g.permission(EXPERIMENT, exp));
        }
        let mut reqs = vec![req(EXPERIMENT, exp, Action::Read)];
        reqs.extend(tiers.iter().map(|t| Requirement::tier(t, action, EXPERIMENT, exp)));
        g.authorize(&reqs)
    }
}

/// `_artifact_proxy_child_types` on a canonical path: the experiment it is under and the tiers
/// it is judged against (none: the experiment's own business). `None` names no experiment.
pub fn artifact_tiers(canonical: &str, recursive: bool) -> Option<(&str, Vec<&'static str>)> {
    let mut segments = canonical.split('/').filter(|s| !s.is_empty());
    let exp = segments.next().filter(|s| s.chars().all(|c| c.is_ascii_digit()))?;
    let rest: Vec<&str> = segments.collect();
    let tiers = match rest.as_slice() {
        [] if recursive => vec![RUN, TRACE, LOGGED_MODEL],
        [] => vec![],
        ["models", ..] => vec![LOGGED_MODEL],
        ["traces", ..] => vec![TRACE],
        [_, "artifacts", ..] => vec![RUN],
        [first, ..] if is_run_id(first) => vec![RUN],
        _ if recursive => vec![RUN],
        _ => vec![],
    };
    Some((exp, tiers))
}

/// `_RUN_ID_SEGMENT_PATTERN`: 32 lowercase hex digits.
pub fn is_run_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// The resource types the per-user grant APIs take (`_reject_workspace_resource_type`).
pub fn check_grant_type(resource_type: &str) -> ApiResult<()> {
    if resource_type == WORKSPACE {
        return Err(ApiError::invalid(
            "resource_type 'workspace' is not supported by the per-user permission convenience APIs. Use \
             set_workspace_permission / delete_workspace_permission for workspace-wide grants.",
        ));
    }
    validate_resource_type(resource_type).map_err(ApiError::invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_name_their_tier() {
        let run = "0123456789abcdef0123456789abcdef";
        let check = |path: &str, recursive: bool, want: Option<(&str, Vec<&str>)>| {
            assert_eq!(artifact_tiers(path, recursive), want, "{path} recursive={recursive}");
        };
        check(&format!("1/{run}/artifacts/model"), false, Some(("1", vec![RUN])));
        check(&format!("1/{run}"), false, Some(("1", vec![RUN])));
        check("1/models/m-1/artifacts", false, Some(("1", vec![LOGGED_MODEL])));
        check("1", false, Some(("1", vec![])));
        check("1", true, Some(("1", vec![RUN, TRACE, LOGGED_MODEL])));
        check("1/notes.txt", false, Some(("1", vec![])));
        check("1/notes.txt", true, Some(("1", vec![RUN])));
        check("abc/x", false, None);
    }

    #[test]
    fn experiment_ids_only_in_their_own_spelling() {
        for ok in ["0", "3", "12", "-1", "9223372036854775807"] {
            assert_eq!(experiment_id(ok).unwrap(), ok);
        }
        // Each of these the store reads as a number, most of them as 3.
        for bad in ["03", "+3", " 3", "3 ", "3\t", "\n3", "-0", "00", "", "x", "3x", "9223372036854775808"] {
            assert!(experiment_id(bad).is_err(), "{bad:?}");
        }
        let need = Need::Experiments(vec!["1".into(), "02".into()], Action::Read);
        assert_eq!(need.experiment_ids(), ["1", "02"]);
        assert_eq!(Need::ManageResource(EXPERIMENT.into(), Pattern::Id("+3".into())).experiment_ids(), ["+3"]);
        assert!(Need::ManageResource(REGISTERED_MODEL.into(), Pattern::Id("03".into())).experiment_ids().is_empty());
    }

    #[test]
    fn filters_selecting_runs() {
        assert!(!filter_selects(None, "run_id"));
        assert!(!filter_selects(Some("name = 'a'"), "run_id"));
        assert!(filter_selects(Some("run_id = 'x'"), "run_id"));
        assert!(!filter_selects(Some("tags.run_id = 'x'"), "run_id"));
        assert!(filter_selects(Some("name = 'unterminated"), "run_id"));
    }

    #[test]
    fn role_targets_in_mlflows_order() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(RoleTarget::of(&s("3"), &s("4"), &s("w")).unwrap(), RoleTarget::Role(3));
        assert_eq!(RoleTarget::of(&None, &s("4"), &None).unwrap(), RoleTarget::RolePermission(4));
        assert!(RoleTarget::of(&s("x"), &None, &None).unwrap_err().message.contains("must be an integer"));
        assert!(RoleTarget::of(&None, &None, &s(" ")).is_err());
        assert!(RoleTarget::of(&None, &None, &None).unwrap_err().message.contains("Request must include one of"));
    }
}
