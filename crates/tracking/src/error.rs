//! The one error type of the tracking store. Protocol adapters map each variant to their
//! own status codes in a single exhaustive `match`.

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named resource (experiment, run, ...) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A resource with this identity already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// A request value is malformed or out of range, or the operation does not fit the
    /// resource's state (e.g. logging to a deleted run; MLflow reports both the same way).
    #[error("{0}")]
    InvalidParameter(String),
    /// The database failed; nothing was acknowledged.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A schema migration failed at start-up.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database holds a schema this store cannot serve as it is (e.g. MLflow's, before
    /// `factory db upgrade`); the message says what to do.
    #[error("{0}")]
    Schema(String),
}

impl From<sqlx::Error> for StoreError {
    /// A database error, except where the database refuses a value the request sent, which is
    /// bad input (400), not a failure: PostgreSQL cannot store the NUL character in text
    /// (SQLSTATE 22021, or 22P05 for an escape in JSON), which SQLite takes; and a value longer
    /// than its column (22001), which only a database made by MLflow has (its `VARCHAR(n)`
    /// columns, e.g. a run name over 250 characters; ours are `TEXT`).
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            let what = match db.code().as_deref() {
                Some("22021" | "22P05") => {
                    "a text value holds the NUL character (\\u0000), which PostgreSQL cannot store"
                }
                Some("22001") => "a value is longer than its database column allows",
                _ => return StoreError::Database(e),
            };
            return StoreError::InvalidParameter(format!("Invalid value: {what} ({})", db.message()));
        }
        StoreError::Database(e)
    }
}

impl From<crate::search::SearchError> for StoreError {
    fn from(e: crate::search::SearchError) -> Self {
        StoreError::InvalidParameter(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
