//! The limits against a real `serve_router` on port 0, over raw sockets.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limits() -> listener::Limits {
    listener::Limits {
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        body_timeout: Duration::from_millis(300),
        max_connections: 8,
        ..listener::Limits::default()
    }
}

async fn start(limits: listener::Limits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(900)).await;
                "slow"
            }),
        )
        .route("/echo", axum::routing::post(|b: axum::body::Bytes| async move { b.len().to_string() }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        listener::serve_router(l, "test", &limits, router, async { rx.await.unwrap_or(()) }, None).await.unwrap();
    });
    (addr, tx)
}

/// Reads until the server closes; how long that took.
async fn closed_after(s: &mut TcpStream) -> Duration {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return t0.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("not closed within 5 s"),
        }
    }
}

async fn get(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn half_sent_heads_are_closed_at_the_header_timeout_while_others_are_served() {
    let (addr, _stop) = start(limits()).await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(s);
    }
    assert!(get(addr).await.starts_with("HTTP/1.1 200"));
    for s in &mut slow {
        let took = closed_after(s).await;
        assert!(took < Duration::from_millis(1000), "{took:?}");
    }
}

#[tokio::test]
async fn idle_keep_alive_is_closed_but_a_slow_handler_is_not() {
    let (addr, _stop) = start(limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("HTTP/1.1 200"));
    let took = closed_after(&mut s).await;
    assert!(took >= Duration::from_millis(450) && took < Duration::from_millis(1500), "{took:?}");
    // A handler slower than both timeouts still answers: nothing cuts a request in flight.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200") && out.ends_with("slow"), "{out}");
}

/// An idle timeout shorter than the header timeout holds from the end of each request, not
/// from the next look of a watchdog armed at the header deadline.
#[tokio::test]
async fn a_short_idle_timeout_closes_on_time_after_each_request() {
    let limits = listener::Limits {
        header_timeout: Duration::from_millis(2000),
        idle_timeout: Duration::from_millis(300),
        ..limits()
    };
    let (addr, _stop) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 256];
    // A few requests, spread past the first look, then silence.
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = closed_after(&mut s).await;
    assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(700), "{took:?}");
}

#[tokio::test]
async fn a_stalled_body_ends_the_request() {
    let (addr, _stop) = start(limits()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc").await.unwrap();
    let took = closed_after(&mut s).await;
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let (addr, _stop) = start(listener::Limits { max_header_bytes: 8192, ..limits() }).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = "a".repeat(20_000);
    s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431"), "{}", String::from_utf8_lossy(&out));
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait() {
    let (addr, _stop) =
        start(listener::Limits { max_connections: 2, header_timeout: Duration::from_secs(2), ..limits() }).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The third connection is accepted by the kernel but not served until a slot frees.
    let waiting = tokio::spawn(async move {
        let t0 = Instant::now();
        let answer = get(addr).await;
        (t0.elapsed(), answer)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    drop(held);
    let (took, answer) = waiting.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}
