//! Open Inference Protocol V2 gRPC requests: any bytes as a `ModelInferRequest` protobuf,
//! its typed `contents` and `raw_input_contents` decoded to tensors and a frame, or refused
//! as `INVALID_ARGUMENT`, never a panic.
#![no_main]

use common::{check_frame, is_bad_request};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serving::proto::inference::ModelInferRequest;

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ModelInferRequest::decode(data) else { return };
    let got = serving::grpc::tensors(req.inputs, req.raw_input_contents);
    assert!(is_bad_request(&got), "{got:?}");
    if let Ok(tensors) = got {
        check_frame(tensors);
    }
});
