//! Request and response bodies in MLflow's JSON dialect: proto messages as JSON with
//! snake_case names, GET fields in the query string, int64 accepted as numbers or strings,
//! and non-finite floats written as Python's `json` writes them (`"NaN"`, `"Infinity"`), as protobuf's JSON printer does.

use crate::error::{ApiError, ApiResult};
use crate::routes::Input;
use crate::AppState;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;

/// The largest JSON request body accepted (a 10 MB param must reach validation and get
/// MLflow's INVALID_PARAMETER_VALUE, not a transport error).
pub const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

/// A request message: from the query string for GET and HEAD (and for other methods sent
/// without a body), else from the JSON body. Errors become MLflow error bodies naming the bad
/// field. Parsed once per request: the route's permission rule and its handler read the same
/// value (`routes.rs`).
pub struct Msg<T>(pub T);

impl<T> std::ops::Deref for Msg<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Send + 'static> Input for Msg<T> {
    async fn parse(req: Request, _: &AppState) -> ApiResult<Self> {
        let query = req.uri().query().unwrap_or("").to_string();
        let from_query = matches!(*req.method(), Method::GET | Method::HEAD);
        let body = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|e| ApiError::invalid(format!("Could not read the request body: {e}")))?;
        if from_query || body.iter().all(u8::is_ascii_whitespace) {
            return serde_html_form::from_str(&query)
                .map(Msg)
                .map_err(|e| ApiError::invalid(format!("Invalid query parameters: {e}")));
        }
        parse_body(&body).map(Msg)
    }
}

/// Parses a JSON body, accepting the `NaN`/`Infinity`/`-Infinity` tokens Python emits.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() => {
            let quoted = quote_non_finite(body).ok_or_else(|| malformed(&e))?;
            serde_json::from_slice(&quoted).map_err(|e| {
                if e.is_syntax() || e.is_eof() {
                    malformed(&e)
                } else {
                    invalid_field::<T>(&quoted, &e)
                }
            })
        }
        Err(e) => Err(invalid_field::<T>(body, &e)),
    }
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::new(crate::error::ErrorCode::BadRequest, format!("Malformed JSON in request body: {e}"))
}

/// A field of the wrong type, in MLflow's words (`_validate_param_against_schema`): `Invalid
/// value <json> for parameter '<field>' supplied. Hint: Value was of type '<python type>'.`
/// Only on this error path, the body is read again one top-level field at a time to find
/// the field at fault; the run's id first, as MLflow's schemas check it first.
fn invalid_field<T: DeserializeOwned>(body: &[u8], e: &serde_json::Error) -> ApiError {
    let fallback = || ApiError::invalid(format!("Invalid request: {e}"));
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return fallback();
    };
    let mistyped = |key: &String, value: &serde_json::Value| {
        let alone = serde_json::Value::Object([(key.clone(), value.clone())].into_iter().collect());
        match serde_json::from_value::<T>(alone) {
            Ok(_) => false,
            Err(e) => !e.to_string().starts_with("missing field"),
        }
    };
    let first = ["run_id", "run_uuid"].iter().filter_map(|k| fields.get_key_value(*k)).chain(fields.iter());
    let Some((key, value)) = first.into_iter().find(|(k, v)| mistyped(k, v)) else { return fallback() };
    let python_type = match value {
        serde_json::Value::Null => "NoneType",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_f64() => "float",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::String(_) => "str",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    };
    ApiError::invalid(format!(
        "Invalid value {value} for parameter '{key}' supplied. Hint: Value was of type '{python_type}'. See the API \
         docs for more information about request parameters."
    ))
}

/// Rewrites bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings) as JSON strings;
/// `None` when there are none, so the original error stands.
fn quote_non_finite(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let (mut i, mut in_string, mut changed) = (0, false, false);
    while i < body.len() {
        let c = body[i];
        if in_string {
            out.push(c);
            if c == b'\\' && i + 1 < body.len() {
                out.push(body[i + 1]);
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let rest = &body[i..];
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"].into_iter().find(|t| rest.starts_with(t));
        if let Some(t) = token {
            out.push(b'"');
            out.extend_from_slice(t);
            out.push(b'"');
            i += t.len();
            changed = true;
            continue;
        }
        in_string = c == b'"';
        out.push(c);
        i += 1;
    }
    changed.then_some(out)
}

/// An int64 field: JSON number or decimal string (proto3 JSON writes int64 as strings).
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntVisitor)
}

/// An optional int64 field (`null` or absent is `None`).
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(IntVisitor).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            IntVisitor.visit_u64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            IntVisitor.visit_f64(v).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.is_empty() {
                return Ok(None);
            }
            IntVisitor.visit_str(v).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() < 9.2e18 {
            Ok(v as i64)
        } else {
            Err(E::custom(format!("expected an integer, got {v}")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim().parse().map_err(|_| E::custom(format!("expected an integer, got \"{v}\"")))
    }
}

/// A double field: a JSON number, or `NaN`/`Infinity`/`-Infinity` (bare or quoted).
pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v.trim() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                s => s.parse().map_err(|_| E::custom(format!("expected a number, got \"{v}\""))),
            }
        }
    }
    d.deserialize_any(V)
}

/// An optional double field (see [`float`]).
pub fn opt_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    <Option<FloatOrStr> as serde::Deserialize>::deserialize(d).map(|o| o.map(|f| f.0))
}

/// An optional bool field: JSON `true`/`false` or the strings `"true"`/`"false"` (GET).
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" | "" => Ok(Some(false)),
                _ => Err(E::custom(format!("expected a boolean, got \"{v}\""))),
            }
        }
    }
    d.deserialize_any(V)
}

/// An optional string field that may also arrive as a JSON number.
pub fn string_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    <Option<StrOrNum> as serde::Deserialize>::deserialize(d).map(|o| o.map(|s| s.0))
}

struct FloatOrStr(f64);

impl<'de> serde::Deserialize<'de> for FloatOrStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        float(d).map(FloatOrStr)
    }
}

struct StrOrNum(String);

impl<'de> serde::Deserialize<'de> for StrOrNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string(d).map(StrOrNum)
    }
}

/// A string field that may also arrive as a JSON number (ids are strings in MLflow's API).
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

/// A float as protobuf's JSON mapping writes it: non-finite values are the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (the client's `ParseDict` refuses bare tokens).
#[derive(Debug, Clone, Copy)]
pub struct PyFloat(pub f64);

impl Serialize for PyFloat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

/// A JSON response (HTTP 200).
pub struct Reply<T>(pub T);

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => ([("content-type", "application/json")], body).into_response(),
            Err(e) => {
                ApiError::new(crate::error::ErrorCode::InternalError, format!("response encoding: {e}")).into_response()
            }
        }
    }
}

/// A JSON response (HTTP 200) serialized on the spot, for bodies that borrow from data the
/// handler owns; `capacity` is a guess of the body's size (saves regrowing a large buffer).
pub struct Encoded(Vec<u8>);

impl Encoded {
    pub fn new<T: Serialize>(value: &T, capacity: usize) -> ApiResult<Encoded> {
        let mut body = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut body, value)
            .map_err(|e| ApiError::new(crate::error::ErrorCode::InternalError, format!("response encoding: {e}")))?;
        Ok(Encoded(body))
    }
}

impl Encoded {
    /// A page of items already encoded as JSON, as [`crate::wire::Paged`] would write it: the
    /// list under `key` (omitted when empty), then `next_page_token` when there is one.
    pub fn raw_page<'a>(key: &str, items: impl ExactSizeIterator<Item = &'a str>, token: Option<&str>) -> Encoded {
        let mut body = Vec::with_capacity(64 + 768 * items.len());
        body.push(b'{');
        let mut items = items.peekable();
        if items.peek().is_some() {
            body.extend_from_slice(serde_json::Value::from(key).to_string().as_bytes());
            body.extend_from_slice(b":[");
            for (i, item) in items.enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(item.as_bytes());
            }
            body.push(b']');
        }
        if let Some(token) = token {
            if body.len() > 1 {
                body.push(b',');
            }
            body.extend_from_slice(b"\"next_page_token\":");
            body.extend_from_slice(serde_json::Value::from(token).to_string().as_bytes());
        }
        body.push(b'}');
        Encoded(body)
    }
}

impl IntoResponse for Encoded {
    fn into_response(self) -> Response {
        ([("content-type", "application/json")], self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct M {
        #[serde(deserialize_with = "float")]
        value: f64,
        #[serde(default, deserialize_with = "opt_int")]
        step: Option<i64>,
        #[serde(default)]
        key: String,
    }

    fn check(body: &str, value: f64, step: Option<i64>) {
        let m: M = parse_body(body.as_bytes()).unwrap();
        assert!(m.value == value || (m.value.is_nan() && value.is_nan()), "{body}");
        assert_eq!(m.step, step, "{body}");
    }

    #[test]
    fn parses_python_json() {
        check(r#"{"value": 1.5, "step": 3}"#, 1.5, Some(3));
        check(r#"{"value": NaN, "step": "7"}"#, f64::NAN, Some(7));
        check(r#"{"value": Infinity}"#, f64::INFINITY, None);
        check(r#"{"value": -Infinity, "key": "NaN \"Infinity\""}"#, f64::NEG_INFINITY, None);
        check(r#"{"value": "NaN", "step": null}"#, f64::NAN, None);
        let m: M = parse_body(br#"{"value": NaN, "key": "a NaN b"}"#).unwrap();
        assert_eq!(m.key, "a NaN b");
    }

    #[test]
    fn rejects_bad_bodies() {
        for bad in ["{", "nope", r#"{"value": "x"}"#, r#"{"value": 1, "step": 1.5}"#, r#"{"value": NaNx}"#] {
            assert!(parse_body::<M>(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_the_mistyped_field_as_mlflow_does() {
        let message = |body: &str| parse_body::<M>(body.as_bytes()).unwrap_err().message;
        let got = message(r#"{"value": 1, "step": "foo"}"#);
        assert!(got.starts_with("Invalid value \"foo\" for parameter 'step' supplied."), "{got}");
        assert!(got.contains("Hint: Value was of type 'str'."), "{got}");
        let got = message(r#"{"value": 1, "key": 31}"#);
        assert!(got.starts_with("Invalid value 31 for parameter 'key' supplied."), "{got}");
        let got = message(r#"{"value": NaN, "key": [1]}"#);
        assert!(got.starts_with("Invalid value [1] for parameter 'key' supplied."), "{got}");
    }

    #[test]
    fn writes_proto_json() {
        let floats = [PyFloat(f64::NAN), PyFloat(f64::INFINITY), PyFloat(f64::NEG_INFINITY), PyFloat(0.5)];
        assert_eq!(serde_json::to_string(&floats).unwrap(), r#"["NaN","Infinity","-Infinity",0.5]"#);
    }
}
