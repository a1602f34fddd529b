//! Frames and row splits.

use learn::{train_test_split, Column, ColumnData, ColumnKind, Field, Frame, Schema};

use crate::{cats, frame};

fn sample() -> Frame {
    frame(vec![Column::numeric("x", vec![0.0, 1.0, 2.0, 3.0]), Column::categorical("c", cats(&["a", "", "b", "a"]))])
}

#[test]
fn select_rows_and_without() {
    let f = sample().select_rows(&[3, 0, 3]);
    assert_eq!(f.n_rows(), 3);
    assert_eq!(f.column("x").unwrap().data, ColumnData::Numeric(vec![3.0, 0.0, 3.0]));
    let g = f.without("x");
    assert_eq!(g.columns().len(), 1);
    assert!(g.column("x").is_none());
    assert_eq!(f.without("nope"), f);
}

#[test]
fn columns_for_finds_each_field_wherever_it_is() {
    let schema = |names: &[&str]| Schema {
        fields: names.iter().map(|n| Field { name: (*n).into(), kind: ColumnKind::Numeric }).collect(),
    };
    let names = |cols: Vec<&Column>| cols.iter().map(|c| c.name.to_string()).collect::<Vec<_>>();
    let f = sample();
    // In the frame's order, in another order, a subset, and fields the frame lacks.
    assert_eq!(names(f.columns_for(&schema(&["x", "c"])).unwrap()), ["x", "c"]);
    assert_eq!(names(f.columns_for(&schema(&["c", "x"])).unwrap()), ["c", "x"]);
    assert_eq!(names(f.columns_for(&schema(&["c"])).unwrap()), ["c"]);
    assert_eq!(f.columns_for(&schema(&["y", "x", "z"])).unwrap_err(), ["y", "z"]);
    // A column where its field is but of another name is not taken for it.
    assert_eq!(f.columns_for(&schema(&["c", "y"])).unwrap_err(), ["y"]);
}

#[test]
fn from_columns_rejects_bad_shapes() {
    let err = |cols| Frame::from_columns(cols).unwrap_err().to_string();
    assert_eq!(
        err(vec![Column::numeric("x", vec![1.0]), Column::numeric("y", vec![1.0, 2.0]),]),
        "column 'y': expected length 1, found 2"
    );
    assert_eq!(
        err(vec![Column::numeric("x", vec![1.0]), Column::numeric("x", vec![2.0]),]),
        "duplicate column name 'x'"
    );
}

fn check_split(n: usize, fraction: f64, seed: u64, n_test: usize) {
    let (train, test) = train_test_split(n, fraction, seed);
    assert_eq!(test.len(), n_test, "n={n} fraction={fraction}");
    assert_eq!(train.len(), n - n_test);
    let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "a partition of the rows");
    assert!(train.windows(2).all(|w| w[0] < w[1]) && test.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((train, test), train_test_split(n, fraction, seed));
}

#[test]
fn splits_are_deterministic_partitions() {
    check_split(10, 0.2, 1, 2);
    check_split(20640, 0.2, 42, 4128);
    check_split(7, 0.5, 3, 4); // ceil, as scikit-learn
    check_split(5, 0.0, 3, 0);
    check_split(5, 1.0, 3, 5);
    check_split(5, 7.0, 3, 5); // clamped
    check_split(5, f64::NAN, 3, 0);
    check_split(0, 0.3, 3, 0);
}

#[test]
fn different_seeds_give_different_splits() {
    assert_ne!(train_test_split(100, 0.3, 1), train_test_split(100, 0.3, 2));
}
