//! CSV reading: schema inference, missing tokens, and every error a user can meet.

use learn::{read_csv, read_csv_with_schema, ColumnData, ColumnKind, Field, Frame, Schema};

/// One line per column: `name:kind[v, v, …]` with `NA` for missing values.
fn render(f: &Frame) -> String {
    f.columns()
        .iter()
        .map(|c| {
            let values: Vec<String> = match &c.data {
                ColumnData::Numeric(v) => {
                    v.iter().map(|x| if x.is_nan() { "NA".into() } else { x.to_string() }).collect()
                }
                ColumnData::Categorical(v) | ColumnData::Text(v) => {
                    v.iter().map(|s| s.clone().unwrap_or_else(|| "NA".into())).collect()
                }
            };
            format!("{}:{}[{}]", c.name, c.kind(), values.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn outcome(r: Result<Frame, learn::LearnError>) -> String {
    match r {
        Ok(f) => render(&f),
        Err(e) => format!("error: {e}"),
    }
}

fn check(input: &str, expect: &str) {
    assert_eq!(outcome(read_csv(input.as_bytes())), expect, "input:\n{input}");
}

fn schema(fields: &[(&str, ColumnKind)]) -> Schema {
    Schema { fields: fields.iter().map(|(n, k)| Field { name: (*n).into(), kind: *k }).collect() }
}

fn check_with(input: &str, fields: &[(&str, ColumnKind)], expect: &str) {
    let got = outcome(read_csv_with_schema(input.as_bytes(), &schema(fields)));
    assert_eq!(got, expect, "input:\n{input}");
}

use ColumnKind::{Categorical as C, Numeric as N};

#[test]
fn infers_numeric_and_categorical() {
    check("a,b,c\n1,x,2.5\n-3e2,y,4\n", "a:numeric[1, -300]\nb:categorical[x, y]\nc:numeric[2.5, 4]");
}

#[test]
fn missing_tokens_in_both_kinds() {
    check("a,b\n,x\nNA,NA\nNaN,null\nnan,\n 7 ,z\n", "a:numeric[NA, NA, NA, NA, 7]\nb:categorical[x, NA, NA, NA, z]");
}

#[test]
fn one_word_makes_a_column_categorical() {
    check("a\n1\n2\nthree\n", "a:categorical[1, 2, three]");
}

#[test]
fn all_missing_column_is_numeric() {
    check("a,b\n,1\n,2\n", "a:numeric[NA, NA]\nb:numeric[1, 2]");
}

#[test]
fn quoted_fields_keep_commas_and_spaces() {
    check("name,v\n\"Smith, J\",1\n\" x\",2\n", "name:categorical[Smith, J,  x]\nv:numeric[1, 2]");
}

#[test]
fn empty_input_is_an_error() {
    check("", "error: the CSV input is empty: expected a header line");
}

#[test]
fn header_only_is_an_error() {
    check("a,b\n", "error: the CSV input has a header but no data rows");
}

#[test]
fn ragged_rows_name_the_line() {
    check("a,b\n1,2\n3,4,5\n", "error: CSV line 3: expected 2 fields (as in the header), found 3");
    check("a,b\n1,2\n3,4\n5\n", "error: CSV line 4: expected 2 fields (as in the header), found 1");
}

#[test]
fn duplicate_columns_are_an_error() {
    check("a,b,a\n1,2,3\n", "error: duplicate column name 'a'");
}

#[test]
fn invalid_utf8_is_an_error_with_its_line() {
    let input = b"a\nok\n\xff\n";
    let err = read_csv(&input[..]).unwrap_err().to_string();
    assert!(err.starts_with("CSV line 3:"), "{err}");
}

#[test]
fn schema_reading_parses_by_kind() {
    // "1" stays a level of a categorical column; column order may differ from the schema.
    check_with("code,x\n1,2.5\nA,\n", &[("x", N), ("code", C)], "code:categorical[1, A]\nx:numeric[2.5, NA]");
}

#[test]
fn non_numeric_value_at_predict_time_names_row_and_column() {
    check_with(
        "x,y\n1,a\n2,b\noops,c\n",
        &[("x", N), ("y", C)],
        "error: row 3, column 'x': 'oops' is not a number (the column is numeric)",
    );
}

#[test]
fn missing_and_extra_columns_are_named() {
    check_with("x\n1\n", &[("x", N), ("y", C), ("z", N)], "error: missing column(s): y, z");
    check_with("x,extra,more\n1,2,3\n", &[("x", N)], "error: unexpected column(s): extra, more");
}

#[test]
fn schema_reading_keeps_the_structural_errors() {
    check_with("", &[("x", N)], "error: the CSV input is empty: expected a header line");
    check_with("x\n", &[("x", N)], "error: the CSV input has a header but no data rows");
    check_with(
        "x,y\n1,a\n2\n",
        &[("x", N), ("y", C)],
        "error: CSV line 3: expected 2 fields (as in the header), found 1",
    );
}

#[test]
fn a_frame_reports_its_schema() {
    let f = read_csv("a,b\n1,x\n".as_bytes()).unwrap();
    assert_eq!(f.schema(), schema(&[("a", N), ("b", C)]));
    let json = serde_json::to_string(&f.schema()).unwrap();
    assert_eq!(json, r#"{"fields":[{"name":"a","kind":"numeric"},{"name":"b","kind":"categorical"}]}"#);
}

/// One cell as a user's CSV may hold it: numbers in several spellings, the missing tokens
/// (with spaces), words, padded and non-ASCII text, quotes and separators.
fn cell() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        any::<f64>().prop_map(|x| x.to_string()),
        (-1000i64..1000).prop_map(|x| x.to_string()),
        prop::sample::select(vec!["", " ", "NA", " NaN", "nan ", "null", "1e3", "-0", "inf", "+2.5", " 7 "])
            .prop_map(str::to_string),
        "[a-zé ,\"]{1,6}",
    ]
}

proptest::proptest! {
    /// `read_csv` keeps every cell and types each column as its documentation says, whatever
    /// the cells: numeric when every non-missing cell parses as a number (NaN for missing),
    /// else categorical with the cells exactly as written (None for missing).
    #[test]
    fn inference_keeps_every_cell(rows in proptest::collection::vec(proptest::collection::vec(cell(), 3), 1..30)) {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.write_record(["a", "b", "c"]).unwrap();
        for r in &rows {
            w.write_record(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let frame = read_csv(bytes.as_slice()).unwrap();
        let missing = |c: &str| ["", "NA", "NaN", "nan", "null"].contains(&c.trim());
        for (j, col) in frame.columns().iter().enumerate() {
            let cells: Vec<&str> = rows.iter().map(|r| r[j].as_str()).collect();
            let numbers: Option<Vec<f64>> = cells
                .iter()
                .map(|c| if missing(c) { Some(f64::NAN) } else { c.trim().parse::<f64>().ok() })
                .collect();
            match (&col.data, numbers) {
                (ColumnData::Numeric(got), Some(want)) => {
                    let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
                    proptest::prop_assert!(same && got.len() == want.len(), "{got:?} vs {want:?}");
                }
                (ColumnData::Categorical(got), None) => {
                    let want: Vec<Option<String>> =
                        cells.iter().map(|c| (!missing(c)).then(|| c.to_string())).collect();
                    proptest::prop_assert_eq!(got, &want);
                }
                (data, numbers) => proptest::prop_assert!(false, "{data:?} for cells {cells:?} (numbers: {numbers:?})"),
            }
        }
    }
}
