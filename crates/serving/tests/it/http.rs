//! HTTP: every route, every payload form, and refusals of bad input.

use crate::support::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_scoring_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let expected: Vec<u64> = load_model(&dir).predict(&rows(5)).unwrap().iter().map(|x| x.to_bits()).collect();
    let s = TestServer::local(&dir).await;

    assert_eq!(s.get("/ping").await.0, 200);
    assert_eq!(s.get("/version").await, (200, env!("CARGO_PKG_VERSION").to_string()));
    let (code, h) = s.get_json("/health").await;
    assert_eq!(code, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["model_name"], "housing");
    assert_eq!(h["model_version"], "m-1");
    assert_eq!(h["run_id"], "run-1");
    assert!(h["model_uri"].as_str().unwrap().ends_with("housing"));
    assert!(h["loaded_at"].as_str().unwrap().ends_with('Z'));
    assert!(h["last_reload_error"].is_null());

    let split = dataframe_split(5);
    let records: Vec<Value> = (0..5)
        .map(|i| {
            let d = &split["dataframe_split"]["data"][i];
            json!({ "x1": d[0], "x2": d[1], "color": d[2] })
        })
        .collect();
    let lists: Vec<Value> = (0..5).map(|i| split["dataframe_split"]["data"][i].clone()).collect();
    let columns = json!({
        "x1": records.iter().map(|r| r["x1"].clone()).collect::<Vec<_>>(),
        "x2": records.iter().map(|r| r["x2"].clone()).collect::<Vec<_>>(),
        "color": records.iter().map(|r| r["color"].clone()).collect::<Vec<_>>(),
    });
    for body in [
        split.clone(),
        json!({ "dataframe_records": records }),
        json!({ "instances": records }),
        json!({ "instances": lists }),
        json!({ "inputs": columns }),
    ] {
        let (code, r) = s.post_json("/invocations", &body).await;
        assert_eq!(code, 200, "{body} → {r}");
        assert_eq!(bits(&r["predictions"]), expected, "{body}");
    }
    let csv = "color,x1,x2\nred,0,-11\ngreen,0.5,-4\nblue,1,3\nred,1.5,10\ngreen,2,-6\n";
    let (code, r) = s.post("/invocations", "text/csv", csv).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(bits(&r["predictions"]), expected);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rest_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let expected: Vec<u64> = load_model(&dir).predict(&rows(5)).unwrap().iter().map(|x| x.to_bits()).collect();
    let s = TestServer::local(&dir).await;

    assert_eq!(s.get_json("/v2/health/live").await, (200, json!({ "live": true })));
    assert_eq!(s.get_json("/v2/health/ready").await, (200, json!({ "ready": true })));
    let (code, meta) = s.get_json("/v2").await;
    assert_eq!((code, meta["name"].as_str()), (200, Some("factory")));
    for path in ["/v2/models/housing", "/v2/models/housing/versions/m-1"] {
        let (code, m) = s.get_json(path).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(m["name"], "housing");
        assert_eq!(m["versions"], json!(["m-1"]));
        assert_eq!(m["platform"], "factory-gbm");
        assert_eq!(
            m["inputs"],
            json!([
                { "name": "x1", "datatype": "FP64", "shape": [-1] },
                { "name": "x2", "datatype": "FP64", "shape": [-1] },
                { "name": "color", "datatype": "BYTES", "shape": [-1] },
            ])
        );
        assert_eq!(m["outputs"], json!([{ "name": "prediction", "datatype": "FP64", "shape": [-1] }]));
        assert_eq!(s.get_json(&format!("{path}/ready")).await, (200, json!({ "name": "housing", "ready": true })));
    }
    assert_eq!(s.get_json("/v2/models/other").await.0, 404);
    assert_eq!(s.get_json("/v2/models/housing/versions/9/ready").await.0, 404);

    let f = rows(5);
    let col = |name: &str| -> Value {
        match &f.column(name).unwrap().data {
            learn::ColumnData::Numeric(v) => json!(v),
            learn::ColumnData::Categorical(v) | learn::ColumnData::Text(v) => json!(v),
        }
    };
    // MLServer's pandas codec: one input per column, [n, 1], mixed datatypes; columns in any order.
    let pandas = json!({
        "id": "req-1",
        "parameters": { "content_type": "pd" },
        "inputs": [
            { "name": "color", "shape": [5, 1], "datatype": "BYTES", "data": col("color"), "parameters": { "content_type": "str" } },
            { "name": "x1", "shape": [5, 1], "datatype": "FP64", "data": col("x1") },
            { "name": "x2", "shape": [5], "datatype": "FP32", "data": col("x2") },
        ]
    });
    // One [n, k] BYTES tensor in signature order.
    let matrix: Vec<Vec<String>> = (0..5)
        .map(|i| {
            let r = &dataframe_split(5)["dataframe_split"]["data"][i];
            vec![r[0].to_string(), r[1].to_string(), r[2].as_str().unwrap().to_string()]
        })
        .collect();
    let tensor = json!({ "inputs": [{ "name": "input-0", "shape": [5, 3], "datatype": "BYTES", "data": matrix }] });
    for path in ["/v2/models/housing/infer", "/v2/models/housing/versions/m-1/infer"] {
        for body in [&pandas, &tensor] {
            let (code, r) = s.post_json(path, body).await;
            assert_eq!(code, 200, "{r}");
            assert_eq!(r["model_name"], "housing");
            assert_eq!(r["model_version"], "m-1");
            let out = &r["outputs"][0];
            assert_eq!(
                (out["name"].as_str(), out["datatype"].as_str(), &out["shape"]),
                (Some("prediction"), Some("FP64"), &json!([5]))
            );
            assert_eq!(bits(&out["data"]), expected);
        }
    }
    let (_, r) = s.post_json("/v2/models/housing/infer", &pandas).await;
    assert_eq!(r["id"], "req-1");

    let (code, text) = s.get("/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        "factory_requests_total{protocol=\"http\",route=\"/v2/models/{name}/infer\",status=\"200\"} 3",
        "factory_requests_total{protocol=\"http\",route=\"/v2/models/{name}\",status=\"404\"} 1",
        "factory_request_duration_seconds_bucket{protocol=\"http\",route=\"/v2/models/{name}/infer\",le=\"+Inf\"} 3",
        "factory_batch_size_rows_bucket{le=\"8\"} 5",
        "factory_model_info{model_name=\"housing\",model_version=\"m-1\",registry_version=\"\"} 1",
        "factory_model_reloads_total{outcome=\"reloaded\"} 1",
        "factory_predictions_total 25",
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    s.stop().await.unwrap();
}

/// Posts `body` to `path` and checks the status and that the message names the problem.
async fn check(
    s: &TestServer,
    path: &str,
    content_type: &str,
    body: &str,
    status: u16,
    code: Option<&str>,
    needle: &str,
) {
    let (got, r) = s.post(path, content_type, body.to_string()).await;
    let message = r["message"].as_str().or(r["error"].as_str()).unwrap_or_default().to_string();
    assert_eq!(got, status, "{path} {body:.80} → {r}");
    if let Some(code) = code {
        assert_eq!(r["error_code"], code, "{r}");
    }
    assert!(message.contains(needle), "{path} {body:.80}: '{message}' should mention '{needle}'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_problem_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let mut cfg = serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9");
    cfg.max_body_bytes = 4096;
    let s = TestServer::start(cfg, false).await;
    let inv = "/invocations";
    let json_ct = "application/json";
    let bad = Some("BAD_REQUEST");
    let invalid = Some("INVALID_PARAMETER_VALUE");
    check(&s, inv, json_ct, "{not json", 400, bad, "not valid JSON").await;
    check(&s, inv, json_ct, r#"{"rows": []}"#, 400, invalid, "dataframe_split").await;
    check(
        &s,
        inv,
        json_ct,
        r#"{"dataframe_split": {"columns": ["x1", "color"], "data": [[1, "red"]]}}"#,
        400,
        invalid,
        "missing column(s): x2",
    )
    .await;
    check(
        &s,
        inv,
        json_ct,
        r#"{"dataframe_split": {"columns": ["x1", "x2", "color", "zz"], "data": [[1, 2, "red", 3]]}}"#,
        400,
        invalid,
        "unexpected column(s): zz",
    )
    .await;
    check(
        &s,
        inv,
        json_ct,
        r#"{"dataframe_split": {"columns": ["x1", "x2", "color"], "data": [[1, "two", "red"]]}}"#,
        400,
        invalid,
        "row 1, column 'x2'",
    )
    .await;
    check(
        &s,
        inv,
        json_ct,
        r#"{"dataframe_split": {"columns": ["x1", "x2", "color"], "data": [[1, 2, 3]]}}"#,
        400,
        invalid,
        "column 'color'",
    )
    .await;
    check(
        &s,
        inv,
        json_ct,
        r#"{"dataframe_split": {"columns": ["x1", "x2", "color"], "data": []}}"#,
        400,
        invalid,
        "no rows",
    )
    .await;
    check(&s, inv, json_ct, r#"{"dataframe_records": []}"#, 400, invalid, "no rows").await;
    // Issue: a column named twice took the last value silently.
    let dup_split = r#"{"dataframe_split": {"columns": ["x1", "x2", "x1", "color"], "data": [[1, 2, 3, "red"]]}}"#;
    check(&s, inv, json_ct, dup_split, 400, invalid, "column 'x1' is given twice").await;
    let dup_record = r#"{"dataframe_records": [{"x1": 1, "x2": 2, "color": "red", "x2": 5}]}"#;
    check(&s, inv, json_ct, dup_record, 400, bad, "'x2' is given twice").await;
    let dup_inputs = r#"{"inputs": {"x1": [1], "x2": [2], "color": ["red"], "color": ["blue"]}}"#;
    check(&s, inv, json_ct, dup_inputs, 400, bad, "'color' is given twice").await;
    check(&s, inv, json_ct, r#"{"instances": [[1, 2]]}"#, 400, invalid, "row 1: 2 values").await;
    check(&s, inv, "text/csv", "x1,x2\n1,2\n", 400, invalid, "color").await;
    check(&s, inv, "text/csv", "x1,x2,color\n1,abc,red\n", 400, invalid, "x2").await;
    check(&s, inv, "text/plain", "x", 415, bad, "unsupported content type 'text/plain'").await;
    let big = format!(r#"{{"instances": [{}]}}"#, vec!["[1, 2, \"red\"]"; 400].join(","));
    check(&s, inv, json_ct, &big, 413, bad, "limit of 4096 bytes").await;

    let v2 = "/v2/models/housing/infer";
    let inp = |inputs: &str| format!(r#"{{"inputs": [{inputs}]}}"#);
    let x1 = r#"{"name": "x1", "shape": [1], "datatype": "FP64", "data": [1.0]}"#;
    let x2 = r#"{"name": "x2", "shape": [1], "datatype": "FP64", "data": [2.0]}"#;
    let color = r#"{"name": "color", "shape": [1], "datatype": "BYTES", "data": ["red"]}"#;
    check(&s, v2, json_ct, "[]", 400, None, "not a V2 inference request").await;
    check(&s, v2, json_ct, "{", 400, None, "not valid JSON").await;
    check(&s, v2, json_ct, &inp(&format!("{x1}, {color}")), 400, None, "missing input(s): x2").await;
    check(
        &s,
        v2,
        json_ct,
        &inp(&format!("{x1}, {x2}, {color}, {}", x1.replace("x1", "zz"))),
        400,
        None,
        "unexpected input(s): zz",
    )
    .await;
    check(
        &s,
        v2,
        json_ct,
        &inp(&format!("{x1}, {}, {color}", x2.replace("[2.0]", "[\"two\"]"))),
        400,
        None,
        "input 'x2', element 0",
    )
    .await;
    check(
        &s,
        v2,
        json_ct,
        &inp(&format!("{x1}, {x2}, {}", color.replace("BYTES", "FP64").replace("\"red\"", "1"))),
        400,
        None,
        "column 'color' is categorical",
    )
    .await;
    check(
        &s,
        v2,
        json_ct,
        &inp(&format!("{x1}, {}, {color}", x2.replace("[1]", "[2]"))),
        400,
        None,
        "needs 2 values, got 1",
    )
    .await;
    check(
        &s,
        v2,
        json_ct,
        &inp(&format!("{x1}, {}, {color}", x2.replace("FP64", "FP16"))),
        400,
        None,
        "unsupported datatype 'FP16'",
    )
    .await;
    let empty = r#"{"inputs": [{"name": "x1", "shape": [0], "datatype": "FP64", "data": []}, {"name": "x2", "shape": [0], "datatype": "FP64", "data": []}, {"name": "color", "shape": [0], "datatype": "BYTES", "data": []}]}"#;
    check(&s, v2, json_ct, empty, 400, None, "empty").await;
    check(&s, v2, json_ct, &big, 413, None, "limit of 4096 bytes").await;
    check(&s, "/v2/models/nope/infer", json_ct, &inp(x1), 404, None, "model 'nope' is not served here").await;
    // Issue: an output the model does not have was ignored; KServe and Triton refuse it.
    let all = format!("{x1}, {x2}, {color}");
    let asking = |name: &str| format!(r#"{{"inputs": [{all}], "outputs": [{{"name": "{name}"}}]}}"#);
    check(&s, v2, json_ct, &asking("nope"), 400, None, "unknown output 'nope' requested").await;
    let (code, r) = s.post_json(v2, &serde_json::from_str(&asking("prediction")).unwrap()).await;
    assert_eq!((code, r["outputs"][0]["name"].as_str()), (200, Some("prediction")), "{r}");

    // Still serving after all that.
    let (code, _) = s.post_json(inv, &dataframe_split(2)).await;
    assert_eq!(code, 200);
    let (_, text) = s.get("/metrics").await;
    assert!(
        text.contains("factory_requests_total{protocol=\"http\",route=\"/invocations\",status=\"400\"} 14"),
        "{text}"
    );
    s.stop().await.unwrap();
}

/// Adaptive batching forms batches from concurrent one-row requests (the
/// `factory_batch_size_rows` histogram counts fewer model calls than requests) and every
/// request still gets exactly its own row's prediction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rows_are_batched_and_each_gets_its_own_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("housing");
    write_package(&dir, 0.0, "1");
    let n = 48;
    let expected: Vec<u64> = load_model(&dir).predict(&rows(n)).unwrap().iter().map(|x| x.to_bits()).collect();
    let mut cfg = serving::Config::new(dir.to_string_lossy(), "http://127.0.0.1:9");
    let max_wait = std::time::Duration::from_millis(20);
    cfg.batching = Some(serving::BatchConfig { max_batch_rows: 16, max_wait, workers: 1 });
    let s = std::sync::Arc::new(TestServer::start(cfg, false).await);
    let split = dataframe_split(n);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = s.clone();
            let mut one = split.clone();
            one["dataframe_split"]["data"] = json!([split["dataframe_split"]["data"][i].clone()]);
            tokio::spawn(async move { s.post_json("/invocations", &one).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (code, r) = t.await.unwrap();
        assert_eq!(code, 200, "{r}");
        assert_eq!(bits(&r["predictions"]), vec![expected[i]], "row {i} got another row's answer");
    }
    let metrics = s.app.render_metrics();
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (calls, rows_scored) = (value("factory_batch_size_rows_count"), value("factory_batch_size_rows_sum"));
    assert_eq!(rows_scored, n as f64);
    assert!(calls < n as f64 / 2.0, "{calls} model calls for {n} concurrent rows: batches did not form");
    assert!(value("factory_batch_size_rows_bucket{le=\"1\"}") < calls, "some calls held more than one row");
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await.unwrap();
}
