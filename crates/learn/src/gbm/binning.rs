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
pub(crate) fn numeric_edges(values: &[f64], max_bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_unstable_by(f64::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup();
    if distinct.len() <= 1 {
        return Vec::new();
    }
    let mut edges: Vec<f64> = if distinct.len() <= max_bins {
        distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
    } else {
        let n = v.len();
        (1..max_bins)
            .map(|i| {
                // numpy: np.percentile(v, linspace(0, 100, max_bins + 1)[i],
                // method="averaged_inverted_cdf")
                let h = n as f64 * (i as f64 * (100.0 / max_bins as f64)) / 100.0;
                let k = h.floor();
                if h == k {
                    let k = k as usize;
                    (v[k.saturating_sub(1)] + v[k.min(n - 1)]) / 2.0
                } else {
                    v[(h.ceil() as usize).clamp(1, n) - 1]
                }
            })
            .collect()
    };
    edges.dedup();
    // Infinite edges would not survive JSON; f64::MAX sorts the same for finite inputs.
    for e in &mut edges {
        *e = e.clamp(-f64::MAX, f64::MAX);
    }
    edges
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

    #[test]
    fn rare_levels_beyond_the_cap_are_dropped() {
        let v = ["b", "a", "b", "c", "c", "c"].map(Some);
        assert_eq!(categorical_levels(v.into_iter(), 2), vec!["b", "c"]);
        let levels = categorical_levels(v.into_iter(), 255);
        assert_eq!(level_codes(&levels, [Some("c"), None, Some("z")].into_iter()), vec![2, MISSING, MISSING]);
    }
}
