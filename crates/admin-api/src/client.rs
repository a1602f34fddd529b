//! A typed client of both admin planes, used by `factory deploy` and the loop's rollout.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

use crate::{
    gateway_paths, serve_paths, AuditRecord, CanaryAbortRequest, CanaryPhase, CanaryRequest, CanaryStatus, ChangeReply,
    ErrorReply, HealthReply, ReloadQuery, ReloadReply, RollbackRequest, ShadowRequest, StatusReply, StepVerdict,
    SwitchReply, SwitchRequest, WeightsRequest,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not reached, or no answer in time.
    #[error("{method} {url}: {source}")]
    Transport { method: &'static str, url: String, source: reqwest::Error },
    /// The server answered with an error status (its `error` message when it gave one).
    #[error("{method} {url}: HTTP {status}: {message}")]
    Refused { method: &'static str, url: String, status: u16, message: String },
    /// The answer was not the expected JSON.
    #[error("{method} {url}: unexpected answer: {message}")]
    Decode { method: &'static str, url: String, message: String },
}

/// One admin endpoint (a gateway admin API or a serve admin listener) and its token.
#[derive(Clone, Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    timeout: Duration,
}

/// `host:port` or a URL, without a trailing slash.
pub fn base_url(addr: &str) -> String {
    let a = addr.trim_end_matches('/');
    if a.starts_with("http://") || a.starts_with("https://") {
        a.to_string()
    } else {
        format!("http://{a}")
    }
}

impl AdminClient {
    pub fn new(http: reqwest::Client, addr: &str, token: Option<String>) -> AdminClient {
        AdminClient { http, base: base_url(addr), token, timeout: Duration::from_secs(120) }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> AdminClient {
        self.timeout = timeout;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn status(&self) -> Result<StatusReply, ClientError> {
        self.call("GET", gateway_paths::STATUS, None::<&()>).await
    }

    pub async fn switch(&self, req: &SwitchRequest) -> Result<SwitchReply, ClientError> {
        self.call("POST", gateway_paths::SWITCH, Some(req)).await
    }

    pub async fn rollback(&self, req: &RollbackRequest) -> Result<SwitchReply, ClientError> {
        self.call("POST", gateway_paths::ROLLBACK, Some(req)).await
    }

    pub async fn weights(&self, req: &WeightsRequest) -> Result<ChangeReply, ClientError> {
        self.call("POST", gateway_paths::WEIGHTS, Some(req)).await
    }

    pub async fn shadow(&self, req: &ShadowRequest) -> Result<ChangeReply, ClientError> {
        self.call("POST", gateway_paths::SHADOW, Some(req)).await
    }

    pub async fn canary(&self, req: &CanaryRequest) -> Result<CanaryStatus, ClientError> {
        self.call("POST", gateway_paths::CANARY, Some(req)).await
    }

    /// The canary running, or the last one (`None` when there was none since the gateway started).
    pub async fn canary_status(&self) -> Result<Option<CanaryStatus>, ClientError> {
        match self.call("GET", gateway_paths::CANARY, None::<&()>).await {
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            r => r.map(Some),
        }
    }

    /// Follows canary `operation_id` until it ends, calling `each` once per new step verdict;
    /// the end state (promoted or aborted). A gateway that answers for another canary, or none,
    /// is a decode error (someone else replaced it).
    pub async fn canary_until_done(
        &self,
        operation_id: &str,
        poll: Duration,
        mut each: impl FnMut(&StepVerdict),
    ) -> Result<CanaryStatus, ClientError> {
        let mut shown = 0;
        loop {
            let s = self.canary_status().await?.filter(|s| s.operation_id == operation_id).ok_or_else(|| {
                ClientError::Decode {
                    method: "GET",
                    url: format!("{}{}", self.base, gateway_paths::CANARY),
                    message: format!("canary {operation_id} is not the gateway's canary any more"),
                }
            })?;
            for v in s.verdicts.iter().skip(shown) {
                each(v);
            }
            shown = s.verdicts.len();
            if s.phase != CanaryPhase::Running {
                return Ok(s);
            }
            tokio::time::sleep(poll).await;
        }
    }

    pub async fn canary_abort(&self, req: &CanaryAbortRequest) -> Result<CanaryStatus, ClientError> {
        self.call("POST", gateway_paths::CANARY_ABORT, Some(req)).await
    }

    pub async fn audit(&self) -> Result<Vec<AuditRecord>, ClientError> {
        self.call("GET", gateway_paths::AUDIT, None::<&()>).await
    }

    /// serve: `POST /admin/reload`.
    pub async fn reload(&self, q: &ReloadQuery) -> Result<ReloadReply, ClientError> {
        let path = if q.force { format!("{}?force=true", serve_paths::RELOAD) } else { serve_paths::RELOAD.into() };
        self.call("POST", &path, None::<&()>).await
    }

    /// serve: `GET /health` (public; works on the serving port).
    pub async fn health(&self) -> Result<HealthReply, ClientError> {
        self.call("GET", serve_paths::HEALTH, None::<&()>).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        }
        .timeout(self.timeout);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|source| ClientError::Transport { method, url: url.clone(), source })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|source| ClientError::Transport { method, url: url.clone(), source })?;
        if !status.is_success() {
            // A refused reload still carries its reply; the message is what callers show.
            let message = serde_json::from_str::<ErrorReply>(&text).map(|e| e.error).unwrap_or(text);
            return Err(ClientError::Refused { method, url, status: status.as_u16(), message });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode { method, url, message: e.to_string() })
    }
}
