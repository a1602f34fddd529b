//! The web UI's files and the calls MLflow's UI makes for features left out, answered as
//! `mlflow server` 3.17.2 answers them with those features off (recorded from it).

use serde_json::{json, Value};
use testkit::server::{spawn_app, spawn_app_with_ui, spawn_auth_app};

/// A UI build folder beside a file that must never be served.
fn ui_build() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("build");
    std::fs::create_dir_all(dir.join("static/js")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>MLflow</title>").unwrap();
    std::fs::write(dir.join("static/js/main.0123.js"), "console.log(1)").unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "do-not-serve").unwrap();
    (tmp, dir)
}

async fn get(app: &testkit::server::App, path: &str) -> (u16, String, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

#[tokio::test]
async fn index_and_assets_are_served_and_nothing_outside_them() {
    let (_tmp, dir) = ui_build();
    let app = spawn_app_with_ui("sqlite", dir).await;
    let (s, ct, body) = get(&app, "/").await;
    assert_eq!((s, ct.as_str()), (200, "text/html"));
    // MLflow's page, with the link to our pages added at its end.
    assert!(body.starts_with("<!doctype html><title>MLflow</title><a href=\"factory/\""), "{body}");
    assert!(body.ends_with(">MLOps Factory pages</a>"), "{body}");
    let r = app.client.get(app.url("/static-files/static/js/main.0123.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=2419200");
    assert!(r.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(r.text().await.unwrap(), "console.log(1)");
    assert_eq!(get(&app, "/static-files/static/js/nope.js").await.0, 404);
    assert_eq!(get(&app, "/static-files/static").await.0, 404, "a folder is not a file");
    assert_eq!(get(&app, "/static-files/index.html/x").await.0, 404, "a file is not a folder");
    assert_eq!(get(&app, &format!("/static-files/{}", "a".repeat(300))).await.0, 404, "a name too long");
    for target in [
        "/static-files/../secret.txt",
        "/static-files/%2e%2e/secret.txt",
        "/static-files/static/..%2f..%2fsecret.txt",
        "/static-files/%252e%252e/secret.txt",
        "/static-files//etc/passwd",
        "/static-files/static\\..\\..\\secret.txt",
    ] {
        let status = app.raw_request("GET", target, "").await;
        assert!(status == 404 || status == 400, "{target}: {status}");
    }
}

#[tokio::test]
async fn without_a_ui_build_the_root_says_how_to_get_one() {
    let app = spawn_app("sqlite").await;
    let (s, ct, body) = get(&app, "/").await;
    assert_eq!((s, ct.as_str()), (200, "text/plain; charset=utf-8"));
    assert!(body.contains("factory ui install"), "{body}");
    assert_eq!(get(&app, "/static-files/index.html").await.0, 404);
}

#[tokio::test]
async fn calls_for_features_left_out_answer_as_mlflow_does_with_them_off() {
    let app = spawn_app("sqlite").await;
    let json = |path: &'static str| {
        let app = &app;
        async move {
            let r = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let info = json("/ajax-api/3.0/mlflow/server-info").await;
    assert_eq!(info, json("/api/3.0/mlflow/server-info").await);
    assert_eq!(
        (info["store_type"].as_str(), &info["features_enabled"]),
        (Some("SqlStore"), &json!({"gateway": false}))
    );
    assert_eq!(
        json("/ajax-api/3.0/mlflow/ui-telemetry").await,
        json!({"disable_ui_events": [], "disable_ui_telemetry": true, "ui_rollout_percentage": 0})
    );
    assert_eq!(
        json("/ajax-api/3.0/mlflow/assistant/config").await,
        json!({"providers": {}, "projects": {}, "remote_access_allowed": false})
    );
    assert_eq!(json("/ajax-api/3.0/mlflow/assistant/providers").await, json!({"providers": []}));
    assert_eq!(json("/ajax-api/2.0/mlflow/gateway-proxy").await, json!({"endpoints": []}));
    let r = app.client.post(app.url("/ajax-api/3.0/mlflow/ui-telemetry")).json(&json!({"records": []})).send();
    assert_eq!(r.await.unwrap().json::<Value>().await.unwrap(), json!({"status": "success"}));
}

#[tokio::test]
async fn with_basic_auth_the_page_needs_a_login_and_its_assets_do_not() {
    let app = spawn_auth_app("sqlite", auth::Permission::Read).await;
    assert_eq!(get(&app, "/").await.0, 401);
    assert_eq!(get(&app, "/api/3.0/mlflow/server-info").await.0, 200);
    let (u, p) = testkit::server::ADMIN;
    let r = app.client.get(app.url("/")).basic_auth(u, Some(p)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // No build installed on this one: the asset route answers 404 without asking for a login.
    assert_eq!(get(&app, "/static-files/index.html").await.0, 404);
}
