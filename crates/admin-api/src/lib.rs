//! The admin protocol spoken between our own processes: the gateway's admin API (`factory
//! deploy`, the loop's blue-green rollout), serve's admin listener (`POST /admin/reload`, the
//! loop's hot reload) — paths as constants, request and reply bodies as types, bearer tokens
//! checked in constant time, and a typed client. Both sides use these types, so a renamed
//! field fails to compile instead of failing in production.

pub mod client;
pub mod token;

pub use client::{AdminClient, ClientError};
pub use token::{Identity, TokenError, Tokens};

use serde::{Deserialize, Serialize};

/// Paths of the gateway admin API.
pub mod gateway_paths {
    pub const STATUS: &str = "/status";
    pub const SWITCH: &str = "/switch";
    pub const ROLLBACK: &str = "/rollback";
    pub const WEIGHTS: &str = "/weights";
    pub const SHADOW: &str = "/shadow";
    pub const AUDIT: &str = "/audit";
    pub const METRICS: &str = "/metrics";
}

/// Paths of serve's admin listener (`--admin-port`); the public port answers 404 for them.
pub mod serve_paths {
    /// Everything under it is admin-only.
    pub const PREFIX: &str = "/admin/";
    pub const RELOAD: &str = "/admin/reload";
    /// Public health (on the serving port).
    pub const HEALTH: &str = "/health";
}

/// `POST /switch`: move new traffic to `to` (default: the idle colour) after its health gate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Refuse unless the target's `/health` reports this `model_version` (`"2"` or `2`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "version")]
    pub expect_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout_secs: Option<f64>,
    /// A note recorded next to the authenticated identity in the audit log (never trusted as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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

/// `POST /rollback`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /weights`: one or both colours in percent; the missing one gets the rest of 100.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowRequest {
    pub percent: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Any refused admin call: `{"error": "..."}` with a 4xx/5xx status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

/// The part of every gateway operation's answer the clients act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationReply {
    pub operation_id: String,
}

/// One colour in [`StatusReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub address: String,
    pub healthy: bool,
    pub model_version: Option<String>,
    pub consecutive_failures: u32,
    pub requests: u64,
    pub errors: u64,
    pub in_flight: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstreams {
    pub blue: UpstreamStatus,
    pub green: UpstreamStatus,
}

impl Upstreams {
    /// The colour named `colour` ("blue" or "green").
    pub fn get(&self, colour: &str) -> Option<&UpstreamStatus> {
        match colour {
            "blue" => Some(&self.blue),
            "green" => Some(&self.green),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsReply {
    pub blue: u32,
    pub green: u32,
}

/// `GET /status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// `blue` or `green`.
    pub active: String,
    pub previous: Option<String>,
    pub weights: WeightsReply,
    pub shadow_percent: u32,
    pub upstreams: Upstreams,
}

impl StatusReply {
    /// The colour not receiving traffic.
    pub fn idle(&self) -> &'static str {
        if self.active == "blue" {
            "green"
        } else {
            "blue"
        }
    }
}

/// `POST /admin/reload[?force=true]` on serve.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadQuery {
    #[serde(default)]
    pub force: bool,
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded,
    Refused,
}

/// serve's answer to `POST /admin/reload`: 200 unchanged/reloaded, 409 refused (the old
/// version keeps serving).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The part of serve's `GET /health` the loop reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReply {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub model_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_old_who() {
        assert!(serde_json::from_str::<SwitchRequest>(r#"{"to":"green","who":"mallory"}"#).is_err());
        let s: SwitchRequest = serde_json::from_str(r#"{"to":"green","note":"ci"}"#).unwrap();
        assert_eq!(s.to.as_deref(), Some("green"));
        assert_eq!(serde_json::to_string(&RollbackRequest::default()).unwrap(), "{}");
    }

    #[test]
    fn reload_reply_round_trips() {
        let r = ReloadReply {
            outcome: ReloadOutcome::Reloaded,
            model_version: Some("2".into()),
            previous_version: Some("1".into()),
            target: None,
            error: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"outcome":"reloaded","model_version":"2","previous_version":"1"}"#);
        assert_eq!(serde_json::from_str::<ReloadReply>(&text).unwrap(), r);
    }
}
