//! The admin API (JSON over HTTP, on its own port): `GET /status`, `POST /switch`,
//! `POST /rollback`, `POST /weights`, `POST /shadow`, `POST /canary`, `GET /canary`,
//! `POST /canary/abort`, `GET /audit`, `GET /metrics`, every one
//! behind the bearer token when tokens are configured. Request and reply shapes are the
//! `admin-api` crate's (shared with `factory deploy` and the loop); the one mapping of
//! [`GatewayError`] to HTTP statuses lives here; the handlers parse, call [`Gateway`], reply.
//! The audit log records the token's identity, never a name the caller claims. Before the
//! token, [`admin_api::guard`] refuses what a web browser sends (an `Origin`, a foreign
//! `Sec-Fetch-Site`, a non-JSON body, and without tokens a host name that is not local).

use admin_api::{
    gateway_paths as paths, CanaryAbortRequest, CanaryRequest, RollbackRequest, ShadowRequest,
    SwitchRequest as SwitchBody, WeightsRequest,
};
use axum::body::{Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

use crate::control::{Gateway, SwitchRequest};
use crate::error::GatewayError;

type App = State<Arc<Gateway>>;

/// Who made an admin call: the name of the bearer token it presented, or, when the gateway
/// has no tokens (loopback only), the gateway's `--who`.
#[derive(Clone)]
struct Caller(String);

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route(paths::STATUS, get(status))
        .route(paths::SWITCH, post(switch))
        .route(paths::ROLLBACK, post(rollback))
        .route(paths::WEIGHTS, post(weights))
        .route(paths::SHADOW, post(shadow))
        .route(paths::CANARY, post(canary).get(canary_status))
        .route(paths::CANARY_ABORT, post(canary_abort))
        .route(paths::AUDIT, get(audit))
        .route(paths::METRICS, get(metrics))
        .fallback(|| async { reply_error(GatewayError::BadInput("no such admin endpoint".into())) })
        .layer(middleware::from_fn_with_state(gw.clone(), authenticate))
        .layer(middleware::from_fn_with_state(gw.clone(), refuse_browsers))
        .with_state(gw)
}

/// Requests a web page can make the operator's browser send are refused first, whatever their
/// token ([`admin_api::guard`]).
async fn refuse_browsers(State(gw): App, req: Request, next: Next) -> Response {
    let seen = admin_api::guard::Request {
        authority: req.uri().authority().map(|a| a.as_str()),
        has_body: !req.body().is_end_stream(),
        tokenless: gw.settings.admin_tokens.is_none(),
    };
    match admin_api::guard::check(req.headers(), seen) {
        None => next.run(req).await,
        Some(r) => (r.status, Json(r.reply)).into_response(),
    }
}

/// Every admin call needs a valid bearer token when tokens are configured.
async fn authenticate(State(gw): App, mut req: Request, next: Next) -> Response {
    let caller = match &gw.settings.admin_tokens {
        None => gw.settings.who.clone(),
        Some(tokens) => match tokens.check(req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes)) {
            Some(id) => id.0,
            None => {
                let body =
                    admin_api::ErrorReply { error: "admin token missing or wrong (Authorization: Bearer ...)".into() };
                let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        },
    };
    req.extensions_mut().insert(Caller(caller));
    next.run(req).await
}

/// The one mapping of errors to statuses.
fn reply_error(e: GatewayError) -> Response {
    let status = match &e {
        GatewayError::Refused(_) | GatewayError::Conflict(_) => StatusCode::CONFLICT,
        GatewayError::BadInput(_) => StatusCode::BAD_REQUEST,
        GatewayError::State(_) | GatewayError::Audit(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(admin_api::ErrorReply { error: e.to_string() })).into_response()
}

fn reply<T: serde::Serialize>(r: Result<T, GatewayError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => reply_error(e),
    }
}

/// An empty body is `{}`; anything else must be a JSON object of the expected shape.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, GatewayError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    serde_json::from_slice(text).map_err(|e| GatewayError::BadInput(format!("bad request body: {e}")))
}

/// The audit log's `who`: the authenticated caller, with the caller's note when it gave one.
fn who(caller: &Caller, note: Option<String>) -> Option<String> {
    Some(match note.filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("{} ({})", caller.0, n.trim()),
        None => caller.0.clone(),
    })
}

async fn status(State(gw): App) -> Response {
    Json(gw.status()).into_response()
}

fn switch_request(b: SwitchBody, caller: &Caller) -> Result<SwitchRequest, GatewayError> {
    let drain_timeout = match b.drain_timeout_secs {
        None => None,
        Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(GatewayError::BadInput(format!("drain_timeout_secs {s} is out of range 0..=86400"))),
    };
    Ok(SwitchRequest { to: b.to, expect_version: b.expect_version, drain_timeout, who: who(caller, b.note) })
}

async fn switch(State(gw): App, Extension(caller): Extension<Caller>, body: Bytes) -> Response {
    let req = match parse::<SwitchBody>(&body).and_then(|b| switch_request(b, &caller)) {
        Ok(r) => r,
        Err(e) => return reply_error(e),
    };
    reply(gw.switch(req).await)
}

async fn rollback(State(gw): App, Extension(caller): Extension<Caller>, body: Bytes) -> Response {
    match parse::<RollbackRequest>(&body) {
        Ok(b) => reply(gw.rollback(who(&caller, b.note)).await),
        Err(e) => reply_error(e),
    }
}

async fn weights(State(gw): App, Extension(caller): Extension<Caller>, body: Bytes) -> Response {
    match parse::<WeightsRequest>(&body) {
        Ok(b) => reply(gw.set_weights(b.blue, b.green, who(&caller, b.note)).await),
        Err(e) => reply_error(e),
    }
}

async fn shadow(State(gw): App, Extension(caller): Extension<Caller>, body: Bytes) -> Response {
    match parse::<ShadowRequest>(&body) {
        Ok(b) => reply(gw.set_shadow(b.percent, who(&caller, b.note)).await),
        Err(e) => reply_error(e),
    }
}

async fn canary(State(gw): App, Extension(caller): Extension<Caller>, body: Bytes) -> Response {
    let plan = parse::<CanaryRequest>(&body).and_then(|b| {
        let note = b.note.clone();
        crate::canary::Plan::new(b, who(&caller, note))
    });
    match plan {
        Ok(p) => reply(gw.start_canary(p).await),
        Err(e) => reply_error(e),
    }
}

async fn canary_status(State(gw): App) -> Response {
    match gw.canary.current() {
        Some(c) => Json(c).into_response(),
        None => {
            (StatusCode::NOT_FOUND, Json(admin_api::ErrorReply { error: "no canary since the gateway started".into() }))
                .into_response()
        }
    }
}

async fn canary_abort(State(gw): App, Extension(caller): Extension<Caller>, body: Bytes) -> Response {
    match parse::<CanaryAbortRequest>(&body) {
        Ok(b) => reply(gw.abort_canary(who(&caller, b.note)).await),
        Err(e) => reply_error(e),
    }
}

async fn audit(State(gw): App) -> Response {
    reply(gw.audit_records())
}

async fn metrics(State(gw): App) -> Response {
    exposition::response(crate::metrics::render(&gw))
}
