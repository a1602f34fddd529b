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

/// Asks every replica for the windows it closed since its watermark and merges them.
pub async fn gather(
    http: &reqwest::Client,
    settings: &DriftSettings,
    watermarks: &BTreeMap<String, u64>,
) -> Result<Gathered, PipelineError> {
    let replicas = replicas(settings).await?;
    let mut next = watermarks.clone();
    // Per profile id: (profile, merged sketch, versions).
    let mut merged: BTreeMap<String, (Profile, Sketch, BTreeSet<String>)> = BTreeMap::new();
    for base in &replicas {
        let mut url = format!("{base}/drift/sketch");
        if let Some(since) = watermarks.get(base) {
            url.push_str(&format!("?since={since}"));
        }
        let failed = |what: String| PipelineError::Online(format!("{url}: {what}"));
        let response =
            http.get(&url).timeout(Duration::from_secs(30)).send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            return Err(failed(format!("{status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]))));
        }
        let answer: SketchAnswer =
            serde_json::from_slice(&bytes).map_err(|e| failed(format!("not a drift sketch answer: {e}")))?;
        for entry in answer.sketches {
            entry.profile.check().map_err(|e| failed(e.to_string()))?;
            entry.sketch.check(&entry.profile).map_err(|e| failed(e.to_string()))?;
            let w = next.entry(base.clone()).or_default();
            *w = (*w).max(entry.until_ms);
            match merged.get_mut(&entry.profile.id) {
                Some((_, sketch, versions)) => {
                    sketch.merge(&entry.sketch).map_err(|e| failed(e.to_string()))?;
                    versions.insert(entry.model_version);
                }
                None => {
                    let id = entry.profile.id.clone();
                    merged.insert(id, (entry.profile, entry.sketch, BTreeSet::from([entry.model_version])));
                }
            }
        }
    }
    let total: u64 = merged.values().map(|(_, s, _)| s.rows).sum();
    let best = merged.values().max_by_key(|(_, s, _)| s.rows).map(|(p, _, _)| p.id.clone());
    let judged = best.and_then(|id| merged.remove(&id)).map(|(profile, sketch, versions)| Judged {
        other_rows: total - sketch.rows,
        profile,
        sketch,
        versions,
    });
    Ok(Gathered { replicas, watermarks: next, judged })
}
