//! Gradient histograms: for one tree node and every feature, the sum of gradients, the sum
//! of hessians and the sample count in each of the 256 bins.
//!
//! Two bin layouts, one per loss ([`Accumulate`]): with a constant hessian (squared error)
//! the hessian sum *is* the count, so a bin is 16 bytes, the gradient sum and the count as
//! an `f64` (exact below 2^53 rows), updated with one 16-byte add; with a varying hessian
//! (log-loss) a bin holds all three. The half-size bins halve the stores of the row loop and
//! keep more of the histogram in cache.
//!
//! Rows are read row-major, so each row's gradient feeds every feature's histogram with
//! independent updates. Large nodes are cut into chunks of rows, histogrammed in parallel
//! and added up in chunk order, feature by feature in parallel: the chunking depends only on
//! the node's size, never on the thread count, so results are bit-identical on any machine.
//! At most [`MAX_CHUNKS`] chunks, so a big node does not zero and add up hundreds of
//! histograms. The larger child of a split is obtained by subtraction from its parent.

use rayon::prelude::*;

/// Bins per feature: 255 regular bins (or level codes) and the missing bin.
pub(crate) const N_BINS: usize = 256;

/// Rows per chunk of a large node, at least.
const CHUNK_ROWS: usize = 4096;

/// Chunks per node, at most: enough to keep 16 threads busy.
const MAX_CHUNKS: usize = 16;

/// One histogram bin's sums: what split search reads of it.
pub(crate) trait Accumulate: Copy + Default + Send + Sync {
    /// Adds one row with gradient `g` and hessian `h` (ignored when constant).
    fn add(&mut self, g: f64, h: f64);
    /// Adds another bin's sums.
    fn merge(&mut self, other: &Self);
    /// Takes another bin's sums away (`other` holds a subset of this bin's rows).
    fn remove(&mut self, other: &Self);
    fn g(&self) -> f64;
    /// The hessian sum (the count when the hessian is constant 1).
    fn h(&self) -> f64;
    fn n(&self) -> usize;
}

/// Bin of a constant-hessian loss: `[gradient sum, count]`, the count doubling as the
/// hessian sum.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Unit([f64; 2]);

impl Accumulate for Unit {
    #[inline(always)]
    fn add(&mut self, g: f64, _: f64) {
        // Written lane-wise so it compiles to one packed add.
        let [a, b] = &mut self.0;
        *a += g;
        *b += 1.0;
    }
    #[inline(always)]
    fn merge(&mut self, o: &Unit) {
        self.0[0] += o.0[0];
        self.0[1] += o.0[1];
    }
    #[inline(always)]
    fn remove(&mut self, o: &Unit) {
        self.0[0] -= o.0[0];
        self.0[1] -= o.0[1];
    }
    fn g(&self) -> f64 {
        self.0[0]
    }
    fn h(&self) -> f64 {
        self.0[1]
    }
    fn n(&self) -> usize {
        self.0[1] as usize
    }
}

/// Bin of a loss with a varying hessian.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Newton {
    g: f64,
    h: f64,
    n: u32,
}

impl Accumulate for Newton {
    #[inline(always)]
    fn add(&mut self, g: f64, h: f64) {
        self.g += g;
        self.h += h;
        self.n += 1;
    }
    #[inline(always)]
    fn merge(&mut self, o: &Newton) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
    #[inline(always)]
    fn remove(&mut self, o: &Newton) {
        self.g -= o.g;
        self.h -= o.h;
        self.n -= o.n;
    }
    fn g(&self) -> f64 {
        self.g
    }
    fn h(&self) -> f64 {
        self.h
    }
    fn n(&self) -> usize {
        self.n as usize
    }
}

/// `n_features * N_BINS` bins, feature-major.
pub(crate) type Hist<B> = Vec<B>;

/// Adds the rows to `out`. `codes` is the row-major bin matrix with `nf` codes per row;
/// `grad` and `hess` are indexed by row (`hess` is `None` when constant).
fn fill<B: Accumulate>(out: &mut [B], codes: &[u8], nf: usize, rows: &[u32], grad: &[f64], hess: Option<&[f64]>) {
    let mut add_row = |r: usize, g: f64, h: f64| {
        let row = &codes[r * nf..][..nf];
        for (hf, &c) in out.chunks_exact_mut(N_BINS).zip(row) {
            let hf: &mut [B; N_BINS] = hf.try_into().expect("N_BINS bins");
            hf[usize::from(c)].add(g, h);
        }
    };
    match hess {
        None => {
            for &r in rows {
                add_row(r as usize, grad[r as usize], 1.0);
            }
        }
        Some(hess) => {
            for &r in rows {
                add_row(r as usize, grad[r as usize], hess[r as usize]);
            }
        }
    }
}

/// Histograms kept between nodes and trees: a node's histogram (36 KB for 9 features) freed
/// and allocated anew each time makes the allocator hand memory back to the kernel and
/// fault it in again, zeroed, which cost more than the filling.
pub(crate) struct Pool<B> {
    free: Vec<Hist<B>>,
}

impl<B> Default for Pool<B> {
    fn default() -> Pool<B> {
        Pool { free: Vec::new() }
    }
}

impl<B: Accumulate> Pool<B> {
    /// A histogram to fill, of any size and content: [`zero`] it first.
    fn take(&mut self) -> Hist<B> {
        self.free.pop().unwrap_or_default()
    }

    /// Keeps `h` for a later node.
    pub(crate) fn give(&mut self, h: Hist<B>) {
        self.free.push(h);
    }
}

/// Makes `h` the all-zero histogram of `nf` features.
fn zero<B: Accumulate>(h: &mut Hist<B>, nf: usize) {
    h.clear();
    h.resize(nf * N_BINS, B::default());
}

/// Rows per chunk of a node of `n` rows: [`CHUNK_ROWS`], or more so that there are at most
/// [`MAX_CHUNKS`] chunks. A function of `n` alone.
pub(crate) fn chunk_rows(n: usize) -> usize {
    CHUNK_ROWS.max(n.div_ceil(MAX_CHUNKS))
}

/// Builds the histograms of the node holding `rows` (`hess` is `None` when constant).
pub(crate) fn build<B: Accumulate>(
    pool: &mut Pool<B>,
    codes: &[u8],
    nf: usize,
    rows: &[u32],
    grad: &[f64],
    hess: Option<&[f64]>,
) -> Hist<B> {
    let mut hist = pool.take();
    let size = chunk_rows(rows.len());
    if rows.len() <= size {
        zero(&mut hist, nf);
        fill(&mut hist, codes, nf, rows, grad, hess);
    } else {
        // Zeroed by the workers: at a million rows that is megabytes per node.
        let mut parts: Vec<Hist<B>> = (0..rows.len().div_ceil(size)).map(|_| pool.take()).collect();
        parts.par_iter_mut().zip(rows.par_chunks(size)).for_each(|(h, chunk)| {
            zero(h, nf);
            fill(h, codes, nf, chunk, grad, hess);
        });
        // Each feature's bins are the parts' sums in part order, features in parallel.
        let (first, rest) = parts.split_first_mut().expect("a large node has chunks");
        std::mem::swap(&mut hist, first);
        hist.par_chunks_mut(N_BINS).enumerate().for_each(|(f, total)| {
            for part in rest.iter() {
                for (t, p) in total.iter_mut().zip(&part[f * N_BINS..(f + 1) * N_BINS]) {
                    t.merge(p);
                }
            }
        });
        for part in parts {
            pool.give(part);
        }
    }
    hist
}

/// Turns `parent` into the histogram of its other child: `parent - child`.
pub(crate) fn subtract<B: Accumulate>(parent: &mut Hist<B>, child: &Hist<B>) {
    for (p, c) in parent.iter_mut().zip(child) {
        p.remove(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_depends_on_the_node_size_alone() {
        assert_eq!(chunk_rows(100), CHUNK_ROWS);
        assert_eq!(chunk_rows(CHUNK_ROWS * MAX_CHUNKS), CHUNK_ROWS);
        assert_eq!(chunk_rows(CHUNK_ROWS * MAX_CHUNKS + 1), CHUNK_ROWS + 1);
        assert_eq!(1_000_000usize.div_ceil(chunk_rows(1_000_000)), MAX_CHUNKS);
    }

    /// Both layouts give the same sums as adding the rows one by one, chunked or not.
    #[test]
    fn built_histograms_hold_every_row_once() {
        let (nf, n) = (3, 3 * CHUNK_ROWS * MAX_CHUNKS + 7);
        let codes: Vec<u8> = (0..n * nf).map(|i| (i * 7919 % 256) as u8).collect();
        let grad: Vec<f64> = (0..n).map(|i| (i % 13) as f64 - 6.0).collect();
        let hess: Vec<f64> = (0..n).map(|i| 0.25 + (i % 3) as f64).collect();
        for rows in [(0..n as u32).collect::<Vec<_>>(), (0..n as u32).step_by(3).collect(), vec![5, 9]] {
            let unit: Hist<Unit> = build(&mut Pool::default(), &codes, nf, &rows, &grad, None);
            let newton: Hist<Newton> = build(&mut Pool::default(), &codes, nf, &rows, &grad, Some(&hess));
            let mut want = vec![(0.0, 0.0, 0usize); nf * N_BINS];
            for &r in &rows {
                for f in 0..nf {
                    let w = &mut want[f * N_BINS + usize::from(codes[r as usize * nf + f])];
                    w.0 += grad[r as usize];
                    w.1 += hess[r as usize];
                    w.2 += 1;
                }
            }
            for (i, &(g, h, c)) in want.iter().enumerate() {
                assert_eq!((unit[i].g(), unit[i].h(), unit[i].n()), (g, c as f64, c), "bin {i}");
                assert_eq!((newton[i].g(), newton[i].h(), newton[i].n()), (g, h, c), "bin {i}");
            }
        }
    }
}
