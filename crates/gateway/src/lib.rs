//! The blue-green gateway behind `factory gateway`.
//!
//! ```text
//!  clients ──HTTP/1.1, h2c, gRPC──▶ listen port ── proxy.rs ──┬─ h2 client ────▶ blue  (serve: HTTP+gRPC, one port)
//!                                      │  reads RoutingState  └─ http1 client ─▶ green
//!                                      │  once per request (ArcSwap, no lock)
//!  factory deploy ──JSON──▶ admin port ── admin.rs ──▶ control::Gateway ── health.rs (gRPC + /health gate)
//!                                                      │ switch/rollback/weights/shadow, one at a time
//!                                                      ├─ state.rs  state file (temp + fsync + rename)
//!                                                      ├─ audit.rs  append-only JSON Lines
//!                                                      └─ upstream.rs counters, passive health, in flight
//! ```
//!
//! [`run`] is the whole server as a library function: it takes the bound listen and admin
//! listeners and a shutdown future, so the binary only parses flags and binds, and tests run
//! the real thing on port 0.
//!
//! Architecture Invariant: a switch never touches a request in flight. A request picks its
//! colour once, when it arrives; a switch changes what *new* requests pick, then waits for
//! the old colour's requests (bodies and trailers included) to finish, and ends them only
//! when the drain timeout passes.
//!
//! Architecture Invariant: the routing state is persisted before it takes effect; a switch
//! that could not be written did not happen.
//!
//! Architecture Invariant: every operation, refused ones included, is appended to the audit
//! log; nothing rewrites it.

pub mod admin;
pub mod audit;
pub mod client;
pub mod control;
pub mod error;
pub mod health;
pub mod metrics;
pub mod proxy;
pub mod state;
pub mod upstream;

pub use audit::AuditRecord;
pub use control::{Gateway, Settings, Status, SwitchOutcome, SwitchRequest};
pub use error::{GatewayError, RunError};
pub use state::{Colour, RoutingState, Weights};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves the proxy on `listener` and the admin API on `admin` until `shutdown` completes,
/// then stops accepting, lets requests in flight finish (up to the drain timeout) and returns.
pub async fn run(
    gw: Arc<Gateway>,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut admin_stop = stop_rx.clone();
    let admin_router = admin::router(gw.clone());
    let admin_task = tokio::spawn(async move {
        axum::serve(admin, admin_router)
            .with_graceful_shutdown(async move {
                let _ = admin_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let poller = {
        let gw = gw.clone();
        let every = gw.settings.version_poll;
        tokio::spawn(async move {
            loop {
                gw.refresh_versions().await;
                if every.is_zero() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer turns on HTTP/1 header-read timeouts (slow clients) and HTTP/2 keep-alive.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(1024);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        let conn = builder
            .serve_connection(TokioIo::new(stream), service_fn(move |req| proxy::handle(gw.clone(), req)))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    tracing::info!("shutting down: finishing requests in flight");
    drop(listener);
    poller.abort();
    stop_tx.send_replace(true);
    if tokio::time::timeout(gw.settings.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {:?}; closing their connections", gw.settings.drain_timeout);
    }
    let admin_result = match tokio::time::timeout(Duration::from_secs(5), admin_task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Ok(()),
    };
    admin_result.map_err(RunError::Admin)
}
