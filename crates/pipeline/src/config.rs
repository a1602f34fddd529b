//! Pipeline definitions: one TOML file per pipeline, read from a folder (the seed's
//! git-synced DAG folder) and validated once into a typed [`Pipeline`].
//!
//! Layers, lowest first: built-in defaults → the file → command-line overrides
//! ([`Overrides`], applied by the binary). A file that does not parse or validate is
//! reported by [`load_dir`] and never replaces the last good version of that pipeline.
//!
//! ```toml
//! steps = ["drift", "retrain", "promote", "rollout"]   # a prefix of this list
//!
//! [schedule]
//! cron = "0 2 * * *"      # five fields, minute first
//! timezone = "UTC"        # any IANA name, e.g. "Europe/Paris"
//! missed = "run-once"     # or "skip"
//!
//! [drift]
//! reference = "data/housing.csv"   # the training data
//! request_logs = ["requests"]      # `factory serve --request-log` folders
//! psi_threshold = 0.2
//! drift_share = 0.3
//! min_rows = 200
//!
//! [retrain]
//! data = "data/housing.csv"       # default: the reference
//! labels = "labels"               # folder of labelled CSVs, appended when present
//! target = "median_house_value"
//! pipeline = "train"              # optional: retrain with the user's stages (below) instead
//!
//! [stages.train]                  # DVC-style stages, see `stages`
//! cmd = "python3 train.py"
//! deps = ["train.py", "${FACTORY_TRAINING_DATA}"]
//!
//! [rollout]
//! mode = "hot-reload"             # or "blue-green" (with `gateway`)
//! serving = "http://127.0.0.1:8080"
//! serving_admin = "http://127.0.0.1:8081"  # serve --admin-port (blue-green: blue_admin, green_admin)
//! ```

use crate::stages::Definition;
use crate::PipelineError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// The steps of a cycle, in the only order they can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Compare the request log since the last check with the reference.
    Drift,
    /// On significant drift, train a challenger and score it against the champion.
    Retrain,
    /// Move the production alias (and stage) to a winning challenger.
    Promote,
    /// Roll the promoted version out to the serving side.
    Rollout,
}

/// What to do about scheduled times that passed while the loop was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Run one cycle at start-up when at least one scheduled time was missed (never more
    /// than one, however many were missed).
    RunOnce,
    /// Wait for the next scheduled time.
    Skip,
}

/// How a promoted version reaches the serving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutMode {
    /// `factory serve` follows the production alias; the loop asks it to reload and waits
    /// until its `/health` reports the new version.
    HotReload,
    /// Two `factory serve` behind `factory gateway`, each following an alias named after its
    /// colour; the idle colour gets the new version, then the gateway switches to it.
    BlueGreen,
}

/// When a cycle runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: croner::Cron,
    pub expression: String,
    pub timezone: chrono_tz::Tz,
    pub missed: Missed,
}

impl Schedule {
    /// Parses a five-field cron expression in a timezone.
    pub fn new(expression: &str, timezone: &str, missed: Missed) -> Result<Schedule, String> {
        if expression.split_whitespace().count() != 5 {
            return Err(format!(
                "schedule.cron '{expression}' must have five fields (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = croner::Cron::from_str(expression.trim())
            .map_err(|e| format!("schedule.cron '{expression}' is not a cron expression: {e}"))?;
        let timezone = chrono_tz::Tz::from_str(timezone.trim()).map_err(|_| {
            format!("schedule.timezone '{timezone}' is not an IANA timezone name (e.g. UTC, Europe/Paris)")
        })?;
        Ok(Schedule { cron, expression: expression.trim().to_string(), timezone, missed })
    }

    /// The first scheduled time strictly after `after`.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let t = chrono::DateTime::<chrono::Utc>::from(after).with_timezone(&self.timezone);
        let next = self.cron.find_next_occurrence(&t, false).ok()?;
        Some(SystemTime::from(next.with_timezone(&chrono::Utc)))
    }
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    /// Where it came from (`None` when built from flags alone).
    pub source: Option<PathBuf>,
    pub steps: Vec<Step>,
    pub schedule: Schedule,
    pub tracking_uri: String,
    /// Experiment that records every cycle as a run.
    pub experiment: String,
    pub drift: DriftSettings,
    pub retrain: RetrainSettings,
    pub rollout: RolloutSettings,
    pub webhook: WebhookSettings,
    /// Where the file came from in git, when it did (recorded in every cycle's run).
    pub revision: Option<Revision>,
}

/// A git source's URL (credentials never included) and the commit a pipeline was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub url: String,
    pub commit: String,
}

impl Pipeline {
    pub fn has(&self, step: Step) -> bool {
        self.steps.contains(&step)
    }
}

#[derive(Debug, Clone)]
pub struct DriftSettings {
    /// The reference data set (the training data); `None` = the default data source.
    pub reference: Option<String>,
    pub request_logs: Vec<PathBuf>,
    pub columns: Option<Vec<String>>,
    pub psi_threshold: f64,
    pub drift_share: f64,
    /// Fewer new rows than this: the check is recorded as skipped.
    pub min_rows: u64,
}

#[derive(Debug, Clone)]
pub struct RetrainSettings {
    /// Training data when no labels arrived (`None`: the reference).
    pub data: Option<String>,
    /// Folder of labelled CSVs (features + target) appended to the training data.
    pub labels: Option<PathBuf>,
    pub target: String,
    pub experiment: String,
    pub model_name: String,
    /// The champion's alias, moved on promotion.
    pub alias: String,
    /// Stage given on promotion (MLflow's `Production`), if any.
    pub stage: Option<String>,
    pub margin: f64,
    pub seed: u64,
    pub max_iter: usize,
    pub cache_dir: Option<PathBuf>,
    /// Retrain with the user's stages instead of the built-in GBM.
    pub stages: Option<UserStages>,
}

/// `retrain.pipeline`: which stages retrain, from which file.
#[derive(Debug, Clone)]
pub struct UserStages {
    pub definition: std::sync::Arc<Definition>,
    /// Run (forced) with everything they depend on (cached as usual).
    pub targets: Vec<String>,
    /// For stages without their own `timeout_secs`.
    pub timeout: Duration,
    /// Share of the new labelled rows (or, without labels, of all rows) kept out of the
    /// training data to judge champion and challenger.
    pub holdout_fraction: f64,
}

#[derive(Debug, Clone)]
pub struct RolloutSettings {
    pub mode: RolloutMode,
    /// `factory serve` base URL (hot-reload).
    pub serving: Option<String>,
    /// `factory gateway` admin URL (blue-green).
    pub gateway: Option<String>,
    /// serve's admin listener (`--admin-port`) for hot reload; without it the rollout waits for
    /// serve's own registry poll.
    pub serving_admin: Option<String>,
    /// The blue and green serves' admin listeners (blue-green), same fallback.
    pub blue_admin: Option<String>,
    pub green_admin: Option<String>,
    /// Bearer token for the admin planes (from the binary's `--admin-token-file` /
    /// `FACTORY_ADMIN_TOKEN`, never from the pipeline file).
    pub admin_token: Option<String>,
    /// How long the new version may take to be served.
    pub timeout: Duration,
    /// After the rollout, watch health and errors this long.
    pub window: Duration,
    /// Largest share of failed requests on the new version within the window.
    pub error_budget: f64,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    pub url: Option<String>,
    /// Name of the secret holding the bearer token (an environment variable of the binary).
    pub token_env: String,
    pub attempts: u32,
    pub event_type: String,
}

// The file, as written. Every field optional; `deny_unknown_fields` catches typos.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    steps: Option<Vec<Step>>,
    // Stages (read again by `Definition::parse_toml`; named here so they are not unknown).
    #[allow(dead_code)]
    params: Option<String>,
    #[allow(dead_code)]
    vars: Option<toml::Table>,
    stages: Option<toml::Table>,
    tracking_uri: Option<String>,
    experiment: Option<String>,
    #[serde(default)]
    schedule: ScheduleFile,
    #[serde(default)]
    drift: DriftFile,
    #[serde(default)]
    retrain: RetrainFile,
    #[serde(default)]
    rollout: RolloutFile,
    #[serde(default)]
    webhook: WebhookFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    cron: Option<String>,
    timezone: Option<String>,
    missed: Option<Missed>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DriftFile {
    reference: Option<String>,
    request_logs: Option<Vec<PathBuf>>,
    columns: Option<Vec<String>>,
    psi_threshold: Option<f64>,
    drift_share: Option<f64>,
    min_rows: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetrainFile {
    data: Option<String>,
    labels: Option<PathBuf>,
    target: Option<String>,
    experiment: Option<String>,
    model_name: Option<String>,
    alias: Option<String>,
    stage: Option<String>,
    margin: Option<f64>,
    seed: Option<u64>,
    max_iter: Option<usize>,
    cache_dir: Option<PathBuf>,
    /// Stage(s) that retrain: `pipeline = "train"` or `["train", "evaluate"]`.
    pipeline: Option<Targets>,
    /// File the stages are in (a pipeline TOML or a `dvc.yaml`); default: this file.
    pipeline_file: Option<PathBuf>,
    stage_timeout_secs: Option<f64>,
    holdout_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Targets {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RolloutFile {
    mode: Option<RolloutMode>,
    serving: Option<String>,
    gateway: Option<String>,
    serving_admin: Option<String>,
    blue_admin: Option<String>,
    green_admin: Option<String>,
    timeout_secs: Option<f64>,
    window_secs: Option<f64>,
    error_budget: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    url: Option<String>,
    token_env: Option<String>,
    attempts: Option<u32>,
    event_type: Option<String>,
}

/// Command-line values that win over the file (the binary fills them from flags/env).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub tracking_uri: Option<String>,
    pub webhook: Option<String>,
    pub serving: Option<String>,
    pub gateway: Option<String>,
    pub serving_admin: Option<String>,
    pub blue_admin: Option<String>,
    pub green_admin: Option<String>,
    pub admin_token: Option<String>,
    pub reference: Option<String>,
    pub request_logs: Vec<PathBuf>,
    pub labels: Option<PathBuf>,
    pub model_name: Option<String>,
}

/// Parses and validates one pipeline file's text. Relative paths are taken relative to `base`.
pub fn parse(name: &str, text: &str, base: &Path, overrides: &Overrides) -> Result<Pipeline, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    build(name, file, Some(text), base, overrides)
}

/// The pipeline built from defaults and overrides alone (no file).
pub fn from_overrides(overrides: &Overrides) -> Result<Pipeline, String> {
    build("default", File::default(), None, Path::new("."), overrides)
}

fn build(name: &str, f: File, text: Option<&str>, base: &Path, o: &Overrides) -> Result<Pipeline, String> {
    let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let rel_str = |s: String| {
        if s.contains("://") || Path::new(&s).is_absolute() {
            s
        } else {
            base.join(s).to_string_lossy().into_owned()
        }
    };

    let steps = f.steps.unwrap_or_else(|| vec![Step::Drift, Step::Retrain, Step::Promote, Step::Rollout]);
    let all = [Step::Drift, Step::Retrain, Step::Promote, Step::Rollout];
    if steps.is_empty() || steps[..] != all[..steps.len().min(all.len())] {
        return Err(format!(
            "steps {steps:?} must be a prefix of [\"drift\", \"retrain\", \"promote\", \"rollout\"] (each step needs the ones before it)"
        ));
    }

    let schedule = Schedule::new(
        o.schedule.as_deref().or(f.schedule.cron.as_deref()).unwrap_or("0 2 * * *"),
        o.timezone.as_deref().or(f.schedule.timezone.as_deref()).unwrap_or("UTC"),
        f.schedule.missed.unwrap_or(Missed::RunOnce),
    )?;

    let request_logs =
        if o.request_logs.is_empty() { f.drift.request_logs.unwrap_or_default() } else { o.request_logs.clone() };
    let drift = DriftSettings {
        reference: o.reference.clone().or(f.drift.reference.map(rel_str)),
        request_logs: request_logs.into_iter().map(rel).collect(),
        columns: f.drift.columns,
        psi_threshold: f.drift.psi_threshold.unwrap_or(0.2),
        drift_share: f.drift.drift_share.unwrap_or(0.3),
        min_rows: f.drift.min_rows.unwrap_or(200),
    };
    if drift.request_logs.is_empty() {
        return Err("drift.request_logs: name at least one `factory serve --request-log` folder".into());
    }
    if !(drift.psi_threshold.is_finite() && drift.psi_threshold > 0.0) {
        return Err(format!("drift.psi_threshold must be a positive number, got {}", drift.psi_threshold));
    }
    if !(0.0..=1.0).contains(&drift.drift_share) {
        return Err(format!("drift.drift_share must be between 0 and 1, got {}", drift.drift_share));
    }

    let r = f.retrain;
    let stages = user_stages(name, &r, f.stages.is_some(), text, base)?;
    let retrain = RetrainSettings {
        data: r.data.map(rel_str),
        labels: o.labels.clone().or(r.labels.map(rel)),
        target: r.target.unwrap_or_else(|| "median_house_value".into()),
        experiment: r.experiment.unwrap_or_else(|| "california-housing".into()),
        model_name: o.model_name.clone().or(r.model_name).unwrap_or_else(|| "california-housing-model".into()),
        alias: r.alias.unwrap_or_else(|| "prod".into()),
        stage: match r.stage.as_deref() {
            Some("") | Some("none") => None,
            Some(s) => Some(s.to_string()),
            None => Some("Production".into()),
        },
        margin: r.margin.unwrap_or(0.0),
        seed: r.seed.unwrap_or(42),
        max_iter: r.max_iter.unwrap_or(100),
        cache_dir: r.cache_dir.map(rel),
        stages,
    };
    if !(0.0..1.0).contains(&retrain.margin) {
        return Err(format!("retrain.margin must be in [0, 1), got {}", retrain.margin));
    }
    if retrain.max_iter == 0 {
        return Err("retrain.max_iter must be positive".into());
    }

    let ro = f.rollout;
    let secs = |v: Option<f64>, default: f64, what: &str| -> Result<Duration, String> {
        let v = v.unwrap_or(default);
        Duration::try_from_secs_f64(v).map_err(|_| format!("rollout.{what} must be a non-negative number, got {v}"))
    };
    let rollout = RolloutSettings {
        mode: ro.mode.unwrap_or(if o.gateway.is_some() || ro.gateway.is_some() {
            RolloutMode::BlueGreen
        } else {
            RolloutMode::HotReload
        }),
        serving: o.serving.clone().or(ro.serving),
        gateway: o.gateway.clone().or(ro.gateway),
        serving_admin: o.serving_admin.clone().or(ro.serving_admin),
        blue_admin: o.blue_admin.clone().or(ro.blue_admin),
        green_admin: o.green_admin.clone().or(ro.green_admin),
        admin_token: o.admin_token.clone(),
        timeout: secs(ro.timeout_secs, 60.0, "timeout_secs")?,
        window: secs(ro.window_secs, 10.0, "window_secs")?,
        error_budget: ro.error_budget.unwrap_or(0.01),
    };
    if !(0.0..=1.0).contains(&rollout.error_budget) {
        return Err(format!("rollout.error_budget must be between 0 and 1, got {}", rollout.error_budget));
    }
    if steps.contains(&Step::Rollout) {
        match rollout.mode {
            RolloutMode::HotReload if rollout.serving.is_none() => {
                return Err("rollout.serving (the `factory serve` URL) is needed for a hot-reload rollout".into())
            }
            RolloutMode::BlueGreen if rollout.gateway.is_none() => {
                return Err(
                    "rollout.gateway (the `factory gateway` admin URL) is needed for a blue-green rollout".into()
                )
            }
            _ => {}
        }
    }

    let w = f.webhook;
    let webhook = WebhookSettings {
        url: o.webhook.clone().or(w.url),
        token_env: w.token_env.unwrap_or_else(|| "GITHUB_TOKEN".into()),
        attempts: w.attempts.unwrap_or(5).max(1),
        event_type: w.event_type.unwrap_or_else(|| "drift-detected".into()),
    };
    if let Some(url) = &webhook.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("webhook.url '{url}' must be an http(s) URL"));
        }
    }

    Ok(Pipeline {
        name: name.to_string(),
        source: None,
        steps,
        schedule,
        tracking_uri: o.tracking_uri.clone().or(f.tracking_uri).unwrap_or_else(|| "http://127.0.0.1:5000".into()),
        experiment: f.experiment.unwrap_or_else(|| "drift-monitoring".into()),
        drift,
        retrain,
        rollout,
        webhook,
        revision: None,
    })
}

/// `retrain.pipeline`: the stages are read and checked now, so a broken definition is
/// refused like any other invalid file (the last good version keeps running).
fn user_stages(
    name: &str,
    r: &RetrainFile,
    has_stages: bool,
    text: Option<&str>,
    base: &Path,
) -> Result<Option<UserStages>, String> {
    let definition = match (&r.pipeline_file, text) {
        (Some(file), _) => {
            let path = if file.is_absolute() { file.clone() } else { base.join(file) };
            Some(Definition::load(&path).map_err(|e| format!("retrain.pipeline_file: {e}"))?)
        }
        (None, Some(text)) if has_stages || r.pipeline.is_some() => {
            let file = std::path::absolute(base.join(format!("{name}.toml"))).map_err(|e| e.to_string())?;
            Some(Definition::parse_toml(text, &file).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let Some(targets) = &r.pipeline else {
        if r.pipeline_file.is_some() || r.stage_timeout_secs.is_some() || r.holdout_fraction.is_some() {
            return Err("retrain.pipeline (the stage that retrains) is needed with retrain.pipeline_file, stage_timeout_secs or holdout_fraction".into());
        }
        return Ok(None);
    };
    let definition = definition.ok_or("retrain.pipeline names stages, but this file has no [stages.*]")?;
    let targets = match targets {
        Targets::One(t) => vec![t.clone()],
        Targets::Many(t) => t.clone(),
    };
    if targets.is_empty() {
        return Err("retrain.pipeline: name at least one stage".into());
    }
    for t in &targets {
        if definition.stage(t).is_none() {
            let names: Vec<&str> = definition.stages.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("retrain.pipeline: no stage named '{t}' (stages: {})", names.join(", ")));
        }
    }
    let secs = r.stage_timeout_secs.unwrap_or(3600.0);
    let timeout = Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("retrain.stage_timeout_secs must be a positive number, got {secs}"))?;
    let holdout_fraction = r.holdout_fraction.unwrap_or(0.2);
    if !(holdout_fraction > 0.0 && holdout_fraction < 1.0) {
        return Err(format!("retrain.holdout_fraction must be between 0 and 1, got {holdout_fraction}"));
    }
    Ok(Some(UserStages { definition: std::sync::Arc::new(definition), targets, timeout, holdout_fraction }))
}

/// A file's content as last seen, and what became of it.
#[derive(Debug, Clone)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
}

/// The pipelines of a folder, reloaded when their files change. A file that fails to
/// parse keeps its last good version running and is reported once per change.
#[derive(Debug, Default)]
pub struct Folder {
    dir: PathBuf,
    overrides: Overrides,
    /// The git commit `dir` holds, given to every pipeline read from it.
    revision: Option<Revision>,
    seen: BTreeMap<PathBuf, Seen>,
    /// Last good pipeline per name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Problems found by the last [`Folder::refresh`], one line per file.
    pub errors: Vec<String>,
}

impl Folder {
    pub fn new(dir: PathBuf, overrides: Overrides) -> Folder {
        Folder { dir, overrides, ..Folder::default() }
    }

    /// Reads from `dir` (a new git commit's checkout) from now on: every file is read again
    /// at the next refresh, and what parses carries `revision`.
    pub fn switch(&mut self, dir: PathBuf, revision: Option<Revision>) {
        self.dir = dir;
        self.revision = revision;
        self.seen.clear();
    }

    /// Commits the loaded pipelines were read at (their checkouts must stay).
    pub fn commits(&self) -> Vec<&str> {
        self.pipelines.values().filter_map(|p| p.revision.as_ref().map(|r| r.commit.as_str())).collect()
    }

    /// Re-reads changed `*.toml` files; returns the names of pipelines added, changed or removed.
    pub fn refresh(&mut self) -> Result<Vec<String>, PipelineError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|source| PipelineError::Io { path: self.dir.clone(), source })?;
        let mut present = Vec::new();
        let mut changed = Vec::new();
        self.errors.clear();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
            present.push(name.clone());
            let meta = entry.metadata().ok();
            let seen =
                Seen { modified: meta.as_ref().and_then(|m| m.modified().ok()), len: meta.map_or(0, |m| m.len()) };
            if self.seen.get(&path).is_some_and(|s| s.modified == seen.modified && s.len == seen.len) {
                continue;
            }
            self.seen.insert(path.clone(), seen);
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse(&name, &text, &self.dir, &self.overrides));
            match parsed {
                Ok(mut p) => {
                    p.source = Some(path.clone());
                    p.revision = self.revision.clone();
                    let commit = self.revision.as_ref().map(|r| r.commit.as_str()).unwrap_or("-");
                    tracing::info!(pipeline = %name, file = %path.display(), commit = %commit, "pipeline loaded");
                    self.pipelines.insert(name.clone(), p);
                    changed.push(name);
                }
                Err(e) => {
                    let kept =
                        if self.pipelines.contains_key(&name) { "; the last good version keeps running" } else { "" };
                    let at = self.revision.as_ref().map(|r| format!(" (commit {})", r.commit)).unwrap_or_default();
                    let msg = format!("{}{at}: {e}{kept}", path.display());
                    tracing::error!("invalid pipeline file {msg}");
                    self.errors.push(msg);
                }
            }
        }
        let gone: Vec<String> = self.pipelines.keys().filter(|k| !present.contains(k)).cloned().collect();
        for name in gone {
            tracing::info!(pipeline = %name, "pipeline file removed");
            self.pipelines.remove(&name);
            self.seen.retain(|p, _| p.file_stem().and_then(|s| s.to_str()) != Some(name.as_str()));
            changed.push(name);
        }
        Ok(changed)
    }
}

/// Loads a folder once (for `--once` and tests).
pub fn load_dir(dir: &Path, overrides: &Overrides) -> Result<Folder, PipelineError> {
    let mut folder = Folder::new(dir.to_path_buf(), overrides.clone());
    folder.refresh()?;
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, expect: &str) {
        let err = parse("p", text, Path::new("/base"), &Overrides::default()).unwrap_err();
        assert!(err.contains(expect), "{err:?} should mention {expect:?}");
    }

    const MIN: &str = "[drift]\nrequest_logs = [\"req\"]\n[rollout]\nserving = \"http://s\"\n";

    #[test]
    fn defaults_and_relative_paths() {
        let p = parse("p", MIN, Path::new("/base"), &Overrides::default()).unwrap();
        assert_eq!(p.steps, vec![Step::Drift, Step::Retrain, Step::Promote, Step::Rollout]);
        assert_eq!(p.schedule.expression, "0 2 * * *");
        assert_eq!(p.drift.request_logs, vec![PathBuf::from("/base/req")]);
        assert_eq!(p.retrain.alias, "prod");
        assert_eq!(p.retrain.stage.as_deref(), Some("Production"));
        assert_eq!(p.rollout.mode, RolloutMode::HotReload);
        assert_eq!(p.experiment, "drift-monitoring");
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            schedule: Some("*/5 * * * *".into()),
            gateway: Some("http://g".into()),
            webhook: Some("http://hook".into()),
            ..Overrides::default()
        };
        let p = parse("p", MIN, Path::new("/base"), &o).unwrap();
        assert_eq!(p.schedule.expression, "*/5 * * * *");
        assert_eq!(p.rollout.mode, RolloutMode::BlueGreen);
        assert_eq!(p.webhook.url.as_deref(), Some("http://hook"));
    }

    #[test]
    fn invalid_files_name_the_problem() {
        check_err("steps = [\"retrain\"]\n", "prefix");
        check_err("[schedule]\ncron = \"every day\"\n", "schedule.cron");
        check_err("[schedule]\ncron = \"61 * * * *\"\n", "not a cron expression");
        check_err("[schedule]\ncron = \"0 0 2 * * *\"\n", "five fields");
        check_err("[schedule]\ntimezone = \"Mars/Olympus\"\n", "schedule.timezone");
        check_err("[drift]\nrequest_logs = []\n", "request_logs");
        check_err(&format!("{MIN}[webhook]\nurl = \"ftp://x\"\n"), "webhook.url");
        check_err(&format!("{MIN}[drift2]\n"), "drift2");
        check_err("[drift]\nrequest_logs = [\"r\"]\n", "rollout.serving");
        check_err("[drift]\nrequest_logs = [\"r\"]\n[rollout]\nmode = \"blue-green\"\n", "rollout.gateway");
        check_err(&format!("{MIN}[retrain]\nmargin = 2\n"), "margin");
    }

    #[test]
    fn schedule_in_a_timezone() {
        let s = Schedule::new("0 2 * * *", "Europe/Paris", Missed::Skip).unwrap();
        // 2026-07-01T00:00:00Z is 02:00 in Paris (CEST): the next run is the next day.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_782_864_000);
        let next = s.next_after(t).unwrap();
        assert_eq!(next.duration_since(t).unwrap(), Duration::from_secs(24 * 3600));
        let utc = Schedule::new("0 2 * * *", "UTC", Missed::Skip).unwrap();
        assert_eq!(utc.next_after(t).unwrap().duration_since(t).unwrap(), Duration::from_secs(2 * 3600));
    }

    #[test]
    fn folder_keeps_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daily.toml");
        std::fs::write(&file, MIN).unwrap();
        let mut folder = load_dir(dir.path(), &Overrides::default()).unwrap();
        assert!(folder.pipelines.contains_key("daily"));
        std::fs::write(&file, format!("{MIN}\n[schedule]\ncron = \"nope\"\n")).unwrap();
        folder.refresh().unwrap();
        assert_eq!(folder.errors.len(), 1, "{:?}", folder.errors);
        assert!(folder.errors[0].contains("last good version"), "{:?}", folder.errors);
        assert_eq!(folder.pipelines["daily"].schedule.expression, "0 2 * * *");
        std::fs::remove_file(&file).unwrap();
        folder.refresh().unwrap();
        assert!(folder.pipelines.is_empty());
    }

    mod props {
        //! Pipeline files come from git: any text is a pipeline or an error, never a panic, and
        //! an accepted schedule answers its next time promptly.

        use super::*;
        use proptest::prelude::*;

        /// Lines over the file's real tables and keys, with values of every TOML kind.
        fn line() -> impl Strategy<Value = String> {
            let value = prop_oneof![
                Just("\"req\"".to_string()),
                Just("[\"req\"]".to_string()),
                Just("\"http://s\"".to_string()),
                Just("\"0 2 * * *\"".to_string()),
                Just("\"*/5 * 31 2 *\"".to_string()),
                Just("\"59 23 29 2 1\"".to_string()),
                Just("\"Europe/Paris\"".to_string()),
                Just("[\"drift\", \"retrain\"]".to_string()),
                Just("\"skip\"".to_string()),
                Just("\"blue-green\"".to_string()),
                any::<i64>().prop_map(|i| i.to_string()),
                any::<f64>().prop_map(|f| format!("{f:?}")),
                Just("nan".to_string()),
                Just("-inf".to_string()),
                Just("true".to_string()),
                Just("{ a = 1 }".to_string()),
                "\"[ -~&&[^\"\\\\]]{0,12}\"",
            ];
            let key = prop_oneof![
                Just("steps"),
                Just("cron"),
                Just("timezone"),
                Just("missed"),
                Just("request_logs"),
                Just("reference"),
                Just("columns"),
                Just("psi_threshold"),
                Just("drift_share"),
                Just("min_rows"),
                Just("margin"),
                Just("max_iter"),
                Just("seed"),
                Just("pipeline"),
                Just("stage_timeout_secs"),
                Just("holdout_fraction"),
                Just("mode"),
                Just("serving"),
                Just("gateway"),
                Just("timeout_secs"),
                Just("window_secs"),
                Just("error_budget"),
                Just("url"),
                Just("attempts"),
                Just("cmd"),
                Just("deps"),
                Just("outs"),
                Just("bogus"),
            ];
            prop_oneof![
                prop_oneof![
                    Just("[schedule]"),
                    Just("[drift]"),
                    Just("[retrain]"),
                    Just("[rollout]"),
                    Just("[webhook]"),
                    Just("[stages.train]"),
                    Just("[vars]"),
                    Just("[[x]]"),
                ]
                .prop_map(str::to_string),
                (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
                "\\PC{0,20}",
            ]
        }

        fn check(text: &str) {
            if let Ok(p) = parse("p", text, Path::new("/nonexistent/factory-props"), &Overrides::default()) {
                let _ = p.schedule.next_after(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
            }
        }

        proptest! {
            #[test]
            fn any_text_is_a_pipeline_or_an_error(text in "\\PC{0,300}") {
                check(&text);
            }

            #[test]
            fn pipeline_shaped_toml_is_a_pipeline_or_an_error(lines in prop::collection::vec(line(), 0..14)) {
                check(&format!("{MIN}\n{}", lines.join("\n")));
                check(&lines.join("\n"));
            }
        }
    }
}
