//! `bench-gateway`: the latency `factory gateway` adds in front of a `factory serve`, next to
//! calling the upstream directly and next to nginx configured as the seed did it (`proxy_pass`
//! for HTTP/1.1, `grpc_pass` over HTTP/2 for gRPC, keep-alive to the active upstream).
//!
//! One `factory serve` (HTTP and gRPC on one port), one `factory gateway` (blue = that serve)
//! and one nginx are started on free 127.0.0.1 ports. Each path is then driven at a fixed rate
//! (default 2,000 req/s) over 8 keep-alive connections — HTTP/1.1 `POST /invocations` with one
//! row, and gRPC V2 `ModelInfer` with one row (8 HTTP/2 connections) — after a warm-up, for
//! several rounds in turn (direct, gateway, nginx, direct, …). Latency is per request, from the
//! send to the last byte, into an HDR histogram with coordinated-omission correction
//! (`record_correct` at the scheduled interval). The table shows the median over rounds of p50
//! and p99 and what each proxy adds to the direct figures. With `wrk` installed, a closed-loop
//! run (8 connections, 2 threads) of the HTTP paths follows, for throughput.
//!
//! Everything shares the machine's cores (loader, proxy, upstream); the load average is printed.

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::json;
use serving::proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use serving::proto::inference::model_infer_request::InferInputTensor;
use serving::proto::inference::{InferTensorContents, ModelInferRequest};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The issue's target: what the gateway may add to the upstream's p99.
const TARGET_ADDED_P99_MS: f64 = 0.2;

#[derive(Parser, Debug)]
#[command(name = "bench-gateway", about = "Latency added by factory gateway vs direct vs nginx, HTTP and gRPC")]
struct Args {
    /// The factory binary (default: release build next to this one, then target/release/factory).
    #[arg(long)]
    factory_bin: Option<PathBuf>,
    /// nginx binary (Debian package: /usr/sbin/nginx).
    #[arg(long, default_value = "nginx")]
    nginx_bin: String,
    /// Skip nginx.
    #[arg(long)]
    skip_nginx: bool,
    /// Requests per second per phase (all connections together).
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Keep-alive connections per phase.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Unmeasured seconds before each phase.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Rounds over all paths (the table shows the median of the rounds).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Extra arguments for `factory gateway` (e.g. "--threads 1").
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    gateway_args: String,
    /// Skip the closed-loop wrk run.
    #[arg(long)]
    skip_wrk: bool,
    /// Write every figure as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A child process stopped when dropped: SIGTERM (nginx's master then stops its workers; a
/// SIGKILL would orphan them), SIGKILL after 5 s.
struct Proc(Child, &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn factory_bin(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.factory_bin {
        return Ok(p.clone());
    }
    let mut candidates = Vec::new();
    if let Ok(me) = std::env::current_exe() {
        candidates.push(me.with_file_name("factory"));
    }
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(Path::new(&t).join("release/factory"));
    }
    candidates.push(PathBuf::from("target/release/factory"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .context("no factory binary found: build it (cargo build --release -p factory) or pass --factory-bin")
}

fn write_model(dir: &Path) -> anyhow::Result<()> {
    use learn::{Column, Frame, GbmParams, ModelSpec, Task};
    let n = 2000;
    let x1: Vec<f64> = (0..n).map(|i| (i % 17) as f64 * 0.5).collect();
    let x2: Vec<f64> = (0..n).map(|i| ((i * 7) % 23) as f64 - 11.0).collect();
    let y: Vec<f64> = x1.iter().zip(&x2).map(|(a, b)| 2.0 * a + b + (a * b).sin()).collect();
    let x = Frame::from_columns(vec![Column::numeric("x1", x1), Column::numeric("x2", x2)])?;
    let spec = ModelSpec::Gbm(GbmParams { max_iter: 100, ..GbmParams::default() });
    let (model, _) = learn::fit(&x, &y, Task::Regression, &spec, &mut |_, _| {})?;
    let provenance = package::Provenance {
        run_id: None,
        model_id: Some("m-bench".into()),
        created_utc: "2026-01-01 00:00:00".into(),
        profile: None,
    };
    package::save(dir, &model, &x.select_rows(&[0, 1, 2]), &provenance)?;
    Ok(())
}

async fn wait_http(url: &str, proc: &mut Proc) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if let Some(s) = proc.0.try_wait()? {
            bail!("{} exited: {s}", proc.1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{} did not answer {url}", proc.1)
}

fn nginx_conf(dir: &Path, upstream: u16, http_port: u16, grpc_port: u16) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
user root;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream active_http {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    upstream active_grpc {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            proxy_pass http://active_http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{grpc_port} http2;
        location / {{ grpc_pass grpc://active_grpc; }}
    }}
}}
"#
    )
}

/// One fixed-rate phase.
#[derive(Clone, Debug)]
struct Phase {
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    requests: u64,
    errors: u64,
    achieved_rps: f64,
}

/// Drives `conns` connections, each sending every `conns/rate` seconds; `send(i)` makes one
/// request on connection `i` and says whether it succeeded.
async fn fixed_rate<S, F>(conns: usize, rate: u64, warmup: Duration, duration: Duration, send: S) -> Phase
where
    S: Fn(usize) -> F + Clone + Send + 'static,
    F: Future<Output = bool> + Send,
{
    let interval = Duration::from_secs_f64(conns as f64 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for i in 0..conns {
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut errors = 0u64;
            let mut next = start + interval.mul_f64(i as f64 / conns as f64);
            while next < end {
                tokio::time::sleep_until(next).await;
                let sent = tokio::time::Instant::now();
                let ok = send(i).await;
                let took = sent.elapsed();
                if sent >= measure_from {
                    let _ = h.record_correct(took.as_micros().max(1) as u64, interval.as_micros() as u64);
                    errors += u64::from(!ok);
                }
                next += interval;
                // Far behind (a stall): skip the missed slots; record_correct accounted for them.
                let now = tokio::time::Instant::now();
                if now > next + interval * 4 {
                    next = now;
                }
            }
            (h, errors)
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.unwrap();
        all.add(h).unwrap();
        errors += e;
    }
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    Phase {
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: all.max() as f64 / 1000.0,
        requests: all.len(),
        errors,
        achieved_rps: all.len() as f64 / duration.as_secs_f64(),
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn http_phase(args: &Args, base: &str, body: bytes::Bytes) -> Phase {
    let clients: std::sync::Arc<Vec<reqwest::Client>> =
        std::sync::Arc::new((0..args.connections).map(|_| http_client()).collect());
    let url = std::sync::Arc::new(format!("{base}/invocations"));
    fixed_rate(
        args.connections,
        args.rate,
        Duration::from_secs(args.warmup_secs),
        Duration::from_secs(args.duration_secs),
        move |i| {
            let (clients, url, body) = (clients.clone(), url.clone(), body.clone());
            async move {
                match clients[i].post(url.as_str()).header("content-type", "application/json").body(body).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await
}

fn infer_request() -> ModelInferRequest {
    let t = |name: &str, v: f64| InferInputTensor {
        name: name.into(),
        datatype: "FP64".into(),
        shape: vec![1],
        contents: Some(InferTensorContents { fp64_contents: vec![v], ..Default::default() }),
        ..Default::default()
    };
    ModelInferRequest { inputs: vec![t("x1", 2.5), t("x2", -3.0)], ..Default::default() }
}

async fn grpc_phase(args: &Args, base: &str) -> anyhow::Result<Phase> {
    let mut clients = Vec::new();
    for _ in 0..args.connections {
        let ch = tonic::transport::Endpoint::from_shared(base.to_string())?.tcp_nodelay(true).connect().await?;
        clients.push(GrpcInferenceServiceClient::new(ch));
    }
    let clients = std::sync::Arc::new(clients);
    let req = infer_request();
    Ok(fixed_rate(
        args.connections,
        args.rate,
        Duration::from_secs(args.warmup_secs),
        Duration::from_secs(args.duration_secs),
        move |i| {
            let mut c = clients[i].clone();
            let req = req.clone();
            async move { c.model_infer(req).await.is_ok_and(|r| r.get_ref().outputs.len() == 1) }
        },
    )
    .await)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// (req/s, p50 ms, p99 ms) from `wrk --latency`.
fn wrk(url: &str, script: &Path, secs: u64) -> anyhow::Result<(f64, f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t2", "-c8", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = |s: &str| -> f64 {
        let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
        let v: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => v / 1000.0,
            "ms" => v,
            "s" => v * 1000.0,
            _ => f64::NAN,
        }
    };
    let field = |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()));
    let rps: f64 = field("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors for {url}:\n{text}");
    }
    Ok((rps, field("50%").map_or(f64::NAN, |v| ms(&v)), field("99%").map_or(f64::NAN, |v| ms(&v))))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let factory = factory_bin(&args)?;
    let tmp = tempfile::tempdir()?;
    let model = tmp.path().join("model");
    write_model(&model)?;
    let (up, gw, admin, green, nginx_http, nginx_grpc) =
        (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());

    eprintln!(
        "starting factory serve on {up}, factory gateway on {gw} (admin {admin}), nginx on {nginx_http}/{nginx_grpc}"
    );
    let mut serve = Proc(
        Command::new(&factory)
            .args(["serve", "--model-path"])
            .arg(&model)
            .args(["--port", &up.to_string(), "--grpc-port", &up.to_string(), "--poll-interval-secs", "0"])
            .env("MODEL_VERSION", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting factory serve")?,
        "factory serve",
    );
    wait_http(&format!("http://127.0.0.1:{up}/health"), &mut serve).await?;
    let mut gateway = Proc(
        Command::new(&factory)
            .args(["gateway", "--listen", &format!("127.0.0.1:{gw}"), "--admin", &format!("127.0.0.1:{admin}")])
            .args(["--blue", &format!("127.0.0.1:{up}"), "--green", &format!("127.0.0.1:{green}")])
            .arg("--state-file")
            .arg(tmp.path().join("gateway-state.json"))
            .args(args.gateway_args.split_whitespace())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting factory gateway")?,
        "factory gateway",
    );
    wait_http(&format!("http://127.0.0.1:{gw}/health"), &mut gateway).await?;
    let mut nginx = None;
    if !args.skip_nginx {
        let conf = tmp.path().join("nginx.conf");
        std::fs::write(&conf, nginx_conf(tmp.path(), up, nginx_http, nginx_grpc))?;
        let mut p = Proc(
            Command::new(&args.nginx_bin)
                .arg("-c")
                .arg(&conf)
                .arg("-p")
                .arg(tmp.path())
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {} (apt-get install nginx)", args.nginx_bin))?,
            "nginx",
        );
        wait_http(&format!("http://127.0.0.1:{nginx_http}/health"), &mut p).await?;
        nginx = Some(p);
    }

    let body = json!({ "dataframe_split": { "columns": ["x1", "x2"], "data": [[2.5, -3.0]] } });
    let body = bytes::Bytes::from(serde_json::to_vec(&body)?);
    let mut paths: Vec<(&str, &str, String)> = vec![
        ("HTTP /invocations", "direct", format!("http://127.0.0.1:{up}")),
        ("HTTP /invocations", "factory gateway", format!("http://127.0.0.1:{gw}")),
        ("gRPC ModelInfer", "direct", format!("http://127.0.0.1:{up}")),
        ("gRPC ModelInfer", "factory gateway", format!("http://127.0.0.1:{gw}")),
    ];
    if nginx.is_some() {
        paths.insert(2, ("HTTP /invocations", "nginx proxy_pass", format!("http://127.0.0.1:{nginx_http}")));
        paths.push(("gRPC ModelInfer", "nginx grpc_pass", format!("http://127.0.0.1:{nginx_grpc}")));
    }
    let load_before = loadavg();
    let mut results: Vec<Vec<Phase>> = vec![Vec::new(); paths.len()];
    for round in 0..args.rounds {
        for (i, (proto, via, base)) in paths.iter().enumerate() {
            let phase = if proto.starts_with("HTTP") {
                http_phase(&args, base, body.clone()).await
            } else {
                grpc_phase(&args, base).await?
            };
            eprintln!(
                "round {}: {proto:<18} {via:<17} p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  {:.0} req/s  errors {}  (load {})",
                round + 1,
                phase.p50_ms,
                phase.p99_ms,
                phase.p999_ms,
                phase.achieved_rps,
                phase.errors,
                loadavg()
            );
            results[i].push(phase);
        }
    }
    let load_after = loadavg();

    println!(
        "\nFixed rate {} req/s over {} connections, {} s per phase after {} s warm-up, median of {} rounds (ms):",
        args.rate, args.connections, args.duration_secs, args.warmup_secs, args.rounds
    );
    println!(
        "| {:<18} | {:<17} | {:>7} | {:>7} | {:>8} | {:>9} | {:>9} | {:>6} |",
        "protocol", "path", "p50", "p99", "p99.9", "added p50", "added p99", "errors"
    );
    println!("|{:-<20}|{:-<19}|{:->9}|{:->9}|{:->10}|{:->11}|{:->11}|{:->8}|", "", "", ":", ":", ":", ":", ":", ":");
    let mut json_rows = Vec::new();
    let mut direct = (0.0, 0.0);
    for (i, (proto, via, _)) in paths.iter().enumerate() {
        let r = &results[i];
        let p50 = median(r.iter().map(|p| p.p50_ms).collect());
        let p99 = median(r.iter().map(|p| p.p99_ms).collect());
        let p999 = median(r.iter().map(|p| p.p999_ms).collect());
        let errors: u64 = r.iter().map(|p| p.errors).sum();
        if *via == "direct" {
            direct = (p50, p99);
        }
        let (a50, a99) = if *via == "direct" { (0.0, 0.0) } else { (p50 - direct.0, p99 - direct.1) };
        let added = |v: f64| if *via == "direct" { "—".to_string() } else { format!("{v:+.3}") };
        println!(
            "| {proto:<18} | {via:<17} | {p50:>7.3} | {p99:>7.3} | {p999:>8.3} | {:>9} | {:>9} | {errors:>6} |",
            added(a50),
            added(a99)
        );
        json_rows.push(json!({
            "protocol": proto, "path": via, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999,
            "added_p50_ms": a50, "added_p99_ms": a99, "errors": errors,
            "rounds": r.iter().map(|p| json!({"p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "p999_ms": p.p999_ms,
                "max_ms": p.max_ms, "requests": p.requests, "errors": p.errors, "rps": p.achieved_rps})).collect::<Vec<_>>(),
        }));
    }
    for row in json_rows.iter().filter(|r| r["path"] == "factory gateway") {
        let added = row["added_p99_ms"].as_f64().unwrap_or(f64::NAN);
        let verdict = if added <= TARGET_ADDED_P99_MS { "PASS" } else { "FAIL" };
        println!(
            "target: {} through factory gateway adds ≤ {TARGET_ADDED_P99_MS} ms at p99: {added:+.3} ms {verdict}",
            row["protocol"].as_str().unwrap_or_default()
        );
    }
    println!("load average before {load_before}, after {load_after}");

    let mut wrk_rows = Vec::new();
    let have_wrk = Command::new("wrk").arg("-v").output().is_ok();
    if !args.skip_wrk && have_wrk {
        let script = tmp.path().join("invocations.lua");
        std::fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{}'\n",
                String::from_utf8_lossy(&body)
            ),
        )?;
        println!("\nClosed loop (wrk -t2 -c8 -d{}s, POST /invocations):", args.duration_secs);
        println!("| {:<17} | {:>9} | {:>7} | {:>7} |", "path", "req/s", "p50", "p99");
        println!("|{:-<19}|{:->11}|{:->9}|{:->9}|", "", ":", ":", ":");
        for (proto, via, base) in &paths {
            if !proto.starts_with("HTTP") {
                continue;
            }
            let (rps, p50, p99) = wrk(&format!("{base}/invocations"), &script, args.duration_secs)?;
            println!("| {via:<17} | {rps:>9.0} | {p50:>7.3} | {p99:>7.3} |");
            wrk_rows.push(json!({ "path": via, "rps": rps, "p50_ms": p50, "p99_ms": p99 }));
        }
    }
    if let Some(path) = &args.json {
        let doc = json!({
            "rate": args.rate, "connections": args.connections, "duration_secs": args.duration_secs,
            "rounds": args.rounds, "load_before": load_before, "load_after": load_after,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "target_added_p99_ms": TARGET_ADDED_P99_MS, "fixed_rate": json_rows, "wrk": wrk_rows,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)?;
    }
    drop(nginx);
    drop(gateway);
    drop(serve);
    Ok(())
}
