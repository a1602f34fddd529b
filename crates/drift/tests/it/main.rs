//! End-to-end tests of `drift::run` on small CSV files written to a temporary directory.

use drift::stats::ColumnType;
use drift::{DriftError, DriftOptions, StatTest};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(
    reference: &Path,
    current: &Path,
    tune: impl FnOnce(&mut DriftOptions),
) -> Result<drift::DriftReport, DriftError> {
    let mut o = DriftOptions::new(reference, current);
    tune(&mut o);
    drift::run(&o, &drift::progress::Silent)
}

fn csv(header: &str, rows: impl Iterator<Item = String>) -> String {
    let mut s = format!("{header}\n");
    for r in rows {
        s.push_str(&r);
        s.push('\n');
    }
    s
}

#[test]
fn typing_and_test_choice_follow_evidently() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(
        dir.path(),
        "r.csv",
        &csv(
            "x,small_int,label,text,yesno",
            (0..300).map(|i| {
                format!("{}.5,{},\"c{}\",t{i},{}", i % 37, i % 4, i % 3, if i % 2 == 0 { "True" } else { "False" })
            }),
        ),
    );
    let c = write(
        dir.path(),
        "c.csv",
        &csv(
            "x,small_int,label,text,yesno,extra",
            (0..200).map(|i| {
                format!("{}.5,{},c{},t{i},{},1", i % 29 + 3, i % 4, i % 3, if i % 3 == 0 { "True" } else { "False" })
            }),
        ),
    );
    let rep = run(&r, &c, |_| {}).unwrap();
    let col = |n: &str| rep.columns.iter().find(|c| c.name == n).unwrap();
    assert_eq!((col("x").column_type, col("x").stattest), (ColumnType::Num, StatTest::Ks));
    // Integer dtype with ≤ 10 values in the current data is categorical.
    assert_eq!((col("small_int").column_type, col("small_int").stattest), (ColumnType::Cat, StatTest::ChiSquare));
    assert_eq!(col("label").stattest, StatTest::ChiSquare);
    assert_eq!(col("yesno").stattest, StatTest::Z);
    let skipped: Vec<&str> = rep.skipped_columns.iter().map(|s| s.column.as_str()).collect();
    assert_eq!(skipped, ["extra"]);
    // Free text (every value distinct) is tested through its five descriptors, as numbers.
    assert_eq!(rep.text_columns.len(), 1);
    assert_eq!((rep.text_columns[0].column.as_str(), rep.text_columns[0].source), ("text", "detected"));
    assert_eq!(col("text.text_length").column_type, ColumnType::Num);
    assert_eq!(col("text.text_length").reference.count, 300);
    assert_eq!(rep.number_of_columns, 4 + 5);
    assert_eq!(rep.reference.rows, 300);
    assert_eq!(rep.current.rows, 200);
}

#[test]
fn a_numeric_column_with_text_later_in_the_file_is_text() {
    let dir = tempfile::tempdir().unwrap();
    // The text value sits past the first 1 MiB block, after the column was read as numbers.
    let mut rows: Vec<String> = (0..120_000).map(|i| format!("{},{}", i % 3, i % 5)).collect();
    rows.push("x,1".into());
    let r = write(dir.path(), "r.csv", &csv("a,b", rows.into_iter()));
    let c = write(dir.path(), "c.csv", &csv("a,b", (0..100).map(|i| format!("{},{}", i % 3, i % 5))));
    let err = run(&r, &c, |_| {}).unwrap_err();
    assert!(matches!(err, DriftError::MismatchedTypes { ref column, .. } if column == "a"), "{err}");
}

#[test]
fn bad_inputs_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.csv", &csv("a,b", (0..50).map(|i| format!("{i},{}", i % 4))));
    let empty = write(dir.path(), "empty.csv", "a,b\n");
    let nan = write(dir.path(), "nan.csv", &csv("a,b", (0..50).map(|i| format!("{i},NaN"))));

    let e = run(&good, &good, |o| o.columns = Some(vec!["a".into(), "zz".into()])).unwrap_err();
    assert!(e.to_string().contains("column 'zz' not found in") && e.to_string().contains("good.csv"), "{e}");
    let e = run(&good, &empty, |_| {}).unwrap_err();
    assert!(e.to_string().contains("empty.csv: the file has no data rows"), "{e}");
    let e = run(&good, &nan, |_| {}).unwrap_err();
    assert!(e.to_string().contains("column 'b' has no values in") && e.to_string().contains("nan.csv"), "{e}");
    let e = run(&good, &good, |o| o.stattests = vec![("b".into(), StatTest::Wasserstein)]).unwrap_err();
    assert!(matches!(e, DriftError::StatTestNotApplicable { .. }), "{e}");
    let e = run(&good, &good, |o| o.drift_share = 1.5).unwrap_err();
    assert!(matches!(e, DriftError::InvalidOption(_)), "{e}");
}

#[test]
fn verdict_prediction_and_performance() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(
        dir.path(),
        "r.csv",
        &csv("f,target,prediction", (0..2000).map(|i| format!("{},{},{}", i % 100, i % 2, (i % 10) as f64 / 10.0))),
    );
    let c = write(
        dir.path(),
        "c.csv",
        &csv(
            "f,target,prediction",
            (0..2000).map(|i| format!("{},{},{}", i % 100 + 30, i % 2, (i % 10) as f64 / 12.0)),
        ),
    );
    // The prediction column holds scores: read as the probability of class 1.
    let scores = |o: &mut DriftOptions| {
        o.target = Some("target".into());
        o.probability = "prediction".into();
    };
    let rep = run(&r, &c, scores).unwrap();
    assert!(rep.significant_drift);
    assert_eq!(rep.exit_code(), 3);
    let p = rep.prediction_drift.as_ref().unwrap();
    assert_eq!(p.probability.as_ref().unwrap().column, "prediction");
    assert!(p.prediction.is_none());
    assert_eq!(p.pos_label.as_deref(), Some("1"));
    let perf = rep.performance.as_ref().unwrap();
    assert_eq!(perf.task, "classification");
    assert_eq!(perf.reference.as_ref().unwrap().rows, 2000);
    assert!(
        perf.current.as_ref().unwrap().positive_rate.unwrap() < perf.reference.as_ref().unwrap().positive_rate.unwrap()
    );

    let same = run(&r, &r, scores).unwrap();
    assert!(!same.significant_drift && !same.dataset_drift);
    assert_eq!(same.exit_code(), 0);
    let json: serde_json::Value = serde_json::from_str(&same.to_json()).unwrap();
    for key in [
        "dataset_drift",
        "share_of_drifted_columns",
        "number_of_drifted_columns",
        "number_of_columns",
        "significant_drift",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let f = &json["columns"]["f"];
    for key in ["column_type", "stattest", "drift_score", "threshold", "drift_detected", "psi"] {
        assert!(f.get(key).is_some(), "{key}");
    }
    let html = drift::html::render(&rep);
    assert!(html.contains("<svg") && html.contains("Significant drift detected"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}

#[test]
fn declared_text_columns_are_described_and_a_word_list_sets_the_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    // Reference: "alpha beta" rows; current: half the rows bring an unknown word.
    let r = write(dir.path(), "r.csv", &csv("msg,n", (0..400).map(|i| format!("alpha beta {},{}", i % 3, i % 50))));
    let c = write(
        dir.path(),
        "c.csv",
        &csv("msg,n", (0..300).map(|i| format!("\"alpha {}\",{}", if i % 2 == 0 { "gamma" } else { "beta" }, i % 50))),
    );
    let rep = run(&r, &c, |o| o.text_columns = vec!["msg".into()]).unwrap();
    let col = |n: &str| rep.columns.iter().find(|c| c.name == n).unwrap();
    assert_eq!(rep.text_columns[0].source, "declared");
    // Reference words: alpha, beta, 0, 1, 2 (each in many rows): no reference row has an OOV word.
    assert_eq!(col("msg.oov_words_percentage").reference.mean, Some(0.0));
    assert_eq!(col("msg.oov_words_percentage").current.mean, Some(25.0));
    assert_eq!(col("msg.word_count").reference.mean, Some(2.0));
    assert_eq!(col("msg.text_length").current.max, Some(11.0));

    // Against a fixed list that lacks "beta", both sides count it.
    let words = write(dir.path(), "words.txt", "alpha gamma\n0 1 2\n");
    let rep = run(&r, &c, |o| {
        o.text_columns = vec!["msg".into()];
        o.vocabulary = Some(words.clone());
    })
    .unwrap();
    let col = |n: &str| rep.columns.iter().find(|c| c.name == n).unwrap();
    assert_eq!(rep.text_columns[0].vocabulary.source, "file");
    assert!((col("msg.oov_words_percentage").reference.mean.unwrap() - 100.0 / 3.0).abs() < 1e-9);
    assert_eq!(col("msg.oov_words_percentage").current.mean, Some(25.0));

    let e = run(&r, &c, |o| o.text_columns = vec!["nope".into()]).unwrap_err();
    assert!(e.to_string().contains("--text-columns names column 'nope'"), "{e}");
}
