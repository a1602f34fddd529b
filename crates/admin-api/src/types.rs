//! Request and reply bodies of both admin planes. The gateway serializes these very types and
//! its clients deserialize them; `ToSchema` makes them the OpenAPI components too.

use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};

/// One of the two upstreams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    Blue,
    Green,
}

impl Colour {
    pub const ALL: [Colour; 2] = [Colour::Blue, Colour::Green];

    /// The other colour.
    pub fn other(self) -> Colour {
        match self {
            Colour::Blue => Colour::Green,
            Colour::Green => Colour::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Blue => "blue",
            Colour::Green => "green",
        }
    }

    /// 0 for blue, 1 for green (per-colour arrays).
    pub fn index(self) -> usize {
        match self {
            Colour::Blue => 0,
            Colour::Green => 1,
        }
    }
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A colour name that is neither blue nor green.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown colour {0:?}: expected \"blue\" or \"green\"")]
pub struct UnknownColour(pub String);

impl FromStr for Colour {
    type Err = UnknownColour;

    /// Case-insensitive, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Colour, UnknownColour> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blue" => Ok(Colour::Blue),
            "green" => Ok(Colour::Green),
            _ => Err(UnknownColour(s.into())),
        }
    }
}

/// Share of new requests per colour, in percent; the two always add up to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Weights {
    pub blue: u32,
    pub green: u32,
}

impl Weights {
    /// Everything to `c`.
    pub fn all(c: Colour) -> Weights {
        Weights::share(c, 100)
    }

    /// `percent` (at most 100) to `c`, the rest to the other colour.
    pub fn share(c: Colour, percent: u32) -> Weights {
        let rest = 100 - percent.min(100);
        match c {
            Colour::Blue => Weights { blue: 100 - rest, green: rest },
            Colour::Green => Weights { blue: rest, green: 100 - rest },
        }
    }

    pub fn of(&self, c: Colour) -> u32 {
        match c {
            Colour::Blue => self.blue,
            Colour::Green => self.green,
        }
    }
}

/// `POST /switch`: move new traffic to `to` (default: the idle colour) after its health gate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// Any case (`"Green"` too).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "loose_colour")]
    pub to: Option<Colour>,
    /// Refuse unless the target's `/health` reports this `model_version` (`"2"` or `2`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "version")]
    pub expect_version: Option<String>,
    /// How long requests in flight on the old colour may take to finish (0 to 86400 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout_secs: Option<f64>,
    /// A note recorded next to the authenticated identity in the audit log (never trusted as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A colour parsed as [`Colour::from_str`] does.
fn loose_colour<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Colour>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| s.parse().map_err(serde::de::Error::custom)).transpose()
}

/// A version given as `"2"` or `2`.
fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<V>::deserialize(d)?.map(|v| match v {
        V::Text(s) => s,
        V::Number(n) => n.to_string(),
    }))
}

/// `POST /rollback`: back to the previous colour, health-gated too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /weights`: one or both colours in percent; the missing one gets the rest of 100.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /shadow`: mirror this percentage of requests to the idle colour.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowRequest {
    pub percent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /canary`: move traffic to `to` (default: the idle colour) in steps, judging each step
/// on the colour's own requests before the next; a breach moves all traffic back and ends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryRequest {
    /// Any case (`"Green"` too).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "loose_colour")]
    pub to: Option<Colour>,
    /// The new colour's share at each step, increasing, in 1..=100 (default 5, 25, 50, 100; 100
    /// is added when missing). After the 100 step passes, the new colour becomes the active one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<u32>,
    /// How long each step lasts before it is judged for the last time (0.05 to 86400 s,
    /// default 30). A breach ends the canary as soon as `min_requests` have been seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<f64>,
    /// Most failed requests (transport errors and 5xx) of the new colour, as a fraction of its
    /// requests in the step (default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Highest 99th percentile latency of the new colour in the step, estimated from the
    /// gateway's latency buckets as Prometheus's `histogram_quantile` does (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ms: Option<f64>,
    /// Fewest requests of the new colour in a step to judge it; a step that ends with fewer is
    /// a failed check, as in Flagger (default 20; 0 judges on whatever came).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// Highest p99 of the differences between the two colours' predictions on mirrored
    /// requests in the step (needs shadow traffic, `POST /shadow`; default: not judged). At
    /// least 1e-9 (smaller differences count as equal); the p99 is interpolated within buckets a
    /// factor of 10 apart, so it can be off by up to that factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_shadow_difference: Option<f64>,
    /// Highest share of drifted features (Evidently's per-column tests) in what the new colour
    /// scored since the canary began, read from its online drift sketches (`GET
    /// /drift/sketch?open=true` on the new colour) at the end of every step (default: not
    /// judged; needs a model whose package carries a drift profile and `serve` with online
    /// drift on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drift_share: Option<f64>,
    /// A PromQL query judged at the end of every step against an existing Prometheus; `{colour}`
    /// in it becomes the new colour's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusCheck>,
    /// Refuse unless the new colour's `/health` reports this `model_version`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "version")]
    pub expect_version: Option<String>,
    /// A note recorded next to the authenticated identity in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CanaryRequest {
    /// The checks both sides make (the gateway on `POST /canary`, the loop when it reads a
    /// pipeline file): steps increasing within 1..=100, limits finite and in range, a Prometheus
    /// check with an `http://` URL and a query.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.steps;
        if s.len() > 100 || s.iter().any(|p| !(1..=100).contains(p)) || s.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("steps {s:?}: expected increasing percentages within 1..=100, e.g. [5, 25, 50, 100]"));
        }
        let limits = [
            ("interval_secs", self.interval_secs, 0.05, 86_400.0),
            ("max_error_rate", self.max_error_rate, 0.0, 1.0),
            ("max_p99_ms", self.max_p99_ms, 0.0, 3_600_000.0),
            ("max_shadow_difference", self.max_shadow_difference, 1e-9, f64::MAX),
            ("max_drift_share", self.max_drift_share, 0.0, 1.0),
        ];
        for (name, v, lo, hi) in limits {
            if let Some(x) = v.filter(|x| !(x.is_finite() && (lo..=hi).contains(x))) {
                return Err(format!("{name} {x} is out of range {lo}..={hi}"));
            }
        }
        if let Some(p) = &self.prometheus {
            if !p.url.starts_with("http://") || p.query.trim().is_empty() || !p.max.is_finite() {
                return Err("prometheus: expected an http:// url, a query and a finite max".into());
            }
        }
        Ok(())
    }
}

/// The AnalysisTemplate idea: a PromQL query and the highest value that passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusCheck {
    /// Base URL of the Prometheus HTTP API (`http://prometheus:9090`).
    pub url: String,
    /// An instant query returning one number (the first series of a vector, or a scalar).
    pub query: String,
    /// The step fails when the value is above this (or when the query returns nothing).
    pub max: f64,
}

/// Where a canary is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CanaryPhase {
    Running,
    Promoted,
    Aborted,
}

/// What one step measured and decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepVerdict {
    /// 0-based index into `steps`.
    pub step: usize,
    /// The new colour's share during the step.
    pub weight: u32,
    /// RFC 3339.
    pub time: String,
    /// `advance` or `abort`.
    pub verdict: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p99_ms: Option<f64>,
    /// Requests mirrored in the step whose predictions were compared.
    pub shadow_compared: u64,
    pub shadow_difference_p99: Option<f64>,
    pub prometheus_value: Option<f64>,
    /// Rows the new colour scored since the canary began, as its drift sketches count them
    /// (when `max_drift_share` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_rows: Option<u64>,
    /// The share of drifted features in those rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
    /// Why, in words.
    pub detail: String,
}

impl StepVerdict {
    /// "step 1 (25%): advance: 120 requests, 0 errors (0.0%), p99 3.1 ms: within every limit".
    pub fn summary(&self) -> String {
        let p99 = self.p99_ms.map_or("-".into(), |p| format!("{p:.1} ms"));
        let drift = match (self.drift_share, self.drift_rows) {
            (Some(share), Some(rows)) => format!(", drifted features {share:.3} in {rows} rows"),
            _ => String::new(),
        };
        format!(
            "step {} ({}%): {}: {} requests, {} errors ({:.1}%), p99 {p99}{drift}: {}",
            self.step,
            self.weight,
            self.verdict,
            self.requests,
            self.errors,
            self.error_rate * 100.0,
            self.detail
        )
    }
}

/// `GET /canary`, and the answer to `POST /canary` and `POST /canary/abort`: the canary now
/// (or the last one, once it ended).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CanaryStatus {
    /// The audit log's operation id of the start, shared by the canary's `canary-step`,
    /// `canary-end` and `canary-abort` records (its promotion switch has its own).
    pub operation_id: String,
    pub from: Colour,
    pub to: Colour,
    pub phase: CanaryPhase,
    pub steps: Vec<u32>,
    /// Index of the step running (or the last one reached).
    pub step: usize,
    /// The new colour's share now.
    pub weight: u32,
    pub interval_secs: f64,
    /// RFC 3339.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Why it was aborted, or that it was promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub verdicts: Vec<StepVerdict>,
}

/// `POST /canary/abort`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryAbortRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Any refused admin call: `{"error": "..."}` with a 4xx/5xx status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorReply {
    pub error: String,
}

/// One probe's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub ok: bool,
    pub detail: String,
}

/// The health gate's two probes of one upstream: `grpc.health.v1.Health/Check` and `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    pub colour: Colour,
    pub address: String,
    pub ok: bool,
    pub grpc: CheckResult,
    pub http: CheckResult,
    pub model_version: Option<String>,
    pub expected_version: Option<String>,
}

impl HealthReport {
    /// "gRPC health: …; HTTP /health: …" for the probes that failed.
    pub fn failures(&self) -> String {
        let mut parts = Vec::new();
        if !self.grpc.ok {
            parts.push(format!("gRPC grpc.health.v1.Health/Check: {}", self.grpc.detail));
        }
        if !self.http.ok {
            parts.push(format!("HTTP GET /health: {}", self.http.detail));
        }
        parts.join("; ")
    }
}

/// `POST /switch` and `POST /rollback` answered: traffic moved from one colour to the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchReply {
    pub operation_id: String,
    pub from: Colour,
    pub to: Colour,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub health: HealthReport,
    /// Whether everything in flight on the old colour finished within the drain timeout.
    pub drained: bool,
    pub drain_ms: u64,
}

/// `POST /weights` and `POST /shadow` answered: the routing after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeReply {
    pub operation_id: String,
    pub weights: Weights,
    pub shadow_percent: u32,
}

/// One operation in the audit log (`GET /audit`), whatever its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    pub operation_id: String,
    /// `switch`, `rollback`, `auto-failover`, `weights`, `shadow`, and a canary's `canary` (start),
    /// `canary-step`, `canary-promote` (its switch), `canary-end` and `canary-abort` (all records of one
    /// canary but its switch share the start's `operation_id`).
    pub op: String,
    pub from: Option<Colour>,
    pub to: Option<Colour>,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub health: Option<HealthReport>,
    /// The admin token's identity (with the caller's note in parentheses).
    pub who: String,
    /// `ok`, `refused`, `error`; `aborted` for `canary-abort`.
    pub outcome: String,
    /// What went wrong, or what drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_percent: Option<u32>,
}

/// One colour in [`StatusReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpstreamStatus {
    pub address: String,
    pub healthy: bool,
    pub model_version: Option<String>,
    pub consecutive_failures: u32,
    pub requests: u64,
    pub errors: u64,
    pub in_flight: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Upstreams {
    pub blue: UpstreamStatus,
    pub green: UpstreamStatus,
}

impl Upstreams {
    pub fn get(&self, colour: Colour) -> &UpstreamStatus {
        match colour {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
        }
    }
}

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusReply {
    pub active: Colour,
    pub previous: Option<Colour>,
    pub weights: Weights,
    pub shadow_percent: u32,
    pub upstreams: Upstreams,
}

impl StatusReply {
    /// The colour not receiving traffic.
    pub fn idle(&self) -> Colour {
        self.active.other()
    }
}

/// `POST /admin/reload[?force=true]` on serve.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReloadQuery {
    /// Reload even when the alias still points at the version being served, and retry a
    /// version that was refused before.
    #[serde(default)]
    pub force: bool,
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded,
    Refused,
}

/// serve's answer to `POST /admin/reload`: 200 unchanged/reloaded, 409 refused (the old
/// version keeps serving).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadReply {
    pub outcome: ReloadOutcome,
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// serve's public `GET /health` (200 when a model serves, 503 while loading or stopping), read
/// by the gateway's health gate and the loop. Every field reads leniently (absent is `None`, a
/// numeric version is a string), so a partial answer still parses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthReply {
    /// `ok`, `loading` or `stopping`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub model_uri: Option<String>,
    #[serde(default)]
    pub model_name: Option<String>,
    /// The version being served (`"2"` or `2` when read).
    #[serde(default, deserialize_with = "version")]
    pub model_version: Option<String>,
    #[serde(default)]
    pub registry_version: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    /// The flavor's kind of model (`regressor`, `classifier`, ...).
    #[serde(default)]
    pub model_kind: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub loaded_at: Option<String>,
    #[serde(default)]
    pub loaded_at_unix: Option<f64>,
    /// The last version a reload refused (the one before keeps serving).
    #[serde(default)]
    pub last_reload_error: Option<ReloadRefusal>,
    /// RFC 3339.
    #[serde(default)]
    pub last_reload_check: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub server_version: Option<String>,
}

/// A version a reload refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadRefusal {
    /// The target id (`name/4`, ...) or the model URI when the lookup itself failed.
    pub target: String,
    pub error: String,
    /// RFC 3339.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_loosely_and_print_lowercase() {
        assert_eq!(" Green ".parse::<Colour>(), Ok(Colour::Green));
        assert_eq!("BLUE".parse::<Colour>().map(Colour::other), Ok(Colour::Green));
        let e = "red".parse::<Colour>().unwrap_err();
        assert_eq!(e.to_string(), "unknown colour \"red\": expected \"blue\" or \"green\"");
        assert_eq!(serde_json::to_string(&Colour::Blue).unwrap(), "\"blue\"");
    }

    #[test]
    fn shares_give_the_rest_to_the_other_colour() {
        assert_eq!(Weights::share(Colour::Green, 25), Weights { blue: 75, green: 25 });
        assert_eq!(Weights::share(Colour::Blue, 5), Weights { blue: 5, green: 95 });
        assert_eq!(Weights::all(Colour::Green), Weights { blue: 0, green: 100 });
    }

    #[test]
    fn switch_request_takes_a_numeric_version_and_refuses_unknown_fields() {
        let r: SwitchRequest = serde_json::from_str(r#"{"to": " Green", "expect_version": 2}"#).unwrap();
        assert_eq!((r.to, r.expect_version.as_deref()), (Some(Colour::Green), Some("2")));
        assert!(serde_json::from_str::<SwitchRequest>(r#"{"to": "red"}"#).is_err());
        assert!(serde_json::from_str::<SwitchRequest>(r#"{"too": "green"}"#).is_err());
    }
}
