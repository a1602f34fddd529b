//! The server: [`run`] serves HTTP and gRPC on the listeners it is given (one listener
//! serves both when no gRPC listener is given), loads the first model, polls for new
//! versions, and on `shutdown` stops gracefully — readiness turns false, health watches
//! end, requests in flight finish (up to the grace period), then the request log is
//! written out and fsynced.

use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::RunError;
use crate::service::Serving;
use crate::{grpc, http};

fn spawn_server(
    listener: TcpListener,
    name: &'static str,
    app: &Serving,
    router: impl listener::Routes,
    stop: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let limits = app.limits.clone();
    let grace = app.shutdown_grace;
    tokio::spawn(async move {
        let mut stop = stop;
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        listener::serve_router(listener, name, &limits, router, stopped, Some(grace)).await
    })
}

/// The listeners of one serve process.
pub struct Listeners {
    /// MLflow scoring, V2 REST, `/health`, `/metrics` (and gRPC when `grpc` is `None`).
    pub http: TcpListener,
    pub grpc: Option<TcpListener>,
    /// `/admin/*` (reload); without it there is no admin plane.
    pub admin: Option<TcpListener>,
}

/// Serves until `shutdown` completes. `grpc: None` multiplexes gRPC onto the HTTP listener.
pub async fn run(
    app: Arc<Serving>,
    http_listener: TcpListener,
    grpc_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_with(app, Listeners { http: http_listener, grpc: grpc_listener, admin: None }, shutdown).await
}

/// [`run`] with every listener, the admin one included.
pub async fn run_with(
    app: Arc<Serving>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let Listeners { http: http_listener, grpc: grpc_listener, admin } = listeners;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    if let Some(a) = admin {
        servers.push(spawn_server(a, "serve admin", &app, http::admin_router(app.clone()), stop_rx.clone()));
    }
    match grpc_listener {
        Some(g) => {
            let public = http::refuse_oversized(app.clone(), http::router(app.clone()));
            servers.push(spawn_server(http_listener, "serve HTTP", &app, public, stop_rx.clone()));
            servers.push(spawn_server(g, "serve gRPC", &app, grpc::router(app.clone()), stop_rx.clone()));
        }
        None => {
            let both = http::refuse_oversized(app.clone(), grpc::add_routes(http::router(app.clone()), app.clone()));
            servers.push(spawn_server(http_listener, "serve", &app, both, stop_rx.clone()));
        }
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let first = tokio::select! {
        r = app.load_initial() => Some(r),
        _ = &mut shutdown => None,
    };
    let result = match first {
        Some(Err(e)) => Err(RunError::Load(e)),
        Some(Ok(())) => {
            let poller = app.poll_interval.map(|every| tokio::spawn(app.reloader.clone().poll(every, app.stopping())));
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            if let Some(p) = poller {
                p.abort();
            }
            Ok(())
        }
        None => Ok(()),
    };
    app.begin_shutdown();
    stop_tx.send_replace(true);
    for mut s in servers {
        match tokio::time::timeout(app.shutdown_grace, &mut s).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!("server stopped with an error: {e}"),
            Ok(Err(e)) => tracing::error!("server task failed: {e}"),
            Err(_) => {
                tracing::warn!("requests still running after {:?}; closing their connections", app.shutdown_grace);
                s.abort();
            }
        }
    }
    let log = app.clone();
    let closed = tokio::task::spawn_blocking(move || log.close_request_log()).await;
    match closed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("closing the request log: {e}"),
        Err(e) => tracing::error!("closing the request log: {e}"),
    }
    result
}
