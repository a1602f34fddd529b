//! Experiment tracking store: experiments, runs, metrics, params, tags and dataset inputs,
//! kept in SQLite or PostgreSQL through one sqlx code path.
//!
//! Architecture invariant: this crate knows nothing about HTTP or JSON wire formats. The
//! MLflow REST adapter (`mlflow-api`) converts these plain types by hand.

mod db;
mod error;
mod model;
pub mod search;
pub mod stats;
mod store;

pub use db::{parse_backend_uri, Dialect, Origin, Plan, MLFLOW_REVISION};
/// Telling, adopting and giving back databases (`factory db`).
pub mod schema {
    pub use crate::db::{adopt, inspect, release};
}
pub use error::{Result, StoreError};
pub use model::*;
pub use store::validate;
pub use store::{
    after_scheme, canonical_stage, compile_search, now_ms, parse_version, Datasets, Experiments, LoggedModelOrder,
    LoggedModelSearch, LoggedModels, Metrics, ModelVersions, NewLoggedModel, NewModelVersion, RegisteredModels,
    RunSearch, RunUpdate, Runs, SearchKind, Store, DEFAULT_EXPERIMENT_ID, LOGGED_MODEL_STATUSES, RUN_NAME_TAG,
    SEARCH_MAX_RESULTS, STAGES,
};
