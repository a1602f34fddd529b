//! Our pages at `/factory/` over the real server: loop cycles recorded as the loop records them
//! (tags, metrics, `cycle.json` and the HTML report through the artifact proxy), a registered
//! version with its training run, data set and alias moves; then what each page shows, and
//! what a user without permissions is shown and refused.

use auth::Permission;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::db::backends;
use testkit::server::{spawn_app, spawn_auth_app, App, ADMIN};

const PASSWORD: &str = "pages-test-password-1234";

struct Seeded {
    experiment: String,
    experiment_name: String,
    cycles: Vec<String>,
    model: String,
    training_run: String,
}

async fn call(app: &App, who: Option<(&str, &str)>, method: Method, path: &str) -> reqwest::RequestBuilder {
    let rb = app.client.request(method, app.url(path));
    match who {
        Some((u, p)) => rb.basic_auth(u, Some(p)),
        None => rb,
    }
}

async fn api(app: &App, who: Option<(&str, &str)>, route: &str, body: Value) -> Value {
    let resp =
        call(app, who, Method::POST, &format!("/api/2.0/mlflow/{route}")).await.json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{route}: {body}");
    body
}

async fn put_artifact(app: &App, who: Option<(&str, &str)>, run_artifacts: &str, path: &str, body: String) {
    let url = format!("/api/2.0/mlflow-artifacts/artifacts/{run_artifacts}/{path}");
    let resp = call(app, who, Method::PUT, &url).await.body(body).send().await.unwrap();
    assert!(resp.status().is_success(), "PUT {url}: {}", resp.status());
}

/// Three cycles of pipeline `housing` on model `<model>`: no drift, drift → v2 promoted, no drift.
async fn seed(app: &App, who: Option<(&str, &str)>) -> Seeded {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let experiment_name = format!("drift-monitoring-{tag}");
    let model = format!("housing-model-{tag}");
    let experiment = api(app, who, "experiments/create", json!({"name": experiment_name})).await["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let train = api(app, who, "experiments/create", json!({"name": format!("training-{tag}")})).await["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The training runs of v1 and v2, each with its data set.
    let mut versions = Vec::new();
    api(app, who, "registered-models/create", json!({"name": model})).await;
    for (i, digest) in ["digest-v1-aaaa", "digest-v2-bbbb"].iter().enumerate() {
        let run = api(
            app,
            who,
            "runs/create",
            json!({"experiment_id": train, "run_name": format!("train-v{}", i + 1), "start_time": 1000 + i}),
        )
        .await["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        api(
            app,
            who,
            "runs/log-metric",
            json!({"run_id": run, "key": "rmse", "value": 50000.0 - i as f64, "timestamp": 1}),
        )
        .await;
        api(
            app,
            who,
            "runs/log-inputs",
            json!({"run_id": run, "datasets": [{
                "tags": [{"key": "mlflow.data.context", "value": "training"}],
                "dataset": {"name": "california-housing", "digest": digest, "source_type": "local", "source": "{\"uri\": \"housing.csv\"}"}
            }]}),
        )
        .await;
        put_artifact(app, who, &format!("{train}/{run}/artifacts"), "model/MLmodel", "flavors: {}\n".into()).await;
        let source = format!("mlflow-artifacts:/{train}/{run}/artifacts/model");
        api(app, who, "model-versions/create", json!({"name": model, "source": source, "run_id": run})).await;
        versions.push(run);
    }
    api(app, who, "registered-models/alias", json!({"name": model, "alias": "prod", "version": "1"})).await;
    let mut cycles = Vec::new();
    for (i, (decision, share, psi, challenger)) in
        [("no_drift", 0.125, 0.03, None), ("promoted", 0.625, 0.41, Some("2")), ("no_drift", 0.0, 0.02, None)]
            .into_iter()
            .enumerate()
    {
        let mut tags = vec![
            json!({"key": "factory.pipeline", "value": "housing"}),
            json!({"key": "factory.model", "value": model}),
            json!({"key": "factory.decision", "value": decision}),
            json!({"key": "factory.drift_detected", "value": (share > 0.5).to_string()}),
            json!({"key": "factory.significant_drift", "value": (share > 0.5).to_string()}),
            json!({"key": "factory.champion_version", "value": if i < 2 { "1" } else { "2" }}),
        ];
        if let Some(v) = challenger {
            tags.push(json!({"key": "factory.challenger_version", "value": v}));
            tags.push(json!({"key": "factory.promoted", "value": "true"}));
        }
        let run = api(
            app,
            who,
            "runs/create",
            json!({"experiment_id": experiment, "run_name": format!("housing-cycle-{i}"), "start_time": 2000 + i, "tags": tags}),
        )
        .await["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        let metrics = [("share_of_drifted_columns", share), ("max_psi", psi)]
            .map(|(k, v)| json!({"key": k, "value": v, "timestamp": 1, "step": 0}));
        api(app, who, "runs/log-batch", json!({"run_id": run, "metrics": metrics})).await;
        let columns = json!({"rows": 1000 + i, "columns": [
            {"column": "median_income", "stattest": "psi", "drift_score": psi, "drift_detected": share > 0.5},
            {"column": "<b>house_age</b>", "stattest": "ks", "drift_score": 0.5 - share / 2.0, "drift_detected": false},
        ]});
        let artifacts = format!("{experiment}/{run}/artifacts");
        put_artifact(app, who, &artifacts, "cycle.json", columns.to_string()).await;
        put_artifact(app, who, &artifacts, "drift/drift_report.html", format!("<html><body>report {i}</body></html>"))
            .await;
        if challenger.is_some() {
            api(app, who, "registered-models/alias", json!({"name": model, "alias": "prod", "version": "2"})).await;
        }
        cycles.push(run);
    }
    Seeded { experiment, experiment_name, cycles, model, training_run: versions[1].clone() }
}

/// The admin's call to the user and role API (`/api/3.0/mlflow/<route>`), which must succeed.
async fn admin_v3(app: &App, route: &str, body: Value) -> Value {
    let resp = call(app, Some(ADMIN), Method::POST, &format!("/api/3.0/mlflow/{route}"))
        .await
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{route}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Every link of the page at `path` that leads to our pages or a report (not the MLflow UI's
/// hash routes, not query-only links) resolves, relative to the page, to a page that answers 200.
async fn links_resolve(app: &App, who: Option<(&str, &str)>, path: &str) -> usize {
    let (_, html, _) = page(app, who, path).await;
    let base = reqwest::Url::parse(&app.url(path)).unwrap();
    let mut checked = 0;
    for href in html.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()) {
        if href.contains("#/") || href.starts_with('?') {
            continue;
        }
        let target = base.join(&href.replace("&amp;", "&")).unwrap();
        let resp = call(app, who, Method::GET, &target.as_str()[app.base.len()..]).await.send().await.unwrap();
        let status = resp.status().as_u16();
        assert!(status == 200, "{path}: {href} → {target}: {status}");
        checked += 1;
    }
    checked
}

async fn page(app: &App, who: Option<(&str, &str)>, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let resp = call(app, who, Method::GET, path).await.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, resp.text().await.unwrap(), headers)
}

#[tokio::test]
async fn the_pages_show_cycles_reports_and_lineage() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let s = seed(&app, None).await;

        let (status, html, headers) = page(&app, None, "/factory/").await;
        assert_eq!(status, 200, "{html}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        assert!(html.contains(&s.experiment_name) && html.contains(&s.model), "{html}");
        assert!(html.contains("@prod → v2"), "the alias as it is now: {html}");

        let (status, html, _) = page(&app, None, &format!("/factory/drift/{}", s.experiment)).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(html.matches("<tr>").count(), 4, "a header and one row per cycle: {html}");
        for run in &s.cycles {
            assert!(html.contains(&format!("href=\"../runs/{run}/drift-report\"")), "report link of {run}");
        }
        assert!(html.contains("promoted") && html.contains("0.625") && html.contains("0.4100"), "{html}");
        assert!(html.contains(&format!("href=\"../models/{}/versions/2\"", s.model)), "the version it triggered");
        // The per-column trend: both columns, the name escaped, one point per cycle.
        assert!(html.contains("median_income (psi)") && html.contains("&lt;b&gt;house_age&lt;/b&gt; (ks)"));
        assert!(!html.contains("<b>house_age"));
        assert_eq!(html.matches("<circle").count(), 3 + 3 + 3 + 3, "share, PSI and two columns × 3 cycles");
        assert!(html.contains("<td class=\"num\">1001</td>"), "rows from cycle.json: {html}");

        let (status, html, headers) = page(&app, None, &format!("/factory/runs/{}/drift-report", s.cycles[1])).await;
        assert_eq!((status, html.as_str()), (200, "<html><body>report 1</body></html>"));
        assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox;"));
        let (status, _, _) = page(&app, None, &format!("/factory/runs/{}/drift-report", s.training_run)).await;
        assert_eq!(status, 404, "a run without a report");

        let (status, html, _) = page(&app, None, &format!("/factory/models/{}/versions/2", s.model)).await;
        assert_eq!(status, 200, "{html}");
        for needle in
            ["digest-v2-bbbb", "train-v2", "rmse", "trained it (challenger)", "watched it (champion)", "v1 → v2"]
        {
            assert!(html.contains(needle), "{needle} missing: {html}");
        }
        assert!(!html.contains("digest-v1-aaaa"), "v1's data is not v2's");
        let (status, _, _) = page(&app, None, &format!("/factory/models/{}/versions/x", s.model)).await;
        assert_eq!(status, 400);
        let (status, _, _) = page(&app, None, &format!("/factory/models/{}/versions/9", s.model)).await;
        assert_eq!(status, 404);

        // Links are relative (they work under --static-prefix too) and every one leads somewhere.
        let lineage = format!("/factory/models/{}/versions/2", s.model);
        for path in ["/factory/", &format!("/factory/drift/{}", s.experiment), &lineage, "/factory/deployments"] {
            assert!(links_resolve(&app, None, path).await >= 3, "{path}");
        }
        let (_, html, _) = page(&app, None, "/factory/").await;
        assert!(!html.contains("href=\"/"), "no absolute link: {html}");

        let (status, html, _) = page(&app, None, "/factory/deployments").await;
        assert_eq!(status, 200);
        assert!(html.contains("No gateway is configured"), "{html}");
        let resp = call(&app, None, Method::POST, "/factory/deployments/switch")
            .await
            .header("origin", app.base.clone())
            .form(&[("to", "green")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "no gateway to operate");
    }
}

#[tokio::test]
async fn a_user_sees_only_what_they_may_read_and_operates_nothing() {
    for backend in backends() {
        let app = spawn_auth_app(backend, Permission::NoPermissions).await;
        let s = seed(&app, Some(ADMIN)).await;
        api(&app, Some(ADMIN), "users/create", json!({"username": "eve", "password": PASSWORD})).await;
        let eve = Some(("eve", PASSWORD));

        let (status, html, _) = page(&app, None, "/factory/").await;
        assert_eq!(status, 401, "{html}");
        let (status, html, _) = page(&app, eve, "/factory/").await;
        assert_eq!(status, 200, "{html}");
        assert!(!html.contains(&s.experiment_name) && !html.contains(&s.model), "nothing readable shown: {html}");
        assert!(html.contains("signed in as eve"));
        for path in [
            format!("/factory/drift/{}", s.experiment),
            format!("/factory/runs/{}/drift-report", s.cycles[0]),
            format!("/factory/models/{}/versions/1", s.model),
        ] {
            let (status, body, _) = page(&app, eve, &path).await;
            assert_eq!(status, 403, "{path}: {body}");
        }
        // READ on the model and the drift experiment: the pages, but not the training runs'
        // experiment (its run is withheld on the lineage page).
        for (resource_type, resource_id) in [("registered_model", &s.model), ("experiment", &s.experiment)] {
            let body = json!({"username": "eve", "resource_type": resource_type, "resource_id": resource_id, "permission": "READ"});
            admin_v3(&app, "users/permissions/grant", body).await;
        }
        let (status, html, _) = page(&app, eve, "/factory/").await;
        assert_eq!(status, 200);
        assert!(html.contains(&s.experiment_name) && html.contains(&s.model), "{html}");
        let (status, _, _) = page(&app, eve, &format!("/factory/drift/{}", s.experiment)).await;
        assert_eq!(status, 200);
        let (status, html, _) = page(&app, eve, &format!("/factory/models/{}/versions/2", s.model)).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Not shown: you may not read this run.") && !html.contains("digest-v2-bbbb"), "{html}");
        assert!(html.contains("trained it (challenger)"), "the drift experiment is readable: {html}");

        // With the run tier denied, no cycle shows (as runs/search shows no run).
        let role = admin_v3(&app, "roles/create", json!({"name": "no-runs", "workspace": "default"})).await["role"]
            ["id"]
            .clone();
        let deny = json!({"role_id": role, "resource_type": "run", "resource_pattern": "*", "permission": "DENY"});
        admin_v3(&app, "roles/permissions/add", deny).await;
        admin_v3(&app, "roles/assign", json!({"role_id": role, "username": "eve"})).await;
        let (status, html, _) = page(&app, eve, &format!("/factory/drift/{}", s.experiment)).await;
        assert_eq!(status, 200);
        assert!(!html.contains("housing-cycle-") && !html.contains("<circle"), "{html}");
        let (_, html, _) = page(&app, eve, &format!("/factory/models/{}/versions/2", s.model)).await;
        assert!(!html.contains("trained it (challenger)"), "{html}");
        let (_, html, _) = page(&app, eve, "/factory/").await;
        assert!(!html.contains(&s.experiment_name), "{html}");

        // Operating needs MANAGE (eve has READ), and a post from another origin is refused
        // even for the admin.
        let post = |who: (&'static str, &'static str), origin: &str| {
            let rb = app.client.post(app.url("/factory/deployments/rollback")).basic_auth(who.0, Some(who.1));
            rb.header("origin", origin.to_string()).form(&[("note", "x")]).send()
        };
        let resp = post(("eve", PASSWORD), &app.base).await.unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let resp = post(ADMIN, "http://evil.example").await.unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        assert!(resp.text().await.unwrap().contains("Cross-origin request blocked"));
        let resp = post(ADMIN, &app.base).await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "the admin passes; no gateway is configured");
    }
}
