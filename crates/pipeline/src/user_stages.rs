//! Retraining with the user's own stages (`retrain.pipeline`): the loop prepares the data
//! (training rows + newly labelled rows, minus a holdout), runs the target stages with it —
//! forced, since drift is why we retrain; what they depend on is cached as usual — then finds
//! the model version the stages registered and judges it against the champion on the
//! holdout, before promotion and rollout carry on as with the built-in trainer.
//!
//! The contract with the stages (docs/loop.md): they get the data paths as `FACTORY_*`
//! variables (environment and `${…}`), and every MLflow run they start with the stock client
//! is tagged `factory.cycle_id` (through `MLFLOW_RUN_CONTEXT`). The challenger is the newest
//! version of the model whose run — or which itself — carries this cycle's id.

use crate::config::{Pipeline, UserStages};
use crate::promote::promote_and_roll_out;
use crate::report::{CycleReport, Decision};
use crate::stages::{exec, record, StageError};
use crate::PipelineError;
use mlflow_client::{Client, ModelUri};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The tag that links a model version (or its run) to the cycle that asked for it.
pub const CYCLE_TAG: &str = "factory.cycle_id";

/// What the loop hands the stages.
pub struct Inputs {
    pub training: PathBuf,
    pub holdout: PathBuf,
    pub reference: PathBuf,
    pub current: PathBuf,
    pub labelled_rows: u64,
}

/// Splits `all` (rows `0..from` the base data, the rest new labelled rows) into training and
/// holdout files: the holdout is `fraction` of the labelled rows when there are any (the
/// champion never saw them), else of all rows. Returns (training rows, holdout rows).
pub fn split_holdout(
    all: &Path,
    from: usize,
    fraction: f64,
    seed: u64,
    training: &Path,
    holdout: &Path,
) -> Result<(usize, usize), PipelineError> {
    let data = |path: &Path, e: csv::Error| PipelineError::Data(format!("{}: {e}", path.display()));
    let mut n = 0;
    let mut count = csv::Reader::from_path(all).map_err(|e| data(all, e))?;
    for r in count.records() {
        r.map_err(|e| data(all, e))?;
        n += 1;
    }
    let from = if from > 0 && from < n { from } else { 0 };
    let (_, test) = learn::train_test_split(n - from, fraction, seed);
    let mut is_test = vec![false; n];
    for i in test {
        is_test[i + from] = true;
    }
    let mut reader = csv::Reader::from_path(all).map_err(|e| data(all, e))?;
    let header = reader.headers().map_err(|e| data(all, e))?.clone();
    let mut train_w = csv::Writer::from_path(training).map_err(|e| data(training, e))?;
    let mut test_w = csv::Writer::from_path(holdout).map_err(|e| data(holdout, e))?;
    train_w.write_record(&header).map_err(|e| data(training, e))?;
    test_w.write_record(&header).map_err(|e| data(holdout, e))?;
    let (mut a, mut b) = (0, 0);
    for (i, r) in reader.records().enumerate() {
        let r = r.map_err(|e| data(all, e))?;
        if is_test.get(i).copied().unwrap_or(false) {
            test_w.write_record(&r).map_err(|e| data(holdout, e))?;
            b += 1;
        } else {
            train_w.write_record(&r).map_err(|e| data(training, e))?;
            a += 1;
        }
    }
    train_w.flush().map_err(|source| PipelineError::Io { path: training.into(), source })?;
    test_w.flush().map_err(|source| PipelineError::Io { path: holdout.into(), source })?;
    Ok((a, b))
}

/// The `FACTORY_*` values a cycle gives its stages.
pub fn context(p: &Pipeline, run_id: &str, inputs: &Inputs) -> BTreeMap<String, String> {
    let path = |p: &Path| p.display().to_string();
    let mut c = BTreeMap::from([
        ("FACTORY_CYCLE_ID".to_string(), run_id.to_string()),
        ("FACTORY_PIPELINE".into(), p.name.clone()),
        ("FACTORY_TRAINING_DATA".into(), path(&inputs.training)),
        ("FACTORY_HOLDOUT_DATA".into(), path(&inputs.holdout)),
        ("FACTORY_REFERENCE_DATA".into(), path(&inputs.reference)),
        ("FACTORY_CURRENT_DATA".into(), path(&inputs.current)),
        ("FACTORY_LABELLED_ROWS".into(), inputs.labelled_rows.to_string()),
        ("FACTORY_TARGET".into(), p.retrain.target.clone()),
        ("FACTORY_MODEL_NAME".into(), p.retrain.model_name.clone()),
        ("FACTORY_EXPERIMENT".into(), p.retrain.experiment.clone()),
        ("FACTORY_ALIAS".into(), p.retrain.alias.clone()),
    ]);
    if let Some(rev) = &p.revision {
        c.insert("FACTORY_GIT_COMMIT".into(), rev.commit.clone());
    }
    c
}

/// Runs the stages, finds their version, judges it and carries on to promotion.
#[allow(clippy::too_many_arguments)]
pub async fn retrain(
    p: &Pipeline,
    user: &UserStages,
    client: &Client,
    artifact_uri: &str,
    dir: &Path,
    inputs: Inputs,
    report: &mut CycleReport,
) -> Result<(), PipelineError> {
    let r = &p.retrain;
    let def = user.definition.clone();
    let opts = exec::Options {
        targets: user.targets.clone(),
        force: user.targets.clone(),
        force_downstream: false,
        context: context(p, &report.run_id, &inputs),
        env: vec![("MLFLOW_TRACKING_URI".into(), p.tracking_uri.clone())],
        run_tags: BTreeMap::from([
            (CYCLE_TAG.to_string(), report.run_id.clone()),
            ("factory.pipeline".into(), p.name.clone()),
        ]),
        default_timeout: Some(user.timeout),
        log_dir: Some(dir.join("stage-logs")),
    };
    let ran = tokio::task::spawn_blocking(move || exec::run(&def, &opts, &mut exec::print_progress))
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))?
        .map_err(|e| PipelineError::Config(e.to_string()))?;
    let lock_name = user.definition.lock.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    record::record(client, &report.run_id, artifact_uri, &ran, &lock_name, "stages").await?;
    report.stages = ran.stages.clone();
    let what = format!(
        "retrained with stages {} on {} newly labelled rows + the training data",
        ran.ran().join(", "),
        inputs.labelled_rows
    );
    if let Some(e) = &ran.error {
        let (status, tail) = match e {
            StageError::Failed { status, stderr_tail, .. } => (status.clone(), stderr_tail.clone()),
            StageError::TimedOut { seconds, stderr_tail, .. } => {
                (format!("a timeout after {seconds} s"), stderr_tail.clone())
            }
            other => (other.to_string(), String::new()),
        };
        report.failed_stage = e.stage().map(String::from);
        report.stage_exit_code = match e {
            StageError::Failed { exit_code, .. } => *exit_code,
            _ => None,
        };
        report.stage_stderr_tail = Some(tail);
        report.decision = Decision::ChampionKept;
        report.reason = format!(
            "{}; retraining failed: stage '{}' ended with {status}; champion kept",
            report.reason,
            e.stage().unwrap_or("?"),
        );
        return Ok(());
    }
    let Some(version) = find_version(client, &r.model_name, &report.run_id).await? else {
        report.decision = Decision::ChampionKept;
        report.reason = format!(
            "{}; {what}, but they registered no version of '{}' tagged {CYCLE_TAG}={} (docs/loop.md); champion kept",
            report.reason, r.model_name, report.run_id
        );
        return Ok(());
    };
    if let Some(run) = &version.run_id {
        client
            .log_batch(
                run,
                &[],
                &[
                    ("factory.trigger".into(), "drift-detected".into()),
                    ("factory.drift_run_id".into(), report.run_id.clone()),
                    ("factory.labelled_rows".into(), inputs.labelled_rows.to_string()),
                ],
                &[],
            )
            .await?;
    }
    report.challenger_version = Some(version.version.clone());
    report.challenger_run_id = version.run_id.clone();
    let (wins, why) = judge(p, client, &version.version, &inputs.holdout, report).await?;
    promote_and_roll_out(p, client, report, &version.version, wins, &format!("{what}; {why}")).await
}

/// The newest version of `model` registered for cycle `cycle_id`: tagged itself, or made
/// from a run tagged so. The 20 newest versions are looked at (the stages just ran).
pub async fn find_version(
    client: &Client,
    model: &str,
    cycle_id: &str,
) -> Result<Option<mlflow_client::ModelVersion>, PipelineError> {
    let filter = format!("name = '{}'", model.replace('\'', "''"));
    let versions = match client.search_model_versions(&filter, 20).await {
        Ok(v) => v,
        Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for v in versions {
        if v.tags.iter().any(|(k, val)| k == CYCLE_TAG && val == cycle_id) {
            return Ok(Some(v));
        }
        if let Some(run) = &v.run_id {
            let tags = match client.run_tags(run).await {
                Ok(t) => t,
                Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => continue,
                Err(e) => return Err(e.into()),
            };
            if tags.iter().any(|(k, val)| k == CYCLE_TAG && val == cycle_id) {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// Champion and challenger on the same holdout; (challenger wins, why).
async fn judge(
    p: &Pipeline,
    client: &Client,
    version: &str,
    holdout: &Path,
    report: &mut CycleReport,
) -> Result<(bool, String), PipelineError> {
    let r = &p.retrain;
    let load = |dir: &Path| package::load(dir).map_err(|e| e.to_string());
    let challenger_dir =
        tempfile::tempdir().map_err(|source| PipelineError::Io { path: std::env::temp_dir(), source })?;
    let uri = ModelUri::Version { name: r.model_name.clone(), version: version.to_string() };
    let (artifacts, _) = client.resolve(&uri).await?;
    client.download_dir(&artifacts, challenger_dir.path()).await?;
    let challenger = match load(challenger_dir.path()) {
        Ok(c) => c,
        Err(e) => {
            return Ok((
                false,
                format!("challenger version {version} cannot be served by factory ({e}); champion kept"),
            ))
        }
    };
    let file = std::fs::File::open(holdout).map_err(|source| PipelineError::Io { path: holdout.into(), source })?;
    let frame = learn::read_csv(std::io::BufReader::new(file)).map_err(|e| PipelineError::Data(e.to_string()))?;
    // A user's stage may register any flavor factory serves; only factory models know their task.
    let task = challenger.model.factory().map_or(learn::Task::Regression, learn::Model::task);
    let (x, y) = training::run::split_target(&frame, &r.target, task, None)?;
    let challenger_score = training::evaluate_packaged(&challenger.model, task, &x, &y)?.primary;
    report.challenger_score = Some(challenger_score.1);
    let alias = ModelUri::Alias { name: r.model_name.clone(), alias: r.alias.clone() };
    let champion = match client.resolve_existing(&alias).await? {
        Some((uri, v)) => {
            report.champion_version = v.map(|v| v.version);
            let dir = tempfile::tempdir().map_err(|source| PipelineError::Io { path: std::env::temp_dir(), source })?;
            client.download_dir(&uri, dir.path()).await?;
            Some(load(dir.path()))
        }
        None => None,
    };
    let name = &challenger_score.0;
    let champion = match champion {
        None => return Ok((true, format!("no champion behind '{}'", r.alias))),
        Some(Err(e)) => return Ok((true, format!("the champion cannot be loaded ({e}); challenger wins"))),
        Some(Ok(c)) if c.schema() != challenger.schema() || c.model.factory().is_some_and(|m| m.task() != task) => {
            return Ok((true, "champion takes different inputs; challenger wins".into()))
        }
        Some(Ok(c)) => c,
    };
    let champion_score = training::evaluate_packaged(&champion.model, task, &x, &y)?.primary.1;
    report.champion_score = Some(champion_score);
    let wins = challenger_score.1 < champion_score * (1.0 - r.margin);
    let why = format!(
        "{} {name} {:.6} vs champion {champion_score:.6} on {} holdout rows (margin {:.2}%)",
        if wins { "challenger beats the champion:" } else { "champion kept: challenger" },
        challenger_score.1,
        y.len(),
        r.margin * 100.0
    );
    Ok((wins, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_comes_from_the_new_rows() {
        let d = tempfile::tempdir().unwrap();
        let all = d.path().join("all.csv");
        let mut text = String::from("x,y\n");
        for i in 0..100 {
            text.push_str(&format!("{i},{}\n", i * 2));
        }
        std::fs::write(&all, text).unwrap();
        let (t, h) = (d.path().join("t.csv"), d.path().join("h.csv"));
        assert_eq!(split_holdout(&all, 80, 0.25, 1, &t, &h).unwrap(), (95, 5));
        let held: Vec<u32> = std::fs::read_to_string(&h)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(held.iter().all(|&x| x >= 80), "{held:?}");
        assert_eq!(split_holdout(&all, 0, 0.2, 1, &t, &h).unwrap(), (80, 20));
    }
}
