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
    let t0 = now_ms();
    r.observe(3, |name| if name == "x" { Values::Numeric(&batch) } else { Values::Categorical(&cats) });
    assert!(r.closed_since(None, now_ms()).is_none(), "the window is still open");
    // A look that takes the open windows too (a canary's drift check) sees the rows at once.
    let look = r.all_since(t0, now_ms()).expect("the open window");
    assert_eq!((look.sketch.rows, look.windows), (3, 1));
    assert_eq!(look.sketch, sketch_of(&p, &batch, &cats));
    assert!(t0 < look.until_ms, "{look:?}");
    assert!(r.all_since(look.until_ms, now_ms()).is_none(), "nothing scored after the window");
    std::thread::sleep(Duration::from_millis(200));
    let got = r.closed_since(None, now_ms()).expect("closed by now");
    assert_eq!((got.sketch.rows, got.windows, got.model_version.as_str()), (3, 1, "3"));
    assert_eq!(got.sketch, sketch_of(&p, &batch, &cats));
    assert!(r.closed_since(Some(got.until_ms), now_ms()).is_none());
    assert_eq!(r.all_since(t0, now_ms()).expect("closed, still within the look").sketch, got.sketch);
    assert_eq!(r.lifetime().rows, 3);
    assert!(r.has_recent());
}

#[test]
fn an_answer_holds_only_windows_finished_by_its_clock() {
    // Another request thread, with a later clock, may fold its shard's part of a window before
    // the others are done with it; an answer as of an earlier clock must leave that window out,
    // or its `until_ms` would move the reader past the rest of the window's rows.
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let p = Arc::new(profile_of(&values, &[Some("a".into())]));
    let config = RecorderConfig { window: Duration::from_secs(3600), retention: Duration::from_secs(7200) };
    let r = Recorder::new(p, "1", config);
    let (batch, cats) = ([1.0], [Some("a".to_string())]);
    r.observe(1, |name| if name == "x" { Values::Numeric(&batch) } else { Values::Categorical(&cats) });
    let now = now_ms();
    let (start, finished) = (now - now % 3_600_000, now - now % 3_600_000 + 3_600_000 + 1000);
    assert_eq!(r.closed_since(None, finished + 5_000).map(|a| a.sketch.rows), Some(1), "folded by a later clock");
    assert!(r.closed_since(None, finished - 1).is_none(), "not finished as of this clock");
    assert_eq!(r.closed_since(None, finished).map(|a| a.until_ms), Some(start + 3_600_000));
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

#[test]
fn hostile_values_and_counts_cannot_break_a_sketch() {
    let p = profile_of(&[1.0, 2.0, 3.0], &[Some("a".into())]);
    // Sums that would leave f64's range count as missing, so the JSON stays finite.
    let s = sketch_of(&p, &[1e308, 1e308, 1e308], &[Some("é".repeat(100))]);
    let ColumnSketch::Numeric(c) = &s.columns[0] else { panic!() };
    assert_eq!((c.total(), c.missing), (1, 2));
    let back: Sketch = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let ColumnSketch::Categorical(k) = &s.columns[1] else { panic!() };
    let key = k.counts.keys().next().unwrap();
    assert!(key.len() <= CATEGORY_BYTES && key.starts_with('é'), "{key}");
    // Counts that would overflow are refused, not wrapped.
    let mut huge = s.clone();
    huge.rows = u64::MAX;
    let mut sum = s.clone();
    assert!(sum.merge(&huge).unwrap_err().to_string().contains("overflows"));
    // PSI edges out of order are refused.
    let mut bad = p.clone();
    if let ProfileKind::Numeric(n) = &mut bad.columns[0].kind {
        n.psi_edges.reverse();
    }
    bad.id = bad.content_id();
    assert!(bad.check().unwrap_err().to_string().contains("ascending"));
}

#[test]
fn rows_in_several_windows_and_shards_are_each_counted_once() {
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let p = Arc::new(profile_of(&values, &[Some("a".into())]));
    let r = Arc::new(Recorder::new(
        p,
        "1",
        RecorderConfig { window: Duration::from_millis(100), retention: Duration::from_secs(60) },
    ));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let v = [f64::from(i)];
                    r.observe(1, |name| if name == "x" { Values::Numeric(&v) } else { Values::Absent });
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let mut taken = 0;
    let mut since = None;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(60));
        if let Some(got) = r.closed_since(since, now_ms()) {
            taken += got.sketch.rows;
            since = Some(got.until_ms);
        }
    }
    threads.into_iter().for_each(|t| t.join().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    if let Some(got) = r.closed_since(since, now_ms()) {
        taken += got.sketch.rows;
    }
    assert_eq!(taken, 200, "every row in exactly one answer");
    assert_eq!(r.lifetime().rows, 200);
}
