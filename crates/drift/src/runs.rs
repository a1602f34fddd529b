//! Bounded-memory storage of one numeric column: values are collected into fixed-size
//! buffers, each buffer is sorted into a *run*, and runs beyond the memory budget are
//! written to a temporary file. Reading merges all runs back into one ascending stream, so
//! exact order statistics (KS, Wasserstein, histograms) need only O(runs) memory.
//!
//! Values are stored as order-preserving `u64` keys (see [`key`]) so that sorting and
//! merging compare integers.

use crate::error::{DriftError, Result};
use std::fs::File;
use std::hint::select_unpredictable;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Maps a finite `f64` to a `u64` whose unsigned order is the numeric order.
pub fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Inverse of [`key`].
pub fn value(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// Memory budget and spill directory shared by every column of a drift computation.
#[derive(Debug)]
pub struct Budget {
    /// Values per run buffer.
    run_len: usize,
    /// Bytes of sorted runs we may keep in memory, across all columns.
    resident_limit: usize,
    resident: AtomicUsize,
    spilled_bytes: AtomicU64,
    dir: tempfile::TempDir,
    next_file: AtomicUsize,
    /// Buffers of `run_len` values to reuse (spilled runs), so that the
    /// steady state allocates nothing and takes no page faults.
    pool: Mutex<Vec<Vec<u64>>>,
}

impl Budget {
    /// A budget of `bytes` for `columns` numeric columns, spilling into `temp_dir`
    /// (the system's temporary directory when `None`).
    pub fn new(bytes: usize, columns: usize, temp_dir: Option<&Path>) -> Result<Arc<Budget>> {
        let builder = tempfile::Builder::new()
            .prefix("factory-drift-")
            .tempdir_in(temp_dir.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir));
        let dir = builder.map_err(|e| DriftError::io(temp_dir.unwrap_or(Path::new("$TMPDIR")), e))?;
        // Half the budget for the buffers being filled, half for finished runs.
        let run_len = (bytes / 2 / 8 / columns.max(1)).clamp(1 << 14, 1 << 24);
        Ok(Arc::new(Budget {
            run_len,
            resident_limit: bytes / 2,
            resident: AtomicUsize::new(0),
            spilled_bytes: AtomicU64::new(0),
            dir,
            next_file: AtomicUsize::new(0),
            pool: Mutex::new(Vec::new()),
        }))
    }

    /// Bytes written to temporary files so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Sorts a full buffer and keeps it in memory if the budget allows, else writes it to a
    /// temporary file.
    pub fn sort_run(&self, mut run: Vec<u64>) -> Result<SortedRun> {
        // The standard library's unstable sort on the integer keys: 1.4-1.5x faster than the
        // LSD radix sort (11-bit digits, 6 passes) this replaced, on runs of 65 536 keys of
        // 6-decimal floats (bench/README.md, session 22).
        run.sort_unstable();
        let bytes = run.len() * 8;
        let fits = self
            .resident
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                (r + bytes <= self.resident_limit).then_some(r + bytes)
            })
            .is_ok();
        if fits {
            run.shrink_to_fit();
            return Ok(SortedRun(Run::Memory(run)));
        }
        let path = self.spill_path();
        let file = File::create(&path).map_err(|e| DriftError::io(&path, e))?;
        let mut w = KeyWriter::new(file);
        w.write(&run).map_err(|e| DriftError::io(&path, e))?;
        self.spilled_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let len = run.len();
        self.recycle(run);
        Ok(SortedRun(Run::File { path, len }))
    }

    /// Merges spilled runs into one spilled run and deletes their files.
    pub fn merge_runs(&self, batch: Vec<SortedRun>) -> Result<SortedRun> {
        let runs: Vec<Run> = batch.into_iter().map(|r| r.0).collect();
        let path = self.spill_path();
        let file = File::create(&path).map_err(|e| DriftError::io(&path, e))?;
        let mut w = KeyWriter::new(file);
        let mut merged = open_runs(&runs)?;
        let mut len = 0usize;
        loop {
            let keys = merged.next_chunk()?;
            if keys.is_empty() {
                break;
            }
            w.write(keys).map_err(|e| DriftError::io(&path, e))?;
            len += keys.len();
        }
        drop(merged);
        for r in runs {
            if let Run::File { path, .. } = r {
                let _ = std::fs::remove_file(path);
            }
        }
        self.spilled_bytes.fetch_add(len as u64 * 8, Ordering::Relaxed);
        Ok(SortedRun(Run::File { path, len }))
    }

    /// An empty buffer with room for a run.
    fn buffer(&self) -> Vec<u64> {
        self.pool.lock().expect("buffer pool").pop().unwrap_or_else(|| Vec::with_capacity(self.run_len))
    }

    fn recycle(&self, mut buf: Vec<u64>) {
        buf.clear();
        let mut pool = self.pool.lock().expect("buffer pool");
        // Enough for the next pending buffers; the rest is freed.
        if buf.capacity() >= self.run_len && pool.len() < 8 {
            pool.push(buf);
        }
    }

    fn spill_path(&self) -> PathBuf {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("run-{n}.bin"))
    }
}

/// Writes keys to a spill file as little-endian bytes, a chunk at a time (straight to the
/// file: nothing is buffered, so nothing needs flushing).
struct KeyWriter {
    file: File,
    bytes: Vec<u8>,
}

impl KeyWriter {
    fn new(file: File) -> Self {
        KeyWriter { file, bytes: Vec::with_capacity(FILE_CHUNK * 8) }
    }

    fn write(&mut self, keys: &[u64]) -> std::io::Result<()> {
        for chunk in keys.chunks(FILE_CHUNK) {
            self.bytes.clear();
            self.bytes.extend(chunk.iter().flat_map(|k| k.to_le_bytes()));
            self.file.write_all(&self.bytes)?;
        }
        Ok(())
    }
}

/// Appends `keys` to the [`Runs`] that `select` picks inside `lock` (none: the keys are
/// dropped), sorting and spilling full buffers outside the lock, and compacting spilled runs
/// when there are too many.
pub fn store<T, F>(lock: &Mutex<T>, select: F, budget: &Budget, keys: &[u64]) -> Result<()>
where
    F: for<'a> Fn(&'a mut T) -> Option<&'a mut Runs>,
{
    if keys.is_empty() {
        return Ok(());
    }
    let full = match select(&mut lock.lock().expect("runs lock")) {
        Some(r) => r.extend(keys),
        None => return Ok(()),
    };
    for buf in full {
        let mut run = budget.sort_run(buf)?;
        loop {
            let mut guard = lock.lock().expect("runs lock");
            let Some(r) = select(&mut guard) else {
                break;
            };
            r.push_run(run);
            let Some(batch) = r.take_compaction() else {
                break;
            };
            drop(guard);
            run = budget.merge_runs(batch)?;
        }
    }
    Ok(())
}

/// Walks the pooled distinct values of several sorted [`Runs`] in ascending order, calling
/// `f` with each value and how often it occurs in each source.
pub fn walk(sources: &[&Runs], f: &mut dyn FnMut(f64, &[u64])) -> Result<()> {
    let mut merged = sources.iter().map(|r| r.sorted()).collect::<Result<Vec<_>>>()?;
    let mut heads = merged.iter_mut().map(Merged::next_key).collect::<Result<Vec<_>>>()?;
    let mut counts = vec![0u64; sources.len()];
    loop {
        let k = heads.iter().copied().min().unwrap_or(END);
        if k == END {
            return Ok(());
        }
        for ((m, head), count) in merged.iter_mut().zip(heads.iter_mut()).zip(counts.iter_mut()) {
            *count = 0;
            while *head == k {
                *count += 1;
                *head = m.next_key()?;
            }
        }
        f(value(k), &counts);
    }
}

/// A sorted run, in memory or spilled, ready for [`Runs::push_run`].
#[derive(Debug)]
pub struct SortedRun(Run);

#[derive(Debug)]
enum Run {
    Memory(Vec<u64>),
    File { path: PathBuf, len: usize },
}

/// The sorted runs of one column of one file.
#[derive(Debug)]
pub struct Runs {
    budget: Arc<Budget>,
    pending: Vec<u64>,
    runs: Vec<Run>,
    len: u64,
}

impl Runs {
    /// Empty storage under `budget`.
    pub fn new(budget: Arc<Budget>) -> Self {
        Runs { budget, pending: Vec::new(), runs: Vec::new(), len: 0 }
    }

    /// Number of values stored.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends keys and hands back the buffers that filled up; turn each into a run with
    /// [`Budget::sort_run`] (outside any lock) and give it back through [`Runs::push_run`].
    pub fn extend(&mut self, mut keys: &[u64]) -> Vec<Vec<u64>> {
        let run_len = self.budget.run_len;
        self.len += keys.len() as u64;
        let mut full = Vec::new();
        while !keys.is_empty() {
            if self.pending.capacity() == 0 {
                self.pending = self.budget.buffer();
            }
            let room = run_len - self.pending.len();
            let take = room.min(keys.len());
            self.pending.extend_from_slice(&keys[..take]);
            keys = &keys[take..];
            if self.pending.len() == run_len {
                full.push(std::mem::take(&mut self.pending));
            }
        }
        full
    }

    /// Adds a run made by [`Budget::sort_run`] or [`Budget::merge_runs`].
    pub fn push_run(&mut self, run: SortedRun) {
        self.runs.push(run.0);
    }

    /// When too many runs were spilled, takes the oldest [`MAX_FAN_IN`] of them out, to be
    /// merged into one by [`Budget::merge_runs`] (outside any lock) and pushed back. This
    /// keeps open files and read buffers bounded however long the input is.
    pub fn take_compaction(&mut self) -> Option<Vec<SortedRun>> {
        let spilled = self.runs.iter().filter(|r| matches!(r, Run::File { .. })).count();
        if spilled < 2 * MAX_FAN_IN {
            return None;
        }
        let mut batch = Vec::with_capacity(MAX_FAN_IN);
        let mut i = 0;
        while batch.len() < MAX_FAN_IN && i < self.runs.len() {
            if matches!(self.runs[i], Run::File { .. }) {
                batch.push(SortedRun(self.runs.remove(i)));
            } else {
                i += 1;
            }
        }
        Some(batch)
    }

    /// Turns the partly filled buffer into a run. Call once after the last [`Runs::extend`].
    pub fn seal(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            let run = self.budget.sort_run(pending)?;
            self.push_run(run);
        }
        Ok(())
    }

    /// All values in ascending order (call [`Runs::seal`] first).
    pub fn sorted(&self) -> Result<Merged<'_>> {
        open_runs(&self.runs)
    }
}

fn open_runs(runs: &[Run]) -> Result<Merged<'_>> {
    let mut cursors = Vec::with_capacity(runs.len());
    for run in runs {
        let source = match run {
            Run::Memory(v) => Source::Memory(v),
            Run::File { path, len } => {
                let file = File::open(path).map_err(|e| DriftError::io(path, e))?;
                Source::File { file, path, left: *len, bytes: Vec::new() }
            }
        };
        cursors.push(Cursor { buf: Vec::new(), pos: 0, source });
    }
    Merged::new(cursors)
}

impl Drop for Runs {
    fn drop(&mut self) {
        let bytes: usize = self
            .runs
            .iter()
            .map(|r| match r {
                Run::Memory(v) => v.len() * 8,
                Run::File { .. } => 0,
            })
            .sum();
        self.budget.resident.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Sentinel for an exhausted stream: larger than the key of any finite value.
pub const END: u64 = u64::MAX;

/// A sorted run being read a chunk at a time.
struct Cursor<'a> {
    /// The current chunk; `pos` is the next key to hand out.
    buf: Vec<u64>,
    pos: usize,
    source: Source<'a>,
}

enum Source<'a> {
    /// What is left of a run held in memory.
    Memory(&'a [u64]),
    File {
        file: File,
        path: &'a Path,
        left: usize,
        bytes: Vec<u8>,
    },
}

/// Values read from a spilled run at a time.
const FILE_CHUNK: usize = 1 << 11;
/// Spilled runs merged at once; more are first compacted (see [`Runs::take_compaction`]).
pub const MAX_FAN_IN: usize = 48;

impl Cursor<'_> {
    /// Moves to the next key and returns it ([`END`] when exhausted). A fresh cursor starts
    /// before its first key.
    #[inline]
    fn next(&mut self) -> Result<u64> {
        if let Some(&k) = self.buf.get(self.pos) {
            self.pos += 1;
            return Ok(k);
        }
        self.refill()
    }

    /// Reads the next chunk (copied from memory, decoded from the file) and returns its first key.
    #[cold]
    fn refill(&mut self) -> Result<u64> {
        self.buf.clear();
        match &mut self.source {
            Source::Memory(data) => {
                let (chunk, rest) = data.split_at(data.len().min(FILE_CHUNK));
                self.buf.extend_from_slice(chunk);
                *data = rest;
            }
            Source::File { file, path, left, bytes } => {
                let n = (*left).min(FILE_CHUNK);
                bytes.resize(n * 8, 0);
                file.read_exact(bytes).map_err(|e| DriftError::io(*path, e))?;
                self.buf.extend(bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))));
                *left -= n;
            }
        }
        self.pos = 1;
        Ok(self.buf.first().copied().unwrap_or(END))
    }
}

/// One run's current key in the tournament.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    run: usize,
}

/// A k-way merge of sorted runs: a tournament (loser) tree over the runs' current keys, so
/// each key costs log2(k) comparisons, replaying only the path of the run that gave the last
/// key. Nodes hold the keys themselves, so a step reads one node and no run.
pub struct Merged<'a> {
    cursors: Vec<Cursor<'a>>,
    /// `nodes[n]` for inner node `n` (children `2n` and `2n + 1`; run `i` is leaf
    /// `nodes.len() + i`, runs padded with [`END`] to a power of two) holds the entry that lost
    /// there; `nodes[0]` holds the overall winner.
    nodes: Vec<Entry>,
    /// Keys merged ahead, handed out from `pos`: the tournament runs in a loop of its own,
    /// not once per call.
    out: Vec<u64>,
    pos: usize,
}

impl<'a> Merged<'a> {
    fn new(mut cursors: Vec<Cursor<'a>>) -> Result<Self> {
        let p = cursors.len().next_power_of_two();
        // Play the tournament bottom-up once: winners of every node, losers kept.
        let mut winners = vec![Entry { key: END, run: 0 }; 2 * p];
        for (run, w) in winners[p..].iter_mut().enumerate() {
            let key = match cursors.get_mut(run) {
                Some(c) => c.next()?,
                None => END,
            };
            *w = Entry { key, run };
        }
        let mut nodes = vec![Entry { key: END, run: 0 }; p];
        for n in (1..p).rev() {
            let (a, b) = (winners[2 * n], winners[2 * n + 1]);
            let (win, lose) = if b.key < a.key { (b, a) } else { (a, b) };
            winners[n] = win;
            nodes[n] = lose;
        }
        nodes[0] = winners[1];
        Ok(Merged { cursors, nodes, out: Vec::new(), pos: 0 })
    }

    /// The next key, or [`END`] at the end.
    #[inline]
    pub fn next_key(&mut self) -> Result<u64> {
        if let Some(&k) = self.out.get(self.pos) {
            self.pos += 1;
            return Ok(k);
        }
        self.fill()?;
        self.pos = 1;
        Ok(self.out.first().copied().unwrap_or(END))
    }

    /// The keys not yet handed out, up to a chunk of them (empty at the end).
    pub fn next_chunk(&mut self) -> Result<&[u64]> {
        if self.pos >= self.out.len() {
            self.fill()?;
            self.pos = 0;
        }
        let start = self.pos;
        self.pos = self.out.len();
        Ok(&self.out[start..])
    }

    /// Merges the next chunk of keys into `out`, replacing what was there (none at the end).
    fn fill(&mut self) -> Result<()> {
        self.out.clear();
        let leaves = self.nodes.len();
        while self.out.len() < FILE_CHUNK {
            let top = self.nodes[0];
            if top.key == END {
                break;
            }
            self.out.push(top.key);
            let mut cur = Entry { key: self.cursors[top.run].next()?, run: top.run };
            let mut node = (top.run + leaves) / 2;
            while node > 0 {
                let n = self.nodes[node];
                // Which run wins here is data, not a pattern: selects, not a branch.
                let swap = n.key < cur.key;
                self.nodes[node] = select_unpredictable(swap, cur, n);
                cur = select_unpredictable(swap, n, cur);
                node /= 2;
            }
            self.nodes[0] = cur;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_numbers() {
        let xs = [f64::MIN, -1e300, -2.5, -1.0, -1e-300, 0.0, 1e-300, 1.0, 2.5, 1e300, f64::MAX];
        for w in xs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        }
        for x in xs {
            assert_eq!(value(key(x)), x);
        }
        assert!(key(f64::MAX) < END);
    }

    /// Any number of runs, of any lengths (some empty, some longer than a chunk), with
    /// repeated keys within and across runs, merge into the sorted whole.
    #[test]
    fn tournament_merges_any_number_of_runs() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for k in [0, 1, 2, 3, 5, 8, 9, 17, 64, 100] {
            let runs: Vec<Run> = (0..k)
                .map(|i| {
                    let len = if i % 4 == 3 { 0 } else { (next() % (3 * FILE_CHUNK as u64)) as usize };
                    let mut v: Vec<u64> = (0..len).map(|_| next() % 5000).collect();
                    v.sort_unstable();
                    Run::Memory(v)
                })
                .collect();
            let mut want: Vec<u64> =
                runs.iter().flat_map(|r| if let Run::Memory(v) = r { v.clone() } else { Vec::new() }).collect();
            want.sort_unstable();
            let mut merged = open_runs(&runs).unwrap();
            let mut got = Vec::new();
            loop {
                let key = merged.next_key().unwrap();
                if key == END {
                    break;
                }
                got.push(key);
            }
            assert_eq!(merged.next_key().unwrap(), END, "{k} runs: stays at the end");
            assert_eq!(got, want, "{k} runs");
            // Chunks after a few single keys give the rest, each key once.
            let mut merged = open_runs(&runs).unwrap();
            let mut got: Vec<u64> = (0..3).map(|_| merged.next_key().unwrap()).filter(|&k| k != END).collect();
            loop {
                let chunk = merged.next_chunk().unwrap();
                if chunk.is_empty() {
                    break;
                }
                assert!(chunk.len() <= FILE_CHUNK);
                got.extend_from_slice(chunk);
            }
            assert_eq!(got, want, "{k} runs, by chunks");
        }
    }

    /// Values pushed past the budget come back merged and complete, from memory and disk.
    #[test]
    fn spilled_runs_merge_back_in_order() {
        let budget = Budget::new(1 << 18, 1, None).unwrap();
        let mut runs = Runs::new(budget.clone());
        let n = (2 * MAX_FAN_IN + 8) * budget.run_len + 123; // more than 2·MAX_FAN_IN runs: compaction happens
        let data: Vec<u64> = (0..n as u64).map(|i| key(((i * 7919) % n as u64) as f64)).collect();
        for chunk in data.chunks(10_000) {
            for buf in runs.extend(chunk) {
                let mut run = budget.sort_run(buf).unwrap();
                loop {
                    runs.push_run(run);
                    let Some(batch) = runs.take_compaction() else {
                        break;
                    };
                    run = budget.merge_runs(batch).unwrap();
                }
            }
        }
        runs.seal().unwrap();
        assert!(budget.spilled_bytes() > 0);
        assert!(runs.runs.len() < 2 * MAX_FAN_IN + 4, "{} runs", runs.runs.len());
        let mut merged = runs.sorted().unwrap();
        let mut prev = None;
        let mut count = 0;
        loop {
            let k = merged.next_key().unwrap();
            if k == END {
                break;
            }
            assert!(prev.is_none_or(|p| p <= k));
            prev = Some(k);
            count += 1;
        }
        assert_eq!(count, n);
    }
}
