//! The pipeline file as written (every field optional, unknown keys refused) and its
//! validation, with the overrides on top, into a [`Pipeline`].

use super::{
    DriftSettings, Missed, Overrides, Pipeline, RetrainSettings, RolloutMode, RolloutSettings, Schedule, Step, Trigger,
    UserStages, WebhookSettings,
};
use crate::stages::Definition;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

// Every field optional; `deny_unknown_fields` catches typos.

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
    sketches: Option<Vec<String>>,
    sketch_service: Option<String>,
    columns: Option<Vec<String>>,
    psi_threshold: Option<f64>,
    drift_share: Option<f64>,
    min_rows: Option<u64>,
    triggers: Option<Vec<Trigger>>,
    labels: Option<PathBuf>,
    performance_drop: Option<f64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum TaskName {
    Regression,
    Classification,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum ModelName {
    Gbm,
    Linear,
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
    task: Option<TaskName>,
    model: Option<ModelName>,
    text_columns: Option<Vec<String>>,
    positive_label: Option<String>,
    metric: Option<String>,
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
    /// `[rollout.canary]`: the gateway's canary request (steps, interval_secs, max_error_rate, ...).
    canary: Option<admin_api::CanaryRequest>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    url: Option<String>,
    token_env: Option<String>,
    attempts: Option<u32>,
    event_type: Option<String>,
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
        sketches: if o.sketches.is_empty() { f.drift.sketches.unwrap_or_default() } else { o.sketches.clone() },
        sketch_service: o.sketch_service.clone().or(f.drift.sketch_service),
        columns: f.drift.columns,
        psi_threshold: f.drift.psi_threshold.unwrap_or(0.2),
        drift_share: f.drift.drift_share.unwrap_or(0.3),
        min_rows: f.drift.min_rows.unwrap_or(200),
        triggers: f.drift.triggers.unwrap_or_else(|| vec![Trigger::Data]),
        labels_by_id: f.drift.labels.map(rel),
        performance_drop: f.drift.performance_drop.unwrap_or(0.05),
    };
    if drift.triggers.is_empty() {
        return Err("drift.triggers: name at least one of data, prediction, performance, estimated_performance".into());
    }
    if !(0.0..=1.0).contains(&drift.performance_drop) {
        return Err(format!("drift.performance_drop must be between 0 and 1, got {}", drift.performance_drop));
    }
    let online = !drift.sketches.is_empty() || drift.sketch_service.is_some();
    match (drift.request_logs.is_empty(), online) {
        (true, false) => {
            return Err("drift: name the production data, either request_logs (`factory serve --request-log` \
                        folders) or sketches / sketch_service (serve replicas, online drift)"
                .into())
        }
        (false, true) => {
            return Err("drift: request_logs and sketches / sketch_service are two sources of the same rows; \
                        name one"
                .into())
        }
        _ => {}
    }
    for url in &drift.sketches {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("drift.sketches: '{url}' is not an http(s) URL of a serve replica"));
        }
    }
    if let Some(service) = &drift.sketch_service {
        if service.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()) {
            return Err(format!("drift.sketch_service: '{service}' is not host:port (e.g. a headless Service name)"));
        }
    }
    if online && f.retrain.pipeline.is_some() {
        return Err("retrain.pipeline: your stages read the production rows as a file (FACTORY_CURRENT_DATA), \
                    which online drift (sketches) does not write; use request_logs"
            .into());
    }
    if online && drift.triggers.iter().any(|t| *t != Trigger::Data) {
        return Err("drift.triggers: online drift (sketches) watches the features only; the prediction and \
                    performance triggers need request_logs"
            .into());
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
        max_iter: r.max_iter.unwrap_or(learn::GbmParams::default().max_iter),
        cache_dir: r.cache_dir.map(rel),
        task: match r.task {
            Some(TaskName::Classification) => learn::Task::BinaryClassification,
            _ => learn::Task::Regression,
        },
        linear: match r.model {
            Some(m) => m == ModelName::Linear,
            None => r.text_columns.as_ref().is_some_and(|c| !c.is_empty()),
        },
        text_columns: r.text_columns.clone(),
        positive_label: r.positive_label.clone(),
        metric: r.metric.clone(),
        stages,
    };
    if let Some(m) = &retrain.metric {
        let allowed = training::holdout_metrics(retrain.task);
        if !allowed.contains(&m.as_str()) {
            return Err(format!("retrain.metric '{m}' is not a holdout metric of this task ({})", allowed.join(", ")));
        }
    }
    let classifier_only = [Trigger::Prediction, Trigger::Performance, Trigger::EstimatedPerformance];
    if retrain.task == learn::Task::Regression {
        if let Some(t) = drift.triggers.iter().find(|t| classifier_only.contains(t)) {
            return Err(format!("drift.triggers: {t:?} drift is for classifiers (retrain.task = \"classification\")"));
        }
        if retrain.positive_label.is_some() {
            return Err("retrain.positive_label is for classifiers (retrain.task = \"classification\")".into());
        }
    }
    if drift.triggers.contains(&Trigger::Performance) && drift.labels_by_id.is_none() {
        return Err("drift.triggers: performance needs drift.labels (request ids and their targets)".into());
    }
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
        canary: ro.canary.unwrap_or_default(),
    };
    rollout.canary.validate().map_err(|e| format!("rollout.canary: {e}"))?;
    let c = &rollout.canary;
    if c.to.is_some() || c.expect_version.is_some() || c.note.is_some() {
        return Err("rollout.canary: to, expect_version and note are set by the loop (the idle colour, the new \
                    version, the cycle)"
            .into());
    }
    if !(0.0..=1.0).contains(&rollout.error_budget) {
        return Err(format!("rollout.error_budget must be between 0 and 1, got {}", rollout.error_budget));
    }
    if steps.contains(&Step::Rollout) {
        match rollout.mode {
            RolloutMode::HotReload if rollout.serving.is_none() => {
                return Err("rollout.serving (the `factory serve` URL) is needed for a hot-reload rollout".into())
            }
            RolloutMode::BlueGreen | RolloutMode::Canary if rollout.gateway.is_none() => {
                return Err(
                    "rollout.gateway (the `factory gateway` admin URL) is needed for a blue-green or canary rollout"
                        .into(),
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
