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

/// Histograms and gradient buffers kept between nodes and trees: a node's histogram (55 KB
/// for 9 features) freed and allocated anew each time makes the allocator hand memory back
/// to the kernel and fault it in again, zeroed, which cost more than the filling.
#[derive(Default)]
pub(crate) struct Pool {
    free: Vec<Hist>,
    og: Vec<f64>,
    oh: Vec<f64>,
}

impl Pool {
    /// A histogram to fill, of any size and content: [`zero`] it first.
    fn take(&mut self) -> Hist {
        self.free.pop().unwrap_or_default()
    }

    /// Keeps `h` for a later node.
    pub(crate) fn give(&mut self, h: Hist) {
        self.free.push(h);
    }
}

/// Makes `h` the all-zero histogram of `nf` features.
fn zero(h: &mut Hist, nf: usize) {
    h.clear();
    h.resize(nf * N_BINS, Bin::default());
}

/// Builds the histograms of the node holding `rows` (`hess` is `None` when constant).
pub(crate) fn build(
    pool: &mut Pool,
    codes: &[u8],
    nf: usize,
    rows: &[u32],
    grad: &[f64],
    hess: Option<&[f64]>,
) -> Hist {
    // Gradients in node order, so the row loop reads them sequentially.
    let mut og = std::mem::take(&mut pool.og);
    og.clear();
    og.extend(rows.iter().map(|&r| grad[r as usize]));
    let mut oh = std::mem::take(&mut pool.oh);
    oh.clear();
    if let Some(h) = hess {
        oh.extend(rows.iter().map(|&r| h[r as usize]));
    }
    let oh_used = hess.is_some().then_some(oh.as_slice());
    let mut hist = pool.take();
    zero(&mut hist, nf);
    if rows.len() <= CHUNK_ROWS {
        fill(&mut hist, codes, nf, rows, &og, oh_used);
    } else {
        // Zeroed by the workers: at a million rows that is tens of megabytes per tree.
        let mut parts: Vec<Hist> = (0..rows.len().div_ceil(CHUNK_ROWS)).map(|_| pool.take()).collect();
        parts.par_iter_mut().zip(rows.par_chunks(CHUNK_ROWS)).enumerate().for_each(|(i, (h, chunk))| {
            zero(h, nf);
            let at = i * CHUNK_ROWS;
            let oh = oh_used.map(|oh| &oh[at..at + chunk.len()]);
            fill(h, codes, nf, chunk, &og[at..at + chunk.len()], oh);
        });
        for part in parts {
            for (t, p) in hist.iter_mut().zip(&part) {
                t.g += p.g;
                t.h += p.h;
                t.n += p.n;
            }
            pool.give(part);
        }
    }
    pool.og = og;
    pool.oh = oh;
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
