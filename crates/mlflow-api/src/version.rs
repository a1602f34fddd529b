//! What `/version` says. MLflow's client gates features on the server's version (MLflow 3
//! logged models, bulk metric reads), so `/version` answers the MLflow release whose REST API
//! this server implements; factory's own version goes in the `X-Factory-Version` header and in
//! `GET /api/2.0/factory/version`.

use axum::response::IntoResponse;
use serde::Serialize;

/// The MLflow release whose REST API (and client behaviour) this server is built and tested
/// against; one literal for both constants below.
macro_rules! mlflow_version {
    () => {
        "3.17.2"
    };
}

/// The MLflow API version `/version` reports.
pub const MLFLOW_VERSION: &str = mlflow_version!();
/// factory's own version.
pub const FACTORY_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `factory --version`: both versions on one line.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (MLflow ", mlflow_version!(), " REST API)");
/// The response header that carries factory's own version.
pub const HEADER: &str = "x-factory-version";

/// `GET /version`: the MLflow version as plain text, as `mlflow server` answers.
pub async fn mlflow() -> impl IntoResponse {
    ([(HEADER, FACTORY_VERSION)], MLFLOW_VERSION)
}

/// The body of `GET /api/2.0/factory/version`.
#[derive(Debug, Serialize)]
pub struct Versions {
    pub factory_version: &'static str,
    pub mlflow_version: &'static str,
}

/// `GET /api/2.0/factory/version`.
pub async fn factory() -> impl IntoResponse {
    let body = Versions { factory_version: FACTORY_VERSION, mlflow_version: MLFLOW_VERSION };
    ([(HEADER, FACTORY_VERSION)], axum::Json(body))
}
