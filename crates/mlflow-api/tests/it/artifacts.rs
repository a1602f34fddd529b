//! The artifact proxy over a real S3-compatible server (s3s-fs): what a client uploads lands
//! in the bucket under the destination's prefix, lists and downloads back byte for byte, and
//! a replica over the same database and bucket sees it.

use testkit::s3::S3Server;
use testkit::server::{App, Artifacts};

#[tokio::test]
async fn artifacts_round_trip_through_s3() {
    let s3 = S3Server::start();
    let app = App::start("sqlite", Artifacts::S3 { server: &s3, bucket: "it-bucket", prefix: "proxied" }).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let url = app.url("/api/2.0/mlflow-artifacts/artifacts/1/run-a/artifacts/model/model.bin");
    let put = app.client.put(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 200, "{}", put.text().await.unwrap());

    // In the bucket, under the prefix: the object is real.
    let on_disk = s3.root.path().join("it-bucket/proxied/1/run-a/artifacts/model/model.bin");
    assert_eq!(std::fs::read(&on_disk).unwrap(), body);

    let listed = app
        .client
        .get(app.url("/api/2.0/mlflow-artifacts/artifacts"))
        .query(&[("path", "1/run-a/artifacts/model")])
        .send()
        .await
        .unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["files"][0]["path"], "model.bin", "{listed}");
    assert_eq!(listed["files"][0]["file_size"], body.len() as u64, "{listed}");

    let twin = app.twin().await;
    let got = twin.client.get(twin.url("/api/2.0/mlflow-artifacts/artifacts/1/run-a/artifacts/model/model.bin"));
    let got = got.send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), body.as_slice());

    let missing = app.client.get(app.url("/api/2.0/mlflow-artifacts/artifacts/1/run-a/artifacts/none.bin"));
    assert_eq!(missing.send().await.unwrap().status().as_u16(), 404);
}

/// The server reads a run's, a version's and a logged model's artifacts itself (MLflow's
/// `/get-artifact`, `/model-versions/get-artifact`, `artifacts/list`, the logged-model
/// `artifacts/files|directories`): from the proxy for `mlflow-artifacts:` locations, sent as
/// attachments with MLflow's content types; never from a location a client chose.
#[tokio::test]
async fn run_version_and_logged_model_artifacts_are_served() {
    use serde_json::json;
    for backend in testkit::db::backends() {
        let app = testkit::server::spawn_app(backend).await;
        let (exp, run) = app.run().await;
        let put = |path: String, body: &'static str| {
            let url = app.url(&format!("/api/2.0/mlflow-artifacts/artifacts/{path}"));
            let req = app.client.put(url).body(body);
            async move { assert_eq!(req.send().await.unwrap().status().as_u16(), 200) }
        };
        put(format!("{exp}/{run}/artifacts/dir/a.txt"), "abc").await;

        // the UI's upload into the run, read back through the run
        let upload = app.url("/ajax-api/2.0/mlflow/upload-artifact");
        let up = app.client.post(&upload).query(&[("run_uuid", run.as_str()), ("path", "up/b.txt")]).body("hello");
        assert_eq!(up.send().await.unwrap().status().as_u16(), 200);
        let got = app.client.get(app.url("/get-artifact")).query(&[("run_uuid", run.as_str()), ("path", "up/b.txt")]);
        assert_eq!(got.send().await.unwrap().text().await.unwrap(), "hello");
        for (query, needle) in [
            (vec![("path", "x.txt")], "Request must specify run_uuid."),
            (vec![("run_uuid", run.as_str())], "Request must specify path."),
            (vec![("run_uuid", run.as_str()), ("path", "../x.txt")], "Invalid path"),
            (vec![("run_uuid", run.as_str()), ("path", "x.txt")], "Request must specify data."),
        ] {
            let resp = app.client.post(&upload).query(&query).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 400);
            assert!(resp.text().await.unwrap().contains(needle), "{needle}");
        }

        let got = app.client.get(app.url("/get-artifact")).query(&[("run_id", run.as_str()), ("path", "dir/a.txt")]);
        let got = got.send().await.unwrap();
        assert_eq!(got.status().as_u16(), 200);
        assert_eq!(got.headers()["content-disposition"], "attachment; filename=a.txt");
        assert_eq!(got.headers()["content-type"], "text/plain");
        assert_eq!(got.text().await.unwrap(), "abc");

        let (s, top) = app.get("artifacts/list", &[("run_id", &run)]).await;
        assert_eq!(s, 200, "{top}");
        assert_eq!(top["files"], json!([{"path": "dir", "is_dir": true}, {"path": "up", "is_dir": true}]), "{top}");
        assert!(top["root_uri"].as_str().unwrap().ends_with(&format!("{run}/artifacts")), "{top}");
        let (_, inner) = app.get("artifacts/list", &[("run_id", &run), ("path", "dir")]).await;
        assert_eq!(inner["files"], json!([{"path": "dir/a.txt", "is_dir": false, "file_size": 3}]), "{inner}");

        // traversal out of the run, a missing file, a missing run
        for (path, status) in [("../x", 400), ("dir/../../x", 400), ("dir/none.txt", 404)] {
            let got = app.client.get(app.url("/get-artifact")).query(&[("run_id", run.as_str()), ("path", path)]);
            assert_eq!(got.send().await.unwrap().status().as_u16(), status, "{path}");
        }
        let (s, _) = app.get("artifacts/list", &[("run_id", "0123456789abcdef0123456789abcdef")]).await;
        assert_eq!(s, 404);
        // MLflow's words, checked before the run is read; repeated slashes redirect as in MLflow
        let (s, b) = app.get("artifacts/list", &[("run_id", "nope"), ("path", "../x")]).await;
        assert_eq!((s, b["message"].as_str()), (400, Some("Invalid path")), "{b}");
        let target = format!("//get-artifact?run_id={run}&path=dir/a.txt");
        assert_eq!(app.raw_request("GET", &target, "").await, 308);

        // a model version whose source is the run's artifacts
        let (s, b) = app.post("registered-models/create", json!({"name": "served"})).await;
        assert_eq!(s, 200, "{b}");
        let source = format!("mlflow-artifacts:/{exp}/{run}/artifacts/dir");
        let (s, b) =
            app.post("model-versions/create", json!({"name": "served", "source": source, "run_id": run})).await;
        assert_eq!(s, 200, "{b}");
        let got = app.client.get(app.url("/model-versions/get-artifact"));
        let got = got.query(&[("name", "served"), ("version", "1"), ("path", "a.txt")]).send().await.unwrap();
        assert_eq!(got.status().as_u16(), 200);
        assert_eq!(got.text().await.unwrap(), "abc");

        // a logged model's files
        let (s, b) = app.post("logged-models", json!({"experiment_id": exp})).await;
        assert_eq!(s, 200, "{b}");
        let model = b["model"]["info"]["model_id"].as_str().unwrap().to_string();
        put(format!("{exp}/models/{model}/artifacts/MLmodel"), "flavors: {}").await;
        let (s, listed) = app.get(&format!("logged-models/{model}/artifacts/directories"), &[]).await;
        assert_eq!(s, 200, "{listed}");
        assert_eq!(listed["files"][0]["path"], "MLmodel", "{listed}");
        let files = app.url(&format!("/ajax-api/2.0/mlflow/logged-models/{model}/artifacts/files"));
        let got = app.client.get(&files).query(&[("artifact_file_path", "MLmodel")]).send().await.unwrap();
        assert_eq!(got.status().as_u16(), 200);
        assert_eq!(got.headers()["content-type"], "text/plain");
        let missing = app.client.get(&files).send().await.unwrap();
        assert_eq!(missing.status().as_u16(), 400);

        // an experiment whose location a client chose is not read by the server
        let (s, b) = app.post("experiments/create", json!({"name": "elsewhere", "artifact_location": "/etc"})).await;
        assert_eq!(s, 200, "{b}");
        let elsewhere = b["experiment_id"].as_str().unwrap().to_string();
        let (_, b) = app.post("runs/create", json!({"experiment_id": elsewhere})).await;
        let other = b["run"]["info"]["run_id"].as_str().unwrap().to_string();
        let got = app.client.get(app.url("/get-artifact")).query(&[("run_id", other.as_str()), ("path", "passwd")]);
        let got = got.send().await.unwrap();
        assert_eq!(got.status().as_u16(), 400);
        assert!(got.text().await.unwrap().contains("not served by this server"));
    }
}

/// Multipart uploads get MLflow's answer for a store without them (501 NOT_IMPLEMENTED, which
/// the client does not retry); a traversal is still refused first.
#[tokio::test]
async fn multipart_uploads_answer_as_mlflow_without_them() {
    let app = testkit::server::spawn_app("sqlite").await;
    for step in ["create", "complete", "abort"] {
        let url = app.url(&format!("/api/2.0/mlflow-artifacts/mpu/{step}/1/run/artifacts/model"));
        let resp = app.client.post(&url).json(&serde_json::json!({"path": "m.pkl", "num_parts": 1})).send().await;
        let resp = resp.unwrap();
        assert_eq!(resp.status().as_u16(), 501);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error_code"], "NOT_IMPLEMENTED", "{body}");
        let bad = app.url(&format!("/api/2.0/mlflow-artifacts/mpu/{step}/1/a%5Cb"));
        assert_eq!(app.client.post(&bad).send().await.unwrap().status().as_u16(), 400);
    }
}
