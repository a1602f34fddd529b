//! One module per subcommand: flag definitions and the glue that calls the library crates.

pub mod closed_loop;
pub mod demo;
pub mod deploy;
pub mod drift;
pub mod gateway;
pub mod pipeline;
pub mod predict;
pub mod serve;
pub mod server;
pub mod train;

/// The async runtime of a long-running subcommand: `threads` workers (0 = one per core).
pub fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder.enable_all().build().context("starting the async runtime")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: every server's graceful-shutdown trigger.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
