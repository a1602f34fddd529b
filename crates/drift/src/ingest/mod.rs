//! Streaming CSV ingestion: one sequential read of each file in blocks, blocks parsed in
//! parallel, numeric values appended to bounded-memory sorted [`Runs`], text values counted.
//!
//! Parsing follows `pandas.read_csv` defaults where they decide what Evidently sees: the
//! same NA spellings, a column is numeric only if every non-missing field parses as a number
//! (otherwise all its fields are kept as text), integer dtype only without missing fields,
//! `True`/`False` columns are booleans, blank lines are skipped and a row with more fields
//! than the header is an error.

use crate::error::{DriftError, Result};
use crate::outcome::{OutcomePlan, OutcomeTally, Outcomes};
use crate::progress::Progress;
use crate::runs::{self, Budget, Runs};
use crate::stats::Sum;
use crate::text::{self, Descriptor, OovRule, Vocabulary, WordScratch};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use crate::fields::{is_bool, is_na, parse_number};

/// Bytes read per block.
const BLOCK: usize = 1 << 20;
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

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Numeric,
    Text,
    FreeText,
}

/// Per-block partial results for one column.
enum BlockColumn {
    Numeric { keys: Vec<u64>, tally: NumericTally, demoted: bool },
    Text { counts: HashMap<String, u64>, missing: u64, all_bool: bool },
    FreeText(Box<BlockText>),
}

/// Per-block descriptors of a free-text column.
struct BlockText {
    plan: TextPlan,
    keys: [Vec<u64>; 5],
    tallies: [NumericTally; 5],
    missing: u64,
    values: u64,
    scratch: WordScratch,
}

impl BlockText {
    fn push_value(&mut self, d: Descriptor, v: text::Value) {
        let i = d.index();
        let x = v.x + 0.0;
        self.keys[i].push(runs::key(x));
        let t = &mut self.tallies[i];
        t.min = t.min.min(x);
        t.max = t.max.max(x);
        t.sum.add(x);
        t.all_int &= v.int;
    }

    fn push(&mut self, field: Option<&[u8]>) {
        let text = field.filter(|f| !is_na(f)).map(String::from_utf8_lossy);
        match text {
            None => self.missing += 1,
            Some(_) => self.values += 1,
        }
        if self.plan.describe {
            let values = text::describe(text.as_deref());
            for (d, v) in Descriptor::ALL.into_iter().zip(values) {
                self.push_value(d, v);
            }
        }
        if let (Some(vocabulary), Some(t)) = (&self.plan.build, &text) {
            vocabulary.add_document(t, 1, &mut self.scratch);
        }
        if let Some((vocabulary, rule)) = &self.plan.oov {
            let v = text::oov_percentage(text.as_deref(), vocabulary, *rule, &mut self.scratch);
            self.push_value(Descriptor::OovWordsPercentage, v);
        }
    }
}

impl BlockColumn {
    fn new(kind: Kind, text: Option<&TextPlan>) -> Self {
        match kind {
            Kind::Numeric => BlockColumn::Numeric { keys: Vec::new(), tally: NumericTally::default(), demoted: false },
            Kind::Text => BlockColumn::Text { counts: HashMap::new(), missing: 0, all_bool: true },
            Kind::FreeText => BlockColumn::FreeText(Box::new(BlockText {
                plan: text.cloned().unwrap_or_default(),
                keys: Default::default(),
                tallies: [NumericTally::default(); 5],
                missing: 0,
                values: 0,
                scratch: WordScratch::default(),
            })),
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
            BlockColumn::FreeText(t) => t.push(field),
        }
    }
}

struct Block {
    rows: u64,
    columns: Vec<BlockColumn>,
    outcomes: Option<OutcomeTally>,
}

/// Shared per-column accumulation while a file is being read.
struct Shared {
    columns: Vec<Mutex<ColumnData>>,
    demoted: Vec<AtomicBool>,
    rows: Mutex<u64>,
    outcomes: Option<Mutex<Outcomes>>,
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

/// The descriptors of a text column counted per distinct value (the column turned out to be
/// free text after it was read): each value described once and counted as often as it
/// occurred, missing fields as zeros. `oov` is the vocabulary and rule for this file.
pub fn describe_table(t: &TextData, budget: &Arc<Budget>, oov: Option<(&Vocabulary, OovRule)>) -> Result<FreeTextData> {
    let plan = TextPlan { describe: true, build: None, oov: None };
    let mut out = FreeTextData::new(&plan, budget);
    let want_oov = oov.is_some();
    if want_oov {
        out.descriptors[Descriptor::OovWordsPercentage.index()] =
            Some(NumericData { runs: Runs::new(budget.clone()), tally: NumericTally::default() });
    }
    let shared = Mutex::new(ColumnData::FreeText(out));
    let mut block = BlockText {
        plan,
        keys: Default::default(),
        tallies: [NumericTally::default(); 5],
        missing: 0,
        values: 0,
        scratch: WordScratch::default(),
    };
    let flush = |block: &mut BlockText| -> Result<()> { merge_free_text(&shared, budget, block) };
    let entries = std::iter::once((None, t.missing)).chain(t.counts.iter().map(|(k, &n)| (Some(k.as_str()), n)));
    for (value, n) in entries {
        if n == 0 {
            continue;
        }
        let described = text::describe(value);
        let oov_value = oov.map(|(v, rule)| text::oov_percentage(value, v, rule, &mut block.scratch));
        let mut left = n;
        while left > 0 {
            let take = left.min(1 << 16);
            for _ in 0..take {
                for (d, v) in Descriptor::ALL.into_iter().zip(described) {
                    block.push_value(d, v);
                }
                if let Some(v) = oov_value {
                    block.push_value(Descriptor::OovWordsPercentage, v);
                }
            }
            match value {
                None => block.missing += take,
                Some(_) => block.values += take,
            }
            left -= take;
            if block.keys[0].len() >= 1 << 16 {
                flush(&mut block)?;
            }
        }
    }
    flush(&mut block)?;
    let ColumnData::FreeText(mut out) = shared.into_inner().expect("column lock") else {
        unreachable!("built as free text")
    };
    for d in out.descriptors.iter_mut().flatten() {
        d.runs.seal()?;
    }
    Ok(out)
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

/// Adds a block's descriptors of a free-text column to the shared column and empties them.
fn merge_free_text(column: &Mutex<ColumnData>, budget: &Budget, block: &mut BlockText) -> Result<()> {
    {
        let mut col = column.lock().expect("column lock");
        let ColumnData::FreeText(f) = &mut *col else { unreachable!("block and column kinds come from the same plan") };
        f.missing += block.missing;
        f.values += block.values;
        for (d, t) in f.descriptors.iter_mut().zip(&block.tallies) {
            if let Some(d) = d {
                d.tally.merge(t);
            }
        }
    }
    block.missing = 0;
    block.values = 0;
    block.tallies = [NumericTally::default(); 5];
    for (i, keys) in block.keys.iter_mut().enumerate() {
        runs::store(
            column,
            |c: &mut ColumnData| match c {
                ColumnData::FreeText(f) => f.descriptors[i].as_mut().map(|d| &mut d.runs),
                _ => None,
            },
            budget,
            keys,
        )?;
        keys.clear();
    }
    Ok(())
}

/// Adds a parsed block to the shared columns and leaves `block` empty for reuse.
fn merge_block(shared: &Shared, budget: &Budget, block: &mut Block) -> Result<()> {
    *shared.rows.lock().expect("rows lock") += block.rows;
    block.rows = 0;
    if let (Some(tally), Some(acc)) = (block.outcomes.as_mut(), shared.outcomes.as_ref()) {
        Outcomes::absorb(acc, budget, tally)?;
    }
    for (i, bc) in block.columns.iter_mut().enumerate() {
        let column = &shared.columns[i];
        match bc {
            BlockColumn::Numeric { keys, tally, demoted } => {
                if *demoted {
                    shared.demoted[i].store(true, Ordering::Relaxed);
                }
                if let ColumnData::Numeric(n) = &mut *column.lock().expect("column lock") {
                    n.tally.merge(tally);
                }
                let is_demoted = &shared.demoted[i];
                runs::store(
                    column,
                    |c: &mut ColumnData| match c {
                        ColumnData::Numeric(n) if !is_demoted.load(Ordering::Relaxed) => Some(&mut n.runs),
                        _ => None,
                    },
                    budget,
                    keys,
                )?;
                *tally = NumericTally::default();
                keys.clear();
            }
            BlockColumn::Text { counts, missing, all_bool } => {
                let mut col = column.lock().expect("column lock");
                let ColumnData::Text(t) = &mut *col else {
                    unreachable!("block and column kinds come from the same plan")
                };
                t.missing += *missing;
                t.all_bool &= *all_bool;
                *missing = 0;
                *all_bool = true;
                for (k, v) in counts.drain() {
                    if let Some(c) = t.counts.get_mut(&k) {
                        *c += v;
                    } else if !t.overflow && t.counts.len() < MAX_CATEGORIES && t.bytes + k.len() <= MAX_TABLE_BYTES {
                        t.bytes += k.len();
                        t.counts.insert(k, v);
                    } else {
                        t.overflow = true;
                    }
                }
            }
            BlockColumn::FreeText(b) => merge_free_text(column, budget, b)?,
        }
    }
    Ok(())
}

/// Parses the records of `bytes` into `block` (which [`merge_block`] left empty).
fn parse_block(bytes: &[u8], ncols: usize, plan: &Plan, path: &Path, block: &mut Block) -> Result<()> {
    let Block { rows, columns, outcomes } = block;
    let o = &plan.outcomes;
    fn field<'a>(fields: &[&'a [u8]], i: Option<usize>) -> Option<&'a [u8]> {
        i.and_then(|i| fields.get(i).copied())
    }
    for_each_record(bytes, ncols, path, &mut |fields| {
        *rows += 1;
        for (col, &idx) in columns.iter_mut().zip(&plan.indices) {
            col.push(fields.get(idx).copied());
        }
        if let Some(t) = outcomes.as_mut() {
            t.observe(o, field(fields, o.target), field(fields, o.prediction), field(fields, o.probability));
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
mod tests;
