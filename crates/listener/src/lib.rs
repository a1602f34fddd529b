//! The one place where our servers accept and serve connections (`factory server`, `serve`,
//! its admin listener, `gateway` and its admin API): every listener gets the same
//! protections against slow and greedy clients.
//!
//! - **Header timeout**: a new connection must send a whole request head within it (counted
//!   from the accept, as nginx's `client_header_timeout`), and a kept-alive connection within
//!   it from its first byte of the next request. Slowloris connections are closed.
//! - **Idle timeout**: a kept-alive connection with no request in flight and no byte received
//!   is closed after it (nginx's `keepalive_timeout`; HTTP/2 connections get a GOAWAY first).
//! - **Body timeout**: each chunk of a request body must arrive within it of the previous one
//!   (nginx's `client_body_timeout`); the handler sees a body error ([`BodyTimeout`]) and the
//!   request ends.
//! - **Header size**: HTTP/1 heads over the limit get 431, HTTP/2 header lists are capped.
//! - **Connections**: at most `max_connections` are served at once; at the limit the accept
//!   loop waits (new connections queue in the kernel's backlog) and says so once in the log.
//! - **HTTP/2 keep-alive**: PINGs every `http2_keepalive`; a peer that does not answer within
//!   20 s is dropped (gRPC keepalive).
//!
//! A request in flight is never cut by the header or idle timeouts: a slow model call or a
//! long streamed response only answers to the body timeout and the server's own limits.
//!
//! [`serve_router`] is the whole accept loop for an axum router; the gateway, which spreads
//! connections over worker threads, uses [`Acceptor`] and [`Connections`] directly.

mod conn;

pub use conn::{BodyTimeout, RequestBody};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// Errors a service may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connection limits and timeouts of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time for a whole request head (from the accept, or from the first byte of a later request).
    pub header_timeout: Duration,
    /// Time a kept-alive connection may sit with no request before it is closed.
    pub idle_timeout: Duration,
    /// Longest wait for the next chunk of a request body.
    pub body_timeout: Duration,
    /// Largest request head (HTTP/1 request line and headers; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Most connections served at once.
    pub max_connections: usize,
    /// HTTP/2 PING interval (gRPC keepalive); `None` sends none.
    pub http2_keepalive: Option<Duration>,
}

impl Default for Limits {
    /// nginx's and hyper's range: 30 s for a head, 60 s idle and between body chunks, 64 KiB of
    /// headers, 4096 connections, an HTTP/2 PING every 30 s.
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: 4096,
            http2_keepalive: Some(Duration::from_secs(30)),
        }
    }
}

impl Limits {
    /// Refuses zero timeouts and limits (each would make the listener useless).
    pub fn validate(&self) -> Result<(), String> {
        for (name, d) in [
            ("header timeout", self.header_timeout),
            ("idle timeout", self.idle_timeout),
            ("body timeout", self.body_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("the {name} must be positive"));
            }
        }
        if self.max_header_bytes < 1024 {
            return Err(format!("the header size limit {} is below 1024 bytes", self.max_header_bytes));
        }
        if self.max_connections == 0 {
            return Err("the connection limit must be positive".into());
        }
        Ok(())
    }
}

/// A listener that accepts at most `max_connections` connections at a time.
pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    max: usize,
    name: String,
    full: AtomicBool,
}

/// An accepted connection; it holds its connection slot until it is dropped.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    permit: OwnedSemaphorePermit,
}

/// An accepted connection moved off its runtime (to hand it to another thread).
pub struct Detached {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    permit: OwnedSemaphorePermit,
}

impl Accepted {
    /// Deregisters the socket from this runtime so another one can serve it.
    pub fn detach(self) -> std::io::Result<Detached> {
        Ok(Detached { stream: self.stream.into_std()?, peer: self.peer, permit: self.permit })
    }
}

impl Detached {
    /// Registers the socket with the current runtime.
    pub fn attach(self) -> std::io::Result<Accepted> {
        Ok(Accepted { stream: TcpStream::from_std(self.stream)?, peer: self.peer, permit: self.permit })
    }
}

impl Acceptor {
    /// `name` says which listener it is in log lines ("gateway", "serve admin", ...).
    pub fn new(listener: TcpListener, limits: &Limits, name: impl Into<String>) -> Self {
        let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Acceptor {
            listener,
            slots: Arc::new(Semaphore::new(max)),
            max,
            name: name.into(),
            full: AtomicBool::new(false),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections being served now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Waits for a free connection slot, then for a connection. Accept errors (out of file
    /// descriptors and the like) are logged and retried after a short pause, not returned.
    pub async fn accept(&self) -> Accepted {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !self.full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "{}: connection limit reached ({} open, --max-connections); new connections wait in the \
                         listen backlog until one closes",
                        self.name,
                        self.max
                    );
                }
                self.slots.clone().acquire_owned().await.expect("the semaphore is never closed")
            }
        };
        if self.full.load(Ordering::Relaxed) && self.slots.available_permits() > self.max / 10 {
            self.full.store(false, Ordering::Relaxed);
            tracing::info!("{}: below the connection limit again", self.name);
        }
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    // Nagle + delayed ACK would add ~40 ms to every keep-alive request.
                    let _ = stream.set_nodelay(true);
                    return Accepted { stream, peer, permit };
                }
                Err(e) => {
                    tracing::warn!("{}: accept failed: {e}", self.name);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// The connections of one server (or of one gateway worker): serves each with the limits,
/// and on [`Connections::shutdown`] lets requests in flight finish.
pub struct Connections {
    limits: Arc<Limits>,
    builder: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    stop: watch::Sender<bool>,
    live: mpsc::Sender<()>,
    all_closed: mpsc::Receiver<()>,
}

impl Connections {
    pub fn new(limits: &Limits) -> Self {
        let (stop, _) = watch::channel(false);
        let (live, all_closed) = mpsc::channel(1);
        Connections { builder: conn::builder(limits), limits: Arc::new(limits.clone()), stop, live, all_closed }
    }

    /// Serves `conn` with `service` on a task of the current runtime.
    pub fn spawn<S, B>(&self, conn: Accepted, service: S)
    where
        S: hyper::service::Service<http::Request<RequestBody>, Response = http::Response<B>> + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let fut = conn::serve(
            self.builder.clone(),
            self.limits.clone(),
            conn,
            service,
            self.stop.subscribe(),
            self.live.clone(),
        );
        tokio::spawn(fut);
    }

    /// Tells every connection to finish its requests in flight and close, and waits for them
    /// (at most `grace` when given). False when connections were still open at the end.
    pub async fn shutdown(self, grace: Option<Duration>) -> bool {
        let Connections { stop, live, mut all_closed, .. } = self;
        stop.send_replace(true);
        drop(live);
        let closed = all_closed.recv();
        match grace {
            None => {
                closed.await;
                true
            }
            Some(g) => tokio::time::timeout(g, closed).await.is_ok(),
        }
    }
}

/// What [`serve_router`] serves: an axum router, or a tower service around one.
pub trait Routes:
    tower::Service<
        http::Request<axum::body::Body>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Routes for S where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then stops
/// accepting and waits for requests in flight (at most `grace` when given). Handlers can
/// extract `ConnectInfo<SocketAddr>`. `router` is an axum router, or one wrapped in a tower
/// service of its own (one wrapper for the whole router costs less per request than a layer,
/// which axum applies to every route).
pub async fn serve_router<S: Routes>(
    listener: TcpListener,
    name: &str,
    limits: &Limits,
    router: S,
    shutdown: impl Future<Output = ()> + Send,
    grace: Option<Duration>,
) -> std::io::Result<()> {
    let acceptor = Acceptor::new(listener, limits, name);
    let conns = Connections::new(limits);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = acceptor.accept() => c,
            _ = &mut shutdown => break,
        };
        let peer = conn.peer;
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<RequestBody>| {
            use tower::ServiceExt as _;
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        conns.spawn(conn, service);
    }
    drop(acceptor);
    if !conns.shutdown(grace).await {
        tracing::warn!("{name}: requests still running after {grace:?}; closing their connections");
    }
    Ok(())
}
