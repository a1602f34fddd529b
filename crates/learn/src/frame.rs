//! In-memory tables: a [`Frame`] is a list of equally long named [`Column`]s, each numeric
//! (`f64`, NaN = missing), categorical or text (strings, `None` = missing), and its [`Schema`].
//!
//! Frames are deliberately plain: no index, no dtype zoo, no lazy evaluation. Their
//! [`Schema`] (module `schema`) is the only part that travels with a model.

use std::collections::BTreeMap;
use std::sync::Arc;

use foldhash::HashSet;

use crate::error::LearnError;
use crate::schema::{ColumnKind, Field, Schema};

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers; `NaN` marks a missing value.
    Numeric(Vec<f64>),
    /// Strings taken as levels; `None` marks a missing value.
    Categorical(Vec<Option<String>>),
    /// Strings taken as free text; `None` marks a missing value.
    Text(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) | ColumnData::Text(v) => v.len(),
        }
    }

    /// True when the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Numeric, categorical or text.
    pub fn kind(&self) -> ColumnKind {
        match self {
            ColumnData::Numeric(_) => ColumnKind::Numeric,
            ColumnData::Categorical(_) => ColumnKind::Categorical,
            ColumnData::Text(_) => ColumnKind::Text,
        }
    }

    /// A string column of `kind`: text for [`ColumnKind::Text`], categorical otherwise.
    pub fn from_strings(kind: ColumnKind, values: Vec<Option<String>>) -> ColumnData {
        match kind {
            ColumnKind::Text => ColumnData::Text(values),
            _ => ColumnData::Categorical(values),
        }
    }

    /// The strings of a categorical or text column.
    pub fn strings(&self) -> Option<&[Option<String>]> {
        match self {
            ColumnData::Numeric(_) => None,
            ColumnData::Categorical(v) | ColumnData::Text(v) => Some(v),
        }
    }

    fn select(&self, idx: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(idx.iter().map(|&i| v[i]).collect()),
            ColumnData::Categorical(v) => ColumnData::Categorical(idx.iter().map(|&i| v[i].clone()).collect()),
            ColumnData::Text(v) => ColumnData::Text(idx.iter().map(|&i| v[i].clone()).collect()),
        }
    }
}

/// A named column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Shared with the schema the column was checked against (a clone is a count, not a copy).
    pub name: Arc<str>,
    pub data: ColumnData,
}

impl Column {
    /// A numeric column (`NaN` = missing).
    pub fn numeric(name: impl Into<Arc<str>>, values: Vec<f64>) -> Column {
        Column { name: name.into(), data: ColumnData::Numeric(values) }
    }

    /// A categorical column (`None` = missing).
    pub fn categorical(name: impl Into<Arc<str>>, values: Vec<Option<String>>) -> Column {
        Column { name: name.into(), data: ColumnData::Categorical(values) }
    }

    /// A text column (`None` = missing).
    pub fn text(name: impl Into<Arc<str>>, values: Vec<Option<String>>) -> Column {
        Column { name: name.into(), data: ColumnData::Text(values) }
    }

    /// Numeric, categorical or text.
    pub fn kind(&self) -> ColumnKind {
        self.data.kind()
    }
}

/// A table: columns of equal length, in file (or construction) order, with unique names.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    columns: Vec<Column>,
    n_rows: usize,
}

impl Frame {
    /// Builds a frame; fails on duplicate names or columns of different lengths.
    pub fn from_columns(cols: Vec<Column>) -> Result<Frame, LearnError> {
        // A handful of columns (a scoring request's) are compared pairwise, without a set.
        let duplicate = if cols.len() <= 16 {
            cols.iter().enumerate().find(|(i, c)| cols[..*i].iter().any(|d| d.name == c.name)).map(|(_, c)| c)
        } else {
            let mut seen = HashSet::default();
            cols.iter().find(|c| !seen.insert(&*c.name))
        };
        if let Some(c) = duplicate {
            return Err(LearnError::DuplicateColumn { name: c.name.to_string() });
        }
        let n_rows = cols.first().map_or(0, |c| c.data.len());
        for c in &cols {
            if c.data.len() != n_rows {
                return Err(LearnError::LengthMismatch {
                    what: format!("column '{}'", c.name),
                    expected: n_rows,
                    found: c.data.len(),
                });
            }
        }
        Ok(Frame { columns: cols, n_rows })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// All columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column with this name, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| *c.name == *name)
    }

    /// The column of each of `schema`'s fields, in the schema's order, or the names of the
    /// fields that have none. A frame built in the schema's order (as a scoring request's is)
    /// has each column where its field is, so that place is looked at first.
    pub fn columns_for(&self, schema: &Schema) -> Result<Vec<&Column>, Vec<String>> {
        let mut found = Vec::with_capacity(schema.fields.len());
        let mut missing = Vec::new();
        for (i, f) in schema.fields.iter().enumerate() {
            match self.columns.get(i).filter(|c| c.name == f.name).or_else(|| self.column(&f.name)) {
                Some(c) => found.push(c),
                None => missing.push(f.name.to_string()),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(missing)
        }
    }

    /// A new frame with the given rows, in the given order (indices may repeat).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select_rows(&self, idx: &[usize]) -> Frame {
        Frame {
            columns: self.columns.iter().map(|c| Column { name: c.name.clone(), data: c.data.select(idx) }).collect(),
            n_rows: idx.len(),
        }
    }

    /// A copy without the named column (an unchanged copy if there is none).
    pub fn without(&self, name: &str) -> Frame {
        Frame { columns: self.columns.iter().filter(|c| *c.name != *name).cloned().collect(), n_rows: self.n_rows }
    }

    /// The same frame with the named string columns taken as text; fails on a name that is
    /// not a column or a numeric column.
    pub fn with_text(mut self, names: &[String]) -> Result<Frame, LearnError> {
        for name in names {
            let col = self
                .columns
                .iter_mut()
                .find(|c| *c.name == **name)
                .ok_or_else(|| LearnError::MissingColumns { columns: vec![name.clone()] })?;
            col.data = match std::mem::replace(&mut col.data, ColumnData::Numeric(Vec::new())) {
                ColumnData::Categorical(v) | ColumnData::Text(v) => ColumnData::Text(v),
                ColumnData::Numeric(v) => {
                    col.data = ColumnData::Numeric(v);
                    return Err(LearnError::KindMismatch {
                        column: name.clone(),
                        expected: ColumnKind::Text,
                        found: ColumnKind::Numeric,
                    });
                }
            };
        }
        Ok(self)
    }

    /// String columns that read as free text rather than levels: more distinct values than
    /// half the rows (at least 20 rows), averaging two or more words per value.
    pub fn text_like_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| {
                let Some(v) = c.data.strings() else { return false };
                let present: Vec<&str> = v.iter().flatten().map(String::as_str).collect();
                if self.n_rows < 20 || present.is_empty() {
                    return false;
                }
                let distinct: HashSet<&str> = present.iter().copied().collect();
                let words: usize = present.iter().map(|s| s.split_whitespace().count()).sum();
                distinct.len() * 2 > self.n_rows && words >= 2 * present.len()
            })
            .map(|c| c.name.to_string())
            .collect()
    }

    /// Names and kinds of the columns, in order.
    pub fn schema(&self) -> Schema {
        Schema { fields: self.columns.iter().map(|c| Field { name: c.name.clone(), kind: c.kind() }).collect() }
    }
}

/// Levels of a categorical feature seen in training, sorted by name. With more distinct
/// levels than `max_levels`, only the most frequent are kept (ties by name); the rest are
/// treated as missing.
pub(crate) fn categorical_levels<'a>(values: impl Iterator<Item = Option<&'a str>>, max_levels: usize) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in values.flatten() {
        *counts.entry(s).or_default() += 1;
    }
    let mut levels: Vec<(&str, usize)> = counts.into_iter().collect();
    if levels.len() > max_levels {
        levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        levels.truncate(max_levels);
        levels.sort_by(|a, b| a.0.cmp(b.0));
    }
    levels.into_iter().map(|(s, _)| s.to_owned()).collect()
}
