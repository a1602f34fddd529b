//! Building a [`Profile`] from the reference's columns.

use crate::{
    CategoricalProfile, CategoryCounts, ColumnProfile, NumericCells, NumericProfile, Profile, ProfileKind,
    PROFILE_FORMAT,
};

/// Reference quantiles cut into cells per numeric column: an interval between two of them
/// holds about 1/256 of the reference, which bounds the KS statistic's error.
pub const QUANTILE_CELLS: usize = 256;

/// One reference column.
#[derive(Clone, Copy, Debug)]
pub enum ColumnInput<'a> {
    Numeric(&'a [f64]),
    Categorical(&'a [Option<String>]),
}

impl Profile {
    /// The profile of the reference `columns` (name, values). A numeric column without a
    /// single finite value has nothing to compare with and is left out.
    pub fn build(columns: &[(&str, ColumnInput<'_>)]) -> Profile {
        let mut rows = 0;
        let mut out = Vec::new();
        for &(name, input) in columns {
            let kind = match input {
                ColumnInput::Numeric(values) => {
                    rows = rows.max(values.len() as u64);
                    match numeric(values) {
                        Some(n) => ProfileKind::Numeric(n),
                        None => continue,
                    }
                }
                ColumnInput::Categorical(values) => {
                    rows = rows.max(values.len() as u64);
                    let mut reference = CategoryCounts::default();
                    for v in values {
                        match v {
                            Some(v) => *reference.counts.entry(v.clone()).or_default() += 1,
                            None => reference.missing += 1,
                        }
                    }
                    ProfileKind::Categorical(CategoricalProfile { reference })
                }
            };
            out.push(ColumnProfile { name: name.to_owned(), kind });
        }
        let mut profile = Profile { format: PROFILE_FORMAT.into(), id: String::new(), rows, columns: out };
        profile.id = profile.content_id();
        profile
    }
}

fn numeric(values: &[f64]) -> Option<NumericProfile> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let (min, max) = (sorted[0], sorted[n - 1]);
    let psi_edges: Vec<f64> = sturges_edges(min, max, n as u64, false).into_iter().map(|e| e + 0.0).collect();
    // `+ 0.0` turns −0.0 into 0.0, so a quantile at zero and a PSI edge at zero are one edge.
    let mut edges: Vec<f64> = (0..=QUANTILE_CELLS).map(|i| sorted[i * (n - 1) / QUANTILE_CELLS] + 0.0).collect();
    edges.extend_from_slice(&psi_edges);
    edges.sort_unstable_by(f64::total_cmp);
    edges.dedup();
    let mut reference = NumericCells::empty(edges.len());
    let mut missing = 0;
    for &x in values {
        if x.is_finite() {
            reference.add(&edges, x);
        } else {
            missing += 1;
        }
    }
    reference.missing = missing;
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let std = (sorted.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64).sqrt();
    let distinct = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    Some(NumericProfile { edges, psi_edges, reference, distinct, mean, std, min, max })
}

/// `np.histogram_bin_edges(data, bins="sturges")` for data with the given minimum, maximum
/// and size. `integer` is true when numpy would see an integer array, which makes the bin
/// width at least 1.
pub fn sturges_edges(min: f64, max: f64, size: u64, integer: bool) -> Vec<f64> {
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let mut width = (max - min) / ((size as f64).log2() + 1.0);
    let bins = if width != 0.0 {
        if integer && width < 1.0 {
            width = 1.0;
        }
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    linspace(first, last, bins + 1)
}

/// `np.linspace(start, stop, num)` (endpoint included).
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = num.saturating_sub(1);
    let delta = stop - start;
    let mut out: Vec<f64> = if div > 0 {
        let step = delta / div as f64;
        if step == 0.0 {
            (0..num).map(|i| i as f64 / div as f64 * delta + start).collect()
        } else {
            (0..num).map(|i| i as f64 * step + start).collect()
        }
    } else {
        (0..num).map(|i| i as f64 * delta + start).collect()
    };
    if num > 1 {
        out[num - 1] = stop;
    }
    out
}
