//! Open Inference Protocol (V2) input tensors in protocol-neutral form, and the one
//! conversion from tensors to a [`Frame`] checked against the model's signature. The REST
//! adapter (JSON) and the gRPC adapter (protobuf `contents` / `raw_input_contents`) both
//! decode into [`Tensor`] and call [`frame_from_tensors`], so both protocols accept exactly
//! the same inputs and refuse bad ones with the same messages.
//!
//! Two layouts are accepted:
//! - **one input per column**, as MLServer's pandas codec sends a data frame: the input is
//!   named by the feature, shape `[n]` or `[n, 1]`, numeric features as `FP64`/`FP32`/`INT*`
//!   /`UINT*`/`BOOL`, categorical features as `BYTES`;
//! - **one 2-D tensor** `[n, k]` (any name that is not a feature), columns in signature
//!   order: numeric datatypes when every feature is numeric, or `BYTES` (numbers as text).

use crate::error::ServeError;
use formats::TensorSpec;
use learn::{Column, ColumnData, ColumnKind, Frame, Schema};

/// Tensor values, already widened: every numeric datatype becomes `f64` (exact for FP32,
/// integers up to 2^53 and BOOL), `BYTES` become UTF-8 strings (`None` = JSON `null`).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Numeric(Vec<f64>),
    Bytes(Vec<Option<String>>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::Numeric(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One input tensor of an inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    /// The datatype as the client named it (`FP64`, `BYTES`, ...), for messages.
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: TensorData,
}

/// The V2 datatypes this server reads, and whether each is numeric.
pub fn datatype_is_numeric(datatype: &str) -> Option<bool> {
    match datatype {
        "FP64" | "FP32" | "INT64" | "INT32" | "INT16" | "INT8" | "UINT64" | "UINT32" | "UINT16" | "UINT8" | "BOOL" => {
            Some(true)
        }
        "BYTES" => Some(false),
        _ => None,
    }
}

/// The V2 datatype that carries a column of this kind.
pub fn datatype_for(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numeric => "FP64",
        ColumnKind::Categorical | ColumnKind::Text => "BYTES",
    }
}

fn invalid(msg: String) -> ServeError {
    ServeError::Invalid(msg)
}

fn feature_list(schema: &Schema) -> String {
    schema.fields.iter().map(|f| &*f.name).collect::<Vec<_>>().join(", ")
}

/// Checks that the shape has no negative dimension and covers exactly the data.
fn check_elements(t: &Tensor) -> Result<(), ServeError> {
    if t.shape.is_empty() {
        return Err(invalid(format!("input '{}': the shape is empty; give [n] or [n, k]", t.name)));
    }
    if let Some(d) = t.shape.iter().find(|&&d| d < 0) {
        return Err(invalid(format!("input '{}': shape {:?} has a negative dimension ({d})", t.name, t.shape)));
    }
    let expected = t.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    if expected != Some(t.data.len() as u64) {
        return Err(invalid(format!(
            "input '{}': shape {:?} needs {} values, got {}",
            t.name,
            t.shape,
            expected.map_or("too many".to_string(), |e| e.to_string()),
            t.data.len()
        )));
    }
    Ok(())
}

/// The closed range of values a V2 integer datatype holds (`BOOL`: 0 and 1); `None` for
/// floating-point and `BYTES` tensors.
fn integer_range(datatype: &str) -> Option<(f64, f64)> {
    Some(match datatype {
        "BOOL" => (0.0, 1.0),
        "INT8" => (i8::MIN as f64, i8::MAX as f64),
        "INT16" => (i16::MIN as f64, i16::MAX as f64),
        "INT32" => (i32::MIN as f64, i32::MAX as f64),
        // 2^63 and 2^64 are exact doubles; the largest values of those types round up to them.
        "INT64" => (-(2f64.powi(63)), 2f64.powi(63) - 1.0),
        "UINT8" => (0.0, u8::MAX as f64),
        "UINT16" => (0.0, u16::MAX as f64),
        "UINT32" => (0.0, u32::MAX as f64),
        "UINT64" => (0.0, 2f64.powi(64) - 1.0),
        _ => return None,
    })
}

/// Checks every value against its datatype: integers (and `BOOL`) whole and in range, `FP32`
/// within `f32`'s range (missing values, NaN, stay allowed for floating-point tensors), so
/// `INT8` 1000, `UINT64` -5 or `BOOL` 2 are refused instead of read as something else.
fn check_range(t: &Tensor) -> Result<(), ServeError> {
    let TensorData::Numeric(values) = &t.data else { return Ok(()) };
    let bad = |i: usize, v: f64, what: &str| {
        Err(invalid(format!("input '{}', element {i}: {v} is not {what} (datatype {})", t.name, t.datatype)))
    };
    if let Some((lo, hi)) = integer_range(&t.datatype) {
        for (i, &v) in values.iter().enumerate() {
            if !(v.is_finite() && v.fract() == 0.0) {
                return bad(i, v, "a whole number");
            }
            if v < lo || v > hi {
                return bad(i, v, &format!("within [{lo}, {hi}]"));
            }
        }
    } else if t.datatype == "FP32" {
        if let Some((i, &v)) = values.iter().enumerate().find(|(_, v)| v.is_infinite() || v.abs() > f32::MAX as f64) {
            return bad(i, v, "a finite FP32 value");
        }
    }
    Ok(())
}

/// Builds the frame the model takes from the request's input tensors.
pub fn frame_from_tensors(inputs: Vec<Tensor>, schema: &Schema) -> Result<Frame, ServeError> {
    if inputs.is_empty() {
        return Err(invalid(format!("the request has no inputs; the model takes: {}", feature_list(schema))));
    }
    for t in &inputs {
        if datatype_is_numeric(&t.datatype).is_none() {
            return Err(invalid(format!(
                "input '{}': unsupported datatype '{}' (use FP64, FP32, INT64, INT32, BOOL or BYTES)",
                t.name, t.datatype
            )));
        }
        check_elements(t)?;
        check_range(t)?;
    }
    let any_feature = inputs.iter().any(|t| schema.field(&t.name).is_some());
    if !any_feature && inputs.len() == 1 {
        let t = inputs.into_iter().next().expect("one input");
        return from_matrix(t, schema);
    }
    from_columns(inputs, schema)
}

/// Splits each tensor named like an ONNX input `spec` that spans several columns
/// (`X` `[n, 8]`, row-major) into one `[n]` tensor per column, named by the schema's
/// columns in the model's input order; other tensors pass through.
pub fn split_wide_inputs(
    specs: &[TensorSpec],
    schema: &Schema,
    tensors: Vec<Tensor>,
) -> Result<Vec<Tensor>, ServeError> {
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let Some(i) = specs.iter().position(|s| s.name == t.name && s.width() > 1) else {
            out.push(t);
            continue;
        };
        let start: usize = specs[..i].iter().map(|s| s.width()).sum();
        let width = schema.fields.len().min(start + specs[i].width()) - start.min(schema.fields.len());
        let rows = t.shape.first().copied().unwrap_or(0).max(0) as usize;
        // Checked: a huge row count whose product with the width wraps around to the number
        // of values sent would otherwise pass and index past the data.
        if width == 0 || rows.checked_mul(width) != Some(t.data.len()) {
            return Err(invalid(format!(
                "input '{}': shape {:?} with {} values; the model takes [n, {}]",
                t.name,
                t.shape,
                t.data.len(),
                specs[i].width()
            )));
        }
        for j in 0..width {
            let data = match &t.data {
                TensorData::Numeric(v) => TensorData::Numeric((0..rows).map(|r| v[r * width + j]).collect()),
                TensorData::Bytes(v) => TensorData::Bytes((0..rows).map(|r| v[r * width + j].clone()).collect()),
            };
            let name = schema.fields[start + j].name.to_string();
            out.push(Tensor { name, datatype: t.datatype.clone(), shape: vec![rows as i64], data });
        }
    }
    Ok(out)
}

/// One input per feature column.
fn from_columns(inputs: Vec<Tensor>, schema: &Schema) -> Result<Frame, ServeError> {
    let mut seen = std::collections::HashSet::new();
    for t in &inputs {
        if !seen.insert(t.name.as_str()) {
            return Err(invalid(format!("input '{}' is given twice", t.name)));
        }
    }
    let missing: Vec<&str> = schema.fields.iter().map(|f| &*f.name).filter(|n| !seen.contains(n)).collect();
    let extra: Vec<&str> = inputs.iter().map(|t| t.name.as_str()).filter(|n| schema.field(n).is_none()).collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing input(s): {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            parts.push(format!("unexpected input(s): {}", extra.join(", ")));
        }
        return Err(invalid(format!(
            "{} (send one input per feature: {}; or a single [n, {}] tensor)",
            parts.join("; "),
            feature_list(schema),
            schema.fields.len()
        )));
    }
    let n = inputs[0].shape[0];
    for t in &inputs {
        let ok_shape = t.shape.len() == 1 || (t.shape.len() == 2 && t.shape[1] == 1);
        if !ok_shape {
            return Err(invalid(format!(
                "input '{}': shape {:?}; a feature column has shape [n] or [n, 1]",
                t.name, t.shape
            )));
        }
        if t.shape[0] != n {
            return Err(invalid(format!(
                "input '{}' has {} rows but input '{}' has {n}; every column needs the same number of rows",
                t.name, t.shape[0], inputs[0].name
            )));
        }
    }
    if n == 0 {
        return Err(invalid("the batch is empty (0 rows)".into()));
    }
    let mut by_name: std::collections::HashMap<String, Tensor> =
        inputs.into_iter().map(|t| (t.name.clone(), t)).collect();
    let mut columns = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        let t = by_name.remove(&*f.name).expect("checked above");
        let data = match (f.kind, t.data) {
            (ColumnKind::Numeric, TensorData::Numeric(v)) => ColumnData::Numeric(v),
            (kind @ (ColumnKind::Categorical | ColumnKind::Text), TensorData::Bytes(v)) => {
                ColumnData::from_strings(kind, v)
            }
            (ColumnKind::Numeric, TensorData::Bytes(_)) => {
                return Err(invalid(format!(
                    "input '{}' is {} but the model's column '{}' is numeric: send FP64, FP32 or INT64",
                    t.name, t.datatype, f.name
                )))
            }
            (kind @ (ColumnKind::Categorical | ColumnKind::Text), TensorData::Numeric(_)) => {
                return Err(invalid(format!(
                    "input '{}' is {} but the model's column '{}' is {kind}: send BYTES (strings)",
                    t.name, t.datatype, f.name
                )))
            }
        };
        columns.push(Column { name: f.name.clone(), data });
    }
    Frame::from_columns(columns).map_err(|e| invalid(e.to_string()))
}

/// One `[n, k]` tensor, columns in signature order.
fn from_matrix(t: Tensor, schema: &Schema) -> Result<Frame, ServeError> {
    let k = schema.fields.len();
    if t.shape.len() != 2 || t.shape[1] as usize != k {
        return Err(invalid(format!(
            "input '{}' is not a feature name, so it is read as one [n, {k}] tensor in signature order ({}), but its shape is {:?}",
            t.name,
            feature_list(schema),
            t.shape
        )));
    }
    let n = t.shape[0] as usize;
    if n == 0 {
        return Err(invalid("the batch is empty (0 rows)".into()));
    }
    let columns = match t.data {
        TensorData::Numeric(values) => {
            let categorical: Vec<&str> =
                schema.fields.iter().filter(|f| f.kind == ColumnKind::Categorical).map(|f| &*f.name).collect();
            if !categorical.is_empty() {
                return Err(invalid(format!(
                    "input '{}' is a {} tensor, but the model's column(s) {} are categorical: send BYTES, or one input per feature",
                    t.name,
                    t.datatype,
                    categorical.join(", ")
                )));
            }
            schema
                .fields
                .iter()
                .enumerate()
                .map(|(j, f)| Column::numeric(f.name.clone(), (0..n).map(|i| values[i * k + j]).collect()))
                .collect::<Vec<_>>()
        }
        TensorData::Bytes(values) => schema
            .fields
            .iter()
            .enumerate()
            .map(|(j, f)| match f.kind {
                kind @ (ColumnKind::Categorical | ColumnKind::Text) => Ok(Column {
                    name: f.name.clone(),
                    data: ColumnData::from_strings(kind, (0..n).map(|i| values[i * k + j].clone()).collect()),
                }),
                ColumnKind::Numeric => (0..n)
                    .map(|i| match values[i * k + j].as_deref().map(str::trim) {
                        None | Some("") => Ok(f64::NAN),
                        Some(s) => s.parse::<f64>().map_err(|_| {
                            invalid(format!(
                                "input '{}', row {}, column '{}': expected a number, got '{s}'",
                                t.name,
                                i + 1,
                                f.name
                            ))
                        }),
                    })
                    .collect::<Result<Vec<f64>, _>>()
                    .map(|v| Column::numeric(f.name.clone(), v)),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    Frame::from_columns(columns).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use learn::Field;

    fn schema() -> Schema {
        Schema {
            fields: vec![
                Field { name: "a".into(), kind: ColumnKind::Numeric },
                Field { name: "b".into(), kind: ColumnKind::Numeric },
                Field { name: "c".into(), kind: ColumnKind::Categorical },
            ],
        }
    }

    fn num(name: &str, shape: &[i64], v: &[f64]) -> Tensor {
        Tensor {
            name: name.into(),
            datatype: "FP64".into(),
            shape: shape.to_vec(),
            data: TensorData::Numeric(v.to_vec()),
        }
    }

    fn text(name: &str, shape: &[i64], v: &[&str]) -> Tensor {
        Tensor {
            name: name.into(),
            datatype: "BYTES".into(),
            shape: shape.to_vec(),
            data: TensorData::Bytes(v.iter().map(|s| Some(s.to_string())).collect()),
        }
    }

    /// Converts and returns the frame, or the error message.
    fn check(inputs: Vec<Tensor>) -> Result<Frame, String> {
        frame_from_tensors(inputs, &schema()).map_err(|e| e.to_string())
    }

    fn check_err(inputs: Vec<Tensor>, needle: &str) {
        let err = check(inputs).expect_err("should be refused");
        assert!(err.contains(needle), "'{err}' should mention '{needle}'");
    }

    #[test]
    fn columns_in_any_order_and_n_by_1_shapes() {
        let f =
            check(vec![text("c", &[2, 1], &["x", "y"]), num("b", &[2], &[3.0, 4.0]), num("a", &[2, 1], &[1.0, 2.0])])
                .unwrap();
        assert_eq!(f.n_rows(), 2);
        assert_eq!(&*f.columns()[0].name, "a");
        assert_eq!(f.column("b").unwrap().data, ColumnData::Numeric(vec![3.0, 4.0]));
    }

    #[test]
    fn matrix_of_bytes_parses_numbers_in_signature_order() {
        let f = check(vec![text("input-0", &[2, 3], &["1", "2", "x", "3.5", "", "y"])]).unwrap();
        assert_eq!(f.column("a").unwrap().data, ColumnData::Numeric(vec![1.0, 3.5]));
        let ColumnData::Numeric(b) = &f.column("b").unwrap().data else { panic!() };
        assert!(b[0] == 2.0 && b[1].is_nan());
    }

    #[test]
    fn integer_datatypes_are_range_checked() {
        let typed = |datatype: &str, v: f64| {
            let mut t = num("a", &[1], &[v]);
            t.datatype = datatype.into();
            check(vec![t, num("b", &[1], &[1.0]), text("c", &[1], &["x"])])
        };
        for (datatype, ok, bad) in [
            ("INT8", 127.0, 1000.0),
            ("INT8", -128.0, -129.0),
            ("UINT8", 255.0, 256.0),
            ("UINT64", 0.0, -5.0),
            ("UINT32", 4_294_967_295.0, 4_294_967_296.0),
            ("INT32", -2_147_483_648.0, 2_147_483_648.0),
            ("BOOL", 1.0, 2.0),
            ("INT64", 3.0, 3.5),
            ("INT16", 1.0, f64::NAN),
            ("FP32", 1.0e38, 1.0e39),
        ] {
            assert!(typed(datatype, ok).is_ok(), "{datatype} {ok} should be accepted");
            let err = typed(datatype, bad).expect_err("out of range");
            assert!(err.contains("element 0") && err.contains(datatype), "{err}");
        }
        assert!(typed("FP32", f64::NAN).is_ok(), "missing values stay allowed in float tensors");
        assert!(typed("FP64", 1.0e300).is_ok());
    }

    #[test]
    fn refusals_name_the_problem() {
        check_err(vec![], "no inputs");
        check_err(vec![num("a", &[1], &[1.0]), text("c", &[1], &["x"])], "missing input(s): b");
        check_err(
            vec![num("a", &[1], &[1.0]), num("b", &[1], &[1.0]), text("c", &[1], &["x"]), num("zz", &[1], &[1.0])],
            "unexpected input(s): zz",
        );
        check_err(
            vec![num("a", &[1], &[1.0]), num("b", &[1], &[1.0]), num("c", &[1], &[1.0])],
            "column 'c' is categorical",
        );
        check_err(
            vec![text("a", &[1], &["1"]), num("b", &[1], &[1.0]), text("c", &[1], &["x"])],
            "column 'a' is numeric",
        );
        check_err(
            vec![num("a", &[2], &[1.0]), num("b", &[2], &[1.0, 2.0]), text("c", &[2], &["x", "y"])],
            "needs 2 values, got 1",
        );
        check_err(
            vec![num("a", &[2], &[1.0, 2.0]), num("b", &[1], &[1.0]), text("c", &[1], &["x"])],
            "same number of rows",
        );
        check_err(vec![num("a", &[0], &[]), num("b", &[0], &[]), text("c", &[0], &[])], "empty");
        check_err(vec![num("x", &[1, 3], &[1.0, 2.0, 3.0])], "categorical");
        check_err(vec![num("x", &[1, 2], &[1.0, 2.0])], "[n, 3] tensor");
        check_err(vec![text("x", &[1, 3], &["1", "nope", "c"])], "row 1, column 'b': expected a number, got 'nope'");
        let mut t = num("a", &[1], &[1.0]);
        t.datatype = "FP16".into();
        check_err(vec![t], "unsupported datatype 'FP16'");
        check_err(vec![num("a", &[-1], &[1.0])], "negative dimension");
        check_err(vec![num("a", &[1], &[1.0]), num("a", &[1], &[1.0])], "given twice");
    }
}
