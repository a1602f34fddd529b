//! Test support: tiny models packaged in temp folders, and the server spawned on port 0.

use learn::{Column, Frame, GbmParams, ModelSpec, Task};
use serving::proto::health::health_client::HealthClient;
use serving::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use serving::{Config, Serving};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Rows for training and requests: x1, x2 numeric, color categorical.
pub fn rows(n: usize) -> Frame {
    let x1: Vec<f64> = (0..n).map(|i| (i % 17) as f64 * 0.5).collect();
    let x2: Vec<f64> = (0..n).map(|i| ((i * 7) % 23) as f64 - 11.0).collect();
    let colors = ["red", "green", "blue"];
    let color: Vec<Option<String>> = (0..n).map(|i| Some(colors[i % 3].to_string())).collect();
    Frame::from_columns(vec![Column::numeric("x1", x1), Column::numeric("x2", x2), Column::categorical("color", color)])
        .unwrap()
}

/// The regression target of [`rows`] (`shift` moves it).
fn target(i: usize, shift: f64) -> f64 {
    let x1 = (i % 17) as f64 * 0.5;
    let x2 = ((i * 7) % 23) as f64 - 11.0;
    2.0 * x1 + x2 + if i.is_multiple_of(3) { 3.0 } else { 0.0 } + shift
}

/// Trains a small regressor (`shift` changes its predictions) and packages it in `dir`
/// with model id `m-<tag>`.
pub fn write_package(dir: &Path, shift: f64, tag: &str) {
    let y: Vec<f64> = (0..400).map(|i| target(i, shift)).collect();
    write_fitted(dir, &y, Task::Regression, tag);
}

/// A binary classifier on [`rows`] (class 1 where the regression target is above 4).
pub fn write_classifier(dir: &Path, tag: &str) {
    let y: Vec<f64> = (0..400).map(|i| f64::from(target(i, 0.0) > 4.0)).collect();
    write_fitted(dir, &y, Task::BinaryClassification, tag);
}

fn write_fitted(dir: &Path, y: &[f64], task: Task, tag: &str) {
    let x = rows(400);
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 15, min_samples_leaf: 5, ..GbmParams::default() });
    let (model, _) = learn::fit(&x, y, task, &spec, &mut |_, _| {}).unwrap();
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    let provenance = package::Provenance {
        run_id: Some(format!("run-{tag}")),
        model_id: Some(format!("m-{tag}")),
        created_utc: "2025-01-01 00:00:00.000000".into(),
        profile: Some(package::profile_of(&x)),
    };
    package::save(dir, &model, &x.select_rows(&[0, 1, 2]), &provenance).unwrap();
}

/// The model in `dir`, loaded directly (for expected predictions).
pub fn load_model(dir: &Path) -> learn::Model {
    package::load(dir).unwrap().model.factory().expect("a factory package").clone()
}

/// The admin token every test server's admin listener requires.
pub const ADMIN_TOKEN: &str = "serving-test-admin-token-0123";

pub struct TestServer {
    pub base: String,
    /// The admin listener (`POST /admin/reload`), behind [`ADMIN_TOKEN`].
    pub admin_base: String,
    pub grpc_addr: SocketAddr,
    pub app: Arc<Serving>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), serving::RunError>>>,
    pub http: reqwest::Client,
}

impl TestServer {
    /// Starts the server on port 0 (gRPC on the same port unless `separate_grpc`) and waits
    /// for the model to load.
    pub async fn start(mut cfg: Config, separate_grpc: bool) -> TestServer {
        if cfg.admin_tokens.is_none() {
            cfg.admin_tokens = Some(admin_api::Tokens::parse(ADMIN_TOKEN).unwrap());
        }
        let app = Serving::new(cfg).unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (grpc, grpc_addr) = if separate_grpc {
            let g = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = g.local_addr().unwrap();
            (Some(g), a)
        } else {
            (None, addr)
        };
        let (tx, rx) = oneshot::channel::<()>();
        let listeners = serving::Listeners { http: listener, grpc, admin: Some(admin) };
        let handle = tokio::spawn(serving::run_with(app.clone(), listeners, async move {
            let _ = rx.await;
        }));
        let server = TestServer {
            base: format!("http://{addr}"),
            admin_base: format!("http://{admin_addr}"),
            grpc_addr,
            app,
            stop: Some(tx),
            handle: Some(handle),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        for _ in 0..500 {
            if server.app.is_ready() {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the model did not load: {:?}", server.app.health().refusal);
    }

    /// Starts a server for the package in `dir`.
    pub async fn local(dir: &Path) -> TestServer {
        TestServer::start(Config::new(dir.to_string_lossy(), "http://127.0.0.1:9"), false).await
    }

    /// Graceful shutdown; returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), serving::RunError> {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = self.http.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POSTs to the public port, or for `/admin/*` to the admin listener with the token.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let req = if path.starts_with("/admin/") {
            self.http.post(format!("{}{path}", self.admin_base)).bearer_auth(ADMIN_TOKEN)
        } else {
            self.http.post(format!("{}{path}", self.base))
        };
        let r = req.header("content-type", content_type).body(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (s, t) = self.get(path).await;
        (s, serde_json::from_str(&t).unwrap_or(serde_json::Value::Null))
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc_addr)).unwrap().connect().await.unwrap()
    }

    pub async fn inference(&self) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
    }

    pub async fn health_client(&self) -> HealthClient<tonic::transport::Channel> {
        HealthClient::new(self.channel().await)
    }
}

/// `rows(n)` as an MLflow `dataframe_split` payload.
pub fn dataframe_split(n: usize) -> serde_json::Value {
    serde_json::json!({ "dataframe_split": package::input::to_dataframe_split(&rows(n)) })
}

/// Predictions as JSON numbers → f64 bits.
pub fn bits(v: &serde_json::Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap().to_bits()).collect()
}
