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
    Database(#[from] sqlx::Error),
    /// A schema migration failed at start-up.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database holds a schema this store cannot serve as it is (e.g. MLflow's, before
    /// `factory db upgrade`); the message says what to do.
    #[error("{0}")]
    Schema(String),
}

impl From<crate::search::SearchError> for StoreError {
    fn from(e: crate::search::SearchError) -> Self {
        StoreError::InvalidParameter(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
