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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A receiver answering one status per request, in order; returns its URL and, per
    /// request, the `authorization` header it got.
    async fn receiver(statuses: Vec<u16>) -> (String, tokio::task::JoinHandle<Vec<Option<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/dispatches", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut auth = Vec::new();
            for status in statuses {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8];
                    conn.read_exact(&mut byte).await.unwrap();
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
                let header = |name: &str| {
                    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(|v| v.trim().to_string()))
                };
                let mut body = vec![0u8; header("content-length").map_or(0, |n| n.parse().unwrap())];
                conn.read_exact(&mut body).await.unwrap();
                auth.push(header("authorization"));
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope");
                conn.write_all(reply.as_bytes()).await.unwrap();
            }
            auth
        });
        (url, task)
    }

    fn settings(url: &str, attempts: u32) -> WebhookSettings {
        WebhookSettings { url: Some(url.into()), token_env: "T".into(), attempts, event_type: "drift-detected".into() }
    }

    #[tokio::test]
    async fn retries_until_delivered() {
        let (url, got) = receiver(vec![500, 503, 204]).await;
        let d = send(&reqwest::Client::new(), &settings(&url, 5), Some("t0ken".into()), json!({}), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(d, Delivery { delivered: true, attempts: 3, status: Some(204), error: None });
        assert_eq!(got.await.unwrap(), vec![Some("bearer t0ken".to_string()); 3]);
    }

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let (url, got) = receiver(vec![500, 500]).await;
        let d = send(&reqwest::Client::new(), &settings(&url, 2), Some(String::new()), json!({}), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((d.delivered, d.attempts, d.status), (false, 2, Some(500)));
        assert_eq!(d.error.as_deref(), Some("HTTP 500 Internal Server Error: nope"));
        assert_eq!(got.await.unwrap(), vec![None, None], "an empty token sends no Authorization");
    }

    #[tokio::test]
    async fn no_url_sends_nothing() {
        let s = WebhookSettings { url: None, ..settings("", 3) };
        assert_eq!(send(&reqwest::Client::new(), &s, None, json!({}), Duration::ZERO).await, None);
    }
}
