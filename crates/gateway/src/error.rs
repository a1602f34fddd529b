//! The gateway's errors: one enum for the control operations (mapped to HTTP statuses in
//! exactly one place, `admin::reply_error`) and one for `run`.

/// A control operation (switch, rollback, weights, shadow) that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The health gate refused the target; traffic stays where it was.
    #[error("{0}")]
    Refused(String),
    /// Nothing to roll back to, or another conflict with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (unknown colour, weights out of range, bad JSON).
    #[error("{0}")]
    BadInput(String),
    /// The state file could not be read or written.
    #[error("state file: {0}")]
    State(String),
    /// The audit log could not be read or written.
    #[error("audit log: {0}")]
    Audit(String),
}

/// Why [`crate::run`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("admin server: {0}")]
    Admin(std::io::Error),
    #[error("data-plane worker: {0}")]
    Worker(std::io::Error),
}
