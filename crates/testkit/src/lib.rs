//! Test support for the crates' tests, one module per kind of fixture. Only what a test
//! asks for is built (cargo features): `db`, `server`, `model`; `http`, `process` and `s3`
//! are always there.
//!
//! - [`db`]: the backends to test (SQLite always, PostgreSQL when `FACTORY_TEST_POSTGRES`
//!   names an admin URL) and a fresh database of each.
//! - [`server`]: the MLflow REST server (`mlflow_api::run`) on `127.0.0.1:0` over a fresh
//!   store, artifacts in a temp folder or on S3, with request helpers.
//! - [`process`]: the `factory` binary as a child process (`server`, `serve`, `gateway`) on a
//!   free port, killed when dropped; waiting until a URL answers.
//! - [`s3`]: a real S3-compatible server, `s3s-fs`, over a temp folder.
//! - [`model`]: small trained models and packaged model folders.
//! - [`http`]: a scripted HTTP receiver on port 0 that records what it was sent.
//! - [`onnx`]: where ONNX Runtime's library is, for tests that run ONNX models.
//!
//! Like the binary, test support may read the environment (the test settings above);
//! `crates/xtask` knows it as test support, not a library.

#[cfg(feature = "db")]
pub mod db;
pub mod http;
#[cfg(feature = "model")]
pub mod model;
pub mod onnx;
pub mod process;
pub mod s3;
#[cfg(feature = "server")]
pub mod server;
