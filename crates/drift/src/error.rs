//! The one error type of the drift crate. Every variant names the file and/or column at fault,
//! because the CLI prints these messages to users as they are.

use std::path::PathBuf;

/// Why a drift computation could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A CSV file is malformed (bad quoting, too many fields in a row, no header, …).
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
    /// The file has a header but no data rows.
    #[error("{path}: the file has no data rows")]
    EmptyFile { path: PathBuf },
    /// A requested column is not in the file.
    #[error("column '{column}' not found in {path} (columns there: {available})")]
    MissingColumn { column: String, path: PathBuf, available: String },
    /// No column is shared by the two files (or left after `--columns`).
    #[error("no column to compare: {0}")]
    NoColumns(String),
    /// A column has no usable (non-missing, finite) value in one of the files.
    #[error("column '{column}' has no values in {path} (all {rows} rows are empty, NaN or infinite)")]
    EmptyColumn { column: String, path: PathBuf, rows: u64 },
    /// The column is numeric in one file and text in the other.
    #[error(
        "column '{column}' has mismatched types: {reference_kind} in the reference ({reference}) but {current_kind} in the current data ({current})"
    )]
    MismatchedTypes {
        column: String,
        reference: PathBuf,
        reference_kind: &'static str,
        current: PathBuf,
        current_kind: &'static str,
    },
    /// A `--stattest` name that is not in the registry.
    #[error("unknown stattest '{name}' for column '{column}'; available: {available}")]
    UnknownStatTest { column: String, name: String, available: String },
    /// A stattest that Evidently does not allow for this column type (e.g. `ks` on text).
    #[error("stattest '{name}' isn't applicable to column '{column}' of type {column_type}; it applies to: {allowed}")]
    StatTestNotApplicable { column: String, name: String, column_type: &'static str, allowed: String },
    /// An option names a column that is not compared.
    #[error("{option} names column '{column}', which is not among the compared columns")]
    UnknownOptionColumn { option: &'static str, column: String },
    /// An option value is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A text column has too many distinct values in the reference to be counted, but is
    /// categorical in the current data.
    #[error(
        "column '{column}' has more distinct values in {path} than can be counted ({limit}) but is categorical in the current data; declare it with --text-columns or leave it out with --columns"
    )]
    TooManyCategories { column: String, path: PathBuf, limit: String },
    /// Probability fields that are not numbers in [0, 1].
    #[error(
        "column '{column}' in {file} must hold probabilities in [0, 1]; {count} field(s) do not, e.g. '{example}'"
    )]
    BadProbability { column: String, file: String, count: u64, example: String },
    /// Classification outcomes with more than two label values.
    #[error("binary classification needs at most two label values, but '{target}'/'{prediction}' hold {values}")]
    NonBinaryLabels { target: String, prediction: String, values: String },
    /// Two label values, neither of them obviously the positive one.
    #[error("cannot tell which label is positive among {values}: pass --pos-label")]
    AmbiguousPositiveLabel { values: String },
    /// A row without a request id where labels are joined by request id.
    #[error("{path}: data row {row} has no request id")]
    MissingRequestId { path: PathBuf, row: u64 },
    /// A labels row without a label.
    #[error("{path}: data row {row} has no value in the label column '{column}'")]
    MissingLabel { path: PathBuf, row: u64, column: String },
    /// A request id that occurs twice in one file.
    #[error("{path}: request id '{id}' occurs more than once")]
    DuplicateRequestId { path: PathBuf, id: String },
    /// Labels whose request ids are not in the current data.
    #[error("{labels}: {count} label(s) name request ids that are not in {current}, e.g. {examples}")]
    UnknownRequestIds { labels: PathBuf, current: PathBuf, count: u64, examples: String },
}

impl DriftError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DriftError::Io { path: path.into(), source }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = DriftError> = std::result::Result<T, E>;
