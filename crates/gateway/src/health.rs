//! The health gate: before traffic moves to a colour, ask it over gRPC
//! (`grpc.health.v1.Health/Check`, raw HTTP/2 so the gateway needs no protobuf stack) and
//! over HTTP (`GET /health`: `status` must be `ok`, and `model_version` must equal the
//! expected version when one is given). Both must pass.

use bytes::{Buf, Bytes};
use http::{Method, Request, Version};
use http_body_util::{BodyExt, Either, Full};
use std::time::Duration;

use crate::client::{error_chain, Clients};
use crate::state::Colour;

pub use admin_api::{CheckResult, HealthReport};

/// Probes `address` over gRPC and HTTP at once.
pub async fn check(
    clients: &Clients,
    colour: Colour,
    address: &str,
    expected_version: Option<&str>,
    timeout: Duration,
) -> HealthReport {
    let (grpc, (http, model_version)) =
        tokio::join!(grpc_check(clients, address, timeout), http_check(clients, address, expected_version, timeout));
    HealthReport {
        colour,
        address: address.into(),
        ok: grpc.ok && http.ok,
        grpc,
        http,
        model_version,
        expected_version: expected_version.map(str::to_string),
    }
}

fn fail(detail: impl Into<String>) -> CheckResult {
    CheckResult { ok: false, detail: detail.into() }
}

async fn grpc_check(clients: &Clients, address: &str, timeout: Duration) -> CheckResult {
    // An empty HealthCheckRequest (service "" = the whole server): a 5-byte gRPC frame header.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{address}/grpc.health.v1.Health/Check"))
        .version(Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Either::Right(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))))
        .expect("static request");
    let call = async {
        let resp = clients.for_version(http::Version::HTTP_2).request(req).await.map_err(|e| error_chain(&e))?;
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.map_err(|e| error_chain(&e))?;
        Ok::<_, String>((parts, collected))
    };
    let (parts, collected) = match tokio::time::timeout(timeout, call).await {
        Err(_) => return fail(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => return fail(e),
        Ok(Ok(r)) => r,
    };
    if !parts.status.is_success() {
        return fail(format!("HTTP status {}", parts.status));
    }
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let grpc_status = trailers.get("grpc-status").or_else(|| parts.headers.get("grpc-status"));
    let code = grpc_status.and_then(|v| v.to_str().ok()).unwrap_or("");
    if code != "0" {
        let msg = trailers
            .get("grpc-message")
            .or_else(|| parts.headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        return fail(format!("grpc-status {code:?} {msg}").trim_end().to_string());
    }
    match serving_status(collected.to_bytes()) {
        Some(1) => CheckResult { ok: true, detail: "SERVING".into() },
        Some(s) => fail(format!("status {}", status_name(s))),
        None => fail("unreadable HealthCheckResponse"),
    }
}

fn status_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unknown value",
    }
}

/// Field 1 (`status`, varint) of a framed `HealthCheckResponse`; absent means 0 (UNKNOWN).
fn serving_status(mut framed: Bytes) -> Option<u64> {
    if framed.len() < 5 || framed[0] != 0 {
        return None;
    }
    framed.advance(1);
    let len = framed.get_u32() as usize;
    let mut msg = framed.get(..len)?;
    let mut status = 0;
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(&mut msg)?,
            (_, 0) => {
                varint(&mut msg)?;
            }
            (_, 2) => {
                let n = varint(&mut msg)? as usize;
                msg = msg.get(n..)?;
            }
            (_, 1) => msg = msg.get(8..)?,
            (_, 5) => msg = msg.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `GET /health`; returns the verdict and the version it reported.
async fn http_check(
    clients: &Clients,
    address: &str,
    expected: Option<&str>,
    timeout: Duration,
) -> (CheckResult, Option<String>) {
    let (status, body) = match http_health(clients, address, timeout).await {
        Ok(r) => r,
        Err(e) => return (fail(e), None),
    };
    let reply: admin_api::HealthReply = serde_json::from_slice(&body).unwrap_or_default();
    let version = reply.model_version;
    let reported = reply.status.as_deref().unwrap_or("");
    let result = if !status.is_success() || reported != "ok" {
        fail(format!("HTTP status {status}, status {reported:?}"))
    } else {
        match (expected, &version) {
            (Some(want), Some(got)) if want != got => fail(format!("model_version is {got:?}, expected {want:?}")),
            (Some(want), None) => fail(format!("no model_version reported, expected {want:?}")),
            _ => CheckResult { ok: true, detail: format!("ok, model_version {}", version.as_deref().unwrap_or("?")) },
        }
    };
    (result, version)
}

/// `GET http://address/health` → (status, body).
pub async fn http_health(
    clients: &Clients,
    address: &str,
    timeout: Duration,
) -> Result<(http::StatusCode, Bytes), String> {
    let req = Request::builder()
        .uri(format!("http://{address}/health"))
        .body(Either::Right(Full::new(Bytes::new())))
        .expect("static request");
    let call = async {
        let resp = clients.http1.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| error_chain(&e))?.to_bytes();
        Ok::<_, String>((status, body))
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(format!("no answer within {timeout:?}")),
        Ok(r) => r,
    }
}

/// The model version `/health` reports now, if it answers.
pub async fn current_version(clients: &Clients, address: &str, timeout: Duration) -> Option<String> {
    let (_, body) = http_health(clients, address, timeout).await.ok()?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    match json.get("model_version")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(framed: &[u8], expect: Option<u64>) {
        assert_eq!(serving_status(Bytes::copy_from_slice(framed)), expect, "{framed:?}");
    }

    #[test]
    fn reads_the_serving_status() {
        check(&[0, 0, 0, 0, 2, 0x08, 0x01], Some(1));
        check(&[0, 0, 0, 0, 2, 0x08, 0x02], Some(2));
        check(&[0, 0, 0, 0, 0], Some(0));
        check(&[0, 0, 0, 0, 5, 0x12, 0x01, b'x', 0x08, 0x01], Some(1));
        check(&[0, 0, 0, 0, 9, 0x08], None);
        check(&[1, 0, 0, 0, 0], None);
        check(&[0, 0], None);
    }
}
