//! Model serving for `factory serve`.
//!
//! ```text
//!  HTTP (axum) ── http.rs ──┐                     ┌── predictor.rs  ArcSwap<LoadedModel>
//!  MLflow scoring, V2 REST  │                     │      ▲ swap
//!                           ├─▶ service::Serving ─┼── reload.rs     Loader (registry/folder) + Reloader
//!  gRPC (tonic) ── grpc.rs ─┘   score, health,    ├── batch.rs      adaptive batching (optional)
//!  V2 inference, health         metadata, reload  ├── request_log.rs queue → writer thread → JSONL/CSV
//!        │                                        └── metrics.rs    Prometheus text
//!        └─ tensor.rs: V2 tensors → Frame (shared by REST and gRPC)
//! ```
//!
//! [`server::run`] is the whole server as a library function: it takes bound listeners
//! and a shutdown future, so the binary only parses flags and binds, and tests run the
//! real thing on port 0.
//!
//! Architecture Invariant: protocol types (axum, tonic, protobuf, JSON wire shapes) appear
//! only in `http`, `grpc` and `proto`; the core modules take and return plain Rust types
//! (`learn::Frame`, [`tensor::Tensor`], [`ServeError`]).
//!
//! Architecture Invariant: a request takes one `Arc<LoadedModel>` at its start and uses
//! it to decode, score and log; a reload never changes the model under a request.
//!
//! Architecture Invariant: nothing on the request path waits for disk or for the registry:
//! the request log is written by its own thread, models are loaded by the reloader task.

pub mod batch;
pub mod drift;
pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod predictor;
#[cfg(test)]
mod props;
pub mod proto;
pub mod reload;
pub mod request_id;
pub mod request_log;
pub mod server;
pub mod service;
pub mod tensor;

pub use batch::BatchConfig;
pub use error::{LoadError, RunError, ServeError};
pub use request_log::RequestLogConfig;
pub use server::{run, run_with, Listeners};
pub use service::{Config, Serving};
