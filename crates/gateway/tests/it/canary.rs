//! The metric-gated canary against real serving upstreams under steady traffic. A faulty green
//! is a real upstream behind a relay that fails every fifth scoring request (503) or delays
//! each one — what a bad build looks like from the gateway.

use crate::support::*;
use admin_api::{
    AdminClient, CanaryPhase, CanaryRequest, CanaryStatus, PrometheusCheck, ShadowRequest, WeightsRequest,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
enum Fault {
    /// Every n-th scoring request answers 503.
    FailEvery(u64),
    /// Every scoring request waits this long first.
    Delay(Duration),
    /// `GET /drift/sketch` answers 404, as a serve with online drift off does.
    NoSketches,
}

/// A relay in front of a real upstream (HTTP/1.1 and h2c, so gRPC health passes through).
struct Faulty {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

type RelayBody = Either<Full<Bytes>, Incoming>;

async fn relay(
    clients: Arc<gateway::client::Clients>,
    upstream: SocketAddr,
    fault: Fault,
    seen: Arc<AtomicU64>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<RelayBody>, Infallible> {
    if req.uri().path() == "/invocations" {
        match fault {
            Fault::FailEvery(n) if seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(n) => {
                let mut r =
                    hyper::Response::new(Either::Left(Full::new(Bytes::from_static(b"{\"error\":\"bad build\"}"))));
                *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                return Ok(r);
            }
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::FailEvery(_) | Fault::NoSketches => {}
        }
    }
    if let (Fault::NoSketches, "/drift/sketch") = (fault, req.uri().path()) {
        let body = Bytes::from_static(b"{\"error\":\"online drift is off on this server (serve --drift-window 0)\"}");
        let mut r = hyper::Response::new(Either::Left(Full::new(body)));
        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
        return Ok(r);
    }
    let (mut parts, body) = req.into_parts();
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    parts.uri = format!("http://{upstream}{path}").parse().unwrap();
    let version = parts.version;
    let req = hyper::Request::from_parts(parts, Either::Right(Full::new(bytes)));
    let resp = clients.for_version(version).request(req).await.expect("the real upstream answers");
    Ok(resp.map(Either::Right))
}

impl Faulty {
    async fn start(upstream: SocketAddr, fault: Fault) -> Faulty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients = Arc::new(gateway::client::Clients::new());
        let seen = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (clients, seen) = (clients.clone(), seen.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        relay(clients.clone(), upstream, fault, seen.clone(), req)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Faulty { addr, task }
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An answer: status, colour, when its request was sent.
type Seen = (u16, String, Instant);

/// Clients scoring through the gateway in a loop: every answer.
struct Traffic {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(g: &Arc<TestGateway>, clients: usize) -> Traffic {
        Traffic::start_with(g, clients, invocation(3))
    }

    /// Clients sending `body` again and again.
    fn start_with(g: &Arc<TestGateway>, clients: usize, body: serde_json::Value) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let body = Arc::new(body);
        let tasks = (0..clients)
            .map(|_| {
                let (g, stop, seen, body) = (g.clone(), stop.clone(), seen.clone(), body.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let (status, colour) = g.invoke_with(&body).await;
                        seen.lock().unwrap().push((status, colour, sent));
                    }
                })
            })
            .collect();
        Traffic { stop, seen, tasks }
    }

    async fn stop(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn admin(g: &TestGateway) -> AdminClient {
    AdminClient::new(reqwest::Client::new(), &g.admin, Some(TESTER_TOKEN.into()))
}

/// Blue and green real upstreams (green behind a faulty relay when asked), the gateway, its
/// admin client.
struct Stack {
    blue: Upstream,
    green: Upstream,
    faulty: Option<Faulty>,
    g: Arc<TestGateway>,
    c: AdminClient,
}

impl Stack {
    async fn start(fault: Option<Fault>) -> Stack {
        let blue = Upstream::start("1").await;
        let green = Upstream::start("2").await;
        let faulty = match fault {
            Some(f) => Some(Faulty::start(green.addr, f).await),
            None => None,
        };
        let green_addr = faulty.as_ref().map_or(green.addr, |f| f.addr);
        let g = Arc::new(TestGateway::start(settings(blue.addr, green_addr, None)).await);
        let c = admin(&g);
        Stack { blue, green, faulty, g, c }
    }

    async fn stop(self) {
        drop(self.faulty);
        Arc::try_unwrap(self.g).ok().expect("traffic stopped").stop().await;
        self.blue.stop().await;
        self.green.stop().await;
    }
}

/// Polls `GET /canary` until the canary ends.
async fn finished(c: &AdminClient, within: Duration) -> CanaryStatus {
    let deadline = Instant::now() + within;
    loop {
        let s = c.canary_status().await.unwrap().expect("a canary");
        if s.phase != CanaryPhase::Running {
            return s;
        }
        assert!(Instant::now() < deadline, "the canary did not end within {within:?}: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request(steps: &[u32], interval: f64, min_requests: u64) -> CanaryRequest {
    CanaryRequest {
        steps: steps.to_vec(),
        interval_secs: Some(interval),
        max_error_rate: Some(0.05),
        min_requests: Some(min_requests),
        ..CanaryRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_failing_a_fifth_of_requests_is_aborted_at_the_first_step() {
    let st = Stack::start(Some(Fault::FailEvery(5))).await;
    let (g, c) = (&st.g, &st.c);
    let traffic = Traffic::start(g, 4);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let interval = 5.0;
    let started = c.canary(&request(&[10, 50, 100], interval, 5)).await.unwrap();
    assert_eq!((started.phase, started.weight), (CanaryPhase::Running, 10));
    let t0 = Instant::now();
    let end = finished(c, Duration::from_secs(15)).await;
    let (took, aborted_at) = (t0.elapsed(), Instant::now());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = traffic.stop().await;

    assert_eq!(end.phase, CanaryPhase::Aborted, "{end:?}");
    assert_eq!((end.step, end.verdicts.len()), (0, 1), "{end:?}");
    let v = &end.verdicts[0];
    assert_eq!((v.verdict.as_str(), v.weight), ("abort", 10));
    assert!(v.errors >= 1 && v.error_rate > 0.05, "{v:?}");
    assert!(end.reason.as_deref().unwrap().contains("error rate"), "{end:?}");
    assert!(took < Duration::from_secs_f64(interval), "traffic back within one interval: took {took:?}");
    assert_eq!(c.status().await.unwrap().weights, admin_api::Weights { blue: 100, green: 0 });
    // Failures only on green, only during the first step, and only its share of the traffic.
    let green_answers: Vec<_> = seen.iter().filter(|(_, colour, _)| colour == "green").collect();
    let failed = seen.iter().filter(|(s, _, _)| *s != 200).count();
    assert!(failed >= 1 && seen.iter().all(|(s, colour, _)| *s == 200 || colour == "green"));
    assert!(failed as f64 <= 0.2 * green_answers.len() as f64 + 1.0, "{failed} failed of {}", green_answers.len());
    // The routing is back before the canary reads as aborted: nothing sent afterwards goes to green.
    assert!(
        green_answers.iter().all(|(_, _, sent)| *sent < aborted_at),
        "a request sent after the abort went to green"
    );
    assert!(seen.iter().any(|(_, _, sent)| *sent > aborted_at), "traffic went on after the abort");
    let audit = c.audit().await.unwrap();
    let ops: Vec<_> = audit.iter().filter(|r| r.operation_id == started.operation_id).map(|r| r.op.as_str()).collect();
    assert_eq!(ops, ["canary", "canary-abort"], "{audit:?}");
    assert!(g.metrics().await.contains("gateway_canary_verdicts_total{verdict=\"abort\"} 1"));
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_green_is_aborted_on_its_p99() {
    let st = Stack::start(Some(Fault::Delay(Duration::from_millis(60)))).await;
    let c = &st.c;
    let traffic = Traffic::start(&st.g, 4);
    let req = CanaryRequest { max_p99_ms: Some(20.0), ..request(&[25, 100], 5.0, 5) };
    c.canary(&req).await.unwrap();
    let end = finished(c, Duration::from_secs(15)).await;
    let seen = traffic.stop().await;
    assert_eq!((end.phase, end.step), (CanaryPhase::Aborted, 0), "{end:?}");
    let reason = end.reason.unwrap();
    assert!(reason.contains("p99 latency") && reason.contains("over the limit 20 ms"), "{reason}");
    assert!(end.verdicts[0].p99_ms.unwrap() > 20.0);
    assert!(seen.iter().all(|(s, _, _)| *s == 200), "slow, not failing");
    assert_eq!(c.status().await.unwrap().weights.green, 0);
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_green_reaches_100_percent_and_becomes_active() {
    let st = Stack::start(None).await;
    let (g, c) = (&st.g, &st.c);
    c.shadow(&ShadowRequest { percent: 100, note: None }).await.unwrap();
    let traffic = Traffic::start(g, 4);
    let req = CanaryRequest {
        max_p99_ms: Some(1000.0),
        max_shadow_difference: Some(1e-9),
        expect_version: Some("2".into()),
        ..request(&[20, 60, 100], 1.0, 3)
    };
    let started = c.canary(&req).await.unwrap();
    // Only the canary moves traffic while it runs.
    let refused = c.weights(&WeightsRequest { green: Some(90), ..Default::default() }).await.unwrap_err();
    assert!(refused.to_string().contains("a canary from blue to green is running"), "{refused}");
    let end = finished(c, Duration::from_secs(15)).await;
    let seen = traffic.stop().await;
    assert_eq!(end.phase, CanaryPhase::Promoted, "{end:?}");
    let weights: Vec<_> = end.verdicts.iter().map(|v| (v.weight, v.verdict.as_str())).collect();
    assert_eq!(weights, [(20, "advance"), (60, "advance"), (100, "advance")]);
    assert!(end.verdicts.iter().all(|v| v.requests >= 3 && v.errors == 0 && v.shadow_compared >= 3), "{end:?}");
    assert!(end.verdicts.iter().all(|v| v.shadow_difference_p99.unwrap() <= 1e-9), "same model, same answers");
    assert!(seen.iter().all(|(s, _, _)| *s == 200), "no failed request");
    let status = c.status().await.unwrap();
    assert_eq!(
        (status.active, status.previous, status.weights.green),
        (admin_api::Colour::Green, Some(admin_api::Colour::Blue), 100)
    );
    let audit = c.audit().await.unwrap();
    let ops: Vec<_> = audit.iter().filter(|r| r.operation_id == started.operation_id).map(|r| r.op.as_str()).collect();
    assert_eq!(ops, ["canary", "canary-step", "canary-step", "canary-step", "canary-end"]);
    assert!(audit.iter().any(|r| r.op == "canary-promote" && r.outcome == "ok"));
    let m = g.metrics().await;
    for line in [
        "gateway_canary_verdicts_total{verdict=\"advance\"} 3",
        "gateway_canary_verdicts_total{verdict=\"promote\"} 1",
        "gateway_canary_step -1",
    ] {
        assert!(m.contains(line), "{line} not in the metrics");
    }
    assert!(m.contains("gateway_shadow_prediction_difference_bucket{le=\"1e-09\"} "), "{m}");
    st.stop().await;
}

/// The model's 200 training rows as one scoring payload, `x1` moved by `shift`.
fn training_rows(shift: f64) -> serde_json::Value {
    let mut body = invocation(200);
    for row in body["dataframe_split"]["data"].as_array_mut().unwrap() {
        row[0] = (row[0].as_f64().unwrap() + shift).into();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_share_of_drifted_features_the_new_colour_scored_gates_the_canary() {
    let st = Stack::start(None).await;
    let (g, c) = (&st.g, &st.c);
    // Traffic like the training data: nothing drifts, green is promoted.
    let traffic = Traffic::start_with(g, 2, training_rows(0.0));
    let req =
        CanaryRequest { max_drift_share: Some(0.4), expect_version: Some("2".into()), ..request(&[50, 100], 1.0, 3) };
    c.canary(&req).await.unwrap();
    let end = finished(c, Duration::from_secs(15)).await;
    traffic.stop().await;
    assert_eq!(end.phase, CanaryPhase::Promoted, "{end:?}");
    for v in &end.verdicts {
        assert_eq!(v.drift_share, Some(0.0), "{v:?}");
        assert!(v.drift_rows.unwrap() > 0, "{v:?}");
    }
    // Cumulative since the canary began, 200 rows a request (a step's count, taken when requests
    // are routed, also holds the ones still in flight; by the next step's end they were scored).
    let (first, last) = (&end.verdicts[0], &end.verdicts[1]);
    assert!(last.drift_rows.unwrap() >= 200 * first.requests, "{first:?} {last:?}");

    // x1 moved far from the training data: the canary back to blue (version 1) is aborted at its
    // first step on x1 alone (1 of 2 features), and all traffic stays on green.
    let traffic = Traffic::start_with(g, 2, training_rows(100.0));
    c.canary(&CanaryRequest { max_drift_share: Some(0.4), ..request(&[50, 100], 1.0, 3) }).await.unwrap();
    let end = finished(c, Duration::from_secs(15)).await;
    let seen = traffic.stop().await;
    assert_eq!((end.phase, end.step, end.to), (CanaryPhase::Aborted, 0, admin_api::Colour::Blue), "{end:?}");
    let v = &end.verdicts[0];
    assert_eq!((v.verdict.as_str(), v.drift_share), ("abort", Some(0.5)), "{v:?}");
    let reason = end.reason.unwrap();
    assert!(reason.contains("drift: 1 of 2 features drifted (0.500: x1) in "), "{reason}");
    assert!(reason.contains("over the limit 0.4"), "{reason}");
    assert!(seen.iter().all(|(s, _, _)| *s == 200), "drift fails no request");
    assert_eq!(c.status().await.unwrap().weights, admin_api::Weights { blue: 0, green: 100 });
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_check_on_a_colour_without_sketches_aborts_with_the_reason() {
    // Green behind a relay whose /drift/sketch answers 404, as `serve --drift-window 0` does.
    let st = Stack::start(Some(Fault::NoSketches)).await;
    let c = &st.c;
    let traffic = Traffic::start(&st.g, 2);
    c.canary(&CanaryRequest { max_drift_share: Some(0.4), ..request(&[50, 100], 0.5, 1) }).await.unwrap();
    let end = finished(c, Duration::from_secs(10)).await;
    traffic.stop().await;
    assert_eq!((end.phase, end.step), (CanaryPhase::Aborted, 0), "{end:?}");
    let reason = end.reason.unwrap();
    assert!(reason.contains("drift sketches of green") && reason.contains("404"), "{reason}");
    assert_eq!(c.status().await.unwrap().weights.blue, 100);
    st.stop().await;
}

/// A Prometheus HTTP API answering every instant query with `value`, recording the queries.
async fn prometheus(value: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::extract::{Query, State};
    let queries = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route(
            "/api/v1/query",
            axum::routing::get(
                move |State(q): State<Arc<Mutex<Vec<String>>>>,
                      Query(p): Query<std::collections::HashMap<String, String>>| async move {
                    q.lock().unwrap().push(p["query"].clone());
                    axum::Json(serde_json::json!({
                        "status": "success",
                        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.7e9, value]}]}
                    }))
                },
            ),
        )
        .with_state(queries.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, queries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_query_over_its_limit_aborts_and_an_operator_can_abort() {
    let st = Stack::start(None).await;
    let c = &st.c;
    let traffic = Traffic::start(&st.g, 2);
    let (url, queries) = prometheus("0.7").await;
    let query = "sum(rate(gateway_errors_total{colour=\"{colour}\"}[1m]))".to_string();
    let req =
        CanaryRequest { prometheus: Some(PrometheusCheck { url, query, max: 0.5 }), ..request(&[50, 100], 1.0, 1) };
    c.canary(&req).await.unwrap();
    let end = finished(c, Duration::from_secs(10)).await;
    assert_eq!((end.phase, end.step), (CanaryPhase::Aborted, 0), "{end:?}");
    assert_eq!(end.verdicts[0].prometheus_value, Some(0.7));
    assert!(end.reason.unwrap().contains("= 0.7 is over the limit 0.5"));
    assert_eq!(queries.lock().unwrap().as_slice(), ["sum(rate(gateway_errors_total{colour=\"green\"}[1m]))"]);

    // An operator's abort: traffic back at once, recorded with who asked.
    c.canary(&CanaryRequest { interval_secs: Some(60.0), ..CanaryRequest::default() }).await.unwrap();
    let end = c.canary_abort(&admin_api::CanaryAbortRequest { note: Some("INC-7".into()) }).await.unwrap();
    assert_eq!(end.phase, CanaryPhase::Aborted);
    assert!(end.reason.unwrap().starts_with("aborted by tester (INC-7)"));
    assert_eq!(c.status().await.unwrap().weights.blue, 100);
    let again = c.canary_abort(&admin_api::CanaryAbortRequest::default()).await.unwrap_err();
    assert!(again.to_string().contains("no canary is running"));
    traffic.stop().await;
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_to_an_unhealthy_colour_is_refused_and_bad_plans_are_400() {
    let blue = Upstream::start("1").await;
    let g = TestGateway::start(settings(blue.addr, free_addr(), None)).await;
    let c = admin(&g);
    let e = c.canary(&CanaryRequest::default()).await.unwrap_err().to_string();
    assert!(e.contains("409") && e.contains("refusing a canary to green"), "{e}");
    let (s, v) = g.admin_raw("/canary", r#"{"steps":[50,20]}"#).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("increasing percentages"));
    let (s, _) = g.admin_raw("/canary", r#"{"max_error_rate":"high"}"#).await;
    assert_eq!(s, 400);
    assert_eq!(c.status().await.unwrap().weights.blue, 100, "nothing moved");
    g.stop().await;
    blue.stop().await;
}
