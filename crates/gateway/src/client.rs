//! The two pooled upstream clients: HTTP/1.1 for HTTP/1.1 requests and HTTP/2 (h2c, prior
//! knowledge) for HTTP/2 and gRPC requests, so trailers and streams pass through unchanged
//! and a gRPC call never waits behind another on an HTTP/1.1 connection.

use bytes::Bytes;
use http::Version;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// A request body sent upstream: streamed from the caller (possibly with its first frame
/// already read), or buffered (unary gRPC, shadowed requests, health checks).
pub type UpstreamBody = Either<Prefixed, Full<Bytes>>;

/// The caller's streaming body, with the frame that was read ahead (if any) put back in front.
pub struct Prefixed {
    first: Option<Frame<Bytes>>,
    rest: Incoming,
}

impl Prefixed {
    pub fn new(first: Option<Frame<Bytes>>, rest: Incoming) -> Prefixed {
        Prefixed { first, rest }
    }
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(f) = self.first.take() {
            return Poll::Ready(Some(Ok(f)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
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

/// Upstream HTTP/2 connections per colour. One h2 connection serializes every stream through
/// one connection task on both ends; a few spread concurrent calls over the upstream's
/// workers, as separate downstream connections would be (nginx opens one per call).
const H2_CONNECTIONS: usize = 4;

pub struct Clients {
    pub http1: HttpClient,
    /// Independent clients, each with its own pool and so its own h2 connection per upstream.
    pub h2: Vec<HttpClient>,
    next: AtomicUsize,
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
        let h2 = (0..H2_CONNECTIONS)
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .http2_only(true)
                    .timer(TokioTimer::new())
                    .pool_timer(TokioTimer::new())
                    .http2_keep_alive_interval(Duration::from_secs(20))
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(connector.clone())
            })
            .collect();
        Clients { http1, h2, next: AtomicUsize::new(0) }
    }

    /// HTTP/2 (and so gRPC) over the h2 client, everything else over HTTP/1.1.
    pub fn for_version(&self, v: Version) -> &HttpClient {
        if v == Version::HTTP_2 {
            &self.h2[self.next.fetch_add(1, Ordering::Relaxed) % self.h2.len()]
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
