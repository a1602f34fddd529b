//! Training runs, end to end: get the data ([`data`]), split, fit with a progress bar,
//! evaluate on the holdout, log everything to the tracking server, write the model package,
//! register it, and decide champion vs challenger ([`run`]).
//!
//! Architecture invariant: the tracking server is only reached through `mlflow-client`; the
//! learning itself is `learn`'s; this crate is the orchestration between them.

pub mod data;
mod plot;
pub mod run;

pub use run::{
    evaluate, evaluate_packaged, higher_is_better, holdout_metrics, train, Comparison, Holdout, TrainConfig,
    TrainOutcome,
};

/// Why a training run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("data: {0}")]
    Data(String),
    #[error(transparent)]
    Learn(#[from] learn::LearnError),
    #[error(transparent)]
    Package(#[from] package::PackageError),
    #[error("tracking server: {0}")]
    Tracking(#[from] mlflow_client::ClientError),
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
