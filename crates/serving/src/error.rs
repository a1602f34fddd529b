//! The serving core's two error types: [`ServeError`] for a request that cannot be answered
//! and [`LoadError`] for a model that cannot be (re)loaded. Each protocol adapter maps
//! `ServeError` to its own status codes in one exhaustive `match` (see `http` and `grpc`).

/// Echoed values in messages, cut as both admin planes cut them.
pub use admin_api::shown;

/// Why a request could not be answered. Every message names the problem (column, row,
/// input tensor, limit) so the caller can fix the request without reading server logs.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The body could not be parsed at all (bad JSON or CSV syntax, wrong structure).
    #[error("{0}")]
    Malformed(String),
    /// The body parsed but does not fit the model's signature (missing, extra or mistyped
    /// columns, wrong shapes, empty batch, infinite values).
    #[error("{0}")]
    Invalid(String),
    /// The body is larger than the configured limit.
    #[error("the request body is larger than the limit of {limit} bytes (--max-body-bytes)")]
    TooLarge { limit: usize },
    /// A content type the route does not read.
    #[error("unsupported content type '{0}': send application/json or text/csv")]
    UnsupportedMediaType(String),
    /// A model name or version that is not the one being served.
    #[error("model '{name}'{} is not served here (serving '{served}' version '{served_version}')", version.as_deref().map(|v| format!(" version '{v}'")).unwrap_or_default())]
    ModelNotFound { name: String, version: Option<String>, served: String, served_version: String },
    /// No model has been loaded yet (startup) or the server is shutting down.
    #[error("no model is loaded yet")]
    NotReady,
    /// The model failed on input that passed validation: a bug, reported as a server error.
    #[error("prediction failed: {0}")]
    Predict(String),
}

/// Why a model version could not be loaded; the previous version (if any) keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The registry or tracking server refused or could not be reached.
    #[error("{context}: {source}")]
    Registry { context: String, source: Box<mlflow_client::ClientError> },
    /// The package is missing, corrupt (checksum) or not a factory package.
    #[error("{context}: {source}")]
    Package { context: String, source: Box<package::PackageError> },
    /// The model loaded but failed its warm-up prediction.
    #[error("warm-up prediction failed: {0}")]
    WarmUp(String),
    /// A local file problem (temporary folder, manifest).
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The first model could not be loaded, so there is nothing to serve.
    // The cause is the `source`, printed by the caller's error chain (not repeated here).
    #[error("loading the model")]
    Load(#[from] LoadError),
    #[error("{context}")]
    Io { context: String, source: std::io::Error },
}
