//! Hydrated runs kept in memory under their `data_version` (migration 0006).
//!
//! Every transaction that changes how a run reads bumps `runs.data_version` in the database,
//! under the run's row lock, so `(run_uuid, data_version)` names exactly one committed state
//! of the run, whichever server process wrote it. A search selects only the ids and versions
//! of its page; runs whose version is cached are not read again (their metrics, params, tags
//! and inputs are where the time of a search goes), the others are hydrated and cached.

use crate::model::SharedRun;
use crate::stats::StoreStats;
use std::sync::Arc;

/// Bytes of hydrated runs kept (estimated; the least recently useful go first).
const CAPACITY_BYTES: u64 = 32 << 20;
/// A run's estimated fixed size besides its strings.
const RUN_OVERHEAD: u64 = 256;

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, (i64, Arc<SharedRun>)> for Weight {
    fn weight(&self, key: &String, (_, run): &(i64, Arc<SharedRun>)) -> u64 {
        let kv =
            |items: &[crate::model::KeyValue]| items.iter().map(|t| t.key.len() + t.value.len() + 48).sum::<usize>();
        let info = &run.info;
        let inputs: usize = run
            .inputs
            .iter()
            .map(|i| {
                let d = &i.dataset;
                kv(&i.tags)
                    + d.name.len()
                    + d.digest.len()
                    + d.source.len()
                    + d.source_type.len()
                    + d.schema.as_ref().map_or(0, String::len)
                    + d.profile.as_ref().map_or(0, String::len)
                    + 160
            })
            .sum();
        let bytes = key.len()
            + info.run_name.len()
            + info.user_id.len()
            + info.artifact_uri.len()
            + run.metrics.iter().map(|m| m.key.len() + 96).sum::<usize>()
            + kv(&run.params)
            + kv(&run.tags)
            + inputs
            + run.model_inputs.iter().map(|m| m.len() + 24).sum::<usize>()
            + run.model_outputs.iter().map(|m| m.model_id.len() + 32).sum::<usize>();
        // Twice: the run, and the rendering a reader may keep beside it.
        2 * bytes as u64 + RUN_OVERHEAD
    }
}

/// The cache of one store (one database).
pub(super) struct RunCache {
    runs: quick_cache::sync::Cache<String, (i64, Arc<SharedRun>), Weight>,
    stats: StoreStats,
}

impl RunCache {
    pub(crate) fn new(stats: StoreStats) -> RunCache {
        RunCache { runs: quick_cache::sync::Cache::with_weighter(16_384, CAPACITY_BYTES, Weight), stats }
    }

    /// The run as of `version`, when that state is cached (counted as a hit, a miss, or stale
    /// when another version of the run is cached).
    pub(crate) fn get(&self, run_id: &str, version: i64) -> Option<Arc<SharedRun>> {
        match self.runs.get(run_id) {
            Some((v, run)) if v == version => {
                self.stats.run_cache_hits.inc();
                Some(run)
            }
            Some(_) => {
                self.stats.run_cache_stale.inc();
                None
            }
            None => {
                self.stats.run_cache_misses.inc();
                None
            }
        }
    }

    /// Estimated bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        self.runs.weight()
    }

    /// Keeps the run as read at `version` (replacing any other version of it).
    pub(crate) fn insert(&self, version: i64, run: Arc<SharedRun>) {
        self.runs.insert(run.info.run_id.clone(), (version, run));
    }
}
