//! The admin protocol spoken between our own processes: the gateway's admin API (`factory
//! deploy`, the loop's blue-green rollout), serve's admin listener (`POST /admin/reload`, the
//! loop's hot reload) — paths as constants, request and reply bodies as types, bearer tokens
//! checked in constant time, the guard both planes put before the token against requests from
//! web browsers (`guard`), a typed client, and the OpenAPI documents generated from the same
//! types (`docs/openapi/`, checked by this crate's tests). Both sides use these types, so a
//! renamed field fails to compile instead of failing in production.

pub mod client;
pub mod guard;
pub mod openapi;
pub mod token;
mod types;

pub use client::{AdminClient, ClientError};
pub use token::{Identity, TokenError, Tokens};
pub use types::*;

/// A value the caller sent, as an error message may echo it: at most `max` characters, cut
/// with an ellipsis (a 1 MB model or service name must not become a 1 MB message, which gRPC
/// clients refuse as oversized metadata). Used by both planes and by serve's public errors.
pub fn shown(value: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &value[..i]).into(),
        None => value.into(),
    }
}

/// Paths of the gateway admin API.
pub mod gateway_paths {
    pub const STATUS: &str = "/status";
    pub const SWITCH: &str = "/switch";
    pub const ROLLBACK: &str = "/rollback";
    pub const WEIGHTS: &str = "/weights";
    pub const SHADOW: &str = "/shadow";
    pub const AUDIT: &str = "/audit";
    pub const CANARY: &str = "/canary";
    pub const CANARY_ABORT: &str = "/canary/abort";
    pub const METRICS: &str = "/metrics";
}

/// Paths of serve's admin listener (`--admin-port`); the public port answers 404 for them.
pub mod serve_paths {
    /// Everything under it is admin-only.
    pub const PREFIX: &str = "/admin/";
    pub const RELOAD: &str = "/admin/reload";
    /// Public health (on the serving port).
    pub const HEALTH: &str = "/health";
}
