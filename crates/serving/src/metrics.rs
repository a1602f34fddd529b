//! Prometheus metrics (`prometheus-client`; names and labels are the contract in
//! docs/metrics.md):
//!
//! - `factory_requests_total{protocol,route,status}` — every HTTP request (route = the
//!   matched route pattern, status = HTTP status) and gRPC call (route = method, status =
//!   gRPC code name);
//! - `factory_request_duration_seconds{protocol,route}` — latency histogram;
//! - `factory_batch_size_rows` — rows per model call (after adaptive batching);
//! - `factory_predictions_total` — rows scored;
//! - `factory_model_info{model_name,model_version,registry_version}` = 1, `factory_model_version`
//!   (the registry version as a number), `factory_model_loaded_timestamp_seconds`;
//! - `factory_model_ready` — 1 while a model is loaded and the server is not stopping;
//! - `factory_model_reloads_total{outcome}` — `reloaded`, `unchanged`, `refused`;
//! - `factory_request_log_rows_total{outcome}` — `queued`, `dropped` (queue full);
//! - `factory_build_info{component="serve",version}`;
//! - online drift (`drift`): `factory_drift_rows_total{model_version}`,
//!   `factory_drift_bin_rows_total{model_version,feature,bin}` and
//!   `factory_drift_reference_share{model_version,feature,bin}`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use exposition::prometheus_client::collector::Collector;
use exposition::prometheus_client::encoding::DescriptorEncoder;
use exposition::prometheus_client::metrics::counter::Counter;
use exposition::prometheus_client::metrics::family::Family;
use exposition::prometheus_client::metrics::histogram::Histogram;
use exposition::Registry;

use crate::drift::SketchMetrics;
use crate::predictor::LoadedModel;

const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const BATCH_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0];

type Labels<const N: usize> = [(&'static str, String); N];
type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The process's metrics.
pub struct Metrics {
    /// This instance among the process's (the key of its series in [`CELLS`]).
    id: u64,
    registry: Registry,
    requests: Family<Labels<3>, Counter>,
    latency: HistogramFamily<2>,
    batch: Histogram,
    predictions: Counter,
    reloads: Family<Labels<1>, Counter>,
    log_rows: Family<Labels<1>, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let m = Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            batch: Histogram::new(BATCH_BUCKETS),
            predictions: Counter::default(),
            reloads: Family::default(),
            log_rows: Family::default(),
        };
        // Every outcome is shown from the start, at 0 (creating the series is the point).
        for outcome in ["reloaded", "unchanged", "refused"] {
            let _ = m.reloads.get_or_create(&[("outcome", outcome.to_string())]);
        }
        for outcome in ["queued", "dropped"] {
            let _ = m.log_rows.get_or_create(&[("outcome", outcome.to_string())]);
        }
        let mut registry = exposition::registry("serve");
        registry.register("factory_requests", "Requests answered, by protocol, route and status", m.requests.clone());
        registry.register(
            "factory_request_duration_seconds",
            "Time from request to response, by protocol and route",
            m.latency.clone(),
        );
        registry.register("factory_batch_size_rows", "Rows per model call (after adaptive batching)", m.batch.clone());
        registry.register("factory_predictions", "Rows scored", m.predictions.clone());
        registry.register("factory_model_reloads", "Reload attempts, by outcome", m.reloads.clone());
        registry.register("factory_request_log_rows", "Rows handed to the request log, by outcome", m.log_rows.clone());
        Metrics { registry, ..m }
    }
}

/// A request series' counter and histogram, resolved once per thread (see [`CELLS`]).
struct RequestCells {
    metrics: u64,
    protocol: &'static str,
    route: Box<str>,
    status: Box<str>,
    count: Counter,
    latency: Histogram,
}

/// The most series a thread keeps resolved; past it the cache starts again (the series of a
/// `Metrics` that is gone, in tests, are let go that way).
const CELLS_MAX: usize = 64;

thread_local! {
    /// The request series this thread has seen, resolved to their cells: counting a request
    /// then needs no label strings, no hashing and no lock on the families.
    static CELLS: std::cell::RefCell<Vec<RequestCells>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Tells apart the `Metrics` of one process (tests run several servers).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, protocol: &'static str, route: &str, status: &str, elapsed: Duration) {
        CELLS.with_borrow_mut(|cells| {
            let found = cells.iter().position(|c| {
                c.metrics == self.id && c.protocol == protocol && *c.route == *route && *c.status == *status
            });
            let at = found.unwrap_or_else(|| {
                if cells.len() >= CELLS_MAX {
                    cells.clear();
                }
                let labels = [("protocol", protocol.to_string()), ("route", route.to_string())];
                let count =
                    self.requests.get_or_create(&[labels[0].clone(), labels[1].clone(), ("status", status.into())]);
                cells.push(RequestCells {
                    metrics: self.id,
                    protocol,
                    route: route.into(),
                    status: status.into(),
                    count: count.clone(),
                    latency: self.latency.get_or_create(&labels).clone(),
                });
                cells.len() - 1
            });
            cells[at].count.inc();
            cells[at].latency.observe(elapsed.as_secs_f64());
        });
    }

    /// Records one model call of `rows` rows.
    pub fn observe_batch(&self, rows: usize) {
        self.predictions.inc_by(rows as u64);
        self.batch.observe(rows as f64);
    }

    /// Records a reload attempt: `reloaded`, `unchanged` or `refused`.
    pub fn observe_reload(&self, outcome: &'static str) {
        self.reloads.get_or_create(&[("outcome", outcome.into())]).inc();
    }

    /// Records rows handed to the request log (`dropped` = the queue was full).
    pub fn observe_log(&self, rows: usize, dropped: bool) {
        let outcome = if dropped { "dropped" } else { "queued" };
        self.log_rows.get_or_create(&[("outcome", outcome.into())]).inc_by(rows as u64);
    }

    /// The text exposition format: the counters and histograms, then the model being served
    /// (`model`) and whether the server is `ready`.
    pub fn render(&self, model: Option<&LoadedModel>, ready: bool, sketches: SketchMetrics) -> String {
        let mut text = exposition::encode(&self.registry);
        let mut now = Registry::default();
        now.register_collector(Box::new(ModelGauges {
            ready,
            model: model.map(|m| ModelView {
                name: m.name.clone(),
                version: m.version.clone(),
                registry_version: m.registry_version.clone(),
                loaded_at: m.loaded_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64(),
            }),
        }));
        now.register_collector(Box::new(sketches));
        text.push_str(&exposition::encode(&now));
        text
    }
}

#[derive(Debug)]
struct ModelView {
    name: String,
    version: String,
    registry_version: Option<String>,
    loaded_at: f64,
}

/// The gauges that describe the model being served, read at scrape time.
#[derive(Debug)]
struct ModelGauges {
    ready: bool,
    model: Option<ModelView>,
}

impl Collector for ModelGauges {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let ready = i64::from(self.ready);
        exposition::gauge_value(
            &mut e,
            "factory_model_ready",
            "1 while a model is loaded and the server is not stopping",
            ready,
        )?;
        let Some(m) = &self.model else { return Ok(()) };
        let info = [
            ("model_name", m.name.as_str()),
            ("model_version", m.version.as_str()),
            ("registry_version", m.registry_version.as_deref().unwrap_or("")),
        ];
        exposition::gauge(&mut e, "factory_model_info", "The model being served (value 1)", [(info, 1i64)])?;
        if let Some(v) = m.registry_version.as_deref().and_then(|v| v.parse::<u64>().ok()) {
            exposition::gauge(
                &mut e,
                "factory_model_version",
                "The registry version being served",
                [([("model_name", m.name.as_str())], v as i64)],
            )?;
        }
        exposition::gauge_value(
            &mut e,
            "factory_model_loaded_timestamp_seconds",
            "When the model being served was loaded",
            m.loaded_at,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_counts() {
        let m = Metrics::default();
        m.observe_request("http", "/invocations", "200", Duration::from_micros(80));
        m.observe_request("http", "/invocations", "200", Duration::from_millis(3));
        m.observe_request("http", "/invocations", "400", Duration::from_micros(80));
        m.observe_batch(1);
        m.observe_reload("refused");
        let text = m.render(None, false, crate::drift::DriftSketches::new(None).collector());
        for line in [
            "factory_requests_total{protocol=\"http\",route=\"/invocations\",status=\"200\"} 2",
            "factory_requests_total{protocol=\"http\",route=\"/invocations\",status=\"400\"} 1",
            "factory_request_duration_seconds_bucket{protocol=\"http\",route=\"/invocations\",le=\"0.0001\"} 2",
            "factory_request_duration_seconds_bucket{protocol=\"http\",route=\"/invocations\",le=\"0.005\"} 3",
            "factory_request_duration_seconds_count{protocol=\"http\",route=\"/invocations\"} 3",
            "factory_batch_size_rows_bucket{le=\"1\"} 1",
            "factory_model_reloads_total{outcome=\"refused\"} 1",
            "factory_model_reloads_total{outcome=\"reloaded\"} 0",
            "factory_predictions_total 1",
            "factory_model_ready 0",
            "# TYPE factory_request_log_rows_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(text.contains("factory_build_info{component=\"serve\""), "{text}");
    }
}
