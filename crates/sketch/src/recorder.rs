//! [`Recorder`]: the sketches serving keeps for one profile — one [`Sketch`] per time window
//! (per shard while the window is open: a request thread writes to its own shard, so
//! concurrent requests do not wait on each other), a lifetime total for the metrics.

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

/// The windows one shard's threads are still writing to.
struct Shard {
    /// `(window start ms, sketch)`, oldest first.
    open: VecDeque<(u64, Sketch)>,
}

/// A shard's lock on a cache line of its own, so that threads writing to neighbouring shards do
/// not invalidate each other's line.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// Windows every shard has finished: one sketch per window, and everything ever folded.
struct Closed {
    /// `(window start ms, sketch)`, oldest first, within the retention.
    windows: VecDeque<(u64, Sketch)>,
    lifetime: Sketch,
}

/// Per-window sketches of the rows one model (one profile) scored. A request thread writes
/// to its own shard; once a window is over (and a grace period passed), its shards' sketches
/// are folded into one, so memory holds one sketch per closed window.
pub struct Recorder {
    profile: Arc<Profile>,
    model_version: String,
    window_ms: u64,
    retention_ms: u64,
    shards: Box<[Padded]>,
    closed: Mutex<Closed>,
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

/// The clock windows are cut by (Unix milliseconds).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    /// A recorder with one shard per core.
    pub fn new(profile: Arc<Profile>, model_version: impl Into<String>, config: RecorderConfig) -> Recorder {
        let shards = std::thread::available_parallelism().map_or(2, |n| n.get()).max(1);
        Recorder {
            window_ms: (config.window.as_millis() as u64).max(1),
            retention_ms: config.retention.as_millis() as u64,
            model_version: model_version.into(),
            shards: (0..shards).map(|_| Padded(Mutex::new(Shard { open: VecDeque::new() }))).collect(),
            closed: Mutex::new(Closed { windows: VecDeque::new(), lifetime: profile.empty_sketch() }),
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

    /// How long after its end a window is taken as finished: half a window, at most a second
    /// (a request that read the clock in the window has written by then).
    fn grace_ms(&self) -> u64 {
        (self.window_ms / 2).min(1000)
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i % self.shards.len()].0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_closed(&self) -> MutexGuard<'_, Closed> {
        self.closed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a scored batch of `rows` rows; `column(name)` gives each profile column's values.
    pub fn observe<'a>(&self, rows: usize, column: impl Fn(&str) -> Values<'a>) {
        let mut shard = self.lock(SHARD.with(|s| *s));
        // The clock is read under the shard's lock, so a window is folded only after every
        // write that read a time inside it.
        let now = now_ms();
        let start = now - now % self.window_ms;
        let at = shard.open.partition_point(|(s, _)| *s < start);
        if shard.open.get(at).is_none_or(|(s, _)| *s != start) {
            shard.open.insert(at, (start, self.profile.empty_sketch()));
            // A new window began here: hand the finished ones over.
            self.fold(&mut shard, now);
        }
        let at = shard.open.partition_point(|(s, _)| *s < start);
        let Some((_, sketch)) = shard.open.get_mut(at) else { return };
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

    /// Moves `shard`'s finished windows (as of `now`) into the closed ones.
    fn fold(&self, shard: &mut Shard, now: u64) {
        let grace = self.grace_ms();
        let mut done = Vec::new();
        while shard.open.front().is_some_and(|(s, _)| s + self.window_ms + grace <= now) {
            done.extend(shard.open.pop_front());
        }
        if done.is_empty() {
            return;
        }
        let mut closed = self.lock_closed();
        for (start, sketch) in done {
            let _ = closed.lifetime.merge(&sketch);
            let at = closed.windows.partition_point(|(s, _)| *s < start);
            match closed.windows.get_mut(at) {
                Some((s, merged)) if *s == start => {
                    let _ = merged.merge(&sketch);
                }
                _ => closed.windows.insert(at, (start, sketch)),
            }
        }
        while closed.windows.front().is_some_and(|(s, _)| s + self.retention_ms < now) {
            closed.windows.pop_front();
        }
    }

    fn fold_all(&self, now: u64) {
        for i in 0..self.shards.len() {
            self.fold(&mut self.lock(i), now);
        }
    }

    /// The finished windows (as of `now_ms`, Unix milliseconds) that start at or after
    /// `since_ms`, merged. `None` when there are none. A caller that asks again with `since` =
    /// the answer's `until_ms` gets every window exactly once.
    pub fn closed_since(&self, since_ms: Option<u64>, now_ms: u64) -> Option<ProfileSketch> {
        // Only windows finished as of `now_ms` on every shard: a request thread with a later
        // clock may already have folded its own shard's part of a younger window, and taking
        // that part would move the caller's `since` past the rest.
        let finished = |start: u64| start + self.window_ms + self.grace_ms() <= now_ms;
        self.merged(now_ms, false, |start| finished(start) && since_ms.is_none_or(|since| start >= since))
    }

    /// Every window that ends after `since_ms`, the open ones included: what was scored since
    /// then (and in the part of the window holding `since_ms` before it), for a look now — a
    /// canary's drift check. Not for resuming: the open windows come again in a later
    /// [`closed_since`](Self::closed_since) answer.
    pub fn all_since(&self, since_ms: u64, now_ms: u64) -> Option<ProfileSketch> {
        self.merged(now_ms, true, |start| start + self.window_ms > since_ms)
    }

    /// The windows whose start `keep` accepts, merged: the closed ones and, with `open`, those
    /// still being written to.
    fn merged(&self, now_ms: u64, open: bool, keep: impl Fn(u64) -> bool) -> Option<ProfileSketch> {
        self.fold_all(now_ms);
        // Every shard's lock, in order, then the closed windows' (the order `fold` takes them
        // in), so no window moves from a shard to the closed ones between the two reads. The
        // shards are released as soon as their open windows are copied: request threads wait
        // only for the copy, not for the merge.
        let shards: Vec<MutexGuard<'_, Shard>> =
            if open { (0..self.shards.len()).map(|i| self.lock(i)).collect() } else { Vec::new() };
        let open_windows: Vec<(u64, Sketch)> =
            shards.iter().flat_map(|s| s.open.iter()).filter(|(s, _)| keep(*s)).cloned().collect();
        let closed = self.lock_closed();
        drop(shards);
        let mut merged = self.profile.empty_sketch();
        let mut starts = std::collections::BTreeSet::new();
        for (start, sketch) in closed.windows.iter().filter(|(s, _)| keep(*s)).chain(&open_windows) {
            let _ = merged.merge(sketch);
            starts.insert(*start);
        }
        drop(closed);
        let (from, until) = (*starts.first()?, starts.last()? + self.window_ms);
        Some(ProfileSketch {
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
        self.fold_all(now_ms());
        let mut total = self.lock_closed().lifetime.clone();
        for i in 0..self.shards.len() {
            for (_, s) in &self.lock(i).open {
                let _ = total.merge(s);
            }
        }
        total
    }

    /// Whether any window is still within the retention (else the recorder can be dropped).
    pub fn has_recent(&self) -> bool {
        let now = now_ms();
        self.fold_all(now);
        (0..self.shards.len()).any(|i| !self.lock(i).open.is_empty())
            || self.lock_closed().windows.back().is_some_and(|(s, _)| s + self.window_ms + self.retention_ms > now)
    }
}
