//! Compiles `proto/*.proto` with the pure-Rust `protox` compiler (no `protoc` needed) and
//! generates the tonic servers and clients from the resulting descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/grpc_predict_v2.proto", "proto/health.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    // Our codec: prost's, with undecodable messages answered INVALID_ARGUMENT (`grpc::Codec`).
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .codec_path("crate::grpc::Codec")
        .compile_fds(fds)?;
    Ok(())
}
