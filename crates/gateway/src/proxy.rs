//! The data plane: every request on the listen port reads the routing state once (lock-free),
//! picks a colour (canary weights), and is forwarded with its streaming body over the
//! matching client — HTTP/2 and gRPC over h2, HTTP/1.1 over HTTP/1.1 — so trailers, streams
//! and status codes pass through untouched. The response body carries the in-flight guard,
//! so a request counts as in flight (for draining) until its last byte or trailer is sent.
//! A shadowed request is buffered, sent to both colours, and the idle colour's answer is
//! compared and discarded — only when its body fits `shadow_max_body_bytes` and fewer than
//! `shadow_max_in_flight` copies are in flight; otherwise it is forwarded, streaming, without a
//! copy (counted in `gateway_shadow_dropped_total`). A caller that hangs up or stalls mid-body
//! is not an upstream failure: only connect errors, upstream timeouts and 5xx feed passive
//! health.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use listener::RequestBody;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::client::{error_chain, CallerBody, Clients, Prefixed, UpstreamBody};
use crate::control::Gateway;
use crate::state::{Colour, WeightsExt};
use crate::upstream::{HealthChange, InFlight, Upstream};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What the gateway answers with.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Response header naming the colour that answered.
pub const UPSTREAM_HEADER: &str = "x-gateway-upstream";
/// The request id header `factory serve` reads (and answers with).
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; `te: trailers` is, as gRPC needs it.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for h in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
        headers.remove(h);
    }
    if headers.get(http::header::TE).is_some_and(|v| v.as_bytes() != b"trailers") {
        headers.remove(http::header::TE);
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn upstream_uri(address: &str, uri: &Uri) -> Uri {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("http://{address}{pq}").parse().unwrap_or_else(|_| Uri::from_static("http://invalid/"))
}

/// What one data-plane worker serves requests with: the shared gateway, the worker's own
/// upstream clients (their connections live on the worker's event loop), and the control
/// runtime that operations a request triggers (automatic failover) run on.
pub struct Worker {
    pub gw: Arc<Gateway>,
    pub clients: Clients,
    pub control: tokio::runtime::Handle,
}

/// Serves one request on the listen port.
pub async fn handle(w: Arc<Worker>, req: Request<RequestBody>) -> Result<Response<ProxyBody>, Infallible> {
    if is_admin_path(req.uri().path()) {
        return Ok(not_forwarded());
    }
    let (colour, shadow) = {
        let r = w.gw.routing();
        let colour = r.weights.pick(fastrand::u32(0..100));
        (colour, r.shadow_percent > 0 && fastrand::u32(0..100) < r.shadow_percent)
    };
    if !shadow {
        let (parts, body) = req.into_parts();
        return Ok(forward(&w, colour, parts, Box::pin(body), None).await);
    }
    // Both colours score a shadowed request under one request id (serve logs rows by it, and
    // makes one of its own when none is given).
    let mut req = req;
    if !req.headers().contains_key(REQUEST_ID_HEADER) {
        if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string()) {
            req.headers_mut().insert(REQUEST_ID_HEADER, id);
        }
    }
    Ok(match take_for_shadow(&w, req).await {
        Shadow::Copy(parts, bytes, slot) => shadowed(w, colour, parts, bytes, slot).await,
        Shadow::Skip(parts, body, read) => {
            w.gw.counters.shadow_dropped.fetch_add(1, Ordering::Relaxed);
            forward(&w, colour, parts, body, read).await
        }
        Shadow::CallerFailed(e) => {
            w.gw.counters.client_aborts.fetch_add(1, Ordering::Relaxed);
            let grpc = false;
            let mut r = error_response(grpc, colour, format!("reading the request body: {}", error_chain(&*e)));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
    })
}

/// What to do with a request picked for shadowing.
enum Shadow {
    /// Small enough and a shadow slot free: buffered, to be sent to both colours.
    Copy(http::request::Parts, Bytes, tokio::sync::OwnedSemaphorePermit),
    /// Too large or the shadow is behind: forwarded without a copy, streaming (with what was
    /// already read put back in front).
    Skip(http::request::Parts, Pin<Box<RequestBody>>, Option<Bytes>),
    CallerFailed(BoxError),
}

/// Buffers a request body for shadowing only when it fits `--shadow-max-body-bytes` and a
/// shadow slot (`--shadow-max-in-flight`) is free; memory stays bounded whatever the body.
async fn take_for_shadow(w: &Worker, req: Request<RequestBody>) -> Shadow {
    let limit = w.gw.settings.shadow_max_body_bytes;
    let declared = req
        .body()
        .size_hint()
        .exact()
        .or_else(|| req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()));
    let (parts, body) = req.into_parts();
    let mut body = Box::pin(body);
    if declared.is_some_and(|n| n > limit as u64) {
        return Shadow::Skip(parts, body, None);
    }
    let Ok(slot) = w.gw.shadow_slots.clone().try_acquire_owned() else {
        return Shadow::Skip(parts, body, None);
    };
    let mut buf = bytes::BytesMut::new();
    loop {
        match body.frame().await {
            None => return Shadow::Copy(parts, buf.freeze(), slot),
            Some(Err(e)) => return Shadow::CallerFailed(e),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                }
                if buf.len() > limit {
                    // Chunked and larger than it said nothing about: stream it on, no copy.
                    return Shadow::Skip(parts, body, Some(buf.freeze()));
                }
            }
        }
    }
}

/// serve's admin plane (`/admin/*`) is never reachable through the gateway.
fn is_admin_path(path: &str) -> bool {
    let p = path.trim_start_matches('/');
    let first = p.split('/').next().unwrap_or_default();
    first.eq_ignore_ascii_case("admin") || first.to_ascii_lowercase().starts_with("%61dmin")
}

fn not_forwarded() -> Response<ProxyBody> {
    let body = serde_json::to_vec(&admin_api::ErrorReply { error: "not found".into() }).expect("json");
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn note(w: &Worker, up: &Upstream, change: HealthChange) {
    let gw = &w.gw;
    match change {
        HealthChange::None => {}
        HealthChange::Recovered => tracing::info!("{} ({}) answers again: healthy", up.colour, up.address),
        HealthChange::BecameUnhealthy => {
            tracing::warn!(
                "{} ({}) failed {} requests in a row: marked unhealthy",
                up.colour,
                up.address,
                up.consecutive_failures.load(Ordering::Relaxed)
            );
            if gw.settings.auto_failover && gw.routing().active == up.colour {
                let gw = gw.clone();
                let colour = up.colour;
                w.control.spawn(async move { gw.auto_failover(colour).await });
            }
        }
    }
}

/// Forwards `req` (after `read`, the part of its body already read, when there is one).
async fn forward(
    w: &Worker,
    colour: Colour,
    mut parts: http::request::Parts,
    body: Pin<Box<RequestBody>>,
    read: Option<Bytes>,
) -> Response<ProxyBody> {
    let up = w.gw.upstream(colour).clone();
    let grpc = is_grpc(&parts.headers);
    let version = parts.version;
    parts.uri = upstream_uri(&up.address, &parts.uri);
    strip_hop_by_hop(&mut parts.headers);
    let guard = up.begin();
    let body = if let Some(read) = read {
        Either::Left(Prefixed::new(Some(Frame::data(read)), body))
    } else if grpc {
        match read_ahead(body).await {
            Ok(b) => b,
            Err(e) => {
                let msg = format!("reading the request from the caller failed: {}", error_chain(&*e));
                return error_response(grpc, colour, msg);
            }
        }
    } else {
        Either::Left(Prefixed::new(None, body))
    };
    let caller = match &body {
        Either::Left(p) => p.caller(),
        Either::Right(_) => CallerBody::done(),
    };
    let out = Request::from_parts(parts, body);
    let mut aborted = up.aborted();
    let started = Instant::now();
    let timeout = w.gw.settings.upstream_timeout;
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, w.clients.for_version(version).request(out)) => Some(r),
        _ = &mut aborted => None,
    };
    match result {
        Some(Ok(Ok(resp))) => {
            let change = if resp.status().is_server_error() {
                up.record_failure(started.elapsed())
            } else {
                up.record_success(started.elapsed())
            };
            note(w, &up, change);
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.insert(UPSTREAM_HEADER, HeaderValue::from_static(colour.as_str()));
            let body = TrackedBody { inner: body, guard: Some(guard), aborted: Some(aborted) };
            Response::from_parts(parts, body.boxed_unsync())
        }
        Some(Ok(Err(e))) if caller.failed() => {
            // The caller hung up or stalled mid-body: not the upstream's fault, so passive
            // health (and auto-failover) does not hear of it.
            w.gw.counters.client_aborts.fetch_add(1, Ordering::Relaxed);
            let msg = format!("the request body from the caller failed: {}", error_chain(&e));
            tracing::debug!("{msg}");
            let mut r = error_response(grpc, colour, msg);
            if !grpc {
                *r.status_mut() = StatusCode::BAD_REQUEST;
            }
            r
        }
        Some(Ok(Err(e))) => {
            let change = up.record_failure(started.elapsed());
            note(w, &up, change);
            let msg = format!("upstream {colour} ({}) failed: {}", up.address, error_chain(&e));
            tracing::debug!("{msg}");
            error_response(grpc, colour, msg)
        }
        Some(Err(_elapsed)) if !caller.is_done() => {
            // The caller's body was still coming when the time ran out (the caller stalls, and
            // the upstream waits for it): the caller's doing, as above — counted in
            // client_aborts, not against the upstream, so stalled callers cannot fail a colour
            // over.
            w.gw.counters.client_aborts.fetch_add(1, Ordering::Relaxed);
            let msg = format!("the request body from the caller did not arrive within {timeout:?}");
            tracing::debug!("{msg}");
            let mut r = error_response(grpc, colour, msg);
            if !grpc {
                *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
            }
            r
        }
        Some(Err(_elapsed)) => {
            let change = up.record_failure(started.elapsed());
            note(w, &up, change);
            let msg = format!("upstream {colour} ({}) did not answer within {timeout:?}", up.address);
            tracing::debug!("{msg}");
            let mut r = error_response(grpc, colour, msg);
            if !grpc {
                *r.status_mut() = StatusCode::GATEWAY_TIMEOUT;
            }
            r
        }
        None => error_response(grpc, colour, format!("upstream {colour}: ended by the gateway (drain timeout)")),
    }
}

/// A gRPC request's first frame, read before forwarding: a unary call (one message, then
/// the end of the stream) goes upstream as one buffered body, so the h2 client writes its
/// headers and message together instead of handing the body to a separate pipe task;
/// a streaming call goes on streaming with that frame put back in front.
async fn read_ahead(mut body: Pin<Box<RequestBody>>) -> Result<UpstreamBody, BoxError> {
    let Some(first) = body.frame().await.transpose()? else {
        return Ok(Either::Right(Full::new(Bytes::new())));
    };
    if body.is_end_stream() && first.is_data() {
        let data = first.into_data().unwrap_or_default();
        return Ok(Either::Right(Full::new(data)));
    }
    Ok(Either::Left(Prefixed::new(Some(first), body)))
}

/// 502 with `{"error"}`, or for gRPC a trailers-only `UNAVAILABLE`.
fn error_response(grpc: bool, colour: Colour, msg: String) -> Response<ProxyBody> {
    let mut resp = if grpc {
        let mut r = Response::new(Full::new(Bytes::new()));
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        r.headers_mut().insert("grpc-status", HeaderValue::from_static("14"));
        let clean: String = msg.chars().map(|c| if (' '..='~').contains(&c) && c != '%' { c } else { '?' }).collect();
        if let Ok(v) = HeaderValue::from_str(&clean) {
            r.headers_mut().insert("grpc-message", v);
        }
        r
    } else {
        let body = serde_json::to_vec(&serde_json::json!({ "error": msg })).expect("json");
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    resp.headers_mut().insert(UPSTREAM_HEADER, HeaderValue::from_static(colour.as_str()));
    resp.map(|b| b.map_err(|never| match never {}).boxed_unsync())
}

/// The parts of an answer that shadow traffic compares.
#[derive(PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    grpc_status: Option<HeaderValue>,
    body: Bytes,
}

struct Collected {
    parts: http::response::Parts,
    body: Bytes,
    trailers: Option<HeaderMap>,
}

async fn send_buffered(
    clients: &Clients,
    up: &Upstream,
    version: Version,
    method: http::Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Collected, String> {
    let mut req = Request::new(Either::Right(Full::new(body)));
    *req.method_mut() = method;
    *req.uri_mut() = upstream_uri(&up.address, uri);
    *req.version_mut() = version;
    *req.headers_mut() = headers;
    let resp = clients.for_version(version).request(req).await.map_err(|e| error_chain(&e))?;
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.map_err(|e| error_chain(&e))?;
    let trailers = collected.trailers().cloned();
    Ok(Collected { parts, body: collected.to_bytes(), trailers })
}

fn answer(c: &Collected) -> Answer {
    let grpc_status =
        c.trailers.as_ref().and_then(|t| t.get("grpc-status")).or_else(|| c.parts.headers.get("grpc-status"));
    Answer { status: c.parts.status, grpc_status: grpc_status.cloned(), body: c.body.clone() }
}

async fn shadowed(
    w: Arc<Worker>,
    colour: Colour,
    mut parts: http::request::Parts,
    bytes: Bytes,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Response<ProxyBody> {
    let gw = &w.gw;
    let grpc = is_grpc(&parts.headers);
    strip_hop_by_hop(&mut parts.headers);
    gw.counters.shadow_requests.fetch_add(1, Ordering::Relaxed);
    let mirror = {
        let w = w.clone();
        let (method, uri, headers, version, bytes) =
            (parts.method.clone(), parts.uri.clone(), parts.headers.clone(), parts.version, bytes.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let up = w.gw.upstream(colour.other()).clone();
            send_buffered(&w.clients, &up, version, method, &uri, headers, bytes).await.map(|c| answer(&c))
        })
    };
    let up = gw.upstream(colour).clone();
    let guard = up.begin();
    let started = Instant::now();
    let result = send_buffered(&w.clients, &up, parts.version, parts.method, &parts.uri, parts.headers, bytes).await;
    drop(guard);
    match result {
        Ok(c) => {
            let change = if c.parts.status.is_server_error() {
                up.record_failure(started.elapsed())
            } else {
                up.record_success(started.elapsed())
            };
            note(&w, &up, change);
            let primary = answer(&c);
            let counters = gw.clone();
            tokio::spawn(async move {
                match mirror.await {
                    Ok(Ok(a)) => {
                        if a.status.is_success() && primary.status.is_success() {
                            if let Some(d) = crate::difference::largest(&primary.body, &a.body) {
                                counters.shadow_difference.observe(d);
                            }
                        }
                        if a != primary {
                            counters.counters.shadow_divergences.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        counters.counters.shadow_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            let Collected { mut parts, body, trailers } = c;
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.insert(UPSTREAM_HEADER, HeaderValue::from_static(colour.as_str()));
            let mut frames = vec![Frame::data(body)];
            frames.extend(trailers.map(Frame::trailers));
            let stream = futures::stream::iter(frames.into_iter().map(Ok::<_, BoxError>));
            Response::from_parts(parts, StreamBody::new(stream).boxed_unsync())
        }
        Err(e) => {
            mirror.abort();
            let change = up.record_failure(started.elapsed());
            note(&w, &up, change);
            error_response(grpc, colour, format!("upstream {colour} ({}) failed: {e}", up.address))
        }
    }
}

/// An upstream response body that keeps its request in flight until it ends, and ends early
/// when the gateway aborts the colour (drain timeout).
struct TrackedBody {
    inner: hyper::body::Incoming,
    guard: Option<InFlight>,
    aborted: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(a) = this.aborted.as_mut() {
            if a.as_mut().poll(cx).is_ready() {
                this.aborted = None;
                this.guard = None;
                return Poll::Ready(Some(Err("response ended by the gateway: drain timeout".into())));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
            Poll::Ready(Some(Err(e))) => {
                if let Some(g) = this.guard.take() {
                    g.upstream().errors.fetch_add(1, Ordering::Relaxed);
                }
                this.aborted = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.guard = None;
                this.aborted = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_but_te_trailers_kept() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        strip_hop_by_hop(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "te"]);
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn admin_paths_are_never_forwarded() {
        for p in ["/admin/reload", "/admin", "//admin/reload", "/ADMIN/reload", "/%61dmin/reload"] {
            assert!(is_admin_path(p), "{p}");
        }
        for p in ["/", "/health", "/v2/models/admin/infer", "/administrator"] {
            assert!(!is_admin_path(p), "{p}");
        }
    }

    #[test]
    fn upstream_uris_keep_path_and_query() {
        let u = upstream_uri("127.0.0.1:9", &"http://front:50050/v2/models/m/infer?x=1".parse().unwrap());
        assert_eq!(u.to_string(), "http://127.0.0.1:9/v2/models/m/infer?x=1");
        assert_eq!(upstream_uri("127.0.0.1:9", &"/".parse().unwrap()).to_string(), "http://127.0.0.1:9/");
    }
}
