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
