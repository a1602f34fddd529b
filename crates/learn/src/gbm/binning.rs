//! Feature coding for the trees: numeric columns are cut into at most `max_bins`
//! equal-frequency bins (scikit-learn's thresholds: midpoints between distinct values when
//! there are few, else the `averaged_inverted_cdf` percentiles); categorical columns map each
//! level seen in training to a small integer code. Missing values (and unseen levels) take
//! the reserved code [`MISSING`].
//!
//! Only the categorical level lists are stored in a model: trees keep raw numeric
//! thresholds, so prediction never needs the numeric bin edges.

use foldhash::HashMap;

use serde::{Deserialize, Serialize};

/// The bin (or level code) of missing values; regular bins are `0..MISSING`.
pub(crate) const MISSING: u8 = 255;

/// How one input column is turned into codes; aligned with the model's schema fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Coding {
    Numeric,
    /// Levels in code order (code = index); anything else is treated as missing.
    Categorical {
        levels: Vec<String>,
    },
}

/// Upper bin edges of a numeric feature: value `x` falls in bin `i` iff
/// `edges[i - 1] < x <= edges[i]`; there are `edges.len() + 1` non-missing bins.
///
/// Few distinct values are found with a small set that gives up past `max_bins` of them;
/// the percentiles of many are order statistics picked out by [`select_ranks`] in
/// O(n log max_bins), not by sorting every value.
pub(crate) fn numeric_edges(values: &[f64], max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let mut edges: Vec<f64> = if let Some(mut distinct) = few_distinct(&v, max_bins) {
        distinct.sort_unstable_by(f64::total_cmp);
        distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
    } else {
        let n = v.len();
        // numpy: np.percentile(v, linspace(0, 100, max_bins + 1)[i],
        // method="averaged_inverted_cdf"): the mean of two order statistics where the rank
        // is whole, else one.
        let ranks: Vec<(usize, usize)> = (1..max_bins)
            .map(|i| {
                let h = n as f64 * (i as f64 * (100.0 / max_bins as f64)) / 100.0;
                let k = h.floor();
                if h == k {
                    let k = k as usize;
                    (k.saturating_sub(1), k.min(n - 1))
                } else {
                    let k = (h.ceil() as usize).clamp(1, n) - 1;
                    (k, k)
                }
            })
            .collect();
        let mut wanted: Vec<usize> = ranks.iter().flat_map(|&(a, b)| [a, b]).collect();
        wanted.sort_unstable();
        wanted.dedup();
        select_ranks(&mut v, &wanted);
        ranks.iter().map(|&(a, b)| if a == b { v[a] } else { (v[a] + v[b]) / 2.0 }).collect()
    };
    edges.dedup();
    // Infinite edges would not survive JSON; f64::MAX sorts the same for finite inputs.
    for e in &mut edges {
        *e = e.clamp(-f64::MAX, f64::MAX);
    }
    edges
}

/// The distinct values of `v` (zeros of either sign counted once) if there are at most
/// `max` of them, in no particular order; `None` as soon as there are more.
fn few_distinct(v: &[f64], max: usize) -> Option<Vec<f64>> {
    let mut seen = foldhash::HashSet::default();
    let mut distinct = Vec::new();
    for &x in v {
        let x = if x == 0.0 { 0.0 } else { x };
        if seen.insert(x.to_bits()) {
            if distinct.len() == max {
                return None;
            }
            distinct.push(x);
        }
    }
    Some(distinct)
}

/// Reorders `v` so that `v[r]` is the value of rank `r` in sorted order, for every `r` of
/// `ranks` (ascending, distinct, each below `v.len()`): each pick splits the slice, and the
/// ranks on either side are picked within their part.
fn select_ranks(v: &mut [f64], ranks: &[usize]) {
    if ranks.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let r = ranks[mid];
    let (left, _, right) = v.select_nth_unstable_by(r, f64::total_cmp);
    select_ranks(left, &ranks[..mid]);
    let after: Vec<usize> = ranks[mid + 1..].iter().map(|&k| k - r - 1).collect();
    select_ranks(right, &after);
}

/// Bin of a numeric value given its edges.
pub(crate) fn bin_of(edges: &[f64], x: f64) -> u8 {
    if x.is_nan() {
        return MISSING;
    }
    edges.partition_point(|&e| e < x) as u8
}

/// Codes of categorical values against a level list (unseen or missing → [`MISSING`]).
/// A handful of levels (a few rows to score) are searched in order rather than hashed.
pub(crate) fn level_codes<'a>(levels: &[String], values: impl Iterator<Item = Option<&'a str>>) -> Vec<u8> {
    if levels.len() <= 16 {
        let code = |s: &str| levels.iter().position(|l| l == s).map(|i| i as u8);
        return values.map(|v| v.and_then(code).unwrap_or(MISSING)).collect();
    }
    let lookup: HashMap<&str, u8> = levels.iter().enumerate().map(|(i, s)| (s.as_str(), i as u8)).collect();
    values.map(|v| v.and_then(|s| lookup.get(s).copied()).unwrap_or(MISSING)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::categorical_levels;

    #[test]
    fn few_distinct_values_give_midpoints() {
        assert_eq!(numeric_edges(&[3.0, 1.0, f64::NAN, 2.0, 1.0], 255), vec![1.5, 2.5]);
        assert!(numeric_edges(&[1.0, 1.0], 255).is_empty());
    }

    #[test]
    fn many_distinct_values_give_quantiles() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let e = numeric_edges(&v, 4);
        // numpy: np.percentile(range(1000), [25, 50, 75], method="averaged_inverted_cdf")
        assert_eq!(e, vec![249.5, 499.5, 749.5]);
        assert_eq!(bin_of(&e, 249.5), 0);
        assert_eq!(bin_of(&e, 250.0), 1);
        assert_eq!(bin_of(&e, 1e9), 3);
        assert_eq!(bin_of(&e, f64::NAN), MISSING);
    }

    /// The edges by sorting every value (the implementation before selection).
    fn sorted_edges(values: &[f64], max_bins: usize) -> Vec<f64> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_unstable_by(f64::total_cmp);
        let mut distinct = v.clone();
        distinct.dedup();
        if distinct.len() <= 1 {
            return Vec::new();
        }
        if distinct.len() <= max_bins {
            return distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
        }
        let n = v.len();
        let mut edges: Vec<f64> = (1..max_bins)
            .map(|i| {
                let h = n as f64 * (i as f64 * (100.0 / max_bins as f64)) / 100.0;
                let k = h.floor();
                if h == k {
                    (v[(k as usize).saturating_sub(1)] + v[(k as usize).min(n - 1)]) / 2.0
                } else {
                    v[(h.ceil() as usize).clamp(1, n) - 1]
                }
            })
            .collect();
        edges.dedup();
        edges
    }

    /// Selection gives the edges that sorting every value gives: few and many distinct
    /// values, ties, both signs of zero, missing values.
    #[test]
    fn selected_percentiles_equal_sorted_ones() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for n in [0, 1, 2, 300, 1000, 4097, 20_000] {
            for spread in [3, 40, 1_000_000] {
                let v: Vec<f64> = (0..n)
                    .map(|i| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // A coarse grid for half the rows: ties.
                        if i % 2 == 0 {
                            (state % 40) as f64 - 20.0
                        } else {
                            (state % spread) as f64 / 7.0
                        }
                    })
                    .chain([f64::NAN, -0.0])
                    .collect();
                for max_bins in [2, 16, 255] {
                    assert_eq!(numeric_edges(&v, max_bins), sorted_edges(&v, max_bins), "n {n}, max_bins {max_bins}");
                }
            }
        }
    }

    #[test]
    fn rare_levels_beyond_the_cap_are_dropped() {
        let v = ["b", "a", "b", "c", "c", "c"].map(Some);
        assert_eq!(categorical_levels(v.into_iter(), 2), vec!["b", "c"]);
        let levels = categorical_levels(v.into_iter(), 255);
        assert_eq!(level_codes(&levels, [Some("c"), None, Some("z")].into_iter()), vec![2, MISSING, MISSING]);
    }
}
