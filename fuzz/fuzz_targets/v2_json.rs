//! Open Inference Protocol V2 REST bodies (JSON): decoded to tensors, split for an ONNX
//! model's wide inputs and turned into a frame for a mixed schema, or refused as a bad
//! request (400), never a panic or a server error.
#![no_main]

use common::{check_frame, is_bad_request};
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let got = serving::http::v2_request(data);
    assert!(is_bad_request(&got), "{got:?}");
    if let Ok((_, tensors)) = got {
        check_frame(tensors);
    }
});
