//! Tests of the streaming CSV ingestion.
use super::*;

fn check(field: &str, want: Option<(f64, bool)>) {
    assert_eq!(parse_number(field.as_bytes()), want, "{field:?}");
}

#[test]
fn numbers_parse_like_pandas() {
    check("12", Some((12.0, true)));
    check("-7", Some((-7.0, true)));
    check("+3", Some((3.0, true)));
    check("007", Some((7.0, true)));
    check("1.5", Some((1.5, false)));
    check("-0.125", Some((-0.125, false)));
    check(".5", Some((0.5, false)));
    check("5.", Some((5.0, false)));
    check("1e3", Some((1000.0, false)));
    check("2.5E-3", Some((0.0025, false)));
    check(" 4.25 ", Some((4.25, false)));
    check("0.1", Some((0.1, false)));
    check("123456789012345678901234", Some((1.2345678901234568e23, true)));
    check("0.30000000000000004", Some((0.30000000000000004, false)));
    check("inf", Some((f64::INFINITY, false)));
    check("-Infinity", Some((f64::NEG_INFINITY, false)));
    check("abc", None);
    check("1.2.3", None);
    check("1e", None);
    check("-", None);
    check("0x10", None);
    check("1,5", None);
}

#[test]
fn na_spellings_are_pandas_defaults() {
    for na in ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>", "-nan", "1.#IND"] {
        assert!(is_na(na.as_bytes()), "{na:?}");
    }
    for v in ["0", "na", "none", "-", "x"] {
        assert!(!is_na(v.as_bytes()), "{v:?}");
    }
}

#[test]
fn record_boundaries_respect_quotes() {
    assert_eq!(last_boundary(b"a,b\n1,2\n3,"), Some(8));
    assert_eq!(last_boundary(b"a,\"x\ny\"\n1,\"open\n"), Some(8));
    assert_eq!(last_boundary(b"no newline"), None);
}

fn records(block: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for_each_record(block.as_bytes(), 3, Path::new("t.csv"), &mut |f| {
        out.push(f.iter().map(|x| String::from_utf8_lossy(x).into_owned()).collect());
    })
    .unwrap();
    out
}

#[test]
fn records_split_on_both_paths() {
    let want = vec![vec!["1", "2", "3"], vec!["4", "", "6"], vec!["7"]];
    assert_eq!(records("1,2,3\r\n\n4,,6\n7\n"), want);
    let quoted = records("1,\"a,b\",3\n\"x\ny\",5,6\n");
    assert_eq!(quoted, vec![vec!["1", "a,b", "3"], vec!["x\ny", "5", "6"]]);
    let err = for_each_record(b"1,2,3,4\n", 3, Path::new("t.csv"), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("expected 3 fields, saw 4"), "{err}");
}
