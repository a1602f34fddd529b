//! Tests of the learn crate through its public API, one module per area, all on small data
//! made here (no files, no network).

mod csv;
mod frame;
mod gbm;
mod linear;
mod metrics;
mod model;

use learn::{Column, Frame};

/// A small deterministic generator for test data (xorshift64*), independent of the crate's.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
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
