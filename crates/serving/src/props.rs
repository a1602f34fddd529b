//! Properties of the inference input decoders, which read untrusted bytes: V2 JSON bodies,
//! gRPC `raw_input_contents` and typed contents, the ONNX wide-input split and the tensor →
//! frame conversion. Any input decodes or is refused as a bad request (`Malformed` or
//! `Invalid`, a 400 / `INVALID_ARGUMENT`), never a panic or a server error; well-formed
//! inputs decode to what was sent.

use crate::error::ServeError;
use crate::grpc::tensors;
use crate::http::v2_request;
use crate::proto::inference::model_infer_request::InferInputTensor;
use crate::proto::inference::{InferTensorContents, ModelInferRequest};
use crate::tensor::{frame_from_tensors, split_wide_inputs, Tensor, TensorData};
use formats::{ElemType, TensorSpec};
use learn::{ColumnKind, Field, Schema};
use proptest::prelude::*;
use prost::Message;

const DATATYPES: [&str; 14] = [
    "FP64", "FP32", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8", "BOOL", "BYTES", "FP16",
    "",
];

fn schema() -> Schema {
    let f = |name: &str, kind| Field { name: name.into(), kind };
    Schema {
        fields: vec![
            f("a", ColumnKind::Numeric),
            f("b", ColumnKind::Numeric),
            f("c", ColumnKind::Categorical),
            f("d", ColumnKind::Numeric),
        ],
    }
}

/// An ONNX model's inputs over `schema()`: `X` spans a, b; `c` and `d` are one column each.
fn specs() -> Vec<TensorSpec> {
    let spec = |name: &str, shape: Vec<i64>| TensorSpec { name: name.into(), elem: ElemType::F32, shape };
    vec![spec("X", vec![-1, 2]), spec("c", vec![-1, 1]), spec("d", vec![-1])]
}

/// A refusal a client can fix (400), not a server error.
fn is_bad_request<T>(r: &Result<T, ServeError>) -> bool {
    matches!(r, Ok(_) | Err(ServeError::Malformed(_)) | Err(ServeError::Invalid(_)))
}

/// Every step from decoded tensors to a frame, as both protocols take it.
fn check_frame(tensors: Vec<Tensor>) -> Result<(), TestCaseError> {
    let rows = tensors.first().and_then(|t| t.shape.first().copied());
    let split = split_wide_inputs(&specs(), &schema(), tensors.clone());
    prop_assert!(is_bad_request(&split), "{split:?}");
    if let Ok(split) = split {
        let frame = frame_from_tensors(split, &schema());
        prop_assert!(is_bad_request(&frame), "{frame:?}");
    }
    let frame = frame_from_tensors(tensors, &schema());
    prop_assert!(is_bad_request(&frame), "{frame:?}");
    if let Ok(frame) = frame {
        prop_assert_eq!(Some(frame.n_rows() as i64), rows);
    }
    Ok(())
}

fn shape() -> impl Strategy<Value = Vec<i64>> {
    let dim = prop_oneof![0..5i64, Just(-1), Just(i64::MAX), Just(1 << 62), Just(1 << 32), any::<i64>()];
    prop::collection::vec(dim, 0..4)
}

fn input_name() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("d"), Just("X"), Just("input-0")].prop_map(str::to_string)
}

/// Tensors of any shape and datatype, with as many values as the shape needs or not.
fn tensor() -> impl Strategy<Value = Tensor> {
    let data = prop_oneof![
        prop::collection::vec(any::<f64>(), 0..9).prop_map(TensorData::Numeric),
        prop::collection::vec(prop::option::of("[0-9.e-]{0,4}|\\PC{0,3}"), 0..9).prop_map(TensorData::Bytes),
    ];
    (input_name(), prop::sample::select(&DATATYPES[..]), shape(), data)
        .prop_map(|(name, datatype, shape, data)| Tensor { name, datatype: datatype.into(), shape, data })
}

/// A V2 JSON body with inputs of every datatype, values of every JSON kind, nested or flat.
fn v2_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("\"NaN\"".to_string()),
        "[a-z0-9]{0,4}".prop_map(|s| format!("{s:?}")),
        Just("1e999".to_string()),
        Just("{}".to_string()),
    ];
    let data = leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(|v| format!("[{}]", v.join(",")))
    });
    let shape = prop::collection::vec(prop_oneof![0..4i64, Just(-1), Just(i64::MAX)], 0..3);
    let input = (input_name(), prop::sample::select(&DATATYPES[..]), shape, data).prop_map(|(n, dt, shape, data)| {
        let shape = shape.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        format!(r#"{{"name":"{n}","datatype":"{dt}","shape":[{shape}],"data":{data}}}"#)
    });
    prop::collection::vec(input, 0..4).prop_map(|i| format!(r#"{{"id":"x","inputs":[{}]}}"#, i.join(",")))
}

/// `strings` as raw BYTES contents: each a 4-byte little-endian length, then the bytes.
fn raw_bytes(strings: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

fn raw_input(name: &str, datatype: &str, shape: Vec<i64>) -> InferInputTensor {
    InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape,
        parameters: Default::default(),
        contents: None,
    }
}

proptest! {
    #[test]
    fn any_body_is_a_v2_request_or_a_bad_request(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let got = v2_request(&body);
        prop_assert!(is_bad_request(&got));
    }

    #[test]
    fn v2_shaped_json_decodes_to_a_frame_or_a_bad_request(body in v2_json()) {
        let got = v2_request(body.as_bytes());
        prop_assert!(is_bad_request(&got), "{got:?}");
        if let Ok((id, tensors)) = got {
            prop_assert_eq!(id.as_deref(), Some("x"));
            check_frame(tensors)?;
        }
    }

    /// A V2 JSON input of numbers decodes to those numbers, whatever the nesting.
    #[test]
    fn v2_numbers_read_back(values in prop::collection::vec(any::<f64>().prop_filter("finite", |f| f.is_finite()), 1..8), nest in any::<bool>()) {
        let data = values.iter().map(|v| if nest { format!("[{v:?}]") } else { format!("{v:?}") }).collect::<Vec<_>>();
        let body = format!(r#"{{"inputs":[{{"name":"a","datatype":"FP64","shape":[{}],"data":[{}]}}]}}"#, values.len(), data.join(","));
        let (_, tensors) = v2_request(body.as_bytes()).unwrap();
        prop_assert_eq!(&tensors[0].data, &TensorData::Numeric(values));
    }

    #[test]
    fn any_tensors_are_a_frame_or_a_bad_request(ts in prop::collection::vec(tensor(), 0..5)) {
        check_frame(ts)?;
    }

    /// Any bytes as `raw_input_contents` of any datatype: values or a bad request; fixed-size
    /// types give one value per element size exactly when the length is a multiple of it.
    #[test]
    fn any_raw_contents_decode_or_are_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        datatype in prop::sample::select(&DATATYPES[..]),
    ) {
        let got = tensors(vec![raw_input("a", datatype, vec![bytes.len() as i64])], vec![bytes.clone()]);
        prop_assert!(is_bad_request(&got), "{got:?}");
        let size = match datatype {
            "FP64" | "INT64" | "UINT64" => Some(8),
            "FP32" | "INT32" | "UINT32" => Some(4),
            "INT16" | "UINT16" => Some(2),
            "INT8" | "UINT8" | "BOOL" => Some(1),
            _ => None,
        };
        if let Some(size) = size {
            match &got {
                Ok(t) => prop_assert_eq!(t[0].data.len() * size, bytes.len()),
                Err(_) => prop_assert!(!bytes.len().is_multiple_of(size)),
            }
        }
        if let Ok(t) = got {
            check_frame(t)?;
        }
    }

    #[test]
    fn raw_bytes_and_integers_read_back(strings in prop::collection::vec("\\PC{0,6}", 0..6), ints in prop::collection::vec(any::<i32>(), 0..6)) {
        let got = tensors(
            vec![raw_input("c", "BYTES", vec![strings.len() as i64]), raw_input("a", "INT32", vec![ints.len() as i64])],
            vec![raw_bytes(&strings), ints.iter().flat_map(|i| i.to_le_bytes()).collect()],
        )
        .unwrap();
        prop_assert_eq!(&got[0].data, &TensorData::Bytes(strings.into_iter().map(Some).collect()));
        prop_assert_eq!(&got[1].data, &TensorData::Numeric(ints.into_iter().map(f64::from).collect()));
    }

    /// Any bytes as a gRPC `ModelInferRequest`: a message whose inputs decode to a frame, or
    /// a bad request.
    #[test]
    fn any_grpc_message_decodes_or_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(req) = ModelInferRequest::decode(&bytes[..]) {
            let got = tensors(req.inputs, req.raw_input_contents);
            prop_assert!(is_bad_request(&got), "{got:?}");
            if let Ok(t) = got {
                check_frame(t)?;
            }
        }
    }

    /// Typed contents in any field for any datatype: values or a bad request.
    #[test]
    fn any_typed_contents_decode_or_are_refused(
        datatype in prop::sample::select(&DATATYPES[..]),
        ints in prop::collection::vec(any::<i32>(), 0..4),
        fps in prop::collection::vec(any::<f64>(), 0..4),
        bytes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..4), 0..4),
        shape in shape(),
    ) {
        let contents = InferTensorContents { int_contents: ints, fp64_contents: fps, bytes_contents: bytes, ..Default::default() };
        let input = InferInputTensor { contents: Some(contents), ..raw_input("a", datatype, shape) };
        let got = tensors(vec![input], Vec::new());
        prop_assert!(is_bad_request(&got), "{got:?}");
        if let Ok(t) = got {
            check_frame(t)?;
        }
    }
}

/// The wide-input split checked the row count with a multiplication that wrapped: `X` with
/// shape `[2^62, 4]` and no values passed (2^62 × 4 = 2^64 ≡ 0) and then indexed past the
/// data. Found by `any_tensors_are_a_frame_or_a_bad_request`'s shapes.
#[test]
fn wide_input_row_count_cannot_wrap() {
    let spec = TensorSpec { name: "X".into(), elem: ElemType::F32, shape: vec![-1, 4] };
    let schema = Schema {
        fields: ["a", "b", "c", "d"].iter().map(|n| Field { name: (*n).into(), kind: ColumnKind::Numeric }).collect(),
    };
    let t = Tensor {
        name: "X".into(),
        datatype: "FP32".into(),
        shape: vec![1 << 62, 4],
        data: TensorData::Numeric(vec![]),
    };
    let got = split_wide_inputs(&[spec], &schema, vec![t]);
    assert!(matches!(got, Err(ServeError::Invalid(m)) if m.contains("the model takes [n, 4]")));
}
