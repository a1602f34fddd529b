//! Acceptance test of blue-green deployment with the real processes: two `factory serve`
//! (different `MODEL_VERSION`s, HTTP and gRPC on one port each), `factory gateway`, and
//! `factory deploy`. Under continuous HTTP (`/invocations`) and gRPC (V2 `ModelInfer`,
//! `grpc.health.v1`) load, 50 switches lose no request; a switch to a stopped upstream is
//! refused; rollback restores the previous colour; state and audit survive a restart.

use serde_json::{json, Value};
use serving::proto::health::health_client::HealthClient;
use serving::proto::health::HealthCheckRequest;
use serving::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use serving::proto::inference::model_infer_request::InferInputTensor;
use serving::proto::inference::{InferTensorContents, ModelInferRequest};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::model::{invocation, write_package};

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn factory() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_factory"));
    for v in ["MODEL_URI", "MODEL_PATH", "PORT", "GRPC_PORT", "MODEL_VERSION", "FACTORY_GATEWAY"] {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_for(http: &reqwest::Client, url: &str, what: &str, proc: &mut Proc) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        if let Some(status) = proc.0.try_wait().unwrap() {
            panic!("{what} exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not come up at {url}");
}

async fn serve(http: &reqwest::Client, model: &Path, port: u16, version: &str) -> Proc {
    let child = factory()
        .args(["serve", "--model-path"])
        .arg(model)
        .args(["--port", &port.to_string(), "--grpc-port", &port.to_string(), "--poll-interval-secs", "0"])
        .env("MODEL_VERSION", version)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    wait_for(http, &format!("http://127.0.0.1:{port}/health"), "factory serve", &mut p).await;
    p
}

async fn gateway(http: &reqwest::Client, listen: u16, admin: u16, blue: u16, green: u16, state: &Path) -> Proc {
    let child = factory()
        .args(["gateway", "--listen", &format!("127.0.0.1:{listen}"), "--admin", &format!("127.0.0.1:{admin}")])
        .args(["--blue", &format!("127.0.0.1:{blue}"), "--green", &format!("127.0.0.1:{green}")])
        .arg("--state-file")
        .arg(state)
        .args(["--who", "ci"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    wait_for(http, &format!("http://127.0.0.1:{admin}/status"), "factory gateway", &mut p).await;
    p
}

/// `factory deploy …` (blocking, run off the runtime).
async fn deploy(admin: u16, args: &[&str]) -> Output {
    let mut c = factory();
    c.arg("deploy").args(args).args(["--gateway", &format!("http://127.0.0.1:{admin}")]);
    tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap()
}

fn infer_request() -> ModelInferRequest {
    let t = |name: &str, v: Vec<f64>| InferInputTensor {
        name: name.into(),
        datatype: "FP64".into(),
        shape: vec![v.len() as i64],
        contents: Some(InferTensorContents { fp64_contents: v, ..Default::default() }),
        ..Default::default()
    };
    ModelInferRequest {
        inputs: vec![t("x1", vec![1.0, 2.5, 4.0]), t("x2", vec![-3.0, 0.0, 7.0])],
        ..Default::default()
    }
}

#[derive(Default)]
struct Load {
    stop: AtomicBool,
    http_ok: AtomicU64,
    grpc_ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}

fn spawn_load(load: &Arc<Load>, front: &str) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let body = invocation(3);
    for _ in 0..3 {
        let (load, url, body) = (load.clone(), format!("{front}/invocations"), body.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            while !load.stop.load(Ordering::Relaxed) {
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                        Ok(v) if v["predictions"].as_array().is_some_and(|p| p.len() == 3) => {
                            load.http_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => load.fail(format!("HTTP body: {other:?}")),
                    },
                    Ok(r) => load.fail(format!("HTTP status {}: {:?}", r.status(), r.text().await)),
                    Err(e) => load.fail(format!("HTTP error: {e:?}")),
                }
            }
        }));
    }
    for _ in 0..2 {
        let (load, front) = (load.clone(), front.to_string());
        tasks.push(tokio::spawn(async move {
            let ch = tonic::transport::Endpoint::from_shared(front).unwrap().connect().await.unwrap();
            let mut c = GrpcInferenceServiceClient::new(ch);
            while !load.stop.load(Ordering::Relaxed) {
                match c.model_infer(infer_request()).await {
                    Ok(r) if r.get_ref().outputs.first().is_some_and(|o| o.shape == [3]) => {
                        load.grpc_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => load.fail(format!("gRPC answer: {r:?}")),
                    Err(e) => load.fail(format!("gRPC ModelInfer: {e:?}")),
                }
            }
        }));
    }
    let (load2, front) = (load.clone(), front.to_string());
    tasks.push(tokio::spawn(async move {
        let ch = tonic::transport::Endpoint::from_shared(front).unwrap().connect().await.unwrap();
        let mut h = HealthClient::new(ch);
        while !load2.stop.load(Ordering::Relaxed) {
            match h.check(HealthCheckRequest { service: String::new() }).await {
                Ok(r) if r.get_ref().status == 1 => {
                    load2.grpc_ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => load2.fail(format!("gRPC health: {r:?}")),
                Err(e) => load2.fail(format!("gRPC health: {e:?}")),
            }
        }
    }));
    tasks
}

/// Two `factory serve` of the same model (reporting versions 1 and 2) and `factory gateway` in
/// front of them (state file in a temp folder), under HTTP and gRPC load from the start.
struct Stack {
    tmp: tempfile::TempDir,
    state: std::path::PathBuf,
    http: reqwest::Client,
    ports: (u16, u16, u16, u16),
    /// Kept to stop blue when the stack drops.
    _blue: Proc,
    green: Proc,
    gw: Proc,
    front: String,
    load: Arc<Load>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Stack {
    async fn start() -> Stack {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("model");
        write_package(&model);
        let state = tmp.path().join("gateway-state.json");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let (blue_port, green_port, listen, admin) = (free_port(), free_port(), free_port(), free_port());
        let blue = serve(&http, &model, blue_port, "1").await;
        let green = serve(&http, &model, green_port, "2").await;
        let gw = gateway(&http, listen, admin, blue_port, green_port, &state).await;
        let front = format!("http://127.0.0.1:{listen}");
        let load = Arc::new(Load::default());
        let tasks = spawn_load(&load, &front);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Stack {
            tmp,
            state,
            http,
            ports: (blue_port, green_port, listen, admin),
            _blue: blue,
            green,
            gw,
            front,
            load,
            tasks,
        }
    }

    /// Stops the load; the failed requests and the (HTTP, gRPC) successes.
    async fn stop_load(&mut self) -> (Vec<String>, u64, u64) {
        self.load.stop.store(true, Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            t.await.unwrap();
        }
        let failures = self.load.failures.lock().unwrap().clone();
        (failures, self.load.http_ok.load(Ordering::Relaxed), self.load.grpc_ok.load(Ordering::Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_green_switches_under_http_and_grpc_load_lose_nothing() {
    let mut st = Stack::start().await;
    let (blue_port, green_port, listen, admin) = st.ports;
    let (http, front, state) = (st.http.clone(), st.front.clone(), st.state.clone());
    let admin_url = format!("http://127.0.0.1:{admin}");

    let ch = tonic::transport::Endpoint::from_shared(front.clone()).unwrap().connect().await.unwrap();
    let mut grpc = GrpcInferenceServiceClient::new(ch);
    for i in 0..50 {
        let (to, version) = if i % 2 == 0 { ("green", "2") } else { ("blue", "1") };
        let r = http
            .post(format!("{admin_url}/switch"))
            .json(&json!({ "to": to, "expect_version": version }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "switch {i} to {to}: {v}");
        assert_eq!(v["to_version"], version);
        let h: Value = http.get(format!("{front}/health")).send().await.unwrap().json().await.unwrap();
        assert_eq!(h["model_version"], version, "switch {i}: /health through the gateway");
        let r = grpc.model_infer(infer_request()).await.unwrap().into_inner();
        assert_eq!(r.model_version, version, "switch {i}: gRPC through the gateway");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Rollback with the CLI: back to green (the previous colour), then to blue again.
    for (to, version) in [("green", "2"), ("blue", "1")] {
        let out = deploy(admin, &["rollback"]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "rollback: {stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("-> {to} (version {version})")), "{stdout}");
        let h: Value = http.get(format!("{front}/health")).send().await.unwrap().json().await.unwrap();
        assert_eq!(h["model_version"], version);
    }

    // Green stops: a switch to it is refused (non-zero exit, clear message) and traffic keeps flowing.
    st.green.0.kill().unwrap();
    let _ = st.green.0.wait();
    let out = deploy(admin, &["switch", "--to", "green"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("refusing to switch to green (127.0.0.1:{green_port})")), "{stderr}");
    assert!(stderr.contains("traffic stays on blue"), "{stderr}");
    let ok = || st.load.http_ok.load(Ordering::Relaxed) + st.load.grpc_ok.load(Ordering::Relaxed);
    let before = ok();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ok() > before, "traffic keeps flowing after the refused switch");

    let (failures, http_ok, grpc_ok) = st.stop_load().await;
    assert!(
        failures.is_empty(),
        "{} failed requests (of {}): {:?}",
        failures.len(),
        http_ok + grpc_ok,
        &failures[..failures.len().min(5)]
    );
    assert!(http_ok > 100 && grpc_ok > 100, "too little load: {http_ok} HTTP, {grpc_ok} gRPC");
    eprintln!("load: {http_ok} HTTP and {grpc_ok} gRPC requests, 0 failed, across 52 moves");

    let out = deploy(admin, &["status"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("active: blue") && stdout.contains("previous: green"), "{stdout}");

    // Restart the gateway (SIGTERM, graceful): the state file brings back blue/green.
    let pid = st.gw.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = st.gw.0.wait().unwrap();
    assert!(status.success(), "gateway exit on SIGTERM: {status}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!((saved["active"].as_str(), saved["previous"].as_str()), (Some("blue"), Some("green")));
    st.gw = gateway(&http, listen, admin, blue_port, green_port, &state).await;
    let out = deploy(admin, &["status", "--json"]).await;
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((status["active"].as_str(), status["previous"].as_str()), (Some("blue"), Some("green")));
    let h: Value = http.get(format!("{front}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["model_version"], "1");

    // The audit log lists every operation, in order.
    let audit: Value = http.get(format!("{admin_url}/audit")).send().await.unwrap().json().await.unwrap();
    let audit = audit.as_array().unwrap();
    assert_eq!(audit.len(), 53, "50 switches, 2 rollbacks, 1 refused switch");
    for (i, r) in audit.iter().take(50).enumerate() {
        let to = if i % 2 == 0 { "green" } else { "blue" };
        assert_eq!((r["op"].as_str(), r["to"].as_str(), r["outcome"].as_str()), (Some("switch"), Some(to), Some("ok")));
        assert_eq!(r["health"]["ok"], true);
    }
    assert_eq!((audit[50]["op"].as_str(), audit[51]["op"].as_str()), (Some("rollback"), Some("rollback")));
    assert_eq!((audit[52]["op"].as_str(), audit[52]["outcome"].as_str()), (Some("switch"), Some("refused")));
    assert!(audit.iter().all(|r| r["who"].is_string() && r["time"].is_string()));
    let log = std::fs::read_to_string(st.tmp.path().join("gateway-state.audit.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 53);
    drop(st);
}

/// `factory deploy canary` with the real processes under HTTP and gRPC load: green (a healthy
/// build) goes 25% → 100% with each step judged and becomes active; a second canary back to
/// blue is started without waiting and aborted by `factory deploy abort`. Nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_from_the_cli_promotes_a_healthy_green_and_an_abort_moves_traffic_back() {
    let mut st = Stack::start().await;
    let (http, front, admin) = (st.http.clone(), st.front.clone(), st.ports.3);

    let args = ["canary", "--steps", "25,100", "--interval", "1s", "--min-requests", "5", "--max-p99-ms", "500"];
    let limits = ["--expect-version", "2", "--max-error-rate", "1%", "--max-drift-share", "100%"];
    let out = deploy(admin, &[&args[..], &limits].concat()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    for line in ["canary blue -> green: running, step 0 (25%)", "step 0 (25%): advance: ", "step 1 (100%): advance: "] {
        assert!(stdout.contains(line), "{line:?} not in {stdout}");
    }
    // Green's own drift sketches were judged at each step (a share of at most 100% always passes).
    assert_eq!(stdout.matches(" rows: within every limit").count(), 2, "{stdout}");
    assert_eq!(stdout.matches(", drifted features ").count(), 2, "{stdout}");
    assert!(stdout.contains("promoted: every step passed; green is active"), "{stdout}");
    let h: Value = http.get(format!("{front}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["model_version"], "2");

    let out = deploy(admin, &["canary", "--no-wait", "--interval", "60s"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("canary green -> blue: running, step 0 (5%)"));
    let out = deploy(admin, &["abort"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("aborted") && stdout.contains("all traffic back on green"),
        "{stdout}"
    );
    let status: Value = serde_json::from_slice(&deploy(admin, &["status", "--json"]).await.stdout).unwrap();
    assert_eq!((status["active"].as_str(), status["weights"]["green"].as_u64()), (Some("green"), Some(100)));
    let out = deploy(admin, &["canary", "--steps", "50,20"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("increasing percentages"));

    let (failures, _, _) = st.stop_load().await;
    assert!(failures.is_empty(), "{} failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    let audit: Value = serde_json::from_slice(&deploy(admin, &["audit", "--json"]).await.stdout).unwrap();
    let ops: Vec<&str> = audit.as_array().unwrap().iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        ["canary", "canary-step", "canary-step", "canary-promote", "canary-end", "canary", "canary-abort"],
        "{audit}"
    );
}
