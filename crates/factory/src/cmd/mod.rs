//! One module per subcommand: flag definitions and the glue that calls the library crates.

pub mod admin_token;
pub mod closed_loop;
pub mod db;
pub mod demo;
pub mod deploy;
pub mod drift;
pub mod gateway;
pub mod limits;
pub mod metrics;
pub mod pipeline;
pub mod predict;
pub mod serve;
pub mod server;
pub mod train;
pub mod ui;

/// Where datasets are cached: `--cache-dir`, else `$XDG_CACHE_HOME/factory/datasets`, else
/// `~/.cache/factory/datasets` (the libraries take the folder as an argument).
pub fn datasets_cache_dir(flag: Option<&std::path::Path>) -> std::path::PathBuf {
    match flag {
        Some(dir) => dir.to_path_buf(),
        None => cache_dir("datasets"),
    }
}

/// `$XDG_CACHE_HOME/factory/<name>`, else `~/.cache/factory/<name>`.
pub fn cache_dir(name: &str) -> std::path::PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("factory").join(name)
}

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
