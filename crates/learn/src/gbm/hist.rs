//! Gradient histograms: for one tree node and every feature, the sum of gradients (and of
//! hessians, unless they are constant) and the sample count in each of the 256 bins.
//!
//! Rows are read row-major, so each row's gradient feeds every feature's histogram with
//! independent updates. Large nodes are cut into fixed-size chunks of rows, histogrammed in
//! parallel and added up in chunk order: the chunking depends only on the node's size, never
//! on the thread count, so results are bit-identical on any machine. The larger child of a
//! split is obtained by subtraction from its parent.

use rayon::prelude::*;

/// Bins per feature: 255 regular bins (or level codes) and the missing bin.
pub(crate) const N_BINS: usize = 256;

/// Rows per chunk of a large node.
const CHUNK_ROWS: usize = 4096;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bin {
    pub(crate) g: f64,
    pub(crate) h: f64,
    pub(crate) n: u32,
}

/// `n_features * N_BINS` bins, feature-major.
pub(crate) type Hist = Vec<Bin>;

/// Adds the rows to `out`. `codes` is the row-major bin matrix with `nf` codes per row.
fn fill(out: &mut [Bin], codes: &[u8], nf: usize, rows: &[u32], og: &[f64], oh: Option<&[f64]>) {
    match oh {
        None => {
            for (&r, &g) in rows.iter().zip(og) {
                let row = &codes[r as usize * nf..][..nf];
                for (hf, &c) in out.chunks_exact_mut(N_BINS).zip(row) {
                    let hf: &mut [Bin; N_BINS] = hf.try_into().expect("N_BINS bins");
                    let b = &mut hf[usize::from(c)];
                    b.g += g;
                    b.n += 1;
                }
            }
        }
        Some(oh) => {
            for ((&r, &g), &h) in rows.iter().zip(og).zip(oh) {
                let row = &codes[r as usize * nf..][..nf];
                for (hf, &c) in out.chunks_exact_mut(N_BINS).zip(row) {
                    let hf: &mut [Bin; N_BINS] = hf.try_into().expect("N_BINS bins");
                    let b = &mut hf[usize::from(c)];
                    b.g += g;
                    b.h += h;
                    b.n += 1;
                }
            }
        }
    }
}

/// Builds the histograms of the node holding `rows` (`hess` is `None` when constant).
pub(crate) fn build(codes: &[u8], nf: usize, rows: &[u32], grad: &[f64], hess: Option<&[f64]>) -> Hist {
    // Gradients in node order, so the row loop reads them sequentially.
    let og: Vec<f64> = rows.iter().map(|&r| grad[r as usize]).collect();
    let oh: Option<Vec<f64>> = hess.map(|h| rows.iter().map(|&r| h[r as usize]).collect());
    let mut hist = vec![Bin::default(); nf * N_BINS];
    if rows.len() <= CHUNK_ROWS {
        fill(&mut hist, codes, nf, rows, &og, oh.as_deref());
        return hist;
    }
    let parts: Vec<Hist> = rows
        .par_chunks(CHUNK_ROWS)
        .enumerate()
        .map(|(i, chunk)| {
            let at = i * CHUNK_ROWS;
            let mut h = vec![Bin::default(); nf * N_BINS];
            let oh = oh.as_deref().map(|oh| &oh[at..at + chunk.len()]);
            fill(&mut h, codes, nf, chunk, &og[at..at + chunk.len()], oh);
            h
        })
        .collect();
    for part in &parts {
        for (t, p) in hist.iter_mut().zip(part) {
            t.g += p.g;
            t.h += p.h;
            t.n += p.n;
        }
    }
    hist
}

/// Turns `parent` into the histogram of its other child: `parent - child`.
pub(crate) fn subtract(parent: &mut Hist, child: &Hist) {
    for (p, c) in parent.iter_mut().zip(child) {
        p.g -= c.g;
        p.h -= c.h;
        p.n -= c.n;
    }
}
