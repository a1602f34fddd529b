//! Tests over two sorted numeric samples, fed one distinct value at a time in ascending
//! order (see [`Joint`]): scipy's `ks_2samp` and `wasserstein_distance`, numpy's Sturges
//! histogram edges, and the binning used by PSI, Jensen–Shannon, KL and Hellinger.

use super::Sum;
use crate::special;

/// One distinct value of the pooled samples with its multiplicity in each sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Joint {
    /// The value.
    pub x: f64,
    /// How often it occurs in the reference sample.
    pub r: u64,
    /// How often it occurs in the current sample.
    pub c: u64,
}

/// The two empirical CDFs walked together over the pooled distinct values, yielding the
/// two-sample KS statistic as `scipy.stats.ks_2samp` computes it (extreme differences of the
/// ECDFs at every pooled value) and the first Wasserstein distance as scipy's
/// `_cdf_distance(1, u, v)` does (Σ |F_u − F_v| · Δx between consecutive pooled values).
#[derive(Clone, Debug)]
pub struct Ecdf {
    n_r: u64,
    n_c: u64,
    cum_r: u64,
    cum_c: u64,
    max_diff: f64,
    min_diff: f64,
    /// `(x, F_u(x) − F_v(x))` at the previous value.
    prev: Option<(f64, f64)>,
    area: Sum,
}

impl Ecdf {
    /// Starts a walk over samples of the given sizes.
    pub fn new(n_r: u64, n_c: u64) -> Self {
        Ecdf {
            n_r,
            n_c,
            cum_r: 0,
            cum_c: 0,
            max_diff: f64::NEG_INFINITY,
            min_diff: f64::INFINITY,
            prev: None,
            area: Sum::default(),
        }
    }

    /// Feeds the next distinct value.
    #[inline]
    pub fn push(&mut self, j: Joint) {
        if let Some((px, pd)) = self.prev {
            self.area.add(pd.abs() * (j.x - px));
        }
        self.cum_r += j.r;
        self.cum_c += j.c;
        // Through i64: one instruction each on x86-64 (u64 needs a sequence); counts of rows
        // are far below 2^63, so the values are the same.
        let frac = |cum: u64, n: u64| cum as i64 as f64 / n as i64 as f64;
        let diff = frac(self.cum_r, self.n_r) - frac(self.cum_c, self.n_c);
        self.max_diff = self.max_diff.max(diff);
        self.min_diff = self.min_diff.min(diff);
        self.prev = Some((j.x, diff));
    }

    /// The two-sided KS statistic D.
    pub fn ks_statistic(&self) -> f64 {
        let min_s = (-self.min_diff).clamp(0.0, 1.0);
        let max_s = self.max_diff;
        if min_s > max_s {
            min_s
        } else {
            max_s
        }
    }

    /// The first Wasserstein distance.
    pub fn wasserstein(&self) -> f64 {
        self.area.value()
    }
}

/// Two-sided p-value of `scipy.stats.ks_2samp(..., mode="auto")` for statistic `d`: exact
/// when both samples have at most 10 000 values, else Smirnov's asymptotic `kstwo`.
pub fn ks_p_value(d: f64, n1: u64, n2: u64) -> f64 {
    const MAX_AUTO_N: u64 = 10_000;
    let g = gcd(n1, n2);
    let exact =
        if n1.max(n2) <= MAX_AUTO_N { special::exact_two_sample(n1 as i64, n2 as i64, g as i64, d) } else { None };
    let prob = match exact {
        Some(p) => p,
        None => {
            let (m, n) = if n1 >= n2 { (n1 as f64, n2 as f64) } else { (n2 as f64, n1 as f64) };
            let en = m * n / (m + n);
            special::kstwo_sf(d, en.round_ties_even() as i64)
        }
    };
    prob.clamp(0.0, 1.0)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Evidently `_wasserstein_distance_norm`: the distance over the reference's population
/// standard deviation (`np.std`, floored at 0.001).
pub fn wasserstein_norm(distance: f64, reference_std: f64) -> f64 {
    distance / reference_std.max(0.001)
}

pub use sketch::{linspace, sturges_edges};

/// Counts sorted values into bins with `np.histogram` semantics: bin `i` holds
/// `edges[i] <= x < edges[i+1]`, the last bin also holds `x == edges[last]`, and values
/// outside the edges are not counted.
#[derive(Clone, Debug)]
pub struct Binner {
    edges: Vec<f64>,
    /// Values below the first edge count in the first bin, above the last in the last (a
    /// reference profile's fixed PSI bins) instead of not at all.
    clamp: bool,
    bin: usize,
    /// Per-bin `(reference, current)` counts.
    pub counts: Vec<(u64, u64)>,
}

impl Binner {
    /// A binner over `edges` (at least two, ascending).
    pub fn new(edges: Vec<f64>) -> Self {
        let n = edges.len().saturating_sub(1);
        Binner { edges, clamp: false, bin: 0, counts: vec![(0, 0); n] }
    }

    /// A binner over fixed `edges` whose end bins also hold the values beyond them.
    pub fn clamped(edges: Vec<f64>) -> Self {
        Binner { clamp: true, ..Binner::new(edges) }
    }

    /// Feeds the next distinct value (ascending order).
    #[inline]
    pub fn push(&mut self, j: Joint) {
        let nbins = self.counts.len();
        if nbins == 0 || (!self.clamp && (j.x < self.edges[0] || j.x > self.edges[nbins])) {
            return;
        }
        while self.bin + 1 < nbins && j.x >= self.edges[self.bin + 1] {
            self.bin += 1;
        }
        let slot = &mut self.counts[self.bin];
        slot.0 += j.r;
        slot.1 += j.c;
    }

    /// The bin edges.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }
}

/// Evidently `_hellinger_distance` for numerical columns, from per-bin counts over
/// `edges = histogram_bin_edges(distinct values, "sturges")`.
pub fn hellinger_binned(edges: &[f64], counts: &[(u64, u64)]) -> f64 {
    let total_r: u64 = counts.iter().map(|c| c.0).sum();
    let total_c: u64 = counts.iter().map(|c| c.1).sum();
    let nb = edges.len() - 1;
    let bin_width = (edges[nb] - edges[0]) / nb as f64;
    let mut s = Sum::default();
    for (i, &(r, c)) in counts.iter().enumerate() {
        let db = edges[i + 1] - edges[i];
        let h1 = r as f64 / db / total_r as f64;
        let h2 = c as f64 / db / total_c as f64;
        s.add((h1 * h2).sqrt() * bin_width);
    }
    (1.0 - s.value().clamp(0.0, 1.0)).sqrt()
}
