//! The statistical tests of Evidently 0.7.23's drift registry, reproduced exactly:
//! the test registry and default choice ([`StatTest`], [`default_stattest`]), the tests over
//! per-value or per-bin counts ([`counts`]) and those over sorted numeric samples
//! ([`numeric`]).
//!
//! Architecture Invariant: this module knows nothing about files, CSV or reports; it works
//! on counts and sorted values handed to it.

pub mod counts;
pub mod numeric;

use std::fmt;

/// Evidently's column types that take part in drift detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ColumnType {
    /// Numerical (`"num"`).
    #[serde(rename = "num")]
    Num,
    /// Categorical (`"cat"`).
    #[serde(rename = "cat")]
    Cat,
}

impl ColumnType {
    /// The name Evidently uses in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Num => "num",
            ColumnType::Cat => "cat",
        }
    }
}

/// A drift test from Evidently's registry (`evidently.legacy.calculations.stattests`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatTest {
    /// Two-sample Kolmogorov–Smirnov, p-value (`ks`).
    Ks,
    /// Wasserstein distance normed by the reference std (`wasserstein`).
    Wasserstein,
    /// Population stability index (`psi`).
    Psi,
    /// Jensen–Shannon distance, natural log (`jensenshannon`).
    JensenShannon,
    /// Pearson chi-square p-value (`chisquare`).
    ChiSquare,
    /// Z-test for two proportions, p-value (`z`).
    Z,
    /// Kullback–Leibler divergence (`kl_div`).
    KlDiv,
    /// Hellinger distance (`hellinger`).
    Hellinger,
}

impl StatTest {
    /// Every supported test, in registry-name order for messages.
    pub const ALL: [StatTest; 8] = [
        StatTest::ChiSquare,
        StatTest::Hellinger,
        StatTest::JensenShannon,
        StatTest::KlDiv,
        StatTest::Ks,
        StatTest::Psi,
        StatTest::Wasserstein,
        StatTest::Z,
    ];

    /// The registry name (`StatTest.name`).
    pub fn name(self) -> &'static str {
        match self {
            StatTest::Ks => "ks",
            StatTest::Wasserstein => "wasserstein",
            StatTest::Psi => "psi",
            StatTest::JensenShannon => "jensenshannon",
            StatTest::ChiSquare => "chisquare",
            StatTest::Z => "z",
            StatTest::KlDiv => "kl_div",
            StatTest::Hellinger => "hellinger",
        }
    }

    /// The human-readable name Evidently shows (`StatTest.display_name`).
    pub fn display_name(self) -> &'static str {
        match self {
            StatTest::Ks => "K-S p_value",
            StatTest::Wasserstein => "Wasserstein distance (normed)",
            StatTest::Psi => "PSI",
            StatTest::JensenShannon => "Jensen-Shannon distance",
            StatTest::ChiSquare => "chi-square p_value",
            StatTest::Z => "Z-test p_value",
            StatTest::KlDiv => "Kullback-Leibler divergence",
            StatTest::Hellinger => "Hellinger distance",
        }
    }

    /// Looks a test up by registry name.
    pub fn from_name(name: &str) -> Option<StatTest> {
        StatTest::ALL.into_iter().find(|t| t.name() == name)
    }

    /// `StatTest.default_threshold`.
    pub fn default_threshold(self) -> f64 {
        match self {
            StatTest::Ks | StatTest::ChiSquare | StatTest::Z => 0.05,
            StatTest::Wasserstein | StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv | StatTest::Hellinger => {
                0.1
            }
        }
    }

    /// `StatTest.allowed_feature_types`.
    pub fn allows(self, column_type: ColumnType) -> bool {
        match self {
            StatTest::Ks | StatTest::Wasserstein => column_type == ColumnType::Num,
            StatTest::ChiSquare | StatTest::Z => column_type == ColumnType::Cat,
            StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv | StatTest::Hellinger => true,
        }
    }

    /// Whether the score is a p-value (small means drift) rather than a distance.
    pub fn is_p_value(self) -> bool {
        matches!(self, StatTest::Ks | StatTest::ChiSquare | StatTest::Z)
    }

    /// The drift decision exactly as each Evidently test makes it: `p <= t` for KS,
    /// `p < t` for chi-square and Z, `score >= t` for the distances.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            StatTest::Ks => score <= threshold,
            StatTest::ChiSquare | StatTest::Z => score < threshold,
            StatTest::Wasserstein | StatTest::Psi | StatTest::JensenShannon | StatTest::KlDiv | StatTest::Hellinger => {
                score >= threshold
            }
        }
    }
}

impl fmt::Display for StatTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Evidently's `_get_default_stattest`: the test chosen when none is configured.
///
/// `reference_rows` is the reference sample size after dropping missing values and
/// `distinct_values` the number of distinct values in reference and current together.
pub fn default_stattest(column_type: ColumnType, reference_rows: u64, distinct_values: u64) -> StatTest {
    if reference_rows <= 1000 {
        match column_type {
            ColumnType::Num if distinct_values > 5 => StatTest::Ks,
            _ if distinct_values > 2 => StatTest::ChiSquare,
            _ => StatTest::Z,
        }
    } else {
        match column_type {
            ColumnType::Num if distinct_values > 5 => StatTest::Wasserstein,
            _ => StatTest::JensenShannon,
        }
    }
}

/// Neumaier's compensated sum: order-independent to ~1 ulp, so sums taken in a different
/// order than numpy's pairwise summation still agree far inside 1e-9.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    /// Adds one term.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if !t.is_finite() {
            // inf or NaN: carry it as is (the compensation would turn inf into NaN).
            self.sum = t;
            return;
        }
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// Adds another partial sum.
    pub fn merge(&mut self, other: Sum) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    /// The sum.
    pub fn value(self) -> f64 {
        if self.sum.is_finite() {
            self.sum + self.compensation
        } else {
            self.sum
        }
    }
}

#[cfg(test)]
mod tests;
