//! What one cycle decided and did ([`CycleReport`], [`Decision`]): filled in by `cycle`,
//! `user_stages` and `promote`, logged as the cycle run's `cycle.json` and tags, and handed
//! to the binary. Plain data, so every step can write it without importing another step.

use crate::rollout::Outcome as RolloutOutcome;
use crate::webhook::Delivery;
use serde::Serialize;
use std::path::PathBuf;

/// The decision a cycle reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Too few new production rows to judge.
    Skipped,
    NoDrift,
    /// Significant drift, and the pipeline stops before retraining.
    DriftReported,
    /// A challenger was trained and lost (or promotion is not a step).
    ChampionKept,
    /// The challenger won and is now production (rolled out when that is a step).
    Promoted,
    /// The challenger won but its rollout failed; production went back to the champion.
    RolledBack,
}

/// Everything one cycle did, also logged as `cycle.json` in its run.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub pipeline: String,
    pub run_id: String,
    pub decision: Decision,
    pub reason: String,
    pub rows: u64,
    pub drift_detected: bool,
    pub significant_drift: bool,
    pub drift_reasons: Vec<String>,
    pub share_of_drifted_columns: Option<f64>,
    pub max_psi: Option<f64>,
    pub champion_version: Option<String>,
    pub challenger_version: Option<String>,
    pub challenger_run_id: Option<String>,
    pub champion_score: Option<f64>,
    pub challenger_score: Option<f64>,
    pub promoted: bool,
    pub rollout: Option<RolloutOutcome>,
    pub webhook: Option<Delivery>,
    pub report_json: Option<PathBuf>,
    pub report_html: Option<PathBuf>,
    /// Retraining with the user's stages: what each did.
    pub stages: Vec<crate::stages::exec::StageOutcome>,
    /// The stage that failed, its exit code and the end of its stderr.
    pub failed_stage: Option<String>,
    pub stage_exit_code: Option<i32>,
    pub stage_stderr_tail: Option<String>,
    /// The git commit the pipeline was read at (git sources).
    pub git_commit: Option<String>,
    pub seconds: f64,
    /// Each column's test in the drift check (empty when the cycle ran none).
    pub columns: Vec<ColumnScore>,
}

/// One column's result in a cycle's drift check (the `factory_loop_column_*` gauges).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnScore {
    pub column: String,
    /// The test's registry name (`psi`, `ks`, `wasserstein`, …).
    pub stattest: &'static str,
    /// A p-value or a distance, as the drift report gives it.
    pub drift_score: f64,
    pub drift_detected: bool,
}
