//! What reaches the MLflow API, decided from the request line and headers before anything
//! else runs: `mlflow server` 3.17.2's security middleware (`mlflow/server/fastapi_security.py`
//! and `security_utils.py`) and its URL-surface flags.
//!
//! - **Host check** (`--allowed-hosts`, against DNS rebinding): a `Host` header that matches no
//!   allowed entry gets `403 text/plain` "Invalid Host header - possible DNS rebinding attack
//!   detected"; `/health` and `/version` are exempt (probes reach pods by IP). Entries are exact,
//!   or Python `fnmatch` patterns when they contain `*`; case-sensitive, port included. Without the
//!   flag: localhost names on any port and the private ranges (`10.*`, `192.168.*`,
//!   `172.16.*`…`172.31.*`, `fc00:*`, `fd00:*`), as MLflow. `*` turns the check off.
//! - **CORS** (`--cors-allowed-origins`): a preflight (`OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`) is answered here, never by a route: 200 `OK` with the
//!   origin, credentials, the methods `GET, POST, PUT, DELETE, OPTIONS, PATCH`, the requested
//!   headers and `max-age 600`, or 400 `Disallowed CORS origin|method`. Allowed: the listed
//!   origins and `http://localhost|127.0.0.1|[::1]` on any port. Other answers to a request with
//!   an `Origin` carry `Access-Control-Allow-Credentials`, `Access-Control-Expose-Headers: *`,
//!   `Vary: Origin` and, for an allowed origin, `Access-Control-Allow-Origin`. A state-changing
//!   request (`POST PUT DELETE PATCH`) to the API (`/api/…`, `/ajax-api/…`) from any other origin
//!   (localhost on any scheme excepted) is refused: `403 text/plain` "Cross-origin request
//!   blocked". `*` allows every origin without credentials and blocks nothing.
//!   One departure: MLflow's preflight compares origins exactly, so a listed pattern such as
//!   `https://*.corp.example` lets non-browser clients through its blocking check but fails every
//!   browser preflight; here a pattern means the same in both places.
//! - **Security headers** on every answer of the API: `X-Content-Type-Options: nosniff` and
//!   `X-Frame-Options` (`--x-frame-options`, `SAMEORIGIN`; `NONE` drops it).
//!   `--disable-security-middleware` turns the three protections above off.
//! - **Surface**: `--static-prefix /p` serves every route under `/p` only (`/p` itself redirects
//!   to `/p/`); `--no-serve-artifacts` and `--artifacts-only` answer the routes they turn off with
//!   MLflow's 503 texts.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::{ApiError, ErrorCode};

/// MLflow's texts (`security_utils.py`), kept verbatim: clients and operators grep for them.
pub const INVALID_HOST_MSG: &str = "Invalid Host header - possible DNS rebinding attack detected";
pub const CORS_BLOCKED_MSG: &str = "Cross-origin request blocked";

/// The methods a preflight may ask for with an origin allow-list (flask-cors / Starlette setup).
const CORS_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS, PATCH";
/// Starlette's `ALL_METHODS`, sent with `--cors-allowed-origins '*'`.
const CORS_ALL_METHODS: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, QUERY";
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network";

/// Which of the routes this server is started to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Surface {
    /// Tracking, registry and the artifact proxy.
    #[default]
    All,
    /// `--no-serve-artifacts`: the artifact proxy answers 503.
    NoArtifacts,
    /// `--artifacts-only`: every other API route answers 503.
    ArtifactsOnly,
}

/// The flags, as given.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// `--allowed-hosts`; `None` = MLflow's default list.
    pub allowed_hosts: Option<Vec<String>>,
    /// `--cors-allowed-origins` (empty = localhost only).
    pub cors_allowed_origins: Vec<String>,
    /// `--disable-security-middleware`.
    pub disable_security: bool,
    /// `--x-frame-options` (`SAMEORIGIN`, `DENY`, `NONE`).
    pub x_frame_options: String,
    /// `--static-prefix`.
    pub static_prefix: Option<String>,
    pub surface: Surface,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            allowed_hosts: None,
            cors_allowed_origins: Vec::new(),
            disable_security: false,
            x_frame_options: "SAMEORIGIN".into(),
            static_prefix: None,
            surface: Surface::All,
        }
    }
}

/// A flag value that cannot work, with the message `mlflow server` gives for it.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("--static-prefix must begin with a '/'.")]
    PrefixStart,
    #[error("--static-prefix should not end with a '/'.")]
    PrefixEnd,
    #[error("--static-prefix must not contain '{{' or '}}'.")]
    PrefixBraces,
    #[error("--x-frame-options: '{0}' is not a valid header value")]
    FrameOptions(String),
}

/// Splits a comma-separated flag value as MLflow does (entries trimmed; empty ones dropped).
pub fn parse_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// `fnmatch`-or-equal, as `is_allowed_host_header` and `should_block_cors_request` compare.
#[derive(Debug, Clone)]
enum Entry {
    Exact(String),
    Pattern(Pattern),
}

impl Entry {
    fn new(s: &str) -> Entry {
        if s.contains('*') {
            Entry::Pattern(Pattern::compile(s))
        } else {
            Entry::Exact(s.to_string())
        }
    }
    fn matches(&self, s: &str) -> bool {
        match self {
            Entry::Exact(e) => e == s,
            Entry::Pattern(p) => p.matches(s),
        }
    }
}

/// Python's `fnmatch` (POSIX, so case-sensitive): `*`, `?`, `[seq]`, `[!seq]`; a `[` without
/// its `]` is literal.
#[derive(Debug, Clone)]
struct Pattern(Vec<Tok>);

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class { negated: bool, items: Vec<(char, char)> },
}

impl Pattern {
    fn compile(p: &str) -> Pattern {
        let chars: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if !matches!(toks.last(), Some(Tok::Star)) {
                        toks.push(Tok::Star);
                    }
                    i += 1;
                }
                '?' => {
                    toks.push(Tok::Any);
                    i += 1;
                }
                '[' => {
                    // fnmatch.translate: `!` negates, a `]` first in the set is literal.
                    let mut j = i + 1;
                    if j < chars.len() && chars[j] == '!' {
                        j += 1;
                    }
                    if j < chars.len() && chars[j] == ']' {
                        j += 1;
                    }
                    while j < chars.len() && chars[j] != ']' {
                        j += 1;
                    }
                    if j >= chars.len() {
                        toks.push(Tok::Lit('['));
                        i += 1;
                        continue;
                    }
                    let mut body = &chars[i + 1..j];
                    let negated = body.first() == Some(&'!');
                    if negated {
                        body = &body[1..];
                    }
                    let mut items = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        if k + 2 < body.len() && body[k + 1] == '-' {
                            items.push((body[k], body[k + 2]));
                            k += 3;
                        } else {
                            items.push((body[k], body[k]));
                            k += 1;
                        }
                    }
                    toks.push(Tok::Class { negated, items });
                    i = j + 1;
                }
                c => {
                    toks.push(Tok::Lit(c));
                    i += 1;
                }
            }
        }
        Pattern(toks)
    }

    /// Greedy match with one backtrack point per star (linear in practice, never exponential).
    fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        let toks = &self.0;
        let (mut ti, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            let step = match toks.get(ti) {
                Some(Tok::Star) => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                Some(Tok::Lit(c)) => *c == s[si],
                Some(Tok::Any) => true,
                Some(Tok::Class { negated, items }) => {
                    items.iter().any(|&(lo, hi)| lo <= s[si] && s[si] <= hi) != *negated
                }
                None => false,
            };
            if step {
                ti += 1;
                si += 1;
            } else if let Some((st, ss)) = star {
                ti = st + 1;
                si = ss + 1;
                star = Some((st, ss + 1));
            } else {
                return false;
            }
        }
        toks[ti..].iter().all(|t| matches!(t, Tok::Star))
    }
}

/// MLflow's `get_default_allowed_hosts()`: localhost names, bare and on any port, and the
/// private address patterns.
fn default_allowed_hosts() -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"].map(String::from).to_vec();
    // `[[]` is fnmatch for a literal `[`.
    hosts.extend(["localhost:*", "127.0.0.1:*", "[[]::1]:*", "0.0.0.0:*"].map(String::from));
    hosts.extend(["192.168.*", "10.*"].map(String::from));
    hosts.extend((16..32).map(|i| format!("172.{i}.*")));
    hosts.extend(["fc00:*", "fd00:*"].map(String::from));
    hosts
}

/// `is_localhost_origin`: the origin's host (as `urlparse(...).hostname` gives it) is a
/// loopback name, whatever the scheme and port.
fn is_localhost_origin(origin: &str) -> bool {
    let Some((_, rest)) = origin.split_once("://") else { return false };
    let netloc = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    matches!(host.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1" | "::1")
}

/// The `LOCALHOST_ORIGIN_PATTERNS` regexes: `http://` only, optional numeric port.
fn is_localhost_http_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else { return false };
    let port_ok = |p: &str| {
        p.is_empty() || p.strip_prefix(':').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    ["localhost", "127.0.0.1", "[::1]"].iter().any(|h| rest.strip_prefix(h).is_some_and(port_ok))
}

/// The compiled configuration.
#[derive(Debug)]
pub struct Guard {
    /// `None`: every host (`*`, or the middleware disabled).
    hosts: Option<Vec<Entry>>,
    cors: Cors,
    security_headers: bool,
    frame_options: Option<HeaderValue>,
    prefix: Option<String>,
    surface: Surface,
}

#[derive(Debug)]
enum Cors {
    Off,
    /// `--cors-allowed-origins '*'`.
    AnyOrigin,
    /// The listed origins plus localhost, with credentials.
    List(Vec<Entry>),
}

/// What the guard decided about a request.
#[derive(Debug)]
enum Verdict {
    /// Answered here; the router never sees the request.
    Answer(Response),
    /// Goes to the router; `origin` gets the CORS headers on the way back.
    Pass { origin: Option<String>, cookie: bool },
}

impl Guard {
    pub fn new(cfg: &GuardConfig) -> Result<Guard, GuardError> {
        if let Some(p) = &cfg.static_prefix {
            if !p.starts_with('/') {
                return Err(GuardError::PrefixStart);
            }
            if p.ends_with('/') {
                return Err(GuardError::PrefixEnd);
            }
            if p.contains(['{', '}']) {
                return Err(GuardError::PrefixBraces);
            }
        }
        let frame = cfg.x_frame_options.trim().to_ascii_uppercase();
        let frame_options = match frame.as_str() {
            "" | "NONE" => None,
            v => Some(HeaderValue::from_str(v).map_err(|_| GuardError::FrameOptions(cfg.x_frame_options.clone()))?),
        };
        let on = !cfg.disable_security;
        let host_list = cfg.allowed_hosts.clone().filter(|h| !h.is_empty()).unwrap_or_else(default_allowed_hosts);
        let hosts =
            (on && !host_list.iter().any(|h| h == "*")).then(|| host_list.iter().map(|h| Entry::new(h)).collect());
        let cors = if !on {
            Cors::Off
        } else if cfg.cors_allowed_origins.iter().any(|o| o == "*") {
            Cors::AnyOrigin
        } else {
            Cors::List(cfg.cors_allowed_origins.iter().map(|o| Entry::new(o)).collect())
        };
        Ok(Guard {
            hosts,
            cors,
            security_headers: on,
            frame_options,
            prefix: cfg.static_prefix.clone(),
            surface: cfg.surface,
        })
    }

    /// True when the guard changes nothing (so [`apply`] adds no layer).
    fn is_transparent(&self) -> bool {
        self.hosts.is_none()
            && matches!(self.cors, Cors::Off)
            && !self.security_headers
            && self.prefix.is_none()
            && self.surface == Surface::All
    }

    /// The path without the static prefix (`""` for the bare prefix); `None` when it lies
    /// outside it.
    fn relative<'a>(&self, path: &'a str) -> Option<&'a str> {
        match &self.prefix {
            None => Some(path),
            Some(p) => path.strip_prefix(p.as_str()).filter(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        match (&self.hosts, host) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(list), Some(h)) => !h.is_empty() && list.iter().any(|e| e.matches(h)),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        match &self.cors {
            Cors::Off => false,
            Cors::AnyOrigin => true,
            Cors::List(list) => is_localhost_http_origin(origin) || list.iter().any(|e| e.matches(origin)),
        }
    }

    /// `should_block_cors_request` (only asked for API paths and with an origin list).
    fn blocks(&self, method: &Method, origin: &str) -> bool {
        let Cors::List(list) = &self.cors else { return false };
        let state_changing = [Method::POST, Method::PUT, Method::DELETE, Method::PATCH].contains(method);
        state_changing && !origin.is_empty() && !is_localhost_origin(origin) && !list.iter().any(|e| e.matches(origin))
    }

    fn decide(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Verdict {
        let path = uri.path();
        let rel = self.relative(path);
        let is_health = matches!(rel, Some("/health" | "/version"));
        if !is_health {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            if !self.host_allowed(host) {
                tracing::warn!(host = host.unwrap_or(""), "Rejected request with invalid Host header");
                return Verdict::Answer(refused(text(StatusCode::FORBIDDEN, "text/plain", INVALID_HOST_MSG), "host"));
            }
        }
        let origin = match (&self.cors, headers.get(header::ORIGIN)) {
            (Cors::Off, _) | (_, None) => None,
            (_, Some(o)) => Some(o.to_str().unwrap_or("").to_string()),
        };
        let cookie = headers.contains_key(header::COOKIE);
        if let Some(origin) = &origin {
            if method == Method::OPTIONS {
                if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
                    let resp = self.preflight(origin, requested, headers);
                    let ok = resp.status().is_success();
                    return Verdict::Answer(if ok { resp } else { refused(resp, "cors_preflight") });
                }
            }
            let is_api = rel.is_some_and(|r| r.starts_with("/api/") || r.starts_with("/ajax-api/"));
            if is_api && self.blocks(method, origin) {
                tracing::warn!(origin = %origin, "Blocked cross-origin request");
                let mut resp = text(StatusCode::FORBIDDEN, "text/plain", CORS_BLOCKED_MSG);
                self.simple_cors(resp.headers_mut(), origin, cookie);
                return Verdict::Answer(refused(resp, "cors_block"));
            }
        }
        let surface = match rel {
            None => Some(
                ApiError::new(ErrorCode::EndpointNotFound, format!("No endpoint {path} on this server"))
                    .into_response(),
            ),
            // MLflow (Flask's strict slashes): the bare prefix redirects to the UI at `prefix/`.
            Some("") => {
                let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("{path}/{query}")) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Some(resp)
            }
            Some(r) => self.surface_refusal(r),
        };
        if let Some(mut resp) = surface {
            self.finish(resp.headers_mut(), origin.as_deref(), cookie);
            return Verdict::Answer(resp);
        }
        Verdict::Pass { origin, cookie }
    }

    /// Starlette's `CORSMiddleware.preflight_response` with MLflow's settings.
    fn preflight(&self, origin: &str, requested: &HeaderValue, headers: &HeaderMap) -> Response {
        let any = matches!(self.cors, Cors::AnyOrigin);
        let methods = if any { CORS_ALL_METHODS } else { CORS_METHODS };
        let mut out = HeaderMap::new();
        out.insert(header::VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
        out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        let mut failures = Vec::new();
        if any {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            out.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            match HeaderValue::from_str(origin) {
                Ok(v) if self.origin_allowed(origin) => {
                    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                }
                _ => failures.push("origin"),
            }
        }
        let requested = requested.to_str().unwrap_or("");
        if !methods.split(", ").any(|m| m == requested) {
            failures.push("method");
        }
        // `allow_headers=["*"]`: whatever was asked for is allowed, echoed back.
        if let Some(h) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
        }
        let (status, body) = if failures.is_empty() {
            (StatusCode::OK, "OK".to_string())
        } else {
            tracing::debug!(origin, requested, "refused CORS preflight");
            (StatusCode::BAD_REQUEST, format!("Disallowed CORS {}", failures.join(", ")))
        };
        let mut resp = text(status, "text/plain; charset=utf-8", body);
        resp.headers_mut().extend(out);
        resp
    }

    /// Starlette's simple-response headers for a request that carried an `Origin`.
    fn simple_cors(&self, h: &mut HeaderMap, origin: &str, cookie: bool) {
        let explicit = match self.cors {
            Cors::Off => return,
            Cors::AnyOrigin => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                cookie
            }
            Cors::List(_) => {
                h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
                self.origin_allowed(origin)
            }
        };
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("*"));
        if explicit {
            if let Ok(v) = HeaderValue::from_str(origin) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
        } else if matches!(self.cors, Cors::List(_)) {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// The 503 MLflow gives for a route its flags turn off (`_disable_unless_serve_artifacts`,
    /// `_disable_if_artifacts_only`).
    fn surface_refusal(&self, rel: &str) -> Option<Response> {
        let artifact =
            rel.starts_with("/api/2.0/mlflow-artifacts/") || rel.starts_with("/ajax-api/2.0/mlflow-artifacts/");
        let api = rel.starts_with("/api/") || rel.starts_with("/ajax-api/");
        let server_info = rel.ends_with("/mlflow/server-info");
        let msg = match self.surface {
            Surface::NoArtifacts if artifact => format!(
                "Endpoint: {rel} disabled due to the mlflow server running with `--no-serve-artifacts`. \
                 To enable artifacts server functionality, run `mlflow server` with `--serve-artifacts`"
            ),
            Surface::ArtifactsOnly if api && !artifact && !server_info => format!(
                "Endpoint: {rel} disabled due to the mlflow server running in `--artifacts-only` mode. \
                 To enable tracking server functionality, run `mlflow server` without `--artifacts-only`"
            ),
            _ => return None,
        };
        Some(text(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", msg))
    }

    /// Headers every answer that passed the checks gets.
    fn finish(&self, h: &mut HeaderMap, origin: Option<&str>, cookie: bool) {
        if self.security_headers {
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            if let Some(v) = &self.frame_options {
                h.insert(header::X_FRAME_OPTIONS, v.clone());
            }
        }
        if let Some(o) = origin {
            self.simple_cors(h, o, cookie);
        }
    }
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<String>) -> Response {
    let mut resp = (status, body.into()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Tags a refusal for `factory_server_guard_refusals_total{check}` (crate::metrics).
fn refused(mut resp: Response, check: &'static str) -> Response {
    resp.extensions_mut().insert(crate::metrics::GuardRefusal(check));
    resp
}

async fn middleware(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    // HTTP/2 carries the host in `:authority`; give it to the check as the `Host` it stands for.
    let mut headers_owned;
    let headers = if req.headers().contains_key(header::HOST) {
        req.headers()
    } else {
        headers_owned = req.headers().clone();
        if let Some(v) = req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            headers_owned.insert(header::HOST, v);
        }
        &headers_owned
    };
    match guard.decide(req.method(), req.uri(), headers) {
        Verdict::Answer(resp) => resp,
        Verdict::Pass { origin, cookie } => {
            let mut resp = next.run(req).await;
            guard.finish(resp.headers_mut(), origin.as_deref(), cookie);
            resp
        }
    }
}

/// Wraps `app` (the whole MLflow API, state applied) in the guard: nests it under the static
/// prefix when there is one, then puts the checks in front of every route and the fallback.
pub fn apply(app: Router, guard: Guard) -> Router {
    if guard.is_transparent() {
        return app;
    }
    let app = match &guard.prefix {
        Some(p) => Router::new().nest(p, app).fallback(|uri: axum::http::Uri| async move {
            ApiError::new(ErrorCode::EndpointNotFound, format!("No endpoint {} on this server", uri.path()))
        }),
        None => app,
    };
    app.layer(axum::middleware::from_fn_with_state(Arc::new(guard), middleware))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(f: impl FnOnce(&mut GuardConfig)) -> Guard {
        let mut cfg = GuardConfig::default();
        f(&mut cfg);
        Guard::new(&cfg).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// (status, body) of an answer, or `None` when the request passes.
    fn check(g: &Guard, method: &str, path: &str, pairs: &[(&str, &str)]) -> Option<(u16, String, HeaderMap)> {
        let uri: Uri = path.parse().unwrap();
        match g.decide(&Method::from_bytes(method.as_bytes()).unwrap(), &uri, &headers(pairs)) {
            Verdict::Pass { .. } => None,
            Verdict::Answer(r) => {
                let status = r.status().as_u16();
                let h = r.headers().clone();
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let body = rt.block_on(axum::body::to_bytes(r.into_body(), 1 << 16)).unwrap();
                Some((status, String::from_utf8(body.to_vec()).unwrap(), h))
            }
        }
    }

    #[test]
    fn fnmatch_follows_python() {
        for (pat, s, want) in [
            ("app-*.internal", "app-x.internal", true),
            ("app-*.internal", "app-.internal", true),
            ("app-*.internal", "app-x.internal:80", false),
            ("10.*", "10.0.0.1:5000", true),
            ("10.*", "110.0.0.1", false),
            ("[[]::1]:*", "[::1]:5000", true),
            ("[[]::1]:*", "[::1]", false),
            ("h?st*", "host:1", true),
            ("[!a]*", "b", true),
            ("[!a]*", "a", false),
            ("[a-c]x*", "bx", true),
            ("[a-c]x*", "dx", false),
            ("a[b*", "a[bzz", true),
            ("*.Corp*", "x.corp", false),
            ("**a**b*", "xxaxxbxx", true),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ] {
            assert_eq!(Pattern::compile(pat).matches(s), want, "{pat} vs {s}");
        }
    }

    #[test]
    fn default_hosts_are_mlflows() {
        let g = guard(|_| {});
        for (host, ok) in [
            ("127.0.0.1:5000", true),
            ("localhost", true),
            ("localhost:8080", true),
            ("[::1]:5000", true),
            ("0.0.0.0:5000", true),
            ("10.1.2.3:5000", true),
            ("192.168.0.9", true),
            ("172.16.0.1:80", true),
            ("172.31.255.1", true),
            ("172.32.0.1", false),
            ("server:5000", false),
            ("evil.com", false),
            ("LOCALHOST", false),
            ("", false),
        ] {
            assert_eq!(g.host_allowed(Some(host)), ok, "{host}");
        }
        assert!(!g.host_allowed(None));
    }

    #[test]
    fn host_check_answers_403_except_health() {
        let g = guard(|c| c.allowed_hosts = Some(parse_list("mlflow.example.com, app-*.internal,10.0.0.5:5000")));
        let (status, body, h) =
            check(&g, "GET", "/api/2.0/mlflow/experiments/search", &[("host", "evil.com")]).unwrap();
        assert_eq!((status, body.as_str()), (403, INVALID_HOST_MSG));
        assert_eq!(h[header::CONTENT_TYPE], "text/plain");
        assert!(check(&g, "GET", "/health", &[("host", "evil.com")]).is_none());
        assert!(check(&g, "GET", "/version", &[("host", "evil.com")]).is_none());
        assert!(check(&g, "GET", "/nope", &[("host", "evil.com")]).is_some());
        assert!(check(&g, "GET", "/api/x", &[]).is_some(), "no Host header");
        for ok in ["mlflow.example.com", "app-7.internal", "10.0.0.5:5000"] {
            assert!(check(&g, "POST", "/api/x", &[("host", ok)]).is_none(), "{ok}");
        }
        // A given list replaces the defaults, as in MLflow.
        for refused in ["mlflow.example.com:443", "127.0.0.1:5000", "localhost", "MLFLOW.example.com"] {
            assert!(check(&g, "GET", "/api/x", &[("host", refused)]).is_some(), "{refused}");
        }
        let open = guard(|c| c.allowed_hosts = Some(vec!["*".into()]));
        assert!(check(&open, "GET", "/api/x", &[("host", "evil.com")]).is_none());
        let off = guard(|c| c.disable_security = true);
        assert!(check(&off, "GET", "/api/x", &[("host", "evil.com")]).is_none());
    }

    #[test]
    fn preflight_as_starlette_answers_it() {
        let g = guard(|c| c.cors_allowed_origins = parse_list("https://ui.example.com,https://*.corp.example"));
        let pre = |origin: &str, method: &str, hdrs: Option<&str>| {
            let mut p = vec![("host", "localhost:5000"), ("origin", origin), ("access-control-request-method", method)];
            if let Some(h) = hdrs {
                p.push(("access-control-request-headers", h));
            }
            check(&g, "OPTIONS", "/api/2.0/mlflow/runs/create", &p).unwrap()
        };
        let (s, body, h) = pre("https://ui.example.com", "POST", Some("content-type,authorization"));
        assert_eq!((s, body.as_str()), (200, "OK"));
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://ui.example.com");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], CORS_METHODS);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type,authorization");
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
        let (s, body, h) = pre("https://evil.com", "POST", None);
        assert_eq!((s, body.as_str()), (400, "Disallowed CORS origin"));
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        let (s, body, _) = pre("https://ui.example.com", "HEAD", None);
        assert_eq!((s, body.as_str()), (400, "Disallowed CORS method"));
        let (s, body, _) = pre("https://evil.com", "TRACE", None);
        assert_eq!((s, body.as_str()), (400, "Disallowed CORS origin, method"));
        assert_eq!(pre("http://localhost:3000", "DELETE", None).0, 200);
        assert_eq!(pre("https://localhost:3000", "DELETE", None).0, 400, "the localhost regexes are http only");
        assert_eq!(pre("https://a.corp.example", "POST", None).0, 200, "patterns apply to preflights too");
        // Without Origin, OPTIONS is an ordinary request.
        assert!(check(&g, "OPTIONS", "/api/x", &[("host", "localhost"), ("access-control-request-method", "POST")])
            .is_none());
    }

    #[test]
    fn cross_origin_state_changes_are_blocked_on_the_api() {
        let g = guard(|c| c.cors_allowed_origins = parse_list("https://ui.example.com,https://*.corp.example"));
        let req = |method: &str, path: &str, origin: &str| {
            check(&g, method, path, &[("host", "localhost"), ("origin", origin)]).map(|(s, b, _)| (s, b))
        };
        let blocked = Some((403, CORS_BLOCKED_MSG.to_string()));
        assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://evil.com"), blocked);
        assert_eq!(req("DELETE", "/ajax-api/2.0/mlflow/runs/delete", "null"), blocked);
        assert_eq!(req("PATCH", "/api/2.0/mlflow/x", "https://evil.com"), blocked);
        assert_eq!(req("GET", "/api/2.0/mlflow/experiments/search", "https://evil.com"), None);
        assert_eq!(req("POST", "/nonapi", "https://evil.com"), None);
        assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://ui.example.com"), None);
        assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://a.corp.example"), None);
        assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://localhost:9"), None);
        assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "http://[::1]:9"), None);
        let any = guard(|c| c.cors_allowed_origins = vec!["*".into()]);
        assert!(check(&any, "POST", "/api/x", &[("host", "localhost"), ("origin", "https://evil.com")]).is_none());
    }

    #[test]
    fn simple_responses_carry_cors_and_security_headers() {
        let g = guard(|c| c.cors_allowed_origins = vec!["https://ui.example.com".into()]);
        let mut h = HeaderMap::new();
        g.finish(&mut h, Some("https://ui.example.com"), false);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://ui.example.com");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "SAMEORIGIN");
        let mut h = HeaderMap::new();
        g.finish(&mut h, Some("https://evil.com"), false);
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        let any = guard(|c| {
            c.cors_allowed_origins = vec!["*".into()];
            c.x_frame_options = "none".into();
        });
        let mut h = HeaderMap::new();
        any.finish(&mut h, Some("https://evil.com"), false);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert!(!h.contains_key(header::X_FRAME_OPTIONS));
    }

    #[test]
    fn surface_flags_answer_mlflows_503() {
        let only = guard(|c| c.surface = Surface::ArtifactsOnly);
        let (s, body, _) = check(&only, "POST", "/api/2.0/mlflow/runs/create", &[("host", "localhost")]).unwrap();
        assert_eq!(s, 503);
        assert!(body.contains("`--artifacts-only` mode"), "{body}");
        assert!(check(&only, "GET", "/api/2.0/mlflow-artifacts/artifacts", &[("host", "localhost")]).is_none());
        assert!(check(&only, "GET", "/health", &[]).is_none());
        let none = guard(|c| c.surface = Surface::NoArtifacts);
        let (s, body, _) =
            check(&none, "GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/a", &[("host", "localhost")]).unwrap();
        assert_eq!(s, 503);
        assert!(body.contains("`--no-serve-artifacts`"), "{body}");
        assert!(check(&none, "GET", "/api/2.0/mlflow/experiments/search", &[("host", "localhost")]).is_none());
    }

    #[test]
    fn static_prefix_scopes_every_route() {
        let g = guard(|c| c.static_prefix = Some("/mlflow".into()));
        assert!(check(&g, "GET", "/mlflow/api/2.0/mlflow/experiments/search", &[("host", "localhost")]).is_none());
        assert_eq!(check(&g, "GET", "/api/2.0/mlflow/experiments/search", &[("host", "localhost")]).unwrap().0, 404);
        // Only the prefixed health route is exempt from the host check.
        assert!(check(&g, "GET", "/mlflow/health", &[("host", "evil.com")]).is_none());
        assert_eq!(check(&g, "GET", "/health", &[("host", "evil.com")]).unwrap().0, 403);
        assert_eq!(check(&g, "GET", "/mlflowx/health", &[("host", "localhost")]).unwrap().0, 404);
        let (s, _, h) = check(&g, "GET", "/mlflow?a=1", &[("host", "localhost")]).unwrap();
        assert_eq!((s, &h[header::LOCATION]), (308, &HeaderValue::from_static("/mlflow/?a=1")));
        assert_eq!(check(&g, "GET", "/mlflow", &[("host", "evil.com")]).unwrap().0, 403);
        for (p, err) in [("mlflow", "begin"), ("/mlflow/", "end"), ("/{x}", "'{'")] {
            let e = Guard::new(&GuardConfig { static_prefix: Some(p.into()), ..GuardConfig::default() }).unwrap_err();
            assert!(e.to_string().contains(err), "{e}");
        }
    }

    #[test]
    fn localhost_origins_as_urlparse_sees_them() {
        for (o, want) in [
            ("http://localhost:3000", true),
            ("https://LOCALHOST", true),
            ("https://[::1]:1", true),
            ("http://user@127.0.0.1:9/x", true),
            ("http://localhost.evil.com", false),
            ("null", false),
            ("localhost:3000", false),
        ] {
            assert_eq!(is_localhost_origin(o), want, "{o}");
        }
        for (o, want) in [
            ("http://localhost", true),
            ("http://127.0.0.1:5000", true),
            ("http://[::1]:80", true),
            ("http://localhost:", false),
            ("http://localhost:x", false),
            ("http://localhost.evil", false),
        ] {
            assert_eq!(is_localhost_http_origin(o), want, "{o}");
        }
    }
}
