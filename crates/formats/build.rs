//! Compiles `proto/onnx.proto` into prost messages with the pure-Rust `protox` compiler (no
//! `protoc` needed), as `crates/serving/build.rs` does for its protos.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let fds = protox::compile(["proto/onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
