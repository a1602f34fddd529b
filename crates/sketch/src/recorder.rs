//! [`Recorder`]: the sketches serving keeps for one profile — one [`Sketch`] per time window,
//! per shard (a request thread writes to its own shard, so concurrent requests do not wait
//! on each other), windows older than the retention folded into a lifetime total.

use crate::{ColumnSketch, Profile, ProfileKind, ProfileSketch, Sketch};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Window length and how long windows are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    pub window: Duration,
    pub retention: Duration,
}

impl Default for RecorderConfig {
    /// Five-minute windows kept for a day.
    fn default() -> Self {
        RecorderConfig { window: Duration::from_secs(300), retention: Duration::from_secs(86_400) }
    }
}

/// One column's values in a scored batch.
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    Numeric(&'a [f64]),
    Categorical(&'a [Option<String>]),
    /// The batch has no such column (it is counted as missing).
    Absent,
}

struct Shard {
    /// `(window start ms, sketch)`, oldest first.
    windows: VecDeque<(u64, Sketch)>,
    /// Windows past the retention, summed.
    evicted: Sketch,
}

/// Per-window sketches of the rows one model (one profile) scored.
pub struct Recorder {
    profile: Arc<Profile>,
    model_version: String,
    window_ms: u64,
    retention_ms: u64,
    shards: Box<[Mutex<Shard>]>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("profile", &self.profile.id)
            .field("model_version", &self.model_version)
            .field("window_ms", &self.window_ms)
            .finish_non_exhaustive()
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    /// A recorder with one shard per core.
    pub fn new(profile: Arc<Profile>, model_version: impl Into<String>, config: RecorderConfig) -> Recorder {
        let shards = std::thread::available_parallelism().map_or(2, |n| n.get()).max(1) * 2;
        let empty = profile.empty_sketch();
        Recorder {
            window_ms: (config.window.as_millis() as u64).max(1),
            retention_ms: config.retention.as_millis() as u64,
            model_version: model_version.into(),
            shards: (0..shards)
                .map(|_| Mutex::new(Shard { windows: VecDeque::new(), evicted: empty.clone() }))
                .collect(),
            profile,
        }
    }

    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }

    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i % self.shards.len()].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a scored batch of `rows` rows; `column(name)` gives each profile column's values.
    pub fn observe<'a>(&self, rows: usize, column: impl Fn(&str) -> Values<'a>) {
        let now = now_ms();
        let start = now - now % self.window_ms;
        let mut shard = self.lock(SHARD.with(|s| *s));
        let shard = &mut *shard;
        if shard.windows.back().is_none_or(|(s, _)| *s < start) {
            while shard.windows.front().is_some_and(|(s, _)| s + self.retention_ms < start) {
                if let Some((_, old)) = shard.windows.pop_front() {
                    let _ = shard.evicted.merge(&old);
                }
            }
            shard.windows.push_back((start, self.profile.empty_sketch()));
        }
        // A thread that read the clock just before another moved to a newer window still
        // counts in its own (older) window.
        let Some((_, sketch)) = shard.windows.iter_mut().rev().find(|(s, _)| *s <= start) else { return };
        sketch.rows += rows as u64;
        for (cells, col) in sketch.columns.iter_mut().zip(&self.profile.columns) {
            match (cells, &col.kind, column(&col.name)) {
                (ColumnSketch::Numeric(cells), ProfileKind::Numeric(p), Values::Numeric(v)) => {
                    v.iter().for_each(|&x| cells.add(&p.edges, x))
                }
                (ColumnSketch::Categorical(counts), ProfileKind::Categorical(p), Values::Categorical(v)) => {
                    let known = p.reference.counts.len();
                    v.iter().for_each(|x| counts.add(x.as_deref(), known))
                }
                (ColumnSketch::Numeric(cells), _, _) => cells.missing += rows as u64,
                (ColumnSketch::Categorical(counts), _, _) => counts.missing += rows as u64,
            }
        }
    }

    /// The windows closed at least a moment ago (half a window, at most a second: no request
    /// still writes to them) that start at or after `since_ms`, merged. `None` when there are
    /// none.
    pub fn closed_since(&self, since_ms: Option<u64>) -> Option<ProfileSketch> {
        let now = now_ms();
        let grace = (self.window_ms / 2).min(1000);
        let mut merged = self.profile.empty_sketch();
        let (mut from, mut until, mut starts) = (u64::MAX, 0, Vec::new());
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            for (start, sketch) in &shard.windows {
                let end = start + self.window_ms;
                if since_ms.is_some_and(|s| *start < s) || end + grace > now {
                    continue;
                }
                let _ = merged.merge(sketch);
                from = from.min(*start);
                until = until.max(end);
                starts.push(*start);
            }
        }
        starts.sort_unstable();
        starts.dedup();
        (!starts.is_empty()).then(|| ProfileSketch {
            profile: (*self.profile).clone(),
            model_version: self.model_version.clone(),
            from_ms: from,
            until_ms: until,
            windows: starts.len() as u64,
            sketch: merged,
        })
    }

    /// Everything counted since the recorder started (for the metrics).
    pub fn lifetime(&self) -> Sketch {
        let mut total = self.profile.empty_sketch();
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            let _ = total.merge(&shard.evicted);
            for (_, s) in &shard.windows {
                let _ = total.merge(s);
            }
        }
        total
    }

    /// Whether any window is still within the retention (else the recorder can be dropped).
    pub fn has_recent(&self) -> bool {
        let now = now_ms();
        (0..self.shards.len())
            .any(|i| self.lock(i).windows.back().is_some_and(|(s, _)| s + self.window_ms + self.retention_ms > now))
    }
}
