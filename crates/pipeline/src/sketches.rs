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

/// Where the sketches come from, and which windows are taken.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// Replicas' base URLs.
    pub sketches: &'a [String],
    /// `host:port` resolved to every address (a Kubernetes headless Service).
    pub service: Option<&'a str>,
    /// Take the windows still open too (`GET /drift/sketch?open=true`): a look at everything
    /// scored until now, for a one-off report; the watermarks are then not points to resume from.
    pub open: bool,
}

impl<'a> Sources<'a> {
    /// A pipeline's `[drift]` sources (closed windows only).
    pub fn of(settings: &'a DriftSettings) -> Sources<'a> {
        Sources { sketches: &settings.sketches, service: settings.sketch_service.as_deref(), open: false }
    }
}

/// Every replica's base URL: the listed ones, then the service's addresses.
async fn replicas(sources: Sources<'_>) -> Result<Vec<String>, PipelineError> {
    let mut out: Vec<String> = sources.sketches.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
    if let Some(service) = sources.service {
        let addrs = tokio::net::lookup_host(service)
            .await
            .map_err(|e| PipelineError::Online(format!("resolving the sketch service '{service}': {e}")))?;
        let mut found: Vec<String> = addrs.map(|a| format!("http://{a}")).collect();
        found.sort();
        found.dedup();
        if found.is_empty() {
            return Err(PipelineError::Online(format!("the sketch service '{service}' resolves to no address")));
        }
        out.extend(found);
    }
    Ok(out)
}

/// The body, refused once it grows past `limit` bytes (read chunk by chunk, so a hostile or
/// broken replica cannot make the loop buffer without bound).
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("the answer is larger than {limit} bytes");
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One replica's answer, checked against its profiles.
async fn fetch(http: &reqwest::Client, base: &str, since: Option<u64>, open: bool) -> Result<SketchAnswer, String> {
    let mut query: Vec<String> = since.map(|s| format!("since={s}")).into_iter().collect();
    if open {
        query.push("open=true".into());
    }
    let url = match query.is_empty() {
        true => format!("{base}/drift/sketch"),
        false => format!("{base}/drift/sketch?{}", query.join("&")),
    };
    let failed = |what: String| format!("{url}: {what}");
    let response = http.get(&url).timeout(Duration::from_secs(30)).send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let bytes = read_limited(response, SketchAnswer::MAX_BYTES).await.map_err(failed)?;
    if !status.is_success() {
        return Err(failed(format!("{status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]))));
    }
    let answer: SketchAnswer =
        serde_json::from_slice(&bytes).map_err(|e| failed(format!("not a drift sketch answer: {e}")))?;
    answer.check().map_err(|e| failed(e.to_string()))?;
    Ok(answer)
}

/// Asks every replica for the windows it closed since its watermark and merges them. A
/// replica that does not answer (or answers something that does not check) is left out and
/// named in `failed`, its watermark kept, so its windows are taken at the next cycle; when no
/// replica answers, the cycle fails. Watermarks of replicas no longer listed are dropped.
pub async fn gather(
    http: &reqwest::Client,
    sources: Sources<'_>,
    watermarks: &BTreeMap<String, u64>,
) -> Result<Gathered, PipelineError> {
    let replicas = replicas(sources).await?;
    let mut next: BTreeMap<String, u64> =
        watermarks.iter().filter(|(k, _)| replicas.contains(k)).map(|(k, v)| (k.clone(), *v)).collect();
    let mut failed = Vec::new();
    // Per profile id: (profile, merged sketch, versions).
    let mut merged: BTreeMap<String, (Profile, Sketch, BTreeSet<String>)> = BTreeMap::new();
    for base in &replicas {
        let answer = match fetch(http, base, watermarks.get(base).copied(), sources.open).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering every connection with `head` then `body_len` bytes of `x`.
    async fn serve_once(head: String, body_len: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 8192];
                    let mut left = body_len;
                    while left > 0 {
                        let n = left.min(chunk.len());
                        if s.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                });
            }
        });
        format!("http://{addr}/")
    }

    async fn get(url: &str) -> reqwest::Response {
        reqwest::Client::new().get(url).send().await.unwrap()
    }

    #[tokio::test]
    async fn answers_past_the_limit_are_refused_whether_or_not_they_say_their_length() {
        let limit = 100_000;
        let sized = serve_once(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", limit + 1), limit + 1).await;
        let err = read_limited(get(&sized).await, limit).await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");
        // No length given: read until the connection closes, and stopped at the limit.
        let no_length = serve_once("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(), 10 * limit).await;
        let err = read_limited(get(&no_length).await, limit).await.unwrap_err();
        assert!(err.contains("larger than"), "{err}");
        let fits = serve_once(format!("HTTP/1.1 200 OK\r\ncontent-length: {limit}\r\n\r\n"), limit).await;
        assert_eq!(read_limited(get(&fits).await, limit).await.unwrap().len(), limit);
    }
}
