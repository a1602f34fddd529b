//! `--app-name basic-auth`: the HTTP side of MLflow 3.17.2's auth app. One axum middleware
//! ([`layer`]) authenticates every request except `/health`, `/static…`, `/favicon.ico` and
//! `/api/3.0/mlflow/server-info` (HTTP Basic; 401 + `WWW-Authenticate: Basic realm="mlflow"`),
//! throttles failed logins, and then does what MLflow's `_before_request` validators do for
//! the route (403 `Permission denied`), and what its `_after_request` handlers do on success
//! (creator gets MANAGE, grants follow renames and deletes, search results are filtered to
//! what the caller may read). Admins skip the checks but not the after-handlers.
//!
//! Resource lookups (a run's experiment, a model's existence) are made here against the
//! tracking store; the permission arithmetic is `auth::Grants`.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use ::auth::permission::{
    Action, Requirement, EXPERIMENT, LOGGED_MODEL, REGISTERED_MODEL, REGISTERED_MODEL_VERSION, RUN, TRACE, WORKSPACE,
};
use ::auth::{AuthError, AuthStore, Grants, Permission, User};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The auth app's state: its store and settings, and the failed-login throttle.
pub struct Auth {
    pub store: AuthStore,
    pub default_permission: Permission,
    limiter: Limiter,
}

impl Auth {
    pub fn new(store: AuthStore, default_permission: Permission) -> Auth {
        Auth { store, default_permission, limiter: Limiter::default() }
    }

    pub async fn grants(&self, user: &User) -> ApiResult<Grants> {
        Ok(self.store.grants(user.id, self.default_permission).await?)
    }
}

/// The authenticated caller, put in the request's extensions for the user API handlers.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub User);

// ---- responses MLflow sends ----

pub fn unauthenticated() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"mlflow\""), (header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "You are not authenticated. Please see \
         https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.",
    )
        .into_response()
}

pub fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], "Permission denied").into_response()
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, HeaderValue::from(secs)),
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        ],
        format!("Too many failed login attempts. Try again in {secs} seconds."),
    )
        .into_response()
}

// ---- failed-login throttle ----

/// Failures allowed per (username, client address) in [`WINDOW`] before a [`LOCKOUT`].
pub const MAX_FAILURES: usize = 10;
/// Failures allowed per client address (any usernames) in [`WINDOW`].
pub const MAX_FAILURES_PER_ADDRESS: usize = 100;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const LOCKOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Limiter {
    entries: Mutex<HashMap<String, Strikes>>,
}

#[derive(Default)]
struct Strikes {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

impl Limiter {
    fn keys(username: &str, ip: Option<IpAddr>) -> [(String, usize); 2] {
        let ip = ip.map(|i| i.to_string()).unwrap_or_default();
        [(format!("u\0{username}\0{ip}"), MAX_FAILURES), (format!("a\0{ip}"), MAX_FAILURES_PER_ADDRESS)]
    }

    /// How long the caller must still wait, if locked out.
    fn locked(&self, username: &str, ip: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        Limiter::keys(username, ip)
            .iter()
            .filter_map(|(k, _)| entries.get(k)?.locked_until.filter(|t| *t > now).map(|t| t - now))
            .max()
    }

    fn failure(&self, username: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 100_000 {
            entries.retain(|_, s| s.failures.back().is_some_and(|t| now - *t < WINDOW));
        }
        for (key, max) in Limiter::keys(username, ip) {
            let s = entries.entry(key).or_default();
            while s.failures.front().is_some_and(|t| now - *t >= WINDOW) {
                s.failures.pop_front();
            }
            s.failures.push_back(now);
            if s.failures.len() >= max {
                s.locked_until = Some(now + LOCKOUT);
                s.failures.clear();
                tracing::warn!(username, "too many failed logins; locked out for {}s", LOCKOUT.as_secs());
            }
        }
    }

    fn success(&self, username: &str, ip: Option<IpAddr>) {
        let [(user_key, _), _] = Limiter::keys(username, ip);
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&user_key);
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// `is_unprotected_route` plus the public server-info route.
fn is_open(path: &str) -> bool {
    ["/static", "/favicon.ico", "/health"].iter().any(|p| path.starts_with(p))
        || path == "/api/3.0/mlflow/server-info"
        || path == "/ajax-api/3.0/mlflow/server-info"
}

// ---- request parameters, read as `_get_request_param` reads them ----

/// GET: the query string; POST/PATCH: the JSON body; DELETE: the JSON body if there is one,
/// else the query string. Repeated query keys become arrays.
#[derive(Debug, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn read(method: &Method, query: &str, body: &[u8], body_is_json: bool) -> Params {
        let from_query = || {
            let mut map = Map::new();
            for (k, v) in form_pairs(query) {
                match map.get_mut(&k) {
                    Some(Value::Array(a)) => a.push(Value::String(v)),
                    Some(old) => *old = Value::Array(vec![old.take(), Value::String(v)]),
                    None => {
                        map.insert(k, Value::String(v));
                    }
                }
            }
            Params(map)
        };
        let from_body = || match crate::json::parse_body::<Value>(body) {
            Ok(Value::Object(m)) => Params(m),
            _ => Params::default(),
        };
        match *method {
            Method::GET => from_query(),
            Method::DELETE if body_is_json || !body.iter().all(u8::is_ascii_whitespace) => from_body(),
            Method::DELETE => from_query(),
            _ => from_body(),
        }
    }

    pub fn opt(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Array(a) => a.first().and_then(|v| v.as_str().map(str::to_string)),
            _ => None,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A required parameter, with MLflow's message when it is missing (`run_id` falls back
    /// to `run_uuid`).
    pub fn req(&self, name: &str) -> ApiResult<String> {
        if let Some(v) = self.opt(name) {
            return Ok(v);
        }
        if name == "run_id" {
            return self.req("run_uuid");
        }
        Err(ApiError::invalid(format!(
            "Missing value for required parameter '{name}'. See the API docs for more information about request parameters."
        )))
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
}

/// `query` with every `key` pair replaced by `values`.
fn form_with(query: &str, key: &str, values: &[String]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let mut pairs: Vec<String> = form_pairs(query)
        .into_iter()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| format!("{}={}", enc(&k), enc(&v)))
        .collect();
    pairs.extend(values.iter().map(|v| format!("{}={}", enc(key), enc(v))));
    pairs.join("&")
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    let dec = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

// ---- the route table: what each MLflow route requires (BEFORE_REQUEST_HANDLERS) ----

#[derive(Debug, Clone, PartialEq)]
enum Check {
    /// Any authenticated user (also routes MLflow does not gate, e.g. searches it filters).
    Authenticated,
    /// The user API: the handlers decide.
    UserApi,
    CreateExperiment,
    /// A capability on the experiment named by `experiment_id`.
    Experiment(Action),
    ExperimentByName,
    DeleteExperiment,
    CreateRun,
    /// An action on the run named by `run_id`, through its experiment.
    Run(Action),
    /// Run update that may also write to logged models named in the body.
    RunWithModels,
    /// READ on every run in `run_ids`.
    Runs,
    SearchRuns,
    CreateLoggedModel,
    LoggedModel(Action, String),
    SearchLoggedModels,
    CreateRegisteredModel,
    /// A capability on the registered model named by `name` (absent model: default).
    RegisteredModel(Action),
    DeleteRegisteredModel,
    /// Version routes: `name` must exist; READ on the model plus the version tier.
    Version(Action),
    SetAlias,
    DeleteAlias,
    CreateModelVersion,
    SearchRegisteredModels,
    SearchModelVersions,
    SearchExperiments,
    Artifact(Action, String),
    Admin,
}

fn classify(method: &Method, path: &str) -> Check {
    use Check::*;
    let m = method.as_str();
    for prefix in ["/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow-artifacts/artifacts"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let artifact = rest.trim_start_matches('/');
            let artifact = percent_decode_str(artifact).decode_utf8_lossy().into_owned();
            return match (m, artifact.is_empty()) {
                ("GET", true) => Artifact(Action::Read, String::new()),
                ("GET", false) => Artifact(Action::Read, artifact),
                ("PUT", _) | ("POST", _) => Artifact(Action::Update, artifact),
                ("DELETE", _) => Artifact(Action::Manage, artifact),
                _ => Authenticated,
            };
        }
    }
    if let Some(rest) = path.strip_prefix("/api/2.0/factory/") {
        return match rest {
            "registered-models/history" => RegisteredModel(Action::Read),
            _ => Admin,
        };
    }
    let rest = ["/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/"]
        .iter()
        .find_map(|p| path.strip_prefix(p));
    let Some(rest) = rest else { return Authenticated };
    if rest.starts_with("users/") || rest.starts_with("roles/") {
        return UserApi;
    }
    if let Some(lm) = rest.strip_prefix("logged-models") {
        let parts: Vec<&str> = lm.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        return match (m, parts.as_slice()) {
            ("POST", []) => CreateLoggedModel,
            (_, ["search"]) => SearchLoggedModels,
            ("GET", [id]) => LoggedModel(Action::Read, id.to_string()),
            ("PATCH", [id]) => LoggedModel(Action::Update, id.to_string()),
            ("DELETE", [id]) => LoggedModel(Action::Delete, id.to_string()),
            ("PATCH", [id, "tags"]) | ("POST", [id, "params"]) => LoggedModel(Action::Update, id.to_string()),
            ("DELETE", [id, "tags", _]) => LoggedModel(Action::Delete, id.to_string()),
            ("GET", [id, "artifacts", ..]) => LoggedModel(Action::Read, id.to_string()),
            _ => Authenticated,
        };
    }
    match (m, rest) {
        ("POST", "experiments/create") => CreateExperiment,
        (_, "experiments/get") => Experiment(Action::Read),
        (_, "experiments/get-by-name") => ExperimentByName,
        (_, "experiments/delete" | "experiments/restore") => DeleteExperiment,
        (_, "experiments/update" | "experiments/set-experiment-tag" | "experiments/delete-experiment-tag") => {
            Experiment(Action::Update)
        }
        (_, "experiments/search" | "experiments/list") => SearchExperiments,
        (_, "runs/create") => CreateRun,
        (_, "runs/get" | "metrics/get-history" | "artifacts/list") => Run(Action::Read),
        (_, "runs/delete" | "runs/restore") => Run(Action::Delete),
        (_, "runs/update" | "runs/log-parameter" | "runs/set-tag" | "runs/delete-tag" | "runs/log-model") => {
            Run(Action::Update)
        }
        (_, "runs/log-metric" | "runs/log-batch" | "runs/log-inputs" | "runs/outputs") => RunWithModels,
        (_, "metrics/get-history-bulk-interval" | "metrics/get-history-bulk") => Runs,
        (_, "runs/search") => SearchRuns,
        (_, "registered-models/create") => CreateRegisteredModel,
        (_, "registered-models/get") => RegisteredModel(Action::Read),
        (_, "registered-models/delete") => DeleteRegisteredModel,
        (
            _,
            "registered-models/update"
            | "registered-models/rename"
            | "registered-models/set-tag"
            | "registered-models/delete-tag",
        ) => RegisteredModel(Action::Update),
        (_, "registered-models/search") => SearchRegisteredModels,
        (_, "registered-models/get-latest-versions") => Version(Action::Read),
        ("POST", "registered-models/alias") => SetAlias,
        ("DELETE", "registered-models/alias") => DeleteAlias,
        (_, "registered-models/alias") => Version(Action::Read),
        (_, "model-versions/create") => CreateModelVersion,
        (_, "model-versions/get" | "model-versions/get-download-uri") => Version(Action::Read),
        (_, "model-versions/update" | "model-versions/transition-stage" | "model-versions/set-tag") => {
            Version(Action::Update)
        }
        (_, "model-versions/delete" | "model-versions/delete-tag") => Version(Action::Delete),
        (_, "model-versions/search") => SearchModelVersions,
        _ => Authenticated,
    }
}

impl Check {
    /// Whether the check reads request parameters (so the body must be buffered).
    fn reads_params(&self) -> bool {
        !matches!(
            self,
            Check::Authenticated | Check::UserApi | Check::Artifact(..) | Check::Admin | Check::LoggedModel(..)
        )
    }
}

/// Every tier an experiment delete reaches (`_EXPERIMENT_CASCADE_TIERS`).
const EXPERIMENT_CASCADE: [&str; 7] =
    [RUN, TRACE, LOGGED_MODEL, "assessment", "review_queue", "scorer", "scorer_version"];

fn req(t: &str, id: &str, a: Action) -> Requirement {
    Requirement::new(t, id, a)
}

/// What the middleware needs to decide.
struct Ctx<'a> {
    s: &'a AppState,
    grants: &'a Grants,
    params: &'a Params,
}

impl Ctx<'_> {
    fn experiment(&self, id: &str) -> Permission {
        self.grants.permission(EXPERIMENT, id)
    }

    /// `_run_requirement`: a missing run denies (403, not 404), as MLflow does.
    async fn run(&self, run_id: &str, action: Action) -> ApiResult<bool> {
        let run = match self.s.store.runs().get(run_id).await {
            Ok(r) => r,
            Err(tracking::StoreError::NotFound(_)) | Err(tracking::StoreError::InvalidParameter(_)) => {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        };
        let exp = &run.info.experiment_id;
        Ok(self
            .grants
            .authorize(&[req(EXPERIMENT, exp, Action::Read), Requirement::tier(RUN, action, EXPERIMENT, exp)]))
    }

    async fn logged_model(&self, model_id: &str, action: Action) -> ApiResult<bool> {
        let model = match self.s.store.logged_models().get(model_id).await {
            Ok(m) => m,
            Err(tracking::StoreError::NotFound(_)) | Err(tracking::StoreError::InvalidParameter(_)) => {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        };
        let exp = &model.experiment_id;
        Ok(self
            .grants
            .authorize(&[req(EXPERIMENT, exp, Action::Read), Requirement::tier(LOGGED_MODEL, action, EXPERIMENT, exp)]))
    }

    /// `_registered_model_or_prompt_target`: the model must exist.
    async fn model_exists(&self, name: &str) -> ApiResult<bool> {
        match self.s.store.registered_models().get(name).await {
            Ok(_) => Ok(true),
            Err(tracking::StoreError::NotFound(_)) | Err(tracking::StoreError::InvalidParameter(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn version_tier(&self, name: &str, action: Action) -> bool {
        self.grants.authorize(&[
            req(REGISTERED_MODEL, name, Action::Read),
            Requirement::tier(REGISTERED_MODEL_VERSION, action, REGISTERED_MODEL, name),
        ])
    }

    async fn decide(&self, check: &Check) -> ApiResult<bool> {
        let p = self.params;
        let g = self.grants;
        Ok(match check {
            Check::Authenticated | Check::UserApi => true,
            Check::Admin => false,
            Check::SearchExperiments | Check::SearchRegisteredModels | Check::SearchRuns => true,
            // Gated only when the filter selects runs (`validate_can_search_*`); rows are filtered after.
            Check::SearchLoggedModels | Check::SearchModelVersions => {
                let filter = p.opt("filter").unwrap_or_default();
                !filter.contains("run_id") || g.satisfied(&req(RUN, "*", Action::NotDenied))
            }
            Check::CreateExperiment => g.satisfied(&req(EXPERIMENT, "*", Action::NotDenied)),
            Check::Experiment(a) => a.met_by(self.experiment(&p.req("experiment_id")?)),
            Check::ExperimentByName => {
                let name = p.req("experiment_name")?;
                let exp = match self.s.store.experiments().get_by_name(&name).await {
                    Ok(e) => e,
                    Err(tracking::StoreError::NotFound(_)) => {
                        return Err(ApiError::not_found(format!("Could not find experiment with name {name}")))
                    }
                    Err(e) => return Err(e.into()),
                };
                self.experiment(&exp.experiment_id).can_read()
            }
            Check::DeleteExperiment => {
                let id = p.req("experiment_id")?;
                let mut reqs = vec![req(EXPERIMENT, &id, Action::Delete)];
                reqs.extend(EXPERIMENT_CASCADE.iter().map(|t| Requirement::tier(t, Action::Delete, EXPERIMENT, &id)));
                g.authorize(&reqs)
            }
            Check::CreateRun => {
                let id = p.req("experiment_id")?;
                g.authorize(&[req(EXPERIMENT, &id, Action::Update), req(RUN, "*", Action::NotDenied)])
            }
            Check::Run(a) => self.run(&p.req("run_id")?, *a).await?,
            Check::RunWithModels => {
                if !self.run(&p.req("run_id")?, Action::Update).await? {
                    return Ok(false);
                }
                for model_id in model_ids_in(&p.0) {
                    if !self.logged_model(&model_id, Action::Update).await? {
                        return Ok(false);
                    }
                }
                true
            }
            Check::Runs => {
                let ids = p.list("run_ids").into_iter().chain(p.list("run_id")).collect::<Vec<_>>();
                if ids.is_empty() {
                    return Err(ApiError::invalid(
                        "GetMetricHistoryBulkInterval request must specify at least one run_id.",
                    ));
                }
                for id in ids {
                    if !self.run(&id, Action::Read).await? {
                        return Ok(false);
                    }
                }
                true
            }
            Check::CreateLoggedModel => {
                let exp = p.req("experiment_id")?;
                if !g.authorize(&[req(EXPERIMENT, &exp, Action::Update), req(LOGGED_MODEL, "*", Action::NotDenied)]) {
                    return Ok(false);
                }
                match p.opt("source_run_id").filter(|r| !r.is_empty()) {
                    Some(run) => self.run(&run, Action::Read).await?,
                    None => true,
                }
            }
            Check::LoggedModel(a, id) => self.logged_model(id, *a).await?,
            Check::CreateRegisteredModel => g.satisfied(&req(REGISTERED_MODEL, &p.req("name")?, Action::NotDenied)),
            Check::RegisteredModel(a) => a.met_by(g.permission(REGISTERED_MODEL, &p.req("name")?)),
            Check::DeleteRegisteredModel => {
                let name = p.req("name")?;
                self.model_exists(&name).await?
                    && g.authorize(&[
                        req(REGISTERED_MODEL, &name, Action::Delete),
                        Requirement::tier(REGISTERED_MODEL_VERSION, Action::Delete, REGISTERED_MODEL, &name),
                    ])
            }
            Check::Version(Action::Read) => {
                let name = p.req("name")?;
                self.model_exists(&name).await?
                    && g.authorize(&[
                        req(REGISTERED_MODEL, &name, Action::Read),
                        req(REGISTERED_MODEL_VERSION, "*", Action::NotDenied),
                    ])
            }
            Check::Version(a) => {
                let name = p.req("name")?;
                self.model_exists(&name).await? && self.version_tier(&name, *a)
            }
            Check::SetAlias | Check::DeleteAlias => {
                let name = p.req("name")?;
                let need = if *check == Check::SetAlias { Action::Update } else { Action::Delete };
                need.met_by(g.permission(REGISTERED_MODEL, &name))
                    && self.model_exists(&name).await?
                    && g.satisfied(&Requirement::tier(REGISTERED_MODEL_VERSION, Action::Read, REGISTERED_MODEL, &name))
            }
            Check::CreateModelVersion => self.create_version().await?,
            Check::Artifact(a, path) => self.artifact(*a, path),
        })
    }

    /// `validate_can_create_model_version`: UPDATE on the model, and READ on the source.
    async fn create_version(&self) -> ApiResult<bool> {
        let p = self.params;
        let name = p.req("name")?;
        if !self.model_exists(&name).await?
            || !self.grants.authorize(&[
                req(REGISTERED_MODEL, &name, Action::Update),
                req(REGISTERED_MODEL_VERSION, "*", Action::NotDenied),
            ])
        {
            return Ok(false);
        }
        let source = p.opt("source").unwrap_or_default();
        if let Some(rest) = source.strip_prefix("models:/") {
            if let Some(cut) = rest.find(['/', '@']) {
                let source_model = &rest[..cut];
                return Ok(self.model_exists(source_model).await?
                    && self.grants.permission(REGISTERED_MODEL, source_model).can_read());
            }
        }
        if p.has("run_id") && !self.run(&p.opt("run_id").unwrap_or_default(), Action::Read).await? {
            return Ok(false);
        }
        if p.has("model_id") && !self.logged_model(&p.opt("model_id").unwrap_or_default(), Action::Read).await? {
            return Ok(false);
        }
        if let Some(model_id) = source.strip_prefix("models:/").filter(|r| !r.contains(['/', '@']) && !r.is_empty()) {
            return self.logged_model(model_id, Action::Read).await;
        }
        Ok(true)
    }

    /// The artifact proxy (`_authorize_flask_artifact_proxy`): `<experiment>/<run>/artifacts/…`
    /// is judged as the run, `models/…` as logged models, a recursive delete on every tier it
    /// reaches; a path that does not canonicalise is denied.
    fn artifact(&self, action: Action, path: &str) -> bool {
        let path = if path.is_empty() { self.params.opt("path").unwrap_or_default() } else { path.to_string() };
        if path.is_empty() {
            return action.met_by(self.grants.default_permission());
        }
        let Ok(canonical) = crate::artifacts::safe_path(&path) else { return false };
        let canonical = canonical.to_string();
        let mut segments = canonical.split('/').filter(|s| !s.is_empty());
        let Some(exp) = segments.next().filter(|s| s.chars().all(|c| c.is_ascii_digit())) else {
            // No experiment in the path: the default permission decides.
            return action.met_by(self.grants.default_permission());
        };
        let rest: Vec<&str> = segments.collect();
        let recursive = action == Action::Manage;
        let tiers: Vec<&str> = match rest.as_slice() {
            [] if recursive => vec![RUN, TRACE, LOGGED_MODEL],
            [] => vec![],
            ["models", ..] => vec![LOGGED_MODEL],
            ["traces", ..] => vec![TRACE],
            [_, "artifacts", ..] => vec![RUN],
            [first, ..] if first.len() == 32 && first.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) => vec![RUN],
            _ if recursive => vec![RUN],
            _ => vec![],
        };
        if tiers.is_empty() {
            return action.met_by(self.experiment(exp));
        }
        let mut reqs = vec![req(EXPERIMENT, exp, Action::Read)];
        reqs.extend(tiers.iter().map(|t| Requirement::tier(t, action, EXPERIMENT, exp)));
        self.grants.authorize(&reqs)
    }
}

/// `model_id`s a log-metric / log-batch / log-inputs / outputs body writes to.
fn model_ids_in(body: &Map<String, Value>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(id) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            if !ids.iter().any(|x| x == id) {
                ids.push(id.to_string());
            }
        }
    };
    push(body.get("model_id"));
    for list in ["metrics", "models"] {
        if let Some(Value::Array(items)) = body.get(list) {
            for item in items {
                push(item.get("model_id"));
            }
        }
    }
    ids
}

/// What to do with a successful response (`AFTER_REQUEST_PATH_HANDLERS`).
enum After {
    Nothing,
    GrantExperimentOwner,
    GrantModelOwner,
    DropModelGrants(String),
    RenameModelGrants(String, String),
    Filter(Check),
}

fn after_for(check: &Check, path: &str, params: &Params) -> After {
    match check {
        Check::CreateExperiment => After::GrantExperimentOwner,
        Check::CreateRegisteredModel => After::GrantModelOwner,
        Check::DeleteRegisteredModel => params.opt("name").map_or(After::Nothing, After::DropModelGrants),
        Check::RegisteredModel(Action::Update) if path.ends_with("/registered-models/rename") => {
            match (params.opt("name"), params.opt("new_name")) {
                (Some(old), Some(new)) => After::RenameModelGrants(old, new),
                _ => After::Nothing,
            }
        }
        Check::SearchExperiments
        | Check::SearchRegisteredModels
        | Check::SearchModelVersions
        | Check::SearchLoggedModels => After::Filter(check.clone()),
        _ => After::Nothing,
    }
}

/// The middleware. See the module documentation.
pub async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(auth) = s.auth.clone() else { return next.run(req).await };
    let path = req.uri().path().to_string();
    if is_open(&path) {
        return next.run(req).await;
    }
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some((username, password)) = basic_credentials(req.headers()) else { return unauthenticated() };
    if let Some(wait) = auth.limiter.locked(&username, ip) {
        return too_many(wait);
    }
    let user = match auth.store.authenticate(&username, &password).await {
        Ok(Some(u)) => {
            auth.limiter.success(&username, ip);
            u
        }
        Ok(None) => {
            auth.limiter.failure(&username, ip);
            return unauthenticated();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    match authorize_and_run(&s, &auth, user, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn authorize_and_run(s: &AppState, auth: &Auth, user: User, req: Request, next: Next) -> ApiResult<Response> {
    let check = classify(req.method(), req.uri().path());
    let path = req.uri().path().to_string();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(CurrentUser(user.clone()));
    let (body, params) = if check.reads_params() || matches!(check, Check::Artifact(..)) && parts.method == Method::GET
    {
        let bytes = axum::body::to_bytes(body, crate::json::MAX_JSON_BODY)
            .await
            .map_err(|e| ApiError::invalid(format!("Could not read the request body: {e}")))?;
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let params = Params::read(&parts.method, parts.uri.query().unwrap_or(""), &bytes, is_json);
        (Body::from(bytes), params)
    } else {
        (body, Params::default())
    };
    let grants = if user.is_admin { None } else { Some(auth.grants(&user).await?) };
    let mut body = body;
    if let Some(grants) = &grants {
        let ctx = Ctx { s, grants, params: &params };
        if !ctx.decide(&check).await? {
            return Ok(forbidden());
        }
        if check == Check::SearchRuns {
            if let Some(rewritten) = filter_search_runs(grants, &params) {
                if rewritten.list("experiment_ids").is_empty() {
                    return Ok(crate::json::Reply(serde_json::json!({})).into_response());
                }
                parts.headers.remove(header::CONTENT_LENGTH);
                if parts.method == Method::GET {
                    let query =
                        form_with(parts.uri.query().unwrap_or(""), "experiment_ids", &rewritten.list("experiment_ids"));
                    let uri = format!("{}?{query}", parts.uri.path());
                    parts.uri = uri.parse().map_err(|_| ApiError::invalid("invalid query string"))?;
                } else {
                    body = Body::from(Value::Object(rewritten.0).to_string());
                }
            }
        }
    }
    let after = after_for(&check, &path, &params);
    let response = next.run(Request::from_parts(parts, body)).await;
    if !response.status().is_success() {
        return Ok(response);
    }
    match after {
        After::Nothing => Ok(response),
        After::GrantExperimentOwner => {
            let (response, json) = buffer_json(response).await?;
            if let Some(id) = json.get("experiment_id").and_then(json_id) {
                auth.store.set_user_permission(&user.username, EXPERIMENT, &id, Permission::Manage).await?;
            }
            Ok(response)
        }
        After::GrantModelOwner => {
            let (response, json) = buffer_json(response).await?;
            if let Some(name) = json.pointer("/registered_model/name").and_then(Value::as_str) {
                auth.store.set_user_permission(&user.username, REGISTERED_MODEL, name, Permission::Manage).await?;
            }
            Ok(response)
        }
        After::DropModelGrants(name) => {
            auth.store.delete_grants_for_resource(REGISTERED_MODEL, &name).await?;
            Ok(response)
        }
        After::RenameModelGrants(old, new) => {
            auth.store.rename_grants_for_resource(REGISTERED_MODEL, &old, &new).await?;
            Ok(response)
        }
        After::Filter(check) => match grants {
            None => Ok(response),
            Some(grants) => {
                let (_, mut json) = buffer_json(response).await?;
                filter_response(&check, &grants, &mut json);
                Ok(crate::json::Reply(json).into_response())
            }
        },
    }
}

fn json_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn buffer_json(response: Response) -> ApiResult<(Response, Value)> {
    let (parts, body) = response.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("reading the response: {e}")))?;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((Response::from_parts(parts, Body::from(bytes)), json))
}

/// `_role_based_read_predicate`: READ on the row's own key, else the workspace grant, else the default.
fn readable(grants: &Grants, resource_type: &str, id: &str) -> bool {
    let mut r = req(resource_type, id, Action::Read);
    r.fallback.push((WORKSPACE.to_string(), "*".to_string()));
    grants.satisfied(&r)
}

/// `filter_experiment_ids` for runs/search: keeps the experiments the caller may read;
/// `None` when nothing changes.
fn filter_search_runs(grants: &Grants, params: &Params) -> Option<Params> {
    let ids = params.list("experiment_ids");
    let runs_ok = grants.satisfied(&req(RUN, "*", Action::NotDenied));
    let kept: Vec<String> = ids.iter().filter(|id| runs_ok && readable(grants, EXPERIMENT, id)).cloned().collect();
    if kept.len() == ids.len() {
        return None;
    }
    let mut map = params.0.clone();
    map.insert("experiment_ids".into(), Value::Array(kept.into_iter().map(Value::String).collect()));
    Some(Params(map))
}

/// Drops the rows of a search response the caller may not read. Pages may come back shorter
/// than `max_results` (MLflow re-fetches to fill them); the page token is kept, so paging
/// still reaches every readable row.
fn filter_response(check: &Check, grants: &Grants, json: &mut Value) {
    let version_ok = grants.satisfied(&req(REGISTERED_MODEL_VERSION, "*", Action::NotDenied));
    let logged_ok = grants.satisfied(&req(LOGGED_MODEL, "*", Action::NotDenied));
    let retain = |json: &mut Value, key: &str, keep: &dyn Fn(&Value) -> bool| {
        if let Some(Value::Array(rows)) = json.get_mut(key) {
            rows.retain(|r| keep(r));
        }
    };
    let str_at = |v: &Value, ptr: &str| v.pointer(ptr).and_then(json_id).unwrap_or_default();
    match check {
        Check::SearchExperiments => {
            retain(json, "experiments", &|e| readable(grants, EXPERIMENT, &str_at(e, "/experiment_id")))
        }
        Check::SearchRegisteredModels => {
            retain(json, "registered_models", &|m| readable(grants, REGISTERED_MODEL, &str_at(m, "/name")));
            if let Some(Value::Array(rows)) = json.get_mut("registered_models") {
                if !version_ok {
                    for m in rows.iter_mut().filter_map(Value::as_object_mut) {
                        m.remove("latest_versions");
                    }
                }
            }
        }
        Check::SearchModelVersions => {
            retain(json, "model_versions", &|v| version_ok && readable(grants, REGISTERED_MODEL, &str_at(v, "/name")))
        }
        Check::SearchLoggedModels => {
            retain(json, "models", &|m| logged_ok && readable(grants, EXPERIMENT, &str_at(m, "/info/experiment_id")))
        }
        _ => {}
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            AuthError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            AuthError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            AuthError::Config(_) | AuthError::Database(_) | AuthError::Hash(_) => {
                tracing::error!(error = %e, "auth store failure");
                ErrorCode::InternalError
            }
        };
        ApiError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path: &str, expect: Check) {
        assert_eq!(classify(&method, path), expect, "{method} {path}");
    }

    #[test]
    fn route_table() {
        check(Method::POST, "/api/2.0/mlflow/experiments/create", Check::CreateExperiment);
        check(Method::GET, "/ajax-api/2.0/mlflow/experiments/get", Check::Experiment(Action::Read));
        check(Method::POST, "/api/2.0/mlflow/runs/log-batch", Check::RunWithModels);
        check(Method::GET, "/api/2.0/mlflow/logged-models/m-1", Check::LoggedModel(Action::Read, "m-1".into()));
        check(Method::DELETE, "/api/2.0/mlflow/registered-models/alias", Check::DeleteAlias);
        check(Method::GET, "/api/2.0/mlflow/users/get", Check::UserApi);
        check(Method::POST, "/api/3.0/mlflow/users/permissions/grant", Check::UserApi);
        check(
            Method::PUT,
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/x",
            Check::Artifact(Action::Update, "1/abc/x".into()),
        );
        check(Method::DELETE, "/api/2.0/mlflow-artifacts/artifacts/1", Check::Artifact(Action::Manage, "1".into()));
        check(Method::GET, "/version", Check::Authenticated);
        assert!(is_open("/health") && !is_open("/version") && is_open("/api/3.0/mlflow/server-info"));
    }

    #[test]
    fn throttle_locks_after_max_failures_and_only_that_pair() {
        let l = Limiter::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..MAX_FAILURES - 1 {
            l.failure("eve", ip);
        }
        assert!(l.locked("eve", ip).is_none());
        l.failure("eve", ip);
        assert!(l.locked("eve", ip).is_some());
        assert!(l.locked("alice", ip).is_none());
    }

    #[test]
    fn params_like_mlflow() {
        let p = Params::read(&Method::GET, "run_uuid=abc&run_ids=1&run_ids=2", b"", false);
        assert_eq!(p.req("run_id").unwrap(), "abc");
        assert_eq!(p.list("run_ids"), vec!["1", "2"]);
        let p = Params::read(&Method::DELETE, "", br#"{"name": "m"}"#, true);
        assert_eq!(p.req("name").unwrap(), "m");
        assert!(p.req("version").is_err());
    }
}
