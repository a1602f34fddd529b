//! `spawn_app`: a server on 127.0.0.1:0 over a fresh store, and small request helpers.

use serde_json::Value;
use std::sync::Arc;

/// A running server and what it needs to stay alive.
pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    pub artifacts_dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
    pub backend: String,
    /// The store's URI.
    pub uri: String,
}

/// The backends to test: SQLite always, PostgreSQL when `FACTORY_TEST_POSTGRES` names an
/// admin URL such as `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["sqlite"];
    if std::env::var("FACTORY_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) {
        b.push("postgres");
    }
    b
}

async fn fresh_postgres() -> String {
    let admin = std::env::var("FACTORY_TEST_POSTGRES").expect("FACTORY_TEST_POSTGRES");
    let db = format!("factory_it_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool).await.expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("admin URL ends in /<db>");
    format!("{base}/{db}")
}

pub async fn spawn_app(backend: &str) -> App {
    let dir = tempfile::tempdir().unwrap();
    let uri = fresh_uri(backend, &dir, "t.db").await;
    serve(backend, uri, dir, None).await
}

async fn fresh_uri(backend: &str, dir: &tempfile::TempDir, file: &str) -> String {
    match backend {
        "sqlite" => format!("sqlite:///{}", dir.path().join(file).display()),
        "postgres" => fresh_postgres().await,
        other => panic!("unknown backend {other}"),
    }
}

/// The admin of [`spawn_auth_app`] servers.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-for-tests");

/// A server with `--app-name basic-auth`: its auth database on the same kind of database as
/// the tracking store (a separate one), `default_permission` as given, the admin [`ADMIN`].
pub async fn spawn_auth_app(backend: &str, default_permission: auth::Permission) -> App {
    let dir = tempfile::tempdir().unwrap();
    let uri = fresh_uri(backend, &dir, "t.db").await;
    let auth_uri = fresh_uri(backend, &dir, "auth.db").await;
    let store = auth::AuthStore::open(&auth_uri).await.expect("open the auth store");
    let cfg = auth::AuthConfig { admin_password: Some(ADMIN.1.into()), ..auth::AuthConfig::default() };
    store.bootstrap_admin(&cfg).await.expect("admin");
    let auth = Arc::new(mlflow_api::auth::Auth::new(store, default_permission));
    serve(backend, uri, dir, Some(auth)).await
}

/// A server over the store at `uri`, keeping `dir` alive with it.
async fn serve(backend: &str, uri: String, dir: tempfile::TempDir, auth: Option<Arc<mlflow_api::auth::Auth>>) -> App {
    let artifacts_dir = tempfile::tempdir().unwrap();
    let store = tracking::Store::open(&uri, "mlflow-artifacts:").await.expect("open store");
    let artifacts = object_store::local::LocalFileSystem::new_with_prefix(artifacts_dir.path()).unwrap();
    let state = mlflow_api::AppState { store: Arc::new(store), artifacts: Arc::new(artifacts), auth };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mlflow_api::run(listener, state, async move {
        let _ = rx.await;
    }));
    App { base, client: reqwest::Client::new(), artifacts_dir, _shutdown: tx, _dir: dir, backend: backend.into(), uri }
}

impl App {
    /// A second server over the same database (as a second replica would be), with its own
    /// in-memory state.
    pub async fn twin(&self) -> App {
        serve(&self.backend, self.uri.clone(), tempfile::tempdir().unwrap(), None).await
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

/// Asserts an MLflow error response: status, code, and a message containing `needle`.
pub fn assert_error(got: &(u16, Value), status: u16, code: &str, needle: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "status for {body}");
    assert_eq!(body["error_code"], code, "code for {body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "message {msg:?} should mention {needle:?}");
}
