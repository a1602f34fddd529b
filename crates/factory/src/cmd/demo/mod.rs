//! `factory demo`: the whole lifecycle in one command, on embedded defaults.
//!
//! It starts, as child processes of this one (stopped on every exit path): a tracking server
//! (SQLite + local artifacts), two `factory serve` colours and `factory gateway`. It trains v1
//! and makes it `prod`, sends production traffic through the gateway, runs a loop cycle on
//! normal traffic (no drift), injects drift (documented in docs/loop.md), runs a cycle that
//! detects it, retrains on the newly labelled rows, promotes v2 and switches the gateway to
//! it — with traffic flowing the whole time — then prints a summary (`--json FILE` writes it).
//! `--scenario spam` runs the same on a text classifier (`scenario`): the drift is the
//! e-mails' natural one, caught as prediction drift.

mod scenario;

use anyhow::{bail, Context as _};
use backon::{ConstantBuilder, Retryable};
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::{Context, CycleReport, Decision};
use rand::RngExt as _;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scenario::{Rows, Scenario};

/// `--scenario` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioArg {
    /// The California housing regressor, simulated drift (embedded data, offline).
    Housing,
    /// A spam classifier on the SpamAssassin e-mails (`--data` emails.csv.gz), natural drift.
    Spam,
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// What to run: the housing regressor (default) or the spam classifier.
    #[arg(long, value_enum, default_value = "housing")]
    pub scenario: ScenarioArg,
    /// Data: for housing a CSV path or URL (default: the California housing CSV in the binary);
    /// for spam the SpamAssassin e-mails (../shared/datasets/spam_assassin/emails.csv.gz).
    #[arg(long)]
    pub data: Option<String>,
    /// Folder for everything the demo writes (database, artifacts, request logs, reports).
    /// Default: `factory-demo-<UTC time>` in the current folder.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write the summary as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Concurrent clients sending production traffic.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Also POST the drift event (GitHub `repository_dispatch` body) to this URL.
    #[arg(long)]
    pub webhook: Option<String>,
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// The demo's outcome (`--json`).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub scenario: &'static str,
    pub drift_detected: bool,
    /// Why the drifted cycle retrained.
    pub drift_reasons: Vec<String>,
    pub drift_detected_on_normal_traffic: bool,
    pub champion_version: Option<String>,
    pub challenger_version: Option<String>,
    pub promoted: bool,
    pub served_version_before: Option<String>,
    pub served_version_after: Option<String>,
    pub requests_sent: u64,
    pub failed_requests: u64,
    pub requests_by_version: std::collections::BTreeMap<String, u64>,
    pub deployment_operation_id: Option<String>,
    pub drift_run_id: Option<String>,
    pub tracking_uri: String,
    pub report_dir: PathBuf,
    pub wall_seconds: f64,
}

/// The child processes; every one is stopped (SIGTERM, then SIGKILL) when this is dropped.
struct Children(Vec<(String, Child)>);

impl Children {
    fn spawn(&mut self, name: &str, args: &[String], log_dir: &Path) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("locating the factory binary")?;
        let log = std::fs::File::create(log_dir.join(format!("{name}.log")))?;
        let child = Command::new(exe)
            .args(args)
            .env("RUST_LOG", "info")
            .env("FACTORY_ADMIN_TOKEN", demo_token())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.0.push((name.to_string(), child));
        Ok(())
    }

    fn check_running(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited early ({status}); see its log in the demo folder");
            }
        }
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        for (_, child) in &self.0 {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut self.0 {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        tracing::warn!("{name} did not stop in time; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `url` answers 200: polled every 50 ms (`backon`) for up to 30 s, and no longer
/// once one of the children has exited.
/// The admin token of the demo's serve admin listeners and gateway admin API (random per run).
fn demo_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let part = || {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            );
            h.finish()
        };
        format!("demo-{:016x}{:016x}", part(), part())
    })
}

async fn wait_ready(http: &reqwest::Client, url: &str, children: &mut Children) -> anyhow::Result<()> {
    enum NotReady {
        Yet,
        Never(anyhow::Error),
    }
    let poll = ConstantBuilder::new().with_delay(Duration::from_millis(50)).with_max_times(600);
    let ready = || {
        let alive = children.check_running();
        let get = http.get(url).bearer_auth(demo_token()).timeout(Duration::from_secs(1)).send();
        async move {
            alive.map_err(NotReady::Never)?;
            match get.await {
                Ok(r) if r.status().is_success() => Ok(()),
                _ => Err(NotReady::Yet),
            }
        }
    };
    match ready.retry(poll).sleep(tokio::time::sleep).when(|e| matches!(e, NotReady::Yet)).await {
        Ok(()) => Ok(()),
        Err(NotReady::Never(e)) => Err(e),
        Err(NotReady::Yet) => bail!("{url} did not become ready within 30 s"),
    }
}

/// One V2 inference request for a row (one input per feature; the target left out).
fn v2_body(rows: &Rows, row: &[String], target: &str) -> Value {
    let inputs: Vec<Value> = rows
        .header
        .iter()
        .zip(row)
        .zip(&rows.text)
        .filter(|((h, _), _)| h.as_str() != target)
        .map(|((h, v), &text)| match v.parse::<f64>() {
            Ok(x) if !text => json!({"name": h, "datatype": "FP64", "shape": [1], "data": [x]}),
            _ => json!({"name": h, "datatype": "BYTES", "shape": [1], "data": [v]}),
        })
        .collect();
    json!({ "inputs": inputs })
}

/// Production traffic: `clients` tasks sending rows through the gateway until stopped.
struct Traffic {
    sent: AtomicU64,
    failed: AtomicU64,
    shifted: AtomicBool,
    stop: AtomicBool,
    by_version: Mutex<std::collections::BTreeMap<String, u64>>,
    last_error: Mutex<Option<String>>,
}

/// The rows a client sends: before the drift, after it, and the target column to leave out.
struct TrafficRows {
    normal: Arc<Rows>,
    drifted: Arc<Rows>,
    target: String,
}

async fn client_loop(t: Arc<Traffic>, http: reqwest::Client, url: String, rows: Arc<TrafficRows>, seed: u64) {
    let mut rng = learn::rng(seed);
    while !t.stop.load(Ordering::Relaxed) {
        let from = if t.shifted.load(Ordering::Relaxed) { &rows.drifted } else { &rows.normal };
        let row = &from.rows[rng.random_range(0..from.rows.len())];
        let body = v2_body(from, row, &rows.target);
        t.sent.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let resp = http.post(&url).json(&body).timeout(Duration::from_secs(10)).send().await?;
            let status = resp.status();
            let v: Value = resp.json().await?;
            Ok::<_, reqwest::Error>((status, v))
        }
        .await;
        match result {
            Ok((status, v)) if status.is_success() => {
                let version = v["model_version"].as_str().unwrap_or("?").to_string();
                *t.by_version.lock().unwrap_or_else(|e| e.into_inner()).entry(version).or_default() += 1;
            }
            Ok((status, v)) => {
                t.failed.fetch_add(1, Ordering::Relaxed);
                *t.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("HTTP {status}: {v}"));
            }
            Err(e) => {
                t.failed.fetch_add(1, Ordering::Relaxed);
                *t.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

struct Steps {
    start: Instant,
}

impl Steps {
    fn begin(&self, what: &str) -> ProgressBar {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    fn done(&self, bar: ProgressBar, what: &str) {
        bar.finish_and_clear();
        eprintln!("[{:5.1}s] ✔ {what}", self.start.elapsed().as_secs_f64());
    }
}

#[allow(clippy::too_many_arguments)]
fn pipeline_toml(
    sc: &Scenario,
    logs: &[PathBuf],
    labels: &Path,
    gateway_admin: &str,
    serve_admins: &[String],
    tracking: &str,
    webhook: Option<&str>,
) -> String {
    let paths =
        |ps: &[PathBuf]| ps.iter().map(|p| format!("{:?}", p.display().to_string())).collect::<Vec<_>>().join(", ");
    let mut t = format!(
        r#"# The pipeline the demo runs (factory loop --pipelines <this folder> runs it on its schedule).
steps = ["drift", "retrain", "promote", "rollout"]
tracking_uri = "{tracking}"
experiment = "drift-monitoring"

[schedule]
cron = "0 2 * * *"
timezone = "UTC"
missed = "run-once"

[drift]
reference = {reference:?}
request_logs = [{logs}]
{drift_toml}
[retrain]
labels = {labels:?}
experiment = "{experiment}"
model_name = "{model}"
alias = "prod"
stage = "Production"
{retrain_toml}
[rollout]
mode = "blue-green"
gateway = "{gateway_admin}"
blue_admin = "{blue_admin}"
green_admin = "{green_admin}"
timeout_secs = 30
window_secs = 2
error_budget = 0.0
"#,
        reference = sc.reference.display().to_string(),
        drift_toml = sc.drift_toml,
        retrain_toml = sc.retrain_toml,
        experiment = sc.experiment,
        model = sc.model,
        logs = paths(logs),
        labels = labels.display().to_string(),
        blue_admin = serve_admins[0],
        green_admin = serve_admins[1],
    );
    if let Some(w) = webhook {
        t.push_str(&format!("\n[webhook]\nurl = \"{w}\"\n"));
    }
    t
}

pub fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let runtime = super::runtime(0)?;
    let summary = runtime.block_on(async {
        tokio::select! {
            s = demo(&args) => s,
            _ = super::shutdown_signal() => bail!("interrupted; every process the demo started was stopped"),
        }
    })?;
    let text = serde_json::to_string_pretty(&summary)?;
    match args.json.as_deref() {
        Some(p) if p == Path::new("-") => println!("{text}"),
        Some(p) => std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?,
        None => {}
    }
    let ok = summary.drift_detected && summary.promoted && summary.failed_requests == 0;
    Ok(if ok { 0 } else { 1 })
}

async fn demo(args: &DemoArgs) -> anyhow::Result<Summary> {
    let steps = Steps { start: Instant::now() };
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(format!("factory-demo-{}", chrono_stamp())));
    let work = dir.join("work");
    let reports = dir.join("reports");
    for d in [&work, &reports] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let dir = dir.canonicalize()?;
    let (work, reports) = (dir.join("work"), dir.join("reports"));
    eprintln!("factory demo — everything goes to {}", dir.display());
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut children = Children(Vec::new());

    // 1. Data.
    let bar = steps.begin("getting the data");
    let cache_dir = super::datasets_cache_dir(args.cache_dir.as_deref());
    let sc = match args.scenario {
        ScenarioArg::Housing => {
            let source = training::data::Source::from_arg(args.data.as_deref());
            scenario::housing(&training::data::resolve(&source, &cache_dir, false).await?)?
        }
        ScenarioArg::Spam => {
            let Some(data) = &args.data else {
                bail!(
                    "--scenario spam needs --data: the SpamAssassin e-mails, ../shared/datasets/spam_assassin/emails.csv.gz"
                );
            };
            scenario::spam(Path::new(data), &work)?
        }
    };
    let model = sc.model.clone();
    steps.done(
        bar,
        &format!(
            "{} scenario: {} ({} rows before the drift, {} after)",
            sc.name,
            sc.reference.display(),
            sc.normal.rows.len(),
            sc.drifted.rows.len()
        ),
    );

    // 2. Tracking server.
    let bar = steps.begin("starting the tracking server");
    let tracking_port = free_port()?;
    let tracking = format!("http://127.0.0.1:{tracking_port}");
    children.spawn(
        "server",
        &[
            "server".into(),
            "--port".into(),
            tracking_port.to_string(),
            "--backend-store-uri".into(),
            format!("sqlite:///{}", work.join("mlflow.db").display()),
            "--artifacts-destination".into(),
            work.join("mlartifacts").display().to_string(),
        ],
        &work,
    )?;
    wait_ready(&http, &format!("{tracking}/health"), &mut children).await?;
    steps.done(bar, &format!("tracking server on {tracking}"));

    // 3. v1, the champion.
    let bar = steps.begin(&format!("training v1 ({})", sc.model_note));
    let client = mlflow_client::Client::new(&tracking, None)?;
    let cfg = training::TrainConfig {
        data: training::data::Source::Path(sc.reference.clone()),
        cache_dir: cache_dir.clone(),
        target: sc.target.clone(),
        task: sc.task,
        text_columns: sc.text_columns.clone(),
        positive_label: sc.positive_label.clone(),
        test_data: None,
        spec: sc.spec.clone(),
        experiment: sc.experiment.clone(),
        run_name: Some("demo-v1".into()),
        model_name: model.clone(),
        seed: 42,
        test_fraction: 0.2,
        holdout_from_row: None,
        alias: Some("prod".into()),
        compare_with: None,
        promote: false,
        margin: 0.0,
        metric: None,
        stage: Some("Production".into()),
        show_progress: false,
    };
    let v1 = training::train(&cfg, &client).await?;
    for colour in ["blue", "green"] {
        client.set_alias(&model, colour, &v1.version).await?;
    }
    steps.done(
        bar,
        &format!(
            "v{} trained (holdout {} {}) and promoted to 'prod'",
            v1.version,
            v1.holdout.primary.0,
            score(v1.holdout.primary.1)
        ),
    );

    // 4. Serving: blue and green, then the gateway in front.
    let bar = steps.begin("starting blue, green and the gateway");
    let mut logs = Vec::new();
    let mut addrs = Vec::new();
    let mut serve_admins = Vec::new();
    for colour in ["blue", "green"] {
        let port = free_port()?;
        let admin_port = free_port()?;
        let log = work.join("requests").join(colour);
        children.spawn(
            colour,
            &[
                "serve".into(),
                "--model-uri".into(),
                format!("models:/{model}@{colour}"),
                "--port".into(),
                port.to_string(),
                "--grpc-port".into(),
                port.to_string(),
                "--tracking-uri".into(),
                tracking.clone(),
                "--request-log".into(),
                log.display().to_string(),
                "--request-log-format".into(),
                "jsonl".into(),
                "--poll-interval-secs".into(),
                "0".into(),
                "--admin-port".into(),
                admin_port.to_string(),
            ],
            &work,
        )?;
        serve_admins.push(format!("http://127.0.0.1:{admin_port}"));
        logs.push(log);
        addrs.push(format!("127.0.0.1:{port}"));
    }
    for a in &addrs {
        wait_ready(&http, &format!("http://{a}/health"), &mut children).await?;
    }
    let (listen, admin) = (free_port()?, free_port()?);
    children.spawn(
        "gateway",
        &[
            "gateway".into(),
            "--listen".into(),
            format!("127.0.0.1:{listen}"),
            "--admin".into(),
            format!("127.0.0.1:{admin}"),
            "--blue".into(),
            addrs[0].clone(),
            "--green".into(),
            addrs[1].clone(),
            "--state-file".into(),
            work.join("gateway-state.json").display().to_string(),
        ],
        &work,
    )?;
    let admin_url = format!("http://127.0.0.1:{admin}");
    let front = format!("http://127.0.0.1:{listen}");
    wait_ready(&http, &format!("{admin_url}/status"), &mut children).await?;
    wait_ready(&http, &format!("{front}/health"), &mut children).await?;
    steps
        .done(bar, &format!("blue {} and green {} behind the gateway {front} (admin {admin_url})", addrs[0], addrs[1]));

    // 5. Production traffic, continuous from here to the end.
    let traffic = Arc::new(Traffic {
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        shifted: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        by_version: Mutex::new(Default::default()),
        last_error: Mutex::new(None),
    });
    let url = format!("{front}/v2/models/{model}/infer");
    let rows =
        Arc::new(TrafficRows { normal: sc.normal.clone(), drifted: sc.drifted.clone(), target: sc.target.clone() });
    let clients: Vec<_> = (0..args.clients.max(1))
        .map(|i| tokio::spawn(client_loop(traffic.clone(), http.clone(), url.clone(), rows.clone(), 7 + i as u64)))
        .collect();
    let served_before = gateway_version(&http, &front).await;

    let labels = work.join("labels");
    std::fs::create_dir_all(&labels)?;
    let pipeline_dir = dir.join("pipelines");
    std::fs::create_dir_all(&pipeline_dir)?;
    let toml = pipeline_toml(&sc, &logs, &labels, &admin_url, &serve_admins, &tracking, args.webhook.as_deref());
    std::fs::write(pipeline_dir.join("demo.toml"), &toml)?;
    let overrides =
        pipeline::Overrides { admin_token: Some(demo_token().to_string()), ..pipeline::Overrides::default() };
    let pipeline = pipeline::config::parse("demo", &toml, &pipeline_dir, &overrides).map_err(anyhow::Error::msg)?;
    let ctx = Context {
        state_dir: work.join("loop-state"),
        report_dir: reports.clone(),
        auth: None,
        show_progress: false,
        webhook_backoff: Duration::from_millis(200),
        cache_dir: cache_dir.clone(),
        read_secret: super::closed_loop::env_secret,
        metrics: None,
    };

    let bar = steps.begin("normal traffic (rows like the training data)");
    wait_rows(&traffic, sc.normal_requests, &mut children).await?;
    steps.done(bar, &format!("{} requests of normal traffic", traffic.sent.load(Ordering::Relaxed)));
    let bar = steps.begin("loop cycle 1: drift check on normal traffic");
    let normal = pipeline::cycle::run(&pipeline, &ctx).await?;
    steps.done(bar, &format!("cycle 1: {}", verdict(&normal)));

    // 6. Drift: drifted traffic, and labels for drifted rows arriving.
    let bar = steps.begin(&sc.drift_note);
    traffic.shifted.store(true, Ordering::Relaxed);
    sc.labels.write(&labels.join("labelled-drifted.csv"))?;
    let before = traffic.sent.load(Ordering::Relaxed);
    wait_rows(&traffic, before + sc.drifted_requests, &mut children).await?;
    steps.done(bar, &format!("drifted traffic flowing; {} labelled drifted rows arrived", sc.labels.rows.len()));

    let bar = steps.begin("loop cycle 2: drift check → retrain → champion vs challenger → promote → blue-green switch");
    let drifted = pipeline::cycle::run(&pipeline, &ctx).await?;
    steps.done(bar, &format!("cycle 2: {}", verdict(&drifted)));

    // 7. Traffic now served by the new version.
    let bar = steps.begin("traffic after the rollout");
    let after_switch = traffic.sent.load(Ordering::Relaxed);
    wait_rows(&traffic, after_switch + 300, &mut children).await?;
    let served_after = gateway_version(&http, &front).await;
    traffic.stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    steps.done(bar, &format!("gateway now serves v{}", served_after.as_deref().unwrap_or("?")));

    for (r, name) in [(&normal, "drift-normal.html"), (&drifted, "drift-drifted.html")] {
        if let Some(html) = &r.report_html {
            std::fs::copy(html, reports.join(name))?;
        }
    }
    let summary = Summary {
        scenario: sc.name,
        drift_detected: drifted.significant_drift,
        drift_reasons: drifted.drift_reasons.clone(),
        drift_detected_on_normal_traffic: normal.significant_drift,
        champion_version: drifted.champion_version.clone(),
        challenger_version: drifted.challenger_version.clone(),
        promoted: drifted.promoted,
        served_version_before: served_before,
        served_version_after: served_after,
        requests_sent: traffic.sent.load(Ordering::Relaxed),
        failed_requests: traffic.failed.load(Ordering::Relaxed),
        requests_by_version: traffic.by_version.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        deployment_operation_id: drifted.rollout.as_ref().and_then(|r| r.operation_id.clone()),
        drift_run_id: Some(drifted.run_id.clone()),
        tracking_uri: tracking.clone(),
        report_dir: reports.clone(),
        wall_seconds: steps.start.elapsed().as_secs_f64(),
    };
    print_summary(&summary, &drifted, traffic.last_error.lock().unwrap_or_else(|e| e.into_inner()).as_deref());
    eprintln!(
        "  browse it               factory server --backend-store-uri sqlite:///{} --artifacts-destination {}\n\
         \x20                         then http://127.0.0.1:5000/factory/ (drift cycles, lineage; / is MLflow's UI)",
        work.join("mlflow.db").display(),
        work.join("mlartifacts").display()
    );
    drop(children);
    Ok(summary)
}

fn verdict(r: &CycleReport) -> String {
    let drift = if r.significant_drift { "significant drift" } else { "no significant drift" };
    let what = match r.decision {
        Decision::Promoted => format!(
            "v{} beat v{} and was rolled out",
            r.challenger_version.as_deref().unwrap_or("?"),
            r.champion_version.as_deref().unwrap_or("?")
        ),
        Decision::ChampionKept => format!("champion v{} kept", r.champion_version.as_deref().unwrap_or("?")),
        Decision::RolledBack => "rollout failed and was rolled back".into(),
        Decision::NoDrift => "nothing to do".into(),
        Decision::Skipped => "skipped (too few rows)".into(),
        Decision::DriftReported => "reported".into(),
    };
    format!(
        "{drift} ({} rows, {:.0}% of columns drifted, max PSI {:.2}) — {what}",
        r.rows,
        r.share_of_drifted_columns.unwrap_or(0.0) * 100.0,
        r.max_psi.unwrap_or(0.0)
    )
}

fn print_summary(s: &Summary, drifted: &CycleReport, last_error: Option<&str>) {
    eprintln!("\nSummary");
    eprintln!(
        "  drift detected          {} (normal traffic: {})",
        s.drift_detected, s.drift_detected_on_normal_traffic
    );
    for reason in &s.drift_reasons {
        eprintln!("    {reason}");
    }
    eprintln!(
        "  champion → challenger   v{} → v{} (holdout {} {} → {})",
        s.champion_version.as_deref().unwrap_or("?"),
        s.challenger_version.as_deref().unwrap_or("?"),
        if s.scenario == "spam" { "log loss" } else { "RMSE" },
        score(drifted.champion_score.unwrap_or(f64::NAN)),
        score(drifted.challenger_score.unwrap_or(f64::NAN))
    );
    eprintln!("  promoted                {}", s.promoted);
    eprintln!(
        "  served version          v{} → v{}",
        s.served_version_before.as_deref().unwrap_or("?"),
        s.served_version_after.as_deref().unwrap_or("?")
    );
    eprintln!(
        "  requests                {} sent, {} failed, by version {:?}",
        s.requests_sent, s.failed_requests, s.requests_by_version
    );
    if let Some(e) = last_error {
        eprintln!("  last failure            {e}");
    }
    eprintln!("  reports                 {}", s.report_dir.display());
    eprintln!(
        "  tracking (stopped now)  experiment drift-monitoring, run {}",
        s.drift_run_id.as_deref().unwrap_or("?")
    );
    eprintln!("  wall time               {:.1} s", s.wall_seconds);
}

async fn wait_rows(t: &Traffic, n: u64, children: &mut Children) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.sent.load(Ordering::Relaxed) < n {
        children.check_running()?;
        if Instant::now() > deadline {
            bail!("traffic stalled at {} requests", t.sent.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the request log writers catch up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

async fn gateway_version(http: &reqwest::Client, front: &str) -> Option<String> {
    let v: admin_api::HealthReply = http.get(format!("{front}/health")).send().await.ok()?.json().await.ok()?;
    v.model_version
}

/// A holdout score as people read it: whole numbers for large ones (RMSE in dollars), four
/// decimals for small ones (log loss).
fn score(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn chrono_stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}
