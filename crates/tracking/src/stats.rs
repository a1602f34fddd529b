//! Figures of a store for monitoring: the group commit of `log-metric`, the run cache and the
//! connection pools. They are `prometheus-client` metrics (shared handles, updated where the
//! work happens); the HTTP layer registers them under the names in docs/metrics.md.

use exposition_types::*;

/// Re-exported `prometheus-client` types the fields use.
pub mod exposition_types {
    pub use prometheus_client::metrics::counter::Counter;
    pub use prometheus_client::metrics::gauge::Gauge;
    pub use prometheus_client::metrics::histogram::Histogram;
}

/// Metrics per group commit (1, 2, 4 … 1024).
const BATCH_BUCKETS: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
/// 0.5 ms … 10 s.
pub const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counters and histograms of one store (cheap handles; clones share the numbers).
#[derive(Clone, Debug)]
pub struct StoreStats {
    /// Group-commit transactions of `log-metric`.
    pub group_commit_batches: Counter,
    /// Metrics written per group commit.
    pub group_commit_batch_metrics: Histogram,
    /// One group commit, from dequeue to commit.
    pub group_commit_duration: Histogram,
    /// `log-metric` calls waiting for the writer.
    pub group_commit_queue_depth: Gauge,
    /// Run-cache look-ups that found the asked version.
    pub run_cache_hits: Counter,
    /// Run-cache look-ups that found nothing.
    pub run_cache_misses: Counter,
    /// Run-cache look-ups that found an older (or other) version of the run.
    pub run_cache_stale: Counter,
}

impl Default for StoreStats {
    fn default() -> StoreStats {
        StoreStats {
            group_commit_batches: Counter::default(),
            group_commit_batch_metrics: Histogram::new(BATCH_BUCKETS),
            group_commit_duration: Histogram::new(DURATION_BUCKETS),
            group_commit_queue_depth: Gauge::default(),
            run_cache_hits: Counter::default(),
            run_cache_misses: Counter::default(),
            run_cache_stale: Counter::default(),
        }
    }
}

/// One connection pool's state now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// `read` or `write` (PostgreSQL: one shared pool, reported as `read`).
    pub pool: &'static str,
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}
