//! The HTTP adapter (axum): MLflow's scoring protocol, the Open Inference Protocol V2 over
//! REST, Prometheus metrics and the admin reload. Handlers parse the request, call one
//! [`Serving`] operation and write the reply; [`ServeError`] becomes an HTTP reply in two
//! exhaustive mappings, one per protocol family:
//!
//! - MLflow routes (`/invocations`, `/ping`, ...): `{"error_code": ..., "message": ...}`,
//!   `BAD_REQUEST` for an unreadable body, `INVALID_PARAMETER_VALUE` for one that does not
//!   fit the signature (both 400, as `mlflow models serve` answers);
//! - V2 routes (`/v2/...`): `{"error": ...}` with 400 for bad input, 404 for another model.

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Path, Query, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::{BoxFuture, Either, FutureExt};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, UNIX_EPOCH};
use tower::layer::layer_fn;

use crate::error::ServeError;
use crate::reload::ReloadOutcome;
use crate::request_id;
use crate::service::{ModelMeta, Serving};
use crate::tensor::{datatype_is_numeric, Tensor, TensorData};

type App = State<Arc<Serving>>;

/// Every HTTP route, with metrics. Serve it through [`refuse_oversized`]: the scoring routes read
/// at most `max_body_bytes` of a body, and that wrapper answers bodies declared larger.
pub fn router(app: Arc<Serving>) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/invocations", post(invocations))
        .route("/v2", get(v2_server_metadata))
        .route("/v2/health/live", get(v2_live))
        .route("/v2/health/ready", get(v2_ready))
        .route("/v2/models/{name}", get(v2_model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(v2_model_metadata))
        .route("/v2/models/{name}/ready", get(v2_model_ready))
        .route("/v2/models/{name}/versions/{version}/ready", get(v2_model_ready))
        .route("/v2/models/{name}/infer", post(v2_infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(v2_infer))
        .route("/metrics", get(metrics))
        .route("/drift/sketch", get(drift_sketch))
        .route_layer(layer_fn({
            let app = app.clone();
            move |inner| Track { inner, app: app.clone() }
        }))
        .fallback(not_found)
        .with_state(app)
}

/// `router` (every route, the fallback and any added later, such as gRPC's) behind
/// [`RefuseOversized`]: one wrapper around the whole router rather than a layer, which axum
/// would apply to each route (a boxed service and future more per request).
pub fn refuse_oversized(app: Arc<Serving>, router: Router) -> RefuseOversized<Router> {
    RefuseOversized { inner: router, app }
}

/// serve's admin listener (`--admin-port`): `POST /admin/reload`, every path behind the bearer
/// token when tokens are configured and behind [`admin_api::guard`] (no browser requests, no
/// foreign host name without tokens). The public router has no `/admin/*` routes (404).
pub fn admin_router(app: Arc<Serving>) -> Router {
    Router::new()
        .route(admin_api::serve_paths::RELOAD, post(admin_reload))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), require_token))
        .layer(middleware::from_fn_with_state(app.clone(), refuse_browsers))
        .with_state(app)
}

/// Requests a web page can make the operator's browser send are refused first, whatever their
/// token ([`admin_api::guard`]).
async fn refuse_browsers(State(app): App, req: Request, next: Next) -> Response {
    use axum::body::HttpBody;
    let seen = admin_api::guard::Request {
        authority: req.uri().authority().map(|a| a.as_str()),
        has_body: !req.body().is_end_stream(),
        tokenless: app.admin_tokens.is_none(),
    };
    match admin_api::guard::check(req.headers(), seen) {
        None => next.run(req).await,
        Some(r) => json_reply(r.status, &r.reply),
    }
}

async fn require_token(State(app): App, req: Request, next: Next) -> Response {
    if let Some(tokens) = &app.admin_tokens {
        let presented = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        match tokens.check(presented) {
            Some(who) => tracing::info!(who = %who.0, "admin: {} {}", req.method(), req.uri()),
            None => {
                let mut r = json_reply(
                    StatusCode::UNAUTHORIZED,
                    &admin_api::ErrorReply { error: "admin token missing or wrong (Authorization: Bearer ...)".into() },
                );
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
    }
    next.run(req).await
}

// The two middlewares are tower services rather than `middleware::from_fn`: that boxes a future
// of about a kilobyte per request and layer, which on the one-row path cost more than the
// work they do (a kilobyte is past the allocator's small sizes).

/// Counts and times every request by route pattern and status (a route layer: only matched
/// routes have a [`MatchedPath`]).
#[derive(Clone)]
struct Track<S> {
    inner: S,
    app: Arc<Serving>,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        Tracked { started: Instant::now(), route, app: self.app.clone(), inner: self.inner.call(req) }
    }
}

pin_project_lite::pin_project! {
    struct Tracked<F> {
        #[pin]
        inner: F,
        started: Instant,
        route: Option<MatchedPath>,
        app: Arc<Serving>,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(route)) = (&out, this.route.as_ref()) {
            this.app.metrics.observe_request("http", route.as_str(), resp.status().as_str(), this.started.elapsed());
        }
        Poll::Ready(out)
    }
}

/// Bodies declared larger than the limit are refused before any handler runs, but read to
/// the end first (up to [`DRAIN_MAX`]): a client still sending its body would otherwise see
/// the connection reset instead of the 413 answer.
#[derive(Clone)]
pub struct RefuseOversized<S> {
    inner: S,
    app: Arc<Serving>,
}

impl<S> tower::Service<Request> for RefuseOversized<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<
        S::Future,
        futures::future::Map<BoxFuture<'static, Response>, fn(Response) -> Result<Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // gRPC calls have their own message limit (`grpc_max_message_bytes`).
        let grpc =
            req.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .filter(|_| !grpc)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = self.app.max_body_bytes;
        match declared.filter(|&n| n > limit as u64) {
            None => Either::Left(self.inner.call(req)),
            Some(len) => Either::Right(FutureExt::map(refuse(req, len, limit).boxed(), Ok)),
        }
    }
}

/// The answer to a body declared over `limit`, after reading it (see [`RefuseOversized`]).
async fn refuse(req: Request, len: u64, limit: usize) -> Response {
    let v2 = req.uri().path().starts_with("/v2");
    if len <= DRAIN_MAX {
        let mut stream = req.into_body().into_data_stream();
        while let Some(Ok(_)) = stream.next().await {}
    }
    let err = ServeError::TooLarge { limit };
    if v2 {
        V2Error(err).into_response()
    } else {
        MlflowError(err).into_response()
    }
}

/// The most an oversized body is read (and discarded) to answer it cleanly.
const DRAIN_MAX: u64 = 64 * 1024 * 1024;

async fn not_found(req: Request) -> Response {
    let msg = format!("no route {} {}", req.method(), req.uri().path());
    (StatusCode::NOT_FOUND, Json(MlflowErrorBody { error_code: "ENDPOINT_NOT_FOUND", message: msg })).into_response()
}

// ---------------------------------------------------------------------------------------
// Error mappings
// ---------------------------------------------------------------------------------------

/// MLflow's error shape.
#[derive(Serialize)]
struct MlflowErrorBody {
    error_code: &'static str,
    message: String,
}

/// The V2 protocol's error shape.
#[derive(Serialize)]
struct V2ErrorBody {
    error: String,
}

/// A [`ServeError`] on an MLflow route.
struct MlflowError(ServeError);

impl From<ServeError> for MlflowError {
    fn from(e: ServeError) -> Self {
        MlflowError(e)
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            ServeError::Malformed(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ServeError::Invalid(_) => (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
            ServeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "BAD_REQUEST"),
            ServeError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "BAD_REQUEST"),
            ServeError::ModelNotFound { .. } => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
            ServeError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE"),
            ServeError::Predict(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        };
        (status, Json(MlflowErrorBody { error_code: code, message: self.0.to_string() })).into_response()
    }
}

/// A [`ServeError`] on a V2 route.
struct V2Error(ServeError);

impl From<ServeError> for V2Error {
    fn from(e: ServeError) -> Self {
        V2Error(e)
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ServeError::Malformed(_) | ServeError::Invalid(_) => StatusCode::BAD_REQUEST,
            ServeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServeError::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            ServeError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Predict(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(V2ErrorBody { error: self.0.to_string() })).into_response()
    }
}

/// A scoring request's headers (taken out of the request, not copied as the `HeaderMap`
/// extractor does) and its body, read up to `max_body_bytes`.
struct Payload {
    headers: HeaderMap,
    body: Result<Bytes, ServeError>,
}

impl FromRequest<Arc<Serving>> for Payload {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, app: &Arc<Serving>) -> Result<Payload, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = read_body(body, app.max_body_bytes).await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ServeError::TooLarge { limit: app.max_body_bytes }
            } else {
                ServeError::Malformed(format!("reading the request body: {e}"))
            }
        });
        Ok(Payload { headers: parts.headers, body })
    }
}

/// The whole body, at most `limit` bytes. A body that came in one piece (most small requests)
/// is returned as it is, without a copy.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, listener::BoxError> {
    use http_body_util::BodyExt as _;
    let mut body = std::pin::pin!(http_body_util::Limited::new(body, limit));
    let mut whole: Option<Bytes> = None;
    let mut more = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        match whole.take() {
            None if more.is_empty() => whole = Some(data),
            first => {
                more.extend_from_slice(&first.unwrap_or_default());
                more.extend_from_slice(&data);
            }
        }
    }
    Ok(whole.unwrap_or_else(|| more.freeze()))
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, ServeError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ServeError::Malformed(format!("the request body is not {what}: {e}")),
        _ => ServeError::Malformed(format!("the request body is not valid JSON: {e}")),
    })
}

/// A JSON value whose objects name each key once. `serde_json::Value` keeps the last of a
/// duplicate key, so a `dataframe_records` row (or an `inputs` object) naming a column twice
/// would be scored with one of its values silently; like a CSV header or V2 inputs naming a
/// column twice, it is refused, naming the key.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "'{}' is given twice in one object",
                    crate::error::shown(&key, 200)
                )));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// `dataframe_split.columns` names each column once (the frame would keep the last one's
/// values).
fn split_columns_named_once(payload: &Value) -> Result<(), ServeError> {
    let Some(Value::Array(columns)) = payload.get("dataframe_split").and_then(|s| s.get("columns")) else {
        return Ok(());
    };
    let mut seen = std::collections::HashSet::with_capacity(columns.len());
    for name in columns.iter().filter_map(Value::as_str) {
        if !seen.insert(name) {
            return Err(ServeError::Invalid(format!(
                "column '{}' is given twice in dataframe_split.columns",
                crate::error::shown(name, 200)
            )));
        }
    }
    Ok(())
}

/// Writes JSON with every float in shortest round-trip form.
fn json_reply<T: Serialize>(status: StatusCode, value: &T) -> Response {
    // Room for a small answer up front, rather than growing from 8 bytes by doubling.
    let mut bytes = Vec::with_capacity(256);
    match serde_json::to_writer(&mut bytes, value) {
        Ok(()) => {
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

// ---------------------------------------------------------------------------------------
// MLflow scoring protocol
// ---------------------------------------------------------------------------------------

async fn ping(State(app): App) -> Response {
    if app.is_ready() {
        (StatusCode::OK, "\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "\n").into_response()
    }
}

async fn health(State(app): App) -> Response {
    let h = app.health();
    let m = h.model.as_deref();
    let body = admin_api::HealthReply {
        status: Some(
            if h.stopping {
                "stopping"
            } else if m.is_some() {
                "ok"
            } else {
                "loading"
            }
            .into(),
        ),
        model_uri: Some(h.model_uri.clone()),
        model_name: m.map(|m| m.name.clone()),
        model_version: m.map(|m| m.version.clone()),
        registry_version: m.and_then(|m| m.registry_version.clone()),
        run_id: m.and_then(|m| m.run_id.clone()),
        model_kind: m.map(|m| m.model.kind().to_string()),
        loaded_at: m.map(|m| rfc3339(m.loaded_at)),
        loaded_at_unix: m.map(|m| m.loaded_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()),
        last_reload_error: h.refusal.as_ref().map(|r| admin_api::ReloadRefusal {
            target: r.target.clone(),
            error: r.error.clone(),
            at: rfc3339(r.at),
        }),
        last_reload_check: h.last_check.map(rfc3339),
        started_at: Some(rfc3339(h.started_at)),
        server_version: Some(env!("CARGO_PKG_VERSION").into()),
    };
    let status = if m.is_some() && !h.stopping { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_reply(status, &body)
}

async fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

enum Format {
    Json,
    Csv,
}

fn content_type(headers: &HeaderMap) -> Result<Format, ServeError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(Format::Json) };
    let ct = ct.to_str().unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    let is = |m: &[&str]| m.iter().any(|m| mime.eq_ignore_ascii_case(m));
    if is(&["application/json", ""]) {
        Ok(Format::Json)
    } else if is(&["text/csv", "application/csv"]) {
        Ok(Format::Csv)
    } else {
        Err(ServeError::UnsupportedMediaType(ct.to_string()))
    }
}

/// The `/invocations` answer; `predictions` is shaped per flavor as `mlflow models serve`
/// shapes it (`package::output`).
#[derive(Serialize)]
struct Predictions<'a> {
    predictions: package::output::Mlflow<'a>,
}

/// The `X-Request-Id` header, if the request has one (not text: refused).
fn header_id(headers: &HeaderMap) -> Result<Option<&str>, ServeError> {
    headers
        .get(request_id::HEADER)
        .map(|v| v.to_str().map_err(|_| ServeError::Invalid("the X-Request-Id header is not text".into())))
        .transpose()
}

/// `X-Request-Id`, made once (a name that is not one of `http`'s standard ones is otherwise
/// copied to the heap each time).
static X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static(request_id::HEADER);

/// A reply carrying the request's id back in `X-Request-Id` (the id's text becomes the header
/// value without a copy).
fn with_id(mut resp: Response, id: String) -> Response {
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(id)) {
        resp.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    resp
}

async fn invocations(State(app): App, Payload { headers, body: raw }: Payload) -> Result<Response, MlflowError> {
    let id = request_id::resolve(&[(header_id(&headers)?, "the X-Request-Id header")])?;
    let bytes = raw?;
    let format = content_type(&headers)?;
    let model = app.model()?;
    let frame = match format {
        Format::Json => match package::input::from_split_json(&bytes, model.schema()) {
            Some(frame) => frame,
            None => {
                let StrictValue(payload) = parse_json(&bytes, "a JSON object")?;
                split_columns_named_once(&payload)?;
                package::input::from_json(payload, model.schema()).map_err(|e| ServeError::Invalid(e.to_string()))?
            }
        },
        Format::Csv => {
            package::input::from_csv(&bytes[..], model.schema()).map_err(|e| ServeError::Invalid(e.to_string()))?
        }
    };
    let predictions = app.score(&model, frame, &id).await?;
    let reply = json_reply(StatusCode::OK, &Predictions { predictions: package::output::Mlflow(&predictions) });
    Ok(with_id(reply, id))
}

// ---------------------------------------------------------------------------------------
// Open Inference Protocol V2 (REST)
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ModelPath {
    name: String,
    version: Option<String>,
}

#[derive(Serialize)]
struct V2ServerMetadata {
    name: &'static str,
    version: &'static str,
    extensions: [&'static str; 0],
}

#[derive(Serialize)]
struct V2Live {
    live: bool,
}

#[derive(Serialize)]
struct V2Ready<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    ready: bool,
}

#[derive(Serialize)]
struct V2Tensor<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: &'a [i64],
}

#[derive(Serialize)]
struct V2ModelMetadata<'a> {
    name: &'a str,
    versions: &'a [String],
    platform: &'a str,
    inputs: Vec<V2Tensor<'a>>,
    outputs: Vec<V2Tensor<'a>>,
}

impl<'a> V2ModelMetadata<'a> {
    fn of(m: &'a ModelMeta) -> Self {
        let t = |ts: &'a [crate::service::TensorMeta]| -> Vec<V2Tensor<'a>> {
            ts.iter().map(|t| V2Tensor { name: &t.name, datatype: t.datatype, shape: &t.shape }).collect()
        };
        V2ModelMetadata {
            name: &m.name,
            versions: &m.versions,
            platform: &m.platform,
            inputs: t(&m.inputs),
            outputs: t(&m.outputs),
        }
    }
}

async fn v2_server_metadata() -> Response {
    json_reply(
        StatusCode::OK,
        &V2ServerMetadata { name: "factory", version: env!("CARGO_PKG_VERSION"), extensions: [] },
    )
}

async fn v2_live() -> Response {
    json_reply(StatusCode::OK, &V2Live { live: true })
}

async fn v2_ready(State(app): App) -> Response {
    let ready = app.is_ready();
    json_reply(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &V2Ready { name: None, ready })
}

async fn v2_model_metadata(State(app): App, Path(p): Path<ModelPath>) -> Result<Response, V2Error> {
    let model = app.model_named(&p.name, p.version.as_deref())?;
    Ok(json_reply(StatusCode::OK, &V2ModelMetadata::of(&app.metadata(&model))))
}

async fn v2_model_ready(State(app): App, Path(p): Path<ModelPath>) -> Result<Response, V2Error> {
    let model = app.model_named(&p.name, p.version.as_deref())?;
    let ready = app.is_ready();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(json_reply(status, &V2Ready { name: Some(&model.name), ready }))
}

#[derive(Deserialize)]
struct V2Request {
    #[serde(default)]
    id: Option<String>,
    inputs: Vec<V2Input>,
    /// The outputs asked for (none: all of them).
    #[serde(default)]
    outputs: Vec<V2RequestedOutput>,
}

/// One of a V2 request's `outputs` (its `parameters`, e.g. `binary_data`, are not read).
#[derive(Deserialize)]
struct V2RequestedOutput {
    name: String,
}

#[derive(Deserialize)]
struct V2Input {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Value,
}

#[derive(Serialize)]
struct V2Output<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    data: V2Data<'a>,
}

/// An output's values, flat (row-major), in its own type.
#[derive(Serialize)]
#[serde(untagged)]
enum V2Data<'a> {
    F64(&'a [f64]),
    F32(&'a [f32]),
    I64(&'a [i64]),
    Bool(&'a [bool]),
    Text(&'a [String]),
}

impl<'a> From<&'a formats::Values> for V2Data<'a> {
    fn from(v: &'a formats::Values) -> Self {
        match v {
            formats::Values::F64(x) => V2Data::F64(x),
            formats::Values::F32(x) => V2Data::F32(x),
            formats::Values::I64(x) => V2Data::I64(x),
            formats::Values::Bool(x) => V2Data::Bool(x),
            formats::Values::Str(x) => V2Data::Text(x),
        }
    }
}

#[derive(Serialize)]
struct V2Response<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: Vec<V2Output<'a>>,
}

/// Flattens nested lists (row-major) into `out`.
fn flatten(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => {
            for i in items {
                flatten(i, out);
            }
        }
        other => out.push(other),
    }
}

/// A V2 JSON input as a protocol-neutral tensor.
fn tensor(input: V2Input) -> Result<Tensor, ServeError> {
    let mut values = Vec::new();
    flatten(input.data, &mut values);
    let name = input.name;
    let bad = |i: usize, v: &Value, want: &str| {
        ServeError::Invalid(format!(
            "input '{name}', element {i}: expected {want} for datatype {}, got {v}",
            input.datatype
        ))
    };
    let data = match datatype_is_numeric(&input.datatype) {
        Some(true) => TensorData::Numeric(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Bool(b) if input.datatype == "BOOL" => Ok(if *b { 1.0 } else { 0.0 }),
                    _ => package::input::json_number(v).ok_or_else(|| bad(i, v, "a number")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(false) => TensorData::Bytes(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| package::input::json_text(v).ok_or_else(|| bad(i, v, "a string")))
                .collect::<Result<_, _>>()?,
        ),
        // frame_from_tensors names the unsupported datatype.
        None => TensorData::Numeric(Vec::new()),
    };
    Ok(Tensor { name, datatype: input.datatype, shape: input.shape, data })
}

/// Reads a V2 inference request body (JSON): its `id` and its inputs as tensors, or why
/// the body is not one (`Malformed`) or an input's values do not fit its datatype
/// (`Invalid`).
pub fn v2_request(bytes: &[u8]) -> Result<(Option<String>, Vec<Tensor>), ServeError> {
    v2_request_with_outputs(bytes).map(|(id, tensors, _)| (id, tensors))
}

/// A V2 request read: its `id`, its inputs, the names of the outputs it asks for.
type V2Read = (Option<String>, Vec<Tensor>, Vec<String>);

/// [`v2_request`], with the names of the outputs the request asks for.
fn v2_request_with_outputs(bytes: &[u8]) -> Result<V2Read, ServeError> {
    let req: V2Request = parse_json(bytes, "a V2 inference request ({\"inputs\": [...]})")?;
    let tensors = req.inputs.into_iter().map(tensor).collect::<Result<Vec<_>, _>>()?;
    Ok((req.id, tensors, req.outputs.into_iter().map(|o| o.name).collect()))
}

async fn v2_infer(
    State(app): App,
    Path(p): Path<ModelPath>,
    Payload { headers, body: raw }: Payload,
) -> Result<Response, V2Error> {
    let bytes = raw?;
    let model = app.model_named(&p.name, p.version.as_deref())?;
    let (given, tensors, wanted) = v2_request_with_outputs(&bytes)?;
    model.check_outputs(wanted.iter().map(String::as_str))?;
    // The body's `id` first, then the header, else a new one: in the X-Request-Id answer header,
    // and as the answer's `id` when the request had one (V2 echoes it; two colours answering a
    // shadowed request give the same body).
    let id = request_id::resolve(&[
        (given.as_deref(), "the request's id"),
        (header_id(&headers)?, "the X-Request-Id header"),
    ])?;
    let frame = app.frame_from_v2(&model, tensors)?;
    let predictions = app.score(&model, frame, &id).await?;
    let reply = V2Response {
        model_name: &model.name,
        model_version: &model.version,
        id: given.as_deref(),
        outputs: predictions
            .outputs
            .iter()
            .filter(|t| wanted.is_empty() || wanted.contains(&t.name))
            .map(|t| V2Output {
                name: &t.name,
                datatype: t.values.elem().v2_name(),
                shape: &t.shape,
                data: (&t.values).into(),
            })
            .collect(),
    };
    let reply = json_reply(StatusCode::OK, &reply);
    Ok(with_id(reply, id))
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

async fn metrics(State(app): App) -> Response {
    exposition::response(app.render_metrics())
}

/// `GET /drift/sketch[?since=<Unix ms>]`: the online drift sketches of the windows closed since
/// `since` (all kept windows without it), as `sketch::SketchAnswer`; 404 when online drift is
/// off.
async fn drift_sketch(State(app): App, RawQuery(query): RawQuery) -> Response {
    if !app.sketches.enabled() {
        let error = "online drift is off on this server (serve --drift-window 0)".to_string();
        return (StatusCode::NOT_FOUND, Json(V2ErrorBody { error })).into_response();
    }
    let (mut since, mut open) = (None, false);
    for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let parsed = match key {
            "since" => value
                .parse::<u64>()
                .map(|v| since = Some(v))
                .map_err(|_| format!("'since' must be a time in milliseconds since the Unix epoch, got '{value}'")),
            "open" => value
                .parse::<bool>()
                .map(|v| open = v)
                .map_err(|_| format!("'open' must be true or false, got '{value}'")),
            other => Err(format!("unknown query parameter '{other}' (expected 'since' or 'open')")),
        };
        if let Err(error) = parsed {
            return (StatusCode::BAD_REQUEST, Json(V2ErrorBody { error })).into_response();
        }
    }
    json_reply(StatusCode::OK, &app.sketches.answer(since, open))
}

/// `POST /admin/reload[?force=true]`: 200 when the model is current (reloaded or
/// unchanged), 409 when the new version was refused (the old one keeps serving).
async fn admin_reload(State(app): App, Query(q): Query<admin_api::ReloadQuery>) -> Response {
    use admin_api::{ReloadOutcome as Wire, ReloadReply};
    let (status, reply) = match app.reload(q.force).await {
        ReloadOutcome::Unchanged { version } => (
            StatusCode::OK,
            ReloadReply {
                outcome: Wire::Unchanged,
                model_version: Some(version),
                previous_version: None,
                target: None,
                error: None,
            },
        ),
        ReloadOutcome::Reloaded { from, to } => (
            StatusCode::OK,
            ReloadReply {
                outcome: Wire::Reloaded,
                model_version: Some(to),
                previous_version: from,
                target: None,
                error: None,
            },
        ),
        ReloadOutcome::Refused(r) => (
            StatusCode::CONFLICT,
            ReloadReply {
                outcome: Wire::Refused,
                model_version: app.model().ok().map(|m| m.version.clone()),
                previous_version: None,
                target: Some(r.target),
                error: Some(r.error),
            },
        ),
    };
    json_reply(status, &reply)
}

#[cfg(test)]
mod tests {
    use super::StrictValue;
    use proptest::prelude::*;
    use serde_json::Value;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
            "[a-c\"\\\\é\\u{0}]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c]{0,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without repeated keys the strict reader reads what `serde_json` reads.
        #[test]
        fn reads_json_as_serde_json_does(v in json()) {
            let text = v.to_string();
            let StrictValue(got) = serde_json::from_str(&text).expect("valid JSON");
            // Against serde_json's own reading of the text (its float parsing is its own).
            prop_assert_eq!(got, serde_json::from_str::<Value>(&text).expect("valid JSON"));
        }

        /// A key repeated in any object, however deep, is refused and named.
        #[test]
        fn refuses_a_repeated_key_anywhere(v in json(), depth in 0usize..4) {
            let mut text = format!(r#"{{"dup": {v}, "x": 1, "dup": null}}"#);
            for _ in 0..depth {
                text = format!(r#"[{v}, {{"k": {text}}}]"#);
            }
            let err = serde_json::from_str::<StrictValue>(&text).err().expect("refused");
            prop_assert!(err.to_string().contains("'dup' is given twice"), "{}", err);
        }

        /// Any text: the strict reader never panics, and what it reads `serde_json` reads the same.
        #[test]
        fn any_text_is_read_or_refused(text in "[\\[\\]{}:,\"a0-9.eE+-]{0,40}") {
            if let Ok(StrictValue(v)) = serde_json::from_str(&text) {
                prop_assert_eq!(Some(v), serde_json::from_str::<Value>(&text).ok());
            }
        }
    }
}
