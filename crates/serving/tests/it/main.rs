//! Integration tests: the real server (`serving::run`) on `127.0.0.1:0`, driven over HTTP
//! (reqwest) and gRPC (the generated tonic clients), with small models trained here.

mod classifier;
mod grpc;
mod http;
mod reload;
mod request_log;
mod support;
