//! The end of a cycle that trained a challenger, shared by the built-in trainer (`cycle`)
//! and the user's stages (`user_stages`): keep the champion, or promote the challenger and
//! roll it out, rolling back to the champion when the rollout fails.

use crate::config::{Pipeline, Step};
use crate::report::{CycleReport, Decision};
use crate::{rollout, PipelineError};
use mlflow_client::Client;

/// After a challenger was scored: keep the champion, or promote the challenger and roll it
/// out (rolling back on failure). `what` says how it was trained and judged.
pub(crate) async fn promote_and_roll_out(
    p: &Pipeline,
    client: &Client,
    report: &mut CycleReport,
    version: &str,
    wins: bool,
    what: &str,
) -> Result<(), PipelineError> {
    let r = &p.retrain;
    if !wins || !p.has(Step::Promote) {
        report.decision = Decision::ChampionKept;
        report.reason = format!("{}; {what}", report.reason);
        if wins {
            report.reason.push_str("; promotion is not a step of this pipeline");
        }
        return Ok(());
    }

    // Promote: the production alias (and stage) move to the challenger.
    client.set_alias(&r.model_name, &r.alias, version).await?;
    if let Some(stage) = &r.stage {
        client.transition_stage(&r.model_name, version, stage).await?;
    }
    report.promoted = true;
    report.decision = Decision::Promoted;
    report.reason = format!("{}; {what}; version {version} is now '{}'", report.reason, r.alias);
    if !p.has(Step::Rollout) {
        return Ok(());
    }
    let http = reqwest::Client::new();
    let who = format!("factory loop ({}, run {})", p.name, report.run_id);
    let done = rollout::rollout(&http, client, &p.rollout, &r.model_name, version, &who).await;
    if !done.ok {
        // Production goes back to the champion.
        if let Some(champion) = &report.champion_version {
            client.set_alias(&r.model_name, &r.alias, champion).await?;
            if let Some(stage) = &r.stage {
                client.transition_stage(&r.model_name, champion, stage).await?;
            }
            if let (crate::config::RolloutMode::HotReload, Some(serving)) = (p.rollout.mode, &p.rollout.serving) {
                let _ = http.post(format!("{}/admin/reload", serving.trim_end_matches('/'))).send().await;
            }
        }
        report.promoted = false;
        report.decision = Decision::RolledBack;
        report.reason = format!(
            "{}; rollout failed: {}; '{}' restored to version {}",
            report.reason,
            done.message,
            r.alias,
            report.champion_version.as_deref().unwrap_or("none")
        );
    } else {
        report.reason = format!("{}; {}", report.reason, done.message);
    }
    report.rollout = Some(done);
    Ok(())
}
