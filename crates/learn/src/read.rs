//! CSV input: [`read_csv`] infers a schema (numeric if every non-missing cell parses as a
//! number, else categorical); [`read_csv_with_schema`] reads predict-time data against the
//! schema a model was trained with and rejects anything that does not fit it.
//!
//! Missing cells are the empty string and the tokens `NA`, `NaN`, `nan`, `null` (after
//! trimming spaces), in numeric and categorical columns alike. Categorical values are kept
//! exactly as written (no trimming), so `" x"` and `"x"` are different levels.

use std::collections::HashSet;
use std::io::Read;

use rayon::prelude::*;

use crate::error::LearnError;
use crate::frame::{Column, ColumnData, Frame};
use crate::schema::{ColumnKind, Schema};

/// Tokens (after trimming) that mean "missing".
const MISSING: [&str; 5] = ["", "NA", "NaN", "nan", "null"];

fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell.trim())
}

/// Parses a non-missing numeric cell.
fn parse_number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok()
}

fn csv_error(e: csv::Error) -> LearnError {
    let line = e.position().map_or(0, |p| p.line());
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => LearnError::Io(io),
        _ => LearnError::Csv { line, message },
    }
}

/// Opens the reader and returns it with its header, checked for emptiness and duplicates.
fn open(reader: impl Read) -> Result<(csv::Reader<impl Read>, Vec<String>), LearnError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(reader);
    let header: Vec<String> = rdr.headers().map_err(csv_error)?.iter().map(str::to_owned).collect();
    if header.is_empty() {
        return Err(LearnError::EmptyInput);
    }
    let mut seen = HashSet::new();
    for name in &header {
        if !seen.insert(name.as_str()) {
            return Err(LearnError::DuplicateColumn { name: name.clone() });
        }
    }
    Ok((rdr, header))
}

/// Calls `row` for each data record (checked to have as many fields as the header) with the
/// 1-based data row number; fails with [`LearnError::NoRows`] if there is none.
fn for_each_record(
    rdr: &mut csv::Reader<impl Read>,
    n_fields: usize,
    mut row: impl FnMut(usize, &csv::StringRecord) -> Result<(), LearnError>,
) -> Result<usize, LearnError> {
    let mut record = csv::StringRecord::new();
    let mut n = 0;
    while rdr.read_record(&mut record).map_err(csv_error)? {
        if record.len() != n_fields {
            return Err(LearnError::RaggedRow {
                line: record.position().map_or(0, |p| p.line()),
                expected: n_fields,
                found: record.len(),
            });
        }
        n += 1;
        row(n, &record)?;
    }
    if n == 0 {
        return Err(LearnError::NoRows);
    }
    Ok(n)
}

/// Reads a CSV with a header line and infers each column's kind.
///
/// A column is numeric if every non-missing cell parses as `f64` (so a column of only
/// missing cells is numeric), otherwise categorical. Errors: no header
/// ([`LearnError::EmptyInput`]), no data rows ([`LearnError::NoRows`]), a row with a
/// different field count ([`LearnError::RaggedRow`], with its 1-based line), duplicate
/// column names, malformed CSV.
pub fn read_csv(reader: impl Read) -> Result<Frame, LearnError> {
    let (mut rdr, header) = open(reader)?;
    // Each column's cells end to end in one string, with their end offsets: no allocation
    // per cell.
    let mut cells: Vec<Cells> = (0..header.len()).map(|_| Cells::default()).collect();
    for_each_record(&mut rdr, header.len(), |_, record| {
        for (col, cell) in cells.iter_mut().zip(record.iter()) {
            col.text.push_str(cell);
            col.ends.push(col.text.len());
        }
        Ok(())
    })?;
    let columns = header
        .into_par_iter()
        .zip(cells)
        .map(|(name, cells)| Column { name: name.into(), data: cells.into_data() })
        .collect();
    Frame::from_columns(columns)
}

/// The cells of one column as read, before its kind is known.
#[derive(Default)]
struct Cells {
    text: String,
    ends: Vec<usize>,
}

impl Cells {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.text[a..b])
    }

    /// Numbers if every non-missing cell parses as one, otherwise levels.
    fn into_data(self) -> ColumnData {
        let numbers: Option<Vec<f64>> =
            self.iter().map(|c| if is_missing(c) { Some(f64::NAN) } else { parse_number(c) }).collect();
        match numbers {
            Some(v) => ColumnData::Numeric(v),
            None => ColumnData::Categorical(
                self.iter().map(|c| if is_missing(c) { None } else { Some(c.to_owned()) }).collect(),
            ),
        }
    }
}

/// Reads a CSV whose columns must be exactly the schema's (in any order), parsing each as
/// the schema's kind. Used at predict time, where inference could guess differently.
///
/// Errors name what is wrong: absent columns ([`LearnError::MissingColumns`]), unknown ones
/// ([`LearnError::ExtraColumns`]), and a non-numeric cell in a numeric column
/// ([`LearnError::NotNumeric`], with the 1-based data row, the column and the value), plus
/// everything [`read_csv`] rejects. Columns come out in file order.
pub fn read_csv_with_schema(reader: impl Read, schema: &Schema) -> Result<Frame, LearnError> {
    let (mut rdr, header) = open(reader)?;
    let missing: Vec<String> =
        schema.fields.iter().filter(|f| !header.iter().any(|h| *h == *f.name)).map(|f| f.name.to_string()).collect();
    if !missing.is_empty() {
        return Err(LearnError::MissingColumns { columns: missing });
    }
    let kinds: Vec<ColumnKind> =
        header.iter().map(|h| schema.field(h).map(|f| f.kind)).collect::<Option<_>>().ok_or_else(|| {
            LearnError::ExtraColumns { columns: header.iter().filter(|h| schema.field(h).is_none()).cloned().collect() }
        })?;
    let mut data: Vec<ColumnData> = kinds
        .iter()
        .map(|k| match k {
            ColumnKind::Numeric => ColumnData::Numeric(Vec::new()),
            ColumnKind::Categorical => ColumnData::Categorical(Vec::new()),
            ColumnKind::Text => ColumnData::Text(Vec::new()),
        })
        .collect();
    for_each_record(&mut rdr, header.len(), |row, record| {
        for ((col, cell), name) in data.iter_mut().zip(record.iter()).zip(&header) {
            match col {
                ColumnData::Numeric(v) => {
                    let x = if is_missing(cell) {
                        f64::NAN
                    } else {
                        parse_number(cell).ok_or_else(|| LearnError::NotNumeric {
                            row,
                            column: name.clone(),
                            value: cell.to_owned(),
                        })?
                    };
                    v.push(x);
                }
                ColumnData::Categorical(v) | ColumnData::Text(v) => {
                    v.push((!is_missing(cell)).then(|| cell.to_owned()));
                }
            }
        }
        Ok(())
    })?;
    Frame::from_columns(header.into_iter().zip(data).map(|(name, data)| Column { name: name.into(), data }).collect())
}
