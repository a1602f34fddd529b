//! `factory gateway`: the blue-green front — one port for HTTP/1.1, HTTP/2 and gRPC, a blue
//! and a green upstream, an admin API on a second port, state and audit log on disk. Flags
//! only; the server is `gateway::run`.

use anyhow::Context;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// Address for traffic (HTTP/1.1, HTTP/2 and gRPC on one port).
    #[arg(long, default_value = "127.0.0.1:50050")]
    pub listen: String,
    /// Blue upstream (`factory serve` with HTTP and gRPC on one port), host:port.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub blue: String,
    /// Green upstream, host:port.
    #[arg(long, default_value = "127.0.0.1:50052")]
    pub green: String,
    /// Address of the admin API (`factory deploy` talks to it).
    #[arg(long, default_value = "127.0.0.1:50049")]
    pub admin: String,
    /// Routing state (JSON, replaced atomically); the audit log `<stem>.audit.jsonl` sits next to it.
    #[arg(long, default_value = "gateway-state.json")]
    pub state_file: PathBuf,
    /// Failed requests in a row that mark an upstream unhealthy.
    #[arg(long, default_value_t = 5)]
    pub failure_threshold: u32,
    /// Switch away (health-gated) when the active colour is marked unhealthy.
    #[arg(long)]
    pub auto_failover: bool,
    /// How long a switch waits for requests in flight on the old colour (and shutdown for all).
    #[arg(long, default_value_t = 30)]
    pub drain_timeout_secs: u64,
    /// Timeout of each health-gate probe (milliseconds).
    #[arg(long, default_value_t = 2000)]
    pub health_timeout_ms: u64,
    /// Data-plane worker threads, each with its own event loop (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Who admin operations are attributed to in the audit log when the admin API has no
    /// tokens (with tokens: the token's name).
    #[arg(long, env = "USER", default_value = "unknown")]
    pub who: String,
    #[command(flatten)]
    pub metrics: super::metrics::MetricsListen,
    /// Longest wait for an upstream's response head; a timeout counts against its passive health
    /// (as connect errors and 5xx do; a caller hanging up does not).
    #[arg(long, default_value_t = 60)]
    pub upstream_timeout_secs: u64,
    /// Shadow mode copies only requests with bodies up to this size (they are buffered).
    #[arg(long, default_value_t = 256 * 1024)]
    pub shadow_max_body_bytes: usize,
    /// Most shadow copies in flight; past it requests go without a copy (counted as dropped).
    #[arg(long, default_value_t = 64)]
    pub shadow_max_in_flight: usize,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    #[command(flatten)]
    pub admin_token: super::admin_token::AdminTokenArgs,
}

pub fn run(args: GatewayArgs) -> anyhow::Result<u8> {
    let mut settings = gateway::Settings::new(args.blue.clone(), args.green.clone());
    settings.state_file = Some(args.state_file.clone());
    settings.failure_threshold = args.failure_threshold.max(1);
    settings.auto_failover = args.auto_failover;
    settings.drain_timeout = Duration::from_secs(args.drain_timeout_secs);
    settings.health_timeout = Duration::from_millis(args.health_timeout_ms.max(1));
    settings.who = args.who.clone();
    settings.workers = args.threads;
    settings.limits = args.limits.limits()?;
    if args.upstream_timeout_secs == 0 || args.shadow_max_in_flight == 0 {
        anyhow::bail!("--upstream-timeout-secs and --shadow-max-in-flight must be positive");
    }
    settings.upstream_timeout = Duration::from_secs(args.upstream_timeout_secs);
    settings.shadow_max_body_bytes = args.shadow_max_body_bytes;
    settings.shadow_max_in_flight = args.shadow_max_in_flight;
    settings.admin_tokens = args.admin_token.tokens()?;
    // The control plane (accept, admin API, health checks) needs one thread; the data plane
    // runs on its own workers.
    let runtime = super::runtime(1)?;
    runtime.block_on(async {
        let gw = gateway::Gateway::new(settings)?;
        let registry = std::sync::Arc::new(gateway::metrics::registry(gw.clone()));
        args.metrics.start(std::sync::Arc::new(move || exposition::encode(&registry)), args.limits.limits()?).await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding the gateway to {}", args.listen))?;
        let admin = tokio::net::TcpListener::bind(&args.admin)
            .await
            .with_context(|| format!("binding the admin API to {}", args.admin))?;
        super::admin_token::check_bind(admin.local_addr()?, gw.settings.admin_tokens.as_ref(), "gateway admin API")?;
        let st = gw.status();
        tracing::info!(
            "gateway on {}, admin on {}: blue {} green {}, active {}",
            listener.local_addr()?,
            admin.local_addr()?,
            args.blue,
            args.green,
            st.active
        );
        gateway::run(gw, listener, admin, super::shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(0)
    })
}
