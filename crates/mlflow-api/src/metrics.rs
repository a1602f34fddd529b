//! Prometheus metrics of `factory server` (`prometheus-client`; names and labels are the
//! contract in docs/metrics.md):
//!
//! - `mlflow_http_request_total{method,status}` and `mlflow_http_request_duration_seconds`
//!   `{method,status,mlflow_version}`, as `mlflow server --expose-prometheus` names them
//!   (every answered request except `/health` and `/version`);
//! - `factory_server_requests_total{method,route,status}` and
//!   `factory_server_request_duration_seconds{method,route}` per matched route pattern
//!   (`unmatched` for the fallback);
//! - the store's pools, group commit and run cache ([`tracking::stats`]), read at scrape time;
//! - `factory_server_auth_failures_total{reason}` and
//!   `factory_server_guard_refusals_total{check}`: the auth layer and the guard tag the
//!   responses they refuse with [`AuthRefusal`] / [`GuardRefusal`], and [`layer`] counts them.
//!
//! [`layer`] must wrap everything else (the guard included) so that it sees every answer.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use exposition::prometheus_client::collector::Collector;
use exposition::prometheus_client::encoding::DescriptorEncoder;
use exposition::prometheus_client::metrics::counter::Counter;
use exposition::prometheus_client::metrics::family::Family;
use exposition::prometheus_client::metrics::histogram::Histogram;
use exposition::Registry;

use crate::version::MLFLOW_VERSION;

/// Why the auth layer refused a request (a response extension).
#[derive(Clone, Copy, Debug)]
pub struct AuthRefusal(pub &'static str);

/// Which check of the guard refused a request (a response extension).
#[derive(Clone, Copy, Debug)]
pub struct GuardRefusal(pub &'static str);

/// `reason` values of `factory_server_auth_failures_total`.
pub const AUTH_REASONS: [&str; 4] = ["missing", "bad_credentials", "locked_out", "denied"];
/// `check` values of `factory_server_guard_refusals_total`.
pub const GUARD_CHECKS: [&str; 3] = ["host", "cors_preflight", "cors_block"];

type Labels<const N: usize> = [(&'static str, String); N];
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// 0.5 ms … 10 s.
fn route_histogram() -> Histogram {
    Histogram::new(tracking::stats::DURATION_BUCKETS)
}

/// Prometheus client's default buckets (what MLflow's exporter uses).
fn default_histogram() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

/// The server's metrics and the registry they are encoded from.
pub struct ServerMetrics {
    registry: Registry,
    mlflow_requests: Family<Labels<2>, Counter>,
    mlflow_latency: Histograms<3>,
    requests: Family<Labels<3>, Counter>,
    latency: Histograms<2>,
    auth_failures: Family<Labels<1>, Counter>,
    guard_refusals: Family<Labels<1>, Counter>,
    /// Paths MLflow's exporter leaves out (`/health`, `/version`, under the static prefix).
    excluded: [String; 2],
}

impl fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerMetrics")
    }
}

/// The store's figures, read at scrape time.
struct StoreCollector(Arc<tracking::Store>);

impl fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let pools = self.0.pool_stats();
        let mut connections = Vec::new();
        for p in &pools {
            connections.push(([("pool", p.pool), ("state", "idle")], i64::from(p.idle)));
            connections.push(([("pool", p.pool), ("state", "in_use")], i64::from(p.in_use)));
        }
        exposition::gauge(&mut e, "factory_server_db_pool_connections", "Connections of each pool", connections)?;
        exposition::gauge(
            &mut e,
            "factory_server_db_pool_max_connections",
            "Pool size limit",
            pools.iter().map(|p| ([("pool", p.pool)], i64::from(p.max))),
        )?;
        let s = self.0.stats();
        exposition::counter(
            &mut e,
            "factory_server_run_cache_requests",
            "Run-cache look-ups (stale: an older data_version was cached)",
            [
                ([("result", "hit")], s.run_cache_hits.get()),
                ([("result", "miss")], s.run_cache_misses.get()),
                ([("result", "stale")], s.run_cache_stale.get()),
            ],
        )?;
        exposition::gauge_value(
            &mut e,
            "factory_server_run_cache_bytes",
            "Bytes held by the run cache (estimated; limit 32 MiB)",
            self.0.run_cache_bytes(),
        )
    }
}

impl ServerMetrics {
    /// The metrics of a server over `store` (its figures are read at scrape time);
    /// `static_prefix` as given to `--static-prefix`.
    pub fn new(store: Arc<tracking::Store>, static_prefix: Option<&str>) -> Arc<ServerMetrics> {
        let mut registry = exposition::registry("server");
        let m = ServerMetrics {
            registry: Registry::default(),
            mlflow_requests: Family::default(),
            mlflow_latency: Family::new_with_constructor(default_histogram as fn() -> Histogram),
            requests: Family::default(),
            latency: Family::new_with_constructor(route_histogram as fn() -> Histogram),
            auth_failures: Family::default(),
            guard_refusals: Family::default(),
            excluded: {
                let prefix = static_prefix.unwrap_or("").trim_end_matches('/');
                [format!("{prefix}/health"), format!("{prefix}/version")]
            },
        };
        for reason in AUTH_REASONS {
            let _ = m.auth_failures.get_or_create(&[("reason", reason.into())]);
        }
        for check in GUARD_CHECKS {
            let _ = m.guard_refusals.get_or_create(&[("check", check.into())]);
        }
        // One `register` per family, each a different metric (name, help text, type): the calls
        // look alike because that is the registry's API, not because they repeat logic.
        registry.register(
            "mlflow_http_request",
            "Requests answered, except /health and /version (as mlflow server --expose-prometheus)",
            m.mlflow_requests.clone(),
        );
        registry.register(
            "mlflow_http_request_duration_seconds",
            "Request duration (as mlflow server --expose-prometheus)",
            m.mlflow_latency.clone(),
        );
        registry.register(
            "factory_server_requests",
            "Requests by method, route pattern and status",
            m.requests.clone(),
        );
        registry.register(
            "factory_server_request_duration_seconds",
            "Time to the response head, by method and route pattern",
            m.latency.clone(),
        );
        registry.register(
            "factory_server_auth_failures",
            "Requests refused by --app-name basic-auth, by reason",
            m.auth_failures.clone(),
        );
        registry.register(
            "factory_server_guard_refusals",
            "Requests refused by --allowed-hosts / --cors-allowed-origins, by check",
            m.guard_refusals.clone(),
        );
        let s = store.stats();
        registry.register(
            "factory_server_group_commit_batches",
            "Group-commit transactions of log-metric",
            s.group_commit_batches.clone(),
        );
        registry.register(
            "factory_server_group_commit_batch_metrics",
            "Metrics written per group commit",
            s.group_commit_batch_metrics.clone(),
        );
        registry.register(
            "factory_server_group_commit_duration_seconds",
            "One group commit, from dequeue to commit",
            s.group_commit_duration.clone(),
        );
        registry.register(
            "factory_server_group_commit_queue_depth",
            "log-metric calls waiting for the writer",
            s.group_commit_queue_depth.clone(),
        );
        registry.register_collector(Box::new(StoreCollector(store)));
        Arc::new(ServerMetrics { registry, ..m })
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        exposition::encode(&self.registry)
    }

    fn observe(&self, method: &str, path: &str, route: &str, resp: &Response, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        let status = resp.status().as_str().to_string();
        self.requests
            .get_or_create(&[("method", method.into()), ("route", route.into()), ("status", status.clone())])
            .inc();
        self.latency.get_or_create(&[("method", method.into()), ("route", route.into())]).observe(elapsed);
        if !self.excluded.iter().any(|p| p == path) {
            self.mlflow_requests.get_or_create(&[("method", method.into()), ("status", status.clone())]).inc();
            self.mlflow_latency
                .get_or_create(&[
                    ("method", method.into()),
                    ("status", status),
                    ("mlflow_version", MLFLOW_VERSION.into()),
                ])
                .observe(elapsed);
        }
        if let Some(AuthRefusal(reason)) = resp.extensions().get::<AuthRefusal>() {
            self.auth_failures.get_or_create(&[("reason", (*reason).into())]).inc();
        }
        if let Some(GuardRefusal(check)) = resp.extensions().get::<GuardRefusal>() {
            self.guard_refusals.get_or_create(&[("check", (*check).into())]).inc();
        }
    }
}

async fn track(State(m): State<Arc<ServerMetrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    m.observe(&method, &path, &route, &resp, started);
    resp
}

/// Wraps `app` (the whole server: router, guard) so that every answer is counted.
pub fn layer(app: Router, metrics: Arc<ServerMetrics>) -> Router {
    app.layer(axum::middleware::from_fn_with_state(metrics, track))
}

/// Adds `GET /metrics` (`--expose-prometheus`) to a router that already has its state: the
/// route is outside the auth layer (no login, as MLflow's) and inside the guard applied later
/// (the Host check).
pub fn with_metrics_route(app: Router, metrics: Arc<ServerMetrics>) -> Router {
    app.route(
        "/metrics",
        axum::routing::get(move || {
            let m = metrics.clone();
            async move { exposition::response(m.render()) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;

    #[tokio::test]
    async fn counts_by_route_pattern_and_tags() {
        let store = Arc::new(tracking::Store::open("sqlite://", "mlflow-artifacts:").await.unwrap());
        let m = ServerMetrics::new(store, None);
        let app =
            Router::new().route("/runs/{id}", get(|| async { "ok" })).route("/health", get(|| async { "OK" })).route(
                "/denied",
                get(|| async {
                    let mut r = StatusCode::UNAUTHORIZED.into_response();
                    r.extensions_mut().insert(AuthRefusal("bad_credentials"));
                    r
                }),
            );
        let app = layer(with_metrics_route(app, m.clone()), m.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        for path in ["/runs/a", "/runs/b", "/health", "/nowhere", "/denied"] {
            http.get(format!("{base}{path}")).send().await.unwrap();
        }
        let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        for line in [
            "factory_server_requests_total{method=\"GET\",route=\"/runs/{id}\",status=\"200\"} 2",
            "factory_server_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1",
            "factory_server_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
            "mlflow_http_request_total{method=\"GET\",status=\"200\"} 2",
            "factory_server_auth_failures_total{reason=\"bad_credentials\"} 1",
            "factory_server_auth_failures_total{reason=\"missing\"} 0",
            "factory_server_guard_refusals_total{check=\"host\"} 0",
            "factory_server_db_pool_max_connections{pool=\"write\"} 1",
            "factory_server_run_cache_requests_total{result=\"hit\"} 0",
            "# TYPE factory_server_group_commit_batch_metrics histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(text.contains("factory_build_info{component=\"server\""), "{text}");
    }
}
