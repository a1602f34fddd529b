//! Growing one tree, leaf-wise (best-first) as LightGBM and scikit-learn do: the open leaf
//! whose best split reduces the loss most is split next, until `max_leaf_nodes` leaves,
//! `max_depth`, or no split passes `min_samples_leaf` and the minimum hessian.
//!
//! Split search follows scikit-learn's `Splitter`: Newton leaf values `-G / (H + l2)` and gain
//! `G_L²/(H_L+l2) + G_R²/(H_R+l2) - G²/(H+l2)`. Numeric features scan bins left to right
//! (missing values go right) and, if the feature had missing values in training, right to
//! left (missing go left), keeping the better. Categorical features sort the levels with
//! enough support by `G / (H + 10)` and scan that order from both ends (Fisher's grouping),
//! missing values being one more level. Ties are broken by lowest feature index and, among
//! leaves, lowest node index, so the result never depends on timing.

use rayon::prelude::*;

use super::binning::MISSING;
use super::hist::{self, Accumulate, Hist, N_BINS};
use super::tree::{in_set, Node, Tree};

/// Smallest hessian sum a child may have (scikit-learn's `min_hessian_to_split`).
const MIN_HESSIAN: f64 = 1e-3;
/// Smallest hessian sum a level needs to be sorted in a categorical split, and the smoothing
/// added to its hessian when sorting (scikit-learn's `MIN_CAT_SUPPORT`).
const MIN_CAT_SUPPORT: f64 = 10.0;

/// The binned training rows.
pub(crate) struct TrainData {
    /// Number of rows.
    pub(crate) n_rows: usize,
    /// Number of features.
    pub(crate) n_features: usize,
    /// Bin codes, row-major: row `r` is `codes[r * n_features..][..n_features]` (what the
    /// histograms read, a row at a time).
    pub(crate) codes: Vec<u8>,
    /// The same codes column by column (what partitioning reads, one feature at a time).
    pub(crate) columns: Vec<Vec<u8>>,
    /// Number of non-missing bins (numeric) or levels (categorical) per feature.
    pub(crate) n_bins: Vec<usize>,
    pub(crate) has_missing: Vec<bool>,
    pub(crate) categorical: Vec<bool>,
    /// Numeric bin edges (empty for categorical features).
    pub(crate) edges: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct GrowParams {
    pub(crate) max_leaf_nodes: usize,
    pub(crate) max_depth: Option<usize>,
    pub(crate) min_samples_leaf: usize,
    pub(crate) l2: f64,
    pub(crate) learning_rate: f64,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    /// Numeric: bins `<= bin` go left.
    bin: u8,
    missing_left: bool,
    /// Categorical: codes that go left (the missing bit included when they do).
    left_codes: Option<[u64; 4]>,
    g_left: f64,
    h_left: f64,
    n_left: usize,
    g_right: f64,
    h_right: f64,
    value_left: f64,
    value_right: f64,
}

/// A leaf still open for splitting.
struct Open<B> {
    id: usize,
    start: usize,
    end: usize,
    depth: usize,
    hist: Hist<B>,
    split: Split,
}

/// Statistics of a node about to be placed.
struct Child {
    id: usize,
    start: usize,
    end: usize,
    g: f64,
    h: f64,
    value: f64,
}

fn node_value(g: f64, h: f64, l2: f64) -> f64 {
    -g / (h + l2 + 1e-15)
}

/// The result of growing a tree.
pub(crate) struct Grown {
    pub(crate) tree: Tree,
    /// `(start, end, value)`: leaf rows are `partition[start..end]`.
    pub(crate) leaves: Vec<(usize, usize, f64)>,
    /// `(feature, gain)` of every split made.
    pub(crate) gains: Vec<(usize, f64)>,
}

/// Cumulative sums over one feature's bins, reused across split searches (not zeroed:
/// every search writes the entries it reads).
struct Prefix {
    g: [f64; N_BINS],
    h: [f64; N_BINS],
    n: [usize; N_BINS],
    scores: [f64; N_BINS],
}

/// Grows trees over one [`TrainData`]; keeps the row partition between calls. `B` is the
/// histogram bin of the loss: [`hist::Unit`] when the hessian is constant, else
/// [`hist::Newton`].
pub(crate) struct Grower<'a, B> {
    data: &'a TrainData,
    params: GrowParams,
    partition: Vec<u32>,
    scratch: Vec<u32>,
    prefix: Box<Prefix>,
    pool: hist::Pool<B>,
}

impl<'a, B: Accumulate> Grower<'a, B> {
    pub(crate) fn new(data: &'a TrainData, params: GrowParams) -> Grower<'a, B> {
        Grower {
            data,
            params,
            partition: Vec::with_capacity(data.n_rows),
            scratch: vec![0; data.n_rows],
            prefix: Box::new(Prefix { g: [0.0; N_BINS], h: [0.0; N_BINS], n: [0; N_BINS], scores: [0.0; N_BINS] }),
            pool: hist::Pool::default(),
        }
    }

    /// Adds each leaf's value to the raw predictions of the rows it holds.
    pub(crate) fn add_leaf_values(&self, grown: &Grown, raw: &mut [f64]) {
        for &(start, end, value) in &grown.leaves {
            for &r in &self.partition[start..end] {
                raw[r as usize] += value;
            }
        }
    }

    /// Grows one tree on the gradients (`hess` is `None` when the hessian is constant 1).
    pub(crate) fn grow(&mut self, grad: &[f64], hess: Option<&[f64]>) -> Grown {
        let n = self.data.n_rows;
        self.partition.clear();
        self.partition.extend(0..n as u32);
        let p = self.params;

        let mut out =
            Grown { tree: Tree { nodes: vec![Node::Leaf { value: 0.0 }] }, leaves: Vec::new(), gains: Vec::new() };
        let sum_g: f64 = grad.iter().sum();
        let sum_h: f64 = hess.map_or(n as f64, |h| h.iter().sum());
        let root = Child { id: 0, start: 0, end: n, g: sum_g, h: sum_h, value: node_value(sum_g, sum_h, p.l2) };
        let mut open: Vec<Open<B>> = Vec::new();
        if n < 2 * p.min_samples_leaf || sum_h < MIN_HESSIAN {
            finalize(&mut out, &root, p.learning_rate);
        } else {
            let h = hist::build(&mut self.pool, &self.data.codes, self.data.n_features, &self.partition, grad, hess);
            self.consider(&mut out, &mut open, root, 0, h);
        }

        while let Some(best) = pick(&open) {
            let node = open.swap_remove(best);
            let s = node.split;
            let mid = node.start + self.partition_node(&node);
            debug_assert_eq!(mid - node.start, s.n_left);
            let left_id = out.tree.nodes.len();
            out.tree.nodes.push(Node::Leaf { value: 0.0 });
            out.tree.nodes.push(Node::Leaf { value: 0.0 });
            let n_right = node.end - mid;
            let missing_left = if self.data.has_missing[s.feature] {
                s.missing_left
            } else {
                // Never seen in training: send missing values where most rows went.
                s.n_left > n_right
            };
            out.tree.nodes[node.id] = match s.left_codes {
                Some(left_codes) => Node::Categorical {
                    feature: s.feature as u32,
                    left_codes,
                    missing_left,
                    left: left_id as u32,
                    right: left_id as u32 + 1,
                },
                None => Node::Numeric {
                    feature: s.feature as u32,
                    threshold: self.data.edges[s.feature].get(usize::from(s.bin)).copied().unwrap_or(f64::MAX),
                    missing_left,
                    left: left_id as u32,
                    right: left_id as u32 + 1,
                },
            };
            out.gains.push((s.feature, s.gain));

            let left =
                Child { id: left_id, start: node.start, end: mid, g: s.g_left, h: s.h_left, value: s.value_left };
            let right =
                Child { id: left_id + 1, start: mid, end: node.end, g: s.g_right, h: s.h_right, value: s.value_right };
            let depth = node.depth + 1;
            let n_leaves = out.leaves.len() + open.len() + 2;
            if n_leaves >= p.max_leaf_nodes {
                finalize(&mut out, &left, p.learning_rate);
                finalize(&mut out, &right, p.learning_rate);
                for o in std::mem::take(&mut open) {
                    let c =
                        Child { id: o.id, start: o.start, end: o.end, g: 0.0, h: 0.0, value: value_of_open(&out, &o) };
                    finalize(&mut out, &c, p.learning_rate);
                    self.pool.give(o.hist);
                }
                self.pool.give(node.hist);
                break;
            }
            let small_left = s.n_left < n_right;
            let left_splittable = p.max_depth != Some(depth) && s.n_left >= 2 * p.min_samples_leaf;
            let right_splittable = p.max_depth != Some(depth) && n_right >= 2 * p.min_samples_leaf;
            if !left_splittable && !right_splittable {
                finalize(&mut out, &left, p.learning_rate);
                finalize(&mut out, &right, p.learning_rate);
                self.pool.give(node.hist);
                continue;
            }
            let small = if small_left { &left } else { &right };
            let small_hist = hist::build(
                &mut self.pool,
                &self.data.codes,
                self.data.n_features,
                &self.partition[small.start..small.end],
                grad,
                hess,
            );
            let mut large_hist = node.hist;
            hist::subtract(&mut large_hist, &small_hist);
            let (left_hist, right_hist) = if small_left { (small_hist, large_hist) } else { (large_hist, small_hist) };
            for (child, splittable, h) in [(left, left_splittable, left_hist), (right, right_splittable, right_hist)] {
                if splittable {
                    self.consider(&mut out, &mut open, child, depth, h);
                } else {
                    finalize(&mut out, &child, p.learning_rate);
                    self.pool.give(h);
                }
            }
        }
        out
    }

    /// Finds the best split of a node: opens it if there is one, else makes it a leaf.
    fn consider(&mut self, out: &mut Grown, open: &mut Vec<Open<B>>, c: Child, depth: usize, hist: Hist<B>) {
        let n = c.end - c.start;
        match self.best_split(&hist, n, c.g, c.h, c.value) {
            Some(split) if split.gain > 0.0 => {
                // Remember the node's own value on the placeholder, in case it is closed
                // unsplit when the leaf budget runs out.
                out.tree.nodes[c.id] = Node::Leaf { value: c.value };
                open.push(Open { id: c.id, start: c.start, end: c.end, depth, hist, split });
            }
            _ => {
                finalize(out, &c, self.params.learning_rate);
                self.pool.give(hist);
            }
        }
    }

    /// Stable partition of a node's rows: left child first. Returns the left count.
    fn partition_node(&mut self, node: &Open<B>) -> usize {
        let s = &node.split;
        // Which codes go left, as a table so the loop below has no branches.
        let mut left = [false; N_BINS];
        for (code, l) in left.iter_mut().enumerate() {
            let code = code as u8;
            *l = if code == MISSING {
                s.missing_left
            } else {
                match &s.left_codes {
                    Some(set) => in_set(set, code),
                    None => code <= s.bin,
                }
            };
        }
        let codes = &self.data.columns[s.feature];
        let rows = &mut self.partition[node.start..node.end];
        let right = &mut self.scratch[..rows.len()];
        // Chunks as the histograms cut them (a function of the node size alone), each
        // partitioned in place with its right rows in `right`, in parallel; then the left
        // parts are moved together and the right parts follow, in chunk order.
        let size = hist::chunk_rows(rows.len());
        let lefts: Vec<usize> = if rows.len() <= size {
            vec![partition_chunk(rows, right, codes, &left)]
        } else {
            rows.par_chunks_mut(size)
                .zip(right.par_chunks_mut(size))
                .map(|(rows, right)| partition_chunk(rows, right, codes, &left))
                .collect()
        };
        let mut at = 0;
        for (k, &n_left) in lefts.iter().enumerate() {
            rows.copy_within(k * size..k * size + n_left, at);
            at += n_left;
        }
        let n_left = at;
        for (k, &n_chunk_left) in lefts.iter().enumerate() {
            let n_right = (rows.len() - k * size).min(size) - n_chunk_left;
            rows[at..at + n_right].copy_from_slice(&right[k * size..k * size + n_right]);
            at += n_right;
        }
        n_left
    }

    fn best_split(&mut self, hist: &Hist<B>, n: usize, sum_g: f64, sum_h: f64, value: f64) -> Option<Split> {
        let ctx = NodeStats {
            n,
            sum_g,
            sum_h,
            loss: sum_g * value,
            min_samples_leaf: self.params.min_samples_leaf,
            l2: self.params.l2,
        };
        let mut best: Option<Split> = None;
        for f in 0..self.data.n_features {
            let bins = &hist[f * N_BINS..(f + 1) * N_BINS];
            let cand = if self.data.categorical[f] {
                ctx.categorical(f, bins, self.data.n_bins[f], self.data.has_missing[f])
            } else {
                ctx.numeric(&mut self.prefix, f, bins, self.data.n_bins[f], self.data.has_missing[f])
            };
            if let Some(c) = cand {
                if best.is_none_or(|b| c.gain > b.gain) {
                    best = Some(c);
                }
            }
        }
        best
    }
}

/// Stable partition of `rows` by `left[code of the row]`: the left rows first, in order, and
/// the right ones, in order, at the start of `right`. Returns the left count.
fn partition_chunk(rows: &mut [u32], right: &mut [u32], codes: &[u8], left: &[bool; N_BINS]) -> usize {
    let (mut n_left, mut n_right) = (0, 0);
    for i in 0..rows.len() {
        let r = rows[i];
        let goes_left = left[usize::from(codes[r as usize])];
        // Write to both sides, advance one: n_left <= i, so no unread row is overwritten.
        rows[n_left] = r;
        right[n_right] = r;
        n_left += usize::from(goes_left);
        n_right += usize::from(!goes_left);
    }
    n_left
}

/// First index in `lo..hi` where the monotone predicate `pred` turns false (`hi` if never).
fn partition_point(mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Index of the open leaf to split next: highest gain, then lowest node index.
fn pick<B>(open: &[Open<B>]) -> Option<usize> {
    (0..open.len()).reduce(|a, b| {
        let (x, y) = (&open[a], &open[b]);
        if y.split.gain > x.split.gain || (y.split.gain == x.split.gain && y.id < x.id) {
            b
        } else {
            a
        }
    })
}

fn value_of_open<B>(out: &Grown, o: &Open<B>) -> f64 {
    match out.tree.nodes[o.id] {
        Node::Leaf { value } => value,
        _ => unreachable!("open nodes are leaves"),
    }
}

fn finalize(out: &mut Grown, c: &Child, learning_rate: f64) {
    let value = c.value * learning_rate;
    out.tree.nodes[c.id] = Node::Leaf { value };
    out.leaves.push((c.start, c.end, value));
}

/// What split search needs to know about the node.
struct NodeStats {
    n: usize,
    sum_g: f64,
    sum_h: f64,
    /// `sum_g * value`: minus the node's own (halved) loss reduction.
    loss: f64,
    min_samples_leaf: usize,
    l2: f64,
}

impl NodeStats {
    fn gain(&self, gl: f64, hl: f64, gr: f64, hr: f64) -> f64 {
        let vl = node_value(gl, hl, self.l2);
        let vr = node_value(gr, hr, self.l2);
        self.loss - gl * vl - gr * vr
    }

    /// Checks a candidate with `nl` rows, `gl`/`hl` sums on the left. `Err(())` means no
    /// later candidate in this scan can pass either (the other side only shrinks).
    fn admissible(&self, nl: usize, hl: f64) -> Result<bool, ()> {
        let nr = self.n - nl;
        let hr = self.sum_h - hl;
        if nl < self.min_samples_leaf {
            return Ok(false);
        }
        if nr < self.min_samples_leaf {
            return Err(());
        }
        if hl < MIN_HESSIAN {
            return Ok(false);
        }
        if hr < MIN_HESSIAN {
            return Err(());
        }
        Ok(true)
    }

    fn make(&self, gain: f64, feature: usize, bin: u8, missing_left: bool, (gl, hl, nl): (f64, f64, usize)) -> Split {
        let gr = self.sum_g - gl;
        let hr = self.sum_h - hl;
        Split {
            gain,
            feature,
            bin,
            missing_left,
            left_codes: None,
            g_left: gl,
            h_left: hl,
            n_left: nl,
            g_right: gr,
            h_right: hr,
            value_left: node_value(gl, hl, self.l2),
            value_right: node_value(gr, hr, self.l2),
        }
    }

    fn numeric<B: Accumulate>(
        &self,
        p: &mut Prefix,
        feature: usize,
        bins: &[B],
        n_bins: usize,
        has_missing: bool,
    ) -> Option<Split> {
        // Prefix sums over the non-missing bins: candidate `b` puts bins `0..=b` left.
        let Prefix { g: pg, h: ph, n: pn, scores } = p;
        let (mut g, mut h, mut c) = (0.0, 0.0, 0usize);
        for (b, bin) in bins[..n_bins].iter().enumerate() {
            g += bin.g();
            h += bin.h();
            c += bin.n();
            pg[b] = g;
            ph[b] = h;
            pn[b] = c;
        }
        let miss = &bins[usize::from(MISSING)];
        let (mg, mh, mn) = if has_missing { (miss.g(), miss.h(), miss.n()) } else { (0.0, 0.0, 0) };

        // Left to right, missing values (if any) to the right. The last non-missing bin is
        // a candidate only when missing values remain for the right child.
        let end = (n_bins + usize::from(has_missing)).saturating_sub(1);
        let mut best = self.scan(pg, ph, pn, (0.0, 0.0, 0), end, scores, false).map(|(b, gain)| (b, gain, false));
        if has_missing && n_bins >= 2 {
            // Right to left: the missing values stay with the left child. Taken only if
            // strictly better; among equals the highest bin wins, as in scikit-learn's
            // descending scan.
            if let Some((b, gain)) = self.scan(pg, ph, pn, (mg, mh, mn), n_bins - 1, scores, true) {
                if best.is_none_or(|(_, g, _)| gain > g) {
                    best = Some((b, gain, true));
                }
            }
        }
        let (b, gain, missing_left) = best?;
        let (gl, hl, nl) = if missing_left { (pg[b] + mg, ph[b] + mh, pn[b] + mn) } else { (pg[b], ph[b], pn[b]) };
        Some(self.make(gain, feature, b as u8, missing_left, (gl, hl, nl)))
    }

    /// Best candidate among bins `0..end` whose left child holds the prefix up to the bin
    /// plus `extra`; `(bin, gain)` of the first maximum (the last one if `last`), or `None`
    /// when no candidate is admissible with a positive gain.
    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        pg: &[f64; N_BINS],
        ph: &[f64; N_BINS],
        pn: &[usize; N_BINS],
        extra: (f64, f64, usize),
        end: usize,
        scores: &mut [f64; N_BINS],
        last: bool,
    ) -> Option<(usize, f64)> {
        let (eg, eh, en) = extra;
        let msl = self.min_samples_leaf;
        // Left counts and hessians only grow with the bin, so the admissible bins are the
        // range where the left side is big enough and the right side still is.
        let left_ok = |b: usize| pn[b] + en >= msl && ph[b] + eh >= MIN_HESSIAN;
        let right_ok = |b: usize| self.n - (pn[b] + en) >= msl && self.sum_h - (ph[b] + eh) >= MIN_HESSIAN;
        let lo = partition_point(0, end, |b| !left_ok(b));
        let hi = partition_point(lo, end, right_ok);
        if lo >= hi {
            return None;
        }
        let lam = self.l2 + 1e-15;
        // Branch-free, so the divisions vectorise.
        for b in lo..hi {
            let gl = pg[b] + eg;
            let hl = ph[b] + eh;
            let gr = self.sum_g - gl;
            let hr = self.sum_h - hl;
            scores[b] = gl * gl / (hl + lam) + gr * gr / (hr + lam);
        }
        let (mut best_b, mut best) = (lo, scores[lo]);
        if last {
            for (b, &score) in scores.iter().enumerate().take(hi).skip(lo + 1) {
                if score >= best {
                    best_b = b;
                    best = score;
                }
            }
        } else {
            for (b, &score) in scores.iter().enumerate().take(hi).skip(lo + 1) {
                if score > best {
                    best_b = b;
                    best = score;
                }
            }
        }
        let gain = self.loss + best;
        (gain > 0.0).then_some((best_b, gain))
    }

    fn categorical<B: Accumulate>(
        &self,
        feature: usize,
        bins: &[B],
        n_levels: usize,
        has_missing: bool,
    ) -> Option<Split> {
        let support_factor = self.n as f64 / self.sum_h;
        // (code, sort value) of the levels with enough support; missing is one more level.
        let mut cats: Vec<(u8, f64)> = (0..n_levels)
            .map(|c| c as u8)
            .chain(has_missing.then_some(MISSING))
            .filter_map(|c| {
                let bin = &bins[usize::from(c)];
                let h = bin.h();
                (h * support_factor >= MIN_CAT_SUPPORT).then(|| (c, bin.g() / (h + MIN_CAT_SUPPORT)))
            })
            .collect();
        if cats.len() <= 1 {
            return None;
        }
        cats.sort_by(|a, b| a.1.total_cmp(&b.1));
        let used = cats.len();
        let mut best: Option<(f64, bool, usize, f64, f64, usize)> = None;
        for forward in [true, false] {
            let half = if forward { used.div_ceil(2) } else { used.div_ceil(2) - 1 };
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
            for i in 0..half {
                let k = if forward { i } else { used - 1 - i };
                let bin = &bins[usize::from(cats[k].0)];
                gl += bin.g();
                hl += bin.h();
                nl += bin.n();
                match self.admissible(nl, hl) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(()) => break,
                }
                let gain = self.gain(gl, hl, self.sum_g - gl, self.sum_h - hl);
                if gain > 0.0 && best.is_none_or(|b| gain > b.0) {
                    best = Some((gain, forward, i, gl, hl, nl));
                }
            }
        }
        let (gain, forward, last, gl, hl, nl) = best?;
        let mut set = [0u64; 4];
        for i in 0..=last {
            let code = cats[if forward { i } else { used - 1 - i }].0;
            set[usize::from(code) >> 6] |= 1 << (code & 63);
        }
        let missing_left = has_missing && in_set(&set, MISSING);
        let mut split = self.make(gain, feature, 0, missing_left, (gl, hl, nl));
        split.left_codes = Some(set);
        Some(split)
    }
}
