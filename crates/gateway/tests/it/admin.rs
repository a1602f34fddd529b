//! The control plane over the admin API: switch, health gate, rollback, persisted state,
//! audit log, bad input.

use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_rollback_state_and_audit_survive_a_restart() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("gw.json");
    let g = TestGateway::start(settings(blue.addr, green.addr, Some(state.clone()))).await;

    let st = g.admin_get("/status").await;
    assert_eq!((st["active"].as_str(), st["previous"].clone()), (Some("blue"), serde_json::Value::Null));
    assert_eq!(st["upstreams"]["blue"]["address"], blue.addr.to_string());
    // Nothing to roll back to yet.
    let (s, v) = g.admin_post("/rollback", json!({})).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nothing to roll back to"), "{v}");

    // Switch with no target: the idle colour; expected version checked.
    // The identity is the token's; a claimed `who` is refused, a note is kept next to it.
    let (s, v) = g.admin_post("/switch", json!({ "expect_version": "2", "who": "mallory" })).await;
    assert_eq!(s, 400, "{v}");
    let r = g.http.post(format!("{}/switch", g.admin)).bearer_auth(ALICE_TOKEN).json(&json!({ "expect_version": "2" }));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["from"].as_str(), v["to"].as_str()), (Some("blue"), Some("green")));
    assert_eq!((v["from_version"].as_str(), v["to_version"].as_str()), (Some("1"), Some("2")));
    assert_eq!(v["health"]["ok"], true);
    assert_eq!(v["health"]["grpc"]["ok"], true);
    assert!(v["operation_id"].as_str().unwrap().len() >= 16);
    assert_eq!(g.health().await, ("2".into(), "green".into()));

    // Wrong expected version: refused, traffic stays on green.
    let (s, v) = g.admin_post("/switch", json!({ "to": "blue", "expect_version": 7 })).await;
    assert_eq!(s, 409, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("blue") && msg.contains(&blue.addr.to_string()), "{msg}");
    assert!(msg.contains("model_version is \"1\", expected \"7\""), "{msg}");
    assert_eq!(g.health().await.1, "green");

    // Rollback: back to blue, with the version.
    let r = g.http.post(format!("{}/rollback", g.admin)).bearer_auth(BOB_TOKEN).header("x-factory-who", "mallory");
    let r = r.json(&json!({ "note": "ticket 7" })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str(), v["to_version"].as_str()),
        (Some("green"), Some("blue"), Some("1"))
    );
    assert_eq!(g.health().await, ("1".into(), "blue".into()));

    // Canary + shadow, then restart: the state file brings everything back.
    assert_eq!(g.admin_post("/weights", json!({ "blue": 70, "green": 30 })).await.0, 200);
    assert_eq!(g.admin_post("/shadow", json!({ "percent": 5 })).await.0, 200);
    let before = g.admin_get("/status").await;
    g.stop().await;
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["active"], "blue");
    let g = TestGateway::start(settings(blue.addr, green.addr, Some(state.clone()))).await;
    let after = g.admin_get("/status").await;
    for k in ["active", "previous", "weights", "shadow_percent"] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["previous"], "green");

    // The audit log lists every operation, refused ones too, oldest first, across restarts.
    let audit = g.admin_get("/audit").await;
    let ops: Vec<(&str, &str)> =
        audit.as_array().unwrap().iter().map(|r| (r["op"].as_str().unwrap(), r["outcome"].as_str().unwrap())).collect();
    assert_eq!(
        ops,
        [
            ("rollback", "refused"),
            ("switch", "ok"),
            ("switch", "refused"),
            ("rollback", "ok"),
            ("weights", "ok"),
            ("shadow", "ok")
        ]
    );
    assert_eq!(audit[1]["who"], "alice");
    assert_eq!(audit[3]["who"], "bob (ticket 7)");
    assert_eq!(audit[0]["who"], "tester");
    assert_eq!((audit[1]["from_version"].as_str(), audit[1]["to_version"].as_str()), (Some("1"), Some("2")));
    assert_eq!(audit[2]["health"]["http"]["ok"], false);
    assert!(audit[1]["time"].as_str().unwrap().ends_with('Z'));
    // Without a token, or with a wrong one, nothing happens.
    let anon = reqwest::Client::builder().no_proxy().build().unwrap();
    for path in ["/status", "/audit", "/metrics"] {
        assert_eq!(anon.get(format!("{}{path}", g.admin)).send().await.unwrap().status(), 401, "{path}");
    }
    let r = anon.post(format!("{}/switch", g.admin)).bearer_auth("tester-admin-token-012345678X").send();
    assert_eq!(r.await.unwrap().status(), 401);
    let log = std::fs::read_to_string(dir.path().join("gw.audit.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 6);
    g.stop().await;
    blue.stop().await;
    green.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_to_a_stopped_upstream_is_refused_and_traffic_keeps_flowing() {
    let blue = Upstream::start("1").await;
    let green_addr = free_addr();
    let g = TestGateway::start(settings(blue.addr, green_addr, None)).await;
    let (s, v) = g.admin_post("/switch", json!({ "to": "green" })).await;
    assert_eq!(s, 409, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.starts_with(&format!("refusing to switch to green ({green_addr})")), "{msg}");
    assert!(msg.contains("gRPC grpc.health.v1.Health/Check") && msg.contains("HTTP GET /health"), "{msg}");
    assert!(msg.contains("traffic stays on blue"), "{msg}");
    assert_eq!(g.invoke().await, (200, "blue".into()));
    assert_eq!(g.admin_get("/status").await["active"], "blue");

    // Green comes up on that address: now the switch passes.
    let green = Upstream::start_on(tokio::net::TcpListener::bind(green_addr).await.unwrap(), "2").await;
    let (s, v) = g.admin_post("/switch", json!({ "to": "green" })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(g.invoke().await, (200, "green".into()));
    let m = g.metrics().await;
    assert!(m.contains("gateway_switches_total{outcome=\"refused\"} 1"), "{m}");
    assert!(m.contains("gateway_active{colour=\"green\"} 1"), "{m}");
    g.stop().await;
    blue.stop().await;
    green.stop().await;
}

fn check_bad(s: u16, v: &serde_json::Value, needle: &str) {
    assert_eq!(s, 400, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_input_is_a_400_with_a_message() {
    let blue = Upstream::start("1").await;
    let g = TestGateway::start(settings(blue.addr, free_addr(), None)).await;
    let (s, v) = g.admin_raw("/switch", "{not json").await;
    check_bad(s, &v, "bad request body");
    let (s, v) = g.admin_raw("/switch", r#"{"to":"red"}"#).await;
    check_bad(s, &v, "unknown colour \"red\"");
    let (s, v) = g.admin_raw("/switch", r#"{"to":"green","colour":"x"}"#).await;
    check_bad(s, &v, "unknown field `colour`");
    let (s, v) = g.admin_raw("/switch", r#"{"drain_timeout_secs":-1}"#).await;
    check_bad(s, &v, "drain_timeout_secs");
    let (s, v) = g.admin_raw("/weights", r#"{"green":120}"#).await;
    check_bad(s, &v, "out of range");
    let (s, v) = g.admin_raw("/weights", r#"{"blue":50,"green":10}"#).await;
    check_bad(s, &v, "add up to 100");
    let (s, v) = g.admin_raw("/weights", r#"{"green":-5}"#).await;
    check_bad(s, &v, "bad request body");
    let (s, v) = g.admin_raw("/weights", "{}").await;
    check_bad(s, &v, "give a weight");
    let (s, v) = g.admin_raw("/shadow", r#"{"percent":101}"#).await;
    check_bad(s, &v, "out of range");
    let (s, v) = g.admin_raw("/shadow", "").await;
    check_bad(s, &v, "missing field `percent`");
    let (s, v) = g.admin_raw("/nope", "").await;
    check_bad(s, &v, "no such admin endpoint");
    // Nothing changed, nothing but refusals... bad input is not an operation.
    let st = g.admin_get("/status").await;
    assert_eq!((st["active"].as_str(), st["shadow_percent"].as_u64()), (Some("blue"), Some(0)));
    assert_eq!(st["weights"], json!({ "blue": 100, "green": 0 }));
    assert_eq!(g.admin_get("/audit").await, json!([]));
    g.stop().await;
    blue.stop().await;
}

/// The committed OpenAPI document of the admin API is the truth: every operation it lists is
/// routed (not the fallback) and answers one of its documented statuses, and the typed client
/// reads every real answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_the_typed_client_reads_the_answers() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let g = TestGateway::start(settings(blue.addr, green.addr, None)).await;

    let doc = admin_api::openapi::gateway();
    let ops = admin_api::openapi::operations(&doc);
    assert_eq!(ops.len(), 10, "{ops:?}");
    for (method, path) in ops {
        let item = &doc.paths.paths[&path];
        let op = if method == "GET" { item.get.as_ref() } else { item.post.as_ref() }.unwrap();
        let url = format!("{}{path}", g.admin);
        let r = if method == "GET" { g.http.get(url) } else { g.http.post(url) }.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(!text.contains("no such admin endpoint"), "{method} {path} is documented but not routed");
        assert!(
            op.responses.responses.contains_key(&status.to_string()),
            "{method} {path} answered {status}, which its document does not list: {text}"
        );
    }
    // Unauthenticated: the documented 401.
    let r = reqwest::Client::new().get(format!("{}/status", g.admin)).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let client = admin_api::AdminClient::new(reqwest::Client::new(), &g.admin, Some(TESTER_TOKEN.into()));
    let st = client.status().await.unwrap();
    let to = st.idle();
    let sw = client.switch(&admin_api::SwitchRequest { to: Some(to), ..Default::default() }).await.unwrap();
    assert_eq!((sw.to, sw.health.colour, sw.health.ok), (to, to, true));
    let ch = client.weights(&admin_api::WeightsRequest { green: Some(30), ..Default::default() }).await.unwrap();
    assert_eq!((ch.weights.blue, ch.weights.green), (70, 30));
    let ch = client.shadow(&admin_api::ShadowRequest { percent: 5, note: None }).await.unwrap();
    assert_eq!(ch.shadow_percent, 5);
    let audit = client.audit().await.unwrap();
    assert_eq!(audit.last().map(|r| r.op.as_str()), Some("shadow"));
    assert!(audit.iter().any(|r| r.op == "switch" && r.to == Some(to) && r.who == "tester"), "{audit:?}");
    let back = client.rollback(&admin_api::RollbackRequest::default()).await.unwrap();
    assert_eq!((back.from, back.to), (to, to.other()));
    let started = client.canary(&admin_api::CanaryRequest::default()).await.unwrap();
    assert_eq!((started.to, started.weight, started.phase), (to, 5, admin_api::CanaryPhase::Running));
    let ended = client.canary_abort(&admin_api::CanaryAbortRequest::default()).await.unwrap();
    assert_eq!(ended.phase, admin_api::CanaryPhase::Aborted);
    assert_eq!(client.canary_status().await.unwrap(), Some(ended));

    g.stop().await;
    blue.stop().await;
    green.stop().await;
}

/// A request as a web page makes the operator's browser send it: `(status, error message)`.
async fn send_raw(
    url: String,
    headers: &[(&str, &str)],
    body: Option<&'static str>,
    token: Option<&str>,
) -> (u16, String) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut r = if body.is_some() { http.post(url) } else { http.get(url) };
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    (status, v["error"].as_str().unwrap_or_default().to_string())
}

/// Issue: the tokenless admin API (the default) took a cross-origin `text/plain` POST, which
/// needs no CORS preflight, and any host name (DNS rebinding). Browsers are refused before the
/// token is looked at; our clients (no Origin, JSON bodies, an IP or localhost) still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_web_pages_are_refused() {
    let blue = Upstream::start("1").await;
    let green = Upstream::start("2").await;
    let mut s = settings(blue.addr, green.addr, None);
    s.admin_tokens = None;
    let g = TestGateway::start(s).await;
    let port = g.admin.rsplit(':').next().unwrap().to_string();
    let evil = [("origin", "http://evil.example"), ("content-type", "text/plain")];
    for (path, body) in [
        ("/weights", r#"{"blue":0,"green":100}"#),
        ("/shadow", r#"{"percent":100}"#),
        ("/switch", r#"{"to":"green"}"#),
        ("/rollback", "{}"),
        ("/canary", "{}"),
    ] {
        let url = format!("{}{path}", g.admin);
        let (s, msg) = send_raw(url.clone(), &evil, Some(body), None).await;
        assert_eq!(s, 403, "{path}: {msg}");
        assert!(msg.contains("Origin"), "{msg}");
        // The same with the host a rebinding page has, without Origin (same-origin for it).
        let host = [("host", "evil.example"), ("content-type", "application/json")];
        let (s, msg) = send_raw(url.clone(), &host, Some(body), None).await;
        assert_eq!(s, 403, "{path}: {msg}");
        assert!(msg.contains("DNS rebinding"), "{msg}");
        // No Origin, but a type a browser may send cross-origin without preflight.
        let (s, msg) = send_raw(url.clone(), &[("content-type", "text/plain")], Some(body), None).await;
        assert_eq!(s, 415, "{path}: {msg}");
        let form = [("content-type", "application/x-www-form-urlencoded")];
        assert_eq!(send_raw(url.clone(), &form, Some(body), None).await.0, 415, "{path}");
        let fetch = [("sec-fetch-site", "same-site"), ("content-type", "application/json")];
        assert_eq!(send_raw(url, &fetch, Some(body), None).await.0, 403, "{path}");
    }
    let (s, msg) = send_raw(format!("{}/status", g.admin), &[("host", "evil.example:80")], None, None).await;
    assert_eq!(s, 403, "{msg}");
    // Nothing moved, nothing was an operation.
    let st = g.admin_get("/status").await;
    assert_eq!((st["active"].as_str(), st["shadow_percent"].as_u64()), (Some("blue"), Some(0)));
    assert_eq!(st["weights"], json!({ "blue": 100, "green": 0 }));
    assert_eq!(g.admin_get("/audit").await, json!([]));

    // Our clients: an IP literal or localhost, no Origin, JSON or no body.
    let json = [("content-type", "application/json")];
    let (s, msg) = send_raw(format!("{}/shadow", g.admin), &json, Some(r#"{"percent":1}"#), None).await;
    assert_eq!(s, 200, "{msg}");
    let local = [("host", &*format!("localhost:{port}")), ("content-type", "application/json")];
    let (s, msg) = send_raw(format!("{}/shadow", g.admin), &local, Some(r#"{"percent":2}"#), None).await;
    assert_eq!(s, 200, "{msg}");
    // An empty body needs no type (curl -X POST).
    let (s, msg) = send_raw(format!("{}/canary/abort", g.admin), &[], Some(""), None).await;
    assert!(![403, 415].contains(&s), "{s} {msg}");
    let client = admin_api::AdminClient::new(reqwest::Client::new(), &g.admin, None);
    let ch = client.weights(&admin_api::WeightsRequest { green: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!((ch.weights.blue, ch.weights.green), (90, 10));
    g.stop().await;

    // With tokens: a browser is refused even with the token; any host name is fine (a Service).
    let g = TestGateway::start(settings(blue.addr, green.addr, None)).await;
    let url = format!("{}/shadow", g.admin);
    let evil = [("origin", "http://evil.example"), ("content-type", "application/json")];
    assert_eq!(send_raw(url.clone(), &evil, Some(r#"{"percent":3}"#), Some(TESTER_TOKEN)).await.0, 403);
    let service = [("host", "gateway-admin:50049"), ("content-type", "application/json")];
    let (s, msg) = send_raw(url, &service, Some(r#"{"percent":3}"#), Some(TESTER_TOKEN)).await;
    assert_eq!(s, 200, "{msg}");
    g.stop().await;
    blue.stop().await;
    green.stop().await;
}
