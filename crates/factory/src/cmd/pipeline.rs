//! `factory pipeline run|status|dag FILE`: DVC-style stages from a pipeline TOML or a
//! `dvc.yaml` — run the stale ones (recorded as a tracking run when a tracking URI is
//! given), explain what would run and why, or draw the graph. See docs/loop.md.

use anyhow::Context as _;
use pipeline::stages::{dag, exec, record, Definition, StageError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    #[command(subcommand)]
    pub command: PipelineCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PipelineCommand {
    /// Run the stages whose command, deps or params changed (or whose outs are missing), in
    /// order; record the lock beside the file.
    #[command(after_help = "Exit status: 0 when every stage is up to date or ran; the failing stage's exit code \
                            (1 when it has none) otherwise.")]
    Run(RunArgs),
    /// Say which stages would run and why, without running anything.
    Status(StatusArgs),
    /// Draw the graph of stages (text, Graphviz DOT, SVG or an HTML page), coloured by status.
    Dag(DagArgs),
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// Pipeline file: `*.toml` with `[stages.*]`, or a `dvc.yaml`.
    pub file: PathBuf,
    /// Only these stages (and what they depend on).
    pub stages: Vec<String>,
    /// `NAME=VALUE` for `${NAME}` in commands and paths (wins over the file's `vars`).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// Run the selected stages even when they are up to date.
    #[arg(long)]
    pub force: bool,
    /// Also run every stage after one that ran, even when what it reads did not change.
    #[arg(long)]
    pub force_downstream: bool,
    /// Kill a stage after this many seconds (stages' own `timeout_secs` win).
    #[arg(long, value_name = "SECS")]
    pub timeout_secs: Option<f64>,
    /// Record the run (hashes as params, lock and logs as artifacts) in this tracking server.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// Experiment of the recorded run.
    #[arg(long, default_value = "pipelines")]
    pub experiment: String,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DagFormat {
    Text,
    Dot,
    Svg,
    Html,
}

#[derive(clap::Args, Debug)]
pub struct DagArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, value_enum, default_value = "text")]
    pub format: DagFormat,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(args: PipelineArgs) -> anyhow::Result<u8> {
    match args.command {
        PipelineCommand::Run(a) => run_stages(a),
        PipelineCommand::Status(a) => status(a),
        PipelineCommand::Dag(a) => draw(a),
    }
}

fn load(t: &Target) -> anyhow::Result<(Definition, exec::Options)> {
    let def = Definition::load(&t.file).map_err(anyhow::Error::new).context("reading the pipeline")?;
    let mut context = BTreeMap::new();
    for s in &t.set {
        let (k, v) = s.split_once('=').with_context(|| format!("--set {s}: expected NAME=VALUE"))?;
        context.insert(k.trim().to_string(), v.to_string());
    }
    Ok((def, exec::Options { targets: t.stages.clone(), context, ..exec::Options::default() }))
}

fn status(a: StatusArgs) -> anyhow::Result<u8> {
    let (def, opts) = load(&a.target)?;
    let st = exec::status(&def, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string(&st)?);
        return Ok(0);
    }
    let mut stale = 0;
    for s in &st {
        if s.frozen {
            println!("{}: frozen", s.name);
        } else if !s.changes.is_empty() {
            stale += 1;
            println!("{}: will run", s.name);
            for c in &s.changes {
                println!("    {c}");
            }
        } else if !s.after.is_empty() {
            stale += 1;
            println!("{}: will run if {} change what it reads", s.name, s.after.join(", "));
        } else {
            println!("{}: up to date", s.name);
        }
    }
    if stale == 0 {
        println!("Data and pipelines are up to date.");
    } else {
        println!("{stale} of {} stages would run.", st.len());
    }
    Ok(0)
}

fn draw(a: DagArgs) -> anyhow::Result<u8> {
    let (def, opts) = load(&a.target)?;
    let resolved = def.resolve(&opts.context, false)?;
    let graph = dag::Dag::build(&resolved.stages)?;
    // Colour by status; a pipeline whose inputs are not there yet is drawn without it.
    let info: Vec<dag::NodeInfo> = match exec::status(&def, &exec::Options { targets: Vec::new(), ..opts }) {
        Ok(st) => resolved
            .stages
            .iter()
            .map(|s| st.iter().find(|x| x.name == s.name).map(|x| x.node()).unwrap_or_else(unknown))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "status unknown; drawing the graph alone");
            resolved.stages.iter().map(|_| unknown()).collect()
        }
    };
    let title = format!("pipeline {}", def.file.display());
    let text = match a.format {
        DagFormat::Text => dag::text(&resolved.stages, &graph, &info),
        DagFormat::Dot => dag::dot(&resolved.stages, &graph, &info),
        DagFormat::Svg => dag::svg(&resolved.stages, &graph, &info),
        DagFormat::Html => dag::html(&title, &resolved.stages, &graph, &info),
    };
    match &a.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}

fn unknown() -> dag::NodeInfo {
    dag::NodeInfo { state: dag::NodeState::UpToDate, detail: "status unknown".into() }
}

/// The commit the pipeline file's folder is checked out at, when it is in a git work tree.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run_stages(a: RunArgs) -> anyhow::Result<u8> {
    let (def, mut opts) = load(&a.target)?;
    opts.force_downstream = a.force_downstream;
    if a.force {
        opts.force = if a.target.stages.is_empty() { vec!["*".into()] } else { a.target.stages.clone() };
    }
    opts.default_timeout = match a.timeout_secs {
        Some(t) => Some(
            Duration::try_from_secs_f64(t).ok().filter(|d| !d.is_zero()).context("--timeout-secs must be positive")?,
        ),
        None => None,
    };
    let lock_name =
        def.lock.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline.lock".into());
    let runtime = super::runtime(1)?;
    let tracking = match &a.tracking_uri {
        Some(uri) => {
            let client = mlflow_client::Client::new(uri, super::train::tracking_auth())?;
            let commit = git_commit(&def.dir);
            let (run_id, artifact_uri) = runtime.block_on(async {
                let exp = client.experiment_id(&a.experiment).await?;
                let name = format!(
                    "{}-{}",
                    def.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                    chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
                );
                let file = def.file.display().to_string();
                let mut tags = vec![
                    ("mlflow.source.type", "LOCAL"),
                    ("mlflow.source.name", "factory pipeline"),
                    ("factory.pipeline_file", file.as_str()),
                ];
                if let Some(c) = &commit {
                    tags.push(("mlflow.source.git.commit", c));
                }
                client.create_run(&exp, &name, &tags).await
            })?;
            opts.env.push(("MLFLOW_TRACKING_URI".into(), uri.clone()));
            opts.run_tags.insert("factory.pipeline_run_id".into(), run_id.clone());
            Some((client, run_id, artifact_uri))
        }
        None => None,
    };
    let logs = tempfile::tempdir().context("creating a folder for the stage logs")?;
    opts.log_dir = Some(logs.path().to_path_buf());
    let report = exec::run(&def, &opts, &mut exec::print_progress);
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            if let Some((client, run_id, _)) = &tracking {
                runtime.block_on(async {
                    let _ = client.set_tag(run_id, "factory.error", &e.to_string()).await;
                    let _ = client.end_run(run_id, "FAILED").await;
                });
            }
            return Err(e.into());
        }
    };
    if let Some((client, run_id, artifact_uri)) = &tracking {
        let status = if report.error.is_some() { "FAILED" } else { "FINISHED" };
        runtime.block_on(async {
            record::record(client, run_id, artifact_uri, &report, &lock_name, "").await?;
            client.end_run(run_id, status).await
        })?;
        eprintln!("recorded as run {run_id} in experiment '{}'", a.experiment);
    }
    let ran = report.ran();
    if a.json {
        let out = serde_json::json!({
            "run_id": tracking.as_ref().map(|t| t.1.clone()),
            "stages": report.stages,
            "ran": ran,
            "lock": def.lock,
            "error": report.error.as_ref().map(ToString::to_string),
            "failed_stage": report.error.as_ref().and_then(|e| e.stage()),
        });
        println!("{out}");
    }
    match &report.error {
        None => {
            if ran.is_empty() {
                eprintln!("Data and pipelines are up to date.");
            } else {
                eprintln!("ran {} of {} stages: {}", ran.len(), report.stages.len(), ran.join(", "));
            }
            Ok(0)
        }
        Some(e) => {
            eprintln!("error: {e}");
            let code = match e {
                StageError::Failed { exit_code: Some(c), .. } => u8::try_from(*c).ok().filter(|c| *c != 0).unwrap_or(1),
                _ => 1,
            };
            Ok(code)
        }
    }
}
