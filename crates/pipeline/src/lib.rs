//! The closed loop behind `factory loop`: on a schedule, compare what production saw with
//! the training data, and on significant drift retrain, pit the challenger against the
//! champion, promote the winner and roll it out — recording every cycle in the tracking
//! server and telling the outside world (a GitHub `repository_dispatch` webhook).
//!
//! ```text
//!  config.rs   pipeline files (TOML) → Pipeline; Folder reloads changed files
//!  scheduler   (this file) cron per pipeline, missed-run policy, one cycle at a time
//!  cycle.rs    requests.rs → drift → webhook.rs → training → promote.rs → rollout.rs
//!  classifier  classifiers: the reference scored by the champion, labels by request id, the
//!              prediction / performance / estimated-performance triggers
//!  user_stages retraining with the user's stages (stages/) instead of the built-in GBM
//!  promote.rs  champion kept, or challenger promoted and rolled out (both trainers end here)
//!  report.rs   CycleReport and Decision: what a cycle did, filled in by every step
//!  stages/     DVC-style stages: definitions, hashes, lock, graph, runner (`factory pipeline`)
//!  git.rs      pipeline folders polled from git, like git-sync
//! ```
//!
//! Architecture Invariant: the tracking server, `factory serve` and `factory gateway` are
//! reached only over their public HTTP APIs (`mlflow-client`, `/health`, `/admin/reload`, the
//! gateway's admin API), so the loop runs against any deployment of them, local or remote.
//!
//! Architecture Invariant: a failing cycle (tracking server down, bad data, webhook
//! unreachable) is logged and recorded where possible; it never stops the loop.

mod classifier;
pub mod config;
pub mod cycle;
pub mod git;
pub mod metrics;
mod promote;
pub mod report;
pub mod requests;
pub mod rollout;
pub mod sketches;
pub mod stages;
pub mod user_stages;
pub mod webhook;

pub use config::{Overrides, Pipeline, Step};
pub use cycle::{Context, State};
pub use report::{CycleReport, Decision};

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Why a cycle (or loading pipelines) failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("data: {0}")]
    Data(String),
    #[error("pipeline: {0}")]
    Config(String),
    #[error("tracking server: {0}")]
    Tracking(#[from] mlflow_client::ClientError),
    #[error("training: {0}")]
    Training(#[from] training::TrainError),
    #[error("drift: {0}")]
    Drift(#[from] drift::DriftError),
    #[error("online drift: {0}")]
    Online(String),
    #[error("{0}")]
    Internal(String),
}

/// Where the pipelines come from.
#[derive(Debug, Clone)]
pub enum Definitions {
    /// A folder of `*.toml` files, re-read every `reload_every`.
    Folder { dir: PathBuf, reload_every: Duration },
    /// A folder in a git repository, polled every `reload_every` (see [`git`]); mirror and
    /// checkouts live under `state_dir/git/`.
    Git { source: git::Source, reload_every: Duration, state_dir: PathBuf },
    /// One pipeline built from flags.
    Single(Box<Pipeline>),
}

/// The pipelines a [`Definitions`] currently holds, and how to look for changes.
pub struct Loaded {
    pub folder: Option<config::Folder>,
    pub git: Option<git::Sync>,
}

impl Loaded {
    /// First load: a folder that cannot be read, or a repository that cannot be fetched, is
    /// an error (there is nothing to keep running yet).
    pub fn load(defs: &Definitions, overrides: &Overrides) -> Result<Loaded, PipelineError> {
        match defs {
            Definitions::Folder { dir, .. } => {
                Ok(Loaded { folder: Some(config::load_dir(dir, overrides)?), git: None })
            }
            Definitions::Git { source, state_dir, .. } => {
                let mut sync = git::Sync::new(source.clone(), state_dir);
                let (revision, dir) =
                    sync.poll()?.ok_or_else(|| PipelineError::Internal("the first fetch found no commit".into()))?;
                let mut folder = config::Folder::new(dir.clone(), overrides.clone());
                folder.switch(dir, Some(revision));
                folder.refresh()?;
                Ok(Loaded { folder: Some(folder), git: Some(sync) })
            }
            Definitions::Single(_) => Ok(Loaded { folder: None, git: None }),
        }
    }

    /// Looks for a new commit and changed files; returns the pipelines added, changed or
    /// removed. Failures are reported and change nothing.
    pub fn refresh(&mut self) -> Vec<String> {
        let Some(folder) = self.folder.as_mut() else { return Vec::new() };
        if let Some(sync) = self.git.as_mut() {
            match sync.poll() {
                Ok(Some((revision, dir))) => folder.switch(dir, Some(revision)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "could not update the pipelines from git; the loaded pipelines keep running")
                }
            }
        }
        let changed = match folder.refresh() {
            Ok(changed) => changed,
            Err(e) => {
                tracing::error!(error = %e, "could not read the pipeline folder; the loaded pipelines keep running");
                Vec::new()
            }
        };
        if let Some(sync) = &self.git {
            sync.prune(&folder.commits());
        }
        changed
    }
}

/// When `p` should run next, given its state and `now` (the missed-run policy lives here).
pub fn next_due(p: &Pipeline, state: &State, now: SystemTime) -> Option<SystemTime> {
    if p.schedule.missed == config::Missed::RunOnce {
        if let Some(last) = state.last_cycle.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)) {
            if p.schedule.next_after(last).is_some_and(|t| t <= now) {
                return Some(now);
            }
        }
    }
    p.schedule.next_after(now)
}

/// Runs the pipelines on their schedules until `shutdown` completes. `on_cycle` sees every
/// finished cycle (the binary prints them), after `ctx.metrics` has recorded it.
pub async fn run_scheduled(
    defs: Definitions,
    overrides: Overrides,
    ctx: Context,
    shutdown: impl Future<Output = ()>,
    on_cycle: impl Fn(&Pipeline, &Result<CycleReport, PipelineError>),
) -> Result<(), PipelineError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let reload_every = match &defs {
        Definitions::Folder { reload_every, .. } | Definitions::Git { reload_every, .. } => *reload_every,
        Definitions::Single(_) => Duration::from_secs(3600),
    };
    let mut loaded = Loaded::load(&defs, &overrides)?;
    let pipelines = |loaded: &Loaded| -> Vec<Pipeline> {
        match (&defs, &loaded.folder) {
            (Definitions::Single(p), _) => vec![(**p).clone()],
            (_, Some(f)) => f.pipelines.values().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let mut due: BTreeMap<String, Option<SystemTime>> = BTreeMap::new();
    let plan = |p: &Pipeline, due: &mut BTreeMap<String, Option<SystemTime>>| {
        let next = next_due(p, &State::load(&ctx.state_dir, &p.name), SystemTime::now());
        tracing::info!(pipeline = %p.name, schedule = %p.schedule.expression, timezone = %p.schedule.timezone,
            next = ?next.map(humanize), "pipeline scheduled");
        if let Some(m) = &ctx.metrics {
            m.set_next_run(&p.name, next);
        }
        due.insert(p.name.clone(), next);
    };
    for p in pipelines(&loaded) {
        plan(&p, &mut due);
    }
    let mut next_reload = SystemTime::now() + reload_every;
    loop {
        let now = SystemTime::now();
        let wake = due.values().flatten().copied().chain([next_reload]).min().unwrap_or(next_reload);
        let wait = wake.duration_since(now).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => return Ok(()),
        }
        let now = SystemTime::now();
        if now >= next_reload {
            next_reload = now + reload_every;
            let changed = loaded.refresh();
            let current = pipelines(&loaded);
            for name in changed {
                due.remove(&name);
                if let Some(p) = current.iter().find(|p| p.name == name) {
                    plan(p, &mut due);
                }
            }
        }
        for p in pipelines(&loaded) {
            if due.get(&p.name).copied().flatten().is_some_and(|t| t <= now) {
                let result = cycle::run(&p, &ctx).await;
                if let Err(e) = &result {
                    tracing::error!(pipeline = %p.name, error = %e, "cycle failed");
                }
                let next = p.schedule.next_after(SystemTime::now());
                if let Some(m) = &ctx.metrics {
                    m.record(&p.name, &result, now);
                    m.set_next_run(&p.name, next);
                }
                on_cycle(&p, &result);
                due.insert(p.name.clone(), next);
            }
        }
    }
}

fn humanize(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(missed: config::Missed) -> Pipeline {
        let mut p = config::parse(
            "p",
            "[drift]\nrequest_logs = [\"r\"]\n[rollout]\nserving = \"http://s\"\n",
            std::path::Path::new("/"),
            &Overrides::default(),
        )
        .unwrap();
        p.schedule = config::Schedule::new("0 2 * * *", "UTC", missed).unwrap();
        p
    }

    #[test]
    fn missed_run_policy() {
        let day = 24 * 3600;
        let t0 = 1_782_864_000; // 2026-07-01T00:00:00Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(t0 + 3 * day);
        let ran_days_ago = State { last_cycle: Some(t0), ..State::default() };
        let ran_recently = State { last_cycle: Some(t0 + 3 * day - 60), ..State::default() };
        let next_2am = SystemTime::UNIX_EPOCH + Duration::from_secs(t0 + 3 * day + 2 * 3600);

        let once = pipeline(config::Missed::RunOnce);
        assert_eq!(next_due(&once, &ran_days_ago, now), Some(now), "missed runs: one now");
        assert_eq!(next_due(&once, &ran_recently, now), Some(next_2am));
        assert_eq!(next_due(&once, &State::default(), now), Some(next_2am), "never ran: wait for the schedule");
        let skip = pipeline(config::Missed::Skip);
        assert_eq!(next_due(&skip, &ran_days_ago, now), Some(next_2am));
    }
}
