//! ONNX Runtime's shared library for tests that run ONNX models: `ORT_DYLIB_PATH`, which
//! `scripts/test.sh` points at the `onnxruntime` wheel of its models venv.

use std::path::PathBuf;

/// The runtime library's path; panics saying how to set it when unset.
pub fn runtime_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).expect(
        "set ORT_DYLIB_PATH to ONNX Runtime's libonnxruntime.so (scripts/test.sh uses the one in the onnxruntime wheel \
         of ~/.cache/factory/venv-models)",
    )
}
