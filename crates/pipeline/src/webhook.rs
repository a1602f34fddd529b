//! Events out: GitHub's `repository_dispatch` body, so a workflow triggered `on:
//! repository_dispatch: types: [drift-detected]` runs exactly as the seed's did.
//!
//! `POST <url>` with `{"event_type": "drift-detected", "client_payload": {...}}`,
//! `Accept: application/vnd.github+json` and `Authorization: Bearer <token>` when a token is
//! given (the caller looks it up: the loop never reads the environment). Failures (network errors, non-2xx answers) are retried with
//! exponential backoff and logged; they never fail the cycle.

use crate::config::WebhookSettings;
use serde_json::{json, Value};
use std::time::Duration;

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub delivered: bool,
    pub attempts: u32,
    /// HTTP status of the last answer, if any.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The `repository_dispatch` body.
pub fn body(event_type: &str, payload: Value) -> Value {
    json!({ "event_type": event_type, "client_payload": payload })
}

/// Posts the event with `token` as bearer (none when `None` or empty), retrying with backoff
/// starting at `first_backoff`.
pub async fn send(
    http: &reqwest::Client,
    settings: &WebhookSettings,
    token: Option<String>,
    payload: Value,
    first_backoff: Duration,
) -> Option<Delivery> {
    let url = settings.url.as_deref()?;
    let token = token.filter(|t| !t.is_empty());
    let body = body(&settings.event_type, payload);
    let mut backoff = first_backoff;
    let mut last = Delivery { delivered: false, attempts: 0, status: None, error: None };
    for attempt in 1..=settings.attempts {
        last.attempts = attempt;
        let mut req = http
            .post(url)
            .header("Accept", "application/vnd.github+json")
            .header("User-Agent", "factory-loop")
            .timeout(Duration::from_secs(10))
            .json(&body);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                last.status = Some(resp.status().as_u16());
                last.delivered = true;
                last.error = None;
                tracing::info!(url, attempt, status = resp.status().as_u16(), "webhook delivered");
                return Some(last);
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                last.status = Some(status.as_u16());
                last.error = Some(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()));
            }
            Err(e) => {
                last.status = None;
                last.error = Some(e.to_string());
            }
        }
        tracing::warn!(url, attempt, of = settings.attempts, error = ?last.error, "webhook delivery failed");
        if attempt < settings.attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(Duration::from_secs(60));
        }
    }
    tracing::error!(url, attempts = settings.attempts, error = ?last.error, "webhook not delivered; giving up");
    Some(last)
}
