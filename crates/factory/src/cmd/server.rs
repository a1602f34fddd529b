//! `factory server`: the MLflow-compatible tracking server. Flags mirror `mlflow server`.

use anyhow::Context;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where runs, experiments and the registry live: sqlite:///path.db or postgresql://user@host:port/db.
    #[arg(long, env = "MLFLOW_BACKEND_STORE_URI", default_value = "sqlite:///mlflow.db")]
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
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let runtime = super::runtime(0)?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let root = args.default_artifact_root.clone().unwrap_or_else(|| "mlflow-artifacts:".to_string());
    mlflow_api::artifacts::check_artifact_location(&root).map_err(|e| anyhow::anyhow!(e.message))?;
    let store = tracking::Store::open(&args.backend_store_uri, &root)
        .await
        .with_context(|| format!("opening backend store '{}'", args.backend_store_uri))?;
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
    let state = mlflow_api::AppState { store: Arc::new(store), artifacts, auth };
    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, backend = %args.backend_store_uri, "factory server listening");
    mlflow_api::run(listener, state, super::shutdown_signal()).await.context("serving HTTP")?;
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
    auth::store::check_separate_from_tracking(&cfg.database_uri, &args.backend_store_uri)?;
    let store = auth::AuthStore::open(&cfg.database_uri)
        .await
        .with_context(|| format!("opening the auth database '{}'", cfg.database_uri))?;
    store.bootstrap_admin(&cfg).await.context("setting up the admin user for --app-name basic-auth")?;
    tracing::info!(database = %cfg.database_uri, default_permission = %cfg.default_permission, "basic auth on");
    Ok(mlflow_api::auth::Auth::new(store, cfg.default_permission))
}
