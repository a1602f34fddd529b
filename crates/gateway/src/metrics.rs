//! Prometheus text for `GET /metrics` on the admin port: per-colour requests, errors,
//! latency (time to response headers), requests in flight, passive health, routing state,
//! shadow traffic and switch outcomes. Hand-rolled: the numbers are atomics already.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::control::Gateway;
use crate::state::Colour;
use crate::upstream::BUCKETS;

pub fn render(gw: &Gateway) -> String {
    let mut out = String::with_capacity(4096);
    let r = gw.routing();
    let per_colour = |out: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(Colour) -> String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for c in Colour::ALL {
            let _ = writeln!(out, "{name}{{colour=\"{c}\"}} {}", f(c));
        }
    };
    per_colour(&mut out, "gateway_requests_total", "counter", "Requests forwarded to the colour.", &|c| {
        gw.upstream(c).requests.load(Ordering::Relaxed).to_string()
    });
    per_colour(
        &mut out,
        "gateway_errors_total",
        "counter",
        "Transport errors and 5xx answers from the colour.",
        &|c| gw.upstream(c).errors.load(Ordering::Relaxed).to_string(),
    );
    per_colour(&mut out, "gateway_in_flight", "gauge", "Requests in flight on the colour.", &|c| {
        gw.upstream(c).in_flight().to_string()
    });
    per_colour(&mut out, "gateway_upstream_healthy", "gauge", "Passive health (1 healthy, 0 unhealthy).", &|c| {
        u8::from(gw.upstream(c).is_healthy()).to_string()
    });
    per_colour(&mut out, "gateway_consecutive_failures", "gauge", "Failed requests in a row.", &|c| {
        gw.upstream(c).consecutive_failures.load(Ordering::Relaxed).to_string()
    });
    per_colour(&mut out, "gateway_active", "gauge", "1 for the active colour.", &|c| {
        u8::from(r.active == c).to_string()
    });
    per_colour(&mut out, "gateway_weight_percent", "gauge", "Share of new requests.", &|c| r.weights.of(c).to_string());
    let name = "gateway_request_duration_seconds";
    let _ = writeln!(out, "# HELP {name} Time from request to upstream response headers.\n# TYPE {name} histogram");
    for c in Colour::ALL {
        let (buckets, count, sum) = gw.upstream(c).latency.snapshot();
        for (le, n) in BUCKETS.iter().zip(buckets) {
            let _ = writeln!(out, "{name}_bucket{{colour=\"{c}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{colour=\"{c}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{colour=\"{c}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{colour=\"{c}\"}} {count}");
    }
    let k = &gw.counters;
    for (name, kind, help, v) in [
        (
            "gateway_shadow_percent",
            "gauge",
            "Share of requests mirrored to the other colour.",
            u64::from(r.shadow_percent),
        ),
        ("gateway_shadow_requests_total", "counter", "Requests mirrored.", k.shadow_requests.load(Ordering::Relaxed)),
        (
            "gateway_shadow_divergences_total",
            "counter",
            "Mirrored requests whose answer (status, grpc-status, body) differed.",
            k.shadow_divergences.load(Ordering::Relaxed),
        ),
        (
            "gateway_shadow_errors_total",
            "counter",
            "Mirrored requests that failed.",
            k.shadow_errors.load(Ordering::Relaxed),
        ),
        (
            "gateway_shadow_dropped_total",
            "counter",
            "Requests picked for shadowing but not copied: body over --shadow-max-body-bytes or the shadow behind.",
            k.shadow_dropped.load(Ordering::Relaxed),
        ),
        (
            "gateway_client_aborts_total",
            "counter",
            "Requests whose caller hung up or stalled mid-body (not counted against the upstream).",
            k.client_aborts.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
    let name = "gateway_switches_total";
    let _ = writeln!(out, "# HELP {name} Switches, rollbacks and failovers by outcome.\n# TYPE {name} counter");
    let _ = writeln!(out, "{name}{{outcome=\"ok\"}} {}", k.switches_ok.load(Ordering::Relaxed));
    let _ = writeln!(out, "{name}{{outcome=\"refused\"}} {}", k.switches_refused.load(Ordering::Relaxed));
    out
}
