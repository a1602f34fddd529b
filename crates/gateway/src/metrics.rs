//! Prometheus metrics (`prometheus-client`; names and labels are the contract in
//! docs/metrics.md): per-colour requests, errors, latency (time to response headers),
//! requests in flight, passive health, routing state, the version each colour serves, shadow
//! traffic and switch outcomes. The numbers are the gateway's own atomics: a [`Collector`]
//! reads them at scrape time.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use exposition::prometheus_client::collector::Collector;
use exposition::prometheus_client::encoding::DescriptorEncoder;

use crate::control::Gateway;
use crate::state::Colour;
use crate::upstream::BUCKETS;

/// Reads a gateway's figures on every scrape.
pub struct GatewayCollector(pub Arc<Gateway>);

impl fmt::Debug for GatewayCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayCollector")
    }
}

impl Collector for GatewayCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        encode(&self.0, &mut e)
    }
}

/// The registry of a gateway process: `factory_build_info{component="gateway"}` and the
/// gateway's families.
pub fn registry(gw: Arc<Gateway>) -> exposition::Registry {
    let mut r = exposition::registry("gateway");
    r.register_collector(Box::new(GatewayCollector(gw)));
    r
}

/// The text exposition (`GET /metrics` on the admin port and on `--metrics-listen`).
pub fn render(gw: &Arc<Gateway>) -> String {
    exposition::encode(&registry(gw.clone()))
}

fn colour(c: Colour) -> [(&'static str, String); 1] {
    [("colour", c.to_string())]
}

fn encode(gw: &Gateway, e: &mut DescriptorEncoder) -> fmt::Result {
    let r = gw.routing();
    let per_colour = |f: &dyn Fn(Colour) -> i64| Colour::ALL.map(|c| (colour(c), f(c)));
    let count = |f: &dyn Fn(Colour) -> u64| Colour::ALL.map(|c| (colour(c), f(c)));
    let flag = |b: bool| i64::from(b);
    exposition::counter(
        e,
        "gateway_requests",
        "Requests forwarded to the colour",
        count(&|c| gw.upstream(c).requests.load(Ordering::Relaxed)),
    )?;
    exposition::counter(
        e,
        "gateway_errors",
        "Transport errors and 5xx answers from the colour",
        count(&|c| gw.upstream(c).errors.load(Ordering::Relaxed)),
    )?;
    exposition::gauge(
        e,
        "gateway_in_flight",
        "Requests in flight on the colour",
        per_colour(&|c| gw.upstream(c).in_flight() as i64),
    )?;
    exposition::gauge(
        e,
        "gateway_upstream_healthy",
        "Passive health (1 healthy, 0 unhealthy)",
        per_colour(&|c| flag(gw.upstream(c).is_healthy())),
    )?;
    exposition::gauge(
        e,
        "gateway_consecutive_failures",
        "Failed requests in a row",
        per_colour(&|c| i64::from(gw.upstream(c).consecutive_failures.load(Ordering::Relaxed))),
    )?;
    exposition::gauge(e, "gateway_active", "1 for the active colour", per_colour(&|c| flag(r.active == c)))?;
    exposition::gauge(
        e,
        "gateway_weight_percent",
        "Share of new requests",
        per_colour(&|c| i64::from(r.weights.of(c))),
    )?;
    let info = Colour::ALL.map(|c| {
        let u = gw.upstream(c);
        let labels = [
            ("colour", c.to_string()),
            ("address", u.address.clone()),
            ("model_version", u.model_version().unwrap_or_default()),
        ];
        (labels, 1i64)
    });
    exposition::gauge(
        e,
        "gateway_upstream_info",
        "Each colour's address and the model version its /health reported last (value 1)",
        info,
    )?;
    let latency = Colour::ALL.map(|c| {
        let s = gw.upstream(c).latency.snapshot();
        (colour(c), s.sum, s.count, exposition::buckets_from_cumulative(&BUCKETS, &s.cumulative))
    });
    exposition::histogram(
        e,
        "gateway_request_duration_seconds",
        "Time from request to upstream response headers",
        latency,
    )?;
    let k = &gw.counters;
    exposition::gauge_value(
        e,
        "gateway_shadow_percent",
        "Share of requests mirrored to the other colour",
        i64::from(r.shadow_percent),
    )?;
    for (name, help, v) in [
        ("gateway_shadow_requests", "Requests mirrored", &k.shadow_requests),
        (
            "gateway_shadow_divergences",
            "Mirrored requests whose answer (status, grpc-status, body) differed",
            &k.shadow_divergences,
        ),
        ("gateway_shadow_errors", "Mirrored requests that failed", &k.shadow_errors),
        (
            "gateway_shadow_dropped",
            "Requests picked for shadowing but not copied: body over --shadow-max-body-bytes or the shadow behind",
            &k.shadow_dropped,
        ),
        (
            "gateway_client_aborts",
            "Requests whose caller hung up or stalled mid-body (not counted against the upstream)",
            &k.client_aborts,
        ),
    ] {
        exposition::counter_value(e, name, help, v.load(Ordering::Relaxed))?;
    }
    let d = gw.shadow_difference.snapshot();
    exposition::histogram(
        e,
        "gateway_shadow_prediction_difference",
        "Largest absolute difference between the two colours' predictions on a mirrored request (JSON answers)",
        [(
            [] as [(&str, String); 0],
            d.sum,
            d.count,
            exposition::buckets_from_cumulative(gw.shadow_difference.bounds(), &d.cumulative),
        )],
    )?;
    let canary = gw.canary.running();
    exposition::gauge_value(
        e,
        "gateway_canary_step",
        "Index of the canary step running (-1: no canary running)",
        canary.as_ref().map_or(-1, |c| c.step as i64),
    )?;
    exposition::gauge_value(
        e,
        "gateway_canary_weight_percent",
        "The canary colour's share of new requests (0: no canary running)",
        canary.as_ref().map_or(0, |c| i64::from(c.weight)),
    )?;
    exposition::counter(
        e,
        "gateway_canary_verdicts",
        "Canary step verdicts: advance, promote, abort",
        crate::control::VERDICTS
            .iter()
            .zip(&gw.canary.verdicts)
            .map(|(v, n)| ([("verdict", *v)], n.load(Ordering::Relaxed))),
    )?;
    exposition::counter(
        e,
        "gateway_switches",
        "Switches, rollbacks and failovers by outcome",
        [
            ([("outcome", "ok")], k.switches_ok.load(Ordering::Relaxed)),
            ([("outcome", "refused")], k.switches_refused.load(Ordering::Relaxed)),
        ],
    )
}
