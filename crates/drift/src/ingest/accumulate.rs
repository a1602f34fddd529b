//! One block's partial results per column, kept by the thread that parsed the block, and
//! their merge into the file's shared columns; also the descriptors of a text column counted
//! per distinct value, which go through the same free-text accumulation.

use super::records::for_each_record;
use super::{
    ColumnData, FreeTextData, NumericData, NumericTally, Plan, TextData, TextPlan, MAX_CATEGORIES, MAX_TABLE_BYTES,
};
use crate::error::Result;
use crate::fields::{is_bool, is_na, parse_number};
use crate::outcome::{OutcomeTally, Outcomes};
use crate::runs::{self, Budget, Runs};
use crate::text::{self, Descriptor, OovRule, Vocabulary, WordScratch};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Numeric,
    Text,
    FreeText,
}

/// Per-block partial results for one column.
pub(super) enum BlockColumn {
    Numeric { keys: Vec<u64>, tally: NumericTally, demoted: bool },
    Text { counts: HashMap<String, u64>, missing: u64, all_bool: bool },
    FreeText(Box<BlockText>),
}

/// Per-block descriptors of a free-text column.
pub(super) struct BlockText {
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
    pub(super) fn new(kind: Kind, text: Option<&TextPlan>) -> Self {
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

pub(super) struct Block {
    pub(super) rows: u64,
    pub(super) columns: Vec<BlockColumn>,
    pub(super) outcomes: Option<OutcomeTally>,
}

/// Shared per-column accumulation while a file is being read.
pub(super) struct Shared {
    pub(super) columns: Vec<Mutex<ColumnData>>,
    pub(super) demoted: Vec<AtomicBool>,
    pub(super) rows: Mutex<u64>,
    pub(super) outcomes: Option<Mutex<Outcomes>>,
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

/// Adds a block's descriptors of a free-text column to the shared column and empties them.
pub(super) fn merge_free_text(column: &Mutex<ColumnData>, budget: &Budget, block: &mut BlockText) -> Result<()> {
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
pub(super) fn merge_block(shared: &Shared, budget: &Budget, block: &mut Block) -> Result<()> {
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
pub(super) fn parse_block(bytes: &[u8], ncols: usize, plan: &Plan, path: &Path, block: &mut Block) -> Result<()> {
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
