//! Drift computed online: a model's reference [`Profile`] against the merged [`Sketch`]es of
//! what serving scored (`GET /drift/sketch` on every replica), as a [`DriftReport`] of the same
//! shape as the file path's, so the loop decides the same way from either.
//!
//! What equals the file path and what is bounded (the file path given the profile's PSI bins,
//! `DriftOptions::psi_edges`):
//! - PSI, and Jensen–Shannon / KL / Hellinger on numeric columns, use the profile's PSI bins
//!   and are exact;
//! - categorical columns are counted per category and every categorical test is exact (unless
//!   more than `sketch::NEW_CATEGORIES` new categories were summed);
//! - the KS statistic D is read at the cell edges: `D_sketch ≤ D ≤ D_sketch + bound`, `bound` =
//!   the largest `min(reference share, current share)` of an open interval between two edges
//!   (the p-value is computed from `D_sketch`);
//! - the Wasserstein distance puts each interval's mass at its mean: within `Σ (reference
//!   share plus current share) × width / 2` over the intervals between edges of the exact one
//!   (over the reference std when normed); below the first edge and above the last the
//!   reference's CDF is constant (0 or 1), so the current values' mean places their mass
//!   exactly there.
//!
//! The bound is reported as `sketch_error_bound` on the column.

use crate::column::{self, ColumnOptions, Verdict};
use crate::error::{DriftError, Result};
use crate::ingest::TextData;
use crate::report::{ColumnReport, ColumnStats, DatasetSummary, DriftReport, Histogram, SkippedColumn};
use crate::stats::counts;
use crate::stats::numeric::{self, Ecdf, Joint};
use crate::stats::{ColumnType, StatTest};
use crate::{check_option_columns, column_options, report_of, validate, DriftOptions};
use sketch::{CategoryCounts, ColumnSketch, NumericCells, NumericProfile, Profile, ProfileKind, Sketch};

/// Compares `sketch` (merged, in `profile`'s cells) with `profile`'s reference. `options`
/// gives the thresholds, tests and columns as for files; its paths only name the two sides in
/// the report.
pub fn report(profile: &Profile, sketch: &Sketch, options: &DriftOptions) -> Result<DriftReport> {
    validate(options)?;
    profile.check().map_err(|e| DriftError::InvalidOption(e.to_string()))?;
    sketch.check(profile).map_err(|e| DriftError::InvalidOption(e.to_string()))?;
    let all: Vec<String> = profile.columns.iter().map(|c| c.name.clone()).collect();
    let names: Vec<String> = match &options.columns {
        Some(wanted) => {
            if let Some(w) = wanted.iter().find(|w| !all.contains(w)) {
                return Err(DriftError::MissingColumn {
                    column: w.clone(),
                    path: options.reference.clone(),
                    available: all.join(", "),
                });
            }
            all.iter().filter(|n| wanted.contains(n)).cloned().collect()
        }
        None => all.clone(),
    };
    if names.is_empty() {
        return Err(DriftError::NoColumns("the profile has no column to compare".into()));
    }
    check_option_columns(options, &names)?;
    let per_column = column_options(options, &names)?;
    let mut columns = Vec::new();
    let mut skipped = Vec::new();
    for (name, opts) in names.iter().zip(&per_column) {
        let i = all.iter().position(|n| n == name).expect("listed above");
        let report = match (&profile.columns[i].kind, &sketch.columns[i]) {
            (ProfileKind::Numeric(p), ColumnSketch::Numeric(c)) => numeric_column(name, p, c, opts),
            (ProfileKind::Categorical(p), ColumnSketch::Categorical(c)) => {
                categorical_column(name, &p.reference, c, opts)
            }
            _ => unreachable!("Sketch::check compared the shapes"),
        };
        match report? {
            Some(r) => columns.push(r),
            None => skipped.push(SkippedColumn { column: name.clone(), reason: "no values on one side".into() }),
        }
    }
    if columns.is_empty() {
        return Err(DriftError::NoColumns(format!("no column has values in the {} rows sketched", sketch.rows)));
    }
    let summaries = (
        DatasetSummary { path: options.reference.display().to_string(), rows: profile.rows },
        DatasetSummary { path: options.current.display().to_string(), rows: sketch.rows },
    );
    Ok(report_of(options, columns, skipped, summaries))
}

/// The cells of one numeric column in order: the interval below edge 0, edge 0, the interval
/// between edges 0 and 1, …, edge k−1, the interval above it.
#[derive(Clone, Copy)]
enum Cell {
    Interval(usize),
    At(usize),
}

fn cells(k: usize) -> impl Iterator<Item = Cell> {
    (0..=k).flat_map(move |i| std::iter::once(Cell::Interval(i)).chain((i < k).then_some(Cell::At(i))))
}

/// What one pass over a numeric column's cells gives (both sides non-empty).
struct Walk {
    /// KS statistic read at the edges, and how much larger the exact one may be.
    d: f64,
    d_bound: f64,
    /// Wasserstein distance with each interval's mass at its mean, and its bound.
    w: f64,
    w_bound: f64,
    /// `(reference, current)` counts per PSI bin.
    bins: Vec<(u64, u64)>,
    /// `(reference, current)` counts per non-empty cell (per value, where the reference has
    /// few enough values that each is an edge).
    table: Vec<(u64, u64)>,
    /// Cells holding current values.
    nonempty: u64,
    /// Sum of the current values.
    sum_c: f64,
}

fn walk(p: &NumericProfile, c: &NumericCells) -> Walk {
    let (r, edges, k) = (&p.reference, &p.edges, p.edges.len());
    let (n_r, n_c) = (r.total(), c.total());
    let (fr, fc) = (n_r as f64, n_c as f64);
    let count = |cells: &NumericCells, cell: Cell| match cell {
        Cell::Interval(i) => cells.count[i],
        Cell::At(i) => cells.at[i],
    };

    // KS read at the edges, and its bound.
    let (mut cum_r, mut cum_c, mut d, mut d_bound) = (0u64, 0u64, 0f64, 0f64);
    // Wasserstein with each interval's mass at its mean, and its bound.
    let mut points: Vec<Joint> = Vec::with_capacity(3 * k + 2);
    let mut w_bound = 0.0;
    let (mut nonempty, mut sum_c) = (0u64, 0f64);
    let mut table = Vec::new();
    for cell in cells(k) {
        let (rc, cc) = (count(r, cell), count(c, cell));
        if rc > 0 || cc > 0 {
            table.push((rc, cc));
        }
        cum_r += rc;
        cum_c += cc;
        d = d.max((cum_r as f64 / fr - cum_c as f64 / fc).abs());
        nonempty += u64::from(cc > 0);
        match cell {
            Cell::At(i) => {
                points.push(Joint { x: edges[i], r: rc, c: cc });
                sum_c += cc as f64 * edges[i];
            }
            Cell::Interval(i) => {
                d_bound = d_bound.max((rc as f64 / fr).min(cc as f64 / fc));
                let lo = if i == 0 { c.low.min(edges[0]) } else { edges[i - 1] };
                let hi = if i == k { c.high.max(edges[k - 1]) } else { edges[i] };
                let mean = |cells: &NumericCells, n: u64| (cells.sum[i] / n as f64).clamp(lo, hi);
                if rc > 0 {
                    points.push(Joint { x: mean(r, rc), r: rc, c: 0 });
                }
                if cc > 0 {
                    points.push(Joint { x: mean(c, cc), r: 0, c: cc });
                }
                // Beyond the reference's edges its CDF is 0 (below) or 1 (above), so |F − G| there
                // is linear in the current values and the mean places their mass exactly.
                if 0 < i && i < k {
                    w_bound += (rc as f64 / fr + cc as f64 / fc) * (hi - lo) / 2.0;
                }
                sum_c += c.sum[i];
            }
        }
    }
    points.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut ecdf = Ecdf::new(n_r, n_c);
    let mut pending: Option<Joint> = None;
    for j in points {
        match &mut pending {
            Some(q) if q.x == j.x => {
                q.r += j.r;
                q.c += j.c;
            }
            _ => {
                if let Some(q) = pending.replace(j) {
                    ecdf.push(q);
                }
            }
        }
    }
    if let Some(q) = pending {
        ecdf.push(q);
    }

    // PSI bins: the profile's PSI edges are among the cell edges.
    let bins = p.psi_counts(r).into_iter().zip(p.psi_counts(c)).collect();
    Walk { d, d_bound, w: ecdf.wasserstein(), w_bound, bins, table, nonempty, sum_c }
}

fn numeric_column(
    name: &str,
    p: &NumericProfile,
    c: &NumericCells,
    options: &ColumnOptions,
) -> Result<Option<ColumnReport>> {
    let r = &p.reference;
    let (n_r, n_c) = (r.total(), c.total());
    if n_r == 0 || n_c == 0 {
        return Ok(None);
    }
    // The type is the profile's (numeric); a forced categorical-only test is refused by name.
    let (test, threshold) = column::choose(name, ColumnType::Num, n_r, p.distinct, options)?;
    let Walk { d, d_bound, w, w_bound, bins, table, nonempty, sum_c } = walk(p, c);
    let fc = n_c as f64;
    let score = match test {
        StatTest::Ks => numeric::ks_p_value(d, n_r, n_c),
        StatTest::Wasserstein => numeric::wasserstein_norm(w, p.std),
        StatTest::Psi => counts::psi(&bins, n_r, n_c)?,
        StatTest::JensenShannon => counts::jensenshannon(&bins, n_r, n_c)?,
        StatTest::KlDiv => counts::kl_div(&bins, n_r, n_c)?,
        StatTest::Hellinger => numeric::hellinger_binned(&p.psi_edges, &bins),
        // Evidently's default for a reference of at most 1000 rows with at most 5 values: every
        // reference value is then an edge of its own, so the cells are the values.
        StatTest::ChiSquare => counts::chisquare(&table, n_r, n_c)?,
        StatTest::Z => counts::z_test(table[0], n_r, n_c, table.len() == 1 && table[0].0 > 0 && table[0].1 > 0),
    };
    let bound = match test {
        StatTest::Ks => Some(d_bound),
        StatTest::Wasserstein => Some(numeric::wasserstein_norm(w_bound, p.std)),
        _ => None,
    };
    let psi = counts::psi(&bins, n_r, n_c)?;
    let reference = ColumnStats {
        count: n_r,
        missing: r.missing,
        distinct: p.distinct,
        mean: Some(p.mean),
        std: Some(p.std),
        min: Some(p.min),
        max: Some(p.max),
    };
    let current = ColumnStats {
        count: n_c,
        missing: c.missing,
        distinct: nonempty,
        mean: Some(sum_c / fc),
        std: None,
        min: None,
        max: None,
    };
    let histogram = Histogram::Numeric { edges: p.psi_edges.clone(), counts: bins };
    let mut report =
        column::tested(name, ColumnType::Num, Verdict { test, score, threshold, psi }, (reference, current), histogram);
    report.sketch_error_bound = bound;
    report.ks_statistic = (test == StatTest::Ks).then_some(d);
    Ok(Some(report))
}

fn categorical_column(
    name: &str,
    r: &CategoryCounts,
    c: &CategoryCounts,
    options: &ColumnOptions,
) -> Result<Option<ColumnReport>> {
    if r.total() == 0 || c.total() == 0 {
        return Ok(None);
    }
    let data = |x: &CategoryCounts| {
        let mut counts: std::collections::HashMap<String, u64> =
            x.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect();
        if x.other > 0 {
            counts.insert("(other)".into(), x.other);
        }
        TextData { counts, missing: x.missing, all_bool: false, overflow: x.other > 0, bytes: 0 }
    };
    column::text_column(name, &data(r), &data(c), options).map(Some)
}

#[cfg(test)]
mod tests;
