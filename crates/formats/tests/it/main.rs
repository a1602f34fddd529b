//! The formats against real runtimes: factory models exported to ONNX and run by ONNX Runtime
//! (the library from `ORT_DYLIB_PATH`, which `scripts/test.sh` points at the `onnxruntime`
//! wheel in its test venv) give `learn::Model::predict`'s numbers; models the runtime cannot
//! run are refused at load with the operator named.

mod export;

use std::path::PathBuf;
use std::sync::Once;

/// Points `formats::onnx` at the runtime library named by `ORT_DYLIB_PATH`.
pub fn runtime() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let path = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).expect(
            "set ORT_DYLIB_PATH to ONNX Runtime's libonnxruntime.so (scripts/test.sh uses the one in the onnxruntime \
             wheel of ~/.cache/factory/venv-models)",
        );
        formats::onnx::set_runtime_library(path);
    });
}
