//! A binary classifier served: the probability (MLflow scoring, as the model's pyfunc answers),
//! plus the label by the serving threshold in V2 (REST and gRPC) and in the request log.

use crate::support::*;
use serde_json::Value;
use serving::proto::inference::{model_infer_request::InferInputTensor, InferTensorContents, ModelInferRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_follow_the_threshold_in_v2_and_the_request_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spam");
    write_classifier(&dir, "c1");
    let probabilities = load_model(&dir).predict(&rows(6)).unwrap();
    assert!(probabilities.iter().any(|p| *p >= 0.7) && probabilities.iter().any(|p| *p < 0.7), "{probabilities:?}");
    let log_dir = tmp.path().join("log");
    let mut cfg = serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9");
    cfg.threshold = 0.7;
    cfg.request_log = Some(serving::RequestLogConfig::new(log_dir.clone()));
    let s = TestServer::start(cfg, false).await;
    let want: Vec<i64> = probabilities.iter().map(|p| i64::from(*p >= 0.7)).collect();

    // MLflow scoring: the probabilities only, as before.
    let (code, r) = s.post_json("/invocations", &dataframe_split(6)).await;
    assert_eq!(code, 200, "{r}");
    let got: Vec<f64> = r["predictions"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(got, probabilities);

    // V2 metadata and REST: probability and label.
    let (_, meta) = s.get_json("/v2/models/spam").await;
    let outputs: Vec<(&str, &str)> = meta["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["datatype"].as_str().unwrap()))
        .collect();
    assert_eq!(outputs, [("probability", "FP64"), ("label", "INT64")]);
    let split = dataframe_split(6);
    let column = |j: usize| -> Vec<Value> { (0..6).map(|i| split["dataframe_split"]["data"][i][j].clone()).collect() };
    let body = serde_json::json!({ "id": "v2-c", "inputs": [
        { "name": "x1", "shape": [6], "datatype": "FP64", "data": column(0) },
        { "name": "x2", "shape": [6], "datatype": "FP64", "data": column(1) },
        { "name": "color", "shape": [6], "datatype": "BYTES", "data": column(2) },
    ]});
    let (code, r) = s.post_json("/v2/models/spam/infer", &body).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["outputs"][1]["name"], "label");
    let labels: Vec<i64> = r["outputs"][1]["data"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(labels, want);

    // gRPC: the same two outputs.
    let mut c = s.inference().await;
    let fp64 = |name: &str, j: usize| InferInputTensor {
        name: name.into(),
        datatype: "FP64".into(),
        shape: vec![6],
        contents: Some(InferTensorContents {
            fp64_contents: column(j).iter().map(|v| v.as_f64().unwrap()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let inputs = vec![
        fp64("x1", 0),
        fp64("x2", 1),
        InferInputTensor {
            name: "color".into(),
            datatype: "BYTES".into(),
            shape: vec![6],
            contents: Some(InferTensorContents {
                bytes_contents: column(2).iter().map(|v| v.as_str().unwrap().as_bytes().to_vec()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    let r = c
        .model_infer(ModelInferRequest { model_name: "spam".into(), id: "g-c".into(), inputs, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = r.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["probability", "label"]);
    assert_eq!(r.outputs[1].contents.as_ref().unwrap().int64_contents, want);
    s.stop().await.unwrap();

    // The request log: label as `prediction`, and `probability`, per row.
    let mut files: Vec<_> = std::fs::read_dir(&log_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let jsonl = files.iter().find(|p| p.extension().unwrap() == "jsonl").unwrap();
    let lines: Vec<Value> =
        std::fs::read_to_string(jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 18);
    for (i, l) in lines[6..12].iter().enumerate() {
        assert_eq!(l["request_id"], format!("v2-c:{i}"));
        assert_eq!(
            (l["prediction"].as_i64().unwrap(), l["probability"].as_f64().unwrap()),
            (want[i], probabilities[i])
        );
    }
    let csv = files.iter().find(|p| p.extension().unwrap() == "csv").unwrap();
    let text = std::fs::read_to_string(csv).unwrap();
    assert_eq!(text.lines().next().unwrap(), "x1,x2,color,prediction,probability,model_version,timestamp,request_id");
    let row = text.lines().nth(1).unwrap();
    assert!(row.starts_with(&format!("0,-11,red,{},{},m-c1,", want[0], probabilities[0])), "{row}");
}
