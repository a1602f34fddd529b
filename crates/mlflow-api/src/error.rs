//! MLflow's error body `{"error_code", "message"}` and the one mapping from store errors to
//! MLflow codes and HTTP statuses (`mlflow/exceptions.py`). No 5xx for bad input: the stock
//! client retries 5xx for minutes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tracking::StoreError;

/// MLflow's `ErrorCode` values that this server returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    BadRequest,
    EndpointNotFound,
    PermissionDenied,
    NotImplemented,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            ErrorCode::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameterValue | ErrorCode::ResourceAlreadyExists | ErrorCode::BadRequest => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::ResourceDoesNotExist | ErrorCode::EndpointNotFound => StatusCode::NOT_FOUND,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as the MLflow REST API reports it.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ResourceDoesNotExist, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            StoreError::AlreadyExists(_) => ErrorCode::ResourceAlreadyExists,
            StoreError::InvalidParameter(_) => ErrorCode::InvalidParameterValue,
            StoreError::Database(_) | StoreError::Migration(_) | StoreError::Schema(_) => {
                tracing::error!(error = %e, "store failure");
                ErrorCode::InternalError
            }
        };
        ApiError::new(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.code.as_str(), "message": self.message });
        (self.code.status(), [("content-type", "application/json")], body.to_string()).into_response()
    }
}

/// The status line's reason phrase as MLflow's Flask (Werkzeug) writes it, in capitals
/// (`400 BAD REQUEST`): clients' error messages quote it, and tests match it. Applied to every
/// answer of the router ([`crate::router`]).
pub fn werkzeug_reason(resp: &mut Response) {
    if let Some(reason) = resp.status().canonical_reason() {
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.to_ascii_uppercase().into_bytes()) {
            resp.extensions_mut().insert(phrase);
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
