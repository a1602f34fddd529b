//! Model inputs: CSV files and MLflow scoring payloads (`dataframe_split`,
//! `dataframe_records`, `instances`, `inputs`) turned into frames that match a model's
//! schema. Every refusal names the column and, where it applies, the row.

use crate::{PackageError, Result};
use foldhash::HashMap;
use learn::{Column, ColumnData, ColumnKind, Frame, Schema};
use serde_json::{json, Map, Value};

fn input_error(msg: String) -> PackageError {
    PackageError::Input(msg)
}

/// A frame as MLflow's `dataframe_split` JSON (`{"columns": [...], "data": [[...]]}`);
/// missing values are `null`.
pub fn to_dataframe_split(frame: &Frame) -> Value {
    let columns: Vec<&str> = frame.columns().iter().map(|c| &*c.name).collect();
    let data: Vec<Value> = (0..frame.n_rows())
        .map(|row| {
            Value::Array(
                frame
                    .columns()
                    .iter()
                    .map(|c| match &c.data {
                        ColumnData::Numeric(v) if v[row].is_finite() => json!(v[row]),
                        ColumnData::Numeric(_) => Value::Null,
                        ColumnData::Categorical(v) | ColumnData::Text(v) => {
                            v[row].clone().map(Value::String).unwrap_or(Value::Null)
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    json!({ "columns": columns, "data": data })
}

/// Reads CSV checked against `schema` (missing/extra columns and non-numbers are errors).
pub fn from_csv(reader: impl std::io::Read, schema: &Schema) -> Result<Frame> {
    learn::read_csv_with_schema(reader, schema).map_err(|e| input_error(e.to_string()))
}

/// The common scoring body, `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`
/// (pandas' `orient="split"`, so also an `"index"` of numbers or strings), read straight into
/// the frame without building a JSON tree: the frame [`from_json`] makes of the same body, or
/// `None` for any body that is not that exactly and fits `schema` as it is — unusual shapes,
/// other keys, escaped column names, deep values, every error — which [`from_json`] then reads
/// or refuses as always. A one-row request is the hot path of serving.
pub fn from_split_json(body: &[u8], schema: &Schema) -> Option<Frame> {
    let Split { columns: Names(columns), data: Rows { cells, width }, .. } =
        serde_json::from_slice::<SplitBody>(body).ok()?.dataframe_split;
    if columns.is_empty() || cells.is_empty() || columns.len() != schema.fields.len() || width != columns.len() {
        return None;
    }
    // Where each of the schema's fields is in the body; every column named once.
    let mut at = [0usize; MAX_SPLIT_COLUMNS];
    let mut seen = [false; MAX_SPLIT_COLUMNS];
    for (f, a) in schema.fields.iter().zip(&mut at) {
        *a = columns.iter().position(|c| **c == *f.name)?;
        if std::mem::replace(&mut seen[*a], true) {
            return None;
        }
    }
    let mut out = Vec::with_capacity(columns.len());
    for (f, j) in schema.fields.iter().zip(at) {
        let column = cells.chunks_exact(width).map(|row| &row[j]);
        let data = match f.kind {
            ColumnKind::Numeric => {
                let mut v = Vec::with_capacity(column.len());
                for cell in column {
                    v.push(match cell {
                        Cell::Number(x) => *x,
                        Cell::Null => f64::NAN,
                        Cell::Text(t) if t == "NaN" => f64::NAN,
                        Cell::Text(_) => return None,
                    });
                }
                ColumnData::Numeric(v)
            }
            ColumnKind::Categorical | ColumnKind::Text => {
                let mut v = Vec::with_capacity(column.len());
                for cell in column {
                    v.push(match cell {
                        Cell::Text(t) => Some(t.to_string()),
                        Cell::Null => None,
                        Cell::Number(_) => return None,
                    });
                }
                ColumnData::from_strings(f.kind, v)
            }
        };
        out.push(Column { name: f.name.clone(), data });
    }
    Frame::from_columns(out).ok()
}

/// The most columns [`from_split_json`] reads (wider bodies take the general path).
const MAX_SPLIT_COLUMNS: usize = 64;

/// The body [`from_split_json`] reads: that one key and nothing else.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitBody<'a> {
    #[serde(borrow)]
    dataframe_split: Split<'a>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Split<'a> {
    /// Names with escapes cannot be borrowed: such bodies take the general path.
    #[serde(borrow)]
    columns: Names<'a>,
    #[serde(borrow)]
    data: Rows<'a>,
    /// pandas' row labels, read (scalars only) and not used, as [`from_json`] ignores them.
    #[serde(borrow, default, rename = "index")]
    _index: Option<Vec<Cell<'a>>>,
}

/// The column names, at most [`MAX_SPLIT_COLUMNS`], read into one allocation.
struct Names<'a>(Vec<&'a str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Names<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a str>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Names<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a list of at most {MAX_SPLIT_COLUMNS} names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Names<'a>, A::Error> {
                let mut names = Vec::with_capacity(16);
                while let Some(name) = seq.next_element::<&'a str>()? {
                    if names.len() == MAX_SPLIT_COLUMNS {
                        return Err(serde::de::Error::invalid_length(names.len() + 1, &self));
                    }
                    names.push(name);
                }
                Ok(Names(names))
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

/// The rows of `data`, every cell in one vector, row after row. All rows are as long as the
/// first (`width`): a ragged body is not read here.
struct Rows<'a> {
    cells: Vec<Cell<'a>>,
    width: usize,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Rows<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_seq(RowsVisit(std::marker::PhantomData))
    }
}

struct RowsVisit<'a>(std::marker::PhantomData<Cell<'a>>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for RowsVisit<'a> {
    type Value = Rows<'a>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of rows of the same length")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Rows<'a>, A::Error> {
        let mut cells = Vec::with_capacity(16);
        let mut width = None;
        while let Some(n) = seq.next_element_seed(Row(&mut cells))? {
            if *width.get_or_insert(n) != n {
                return Err(serde::de::Error::invalid_length(n, &self));
            }
        }
        Ok(Rows { cells, width: width.unwrap_or(0) })
    }
}

/// One row of [`Rows`], appended to the cells; its value is the row's length.
struct Row<'c, 'a>(&'c mut Vec<Cell<'a>>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for Row<'_, 'a> {
    type Value = usize;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for Row<'_, 'a> {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row (a list of cells)")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<usize, A::Error> {
        let before = self.0.len();
        while let Some(cell) = seq.next_element::<Cell<'a>>()? {
            self.0.push(cell);
        }
        Ok(self.0.len() - before)
    }
}

/// One value of a row: a number, `null` or a string; anything else is not read here.
enum Cell<'a> {
    Number(f64),
    Null,
    Text(std::borrow::Cow<'a, str>),
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Cell<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<Cell<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Cell<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, null or a string")
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Cell<'a>, E> {
                Ok(Cell::Number(v))
            }
            // As `serde_json::Number::as_f64` turns integers into numbers.
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Cell<'a>, E> {
                Ok(Cell::Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Cell<'a>, E> {
                Ok(Cell::Number(v as f64))
            }
            fn visit_unit<E>(self) -> std::result::Result<Cell<'a>, E> {
                Ok(Cell::Null)
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Cell<'a>, E> {
                Ok(Cell::Text(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Cell<'a>, E> {
                Ok(Cell::Text(v.to_string().into()))
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// Parses an MLflow scoring payload into a frame matching `schema` (the values are moved
/// out of `payload`, not copied).
pub fn from_json(payload: Value, schema: &Schema) -> Result<Frame> {
    let Value::Object(mut obj) = payload else {
        return Err(input_error("the request body must be a JSON object".into()));
    };
    let keys = ["dataframe_split", "dataframe_records", "instances", "inputs"];
    let present: Vec<&str> = keys.iter().copied().filter(|k| obj.contains_key(*k)).collect();
    let key = match present.as_slice() {
        [one] => *one,
        [] => {
            return Err(input_error(format!(
                "the request body must have one of the keys {}; got {:?}",
                keys.join(", "),
                obj.keys().collect::<Vec<_>>()
            )))
        }
        many => return Err(input_error(format!("the request body has several input keys {many:?}; give exactly one"))),
    };
    let columns = match (key, obj.remove(key).unwrap_or_default()) {
        ("dataframe_split", Value::Object(split)) => split_columns(split)?,
        (_, Value::Array(rows)) => rows_columns(rows, schema)?,
        ("instances" | "inputs", Value::Object(cols)) => cols
            .into_iter()
            .map(|(k, v)| match v {
                Value::Array(values) => (k, values),
                other => (k, vec![other]),
            })
            .collect(),
        (k, other) => return Err(input_error(format!("'{k}' has the wrong shape: {}", type_name(&other)))),
    };
    build(columns, schema)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn split_columns(mut split: Map<String, Value>) -> Result<Vec<(String, Vec<Value>)>> {
    let Some(Value::Array(names)) = split.remove("columns") else {
        return Err(input_error("dataframe_split needs a 'columns' list".into()));
    };
    let mut columns: Vec<(String, Vec<Value>)> = names
        .into_iter()
        .map(|c| match c {
            Value::String(name) => Ok((name, Vec::new())),
            other => Err(input_error(format!("column names must be strings, got {other}"))),
        })
        .collect::<Result<_>>()?;
    let Some(Value::Array(data)) = split.remove("data") else {
        return Err(input_error("dataframe_split needs a 'data' list".into()));
    };
    for col in &mut columns {
        col.1.reserve_exact(data.len());
    }
    for (i, row) in data.into_iter().enumerate() {
        let Value::Array(row) = row else {
            return Err(input_error(format!("row {}: expected a list of values", i + 1)));
        };
        if row.len() != columns.len() {
            return Err(input_error(format!("row {}: {} values for {} columns", i + 1, row.len(), columns.len())));
        }
        for (col, v) in columns.iter_mut().zip(row) {
            col.1.push(v);
        }
    }
    Ok(columns)
}

/// Rows as objects (`{"col": value}`) or as lists in schema order.
fn rows_columns(rows: Vec<Value>, schema: &Schema) -> Result<Vec<(String, Vec<Value>)>> {
    let mut order: Vec<String> = Vec::new();
    let mut cols: HashMap<String, Vec<Value>> = HashMap::default();
    for (i, row) in rows.into_iter().enumerate() {
        match row {
            Value::Object(mut rec) => {
                for k in rec.keys() {
                    if !cols.contains_key(k) {
                        order.push(k.clone());
                        cols.insert(k.clone(), vec![Value::Null; i]);
                    }
                }
                for name in &order {
                    cols.get_mut(name).expect("known column").push(rec.remove(name).unwrap_or(Value::Null));
                }
            }
            Value::Array(values) => {
                if values.len() != schema.fields.len() {
                    return Err(input_error(format!(
                        "row {}: {} values, but the model takes {} features ({})",
                        i + 1,
                        values.len(),
                        schema.fields.len(),
                        schema.fields.iter().map(|f| &*f.name).collect::<Vec<_>>().join(", ")
                    )));
                }
                for (f, v) in schema.fields.iter().zip(values) {
                    if !cols.contains_key(&*f.name) {
                        order.push(f.name.to_string());
                        cols.insert(f.name.to_string(), vec![Value::Null; i]);
                    }
                    cols.get_mut(&*f.name).expect("known column").push(v);
                }
            }
            other => {
                return Err(input_error(format!(
                    "row {}: expected an object or a list, got {}",
                    i + 1,
                    type_name(&other)
                )))
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = cols.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

/// A JSON value as a numeric feature: a number, or missing (`null`, `"NaN"`); `None` otherwise.
pub fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Null => Some(f64::NAN),
        Value::String(s) if s == "NaN" => Some(f64::NAN),
        _ => None,
    }
}

/// A JSON value as a categorical feature: a string, or missing (`null`); `None` otherwise.
pub fn json_text(v: &Value) -> Option<Option<String>> {
    match v {
        Value::String(s) => Some(Some(s.clone())),
        Value::Null => Some(None),
        _ => None,
    }
}

/// Checks names against the schema and converts values by the schema's kinds.
pub fn build(mut columns: Vec<(String, Vec<Value>)>, schema: &Schema) -> Result<Frame> {
    let n_rows = columns.first().map(|(_, v)| v.len()).unwrap_or(0);
    if n_rows == 0 {
        return Err(input_error("the input has no rows".into()));
    }
    let given: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let missing: Vec<&str> = schema.fields.iter().map(|f| &*f.name).filter(|n| !given.contains(n)).collect();
    let extra: Vec<&str> = given.iter().copied().filter(|n| schema.field(n).is_none()).collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing column(s): {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            parts.push(format!("unexpected column(s): {}", extra.join(", ")));
        }
        return Err(input_error(format!(
            "{} (the model takes: {})",
            parts.join("; "),
            schema.fields.iter().map(|f| &*f.name).collect::<Vec<_>>().join(", ")
        )));
    }
    // Most payloads name the columns in the schema's order: then no lookup is needed.
    let ordered =
        columns.len() == schema.fields.len() && columns.iter().zip(&schema.fields).all(|(c, f)| c.0 == *f.name);
    let mut by_name: HashMap<String, Vec<Value>> =
        if ordered { HashMap::default() } else { columns.drain(..).collect() };
    let mut in_order = columns.into_iter();
    let mut out = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        let values = match in_order.next() {
            Some((_, values)) => values,
            None => by_name.remove(&*f.name).unwrap_or_default(),
        };
        let bad = |row: usize, v: &Value, want: &str| {
            input_error(format!("row {}, column '{}': expected {want}, got {} ({v})", row + 1, f.name, type_name(v)))
        };
        let data = match f.kind {
            ColumnKind::Numeric => ColumnData::Numeric(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| json_number(v).ok_or_else(|| bad(i, v, "a number")))
                    .collect::<Result<_>>()?,
            ),
            ColumnKind::Categorical | ColumnKind::Text => ColumnData::from_strings(
                f.kind,
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(Some(s)),
                        Value::Null => Ok(None),
                        other => Err(bad(i, &other, "a string")),
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        out.push(Column { name: f.name.clone(), data });
    }
    Frame::from_columns(out).map_err(|e| input_error(e.to_string()))
}

#[cfg(test)]
mod props {
    //! MLflow scoring bodies are untrusted: any JSON value and any CSV text becomes a frame
    //! that fits the schema or an input error, never a panic; well-formed payloads in each of
    //! MLflow's four shapes read back to the values sent.

    use super::*;
    use learn::Field;
    use proptest::prelude::*;

    fn schema() -> Schema {
        Schema {
            fields: vec![
                Field { name: "x".into(), kind: ColumnKind::Numeric },
                Field { name: "c".into(), kind: ColumnKind::Categorical },
            ],
        }
    }

    /// Any JSON value, with the payload keys and column names likely at every level.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|f| json!(f)),
            any::<i64>().prop_map(|i| json!(i)),
            prop_oneof![Just("x"), Just("c"), Just("NaN"), Just("columns"), Just("data"), Just("")]
                .prop_map(|s| json!(s)),
            "\\PC{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            let key = prop_oneof![
                Just("dataframe_split"),
                Just("dataframe_records"),
                Just("instances"),
                Just("inputs"),
                Just("columns"),
                Just("data"),
                Just("x"),
                Just("c"),
                Just("z"),
            ]
            .prop_map(str::to_string);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `dataframe_split` bodies of the schema's columns (any order, sometimes one missing,
    /// doubled or renamed) with numbers, `null`, strings and an occasional index or other key.
    fn split_body() -> impl Strategy<Value = Value> {
        let number = prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|i| json!(i)),
            Just(Value::Null),
            Just(json!("NaN")),
        ];
        let text = prop_oneof![
            Just(Value::Null),
            prop_oneof![Just("NaN"), Just("a"), Just("é\\\""), Just("")].prop_map(|s| json!(s)),
        ];
        // Mostly values of the column's kind; now and then one that is not.
        let x = prop_oneof![8 => number.clone(), 1 => text.clone(), 1 => Just(json!(true))];
        let c = prop_oneof![8 => text, 1 => number, 1 => Just(json!([]))];
        let names = prop_oneof![
            4 => Just(vec!["x", "c"]),
            4 => Just(vec!["c", "x"]),
            1 => Just(vec!["x"]),
            1 => Just(vec!["x", "x"]),
            1 => Just(vec!["x", "c", "z"]),
            1 => Just(vec!["x\\u0063", "c"]),
        ];
        let extra = prop_oneof![
            4 => Just(None),
            1 => Just(Some(("index", json!([0, "r"])))),
            1 => Just(Some(("index", json!([[0]])))),
            1 => Just(Some(("params", json!({})))),
        ];
        let rows = prop::collection::vec((x, c), 0..4);
        (names, rows, any::<bool>(), extra).prop_map(|(names, rows, ragged, extra)| {
            let flipped = names.first() == Some(&"c");
            let mut data: Vec<Value> =
                rows.into_iter().map(|(x, c)| if flipped { json!([c, x]) } else { json!([x, c]) }).collect();
            if ragged {
                if let Some(Value::Array(first)) = data.first_mut() {
                    first.pop();
                }
            }
            let mut split = json!({ "columns": names, "data": data });
            let mut body = json!({});
            match extra {
                Some(("index", v)) => split["index"] = v,
                Some((k, v)) => body[k] = v,
                None => {}
            }
            body["dataframe_split"] = split;
            body
        })
    }

    fn check(payload: &Value) -> Result<(), TestCaseError> {
        match from_json(payload.clone(), &schema()) {
            Ok(f) => {
                prop_assert!(f.n_rows() > 0);
                let names: Vec<&str> = f.columns().iter().map(|c| &*c.name).collect();
                prop_assert_eq!(names, vec!["x", "c"]);
            }
            Err(PackageError::Input(_)) => {}
            Err(e) => prop_assert!(false, "{e:?}"),
        }
        Ok(())
    }

    #[test]
    fn a_split_payload_names_its_first_fault() {
        let err = |v: Value| from_json(v, &schema()).unwrap_err().to_string();
        // The column names are checked before the rows, whatever else is wrong.
        assert!(err(json!({"dataframe_split": {"columns": [1]}})).contains("column names must be strings, got 1"));
        assert!(
            err(json!({"dataframe_split": {"columns": ["x", "c"]}})).contains("dataframe_split needs a 'data' list")
        );
        assert!(
            err(json!({"dataframe_split": {"data": [[1, "a"]]}})).contains("dataframe_split needs a 'columns' list")
        );
        // Columns in another order than the schema's are matched by name.
        let f =
            from_json(json!({"dataframe_split": {"columns": ["c", "x"], "data": [["a", 2.5]]}}), &schema()).unwrap();
        assert_eq!(f.column("x").unwrap().data, ColumnData::Numeric(vec![2.5]));
        assert_eq!(f.column("c").unwrap().data, ColumnData::Categorical(vec![Some("a".into())]));
    }

    proptest! {
        #[test]
        fn any_json_is_a_frame_or_an_input_error(v in json_value()) {
            check(&v)?;
            for key in ["dataframe_split", "dataframe_records", "instances", "inputs"] {
                check(&json!({ key: v.clone() }))?;
            }
        }

        #[test]
        fn any_csv_is_a_frame_or_an_input_error(text in "((x|c|z|\"x\"|1|-2.5e3|NaN|a|)(,|\n|\r\n)){0,20}|\\PC{0,60}") {
            match from_csv(text.as_bytes(), &schema()) {
                Ok(_) | Err(PackageError::Input(_)) => {}
                Err(e) => prop_assert!(false, "{e:?}"),
            }
        }

        /// The fast path reads a body exactly as the general path does, or leaves it to it.
        #[test]
        fn the_split_fast_path_agrees_with_the_general_one(v in json_value(), split in split_body()) {
            for body in [v.clone(), json!({ "dataframe_split": v }), split] {
                let text = body.to_string();
                if let Some(fast) = from_split_json(text.as_bytes(), &schema()) {
                    let general = from_json(serde_json::from_str(&text).unwrap(), &schema()).map_err(|e| {
                        TestCaseError::fail(format!("the fast path read {text}, the general one refused it: {e}"))
                    })?;
                    // Debug, not ==: a missing number is NaN on both sides.
                    prop_assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{}", text);
                }
            }
        }

        /// The same rows in MLflow's four payload shapes read back to the same frame.
        #[test]
        fn the_four_shapes_read_back(rows in prop::collection::vec((any::<f64>().prop_filter("finite", |f| f.is_finite()), prop::option::of("\\PC{0,5}")), 1..6)) {
            let xs: Vec<f64> = rows.iter().map(|r| r.0).collect();
            let cs: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
            let split = json!({ "dataframe_split": { "columns": ["x", "c"], "data": rows.iter().map(|(x, c)| json!([x, c])).collect::<Vec<_>>() } });
            let records = json!({ "dataframe_records": rows.iter().map(|(x, c)| json!({ "c": c, "x": x })).collect::<Vec<_>>() });
            let instances = json!({ "instances": rows.iter().map(|(x, c)| json!([x, c])).collect::<Vec<_>>() });
            let inputs = json!({ "inputs": { "x": xs, "c": cs } });
            let fast = from_split_json(split.to_string().as_bytes(), &schema()).expect("a plain split body is read directly");
            prop_assert_eq!(&fast.columns()[0].data, &ColumnData::Numeric(xs.clone()));
            prop_assert_eq!(&fast.columns()[1].data, &ColumnData::Categorical(cs.clone()));
            for payload in [split, records, instances, inputs] {
                let f = from_json(payload.clone(), &schema()).unwrap();
                prop_assert_eq!(&f.columns()[0].data, &ColumnData::Numeric(xs.clone()), "{}", payload);
                prop_assert_eq!(&f.columns()[1].data, &ColumnData::Categorical(cs.clone()), "{}", payload);
            }
        }
    }
}
