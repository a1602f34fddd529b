use super::*;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn profile_of(values: &[f64], cats: &[Option<String>]) -> Profile {
    Profile::build(&[("x", ColumnInput::Numeric(values)), ("c", ColumnInput::Categorical(cats))])
}

fn sketch_of(profile: &Profile, values: &[f64], cats: &[Option<String>]) -> Sketch {
    let mut s = profile.empty_sketch();
    s.rows = values.len() as u64;
    let (ProfileKind::Numeric(p), ProfileKind::Categorical(q)) = (&profile.columns[0].kind, &profile.columns[1].kind)
    else {
        panic!("shape")
    };
    if let ColumnSketch::Numeric(c) = &mut s.columns[0] {
        values.iter().for_each(|&x| c.add(&p.edges, x));
    }
    if let ColumnSketch::Categorical(c) = &mut s.columns[1] {
        cats.iter().for_each(|v| c.add(v.as_deref(), q.reference.counts.len()));
    }
    s
}

#[test]
fn a_profile_holds_its_reference_and_checks() {
    let values: Vec<f64> = (0..1000).map(|i| (i % 37) as f64 * 1.5).chain([f64::NAN, f64::INFINITY]).collect();
    let cats: Vec<Option<String>> = (0..1002).map(|i| (i % 5 != 0).then(|| format!("k{}", i % 3))).collect();
    let p = profile_of(&values, &cats);
    p.check().unwrap();
    let ProfileKind::Numeric(n) = &p.columns[0].kind else { panic!() };
    assert_eq!(n.reference.total(), 1000);
    assert_eq!(n.reference.missing, 2);
    assert_eq!(n.distinct, 37);
    // With fewer distinct values than quantile cells every value is an edge of its own.
    assert_eq!(n.reference.count.iter().sum::<u64>(), 0);
    assert!(n.psi_edges.iter().all(|e| n.edges.contains(e)));
    let ProfileKind::Categorical(c) = &p.columns[1].kind else { panic!() };
    assert_eq!(c.reference.missing, 201);
    assert_eq!(c.reference.counts.len(), 3);
    // Tampering is caught.
    let mut bad = p.clone();
    if let ProfileKind::Numeric(n) = &mut bad.columns[0].kind {
        n.edges.swap(0, 1);
    }
    assert!(bad.check().is_err());
    let mut renamed = p.clone();
    renamed.rows += 1;
    assert!(renamed.check().unwrap_err().to_string().contains("does not match"));
}

#[test]
fn new_categories_are_capped() {
    let p = profile_of(&[1.0, 2.0], &[Some("a".into()), None]);
    let cats: Vec<Option<String>> = (0..NEW_CATEGORIES + 10).map(|i| Some(format!("n{i}"))).collect();
    let s = sketch_of(&p, &[], &cats);
    let ColumnSketch::Categorical(c) = &s.columns[1] else { panic!() };
    assert_eq!(c.counts.len(), 1 + NEW_CATEGORIES);
    assert_eq!(c.other, 9);
    assert_eq!(c.total(), cats.len() as u64);
}

#[test]
fn a_sketch_of_another_shape_is_refused() {
    let p = profile_of(&[1.0, 2.0, 3.0], &[Some("a".into())]);
    let mut s = p.empty_sketch();
    s.check(&p).unwrap();
    if let ColumnSketch::Numeric(c) = &mut s.columns[0] {
        c.at.pop();
    }
    assert!(s.check(&p).is_err());
    s.columns.pop();
    assert!(s.check(&p).unwrap_err().to_string().contains("1 columns"));
}

#[test]
fn the_recorder_returns_closed_windows_once() {
    let values: Vec<f64> = (0..500).map(f64::from).collect();
    let p = Arc::new(profile_of(&values, &[Some("a".into())]));
    let r = Recorder::new(
        p.clone(),
        "3",
        RecorderConfig { window: Duration::from_millis(100), retention: Duration::from_secs(60) },
    );
    let batch = [1.0, 2.5, 1000.0];
    let cats = [Some("a".to_string()), Some("b".to_string()), None];
    r.observe(3, |name| if name == "x" { Values::Numeric(&batch) } else { Values::Categorical(&cats) });
    assert!(r.closed_since(None).is_none(), "the window is still open");
    std::thread::sleep(Duration::from_millis(200));
    let got = r.closed_since(None).expect("closed by now");
    assert_eq!((got.sketch.rows, got.windows, got.model_version.as_str()), (3, 1, "3"));
    assert_eq!(got.sketch, sketch_of(&p, &batch, &cats));
    assert!(r.closed_since(Some(got.until_ms)).is_none());
    assert_eq!(r.lifetime().rows, 3);
    assert!(r.has_recent());
}

proptest! {
    /// Merging the sketches of any split of the rows gives the sketch of all of them.
    #[test]
    fn merging_parts_equals_one_pass(
        reference in proptest::collection::vec(-1e3f64..1e3, 1..400),
        current in proptest::collection::vec(prop_oneof![-2e3f64..2e3, Just(f64::NAN), Just(5.0)], 0..400),
        cut in 0usize..400,
        cats in proptest::collection::vec(proptest::option::of("[a-d]"), 0..100),
    ) {
        let p = profile_of(&reference, &[Some("a".into()), Some("b".into())]);
        prop_assert!(p.check().is_ok());
        let cut = cut.min(current.len());
        let ccut = cut.min(cats.len());
        let whole = sketch_of(&p, &current, &cats);
        let mut a = sketch_of(&p, &current[..cut], &cats[..ccut]);
        let b = sketch_of(&p, &current[cut..], &cats[ccut..]);
        a.merge(&b).unwrap();
        a.rows = whole.rows;
        // Sums may differ in the last bits with the order of additions.
        if let (ColumnSketch::Numeric(x), ColumnSketch::Numeric(y)) = (&mut a.columns[0], &whole.columns[0]) {
            for (s, t) in x.sum.iter_mut().zip(&y.sum) {
                prop_assert!((*s - t).abs() <= 1e-9 * t.abs().max(1.0));
                *s = *t;
            }
        }
        prop_assert_eq!(a, whole);
    }
}
