//! `factory server`: the MLflow-compatible tracking server. Flags mirror `mlflow server`.

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// Where runs, experiments and the registry live: sqlite:///path.db or postgresql://user@host:port/db.
    #[arg(
        long,
        env = "MLFLOW_BACKEND_STORE_URI",
        default_value = "sqlite:///mlflow.db"
    )]
    pub backend_store_uri: String,
    /// Where the artifact proxy stores files (a local folder).
    #[arg(
        long,
        env = "MLFLOW_ARTIFACTS_DESTINATION",
        default_value = "./mlartifacts"
    )]
    pub artifacts_destination: PathBuf,
    /// Artifact location given to new experiments; default `mlflow-artifacts:/` (through this server's proxy).
    #[arg(long, env = "MLFLOW_DEFAULT_ARTIFACT_ROOT")]
    pub default_artifact_root: Option<String>,
    /// Address to listen on.
    #[arg(long, short = 'H', env = "MLFLOW_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', env = "MLFLOW_PORT", default_value_t = 5000)]
    pub port: u16,
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let root = args
        .default_artifact_root
        .clone()
        .unwrap_or_else(|| "mlflow-artifacts:".to_string());
    mlflow_api::artifacts::check_artifact_location(&root)
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let store = tracking::Store::open(&args.backend_store_uri, &root)
        .await
        .with_context(|| format!("opening backend store '{}'", args.backend_store_uri))?;
    std::fs::create_dir_all(&args.artifacts_destination).with_context(|| {
        format!(
            "creating artifacts destination {}",
            args.artifacts_destination.display()
        )
    })?;
    let artifacts =
        object_store::local::LocalFileSystem::new_with_prefix(&args.artifacts_destination)
            .with_context(|| {
                format!(
                    "opening artifacts destination {}",
                    args.artifacts_destination.display()
                )
            })?;
    let state = mlflow_api::AppState {
        store: Arc::new(store),
        artifacts: Arc::new(artifacts),
    };
    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, backend = %args.backend_store_uri, "factory server listening");
    mlflow_api::run(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("factory server stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
