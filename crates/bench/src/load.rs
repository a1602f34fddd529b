//! The HTTP side: one-off REST calls and the closed-loop load driver.
//!
//! Every load client owns its own `reqwest::Client` limited to one idle connection, so each
//! client is one keep-alive TCP connection (TCP_NODELAY on). A client sends its next request as
//! soon as the previous response body is read (closed loop). Latency is recorded per request in
//! an HDR histogram (microseconds); any status other than 200, and any transport error, counts
//! as an error and is reported.

use crate::server::Usage;
use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client that keeps exactly one connection to the server under test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(None)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("building the HTTP client")
}

/// POSTs JSON to `base + path`, fails unless the status is 200, returns the parsed body.
pub async fn post(c: &reqwest::Client, base: &str, path: &str, body: &Value) -> anyhow::Result<Value> {
    let resp = c
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body)?)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    read_json(resp, path).await
}

/// GETs `base + path` (query included), fails unless the status is 200, returns the parsed body.
pub async fn get(c: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<Value> {
    let resp = c.get(format!("{base}{path}")).send().await.with_context(|| format!("GET {path}"))?;
    read_json(resp, path).await
}

async fn read_json(resp: reqwest::Response, path: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if status != reqwest::StatusCode::OK {
        bail!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(500)]));
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{path}: response is not JSON"))
}

/// One request of a load phase, made by `(client, worker index, request index of that worker)`.
pub type MakeRequest = Arc<dyn Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// Optional check of each 200 response body (e.g. the runs/search result count); an `Err` counts
/// as an error of that request.
pub type CheckBody = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// How long and how much one load phase runs.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub clients: usize,
    /// Stop when this much time has passed…
    pub duration: Duration,
    /// …or when this many requests were sent (over all clients), whichever comes first.
    pub max_requests: u64,
    /// Unrecorded requests per client before the clock starts (opens the connection).
    pub warmup: u64,
}

/// The figures of one load phase.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Stats {
    pub clients: usize,
    pub requests: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub secs: f64,
    pub req_per_sec: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU cores used by the server's process tree during the phase (CPU seconds / wall seconds).
    pub server_cpu_cores: f64,
    /// Context switches of the server's threads per request (thread hand-offs show here).
    pub server_ctx_switches_per_req: f64,
    /// Resident memory of the server's process tree at the end of the phase.
    pub server_rss_after_mib: f64,
    /// CPU cores used by this benchmark process (the clients) during the phase.
    pub client_cpu_cores: f64,
}

/// Per-client outcome.
struct Partial {
    hist: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs a closed-loop load phase. `server_usage` reads the server tree's CPU and context
/// switches so far.
pub async fn run(
    bounds: Bounds,
    make: MakeRequest,
    check: Option<CheckBody>,
    server_usage: &dyn Fn() -> Usage,
) -> anyhow::Result<Stats> {
    let clients: Vec<reqwest::Client> = (0..bounds.clients).map(|_| client()).collect();
    // Warm-up: opens each client's connection, not recorded.
    for (w, c) in clients.iter().enumerate() {
        for i in 0..bounds.warmup {
            let _ = make(c, w, u64::MAX - i).send().await.map(|r| r.bytes());
        }
    }
    let sent = Arc::new(AtomicU64::new(0));
    let server0 = server_usage();
    let cpu_self0 = crate::server::cpu_secs_of("/proc/self/stat");
    let start = Instant::now();
    let deadline = start + bounds.duration;
    let mut tasks = Vec::new();
    for (w, c) in clients.into_iter().enumerate() {
        let (make, check, sent) = (make.clone(), check.clone(), sent.clone());
        let max = bounds.max_requests;
        tasks.push(tokio::spawn(async move {
            let mut p = Partial { hist: new_hist(), errors: 0, first_error: None };
            let mut i = 0u64;
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                let t0 = Instant::now();
                // Latency is request sent -> last byte received; checking the body (e.g. parsing
                // a 250 KB search reply) is the client's own work and is not counted.
                let received = match make(&c, w, i).send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        resp.bytes().await.map(|body| (status, body)).map_err(|e| format!("reading body: {e}"))
                    }
                    Err(e) => Err(format!("transport: {e}")),
                };
                let us = t0.elapsed().as_micros().max(1) as u64;
                let outcome = match received {
                    Ok((status, body)) if status == reqwest::StatusCode::OK => match &check {
                        Some(check) => check(&body),
                        None => Ok(()),
                    },
                    Ok((status, body)) => {
                        Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])))
                    }
                    Err(e) => Err(e),
                };
                p.hist.saturating_record(us);
                if let Err(e) = outcome {
                    p.errors += 1;
                    p.first_error.get_or_insert(e);
                }
                i += 1;
            }
            p
        }));
    }
    let mut hist = new_hist();
    let (mut errors, mut first_error) = (0, None);
    for t in tasks {
        let p = t.await?;
        hist.add(&p.hist).ok();
        errors += p.errors;
        if first_error.is_none() {
            first_error = p.first_error;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let server1 = server_usage();
    let cpu_server = server1.cpu_secs - server0.cpu_secs;
    let ctx = server1.ctx_switches.saturating_sub(server0.ctx_switches) as f64;
    let cpu_self = crate::server::cpu_secs_of("/proc/self/stat") - cpu_self0;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Stats {
        clients: bounds.clients,
        requests: hist.len(),
        errors,
        first_error,
        secs,
        req_per_sec: hist.len() as f64 / secs,
        mean_ms: hist.mean() / 1000.0,
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        max_ms: ms(hist.max()),
        server_cpu_cores: cpu_server / secs,
        server_ctx_switches_per_req: ctx / (hist.len().max(1) as f64),
        server_rss_after_mib: server1.rss_mib,
        client_cpu_cores: cpu_self / secs,
    })
}

fn new_hist() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}
