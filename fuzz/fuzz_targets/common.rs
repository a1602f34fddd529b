//! What the serving targets share: a schema with numeric and categorical columns, an ONNX
//! model's inputs over it, and the checks from tensors to a frame.
#![allow(dead_code)]

use formats::{ElemType, TensorSpec};
use learn::{ColumnKind, Field, Schema};
use serving::tensor::{frame_from_tensors, split_wide_inputs, Tensor};
use serving::ServeError;

pub const DATATYPES: [&str; 14] = [
    "FP64", "FP32", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8", "BOOL", "BYTES", "FP16",
    "",
];

pub fn schema() -> Schema {
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

/// An ONNX model's inputs over [`schema`]: `X` spans a and b; `c` and `d` are one column each.
pub fn specs() -> Vec<TensorSpec> {
    let spec = |name: &str, shape: Vec<i64>| TensorSpec { name: name.into(), elem: ElemType::F32, shape };
    vec![spec("X", vec![-1, 2]), spec("c", vec![-1, 1]), spec("d", vec![-1])]
}

/// A refusal the client can fix (400 / INVALID_ARGUMENT), not a server error.
pub fn is_bad_request<T>(r: &Result<T, ServeError>) -> bool {
    matches!(r, Ok(_) | Err(ServeError::Malformed(_)) | Err(ServeError::Invalid(_)))
}

/// Tensors to a frame, as a plain model and as an ONNX model take them.
pub fn check_frame(tensors: Vec<Tensor>) {
    let rows = tensors.first().and_then(|t| t.shape.first().copied());
    let split = split_wide_inputs(&specs(), &schema(), tensors.clone());
    assert!(is_bad_request(&split), "{split:?}");
    if let Ok(split) = split {
        let frame = frame_from_tensors(split, &schema());
        assert!(is_bad_request(&frame), "{frame:?}");
    }
    let frame = frame_from_tensors(tensors, &schema());
    assert!(is_bad_request(&frame), "{frame:?}");
    if let Ok(frame) = frame {
        assert_eq!(Some(frame.n_rows() as i64), rows);
    }
}
