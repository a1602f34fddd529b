//! `factory loop`: run the drift → retrain → promote → rollout pipeline on a cron schedule
//! (or once, now, with `--once`). Pipelines come from a folder of TOML files (reloaded when
//! they change) or from flags alone; flags override file values. See docs/loop.md.

use anyhow::Context as _;
use pipeline::{Context, CycleReport, Overrides, Pipeline, PipelineError};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status with --once: 0 when every cycle ran (whatever it decided), 1 when one failed.")]
pub struct LoopArgs {
    /// Folder of pipeline definitions (`*.toml`), re-read when files change; or a git
    /// repository polled like git-sync: `git+https://host/repo.git#branch:subdir`,
    /// `file:///srv/repo.git#main`, a bare repository's path (credentials:
    /// FACTORY_GIT_USERNAME / FACTORY_GIT_PASSWORD).
    #[arg(long, value_name = "DIR|GIT-URL")]
    pub pipelines: Option<String>,
    /// `--pipelines` is a local clone: `git pull --ff-only` it every `--reload-secs`.
    #[arg(long, requires = "pipelines")]
    pub git_pull: bool,
    /// Cron schedule (five fields), overriding the files'.
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// Timezone of the schedule (IANA name).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Run one cycle of every pipeline now and exit (the `workflow_dispatch` equivalent).
    #[arg(long)]
    pub once: bool,
    /// POST GitHub's `repository_dispatch` body here on significant drift
    /// (`Authorization: Bearer $GITHUB_TOKEN` when set).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// `factory serve` URL (hot-reload rollout).
    #[arg(long, value_name = "URL")]
    pub serving: Option<String>,
    /// `factory gateway` admin URL (blue-green rollout).
    #[arg(long, value_name = "URL")]
    pub gateway: Option<String>,
    /// `factory serve --admin-port` URL (hot-reload rollout asks it to reload; without it the
    /// rollout waits for serve's registry poll).
    #[arg(long, value_name = "URL")]
    pub serving_admin: Option<String>,
    /// The blue and green `factory serve --admin-port` URLs (blue-green rollout; without them
    /// the rollout waits for the idle colour's registry poll).
    #[arg(long, value_name = "URL")]
    pub blue_admin: Option<String>,
    #[arg(long, value_name = "URL")]
    pub green_admin: Option<String>,
    #[command(flatten)]
    pub admin_token: super::admin_token::AdminTokenArgs,
    /// Reference data (the training data): CSV path or URL; default the California housing CSV.
    #[arg(long)]
    pub reference: Option<String>,
    /// `factory serve --request-log` folder (repeatable).
    #[arg(long = "request-log", value_name = "DIR")]
    pub request_logs: Vec<PathBuf>,
    /// Online drift instead of request logs: a serve replica's base URL whose
    /// `GET /drift/sketch` is merged with the others' (repeatable, or comma-separated).
    #[arg(long = "sketches", value_name = "URL", value_delimiter = ',')]
    pub sketches: Vec<String>,
    /// Online drift: `host:port` resolved to every serve replica at each cycle (e.g. a
    /// Kubernetes headless Service).
    #[arg(long, value_name = "HOST:PORT")]
    pub sketch_service: Option<String>,
    /// Folder of labelled CSVs appended to the training data on retraining.
    #[arg(long, value_name = "DIR")]
    pub labels: Option<PathBuf>,
    #[arg(long)]
    pub model_name: Option<String>,
    /// Where pipeline state (the request-log watermark, last cycle) is kept.
    #[arg(long, default_value = "factory-loop")]
    pub state_dir: PathBuf,
    /// Where drift reports are written (also uploaded to each cycle's run).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// How often the pipeline folder is checked for changes (seconds).
    #[arg(long, default_value_t = 5)]
    pub reload_secs: u64,
    /// Print each cycle's report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub metrics: super::metrics::MetricsListen,
    /// Pushgateway base URL: after each cycle the pipeline's `factory_loop_*` gauges are PUT to
    /// `URL/metrics/job/factory-loop/pipeline/<name>` (for `--once` jobs that end before a scrape).
    #[arg(long, env = "FACTORY_METRICS_PUSH_URL", value_name = "URL")]
    pub metrics_push_url: Option<String>,
}

/// Pushes one pipeline's metrics to the Pushgateway, if one is given (a failure is logged:
/// the cycle itself is not affected).
async fn push_metrics(url: Option<&str>, metrics: &std::sync::Arc<pipeline::metrics::LoopMetrics>, name: &str) {
    let Some(url) = url.filter(|u| !u.is_empty()) else { return };
    let text = metrics.render_pipeline(name);
    match exposition::push(&reqwest::Client::new(), url, "factory-loop", &[("pipeline", name)], text).await {
        Ok(()) => tracing::info!(pipeline = name, url, "metrics pushed"),
        Err(e) => tracing::warn!(pipeline = name, error = %e, "pushing metrics failed"),
    }
}

pub fn overrides(args: &LoopArgs) -> anyhow::Result<Overrides> {
    Ok(Overrides {
        serving_admin: args.serving_admin.clone(),
        blue_admin: args.blue_admin.clone(),
        green_admin: args.green_admin.clone(),
        admin_token: args.admin_token.client_token()?,
        schedule: args.schedule.clone(),
        timezone: args.timezone.clone(),
        tracking_uri: args.tracking_uri.clone(),
        webhook: args.webhook.clone(),
        serving: args.serving.clone(),
        gateway: args.gateway.clone(),
        reference: args.reference.clone(),
        request_logs: args.request_logs.clone(),
        sketches: args.sketches.clone(),
        sketch_service: args.sketch_service.clone(),
        labels: args.labels.clone(),
        model_name: args.model_name.clone(),
    })
}

/// Prints a cycle's outcome for people (stderr) or machines (stdout, `--json`).
pub fn print_cycle(p: &Pipeline, result: &Result<CycleReport, PipelineError>, json: bool) {
    match result {
        Ok(r) if json => println!("{}", serde_json::to_string(r).unwrap_or_default()),
        Ok(r) => {
            eprintln!("[{}] run {}: {:?} — {}", p.name, r.run_id, r.decision, r.reason);
            if let Some(html) = &r.report_html {
                eprintln!("[{}] drift report: {}", p.name, html.display());
            }
        }
        Err(e) => eprintln!("[{}] cycle failed: {e}", p.name),
    }
}

/// Secrets of the loop (the webhook token) come from the environment variable they name.
pub fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn run(args: LoopArgs) -> anyhow::Result<u8> {
    let overrides = overrides(&args)?;
    let metrics = std::sync::Arc::new(pipeline::metrics::LoopMetrics::default());
    let ctx = Context {
        state_dir: args.state_dir.clone(),
        report_dir: args.report_dir.clone().unwrap_or_else(|| args.state_dir.join("reports")),
        auth: super::train::tracking_auth(),
        show_progress: !args.json,
        webhook_backoff: Duration::from_millis(500),
        cache_dir: super::datasets_cache_dir(None),
        read_secret: env_secret,
        metrics: Some(metrics.clone()),
    };
    let reload_every = Duration::from_secs(args.reload_secs.max(1));
    let defs = match &args.pipelines {
        Some(spec) => match pipeline::git::Source::parse(spec, args.git_pull).map_err(anyhow::Error::msg)? {
            Some(source) => pipeline::Definitions::Git { source, reload_every, state_dir: args.state_dir.clone() },
            None => pipeline::Definitions::Folder { dir: PathBuf::from(spec), reload_every },
        },
        None => pipeline::Definitions::Single(Box::new(
            pipeline::config::from_overrides(&overrides)
                .map_err(anyhow::Error::msg)
                .context("building the pipeline from flags")?,
        )),
    };
    let runtime = super::runtime(0)?;
    runtime.block_on(async {
        let scraped = metrics.clone();
        // The loop has no other listener, so no limit flags: the defaults.
        args.metrics.start(std::sync::Arc::new(move || scraped.render()), listener::Limits::default()).await?;
        if args.once {
            let pipelines = match &defs {
                pipeline::Definitions::Single(p) => vec![(**p).clone()],
                _ => {
                    let folder = pipeline::Loaded::load(&defs, &overrides)?.folder.unwrap_or_default();
                    for e in &folder.errors {
                        eprintln!("invalid pipeline: {e}");
                    }
                    if folder.pipelines.is_empty() {
                        anyhow::bail!("no valid pipeline in {}", args.pipelines.as_deref().unwrap_or_default());
                    }
                    folder.pipelines.into_values().collect()
                }
            };
            let mut failed = false;
            for p in &pipelines {
                let started = std::time::SystemTime::now();
                let result = pipeline::cycle::run(p, &ctx).await;
                failed |= result.is_err();
                metrics.record(&p.name, &result, started);
                print_cycle(p, &result, args.json);
                push_metrics(args.metrics_push_url.as_deref(), &metrics, &p.name).await;
            }
            return Ok(u8::from(failed));
        }
        let json = args.json;
        let push_url = args.metrics_push_url.clone().filter(|u| !u.is_empty());
        let pushed = metrics.clone();
        pipeline::run_scheduled(defs, overrides, ctx, super::shutdown_signal(), move |p, r| {
            print_cycle(p, r, json);
            if let Some(url) = push_url.clone() {
                let (pushed, name) = (pushed.clone(), p.name.clone());
                tokio::spawn(async move { push_metrics(Some(&url), &pushed, &name).await });
            }
        })
        .await?;
        Ok(0)
    })
}
