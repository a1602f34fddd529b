//! The formats against real runtimes: factory models exported to ONNX and run by ONNX Runtime
//! (the library from `ORT_DYLIB_PATH`, which `scripts/test.sh` points at the `onnxruntime`
//! wheel in its test venv) give `learn::Model::predict`'s numbers; models the runtime cannot
//! run are refused at load with the operator named.

mod export;

/// Points `formats::onnx` at the runtime library named by `ORT_DYLIB_PATH` (only the first
/// call of the process sets it).
pub fn runtime() {
    formats::onnx::set_runtime_library(testkit::onnx::runtime_library());
}
