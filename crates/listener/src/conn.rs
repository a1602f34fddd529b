//! Serving one connection: hyper's HTTP/1 + HTTP/2 server over a socket wrapper that notes
//! when bytes arrive, a service wrapper that counts requests in flight (until the last byte
//! of their response), and a watchdog that closes the connection when the header or idle
//! timeout passes with no request in flight.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::{Accepted, BoxError, Limits};

pin_project_lite::pin_project! {
    /// The request body handlers get: hyper's, failing when the next chunk takes longer than the
    /// body timeout. Unlike `tower_http`'s `TimeoutBody` it passes `is_end_stream` and
    /// `size_hint` through, so a proxied body keeps its length and gRPC sees its end.
    pub struct RequestBody {
        #[pin]
        inner: hyper::body::Incoming,
        #[pin]
        sleep: Option<tokio::time::Sleep>,
        timeout: Duration,
    }
}

/// A request body chunk did not arrive within the body timeout.
#[derive(Debug)]
pub struct BodyTimeout(Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no request body data for {:?} (body timeout)", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

impl RequestBody {
    fn new(inner: hyper::body::Incoming, timeout: Duration) -> RequestBody {
        RequestBody { inner, sleep: None, timeout }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Poll::Ready(r) = this.inner.poll_frame(cx) {
            this.sleep.set(None);
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        // The clock starts when the handler first waits for a chunk: a body already read with
        // the head (most small requests) never arms a timer.
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        if let Some(sleep) = this.sleep.as_mut().as_pin_mut() {
            if sleep.poll(cx).is_ready() {
                this.sleep.set(None);
                return Poll::Ready(Some(Err(Box::new(BodyTimeout(*this.timeout)))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How long an HTTP/2 connection past its idle timeout gets to say GOAWAY and close.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);
const NONE: u64 = u64::MAX;

pub(crate) fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // The watchdog enforces the header and idle timeouts (hyper's own header timer would also
    // run while a kept-alive connection is idle, and not at all before the protocol is known).
    b.http1().timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(limits.max_header_bytes.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// What the socket, the requests and the watchdog of one connection share.
struct State {
    born: Instant,
    in_flight: AtomicUsize,
    /// Whether a request has started on this connection.
    served: AtomicBool,
    /// Whether an HTTP/2 request was seen (the connection is then closed with a GOAWAY).
    h2: AtomicBool,
    /// Microseconds from `born` to when the connection last became idle.
    idle_since: AtomicU64,
    /// Microseconds from `born` to the first byte received since then (`NONE`: none yet).
    first_read: AtomicU64,
}

impl State {
    fn now_us(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_micros()).unwrap_or(NONE - 1)
    }

    fn at(&self, us: u64) -> Instant {
        self.born + Duration::from_micros(us)
    }

    fn bytes_arrived(&self) {
        if self.first_read.load(Ordering::Relaxed) == NONE {
            let _ = self.first_read.compare_exchange(NONE, self.now_us(), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The watchdog's verdict at `now`: close the connection (`None`), or look again at the
    /// time returned.
    ///
    /// Nothing wakes the watchdog between two looks (a request costs no timer and no wake-up),
    /// so two looks are never more than `step` = the shorter of the header and idle timeouts
    /// apart. Every deadline is at least `step` after the event that sets it (a request ends:
    /// `idle_since + idle_timeout`; a first byte arrives: `first_read + header_timeout`), so
    /// a look falls between the event and its deadline, and from there the watchdog waits
    /// for the deadline itself: a connection is closed on time, never late.
    fn check(&self, limits: &Limits, now: Instant) -> Option<Instant> {
        let step = watchdog_step(limits);
        let next = |deadline: Instant| (now < deadline).then(|| deadline.min(now + step));
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Some(now + step);
        }
        if !self.served.load(Ordering::Relaxed) {
            return next(self.born + limits.header_timeout);
        }
        let idle = self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout;
        match self.first_read.load(Ordering::Relaxed) {
            first if first != NONE && !self.h2.load(Ordering::Relaxed) => next(self.at(first) + limits.header_timeout),
            _ => next(idle),
        }
    }
}

/// The longest the watchdog goes without looking at its connection ([`State::check`]).
fn watchdog_step(limits: &Limits) -> Duration {
    limits.header_timeout.min(limits.idle_timeout)
}

/// Counts a request in flight until dropped (with the response body, or with the handler
/// future when the client goes away first).
struct InFlight(Arc<State>);

impl InFlight {
    fn start(state: &Arc<State>, h2: bool) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        state.served.store(true, Ordering::Relaxed);
        if h2 {
            state.h2.store(true, Ordering::Relaxed);
        }
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let s = &self.0;
        if s.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            s.idle_since.store(s.now_us(), Ordering::Relaxed);
            s.first_read.store(NONE, Ordering::Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it ends.
    pub struct Counted<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let r = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = r {
            this.guard.take();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The socket, noting the first byte that arrives while the connection is idle.
    struct Watched {
        #[pin]
        io: TcpStream,
        state: Arc<State>,
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.io.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.bytes_arrived();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Resolves when the connection has had no request in flight for longer than its limits allow.
/// One timer per connection, moved only when it fires ([`State::check`]).
async fn watchdog(state: Arc<State>, limits: Arc<Limits>) {
    let sleep = tokio::time::sleep_until(state.born + watchdog_step(&limits));
    let mut sleep = std::pin::pin!(sleep);
    loop {
        sleep.as_mut().await;
        match state.check(&limits, Instant::now()) {
            Some(next) => sleep.as_mut().reset(next),
            None => return,
        }
    }
}

pub(crate) async fn serve<S, B>(
    builder: auto::Builder<TokioExecutor>,
    limits: Arc<Limits>,
    conn: Accepted,
    service: S,
    mut stop: watch::Receiver<bool>,
    _live: mpsc::Sender<()>,
) where
    S: hyper::service::Service<http::Request<RequestBody>, Response = http::Response<B>> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Accepted { stream, peer, permit: _permit } = conn;
    let state = Arc::new(State {
        born: Instant::now(),
        in_flight: AtomicUsize::new(0),
        served: AtomicBool::new(false),
        h2: AtomicBool::new(false),
        idle_since: AtomicU64::new(0),
        first_read: AtomicU64::new(NONE),
    });
    let body_timeout = limits.body_timeout;
    let svc_state = state.clone();
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let guard = InFlight::start(&svc_state, req.version() == http::Version::HTTP_2);
        let fut = service.call(req.map(|b| RequestBody::new(b, body_timeout)));
        async move {
            let resp = fut.await?;
            Ok::<_, S::Error>(resp.map(|inner| Counted { inner, guard: Some(guard) }))
        }
    });
    let io = TokioIo::new(Watched { io: stream, state: state.clone() });
    let conn = builder.serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    let mut dog = std::pin::pin!(watchdog(state.clone(), limits.clone()));
    let mut stopping = false;
    let mut close_at: Option<Instant> = None;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection from {peer} ended: {e:?}");
                }
                return;
            }
            _ = &mut dog, if close_at.is_none() => {
                if !state.h2.load(Ordering::Relaxed) {
                    // HTTP/1 (or not a request yet) with nothing in flight: nothing to lose.
                    tracing::debug!("closing connection from {peer}: header or idle timeout");
                    return;
                }
                conn.as_mut().graceful_shutdown();
                close_at = Some(Instant::now() + GOAWAY_GRACE);
            }
            _ = tokio::time::sleep_until(close_at.unwrap_or_else(Instant::now)), if close_at.is_some() => return,
            r = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                if r.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
