//! Integration tests: the real gateway (`gateway::run`) on `127.0.0.1:0` in front of real
//! serving upstreams (`serving::run`, what `factory serve` runs) on port 0, driven over
//! HTTP/1.1 (reqwest), HTTP/2 (hyper, prior knowledge) and gRPC (the tonic clients).
//! The process-level acceptance test (two `factory serve`, `factory gateway`, `factory
//! deploy`, 50 switches under load) is in `crates/factory/tests/gateway.rs`.

mod admin;
mod canary;
mod proxy;
mod support;
