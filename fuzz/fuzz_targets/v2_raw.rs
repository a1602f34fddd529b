//! V2 binary tensors (`raw_input_contents`: little-endian, row-major, BYTES
//! length-prefixed) without the protobuf around them: the first byte picks the datatype and
//! the row count, the rest are the contents. Values or a bad request, never a panic.
#![no_main]

use common::{check_frame, is_bad_request, DATATYPES};
use libfuzzer_sys::fuzz_target;
use serving::proto::inference::model_infer_request::InferInputTensor;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&head, raw)) = data.split_first() else { return };
    let datatype = DATATYPES[head as usize % DATATYPES.len()];
    let size = match datatype {
        "FP64" | "INT64" | "UINT64" => 8,
        "FP32" | "INT32" | "UINT32" => 4,
        "INT16" | "UINT16" => 2,
        _ => 1,
    };
    // Rows: as many as the bytes hold, or one of a few wrong counts.
    let rows = match head / 16 {
        0 => 0,
        1 => -1,
        2 => i64::MAX,
        _ => (raw.len() / size) as i64,
    };
    let name = ["a", "c", "X", "input-0"][(head as usize / 4) % 4];
    let input = InferInputTensor {
        name: name.into(),
        datatype: datatype.into(),
        shape: vec![rows],
        parameters: Default::default(),
        contents: None,
    };
    let got = serving::grpc::tensors(vec![input], vec![raw.to_vec()]);
    assert!(is_bad_request(&got), "{got:?}");
    if let Ok(tensors) = got {
        check_frame(tensors);
    }
});
