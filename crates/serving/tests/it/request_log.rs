//! The request log: every scored row, from every protocol, on disk after graceful shutdown.

use crate::support::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_is_logged_as_jsonl_and_csv_and_flushed_on_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let log_dir = tmp.path().join("log");
    let mut cfg = serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9");
    let mut log = serving::RequestLogConfig::new(log_dir.clone());
    log.max_file_bytes = 8 << 10;
    cfg.request_log = Some(log);
    let s = TestServer::start(cfg, false).await;
    let mut expected = Vec::new();
    // Every answer carries its request's id: the caller's X-Request-Id, else a new one.
    let mut ids = Vec::new();
    for i in 0..40 {
        let mut req = s.http.post(format!("{}/invocations", s.base)).json(&dataframe_split(5));
        if i == 0 {
            req = req.header("x-request-id", "client-id-7");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_string());
        let r: Value = resp.json().await.unwrap();
        expected.extend(r["predictions"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()));
    }
    assert_eq!(ids[0], "client-id-7");
    assert!(ids[1..].iter().all(|id| id.len() == 32), "{ids:?}");
    assert_eq!(ids.iter().collect::<std::collections::BTreeSet<_>>().len(), 40, "new ids are unique");
    // V2: the body's `id` wins over the header and comes back in both.
    let body = serde_json::json!({ "id": "v2-req-1", "inputs": [{ "name": "t", "shape": [1, 3], "datatype": "BYTES", "data": ["1", "", "blue"] }] });
    let resp = s
        .http
        .post(format!("{}/v2/models/housing/infer", s.base))
        .header("x-request-id", "ignored")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "v2-req-1");
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["id"], "v2-req-1", "{r}");
    expected.push(r["outputs"][0]["data"][0].as_f64().unwrap());
    // Without one: a new id in the header only (V2 echoes the request's id, and there is none).
    let unnamed = serde_json::json!({ "inputs": body["inputs"] });
    let resp = s.http.post(format!("{}/v2/models/housing/infer", s.base)).json(&unnamed).send().await.unwrap();
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(made.len(), 32);
    let r: Value = resp.json().await.unwrap();
    assert!(r.get("id").is_none(), "{r}");
    expected.push(r["outputs"][0]["data"][0].as_f64().unwrap());
    // An id that is not one is refused, naming where it came from; nothing is logged.
    let long = "x".repeat(200);
    let resp = s
        .http
        .post(format!("{}/invocations", s.base))
        .header("x-request-id", &long)
        .json(&dataframe_split(1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("X-Request-Id") && text.contains("at most 128 characters"), "{text}");
    let bad = serde_json::json!({ "id": "a\u{1}b", "inputs": body["inputs"] });
    let (code, r) = s.post_json("/v2/models/housing/infer", &bad).await;
    assert_eq!(code, 400, "{r}");
    assert!(r["error"].as_str().unwrap().contains("the request's id"), "{r}");
    s.stop().await.unwrap();

    let mut files: Vec<_> = std::fs::read_dir(&log_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let jsonl: Vec<_> = files.iter().filter(|p| p.extension().unwrap() == "jsonl").collect();
    let csv: Vec<_> = files.iter().filter(|p| p.extension().unwrap() == "csv").collect();
    assert!(jsonl.len() > 1, "rotation by size: {files:?}");
    assert!(!csv.is_empty() && csv.len() <= jsonl.len(), "{files:?}");

    let lines: Vec<Value> = jsonl
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect();
    assert_eq!(lines.len(), 202);
    let got: Vec<f64> = lines.iter().map(|l| l["prediction"].as_f64().unwrap()).collect();
    assert_eq!(got, expected);
    let first = &lines[0];
    assert_eq!(first["model_version"], "m-1");
    // Each row under its own key: `<id>:<row>` for a request of several rows, `<id>` for one.
    let logged: Vec<&str> = lines.iter().map(|l| l["request_id"].as_str().unwrap()).collect();
    assert_eq!(&logged[..5], ["client-id-7:0", "client-id-7:1", "client-id-7:2", "client-id-7:3", "client-id-7:4"]);
    assert_eq!(logged[5], format!("{}:0", ids[1]));
    assert_eq!(logged[200], "v2-req-1");
    assert_eq!(logged[201], made);
    assert_eq!(first["features"], serde_json::json!({ "x1": 0.0, "x2": -11.0, "color": "red" }));
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    let last = &lines[200];
    assert_eq!(last["features"], serde_json::json!({ "x1": 1.0, "x2": null, "color": "blue" }));

    let mut csv_rows = Vec::new();
    for p in &csv {
        let text = std::fs::read_to_string(p).unwrap();
        let mut it = text.lines();
        assert_eq!(it.next().unwrap(), "x1,x2,color,prediction,model_version,timestamp,request_id");
        csv_rows.extend(it.map(str::to_string));
    }
    assert_eq!(csv_rows.len(), 202);
    assert!(csv_rows[0].starts_with(&format!("0,-11,red,{},m-1,", expected[0])), "{}", csv_rows[0]);
    assert!(csv_rows[0].ends_with(",client-id-7:0"), "{}", csv_rows[0]);
    assert!(csv_rows[200].starts_with("1,,blue,") && csv_rows[200].ends_with(",v2-req-1"), "{}", csv_rows[200]);
}
