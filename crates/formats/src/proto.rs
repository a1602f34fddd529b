//! The ONNX protobuf messages, generated from `proto/onnx.proto` by `build.rs`.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
