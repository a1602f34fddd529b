//! One row through every tree at once, without walking: each tree's exit leaf found from the
//! splits the row fails, as QuickScorer does (Lucchese et al., "QuickScorer: a fast algorithm
//! to rank documents with additive ensembles of regression trees", SIGIR 2015).
//!
//! Number each tree's leaves left to right and give every split a mask: all the tree's leaves
//! but those of its left subtree. Start each tree with every leaf possible and clear, for each
//! split the row goes right at (its "false" splits, wherever they are in the tree), the leaves
//! of that split's left subtree. The row's exit leaf is then the leftmost leaf left:
//! - every leaf left of the exit leaf parts from the exit's path at a split where the exit
//!   went right, so that split cleared it;
//! - the exit leaf is never cleared: a split whose left subtree holds it is on its path and
//!   sent the row left.
//!
//! The false splits of one input are found without looking at the trees: sorted by threshold,
//! they are the ones whose threshold is below the value (`x <= t` goes left), a prefix; for a
//! missing value, the splits that send missing values right. The work per row is one pass over
//! those splits plus one lookup per tree, with branches that follow the sorted order, where a
//! walk is a chain of dependent loads per tree. The decisions are the walk's own comparisons,
//! so each tree gives the same leaf ([`super::flat`]'s test checks both against the trees).
//!
//! Trees go in groups of up to 256, each with its own sorted splits: a split names its tree
//! by a `u8`, so the pass finds the tree's mask in a fixed array without a bounds check (a
//! forest of more trees makes one pass per group).
//!
//! Trees of up to 64 leaves (one `u64` mask) with thresholds that are numbers; other forests
//! are walked.

/// A split of one input, in threshold order: its threshold, the leaves it leaves and the tree
/// it is in, within its group (one record, so that a row's pass reads one stream).
#[derive(Debug, Clone, Copy)]
struct Split {
    threshold: f64,
    keep: u64,
    tree: u8,
}

/// Trees per [`Group`]: a `u8` names one, so a mask is found without a bounds check.
const GROUP: usize = 256;

/// The splits of up to [`GROUP`] consecutive trees, by input.
#[derive(Debug, Clone, Default)]
struct Group {
    /// Per input: its range in `splits`, sorted by threshold.
    by_input: Vec<(u32, u32)>,
    splits: Vec<Split>,
    /// Per input: its range in `missing_right`, the splits that send a missing value right.
    missing: Vec<(u32, u32)>,
    missing_right: Vec<Split>,
}

/// The splits of a forest, ready to find a row's exit leaves.
#[derive(Debug, Clone, Default)]
pub(super) struct Exits {
    /// Trees `GROUP * g..` are group `g`'s.
    groups: Vec<Group>,
    /// Per tree: where its leaves' values start in `leaves` (left to right).
    first_leaf: Vec<u32>,
    leaves: Vec<f64>,
}

/// A node as [`Exits::new`] reads it: a leaf, or a split of `input` at `threshold` (`x <=
/// threshold` goes left; a missing value goes left when `missing_left`).
pub(super) enum Node {
    Leaf(f64),
    Split { input: u32, threshold: f64, missing_left: bool, left: u32, right: u32 },
}

impl Exits {
    /// The forest of `trees` (each a root index into `node`) over `inputs` inputs, or `None` when
    /// a tree has more than 64 leaves or a threshold is not a number.
    pub(super) fn new(trees: &[u32], node: impl Fn(u32) -> Node, inputs: usize) -> Option<Exits> {
        let mut ex = Exits::default();
        for group in trees.chunks(GROUP) {
            let group = ex.group(group, &node, inputs)?;
            ex.groups.push(group);
        }
        Some(ex)
    }

    /// The splits of `trees` (at most [`GROUP`]), whose leaves it numbers after those already
    /// in `self.leaves`.
    fn group(&mut self, trees: &[u32], node: impl Fn(u32) -> Node, inputs: usize) -> Option<Group> {
        let (ex, mut group) = (self, Group::default());
        // Per input, its splits and its missing-right splits.
        let mut per_input: Vec<Vec<Split>> = vec![Vec::new(); inputs];
        let mut per_input_missing: Vec<Vec<Split>> = vec![Vec::new(); inputs];
        for (t, &root) in trees.iter().enumerate() {
            let tree = u8::try_from(t).ok()?;
            let first = ex.leaves.len();
            ex.first_leaf.push(u32::try_from(first).ok()?);
            // Depth first, left before right, so leaves are numbered left to right; a split's
            // left subtree's leaves are numbered from when it is entered to when its right
            // child is.
            enum Visit {
                Enter(u32),
                Right { split: (u32, f64, bool), from: usize, right: u32 },
            }
            let mut stack = vec![Visit::Enter(root)];
            while let Some(v) = stack.pop() {
                match v {
                    Visit::Enter(i) => match node(i) {
                        Node::Leaf(value) => {
                            if ex.leaves.len() - first == 64 {
                                return None;
                            }
                            ex.leaves.push(value);
                        }
                        Node::Split { input, threshold, missing_left, left, right } => {
                            if threshold.is_nan() || input as usize >= inputs {
                                return None;
                            }
                            let from = ex.leaves.len() - first;
                            stack.push(Visit::Right { split: (input, threshold, missing_left), from, right });
                            stack.push(Visit::Enter(left));
                        }
                    },
                    Visit::Right { split: (input, threshold, missing_left), from, right } => {
                        let to = ex.leaves.len() - first;
                        // Leaves from..to are the left subtree's.
                        let left_leaves = (u64::MAX >> (64 - (to - from))) << from;
                        let split = Split { threshold, keep: !left_leaves, tree };
                        per_input[input as usize].push(split);
                        if !missing_left {
                            per_input_missing[input as usize].push(split);
                        }
                        stack.push(Visit::Enter(right));
                    }
                }
            }
        }
        for (splits, missing) in per_input.iter_mut().zip(per_input_missing) {
            // Stable: splits of equal thresholds keep their order (any order gives the same masks).
            splits.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
            let at = u32::try_from(group.splits.len()).ok()?;
            group.splits.extend_from_slice(splits);
            group.by_input.push((at, u32::try_from(group.splits.len()).ok()?));
            let at = u32::try_from(group.missing_right.len()).ok()?;
            group.missing_right.extend(missing);
            group.missing.push((at, u32::try_from(group.missing_right.len()).ok()?));
        }
        Some(group)
    }

    /// Writes each tree's exit leaf value for `row` (one value per input) into `values[tree]`.
    pub(super) fn values(&self, row: &[f64], values: &mut [f64]) {
        for ((group, values), first_leaf) in
            self.groups.iter().zip(values.chunks_mut(GROUP)).zip(self.first_leaf.chunks(GROUP))
        {
            let mut masks = [u64::MAX; GROUP];
            for ((&x, &(lo, hi)), &(mlo, mhi)) in row.iter().zip(&group.by_input).zip(&group.missing) {
                if x.is_nan() {
                    for s in &group.missing_right[mlo as usize..mhi as usize] {
                        masks[usize::from(s.tree)] &= s.keep;
                    }
                    continue;
                }
                for s in &group.splits[lo as usize..hi as usize] {
                    if x <= s.threshold {
                        // Goes left here and at every later (larger) threshold.
                        break;
                    }
                    masks[usize::from(s.tree)] &= s.keep;
                }
            }
            for ((v, &m), &first) in values.iter_mut().zip(&masks).zip(first_leaf) {
                *v = self.leaves[first as usize + m.trailing_zeros() as usize];
            }
        }
    }
}
