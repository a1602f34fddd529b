use super::*;
use crate::progress::Silent;
use crate::stats::numeric::{Ecdf, Joint};
use proptest::prelude::*;
use sketch::ColumnInput;
use std::io::Write;

fn cells_of(p: &NumericProfile, values: &[f64]) -> NumericCells {
    let mut c = NumericCells::empty(p.edges.len());
    values.iter().for_each(|&x| c.add(&p.edges, x));
    c
}

/// KS statistic and Wasserstein distance from the rows themselves (the file path's walk).
fn exact(reference: &[f64], current: &[f64]) -> (f64, f64) {
    let mut pooled: Vec<(f64, u64, u64)> =
        reference.iter().map(|&x| (x, 1, 0)).chain(current.iter().map(|&x| (x, 0, 1))).collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut ecdf = Ecdf::new(reference.len() as u64, current.len() as u64);
    let mut i = 0;
    while i < pooled.len() {
        let mut j = Joint { x: pooled[i].0, r: 0, c: 0 };
        while i < pooled.len() && pooled[i].0 == j.x {
            j.r += pooled[i].1;
            j.c += pooled[i].2;
            i += 1;
        }
        ecdf.push(j);
    }
    (ecdf.ks_statistic(), ecdf.wasserstein())
}

fn numeric_profile(reference: &[f64]) -> NumericProfile {
    match Profile::build(&[("x", ColumnInput::Numeric(reference))]).columns.remove(0).kind {
        ProfileKind::Numeric(n) => n,
        ProfileKind::Categorical(_) => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// The sketch's KS statistic is never above the exact one and at most its bound below;
    /// its Wasserstein distance is within its bound.
    #[test]
    fn ks_and_wasserstein_stay_within_their_bounds(
        reference in proptest::collection::vec(prop_oneof![-50f64..50.0, (0i32..20).prop_map(f64::from)], 20..600),
        current in proptest::collection::vec(prop_oneof![-80f64..120.0, (0i32..20).prop_map(f64::from)], 1..600),
        scale in 0.2f64..3.0,
    ) {
        let current: Vec<f64> = current.iter().map(|x| x * scale).collect();
        let p = numeric_profile(&reference);
        let w = walk(&p, &cells_of(&p, &current));
        let (d, wd) = exact(&reference, &current);
        prop_assert!(w.d <= d + 1e-12, "sketch D {} above exact {}", w.d, d);
        prop_assert!(d <= w.d + w.d_bound + 1e-12, "exact D {} beyond {} + {}", d, w.d, w.d_bound);
        prop_assert!((wd - w.w).abs() <= w.w_bound + 1e-9 * wd.max(1.0), "W {} vs exact {} (bound {})", w.w, wd, w.w_bound);
    }
}

#[test]
fn the_bounds_are_small_on_a_large_continuous_reference() {
    let reference: Vec<f64> = (0..20_000).map(|i| ((i * 7919) % 20_000) as f64 / 100.0).collect();
    let current: Vec<f64> = (0..5_000).map(|i| ((i * 104_729) % 5_000) as f64 / 20.0 + 30.0).collect();
    let p = numeric_profile(&reference);
    let w = walk(&p, &cells_of(&p, &current));
    let (d, wd) = exact(&reference, &current);
    assert!(w.d_bound <= 1.0 / 64.0, "KS bound {}", w.d_bound);
    assert!(w.w_bound / p.std <= 0.02, "normed W bound {}", w.w_bound / p.std);
    eprintln!("D {d} ~ {} (+{}), W {wd} ~ {} (±{}), std {}", w.d, w.d_bound, w.w, w.w_bound, p.std);
    assert!(d - w.d <= w.d_bound && (wd - w.w).abs() <= w.w_bound);
}

fn write_csv(dir: &std::path::Path, name: &str, x: &[f64], c: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "x,c").unwrap();
    for (x, c) in x.iter().zip(c) {
        writeln!(f, "{x:?},{c}").unwrap();
    }
    path
}

/// The file path given the profile's PSI bins and the online path give the same PSI, the
/// same categorical scores and the same verdicts, bit for bit where exact.
#[test]
fn online_figures_equal_the_file_path_with_the_profiles_bins() {
    let dir = tempfile::tempdir().unwrap();
    let rx: Vec<f64> = (0..3000).map(|i| ((i * 7919) % 3000) as f64 * 0.37 + 0.013).collect();
    let rc: Vec<&str> = (0..3000).map(|i| ["a", "b", "c"][i % 3]).collect();
    let cx: Vec<f64> = (0..2000).map(|i| ((i * 104_729) % 2000) as f64 * 0.61 - 40.0).collect();
    let cc: Vec<&str> = (0..2000).map(|i| ["a", "b", "b", "d"][i % 4]).collect();
    let reference = write_csv(dir.path(), "ref.csv", &rx, &rc);
    let current = write_csv(dir.path(), "cur.csv", &cx, &cc);
    let rc_owned: Vec<Option<String>> = rc.iter().map(|s| Some(s.to_string())).collect();
    let profile = Profile::build(&[("x", ColumnInput::Numeric(&rx)), ("c", ColumnInput::Categorical(&rc_owned))]);
    let mut sketch = profile.empty_sketch();
    sketch.rows = cx.len() as u64;
    let ProfileKind::Numeric(np) = &profile.columns[0].kind else { unreachable!() };
    sketch.columns[0] = ColumnSketch::Numeric(cells_of(np, &cx));
    let mut counts = CategoryCounts::default();
    cc.iter().for_each(|v| counts.add(Some(v), 3));
    sketch.columns[1] = ColumnSketch::Categorical(counts);

    for test in [None, Some(StatTest::Psi), Some(StatTest::Ks), Some(StatTest::JensenShannon)] {
        let mut options = DriftOptions::new(&reference, &current);
        options.psi_edges = vec![("x".into(), np.psi_edges.clone())];
        options.stattests = test.map(|t| vec![("x".to_string(), t)]).unwrap_or_default();
        let files = crate::run(&options, &Silent).unwrap();
        let online = report(&profile, &sketch, &options).unwrap();
        let (fx, ox) = (&files.columns[0], &online.columns[0]);
        assert_eq!(fx.name, "x");
        assert_eq!((fx.stattest, fx.drift_detected), (ox.stattest, ox.drift_detected), "{test:?}");
        assert_eq!(fx.psi, ox.psi, "PSI over the same bins is the same number");
        match ox.sketch_error_bound {
            None => assert_eq!(fx.drift_score, ox.drift_score, "{test:?}"),
            Some(b) if fx.stattest == StatTest::Wasserstein => {
                assert!((fx.drift_score - ox.drift_score).abs() <= b, "{} vs {} ± {b}", fx.drift_score, ox.drift_score)
            }
            Some(b) => assert!(b <= 1.0 / 64.0, "KS bound {b}"),
        }
        let (fc, oc) = (&files.columns[1], &online.columns[1]);
        assert_eq!((fc.stattest, fc.drift_score, fc.psi), (oc.stattest, oc.drift_score, oc.psi));
        assert_eq!(files.significant_drift_reasons, online.significant_drift_reasons);
        assert_eq!(files.share_of_drifted_columns, online.share_of_drifted_columns);
    }
}

#[test]
fn bad_input_is_refused_by_name() {
    let profile = Profile::build(&[("x", ColumnInput::Numeric(&[1.0, 2.0, 3.0]))]);
    let mut options = DriftOptions::new("profile", "sketches");
    let empty = profile.empty_sketch();
    // Nothing scored: no column to compare.
    assert!(report(&profile, &empty, &options).unwrap_err().to_string().contains("no column has values"));
    options.columns = Some(vec!["nope".into()]);
    assert!(report(&profile, &empty, &options).unwrap_err().to_string().contains("'nope'"));
    let mut tampered = profile.clone();
    tampered.rows = 9;
    options.columns = None;
    assert!(report(&tampered, &empty, &options).unwrap_err().to_string().contains("does not match"));
}

/// A small reference with few values: Evidently's default is chi-square (or Z for two
/// values), computed from the cells, which are then the values themselves.
#[test]
fn few_valued_small_references_take_the_categorical_tests() {
    let flags: Vec<f64> = (0..400).map(|i| f64::from(i % 2)).collect();
    let levels: Vec<f64> = (0..400).map(|i| f64::from(i % 4)).collect();
    let profile = Profile::build(&[("flag", ColumnInput::Numeric(&flags)), ("level", ColumnInput::Numeric(&levels))]);
    let mut sketch = profile.empty_sketch();
    let batches: [&[f64]; 2] = [&flags[..300], &[3.0; 200]];
    for (i, values) in batches.iter().enumerate() {
        let edges = numeric_edges(&profile, i);
        if let ColumnSketch::Numeric(c) = &mut sketch.columns[i] {
            values.iter().for_each(|&x| c.add(&edges, x));
        }
    }
    let report = report(&profile, &sketch, &DriftOptions::new("p", "s")).unwrap();
    assert_eq!(report.columns[0].stattest, StatTest::Z);
    assert!(!report.columns[0].drift_detected, "the same 0/1 shares");
    assert_eq!(report.columns[1].stattest, StatTest::ChiSquare);
    assert!(report.columns[1].drift_detected, "only level 3");
}

fn numeric_edges(profile: &Profile, i: usize) -> Vec<f64> {
    match &profile.columns[i].kind {
        ProfileKind::Numeric(n) => n.edges.clone(),
        ProfileKind::Categorical(_) => unreachable!(),
    }
}
