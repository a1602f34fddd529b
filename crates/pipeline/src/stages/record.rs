//! A pipeline run in the tracking server: what the lock says about each stage becomes run
//! params (`<stage>.cmd`, `<stage>.deps.<path>`, `<stage>.outs.<path>` = md5,
//! `<stage>.params.<key>` = value), what happened becomes tags (`factory.stage.<name>` =
//! `ran: why` / `cached` / `failed: …`), metrics files become metrics, and the lock file and
//! each stage's log are artifacts. Anyone can check the run against the lock file it carries.

use super::exec::RunReport;
use super::hash::md5_bytes;
use super::lock::Lock;
use mlflow_client::{Client, ClientError};

/// MLflow's limits: param keys up to 250 characters of `[\w./\- :]`, values up to 6000.
const MAX_KEY: usize = 250;
const MAX_VALUE: usize = 6000;

/// A param key MLflow accepts: other characters (e.g. a glob's `*`) become `_`.
pub fn param_key(k: &str) -> String {
    let k: String = k.chars().map(|c| if c.is_alphanumeric() || "_-./ :".contains(c) { c } else { '_' }).collect();
    k.chars().take(MAX_KEY).collect()
}

fn value(v: &str) -> String {
    v.chars().take(MAX_VALUE).collect()
}

/// The params that describe a lock, one per stage fact.
pub fn lock_params(lock: &Lock) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, s) in &lock.stages {
        out.push((param_key(&format!("{name}.cmd")), value(&s.cmd.join(" && "))));
        for (kind, list) in [("deps", &s.deps), ("outs", &s.outs)] {
            for e in list {
                if let Some(h) = &e.hash {
                    out.push((param_key(&format!("{name}.{kind}.{}", e.path)), h.md5.clone()));
                }
            }
        }
        for keys in s.params.values() {
            for (k, v) in keys {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                out.push((param_key(&format!("{name}.params.{k}")), value(&text)));
            }
        }
    }
    // Two facts whose keys collapse to the same sanitised key: the first one stays.
    let mut seen = std::collections::HashSet::new();
    out.retain(|(k, _)| seen.insert(k.clone()));
    out
}

/// The tags that say what each stage did.
pub fn outcome_tags(report: &RunReport) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = report
        .stages
        .iter()
        .map(|s| {
            let what = match (s.ran, s.ok) {
                (false, _) => "cached".to_string(),
                (true, true) => {
                    format!("ran: {}", s.why.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
                }
                (true, false) => "failed".to_string(),
            };
            (format!("factory.stage.{}", param_key(&s.name)), value(&what))
        })
        .collect();
    tags.push(("factory.lock_md5".into(), md5_bytes(report.lock_text.as_bytes())));
    tags.push(("factory.stages_ran".into(), report.ran().join(",")));
    if let Some(e) = &report.error {
        tags.push(("factory.error".into(), value(&e.to_string())));
        if let Some(stage) = e.stage() {
            tags.push(("factory.failed_stage".into(), stage.to_string()));
        }
    }
    tags
}

/// Records a run's hashes, outcomes, metrics, lock and logs in `run_id`; artifacts go under
/// `prefix` (empty: the run's root).
pub async fn record(
    client: &Client,
    run_id: &str,
    artifact_uri: &str,
    report: &RunReport,
    lock_name: &str,
    prefix: &str,
) -> Result<(), ClientError> {
    let metrics: Vec<(String, f64, i64)> =
        report.stages.iter().flat_map(|s| s.metrics.iter().map(|(k, v)| (k.clone(), *v, 0))).collect();
    client.log_batch(run_id, &lock_params(&report.lock), &outcome_tags(report), &metrics).await?;
    let at = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
    client.upload_artifact(artifact_uri, &at(lock_name), report.lock_text.clone().into_bytes()).await?;
    for s in &report.stages {
        if let Some(log) = &s.log {
            if let Ok(bytes) = std::fs::read(log) {
                client.upload_artifact(artifact_uri, &at(&format!("logs/{}.log", s.name)), bytes).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mlflow_accepts() {
        assert_eq!(param_key("train.deps.data/*.csv"), "train.deps.data/_.csv");
        assert_eq!(param_key("a b:c-d"), "a b:c-d");
        assert_eq!(param_key(&"x".repeat(300)).len(), 250);
    }
}
