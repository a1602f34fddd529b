//! The route table against the server it builds (issue 21): every route the router serves
//! comes from `mlflow_api::route_table`, not from a list here, and each is called, with
//! every method it answers plus HEAD for GET, with its parameters in the query and in the
//! body, by a user who holds `DENY` on everything:
//!
//! - a route whose rule decides refuses (403; 400 when its parameters are not where it reads
//!   them, never an answer);
//! - a listing answers without a single row of the owner's;
//! - a method the route does not declare is a 405, an undeclared path a 404, and without
//!   credentials everything but the public routes is a 401;
//!
//! and afterwards the owner's experiment, run, artifact, logged model, registered model, alias
//! and grants are exactly as they were.

use auth::Permission;
use mlflow_api::routes::{Guard, RouteInfo};
use reqwest::Method;
use serde_json::{json, Map, Value};
use testkit::db::backends;
use testkit::server::{spawn_auth_app, App, ADMIN};

const PASSWORD: &str = "a-user-password-0123";

/// What the sweep needs to name the owner's resources.
struct Seeded {
    params: Map<String, Value>,
    model_id: String,
    artifact: String,
    /// Strings that must not appear in anything the attacker is answered.
    secrets: Vec<String>,
}

async fn call(app: &App, who: Option<(&str, &str)>, method: Method, path: &str) -> reqwest::RequestBuilder {
    let rb = app.client.request(method, app.url(path));
    match who {
        Some((u, p)) => rb.basic_auth(u, Some(p)),
        None => rb,
    }
}

async fn json_call(app: &App, who: (&str, &str), method: Method, path: &str, body: Value) -> Value {
    let resp = call(app, Some(who), method, path).await.json(&body).send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The owner's resources, made through the API as the owner would; the attacker holds DENY
/// on every type (a role in the default workspace).
async fn seed(app: &App) -> Seeded {
    let admin = ADMIN;
    let owner = ("owner", PASSWORD);
    for user in ["owner", "mallory"] {
        json_call(
            app,
            admin,
            Method::POST,
            "/api/2.0/mlflow/users/create",
            json!({"username": user, "password": PASSWORD}),
        )
        .await;
    }
    let role = json_call(
        app,
        admin,
        Method::POST,
        "/api/3.0/mlflow/roles/create",
        json!({"name": "deny-all", "workspace": "default"}),
    )
    .await["role"]["id"]
        .clone();
    for t in ["experiment", "registered_model", "run", "logged_model", "registered_model_version", "trace"] {
        json_call(
            app,
            admin,
            Method::POST,
            "/api/3.0/mlflow/roles/permissions/add",
            json!({"role_id": role, "resource_type": t, "resource_pattern": "*", "permission": "DENY"}),
        )
        .await;
    }
    json_call(
        app,
        admin,
        Method::POST,
        "/api/3.0/mlflow/roles/assign",
        json!({"role_id": role, "username": "mallory"}),
    )
    .await;

    let tag = uuid::Uuid::new_v4().simple().to_string();
    let exp_name = format!("owner-exp-{tag}");
    let v2 = |p: &str| format!("/api/2.0/mlflow/{p}");
    let exp = json_call(app, owner, Method::POST, &v2("experiments/create"), json!({"name": exp_name})).await
        ["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = json_call(app, owner, Method::POST, &v2("runs/create"), json!({"experiment_id": exp, "start_time": 1}))
        .await["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    json_call(app, owner, Method::POST, &v2("runs/log-parameter"), json!({"run_id": run, "key": "lr", "value": "0.1"}))
        .await;
    let artifact = format!("{exp}/{run}/artifacts/seed.txt");
    let resp = call(app, Some(owner), Method::PUT, &format!("/api/2.0/mlflow-artifacts/artifacts/{artifact}"))
        .await
        .body("seed-content-of-the-owner")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let model_id = json_call(
        app,
        owner,
        Method::POST,
        &v2("logged-models"),
        json!({"experiment_id": exp, "name": "lm", "source_run_id": run}),
    )
    .await["model"]["info"]["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let model = format!("owner-model-{tag}");
    json_call(app, owner, Method::POST, &v2("registered-models/create"), json!({"name": model})).await;
    let source = format!("mlflow-artifacts:/{artifact}");
    json_call(
        app,
        owner,
        Method::POST,
        &v2("model-versions/create"),
        json!({"name": model, "source": source, "run_id": run}),
    )
    .await;
    json_call(
        app,
        owner,
        Method::POST,
        &v2("registered-models/alias"),
        json!({"name": model, "alias": "prod", "version": "1"}),
    )
    .await;
    // The owner's per-user grant role and one of its rows, for the role routes.
    let perms =
        json_call(app, admin, Method::GET, "/api/3.0/mlflow/users/permissions/list?username=owner", Value::Null).await;
    let row = perms["permissions"].as_array().unwrap()[0].clone();
    let role_id = row["role_id"].clone();
    let role_permission = json_call(
        app,
        admin,
        Method::GET,
        &format!("/api/3.0/mlflow/roles/permissions/list?role_id={role_id}"),
        Value::Null,
    )
    .await["role_permissions"][0]["id"]
        .clone();

    let params = json!({
        "experiment_id": exp, "experiment_ids": [exp], "experiment_name": exp_name,
        "run_id": run, "run_uuid": run, "run_ids": [run], "metric_key": "m",
        "name": model, "new_name": format!("stolen-{tag}"), "version": "1", "alias": "prod",
        "stage": "Archived", "description": "pwned", "source": source,
        "model_id": model_id, "key": "lr", "value": "1", "status": "READY",
        "start_time": 1, "timestamp": 1, "step": 0,
        "tags": [{"key": "k", "value": "v"}], "params": [{"key": "p", "value": "v"}],
        "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "model_id": model_id}],
        "models": [{"model_id": model_id}], "datasets": [],
        "path": format!("{exp}/{run}/artifacts"), "filter": "",
        "username": "owner", "password": "stolen-password-0123", "current_password": PASSWORD,
        "is_admin": true, "resource_type": "experiment", "resource_id": exp, "permission": "MANAGE",
        "role_id": role_id, "role_permission_id": role_permission, "workspace": "default",
    });
    Seeded {
        params: params.as_object().unwrap().clone(),
        model_id: model_id.clone(),
        artifact,
        secrets: vec![exp_name, model, run, model_id, "seed-content-of-the-owner".into()],
    }
}

/// The query string of the parameter bag (lists as repeated keys, objects as JSON).
fn query(params: &Map<String, Value>) -> Vec<(String, String)> {
    let mut q = Vec::new();
    for (k, v) in params {
        match v {
            Value::Array(items) => {
                for item in items.iter().filter(|i| !i.is_object()) {
                    q.push((k.clone(), item.as_str().map(str::to_string).unwrap_or_else(|| item.to_string())));
                }
            }
            Value::String(s) => q.push((k.clone(), s.clone())),
            other => q.push((k.clone(), other.to_string())),
        }
    }
    q
}

fn concrete(path: &str, seeded: &Seeded) -> String {
    let p = |k: &str| seeded.params[k].as_str().unwrap().to_string();
    path.replace("{model_id}", &seeded.model_id)
        .replace("{key}", "lr")
        .replace("{*path}", &seeded.artifact)
        .replace("{experiment_id}", &p("experiment_id"))
        .replace("{run_id}", &p("run_id"))
        .replace("{name}", &p("name"))
        .replace("{version}", "1")
        .replace("{operation}", "switch")
}

/// How one variant sends the parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Query,
    Body,
    Both,
}

/// How a route reads its parameters: GET and HEAD from the query, others from the body,
/// except `upload-artifact`, whose body is the file (MLflow reads its parameters from the
/// query string).
fn natural(method: &Method, path: &str) -> Via {
    if *method == Method::GET || *method == Method::HEAD || path.ends_with("/upload-artifact") {
        Via::Query
    } else {
        Via::Body
    }
}

async fn attempt(
    app: &App,
    who: Option<(&str, &str)>,
    method: Method,
    path: &str,
    via: Via,
    s: &Seeded,
) -> (u16, String) {
    let mut rb = call(app, who, method, path).await;
    if via != Via::Body {
        rb = rb.query(&query(&s.params));
    }
    if via != Via::Query {
        rb = rb.json(&Value::Object(s.params.clone()));
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// What the owner has, as the admin sees it: compared before and after the sweep.
async fn owner_state(app: &App, s: &Seeded) -> Vec<Value> {
    let q = |k: &str| s.params[k].as_str().unwrap().to_string();
    let get = |path: String| async move {
        let resp = call(app, Some(ADMIN), Method::GET, &path).await.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        json!({"path": path, "status": status, "body": serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))})
    };
    vec![
        get(format!("/api/2.0/mlflow/experiments/get?experiment_id={}", q("experiment_id"))).await,
        get(format!("/api/2.0/mlflow/runs/get?run_id={}", q("run_id"))).await,
        get(format!("/api/2.0/mlflow/registered-models/get?name={}", q("name"))).await,
        get(format!("/api/2.0/mlflow/model-versions/get?name={}&version=1", q("name"))).await,
        get(format!("/api/2.0/mlflow/registered-models/alias?name={}&alias=prod", q("name"))).await,
        get(format!("/api/2.0/mlflow/logged-models/{}", s.model_id)).await,
        get(format!("/api/2.0/mlflow-artifacts/artifacts/{}", s.artifact)).await,
        get("/api/3.0/mlflow/users/permissions/list?username=owner".to_string()).await,
        get("/api/2.0/mlflow/users/get?username=owner".to_string()).await,
    ]
}

#[tokio::test]
async fn every_route_is_declared_checked_and_refused_without_permission() {
    for backend in backends() {
        let app = spawn_auth_app(backend, Permission::NoPermissions).await;
        let s = seed(&app).await;
        let before = owner_state(&app, &s).await;
        let mallory = Some(("mallory", PASSWORD));
        let table = mlflow_api::route_table(true);
        assert!(table.len() > 80, "the table lists {} paths", table.len());
        let mut failures = Vec::new();
        let mut calls = 0;
        for RouteInfo { path, methods, guard } in &table {
            let url = concrete(path, &s);
            let mut all = methods.clone();
            if methods.contains(&Method::GET) {
                all.push(Method::HEAD);
            }
            for method in &all {
                // Without credentials: 401 unless public.
                let (status, _) = attempt(&app, None, method.clone(), &url, natural(method, path), &s).await;
                calls += 1;
                // A public wildcard route (the UI's assets) names files: this server has none.
                let public_ok = |status: u16| status == 200 || (path.contains("{*") && status == 404);
                let anon_ok = if *guard == Guard::Public { public_ok(status) } else { status == 401 };
                if !anon_ok {
                    failures.push(format!("anonymous {method} {path}: {status}"));
                }
                for via in [Via::Query, Via::Body, Via::Both] {
                    let (status, body) = attempt(&app, mallory, method.clone(), &url, via, &s).await;
                    calls += 1;
                    let leaked: Vec<&String> = s.secrets.iter().filter(|x| body.contains(x.as_str())).collect();
                    let ok = match guard {
                        Guard::Public => public_ok(status) && leaked.is_empty(),
                        Guard::Listing => (status == 200 || status == 403 || status == 400) && leaked.is_empty(),
                        Guard::Rule if via == natural(method, path) => status == 403,
                        Guard::Rule => status == 403 || status == 400,
                    };
                    if !ok {
                        failures.push(format!(
                            "{guard:?} {method} {path} via {via:?}: {status} leaked={leaked:?} {body:.200}"
                        ));
                    }
                }
            }
            // Methods the table does not declare are refused before any handler.
            for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                if !methods.contains(&method) {
                    let (status, _) = attempt(&app, mallory, method.clone(), &url, natural(&method, path), &s).await;
                    calls += 1;
                    if status != 405 {
                        failures.push(format!("undeclared {method} {path}: {status}"));
                    }
                }
            }
        }
        for path in
            ["/api/2.0/mlflow/runs/nope", "/api/2.0/mlflow/admin", "/admin/reload", "/api/2.0/mlflow-artifacts/x"]
        {
            let (status, _) = attempt(&app, mallory, Method::POST, path, Via::Body, &s).await;
            let (anon, _) = attempt(&app, None, Method::POST, path, Via::Body, &s).await;
            if status != 404 || anon != 401 {
                failures.push(format!("undeclared path {path}: {status} (anonymous {anon})"));
            }
        }
        assert!(failures.is_empty(), "{backend}: {} of {calls} calls wrong:\n{}", failures.len(), failures.join("\n"));
        let after = owner_state(&app, &s).await;
        assert_eq!(before, after, "{backend}: the owner's data changed");
        for state in &before {
            assert_eq!(state["status"], 200, "{backend}: {state}");
        }
    }
}

/// A listing drops what the caller may not read and refills its pages from the following
/// rows, as MLflow's `filter_search_experiments` does; paging still reaches every readable row.
#[tokio::test]
async fn filtered_listings_refill_their_pages() {
    let app = spawn_auth_app("sqlite", Permission::NoPermissions).await;
    for user in ["owner", "reader"] {
        json_call(
            &app,
            ADMIN,
            Method::POST,
            "/api/2.0/mlflow/users/create",
            json!({"username": user, "password": PASSWORD}),
        )
        .await;
    }
    let owner = ("owner", PASSWORD);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut readable = Vec::new();
    for i in 0..9 {
        let body = json!({"name": format!("{tag}-{i}")});
        let id = json_call(&app, owner, Method::POST, "/api/2.0/mlflow/experiments/create", body).await
            ["experiment_id"]
            .as_str()
            .unwrap()
            .to_string();
        if i % 3 == 0 {
            let grant =
                json!({"username": "reader", "resource_type": "experiment", "resource_id": id, "permission": "READ"});
            json_call(&app, owner, Method::POST, "/api/3.0/mlflow/users/permissions/grant", grant).await;
            readable.push(id);
        }
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut body = json!({"filter": format!("name LIKE '{tag}%'"), "max_results": 2, "order_by": ["name"]});
        if let Some(t) = &token {
            body["page_token"] = json!(t);
        }
        let page =
            json_call(&app, ("reader", PASSWORD), Method::POST, "/api/2.0/mlflow/experiments/search", body).await;
        let ids: Vec<String> = page["experiments"]
            .as_array()
            .map(|a| a.iter().map(|e| e["experiment_id"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert!(ids.len() == 2 || page["next_page_token"].is_null(), "a short page before the end: {page}");
        seen.extend(ids);
        token = page["next_page_token"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, readable);
}
