//! Bad input gets MLflow's error body naming what was wrong; nothing is stored; the server
//! stays up. Each case runs on every configured backend.

use serde_json::json;
use testkit::db::backends;
use testkit::server::{assert_error, spawn_app};

#[tokio::test]
async fn malformed_and_mistyped_bodies() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, run) = app.run().await;
        let cases: Vec<(&str, String, &str, &str)> = vec![
            ("experiments/create", "{\"name\": ".into(), "BAD_REQUEST", "Malformed JSON"),
            ("experiments/create", "not json".into(), "BAD_REQUEST", "Malformed JSON"),
            (
                "experiments/create",
                json!({"name": 5}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "Invalid value 5 for parameter 'name' supplied",
            ),
            ("experiments/create", json!({}).to_string(), "INVALID_PARAMETER_VALUE", "'name'"),
            ("experiments/create", json!({"name": "  "}).to_string(), "INVALID_PARAMETER_VALUE", "experiment name"),
            (
                "runs/log-metric",
                json!({"run_id": run, "value": 1.0, "timestamp": 1}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "'key'",
            ),
            (
                "runs/log-metric",
                json!({"run_id": run, "key": "m", "timestamp": 1}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "'value'",
            ),
            (
                "runs/log-metric",
                json!({"run_id": run, "key": "m", "value": 1.0}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "'timestamp'",
            ),
            (
                "runs/log-metric",
                json!({"run_id": run, "key": "m", "value": "high", "timestamp": 1}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "Invalid value \"high\" for parameter 'value' supplied",
            ),
            (
                "runs/log-metric",
                json!({"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": 1.5}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "Invalid value 1.5 for parameter 'step' supplied",
            ),
            (
                "runs/log-metric",
                json!({"run_id": run, "key": "../m", "value": 1, "timestamp": 1}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "must not resolve to other names",
            ),
            (
                "runs/log-metric",
                json!({"key": "m", "value": 1, "timestamp": 1}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "'run_id'",
            ),
            (
                "runs/log-parameter",
                json!({"run_id": run, "key": "p"}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "'value'",
            ),
            ("runs/update", json!({"run_id": run, "status": "DONE"}).to_string(), "INVALID_PARAMETER_VALUE", "DONE"),
            (
                "runs/search",
                json!({"experiment_ids": ["0"], "max_results": 50001}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "max_results",
            ),
            (
                "runs/search",
                json!({"experiment_ids": ["0"], "page_token": "garbage"}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "page token",
            ),
            ("runs/search", json!({"experiment_ids": ["x"]}).to_string(), "INVALID_PARAMETER_VALUE", "experiment ID"),
            (
                "runs/search",
                json!({"experiment_ids": ["0"], "run_view_type": "SOME"}).to_string(),
                "INVALID_PARAMETER_VALUE",
                "view type",
            ),
        ];
        for (route, body, code, needle) in cases {
            let got = app.post_raw(route, body.clone()).await;
            assert_error(&got, 400, code, needle);
        }
        // Nothing half-stored: the run has no metric or param from the refused requests.
        let (_, got) = app.get("runs/get", &[("run_id", &run)]).await;
        assert!(got["run"]["data"]["metrics"].is_null(), "{got}");
        assert!(got["run"]["data"]["params"].is_null(), "{got}");
        app.healthy().await;
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let missing = "0123456789abcdef0123456789abcdef";
        let cases = [
            app.get("runs/get", &[("run_id", missing)]).await,
            app.post("runs/log-metric", json!({"run_id": missing, "key": "m", "value": 1, "timestamp": 1})).await,
            app.post("runs/log-batch", json!({"run_id": missing, "params": [{"key": "a", "value": "b"}]})).await,
            app.post("runs/set-tag", json!({"run_id": missing, "key": "a", "value": "b"})).await,
            app.post("runs/delete", json!({"run_id": missing})).await,
            app.get("experiments/get", &[("experiment_id", "424242")]).await,
            app.get("experiments/get-by-name", &[("experiment_name", "nope")]).await,
            app.post("runs/create", json!({"experiment_id": "424242"})).await,
        ];
        for got in &cases {
            assert_error(got, 404, "RESOURCE_DOES_NOT_EXIST", "");
        }
        let got = app.get("nope/nothing", &[]).await;
        assert_error(&got, 404, "ENDPOINT_NOT_FOUND", "nope/nothing");
    }
}

#[tokio::test]
async fn oversized_values_are_refused_and_nothing_is_stored() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, run) = app.run().await;
        let huge = "x".repeat(10 * 1024 * 1024);
        let got = app.post("runs/log-parameter", json!({"run_id": run, "key": "big", "value": huge})).await;
        assert_error(
            &got,
            400,
            "INVALID_PARAMETER_VALUE",
            "'Param value' exceeds the maximum length of 6000 characters",
        );
        let got = app.post("runs/set-tag", json!({"run_id": run, "key": "big", "value": "y".repeat(8001)})).await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE", "'value' exceeds the maximum length of 8000 characters");
        let metrics: Vec<_> = (0..1001).map(|i| json!({"key": "m", "value": 1, "timestamp": 1, "step": i})).collect();
        let got = app.post("runs/log-batch", json!({"run_id": run, "metrics": metrics})).await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE", "at most 1000 metrics");
        // A batch with one bad param stores none of its metrics (atomic).
        let got = app
            .post(
                "runs/log-batch",
                json!({"run_id": run, "metrics": [{"key": "ok", "value": 1, "timestamp": 1}],
                       "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
            )
            .await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys");
        let (_, got) = app.get("runs/get", &[("run_id", &run)]).await;
        assert!(got["run"]["data"]["metrics"].is_null() && got["run"]["data"]["params"].is_null(), "{got}");
        // Beyond the body limit, still an MLflow error and not a dropped connection.
        let body = format!("{{\"name\": \"{}\"}}", "z".repeat(mlflow_api::json::MAX_JSON_BODY));
        let got = app.post_raw("experiments/create", body).await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE", "body");
        app.healthy().await;
    }
}

#[tokio::test]
async fn non_finite_metrics_round_trip() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, run) = app.run().await;
        // The client sends proto-JSON strings; Python's bare tokens are accepted too.
        for (i, v) in ["\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "NaN", "-Infinity", "2.5"].iter().enumerate() {
            let body =
                format!("{{\"run_id\": \"{run}\", \"key\": \"m\", \"value\": {v}, \"timestamp\": {i}, \"step\": {i}}}");
            let (s, b) = app.post_raw("runs/log-metric", body).await;
            assert_eq!(s, 200, "{v}: {b}");
        }
        let (_, got) = app.get("metrics/get-history", &[("run_id", &run), ("metric_key", "m")]).await;
        let values: Vec<String> = got["metrics"].as_array().unwrap().iter().map(|m| m["value"].to_string()).collect();
        assert_eq!(values, ["\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"NaN\"", "\"-Infinity\"", "2.5"]);
    }
}

#[tokio::test]
async fn hostile_filters_are_inert() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (exp, run) = app.run().await;
        let (s, _) = app.post("runs/log-parameter", json!({"run_id": run, "key": "p", "value": "a"})).await;
        assert_eq!(s, 200);
        let count = |v: &serde_json::Value| v["runs"].as_array().map_or(0, Vec::len);
        let cases = [
            ("params.p = 'a'' OR ''1''=''1'", Some(0)),
            ("params.p = 'a' OR 1=1", None),
            ("params.p = 'x'; DROP TABLE runs; --", None),
            ("params.p = 'a' -- comment", None),
            ("params.`p' = 'a'; DELETE FROM runs; --` = 'a'", Some(0)),
            ("tags.\"x\") OR (1=1\" = 'a'", None),
            ("attributes.run_name = '' UNION SELECT run_uuid FROM runs --'", None),
            ("attributes.run_name = 'x'' UNION SELECT run_uuid FROM runs --'", Some(0)),
            ("metrics.m > 0 AND params.p LIKE '%'", Some(0)),
            ("params.p LIKE '%'", Some(1)),
            ("attributes.status IN ('RUNNING')", None),
            ("run_id IN ('x'', ''y')", Some(0)),
            ("params.p = \u{0}", None),
        ];
        for (filter, expect) in cases {
            let got = app.post("runs/search", json!({"experiment_ids": [exp], "filter": filter})).await;
            match expect {
                Some(n) => {
                    assert_eq!(got.0, 200, "{filter}: {}", got.1);
                    assert_eq!(count(&got.1), n, "{filter}");
                }
                None => assert_error(&got, 400, "INVALID_PARAMETER_VALUE", ""),
            }
        }
        // The store is intact.
        let (_, got) = app.post("runs/search", json!({"experiment_ids": [exp]})).await;
        assert_eq!(count(&got), 1);
        app.healthy().await;
    }
}

#[tokio::test]
async fn artifact_paths_cannot_escape() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let outside = app.artifacts_dir.path().parent().unwrap().join("escaped.txt");
        let attempts = [
            "../escaped.txt",
            "0/../../escaped.txt",
            "%2e%2e/escaped.txt",
            "0/%252e%252e/%252e%252e/escaped.txt",
            "0/..%2fescaped.txt",
            "0/a%23/../../escaped.txt",
            "0/x%3F/../../escaped.txt",
            "%2Fetc%2Fescaped.txt",
            "0/..\\..\\escaped.txt",
        ];
        for path in attempts {
            // Sent byte for byte: an HTTP client library would normalise the dots away.
            let target = format!("/api/2.0/mlflow-artifacts/artifacts/{path}");
            assert_eq!(app.raw_request("PUT", &target, "pwned").await, 400, "PUT {path}");
            assert_eq!(app.raw_request("GET", &target, "").await, 400, "GET {path}");
        }
        assert!(!outside.exists(), "a file escaped the artifact root");
        let list = app
            .client
            .get(format!("{}/api/2.0/mlflow-artifacts/artifacts", app.base))
            .query(&[("path", "../")])
            .send()
            .await
            .unwrap();
        assert_eq!(list.status().as_u16(), 400);
        // Legitimate odd names still work.
        let ok = format!("{}/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a%20b+c%25.txt", app.base);
        assert_eq!(app.client.put(&ok).body("hi").send().await.unwrap().status().as_u16(), 200);
        assert_eq!(app.client.get(&ok).send().await.unwrap().text().await.unwrap(), "hi");
        let got = app
            .post("experiments/create", json!({"name": "evil", "artifact_location": "file:///tmp/x/#/../../etc"}))
            .await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE", "artifact_location");
    }
}

/// The UI's `metrics/get-history-bulk` (under `/ajax-api` only): MLflow's checks and words, the
/// points by run id then (timestamp, step, value), `max_results` over all runs.
#[tokio::test]
async fn metric_history_bulk_as_mlflow() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, a) = app.run().await;
        let (_, b) = app.run().await;
        for (run, ts, step, value) in [(&a, 2, 1, 1.0), (&a, 1, 5, 2.0), (&b, 1, 0, 3.0)] {
            let body = json!({"run_id": run, "key": "m", "value": value, "timestamp": ts, "step": step});
            assert_eq!(app.post("runs/log-metric", body).await.0, 200);
        }
        let url = app.url("/ajax-api/2.0/mlflow/metrics/get-history-bulk");
        let get = |query: Vec<(&'static str, String)>| {
            let req = app.client.get(&url).query(&query);
            async move {
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (s, got) = get(vec![("run_id", a.clone()), ("run_id", b.clone()), ("metric_key", "m".into())]).await;
        assert_eq!(s, 200, "{got}");
        let mut runs = [a.clone(), b.clone()];
        runs.sort();
        let seen: Vec<(String, i64)> = got["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["run_id"].as_str().unwrap().to_string(), m["timestamp"].as_i64().unwrap()))
            .collect();
        let mut expected = vec![];
        for r in &runs {
            if *r == a {
                expected.extend([(a.clone(), 1), (a.clone(), 2)]);
            } else {
                expected.push((b.clone(), 1));
            }
        }
        assert_eq!(seen, expected);
        let (_, two) = get(vec![
            ("run_id", a.clone()),
            ("run_id", b.clone()),
            ("metric_key", "m".into()),
            ("max_results", "2".into()),
        ])
        .await;
        assert_eq!(two["metrics"].as_array().unwrap().len(), 2);
        for (query, needle) in [
            (vec![("metric_key", "m".to_string())], "must specify at least one run_id"),
            (
                (0..101).map(|i| ("run_id", format!("r{i}"))).chain([("metric_key", "m".into())]).collect(),
                "cannot specify more than 100",
            ),
            (vec![("run_id", a.clone())], "must specify a metric_key"),
        ] {
            let (s, b) = get(query).await;
            assert_eq!((s, b["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{b}");
            assert!(b["message"].as_str().unwrap().contains(needle), "{b}");
        }
    }
}

/// The status line reads as MLflow's Werkzeug writes it (`400 BAD REQUEST`): the client's
/// error messages quote it.
#[tokio::test]
async fn reason_phrases_are_werkzeug_s() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app("sqlite").await;
    let addr = app.base.trim_start_matches("http://").to_string();
    for (target, line) in [
        ("/api/2.0/mlflow/experiments/get?experiment_id=x", "HTTP/1.1 400 BAD REQUEST"),
        ("/api/2.0/mlflow/experiments/get?experiment_id=12345", "HTTP/1.1 404 NOT FOUND"),
        ("/health", "HTTP/1.1 200 OK"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        assert_eq!(text.lines().next(), Some(line), "{target}");
    }
}

/// The UI's `experiments/search-datasets` (under `/ajax-api` only): MLflow's checks and
/// words, one summary per dataset and context.
#[tokio::test]
async fn search_datasets_as_mlflow() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (exp, run) = app.run().await;
        let dataset = json!({"name": "d", "digest": "1", "source_type": "local", "source": "s"});
        let inputs = json!({"run_id": run, "datasets": [
            {"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "training"}]}]});
        assert_eq!(app.post("runs/log-inputs", inputs).await.0, 200);
        let url = app.url("/ajax-api/2.0/mlflow/experiments/search-datasets");
        let post = |body: serde_json::Value| {
            let req = app.client.post(&url).json(&body);
            async move {
                let resp = req.send().await.unwrap();
                (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (s, got) = post(json!({"experiment_ids": [exp]})).await;
        assert_eq!(s, 200, "{got}");
        let expected = json!([{"experiment_id": exp, "name": "d", "digest": "1", "context": "training"}]);
        assert_eq!(got["dataset_summaries"], expected);
        let many: Vec<String> = (0..21).map(|i| i.to_string()).collect();
        for (body, needle) in [
            (json!({}), "must specify at least one experiment_id"),
            (json!({"experiment_ids": many}), "cannot specify more than 20"),
        ] {
            let (s, b) = post(body).await;
            assert_eq!(s, 400, "{b}");
            assert!(b["message"].as_str().unwrap().contains(needle), "{b}");
        }
    }
}
