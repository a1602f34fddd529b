//! Searches serve runs from an in-memory cache keyed by each run's `data_version`. Every kind
//! of write must show in the next search: on the server that wrote it, and on a second server
//! over the same database (a replica whose cache never saw the write).

use serde_json::{json, Value};
use testkit::db::backends;
use testkit::server::{spawn_app, App};

/// The run `run_id` as a search over `exp` returns it (any lifecycle stage), from `app`.
async fn searched(app: &App, exp: &str, run_id: &str) -> Value {
    let (s, b) = app.post("runs/search", json!({"experiment_ids": [exp], "run_view_type": "ALL"})).await;
    assert_eq!(s, 200, "{b}");
    let runs = b["runs"].as_array().cloned().unwrap_or_default();
    runs.into_iter().find(|r| r["info"]["run_id"] == run_id).unwrap_or(Value::Null)
}

fn kv(run: &Value, section: &str, key: &str) -> Value {
    run["data"][section]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == key))
        .map(|i| i["value"].clone())
        .unwrap_or(Value::Null)
}

/// Two servers over one database (the second a replica whose cache never sees the writes of
/// the first) and the run their searches cache.
struct Replicas<'a> {
    apps: [&'a App; 2],
    exp: &'a str,
    run: &'a str,
}

impl Replicas<'_> {
    /// Searches on both servers (caching the run on each), posts `body` to `route` on `writer`
    /// (which must take it), then checks `expect` against what both servers' next search returns.
    async fn check(&self, what: &str, writer: &App, route: &str, body: Value, expect: impl Fn(&Value) -> bool) {
        for app in self.apps {
            searched(app, self.exp, self.run).await;
        }
        let (status, answer) = writer.post(route, body).await;
        assert_eq!(status, 200, "{what}: {answer}");
        for (i, app) in self.apps.iter().enumerate() {
            let run = searched(app, self.exp, self.run).await;
            assert!(expect(&run), "{what}: server {i} on {} returned a stale run: {run}", app.backend);
        }
    }
}

#[tokio::test]
async fn every_write_shows_in_the_next_search_on_every_server() {
    for backend in backends() {
        let a = spawn_app(backend).await;
        let b = a.twin().await;
        let (exp, run) = a.run().await;
        let t = Replicas { apps: [&a, &b], exp: &exp, run: &run };

        t.check(
            "log-metric",
            &a,
            "runs/log-metric",
            json!({"run_id": run, "key": "m", "value": 1.5, "timestamp": 1, "step": 1}),
            |r| r["data"]["metrics"][0]["value"] == 1.5,
        )
        .await;
        t.check(
            "a later log-metric",
            &b,
            "runs/log-metric",
            json!({"run_id": run, "key": "m", "value": 2.5, "timestamp": 2, "step": 2}),
            |r| r["data"]["metrics"][0]["value"] == 2.5 && r["data"]["metrics"][0]["step"] == 2,
        )
        .await;
        t.check(
            "log-metric infinity",
            &a,
            "runs/log-metric",
            json!({"run_id": run, "key": "inf", "value": "Infinity", "timestamp": 1, "step": 0}),
            |r| r["data"]["metrics"].as_array().unwrap().iter().any(|m| m["key"] == "inf" && m["value"] == "Infinity"),
        )
        .await;
        t.check(
            "log-batch",
            &a,
            "runs/log-batch",
            json!({"run_id": run,
                   "metrics": [{"key": "b", "value": 7.0, "timestamp": 3, "step": 0},
                               {"key": "nan", "value": "NaN", "timestamp": 3, "step": 0},
                               {"key": "ninf", "value": "-Infinity", "timestamp": 3, "step": 0}],
                   "params": [{"key": "p", "value": "1"}],
                   "tags": [{"key": "t", "value": "x"}]}),
            |r| {
                let metric = |k: &str| {
                    r["data"]["metrics"].as_array().unwrap().iter().find(|m| m["key"] == k).map(|m| m["value"].clone())
                };
                metric("b") == Some(json!(7.0))
                    && metric("nan") == Some(json!("NaN"))
                    && metric("ninf") == Some(json!("-Infinity"))
                    && kv(r, "params", "p") == "1"
                    && kv(r, "tags", "t") == "x"
            },
        )
        .await;
        t.check("set-tag", &b, "runs/set-tag", json!({"run_id": run, "key": "t", "value": "y"}), |r| {
            kv(r, "tags", "t") == "y"
        })
        .await;
        t.check("delete-tag", &a, "runs/delete-tag", json!({"run_id": run, "key": "t"}), |r| {
            kv(r, "tags", "t").is_null()
        })
        .await;
        t.check("log-parameter", &a, "runs/log-parameter", json!({"run_id": run, "key": "q", "value": "2"}), |r| {
            kv(r, "params", "q") == "2"
        })
        .await;
        t.check(
            "update (status, end time, name)",
            &a,
            "runs/update",
            json!({"run_id": run, "status": "FINISHED", "end_time": 99, "run_name": "renamed"}),
            |r| {
                r["info"]["status"] == "FINISHED"
                    && r["info"]["end_time"] == 99
                    && r["info"]["run_name"] == "renamed"
                    && kv(r, "tags", "mlflow.runName") == "renamed"
            },
        )
        .await;
        t.check(
            "log-inputs",
            &a,
            "runs/log-inputs",
            json!({"run_id": run, "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
                   "dataset": {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"}}]}),
            |r| r["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "d",
        )
        .await;
        let (s, model) =
            a.post("logged-models", json!({"experiment_id": exp, "name": "m", "source_run_id": run})).await;
        assert_eq!(s, 200, "{model}");
        let model_id = model["model"]["info"]["model_id"].as_str().unwrap().to_string();
        t.check(
            "outputs",
            &a,
            "runs/outputs",
            json!({"run_id": run, "models": [{"model_id": model_id, "step": 3}]}),
            |r| r["outputs"]["model_outputs"][0]["model_id"] == model_id.as_str(),
        )
        .await;
        t.check("delete run", &b, "runs/delete", json!({"run_id": run}), |r| r["info"]["lifecycle_stage"] == "deleted")
            .await;
        t.check("restore run", &a, "runs/restore", json!({"run_id": run}), |r| {
            r["info"]["lifecycle_stage"] == "active"
        })
        .await;
        t.check("delete experiment", &a, "experiments/delete", json!({"experiment_id": exp}), |r| {
            r["info"]["lifecycle_stage"] == "deleted"
        })
        .await;
        t.check("restore experiment", &b, "experiments/restore", json!({"experiment_id": exp}), |r| {
            r["info"]["lifecycle_stage"] == "active"
        })
        .await;
        // A refused write (a deleted run takes none) leaves the run as it was.
        let deleted = a.post("runs/delete", json!({"run_id": run})).await;
        assert_eq!(deleted.0, 200, "{}", deleted.1);
        let before = searched(&b, &exp, &run).await;
        let refused = a.post("runs/set-tag", json!({"run_id": run, "key": "late", "value": "1"})).await;
        assert_eq!(refused.0, 400, "{}", refused.1);
        assert_eq!(searched(&b, &exp, &run).await, before, "{backend}");
        assert_eq!(searched(&a, &exp, &run).await, before, "{backend}");
    }
}

/// A run read by a search is the same JSON as `runs/get` returns for it, whether the search
/// hydrated it or took it from the cache.
#[tokio::test]
async fn cached_runs_read_like_runs_get() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (exp, run) = app.run().await;
        let (s, b) = app
            .post(
                "runs/log-batch",
                json!({"run_id": run, "metrics": [{"key": "x", "value": 0.1, "timestamp": 5, "step": 1}],
                       "params": [{"key": "a", "value": "é\"\\\n"}], "tags": [{"key": "k", "value": "v"}]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (_, got) = app.get("runs/get", &[("run_id", run.as_str())]).await;
        for _ in 0..2 {
            assert_eq!(searched(&app, &exp, &run).await, got["run"], "{backend}");
        }
    }
}

/// Metric values come back bit for bit, through log-batch and log-metric alike: random
/// doubles (every exponent), the extremes and the non-finite ones.
#[tokio::test]
async fn metric_values_round_trip_exactly() {
    use rand_pcg::rand_core::{Rng as _, SeedableRng as _};
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x9E37_79B9_7F4A_7C15);
    let mut values: Vec<f64> = (0..6000)
        .map(|_| {
            // Every bit pattern is as likely, so every exponent shows up.
            let z = rng.next_u64();
            // Random sign and mantissa; the exponent mostly where metrics live (2^-128 to
            // 2^127), one value in 8 anywhere.
            let exponent = if z.is_multiple_of(8) { (z >> 52) & 0x7FF } else { 1023 - 128 + (z >> 55) % 256 };
            f64::from_bits((z & (1 << 63)) | (exponent << 52) | (z & ((1 << 52) - 1)))
        })
        .filter(|v| !v.is_nan())
        .collect();
    values.extend([5e-324, -5e-324, f64::MIN_POSITIVE, f64::MAX, f64::MIN, 0.1, 1.0 / 3.0, 1.0000000000000002]);
    let wire = |v: f64| {
        if v.is_finite() {
            json!(v)
        } else if v > 0.0 {
            json!("Infinity")
        } else {
            json!("-Infinity")
        }
    };
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, run) = app.run().await;
        for (i, chunk) in values.chunks(1000).enumerate() {
            let metrics: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(j, v)| json!({"key": "b", "value": wire(*v), "timestamp": 1, "step": i * 1000 + j}))
                .collect();
            let (s, b) = app.post("runs/log-batch", json!({"run_id": run, "metrics": metrics})).await;
            assert_eq!(s, 200, "{b}");
        }
        for (step, v) in values.iter().take(1000).enumerate() {
            let (s, b) = app
                .post(
                    "runs/log-metric",
                    json!({"run_id": run, "key": "m", "value": wire(*v), "timestamp": 1, "step": step}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
        }
        for (key, expected) in [("b", &values[..]), ("m", &values[..1000])] {
            let (s, b) = app
                .get("metrics/get-history", &[("run_id", run.as_str()), ("metric_key", key), ("max_results", "25000")])
                .await;
            assert_eq!(s, 200, "{b}");
            let mut got: Vec<(u64, Value)> = b["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["step"].as_u64().unwrap(), m["value"].clone()))
                .collect();
            got.sort_by_key(|g| g.0);
            assert_eq!(got.len(), expected.len(), "{backend} {key}");
            for ((step, value), want) in got.iter().zip(expected) {
                let value = match value {
                    Value::String(s) if s == "Infinity" => f64::INFINITY,
                    Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
                    v => v.as_f64().unwrap(),
                };
                assert_eq!(
                    value.to_bits(),
                    want.to_bits(),
                    "{backend} {key} step {step}: {value:e} stored for {want:e}"
                );
            }
        }
    }
}
