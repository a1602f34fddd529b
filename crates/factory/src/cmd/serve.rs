//! `factory serve`: serve a model over HTTP (MLflow scoring protocol, Open Inference
//! Protocol V2 REST, Prometheus metrics) and gRPC (V2 inference, grpc.health.v1), reload it
//! when its alias moves, and log every scored row. Flags and environment only; the server
//! is `serving::run`.

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Jsonl,
    Csv,
    Both,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// models:/name@alias, models:/name/N, runs:/<id>/model, models:/m-<id>, mlflow-artifacts:/... or a local folder.
    #[arg(long, env = "MODEL_URI")]
    pub model_uri: Option<String>,
    /// A local model folder (used when no --model-uri / MODEL_URI is given).
    #[arg(long, env = "MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port (MLflow scoring protocol, V2 REST, /metrics).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// gRPC port (V2 inference, grpc.health.v1); equal to --port serves both on one port.
    #[arg(long, env = "GRPC_PORT", default_value_t = 50051)]
    pub grpc_port: u16,
    /// Version label reported by health, metadata and the request log (default: the registry version).
    #[arg(long, env = "MODEL_VERSION")]
    pub model_version: Option<String>,
    #[arg(long, env = "MLFLOW_TRACKING_URI", default_value = "http://127.0.0.1:5000")]
    pub tracking_uri: String,
    /// Folder for the request log (every scored row; JSON Lines and/or CSV, rotated by size).
    #[arg(long)]
    pub request_log: Option<PathBuf>,
    /// Which request log files to write.
    #[arg(long, value_enum, default_value = "both")]
    pub request_log_format: LogFormat,
    /// Rotate request log files at this size (MiB).
    #[arg(long, default_value_t = 64)]
    pub request_log_max_mb: u64,
    /// Ask the registry this often whether the alias moved (0 = never; POST /admin/reload still works).
    #[arg(long, default_value_t = 10)]
    pub poll_interval_secs: u64,
    /// Largest request body accepted (HTTP and gRPC messages).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// A binary classifier's decision threshold: V2 answers and the request log give `label` 1
    /// when the probability of class 1 is at least this.
    #[arg(long, env = "FACTORY_THRESHOLD", default_value_t = 0.5, value_parser = parse_threshold)]
    pub threshold: f64,
    /// Adaptive batching: most rows per model call (0 = off, the default; see docs/serving.md).
    #[arg(long, default_value_t = 0)]
    pub batch_max_rows: usize,
    /// Adaptive batching: longest wait for more requests to join a batch (microseconds).
    #[arg(long, default_value_t = 0)]
    pub batch_max_wait_us: u64,
    /// Online drift: sketch the scored rows of models that carry a drift profile (those
    /// `factory train` packages) in windows of this length, served at `GET /drift/sketch` and
    /// in the metrics (`0` = off).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub drift_window: Duration,
    /// Online drift: how long sketch windows are kept.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub drift_retention: Duration,
    /// Worker threads answering requests (0 = one per core). On a box shared with a load
    /// generator or a sidecar, fewer threads than cores keeps the tail latency down.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// On SIGTERM, wait this long for requests in flight.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    #[command(flatten)]
    pub metrics: super::metrics::MetricsListen,
    /// Port of the admin listener (`POST /admin/reload`); none without it, 0 picks a free one.
    /// The public port answers 404 for /admin/*.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Address of the admin listener; anything but loopback requires an admin token.
    #[arg(long, default_value = "127.0.0.1")]
    pub admin_host: String,
    #[command(flatten)]
    pub admin_token: super::admin_token::AdminTokenArgs,
    /// Largest gRPC message accepted (default: --max-body-bytes).
    #[arg(long)]
    pub grpc_max_message_bytes: Option<usize>,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

fn config(args: &ServeArgs) -> anyhow::Result<serving::Config> {
    let uri = match (&args.model_uri, &args.model_path) {
        (Some(u), _) if !u.is_empty() => u.clone(),
        (_, Some(p)) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => anyhow::bail!("no model to serve: give --model-uri (or MODEL_URI), or MODEL_PATH for a local folder"),
    };
    if args.max_body_bytes == 0 {
        anyhow::bail!("--max-body-bytes must be positive");
    }
    let mut cfg = serving::Config::new(uri, args.tracking_uri.clone());
    cfg.auth = super::train::tracking_auth();
    cfg.version_label = args.model_version.clone().filter(|v| !v.is_empty());
    cfg.poll_interval = (args.poll_interval_secs > 0).then(|| Duration::from_secs(args.poll_interval_secs));
    cfg.max_body_bytes = args.max_body_bytes;
    cfg.shutdown_grace = Duration::from_secs(args.shutdown_grace_secs);
    cfg.limits = args.limits.limits()?;
    if args.grpc_max_message_bytes == Some(0) {
        anyhow::bail!("--grpc-max-message-bytes must be positive");
    }
    cfg.grpc_max_message_bytes = args.grpc_max_message_bytes;
    cfg.admin_tokens = args.admin_token.tokens()?;
    cfg.threshold = args.threshold;
    if let Some(dir) = &args.request_log {
        let mut log = serving::RequestLogConfig::new(dir.clone());
        log.max_file_bytes = args.request_log_max_mb.max(1) << 20;
        (log.jsonl, log.csv) = match args.request_log_format {
            LogFormat::Jsonl => (true, false),
            LogFormat::Csv => (false, true),
            LogFormat::Both => (true, true),
        };
        cfg.request_log = Some(log);
    }
    cfg.drift = (!args.drift_window.is_zero())
        .then_some(sketch::RecorderConfig { window: args.drift_window, retention: args.drift_retention });
    if cfg.drift.is_some() && args.drift_window < Duration::from_millis(100) {
        anyhow::bail!("--drift-window must be at least 100ms (or 0 to turn online drift off)");
    }
    if args.batch_max_rows > 1 {
        cfg.batching = Some(serving::BatchConfig {
            max_batch_rows: args.batch_max_rows,
            max_wait: Duration::from_micros(args.batch_max_wait_us),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        });
    }
    Ok(cfg)
}

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let cfg = config(&args)?;
    let runtime = super::runtime(args.threads)?;
    runtime.block_on(async {
        let http = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("binding HTTP to {}:{}", args.host, args.port))?;
        let grpc = if args.grpc_port == args.port {
            None
        } else {
            Some(
                tokio::net::TcpListener::bind((args.host.as_str(), args.grpc_port))
                    .await
                    .with_context(|| format!("binding gRPC to {}:{}", args.host, args.grpc_port))?,
            )
        };
        let admin = match args.admin_port {
            Some(port) => {
                let a = tokio::net::TcpListener::bind((args.admin_host.as_str(), port))
                    .await
                    .with_context(|| format!("binding the admin listener to {}:{port}", args.admin_host))?;
                let addr = a.local_addr()?;
                super::admin_token::check_bind(addr, cfg.admin_tokens.as_ref(), "serve admin listener")?;
                tracing::info!("admin listener (POST /admin/reload) on {addr}");
                Some(a)
            }
            None => None,
        };
        let http_addr = http.local_addr()?;
        match &grpc {
            Some(g) => tracing::info!("serving {}: HTTP on {http_addr}, gRPC on {}", cfg.model_uri, g.local_addr()?),
            None => tracing::info!("serving {}: HTTP and gRPC on {http_addr}", cfg.model_uri),
        }
        let app = serving::Serving::new(cfg)?;
        let scraped = app.clone();
        args.metrics.start(std::sync::Arc::new(move || scraped.render_metrics()), args.limits.limits()?).await?;
        let listeners = serving::Listeners { http, grpc, admin };
        serving::run_with(app, listeners, super::shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(0)
    })
}

/// A decision threshold: a probability from 0 to 1.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("must be a probability from 0 to 1, not '{s}'")),
    }
}
