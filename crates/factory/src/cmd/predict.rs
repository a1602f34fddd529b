//! `factory predict`: batch scoring, like `mlflow models predict`: resolve a model URI (any
//! flavor `package` loads), check the input against the model's columns, write the
//! predictions as CSV: one column per output value (`prediction`, or `<output>` /
//! `<output>_<j>` for multi-column outputs, `<output>_<label>` for class probabilities). A
//! factory binary classifier writes `probability` and `prediction`, the label by `--threshold`
//! as `factory serve` gives it, so the file is the request log's shape (e.g. a drift reference).

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// models:/name@alias, models:/name/N, runs:/<id>/model, mlflow-artifacts:/..., models:/m-<id> or a local folder.
    #[arg(long, env = "MODEL_URI")]
    pub model_uri: String,
    /// Input rows: a CSV file, or JSON in one of MLflow's scoring formats (by extension).
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV (default: stdout).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[arg(long, env = "MLFLOW_TRACKING_URI", default_value = "http://127.0.0.1:5000")]
    pub tracking_uri: String,
    /// A factory binary classifier's decision threshold: `prediction` is 1 when the probability
    /// is at least this (as `factory serve --threshold`).
    #[arg(long, default_value_t = 0.5, value_parser = super::serve::parse_threshold)]
    pub threshold: f64,
}

/// Loads a package from a local folder or through the tracking server.
pub async fn load_model(
    uri: &str,
    tracking_uri: &str,
) -> anyhow::Result<(package::Package, Option<tempfile::TempDir>)> {
    let parsed = mlflow_client::ModelUri::parse(uri)?;
    if let mlflow_client::ModelUri::Local(dir) = &parsed {
        return Ok((package::load(dir).with_context(|| format!("loading model from {}", dir.display()))?, None));
    }
    let client = mlflow_client::Client::new(tracking_uri, super::train::tracking_auth())?;
    let (artifact_uri, _) = client.resolve(&parsed).await.with_context(|| format!("resolving {uri}"))?;
    let dir = tempfile::tempdir().context("creating a download folder")?;
    client.download_dir(&artifact_uri, dir.path()).await.with_context(|| format!("downloading {artifact_uri}"))?;
    let pkg = package::load(dir.path()).with_context(|| format!("loading model {uri}"))?;
    Ok((pkg, Some(dir)))
}

fn read_input(path: &Path, schema: &learn::Schema) -> anyhow::Result<learn::Frame> {
    let file = std::fs::File::open(path).with_context(|| format!("opening --input {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let frame = if is_json {
        let value: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file))
            .with_context(|| format!("--input {} is not valid JSON", path.display()))?;
        package::input::from_json(value, schema)
    } else {
        package::input::from_csv(std::io::BufReader::new(file), schema)
    };
    frame.with_context(|| format!("--input {} does not match the model's signature", path.display()))
}

pub fn run(args: PredictArgs) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (pkg, _dir) = runtime.block_on(load_model(&args.model_uri, &args.tracking_uri))?;
    let frame = read_input(&args.input, pkg.schema())?;
    let predictions = pkg.model.predict(&frame).context("predicting")?;
    let rows = predictions.rows;
    // One CSV column per output value.
    let mut header = Vec::new();
    let mut cells: Vec<Box<dyn Fn(usize) -> String + '_>> = Vec::new();
    for (t, labels) in predictions.outputs.iter().zip(&predictions.class_labels) {
        let width = predictions.width(t);
        for j in 0..width {
            header.push(match (labels, width) {
                (Some(l), _) => format!("{}_{}", t.name, package::output::label(l, j)),
                (None, 1) => t.name.clone(),
                (None, _) => format!("{}_{j}", t.name),
            });
            cells.push(Box::new(move |r| package::output::text(&t.values, r * width + j)));
        }
    }
    if pkg.model.factory().is_some_and(|m| m.task() == learn::Task::BinaryClassification) {
        // A factory model's one output: the probability of class 1, as f64.
        if let Some(formats::Values::F64(p)) = predictions.outputs.first().map(|t| &t.values) {
            header.push("prediction".into());
            let threshold = args.threshold;
            cells.push(Box::new(move |r| u8::from(p[r] >= threshold).to_string()));
        }
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating --output {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    writeln!(out, "{}", header.join(","))?;
    for r in 0..rows {
        let line: Vec<String> = cells.iter().map(|c| c(r)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    out.flush()?;
    if let Some(p) = &args.output {
        eprintln!("wrote {rows} predictions to {}", p.display());
    }
    Ok(0)
}
