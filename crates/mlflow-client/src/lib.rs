//! A small typed client for the MLflow REST API: the calls `factory train`, `predict`,
//! `serve` and `loop` make to a tracking server (ours or the stock one), and model URI
//! resolution (`models:/name@alias`, `models:/name/N`, `runs:/id/path`, `mlflow-artifacts:/`).
//!
//! Replies are read as `serde_json::Value` and picked apart where used: the client needs a
//! handful of fields, not the whole proto surface.

use futures::{StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong talking to the tracking server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an MLflow error body.
    #[error("{method} {path}: {code}: {message}")]
    Api { method: String, path: String, status: u16, code: String, message: String },
    /// The server could not be reached or the body could not be read.
    #[error("{method} {path}: {source}")]
    Transport { method: String, path: String, source: reqwest::Error },
    /// A model URI or reply that makes no sense.
    #[error("{0}")]
    Invalid(String),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ClientError {
    /// The MLflow error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Files of one folder uploaded at once by [`Client::upload_dir`].
const UPLOADS_IN_FLIGHT: usize = 8;

/// Characters escaped in artifact paths (path segments keep their `/`).
const PATH: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'?').add(b'<').add(b'>').add(b'`').add(b'{').add(b'}');

/// A client for one tracking server.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: Option<(String, String)>,
}

/// A model version as the registry reports it (the fields we use).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub current_stage: String,
    pub aliases: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl ModelVersion {
    fn from_json(v: &Value) -> Result<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(ModelVersion {
            name: s("name").ok_or_else(|| ClientError::Invalid(format!("model version without name: {v}")))?,
            version: s("version").ok_or_else(|| ClientError::Invalid(format!("model version without version: {v}")))?,
            source: s("source").unwrap_or_default(),
            run_id: s("run_id"),
            model_id: s("model_id"),
            current_stage: s("current_stage").unwrap_or_else(|| "None".into()),
            aliases: v
                .get("aliases")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            tags: key_values(&v["tags"]),
        })
    }
}

/// `[{"key": k, "value": v}, ...]` as pairs.
fn key_values(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| Some((t["key"].as_str()?.to_string(), t["value"].as_str().unwrap_or("").to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed model URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelUri {
    /// `models:/name@alias`
    Alias { name: String, alias: String },
    /// `models:/name/3`
    Version { name: String, version: String },
    /// `models:/m-<id>` (an MLflow 3 logged model)
    LoggedModel(String),
    /// `runs:/<run id>/<path>`
    Run { run_id: String, path: String },
    /// `mlflow-artifacts:/<path>`
    Artifacts(String),
    /// A folder on this machine.
    Local(PathBuf),
}

impl ModelUri {
    pub fn parse(uri: &str) -> Result<ModelUri> {
        let bad = |why: &str| ClientError::Invalid(format!("invalid model URI '{uri}': {why}"));
        if let Some(rest) = uri.strip_prefix("models:/") {
            let rest = rest.trim_start_matches('/');
            if rest.starts_with("m-") && !rest.contains('/') && !rest.contains('@') {
                return Ok(ModelUri::LoggedModel(rest.to_string()));
            }
            if let Some((name, alias)) = rest.split_once('@') {
                if name.is_empty() || alias.is_empty() {
                    return Err(bad("expected models:/<name>@<alias>"));
                }
                return Ok(ModelUri::Alias { name: name.into(), alias: alias.into() });
            }
            let (name, version) = rest
                .rsplit_once('/')
                .ok_or_else(|| bad("expected models:/<name>/<version> or models:/<name>@<alias>"))?;
            if name.is_empty() || version.is_empty() {
                return Err(bad("expected models:/<name>/<version>"));
            }
            return Ok(ModelUri::Version { name: name.into(), version: version.into() });
        }
        if let Some(rest) = uri.strip_prefix("runs:/") {
            let rest = rest.trim_start_matches('/');
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            if run_id.is_empty() {
                return Err(bad("expected runs:/<run id>/<path>"));
            }
            return Ok(ModelUri::Run { run_id: run_id.into(), path: path.trim_matches('/').into() });
        }
        if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            return Ok(ModelUri::Artifacts(rest.trim_start_matches('/').to_string()));
        }
        if uri.contains("://") && !uri.starts_with("file://") {
            return Err(bad("unsupported scheme (use models:/, runs:/, mlflow-artifacts:/ or a local folder)"));
        }
        Ok(ModelUri::Local(PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))))
    }
}

impl Client {
    /// A client for `tracking_uri` (e.g. `http://127.0.0.1:5000`). Basic auth comes from
    /// `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD` when the caller passes them.
    pub fn new(tracking_uri: &str, auth: Option<(String, String)>) -> Result<Client> {
        if !tracking_uri.starts_with("http://") && !tracking_uri.starts_with("https://") {
            return Err(ClientError::Invalid(format!(
                "tracking URI '{tracking_uri}' must be an http(s):// address of a tracking server"
            )));
        }
        // Root certificates only for https: loading the system's (a file each) costs a
        // command such as `factory train` tens of milliseconds it does not need over http.
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(tracking_uri.starts_with("https://"))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Client { base: tracking_uri.trim_end_matches('/').to_string(), http, auth })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some((user, password)) = &self.auth {
            req = req.basic_auth(user, Some(password));
        }
        req
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let transport = |source| ClientError::Transport { method: method.to_string(), path: path.to_string(), source };
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(transport)?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(ClientError::Api {
            method: method.to_string(),
            path: path.to_string(),
            status,
            code: body["error_code"].as_str().unwrap_or("HTTP_ERROR").to_string(),
            message: body["message"].as_str().map(str::to_string).unwrap_or(text),
        })
    }

    /// Calls an MLflow API route (`/api/2.0/mlflow/<route>`) with a JSON body (or query for GET).
    pub async fn call(&self, method: reqwest::Method, route: &str, body: Value) -> Result<Value> {
        let path = format!("/api/2.0/mlflow/{route}");
        let req = self.request(method.clone(), &path);
        let req = if method == reqwest::Method::GET {
            let pairs: Vec<(String, String)> = body
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            req.query(&pairs)
        } else {
            req.json(&body)
        };
        let resp = self.send(method, &path, req).await?;
        let text = resp.text().await.map_err(|source| ClientError::Transport {
            method: "read".into(),
            path: path.clone(),
            source,
        })?;
        if text.trim().is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Invalid(format!("{path}: reply is not JSON: {e}")))
    }

    pub async fn post(&self, route: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, route, body).await
    }

    pub async fn get(&self, route: &str, query: Value) -> Result<Value> {
        self.call(reqwest::Method::GET, route, query).await
    }

    /// The id of the experiment called `name`, created when missing.
    pub async fn experiment_id(&self, name: &str) -> Result<String> {
        match self.get("experiments/get-by-name", json!({ "experiment_name": name })).await {
            Ok(v) => str_field(&v["experiment"], "experiment_id"),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {
                match self.post("experiments/create", json!({ "name": name })).await {
                    Ok(v) => str_field(&v, "experiment_id"),
                    Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {
                        let v = self.get("experiments/get-by-name", json!({ "experiment_name": name })).await?;
                        str_field(&v["experiment"], "experiment_id")
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a run; returns (run id, artifact URI).
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(&str, &str)],
    ) -> Result<(String, String)> {
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let v = self
            .post(
                "runs/create",
                json!({ "experiment_id": experiment_id, "run_name": run_name, "start_time": now_ms(), "tags": tags }),
            )
            .await?;
        Ok((str_field(&v["run"]["info"], "run_id")?, str_field(&v["run"]["info"], "artifact_uri")?))
    }

    pub async fn end_run(&self, run_id: &str, status: &str) -> Result<()> {
        self.post("runs/update", json!({ "run_id": run_id, "status": status, "end_time": now_ms() })).await?;
        Ok(())
    }

    /// Logs params, tags and metrics `(key, value, step)`, split into MLflow's batch limits.
    pub async fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        tags: &[(String, String)],
        metrics: &[(String, f64, i64)],
    ) -> Result<()> {
        let ts = now_ms();
        let kv = |items: &[(String, String)]| -> Vec<Value> {
            items.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()
        };
        for chunk in params.chunks(100) {
            self.post("runs/log-batch", json!({ "run_id": run_id, "params": kv(chunk) })).await?;
        }
        for chunk in tags.chunks(100) {
            self.post("runs/log-batch", json!({ "run_id": run_id, "tags": kv(chunk) })).await?;
        }
        for chunk in metrics.chunks(1000) {
            let ms: Vec<Value> = chunk
                .iter()
                .map(|(k, v, step)| json!({"key": k, "value": float_json(*v), "timestamp": ts, "step": step}))
                .collect();
            self.post("runs/log-batch", json!({ "run_id": run_id, "metrics": ms })).await?;
        }
        Ok(())
    }

    pub async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        self.post("runs/set-tag", json!({ "run_id": run_id, "key": key, "value": value })).await?;
        Ok(())
    }

    /// Records a dataset used by a run (`mlflow.log_input`).
    pub async fn log_dataset(
        &self,
        run_id: &str,
        name: &str,
        digest: &str,
        source: &str,
        schema: &str,
        context: &str,
    ) -> Result<()> {
        let dataset = json!({
            "name": name, "digest": digest, "source_type": "local",
            "source": json!({ "uri": source }).to_string(), "schema": schema,
        });
        self.post(
            "runs/log-inputs",
            json!({ "run_id": run_id, "datasets": [{ "tags": [{"key": "mlflow.data.context", "value": context}], "dataset": dataset }] }),
        )
        .await?;
        Ok(())
    }

    /// Uploads bytes to an artifact URI directory (`mlflow-artifacts:/...`) under `rel_path`.
    pub async fn upload_artifact(&self, artifact_uri: &str, rel_path: &str, bytes: Vec<u8>) -> Result<()> {
        let root = proxied_path(artifact_uri)?;
        let path = format!("/api/2.0/mlflow-artifacts/artifacts/{}", encode_path(&join(&root, rel_path)));
        let req = self.request(reqwest::Method::PUT, &path).body(bytes);
        self.send(reqwest::Method::PUT, &path, req).await?;
        Ok(())
    }

    /// Uploads every file of a local folder under `artifact_uri`.
    pub async fn upload_dir(&self, artifact_uri: &str, dir: &Path) -> Result<()> {
        let mut files = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((folder, rel)) = stack.pop() {
            let io = |source| ClientError::Io { path: folder.clone(), source };
            let mut entries: Vec<_> =
                std::fs::read_dir(&folder).map_err(io)?.collect::<std::io::Result<_>>().map_err(io)?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let name = entry.file_name().to_string_lossy().into_owned();
                let child_rel = join(&rel, &name);
                if entry.path().is_dir() {
                    stack.push((entry.path(), child_rel));
                } else {
                    files.push((entry.path(), child_rel));
                }
            }
        }
        // A few uploads in flight at once: each is a round trip the server mostly waits on.
        futures::stream::iter(files)
            .map(|(path, rel)| async move {
                let bytes = std::fs::read(&path).map_err(|source| ClientError::Io { path, source })?;
                self.upload_artifact(artifact_uri, &rel, bytes).await
            })
            .buffer_unordered(UPLOADS_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// Downloads everything under an artifact URI into `dest` (created); returns the file count.
    pub async fn download_dir(&self, artifact_uri: &str, dest: &Path) -> Result<usize> {
        let root = proxied_path(artifact_uri)?;
        let mut count = 0;
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let list_path = "/api/2.0/mlflow-artifacts/artifacts";
            let req = self.request(reqwest::Method::GET, list_path).query(&[("path", join(&root, &rel))]);
            let listing: Value =
                self.send(reqwest::Method::GET, list_path, req).await?.json().await.map_err(|source| {
                    ClientError::Transport { method: "GET".into(), path: list_path.into(), source }
                })?;
            for f in listing["files"].as_array().into_iter().flatten() {
                let name = f["path"].as_str().unwrap_or_default();
                if name.is_empty() || name.contains('/') || name == ".." || name == "." {
                    return Err(ClientError::Invalid(format!("unsafe artifact name '{name}' in listing")));
                }
                let child = join(&rel, name);
                if f["is_dir"].as_bool().unwrap_or(false) {
                    stack.push(child);
                    continue;
                }
                let path = format!("/api/2.0/mlflow-artifacts/artifacts/{}", encode_path(&join(&root, &child)));
                let req = self.request(reqwest::Method::GET, &path);
                let bytes =
                    self.send(reqwest::Method::GET, &path, req).await?.bytes().await.map_err(|source| {
                        ClientError::Transport { method: "GET".into(), path: path.clone(), source }
                    })?;
                let target = dest.join(&child);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|source| ClientError::Io { path: parent.to_path_buf(), source })?;
                }
                std::fs::write(&target, &bytes).map_err(|source| ClientError::Io { path: target.clone(), source })?;
                count += 1;
            }
        }
        if count == 0 {
            return Err(ClientError::Invalid(format!("no artifacts found under {artifact_uri}")));
        }
        Ok(count)
    }

    /// Registers the model if needed and creates a version from a logged model.
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        model_id: Option<&str>,
    ) -> Result<ModelVersion> {
        match self.post("registered-models/create", json!({ "name": name })).await {
            Ok(_) => {}
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {}
            Err(e) => return Err(e),
        }
        let mut body = json!({ "name": name, "source": source, "run_id": run_id });
        if let Some(id) = model_id {
            body["model_id"] = id.into();
        }
        let v = self.post("model-versions/create", body).await?;
        ModelVersion::from_json(&v["model_version"])
    }

    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.post("registered-models/alias", json!({ "name": name, "alias": alias, "version": version })).await?;
        Ok(())
    }

    pub async fn transition_stage(&self, name: &str, version: &str, stage: &str) -> Result<()> {
        self.post(
            "model-versions/transition-stage",
            json!({ "name": name, "version": version, "stage": stage, "archive_existing_versions": true }),
        )
        .await?;
        Ok(())
    }

    pub async fn model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let v = self.get("model-versions/get", json!({ "name": name, "version": version })).await?;
        ModelVersion::from_json(&v["model_version"])
    }

    /// Model versions matching an MLflow filter (`name = 'x'`), newest first.
    pub async fn search_model_versions(&self, filter: &str, max_results: u32) -> Result<Vec<ModelVersion>> {
        let v = self
            .get(
                "model-versions/search",
                json!({ "filter": filter, "max_results": max_results, "order_by": "version_number DESC" }),
            )
            .await?;
        v["model_versions"]
            .as_array()
            .map(|a| a.iter().map(ModelVersion::from_json).collect())
            .unwrap_or(Ok(Vec::new()))
    }

    /// A run's tags.
    pub async fn run_tags(&self, run_id: &str) -> Result<Vec<(String, String)>> {
        let v = self.get("runs/get", json!({ "run_id": run_id })).await?;
        Ok(key_values(&v["run"]["data"]["tags"]))
    }

    /// A run's latest metrics (NaN and infinities as MLflow's JSON spells them are skipped).
    pub async fn run_metrics(&self, run_id: &str) -> Result<Vec<(String, f64)>> {
        let v = self.get("runs/get", json!({ "run_id": run_id })).await?;
        Ok(v["run"]["data"]["metrics"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| Some((m["key"].as_str()?.to_string(), m["value"].as_f64()?))).collect())
            .unwrap_or_default())
    }

    pub async fn model_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let v = self.get("registered-models/alias", json!({ "name": name, "alias": alias })).await?;
        ModelVersion::from_json(&v["model_version"])
    }

    /// Creates an MLflow 3 logged model (PENDING); returns (model id, artifact URI).
    pub async fn create_logged_model(
        &self,
        experiment_id: &str,
        name: &str,
        run_id: &str,
        model_type: &str,
    ) -> Result<(String, String)> {
        let v = self
            .post(
                "logged-models",
                json!({ "experiment_id": experiment_id, "name": name, "source_run_id": run_id, "model_type": model_type }),
            )
            .await?;
        Ok((str_field(&v["model"]["info"], "model_id")?, str_field(&v["model"]["info"], "artifact_uri")?))
    }

    /// Marks a logged model READY and links it to its run as an output.
    pub async fn finalize_logged_model(&self, model_id: &str, run_id: &str) -> Result<()> {
        self.call(
            reqwest::Method::PATCH,
            &format!("logged-models/{model_id}"),
            json!({ "model_id": model_id, "status": "LOGGED_MODEL_READY" }),
        )
        .await?;
        self.post("runs/outputs", json!({ "run_id": run_id, "models": [{ "model_id": model_id, "step": 0 }] })).await?;
        Ok(())
    }

    /// [`Client::resolve`], with `None` when the registered model, version or alias does not
    /// exist (e.g. no champion yet).
    pub async fn resolve_existing(&self, uri: &ModelUri) -> Result<Option<(String, Option<ModelVersion>)>> {
        match self.resolve(uri).await {
            Ok(found) => Ok(Some(found)),
            Err(e) if matches!(e.code(), Some("INVALID_PARAMETER_VALUE" | "RESOURCE_DOES_NOT_EXIST")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves a model URI to (artifact URI, model version if it came from the registry).
    pub async fn resolve(&self, uri: &ModelUri) -> Result<(String, Option<ModelVersion>)> {
        let version = match uri {
            ModelUri::Alias { name, alias } => Some(self.model_version_by_alias(name, alias).await?),
            ModelUri::Version { name, version } => Some(self.model_version(name, version).await?),
            _ => None,
        };
        let artifact_uri = match (uri, &version) {
            (_, Some(v)) => {
                let d = self
                    .get("model-versions/get-download-uri", json!({ "name": v.name, "version": v.version }))
                    .await?;
                str_field(&d, "artifact_uri")?
            }
            (ModelUri::LoggedModel(id), _) => {
                let m = self.get(&format!("logged-models/{id}"), json!({})).await?;
                str_field(&m["model"]["info"], "artifact_uri")?
            }
            (ModelUri::Run { run_id, path }, _) => self.run_artifact(run_id, path).await?,
            (ModelUri::Artifacts(p), _) => format!("mlflow-artifacts:/{p}"),
            (ModelUri::Local(p), _) => {
                return Err(ClientError::Invalid(format!("{} is a local folder, not a server URI", p.display())))
            }
            (ModelUri::Alias { .. } | ModelUri::Version { .. }, None) => {
                unreachable!("registry URIs resolve to a version")
            }
        };
        Ok((artifact_uri, version))
    }

    /// `runs:/<id>/<name>`: the logged model of that run with that name (MLflow 3), else the
    /// run's own artifact folder.
    async fn run_artifact(&self, run_id: &str, path: &str) -> Result<String> {
        let run = self.get("runs/get", json!({ "run_id": run_id })).await?;
        let info = &run["run"]["info"];
        let first = path.split('/').next().unwrap_or("");
        if !first.is_empty() {
            let filter = format!("name = '{}' AND source_run_id = '{run_id}'", first.replace('\'', "''"));
            let found = self
                .post("logged-models/search", json!({ "experiment_ids": [str_field(info, "experiment_id")?], "filter": filter, "max_results": 1 }))
                .await?;
            if let Some(uri) = found["models"][0]["info"]["artifact_uri"].as_str() {
                let rest = path.split_once('/').map(|(_, r)| r).unwrap_or("");
                return Ok(if rest.is_empty() { uri.to_string() } else { format!("{uri}/{rest}") });
            }
        }
        let base = str_field(info, "artifact_uri")?;
        Ok(if path.is_empty() { base } else { format!("{base}/{path}") })
    }
}

fn str_field(v: &Value, key: &str) -> Result<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ClientError::Invalid(format!("reply has no '{key}': {v}")))
}

/// Non-finite floats go as the proto-JSON strings MLflow expects.
fn float_json(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

/// The proxy path of an `mlflow-artifacts:` URI.
fn proxied_path(artifact_uri: &str) -> Result<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
        ClientError::Invalid(format!(
            "artifact URI '{artifact_uri}' is not served by the tracking server's proxy (expected mlflow-artifacts:/...)"
        ))
    })?;
    // `mlflow-artifacts://host:port/path` names a server; we use our own.
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => rest,
    };
    Ok(rest.trim_matches('/').to_string())
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

fn encode_path(p: &str) -> String {
    utf8_percent_encode(p, PATH).to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(uri: &str, expect: Option<ModelUri>) {
        assert_eq!(ModelUri::parse(uri).ok(), expect, "{uri}");
    }

    #[test]
    fn model_uris() {
        check(
            "models:/california-housing-model@prod",
            Some(ModelUri::Alias { name: "california-housing-model".into(), alias: "prod".into() }),
        );
        check("models:/m/3", Some(ModelUri::Version { name: "m".into(), version: "3".into() }));
        check("models:/m-0123abc", Some(ModelUri::LoggedModel("m-0123abc".into())));
        check("runs:/abc/model", Some(ModelUri::Run { run_id: "abc".into(), path: "model".into() }));
        check("mlflow-artifacts:/1/models/m-1/artifacts", Some(ModelUri::Artifacts("1/models/m-1/artifacts".into())));
        check("/tmp/model", Some(ModelUri::Local("/tmp/model".into())));
        check("file:///tmp/model", Some(ModelUri::Local("/tmp/model".into())));
        check("models:/@prod", None);
        check("models:/name", None);
        check("runs:/", None);
        check("s3://bucket/model", None);
    }

    #[test]
    fn proxy_paths() {
        assert_eq!(proxied_path("mlflow-artifacts:/1/a/artifacts").unwrap(), "1/a/artifacts");
        assert_eq!(proxied_path("mlflow-artifacts://host:5000/1/a").unwrap(), "1/a");
        assert!(proxied_path("s3://b/k").is_err());
        assert_eq!(encode_path("a b/c#d"), "a%20b/c%23d");
    }
}
