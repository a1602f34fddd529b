//! The blue-green gateway behind `factory gateway`.
//!
//! ```text
//!  clients ──HTTP/1.1, h2c, gRPC──▶ listen port ── proxy.rs ──┬─ h2 client ────▶ blue  (serve: HTTP+gRPC, one port)
//!                                      │  reads RoutingState  └─ http1 client ─▶ green
//!                                      │  once per request (ArcSwap, no lock)
//!  factory deploy ──JSON──▶ admin port ── admin.rs ──▶ control::Gateway ── health.rs (gRPC + /health gate)
//!                                                      │ switch/rollback/weights/shadow, one at a time
//!                                                      ├─ canary.rs steps judged on the counters below
//!                                                      ├─ state.rs  state file (temp + fsync + rename)
//!                                                      ├─ audit.rs  append-only JSON Lines
//!                                                      └─ upstream.rs counters, passive health, in flight
//! ```
//!
//! [`run`] is the whole server as a library function: it takes the bound listen and admin
//! listeners and a shutdown future, so the binary only parses flags and binds, and tests run
//! the real thing on port 0. The control plane (accept, admin, health checks) runs on the
//! caller's runtime; each accepted connection is handed, round robin, to one of the data-plane
//! workers — a thread with its own current-thread runtime and upstream clients — and stays
//! there, so a request and its upstream call never wake another thread.
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
pub mod canary;
pub mod client;
pub mod control;
pub mod difference;
pub mod error;
pub mod health;
pub mod metrics;
pub mod proxy;
pub mod state;
pub mod upstream;

pub use audit::AuditRecord;
pub use control::{Gateway, Settings, SwitchRequest};
pub use error::{GatewayError, RunError};
pub use state::{Colour, RoutingState, Weights};

use hyper::service::service_fn;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use client::Clients;
use proxy::Worker;

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
    let limits = gw.settings.limits.clone();
    let admin_task = tokio::spawn(async move {
        let stopped = async move {
            let _ = admin_stop.wait_for(|s| *s).await;
        };
        listener::serve_router(admin, "gateway admin", &limits, admin_router, stopped, None).await
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
    let workers = match gw.settings.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut handoff = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for i in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        let worker = Arc::new(Worker { gw: gw.clone(), clients: Clients::new(), control: Handle::current() });
        let drain = gw.settings.drain_timeout;
        std::thread::Builder::new()
            .name(format!("gateway-worker-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(serve_connections(worker, rx, drain)));
                let _ = done_tx.send(result);
            })
            .map_err(RunError::Worker)?;
        handoff.push(tx);
        finished.push(done_rx);
    }
    let listener = listener::Acceptor::new(listener, &gw.settings.limits, "gateway");
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let stream = match accepted.detach() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("handing an accepted connection over failed: {e}");
                continue;
            }
        };
        // Round robin over the workers still running; a connection stays on its worker until it closes.
        let mut stream = Some(stream);
        for _ in 0..workers {
            next = (next + 1) % workers;
            match handoff[next].send(stream.take().expect("one stream per attempt")) {
                Ok(()) => break,
                Err(mpsc::error::SendError(s)) => stream = Some(s),
            }
        }
        if stream.is_some() {
            return Err(RunError::Worker(std::io::Error::other("every data-plane worker has stopped")));
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    drop(listener);
    drop(handoff);
    poller.abort();
    stop_tx.send_replace(true);
    for done in finished {
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(RunError::Worker(e)),
            Err(_) => tracing::warn!("a gateway worker ended abnormally"),
        }
    }
    let admin_result = match tokio::time::timeout(Duration::from_secs(5), admin_task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(std::io::Error::other(e)),
        Err(_) => Ok(()),
    };
    admin_result.map_err(RunError::Admin)
}

/// One data-plane worker: serves the connections handed to it on its own event loop until the
/// hand-off channel closes (shutdown), then lets their requests finish, up to `drain`.
async fn serve_connections(
    worker: Arc<Worker>,
    mut incoming: mpsc::UnboundedReceiver<listener::Detached>,
    drain: Duration,
) {
    let conns = listener::Connections::new(&worker.gw.settings.limits);
    while let Some(conn) = incoming.recv().await {
        let conn = match conn.attach() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("registering an accepted connection failed: {e}");
                continue;
            }
        };
        let w = worker.clone();
        conns.spawn(conn, service_fn(move |req| proxy::handle(w.clone(), req)));
    }
    if !conns.shutdown(Some(drain)).await {
        tracing::warn!("requests still in flight after {drain:?}; closing their connections");
    }
}
