//! `--metrics-listen ADDR` (env `FACTORY_METRICS_LISTEN`), shared by every long-running
//! subcommand: a separate listener serving `GET /metrics` and nothing else (docs/metrics.md).

use anyhow::Context;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetricsListen {
    /// Serve Prometheus metrics (`GET /metrics`, nothing else: no token, no Host check) on
    /// this address, e.g. 0.0.0.0:9464.
    #[arg(long, env = "FACTORY_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

impl MetricsListen {
    /// Starts the listener when an address is given (call inside the runtime), with the same
    /// limits as the process's other listeners.
    pub async fn start(&self, render: exposition::Render, limits: listener::Limits) -> anyhow::Result<()> {
        if let Some(addr) = self.metrics_listen.as_deref().filter(|a| !a.is_empty()) {
            exposition::spawn(addr, render, limits)
                .await
                .with_context(|| format!("binding --metrics-listen {addr}"))?;
        }
        Ok(())
    }
}
