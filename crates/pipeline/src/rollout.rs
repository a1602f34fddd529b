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
//!
//! On any failure the caller restores the production alias; this module restores what it
//! moved itself (the idle colour's alias, the gateway's traffic).

use crate::config::{RolloutMode, RolloutSettings};
use mlflow_client::Client;
use serde_json::{json, Value};
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
}

fn base(addr: &str) -> String {
    let a = addr.trim_end_matches('/');
    if a.starts_with("http://") || a.starts_with("https://") {
        a.to_string()
    } else {
        format!("http://{a}")
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).timeout(Duration::from_secs(5)).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}: {body}"));
    }
    Ok(body)
}

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> Result<Value, String> {
    let resp = http
        .post(url)
        .timeout(Duration::from_secs(120))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let msg = value.get("error").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| value.to_string());
        return Err(format!("POST {url}: HTTP {status}: {msg}"));
    }
    Ok(value)
}

/// The version `factory serve` at `serving` reports on `/health`, if it answers.
pub async fn served_version(http: &reqwest::Client, serving: &str) -> Option<String> {
    let h = get_json(http, &format!("{}/health", base(serving))).await.ok()?;
    h.get("model_version").and_then(Value::as_str).map(str::to_string)
}

/// Asks `serving` to re-check its model URI and waits until `/health` reports `version`.
async fn reload_and_wait(
    http: &reqwest::Client,
    serving: &str,
    version: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let reload = format!("{}/admin/reload", base(serving));
    if let Err(e) = post_json(http, &reload, json!({})).await {
        return Err(format!("{serving} refused version {version}: {e}"));
    }
    loop {
        match served_version(http, serving).await {
            Some(v) if v == version => return Ok(()),
            seen => {
                if Instant::now() >= deadline {
                    return Err(format!(
                        "{serving} still serves version {} after {:?} (expected {version})",
                        seen.unwrap_or_else(|| "?".into()),
                        timeout
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
        RolloutMode::BlueGreen => blue_green(http, client, settings, model_name, version, who).await,
    }
}

async fn hot_reload(http: &reqwest::Client, s: &RolloutSettings, version: &str) -> Outcome {
    let serving = s.serving.clone().unwrap_or_default();
    let mut out = Outcome { mode: "hot-reload".into(), ..Outcome::default() };
    if let Err(e) = reload_and_wait(http, &serving, version, s.timeout).await {
        out.served_version = served_version(http, &serving).await;
        out.message = e;
        return out;
    }
    // The window: the new version must stay healthy and current.
    let end = Instant::now() + s.window;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250).min(s.window)).await;
        match get_json(http, &format!("{}/health", base(&serving))).await {
            Ok(h) if h.get("model_version").and_then(Value::as_str) == Some(version) => {}
            Ok(h) => {
                out.message = format!("{serving} stopped serving version {version} within the window: {h}");
                out.served_version = h.get("model_version").and_then(Value::as_str).map(str::to_string);
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

/// The gateway's view: (active colour, idle colour, idle address).
async fn gateway_colours(http: &reqwest::Client, gateway: &str) -> Result<(String, String, String), String> {
    let status = get_json(http, &format!("{}/status", base(gateway))).await?;
    let active = status.get("active").and_then(Value::as_str).ok_or_else(|| format!("gateway status: {status}"))?;
    let idle = if active == "blue" { "green" } else { "blue" };
    let addr = status["upstreams"][idle]["address"]
        .as_str()
        .ok_or_else(|| format!("gateway status has no address for {idle}: {status}"))?;
    Ok((active.to_string(), idle.to_string(), addr.to_string()))
}

fn counters(status: &Value, colour: &str) -> (u64, u64, bool) {
    let u = &status["upstreams"][colour];
    (u["requests"].as_u64().unwrap_or(0), u["errors"].as_u64().unwrap_or(0), u["healthy"].as_bool().unwrap_or(true))
}

async fn blue_green(
    http: &reqwest::Client,
    client: &Client,
    s: &RolloutSettings,
    model_name: &str,
    version: &str,
    who: &str,
) -> Outcome {
    let gateway = s.gateway.clone().unwrap_or_default();
    let mut out = Outcome { mode: "blue-green".into(), ..Outcome::default() };
    let (active, idle, idle_addr) = match gateway_colours(http, &gateway).await {
        Ok(c) => c,
        Err(e) => {
            out.message = format!("gateway {gateway} unavailable: {e}");
            return out;
        }
    };
    out.colour = Some(active.clone());
    out.served_version = served_version(http, &gateway_active_addr(http, &gateway).await).await;
    // The idle colour follows the alias named after it.
    let previous_idle = client.model_version_by_alias(model_name, &idle).await.ok().map(|v| v.version);
    let restore_idle = || async {
        if let Some(prev) = &previous_idle {
            if let Err(e) = client.set_alias(model_name, &idle, prev).await {
                tracing::warn!(error = %e, "could not restore alias {idle}");
            }
            let _ = post_json(http, &format!("{}/admin/reload", base(&idle_addr)), json!({})).await;
        }
    };
    if let Err(e) = client.set_alias(model_name, &idle, version).await {
        out.message = format!("could not point alias '{idle}' at version {version}: {e}");
        return out;
    }
    if let Err(e) = reload_and_wait(http, &idle_addr, version, s.timeout).await {
        restore_idle().await;
        out.message = format!("idle colour {idle} did not load version {version}: {e}; traffic stays on {active}");
        return out;
    }
    let before = get_json(http, &format!("{}/status", base(&gateway))).await.unwrap_or(Value::Null);
    let switched = post_json(
        http,
        &format!("{}/switch", base(&gateway)),
        json!({ "to": idle, "expect_version": version, "who": who }),
    )
    .await;
    match switched {
        Ok(v) => out.operation_id = v.get("operation_id").and_then(Value::as_str).map(str::to_string),
        Err(e) => {
            restore_idle().await;
            out.message = format!("gateway refused the switch to {idle}: {e}; traffic stays on {active}");
            return out;
        }
    }
    out.colour = Some(idle.clone());
    out.served_version = Some(version.to_string());

    // The window: the new colour's errors against the budget, and its passive health.
    let (req0, err0, _) = counters(&before, &idle);
    let end = Instant::now() + s.window;
    let mut breach = None;
    while Instant::now() < end && breach.is_none() {
        tokio::time::sleep(Duration::from_millis(250).min(s.window)).await;
        match get_json(http, &format!("{}/status", base(&gateway))).await {
            Ok(st) => {
                let (req, err, healthy) = counters(&st, &idle);
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
        match post_json(http, &format!("{}/rollback", base(&gateway)), json!({ "who": who })).await {
            Ok(v) => {
                out.rollback_operation_id = v.get("operation_id").and_then(Value::as_str).map(str::to_string);
                out.colour = Some(active.clone());
                out.served_version = served_version(http, &gateway_active_addr(http, &gateway).await).await;
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

async fn gateway_active_addr(http: &reqwest::Client, gateway: &str) -> String {
    match get_json(http, &format!("{}/status", base(gateway))).await {
        Ok(st) => {
            let active = st["active"].as_str().unwrap_or("blue").to_string();
            st["upstreams"][active]["address"].as_str().unwrap_or_default().to_string()
        }
        Err(_) => String::new(),
    }
}
