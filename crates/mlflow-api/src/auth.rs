//! `--app-name basic-auth`: who is calling. One axum middleware ([`layer`]) authenticates
//! every request except the routes the route table declares public (HTTP Basic; 401 +
//! `WWW-Authenticate: Basic realm="mlflow"`), throttles failed logins, and hands the route a
//! [`Caller`]. What the caller may do is decided by the route itself, from the same typed
//! request its handler reads (`routes.rs`, `access.rs`); nothing here looks at parameters.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::AppState;
use ::auth::{AuthError, AuthStore, Grants, Permission, User};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
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

/// An authenticated request: the user, and (for non-admins) the grants they hold.
pub struct Session {
    pub user: User,
    pub auth: Arc<Auth>,
    /// `None` for admins, who are not restricted.
    pub grants: Option<Grants>,
}

/// Who is calling a route, as the handler sees it.
#[derive(Clone)]
pub enum Caller {
    /// Auth is off, or the route is public: no identity, nothing restricted.
    Open,
    /// An authenticated user.
    User(Arc<Session>),
}

impl Caller {
    /// The session of a caller whose requests are checked (authenticated non-admins).
    pub fn restricted(&self) -> Option<&Session> {
        match self {
            Caller::User(s) if s.grants.is_some() => Some(s),
            _ => None,
        }
    }

    /// The grants that limit what this caller sees; `None` sees everything.
    pub fn grants(&self) -> Option<&Grants> {
        self.restricted().and_then(|s| s.grants.as_ref())
    }

    /// The authenticated user's name (recorded in the registry's alias and stage history);
    /// `None` with auth off.
    pub fn username(&self) -> Option<&str> {
        self.session().map(|s| s.user.username.as_str())
    }

    /// The authenticated session (admins included); `None` with auth off.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Caller::User(s) => Some(s),
            Caller::Open => None,
        }
    }

    /// The caller of a route: from the session [`layer`] attached, or open when auth is off or
    /// the route is public. `None` (refuse it) when auth is on and a request reached a
    /// non-public route without a session, which would mean the layer was not in front.
    pub(crate) fn of(s: &AppState, req: &Request, public: bool) -> Option<Caller> {
        if s.auth.is_none() || public {
            return Some(Caller::Open);
        }
        req.extensions().get::<Caller>().cloned()
    }
}

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
    let resp = (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], "Permission denied")
        .into_response();
    refused(resp, "denied")
}

/// Tags a refusal for `factory_server_auth_failures_total{reason}` (crate::metrics).
fn refused(mut resp: Response, reason: &'static str) -> Response {
    resp.extensions_mut().insert(crate::metrics::AuthRefusal(reason));
    resp
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

/// The paths of the public routes: exact ones, and the prefixes of public wildcard routes.
#[derive(Debug, Default)]
pub struct PublicPaths {
    pub(crate) exact: std::collections::HashSet<String>,
    pub(crate) prefixes: Vec<String>,
}

impl PublicPaths {
    pub fn contains(&self, path: &str) -> bool {
        self.exact.contains(path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// What [`layer`] needs: the app state and the paths the route table declares public.
#[derive(Clone)]
pub struct Gate {
    pub state: AppState,
    pub public: Arc<PublicPaths>,
}

/// The middleware: authenticates the caller of every non-public path (unknown paths and
/// methods included, so they are a 401 before they are a 404/405) and attaches the
/// [`Caller`] the route's handler and rule receive.
pub async fn layer(State(g): State<Gate>, mut req: Request, next: Next) -> Response {
    let Some(auth) = g.state.auth.clone() else { return next.run(req).await };
    if g.public.contains(req.uri().path()) {
        return next.run(req).await;
    }
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some((username, password)) = basic_credentials(req.headers()) else {
        return refused(unauthenticated(), "missing");
    };
    if let Some(wait) = auth.limiter.locked(&username, ip) {
        return refused(too_many(wait), "locked_out");
    }
    let user = match auth.store.authenticate(&username, &password).await {
        Ok(Some(u)) => {
            auth.limiter.success(&username, ip);
            u
        }
        Ok(None) => {
            auth.limiter.failure(&username, ip);
            return refused(unauthenticated(), "bad_credentials");
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let grants = if user.is_admin {
        None
    } else {
        match auth.grants(&user).await {
            Ok(g) => Some(g),
            Err(e) => return e.into_response(),
        }
    };
    req.extensions_mut().insert(Caller::User(Arc::new(Session { user, auth, grants })));
    next.run(req).await
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
    fn basic_credentials_parse() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWxpY2U6cHc6d2l0aC1jb2xvbg=="));
        assert_eq!(basic_credentials(&h), Some(("alice".into(), "pw:with-colon".into())));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&h), None);
    }
}
