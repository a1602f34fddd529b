//! Tabular machine learning for the factory: read a CSV into a typed [`Frame`], train a
//! histogram gradient-boosting machine or a linear baseline with [`fit`], predict, score with
//! [`metrics`], and store the [`Model`] as bytes.
//!
//! ```no_run
//! # fn main() -> Result<(), learn::LearnError> {
//! let frame = learn::read_csv(std::fs::File::open("housing.csv")?)?;
//! let learn::ColumnData::Numeric(y) = &frame.column("median_house_value").unwrap().data else {
//!     unreachable!()
//! };
//! let x = frame.without("median_house_value");
//! let (train, test) = learn::train_test_split(x.n_rows(), 0.2, 42);
//! let y_train: Vec<f64> = train.iter().map(|&i| y[i]).collect();
//! let spec = learn::ModelSpec::Gbm(learn::GbmParams::default());
//! let (model, report) =
//!     learn::fit(&x.select_rows(&train), &y_train, learn::Task::Regression, &spec, &mut |_, _| {})?;
//! let p = model.predict(&x.select_rows(&test))?;
//! let y_test: Vec<f64> = test.iter().map(|&i| y[i]).collect();
//! println!("rmse {} after {} trees", learn::metrics::rmse(&y_test, &p), report.n_iter);
//! # Ok(()) }
//! ```
//!
//! Architecture Invariant: no I/O beyond the `Read` handed to the CSV readers, no logging,
//! no command line, no tracking or registry types: this crate turns rows into models and
//! models into predictions, and the caller decides where they come from and go.
//! Architecture Invariant: same inputs and seed give bit-identical model bytes, whatever the
//! thread count: the only randomness is a seeded split, and parallel work is cut into pieces
//! fixed by the data and summed in a fixed order.
//!
//! Codemap: `read` (CSV → [`Frame`]), `frame` (columns), `schema` ([`Schema`], column kinds),
//! `split` (seeded row splits), `task` ([`Task`], [`TrainReport`], link functions), `gbm`
//! (binning, histograms, leaf-wise trees, boosting), `linear` (ridge and logistic regression, direct or truncated Newton), `text` (tokens,
//! TF-IDF),
//! `model` ([`fit`], [`Model`], bytes), [`metrics`], `error`. Modules depend downwards only:
//! `schema`, `task`, `split`, `text` ← `error` ← `frame` ← `read`, `gbm`, `linear` ← `model`.

mod error;
mod frame;
mod gbm;
mod linear;
pub mod metrics;
mod model;
mod read;
mod schema;
mod split;
mod task;
mod text;

pub use error::LearnError;
pub use frame::{Column, ColumnData, Frame};
pub use gbm::GbmParams;
pub use linear::LinearParams;
pub use metrics::{accuracy, confusion, log_loss, mae, mse, precision_recall_f1, r2, rmse, roc_auc};
pub use model::{fit, Model, ModelSpec};
pub use read::{read_csv, read_csv_with_schema};
pub use schema::{ColumnKind, Field, Schema};
pub use split::{rng, train_test_split, Rng};
pub use task::{Task, TrainReport};
pub use text::tokens;
