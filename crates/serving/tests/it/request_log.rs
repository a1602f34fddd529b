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
    for _ in 0..40 {
        let (code, r) = s.post_json("/invocations", &dataframe_split(5)).await;
        assert_eq!(code, 200);
        expected.extend(r["predictions"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()));
    }
    let body = serde_json::json!({ "inputs": [{ "name": "t", "shape": [1, 3], "datatype": "BYTES", "data": ["1", "", "blue"] }] });
    let (code, r) = s.post_json("/v2/models/housing/infer", &body).await;
    assert_eq!(code, 200, "{r}");
    expected.push(r["outputs"][0]["data"][0].as_f64().unwrap());
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
    assert_eq!(lines.len(), 201);
    let got: Vec<f64> = lines.iter().map(|l| l["prediction"].as_f64().unwrap()).collect();
    assert_eq!(got, expected);
    let first = &lines[0];
    assert_eq!(first["model_version"], "m-1");
    assert_eq!(first["features"], serde_json::json!({ "x1": 0.0, "x2": -11.0, "color": "red" }));
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    let last = &lines[200];
    assert_eq!(last["features"], serde_json::json!({ "x1": 1.0, "x2": null, "color": "blue" }));

    let mut csv_rows = Vec::new();
    for p in &csv {
        let text = std::fs::read_to_string(p).unwrap();
        let mut it = text.lines();
        assert_eq!(it.next().unwrap(), "x1,x2,color,prediction,model_version,timestamp");
        csv_rows.extend(it.map(str::to_string));
    }
    assert_eq!(csv_rows.len(), 201);
    assert!(csv_rows[0].starts_with(&format!("0,-11,red,{},m-1,", expected[0])), "{}", csv_rows[0]);
    assert!(csv_rows[200].starts_with("1,,blue,"), "{}", csv_rows[200]);
}
