//! Prometheus metrics shared by every long-running process (`factory server`, `serve`,
//! `gateway`, `loop`; the contract is docs/metrics.md), on the `prometheus-client` crate:
//!
//! - [`registry`]: a registry holding `factory_build_info{component,version}` = 1;
//! - [`encode`]: the Prometheus text exposition format (version 0.0.4), [`CONTENT_TYPE`];
//! - [`gauge`], [`counter`], [`histogram`] (and [`gauge_value`], [`counter_value`] without labels):
//!   write a family from a [`Collector`] that reads numbers kept elsewhere (atomics, pool
//!   statistics, the last cycle) at scrape time; the help text gets a final `.`, as
//!   `Registry::register` gives it;
//! - [`router`] / [`spawn`]: the `--metrics-listen` listener, `GET /metrics` and nothing else;
//! - [`push`]: one `PUT` of the exposition to a Pushgateway (short-lived jobs).
//!
//! [`Collector`]: prometheus_client::collector::Collector

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
pub use prometheus_client::registry::Registry;

pub use prometheus_client;

/// `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// This build's version, the `version` label of `factory_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Histogram buckets as `prometheus-client` encodes them: `(upper bound, count in that bucket
/// alone)`; the encoder makes them cumulative and adds `+Inf` = the total count.
pub type Buckets = Vec<(f64, u64)>;

#[derive(Debug)]
struct BuildInfo {
    component: &'static str,
}

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let labels = [("component", self.component), ("version", VERSION)];
        gauge(&mut encoder, "factory_build_info", "The process's component and version (value 1)", [(labels, 1i64)])
    }
}

/// A registry for one process of `component` (`server`, `serve`, `gateway` or `loop`),
/// holding `factory_build_info`.
pub fn registry(component: &'static str) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(BuildInfo { component }));
    registry
}

/// The registry in the Prometheus text exposition format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail; an encoder error would be a bug in a collector.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, registry) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    out
}

/// One gauge family: `samples` are (labels, value) ([`gauge_value`] for a gauge without labels).
/// Integral values (`i64`, `u64`) are written without a decimal point.
pub fn gauge<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, &format!("{help}."), None, MetricType::Gauge)?;
    for (labels, v) in samples {
        family.encode_family(&labels)?.encode_gauge(&v)?;
    }
    Ok(())
}

/// One gauge without labels.
pub fn gauge_value<V: EncodeGaugeValue>(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: V) -> fmt::Result {
    encoder.encode_descriptor(name, &format!("{help}."), None, MetricType::Gauge)?.encode_gauge(&v)
}

/// One counter without labels; `name` without `_total` (the encoder adds it).
pub fn counter_value(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    encoder
        .encode_descriptor(name, &format!("{help}."), None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// One counter family; `name` without `_total` (the encoder adds it).
pub fn counter<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, &format!("{help}."), None, MetricType::Counter)?;
    for (labels, v) in samples {
        family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

/// One histogram family: `samples` are (labels, sum, count, per-bucket counts, see [`Buckets`]).
pub fn histogram<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, f64, u64, Buckets)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, &format!("{help}."), None, MetricType::Histogram)?;
    for (labels, sum, count, buckets) in samples {
        family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    Ok(())
}

/// Per-bucket counts from cumulative ones (`cumulative[i]` = observations ≤ `bounds[i]`).
pub fn buckets_from_cumulative(bounds: &[f64], cumulative: &[u64]) -> Buckets {
    let mut prev = 0;
    bounds
        .iter()
        .zip(cumulative)
        .map(|(&b, &c)| {
            let n = c.saturating_sub(prev);
            prev = c;
            (b, n)
        })
        .collect()
}

/// What a `/metrics` answer shows: called on every scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A `GET /metrics` answer.
pub fn response(text: String) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], text).into_response()
}

/// The metrics listener's router: `GET /metrics` and nothing else (no token, no Host check).
pub fn router(render: Render) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let render = render.clone();
                async move { response(render()) }
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "only GET /metrics is served here\n") })
}

/// Binds `addr` (`--metrics-listen`) and serves [`router`] on it for the rest of the process's
/// life (it holds no state worth draining), with the process's listener `limits`. Returns the
/// bound address.
pub async fn spawn(addr: &str, render: Render, limits: listener::Limits) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        // The same accept loop, timeouts and limits as every other listener (crates/listener).
        let serving =
            listener::serve_router(listener, "metrics", &limits, router(render), std::future::pending(), None);
        if let Err(e) = serving.await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!(address = %local, "metrics on http://{local}/metrics");
    Ok(local)
}

/// A failed [`push`].
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("pushing metrics to {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("pushing metrics to {url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
}

/// What a path segment of a push URL keeps as is.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The Pushgateway URL of a group: `base/metrics/job/<job>/<label>/<value>…` (an empty value
/// is written `label@base64/=`, as the Pushgateway wants it).
pub fn push_url(base: &str, job: &str, grouping: &[(&str, &str)]) -> String {
    let mut url = format!("{}/metrics/job/{}", base.trim_end_matches('/'), utf8_percent_encode(job, SEGMENT));
    for (k, v) in grouping {
        if v.is_empty() {
            url.push_str(&format!("/{k}@base64/="));
        } else {
            url.push_str(&format!("/{k}/{}", utf8_percent_encode(v, SEGMENT)));
        }
    }
    url
}

/// Replaces the group's metrics on a Pushgateway with `text` (one `PUT`).
pub async fn push(
    client: &reqwest::Client,
    base: &str,
    job: &str,
    grouping: &[(&str, &str)],
    text: String,
) -> Result<(), PushError> {
    let url = push_url(base, job, grouping);
    let resp = client
        .put(&url)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .body(text)
        .send()
        .await
        .map_err(|source| PushError::Transport { url: url.clone(), source })?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(PushError::Status { url, status: status.as_u16(), body: body.chars().take(300).collect() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl Collector for Fixed {
        fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
            counter(&mut e, "x_requests", "Requests", [([("colour", "blue")], 3)])?;
            gauge_value(&mut e, "x_up", "Up", 1i64)?;
            gauge_value(&mut e, "x_share", "Share", 0.25)?;
            let bounds = [0.1, 1.0];
            histogram(
                &mut e,
                "x_seconds",
                "Latency",
                [([("colour", "blue")], 2.5, 3, buckets_from_cumulative(&bounds, &[1, 2]))],
            )
        }
    }

    #[test]
    fn encodes_build_info_and_collected_families() {
        let mut r = registry("serve");
        r.register_collector(Box::new(Fixed));
        let text = encode(&r);
        for line in [
            &format!("factory_build_info{{component=\"serve\",version=\"{VERSION}\"}} 1"),
            "# TYPE x_requests_total counter",
            "x_requests_total{colour=\"blue\"} 3",
            "x_up 1",
            "x_share 0.25",
            "x_seconds_bucket{colour=\"blue\",le=\"0.1\"} 1",
            "x_seconds_bucket{colour=\"blue\",le=\"1\"} 2",
            "x_seconds_bucket{colour=\"blue\",le=\"+Inf\"} 3",
            "x_seconds_count{colour=\"blue\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    #[test]
    fn push_urls_encode_the_grouping_key() {
        assert_eq!(
            push_url("http://pg:9091/", "factory-loop", &[("pipeline", "a b"), ("x", "")]),
            "http://pg:9091/metrics/job/factory-loop/pipeline/a%20b/x@base64/="
        );
    }
}
