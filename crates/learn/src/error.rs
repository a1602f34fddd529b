//! The one error type of the learn crate. Every variant names the line, row, column or
//! parameter at fault, because the CLI shows these messages to users as they are.

use crate::schema::ColumnKind;

/// Why reading data, training or predicting could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The underlying reader failed.
    #[error("reading CSV: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV text is malformed (bad quoting, invalid UTF-8, …).
    #[error("CSV line {line}: {message}")]
    Csv { line: u64, message: String },
    /// The input has no header line at all.
    #[error("the CSV input is empty: expected a header line")]
    EmptyInput,
    /// The input has a header but no data rows.
    #[error("the CSV input has a header but no data rows")]
    NoRows,
    /// A row has a different number of fields than the header.
    #[error("CSV line {line}: expected {expected} fields (as in the header), found {found}")]
    RaggedRow { line: u64, expected: usize, found: usize },
    /// Two columns share a name.
    #[error("duplicate column name '{name}'")]
    DuplicateColumn { name: String },
    /// A cell of a numeric column does not parse as a number.
    #[error("row {row}, column '{column}': '{value}' is not a number (the column is numeric)")]
    NotNumeric {
        /// 1-based data row (the header is not counted).
        row: usize,
        column: String,
        value: String,
    },
    /// Columns the schema needs are absent.
    #[error("missing column(s): {}", .columns.join(", "))]
    MissingColumns { columns: Vec<String> },
    /// Columns the schema does not know are present.
    #[error("unexpected column(s): {}", .columns.join(", "))]
    ExtraColumns { columns: Vec<String> },
    /// A column has another kind than the schema (or model) expects.
    #[error("column '{column}' is {found} but {expected} was expected")]
    KindMismatch { column: String, expected: ColumnKind, found: ColumnKind },
    /// Lengths that must agree do not.
    #[error("{what}: expected length {expected}, found {found}")]
    LengthMismatch { what: String, expected: usize, found: usize },
    /// A target value is unusable for the task.
    #[error("target row {row}: {value} is invalid ({reason})")]
    InvalidTarget {
        /// 1-based row of the training frame.
        row: usize,
        value: f64,
        reason: &'static str,
    },
    /// The training data cannot support a model (too few rows, no features, one class).
    #[error("cannot train: {0}")]
    BadTrainingData(String),
    /// A hyper-parameter is out of range.
    #[error("parameter {name}: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// Bytes given to [`crate::Model::from_bytes`] are not a model this version can read.
    #[error("not a readable model: {0}")]
    ModelFormat(String),
}
