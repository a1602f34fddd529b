//! The admin API (JSON over HTTP, on its own port): `GET /status`, `POST /switch`,
//! `POST /rollback`, `POST /weights`, `POST /shadow`, `GET /audit`, `GET /metrics`. Wire
//! shapes and the one mapping of [`GatewayError`] to HTTP statuses live here; the handlers
//! parse, call [`Gateway`], reply.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use crate::control::{Gateway, SwitchRequest};
use crate::error::GatewayError;
use crate::state::Colour;

/// Header naming who asked (when the body does not).
pub const WHO_HEADER: &str = "x-factory-who";

type App = State<Arc<Gateway>>;

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/switch", post(switch))
        .route("/rollback", post(rollback))
        .route("/weights", post(weights))
        .route("/shadow", post(shadow))
        .route("/audit", get(audit))
        .route("/metrics", get(metrics))
        .fallback(|| async { reply_error(GatewayError::BadInput("no such admin endpoint".into())) })
        .with_state(gw)
}

/// The one mapping of errors to statuses.
fn reply_error(e: GatewayError) -> Response {
    let status = match &e {
        GatewayError::Refused(_) | GatewayError::Conflict(_) => StatusCode::CONFLICT,
        GatewayError::BadInput(_) => StatusCode::BAD_REQUEST,
        GatewayError::State(_) | GatewayError::Audit(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
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

fn who(body: Option<String>, headers: &HeaderMap) -> Option<String> {
    body.or_else(|| headers.get(WHO_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string))
}

/// A version given as `"2"` or `2`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Version {
    Text(String),
    Number(serde_json::Number),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    to: Option<String>,
    expect_version: Option<Version>,
    drain_timeout_secs: Option<f64>,
    who: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhoBody {
    who: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightsBody {
    blue: Option<u32>,
    green: Option<u32>,
    who: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowBody {
    percent: u32,
    who: Option<String>,
}

async fn status(State(gw): App) -> Response {
    Json(gw.status()).into_response()
}

fn switch_request(b: SwitchBody, headers: &HeaderMap) -> Result<SwitchRequest, GatewayError> {
    let to = b.to.as_deref().map(str::parse::<Colour>).transpose()?;
    let drain_timeout = match b.drain_timeout_secs {
        None => None,
        Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(GatewayError::BadInput(format!("drain_timeout_secs {s} is out of range 0..=86400"))),
    };
    let expect_version = b.expect_version.map(|v| match v {
        Version::Text(s) => s,
        Version::Number(n) => n.to_string(),
    });
    Ok(SwitchRequest { to, expect_version, drain_timeout, who: who(b.who, headers) })
}

async fn switch(State(gw): App, headers: HeaderMap, body: Bytes) -> Response {
    let req = match parse::<SwitchBody>(&body).and_then(|b| switch_request(b, &headers)) {
        Ok(r) => r,
        Err(e) => return reply_error(e),
    };
    reply(gw.switch(req).await)
}

async fn rollback(State(gw): App, headers: HeaderMap, body: Bytes) -> Response {
    match parse::<WhoBody>(&body) {
        Ok(b) => reply(gw.rollback(who(b.who, &headers)).await),
        Err(e) => reply_error(e),
    }
}

async fn weights(State(gw): App, headers: HeaderMap, body: Bytes) -> Response {
    match parse::<WeightsBody>(&body) {
        Ok(b) => reply(gw.set_weights(b.blue, b.green, who(b.who, &headers)).await),
        Err(e) => reply_error(e),
    }
}

async fn shadow(State(gw): App, headers: HeaderMap, body: Bytes) -> Response {
    match parse::<ShadowBody>(&body) {
        Ok(b) => reply(gw.set_shadow(b.percent, who(b.who, &headers)).await),
        Err(e) => reply_error(e),
    }
}

async fn audit(State(gw): App) -> Response {
    reply(gw.audit_records())
}

async fn metrics(State(gw): App) -> Response {
    exposition::response(crate::metrics::render(&gw))
}
