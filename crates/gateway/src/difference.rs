//! How far apart two colours' predictions are on one mirrored request: the largest absolute
//! difference between the numbers of the two answers, read from MLflow scoring
//! (`{"predictions": ...}`) or Open Inference Protocol REST (`{"outputs": [{"data": ...}]}`)
//! bodies. Labels (strings) are not numbers and are skipped; two answers with a different count
//! of numbers (another shape) are not comparable. gRPC answers are protobuf and are compared
//! byte for byte only (`gateway_shadow_divergences_total`).

use serde::Deserialize;
use serde_json::Value;

/// Upper bounds of `gateway_shadow_prediction_difference`: equal answers fall in the first.
pub const BUCKETS: [f64; 13] = [1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];

/// The two answer bodies we read; anything else is not comparable.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    predictions: Option<Value>,
    #[serde(default)]
    outputs: Option<Vec<Output>>,
}

#[derive(Deserialize)]
struct Output {
    data: Value,
}

fn numbers(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(o) => o.values().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

/// The numbers an answer predicts, in order; `None` when the body is neither shape.
fn predicted(body: &[u8]) -> Option<Vec<f64>> {
    let a: Answer = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    match (a.predictions, a.outputs) {
        (Some(p), _) => numbers(&p, &mut out),
        (None, Some(outputs)) => outputs.iter().for_each(|o| numbers(&o.data, &mut out)),
        (None, None) => return None,
    }
    Some(out)
}

/// The largest absolute difference between the two answers' numbers; `None` when they cannot
/// be compared (not JSON predictions, different counts, nothing numeric, a non-finite value).
pub fn largest(a: &[u8], b: &[u8]) -> Option<f64> {
    let (x, y) = (predicted(a)?, predicted(b)?);
    if x.len() != y.len() || x.is_empty() {
        return None;
    }
    let d = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0f64, f64::max);
    d.is_finite().then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_and_v2_answers_compare_by_their_numbers() {
        assert_eq!(largest(br#"{"predictions":[1.0,2.0]}"#, br#"{"predictions":[1.5,1.0]}"#), Some(1.0));
        let a = br#"{"predictions":[{"label":"spam","probability":0.75}]}"#;
        let b = br#"{"predictions":[{"label":"ham","probability":0.25}]}"#;
        assert_eq!(largest(a, b), Some(0.5));
        let v2a =
            br#"{"model_name":"m","id":"7","outputs":[{"name":"predict","shape":[2],"datatype":"FP64","data":[3,4]}]}"#;
        let v2b = br#"{"model_name":"m","id":"7","outputs":[{"name":"predict","shape":[2],"datatype":"FP64","data":[3,4.25]}]}"#;
        assert_eq!(largest(v2a, v2b), Some(0.25));
        assert_eq!(largest(v2a, v2a), Some(0.0));
    }

    #[test]
    fn other_answers_are_not_comparable() {
        assert_eq!(largest(br#"{"predictions":[1]}"#, br#"{"predictions":[1,2]}"#), None);
        assert_eq!(largest(br#"{"error_code":"BAD_REQUEST"}"#, br#"{"predictions":[1]}"#), None);
        assert_eq!(largest(b"\x00\x00grpc", b"\x00\x00grpc"), None);
        assert_eq!(largest(br#"{"predictions":["a"]}"#, br#"{"predictions":["b"]}"#), None);
    }
}
