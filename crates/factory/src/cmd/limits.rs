//! The connection limits every listening subcommand takes (`server`, `serve`, `gateway`):
//! one set of flags, validated once into `listener::Limits`.

use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Seconds a client has to send a whole request head (from connecting, or from the first
    /// byte of a later request on a kept-alive connection); slow clients are disconnected.
    #[arg(long, default_value_t = 30)]
    pub header_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle between requests.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Seconds to wait for the next chunk of a request body.
    #[arg(long, default_value_t = 60)]
    pub body_timeout_secs: u64,
    /// Largest request head (request line and headers; HTTP/2 header list), bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Most connections served at once; at the limit new ones wait in the listen backlog.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds between HTTP/2 PINGs (gRPC keepalive; a peer that does not answer within 20 s
    /// is dropped); 0 = none.
    #[arg(long, default_value_t = 30)]
    pub grpc_keepalive_secs: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> anyhow::Result<listener::Limits> {
        let limits = listener::Limits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            http2_keepalive: (self.grpc_keepalive_secs > 0).then(|| Duration::from_secs(self.grpc_keepalive_secs)),
        };
        limits.validate().map_err(anyhow::Error::msg)?;
        Ok(limits)
    }
}
