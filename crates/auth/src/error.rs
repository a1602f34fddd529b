//! The auth store's one error type; `mlflow-api` maps it to MLflow's codes.

use thiserror::Error;

// The first three variants carry the names of `tracking::StoreError`'s, as both map to the same
// MLflow codes; they are two crates' own types, and auth may not use tracking's (ARCHITECTURE.md,
// checked by xtask).
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Config(String),
    #[error("auth database error: {0}")]
    Database(sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<sqlx::Error> for AuthError {
    /// PostgreSQL refuses the NUL character in text (SQLSTATE 22021), which SQLite takes: a
    /// user or role name holding it is bad input (400), not a database failure. (The tracking
    /// store maps it the same way, in its own error type.)
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code == "22021" => AuthError::InvalidParameter(
                "Invalid value: a name holds the NUL character (\\u0000), which PostgreSQL cannot store".into(),
            ),
            _ => AuthError::Database(e),
        }
    }
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;
