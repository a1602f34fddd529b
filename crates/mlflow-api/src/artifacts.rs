//! The artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`): streaming upload,
//! download, listing and delete over any `object_store` backend.
//!
//! Invariant: every path is checked by [`safe_path`] (`artifact_path`) before it reaches the
//! store, so no request can name anything outside the artifact destination (MLflow's
//! CVE-2023-1177, CVE-2023-6909, CVE-2024-1483 and CVE-2024-3848 were all escapes of this kind).

use crate::access::{artifact_tiers, is_run_id, readable, Need};
use crate::artifact_path::safe_path;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{Msg, Reply};
use crate::routes::{Api, Input, DELETE, GET, POST, PUT};
use crate::AppState;
use ::auth::permission::{Action, Requirement, EXPERIMENT, RUN};
use axum::body::Body;
use axum::extract::{FromRequestParts, Path as UrlPath, Request};
use axum::response::Response;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The artifact proxy, judged by path (`_authorize_flask_artifact_proxy`): reads need READ,
/// uploads UPDATE, deletes MANAGE on what the path names (`access::artifact_tiers`).
pub fn routes(api: &mut Api) {
    api.rule(GET, "/artifacts", list, |q| Ok(Need::Artifact(Action::Read, q.path.clone().unwrap_or_default())));
    api.rule(GET, "/artifacts/", list, |q| Ok(Need::Artifact(Action::Read, q.path.clone().unwrap_or_default())));
    api.rule(GET, "/artifacts/{*path}", download, |a| Ok(Need::Artifact(Action::Read, a.path.clone())));
    api.rule(PUT, "/artifacts/{*path}", upload, |a| Ok(Need::Artifact(Action::Update, a.path.clone())));
    api.rule(DELETE, "/artifacts/{*path}", delete, |a| Ok(Need::Artifact(Action::Manage, a.path.clone())));
    // Multipart uploads write, like an upload; none of our stores offers them to clients
    // (`server-info` says so), and the answer is MLflow's for such a store.
    for step in ["create", "complete", "abort"] {
        api.rule(POST, &format!("/mpu/{step}/{{*path}}"), multipart_unsupported, |a| {
            Ok(Need::Artifact(Action::Update, a.path.clone()))
        });
    }
}

/// `_validate_support_multipart_upload` for a store without multipart uploads.
async fn multipart_unsupported(_: AppState, _: Caller, a: Artifact) -> ApiResult<Reply<serde_json::Value>> {
    safe_path(&a.path)?;
    Err(ApiError::new(
        crate::error::ErrorCode::NotImplemented,
        "Multipart upload is not supported for the current artifact repository",
    ))
}

/// An artifact route's request: the path as the router decoded it (once) and, for uploads,
/// the body, streamed (never buffered).
pub struct Artifact {
    pub path: String,
    body: Body,
}

impl Input for Artifact {
    async fn parse(req: Request, s: &AppState) -> ApiResult<Self> {
        let (mut parts, body) = req.into_parts();
        let UrlPath(path) =
            UrlPath::<String>::from_request_parts(&mut parts, s).await.map_err(|e| ApiError::invalid(e.body_text()))?;
        Ok(Artifact { path, body })
    }
}

/// Checks an experiment's `artifact_location` given by a client: no traversal, no query or
/// fragment tricks (CVE-2023-6909 used `#` and `?` to escape the artifact root).
pub fn check_artifact_location(location: &str) -> ApiResult<()> {
    check_location(location, false)
}

/// Checks an experiment's `artifact_location` given by a client ([`check_artifact_location`]),
/// and that it does not lie in an experiment's folder of a store this server manages: the
/// proxy's (`mlflow-artifacts:`, whose first segment is the experiment the proxy's permission
/// rule judges a path by) and, for `artifact_root` (the store's root for default locations),
/// `<root>/<id>`. Only the experiment's own default could be there, and the server gives that
/// when no location is given; any other location there would put this experiment's runs inside
/// another (or a future) experiment's folder, written through this experiment's permissions.
pub fn check_experiment_location(location: &str, artifact_root: &str) -> ApiResult<()> {
    check_artifact_location(location)?;
    let numeric = |seg: Option<&str>| seg.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    let claimed = match (managed_path(location), managed_path(artifact_root)) {
        (Some((true, path)), _) if numeric(path.split('/').next()) => true,
        (Some((proxied, path)), Some((root_proxied, root))) if proxied == root_proxied => {
            let rest = if root.is_empty() { Some(path.as_str()) } else { path.strip_prefix(&format!("{root}/")) };
            numeric(rest.and_then(|r| r.split('/').next()))
        }
        _ => false,
    };
    if claimed {
        return Err(ApiError::invalid(format!(
            "Invalid artifact_location '{location}': it lies in an experiment's folder of the artifact store this \
             server manages. Leave artifact_location out to get this experiment's own folder there."
        )));
    }
    Ok(())
}

/// A location of a store the server manages, as `(proxied, path without the outer slashes)`:
/// `mlflow-artifacts:` (any case, with or without a host) is the proxy's; an absolute local
/// path or `file://` URI is a local folder. Other locations: `None`.
fn managed_path(uri: &str) -> Option<(bool, String)> {
    let trim = |p: &str| p.trim_matches('/').to_string();
    if let Some(rest) = tracking::after_scheme(uri, "mlflow-artifacts") {
        let rest = match rest.strip_prefix("//") {
            Some(hosted) => hosted.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        return Some((true, trim(rest)));
    }
    let local = uri.strip_prefix("file://").or_else(|| uri.starts_with('/').then_some(uri))?;
    Some((false, trim(local)))
}

/// Checks `--default-artifact-root`, set by whoever starts the server: as an experiment's
/// location, except that `http(s)://` is allowed, since MLflow's documented set-up points it at
/// the server's own proxy (`http://host:port/api/2.0/mlflow-artifacts/artifacts`), which the
/// clients then write to. The server itself never fetches from that location.
pub fn check_default_artifact_root(location: &str) -> ApiResult<()> {
    check_location(location, true)
}

fn check_location(location: &str, web_allowed: bool) -> ApiResult<()> {
    let bad = |why: &str| ApiError::invalid(format!("Invalid artifact_location '{location}': {why}"));
    let decoded = percent_decode_str(location).decode_utf8().map_err(|_| bad("not valid UTF-8"))?;
    if decoded.contains('#') || decoded.contains('?') || decoded.contains('\0') {
        return Err(bad("'#', '?' and NUL are not allowed"));
    }
    if let Some((scheme, _)) = decoded.split_once(':') {
        let scheme = scheme.to_ascii_lowercase();
        // A client must never point the server at arbitrary hosts (SSRF) or at other models.
        let web = matches!(scheme.as_str(), "http" | "https");
        if (web && !web_allowed) || matches!(scheme.as_str(), "ftp" | "sftp" | "runs" | "models") {
            return Err(bad(&format!("'artifact_location' cannot use the '{scheme}' scheme")));
        }
    }
    let path = decoded.split_once("://").map(|(_, rest)| rest).unwrap_or(&decoded);
    if path.split(['/', '\\']).any(|seg| seg == "..") {
        return Err(bad("'..' segments are not allowed"));
    }
    Ok(())
}

/// S3 settings, as MLflow reads them from the environment (the binary passes them in).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `MLFLOW_S3_ENDPOINT_URL`, e.g. a MinIO server; path-style requests are used with it.
    pub endpoint_url: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

/// Opens the artifact destination: a local folder (created) or `s3://bucket[/prefix]`.
pub fn open_store(destination: &str, s3: &S3Settings) -> Result<Arc<dyn ObjectStore>, String> {
    if let Some(rest) = destination.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("'{destination}' names no bucket; use s3://bucket/prefix"));
        }
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(s3.region.clone().unwrap_or_else(|| "us-east-1".into()))
            // A few quick retries: the MLflow client retries 5xx itself, for minutes.
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(20),
                ..Default::default()
            });
        if let Some(endpoint) = &s3.endpoint_url {
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        if let Some(token) = &s3.session_token {
            builder = builder.with_token(token);
        }
        let store = builder.build().map_err(|e| format!("configuring S3 for '{destination}': {e}"))?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return Ok(Arc::new(store));
        }
        safe_path(prefix).map_err(|e| format!("'{destination}': {}", e.message))?;
        return Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix)));
    }
    if destination.contains("://") {
        return Err(format!(
            "unsupported artifact destination '{destination}': use a local folder or s3://bucket/prefix"
        ));
    }
    let dir = destination.strip_prefix("file://").unwrap_or(destination);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating artifacts destination {dir}: {e}"))?;
    object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| format!("opening artifacts destination {dir}: {e}"))
}

/// Checks at start-up that the artifact store answers (credentials, bucket, endpoint), so a
/// misconfiguration is reported once, clearly, instead of on every client upload.
pub async fn probe_store(store: &dyn ObjectStore, destination: &str) -> Result<(), String> {
    store.list_with_delimiter(None).await.map(|_| ()).map_err(|e| {
        format!(
            "the artifact store {destination} cannot be used: {e}. Check the bucket, MLFLOW_S3_ENDPOINT_URL and the \
             credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        )
    })
}

fn store_error(path: &Path, e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { .. } => ApiError::not_found(format!("Artifact '{path}' does not exist")),
        // Not a 5xx: the client would retry a refused credential for minutes.
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            tracing::error!(error = %e, %path, "artifact store refused access");
            ApiError::new(
                crate::error::ErrorCode::PermissionDenied,
                format!("the artifact store refused access to '{path}' (check the server's storage credentials): {e}"),
            )
        }
        other => {
            tracing::error!(error = %other, %path, "artifact store failure");
            ApiError::new(crate::error::ErrorCode::InternalError, format!("artifact store error: {other}"))
        }
    }
}

/// A failed write of artifact `path`: a 400 when the path cannot be a file in the store (a name
/// too long for the file system, a directory already there, or a file where the path needs a
/// directory), else a 500. Neither says more than the artifact path: the store's own message
/// names the server's folders, so it goes to the log only.
pub(crate) fn write_error(path: &dyn std::fmt::Display, e: &(dyn std::error::Error + 'static)) -> ApiError {
    use std::io::ErrorKind;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            let why = match io.kind() {
                ErrorKind::InvalidFilename => Some("a name in the path is too long"),
                ErrorKind::IsADirectory | ErrorKind::DirectoryNotEmpty => Some("a directory of that name exists"),
                ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
                    Some("a file is where the path needs a directory")
                }
                _ => None,
            };
            if let Some(why) = why {
                return ApiError::invalid(format!("Could not store artifact '{path}': {why}."));
            }
        }
        cause = c.source();
    }
    tracing::error!(error = %e, %path, "artifact store write failed");
    ApiError::new(crate::error::ErrorCode::InternalError, format!("Could not store artifact '{path}'."))
}

async fn upload(s: AppState, _: Caller, a: Artifact) -> ApiResult<Reply<serde_json::Value>> {
    let path = safe_path(&a.path)?;
    if path.as_ref().is_empty() {
        return Err(ApiError::invalid("An artifact path is required for upload"));
    }
    let mut writer = BufWriter::new(Arc::clone(&s.artifacts), path.clone());
    let mut body = a.body.into_data_stream();
    while let Some(chunk) = body.next().await {
        let written = match chunk {
            Ok(bytes) => writer.write_all(&bytes).await.map_err(|e| write_error(&path, &e)),
            Err(e) => Err(ApiError::invalid(format!("Could not store artifact '{path}': upload interrupted: {e}"))),
        };
        if let Err(e) = written {
            // Nothing half-written stays behind.
            let _ = writer.abort().await;
            return Err(e);
        }
    }
    writer.shutdown().await.map_err(|e| write_error(&path, &e))?;
    Ok(Reply(json!({})))
}

async fn download(s: AppState, _: Caller, a: Artifact) -> ApiResult<Response> {
    let path = safe_path(&a.path)?;
    let got = s.artifacts.get(&path).await.map_err(|e| store_error(&path, e))?;
    let size = got.meta.size;
    let name = path.filename().unwrap_or_default().to_string();
    Ok(crate::download::attachment(&name, size, Body::from_stream(got.into_stream())))
}

async fn delete(s: AppState, _: Caller, a: Artifact) -> ApiResult<Reply<serde_json::Value>> {
    let path = safe_path(&a.path)?;
    let mut victims = vec![];
    let mut listing = s.artifacts.list(Some(&path));
    while let Some(meta) = listing.next().await {
        victims.push(meta.map_err(|e| store_error(&path, e))?.location);
    }
    if victims.is_empty() {
        victims.push(path.clone());
    }
    for v in victims {
        s.artifacts.delete(&v).await.map_err(|e| store_error(&v, e))?;
    }
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct ListQuery {
    path: Option<String>,
}

#[derive(Serialize)]
struct FileInfo {
    path: String,
    is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_size: Option<u64>,
}

/// Lists one directory level; paths are relative to the listed directory, as MLflow's are.
/// A file or a missing path lists as `{}`; a zero size is omitted, as proto3 JSON does.
/// Listing an experiment's root withholds its run directories from a caller whose run tier
/// is denied (`filter_list_artifacts_proxy`).
async fn list(s: AppState, who: Caller, Msg(q): Msg<ListQuery>) -> ApiResult<Reply<serde_json::Value>> {
    let path = safe_path(q.path.as_deref().unwrap_or(""))?;
    let hide_runs = match (who.grants(), path.as_ref().contains('/')) {
        (Some(g), false) => artifact_tiers(path.as_ref(), false)
            .is_some_and(|(exp, _)| !g.satisfied(&Requirement::tier(RUN, Action::Read, EXPERIMENT, exp))),
        _ => false,
    };
    let prefix = (!path.as_ref().is_empty()).then_some(&path);
    if prefix.is_some() && s.artifacts.head(&path).await.is_ok() {
        return Ok(Reply(json!({})));
    }
    let listing = match s.artifacts.list_with_delimiter(prefix).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Reply(json!({}))),
        Err(e) => return Err(store_error(&path, e)),
    };
    let name = |p: &Path| p.filename().unwrap_or_default().to_string();
    let mut files: Vec<FileInfo> = listing
        .common_prefixes
        .iter()
        .map(|p| FileInfo { path: name(p), is_dir: true, file_size: None })
        .chain(listing.objects.iter().map(|o| FileInfo {
            path: name(&o.location),
            is_dir: false,
            file_size: (o.size > 0).then_some(o.size),
        }))
        .collect();
    // At the root, the folders of experiments the caller may not read are not shown either
    // (their ids would tell which experiments exist). A folder is an experiment's when the
    // proxy's rule would judge it as one.
    let unreadable_experiment = |f: &FileInfo| {
        path.as_ref().is_empty()
            && f.is_dir
            && who
                .grants()
                .is_some_and(|g| artifact_tiers(&f.path, false).is_some_and(|(exp, _)| !readable(g, EXPERIMENT, exp)))
    };
    files.retain(|f| !((hide_runs && is_run_id(&f.path)) || unreadable_experiment(f)));
    if files.is_empty() {
        return Ok(Reply(json!({})));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Reply(json!({ "files": files })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert!(check_artifact_location("s3://bucket/prefix").is_ok());
        assert!(check_artifact_location("mlflow-artifacts:/5").is_ok());
        for bad in ["s3://b/../x", "file:///tmp/#/x", "/tmp/a?b", "s3://b/%2e%2e/x"] {
            assert!(check_artifact_location(bad).is_err(), "{bad}");
        }
        let proxy = "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts";
        assert!(check_artifact_location(proxy).is_err());
        assert!(check_default_artifact_root(proxy).is_ok());
        assert!(check_default_artifact_root("http://h/a/../b").is_err());
        assert!(check_default_artifact_root("runs:/x").is_err());
    }

    #[test]
    fn experiment_locations_stay_out_of_experiments_folders() {
        let run = "0123456789abcdef0123456789abcdef";
        for root in ["mlflow-artifacts:", "mlflow-artifacts:/", "/srv/mlartifacts", "s3://b/p"] {
            for bad in [
                format!("mlflow-artifacts:/3/{run}/artifacts"),
                "mlflow-artifacts:/3".into(),
                "MLFLOW-ARTIFACTS:/3/x".into(),
                "mlflow-artifacts://host:5000/12/x".into(),
                "mlflow-artifacts:3".into(),
            ] {
                assert!(check_experiment_location(&bad, root).is_err(), "{bad} under {root}");
            }
            for ok in ["mlflow-artifacts:/team/a", "mlflow-artifacts:/x3/y", "s3://b/3/x", "s3://other/1"] {
                assert!(check_experiment_location(ok, root).is_ok(), "{ok} under {root}");
            }
        }
        for bad in [format!("/srv/mlartifacts/3/{run}/artifacts"), "file:///srv/mlartifacts/7".into()] {
            assert!(check_experiment_location(&bad, "/srv/mlartifacts").is_err(), "{bad}");
        }
        assert!(check_experiment_location("/srv/mlartifacts/team/3", "/srv/mlartifacts").is_ok());
        assert!(check_experiment_location("/srv/other/3", "/srv/mlartifacts").is_ok());
        assert!(check_experiment_location("s3://b/p/4/x", "s3://b/p").is_ok(), "not a store the server serves");
    }
}
