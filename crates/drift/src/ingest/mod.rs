//! Streaming CSV ingestion: one sequential read of each file in blocks, blocks parsed in
//! parallel, numeric values appended to bounded-memory sorted [`Runs`], text values counted.
//!
//! Parsing follows `pandas.read_csv` defaults where they decide what Evidently sees: the
//! same NA spellings, a column is numeric only if every non-missing field parses as a number
//! (otherwise all its fields are kept as text), integer dtype only without missing fields,
//! `True`/`False` columns are booleans, blank lines are skipped and a row with more fields
//! than the header is an error.
//!
//! `records` cuts the file into blocks on record boundaries and a block into fields;
//! `accumulate` keeps a block's partial results per column and merges them into the file's.

mod accumulate;
mod records;

pub use accumulate::describe_table;

use crate::error::{DriftError, Result};
use crate::fields::{is_na, parse_number};
use crate::outcome::{OutcomePlan, OutcomeTally, Outcomes};
use crate::progress::Progress;
use crate::runs::{Budget, Runs};
use crate::stats::Sum;
use crate::text::{Descriptor, OovRule, Vocabulary, WordScratch};
use accumulate::{merge_block, parse_block, Block, BlockColumn, Kind, Shared};
use records::{for_each_record, last_boundary, stream_blocks, BLOCK};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Distinct strings counted per text column before it is declared free text.
pub const MAX_CATEGORIES: usize = 1 << 20;
/// Bytes of distinct strings counted per text column before it is declared free text.
pub const MAX_TABLE_BYTES: usize = 64 << 20;

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
    pub(crate) fn merge(&mut self, o: &NumericTally) {
        self.missing += o.missing;
        self.nonfinite += o.nonfinite;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum.merge(o.sum);
        self.all_int &= o.all_int;
    }
}

/// Values of one text column of one file, counted per distinct value.
#[derive(Debug, Default)]
pub struct TextData {
    /// Count per distinct value (at most [`MAX_CATEGORIES`] values, [`MAX_TABLE_BYTES`] bytes).
    pub counts: HashMap<String, u64>,
    /// Missing fields.
    pub missing: u64,
    /// Every non-missing field is a boolean spelling.
    pub all_bool: bool,
    /// More distinct values were seen than the table holds (their counts are incomplete).
    pub overflow: bool,
    /// Bytes of the distinct values held.
    pub bytes: usize,
}

/// A free-text column of one file, as its descriptors.
#[derive(Debug)]
pub struct FreeTextData {
    /// Missing fields (their descriptors are 0, as in Evidently).
    pub missing: u64,
    /// Non-missing fields.
    pub values: u64,
    /// One entry per [`Descriptor::ALL`]; `None` when the read did not compute it.
    pub descriptors: Vec<Option<NumericData>>,
}

impl FreeTextData {
    fn new(plan: &TextPlan, budget: &Arc<Budget>) -> Self {
        let want = |d: Descriptor| if d == Descriptor::OovWordsPercentage { plan.oov.is_some() } else { plan.describe };
        FreeTextData {
            missing: 0,
            values: 0,
            descriptors: Descriptor::ALL
                .iter()
                .map(|&d| {
                    want(d).then(|| NumericData { runs: Runs::new(budget.clone()), tally: NumericTally::default() })
                })
                .collect(),
        }
    }

    /// Takes the descriptors `other` computed that this one lacks (a later read of the same file).
    pub fn fill_from(&mut self, other: FreeTextData) {
        for (mine, theirs) in self.descriptors.iter_mut().zip(other.descriptors) {
            if mine.is_none() {
                *mine = theirs;
            }
        }
    }
}

/// One column of one file.
#[derive(Debug)]
pub enum ColumnData {
    /// All non-missing fields are numbers.
    Numeric(NumericData),
    /// Some field is not a number: counted per distinct value.
    Text(TextData),
    /// Declared (or found to be) free text: descriptors computed per field.
    FreeText(FreeTextData),
}

impl ColumnData {
    /// "numeric" or "text", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ColumnData::Numeric(_) => "numeric",
            ColumnData::Text(_) | ColumnData::FreeText(_) => "text",
        }
    }
}

/// How a free-text column is read.
#[derive(Clone, Debug, Default)]
pub struct TextPlan {
    /// Compute the four vocabulary-free descriptors.
    pub describe: bool,
    /// Add each field's words to this vocabulary (the reference's first read).
    pub build: Option<Arc<Vocabulary>>,
    /// Compute the OOV percentage against this vocabulary, judging rows by this rule.
    pub oov: Option<(Arc<Vocabulary>, OovRule)>,
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
    /// Target/prediction/probability outcomes, when the plan asked for them.
    pub outcomes: Option<Outcomes>,
}

/// What to read from a file.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Indices (in the file) of the columns to read, in output order.
    pub indices: Vec<usize>,
    /// Per column: `Some` reads it as free text (descriptors), `None` as numbers or values.
    pub text: Vec<Option<TextPlan>>,
    /// The outcome columns (nothing read when empty).
    pub outcomes: OutcomePlan,
}

impl Plan {
    /// A plan for `indices`, none of them free text, no outcomes.
    pub fn columns(indices: Vec<usize>) -> Self {
        let text = vec![None; indices.len()];
        Plan { indices, text, outcomes: OutcomePlan::default() }
    }
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
        let sub = Plan::columns(demoted.iter().map(|&i| plan.indices[i]).collect());
        let text_kinds = vec![Kind::Text; sub.indices.len()];
        let (again, _) = read_pass(path, header, &sub, &text_kinds, budget, workers, &crate::progress::Silent)?;
        for (slot, col) in demoted.into_iter().zip(again.columns) {
            data.0.columns[slot] = col;
        }
    }
    let mut file = data.0;
    for c in &mut file.columns {
        match c {
            ColumnData::Numeric(n) => n.runs.seal()?,
            ColumnData::FreeText(f) => {
                for d in f.descriptors.iter_mut().flatten() {
                    d.runs.seal()?;
                }
            }
            ColumnData::Text(_) => {}
        }
    }
    if let Some(o) = &mut file.outcomes {
        o.seal()?;
    }
    if file.rows == 0 {
        return Err(DriftError::EmptyFile { path: path.into() });
    }
    Ok(file)
}

/// Adds every distinct value of a reference text table to `vocabulary`, weighted by count.
pub fn build_vocabulary(t: &TextData, vocabulary: &Vocabulary) {
    let mut scratch = WordScratch::default();
    for (value, &n) in &t.counts {
        vocabulary.add_document(value, n, &mut scratch);
    }
}

/// Decides numeric vs text per column from the first block (free-text columns are planned).
fn sniff(path: &Path, header: &Header, plan: &Plan) -> Result<Vec<Kind>> {
    let mut file = File::open(path).map_err(|e| DriftError::io(path, e))?;
    file.seek(SeekFrom::Start(header.data_offset)).map_err(|e| DriftError::io(path, e))?;
    let mut buf = Vec::with_capacity(BLOCK);
    file.take(BLOCK as u64).read_to_end(&mut buf).map_err(|e| DriftError::io(path, e))?;
    let end = if buf.len() < BLOCK { buf.len() } else { last_boundary(&buf).unwrap_or(0) };
    let mut kinds: Vec<Kind> =
        plan.text.iter().map(|t| if t.is_some() { Kind::FreeText } else { Kind::Numeric }).collect();
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
            .zip(&plan.text)
            .map(|(k, text)| {
                Mutex::new(match k {
                    Kind::Numeric => ColumnData::Numeric(NumericData {
                        runs: Runs::new(budget.clone()),
                        tally: NumericTally::default(),
                    }),
                    Kind::Text => ColumnData::Text(TextData { all_bool: true, ..TextData::default() }),
                    Kind::FreeText => {
                        ColumnData::FreeText(FreeTextData::new(text.as_ref().expect("planned as text"), budget))
                    }
                })
            })
            .collect(),
        demoted: kinds.iter().map(|_| AtomicBool::new(false)).collect(),
        rows: Mutex::new(0),
        outcomes: (!plan.outcomes.is_empty()).then(|| Mutex::new(Outcomes::new(budget))),
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
                    columns: kinds.iter().zip(&plan.text).map(|(&k, t)| BlockColumn::new(k, t.as_ref())).collect(),
                    outcomes: shared.outcomes.as_ref().map(|_| OutcomeTally::default()),
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
            outcomes: shared.outcomes.map(|o| o.into_inner().expect("outcomes lock")),
        },
        demoted,
    ))
}

#[cfg(test)]
mod tests;
