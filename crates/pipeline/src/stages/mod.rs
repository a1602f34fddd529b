//! Stages as code: user commands with declared inputs and outputs, re-run only when what
//! they depend on changed — DVC's `dvc.yaml` / `dvc repro` model, in the pipeline TOML (or
//! read from an existing `dvc.yaml`).
//!
//! ```text
//!  mod.rs      the file → Definition (stages, params sources, vars), validated
//!  values.rs   TOML / YAML / JSON → one value tree; dotted keys; limits for untrusted input
//!  hash.rs     DVC's md5 of files, folders (`.dir`) and globs, with a stat cache
//!  lock.rs     the lock file (DVC's `dvc.lock` schema 2.0) and why a stage is stale
//!  dag.rs      outs → deps edges, order, cycles, outs produced twice; text / DOT / SVG / HTML
//!  exec.rs     status and run: subprocesses streamed, logged, timed out; the lock kept up to date
//!  record.rs   a run in the tracking server: hashes as params, the lock and logs as artifacts
//! ```
//!
//! Architecture Invariant: the lock file only ever records what was true after a command
//! succeeded; a failing or timed-out stage leaves its previous lock entry in place, so the
//! next run retries it.

pub mod dag;
pub mod exec;
pub mod hash;
pub mod lock;
pub mod record;
pub mod values;

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why stages could not be read, checked or run.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The pipeline file (or a params file it names) is wrong; the message says where.
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A command exited non-zero (or was killed).
    #[error("stage '{stage}' failed with {status}; last lines of its stderr:\n{stderr_tail}")]
    Failed { stage: String, status: String, exit_code: Option<i32>, stderr_tail: String },
    #[error("stage '{stage}' timed out after {seconds} s and was killed; last lines of its stderr:\n{stderr_tail}")]
    TimedOut { stage: String, seconds: f64, stderr_tail: String },
    #[error("tracking server: {0}")]
    Tracking(#[from] mlflow_client::ClientError),
}

impl StageError {
    /// The stage a failure belongs to, when it is one stage's failure.
    pub fn stage(&self) -> Option<&str> {
        match self {
            StageError::Failed { stage, .. } | StageError::TimedOut { stage, .. } => Some(stage),
            _ => None,
        }
    }
}

fn invalid(msg: impl Into<String>) -> StageError {
    StageError::Invalid(msg.into())
}

/// A validated set of stages from one file.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The pipeline file.
    pub file: PathBuf,
    /// Its folder: where commands run and what relative paths are relative to.
    pub dir: PathBuf,
    /// The lock file beside it (`dvc.yaml` → `dvc.lock`, `train.toml` → `train.lock`).
    pub lock: PathBuf,
    /// Params file used by keys that name no file (default `params.yaml`, as in DVC).
    pub default_params: String,
    /// `vars` of the file (an object), for `${name}` in `cmd`, `deps`, `outs` and `metrics`.
    pub vars: Value,
    /// In file order.
    pub stages: Vec<Stage>,
}

/// One stage, as declared (`${...}` not yet substituted).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    /// Commands run one after the other with `sh -c` (DVC allows a list).
    pub cmd: Vec<String>,
    /// Files, folders or globs (`data/*.csv`), relative to the pipeline's folder.
    pub deps: Vec<String>,
    pub params: Vec<ParamsUse>,
    /// Outputs, metrics files included (`metric = true`).
    pub outs: Vec<Out>,
    pub desc: Option<String>,
    /// Runs every time (DVC's `always_changed`).
    pub always_changed: bool,
    /// Never runs (DVC's `frozen`).
    pub frozen: bool,
    /// Killed after this long (our addition; DVC has none).
    pub timeout: Option<Duration>,
}

/// Keys a stage reads from one params file; no keys = the whole file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamsUse {
    pub file: String,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub path: String,
    /// Kept across runs (DVC's `persist`); otherwise removed before the command runs.
    pub persist: bool,
    /// A metrics file: its numbers are logged to the run.
    pub metric: bool,
}

impl Definition {
    /// Reads a pipeline file: `*.toml` (our format, loop settings ignored here) or a
    /// `dvc.yaml`-shaped `*.yaml` / `*.yml`.
    pub fn load(file: &Path) -> Result<Definition, StageError> {
        // Absolute, so commands and the paths given to them do not depend on our cwd.
        let file = &std::path::absolute(file).map_err(|source| StageError::Io { path: file.to_path_buf(), source })?;
        let text =
            std::fs::read_to_string(file).map_err(|source| StageError::Io { path: file.to_path_buf(), source })?;
        match values::Format::of(file).map_err(invalid)? {
            values::Format::Toml => Self::parse_toml(&text, file),
            values::Format::Yaml => Self::parse_dvc_yaml(&text, file),
            values::Format::Json => Err(invalid(format!("{}: pipeline files are TOML or dvc.yaml", file.display()))),
        }
        .map_err(|e| match e {
            StageError::Invalid(m) if !m.starts_with(&file.display().to_string()) => {
                invalid(format!("{}: {m}", file.display()))
            }
            e => e,
        })
    }

    /// Stages of a pipeline TOML (top-level `params`, `vars`, `[stages.*]`; other tables are
    /// the loop's and ignored here).
    pub fn parse_toml(text: &str, file: &Path) -> Result<Definition, StageError> {
        let root = values::parse(text, values::Format::Toml).map_err(invalid)?;
        let default_params = match root.get("params") {
            None => "params.yaml".to_string(),
            Some(Value::String(p)) => p.clone(),
            Some(other) => return Err(invalid(format!("params must name a file, got {other}"))),
        };
        let vars = match root.get("vars") {
            None => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(other) => return Err(invalid(format!("vars must be a table, got {other}"))),
        };
        let stages = build_stages(root.get("stages"), &header_order(text))?;
        Definition::new(file, default_params, vars, stages)
    }

    /// Stages of a `dvc.yaml` (the subset that maps onto ours: `cmd`, `deps`, `params`,
    /// `outs`, `metrics`, `plots`, `vars`, `frozen`, `always_changed`, `desc`).
    pub fn parse_dvc_yaml(text: &str, file: &Path) -> Result<Definition, StageError> {
        let root = values::parse(text, values::Format::Yaml).map_err(invalid)?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut vars = serde_json::Map::new();
        let listed = match root.get("vars") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(other) => return Err(invalid(format!("vars must be a list, got {other}"))),
        };
        for v in listed {
            match v {
                Value::Object(o) => vars.extend(o),
                Value::String(path) => match values::read(&dir.join(&path)).map_err(invalid)? {
                    Value::Object(o) => vars.extend(o),
                    _ => return Err(invalid(format!("vars file {path} must hold a mapping"))),
                },
                other => return Err(invalid(format!("vars: {other} is neither a mapping nor a file name"))),
            }
        }
        let order = values::yaml_keys(text, "stages");
        let stages = build_stages(root.get("stages"), &order)?;
        Definition::new(file, "params.yaml".into(), Value::Object(vars), stages)
    }

    fn new(file: &Path, default_params: String, vars: Value, stages: Vec<Stage>) -> Result<Definition, StageError> {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let lock = file.with_extension("lock");
        for s in &stages {
            if s.name.is_empty() || s.name.contains(['/', ':', '@', '\\']) || s.name.starts_with('.') {
                return Err(invalid(format!(
                    "stage name '{}' may not be empty, start with '.' or hold / : @ \\",
                    s.name
                )));
            }
            if s.cmd.is_empty() || s.cmd.iter().any(|c| c.trim().is_empty()) {
                return Err(invalid(format!("stages.{}: cmd is empty", s.name)));
            }
            for p in s.deps.iter().chain(s.outs.iter().map(|o| &o.path)) {
                if p.trim().is_empty() {
                    return Err(invalid(format!("stages.{}: an empty path in deps or outs", s.name)));
                }
            }
            for o in &s.outs {
                if is_glob(&o.path) {
                    return Err(invalid(format!(
                        "stages.{}: out '{}' is a glob; outs must be files or folders",
                        s.name, o.path
                    )));
                }
            }
        }
        let def = Definition { file: file.to_path_buf(), dir, lock, default_params, vars, stages };
        // Interpolate what can be (the loop's FACTORY_* values come at run time) and check
        // the graph now, so a broken file is refused when it is loaded, not when it runs.
        let resolved = def.resolve(&BTreeMap::new(), true)?;
        dag::Dag::build(&resolved.stages)?;
        Ok(def)
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// A copy with `${name}` substituted in `cmd`, `deps` and `outs`, from `context` (values
    /// given by the caller, e.g. the loop's data paths), then `vars`, then the default params
    /// file. With `lenient`, unknown `${FACTORY_*}` names stay as written (load-time check).
    pub fn resolve(&self, context: &BTreeMap<String, String>, lenient: bool) -> Result<Definition, StageError> {
        let params_file = self.dir.join(&self.default_params);
        let params = if params_file.is_file() { values::read(&params_file).ok() } else { None };
        let look = |name: &str| -> Option<String> {
            if let Some(v) = context.get(name) {
                return Some(v.clone());
            }
            let v =
                values::lookup(&self.vars, name).or_else(|| params.as_ref().and_then(|p| values::lookup(p, name)))?;
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
                _ => None,
            }
        };
        let mut out = self.clone();
        for s in &mut out.stages {
            let stage = s.name.clone();
            let sub =
                |text: &str| interpolate(text, &look, lenient).map_err(|e| invalid(format!("stages.{stage}: {e}")));
            s.cmd = s.cmd.iter().map(|c| sub(c)).collect::<Result<_, _>>()?;
            s.deps = s.deps.iter().map(|d| sub(d)).collect::<Result<_, _>>()?;
            for o in &mut s.outs {
                o.path = sub(&o.path)?;
            }
        }
        Ok(out)
    }
}

/// Substitutes `${name}`; `\${` is a literal `${`.
fn interpolate(text: &str, look: &dyn Fn(&str) -> Option<String>, lenient: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('\\') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let Some(end) = rest[i + 2..].find('}') else { return Err(format!("'{text}': unclosed ${{")) };
        let name = rest[i + 2..i + 2 + end].trim();
        match look(name) {
            Some(v) => out.push_str(&v),
            None if lenient && name.starts_with("FACTORY_") => out.push_str(&rest[i..i + 3 + end]),
            None => return Err(format!("'{text}': no var or param named '{name}'")),
        }
        rest = &rest[i + 3 + end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a dep is a glob pattern rather than a path.
pub fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Stage names in the order their `[stages.NAME]` headers appear in a TOML file.
fn header_order(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.trim().strip_prefix("[stages.")?.strip_suffix(']').map(|n| n.trim().trim_matches('"').to_string())
        })
        .collect()
}

/// One stage as written, in either format (TOML and `dvc.yaml` share the keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    cmd: OneOrMany<String>,
    wdir: Option<String>,
    #[serde(default)]
    deps: Vec<String>,
    #[serde(default)]
    params: Vec<ParamsEntry>,
    #[serde(default)]
    outs: Vec<RawOut>,
    metrics: Option<OneOrMany<RawOut>>,
    plots: Option<OneOrMany<RawOut>>,
    desc: Option<String>,
    #[serde(default)]
    always_changed: bool,
    #[serde(default)]
    frozen: bool,
    #[allow(dead_code)]
    meta: Option<Value>,
    /// Ours: DVC has no timeout.
    timeout_secs: Option<f64>,
}

/// The `stages` table/mapping → stages, in `order` (names missing from it go last).
fn build_stages(stages: Option<&Value>, order: &[String]) -> Result<Vec<Stage>, StageError> {
    let map = match stages {
        None => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(invalid(format!("stages must be a table of stages, got {other}"))),
    };
    let mut out = Vec::new();
    for (name, body) in map {
        if body.get("foreach").is_some() || body.get("matrix").is_some() {
            return Err(invalid(format!(
                "stages.{name}: foreach/matrix stages are not supported; list the stages one by one"
            )));
        }
        let s: RawStage = serde_json::from_value(body.clone()).map_err(|e| invalid(format!("stages.{name}: {e}")))?;
        if s.wdir.as_deref().is_some_and(|w| !matches!(w, "." | "./" | "")) {
            return Err(invalid(format!(
                "stages.{name}: wdir is not supported; use paths relative to the pipeline file"
            )));
        }
        let timeout = match s.timeout_secs {
            None => None,
            Some(t) => Some(Duration::try_from_secs_f64(t).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                invalid(format!("stages.{name}.timeout_secs must be a positive number of seconds, got {t}"))
            })?),
        };
        let mut outs = Vec::new();
        for (list, metric) in [
            (s.outs, false),
            (s.metrics.map(OneOrMany::into_vec).unwrap_or_default(), true),
            (s.plots.map(OneOrMany::into_vec).unwrap_or_default(), false),
        ] {
            for o in list {
                outs.push(o.into_out(metric)?);
            }
        }
        out.push(Stage {
            cmd: s.cmd.into_vec(),
            deps: s.deps,
            params: params_uses(name, s.params)?,
            outs,
            desc: s.desc,
            always_changed: s.always_changed,
            frozen: s.frozen,
            timeout,
            name: name.clone(),
        });
    }
    out.sort_by_key(|s| order.iter().position(|n| n == &s.name).unwrap_or(usize::MAX));
    Ok(out)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `"key"` (from the default params file) or `{ "file.yaml" = ["key", ...] }` (`[]` or null:
/// the whole file), as in `dvc.yaml`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ParamsEntry {
    Key(String),
    Files(BTreeMap<String, Option<Vec<String>>>),
}

fn params_uses(stage: &str, entries: Vec<ParamsEntry>) -> Result<Vec<ParamsUse>, StageError> {
    let mut by_file: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for e in entries {
        match e {
            ParamsEntry::Key(k) if k.trim().is_empty() => {
                return Err(invalid(format!("stages.{stage}.params: an empty key")))
            }
            ParamsEntry::Key(k) => by_file.entry(None).or_default().push(k),
            ParamsEntry::Files(m) => {
                for (file, keys) in m {
                    values::Format::of(Path::new(&file)).map_err(|e| invalid(format!("stages.{stage}.params: {e}")))?;
                    by_file.entry(Some(file)).or_default().extend(keys.unwrap_or_default());
                }
            }
        }
    }
    Ok(by_file.into_iter().map(|(file, keys)| ParamsUse { file: file.unwrap_or_default(), keys }).collect())
}

/// An out: `"path"`, `{ path = "...", persist = true }` (TOML) or `{path: {persist: true,
/// cache: false}}` (`dvc.yaml`).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawOut {
    Path(String),
    Table {
        path: String,
        #[serde(default)]
        persist: bool,
    },
    Options(BTreeMap<String, Option<serde_json::Map<String, Value>>>),
}

impl RawOut {
    fn into_out(self, metric: bool) -> Result<Out, StageError> {
        match self {
            RawOut::Path(path) => Ok(Out { path, persist: false, metric }),
            RawOut::Table { path, persist } => Ok(Out { path, persist, metric }),
            RawOut::Options(m) if m.len() == 1 => {
                let (path, opts) = m.into_iter().next().expect("one entry");
                let persist = opts.as_ref().and_then(|o| o.get("persist")).and_then(Value::as_bool).unwrap_or(false);
                Ok(Out { path, persist, metric })
            }
            RawOut::Options(_) => Err(invalid("an out entry must name exactly one path")),
        }
    }
}

#[cfg(test)]
mod tests;
