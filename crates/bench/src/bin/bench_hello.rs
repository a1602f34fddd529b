//! `bench-hello`: the floor for an HTTP server on this machine — axum answering `GET /` with
//! "Hello, World!" on tokio's multi-threaded runtime with its defaults (one worker per core),
//! as `factory serve` runs by default. `bench/serving/hello.py` drives it and `factory serve`
//! with the same wrk command and reports serve's throughput as a share of this one's.

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8099")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await.context("serving")
}
