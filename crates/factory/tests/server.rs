//! `factory server` as a process, wired as a deployment runs it: over a fresh database
//! (SQLite, and PostgreSQL when `FACTORY_TEST_POSTGRES` is set) with artifacts on a real
//! S3-compatible server (s3s-fs) named by MLflow's variables; a run's artifact goes through
//! the proxy into the bucket, and the server refuses to start with wrong credentials.

use serde_json::{json, Value};
use testkit::db::{backends, TempDb};
use testkit::process::Factory;
use testkit::s3::S3Server;

fn factory() -> Factory {
    Factory::new(env!("CARGO_BIN_EXE_factory"))
}

#[tokio::test]
async fn server_with_s3_artifacts() {
    let s3 = S3Server::start();
    s3.create_bucket("it-bucket");
    for backend in backends() {
        let db = TempDb::new(backend).await;
        let (_server, base) = factory().server(&db.uri, &format!("s3://it-bucket/{backend}"), &s3.env()).await;
        let http = reqwest::Client::new();
        let post = |route: &str, body: Value| http.post(format!("{base}/api/2.0/mlflow/{route}")).json(&body).send();
        let exp: Value = post("experiments/create", json!({"name": "e"})).await.unwrap().json().await.unwrap();
        let exp = exp["experiment_id"].as_str().unwrap().to_string();
        let run: Value = post("runs/create", json!({"experiment_id": exp})).await.unwrap().json().await.unwrap();
        let run_id = run["run"]["info"]["run_id"].as_str().unwrap();
        let path = format!("{exp}/{run_id}/artifacts/notes.txt");
        let put = http.put(format!("{base}/api/2.0/mlflow-artifacts/artifacts/{path}")).body("hello").send().await;
        assert_eq!(put.unwrap().status().as_u16(), 200, "{backend}");
        let stored = std::fs::read_to_string(s3.root.path().join(format!("it-bucket/{backend}/{path}"))).unwrap();
        assert_eq!(stored, "hello", "{backend}");
    }
}

#[test]
fn server_refuses_wrong_s3_credentials() {
    let s3 = S3Server::start();
    s3.create_bucket("it-bucket");
    let db = tempfile::tempdir().unwrap();
    let mut env = s3.env();
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    let out = factory()
        .command()
        .args(["server", "--port", &testkit::process::free_port().to_string(), "--backend-store-uri"])
        .arg(format!("sqlite:///{}", db.path().join("m.db").display()))
        .args(["--artifacts-destination", "s3://it-bucket/x"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used") && stderr.contains("SignatureDoesNotMatch"), "{stderr}");
}

/// `--static-prefix /mlflow`: the MLflow UI's page at `/mlflow/` (the bare prefix redirects
/// there), and our pages under `/mlflow/factory/` with every link staying under the prefix.
#[tokio::test]
async fn the_ui_and_our_pages_work_under_a_static_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let ui = tmp.path().join("ui");
    std::fs::create_dir_all(ui.join("static-files")).unwrap();
    std::fs::write(ui.join("index.html"), "<!doctype html><title>MLflow</title><body></body>").unwrap();
    let port = testkit::process::free_port();
    let f = factory();
    let mut c = f.command();
    c.args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--static-prefix", "/mlflow"])
        .args(["--backend-store-uri", &format!("sqlite:///{}", tmp.path().join("db.sqlite").display())])
        .args(["--artifacts-destination", &tmp.path().join("art").display().to_string()])
        .args(["--ui-dir", &ui.display().to_string()]);
    let base = format!("http://127.0.0.1:{port}");
    let _server = f.start("factory server", c, &format!("{base}/mlflow/health")).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http.get(path).send().await.unwrap();
            let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
            (r.status().as_u16(), location, r.text().await.unwrap())
        }
    };
    let (status, location, _) = get(format!("{base}/mlflow")).await;
    assert_eq!((status, location.as_deref()), (308, Some("/mlflow/")));
    let (status, _, html) = get(format!("{base}/mlflow/")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<title>MLflow</title>") && html.contains("href=\"factory/\""), "{html}");
    let (status, location, _) = get(format!("{base}/mlflow/factory")).await;
    assert_eq!((status, location.as_deref()), (308, Some("factory/")));
    let page = reqwest::Url::parse(&format!("{base}/mlflow/factory/")).unwrap();
    let (status, _, html) = get(page.to_string()).await;
    assert_eq!(status, 200, "{html}");
    let mut followed = 0;
    for href in html.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()) {
        let target = page.join(href).unwrap();
        assert!(target.path().starts_with("/mlflow/"), "{href} leaves the prefix: {target}");
        let (status, _, body) = get(target.to_string()).await;
        assert_eq!(status, 200, "{href} → {target}: {body}");
        followed += 1;
    }
    assert!(followed >= 4, "{html}");
}
