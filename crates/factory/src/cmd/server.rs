//! `factory server`: the MLflow-compatible tracking server. Flags mirror `mlflow server`.

use anyhow::Context;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where runs, experiments and the registry live: sqlite:///path.db or postgresql://user@host:port/db.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", default_value = DEFAULT_BACKEND, hide_env_values = true)]
    pub backend_store_uri: String,
    /// Where the artifact proxy stores files: a local folder or s3://bucket/prefix.
    #[arg(long, env = "MLFLOW_ARTIFACTS_DESTINATION", default_value = "./mlartifacts")]
    pub artifacts_destination: String,
    /// Artifact location given to new experiments; default `mlflow-artifacts:/` (through this server's proxy).
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT")]
    pub default_artifact_root: Option<String>,
    /// Address to listen on.
    #[arg(long, short = 'H', env = "MLFLOW_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', env = "MLFLOW_PORT", default_value_t = 5000)]
    pub port: u16,
    /// S3-compatible endpoint (MinIO, ...), as MLflow reads it.
    #[arg(long, env = "MLFLOW_S3_ENDPOINT_URL", hide = true)]
    pub s3_endpoint_url: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide = true, hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide = true, hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    #[arg(long, env = "AWS_SESSION_TOKEN", hide = true, hide_env_values = true)]
    pub aws_session_token: Option<String>,
    #[arg(long, env = "AWS_DEFAULT_REGION", hide = true)]
    pub aws_default_region: Option<String>,
    /// `basic-auth` turns on MLflow-compatible HTTP Basic authentication and permissions.
    #[arg(long, value_parser = ["basic-auth"])]
    pub app_name: Option<String>,
    /// The auth app's ini file (`[mlflow]` default_permission, database_uri, admin_username, admin_password).
    #[arg(long, env = "MLFLOW_AUTH_CONFIG_PATH", hide = true)]
    pub auth_config_path: Option<std::path::PathBuf>,
    /// Password of the admin user created on first start with auth on.
    #[arg(long, env = "MLFLOW_AUTH_ADMIN_PASSWORD", hide = true, hide_env_values = true)]
    pub auth_admin_password: Option<String>,
    #[arg(long, env = "MLFLOW_AUTH_ADMIN_USERNAME", hide = true)]
    pub auth_admin_username: Option<String>,
    /// The auth database, overriding `database_uri` of the ini file (our addition: lets a chart
    /// take the DSN from a secret instead of writing a password into the ini).
    #[arg(long, env = "FACTORY_AUTH_DATABASE_URI", hide = true, hide_env_values = true)]
    pub auth_database_uri: Option<String>,
    /// MLflow's server setting MLFLOW_TRUNCATE_LONG_VALUES: run param values over 6000
    /// characters and tag values over 8000 are cut to that length (on) or refused (off, our
    /// default; MLflow's is on). `true`/`1` or `false`/`0`, any case, as MLflow reads it.
    #[arg(long, env = "MLFLOW_TRUNCATE_LONG_VALUES", default_value = "false", action = clap::ArgAction::Set,
          value_parser = mlflow_bool)]
    pub truncate_long_values: bool,
    /// The MLflow web UI build served at `/` (`factory ui install` puts one in the default place,
    /// ~/.cache/factory/ui/mlflow-<version>, which is used when this is not given).
    #[arg(long, env = "FACTORY_UI_DIR")]
    pub ui_dir: Option<std::path::PathBuf>,
    /// The blue-green gateway's admin API (`host:port` or URL): the deployments page at
    /// /factory/deployments shows it and, for users who may manage the model, switches, rolls
    /// back and sets canary weights through it.
    #[arg(long, env = "FACTORY_GATEWAY_ADMIN", requires = "gateway_model")]
    pub gateway_admin: Option<String>,
    /// The registered model the gateway serves: its permissions decide who sees the deployments
    /// page (READ) and who may operate it (MANAGE).
    #[arg(long, env = "FACTORY_GATEWAY_MODEL", requires = "gateway_admin")]
    pub gateway_model: Option<String>,
    /// File holding the gateway admin API's bearer token (first line; `name:token` works).
    /// Default: the token in FACTORY_GATEWAY_ADMIN_TOKEN.
    #[arg(long, env = "FACTORY_GATEWAY_ADMIN_TOKEN_FILE")]
    pub gateway_admin_token_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub metrics: super::metrics::MetricsListen,

    #[command(flatten)]
    pub mlflow: Box<MlflowFlags>,

    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// `mlflow server`'s other flags, so that charts and scripts written for it run unchanged (boxed:
/// they are many, and `ServerArgs` sits in the subcommand enum).
#[derive(clap::Args, Debug)]
pub struct MlflowFlags {
    /// Serve the artifact proxy (MLflow's default); `--no-serve-artifacts` answers its routes 503.
    #[arg(long, env = "MLFLOW_SERVE_ARTIFACTS", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(),
          overrides_with = "no_serve_artifacts", value_name = "BOOL")]
    pub serve_artifacts: Option<bool>,
    /// Turn the artifact proxy off: its routes answer 503, clients write to --default-artifact-root.
    #[arg(long, overrides_with = "serve_artifacts")]
    pub no_serve_artifacts: bool,
    /// Serve only the artifact proxy; tracking and registry routes answer 503. No backend store.
    #[arg(long, env = "MLFLOW_ARTIFACTS_ONLY")]
    pub artifacts_only: bool,
    /// Request-handling parallelism: worker threads of this one process (MLflow: worker
    /// processes, default 4). Default: one per core.
    #[arg(long, short = 'w', env = "MLFLOW_WORKERS")]
    pub workers: Option<usize>,
    /// Serve every route (API, health, UI) under this path, e.g. `/mlflow`.
    #[arg(long, env = "MLFLOW_STATIC_PREFIX")]
    pub static_prefix: Option<String>,
    /// Comma-separated Host headers accepted (exact, or fnmatch patterns with `*`); others get 403
    /// (DNS rebinding). Default: localhost on any port and private IP ranges. `*`: any.
    #[arg(long, env = "MLFLOW_SERVER_ALLOWED_HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Comma-separated origins allowed cross-origin (with credentials); localhost is always
    /// allowed. Cross-origin POST/PUT/DELETE/PATCH to the API from others get 403. `*`: any
    /// origin, without credentials.
    #[arg(long, env = "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS")]
    pub cors_allowed_origins: Option<String>,
    /// DANGEROUS: no Host check, no CORS protection, no security headers.
    #[arg(long, env = "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE")]
    pub disable_security_middleware: bool,
    /// X-Frame-Options on every answer: SAMEORIGIN, DENY, or NONE (no header).
    #[arg(long, env = "MLFLOW_SERVER_X_FRAME_OPTIONS", default_value = "SAMEORIGIN")]
    pub x_frame_options: String,
    /// Serve `GET /metrics` (Prometheus) on the main port, without login, behind the Host
    /// check, as MLflow does. MLflow's DIR (its multiprocess exporter's files) is not used: one
    /// process keeps its metrics in memory (see docs/metrics.md).
    #[arg(long, env = "MLFLOW_EXPOSE_PROMETHEUS", value_name = "DIR")]
    pub expose_prometheus: Option<std::path::PathBuf>,
    /// Options MLflow hands to gunicorn: `--workers`/`-w` is used as `--workers`; every other
    /// option has no equivalent here and is reported at start-up.
    #[arg(long, env = "MLFLOW_GUNICORN_OPTS", allow_hyphen_values = true, conflicts_with_all = ["uvicorn_opts", "waitress_opts"])]
    pub gunicorn_opts: Option<String>,
    /// Options MLflow hands to uvicorn; treated as --gunicorn-opts.
    #[arg(long, env = "MLFLOW_UVICORN_OPTS", allow_hyphen_values = true, conflicts_with = "waitress_opts")]
    pub uvicorn_opts: Option<String>,
    /// Options MLflow hands to waitress; treated as --gunicorn-opts.
    #[arg(long, allow_hyphen_values = true)]
    pub waitress_opts: Option<String>,
    /// The registry lives in the backend store: accepted only when equal to --backend-store-uri.
    #[arg(long, env = "MLFLOW_REGISTRY_STORE_URI")]
    pub registry_store_uri: Option<String>,
}

const DEFAULT_BACKEND: &str = "sqlite:///mlflow.db";

/// What `--{gunicorn,uvicorn,waitress}-opts` amount to here: a worker count, and the options
/// that have no meaning for one Rust process (reported, never silently dropped).
#[derive(Debug, Default, PartialEq)]
struct PythonServerOpts {
    workers: Option<usize>,
    ignored: Vec<String>,
}

/// A boolean environment setting as MLflow's `_BooleanEnvironmentVariable` reads it.
fn mlflow_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not one of true, false, 1, 0")),
    }
}

fn parse_python_server_opts(flag: &str, value: &str) -> anyhow::Result<PythonServerOpts> {
    let words = shlex::split(value).with_context(|| format!("{flag}: cannot split {value:?} (unbalanced quotes?)"))?;
    let mut out = PythonServerOpts::default();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (w.clone(), None),
        };
        if name == "--workers" || name == "-w" {
            let v = inline.or_else(|| words.next()).with_context(|| format!("{flag}: {name} needs a number"))?;
            out.workers = Some(v.parse().with_context(|| format!("{flag}: {name} {v:?} is not a number"))?);
        } else {
            out.ignored.push(w);
        }
    }
    Ok(out)
}

impl ServerArgs {
    /// Checks the combination of flags and turns the MLflow-only ones into settings, logging
    /// what each one means here.
    fn guard_and_workers(&self) -> anyhow::Result<(mlflow_api::guard::GuardConfig, usize)> {
        use mlflow_api::guard::{parse_list, GuardConfig, Surface};
        let serve_artifacts = !self.mlflow.no_serve_artifacts && self.mlflow.serve_artifacts.unwrap_or(true);
        if let Some(registry) = &self.mlflow.registry_store_uri {
            anyhow::ensure!(
                registry == &self.backend_store_uri,
                "--registry-store-uri '{registry}': factory server keeps the model registry in the backend store; \
                 leave it out or give the same URI as --backend-store-uri"
            );
        }
        if self.mlflow.artifacts_only {
            anyhow::ensure!(serve_artifacts, "--artifacts-only needs the artifact proxy: drop --no-serve-artifacts");
            anyhow::ensure!(
                self.backend_store_uri == DEFAULT_BACKEND,
                "You are starting a tracking server in `--artifacts-only` mode and have provided a value for \
                 `--backend-store-uri`: '{}'. A tracking server in `--artifacts-only` mode cannot have a value set \
                 for `--backend-store-uri` to properly proxy access to the artifact storage location.",
                self.backend_store_uri
            );
            anyhow::ensure!(
                self.app_name.is_none(),
                "--artifacts-only with --app-name basic-auth: permissions are resolved from the tracking store, \
                 which an artifacts-only server does not open; put the auth on the tracking server"
            );
        }
        if !serve_artifacts && self.default_artifact_root.is_none() {
            anyhow::bail!(
                "--no-serve-artifacts: give --default-artifact-root (e.g. s3://bucket/path), the location clients \
                 write artifacts to directly; without the proxy `mlflow-artifacts:/` cannot work"
            );
        }
        let mut workers = self.mlflow.workers;
        let opts = [
            ("--gunicorn-opts", &self.mlflow.gunicorn_opts),
            ("--uvicorn-opts", &self.mlflow.uvicorn_opts),
            ("--waitress-opts", &self.mlflow.waitress_opts),
        ];
        for (flag, value) in opts {
            let Some(value) = value else { continue };
            let parsed = parse_python_server_opts(flag, value)?;
            if let Some(n) = parsed.workers {
                if workers.is_none() {
                    tracing::info!(workers = n, "{flag}: --workers used as the worker thread count");
                }
                workers = workers.or(Some(n));
            }
            if !parsed.ignored.is_empty() {
                tracing::warn!(
                    ignored = %parsed.ignored.join(" "),
                    "{flag}: no Python server runs here, these options have no equivalent and are ignored \
                     (log level: RUST_LOG; timeouts and limits: factory server's own flags)"
                );
            }
        }
        if let Some(n) = workers {
            anyhow::ensure!(n > 0, "--workers must be at least 1");
            tracing::info!(workers = n, "--workers: worker threads of this process (MLflow: worker processes)");
        }
        if let Some(dir) = &self.mlflow.expose_prometheus {
            tracing::info!(
                dir = %dir.display(),
                "--expose-prometheus: GET /metrics is served on this port (no login; the Host check applies); \
                 the directory is not used, one process keeps its metrics in memory"
            );
        }
        let surface = match (self.mlflow.artifacts_only, serve_artifacts) {
            (true, _) => Surface::ArtifactsOnly,
            (false, false) => Surface::NoArtifacts,
            (false, true) => Surface::All,
        };
        let cfg = GuardConfig {
            allowed_hosts: self.mlflow.allowed_hosts.as_deref().map(parse_list),
            cors_allowed_origins: self.mlflow.cors_allowed_origins.as_deref().map(parse_list).unwrap_or_default(),
            disable_security: self.mlflow.disable_security_middleware,
            x_frame_options: self.mlflow.x_frame_options.clone(),
            static_prefix: self.mlflow.static_prefix.clone(),
            surface,
        };
        if cfg.disable_security {
            tracing::warn!("Security middleware is DISABLED: no Host check, no CORS protection, no security headers");
        } else {
            if cfg.allowed_hosts.as_ref().is_some_and(|h| h.iter().any(|h| h == "*")) {
                tracing::warn!("--allowed-hosts '*': accepting ALL hosts; the server is open to DNS rebinding");
            }
            if cfg.cors_allowed_origins.iter().any(|o| o == "*") {
                tracing::warn!("--cors-allowed-origins '*': any web site may call this server (without credentials)");
            }
            tracing::info!(
                allowed_hosts = %self.mlflow.allowed_hosts.as_deref().unwrap_or("localhost and private IPs (default)"),
                cors_allowed_origins = %self.mlflow.cors_allowed_origins.as_deref().unwrap_or("localhost (default)"),
                "security middleware on"
            );
        }
        match surface {
            Surface::ArtifactsOnly => {
                tracing::info!("--artifacts-only: serving the artifact proxy only, no backend store")
            }
            Surface::NoArtifacts => tracing::info!("--no-serve-artifacts: the artifact proxy routes answer 503"),
            Surface::All => {}
        }
        Ok((cfg, workers.unwrap_or(0)))
    }
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let (guard, workers) = args.guard_and_workers()?;
    let guard = mlflow_api::guard::Guard::new(&guard)?;
    let runtime = super::runtime(workers)?;
    runtime.block_on(serve(args, guard))
}

async fn serve(args: ServerArgs, guard: mlflow_api::guard::Guard) -> anyhow::Result<()> {
    let root = args.default_artifact_root.clone().unwrap_or_else(|| "mlflow-artifacts:".to_string());
    mlflow_api::artifacts::check_default_artifact_root(&root).map_err(|e| anyhow::anyhow!(e.message))?;
    // An artifacts-only server never reaches the store (the guard answers those routes); an
    // in-memory one stands in so that nothing is created on disk.
    let backend = if args.mlflow.artifacts_only { "sqlite://" } else { args.backend_store_uri.as_str() };
    let mut store = tracking::Store::open(backend, &root)
        .await
        .with_context(|| format!("opening backend store '{}'", args.backend_store_uri))?;
    store.set_truncate_long_values(args.truncate_long_values);
    let s3 = mlflow_api::artifacts::S3Settings {
        endpoint_url: args.s3_endpoint_url.clone(),
        access_key_id: args.aws_access_key_id.clone(),
        secret_access_key: args.aws_secret_access_key.clone(),
        session_token: args.aws_session_token.clone(),
        region: args.aws_default_region.clone(),
    };
    let artifacts = mlflow_api::artifacts::open_store(&args.artifacts_destination, &s3).map_err(anyhow::Error::msg)?;
    mlflow_api::artifacts::probe_store(artifacts.as_ref(), &args.artifacts_destination)
        .await
        .map_err(anyhow::Error::msg)?;
    let auth = match args.app_name.as_deref() {
        Some("basic-auth") => Some(Arc::new(open_auth(&args).await?)),
        _ => None,
    };
    let store = Arc::new(store);
    let metrics = mlflow_api::metrics::ServerMetrics::new(store.clone(), args.mlflow.static_prefix.as_deref());
    let render = metrics.clone();
    args.metrics.start(std::sync::Arc::new(move || render.render()), args.limits.limits()?).await?;
    let ui_dir = super::ui::resolve(args.ui_dir.as_deref())?;
    match &ui_dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "serving the MLflow web UI at /"),
        None => tracing::info!("no MLflow web UI installed (`factory ui install`); / says so"),
    }
    let gateway = gateway_link(&args)?;
    let state = mlflow_api::AppState { store, artifacts, auth, ui_dir, gateway };
    let limits = args.limits.limits()?;
    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, backend = %args.backend_store_uri, "factory server listening");
    let mut router = mlflow_api::router(state);
    if args.mlflow.expose_prometheus.is_some() {
        router = mlflow_api::metrics::with_metrics_route(router, metrics.clone());
    }
    let app = mlflow_api::metrics::layer(mlflow_api::guard::apply(router, guard), metrics);
    mlflow_api::serve(listener, app, &limits, super::shutdown_signal()).await.context("serving HTTP")?;
    tracing::info!("factory server stopped");
    Ok(())
}

/// Reads `basic_auth.ini` (MLflow's defaults without one), lets the environment supply the
/// admin credentials, opens the auth database and creates the admin on first start. Refuses
/// to start without an admin password, as MLflow 3.17 does.
async fn open_auth(args: &ServerArgs) -> anyhow::Result<mlflow_api::auth::Auth> {
    let mut cfg = match &args.auth_config_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading MLFLOW_AUTH_CONFIG_PATH '{}'", path.display()))?;
            auth::AuthConfig::from_ini(&text).with_context(|| format!("parsing '{}'", path.display()))?
        }
        None => auth::AuthConfig::default(),
    };
    if let Some(pw) = args.auth_admin_password.clone().filter(|p| !p.is_empty()) {
        cfg.admin_password = Some(pw);
    }
    if let Some(user) = args.auth_admin_username.clone() {
        cfg.admin_username = user;
    }
    if let Some(uri) = args.auth_database_uri.clone().filter(|u| !u.is_empty()) {
        cfg.database_uri = uri;
    }
    auth::store::check_separate_from_tracking(&cfg.database_uri, &args.backend_store_uri)?;
    let store = auth::AuthStore::open(&cfg.database_uri)
        .await
        .with_context(|| format!("opening the auth database '{}'", cfg.database_uri))?;
    store.bootstrap_admin(&cfg).await.context("setting up the admin user for --app-name basic-auth")?;
    tracing::info!(database = %cfg.database_uri, default_permission = %cfg.default_permission, "basic auth on");
    Ok(mlflow_api::auth::Auth::new(store, cfg.default_permission))
}

/// `--gateway-admin` and `--gateway-model`, with the token from its file or the environment.
fn gateway_link(args: &ServerArgs) -> anyhow::Result<Option<mlflow_api::pages::GatewayLink>> {
    let (Some(addr), Some(model)) = (&args.gateway_admin, &args.gateway_model) else { return Ok(None) };
    let tokens =
        super::admin_token::tokens_from(args.gateway_admin_token_file.as_deref(), "FACTORY_GATEWAY_ADMIN_TOKEN")?;
    let token = tokens.map(|t| t.first().to_string());
    let http = reqwest::Client::builder().build().context("building the gateway admin client")?;
    tracing::info!(gateway = %addr, model = %model, "deployments page reads the gateway's admin API");
    Ok(Some(mlflow_api::pages::GatewayLink {
        client: admin_api::AdminClient::new(http, addr, token),
        model: model.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn parse(argv: &[&str]) -> ServerArgs {
        Cli::try_parse_from(std::iter::once("server").chain(argv.iter().copied())).unwrap().args
    }

    #[test]
    fn python_server_opts_keep_workers_and_report_the_rest() {
        let p = parse_python_server_opts("--uvicorn-opts", "'--log-level=info'").unwrap();
        assert_eq!(p, PythonServerOpts { workers: None, ignored: vec!["--log-level=info".into()] });
        let p = parse_python_server_opts("--gunicorn-opts", "--timeout 120 -w 3 --keep-alive=5").unwrap();
        assert_eq!(p.workers, Some(3));
        assert_eq!(p.ignored, ["--timeout", "120", "--keep-alive=5"]);
        assert_eq!(parse_python_server_opts("x", "--workers=7").unwrap().workers, Some(7));
        assert!(parse_python_server_opts("x", "--workers").is_err());
        assert!(parse_python_server_opts("x", "--workers many").is_err());
        assert!(parse_python_server_opts("x", "'unbalanced").is_err());
    }

    #[test]
    fn serve_artifacts_pair_is_last_wins() {
        let surface = |argv: &[&str]| parse(argv).guard_and_workers().map(|(g, _)| g.surface);
        use mlflow_api::guard::Surface;
        assert_eq!(surface(&[]).unwrap(), Surface::All);
        assert_eq!(surface(&["--serve-artifacts"]).unwrap(), Surface::All);
        assert_eq!(
            surface(&["--no-serve-artifacts", "--default-artifact-root", "s3://b/p"]).unwrap(),
            Surface::NoArtifacts
        );
        assert_eq!(surface(&["--no-serve-artifacts", "--serve-artifacts"]).unwrap(), Surface::All);
        assert_eq!(surface(&["--artifacts-only"]).unwrap(), Surface::ArtifactsOnly);
        assert!(surface(&["--no-serve-artifacts"]).unwrap_err().to_string().contains("--default-artifact-root"));
        assert!(surface(&["--artifacts-only", "--backend-store-uri", "postgresql://h/db"]).is_err());
        assert!(surface(&["--artifacts-only", "--no-serve-artifacts"]).is_err());
        assert!(surface(&["--registry-store-uri", "sqlite:///other.db"]).is_err());
        assert_eq!(surface(&["--registry-store-uri", "sqlite:///mlflow.db"]).unwrap(), Surface::All);
    }

    #[test]
    fn workers_come_from_the_flag_or_the_server_opts() {
        let workers = |argv: &[&str]| parse(argv).guard_and_workers().map(|(_, w)| w);
        assert_eq!(workers(&[]).unwrap(), 0);
        assert_eq!(workers(&["--workers", "4"]).unwrap(), 4);
        assert_eq!(workers(&["-w", "2", "--gunicorn-opts", "-w 8"]).unwrap(), 2);
        assert_eq!(workers(&["--uvicorn-opts", "--workers 3 --log-level debug"]).unwrap(), 3);
        assert!(workers(&["--workers", "0"]).is_err());
        assert!(Cli::try_parse_from(["server", "--gunicorn-opts", "a", "--uvicorn-opts", "b"]).is_err());
    }
}
