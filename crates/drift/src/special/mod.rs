//! Special functions behind the p-values Evidently reports, ported from scipy 1.17 (its
//! xsf/Cephes C++ and the pure-Python parts of `scipy.stats`) so that our p-values match
//! scipy's to ~1e-15 relative, well inside the 1e-9 the cross-check demands.
//!
//! Nothing here allocates per call except the Kolmogorov matrix methods.

mod cephes;
mod dd;
mod igam_coeff;
mod kolmogorov;

pub use cephes::{chdtrc, erf, erfc, igamc, lgam, ndtr};
pub(crate) use kolmogorov::exact_two_sample;
pub use kolmogorov::{kstwo_sf, smirnov_sf};

#[cfg(test)]
mod tests;
