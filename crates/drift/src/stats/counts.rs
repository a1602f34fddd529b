//! Tests computed from counts per key — one key per distinct value (categorical columns and
//! low-cardinality numbers) or per histogram bin (PSI and friends on binned numbers).
//!
//! Each function mirrors one Evidently/scipy function; the doc comment names it. Counts come
//! through [`Counts`] so that a table in memory and a streamed walk over sorted runs use the
//! same code.

use super::Sum;
use crate::error::Result;
use crate::special;

/// Pairs `(reference count, current count)`, one per key, visited in key order.
pub trait Counts {
    /// Calls `f(reference_count, current_count)` for every key.
    fn visit(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()>;
}

impl Counts for [(u64, u64)] {
    fn visit(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()> {
        for &(r, c) in self {
            f(r, c);
        }
        Ok(())
    }
}

impl Counts for Vec<(u64, u64)> {
    fn visit(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()> {
        self.as_slice().visit(f)
    }
}

/// What one pass over the counts learns for the fills and normalisations.
#[derive(Clone, Copy, Debug)]
struct Profile {
    keys: u64,
    min_nonzero_r: u64,
    min_nonzero_c: u64,
    zeros_r: u64,
    zeros_c: u64,
    share_sum_r: f64,
    share_sum_c: f64,
}

fn profile(counts: &dyn Counts, n_r: u64, n_c: u64) -> Result<Profile> {
    let mut p = Profile {
        keys: 0,
        min_nonzero_r: u64::MAX,
        min_nonzero_c: u64::MAX,
        zeros_r: 0,
        zeros_c: 0,
        share_sum_r: 0.0,
        share_sum_c: 0.0,
    };
    let (mut sr, mut sc) = (Sum::default(), Sum::default());
    counts.visit(&mut |r, c| {
        p.keys += 1;
        if r == 0 {
            p.zeros_r += 1;
        } else {
            p.min_nonzero_r = p.min_nonzero_r.min(r);
            sr.add(r as f64 / n_r as f64);
        }
        if c == 0 {
            p.zeros_c += 1;
        } else {
            p.min_nonzero_c = p.min_nonzero_c.min(c);
            sc.add(c as f64 / n_c as f64);
        }
    })?;
    p.share_sum_r = sr.value();
    p.share_sum_c = sc.value();
    Ok(p)
}

/// The value `get_binned_data(..., feel_zeroes=True)` puts into empty bins: a millionth of
/// the smallest non-empty share when that share is at most 1e-4, otherwise 1e-4.
pub fn zero_fill(min_nonzero_count: u64, n: u64) -> f64 {
    let min_share = min_nonzero_count as f64 / n as f64;
    if min_share <= 0.0001 {
        min_share / 1e6
    } else {
        0.0001
    }
}

fn share(count: u64, n: u64, fill: f64) -> f64 {
    if count == 0 {
        fill
    } else {
        count as f64 / n as f64
    }
}

/// Evidently `_psi`: Σ (r − c)·ln(r / c) over shares with empty keys filled.
pub fn psi(counts: &dyn Counts, n_r: u64, n_c: u64) -> Result<f64> {
    let p = profile(counts, n_r, n_c)?;
    let (fill_r, fill_c) = (zero_fill(p.min_nonzero_r, n_r), zero_fill(p.min_nonzero_c, n_c));
    let mut sum = Sum::default();
    counts.visit(&mut |r, c| {
        let (r, c) = (share(r, n_r, fill_r), share(c, n_c, fill_c));
        sum.add((r - c) * (r / c).ln());
    })?;
    Ok(sum.value())
}

/// scipy `rel_entr(x, y)`.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Evidently `_kl_div`: `scipy.stats.entropy` of the filled shares.
pub fn kl_div(counts: &dyn Counts, n_r: u64, n_c: u64) -> Result<f64> {
    let p = profile(counts, n_r, n_c)?;
    let (fill_r, fill_c) = (zero_fill(p.min_nonzero_r, n_r), zero_fill(p.min_nonzero_c, n_c));
    let total_r = p.share_sum_r + p.zeros_r as f64 * fill_r;
    let total_c = p.share_sum_c + p.zeros_c as f64 * fill_c;
    let mut sum = Sum::default();
    counts.visit(&mut |r, c| {
        let pk = share(r, n_r, fill_r) / total_r;
        let qk = share(c, n_c, fill_c) / total_c;
        sum.add(rel_entr(pk, qk));
    })?;
    Ok(sum.value())
}

/// Evidently `_jensenshannon`: `scipy.spatial.distance.jensenshannon` (natural log) of the
/// unfilled shares.
pub fn jensenshannon(counts: &dyn Counts, n_r: u64, n_c: u64) -> Result<f64> {
    let p = profile(counts, n_r, n_c)?;
    let (mut left, mut right) = (Sum::default(), Sum::default());
    counts.visit(&mut |r, c| {
        let pk = (r as f64 / n_r as f64) / p.share_sum_r;
        let qk = (c as f64 / n_c as f64) / p.share_sum_c;
        let m = (pk + qk) / 2.0;
        left.add(rel_entr(pk, m));
        right.add(rel_entr(qk, m));
    })?;
    let js = left.value() + right.value();
    Ok((js / 2.0).sqrt())
}

/// Evidently `_chi_stat_test`: `scipy.stats.chisquare(f_obs=current, f_exp=reference·n_c/n_r)`
/// p-value, with `keys − 1` degrees of freedom.
pub fn chisquare(counts: &dyn Counts, n_r: u64, n_c: u64) -> Result<f64> {
    let k_norm = n_c as f64 / n_r as f64;
    let mut stat = Sum::default();
    let mut keys = 0u64;
    counts.visit(&mut |r, c| {
        keys += 1;
        let f_exp = r as f64 * k_norm;
        let d = c as f64 - f_exp;
        stat.add(d * d / f_exp);
    })?;
    let df = keys as f64 - 1.0;
    Ok(special::chdtrc(df, stat.value()))
}

/// Evidently `_z_stat_test`: two-proportion Z-test of "value ≠ smallest key", two-sided
/// p-value `2·(1 − Φ(|z|))`.
///
/// `first` holds the counts of the smallest key; `single_same_value` is Evidently's shortcut
/// (both samples hold one and the same value), which returns 1.
pub fn z_test(first: (u64, u64), n_r: u64, n_c: u64, single_same_value: bool) -> f64 {
    if single_same_value {
        return 1.0;
    }
    let (n1, n2) = (n_r as f64, n_c as f64);
    let p1 = (n_r - first.0) as f64 / n1;
    let p2 = (n_c - first.1) as f64 / n2;
    let big_p = (p1 * n1 + p2 * n2) / (n1 + n2);
    let z = (p1 - p2) / (big_p * (1.0 - big_p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    2.0 * (1.0 - special::ndtr(z.abs()))
}

/// Evidently `_hellinger_distance` for categorical columns.
pub fn hellinger(counts: &dyn Counts, n_r: u64, n_c: u64) -> Result<f64> {
    let mut s = Sum::default();
    counts.visit(&mut |r, c| {
        let p1 = r as f64 / n_r as f64;
        let p2 = c as f64 / n_c as f64;
        s.add((p1 * p2).sqrt());
    })?;
    Ok((1.0 - s.value().clamp(0.0, 1.0)).sqrt())
}
