//! Online drift, the data side: a model's reference [`Profile`] (built once from its training
//! data and shipped in the model package) and [`Sketch`]es of the rows serving scores, kept in
//! the profile's own cells so that sketches from any number of windows and replicas merge by
//! addition and compare with the reference without the rows.
//!
//! A numeric column's cells are cut at the profile's `edges`: about [`QUANTILE_CELLS`]
//! reference quantiles plus the PSI bin edges (Sturges over the reference's range). Each edge
//! has a cell of its own (values equal to it) and each open interval between two edges (and
//! below the first, above the last) a cell with a count and a sum. So:
//!
//! - PSI over the profile's PSI bins is exact: every cell lies inside one bin;
//! - the ECDF is exact at every edge, so the KS statistic read at the edges is at most the
//!   true one and at most `max over intervals of min(reference share, current share)` below
//!   it (the reference share of an interval between two quantile edges is about
//!   1/[`QUANTILE_CELLS`]);
//! - the Wasserstein distance computed with each interval's mass at its mean is within
//!   `Σ (reference share + current share) × width / 2` of the true one (moving mass inside an
//!   interval to its mean costs at most half the interval's width);
//! - categories are counted exactly (new categories up to [`NEW_CATEGORIES`], the rest summed).
//!
//! The statistics themselves (Evidently's tests on these cells) are in `drift::online`; this
//! crate is lean so that serving links it.

mod cells;
mod profile;
mod recorder;

pub use cells::{CategoryCounts, NumericCells};
pub use profile::{linspace, sturges_edges, ColumnInput, QUANTILE_CELLS};
pub use recorder::{now_ms, Recorder, RecorderConfig, Values};

use serde::{Deserialize, Serialize};

/// New categories (not in the reference) counted one by one per column; the rest are summed.
pub const NEW_CATEGORIES: usize = 256;

/// Bytes of a new category's value kept (longer values are cut at a character boundary).
pub const CATEGORY_BYTES: usize = 64;

/// The profile format written in `drift_profile.json`.
pub const PROFILE_FORMAT: &str = "factory-drift-profile/1";

/// What is wrong with a profile or a sketch (e.g. one read from the network).
#[derive(Debug, thiserror::Error)]
pub enum SketchError {
    #[error("drift profile: {0}")]
    Profile(String),
    #[error("drift sketch does not fit its profile: {0}")]
    Shape(String),
}

/// A model's reference: per column, the cells and the reference's own counts in them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// [`PROFILE_FORMAT`].
    pub format: String,
    /// sha256 of the profile's content (everything but this field): sketches merge only
    /// with sketches of the same profile.
    pub id: String,
    /// Reference rows.
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

/// One column of a [`Profile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnProfile {
    pub name: String,
    pub kind: ProfileKind,
}

/// Numeric or categorical reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

/// A numeric column's reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericProfile {
    /// Ascending, distinct, finite cell edges (quantiles ∪ `psi_edges`).
    pub edges: Vec<f64>,
    /// PSI bin edges (a subset of `edges`): bin `i` holds `psi_edges[i] <= x <
    /// psi_edges[i+1]`, the last bin also its right edge; values below the first edge count in
    /// the first bin, values above the last in the last bin.
    pub psi_edges: Vec<f64>,
    /// The reference's values in the cells.
    pub reference: NumericCells,
    /// Distinct finite reference values.
    pub distinct: u64,
    pub mean: f64,
    /// Population standard deviation (`np.std`).
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// A categorical column's reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalProfile {
    pub reference: CategoryCounts,
}

/// Rows scored, in a profile's cells; columns in the profile's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sketch {
    pub rows: u64,
    pub columns: Vec<ColumnSketch>,
}

/// One column of a [`Sketch`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnSketch {
    Numeric(NumericCells),
    Categorical(CategoryCounts),
}

/// `GET /drift/sketch`: what one serving replica scored in closed windows since a time (with
/// `open=true`, the open ones too), one entry per model version and profile it served with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SketchAnswer {
    /// Window length, milliseconds (windows start at multiples of it since the Unix epoch).
    pub window_ms: u64,
    /// The replica's clock when it answered (Unix milliseconds).
    pub now_ms: u64,
    pub sketches: Vec<ProfileSketch>,
}

impl SketchAnswer {
    /// The largest answer a reader takes (the loop, the gateway's canary, `factory drift
    /// --sketches`): a sketch is a few thousand cells per feature, so anything near this is not one.
    pub const MAX_BYTES: usize = 64 << 20;

    /// Every entry's profile checks (its id is its content's) and its sketch fits the profile.
    pub fn check(&self) -> Result<(), SketchError> {
        self.sketches.iter().try_for_each(|e| {
            e.profile.check()?;
            e.sketch.check(&e.profile)
        })
    }
}

/// The windows one profile (one model version) filled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSketch {
    pub profile: Profile,
    /// The version label serving reported with this profile.
    pub model_version: String,
    /// Start of the first window merged (Unix milliseconds).
    pub from_ms: u64,
    /// End of the last window merged: ask again with `since` = this.
    pub until_ms: u64,
    /// Windows merged.
    pub windows: u64,
    pub sketch: Sketch,
}

impl Profile {
    /// How a report names this profile as its reference: the id's first 12 hex digits and
    /// the model version(s) whose rows were sketched in it (`"3,4"` after a merge).
    pub fn reference_label(&self, versions: &str) -> String {
        let short = self.id.get(..12).unwrap_or(&self.id);
        format!("drift profile {short} (model version {versions})")
    }

    /// An empty sketch in this profile's cells.
    pub fn empty_sketch(&self) -> Sketch {
        Sketch {
            rows: 0,
            columns: self
                .columns
                .iter()
                .map(|c| match &c.kind {
                    ProfileKind::Numeric(n) => ColumnSketch::Numeric(NumericCells::empty(n.edges.len())),
                    ProfileKind::Categorical(_) => ColumnSketch::Categorical(CategoryCounts::default()),
                })
                .collect(),
        }
    }

    /// Checks what deserialising cannot: edges ascending and finite, PSI edges among them,
    /// cell counts that fit, and the id.
    pub fn check(&self) -> Result<(), SketchError> {
        let bad = |m: String| Err(SketchError::Profile(m));
        if self.format != PROFILE_FORMAT {
            return bad(format!("format '{}' (expected '{PROFILE_FORMAT}')", self.format));
        }
        for c in &self.columns {
            if let ProfileKind::Numeric(n) = &c.kind {
                if n.edges.is_empty()
                    || n.edges.iter().any(|e| !e.is_finite())
                    || n.edges.windows(2).any(|w| w[0] >= w[1])
                {
                    return bad(format!("column '{}': edges must be finite and strictly ascending", c.name));
                }
                if n.psi_edges.len() < 2
                    || n.psi_edges.windows(2).any(|w| w[0] >= w[1])
                    || n.psi_edges.iter().any(|e| n.edges.binary_search_by(|x| x.total_cmp(e)).is_err())
                {
                    return bad(format!("column '{}': PSI edges must be at least two ascending cell edges", c.name));
                }
                n.reference
                    .check(n.edges.len())
                    .map_err(|m| SketchError::Profile(format!("column '{}': {m}", c.name)))?;
            }
        }
        if self.content_id() != self.id {
            return bad(format!("id {} does not match its content", self.id));
        }
        Ok(())
    }

    /// sha256 (hex) of the profile without its id.
    pub fn content_id(&self) -> String {
        use sha2::Digest;
        let mut copy = self.clone();
        copy.id = String::new();
        let bytes = serde_json::to_vec(&copy).unwrap_or_default();
        sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl NumericProfile {
    /// Values in `cells` per PSI bin: every cell lies inside one bin (values equal to an inner
    /// PSI edge start its bin; the end bins also hold what lies beyond the edges).
    pub fn psi_counts(&self, cells: &NumericCells) -> Vec<u64> {
        let nb = self.psi_edges.len() - 1;
        let bin_of = |x: f64| self.psi_edges[1..nb].partition_point(|&e| e <= x);
        let mut out = vec![0; nb];
        for (edge, n) in self.edges.iter().zip(&cells.at) {
            out[bin_of(*edge)] += n;
        }
        for (i, n) in cells.count.iter().enumerate() {
            // The interval above edge i − 1 lies in the same bin as that edge.
            out[if i == 0 { 0 } else { bin_of(self.edges[i - 1]) }] += n;
        }
        out
    }
}

impl Sketch {
    /// Checks that this sketch has `profile`'s shape.
    pub fn check(&self, profile: &Profile) -> Result<(), SketchError> {
        if self.columns.len() != profile.columns.len() {
            return Err(SketchError::Shape(format!(
                "{} columns, the profile has {}",
                self.columns.len(),
                profile.columns.len()
            )));
        }
        for (s, c) in self.columns.iter().zip(&profile.columns) {
            match (s, &c.kind) {
                (ColumnSketch::Numeric(cells), ProfileKind::Numeric(n)) => {
                    cells.check(n.edges.len()).map_err(|m| SketchError::Shape(format!("column '{}': {m}", c.name)))?
                }
                (ColumnSketch::Categorical(_), ProfileKind::Categorical(_)) => {}
                _ => return Err(SketchError::Shape(format!("column '{}' has another type in the profile", c.name))),
            }
        }
        Ok(())
    }

    /// Adds `other` (of the same shape: call [`Sketch::check`] on untrusted input first).
    pub fn merge(&mut self, other: &Sketch) -> Result<(), SketchError> {
        if self.columns.len() != other.columns.len() {
            return Err(SketchError::Shape(format!(
                "{} columns merged into {}",
                other.columns.len(),
                self.columns.len()
            )));
        }
        self.rows = cells::add(self.rows, other.rows)?;
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            match (a, b) {
                (ColumnSketch::Numeric(a), ColumnSketch::Numeric(b)) => a.merge(b)?,
                (ColumnSketch::Categorical(a), ColumnSketch::Categorical(b)) => a.merge(b)?,
                _ => return Err(SketchError::Shape("a numeric column merged with a categorical one".into())),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
