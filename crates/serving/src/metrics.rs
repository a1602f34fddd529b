//! Prometheus metrics, kept by hand (a mutex over a few small maps and some atomics) and
//! rendered in the text exposition format by [`Metrics::render`]:
//!
//! - `factory_requests_total{protocol,route,status}` — every HTTP request (route = the
//!   matched route pattern, status = HTTP status) and gRPC call (route = method, status =
//!   gRPC code name);
//! - `factory_request_duration_seconds{protocol,route}` — latency histogram;
//! - `factory_batch_size_rows` — rows per model call (after adaptive batching);
//! - `factory_predictions_total` — rows scored;
//! - `factory_model_info{model_name,model_version,registry_version}` = 1, `factory_model_version`
//!   (the registry version as a number), `factory_model_loaded_timestamp_seconds`;
//! - `factory_model_reloads_total{outcome}` — `reloaded`, `unchanged`, `refused`;
//! - `factory_request_log_rows_total{outcome}` — `queued`, `dropped` (queue full).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use crate::predictor::LoadedModel;

const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const BATCH_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0, 16384.0];

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len());
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (i, b) in bounds.iter().enumerate() {
            cum += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct RouteStats {
    statuses: Vec<(String, u64)>,
    latency: Histogram,
}

#[derive(Default)]
struct Inner {
    /// (protocol, route) → stats.
    routes: BTreeMap<(&'static str, String), RouteStats>,
    batch: Histogram,
    reloads: BTreeMap<&'static str, u64>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    predictions: AtomicU64,
    log_queued: AtomicU64,
    log_dropped: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe_request(&self, protocol: &'static str, route: &str, status: &str, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (protocol, route.to_string());
        // Route patterns are few: after the first request of each, this is a map lookup.
        let stats = inner.routes.entry(key).or_default();
        match stats.statuses.iter_mut().find(|(s, _)| s == status) {
            Some((_, n)) => *n += 1,
            None => stats.statuses.push((status.to_string(), 1)),
        }
        stats.latency.observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
    }

    /// Records one model call of `rows` rows.
    pub fn observe_batch(&self, rows: usize) {
        self.predictions.fetch_add(rows as u64, Ordering::Relaxed);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.batch.observe(&BATCH_BUCKETS, rows as f64);
    }

    /// Records a reload attempt: `reloaded`, `unchanged` or `refused`.
    pub fn observe_reload(&self, outcome: &'static str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.reloads.entry(outcome).or_default() += 1;
    }

    /// Records rows handed to the request log (`dropped` = the queue was full).
    pub fn observe_log(&self, rows: usize, dropped: bool) {
        let c = if dropped { &self.log_dropped } else { &self.log_queued };
        c.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self, model: Option<&LoadedModel>) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(8192);
        out.push_str("# HELP factory_requests_total Requests answered, by protocol, route and status.\n");
        out.push_str("# TYPE factory_requests_total counter\n");
        for ((protocol, route), stats) in &inner.routes {
            for (status, n) in &stats.statuses {
                let _ = writeln!(
                    out,
                    "factory_requests_total{{protocol=\"{protocol}\",route=\"{}\",status=\"{}\"}} {n}",
                    escape(route),
                    escape(status)
                );
            }
        }
        out.push_str("# HELP factory_request_duration_seconds Time from request to response, by protocol and route.\n");
        out.push_str("# TYPE factory_request_duration_seconds histogram\n");
        for ((protocol, route), stats) in &inner.routes {
            let labels = format!("protocol=\"{protocol}\",route=\"{}\"", escape(route));
            stats.latency.render(&mut out, "factory_request_duration_seconds", &labels, &LATENCY_BUCKETS);
        }
        out.push_str("# HELP factory_batch_size_rows Rows per model call (after adaptive batching).\n");
        out.push_str("# TYPE factory_batch_size_rows histogram\n");
        inner.batch.render(&mut out, "factory_batch_size_rows", "", &BATCH_BUCKETS);
        out.push_str("# HELP factory_predictions_total Rows scored.\n# TYPE factory_predictions_total counter\n");
        let _ = writeln!(out, "factory_predictions_total {}", self.predictions.load(Ordering::Relaxed));
        out.push_str("# HELP factory_model_reloads_total Reload attempts, by outcome.\n# TYPE factory_model_reloads_total counter\n");
        for outcome in ["reloaded", "unchanged", "refused"] {
            let n = inner.reloads.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "factory_model_reloads_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP factory_request_log_rows_total Rows handed to the request log, by outcome.\n");
        out.push_str("# TYPE factory_request_log_rows_total counter\n");
        let _ = writeln!(
            out,
            "factory_request_log_rows_total{{outcome=\"queued\"}} {}",
            self.log_queued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "factory_request_log_rows_total{{outcome=\"dropped\"}} {}",
            self.log_dropped.load(Ordering::Relaxed)
        );
        if let Some(m) = model {
            out.push_str(
                "# HELP factory_model_info The model being served (value 1).\n# TYPE factory_model_info gauge\n",
            );
            let _ = writeln!(
                out,
                "factory_model_info{{model_name=\"{}\",model_version=\"{}\",registry_version=\"{}\"}} 1",
                escape(&m.name),
                escape(&m.version),
                escape(m.registry_version.as_deref().unwrap_or(""))
            );
            if let Some(v) = m.registry_version.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                out.push_str("# HELP factory_model_version The registry version being served.\n# TYPE factory_model_version gauge\n");
                let _ = writeln!(out, "factory_model_version{{model_name=\"{}\"}} {v}", escape(&m.name));
            }
            let at = m.loaded_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            out.push_str("# HELP factory_model_loaded_timestamp_seconds When the model being served was loaded.\n");
            out.push_str("# TYPE factory_model_loaded_timestamp_seconds gauge\n");
            let _ = writeln!(out, "factory_model_loaded_timestamp_seconds {at}");
        }
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
        let text = m.render(None);
        for line in [
            "factory_requests_total{protocol=\"http\",route=\"/invocations\",status=\"200\"} 2",
            "factory_requests_total{protocol=\"http\",route=\"/invocations\",status=\"400\"} 1",
            "factory_request_duration_seconds_bucket{protocol=\"http\",route=\"/invocations\",le=\"0.0001\"} 2",
            "factory_request_duration_seconds_bucket{protocol=\"http\",route=\"/invocations\",le=\"0.005\"} 3",
            "factory_request_duration_seconds_count{protocol=\"http\",route=\"/invocations\"} 3",
            "factory_batch_size_rows_bucket{le=\"1\"} 1",
            "factory_model_reloads_total{outcome=\"refused\"} 1",
            "factory_predictions_total 1",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
    }
}
