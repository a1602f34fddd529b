//! The artifacts of runs, model versions and logged models, read by the server itself: MLflow's
//! `/get-artifact`, `/model-versions/get-artifact`, `artifacts/list` and the logged-model
//! `artifacts/files|directories` routes.
//!
//! Invariant: the server only reads locations it owns. A proxied location (`mlflow-artifacts:`,
//! or an `http(s)` URL of an `/api/2.0/mlflow-artifacts/artifacts/` route) is read from the
//! artifact proxy's store, as MLflow does; a local location only when it lies under a local
//! `--default-artifact-root` (MLflow would read any local folder a client named as an
//! experiment's location). Every requested path goes through [`safe_path`] first.

use crate::access::Need;
use crate::artifact_path::safe_path;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::{Msg, Reply};
use crate::logged_models::Pathed;
use crate::routes::{Api, Input, GET, POST};
use crate::AppState;
use ::auth::permission::Action;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use object_store::path::Path;
use object_store::ObjectStore;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Where MLflow anchors the artifact proxy inside an `http(s)` artifact location.
const PROXY_ANCHOR: &str = "/api/2.0/mlflow-artifacts/artifacts/";

/// Routes under `/api/2.0/mlflow` (and its `ajax-api` copy).
pub fn routes(api: &mut Api) {
    api.rule(GET, "/artifacts/list", list_run, |q| Ok(Need::Run(q.run()?, Action::Read)));
    api.rule(GET, "/logged-models/{model_id}/artifacts/directories", list_logged_model, |r| {
        Ok(Need::LoggedModel(r.path.clone(), Action::Read))
    });
}

/// Routes MLflow serves under `/ajax-api/2.0/mlflow` only (its UI's).
pub fn ajax_routes(api: &mut Api) {
    api.rule(POST, "/upload-artifact", upload_run, |u| Ok(Need::Run(u.run()?, Action::Update)));
    api.rule(GET, "/logged-models/{model_id}/artifacts/files", get_logged_model, |r| {
        Ok(Need::LoggedModel(r.path.clone(), Action::Read))
    });
}

/// Routes at the root (`/get-artifact`, `/model-versions/get-artifact`).
pub fn root_routes(api: &mut Api) {
    api.rule(GET, "/get-artifact", get_run, |q| Ok(Need::Run(q.run()?, Action::Read)));
    api.rule(GET, "/model-versions/get-artifact", get_version, |q| {
        Ok(Need::Version(crate::access::param(&q.name, "name")?, Action::Read))
    });
}

/// A requested path checked before anything is looked up, refused in MLflow's words
/// (`validate_path_is_safe`: "Invalid path").
fn checked(path: &str) -> ApiResult<Path> {
    safe_path(path).map_err(|_| ApiError::invalid("Invalid path"))
}

/// A location the server reads: the store and the folder in it.
struct Located {
    store: Arc<dyn ObjectStore>,
    root: String,
}

impl Located {
    /// The store path of `relative` (already checked) inside the location.
    fn path(&self, relative: &Path) -> ApiResult<Path> {
        let joined = match (self.root.is_empty(), relative.as_ref().is_empty()) {
            (true, _) => relative.as_ref().to_string(),
            (false, true) => self.root.clone(),
            (false, false) => format!("{}/{}", self.root, relative.as_ref()),
        };
        Path::parse(&joined).map_err(|e| ApiError::invalid(format!("Invalid artifact path '{joined}': {e}")))
    }
}

/// Resolves an artifact location (a run's `artifact_uri`, a logged model's or a version's).
fn locate(s: &AppState, uri: &str) -> ApiResult<Located> {
    let unserved = || {
        ApiError::new(
            ErrorCode::InvalidParameterValue,
            format!("The artifacts at '{uri}' are not served by this server; read them from their store directly"),
        )
    };
    let proxied = if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        // `mlflow-artifacts:/path` or `mlflow-artifacts://host/path`.
        let rest = match rest.strip_prefix("//") {
            Some(hosted) => hosted.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        Some(rest)
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        uri.split_once(PROXY_ANCHOR).map(|(_, p)| p)
    } else {
        None
    };
    if let Some(root) = proxied {
        let root = safe_path(root.trim_start_matches('/'))?;
        return Ok(Located { store: Arc::clone(&s.artifacts), root: root.as_ref().to_string() });
    }
    let local =
        |u: &str| u.strip_prefix("file://").map(str::to_string).or_else(|| u.starts_with('/').then(|| u.into()));
    let (Some(dir), Some(base)) = (local(uri), local(s.store.artifact_root())) else { return Err(unserved()) };
    let base = base.trim_end_matches('/');
    let Some(inside) = dir.strip_prefix(base).filter(|r| r.is_empty() || r.starts_with('/')) else {
        return Err(unserved());
    };
    let inside = safe_path(inside.trim_start_matches('/'))?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(base)
        .map_err(|e| ApiError::new(ErrorCode::InternalError, format!("opening '{base}': {e}")))?;
    Ok(Located { store: Arc::new(store), root: inside.as_ref().to_string() })
}

/// A file of a location the server owns, read whole when it is at most `cap` bytes: `None` when
/// it does not exist, an error when it is larger or the store fails (our pages read the loop's
/// `cycle.json` and drift reports through it).
pub(crate) async fn read_small(s: &AppState, uri: &str, relative: &str, cap: u64) -> ApiResult<Option<Bytes>> {
    let at = locate(s, uri)?;
    let path = at.path(&checked(relative)?)?;
    let got = match at.store.get(&path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(ApiError::new(ErrorCode::InternalError, format!("artifact store error: {other}"))),
    };
    if got.meta.size > cap {
        return Err(ApiError::invalid(format!("Artifact '{relative}' is larger than {cap} bytes")));
    }
    let bytes =
        got.bytes().await.map_err(|e| ApiError::new(ErrorCode::InternalError, format!("artifact store error: {e}")))?;
    Ok(Some(bytes))
}

/// The file as an attachment, as MLflow sends artifacts (never rendered on the server's origin).
async fn send(at: &Located, relative: &str) -> ApiResult<Response> {
    let relative = safe_path(relative)?;
    let path = at.path(&relative)?;
    let got = at.store.get(&path).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => ApiError::not_found(format!("Artifact '{relative}' does not exist")),
        other => ApiError::new(ErrorCode::InternalError, format!("artifact store error: {other}")),
    })?;
    let size = got.meta.size;
    Ok(crate::download::attachment(path.filename().unwrap_or_default(), size, Body::from_stream(got.into_stream())))
}

/// One listing level, each path relative to the location's root (`dir/name`), as MLflow's
/// `list_artifacts` gives them.
async fn listing(at: &Located, relative: Option<&str>) -> ApiResult<Vec<Value>> {
    let relative = safe_path(relative.unwrap_or(""))?;
    let path = at.path(&relative)?;
    let prefix = (!path.as_ref().is_empty()).then_some(&path);
    if !relative.as_ref().is_empty() && at.store.head(&path).await.is_ok() {
        return Ok(vec![]);
    }
    let listed = match at.store.list_with_delimiter(prefix).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(vec![]),
        Err(e) => return Err(ApiError::new(ErrorCode::InternalError, format!("artifact store error: {e}"))),
    };
    let named = |p: &Path| {
        let name = p.filename().unwrap_or_default();
        match relative.as_ref() {
            "" => name.to_string(),
            dir => format!("{dir}/{name}"),
        }
    };
    let mut files: Vec<Value> = listed
        .common_prefixes
        .iter()
        .map(|p| json!({ "path": named(p), "is_dir": true }))
        .chain(listed.objects.iter().map(|o| match o.size {
            0 => json!({ "path": named(&o.location), "is_dir": false }),
            n => json!({ "path": named(&o.location), "is_dir": false, "file_size": n }),
        }))
        .collect();
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(files)
}

fn list_reply(root_uri: &str, files: Vec<Value>) -> Reply<Value> {
    match files.is_empty() {
        true => Reply(json!({ "root_uri": root_uri })),
        false => Reply(json!({ "root_uri": root_uri, "files": files })),
    }
}

#[derive(Deserialize)]
pub struct RunArtifact {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
}

impl RunArtifact {
    fn run(&self) -> ApiResult<String> {
        let id = self.run_id.clone().filter(|r| !r.is_empty()).or_else(|| self.run_uuid.clone());
        crate::tracking::required_str(id, "run_id")
    }
}

async fn list_run(s: AppState, _: Caller, Msg(q): Msg<RunArtifact>) -> ApiResult<Reply<Value>> {
    if let Some(p) = &q.path {
        checked(p)?;
    }
    let run = s.store.runs().info(&q.run()?).await?;
    let at = locate(&s, &run.artifact_uri)?;
    Ok(list_reply(&run.artifact_uri, listing(&at, q.path.as_deref()).await?))
}

async fn get_run(s: AppState, _: Caller, Msg(q): Msg<RunArtifact>) -> ApiResult<Response> {
    let path = crate::tracking::required_str(q.path.clone(), "path")?;
    checked(&path)?;
    let run = s.store.runs().info(&q.run()?).await?;
    send(&locate(&s, &run.artifact_uri)?, &path).await
}

/// The UI's upload of one small file into a run (`upload_artifact_handler`): the run and the
/// path in the query, the file as the body.
pub struct Upload {
    run_uuid: Option<String>,
    path: Option<String>,
    data: Bytes,
}

/// MLflow's limit for `upload-artifact`.
const UPLOAD_MAX_BYTES: usize = 10 * 1024 * 1024;

impl Input for Upload {
    async fn parse(req: Request, _: &AppState) -> ApiResult<Self> {
        #[derive(Deserialize)]
        struct Query {
            run_uuid: Option<String>,
            path: Option<String>,
        }
        let q: Query = serde_html_form::from_str(req.uri().query().unwrap_or(""))
            .map_err(|e| ApiError::invalid(format!("Invalid query parameters: {e}")))?;
        let data = axum::body::to_bytes(req.into_body(), UPLOAD_MAX_BYTES)
            .await
            .map_err(|_| ApiError::invalid("Artifact size is too large. Max size is 10MB."))?;
        Ok(Upload { run_uuid: q.run_uuid, path: q.path, data })
    }
}

impl Upload {
    fn run(&self) -> ApiResult<String> {
        self.run_uuid
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::invalid("Request must specify run_uuid."))
    }
}

async fn upload_run(s: AppState, _: Caller, u: Upload) -> ApiResult<Reply<Value>> {
    let run_id = u.run()?;
    let path =
        u.path.clone().filter(|p| !p.is_empty()).ok_or_else(|| ApiError::invalid("Request must specify path."))?;
    let relative = checked(&path)?;
    if u.data.is_empty() {
        return Err(ApiError::invalid("Request must specify data."));
    }
    let run = s.store.runs().info(&run_id).await?;
    let at = locate(&s, &run.artifact_uri)?;
    let target = at.path(&relative)?;
    at.store.put(&target, u.data.into()).await.map_err(|e| crate::artifacts::write_error(&relative, &e))?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
pub struct VersionArtifact {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    version: Option<String>,
    path: Option<String>,
}

async fn get_version(s: AppState, _: Caller, Msg(q): Msg<VersionArtifact>) -> ApiResult<Response> {
    if let Some(p) = &q.path {
        checked(p)?;
    }
    let name = crate::tracking::required_str(q.name, "name")?;
    let version = tracking::parse_version(&crate::tracking::required_str(q.version, "version")?)?;
    let path = crate::tracking::required_str(q.path, "path")?;
    checked(&path)?;
    let uri = s.store.model_versions().download_uri(&name, version).await?;
    send(&locate(&s, &uri)?, &path).await
}

#[derive(Deserialize)]
pub struct DirectoryQuery {
    artifact_directory_path: Option<String>,
}

async fn list_logged_model(s: AppState, _: Caller, r: Pathed<String, DirectoryQuery>) -> ApiResult<Reply<Value>> {
    let model = s.store.logged_models().get(&r.path).await?;
    let at = locate(&s, &model.artifact_location)?;
    Ok(list_reply(&model.artifact_location, listing(&at, r.msg.artifact_directory_path.as_deref()).await?))
}

#[derive(Deserialize)]
pub struct FileQuery {
    artifact_file_path: Option<String>,
}

async fn get_logged_model(s: AppState, _: Caller, r: Pathed<String, FileQuery>) -> ApiResult<Response> {
    let Some(file) = r.msg.artifact_file_path.filter(|f| !f.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "Request must include the \"artifact_file_path\" query parameter.",
        ));
    };
    let model = s.store.logged_models().get(&r.path).await?;
    send(&locate(&s, &model.artifact_location)?, &file).await
}
