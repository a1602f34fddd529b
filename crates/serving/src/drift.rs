//! Online drift: every model whose package carries a drift profile gets a [`Recorder`] of the
//! rows it scores (per-window sketches in the profile's cells). [`DriftSketches`] keeps the
//! recorders of the models served within the retention, answers `GET /drift/sketch`, and
//! exposes the sketches as metrics.

use exposition::prometheus_client::collector::Collector;
use exposition::prometheus_client::encoding::DescriptorEncoder;
use sketch::{ColumnSketch, Profile, ProfileKind, Recorder, RecorderConfig, SketchAnswer};
use std::fmt;
use std::sync::{Arc, Mutex};

/// The recorders of the profiles served lately.
pub struct DriftSketches {
    config: Option<RecorderConfig>,
    recorders: Mutex<Vec<Arc<Recorder>>>,
}

impl DriftSketches {
    /// `None`: online drift off.
    pub fn new(config: Option<RecorderConfig>) -> DriftSketches {
        DriftSketches { config, recorders: Mutex::new(Vec::new()) }
    }

    pub fn enabled(&self) -> bool {
        self.config.is_some()
    }

    /// The recorder for a model just loaded with `profile` (the same recorder again when the
    /// version and profile are ones served before); recorders with nothing left in the retention are dropped.
    pub fn attach(&self, profile: Option<&Arc<Profile>>, version: &str) -> Option<Arc<Recorder>> {
        let (config, profile) = (self.config?, profile?);
        let mut all = self.recorders.lock().unwrap_or_else(|e| e.into_inner());
        // Per version too: a retrained version with the same profile (same training data) is
        // reported under its own label, as the canary and the loop ask by version.
        if let Some(r) = all.iter().find(|r| r.profile().id == profile.id && r.model_version() == version) {
            return Some(r.clone());
        }
        all.retain(|r| r.has_recent());
        let r = Arc::new(Recorder::new(profile.clone(), version, config));
        all.push(r.clone());
        Some(r)
    }

    /// `GET /drift/sketch?since=`: the closed windows since `since_ms`, one entry per profile;
    /// with `open` (`&open=true`), every window that ends after `since_ms`, the open ones too
    /// ([`Recorder::all_since`]).
    pub fn answer(&self, since_ms: Option<u64>, open: bool) -> SketchAnswer {
        let all = self.recorders.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // One clock reading for every profile: the windows taken end at the same time for all.
        let now_ms = sketch::now_ms();
        let take = |r: &Arc<Recorder>| match open {
            true => r.all_since(since_ms.unwrap_or(0), now_ms),
            false => r.closed_since(since_ms, now_ms),
        };
        SketchAnswer {
            window_ms: self.config.map_or(0, |c| c.window.as_millis() as u64),
            now_ms,
            sketches: all.iter().filter_map(take).collect(),
        }
    }

    /// The metrics of every recorder (read at scrape time).
    pub fn collector(&self) -> SketchMetrics {
        SketchMetrics(self.recorders.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Per profile: rows sketched, and per feature the rows in each PSI bin (numeric: labelled by
/// the bin's upper edge, `+Inf` for the last; categorical: by the training data's categories,
/// plus `(new)` for all others) with the reference's share of the same bin, so PSI can be
/// computed in PromQL.
pub struct SketchMetrics(Vec<Arc<Recorder>>);

impl fmt::Debug for SketchMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SketchMetrics({} recorders)", self.0.len())
    }
}

impl Collector for SketchMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let mut rows = Vec::new();
        let mut bins = Vec::new();
        let mut shares = Vec::new();
        for r in &self.0 {
            let profile = r.profile();
            let total = r.lifetime();
            let version = r.model_version().to_string();
            rows.push(([("model_version", version.clone())], total.rows));
            for (col, cells) in profile.columns.iter().zip(&total.columns) {
                let label =
                    |bin: String| [("model_version", version.clone()), ("feature", col.name.clone()), ("bin", bin)];
                match (&col.kind, cells) {
                    (ProfileKind::Numeric(p), ColumnSketch::Numeric(c)) => {
                        let (reference, current) = (p.psi_counts(&p.reference), p.psi_counts(c));
                        let n_r = reference.iter().sum::<u64>().max(1) as f64;
                        let last = p.psi_edges.len() - 2;
                        for (i, (r, c)) in reference.iter().zip(&current).enumerate() {
                            let bin = if i == last { "+Inf".to_string() } else { format!("{}", p.psi_edges[i + 1]) };
                            bins.push((label(bin.clone()), *c));
                            shares.push((label(bin), *r as f64 / n_r));
                        }
                    }
                    (ProfileKind::Categorical(p), ColumnSketch::Categorical(c)) => {
                        // The training data's categories as labels; new ones (any text a client
                        // sends) only summed, so clients cannot create series.
                        let n_r = p.reference.total().max(1) as f64;
                        for (k, n) in &p.reference.counts {
                            shares.push((label(k.clone()), *n as f64 / n_r));
                            bins.push((label(k.clone()), c.counts.get(k).copied().unwrap_or(0)));
                        }
                        let new = c.total() - p.reference.counts.keys().filter_map(|k| c.counts.get(k)).sum::<u64>();
                        bins.push((label("(new)".into()), new));
                    }
                    _ => {}
                }
            }
        }
        exposition::counter(&mut e, "factory_drift_rows", "Rows sketched for online drift, by model version", rows)?;
        exposition::counter(
            &mut e,
            "factory_drift_bin_rows",
            "Rows sketched per feature and PSI bin (numeric: upper edge; categorical: category)",
            bins,
        )?;
        exposition::gauge(&mut e, "factory_drift_reference_share", "The reference's share of each PSI bin", shares)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sketch::{ColumnInput, Values};
    use std::time::Duration;

    #[test]
    fn each_version_is_sketched_under_its_own_label_even_with_the_same_profile() {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        let profile = Arc::new(Profile::build(&[("x", ColumnInput::Numeric(&values))]));
        let config = RecorderConfig { window: Duration::from_secs(3600), retention: Duration::from_secs(7200) };
        let sketches = DriftSketches::new(Some(config));
        let score = |r: &Recorder, x: f64| r.observe(1, |_| Values::Numeric(std::slice::from_ref(&x)));
        // Version 3 retrained on the same data as version 2: the same profile.
        let v2 = sketches.attach(Some(&profile), "2").unwrap();
        score(&v2, 1.0);
        let v3 = sketches.attach(Some(&profile), "3").unwrap();
        score(&v3, 2.0);
        score(&v3, 3.0);
        assert!(Arc::ptr_eq(&v2, &sketches.attach(Some(&profile), "2").unwrap()), "version 2 again: its recorder");
        let answer = sketches.answer(Some(0), true);
        let mut got: Vec<(String, u64)> =
            answer.sketches.iter().map(|s| (s.model_version.clone(), s.sketch.rows)).collect();
        got.sort();
        assert_eq!(got, [("2".to_string(), 1), ("3".to_string(), 2)]);
        assert!(sketches.answer(None, false).sketches.is_empty(), "the hour-long window is still open");
        assert!(DriftSketches::new(None).attach(Some(&profile), "2").is_none(), "online drift off");
    }
}
