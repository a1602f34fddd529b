//! One cycle of a pipeline: request log since the last check → drift against the reference →
//! on significant drift: event out, retrain, champion vs challenger on the same holdout,
//! promote the winner, roll it out (rollback on failure). Every cycle is a run in the
//! tracking server's `drift-monitoring` experiment with the drift reports as artifacts, the
//! decision and why as tags, and the ids that link it to the challenger's run, the model
//! versions and the gateway's operations.

use crate::classifier;
use crate::config::{Pipeline, Step};
use crate::promote::promote_and_roll_out;
use crate::webhook;
use crate::{requests, PipelineError};
use mlflow_client::Client;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use crate::report::{CycleReport, Decision};

/// What a pipeline remembers between cycles (one JSON file per pipeline).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// Newest request-log timestamp already checked.
    pub watermark: Option<String>,
    /// Online drift: per serve replica, the end of the newest sketch window already checked
    /// (Unix milliseconds).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sketch_watermarks: std::collections::BTreeMap<String, u64>,
    /// When the last cycle started (seconds since the epoch).
    pub last_cycle: Option<u64>,
}

impl State {
    pub fn path(dir: &Path, pipeline: &str) -> PathBuf {
        dir.join(format!("{pipeline}.state.json"))
    }

    pub fn load(dir: &Path, pipeline: &str) -> State {
        std::fs::read(Self::path(dir, pipeline)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Writes atomically (temp file + rename).
    pub fn save(&self, dir: &Path, pipeline: &str) -> Result<(), PipelineError> {
        let path = Self::path(dir, pipeline);
        let io = |source| PipelineError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// Where a cycle keeps its files and how it reports progress.
#[derive(Debug, Clone)]
pub struct Context {
    /// Per-pipeline state files.
    pub state_dir: PathBuf,
    /// Drift reports are written under `<report_dir>/<pipeline>/<run id>/`.
    pub report_dir: PathBuf,
    /// Tracking server credentials (MLflow's client variables).
    pub auth: Option<(String, String)>,
    pub show_progress: bool,
    /// First webhook retry delay (doubles per attempt).
    pub webhook_backoff: Duration,
    /// Where downloaded datasets are cached when a pipeline names no `cache_dir`.
    pub cache_dir: PathBuf,
    /// Looks up a secret by name (the webhook's `token_env`): the binary answers from the
    /// environment, so that only it reads the environment.
    pub read_secret: fn(&str) -> Option<String>,
    /// The loop's Prometheus metrics, updated after each cycle (`None`: not kept).
    pub metrics: Option<std::sync::Arc<crate::metrics::LoopMetrics>>,
}

/// Runs one cycle of `p` and records it; an error here means the cycle could not be recorded.
pub async fn run(p: &Pipeline, ctx: &Context) -> Result<CycleReport, PipelineError> {
    let client = Client::new(&p.tracking_uri, ctx.auth.clone())?;
    let experiment_id = client.experiment_id(&p.experiment).await?;
    let started = SystemTime::now();
    let run_name = format!("{}-{}", p.name, chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut run_tags = vec![
        ("mlflow.source.type", "LOCAL"),
        ("mlflow.source.name", "factory loop"),
        ("factory.pipeline", p.name.as_str()),
        // The registered model the cycle watches (the lineage page finds its cycles by it).
        ("factory.model", p.retrain.model_name.as_str()),
    ];
    if let Some(rev) = &p.revision {
        run_tags.extend([
            ("mlflow.source.git.commit", rev.commit.as_str()),
            ("mlflow.source.git.repoURL", rev.url.as_str()),
            ("factory.git_commit", rev.commit.as_str()),
            ("factory.git_url", rev.url.as_str()),
        ]);
    }
    let (run_id, artifact_uri) = client.create_run(&experiment_id, &run_name, &run_tags).await?;
    tracing::info!(pipeline = %p.name, run_id, "cycle started");
    let result = steps(p, ctx, &client, &run_id, &artifact_uri, started).await;
    let status = match &result {
        Ok(report) => {
            let tags = tags(report);
            let metrics = canary_metrics(report);
            let body = serde_json::to_vec_pretty(report).unwrap_or_default();
            let logged = async {
                client.log_batch(&run_id, &[], &tags, &metrics).await?;
                client.upload_artifact(&artifact_uri, "cycle.json", body).await
            };
            match logged.await {
                Ok(()) => "FINISHED",
                Err(e) => {
                    tracing::error!(error = %e, "could not record the cycle's outcome");
                    "FAILED"
                }
            }
        }
        Err(e) => {
            let _ = client.set_tag(&run_id, "factory.error", &e.to_string()).await;
            "FAILED"
        }
    };
    if let Err(e) = client.end_run(&run_id, status).await {
        tracing::warn!(error = %e, run_id, "could not end the cycle's run");
    }
    result
}

/// A classifier's figures from the drift report, as the cycle run's metrics: the shares of
/// positive predictions, the realised F1s and CBPE's estimate.
fn classifier_metrics(r: &drift::DriftReport) -> Vec<(String, f64, i64)> {
    let mut m = Vec::new();
    let mut put = |name: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            m.push((name.to_string(), v, 0));
        }
    };
    if let Some(pd) = &r.prediction_drift {
        put("reference_share_of_positives", pd.reference_share_of_positives);
        put("current_share_of_positives", pd.current_share_of_positives);
    }
    if let Some(perf) = &r.performance {
        put("reference_f1", perf.reference.as_ref().and_then(|x| x.f1));
        put("current_f1", perf.current.as_ref().and_then(|x| x.f1));
        put("current_accuracy", perf.current.as_ref().and_then(|x| x.accuracy));
    }
    if let Some(e) = r.estimated_performance.as_ref().and_then(|e| e.current.as_ref()) {
        put("estimated_f1", Some(e.f1.value));
        put("estimated_accuracy", Some(e.accuracy.value));
    }
    m
}

fn tags(r: &CycleReport) -> Vec<(String, String)> {
    let mut t = vec![
        (
            "factory.decision".to_string(),
            serde_json::to_value(r.decision).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        ),
        ("factory.reason".into(), r.reason.clone()),
        ("factory.drift_detected".into(), r.drift_detected.to_string()),
        ("factory.significant_drift".into(), r.significant_drift.to_string()),
        ("factory.promoted".into(), r.promoted.to_string()),
        ("mlflow.note.content".into(), format!("**{:?}**: {}", r.decision, r.reason)),
    ];
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            t.push((k.to_string(), v.clone()));
        }
    };
    opt("factory.champion_version", &r.champion_version);
    opt("factory.failed_stage", &r.failed_stage);
    opt("factory.stage_stderr_tail", &r.stage_stderr_tail);
    opt("factory.stage_exit_code", &r.stage_exit_code.map(|c| c.to_string()));
    opt("factory.challenger_version", &r.challenger_version);
    opt("factory.challenger_run_id", &r.challenger_run_id);
    if let Some(ro) = &r.rollout {
        opt("factory.deployment_operation_id", &ro.operation_id);
        opt("factory.rollback_operation_id", &ro.rollback_operation_id);
        opt("factory.served_version", &ro.served_version);
        t.push(("factory.rollout".into(), ro.message.clone()));
        if !ro.canary_steps.is_empty() {
            let lines: Vec<String> = ro.canary_steps.iter().map(|v| v.summary()).collect();
            let mut text = lines.join("\n");
            if text.len() > 5000 {
                let cut = (0..=5000).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                text.truncate(cut);
                text.push_str("\n… (the cycle's cycle.json has every step)");
            }
            t.push(("factory.canary_steps".into(), text));
        }
    }
    t
}

/// A canary rollout's steps as metric histories (the step index as MLflow's step).
fn canary_metrics(r: &CycleReport) -> Vec<(String, f64, i64)> {
    let mut m = Vec::new();
    for v in r.rollout.iter().flat_map(|ro| &ro.canary_steps) {
        let step = v.step as i64;
        m.push(("canary_weight_percent".to_string(), f64::from(v.weight), step));
        m.push(("canary_requests".to_string(), v.requests as f64, step));
        m.push(("canary_error_rate".to_string(), v.error_rate, step));
        m.extend(v.p99_ms.map(|p| ("canary_p99_ms".to_string(), p, step)));
        m.extend(v.drift_share.map(|d| ("canary_drift_share".to_string(), d, step)));
        m.push(("canary_passed".to_string(), f64::from(u8::from(v.verdict != "abort")), step));
    }
    m
}

async fn steps(
    p: &Pipeline,
    ctx: &Context,
    client: &Client,
    run_id: &str,
    artifact_uri: &str,
    started: SystemTime,
) -> Result<CycleReport, PipelineError> {
    let mut state = State::load(&ctx.state_dir, &p.name);
    state.last_cycle = started.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs());
    let mut report = CycleReport {
        pipeline: p.name.clone(),
        run_id: run_id.to_string(),
        decision: Decision::Skipped,
        reason: String::new(),
        rows: 0,
        drift_detected: false,
        significant_drift: false,
        drift_reasons: Vec::new(),
        share_of_drifted_columns: None,
        max_psi: None,
        champion_version: None,
        challenger_version: None,
        challenger_run_id: None,
        champion_score: None,
        challenger_score: None,
        promoted: false,
        rollout: None,
        webhook: None,
        report_json: None,
        report_html: None,
        stages: Vec::new(),
        failed_stage: None,
        stage_exit_code: None,
        stage_stderr_tail: None,
        git_commit: p.revision.as_ref().map(|r| r.commit.clone()),
        seconds: 0.0,
        columns: Vec::new(),
    };
    let dir = ctx.report_dir.join(&p.name).join(run_id);
    std::fs::create_dir_all(&dir).map_err(|source| PipelineError::Io { path: dir.clone(), source })?;

    // 1–2. Production rows since the last check, judged against the reference: read from the
    // request logs, or online from the serve replicas' sketches.
    let judged = if p.drift.request_logs.is_empty() {
        from_sketches(p, client, run_id, &state).await?
    } else {
        from_request_logs(p, ctx, client, run_id, &dir, &state).await?
    };
    report.rows = judged.rows;
    let Some(drift_report) = judged.report else {
        let since = match &judged.advance {
            Advance::Watermark(_) => state.watermark.as_deref().unwrap_or("the start"),
            Advance::Sketches(_) => "the last check",
        };
        report.reason = format!(
            "{} new production rows since {since} (fewer than min_rows {}); waiting for more",
            judged.rows, p.drift.min_rows
        );
        state.save(&ctx.state_dir, &p.name)?;
        report.seconds = started.elapsed().unwrap_or_default().as_secs_f64();
        return Ok(report);
    };
    let reasons = judged.reasons;
    let rows = judged.rows;
    let json_path = dir.join("drift_report.json");
    let html_path = dir.join("drift_report.html");
    let json_bytes = serde_json::to_vec_pretty(&drift_report).unwrap_or_default();
    let html = drift::html::render(&drift_report);
    std::fs::write(&json_path, &json_bytes).map_err(|source| PipelineError::Io { path: json_path.clone(), source })?;
    std::fs::write(&html_path, &html).map_err(|source| PipelineError::Io { path: html_path.clone(), source })?;
    client.upload_artifact(artifact_uri, "drift/drift_report.json", json_bytes).await?;
    client.upload_artifact(artifact_uri, "drift/drift_report.html", html.into_bytes()).await?;
    client
        .log_batch(
            run_id,
            &[],
            &[],
            &[
                ("share_of_drifted_columns".into(), drift_report.share_of_drifted_columns, 0),
                ("number_of_drifted_columns".into(), drift_report.number_of_drifted_columns as f64, 0),
                ("max_psi".into(), drift_report.max_psi, 0),
            ]
            .into_iter()
            .chain(classifier_metrics(&drift_report))
            .collect::<Vec<_>>(),
        )
        .await?;
    report.report_json = Some(json_path);
    report.report_html = Some(html_path);
    report.drift_detected = drift_report.dataset_drift;
    report.significant_drift = !reasons.is_empty();
    report.drift_reasons = reasons.clone();
    report.share_of_drifted_columns = Some(drift_report.share_of_drifted_columns);
    report.max_psi = Some(drift_report.max_psi);
    report.columns = drift_report
        .columns
        .iter()
        .map(|c| crate::report::ColumnScore {
            column: c.name.clone(),
            stattest: c.stattest.name(),
            drift_score: c.drift_score,
            drift_detected: c.drift_detected,
        })
        .collect();
    // The rows are judged: the next cycle starts after them.
    match judged.advance {
        Advance::Watermark(newest) => state.watermark = newest.or(state.watermark),
        Advance::Sketches(w) => state.sketch_watermarks = w,
    }
    state.save(&ctx.state_dir, &p.name)?;

    if reasons.is_empty() {
        report.decision = Decision::NoDrift;
        report.reason = format!(
            "no significant drift in {} rows: {} of {} columns drifted, max PSI {:.3}",
            rows, drift_report.number_of_drifted_columns, drift_report.number_of_columns, drift_report.max_psi
        );
        report.seconds = started.elapsed().unwrap_or_default().as_secs_f64();
        return Ok(report);
    }

    // 3. The event, sent while the rest goes on.
    let payload = json!({
        "pipeline": p.name,
        "run_id": run_id,
        "tracking_uri": p.tracking_uri,
        "model_name": p.retrain.model_name,
        "rows": rows,
        "share_of_drifted_columns": drift_report.share_of_drifted_columns,
        "max_psi": drift_report.max_psi,
        "reasons": reasons,
        "drifted_columns": drift_report.columns.iter().filter(|c| c.drift_detected).map(|c| c.name.clone()).collect::<Vec<_>>(),
    });
    let hook = p.webhook.clone();
    let token = (ctx.read_secret)(&hook.token_env);
    let backoff = ctx.webhook_backoff;
    let webhook_task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        webhook::send(&http, &hook, token, payload, backoff).await
    });

    report.decision = Decision::DriftReported;
    report.reason = format!("significant drift in {} rows: {}", rows, reasons.join("; "));
    if p.has(Step::Retrain) {
        let reference = match judged.reference {
            Some(r) => r,
            None => reference_data(p, ctx).await?,
        };
        retrain(p, ctx, client, artifact_uri, &reference, &dir, &mut report).await?;
    }
    if let Ok(Some(d)) = webhook_task.await {
        report.webhook = Some(d);
    }
    report.seconds = started.elapsed().unwrap_or_default().as_secs_f64();
    Ok(report)
}

/// The production rows of one cycle, judged.
struct Judgement {
    rows: u64,
    /// `None`: fewer rows than `min_rows`.
    report: Option<drift::DriftReport>,
    reasons: Vec<String>,
    /// How the state moves past these rows once they are recorded.
    advance: Advance,
    /// The reference data set, when this source needed it.
    reference: Option<PathBuf>,
}

enum Advance {
    /// The newest request-log timestamp gathered.
    Watermark(Option<String>),
    /// Per replica, the end of the newest sketch window taken.
    Sketches(std::collections::BTreeMap<String, u64>),
}

/// The reference data set (the training data), downloaded once into the cache.
async fn reference_data(p: &Pipeline, ctx: &Context) -> Result<PathBuf, PipelineError> {
    let cache_dir = p.retrain.cache_dir.clone().unwrap_or_else(|| ctx.cache_dir.clone());
    let source = training::data::Source::from_arg(p.drift.reference.as_deref());
    Ok(training::data::resolve(&source, &cache_dir, ctx.show_progress).await?)
}

/// The drift options every source shares.
fn drift_options(p: &Pipeline, reference: &Path, current: &Path) -> drift::DriftOptions {
    let mut options = drift::DriftOptions::new(reference, current);
    options.columns = p.drift.columns.clone();
    options.psi_threshold = p.drift.psi_threshold;
    options.drift_share = p.drift.drift_share;
    options
}

/// Rows from the request logs, compared with the reference data (`drift::run`).
async fn from_request_logs(
    p: &Pipeline,
    ctx: &Context,
    client: &Client,
    run_id: &str,
    dir: &Path,
    state: &State,
) -> Result<Judgement, PipelineError> {
    let current = dir.join("current.csv");
    let logs = p.drift.request_logs.clone();
    let watermark = state.watermark.clone();
    let cur = current.clone();
    let got = tokio::task::spawn_blocking(move || requests::collect(&logs, watermark.as_deref(), &cur))
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))??;
    client
        .log_batch(
            run_id,
            &[
                ("psi_threshold".into(), p.drift.psi_threshold.to_string()),
                ("drift_share".into(), p.drift.drift_share.to_string()),
                ("watermark".into(), state.watermark.clone().unwrap_or_else(|| "none".into())),
                (
                    "request_logs".into(),
                    p.drift.request_logs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","),
                ),
            ],
            &[("factory.served_versions".into(), got.model_versions.iter().cloned().collect::<Vec<_>>().join(","))],
            &[("current_rows".into(), got.rows as f64, 0)],
        )
        .await?;
    let mut judged = Judgement {
        rows: got.rows,
        report: None,
        reasons: Vec::new(),
        advance: Advance::Watermark(got.newest),
        reference: None,
    };
    if got.rows < p.drift.min_rows.max(1) {
        return Ok(judged);
    }
    let reference = reference_data(p, ctx).await?;
    // A classifier's reference carries the champion's predictions on it (prediction drift),
    // and labels that arrived by request id join the served predictions (performance drift).
    let classifier = p.retrain.task == learn::Task::BinaryClassification;
    let scored_path = dir.join("reference_scored.csv");
    let scored =
        if classifier { classifier::score_reference(p, client, &reference, &scored_path).await? } else { None };
    let mut options = drift_options(p, if scored.is_some() { &scored_path } else { &reference }, &current);
    if classifier {
        options.task = drift::Task::Classification;
        options.text_columns = p.retrain.text_columns.clone().unwrap_or_default();
        options.labels = classifier::gather_labels(p, &options.id_column, &dir.join("labels_by_id.csv"))?;
        if scored.is_some() || options.labels.is_some() {
            options.target = Some(p.retrain.target.clone());
            options.pos_label = Some("1".into());
        }
    }
    let show = ctx.show_progress;
    let drift_report = tokio::task::spawn_blocking(move || {
        if show {
            drift::run(&options, &drift::progress::Bar::stderr())
        } else {
            drift::run(&options, &drift::progress::Silent)
        }
    })
    .await
    .map_err(|e| PipelineError::Internal(e.to_string()))??;
    judged.reasons = classifier::trigger_reasons(p, &drift_report, scored.as_ref().and_then(|c| c.holdout_f1));
    judged.report = Some(drift_report);
    judged.reference = Some(reference);
    Ok(judged)
}

/// Rows sketched by the serve replicas, compared online with the profile of the model that
/// scored them (`drift::online`).
async fn from_sketches(p: &Pipeline, client: &Client, run_id: &str, state: &State) -> Result<Judgement, PipelineError> {
    let http = reqwest::Client::new();
    let got = crate::sketches::gather(&http, crate::sketches::Sources::of(&p.drift), &state.sketch_watermarks).await?;
    let rows = got.rows();
    let versions = got.judged.as_ref().map(|j| j.versions.iter().cloned().collect::<Vec<_>>().join(","));
    let other_rows = got.judged.as_ref().map_or(0, |j| j.other_rows);
    client
        .log_batch(
            run_id,
            &[
                ("psi_threshold".into(), p.drift.psi_threshold.to_string()),
                ("drift_share".into(), p.drift.drift_share.to_string()),
                ("drift_source".into(), "sketches".into()),
                ("sketch_replicas".into(), got.replicas.join(",")),
            ]
            .into_iter()
            .chain((!got.failed.is_empty()).then(|| ("sketch_replicas_failed".into(), got.failed.join("; "))))
            .collect::<Vec<_>>(),
            &[("factory.served_versions".into(), versions.unwrap_or_default())],
            &[("current_rows".into(), rows as f64, 0), ("other_profile_rows".into(), other_rows as f64, 0)],
        )
        .await?;
    let mut judged = Judgement {
        rows,
        report: None,
        reasons: Vec::new(),
        advance: Advance::Sketches(got.watermarks),
        reference: None,
    };
    let Some(j) = got.judged.filter(|_| rows >= p.drift.min_rows.max(1)) else { return Ok(judged) };
    let versions = j.versions.iter().cloned().collect::<Vec<_>>().join(",");
    let reference = PathBuf::from(j.profile.reference_label(&versions));
    let current = PathBuf::from(format!("sketches from {} replica(s)", got.replicas.len()));
    let options = drift_options(p, &reference, &current);
    let drift_report = drift::online::report(&j.profile, &j.sketch, &options)?;
    judged.reasons = classifier::trigger_reasons(p, &drift_report, None);
    judged.report = Some(drift_report);
    Ok(judged)
}

/// Training data: the configured source, plus every labelled CSV that arrived.
/// Returns (file, labelled rows added, rows of `base`).
fn training_data(base: &Path, labels: Option<&Path>, out: &Path) -> Result<(PathBuf, u64, usize), PipelineError> {
    let Some(labels) = labels else { return Ok((base.to_path_buf(), 0, 0)) };
    let files = requests::csv_files_in(labels)?;
    if files.is_empty() {
        return Ok((base.to_path_buf(), 0, 0));
    }
    let (base_rows, added) = requests::concat_csv(base, &files, out)?;
    Ok((out.to_path_buf(), added, base_rows))
}

async fn retrain(
    p: &Pipeline,
    ctx: &Context,
    client: &Client,
    artifact_uri: &str,
    reference: &Path,
    dir: &Path,
    report: &mut CycleReport,
) -> Result<(), PipelineError> {
    let r = &p.retrain;
    let cache_dir = r.cache_dir.clone().unwrap_or_else(|| ctx.cache_dir.clone());
    let base = match &r.data {
        Some(d) => {
            training::data::resolve(&training::data::Source::from_arg(Some(d)), &cache_dir, ctx.show_progress).await?
        }
        None => reference.to_path_buf(),
    };
    let (data, labelled, base_rows) = training_data(&base, r.labels.as_deref(), &dir.join("training.csv"))?;
    if let Some(user) = &r.stages {
        let (training, holdout) = (dir.join("train.csv"), dir.join("holdout.csv"));
        let from = if labelled > 0 { base_rows } else { 0 };
        crate::user_stages::split_holdout(&data, from, user.holdout_fraction, r.seed, &training, &holdout)?;
        let inputs = crate::user_stages::Inputs {
            training,
            holdout,
            reference: reference.to_path_buf(),
            current: dir.join("current.csv"),
            labelled_rows: labelled,
        };
        return crate::user_stages::retrain(p, user, client, artifact_uri, dir, inputs, report).await;
    }
    let cfg = training::TrainConfig {
        data: training::data::Source::Path(data),
        cache_dir,
        target: r.target.clone(),
        task: r.task,
        text_columns: r.text_columns.clone(),
        positive_label: r.positive_label.clone(),
        test_data: None,
        spec: if r.linear {
            learn::ModelSpec::Linear(learn::LinearParams { seed: r.seed, ..learn::LinearParams::default() })
        } else {
            learn::ModelSpec::Gbm(learn::GbmParams {
                max_iter: r.max_iter,
                seed: r.seed,
                ..learn::GbmParams::default()
            })
        },
        experiment: r.experiment.clone(),
        run_name: Some(format!("retrain-{}-{}", p.name, &report.run_id[..8.min(report.run_id.len())])),
        model_name: r.model_name.clone(),
        seed: r.seed,
        test_fraction: 0.2,
        // The champion never saw the new labels: judge both on them.
        holdout_from_row: (labelled > 0).then_some(base_rows),
        alias: None,
        compare_with: Some(r.alias.clone()),
        promote: false,
        margin: r.margin,
        metric: r.metric.clone(),
        stage: None,
        show_progress: ctx.show_progress,
    };
    let outcome = training::train(&cfg, client).await?;
    client
        .log_batch(
            &outcome.run_id,
            &[],
            &[
                ("factory.trigger".into(), "drift-detected".into()),
                ("factory.drift_run_id".into(), report.run_id.clone()),
                ("factory.labelled_rows".into(), labelled.to_string()),
            ],
            &[],
        )
        .await?;
    report.challenger_version = Some(outcome.version.clone());
    report.challenger_run_id = Some(outcome.run_id.clone());
    let cmp = outcome.comparison.clone();
    report.champion_version = cmp.as_ref().and_then(|c| c.champion_version.clone());
    report.champion_score = cmp.as_ref().and_then(|c| c.champion_score);
    report.challenger_score = cmp.as_ref().map(|c| c.challenger_score);
    let wins = cmp.as_ref().is_some_and(|c| c.challenger_wins);
    let why = cmp.map(|c| c.reason).unwrap_or_default();
    let retrained = format!("retrained on {labelled} newly labelled rows + the training data");
    promote_and_roll_out(p, client, report, &outcome.version, wins, &format!("{retrained}; {why}")).await
}
