//! The trees compiled for scoring: every node of every tree in one array of 24-byte nodes,
//! each a numeric comparison.
//!
//! [`Tree::predict_row`] walks the serialised form (an enum per node, a column enum per
//! read, a branch per decision), which is what training's validation needs. Scoring many
//! rows is worth a layout made for it:
//! - A categorical split "level in S goes left" becomes a numeric split on a derived input,
//!   0 for a level in S, 1 for any other, NaN for a missing or unseen level, with the
//!   threshold 0.5. Each distinct (column, S) is derived once per row (a handful: a column
//!   of 5 levels has at most 32 sets), so the walk itself only ever compares numbers.
//! - A tree walk is a chain of dependent loads and unpredictable branches, so rows go
//!   through a tree [`LANES`] at a time in lock step, each step without a branch: a leaf is a
//!   node whose two children are itself, so lanes that reach their leaf early just stay there
//!   until every lane has (or the tree's depth is walked). The
//!   lanes' chains are independent, so the processor overlaps them instead of waiting on one
//!   mispredicted branch after another.
//! - A row left over from the lanes (all of a one-row request, serving's hot path) does not
//!   walk: [`Exits`] finds its leaf in every tree from the splits it fails, taken from lists
//!   sorted by threshold (forests of trees of up to 64 leaves; others walk the trees
//!   [`LANES`] at a time).
//!
//! A row's inputs are one contiguous slice of `f64`. The decisions are the same comparisons
//! on the same numbers, so every row lands in the same leaf as with [`Tree::predict_row`]
//! (`flat_walk_equals_the_tree_walk` checks it).

use std::collections::HashMap;

use super::binning::MISSING;
use super::exits::{self, Exits};
use super::tree::{in_set, Coded, Node, Tree};

/// Rows walked through a tree together.
const LANES: usize = 8;

thread_local! {
    /// Scratch for [`Flat::add_block`]: the block's rows, one value per input.
    static ROWS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Scratch for [`Flat::add_rows`]: one value per tree.
    static VALUES: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Debug, Clone, Copy)]
struct FlatNode {
    /// `x <= threshold` goes left. Leaves: the leaf's value.
    threshold: f64,
    /// The input read: a model column, or past them a derived categorical one.
    feature: u32,
    /// `[right, left]`; a leaf's are its own index.
    children: [u32; 2],
    missing_left: bool,
}

/// A forest ready for scoring blocks of rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flat {
    nodes: Vec<FlatNode>,
    /// Model columns; derived inputs are numbered from here.
    columns: usize,
    /// Derived inputs: (model column, level codes that go left).
    derived: Vec<(u32, [u64; 4])>,
    /// Per tree: its root and its depth (the most steps from the root to a leaf).
    trees: Vec<(u32, u32)>,
    /// The trees by depth, cut into groups of [`LANES`] that one row walks together, each
    /// with its deepest tree's depth: how a row left over from the lanes is scored when the
    /// forest has no [`Exits`].
    groups: Vec<(Vec<u32>, u32)>,
    /// The splits by input, which find one row's leaves without a walk (trees of at most 64
    /// leaves).
    exits: Option<Box<Exits>>,
}

impl Flat {
    /// Compiles `trees` over a model of `columns` input columns.
    pub(crate) fn new(trees: &[Tree], columns: usize) -> Flat {
        let mut flat = Flat { columns, ..Flat::default() };
        let mut derived: HashMap<(u32, [u64; 4]), u32> = HashMap::new();
        for tree in trees {
            let base = flat.nodes.len();
            let at = |i: u32| index(base + i as usize);
            for (i, n) in tree.nodes.iter().enumerate() {
                let own = at(i as u32);
                let node = match n {
                    Node::Leaf { value } => {
                        FlatNode { threshold: *value, feature: 0, children: [own, own], missing_left: false }
                    }
                    Node::Numeric { feature, threshold, missing_left, left, right } => FlatNode {
                        threshold: *threshold,
                        feature: *feature,
                        children: [at(*right), at(*left)],
                        missing_left: *missing_left,
                    },
                    Node::Categorical { feature, left_codes, missing_left, left, right } => {
                        let next = index(columns + flat.derived.len());
                        let input = *derived.entry((*feature, *left_codes)).or_insert_with(|| {
                            flat.derived.push((*feature, *left_codes));
                            next
                        });
                        FlatNode {
                            threshold: 0.5,
                            feature: input,
                            children: [at(*right), at(*left)],
                            missing_left: *missing_left,
                        }
                    }
                };
                flat.nodes.push(node);
            }
            if tree.nodes.is_empty() {
                // A tree without nodes adds nothing.
                let own = index(base);
                flat.nodes.push(FlatNode { threshold: 0.0, feature: 0, children: [own, own], missing_left: false });
            }
            flat.trees.push((index(base), depth(&tree.nodes)));
        }
        let mut by_depth: Vec<u32> = (0..index(flat.trees.len())).collect();
        by_depth.sort_by_key(|&t| flat.trees[t as usize].1);
        flat.groups = by_depth
            .chunks(LANES)
            .map(|g| (g.to_vec(), g.iter().map(|&t| flat.trees[t as usize].1).max().unwrap_or(0)))
            .collect();
        let roots: Vec<u32> = flat.trees.iter().map(|t| t.0).collect();
        flat.exits = Exits::new(&roots, |i| flat.exit_node(i), columns + flat.derived.len()).map(Box::new);
        flat
    }

    /// Node `i` as [`Exits`] reads it.
    fn exit_node(&self, i: u32) -> exits::Node {
        let n = &self.nodes[i as usize];
        if n.children == [i, i] {
            exits::Node::Leaf(n.threshold)
        } else {
            exits::Node::Split {
                input: n.feature,
                threshold: n.threshold,
                missing_left: n.missing_left,
                left: n.children[1],
                right: n.children[0],
            }
        }
    }

    /// Adds every tree's leaf value, tree by tree, to `out[r]` for rows `first + r` of `cols`
    /// (the model's columns, coded).
    pub(crate) fn add_block(&self, cols: &[Coded<'_>], first: usize, out: &mut [f64]) {
        let width = (self.columns + self.derived.len()).max(1);
        // Kept per thread, as the trees' values are: a fresh buffer per one-row request is
        // an allocation for 9 numbers.
        ROWS.with_borrow_mut(|x| {
            x.clear();
            x.resize(out.len() * width, f64::NAN);
            self.add_block_rows(cols, first, width, x, out);
        });
    }

    /// [`Flat::add_block`] with the block's rows in `x` (`width` values each, all missing).
    fn add_block_rows(&self, cols: &[Coded<'_>], first: usize, width: usize, x: &mut [f64], out: &mut [f64]) {
        for (f, col) in cols.iter().enumerate().take(self.columns) {
            match col {
                Coded::Numeric(v) => column(x, width, f).zip(&v[first..]).for_each(|(c, &v)| *c = v),
                // Levels are read only through derived inputs (a checked model never compares a
                // categorical column as a number; were it to, it would read missing, as `Tree`'s walk).
                Coded::Codes(_) => {}
            }
        }
        for (k, (feature, set)) in self.derived.iter().enumerate() {
            // A categorical split on a column coded as numbers reads as missing, as in the tree walk.
            if let Some(Coded::Codes(v)) = cols.get(*feature as usize) {
                column(x, width, self.columns + k).zip(&v[first..]).for_each(|(c, &code)| {
                    *c = if code == MISSING { f64::NAN } else { f64::from(u8::from(!in_set(set, code))) }
                });
            }
        }
        // Whole lanes of rows go through one tree at a time.
        let whole = out.len() / LANES * LANES;
        let (lanes, rest) = out.split_at_mut(whole);
        for &(root, depth) in &self.trees {
            for (o, rows) in lanes.chunks_exact_mut(LANES).zip(x.chunks_exact(LANES * width)) {
                let mut at = [root; LANES];
                self.walk(&mut at, depth, |k| &rows[k * width..(k + 1) * width]);
                for (o, &a) in o.iter_mut().zip(&at) {
                    *o += self.nodes[a as usize].threshold;
                }
            }
        }
        // The rows left over (all of a one-row request) go through LANES trees of about the
        // same depth at a time, for the deepest one's depth; their values are then added in
        // tree order all the same.
        if rest.is_empty() {
            return;
        }
        // The trees' values, kept per thread: a one-row request is the hot path of serving,
        // and a fresh buffer of 150 trees (1.2 kB) is an allocation large enough to make the
        // system allocator tidy its free lists each time.
        VALUES.with_borrow_mut(|values| {
            values.clear();
            values.resize(self.trees.len(), 0.0);
            self.add_rows(rest, &x[whole * width..], width, values);
        });
    }

    /// [`Flat::add_block`]'s rows left over: each finds its leaves through [`Exits`] (or walks
    /// the tree groups), then its values are added in tree order.
    fn add_rows(&self, rest: &mut [f64], x: &[f64], width: usize, values: &mut [f64]) {
        for (o, row) in rest.iter_mut().zip(x.chunks_exact(width)) {
            if let Some(exits) = &self.exits {
                exits.values(row, values);
            } else {
                self.walk_groups(row, values);
            }
            // One addition per tree onto the baseline, as the lanes of whole rows do.
            for v in values.iter() {
                *o += v;
            }
        }
    }

    /// Each tree's leaf value for `row` into `values[tree]`, walking [`LANES`] trees of about
    /// the same depth at a time.
    fn walk_groups(&self, row: &[f64], values: &mut [f64]) {
        for (trees, depth) in &self.groups {
            let mut at = [0; LANES];
            for (a, &t) in at.iter_mut().zip(trees) {
                *a = self.trees[t as usize].0;
            }
            self.walk(&mut at, *depth, |_| row);
            for (&a, &t) in at.iter().zip(trees) {
                values[t as usize] = self.nodes[a as usize].threshold;
            }
        }
    }

    /// Moves each lane `k` (a node index) down its tree for `row(k)`, in lock step, for up to
    /// `depth` steps: a row's path is often shorter than the deepest tree's (trees grown
    /// leaf-wise are lopsided), so the walk stops at the first step where no lane moved, every
    /// one of them being at its leaf.
    #[inline(always)]
    fn walk<'r>(&self, at: &mut [u32; LANES], depth: u32, row: impl Fn(usize) -> &'r [f64]) {
        for _ in 0..depth {
            let mut moved = false;
            for (k, a) in at.iter_mut().enumerate() {
                let next = self.step(*a, row(k));
                moved |= next != *a;
                *a = next;
            }
            if !moved {
                break;
            }
        }
    }

    /// One step down from node `i` for `row`, without a branch (a leaf stays where it is).
    #[inline(always)]
    fn step(&self, i: u32, row: &[f64]) -> u32 {
        let n = &self.nodes[i as usize];
        let x = row[n.feature as usize];
        let left = (x <= n.threshold) | (x.is_nan() & n.missing_left);
        n.children[usize::from(left)]
    }
}

/// The cells of input `f` in row-major `x` of `width` inputs per row.
fn column(x: &mut [f64], width: usize, f: usize) -> impl Iterator<Item = &mut f64> {
    x.iter_mut().skip(f).step_by(width)
}

/// The most steps from the root to a leaf, in one pass from the last node back: children
/// come after their parent (training builds trees so, and reading a model checks it).
fn depth(nodes: &[Node]) -> u32 {
    let mut below = vec![0u32; nodes.len()];
    for i in (0..nodes.len()).rev() {
        if let Node::Numeric { left, right, .. } | Node::Categorical { left, right, .. } = &nodes[i] {
            let child = |c: &u32| below.get(*c as usize).copied().unwrap_or(0);
            below[i] = 1 + child(left).max(child(right));
        }
    }
    below.first().copied().unwrap_or(0)
}

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 nodes")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn set(codes: &[u8]) -> [u64; 4] {
        let mut s = [0u64; 4];
        for &c in codes {
            s[usize::from(c) >> 6] |= 1 << (c & 63);
        }
        s
    }

    #[test]
    fn flat_walk_equals_the_tree_walk() {
        use Node::*;
        let leaf = |value| Leaf { value };
        let trees = vec![
            Tree {
                nodes: vec![
                    Numeric { feature: 0, threshold: 0.5, missing_left: true, left: 1, right: 2 },
                    Categorical { feature: 1, left_codes: set(&[0, 2, 200]), missing_left: false, left: 3, right: 4 },
                    Numeric { feature: 0, threshold: 2.0, missing_left: false, left: 5, right: 6 },
                    leaf(1.0),
                    leaf(2.0),
                    leaf(3.0),
                    leaf(4.0),
                ],
            },
            Tree { nodes: vec![leaf(10.5)] },
            Tree {
                nodes: vec![
                    Categorical { feature: 1, left_codes: set(&[1]), missing_left: true, left: 1, right: 4 },
                    Numeric { feature: 0, threshold: -1.0, missing_left: false, left: 2, right: 3 },
                    leaf(0.25),
                    leaf(0.125),
                    leaf(-7.0),
                ],
            },
            Tree { nodes: vec![] },
        ];
        // Every split kind with missing values going either way, a one-leaf tree and an
        // empty one (which adds nothing); values on, around and beyond the thresholds.
        let xs = [f64::NAN, 0.5, 0.4, 3.0, 2.0, -1.0, f64::NEG_INFINITY, f64::INFINITY];
        let codes = [0u8, 1, 2, 3, 200, 254, MISSING];
        let (mut x, mut c) = (Vec::new(), Vec::new());
        for &a in &xs {
            for &b in &codes {
                x.push(a);
                c.push(b);
            }
        }
        let cols = [Coded::Numeric(Cow::Owned(x)), Coded::Codes(c)];
        let rows = xs.len() * codes.len();
        let flat = Flat::new(&trees, 2);
        // From row 0 (whole lanes and a remainder) and from row 5 (another remainder).
        for first in [0, 5] {
            let mut got = vec![0.5; rows - first];
            flat.add_block(&cols, first, &mut got);
            for (r, g) in got.iter().enumerate() {
                let mut want = 0.5;
                for t in trees.iter().filter(|t| !t.nodes.is_empty()) {
                    want += t.predict_row(&cols, first + r);
                }
                assert_eq!(g.to_bits(), want.to_bits(), "row {}", first + r);
            }
        }
        assert_eq!(flat.trees.iter().map(|t| t.1).collect::<Vec<_>>(), [2, 0, 2, 0]);
        assert!(flat.exits.is_some(), "the rows left over went through the exits");
    }

    /// A random tree of `leaves` leaves over numeric input 0..3 and categorical input 3:
    /// thresholds from a few values (ties across splits and trees), either missing direction.
    fn random_tree(rng: &mut crate::Rng, leaves: usize) -> Tree {
        use rand::RngExt as _;
        let mut nodes = vec![Node::Leaf { value: 0.0 }];
        let mut open = vec![0usize];
        while open.len() < leaves {
            let at = open.swap_remove(rng.random_range(0..open.len()));
            let (left, right) = (index(nodes.len()), index(nodes.len() + 1));
            let missing_left = rng.random_bool(0.5);
            nodes[at] = if rng.random_bool(0.2) {
                let codes: Vec<u8> = (0..4u8).filter(|_| rng.random_bool(0.5)).collect();
                Node::Categorical { feature: 3, left_codes: set(&codes), missing_left, left, right }
            } else {
                let threshold = [-1.0, 0.0, 0.5, 1.0, 2.5, f64::INFINITY][rng.random_range(0..6)];
                Node::Numeric { feature: rng.random_range(0..3), threshold, missing_left, left, right }
            };
            nodes.push(Node::Leaf { value: rng.random_range(-1.0..1.0) });
            nodes.push(Node::Leaf { value: rng.random_range(-1.0..1.0) });
            open.extend([nodes.len() - 2, nodes.len() - 1]);
        }
        Tree { nodes }
    }

    /// One row at a time (every row left over from the lanes): the exits (forests of trees of up
    /// to 64 leaves) and the group walk (one tree of 65) land every row in the walk's leaves.
    #[test]
    fn rows_left_over_land_in_the_walks_leaves() {
        use rand::RngExt as _;
        let mut rng = crate::rng(7);
        for forest in 0..40 {
            let big = forest % 10 == 9;
            // Some forests span more than one group of trees in `Exits`.
            let n = if forest % 10 == 4 { rng.random_range(257..600) } else { rng.random_range(1..30) };
            let trees: Vec<Tree> = (0..n)
                .map(|t| {
                    let leaves = if big && t == 0 { 65 } else { rng.random_range(1..=64) };
                    random_tree(&mut rng, leaves)
                })
                .collect();
            let flat = Flat::new(&trees, 4);
            assert_eq!(flat.exits.is_some(), !big, "forest {forest}");
            let values = [f64::NAN, -2.0, -1.0, 0.0, 0.25, 0.5, 1.0, 2.5, 3.0, f64::INFINITY, f64::NEG_INFINITY];
            let rows = 200;
            let x: Vec<Vec<f64>> =
                (0..3).map(|_| (0..rows).map(|_| values[rng.random_range(0..values.len())]).collect()).collect();
            let c: Vec<u8> = (0..rows).map(|_| [0, 1, 2, 3, 9, MISSING][rng.random_range(0..6)]).collect();
            let cols = [
                Coded::Numeric(Cow::Owned(x[0].clone())),
                Coded::Numeric(Cow::Owned(x[1].clone())),
                Coded::Numeric(Cow::Owned(x[2].clone())),
                Coded::Codes(c),
            ];
            for r in 0..rows {
                let mut got = [0.25];
                flat.add_block(&cols, r, &mut got);
                let mut want = 0.25;
                for t in &trees {
                    want += t.predict_row(&cols, r);
                }
                assert_eq!(got[0].to_bits(), want.to_bits(), "forest {forest}, row {r}");
            }
        }
    }
}
