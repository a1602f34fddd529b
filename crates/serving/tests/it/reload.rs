//! Hot reload: a new version swaps in under load with zero failed requests; a broken one is
//! refused and the old one keeps serving.

use crate::support::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_then_refuse_a_broken_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let v1 = load_model(&dir).predict(&rows(2)).unwrap();
    let s = Arc::new(TestServer::local(&dir).await);

    // The admin plane is not on the public port, and wants its token.
    let r = s.http.post(format!("{}/admin/reload", s.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = s.http.post(format!("{}/admin/reload", s.admin_base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = s.http.post(format!("{}/admin/reload", s.admin_base)).bearer_auth("serving-test-admin-token-0124").send();
    assert_eq!(r.await.unwrap().status().as_u16(), 401);

    // Unchanged folder: nothing to do.
    let (code, r) = s.post("/admin/reload", "application/json", "").await;
    assert_eq!((code, r["outcome"].as_str()), (200, Some("unchanged")), "{r}");

    // Hammer /invocations from 4 clients while the model changes underneath.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let versions = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (s, stop, ok, failed, versions) = (s.clone(), stop.clone(), ok.clone(), failed.clone(), versions.clone());
        clients.push(tokio::spawn(async move {
            let body = dataframe_split(2);
            while !stop.load(Ordering::Relaxed) {
                let (code, r) = s.post_json("/invocations", &body).await;
                if code == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                    versions.lock().unwrap().insert(r["predictions"][0].as_f64().unwrap().to_bits());
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let staging = tmp.path().join("staging");
    write_package(&staging, 1000.0, "2");
    let v2 = load_model(&staging).predict(&rows(2)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&staging, &dir).unwrap();
    let (code, r) = s.post("/admin/reload", "application/json", "").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (r["outcome"].as_str(), r["previous_version"].as_str(), r["model_version"].as_str()),
        (Some("reloaded"), Some("m-1"), Some("m-2"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 20, "only {} requests", ok.load(Ordering::Relaxed));
    let seen = versions.lock().unwrap().clone();
    assert_eq!(
        seen,
        [v1[0].to_bits(), v2[0].to_bits()].into_iter().collect(),
        "answers came from exactly the two versions"
    );

    // A broken version (model file altered after packaging) is refused; v2 keeps serving.
    let model_file = dir.join(package::MODEL_FILE);
    let mut bytes = std::fs::read(&model_file).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&model_file, bytes).unwrap();
    // ... and the manifest changed too, so the reloader sees a new target.
    let manifest = dir.join(package::MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace('{', "{ ")).unwrap();
    let (code, r) = s.post("/admin/reload", "application/json", "").await;
    assert_eq!((code, r["outcome"].as_str(), r["model_version"].as_str()), (409, Some("refused"), Some("m-2")), "{r}");
    assert!(r["error"].as_str().unwrap().contains("checksum mismatch"), "{r}");
    let (_, h) = s.get_json("/health").await;
    assert_eq!(h["model_version"], "m-2");
    assert!(h["last_reload_error"]["error"].as_str().unwrap().contains("checksum"), "{h}");
    let (code, r) = s.post_json("/invocations", &dataframe_split(2)).await;
    assert_eq!(code, 200);
    assert_eq!(bits(&r["predictions"]), v2.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    let (_, text) = s.get("/metrics").await;
    for needle in [
        "factory_model_reloads_total{outcome=\"reloaded\"} 2",
        "factory_model_reloads_total{outcome=\"refused\"} 1",
        "model_version=\"m-2\"",
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    // A fixed package clears the refusal.
    write_package(&dir, 5.0, "3");
    let (code, r) = s.post("/admin/reload", "application/json", "").await;
    assert_eq!((code, r["model_version"].as_str()), (200, Some("m-3")), "{r}");
    assert!(s.get_json("/health").await.1["last_reload_error"].is_null());
    Arc::into_inner(s).unwrap().stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_picks_up_a_new_version_and_a_bad_first_model_fails_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let mut cfg = serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9");
    cfg.poll_interval = Some(std::time::Duration::from_millis(100));
    let s = TestServer::start(cfg, false).await;
    let staging = tmp.path().join("staging");
    write_package(&staging, 10.0, "2");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&staging, &dir).unwrap();
    let mut version = String::new();
    for _ in 0..100 {
        version = s.get_json("/health").await.1["model_version"].as_str().unwrap_or_default().to_string();
        if version == "m-2" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(version, "m-2");
    s.stop().await.unwrap();

    // Nothing to serve: run() returns the load error.
    let app =
        serving::Serving::new(serving::Config::new(tmp.path().join("absent").to_string_lossy(), "http://127.0.0.1:9"))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serving::run(app, listener, None, std::future::pending()).await.unwrap_err();
    let chain: Vec<String> =
        std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source()).map(|e| e.to_string()).collect();
    assert_eq!(chain[0], "loading the model");
    assert!(chain.join(": ").contains("manifest.json"), "{chain:?}");
}

/// serve's committed admin OpenAPI document is the truth: each operation it lists is routed on
/// the admin listener, answers a documented status, and the typed client reads the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_admin_operations_are_routed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let s = TestServer::local(&dir).await;
    let doc = admin_api::openapi::serve();
    for (method, path) in admin_api::openapi::operations(&doc) {
        assert_eq!(method, "POST", "{path}");
        let op = doc.paths.paths[&path].post.as_ref().unwrap();
        let (code, r) = s.post(&path, "application/json", "").await;
        assert!(op.responses.responses.contains_key(&code.to_string()), "POST {path} answered {code}: {r}");
    }
    let client = admin_api::AdminClient::new(reqwest::Client::new(), &s.admin_base, Some(ADMIN_TOKEN.into()));
    let r = client.reload(&admin_api::ReloadQuery { force: true }).await.unwrap();
    assert_eq!((r.outcome, r.model_version.as_deref()), (admin_api::ReloadOutcome::Reloaded, Some("m-1")));
}

/// `POST url` as a browser or as our clients send it: the status.
async fn admin_status(url: &str, headers: &[(&str, &str)], body: &'static str, token: Option<&str>) -> u16 {
    let mut r = reqwest::Client::builder().no_proxy().build().unwrap().post(url).body(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Issue: serve's admin listener without a token took `POST /admin/reload?force=true` from any
/// web page (no preflight for a cross-origin POST) and under any host name (DNS rebinding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_refuses_web_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");

    // With its token: a browser's request is refused even with the token; a Service name is fine.
    let s = TestServer::local(&dir).await;
    let url = format!("{}/admin/reload?force=true", s.admin_base);
    let t = Some(ADMIN_TOKEN);
    assert_eq!(admin_status(&url, &[("origin", "http://evil.example")], "", t).await, 403);
    assert_eq!(admin_status(&url, &[("sec-fetch-site", "cross-site")], "", t).await, 403);
    assert_eq!(admin_status(&url, &[("content-type", "text/plain")], "{}", t).await, 415);
    assert_eq!(admin_status(&url, &[("host", "serve-admin:8081")], "", t).await, 200);
    s.stop().await.unwrap();

    // Without a token (loopback only): the host must be an IP address or localhost too.
    let app = serving::Serving::new(serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9")).unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listeners = serving::Listeners { http, grpc: None, admin: Some(admin) };
    let server = tokio::spawn(serving::run_with(app.clone(), listeners, async move {
        let _ = rx.await;
    }));
    while !app.is_ready() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let url = format!("http://{admin_addr}/admin/reload?force=true");
    let evil = [("origin", "http://evil.example"), ("host", "evil.example"), ("content-type", "text/plain")];
    assert_eq!(admin_status(&url, &evil, r#"{"x":1}"#, None).await, 403);
    assert_eq!(admin_status(&url, &[("host", "evil.example")], "", None).await, 403);
    assert_eq!(admin_status(&url, &[("content-type", "text/plain")], "x", None).await, 415);
    let port = admin_addr.port();
    assert_eq!(admin_status(&url, &[("host", &*format!("localhost:{port}"))], "", None).await, 200);
    let client = admin_api::AdminClient::new(reqwest::Client::new(), &format!("http://{admin_addr}"), None);
    client.reload(&admin_api::ReloadQuery { force: false }).await.unwrap();
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
