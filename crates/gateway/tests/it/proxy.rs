//! The data plane: HTTP/1.1, HTTP/2 and gRPC through the gateway; canary weights, shadow
//! traffic, passive health, draining.

use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serving::proto::health::health_check_response::ServingStatus;
use serving::proto::health::HealthCheckRequest;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_h2c_and_grpc_pass_through() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let g = TestGateway::start(settings(blue.addr, green.addr, None)).await;

    assert_eq!(g.invoke().await, (200, "blue".into()));
    assert_eq!(g.health().await, ("1".into(), "blue".into()));

    // HTTP/2 with prior knowledge (h2c), not gRPC.
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    let resp = h2.get(format!("{}/health", g.base).parse().unwrap()).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.headers()[gateway::proxy::UPSTREAM_HEADER], "blue");
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["model_version"], "1");

    // gRPC: unary inference (trailers carry the status) and health.
    let mut c = g.inference().await;
    let r = c.model_infer(infer_request(4)).await.unwrap().into_inner();
    assert_eq!((r.model_version.as_str(), r.outputs[0].shape.clone()), ("1", vec![4]));
    let err = c.model_infer(serving::proto::inference::ModelInferRequest::default()).await.unwrap_err();
    assert_ne!(err.code(), tonic::Code::Unavailable, "an upstream gRPC error passes through: {err:?}");
    let mut h = g.health_client().await;
    let s = h.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status;
    assert_eq!(s, ServingStatus::Serving as i32);

    // gRPC server streaming: Health/Watch sends its first message and stays open.
    let mut watch = h.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    drop(watch);

    // The upstream's own /metrics is proxied; the gateway's is on the admin port.
    let upstream_metrics = g.http.get(format!("{}/metrics", g.base)).send().await.unwrap().text().await.unwrap();
    assert!(!upstream_metrics.contains("gateway_requests_total"));
    let m = g.metrics().await;
    assert!(m.contains("gateway_requests_total{colour=\"blue\"}"), "{m}");
    assert!(m.contains("gateway_request_duration_seconds_bucket{colour=\"blue\",le=\"+Inf\"}"), "{m}");
    assert!(m.contains("gateway_requests_total{colour=\"green\"} 0"), "{m}");
    assert!(m.contains("gateway_upstream_info{colour=\"blue\",address=\""), "{m}");
    assert!(m.contains("factory_build_info{component=\"gateway\""), "{m}");
    g.stop().await;
    blue.stop().await;
    green.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weights_split_new_requests() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let g = TestGateway::start(settings(blue.addr, green.addr, None)).await;
    let (s, v) = g.admin_post("/weights", serde_json::json!({ "green": 20 })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["weights"], serde_json::json!({ "blue": 80, "green": 20 }));
    let mut green_count = 0;
    let n = 1000;
    for _ in 0..n {
        let (status, colour) = g.invoke().await;
        assert_eq!(status, 200);
        green_count += usize::from(colour == "green");
    }
    // Binomial(1000, 0.2): mean 200, sd ≈ 12.6; ±5 sd.
    assert!((137..=263).contains(&green_count), "green got {green_count} of {n}");
    let st = g.admin_get("/status").await;
    assert_eq!(st["weights"], serde_json::json!({ "blue": 80, "green": 20 }));
    assert_eq!(st["upstreams"]["green"]["requests"], green_count as u64);
    // A switch puts everything on the target again.
    let (s, _) = g.admin_post("/switch", serde_json::json!({ "to": "blue" })).await;
    assert_eq!(s, 200);
    for _ in 0..50 {
        assert_eq!(g.invoke().await, (200, "blue".into()));
    }
    g.stop().await;
    blue.stop().await;
    green.stop().await;
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mirrors_to_the_idle_colour_and_counts_divergence() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let g = TestGateway::start(settings(blue.addr, green.addr, None)).await;
    let (s, v) = g.admin_post("/shadow", serde_json::json!({ "percent": 100 })).await;
    assert_eq!((s, v["shadow_percent"].as_u64()), (200, Some(100)));
    // Same model on both colours: identical predictions, no divergence.
    for _ in 0..20 {
        assert_eq!(g.invoke().await, (200, "blue".into()));
    }
    // gRPC is mirrored too (buffered), trailers intact.
    let mut c = g.inference().await;
    for _ in 0..5 {
        let r = c.model_infer(infer_request(2)).await.unwrap().into_inner();
        assert_eq!(r.model_version, "1");
    }
    // /health differs (the version label): 5 divergences.
    for _ in 0..5 {
        assert_eq!(g.health().await, ("1".into(), "blue".into()));
    }
    let mut m = String::new();
    for _ in 0..100 {
        m = g.metrics().await;
        if metric(&m, "gateway_shadow_divergences_total") + metric(&m, "gateway_shadow_errors_total") >= 10
            || metric(&m, "gateway_shadow_requests_total") == 30 && metric(&m, "gateway_shadow_divergences_total") == 10
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&m, "gateway_shadow_requests_total"), 30, "{m}");
    assert_eq!(metric(&m, "gateway_shadow_errors_total"), 0, "{m}");
    // Model infer answers carry model_version too, so they diverge like /health does.
    assert_eq!(metric(&m, "gateway_shadow_divergences_total"), 10, "{m}");
    // Served traffic is counted on blue only; the mirror is not traffic.
    let st = g.admin_get("/status").await;
    assert_eq!(st["upstreams"]["green"]["requests"], 0);
    g.stop().await;
    blue.stop().await;
    green.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_health_marks_a_failing_upstream_and_can_fail_over() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let mut s = settings(blue.addr, green.addr, None);
    s.auto_failover = false;
    let g = TestGateway::start(s).await;
    blue.stop().await;
    for _ in 0..3 {
        let (status, colour) = g.invoke().await;
        assert_eq!((status, colour.as_str()), (502, "blue"));
    }
    let st = g.admin_get("/status").await;
    assert_eq!(st["upstreams"]["blue"]["healthy"], false, "{st}");
    assert_eq!(st["upstreams"]["blue"]["consecutive_failures"], 3);
    assert_eq!(st["upstreams"]["blue"]["errors"], 3);
    assert_eq!(st["active"], "blue", "no automatic flip unless configured");
    assert!(g.metrics().await.contains("gateway_upstream_healthy{colour=\"blue\"} 0"));
    // gRPC callers get UNAVAILABLE, not a broken stream.
    let err = g.inference().await.model_infer(infer_request(1)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    g.stop().await;

    // With --auto-failover, the same failures move traffic to green (health-gated).
    let dead = free_addr();
    let mut s = settings(dead, green.addr, None);
    s.auto_failover = true;
    let g = TestGateway::start(s).await;
    for _ in 0..3 {
        assert_eq!(g.invoke().await.0, 502);
    }
    let mut active = String::new();
    for _ in 0..200 {
        active = g.admin_get("/status").await["active"].as_str().unwrap().to_string();
        if active == "green" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(active, "green");
    assert_eq!(g.invoke().await, (200, "green".into()));
    // The audit record is appended right after the new state takes effect.
    let mut audit = g.admin_get("/audit").await;
    for _ in 0..200 {
        if !audit[0].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        audit = g.admin_get("/audit").await;
    }
    assert_eq!(audit[0]["op"], "auto-failover");
    assert_eq!(audit[0]["outcome"], "ok");
    g.stop().await;
    green.stop().await;
}

/// A slow HTTP upstream (`GET /slow?ms=N`) standing in for a long request.
async fn slow_upstream() -> std::net::SocketAddr {
    use axum::extract::Query;
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|Query(q): Query<std::collections::HashMap<String, u64>>| async move {
            tokio::time::sleep(Duration::from_millis(q["ms"])).await;
            "done"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// Waits until `colour` has `n` requests in flight.
async fn wait_in_flight(g: &TestGateway, colour: &str, n: u64) {
    for _ in 0..500 {
        if g.admin_get("/status").await["upstreams"][colour]["in_flight"] == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{colour} never had {n} requests in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_drains_in_flight_requests_and_ends_them_at_the_timeout() {
    let slow = slow_upstream().await;
    let green = Upstream::start("2").await;
    let g = TestGateway::start(settings(slow, green.addr, None)).await;
    // In flight on blue when the switch happens: it finishes, and the switch waits for it.
    let http = g.http.clone();
    let url = format!("{}/slow?ms=600", g.base);
    let pending = tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() });
    wait_in_flight(&g, "blue", 1).await;
    let (s, v) = g.admin_post("/switch", serde_json::json!({ "to": "green" })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["drained"], true);
    assert!(v["drain_ms"].as_u64().unwrap() >= 100, "the switch waited for the request: {v}");
    assert_eq!(pending.await.unwrap(), "done");
    assert_eq!(g.invoke().await, (200, "green".into()));
    g.stop().await;

    // Longer than the drain timeout: the switch returns at the timeout and the request is ended.
    let g = TestGateway::start(settings(slow, green.addr, None)).await;
    let http = g.http.clone();
    let url = format!("{}/slow?ms=10000", g.base);
    let pending = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) });
    wait_in_flight(&g, "blue", 1).await;
    let started = std::time::Instant::now();
    let (s, v) = g.admin_post("/switch", serde_json::json!({ "to": "green", "drain_timeout_secs": 0.3 })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["drained"], false);
    assert!(started.elapsed() < Duration::from_secs(3));
    let ended = tokio::time::timeout(Duration::from_secs(3), pending).await.unwrap().unwrap();
    assert_eq!(ended.unwrap(), 502, "the request still waiting for its answer is ended with 502");
    assert_eq!(g.invoke().await, (200, "green".into()));
    let audit = g.admin_get("/audit").await;
    assert!(audit[0]["detail"].as_str().unwrap().contains("timed out"), "{audit}");
    g.stop().await;
    green.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_requests_in_flight_on_every_worker() {
    let slow = slow_upstream().await;
    let green = Upstream::start("2").await;
    let mut s = settings(slow, green.addr, None);
    s.workers = 3;
    let g = TestGateway::start(s).await;
    // One connection per request, so they land on different workers (round robin).
    let pending: Vec<_> = (0..6)
        .map(|_| {
            let url = format!("{}/slow?ms=700", g.base);
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() })
        })
        .collect();
    wait_in_flight(&g, "blue", 6).await;
    let base = g.base.clone();
    let started = std::time::Instant::now();
    g.stop().await;
    assert!(started.elapsed() >= Duration::from_millis(300), "shutdown waited for the requests in flight");
    for p in pending {
        assert_eq!(p.await.unwrap(), "done");
    }
    let after = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("{base}/slow?ms=1")).send().await;
    assert!(after.is_err(), "the listen port is closed after shutdown");
    green.stop().await;
}

/// Issue (session 23 probe): a caller that stalls mid-body made the upstream time out, and the
/// timeout was counted against the upstream, so a few stalled callers could fail a colour over.
/// A timeout while the caller's body is still coming is the caller's (408, client aborts); one
/// after the whole body has gone upstream is the upstream's (504, passive health).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_stalling_mid_body_is_not_counted_against_the_upstream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let mut s = settings(blue.addr, green.addr, None);
    s.upstream_timeout = Duration::from_millis(800);
    let g = TestGateway::start(s).await;
    let addr = g.base.trim_start_matches("http://").to_string();
    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /invocations HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut answer)).await.unwrap().unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive"), "{answer}");
    }
    let st = g.admin_get("/status").await;
    assert_eq!(st["upstreams"]["blue"]["errors"], 0, "{st}");
    assert_eq!(st["upstreams"]["blue"]["consecutive_failures"], 0, "{st}");
    assert_eq!(metric(&g.metrics().await, "gateway_client_aborts_total"), 3);
    g.stop().await;

    // An upstream that takes the whole body and never answers is still the upstream's failure.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut sock, _)) = silent.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            held.push(sock);
        }
    });
    let mut s = settings(silent_addr, green.addr, None);
    s.upstream_timeout = Duration::from_millis(800);
    s.auto_failover = false;
    let g = TestGateway::start(s).await;
    assert_eq!(g.invoke().await.0, 504);
    let st = g.admin_get("/status").await;
    assert_eq!(st["upstreams"]["blue"]["errors"], 1, "{st}");
    assert_eq!(metric(&g.metrics().await, "gateway_client_aborts_total"), 0);
    g.stop().await;
    hold.abort();
    blue.stop().await;
    green.stop().await;
}
