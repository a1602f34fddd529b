//! `bench-tracking`: `factory server` side by side with the stock `mlflow server`.
//!
//! For each server (factory, then mlflow unless skipped or not installed) it starts the server
//! with a fresh SQLite store on a free 127.0.0.1 port, and measures:
//!
//! * cold start: spawn → first `GET /health` 200 (polled every 5 ms), and resident memory of the
//!   server's whole process tree at that moment and again after the load;
//! * `runs/log-metric` throughput and p50/p99 with 1 and with N (default 8) concurrent
//!   keep-alive clients, then a check that every acknowledged point is in the metric history;
//! * `GET /version` with N clients: the HTTP stack alone, a floor that tells HTTP cost from store cost;
//! * `runs/get` latency (sequential);
//! * `runs/search` with `metrics.m1 > 0.5` over `--runs` runs (each with `m1` in [0,1) and a
//!   param), checking the result count against the expected one on both servers;
//! * `runs/log-batch` with 1,000 metrics.
//!
//! It prints one table (measure | factory | mlflow | ratio, ratio oriented so bigger = factory
//! better) and the targets with PASS/FAIL; `--json` writes every figure. Progress goes
//! to stderr. Servers are killed (whole process group) at the end, on error, panic or Ctrl-C.

mod load;
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use load::{Bounds, CheckBody, MakeRequest, Stats};
use rand::RngExt as _;
use serde::Serialize;
use serde_json::{json, Value};
use server::{Kind, Launch, ServerGuard};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The stock server's figures noted in shared/notes/mlflow-wire-facts.md, used for the targets
/// when mlflow is not run.
const NOTED_MLFLOW_LM8_RPS: f64 = 160.0;
const NOTED_MLFLOW_SEARCH_P50_MS: f64 = 336.0;

/// Warm-up requests use indices from here on (so their points can be told apart).
const WARMUP_BASE: u64 = u64::MAX / 2;

#[derive(Parser, Debug)]
#[command(name = "bench-tracking", about = "Benchmark `factory server` against `mlflow server` (both on SQLite)")]
struct Args {
    /// The factory binary (build it with `cargo build --release -p factory`).
    #[arg(long, default_value = "target/release/factory")]
    factory_bin: PathBuf,
    /// The stock mlflow CLI.
    #[arg(long, default_value = "/root/.cache/factory/venv/bin/mlflow")]
    mlflow_bin: PathBuf,
    /// Length of each log-metric load phase (and time cap of the other phases).
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Cap on requests per log-metric phase for factory.
    #[arg(long, default_value_t = 500_000)]
    max_requests: u64,
    /// Cap on requests per log-metric phase for mlflow (it is slow; keeps the run short).
    #[arg(long, default_value_t = 3_000)]
    mlflow_max_requests: u64,
    /// Concurrent keep-alive clients of the concurrent log-metric phase.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Runs created for the runs/search phase.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// Do not run mlflow (ratios then use the noted mlflow baseline for the targets only).
    #[arg(long)]
    skip_mlflow: bool,
    /// Leave mlflow's job runner on (its default). By default the benchmark sets
    /// MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: the job runner serves no tracking request and
    /// only adds processes, memory and CPU contention on a small machine.
    #[arg(long)]
    mlflow_job_execution: bool,
    /// Worker threads of the benchmark's own (client) runtime; the server gets the other cores.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Write all figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Everything measured on one server.
#[derive(Serialize, Default, Debug)]
struct Figures {
    server: String,
    command: String,
    cold_start_ms: f64,
    rss_first_health_mib: f64,
    processes_first_health: usize,
    rss_after_load_mib: f64,
    processes_after_load: usize,
    log_metric_1: Stats,
    log_metric_n: Stats,
    /// Points acknowledged with 200 by the log-metric phases, and points found in the history.
    log_metric_acknowledged: u64,
    log_metric_stored: u64,
    /// `GET /version` with N clients: the HTTP stack alone (no store), a floor for the others.
    http_floor: Stats,
    runs_get: Stats,
    search_runs: u64,
    search_setup_secs: f64,
    search_expected: u64,
    search_count: u64,
    /// The first search of the phase (factory: nothing of these runs cached yet), ms.
    search_first_ms: f64,
    search: Stats,
    log_batch_1000: Stats,
}

/// Per-server request counts (mlflow's are capped so it does not dominate the run).
struct Plan {
    duration: Duration,
    lm_max: u64,
    get_n: u64,
    search_n: u64,
    batch_n: u64,
    warmup: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    machine_cores: usize,
    /// `/proc/loadavg` before and after the run (other work on the machine skews the figures).
    loadavg_before: String,
    loadavg_after: String,
    args: String,
    factory: &'a Figures,
    mlflow: Option<&'a Figures>,
    mlflow_note: String,
    targets: Vec<Target>,
}

#[derive(Serialize, Clone)]
struct Target {
    name: String,
    value: String,
    pass: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads).enable_all().build()?
    };
    runtime.block_on(async {
        tokio::spawn(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
            }
            eprintln!("bench-tracking: interrupted, killing the servers");
            server::kill_all_registered();
            std::process::exit(130);
        });
        run(args).await
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let factory_bin = find_factory(&args.factory_bin)?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let loadavg_before = loadavg();
    eprintln!("bench-tracking: {cores} cores, load average before the run: {loadavg_before}");
    if loadavg_before.split_whitespace().next().and_then(|l| l.parse::<f64>().ok()).unwrap_or(0.0) > 1.0 {
        eprintln!("bench-tracking: WARNING: the machine is busy; the figures will be skewed by the other work");
    }
    let duration = Duration::from_secs(args.duration_secs.max(1));
    let factory_plan = Plan { duration, lm_max: args.max_requests, get_n: 1000, search_n: 30, batch_n: 20, warmup: 20 };
    let mlflow_plan =
        Plan { duration, lm_max: args.mlflow_max_requests, get_n: 200, search_n: 10, batch_n: 10, warmup: 3 };

    let factory_launch =
        Launch { kind: Kind::Factory, bin: factory_bin, env: vec![("RUST_LOG".into(), "warn".into())] };
    let factory = bench_server(&factory_launch, &factory_plan, &args).await.context("benchmarking factory")?;

    let (mlflow, mlflow_note) = if args.skip_mlflow {
        (None, "mlflow skipped (--skip-mlflow): targets use the noted mlflow baseline".to_string())
    } else if !args.mlflow_bin.is_file() {
        let note = format!(
            "mlflow NOT FOUND at {} — skipped; targets use the noted mlflow baseline",
            args.mlflow_bin.display()
        );
        eprintln!("bench-tracking: {note}");
        (None, note)
    } else {
        let job = if args.mlflow_job_execution { "true" } else { "false" };
        let env = vec![
            ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION".to_string(), job.to_string()),
            ("MLFLOW_DISABLE_TELEMETRY".to_string(), "true".to_string()),
        ];
        let launch = Launch { kind: Kind::Mlflow, bin: std::path::absolute(&args.mlflow_bin)?, env };
        let f = bench_server(&launch, &mlflow_plan, &args).await.context("benchmarking mlflow")?;
        let note = format!(
            "mlflow server with its default workers (uvicorn, 4), MLFLOW_SERVER_ENABLE_JOB_EXECUTION={job}, \
             MLFLOW_DISABLE_TELEMETRY=true; request counts capped at {} per log-metric phase",
            args.mlflow_max_requests
        );
        (Some(f), note)
    };

    let targets = targets(&factory, mlflow.as_ref());
    print_table(&factory, mlflow.as_ref(), &mlflow_note, &targets);
    println!("machine: {cores} cores; load average before the run {loadavg_before}, after {}", loadavg());
    if let Some(path) = &args.json {
        let report = Report {
            machine_cores: cores,
            loadavg_before,
            loadavg_after: loadavg(),
            args: std::env::args().collect::<Vec<_>>().join(" "),
            factory: &factory,
            mlflow: mlflow.as_ref(),
            mlflow_note,
            targets,
        };
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench-tracking: figures written to {}", path.display());
    }
    Ok(())
}

/// `target/release/factory` relative to the current dir, else to the workspace root.
fn find_factory(given: &Path) -> anyhow::Result<PathBuf> {
    if given.is_file() {
        return Ok(std::path::absolute(given)?);
    }
    if given.is_relative() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let from_root = root.canonicalize().unwrap_or(root).join(given);
        if from_root.is_file() {
            return Ok(std::path::absolute(from_root)?);
        }
    }
    bail!("factory binary not found at {} (build it: cargo build --release -p factory)", given.display())
}

/// The first three fields of `/proc/loadavg`.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The `m1` value of each search run, in [0,1), from a fixed seed: the same for both servers.
fn m1_values(runs: u64) -> Arc<Vec<f64>> {
    let mut rng = learn::rng(0x5EED);
    Arc::new((0..runs).map(|_| rng.random()).collect())
}

fn progress(kind: Kind, msg: &str) {
    eprintln!("[{:>7}] {msg}", kind.name());
}

async fn bench_server(launch: &Launch, plan: &Plan, args: &Args) -> anyhow::Result<Figures> {
    let kind = launch.kind;
    progress(kind, &format!("starting {}", launch.bin.display()));
    let (mut srv, started) = ServerGuard::spawn(launch)?;
    let mut f = Figures { server: kind.name().into(), command: srv.command.clone(), ..Default::default() };

    // Cold start: spawn → first /health 200, polling every 5 ms.
    let probe = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build()?;
    let health = format!("{}/health", srv.base_url);
    loop {
        if let Ok(r) = probe.get(&health).send().await {
            if r.status() == reqwest::StatusCode::OK {
                f.cold_start_ms = started.elapsed().as_secs_f64() * 1000.0;
                break;
            }
        }
        srv.check_alive()?;
        if started.elapsed() > Duration::from_secs(180) {
            bail!("{} did not answer /health 200 within 180 s; log tail:\n{}", kind.name(), srv.log_tail(30));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f.rss_first_health_mib = srv.rss_mib();
    f.processes_first_health = srv.process_count();
    progress(
        kind,
        &format!(
            "healthy after {:.1} ms, RSS {:.1} MiB over {} process(es)",
            f.cold_start_ms, f.rss_first_health_mib, f.processes_first_health
        ),
    );

    let base: Arc<str> = srv.base_url.clone().into();
    let c = load::client();
    let api = |p: &str| format!("/api/2.0/mlflow/{p}");
    let exp = load::post(&c, &base, &api("experiments/create"), &json!({"name": format!("bench-{}", now_ms())}))
        .await?["experiment_id"]
        .as_str()
        .context("experiments/create: no experiment_id")?
        .to_string();
    let new_run = |name: &'static str| {
        let (c, base, exp) = (c.clone(), base.clone(), exp.clone());
        async move {
            let r = load::post(
                &c,
                &base,
                "/api/2.0/mlflow/runs/create",
                &json!({"experiment_id": exp, "start_time": now_ms(), "run_name": name}),
            )
            .await?;
            r["run"]["info"]["run_id"].as_str().map(str::to_string).context("runs/create: no run_id")
        }
    };
    let server_usage = || srv.usage();

    // log-metric, 1 client then N clients; each client logs its own key with increasing steps.
    let mut acknowledged = 0;
    let mut stored = 0;
    for (n, slot) in [(1usize, 0usize), (args.clients, 1)] {
        let run_id: Arc<str> = new_run(if slot == 0 { "log-metric-1" } else { "log-metric-n" }).await?.into();
        progress(kind, &format!("log-metric, {n} keep-alive client(s), {} s max", plan.duration.as_secs()));
        let (b, r) = (base.clone(), run_id.clone());
        let make: MakeRequest = Arc::new(move |c, w, i| {
            let key = if i >= WARMUP_BASE { "warmup".to_string() } else { format!("loss_c{w}") };
            let step = if i >= WARMUP_BASE { i - WARMUP_BASE } else { i };
            let body = json!({"run_id": &*r, "run_uuid": &*r, "key": key, "value": (i % 1000) as f64 / 1000.0,
                              "timestamp": now_ms(), "step": step});
            c.post(format!("{b}/api/2.0/mlflow/runs/log-metric"))
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body).unwrap_or_default())
        });
        let bounds = Bounds { clients: n, duration: plan.duration, max_requests: plan.lm_max, warmup: plan.warmup };
        let stats = load::run(bounds, make, None, &server_usage).await?;
        report_stats(kind, &stats);
        acknowledged += stats.requests - stats.errors;
        for w in 0..n {
            stored += history_len(&c, &base, &run_id, &format!("loss_c{w}")).await?;
        }
        if slot == 0 {
            f.log_metric_1 = stats;
        } else {
            f.log_metric_n = stats;
        }
    }
    f.log_metric_acknowledged = acknowledged;
    f.log_metric_stored = stored;
    progress(kind, &format!("metric history: {stored} points stored for {acknowledged} acknowledged"));

    // HTTP floor: GET /version touches no store.
    let floor_secs = plan.duration.min(Duration::from_secs(3));
    progress(kind, &format!("GET /version (no store), {} clients, {} s", args.clients, floor_secs.as_secs()));
    let b = base.clone();
    let make: MakeRequest = Arc::new(move |c, _, _| c.get(format!("{b}/version")));
    let bounds = Bounds { clients: args.clients, duration: floor_secs, max_requests: u64::MAX, warmup: plan.warmup };
    f.http_floor = load::run(bounds, make, None, &server_usage).await?;
    report_stats(kind, &f.http_floor);

    // runs/get of a run with 10 params, 10 tags and 10 metrics.
    let run_id: Arc<str> = new_run("runs-get").await?.into();
    let ts = now_ms();
    load::post(
        &c,
        &base,
        &api("runs/log-batch"),
        &json!({"run_id": &*run_id,
                "metrics": (0..10).map(|k| json!({"key": format!("metric_{k}"), "value": k as f64 * 0.5, "timestamp": ts, "step": 0})).collect::<Vec<_>>(),
                "params": (0..10).map(|k| json!({"key": format!("param_{k}"), "value": format!("value-{k}")})).collect::<Vec<_>>(),
                "tags": (0..10).map(|k| json!({"key": format!("tag_{k}"), "value": format!("t{k}")})).collect::<Vec<_>>()}),
    )
    .await?;
    progress(kind, &format!("runs/get, {} sequential requests", plan.get_n));
    let (b, r) = (base.clone(), run_id.clone());
    let make: MakeRequest =
        Arc::new(move |c, _, _| c.get(format!("{b}/api/2.0/mlflow/runs/get?run_id={r}&run_uuid={r}")));
    let bounds = Bounds { clients: 1, duration: plan.duration, max_requests: plan.get_n, warmup: plan.warmup };
    f.runs_get = load::run(bounds, make, None, &server_usage).await?;
    report_stats(kind, &f.runs_get);

    // runs/search over `runs` runs with m1 in [0,1) and a param, created by N clients.
    let search_exp =
        load::post(&c, &base, &api("experiments/create"), &json!({"name": format!("search-{}", now_ms())})).await?
            ["experiment_id"]
            .as_str()
            .context("experiments/create: no experiment_id")?
            .to_string();
    progress(
        kind,
        &format!("creating {} runs (m1 in [0,1), one param, the client's tags), {} clients", args.runs, args.clients),
    );
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    let m1 = m1_values(args.runs);
    for w in 0..args.clients as u64 {
        let (base, exp, runs, clients) = (base.clone(), search_exp.clone(), args.runs, args.clients as u64);
        let m1 = m1.clone();
        tasks.push(tokio::spawn(async move {
            let c = load::client();
            let mut i = w;
            while i < runs {
                let r = load::post(
                    &c,
                    &base,
                    "/api/2.0/mlflow/runs/create",
                    // The tags the stock client adds to every run it starts (the notes' 336 ms baseline
                    // was measured on client-made runs).
                    &json!({"experiment_id": exp, "start_time": now_ms(), "run_name": format!("r{i}"),
                            "tags": [{"key": "mlflow.user", "value": "bench"},
                                     {"key": "mlflow.source.name", "value": "bench-tracking"},
                                     {"key": "mlflow.source.type", "value": "LOCAL"}]}),
                )
                .await?;
                let id = r["run"]["info"]["run_id"].as_str().context("runs/create: no run_id")?.to_string();
                load::post(
                    &c,
                    &base,
                    "/api/2.0/mlflow/runs/log-batch",
                    &json!({"run_id": id, "metrics": [{"key": "m1", "value": m1[i as usize], "timestamp": now_ms(), "step": 0}],
                            "params": [{"key": "p1", "value": i.to_string()}]}),
                )
                .await?;
                i += clients;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    f.search_runs = args.runs;
    f.search_setup_secs = t0.elapsed().as_secs_f64();
    f.search_expected = m1.iter().filter(|&&v| v > 0.5).count() as u64;
    progress(kind, &format!("runs/search 'metrics.m1 > 0.5', {} sequential requests", plan.search_n));
    let body: Arc<Vec<u8>> = Arc::new(serde_json::to_vec(
        &json!({"experiment_ids": [search_exp], "filter": "metrics.m1 > 0.5", "max_results": 1000}),
    )?);
    let b = base.clone();
    let make: MakeRequest = Arc::new(move |c, _, _| {
        c.post(format!("{b}/api/2.0/mlflow/runs/search"))
            .header("content-type", "application/json")
            .body(body.as_ref().clone())
    });
    let seen = Arc::new(AtomicU64::new(0));
    let (seen2, expected) = (seen.clone(), f.search_expected.min(1000));
    let check: CheckBody = Arc::new(move |bytes| {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("search response not JSON: {e}"))?;
        let n = v["runs"].as_array().map_or(0, Vec::len) as u64;
        seen2.store(n, Ordering::Relaxed);
        if n == expected {
            Ok(())
        } else {
            Err(format!("runs/search returned {n} runs, expected {expected}"))
        }
    });
    // The first search on its own: factory has none of these runs in its cache of hydrated
    // runs yet, so this is the cost of a page whose runs all changed since they were read.
    let t = Instant::now();
    let first = make(&c, 0, 0).send().await?;
    let status = first.status();
    let bytes = first.bytes().await?;
    f.search_first_ms = t.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(status.is_success(), "runs/search: HTTP {status}");
    check(&bytes).map_err(anyhow::Error::msg)?;
    let bounds = Bounds { clients: 1, duration: Duration::from_secs(60), max_requests: plan.search_n, warmup: 1 };
    f.search = load::run(bounds, make, Some(check), &server_usage).await?;
    f.search_count = seen.load(Ordering::Relaxed);
    report_stats(kind, &f.search);
    progress(kind, &format!("runs/search returned {} runs, expected {}", f.search_count, f.search_expected));

    // log-batch of 1,000 metrics (100 keys x 10 steps, fresh steps per request).
    let run_id: Arc<str> = new_run("log-batch").await?.into();
    progress(kind, &format!("runs/log-batch of 1,000 metrics, {} sequential requests", plan.batch_n));
    let (b, r) = (base.clone(), run_id.clone());
    let make: MakeRequest = Arc::new(move |c, _, i| {
        let ts = now_ms();
        let step0 = (i % WARMUP_BASE) * 10 + if i >= WARMUP_BASE { 1 << 40 } else { 0 };
        let metrics: Vec<Value> = (0..1000u64)
            .map(|j| json!({"key": format!("bm_{}", j % 100), "value": j as f64, "timestamp": ts, "step": step0 + j / 100}))
            .collect();
        c.post(format!("{b}/api/2.0/mlflow/runs/log-batch"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&json!({"run_id": &*r, "metrics": metrics})).unwrap_or_default())
    });
    let bounds = Bounds { clients: 1, duration: Duration::from_secs(60), max_requests: plan.batch_n, warmup: 1 };
    f.log_batch_1000 = load::run(bounds, make, None, &server_usage).await?;
    report_stats(kind, &f.log_batch_1000);

    f.rss_after_load_mib = srv.rss_mib();
    f.processes_after_load = srv.process_count();
    progress(kind, &format!("RSS after load {:.1} MiB; stopping the server", f.rss_after_load_mib));
    srv.check_alive()?;
    drop(srv);
    Ok(f)
}

/// Number of points of `key` in `run`, paged by 2,500 as the mlflow client does.
async fn history_len(c: &reqwest::Client, base: &str, run: &str, key: &str) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let mut path = format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run}&run_uuid={run}&metric_key={key}&max_results=2500"
        );
        if let Some(t) = &token {
            path.push_str(&format!("&page_token={}", urlencode(t)));
        }
        let v = load::get(c, base, &path).await?;
        n += v["metrics"].as_array().map_or(0, Vec::len) as u64;
        match v["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(n),
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn report_stats(kind: Kind, s: &Stats) {
    progress(
        kind,
        &format!(
            "  {} req in {:.2} s = {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, errors {}{} (CPU: server {:.2}, client {:.2} cores; server {:.1} ctx switches/req, RSS {:.1} MiB)",
            s.requests,
            s.secs,
            s.req_per_sec,
            s.p50_ms,
            s.p99_ms,
            s.errors,
            s.first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default(),
            s.server_cpu_cores,
            s.client_cpu_cores,
            s.server_ctx_switches_per_req,
            s.server_rss_after_mib
        ),
    );
}

fn total_errors(f: &Figures) -> u64 {
    f.log_metric_1.errors
        + f.log_metric_n.errors
        + f.http_floor.errors
        + f.runs_get.errors
        + f.search.errors
        + f.log_batch_1000.errors
}

/// When mlflow was measured, the ratio against the noted baseline too (the machine may be busier or quieter).
fn noted_too(measured: bool, ratio: f64, noted: &str) -> String {
    if measured {
        format!("; vs noted {noted}: {ratio:.1}x")
    } else {
        String::new()
    }
}

fn targets(f: &Figures, m: Option<&Figures>) -> Vec<Target> {
    let (lm_base, lm_src) = m.map_or((NOTED_MLFLOW_LM8_RPS, "noted"), |m| (m.log_metric_n.req_per_sec, "measured"));
    let (s_base, s_src) = m.map_or((NOTED_MLFLOW_SEARCH_P50_MS, "noted"), |m| (m.search.p50_ms, "measured"));
    let lm_ratio = f.log_metric_n.req_per_sec / lm_base;
    let s_ratio = s_base / f.search.p50_ms;
    let mut t = vec![
        Target {
            name: format!("log-metric throughput at {} clients >= 50x mlflow", f.log_metric_n.clients),
            value: format!(
                "{lm_ratio:.1}x ({:.0} vs {lm_base:.0} req/s {lm_src}){}",
                f.log_metric_n.req_per_sec,
                noted_too(m.is_some(), f.log_metric_n.req_per_sec / NOTED_MLFLOW_LM8_RPS, "160 req/s")
            ),
            pass: lm_ratio >= 50.0,
        },
        Target {
            name: "runs/search p50 >= 50x faster than mlflow".into(),
            value: format!(
                "{s_ratio:.1}x ({:.2} vs {s_base:.1} ms {s_src}){}",
                f.search.p50_ms,
                noted_too(m.is_some(), NOTED_MLFLOW_SEARCH_P50_MS / f.search.p50_ms, "336 ms")
            ),
            pass: s_ratio >= 50.0,
        },
        Target {
            name: "cold start (spawn -> /health 200) < 100 ms".into(),
            value: format!("{:.1} ms", f.cold_start_ms),
            pass: f.cold_start_ms < 100.0,
        },
        Target {
            name: "RSS at first health < 50 MB".into(),
            value: format!("{:.1} MiB", f.rss_first_health_mib),
            pass: f.rss_first_health_mib * 1.048_576 < 50.0,
        },
        Target {
            name: "RSS after the load < 50 MB".into(),
            value: format!("{:.1} MiB", f.rss_after_load_mib),
            pass: f.rss_after_load_mib * 1.048_576 < 50.0,
        },
        Target {
            name: "factory: no request failed".into(),
            value: format!("{} errors", total_errors(f)),
            pass: total_errors(f) == 0,
        },
        Target {
            name: "factory: every acknowledged log-metric is stored".into(),
            value: format!("{} / {}", f.log_metric_stored, f.log_metric_acknowledged),
            pass: f.log_metric_stored == f.log_metric_acknowledged,
        },
    ];
    let count_ok = |x: &Figures| x.search_count == x.search_expected.min(1000) && x.search.errors == 0;
    t.push(Target {
        name: "runs/search count = expected".into(),
        value: match m {
            Some(m) => format!("factory {}, mlflow {}, expected {}", f.search_count, m.search_count, f.search_expected),
            None => format!("factory {}, expected {}", f.search_count, f.search_expected),
        },
        pass: count_ok(f) && m.is_none_or(count_ok),
    });
    t
}

/// Prints the side-by-side table and the targets to stdout.
fn print_table(f: &Figures, m: Option<&Figures>, note: &str, targets: &[Target]) {
    enum Better {
        Higher,
        Lower,
        None,
    }
    /// A row: label, how to read the figure, which way is better, decimals shown.
    type Row = (String, Box<dyn Fn(&Figures) -> f64>, Better, usize);
    let n = f.log_metric_n.clients;
    let rows: Vec<Row> = vec![
        ("cold start: spawn -> /health 200 (ms)".into(), Box::new(|x| x.cold_start_ms), Better::Lower, 1),
        ("RSS at first health (MiB, process tree)".into(), Box::new(|x| x.rss_first_health_mib), Better::Lower, 1),
        ("processes at first health".into(), Box::new(|x| x.processes_first_health as f64), Better::None, 0),
        ("log-metric, 1 client (req/s)".into(), Box::new(|x| x.log_metric_1.req_per_sec), Better::Higher, 0),
        ("log-metric, 1 client p50 (ms)".into(), Box::new(|x| x.log_metric_1.p50_ms), Better::Lower, 3),
        ("log-metric, 1 client p99 (ms)".into(), Box::new(|x| x.log_metric_1.p99_ms), Better::Lower, 3),
        (format!("log-metric, {n} clients (req/s)"), Box::new(|x| x.log_metric_n.req_per_sec), Better::Higher, 0),
        (format!("log-metric, {n} clients p50 (ms)"), Box::new(|x| x.log_metric_n.p50_ms), Better::Lower, 3),
        (format!("log-metric, {n} clients p99 (ms)"), Box::new(|x| x.log_metric_n.p99_ms), Better::Lower, 3),
        (
            format!("log-metric, {n} clients server CPU (cores)"),
            Box::new(|x| x.log_metric_n.server_cpu_cores),
            Better::None,
            2,
        ),
        (
            format!("log-metric, {n} clients server ctx switches/req"),
            Box::new(|x| x.log_metric_n.server_ctx_switches_per_req),
            Better::None,
            1,
        ),
        ("log-metric points stored / acknowledged".into(), Box::new(stored_ratio), Better::None, 4),
        (
            format!("GET /version, {n} clients (req/s, HTTP floor)"),
            Box::new(|x| x.http_floor.req_per_sec),
            Better::Higher,
            0,
        ),
        ("runs/get p50 (ms)".into(), Box::new(|x| x.runs_get.p50_ms), Better::Lower, 3),
        ("runs/get p99 (ms)".into(), Box::new(|x| x.runs_get.p99_ms), Better::Lower, 3),
        (
            format!("creating {} runs for search (s)", f.search_runs),
            Box::new(|x| x.search_setup_secs),
            Better::Lower,
            2,
        ),
        (
            format!("runs/search m1>0.5 over {} runs, first (ms)", f.search_runs),
            Box::new(|x| x.search_first_ms),
            Better::Lower,
            3,
        ),
        (
            format!("runs/search m1>0.5 over {} runs p50 (ms)", f.search_runs),
            Box::new(|x| x.search.p50_ms),
            Better::Lower,
            3,
        ),
        (
            format!("runs/search m1>0.5 over {} runs p99 (ms)", f.search_runs),
            Box::new(|x| x.search.p99_ms),
            Better::Lower,
            3,
        ),
        ("runs/search result count".into(), Box::new(|x| x.search_count as f64), Better::None, 0),
        ("log-batch 1,000 metrics p50 (ms)".into(), Box::new(|x| x.log_batch_1000.p50_ms), Better::Lower, 3),
        ("RSS after the load (MiB, process tree)".into(), Box::new(|x| x.rss_after_load_mib), Better::Lower, 1),
        ("failed requests (non-200 or transport)".into(), Box::new(|x| total_errors(x) as f64), Better::None, 0),
    ];
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
    println!();
    println!("{:<w$} | {:>12} | {:>12} | {:>9}", "measure", "factory", "mlflow", "ratio");
    println!("{}", "-".repeat(w + 44));
    for (name, get, better, dec) in &rows {
        let fv = get(f);
        let mv = m.map(get);
        let ratio = match (mv, better) {
            (Some(mv), Better::Higher) if mv > 0.0 => format!("{:.1}x", fv / mv),
            (Some(mv), Better::Lower) if fv > 0.0 => format!("{:.1}x", mv / fv),
            _ => String::new(),
        };
        let mcol = mv.map_or("-".to_string(), |v| format!("{v:.dec$}"));
        println!("{name:<w$} | {fv:>12.dec$} | {mcol:>12} | {ratio:>9}");
    }
    println!("(ratio: bigger = factory better; throughput factory/mlflow, latency and memory mlflow/factory)");
    println!("mlflow: {note}");
    println!();
    println!("targets (issue 3):");
    for t in targets {
        println!("  [{}] {:<55} {}", if t.pass { "PASS" } else { "FAIL" }, t.name, t.value);
    }
}

fn stored_ratio(x: &Figures) -> f64 {
    if x.log_metric_acknowledged == 0 {
        0.0
    } else {
        x.log_metric_stored as f64 / x.log_metric_acknowledged as f64
    }
}
