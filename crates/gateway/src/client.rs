//! The two pooled upstream clients: HTTP/1.1 for HTTP/1.1 requests and HTTP/2 (h2c, prior
//! knowledge) for HTTP/2 and gRPC requests, so trailers and streams pass through unchanged
//! and a gRPC call never waits behind another on an HTTP/1.1 connection. Each data-plane
//! worker has its own pair, and the control plane one for its health checks.

use bytes::Bytes;
use http::Version;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A request body sent upstream: streamed from the caller (possibly with its first frame
/// already read), or buffered (unary gRPC, shadowed requests, health checks).
pub type UpstreamBody = Either<Prefixed, Full<Bytes>>;

/// How far the caller's body has come, readable after the body has been handed upstream: an
/// upstream call that fails or times out while the body is still coming (or after reading it
/// failed: the caller hung up or stalled past the body timeout) failed because of the caller,
/// not the upstream.
#[derive(Debug, Clone)]
pub struct CallerBody(Arc<AtomicU8>);

impl CallerBody {
    const SENDING: u8 = 0;
    const DONE: u8 = 1;
    const FAILED: u8 = 2;

    fn sending() -> CallerBody {
        CallerBody(Arc::new(AtomicU8::new(CallerBody::SENDING)))
    }

    /// A body that is already whole (buffered).
    pub fn done() -> CallerBody {
        CallerBody(Arc::new(AtomicU8::new(CallerBody::DONE)))
    }

    /// Whether every byte of the caller's body has arrived.
    pub fn is_done(&self) -> bool {
        self.0.load(Ordering::Relaxed) == CallerBody::DONE
    }

    /// Whether reading the caller's body failed.
    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Relaxed) == CallerBody::FAILED
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }
}

/// The caller's streaming body, with the frame that was read ahead (if any) put back in front.
pub struct Prefixed {
    first: Option<Frame<Bytes>>,
    rest: Pin<Box<listener::RequestBody>>,
    caller: CallerBody,
}

impl Prefixed {
    pub fn new(first: Option<Frame<Bytes>>, rest: Pin<Box<listener::RequestBody>>) -> Prefixed {
        let caller = CallerBody::sending();
        if first.is_none() && rest.is_end_stream() {
            caller.set(CallerBody::DONE);
        }
        Prefixed { first, rest, caller }
    }

    /// Where the caller's body stands, readable after the body has been handed away.
    pub fn caller(&self) -> CallerBody {
        self.caller.clone()
    }
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = listener::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, listener::BoxError>>> {
        if let Some(f) = self.first.take() {
            if self.rest.is_end_stream() {
                self.caller.set(CallerBody::DONE);
            }
            return Poll::Ready(Some(Ok(f)));
        }
        let r = self.rest.as_mut().poll_frame(cx);
        match &r {
            Poll::Ready(Some(Err(_))) => self.caller.set(CallerBody::FAILED),
            Poll::Ready(None) => self.caller.set(CallerBody::DONE),
            Poll::Ready(Some(Ok(_))) if self.rest.is_end_stream() => self.caller.set(CallerBody::DONE),
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.size_hint();
        if let Some(n) = self.first.as_ref().and_then(|f| f.data_ref()).map(|d| d.len() as u64) {
            hint.set_lower(hint.lower() + n);
            if let Some(u) = hint.upper() {
                hint.set_upper(u + n);
            }
        }
        hint
    }
}

pub type HttpClient = Client<HttpConnector, UpstreamBody>;

/// One data-plane worker's upstream clients. Their connections live on the worker's event loop;
/// the h2 client keeps one connection per upstream, shared by the worker's HTTP/2 streams, so the
/// upstream sees one per gateway core (measured no worse than 2, 4 or 8 per worker,
/// bench/README.md).
pub struct Clients {
    pub http1: HttpClient,
    pub h2: HttpClient,
}

impl Clients {
    pub fn new() -> Clients {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_keepalive(Some(Duration::from_secs(30)));
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build(connector.clone());
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_keep_alive_interval(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Clients { http1, h2 }
    }

    /// HTTP/2 (and so gRPC) over the h2 client, everything else over HTTP/1.1.
    pub fn for_version(&self, v: Version) -> &HttpClient {
        if v == Version::HTTP_2 {
            &self.h2
        } else {
            &self.http1
        }
    }
}

impl Default for Clients {
    fn default() -> Clients {
        Clients::new()
    }
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
