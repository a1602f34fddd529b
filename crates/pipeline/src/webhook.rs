//! Events out: GitHub's `repository_dispatch` body, so a workflow triggered `on:
//! repository_dispatch: types: [drift-detected]` runs exactly as the seed's did.
//!
//! `POST <url>` with `{"event_type": "drift-detected", "client_payload": {...}}`,
//! `Accept: application/vnd.github+json` and `Authorization: Bearer <token>` when a token is
//! given (the caller looks it up: the loop never reads the environment). Failures (network errors, non-2xx answers) are retried with
//! exponential backoff and logged; they never fail the cycle.

use crate::config::WebhookSettings;
use backon::{ExponentialBuilder, Retryable};
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

/// Why one delivery attempt failed.
struct Failed {
    status: Option<u16>,
    error: String,
}

/// Posts the event with `token` as bearer (none when `None` or empty), retrying with
/// exponential backoff (`backon`) from `first_backoff`, doubling up to 60 s, for
/// `settings.attempts` attempts in all.
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
    let backoff = ExponentialBuilder::new()
        .with_min_delay(first_backoff)
        .with_factor(2.0)
        .with_max_delay(Duration::from_secs(60))
        .with_max_times(settings.attempts.saturating_sub(1) as usize);
    let mut attempts = 0;
    let post = || {
        attempts += 1;
        let mut req = http
            .post(url)
            .header("Accept", "application/vnd.github+json")
            .header("User-Agent", "factory-loop")
            .timeout(Duration::from_secs(10))
            .json(&body);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        async move {
            match req.send().await {
                Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let error = format!("HTTP {status}: {}", text.chars().take(200).collect::<String>());
                    Err(Failed { status: Some(status.as_u16()), error })
                }
                Err(e) => Err(Failed { status: None, error: e.to_string() }),
            }
        }
    };
    let outcome = post
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .notify(|f: &Failed, wait| tracing::warn!(url, error = %f.error, ?wait, "webhook delivery failed; retrying"))
        .await;
    Some(match outcome {
        Ok(status) => {
            tracing::info!(url, attempts, status, "webhook delivered");
            Delivery { delivered: true, attempts, status: Some(status), error: None }
        }
        Err(f) => {
            tracing::error!(url, attempts, error = %f.error, "webhook not delivered; giving up");
            Delivery { delivered: false, attempts, status: f.status, error: Some(f.error) }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::http::Receiver;

    fn settings(url: &str, attempts: u32) -> WebhookSettings {
        WebhookSettings { url: Some(url.into()), token_env: "T".into(), attempts, event_type: "drift-detected".into() }
    }

    #[tokio::test]
    async fn retries_until_delivered() {
        let hook = Receiver::statuses(&[500, 503, 204]).await;
        let url = format!("{}/dispatches", hook.base);
        let d =
            send(&reqwest::Client::new(), &settings(&url, 5), Some("t0ken".into()), json!({"a": 1}), Duration::ZERO)
                .await
                .unwrap();
        assert_eq!(d, Delivery { delivered: true, attempts: 3, status: Some(204), error: None });
        let got = hook.requests().await;
        assert_eq!(got.len(), 3);
        for r in &got {
            assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/dispatches"));
            assert_eq!(r.header("authorization"), Some("Bearer t0ken"));
            assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body, json!({"event_type": "drift-detected", "client_payload": {"a": 1}}));
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let hook = Receiver::start(vec![(500, b"nope".to_vec()), (500, b"nope".to_vec())]).await;
        let d = send(&reqwest::Client::new(), &settings(&hook.base, 2), Some(String::new()), json!({}), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((d.delivered, d.attempts, d.status), (false, 2, Some(500)));
        assert_eq!(d.error.as_deref(), Some("HTTP 500 Internal Server Error: nope"));
        let got = hook.requests().await;
        assert!(got.iter().all(|r| r.header("authorization").is_none()), "an empty token sends no Authorization");
    }

    #[tokio::test]
    async fn no_url_sends_nothing() {
        let s = WebhookSettings { url: None, ..settings("", 3) };
        assert_eq!(send(&reqwest::Client::new(), &s, None, json!({}), Duration::ZERO).await, None);
    }
}
