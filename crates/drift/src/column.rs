//! Drift of one column: Evidently's column typing, test choice and scores, computed from the
//! ingested data with at most two merged walks over the sorted runs.

use crate::error::{DriftError, Result};
use crate::ingest::{ColumnData, NumericData, TextData};
use crate::report::{ColumnReport, ColumnStats, DescriptorOf, Histogram};
use crate::runs::{self, Runs, END};
use crate::stats::counts::{self, Counts};
use crate::stats::numeric::{self, Binner, Ecdf, Joint};
use crate::stats::{default_stattest, ColumnType, StatTest, Sum};
use std::path::Path;

/// Evidently's integer-column cardinality limit (`INTEGER_CARDINALITY_LIMIT`).
const INTEGER_CARDINALITY_LIMIT: u64 = 10;
/// Distinct values kept in memory per numeric column for per-value tests; beyond it those
/// tests walk the runs again.
const TABLE_LIMIT: usize = 100_000;
/// Categories shown in the display histogram.
const DISPLAY_CATEGORIES: usize = 20;

/// Per-column options.
#[derive(Clone, Debug, Default)]
pub struct ColumnOptions {
    /// A test to use instead of Evidently's default choice.
    pub stattest: Option<StatTest>,
    /// A threshold to use instead of the test's default.
    pub threshold: Option<f64>,
    /// Fixed bins for PSI (and the other binned tests) instead of Evidently's Sturges bins over
    /// both samples: a model's reference profile's, so the figures equal those computed
    /// online from sketches.
    pub psi_edges: Option<Vec<f64>>,
}

/// The two files a column comes from, for error messages.
#[derive(Clone, Copy, Debug)]
pub struct Files<'a> {
    /// Reference path.
    pub reference: &'a Path,
    /// Current path.
    pub current: &'a Path,
}

/// Whether a text column is free text by Evidently's rule, judged on the current data: more
/// distinct values than half its non-missing values (or more than the table holds).
pub fn is_free_text(current: &TextData) -> bool {
    if current.all_bool {
        return false;
    }
    let count: u64 = current.counts.values().sum();
    current.overflow || current.counts.len() as f64 > count as f64 * 0.5
}

/// Computes the drift of column `name`.
pub fn analyze(
    name: &str,
    reference: &ColumnData,
    current: &ColumnData,
    files: Files<'_>,
    options: &ColumnOptions,
) -> Result<ColumnReport> {
    check_not_empty(name, reference, files.reference)?;
    check_not_empty(name, current, files.current)?;
    match (reference, current) {
        (ColumnData::Numeric(r), ColumnData::Numeric(c)) => numeric_column(name, r, c, options, None),
        (ColumnData::Text(r), ColumnData::Text(c)) => text_column(name, r, c, options),
        _ => Err(DriftError::MismatchedTypes {
            column: name.to_owned(),
            reference: files.reference.into(),
            reference_kind: reference.kind(),
            current: files.current.into(),
            current_kind: current.kind(),
        }),
    }
}

/// Computes the drift of a text descriptor column: numerical whatever its values, as
/// Evidently types descriptor columns.
pub fn analyze_descriptor(
    r: &NumericData,
    c: &NumericData,
    options: &ColumnOptions,
    of: DescriptorOf,
) -> Result<ColumnReport> {
    let mut report = numeric_column(&of.descriptor_column(), r, c, options, Some(ColumnType::Num))?;
    report.text_descriptor = Some(of);
    Ok(report)
}

fn check_not_empty(name: &str, data: &ColumnData, path: &Path) -> Result<()> {
    let (values, rows) = match data {
        ColumnData::Numeric(n) => (n.runs.len(), n.runs.len() + n.tally.missing + n.tally.nonfinite),
        ColumnData::Text(t) => {
            let v: u64 = t.counts.values().sum();
            (v, v + t.missing)
        }
        // Every field of a free-text column has descriptors (0 when missing).
        ColumnData::FreeText(_) => return Ok(()),
    };
    if values == 0 {
        return Err(DriftError::EmptyColumn { column: name.to_owned(), path: path.into(), rows });
    }
    Ok(())
}

/// The test and threshold for a column of `column_type`.
pub(crate) fn choose(
    name: &str,
    column_type: ColumnType,
    reference_rows: u64,
    distinct: u64,
    options: &ColumnOptions,
) -> Result<(StatTest, f64)> {
    let test = match options.stattest {
        Some(t) if !t.allows(column_type) => {
            return Err(DriftError::StatTestNotApplicable {
                column: name.to_owned(),
                name: t.name().to_owned(),
                column_type: column_type.as_str(),
                allowed: match t {
                    StatTest::Ks | StatTest::Wasserstein => "num",
                    StatTest::ChiSquare | StatTest::Z => "cat",
                    _ => "num, cat",
                }
                .to_owned(),
            })
        }
        Some(t) => t,
        None => default_stattest(column_type, reference_rows, distinct),
    };
    Ok((test, options.threshold.unwrap_or_else(|| test.default_threshold())))
}

/// Walks the pooled distinct values of two numeric columns in ascending order. Generic, so
/// that each caller's per-value work is compiled into the loop (it runs once per distinct
/// value, millions of times per column).
fn joint_walk(r: &Runs, c: &Runs, mut f: impl FnMut(Joint)) -> Result<()> {
    let mut a = r.sorted()?;
    let mut b = c.sorted()?;
    let mut ka = a.next_key()?;
    let mut kb = b.next_key()?;
    while ka != END || kb != END {
        let k = ka.min(kb);
        let mut jr = 0;
        while ka == k {
            jr += 1;
            ka = a.next_key()?;
        }
        let mut jc = 0;
        while kb == k {
            jc += 1;
            kb = b.next_key()?;
        }
        f(Joint { x: runs::value(k), r: jr, c: jc });
    }
    Ok(())
}

/// Per-value counts obtained by walking the runs again.
struct WalkCounts<'a> {
    r: &'a Runs,
    c: &'a Runs,
}

impl Counts for WalkCounts<'_> {
    fn visit(&self, f: &mut dyn FnMut(u64, u64)) -> Result<()> {
        joint_walk(self.r, self.c, |j| f(j.r, j.c))
    }
}

/// What the first walk over a numeric column learns.
struct NumericWalk {
    distinct_r: u64,
    distinct_c: u64,
    distinct: u64,
    first: Joint,
    ecdf: Ecdf,
    sq_dev_r: Sum,
    sturges: Binner,
    fixed: Option<Binner>,
    /// Every distinct value, unless there were more than [`TABLE_LIMIT`].
    table: Option<Vec<Joint>>,
}

fn numeric_column(
    name: &str,
    r: &NumericData,
    c: &NumericData,
    options: &ColumnOptions,
    forced_type: Option<ColumnType>,
) -> Result<ColumnReport> {
    let (n_r, n_c) = (r.runs.len(), c.runs.len());
    let (min, max) = (r.tally.min.min(c.tally.min), r.tally.max.max(c.tally.max));
    let integer = r.integer_dtype() && c.integer_dtype();
    let mean_r = r.tally.sum.value() / n_r as f64;
    let mut w = NumericWalk {
        distinct_r: 0,
        distinct_c: 0,
        distinct: 0,
        first: Joint { x: 0.0, r: 0, c: 0 },
        ecdf: Ecdf::new(n_r, n_c),
        sq_dev_r: Sum::default(),
        sturges: Binner::new(numeric::sturges_edges(min, max, n_r + n_c, integer)),
        fixed: options.psi_edges.clone().map(Binner::clamped),
        table: Some(Vec::new()),
    };
    joint_walk(&r.runs, &c.runs, |j| {
        if w.distinct == 0 {
            w.first = j;
        }
        w.distinct += 1;
        w.distinct_r += u64::from(j.r > 0);
        w.distinct_c += u64::from(j.c > 0);
        w.ecdf.push(j);
        if j.r > 0 {
            let d = j.x - mean_r;
            w.sq_dev_r.add(j.r as f64 * (d * d));
        }
        w.sturges.push(j);
        if let Some(f) = &mut w.fixed {
            f.push(j);
        }
        if let Some(t) = &mut w.table {
            if t.len() < TABLE_LIMIT {
                t.push(j);
            } else {
                w.table = None;
            }
        }
    })?;

    // infer_column_type on the current data: integer dtype with few values is categorical.
    let column_type = forced_type.unwrap_or(if c.integer_dtype() && w.distinct_c <= INTEGER_CARDINALITY_LIMIT {
        ColumnType::Cat
    } else {
        ColumnType::Num
    });
    let (test, threshold) = choose(name, column_type, n_r, w.distinct, options)?;

    let table_counts: Option<Vec<(u64, u64)>> = w.table.as_ref().map(|t| t.iter().map(|j| (j.r, j.c)).collect());
    let walk_counts = WalkCounts { r: &r.runs, c: &c.runs };
    let per_value: &dyn Counts = match &table_counts {
        Some(t) => t,
        None => &walk_counts,
    };
    // get_binned_data: Sturges bins for numerical columns with > 20 distinct reference values.
    // Fixed bins, when given, replace them.
    let binned: &dyn Counts = match &w.fixed {
        Some(f) => &f.counts,
        None if column_type == ColumnType::Num && w.distinct_r > 20 => &w.sturges.counts,
        None => per_value,
    };

    let std_r = (w.sq_dev_r.value() / n_r as f64).sqrt();
    let ks_statistic = (test == StatTest::Ks).then(|| w.ecdf.ks_statistic());
    let score = match test {
        StatTest::Ks => numeric::ks_p_value(ks_statistic.unwrap_or_default(), n_r, n_c),
        StatTest::Wasserstein => numeric::wasserstein_norm(w.ecdf.wasserstein(), std_r),
        StatTest::Psi => counts::psi(binned, n_r, n_c)?,
        StatTest::JensenShannon => counts::jensenshannon(binned, n_r, n_c)?,
        StatTest::KlDiv => counts::kl_div(binned, n_r, n_c)?,
        StatTest::ChiSquare => counts::chisquare(per_value, n_r, n_c)?,
        StatTest::Z => {
            counts::z_test((w.first.r, w.first.c), n_r, n_c, w.distinct_r == 1 && w.distinct_c == 1 && w.distinct == 1)
        }
        StatTest::Hellinger => match (column_type, &w.fixed) {
            (ColumnType::Cat, _) => counts::hellinger(per_value, n_r, n_c)?,
            (ColumnType::Num, Some(f)) => numeric::hellinger_binned(f.edges(), &f.counts),
            (ColumnType::Num, None) => {
                let mut b = Binner::new(numeric::sturges_edges(min, max, w.distinct, integer));
                match &w.table {
                    Some(t) => t.iter().for_each(|j| b.push(*j)),
                    None => joint_walk(&r.runs, &c.runs, |j| b.push(j))?,
                }
                numeric::hellinger_binned(b.edges(), &b.counts)
            }
        },
    };
    let psi = if test == StatTest::Psi { score } else { counts::psi(binned, n_r, n_c)? };

    let stats = |d: &NumericData, distinct: u64, std: Option<f64>| ColumnStats {
        count: d.runs.len(),
        missing: d.tally.missing + d.tally.nonfinite,
        distinct,
        mean: Some(d.tally.sum.value() / d.runs.len() as f64),
        std,
        min: Some(d.tally.min),
        max: Some(d.tally.max),
    };
    let histogram = match (&w.table, column_type) {
        (Some(t), ColumnType::Cat) => categorical_histogram(t.iter().map(|j| (format_number(j.x), j.r, j.c)), n_r, n_c),
        _ => Histogram::Numeric { edges: w.sturges.edges().to_vec(), counts: w.sturges.counts.clone() },
    };
    let verdict = Verdict { test, score, threshold, psi };
    let sides = (stats(r, w.distinct_r, Some(std_r)), stats(c, w.distinct_c, None));
    Ok(ColumnReport { ks_statistic, ..tested(name, column_type, verdict, sides, histogram) })
}

pub(crate) fn text_column(name: &str, r: &TextData, c: &TextData, options: &ColumnOptions) -> Result<ColumnReport> {
    let mut keys: Vec<&String> =
        r.counts.keys().chain(c.counts.keys().filter(|k| !r.counts.contains_key(*k))).collect();
    keys.sort_unstable();
    let table: Vec<(u64, u64)> =
        keys.iter().map(|k| (r.counts.get(*k).copied().unwrap_or(0), c.counts.get(*k).copied().unwrap_or(0))).collect();
    let n_r: u64 = r.counts.values().sum();
    let n_c: u64 = c.counts.values().sum();
    let distinct = table.len() as u64;
    let (test, threshold) = choose(name, ColumnType::Cat, n_r, distinct, options)?;
    let score = match test {
        StatTest::Psi => counts::psi(&table, n_r, n_c)?,
        StatTest::JensenShannon => counts::jensenshannon(&table, n_r, n_c)?,
        StatTest::KlDiv => counts::kl_div(&table, n_r, n_c)?,
        StatTest::ChiSquare => counts::chisquare(&table, n_r, n_c)?,
        StatTest::Z => counts::z_test(table[0], n_r, n_c, r.counts.len() == 1 && c.counts.len() == 1 && distinct == 1),
        StatTest::Hellinger => counts::hellinger(&table, n_r, n_c)?,
        StatTest::Ks | StatTest::Wasserstein => unreachable!("choose() rejects numeric-only tests"),
    };
    let psi = if test == StatTest::Psi { score } else { counts::psi(&table, n_r, n_c)? };
    let stats = |d: &TextData, n: u64| ColumnStats {
        count: n,
        missing: d.missing,
        distinct: d.counts.len() as u64,
        mean: None,
        std: None,
        min: None,
        max: None,
    };
    let histogram = categorical_histogram(keys.iter().zip(&table).map(|(k, &(a, b))| ((*k).clone(), a, b)), n_r, n_c);
    let verdict = Verdict { test, score, threshold, psi };
    Ok(tested(name, ColumnType::Cat, verdict, (stats(r, n_r), stats(c, n_c)), histogram))
}

/// What a column's test found.
pub(crate) struct Verdict {
    pub test: StatTest,
    pub score: f64,
    pub threshold: f64,
    pub psi: f64,
}

/// The report of a tested column, from its verdict and its (reference, current) statistics.
pub(crate) fn tested(
    name: &str,
    column_type: ColumnType,
    v: Verdict,
    (reference, current): (ColumnStats, ColumnStats),
    histogram: Histogram,
) -> ColumnReport {
    ColumnReport {
        name: name.to_owned(),
        column_type,
        stattest: v.test,
        stattest_display_name: v.test.display_name(),
        drift_score: v.score,
        threshold: v.threshold,
        drift_detected: v.test.drifted(v.score, v.threshold),
        psi: v.psi,
        reference,
        current,
        text_descriptor: None,
        ks_statistic: None,
        sketch_error_bound: None,
        histogram,
    }
}

/// The most frequent categories (by pooled share), the rest summed as "(other)".
fn categorical_histogram(items: impl Iterator<Item = (String, u64, u64)>, n_r: u64, n_c: u64) -> Histogram {
    let mut all: Vec<(String, u64, u64)> = items.collect();
    let weight = |r: u64, c: u64| r as f64 / n_r.max(1) as f64 + c as f64 / n_c.max(1) as f64;
    all.sort_by(|a, b| weight(b.1, b.2).total_cmp(&weight(a.1, a.2)).then_with(|| a.0.cmp(&b.0)));
    let mut labels = Vec::new();
    let mut counts = Vec::new();
    let mut other = (0, 0);
    for (i, (label, r, c)) in all.into_iter().enumerate() {
        if i < DISPLAY_CATEGORIES {
            labels.push(label);
            counts.push((r, c));
        } else {
            other.0 += r;
            other.1 += c;
        }
    }
    if other != (0, 0) {
        labels.push("(other)".into());
        counts.push(other);
    }
    Histogram::Categorical { labels, counts }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}
