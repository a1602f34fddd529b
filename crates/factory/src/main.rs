//! `factory`: the only binary. It parses flags, builds typed settings and calls into the
//! library crates; no business logic lives here.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "factory", version = mlflow_api::version::VERSION_LINE, about = "MLOps Factory: track, train, serve, deploy and watch ML models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// ONNX Runtime's shared library, for models with the onnx flavor (`pip install onnxruntime`
    /// ships it as site-packages/onnxruntime/capi/libonnxruntime.so.1.*; default: the system's
    /// libonnxruntime.so).
    #[arg(long, global = true, env = "ORT_DYLIB_PATH")]
    onnxruntime_lib: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// MLflow-compatible tracking server, model registry and artifact store.
    Server(cmd::server::ServerArgs),
    /// Train a model on a CSV, log the run, register it (champion/challenger optional).
    Train(cmd::train::TrainArgs),
    /// Score a CSV or JSON file with a model (like `mlflow models predict`).
    Predict(cmd::predict::PredictArgs),
    /// Serve a model over HTTP and gRPC (MLflow scoring protocol, Open Inference Protocol V2), with hot reload.
    Serve(cmd::serve::ServeArgs),
    /// Compare a current data set with a reference (Evidently-compatible data drift).
    Drift(cmd::drift::DriftArgs),
    /// Scheduled drift check → retrain → champion/challenger → promote → rollout (`--once`: now).
    Loop(cmd::closed_loop::LoopArgs),
    /// The whole lifecycle with simulated drift, on embedded defaults, in one command.
    Demo(cmd::demo::DemoArgs),
    /// Blue-green gateway: one port for HTTP and gRPC in front of a blue and a green `serve`, admin API.
    Gateway(cmd::gateway::GatewayArgs),
    /// Move traffic between the gateway's colours: switch, rollback, status (health-gated).
    Deploy(cmd::deploy::DeployArgs),
    /// DVC-style stages (cmd, deps, params, outs, metrics) cached by content hash: run, status, dag.
    Pipeline(cmd::pipeline::PipelineArgs),
    /// What a tracking database holds; adopt an existing MLflow database in place (reversible).
    Db(cmd::db::DbArgs),
    /// The MLflow web UI `factory server` serves at `/`: install it from the `mlflow` wheel.
    Ui(cmd::ui::UiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own steps; its children log to files in the demo folder.
    let default_level = if matches!(cli.command, Command::Demo(_)) { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(lib) = cli.onnxruntime_lib.filter(|p| !p.as_os_str().is_empty()) {
        formats::onnx::set_runtime_library(lib);
    }
    let result = match cli.command {
        Command::Server(args) => cmd::server::run(args).map(|()| 0),
        Command::Drift(args) => cmd::drift::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Loop(args) => cmd::closed_loop::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Deploy(args) => cmd::deploy::run(args),
        Command::Pipeline(args) => cmd::pipeline::run(args),
        Command::Db(args) => cmd::db::run(args),
        Command::Ui(args) => cmd::ui::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
