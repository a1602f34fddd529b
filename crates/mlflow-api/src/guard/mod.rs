//! What reaches the MLflow API, decided from the request line and headers before anything
//! else runs: `mlflow server` 3.17.2's security middleware (`mlflow/server/fastapi_security.py`
//! and `security_utils.py`) and its URL-surface flags.
//!
//! - **Host check** (`--allowed-hosts`, against DNS rebinding): a `Host` header that matches no
//!   allowed entry gets `403 text/plain` "Invalid Host header - possible DNS rebinding attack
//!   detected"; `/health` and `/version` are exempt (probes reach pods by IP). The header must
//!   parse as host[:port] (a name, an IPv4 or bracketed IPv6 literal; a numeric port), else it
//!   is refused. Entries are exact, or Python `fnmatch` patterns when they contain `*`;
//!   case-sensitive, port included. Without the flag: localhost names on any port and IP
//!   literals in the private ranges (`10.*`, `192.168.*`, `172.16.*`…`172.31.*`, `fc00:*`,
//!   `fd00:*`); MLflow matches those as patterns on the raw header, which lets names such as
//!   `192.168.1.5.attacker.com` through. `*` turns the check off.
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

mod fnmatch;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use tower::ServiceExt;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::{ApiError, ErrorCode};
use fnmatch::Entry;

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

/// A `Host` header split into its host and port; `None` when it is not one. The host is a
/// bracketed IPv6 literal (a bare one is taken too, without a port), or a name of ASCII
/// letters, digits, `-`, `.` and `_` (an IPv4 literal when it parses as one); the port, after
/// one `:`, is numeric. So `localhost:5000.evil.com` and `localhost:5177@evil.com` are no host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostHeader<'a> {
    name: &'a str,
    ip: Option<IpAddr>,
    port: Option<u16>,
}

fn parse_host(h: &str) -> Option<HostHeader<'_>> {
    if let Ok(v6) = h.parse::<Ipv6Addr>() {
        return Some(HostHeader { name: h, ip: Some(IpAddr::V6(v6)), port: None });
    }
    let (name, ip, port) = match h.strip_prefix('[') {
        Some(rest) => {
            let (v6, port) = rest.split_once(']')?;
            (v6, Some(IpAddr::V6(v6.parse().ok()?)), port)
        }
        None => {
            let (name, port) = h.find(':').map_or((h, ""), |i| h.split_at(i));
            let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if !name_ok {
                return None;
            }
            (name, name.parse::<Ipv4Addr>().ok().map(IpAddr::V4), port)
        }
    };
    let port = match port {
        "" => None,
        p => {
            let digits = p.strip_prefix(':').filter(|d| !d.is_empty() && d.len() <= 5)?;
            Some(digits.parse::<u16>().ok().filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))?)
        }
    };
    Some(HostHeader { name, ip, port })
}

/// MLflow's `get_default_allowed_hosts()`, on the parsed host: `localhost`, `127.0.0.1`,
/// `0.0.0.0` and `::1` on any port, and IP literals in the private ranges (`10.*`,
/// `192.168.*`, `172.16.*`…`172.31.*`, `fc00:*`, `fd00:*`). MLflow matches those patterns
/// against the raw header, so `192.168.1.5.attacker.com` (a name anyone can point at this
/// server: DNS rebinding) passes there; here the ranges hold IP literals only.
fn default_host_allowed(h: &HostHeader) -> bool {
    match h.ip {
        Some(IpAddr::V4(a)) => {
            let [a0, a1, ..] = a.octets();
            a == Ipv4Addr::LOCALHOST
                || a.is_unspecified()
                || a0 == 10
                || (a0 == 192 && a1 == 168)
                || (a0 == 172 && (16..32).contains(&a1))
        }
        Some(IpAddr::V6(a)) => a == Ipv6Addr::LOCALHOST || matches!(a.segments()[0], 0xfc00 | 0xfd00),
        None => h.name == "localhost",
    }
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
    hosts: Hosts,
    cors: Cors,
    security_headers: bool,
    frame_options: Option<HeaderValue>,
    prefix: Option<String>,
    surface: Surface,
}

/// Which `Host` headers are served.
#[derive(Debug)]
enum Hosts {
    /// Every host (`*`, or the middleware disabled).
    Any,
    /// No `--allowed-hosts`: [`default_host_allowed`].
    Default,
    /// `--allowed-hosts`: exact or `fnmatch`, against a header that parses as host[:port].
    List(Vec<Entry>),
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
        let hosts = match cfg.allowed_hosts.as_ref().filter(|h| !h.is_empty()) {
            _ if !on => Hosts::Any,
            None => Hosts::Default,
            Some(list) if list.iter().any(|h| h == "*") => Hosts::Any,
            Some(list) => Hosts::List(list.iter().map(|h| Entry::new(h)).collect()),
        };
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
        matches!(self.hosts, Hosts::Any)
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
        let parsed = host.and_then(parse_host);
        match (&self.hosts, parsed) {
            (Hosts::Any, _) => true,
            (_, None) => false,
            (Hosts::Default, Some(h)) => default_host_allowed(&h),
            (Hosts::List(list), Some(_)) => host.is_some_and(|h| list.iter().any(|e| e.matches(h))),
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

/// The request for `prefix/`, as the app's `/` (its query kept).
fn to_root(mut req: Request) -> Request {
    let target = req.uri().query().map_or_else(|| "/".to_string(), |q| format!("/?{q}"));
    if let Ok(uri) = target.parse() {
        *req.uri_mut() = uri;
    }
    req
}

/// Wraps `app` (the whole MLflow API, state applied) in the guard: nests it under the static
/// prefix when there is one, then puts the checks in front of every route and the fallback.
pub fn apply(app: Router, guard: Guard) -> Router {
    if guard.is_transparent() {
        return app;
    }
    let app = match &guard.prefix {
        // `prefix/` is the UI's page (the bare prefix redirects there), which `nest` does not
        // route: it is sent to the app's `/`.
        Some(p) => Router::new()
            .route_service(&format!("{p}/"), app.clone().map_request(to_root))
            .nest(p, app)
            .fallback(|uri: axum::http::Uri| async move {
                ApiError::new(ErrorCode::EndpointNotFound, format!("No endpoint {} on this server", uri.path()))
            }),
        None => app,
    };
    app.layer(axum::middleware::from_fn_with_state(Arc::new(guard), middleware))
}

#[cfg(test)]
mod tests;
