//! Streaming CSV ingestion: one sequential read of each file in blocks, blocks parsed in
//! parallel, numeric values appended to bounded-memory sorted [`Runs`], text values counted.
//!
//! Parsing follows `pandas.read_csv` defaults where they decide what Evidently sees: the
//! same NA spellings, a column is numeric only if every non-missing field parses as a number
//! (otherwise all its fields are kept as text), integer dtype only without missing fields,
//! `True`/`False` columns are booleans, blank lines are skipped and a row with more fields
//! than the header is an error.

use crate::error::{DriftError, Result};
use crate::progress::Progress;
use crate::runs::{self, Budget, Runs};
use crate::stats::Sum;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

mod fields;
use fields::{is_bool, is_na, parse_number};

/// Bytes read per block.
const BLOCK: usize = 1 << 20;
/// Distinct strings counted per text column before it is declared free text.
pub const MAX_CATEGORIES: usize = 1 << 20;

/// The header of a CSV file and the byte offset where its data starts.
#[derive(Clone, Debug)]
pub struct Header {
    /// Column names in file order.
    pub names: Vec<String>,
    data_offset: u64,
}

/// Reads the header row of `path`.
pub fn read_header(path: &Path) -> Result<Header> {
    let file = File::open(path).map_err(|e| DriftError::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
    let names: Vec<String> = rdr
        .headers()
        .map_err(|e| DriftError::Csv { path: path.into(), message: e.to_string() })?
        .iter()
        .map(str::to_owned)
        .collect();
    if names.is_empty() || (names.len() == 1 && names[0].is_empty()) {
        return Err(DriftError::Csv { path: path.into(), message: "the file is empty (no header row)".into() });
    }
    Ok(Header { names, data_offset: rdr.position().byte() })
}

/// Values of one numeric column of one file.
#[derive(Debug)]
pub struct NumericData {
    /// Finite values, sorted into runs.
    pub runs: Runs,
    /// What the fields came to besides the values.
    pub tally: NumericTally,
}

impl NumericData {
    /// Whether pandas would give this column an integer dtype.
    pub fn integer_dtype(&self) -> bool {
        let t = &self.tally;
        t.all_int && t.missing == 0 && t.nonfinite == 0
    }
}

/// Counts and extremes of a numeric column's fields, kept per block and merged into the file's.
#[derive(Debug, Clone, Copy)]
pub struct NumericTally {
    /// Fields that were missing (NA spellings, empty, short rows).
    pub missing: u64,
    /// Fields that parsed to ±inf (Evidently drops them like NaN).
    pub nonfinite: u64,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Sum of the finite values.
    pub sum: Sum,
    /// Every non-missing field is written as an integer.
    pub all_int: bool,
}

impl Default for NumericTally {
    fn default() -> Self {
        NumericTally {
            missing: 0,
            nonfinite: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: Sum::default(),
            all_int: true,
        }
    }
}

impl NumericTally {
    fn merge(&mut self, o: &NumericTally) {
        self.missing += o.missing;
        self.nonfinite += o.nonfinite;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum.merge(o.sum);
        self.all_int &= o.all_int;
    }
}

/// Values of one text column of one file.
#[derive(Debug, Default)]
pub struct TextData {
    /// Count per distinct value (at most [`MAX_CATEGORIES`] values).
    pub counts: HashMap<String, u64>,
    /// Missing fields.
    pub missing: u64,
    /// Every non-missing field is a boolean spelling.
    pub all_bool: bool,
    /// More than [`MAX_CATEGORIES`] distinct values were seen.
    pub overflow: bool,
}

/// One column of one file.
#[derive(Debug)]
pub enum ColumnData {
    /// All non-missing fields are numbers.
    Numeric(NumericData),
    /// Some field is not a number.
    Text(TextData),
}

impl ColumnData {
    /// "numeric" or "text", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ColumnData::Numeric(_) => "numeric",
            ColumnData::Text(_) => "text",
        }
    }
}

/// Row-aligned statistics of a (target, prediction) pair, for performance metrics.
#[derive(Clone, Debug, Default)]
pub struct PairStats {
    /// Rows where both fields are numbers.
    pub numeric_rows: u64,
    /// Σ (prediction − target).
    pub sum_error: Sum,
    /// Σ |prediction − target|.
    pub sum_abs_error: Sum,
    /// Σ (prediction − target)².
    pub sum_sq_error: Sum,
    /// Rows whose target is neither 0 nor 1.
    pub non_binary_targets: u64,
    /// Rows whose prediction is outside [0, 1].
    pub non_probability_predictions: u64,
    /// Rows with prediction ≥ 0.5.
    pub positive_predictions: u64,
    /// Rows where (prediction ≥ 0.5) equals (target = 1).
    pub correct_at_half: u64,
    /// Rows whose target equals 1.
    pub positive_targets: u64,
    /// Histogram of predictions clamped to [0, 1], 10 bins.
    pub prediction_histogram: [u64; 10],
    /// Rows where both fields are present but not both numbers (labels).
    pub label_rows: u64,
    /// Label rows where the two strings are equal.
    pub label_matches: u64,
}

impl PairStats {
    fn merge(&mut self, o: &PairStats) {
        self.numeric_rows += o.numeric_rows;
        self.sum_error.merge(o.sum_error);
        self.sum_abs_error.merge(o.sum_abs_error);
        self.sum_sq_error.merge(o.sum_sq_error);
        self.non_binary_targets += o.non_binary_targets;
        self.non_probability_predictions += o.non_probability_predictions;
        self.positive_predictions += o.positive_predictions;
        self.correct_at_half += o.correct_at_half;
        self.positive_targets += o.positive_targets;
        for (a, b) in self.prediction_histogram.iter_mut().zip(o.prediction_histogram) {
            *a += b;
        }
        self.label_rows += o.label_rows;
        self.label_matches += o.label_matches;
    }

    fn observe(&mut self, target: &[u8], prediction: &[u8]) {
        if is_na(target) || is_na(prediction) {
            return;
        }
        match (parse_number(target), parse_number(prediction)) {
            (Some((t, _)), Some((p, _))) if t.is_finite() && p.is_finite() => {
                self.numeric_rows += 1;
                let e = p - t;
                self.sum_error.add(e);
                self.sum_abs_error.add(e.abs());
                self.sum_sq_error.add(e * e);
                if t != 0.0 && t != 1.0 {
                    self.non_binary_targets += 1;
                }
                if !(0.0..=1.0).contains(&p) {
                    self.non_probability_predictions += 1;
                }
                let positive = p >= 0.5;
                self.positive_predictions += u64::from(positive);
                self.positive_targets += u64::from(t == 1.0);
                self.correct_at_half += u64::from(positive == (t == 1.0));
                let bin = ((p.clamp(0.0, 1.0) * 10.0) as usize).min(9);
                self.prediction_histogram[bin] += 1;
            }
            _ => {
                self.label_rows += 1;
                self.label_matches += u64::from(target == prediction);
            }
        }
    }
}

/// Everything read from one file.
#[derive(Debug)]
pub struct FileData {
    /// The file.
    pub path: PathBuf,
    /// Data rows.
    pub rows: u64,
    /// One entry per requested column, in request order.
    pub columns: Vec<ColumnData>,
    /// Target/prediction pair statistics, when both columns were requested.
    pub pairs: Option<PairStats>,
}

/// What to read from a file.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Indices (in the file) of the columns to read, in output order.
    pub indices: Vec<usize>,
    /// Indices (in the file) of the target and prediction columns.
    pub pair: Option<(usize, usize)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Numeric,
    Text,
}

/// Per-block partial results for one column.
enum BlockColumn {
    Numeric { keys: Vec<u64>, tally: NumericTally, demoted: bool },
    Text { counts: HashMap<String, u64>, missing: u64, all_bool: bool },
}

impl BlockColumn {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Numeric => BlockColumn::Numeric { keys: Vec::new(), tally: NumericTally::default(), demoted: false },
            Kind::Text => BlockColumn::Text { counts: HashMap::new(), missing: 0, all_bool: true },
        }
    }

    fn push(&mut self, field: Option<&[u8]>) {
        match self {
            BlockColumn::Numeric { keys, tally, demoted } => {
                let Some(f) = field else {
                    tally.missing += 1;
                    return;
                };
                if *demoted {
                    tally.missing += u64::from(is_na(f));
                    return;
                }
                // Parse first: the NA spellings are only checked for fields that are not numbers.
                match parse_number(f) {
                    Some((v, _)) if v.is_nan() => tally.missing += 1,
                    Some((v, int)) => {
                        tally.all_int &= int;
                        if v.is_finite() {
                            let v = v + 0.0; // -0.0 and 0.0 are one value for pandas.
                            keys.push(runs::key(v));
                            tally.min = tally.min.min(v);
                            tally.max = tally.max.max(v);
                            tally.sum.add(v);
                        } else {
                            tally.nonfinite += 1;
                        }
                    }
                    None if is_na(f) => tally.missing += 1,
                    None => *demoted = true,
                }
            }
            BlockColumn::Text { counts, missing, all_bool } => match field.filter(|f| !is_na(f)) {
                None => *missing += 1,
                Some(f) => {
                    *all_bool &= is_bool(f);
                    let s = String::from_utf8_lossy(f);
                    if let Some(c) = counts.get_mut(s.as_ref()) {
                        *c += 1;
                    } else {
                        counts.insert(s.into_owned(), 1);
                    }
                }
            },
        }
    }
}

struct Block {
    rows: u64,
    columns: Vec<BlockColumn>,
    pairs: Option<PairStats>,
}

/// Shared per-column accumulation while a file is being read.
struct Shared {
    columns: Vec<Mutex<ColumnData>>,
    demoted: Vec<AtomicBool>,
    rows: Mutex<u64>,
    pairs: Mutex<Option<PairStats>>,
}

/// Reads the planned columns of `path` (whose header is `header`).
pub fn read_file(
    path: &Path,
    header: &Header,
    plan: &Plan,
    budget: &Arc<Budget>,
    workers: usize,
    progress: &dyn Progress,
) -> Result<FileData> {
    let kinds = sniff(path, header, plan)?;
    let mut data = read_pass(path, header, plan, &kinds, budget, workers, progress)?;
    // Columns that looked numeric but turned out to hold text somewhere: read them again as text.
    let demoted: Vec<usize> = (0..plan.indices.len()).filter(|&i| data.1[i]).collect();
    if !demoted.is_empty() {
        let sub = Plan { indices: demoted.iter().map(|&i| plan.indices[i]).collect(), pair: None };
        let text_kinds = vec![Kind::Text; sub.indices.len()];
        let (again, _) = read_pass(path, header, &sub, &text_kinds, budget, workers, &crate::progress::Silent)?;
        for (slot, col) in demoted.into_iter().zip(again.columns) {
            data.0.columns[slot] = col;
        }
    }
    let mut file = data.0;
    for c in &mut file.columns {
        if let ColumnData::Numeric(n) = c {
            n.runs.seal()?;
        }
    }
    if file.rows == 0 {
        return Err(DriftError::EmptyFile { path: path.into() });
    }
    Ok(file)
}

/// Decides numeric vs text per column from the first block.
fn sniff(path: &Path, header: &Header, plan: &Plan) -> Result<Vec<Kind>> {
    let mut file = File::open(path).map_err(|e| DriftError::io(path, e))?;
    file.seek(SeekFrom::Start(header.data_offset)).map_err(|e| DriftError::io(path, e))?;
    let mut buf = Vec::with_capacity(BLOCK);
    file.take(BLOCK as u64).read_to_end(&mut buf).map_err(|e| DriftError::io(path, e))?;
    let end = if buf.len() < BLOCK { buf.len() } else { last_boundary(&buf).unwrap_or(0) };
    let mut kinds = vec![Kind::Numeric; plan.indices.len()];
    let ncols = header.names.len();
    for_each_record(&buf[..end], ncols, path, &mut |fields| {
        for (k, &idx) in kinds.iter_mut().zip(&plan.indices) {
            if *k == Kind::Numeric {
                if let Some(f) = fields.get(idx) {
                    if !is_na(f) && parse_number(f).is_none() {
                        *k = Kind::Text;
                    }
                }
            }
        }
    })?;
    Ok(kinds)
}

type PassResult = (FileData, Vec<bool>);

fn read_pass(
    path: &Path,
    header: &Header,
    plan: &Plan,
    kinds: &[Kind],
    budget: &Arc<Budget>,
    workers: usize,
    progress: &dyn Progress,
) -> Result<PassResult> {
    let shared = Shared {
        columns: kinds
            .iter()
            .map(|k| {
                Mutex::new(match k {
                    Kind::Numeric => ColumnData::Numeric(NumericData {
                        runs: Runs::new(budget.clone()),
                        tally: NumericTally::default(),
                    }),
                    Kind::Text => ColumnData::Text(TextData { all_bool: true, ..TextData::default() }),
                })
            })
            .collect(),
        demoted: kinds.iter().map(|_| AtomicBool::new(false)).collect(),
        rows: Mutex::new(0),
        pairs: Mutex::new(plan.pair.map(|_| PairStats::default())),
    };
    let ncols = header.names.len();
    let failed: Mutex<Option<DriftError>> = Mutex::new(None);
    let abort = AtomicBool::new(false);
    let workers = workers.max(1);
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(workers * 2);
    let rx = Mutex::new(rx);
    // Parsed blocks come back to the reader to be filled again.
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();

    std::thread::scope(|scope| {
        for _ in 0..workers {
            let free = free_tx.clone();
            scope.spawn(|| {
                let free = free;
                // Reused for every block this thread parses: no allocation in the steady state.
                let mut scratch = Block {
                    rows: 0,
                    columns: kinds.iter().map(|&k| BlockColumn::new(k)).collect(),
                    pairs: plan.pair.map(|_| PairStats::default()),
                };
                loop {
                    let next = rx.lock().map(|r| r.recv());
                    let Ok(Ok(bytes)) = next else { break };
                    if abort.load(Ordering::Relaxed) {
                        continue;
                    }
                    let res = parse_block(&bytes, ncols, plan, path, &mut scratch)
                        .and_then(|()| merge_block(&shared, budget, &mut scratch));
                    let _ = free.send(bytes);
                    if let Err(e) = res {
                        abort.store(true, Ordering::Relaxed);
                        failed.lock().expect("error slot").get_or_insert(e);
                    }
                }
            });
        }
        drop(free_tx);
        let res =
            stream_blocks(path, header.data_offset, progress, &abort, &free_rx, &mut |block| tx.send(block).is_ok());
        drop(tx);
        if let Err(e) = res {
            abort.store(true, Ordering::Relaxed);
            failed.lock().expect("error slot").get_or_insert(e);
        }
    });
    if let Some(e) = failed.into_inner().expect("error slot") {
        return Err(e);
    }
    let demoted = shared.demoted.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let mut columns = Vec::with_capacity(shared.columns.len());
    for c in shared.columns {
        let mut c = c.into_inner().expect("column lock");
        if let ColumnData::Text(t) = &mut c {
            t.overflow = t.counts.len() > MAX_CATEGORIES;
            if t.all_bool && !t.counts.is_empty() {
                // pandas reads every spelling of a boolean as the same value.
                let mut merged = HashMap::new();
                for (k, v) in t.counts.drain() {
                    let key = if k.eq_ignore_ascii_case("true") { "True" } else { "False" };
                    *merged.entry(key.to_owned()).or_insert(0) += v;
                }
                t.counts = merged;
            }
        }
        columns.push(c);
    }
    Ok((
        FileData {
            path: path.into(),
            rows: shared.rows.into_inner().expect("rows lock"),
            columns,
            pairs: shared.pairs.into_inner().expect("pairs lock"),
        },
        demoted,
    ))
}

/// Adds a parsed block to the shared columns and leaves `block` empty for reuse.
fn merge_block(shared: &Shared, budget: &Budget, block: &mut Block) -> Result<()> {
    *shared.rows.lock().expect("rows lock") += block.rows;
    block.rows = 0;
    if let Some(p) = block.pairs.as_mut() {
        if let Some(acc) = shared.pairs.lock().expect("pairs lock").as_mut() {
            acc.merge(p);
        }
        *p = PairStats::default();
    }
    for (i, bc) in block.columns.iter_mut().enumerate() {
        let mut col = shared.columns[i].lock().expect("column lock");
        match (&mut *col, bc) {
            (ColumnData::Numeric(n), BlockColumn::Numeric { keys, tally, demoted }) => {
                if *demoted {
                    shared.demoted[i].store(true, Ordering::Relaxed);
                }
                n.tally.merge(tally);
                let full = if shared.demoted[i].load(Ordering::Relaxed) { Vec::new() } else { n.runs.extend(keys) };
                drop(col);
                *tally = NumericTally::default();
                keys.clear();
                // Sort and spill without holding the column's lock.
                for buf in full {
                    let mut run = budget.sort_run(buf)?;
                    loop {
                        let mut col = shared.columns[i].lock().expect("column lock");
                        let ColumnData::Numeric(n) = &mut *col else {
                            break;
                        };
                        n.runs.push_run(run);
                        let Some(batch) = n.runs.take_compaction() else {
                            break;
                        };
                        drop(col);
                        run = budget.merge_runs(batch)?;
                    }
                }
            }
            (ColumnData::Text(t), BlockColumn::Text { counts, missing, all_bool }) => {
                t.missing += *missing;
                t.all_bool &= *all_bool;
                *missing = 0;
                *all_bool = true;
                for (k, v) in counts.drain() {
                    if let Some(c) = t.counts.get_mut(&k) {
                        *c += v;
                    } else if t.counts.len() <= MAX_CATEGORIES {
                        t.counts.insert(k, v);
                    }
                }
            }
            _ => unreachable!("block and column kinds come from the same plan"),
        }
    }
    Ok(())
}

/// Parses the records of `bytes` into `block` (which [`merge_block`] left empty).
fn parse_block(bytes: &[u8], ncols: usize, plan: &Plan, path: &Path, block: &mut Block) -> Result<()> {
    let Block { rows, columns, pairs } = block;
    for_each_record(bytes, ncols, path, &mut |fields| {
        *rows += 1;
        for (col, &idx) in columns.iter_mut().zip(&plan.indices) {
            col.push(fields.get(idx).copied());
        }
        if let (Some(p), Some((t, pr))) = (pairs.as_mut(), plan.pair) {
            if let (Some(tf), Some(pf)) = (fields.get(t), fields.get(pr)) {
                p.observe(tf, pf);
            }
        }
    })
}

/// Calls `f` with the fields of every non-blank record in `block` (complete records only).
fn for_each_record(block: &[u8], ncols: usize, path: &Path, f: &mut dyn FnMut(&[&[u8]])) -> Result<()> {
    let too_many = |n: usize, line: &[u8]| DriftError::Csv {
        path: path.into(),
        message: format!(
            "expected {ncols} fields, saw {n} in row {:?}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        ),
    };
    if memchr::memchr(b'"', block).is_none() {
        // Fast path: no quoting anywhere in the block, so every ',' and '\n' is a separator.
        let mut fields: Vec<&[u8]> = Vec::with_capacity(ncols + 1);
        let mut emit = |fields: &mut Vec<&[u8]>| -> Result<()> {
            if let Some(last) = fields.last_mut() {
                *last = last.strip_suffix(b"\r").unwrap_or(last);
            }
            let blank = fields.len() == 1 && fields[0].is_empty();
            if !blank {
                if fields.len() > ncols {
                    let line = fields.join(&b","[..]);
                    return Err(too_many(fields.len(), &line));
                }
                f(fields);
            }
            fields.clear();
            Ok(())
        };
        let mut start = 0;
        for pos in memchr::memchr2_iter(b',', b'\n', block) {
            fields.push(&block[start..pos]);
            start = pos + 1;
            if block[pos] == b'\n' {
                emit(&mut fields)?;
            }
        }
        if start < block.len() {
            fields.push(&block[start..]);
            emit(&mut fields)?;
        }
        return Ok(());
    }
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(block);
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                if rec.len() == 1 && rec[0].is_empty() {
                    continue;
                }
                if rec.len() > ncols {
                    let line: Vec<u8> = rec.iter().collect::<Vec<_>>().join(&b","[..]);
                    return Err(too_many(rec.len(), &line));
                }
                let fields: Vec<&[u8]> = rec.iter().collect();
                f(&fields);
            }
            Err(e) => return Err(DriftError::Csv { path: path.into(), message: e.to_string() }),
        }
    }
    Ok(())
}

/// The end (exclusive) of the last complete record in `buf`, honouring quotes.
fn last_boundary(buf: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    let mut in_quotes = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            last = Some(i + 1);
        }
    }
    last
}

/// Reads `path` from `offset` and hands out blocks that end on record boundaries.
fn stream_blocks(
    path: &Path,
    offset: u64,
    progress: &dyn Progress,
    abort: &AtomicBool,
    free: &mpsc::Receiver<Vec<u8>>,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| DriftError::io(path, e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| DriftError::io(path, e))?;
    progress.advance(offset);
    let mut carry: Vec<u8> = Vec::new();
    let mut want = BLOCK;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut buf = free.try_recv().unwrap_or_default();
        buf.clear();
        buf.reserve(carry.len() + want);
        buf.extend_from_slice(&carry);
        let before = buf.len();
        (&mut file).take(want as u64).read_to_end(&mut buf).map_err(|e| DriftError::io(path, e))?;
        let read = buf.len() - before;
        progress.advance(read as u64);
        if read == 0 {
            if !buf.is_empty() && !send(buf) {
                return Ok(());
            }
            return Ok(());
        }
        match last_boundary(&buf) {
            Some(end) => {
                carry.clear();
                carry.extend_from_slice(&buf[end..]);
                buf.truncate(end);
                want = BLOCK;
                if !send(buf) {
                    return Ok(());
                }
            }
            None => {
                // A record longer than the block: read more before cutting.
                carry = buf;
                want *= 2;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(field: &str, want: Option<(f64, bool)>) {
        assert_eq!(parse_number(field.as_bytes()), want, "{field:?}");
    }

    #[test]
    fn numbers_parse_like_pandas() {
        check("12", Some((12.0, true)));
        check("-7", Some((-7.0, true)));
        check("+3", Some((3.0, true)));
        check("007", Some((7.0, true)));
        check("1.5", Some((1.5, false)));
        check("-0.125", Some((-0.125, false)));
        check(".5", Some((0.5, false)));
        check("5.", Some((5.0, false)));
        check("1e3", Some((1000.0, false)));
        check("2.5E-3", Some((0.0025, false)));
        check(" 4.25 ", Some((4.25, false)));
        check("0.1", Some((0.1, false)));
        check("123456789012345678901234", Some((1.2345678901234568e23, true)));
        check("0.30000000000000004", Some((0.30000000000000004, false)));
        check("inf", Some((f64::INFINITY, false)));
        check("-Infinity", Some((f64::NEG_INFINITY, false)));
        check("abc", None);
        check("1.2.3", None);
        check("1e", None);
        check("-", None);
        check("0x10", None);
        check("1,5", None);
    }

    #[test]
    fn na_spellings_are_pandas_defaults() {
        for na in ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>", "-nan", "1.#IND"] {
            assert!(is_na(na.as_bytes()), "{na:?}");
        }
        for v in ["0", "na", "none", "-", "x"] {
            assert!(!is_na(v.as_bytes()), "{v:?}");
        }
    }

    #[test]
    fn record_boundaries_respect_quotes() {
        assert_eq!(last_boundary(b"a,b\n1,2\n3,"), Some(8));
        assert_eq!(last_boundary(b"a,\"x\ny\"\n1,\"open\n"), Some(8));
        assert_eq!(last_boundary(b"no newline"), None);
    }

    fn records(block: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for_each_record(block.as_bytes(), 3, Path::new("t.csv"), &mut |f| {
            out.push(f.iter().map(|x| String::from_utf8_lossy(x).into_owned()).collect());
        })
        .unwrap();
        out
    }

    #[test]
    fn records_split_on_both_paths() {
        let want = vec![vec!["1", "2", "3"], vec!["4", "", "6"], vec!["7"]];
        assert_eq!(records("1,2,3\r\n\n4,,6\n7\n"), want);
        let quoted = records("1,\"a,b\",3\n\"x\ny\",5,6\n");
        assert_eq!(quoted, vec![vec!["1", "a,b", "3"], vec!["x\ny", "5", "6"]]);
        let err = for_each_record(b"1,2,3,4\n", 3, Path::new("t.csv"), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("expected 3 fields, saw 4"), "{err}");
    }
}
