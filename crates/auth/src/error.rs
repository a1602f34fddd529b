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
    Database(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;
