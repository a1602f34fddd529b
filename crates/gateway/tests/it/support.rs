//! Test support: a tiny packaged model, serving upstreams and the gateway on port 0.

use serving::proto::health::health_client::HealthClient;
use serving::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;

// The small regressor, its package and its scoring payloads come from the shared test kit.
pub use testkit::model::{invocation, model_dir, rows};

/// A serving upstream (HTTP and gRPC on one port) reporting `version`.
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), serving::RunError>>>,
}

impl Upstream {
    pub async fn start(version: &str) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Upstream::start_on(listener, version).await
    }

    pub async fn start_on(listener: tokio::net::TcpListener, version: &str) -> Upstream {
        let mut cfg = serving::Config::new(model_dir().to_string_lossy(), "http://127.0.0.1:9");
        cfg.version_label = Some(version.into());
        cfg.shutdown_grace = Duration::from_secs(2);
        // Short drift windows, so a canary's drift look holds little from before it began.
        cfg.drift =
            Some(sketch::RecorderConfig { window: Duration::from_millis(200), retention: Duration::from_secs(600) });
        let app = serving::Serving::new(cfg).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serving::run(app.clone(), listener, None, async move {
            let _ = rx.await;
        }));
        for _ in 0..500 {
            if app.is_ready() {
                return Upstream { addr, stop: Some(tx), handle: Some(handle) };
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the model did not load");
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
    }
}

/// A client that sends `tester`'s admin token unless a request sets its own.
pub fn authenticated_client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {TESTER_TOKEN}").parse().unwrap());
    reqwest::Client::builder().no_proxy().default_headers(h).build().unwrap()
}

/// The gateway on port 0 (traffic and admin).
pub struct TestGateway {
    pub base: String,
    pub admin: String,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), gateway::RunError>>>,
    pub http: reqwest::Client,
}

/// The admin tokens of test gateways: the test client sends `tester`'s by default.
pub const TESTER_TOKEN: &str = "tester-admin-token-0123456789";
pub const ALICE_TOKEN: &str = "alice-admin-token-0123456789";
pub const BOB_TOKEN: &str = "bob-admin-token-0123456789";

pub fn settings(blue: SocketAddr, green: SocketAddr, state_file: Option<PathBuf>) -> gateway::Settings {
    let mut s = gateway::Settings::new(blue.to_string(), green.to_string());
    s.state_file = state_file;
    s.who = "nobody (no tokens)".into();
    let tokens = format!("tester:{TESTER_TOKEN}\nalice:{ALICE_TOKEN}\nbob:{BOB_TOKEN}\n");
    s.admin_tokens = Some(admin_api::Tokens::parse(&tokens).unwrap());
    s.health_timeout = Duration::from_millis(1500);
    s.version_poll = Duration::from_millis(200);
    s.failure_threshold = 3;
    s
}

impl TestGateway {
    pub async fn start(settings: gateway::Settings) -> TestGateway {
        let gw = gateway::Gateway::new(settings).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(gateway::run(gw.clone(), listener, admin, async move {
            let _ = rx.await;
        }));
        TestGateway {
            base: format!("http://{addr}"),
            admin: format!("http://{admin_addr}"),
            stop: Some(tx),
            handle: Some(handle),
            http: authenticated_client(),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
    }

    /// `POST admin path` → (status, JSON).
    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self.http.post(format!("{}{path}", self.admin)).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn admin_raw(&self, path: &str, body: &'static str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.admin))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let r = self.http.get(format!("{}{path}", self.admin)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.admin)).send().await.unwrap().text().await.unwrap()
    }

    /// `/health` through the gateway: (model_version, colour header).
    pub async fn health(&self) -> (String, String) {
        let r = self.http.get(format!("{}/health", self.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let colour = r.headers()[gateway::proxy::UPSTREAM_HEADER].to_str().unwrap().to_string();
        let v: serde_json::Value = r.json().await.unwrap();
        (v["model_version"].as_str().unwrap().to_string(), colour)
    }

    /// `/invocations` of [`invocation`]`(3)` through the gateway: (status, colour).
    pub async fn invoke(&self) -> (u16, String) {
        self.invoke_with(&invocation(3)).await
    }

    /// `/invocations` of `body` through the gateway: (status, colour).
    pub async fn invoke_with(&self, body: &serde_json::Value) -> (u16, String) {
        let r = self.http.post(format!("{}/invocations", self.base)).json(body).send().await.unwrap();
        let colour = r
            .headers()
            .get(gateway::proxy::UPSTREAM_HEADER)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let status = r.status().as_u16();
        let _ = r.bytes().await.unwrap();
        (status, colour)
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.base.clone()).unwrap().connect().await.unwrap()
    }

    pub async fn inference(&self) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
    }

    pub async fn health_client(&self) -> HealthClient<tonic::transport::Channel> {
        HealthClient::new(self.channel().await)
    }
}

/// A V2 ModelInfer request for `rows(n)`.
pub fn infer_request(n: usize) -> serving::proto::inference::ModelInferRequest {
    use serving::proto::inference::model_infer_request::InferInputTensor;
    use serving::proto::inference::*;
    let f = rows(n);
    let col = |c: &str| match &f.column(c).unwrap().data {
        learn::ColumnData::Numeric(v) => v.clone(),
        _ => unreachable!(),
    };
    let t = |name: &str| InferInputTensor {
        name: name.into(),
        datatype: "FP64".into(),
        shape: vec![n as i64],
        contents: Some(InferTensorContents { fp64_contents: col(name), ..Default::default() }),
        ..Default::default()
    };
    ModelInferRequest { inputs: vec![t("x1"), t("x2")], ..Default::default() }
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}
