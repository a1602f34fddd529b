//! Tests of the learn crate through its public API, one module per area, all on small data
//! made here (no files, no network).

mod csv;
mod frame;
mod gbm;
mod linear;
mod metrics;
mod model;

use learn::{Column, Frame};
use rand::RngExt as _;

/// Test data from the crate's seeded generator.
pub struct Gen(learn::Rng);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(learn::rng(seed))
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A frame from columns, panicking on error.
pub fn frame(cols: Vec<Column>) -> Frame {
    Frame::from_columns(cols).unwrap()
}

/// Categorical values from string slices ("" = missing).
pub fn cats(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|s| (!s.is_empty()).then(|| s.to_string())).collect()
}
