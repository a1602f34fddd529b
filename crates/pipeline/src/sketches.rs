//! Production data for a drift check without files: every serve replica's `GET /drift/sketch`
//! (the windows it closed since this pipeline last asked it), merged per model profile.
//!
//! Replicas come from `drift.sketches` (base URLs) and from `drift.sketch_service`, a
//! `host:port` resolved to every address at each cycle (a Kubernetes headless Service names
//! every ready serve pod). Each replica has its own watermark (the end of the last window
//! taken from it), so no window is counted twice and none is skipped while the replica lives.
//! The merged sketch of the profile that scored the most rows is judged; rows scored under
//! other profiles (a version rolled out during the period) are counted and reported.

use crate::config::DriftSettings;
use crate::PipelineError;
use sketch::{Profile, Sketch, SketchAnswer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What [`gather`] found.
#[derive(Debug)]
pub struct Gathered {
    /// Replicas asked.
    pub replicas: Vec<String>,
    /// Per replica, the end of the newest window taken (the next `since`).
    pub watermarks: BTreeMap<String, u64>,
    /// Replicas left out, and why.
    pub failed: Vec<String>,
    /// The rows to judge; `None` when no replica closed a window since it was last asked.
    pub judged: Option<Judged>,
}

/// The profile that scored the most rows, and those rows merged.
#[derive(Debug)]
pub struct Judged {
    pub profile: Profile,
    pub sketch: Sketch,
    /// Model versions that scored these rows.
    pub versions: BTreeSet<String>,
    /// Rows scored under other profiles (not judged).
    pub other_rows: u64,
}

impl Gathered {
    /// Rows to judge.
    pub fn rows(&self) -> u64 {
        self.judged.as_ref().map_or(0, |j| j.sketch.rows)
    }
}

/// Every replica's base URL: the listed ones, then the service's addresses.
async fn replicas(settings: &DriftSettings) -> Result<Vec<String>, PipelineError> {
    let mut out: Vec<String> = settings.sketches.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
    if let Some(service) = &settings.sketch_service {
        let addrs = tokio::net::lookup_host(service.as_str())
            .await
            .map_err(|e| PipelineError::Online(format!("resolving drift.sketch_service '{service}': {e}")))?;
        let mut found: Vec<String> = addrs.map(|a| format!("http://{a}")).collect();
        found.sort();
        found.dedup();
        if found.is_empty() {
            return Err(PipelineError::Online(format!("drift.sketch_service '{service}' resolves to no address")));
        }
        out.extend(found);
    }
    Ok(out)
}

/// One replica's answer, checked against its profiles.
async fn fetch(http: &reqwest::Client, base: &str, since: Option<u64>) -> Result<SketchAnswer, String> {
    let mut url = format!("{base}/drift/sketch");
    if let Some(since) = since {
        url.push_str(&format!("?since={since}"));
    }
    let failed = |what: String| format!("{url}: {what}");
    let response = http.get(&url).timeout(Duration::from_secs(30)).send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    if !status.is_success() {
        return Err(failed(format!("{status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]))));
    }
    let answer: SketchAnswer =
        serde_json::from_slice(&bytes).map_err(|e| failed(format!("not a drift sketch answer: {e}")))?;
    for entry in &answer.sketches {
        entry.profile.check().map_err(|e| failed(e.to_string()))?;
        entry.sketch.check(&entry.profile).map_err(|e| failed(e.to_string()))?;
    }
    Ok(answer)
}

/// Asks every replica for the windows it closed since its watermark and merges them. A
/// replica that does not answer (or answers something that does not check) is left out and
/// named in `failed`, its watermark kept, so its windows are taken at the next cycle; when no
/// replica answers, the cycle fails. Watermarks of replicas no longer listed are dropped.
pub async fn gather(
    http: &reqwest::Client,
    settings: &DriftSettings,
    watermarks: &BTreeMap<String, u64>,
) -> Result<Gathered, PipelineError> {
    let replicas = replicas(settings).await?;
    let mut next: BTreeMap<String, u64> =
        watermarks.iter().filter(|(k, _)| replicas.contains(k)).map(|(k, v)| (k.clone(), *v)).collect();
    let mut failed = Vec::new();
    // Per profile id: (profile, merged sketch, versions).
    let mut merged: BTreeMap<String, (Profile, Sketch, BTreeSet<String>)> = BTreeMap::new();
    for base in &replicas {
        let answer = match fetch(http, base, watermarks.get(base).copied()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "a serve replica's sketches are left out of this cycle");
                failed.push(e);
                continue;
            }
        };
        let mut taken: Vec<(String, Profile, Sketch, String)> = Vec::new();
        let mut until = None;
        for entry in answer.sketches {
            until = until.max(Some(entry.until_ms));
            taken.push((entry.profile.id.clone(), entry.profile, entry.sketch, entry.model_version));
        }
        // Merged only once the whole answer fits (counts could overflow on hostile input).
        let mut trial = merged.clone();
        let fits = taken.into_iter().try_for_each(|(id, profile, sketch, version)| match trial.get_mut(&id) {
            Some((_, s, versions)) => {
                versions.insert(version);
                s.merge(&sketch)
            }
            None => {
                trial.insert(id, (profile, sketch, BTreeSet::from([version])));
                Ok(())
            }
        });
        match fits {
            Ok(()) => {
                merged = trial;
                if let Some(u) = until {
                    next.insert(base.clone(), u);
                }
            }
            Err(e) => failed.push(format!("{base}: {e}")),
        }
    }
    if !replicas.is_empty() && failed.len() == replicas.len() {
        return Err(PipelineError::Online(format!("no serve replica answered: {}", failed.join("; "))));
    }
    let total: u64 = merged.values().fold(0, |a, (_, s, _)| a.saturating_add(s.rows));
    let best = merged.values().max_by_key(|(_, s, _)| s.rows).map(|(p, _, _)| p.id.clone());
    let judged = best.and_then(|id| merged.remove(&id)).map(|(profile, sketch, versions)| Judged {
        other_rows: total.saturating_sub(sketch.rows),
        profile,
        sketch,
        versions,
    });
    Ok(Gathered { replicas, watermarks: next, failed, judged })
}
