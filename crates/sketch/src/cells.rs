//! The cells one column's values are counted in.

use crate::{SketchError, CATEGORY_BYTES, NEW_CATEGORIES};

/// `a + b`, or an error naming the overflow (counts come over the network).
pub(crate) fn add(a: u64, b: u64) -> Result<u64, SketchError> {
    a.checked_add(b).ok_or_else(|| SketchError::Shape("a count overflows".into()))
}

fn add_all(a: &mut [u64], b: &[u64]) -> Result<(), SketchError> {
    for (x, y) in a.iter_mut().zip(b) {
        *x = add(*x, *y)?;
    }
    Ok(())
}
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A numeric column's values in the cells of `k` edges: `at[i]` counts values equal to
/// `edges[i]`; `count[i]`/`sum[i]` the values strictly between `edges[i-1]` and `edges[i]`
/// (`i = 0`: below the first edge, `i = k`: above the last). `low` and `high` are the smallest
/// value below the first edge and the largest above the last (meaningful when those cells
/// are not empty). Missing and non-finite values are counted, not placed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericCells {
    pub at: Vec<u64>,
    pub count: Vec<u64>,
    pub sum: Vec<f64>,
    pub low: f64,
    pub high: f64,
    pub missing: u64,
}

impl NumericCells {
    /// No values, for `k` edges.
    pub fn empty(k: usize) -> NumericCells {
        NumericCells { at: vec![0; k], count: vec![0; k + 1], sum: vec![0.0; k + 1], low: 0.0, high: 0.0, missing: 0 }
    }

    /// Counts `x` (`edges` as in the profile).
    #[inline]
    pub fn add(&mut self, edges: &[f64], x: f64) {
        if !x.is_finite() {
            self.missing += 1;
            return;
        }
        let i = edges.partition_point(|&e| e < x);
        if i < edges.len() && edges[i] == x {
            self.at[i] += 1;
            return;
        }
        if !(self.sum[i] + x).is_finite() {
            // A sum past f64's range could not be written as JSON: such a value counts as
            // missing, as an infinite one does.
            self.missing += 1;
            return;
        }
        let k = edges.len();
        if i == 0 {
            self.low = if self.count[0] == 0 { x } else { self.low.min(x) };
        } else if i == k {
            self.high = if self.count[k] == 0 { x } else { self.high.max(x) };
        }
        self.count[i] += 1;
        self.sum[i] += x;
    }

    /// Adds another column's cells of the same edges.
    pub fn merge(&mut self, other: &NumericCells) -> Result<(), SketchError> {
        if self.at.len() != other.at.len() || self.count.len() != other.count.len() {
            return Err(SketchError::Shape(format!("{} edges merged into {}", other.at.len(), self.at.len())));
        }
        let k = self.at.len();
        if other.count[0] > 0 {
            self.low = if self.count[0] == 0 { other.low } else { self.low.min(other.low) };
        }
        if other.count[k] > 0 {
            self.high = if self.count[k] == 0 { other.high } else { self.high.max(other.high) };
        }
        add_all(&mut self.at, &other.at)?;
        add_all(&mut self.count, &other.count)?;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
            if !a.is_finite() {
                return Err(SketchError::Shape("a sum overflows".into()));
            }
        }
        self.missing = add(self.missing, other.missing)?;
        Ok(())
    }

    /// Values placed (not missing; saturating on hostile counts).
    pub fn total(&self) -> u64 {
        self.at.iter().chain(&self.count).fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Checks the lengths for `k` edges and that sums and extremes are finite.
    pub fn check(&self, k: usize) -> Result<(), String> {
        if self.at.len() != k || self.count.len() != k + 1 || self.sum.len() != k + 1 {
            return Err(format!(
                "{} edge cells and {} interval cells for {k} edges",
                self.at.len(),
                self.count.len().min(self.sum.len())
            ));
        }
        if self.sum.iter().any(|s| !s.is_finite()) || !self.low.is_finite() || !self.high.is_finite() {
            return Err("sums and extremes must be finite".into());
        }
        Ok(())
    }
}

/// A categorical column's values: per category, the rest of the new categories summed in
/// `other` once a column has [`NEW_CATEGORIES`] more than its reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryCounts {
    pub counts: BTreeMap<String, u64>,
    pub other: u64,
    pub missing: u64,
}

impl CategoryCounts {
    /// Counts one value; `known` is the reference's number of categories (for the cap).
    #[inline]
    pub fn add(&mut self, value: Option<&str>, known: usize) {
        let Some(v) = value else {
            self.missing += 1;
            return;
        };
        let cut = (0..=v.len().min(CATEGORY_BYTES)).rev().find(|i| v.is_char_boundary(*i)).unwrap_or(0);
        let v = &v[..cut];
        if let Some(n) = self.counts.get_mut(v) {
            *n += 1;
        } else if self.counts.len() < known + NEW_CATEGORIES {
            self.counts.insert(v.to_owned(), 1);
        } else {
            self.other += 1;
        }
    }

    /// Adds another column's counts.
    pub fn merge(&mut self, other: &CategoryCounts) -> Result<(), SketchError> {
        for (k, n) in &other.counts {
            let slot = self.counts.entry(k.clone()).or_default();
            *slot = add(*slot, *n)?;
        }
        self.other = add(self.other, other.other)?;
        self.missing = add(self.missing, other.missing)?;
        Ok(())
    }

    /// Values counted (not missing; saturating on hostile counts).
    pub fn total(&self) -> u64 {
        self.counts.values().fold(self.other, |a, b| a.saturating_add(*b))
    }
}
