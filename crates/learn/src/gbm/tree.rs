//! A fitted regression tree and its evaluation on coded rows.
//!
//! Numeric splits keep the raw threshold (`x <= threshold` goes left), categorical splits a
//! 256-bit set of the level codes that go left; both carry where missing values go. The
//! same walk serves the validation set during training and predictions afterwards.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::binning::MISSING;

/// One node; children are indices into [`Tree::nodes`], the root is node 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Node {
    Leaf {
        value: f64,
    },
    Numeric {
        feature: u32,
        threshold: f64,
        missing_left: bool,
        left: u32,
        right: u32,
    },
    Categorical {
        feature: u32,
        /// Bit `c` set: level code `c` goes left. Missing and unseen levels follow
        /// `missing_left` instead.
        left_codes: [u64; 4],
        missing_left: bool,
        left: u32,
        right: u32,
    },
}

/// A tree: a flat node list (root first). Leaf values already include the learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
}

/// One input column ready for tree walks: raw numbers or level codes.
pub(crate) enum Coded<'a> {
    Numeric(Cow<'a, [f64]>),
    Codes(Vec<u8>),
}

pub(crate) fn in_set(set: &[u64; 4], code: u8) -> bool {
    (set[usize::from(code) >> 6] >> (code & 63)) & 1 == 1
}

impl Tree {
    /// Value of the leaf that `row` of `cols` falls into.
    pub(crate) fn predict_row(&self, cols: &[Coded<'_>], row: usize) -> f64 {
        let mut i = 0usize;
        loop {
            i = match &self.nodes[i] {
                Node::Leaf { value } => return *value,
                Node::Numeric { feature, threshold, missing_left, left, right } => {
                    let x = match &cols[*feature as usize] {
                        Coded::Numeric(v) => v[row],
                        Coded::Codes(_) => f64::NAN,
                    };
                    let go_left = if x.is_nan() { *missing_left } else { x <= *threshold };
                    (if go_left { *left } else { *right }) as usize
                }
                Node::Categorical { feature, left_codes, missing_left, left, right } => {
                    let code = match &cols[*feature as usize] {
                        Coded::Codes(c) => c[row],
                        Coded::Numeric(_) => MISSING,
                    };
                    let go_left = if code == MISSING { *missing_left } else { in_set(left_codes, code) };
                    (if go_left { *left } else { *right }) as usize
                }
            };
        }
    }
}
