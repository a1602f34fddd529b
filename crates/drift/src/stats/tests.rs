//! The statistics against values computed by Evidently 0.7.23's own functions
//! (`evidently.legacy.calculations.stattests.*`) and scipy 1.17.1 on the same small inputs.

use super::counts::{self, Counts};
use super::numeric::{self, Binner, Ecdf, Joint};
use super::*;

fn check(what: &str, got: f64, want: f64) {
    let rel = if want == got { 0.0 } else { ((got - want) / want).abs() };
    assert!(rel <= 1e-12, "{what}: got {got:e}, expected {want:e} (rel {rel:e})");
}

/// reference: a×50, b×30, c×20; current: a×30, b×30, c×35, d×5.
fn letters() -> Vec<(u64, u64)> {
    vec![(50, 30), (30, 30), (20, 35), (0, 5)]
}

#[test]
fn categorical_tests_match_evidently() {
    let t = letters();
    check("psi", counts::psi(&t, 100, 100).unwrap(), 0.49621643705477886);
    check("jensenshannon", counts::jensenshannon(&t, 100, 100).unwrap(), 0.20079901221342156);
    check("kl_div", counts::kl_div(&t, 100, 100).unwrap(), 0.1427539130949258);
    check("hellinger", counts::hellinger(&t, 100, 100).unwrap(), 0.219377606589185);
    // A category only in the current data has an expected count of 0: p-value 0.
    assert_eq!(counts::chisquare(&t, 100, 100).unwrap(), 0.0);
    // no: 70/55, yes: 30/45.
    check("z", counts::z_test((70, 55), 100, 100, false), 0.02845973691631065);
    assert_eq!(counts::z_test((10, 10), 10, 10, true), 1.0);
}

#[test]
fn zero_fill_follows_get_binned_data() {
    assert_eq!(counts::zero_fill(5, 100), 0.0001);
    assert_eq!(counts::zero_fill(1, 100_000), 1e-5 / 1e6);
}

#[test]
fn default_test_choice_is_evidentlys() {
    let cases = [
        (ColumnType::Num, 1000, 6, StatTest::Ks),
        (ColumnType::Num, 1000, 5, StatTest::ChiSquare),
        (ColumnType::Num, 1000, 2, StatTest::Z),
        (ColumnType::Cat, 10, 3, StatTest::ChiSquare),
        (ColumnType::Cat, 10, 1, StatTest::Z),
        (ColumnType::Num, 1001, 6, StatTest::Wasserstein),
        (ColumnType::Num, 1001, 5, StatTest::JensenShannon),
        (ColumnType::Cat, 5000, 40, StatTest::JensenShannon),
    ];
    for (t, rows, distinct, want) in cases {
        assert_eq!(default_stattest(t, rows, distinct), want, "{t:?} rows={rows} distinct={distinct}");
    }
}

#[test]
fn drift_decisions_use_each_tests_comparison() {
    assert!(StatTest::Ks.drifted(0.05, 0.05));
    assert!(!StatTest::ChiSquare.drifted(0.05, 0.05));
    assert!(!StatTest::Z.drifted(0.05, 0.05));
    assert!(StatTest::Wasserstein.drifted(0.1, 0.1));
    assert!(StatTest::Psi.drifted(0.1, 0.1));
    assert_eq!(StatTest::from_name("kl_div"), Some(StatTest::KlDiv));
    assert_eq!(StatTest::from_name("KS"), None);
    assert!(!StatTest::Ks.allows(ColumnType::Cat));
    assert!(!StatTest::Z.allows(ColumnType::Num));
}

const A: [f64; 40] = [
    0.0, 0.3, -0.27, -0.89, -0.45, -0.99, 0.06, 1.34, -0.49, -0.62, 0.49, 0.36, 0.11, -0.93, -0.03, 0.7, -1.34, -0.46,
    -1.9, -1.29, -1.84, -0.24, -1.27, 0.27, 0.16, -0.19, -2.52, -0.54, -0.05, 0.11, -1.53, -0.48, -0.98, -0.81, 1.06,
    -0.81, -0.03, 0.88, -0.58, -0.11,
];
const B: [f64; 30] = [
    0.63, 0.58, -0.97, 0.59, 2.13, -1.36, 1.53, 0.64, -0.27, 2.9, 1.41, -0.94, 0.59, 1.19, 0.27, 1.32, 0.42, 1.3, 2.23,
    -0.31, 0.74, -0.06, 0.65, -0.92, -0.2, 0.26, 1.58, 1.87, -1.09, -0.45,
];

/// The pooled distinct values of two samples with their counts, ascending.
fn joints(a: &[f64], b: &[f64]) -> Vec<Joint> {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    all.into_iter()
        .map(|x| Joint {
            x,
            r: a.iter().filter(|&&v| v == x).count() as u64,
            c: b.iter().filter(|&&v| v == x).count() as u64,
        })
        .collect()
}

#[test]
fn ks_and_wasserstein_match_scipy() {
    let mut e = Ecdf::new(40, 30);
    joints(&A, &B).into_iter().for_each(|j| e.push(j));
    check("ks statistic", e.ks_statistic(), 0.475);
    check("ks p-value", numeric::ks_p_value(e.ks_statistic(), 40, 30), 0.0005347843324787714);
    check("wasserstein", e.wasserstein(), 0.9369999999999999);
    let mean = A.iter().sum::<f64>() / 40.0;
    let std = (A.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 40.0).sqrt();
    check("wasserstein normed", numeric::wasserstein_norm(e.wasserstein(), std), 1.1560459194658317);
}

#[test]
fn ks_p_values_exact_and_asymptotic() {
    let cases = [
        (0.3, 40, 30, 0.0762046102472055),        // exact, unequal sizes
        (0.25, 50, 50, 0.11238524845512393),      // exact, equal sizes
        (0.1, 900, 12000, 9.71847460026659e-08),  // asymptotic (a sample > 10 000)
        (0.05, 3000, 2500, 0.002109002433459128), // exact, large
    ];
    for (d, n1, n2, want) in cases {
        check(&format!("ks p d={d} n1={n1} n2={n2}"), numeric::ks_p_value(d, n1, n2), want);
    }
}

#[test]
fn sturges_edges_match_numpy() {
    let want = [
        -2.52,
        -1.8425,
        -1.165,
        -0.48750000000000027,
        0.18999999999999995,
        0.8675000000000002,
        1.5449999999999995,
        2.2224999999999997,
        2.9,
    ];
    assert_eq!(numeric::sturges_edges(-2.52, 2.9, 70, false), want);
    // Integer data: width at least 1 (np.histogram_bin_edges([0, 3, 5, 9, 12], "sturges")).
    assert_eq!(numeric::sturges_edges(0.0, 12.0, 5, true), [0.0, 3.0, 6.0, 9.0, 12.0]);
    assert_eq!(numeric::sturges_edges(2.0, 2.0, 10, false), [1.5, 2.5]);
}

#[test]
fn binned_psi_and_hellinger_match_evidently() {
    let js = joints(&A, &B);
    let mut b = Binner::new(numeric::sturges_edges(-2.52, 2.9, 70, false));
    js.iter().for_each(|j| b.push(*j));
    assert_eq!(b.counts.iter().map(|c| c.0).sum::<u64>(), 40);
    assert_eq!(b.counts.iter().map(|c| c.1).sum::<u64>(), 30);
    check("psi (Sturges bins)", counts::psi(&b.counts, 40, 30).unwrap(), 2.0740078693628905);
    let mut h = Binner::new(numeric::sturges_edges(-2.52, 2.9, js.len() as u64, false));
    js.iter().for_each(|j| h.push(*j));
    check("hellinger (numeric)", numeric::hellinger_binned(h.edges(), &h.counts), 0.475418338785654);
}

#[test]
fn binner_puts_the_last_edge_in_the_last_bin() {
    let mut b = Binner::new(vec![0.0, 1.0, 2.0]);
    for (x, r) in [(-1.0, 1), (0.0, 1), (1.0, 2), (2.0, 4), (3.0, 8)] {
        b.push(Joint { x, r, c: 0 });
    }
    assert_eq!(b.counts, vec![(1, 0), (6, 0)]);
}

#[test]
fn compensated_sum_is_order_independent_and_keeps_infinity() {
    let mut s = Sum::default();
    for x in [1e16, 1.0, -1e16, 1.0] {
        s.add(x);
    }
    assert_eq!(s.value(), 2.0);
    s.add(f64::INFINITY);
    assert_eq!(s.value(), f64::INFINITY);
}

#[test]
fn counts_visit_in_order() {
    let t = letters();
    let mut seen = Vec::new();
    t.visit(&mut |r, c| seen.push((r, c))).unwrap();
    assert_eq!(seen, t);
}
