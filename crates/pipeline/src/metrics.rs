//! The loop's Prometheus metrics (`factory_loop_*`, docs/metrics.md), kept per pipeline and
//! updated after each cycle: a cycle's gauges keep their values until the next cycle of that
//! pipeline; the drift gauges change only when a cycle ran a drift check.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use exposition::prometheus_client::collector::Collector;
use exposition::prometheus_client::encoding::DescriptorEncoder;

use crate::report::{ColumnScore, CycleReport, Decision};
use crate::PipelineError;

/// `decision` label values of `factory_loop_cycles_total`.
pub const DECISIONS: [&str; 7] =
    ["skipped", "no_drift", "drift_reported", "champion_kept", "promoted", "rolled_back", "failed"];

fn decision_label(d: Decision) -> &'static str {
    match d {
        Decision::Skipped => "skipped",
        Decision::NoDrift => "no_drift",
        Decision::DriftReported => "drift_reported",
        Decision::ChampionKept => "champion_kept",
        Decision::Promoted => "promoted",
        Decision::RolledBack => "rolled_back",
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// The last drift check of a pipeline.
#[derive(Debug, Clone, Default)]
struct DriftFigures {
    share: f64,
    detected: bool,
    columns: Vec<ColumnScore>,
}

#[derive(Debug, Clone, Default)]
struct Figures {
    cycles: BTreeMap<&'static str, u64>,
    last_end: Option<f64>,
    last_duration: f64,
    last_success: bool,
    current_rows: Option<u64>,
    drift: Option<DriftFigures>,
    webhook_ok: u64,
    webhook_failed: u64,
    next_run: Option<f64>,
}

/// Every pipeline's figures (shared between the scheduler, the listener and the push).
#[derive(Debug, Default)]
pub struct LoopMetrics {
    pipelines: Mutex<BTreeMap<String, Figures>>,
}

impl LoopMetrics {
    fn with<R>(&self, pipeline: &str, f: impl FnOnce(&mut Figures) -> R) -> R {
        let mut all = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(pipeline.to_string()).or_default())
    }

    /// Records a finished cycle of `pipeline` that began at `started`.
    pub fn record(&self, pipeline: &str, result: &Result<CycleReport, PipelineError>, started: SystemTime) {
        let ended = SystemTime::now();
        self.with(pipeline, |f| {
            f.last_end = Some(unix(ended));
            match result {
                Ok(r) => {
                    *f.cycles.entry(decision_label(r.decision)).or_default() += 1;
                    f.last_success = true;
                    f.last_duration = r.seconds;
                    f.current_rows = Some(r.rows);
                    if let Some(share) = r.share_of_drifted_columns {
                        f.drift =
                            Some(DriftFigures { share, detected: r.significant_drift, columns: r.columns.clone() });
                    }
                    match &r.webhook {
                        Some(d) if d.delivered => f.webhook_ok += 1,
                        Some(_) => f.webhook_failed += 1,
                        None => {}
                    }
                }
                Err(_) => {
                    *f.cycles.entry("failed").or_default() += 1;
                    f.last_success = false;
                    f.last_duration = ended.duration_since(started).unwrap_or_default().as_secs_f64();
                }
            }
        });
    }

    /// The next scheduled cycle of `pipeline` (scheduler mode), `None` when none is due.
    pub fn set_next_run(&self, pipeline: &str, next: Option<SystemTime>) {
        self.with(pipeline, |f| f.next_run = next.map(unix));
    }

    /// A registry with `factory_build_info{component="loop"}` and the figures of every
    /// pipeline, or of `only` that one (a Pushgateway group holds one pipeline).
    pub fn registry(self: &Arc<Self>, only: Option<&str>) -> exposition::Registry {
        let mut r = exposition::registry("loop");
        r.register_collector(Box::new(Snapshot { metrics: self.clone(), only: only.map(str::to_string) }));
        r
    }

    /// The text exposition of every pipeline.
    pub fn render(self: &Arc<Self>) -> String {
        exposition::encode(&self.registry(None))
    }

    /// The text exposition of one pipeline (what is pushed for it).
    pub fn render_pipeline(self: &Arc<Self>, pipeline: &str) -> String {
        exposition::encode(&self.registry(Some(pipeline)))
    }
}

struct Snapshot {
    metrics: Arc<LoopMetrics>,
    only: Option<String>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").field("only", &self.only).finish()
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let all = self.metrics.pipelines.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let figures: Vec<(&str, &Figures)> = all
            .iter()
            .filter(|(name, _)| self.only.as_deref().is_none_or(|o| o == name.as_str()))
            .map(|(n, f)| (n.as_str(), f))
            .collect();
        let e = &mut e;
        let per = |f: &dyn Fn(&Figures) -> Option<f64>| {
            figures.iter().filter_map(|(name, fig)| f(fig).map(|v| ([("pipeline", *name)], v))).collect::<Vec<_>>()
        };
        let mut cycles = Vec::new();
        for (name, f) in &figures {
            for d in DECISIONS {
                cycles.push(([("pipeline", *name), ("decision", d)], f.cycles.get(d).copied().unwrap_or(0)));
            }
        }
        exposition::counter(e, "factory_loop_cycles", "Cycles run, by decision", cycles)?;
        exposition::gauge(
            e,
            "factory_loop_last_cycle_timestamp_seconds",
            "When the last cycle ended (Unix time)",
            per(&|f| f.last_end),
        )?;
        exposition::gauge(
            e,
            "factory_loop_last_cycle_duration_seconds",
            "How long the last cycle took",
            per(&|f| f.last_end.map(|_| f.last_duration)),
        )?;
        exposition::gauge(
            e,
            "factory_loop_last_cycle_success",
            "1 if the last cycle ran to its decision, 0 if it failed",
            per(&|f| f.last_end.map(|_| if f.last_success { 1.0 } else { 0.0 })),
        )?;
        exposition::gauge(
            e,
            "factory_loop_drift_share",
            "Share of drifted columns in the last drift check",
            per(&|f| f.drift.as_ref().map(|d| d.share)),
        )?;
        exposition::gauge(
            e,
            "factory_loop_drift_detected",
            "1 if the last drift check found significant drift",
            per(&|f| f.drift.as_ref().map(|d| if d.detected { 1.0 } else { 0.0 })),
        )?;
        let mut scores = Vec::new();
        let mut drifted = Vec::new();
        for (name, f) in &figures {
            for c in f.drift.iter().flat_map(|d| &d.columns) {
                scores.push((
                    [("pipeline", *name), ("column", c.column.as_str()), ("stattest", c.stattest)],
                    c.drift_score,
                ));
                drifted.push(([("pipeline", *name), ("column", c.column.as_str())], i64::from(c.drift_detected)));
            }
        }
        exposition::gauge(
            e,
            "factory_loop_column_drift_score",
            "Each column's score in the last drift check (a p-value or a distance)",
            scores,
        )?;
        exposition::gauge(e, "factory_loop_column_drifted", "1 if the column's test detected drift", drifted)?;
        exposition::gauge(
            e,
            "factory_loop_current_rows",
            "Request-log rows the last check read",
            per(&|f| f.current_rows.map(|r| r as f64)),
        )?;
        let mut deliveries = Vec::new();
        for (name, f) in &figures {
            deliveries.push(([("pipeline", *name), ("outcome", "ok")], f.webhook_ok));
            deliveries.push(([("pipeline", *name), ("outcome", "failed")], f.webhook_failed));
        }
        exposition::counter(e, "factory_loop_webhook_deliveries", "repository_dispatch deliveries", deliveries)?;
        exposition::gauge(
            e,
            "factory_loop_next_run_timestamp_seconds",
            "Next scheduled cycle (scheduler mode only)",
            per(&|f| f.next_run),
        )
    }
}
