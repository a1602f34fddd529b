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
