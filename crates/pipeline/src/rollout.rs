//! Getting a promoted version served, health-gated, with automatic rollback.
//!
//! - **Hot reload**: `factory serve` follows the production alias. The alias has already moved;
//!   the loop asks the server to re-check now (`POST /admin/reload`), waits until `/health`
//!   reports the new version, then watches `/health` for the window.
//! - **Blue-green**: two `factory serve` behind `factory gateway`, colour `blue` following the
//!   alias `blue` and `green` the alias `green`. The idle colour's alias moves to the new
//!   version, the idle server reloads and must report it on `/health`, then the gateway
//!   switches (its own health gate checks gRPC and HTTP health and the expected version).
//!   During the window the new colour's error count and passive health are read from the
//!   gateway's `/status`; a breach rolls the gateway back.
//! - **Canary**: as blue-green up to the idle colour serving the new version; then the gateway
//!   runs its metric-gated canary (`POST /canary`: steps, each judged on the new colour's own
//!   requests) and the loop follows it to the end. An abort has already moved traffic back;
//!   every step's verdict goes into the outcome (and so the cycle's run).
//!
//! On any failure the caller restores the production alias; this module restores what it
//! moved itself (the idle colour's alias, the gateway's traffic).

use crate::config::{RolloutMode, RolloutSettings};
use admin_api::{
    AdminClient, CanaryPhase, CanaryRequest, ClientError, Colour, ReloadQuery, RollbackRequest, StatusReply,
    StepVerdict, SwitchRequest,
};
use mlflow_client::Client;
use std::time::{Duration, Instant};

/// How a rollout ended.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub ok: bool,
    pub mode: String,
    /// Version the serving side reports at the end.
    pub served_version: Option<String>,
    /// Gateway operation id of the switch (blue-green).
    pub operation_id: Option<String>,
    /// Gateway operation id of the automatic rollback, if one happened.
    pub rollback_operation_id: Option<String>,
    /// Colour now receiving traffic (blue-green).
    pub colour: Option<String>,
    pub message: String,
    /// The canary's step verdicts, in order (canary).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub canary_steps: Vec<StepVerdict>,
}

/// A client of a serve's public port (`/health`) or admin listener, or of the gateway's admin API.
fn client(http: &reqwest::Client, addr: &str, s: &RolloutSettings) -> AdminClient {
    AdminClient::new(http.clone(), addr, s.admin_token.clone())
}

/// The version `factory serve` at `serving` reports on `/health`, if it answers.
pub async fn served_version(http: &reqwest::Client, serving: &str) -> Option<String> {
    let c = AdminClient::new(http.clone(), serving, None).with_timeout(Duration::from_secs(5));
    c.health().await.ok()?.model_version
}

/// Asks serve to re-check its model URI (on its admin listener `admin`; without one, serve's
/// own registry poll picks the new version up) and waits until `/health` reports `version`.
async fn reload_and_wait(
    http: &reqwest::Client,
    s: &RolloutSettings,
    serving: &str,
    admin: Option<&str>,
    version: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + s.timeout;
    match admin {
        Some(a) => {
            if let Err(e) = client(http, a, s).reload(&ReloadQuery::default()).await {
                return Err(format!("{serving} refused version {version}: {e}"));
            }
        }
        None => tracing::info!("no admin URL for {serving}: waiting for its registry poll to load version {version}"),
    }
    loop {
        match served_version(http, serving).await {
            Some(v) if v == version => return Ok(()),
            seen => {
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{serving} still serves version {} after {:?} (expected {version})",
                        seen.unwrap_or_else(|| "?".into()),
                        s.timeout
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rolls `version` of `model_name` out; `settings.mode` picks the strategy.
pub async fn rollout(
    http: &reqwest::Client,
    client: &Client,
    settings: &RolloutSettings,
    model_name: &str,
    version: &str,
    who: &str,
) -> Outcome {
    match settings.mode {
        RolloutMode::HotReload => hot_reload(http, settings, version).await,
        RolloutMode::BlueGreen | RolloutMode::Canary => {
            blue_green(http, client, settings, model_name, version, who).await
        }
    }
}

async fn hot_reload(http: &reqwest::Client, s: &RolloutSettings, version: &str) -> Outcome {
    let serving = s.serving.clone().unwrap_or_default();
    let mut out = Outcome { mode: "hot-reload".into(), ..Outcome::default() };
    if let Err(e) = reload_and_wait(http, s, &serving, s.serving_admin.as_deref(), version).await {
        out.served_version = served_version(http, &serving).await;
        out.message = e;
        return out;
    }
    // The window: the new version must stay healthy and current.
    let health = AdminClient::new(http.clone(), &serving, None).with_timeout(Duration::from_secs(5));
    let end = Instant::now() + s.window;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250).min(s.window)).await;
        match health.health().await {
            Ok(h) if h.model_version.as_deref() == Some(version) => {}
            Ok(h) => {
                out.message = format!(
                    "{serving} stopped serving version {version} within the window: now {}",
                    h.model_version.as_deref().unwrap_or("none")
                );
                out.served_version = h.model_version;
                return out;
            }
            Err(e) => {
                out.message = format!("{serving} failed its health check within the window: {e}");
                return out;
            }
        }
    }
    out.ok = true;
    out.served_version = Some(version.to_string());
    out.message = format!("{serving} serves version {version}");
    out
}

fn counters(status: Option<&StatusReply>, colour: Colour) -> (u64, u64, bool) {
    status.map(|s| s.upstreams.get(colour)).map_or((0, 0, true), |u| (u.requests, u.errors, u.healthy))
}

async fn blue_green(
    http: &reqwest::Client,
    client: &Client,
    s: &RolloutSettings,
    model_name: &str,
    version: &str,
    who: &str,
) -> Outcome {
    let gateway_addr = s.gateway.clone().unwrap_or_default();
    let gateway = client_for_gateway(http, &gateway_addr, s);
    let canary = s.mode == RolloutMode::Canary;
    let mode = if canary { "canary" } else { "blue-green" };
    let mut out = Outcome { mode: mode.into(), ..Outcome::default() };
    let status = match gateway.status().await {
        Ok(st) => st,
        Err(e) => {
            out.message = format!("gateway {gateway_addr} unavailable: {e}");
            return out;
        }
    };
    let (active, idle) = (status.active, status.idle());
    let idle_addr = status.upstreams.get(idle).address.clone();
    let idle_admin = match idle {
        Colour::Blue => s.blue_admin.clone(),
        Colour::Green => s.green_admin.clone(),
    };
    out.colour = Some(active.to_string());
    out.served_version = active_version(http, &gateway).await;
    // The idle colour follows the alias named after it.
    let previous_idle = client.model_version_by_alias(model_name, idle.as_str()).await.ok().map(|v| v.version);
    let restore_idle = || async {
        if let Some(prev) = &previous_idle {
            if let Err(e) = client.set_alias(model_name, idle.as_str(), prev).await {
                tracing::warn!(error = %e, "could not restore alias {idle}");
            }
            if let Some(a) = &idle_admin {
                let _ = self::client(http, a, s).reload(&ReloadQuery::default()).await;
            }
        }
    };
    if let Err(e) = client.set_alias(model_name, idle.as_str(), version).await {
        out.message = format!("could not point alias '{idle}' at version {version}: {e}");
        return out;
    }
    if let Err(e) = reload_and_wait(http, s, &idle_addr, idle_admin.as_deref(), version).await {
        restore_idle().await;
        out.message = format!("idle colour {idle} did not load version {version}: {e}; traffic stays on {active}");
        return out;
    }
    if canary {
        let req = CanaryRequest {
            to: Some(idle),
            expect_version: Some(version.to_string()),
            note: Some(who.to_string()),
            max_error_rate: s.canary.max_error_rate.or(Some(s.error_budget)),
            ..s.canary.clone()
        };
        let started = match gateway.canary(&req).await {
            Ok(started) => started,
            Err(e) => {
                out.message = format!("gateway refused the canary to {idle}: {e}; traffic stays on {active}");
                restore_idle().await;
                return out;
            }
        };
        out.operation_id = Some(started.operation_id.clone());
        let poll = Duration::from_millis(250);
        let end =
            gateway.canary_until_done(&started.operation_id, poll, |v| tracing::info!("canary: {}", v.detail)).await;
        match end {
            Ok(end) if end.phase == CanaryPhase::Promoted => {
                out.ok = true;
                out.colour = Some(idle.to_string());
                out.served_version = Some(version.to_string());
                out.message = format!("canary {active} → {idle} promoted, serving version {version}");
                out.canary_steps = end.verdicts;
            }
            Ok(end) => {
                out.served_version = active_version(http, &gateway).await;
                out.message =
                    format!("canary to {idle} aborted: {}", end.reason.as_deref().unwrap_or("no reason given"));
                out.canary_steps = end.verdicts;
                restore_idle().await;
            }
            Err(e) => {
                // Lost track of our canary: make sure it is not left running.
                let abort = admin_api::CanaryAbortRequest { note: Some(who.to_string()) };
                let stopped = match gateway.canary_abort(&abort).await {
                    Ok(_) => format!("aborted it; traffic back on {active}"),
                    Err(ClientError::Refused { status: 409, .. }) => format!("traffic stays on {active}"),
                    Err(a) => format!("aborting it failed too ({a}); check the gateway"),
                };
                out.message = format!("canary to {idle} failed: {e}; {stopped}");
                restore_idle().await;
            }
        }
        return out;
    }
    let before = gateway.status().await.ok();
    let switch = SwitchRequest {
        to: Some(idle),
        expect_version: Some(version.to_string()),
        drain_timeout_secs: None,
        note: Some(who.to_string()),
    };
    match gateway.switch(&switch).await {
        Ok(v) => out.operation_id = Some(v.operation_id),
        Err(e) => {
            restore_idle().await;
            out.message = format!("gateway refused the switch to {idle}: {e}; traffic stays on {active}");
            return out;
        }
    }
    out.colour = Some(idle.to_string());
    out.served_version = Some(version.to_string());

    // The window: the new colour's errors against the budget, and its passive health.
    let (req0, err0, _) = counters(before.as_ref(), idle);
    let end = Instant::now() + s.window;
    let mut breach = None;
    while Instant::now() < end && breach.is_none() {
        tokio::time::sleep(Duration::from_millis(250).min(s.window)).await;
        match gateway.status().await {
            Ok(st) => {
                let (req, err, healthy) = counters(Some(&st), idle);
                let (n, e) = (req.saturating_sub(req0), err.saturating_sub(err0));
                if !healthy {
                    breach = Some(format!("{idle} was marked unhealthy by the gateway"));
                } else if e > 0 && e as f64 > s.error_budget * n.max(1) as f64 {
                    breach = Some(format!("{idle} failed {e} of {n} requests (budget {:.1}%)", s.error_budget * 100.0));
                }
            }
            Err(e) => breach = Some(format!("gateway status unavailable: {e}")),
        }
    }
    if let Some(why) = breach {
        match gateway.rollback(&RollbackRequest { note: Some(who.to_string()) }).await {
            Ok(v) => {
                out.rollback_operation_id = Some(v.operation_id);
                out.colour = Some(active.to_string());
                out.served_version = active_version(http, &gateway).await;
                out.message = format!("{why}; rolled back to {active}");
            }
            Err(e) => out.message = format!("{why}; rollback to {active} failed too: {e}"),
        }
        restore_idle().await;
        return out;
    }
    out.ok = true;
    out.message = format!("gateway switched {active} → {idle}, serving version {version}");
    out
}

fn client_for_gateway(http: &reqwest::Client, addr: &str, s: &RolloutSettings) -> AdminClient {
    client(http, addr, s)
}

/// The version the gateway's active colour serves.
async fn active_version(http: &reqwest::Client, gateway: &AdminClient) -> Option<String> {
    let st = gateway.status().await.ok()?;
    let addr = st.upstreams.get(st.active).address.clone();
    served_version(http, &addr).await
}
