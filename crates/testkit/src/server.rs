//! The MLflow REST server in-process: `mlflow_api::run` on `127.0.0.1:0` over a fresh store
//! (see [`crate::db`]), artifacts in a temp folder or on S3 ([`crate::s3`]), optionally with
//! `--app-name basic-auth` ([`spawn_auth_app`]), and the request helpers the tests share.

use crate::db::TempDb;
use crate::s3::S3Server;
use serde_json::Value;
use std::sync::Arc;

/// Where a server keeps artifacts.
#[derive(Clone, Copy)]
pub enum Artifacts<'a> {
    /// A temp folder ([`App::artifacts_dir`]).
    Local,
    /// `s3://<bucket>/<prefix>` on a running s3s-fs.
    S3 { server: &'a S3Server, bucket: &'a str, prefix: &'a str },
}

/// A running server and what it needs to stay alive; stopped when dropped.
pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    /// The local artifacts folder (empty and unused with S3 artifacts).
    pub artifacts_dir: tempfile::TempDir,
    pub backend: String,
    /// The store's URI.
    pub uri: String,
    destination: Option<(String, mlflow_api::artifacts::S3Settings)>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    /// The databases this server owns (the store's, and the auth app's when there is one).
    _dbs: Vec<TempDb>,
}

/// A server over a fresh `backend` database, artifacts in a temp folder.
pub async fn spawn_app(backend: &str) -> App {
    App::start(backend, Artifacts::Local).await
}

/// The admin of [`spawn_auth_app`] servers.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-for-tests");

/// A server with `--app-name basic-auth`: its auth database on the same kind of database as
/// the tracking store (a separate one), `default_permission` as given, the admin [`ADMIN`];
/// artifacts in a temp folder.
pub async fn spawn_auth_app(backend: &str, default_permission: auth::Permission) -> App {
    let db = TempDb::new(backend).await;
    let auth_db = TempDb::new(backend).await;
    let store = auth::AuthStore::open(&auth_db.uri).await.expect("open the auth store");
    let cfg = auth::AuthConfig { admin_password: Some(ADMIN.1.into()), ..auth::AuthConfig::default() };
    store.bootstrap_admin(&cfg).await.expect("admin");
    let auth = Arc::new(mlflow_api::auth::Auth::new(store, default_permission));
    let uri = db.uri.clone();
    serve(backend, uri, None, Some(auth), vec![db, auth_db], None).await
}

/// A server over a fresh `backend` database serving the web UI build in `ui_dir`.
pub async fn spawn_app_with_ui(backend: &str, ui_dir: std::path::PathBuf) -> App {
    let db = TempDb::new(backend).await;
    let uri = db.uri.clone();
    serve(backend, uri, None, None, vec![db], Some(ui_dir)).await
}

impl App {
    /// A server over a fresh `backend` database.
    pub async fn start(backend: &str, artifacts: Artifacts<'_>) -> App {
        let db = TempDb::new(backend).await;
        let destination = match artifacts {
            Artifacts::Local => None,
            Artifacts::S3 { server, bucket, prefix } => {
                server.create_bucket(bucket);
                Some((format!("s3://{bucket}/{prefix}"), server.settings()))
            }
        };
        let uri = db.uri.clone();
        serve(backend, uri, destination, None, vec![db], None).await
    }

    /// A second server over the same database and artifacts (as a second replica would be),
    /// with its own in-memory state.
    pub async fn twin(&self) -> App {
        serve(&self.backend, self.uri.clone(), self.destination.clone(), None, Vec::new(), None).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs raw bytes to an MLflow API route; returns (status, JSON body or Null).
    pub async fn post_raw(&self, route: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(&format!("/api/2.0/mlflow/{route}")))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, route: &str, body: Value) -> (u16, Value) {
        self.post_raw(route, body.to_string()).await
    }

    pub async fn get(&self, route: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let resp = self.client.get(self.url(&format!("/api/2.0/mlflow/{route}"))).query(query).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates an experiment and a run in it; returns (experiment id, run id).
    pub async fn run(&self) -> (String, String) {
        let name = format!("e{}", uuid::Uuid::new_v4().simple());
        let (s, b) = self.post("experiments/create", serde_json::json!({ "name": name })).await;
        assert_eq!(s, 200, "{b}");
        let exp = b["experiment_id"].as_str().unwrap().to_string();
        let (s, b) = self.post("runs/create", serde_json::json!({ "experiment_id": exp, "start_time": 1 })).await;
        assert_eq!(s, 200, "{b}");
        (exp, b["run"]["info"]["run_id"].as_str().unwrap().to_string())
    }

    /// Sends one HTTP/1.1 request exactly as written (no path normalisation); returns the status.
    pub async fn raw_request(&self, method: &str, target: &str, body: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {target} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    pub async fn healthy(&self) {
        let resp = self.client.get(self.url("/health")).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "server unhealthy on {}", self.backend);
    }
}

/// A server over the store at `uri`, artifacts at `destination` (a temp folder when `None`),
/// with the auth app when `auth` is given, the web UI from `ui_dir`; `dbs` live as long as the
/// server.
async fn serve(
    backend: &str,
    uri: String,
    destination: Option<(String, mlflow_api::artifacts::S3Settings)>,
    auth: Option<Arc<mlflow_api::auth::Auth>>,
    dbs: Vec<TempDb>,
    ui_dir: Option<std::path::PathBuf>,
) -> App {
    let artifacts_dir = tempfile::tempdir().unwrap();
    let store = tracking::Store::open(&uri, "mlflow-artifacts:").await.expect("open store");
    let artifacts: Arc<dyn object_store::ObjectStore> = match &destination {
        None => Arc::new(object_store::local::LocalFileSystem::new_with_prefix(artifacts_dir.path()).unwrap()),
        Some((dest, s3)) => mlflow_api::artifacts::open_store(dest, s3).expect("open the S3 artifact store"),
    };
    let state = mlflow_api::AppState { store: Arc::new(store), artifacts, auth, ui_dir, gateway: None };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlflow_api::run(listener, state, async move {
        let _ = rx.await;
    }));
    App {
        base,
        client: reqwest::Client::new(),
        artifacts_dir,
        backend: backend.into(),
        uri,
        destination,
        _shutdown: tx,
        _dbs: dbs,
    }
}

/// Asserts an MLflow error response: status, code, and a message containing `needle`.
pub fn assert_error(got: &(u16, Value), status: u16, code: &str, needle: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "status for {body}");
    assert_eq!(body["error_code"], code, "code for {body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "message {msg:?} should mention {needle:?}");
}
