//! MLflow's web UI: `GET /` is its `index.html` and `/static-files/<path>` its assets, from the
//! UI build of the pinned MLflow release (`factory ui install` takes it out of the `mlflow`
//! wheel; `factory server --ui-dir`). Without a build, `/` says in one line how to get one.
//! Also the calls the UI makes for features this server leaves out (AI gateway, assistant, UI
//! telemetry), answered as `mlflow server` answers them with those features off, and the trace
//! metrics the experiment overview charts (this server keeps no traces: no data points).

use crate::access::Need;
use crate::artifact_path::safe_path;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::{Msg, Reply};
use crate::routes::{Api, Input, GET, GET_POST, MLFLOW_V2, MLFLOW_V3, POST, ROOT};
use crate::tracking::required;
use crate::AppState;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::io::ErrorKind;
use std::path::Path;

/// How the assets are cached by browsers: MLflow's `max_age` (the file names carry a hash).
const CACHE_CONTROL: &str = "public, max-age=2419200";

/// What `/` says when no UI build is installed.
pub const NO_UI: &str = "The MLflow web UI is not installed: run `factory ui install` (or pass --ui-dir DIR), then \
                         restart `factory server`. Drift, deployments and lineage: /factory/\n";

/// The link to our own pages, added to the UI's `index.html` (a fixed corner link: the UI's
/// React app owns the rest of the page).
const FACTORY_LINK: &str = "<a href=\"factory/\" title=\"Drift monitoring, deployments and lineage\" \
    style=\"position:fixed;right:12px;bottom:12px;z-index:2147483647;padding:6px 12px;border-radius:16px;\
    background:#0b3954;color:#fff;font:13px system-ui,sans-serif;text-decoration:none\">MLOps Factory pages</a>";

pub fn routes(api: &mut Api) {
    api.under(ROOT, |api| {
        // As `mlflow server --app-name basic-auth`: the page needs a login, its assets do not.
        api.listing(GET, "/", index);
        api.public(GET, "/static-files/{*path}", static_file);
    });
    api.under(MLFLOW_V3, |api| {
        api.listing(GET, "/ui-telemetry", telemetry_config);
        api.listing(POST, "/ui-telemetry", telemetry_records);
        api.listing(GET, "/assistant/config", assistant_config);
        api.listing(GET, "/assistant/providers", assistant_providers);
        api.rule(POST, "/traces/metrics", trace_metrics, |r| {
            Ok(Need::Experiments(r.experiments()?, ::auth::permission::Action::Read))
        });
    });
    api.under(MLFLOW_V2, |api| api.listing(GET_POST, "/gateway-proxy", gateway_proxy));
}

async fn index(s: AppState, _: Caller, _: ()) -> ApiResult<Response> {
    match &s.ui_dir {
        Some(dir) => {
            let page = file(dir, "index.html", false).await?;
            let (parts, body) = page.into_parts();
            let html = axum::body::to_bytes(body, 16 << 20)
                .await
                .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("reading the UI's index.html: {e}")))?;
            let html = String::from_utf8_lossy(&html);
            let linked = match html.rfind("</body>") {
                Some(at) => format!("{}{FACTORY_LINK}{}", &html[..at], &html[at..]),
                None => format!("{html}{FACTORY_LINK}"),
            };
            let mut resp = Response::from_parts(parts, axum::body::Body::from(linked));
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            Ok(resp)
        }
        None => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], NO_UI).into_response()),
    }
}

/// The part of the URL after `/static-files/`.
pub struct AssetPath(String);

impl Input for AssetPath {
    async fn parse(req: Request, _: &AppState) -> ApiResult<Self> {
        let path = req.uri().path();
        let rest = path.split_once("/static-files/").map(|(_, rest)| rest).unwrap_or_default();
        Ok(AssetPath(rest.to_string()))
    }
}

async fn static_file(s: AppState, _: Caller, AssetPath(path): AssetPath) -> ApiResult<Response> {
    let Some(dir) = &s.ui_dir else { return Err(not_found()) };
    // The artifact proxy's traversal check: no `..`, absolute paths, backslashes, NUL, ...
    let clean = safe_path(&path).map_err(|_| not_found())?;
    file(dir, clean.as_ref(), true).await
}

/// Not found; the message does not repeat the path (it is a public route).
fn not_found() -> ApiError {
    ApiError::new(ErrorCode::EndpointNotFound, "No such UI file on this server")
}

async fn file(dir: &Path, rel: &str, cache: bool) -> ApiResult<Response> {
    if rel.is_empty() {
        return Err(not_found());
    }
    let bytes = match tokio::fs::read(dir.join(rel)).await {
        Ok(b) => b,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::InvalidFilename
            ) =>
        {
            return Err(not_found())
        }
        Err(e) => return Err(ApiError::new(ErrorCode::InternalError, format!("reading UI file '{rel}': {e}"))),
    };
    let mime = mime_guess::from_path(rel).first_or_octet_stream();
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, mime.essence_str().to_string())], bytes).into_response();
    if cache {
        r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(CACHE_CONTROL));
    }
    Ok(r)
}

/// `GET /ajax-api/3.0/mlflow/ui-telemetry`: telemetry off.
#[derive(Serialize)]
struct TelemetryConfig {
    disable_ui_events: [&'static str; 0],
    disable_ui_telemetry: bool,
    ui_rollout_percentage: u32,
}

async fn telemetry_config(_: AppState, _: Caller, _: ()) -> ApiResult<Reply<TelemetryConfig>> {
    Ok(Reply(TelemetryConfig { disable_ui_events: [], disable_ui_telemetry: true, ui_rollout_percentage: 0 }))
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// `POST /ajax-api/3.0/mlflow/ui-telemetry`: accepted and dropped, nothing is collected.
async fn telemetry_records(_: AppState, _: Caller, _: ()) -> ApiResult<Reply<Status>> {
    Ok(Reply(Status { status: "success" }))
}

/// `GET /ajax-api/3.0/mlflow/assistant/config`: no assistant configured.
#[derive(Serialize)]
struct AssistantConfig {
    providers: Empty,
    projects: Empty,
    remote_access_allowed: bool,
}

#[derive(Serialize)]
struct Empty {}

async fn assistant_config(_: AppState, _: Caller, _: ()) -> ApiResult<Reply<AssistantConfig>> {
    Ok(Reply(AssistantConfig { providers: Empty {}, projects: Empty {}, remote_access_allowed: false }))
}

/// `GET /ajax-api/3.0/mlflow/assistant/providers`: none available.
#[derive(Serialize)]
struct Providers {
    providers: [Empty; 0],
}

async fn assistant_providers(_: AppState, _: Caller, _: ()) -> ApiResult<Reply<Providers>> {
    Ok(Reply(Providers { providers: [] }))
}

/// `/ajax-api/2.0/mlflow/gateway-proxy`: the AI gateway has no endpoints here.
#[derive(Serialize)]
struct Endpoints {
    endpoints: [Empty; 0],
}

async fn gateway_proxy(_: AppState, _: Caller, _: ()) -> ApiResult<Reply<Endpoints>> {
    Ok(Reply(Endpoints { endpoints: [] }))
}

/// `GET /api/3.0/mlflow/server-info` (public: clients read it before they log in).
#[derive(Serialize)]
pub struct ServerInfo {
    store_type: &'static str,
    workspaces_enabled: bool,
    trace_archival_enabled: bool,
    multipart_uploads_enabled: bool,
    multipart_downloads_enabled: bool,
    presigned_upload_run_id_supported: bool,
    presigned_upload_model_id_supported: bool,
    features_enabled: Features,
}

#[derive(Serialize)]
struct Features {
    gateway: bool,
}

pub async fn server_info(_: AppState, _: Caller, _: ()) -> ApiResult<Reply<ServerInfo>> {
    Ok(Reply(ServerInfo {
        store_type: "SqlStore",
        workspaces_enabled: false,
        trace_archival_enabled: false,
        multipart_uploads_enabled: false,
        multipart_downloads_enabled: false,
        // No presigned uploads at all: the client then uploads through the proxy.
        presigned_upload_run_id_supported: false,
        presigned_upload_model_id_supported: false,
        features_enabled: Features { gateway: false },
    }))
}

/// `QueryTraceMetrics` (`POST /api/3.0/mlflow/traces/metrics`), checked as MLflow checks it.
#[derive(serde::Deserialize)]
pub struct TraceMetrics {
    experiment_ids: Option<Vec<String>>,
    view_type: Option<serde_json::Value>,
    metric_name: Option<String>,
    aggregations: Option<Vec<Aggregation>>,
    #[serde(default)]
    dimensions: Vec<String>,
    time_interval_seconds: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Aggregation {
    aggregation_type: Option<String>,
}

impl TraceMetrics {
    /// The experiments asked about (what the permission rule reads, as MLflow's does).
    fn experiments(&self) -> ApiResult<Vec<String>> {
        required(self.experiment_ids.clone().filter(|v| !v.is_empty()), "experiment_ids")
    }

    /// MLflow's required fields, in its order and words.
    fn checked(&self) -> ApiResult<()> {
        self.experiments()?;
        required(self.view_type.as_ref(), "view_type")?;
        required(self.metric_name.as_ref().filter(|v| !v.is_empty()), "metric_name")?;
        required(self.aggregations.as_ref().filter(|v| !v.is_empty()), "aggregations")?;
        Ok(())
    }
}

/// `QueryTraceMetrics.Response`.
#[derive(Serialize)]
struct TraceMetricsReply {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    data_points: Vec<DataPoint>,
}

#[derive(Serialize)]
struct DataPoint {
    metric_name: String,
    values: std::collections::BTreeMap<String, f64>,
}

/// This server keeps no traces, so the answer is the aggregate over none, as MLflow's SQL
/// gives it: grouped (by dimensions or time buckets), no groups; ungrouped, one point where
/// each `COUNT` is 0 and every other aggregate (undefined over nothing) is left out.
async fn trace_metrics(_: AppState, _: Caller, Msg(r): Msg<TraceMetrics>) -> ApiResult<Reply<TraceMetricsReply>> {
    r.checked()?;
    let grouped = !r.dimensions.is_empty() || r.time_interval_seconds.is_some();
    let counts: std::collections::BTreeMap<String, f64> = r
        .aggregations
        .iter()
        .flatten()
        .filter_map(|a| a.aggregation_type.as_deref())
        .filter(|t| *t == "COUNT")
        .map(|t| (t.to_string(), 0.0))
        .collect();
    let data_points = match (grouped, counts.is_empty()) {
        (false, false) => vec![DataPoint { metric_name: r.metric_name.unwrap_or_default(), values: counts }],
        _ => Vec::new(),
    };
    Ok(Reply(TraceMetricsReply { data_points }))
}
