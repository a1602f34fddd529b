//! Model registry: every error path answers with MLflow's status and error code, and every
//! path-bearing field (model names, version sources, alias names, tag keys, logged-model names,
//! experiment artifact locations) refuses traversal with 400 INVALID_PARAMETER_VALUE and
//! stores nothing.
//!
//! The expectations are the stock `mlflow server` 3.17.2's answers, except where a case says
//! "stricter" (factory refuses what MLflow lets through). To replay the tables against a
//! running stock server, set `FACTORY_IT_PEER=http://127.0.0.1:5000`; the factory-only
//! history test is then skipped. Each table runs in full and reports every mismatch at once.

use serde_json::{json, Value};
use testkit::db::backends;
use testkit::server::{assert_error, spawn_app, App};

#[derive(Clone, Copy, Debug)]
enum M {
    Get,
    Post,
    Patch,
    Delete,
}

/// Where the requests go: an in-process factory server (kept alive here) or a peer URL.
struct Api {
    base: String,
    client: reqwest::Client,
    label: String,
    peer: bool,
    _app: Option<App>,
}

/// One target per configured backend, or the peer alone when `FACTORY_IT_PEER` is set.
fn targets() -> Vec<String> {
    match std::env::var("FACTORY_IT_PEER") {
        Ok(url) if !url.is_empty() => vec![url],
        _ => backends().into_iter().map(String::from).collect(),
    }
}

fn is_peer(target: &str) -> bool {
    target.starts_with("http")
}

impl Api {
    async fn start(target: &str) -> Api {
        if is_peer(target) {
            return Api {
                base: target.trim_end_matches('/').to_string(),
                client: reqwest::Client::new(),
                label: format!("peer {target}"),
                peer: true,
                _app: None,
            };
        }
        let app = spawn_app(target).await;
        Api {
            base: app.base.clone(),
            client: app.client.clone(),
            label: app.backend.clone(),
            peer: false,
            _app: Some(app),
        }
    }

    /// Any method; GET sends the fields of `body` as query parameters, the others as a JSON
    /// body (registry DELETE routes read one).
    async fn call(&self, method: M, route: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}/api/2.0/mlflow/{route}", self.base);
        let req = match method {
            M::Get => {
                let query: Vec<(String, String)> = body
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), Into::into)))
                    .collect();
                self.client.get(url).query(&query)
            }
            M::Post => self.client.post(url),
            M::Patch => self.client.patch(url),
            M::Delete => self.client.delete(url),
        };
        let req = match method {
            M::Get => req,
            _ => req.header("content-type", "application/json").body(body.to_string()),
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, route: &str, body: Value) -> (u16, Value) {
        self.call(M::Delete, route, &body).await
    }

    /// A request that must succeed; returns its body.
    async fn ok(&self, method: M, route: &str, body: Value) -> Value {
        let (s, b) = self.call(method, route, &body).await;
        assert_eq!(s, 200, "[{}] {method:?} {route} {body}: {b}", self.label);
        b
    }

    async fn create_model(&self, name: &str) {
        self.ok(M::Post, "registered-models/create", json!({ "name": name })).await;
    }

    async fn create_version(&self, name: &str, mut body: Value) -> String {
        body["name"] = name.into();
        let got = self.ok(M::Post, "model-versions/create", body).await;
        got["model_version"]["version"].as_str().unwrap().to_string()
    }

    async fn versions_of(&self, name: &str) -> Vec<String> {
        let filter = format!("name = '{name}'");
        let got = self.ok(M::Get, "model-versions/search", json!({ "filter": filter })).await;
        names(&got["model_versions"], "version")
    }

    async fn models_like(&self, pattern: &str) -> Vec<String> {
        let filter = format!("name LIKE '{pattern}'");
        let got = self.ok(M::Get, "registered-models/search", json!({ "filter": filter })).await;
        names(&got["registered_models"], "name")
    }

    /// A new experiment and a run in it: (experiment id, run id, run artifact URI).
    async fn run(&self, exp_name: &str) -> (String, String, String) {
        let exp = self.ok(M::Post, "experiments/create", json!({ "name": exp_name })).await;
        let exp = exp["experiment_id"].as_str().unwrap().to_string();
        let run = self.ok(M::Post, "runs/create", json!({ "experiment_id": exp })).await;
        let info = &run["run"]["info"];
        let field = |k: &str| info[k].as_str().unwrap().to_string();
        (exp, field("run_id"), field("artifact_uri"))
    }

    async fn healthy(&self) {
        let resp = self.client.get(format!("{}/health", self.base)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "[{}] unhealthy", self.label);
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array().into_iter().flatten().map(|v| v[field].as_str().unwrap().to_string()).collect()
}

/// A fresh suffix so that tables can be replayed on a long-lived peer.
fn uniq() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

const NOT_FOUND: &str = "RESOURCE_DOES_NOT_EXIST";
const INVALID: &str = "INVALID_PARAMETER_VALUE";
const EXISTS: &str = "RESOURCE_ALREADY_EXISTS";
const OK: &str = "";

/// One request and MLflow's answer: status, error code, a fragment of the message. Status
/// 200 (code `OK`) means MLflow accepts the request.
struct Case {
    method: M,
    route: &'static str,
    body: Value,
    status: u16,
    code: &'static str,
    needle: String,
    /// Factory answers differently from MLflow on purpose (skipped against the peer).
    stricter: bool,
}

impl Case {
    fn stricter(mut self, yes: bool) -> Case {
        self.stricter = yes;
        self
    }
}

fn case(m: M, route: &'static str, body: Value, status: u16, code: &'static str, needle: &str) -> Case {
    Case { method: m, route, body, status, code, needle: needle.to_string(), stricter: false }
}

fn answers(got: &(u16, Value), c: &Case) -> bool {
    let (status, body) = got;
    if c.status == 200 {
        return *status == 200;
    }
    let message = body["message"].as_str().unwrap_or_default();
    *status == c.status && body["error_code"] == c.code && message.contains(&c.needle)
}

/// What went wrong in one test, on every target; the test fails once, at the end, listing
/// all of it (so one run shows every mismatch on SQLite and PostgreSQL alike).
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, api: &Api, ok: bool, what: impl std::fmt::Display) {
        if !ok {
            self.0.push(format!("[{}] {what}", api.label));
        }
    }

    /// Sends every case (but the deliberate deviations when talking to the peer).
    async fn cases(&mut self, api: &Api, cases: &[Case]) {
        for c in cases.iter().filter(|c| !(c.stricter && api.peer)) {
            let got = api.call(c.method, c.route, &c.body).await;
            let what = format!(
                "{:?} {} {}\n    expected {} {} (message ~ {:?})\n    got      {} {}",
                c.method, c.route, c.body, c.status, c.code, c.needle, got.0, got.1
            );
            self.check(api, answers(&got, c), what);
        }
    }

    fn assert_none(self) {
        assert!(self.0.is_empty(), "{} finding(s):\n{}", self.0.len(), self.0.join("\n"));
    }
}

#[tokio::test]
async fn registry_error_paths() {
    let mut findings = Findings::default();
    for target in targets() {
        let api = Api::start(&target).await;
        let u = uniq();
        let (m, taken, missing) = (format!("rm-{u}"), format!("taken-{u}"), format!("nope-{u}"));
        // a registered model whose name looks like a logged model id
        let m_dash = format!("m-{u}");
        api.create_model(&m_dash).await;
        api.create_version(&m_dash, json!({ "source": "s3://bucket/model" })).await;
        let (exp, run, _) = api.run(&format!("e-{u}")).await;
        api.create_model(&m).await;
        api.create_model(&taken).await;
        for _ in 0..2 {
            api.create_version(&m, json!({ "source": "s3://bucket/model" })).await;
        }
        // alias `gone` points at version 2, which is then deleted
        api.ok(M::Post, "registered-models/alias", json!({"name": m, "alias": "gone", "version": "2"})).await;
        let (s, b) = api.delete("model-versions/delete", json!({"name": m, "version": "2"})).await;
        assert_eq!(s, 200, "{b}");
        // a deleted version number is not handed out again
        let next = api.create_version(&m, json!({"source": "s3://bucket/model"})).await;
        findings.check(&api, next == "3", format!("version after deleting 2 is {next}, not 3"));
        let logged = api
            .ok(M::Post, "logged-models", json!({"experiment_id": exp, "name": "model", "source_run_id": run}))
            .await;
        let model_id = logged["model"]["info"]["model_id"].as_str().unwrap();
        // an unnamed logged model gets a generated name, as in MLflow (never one shared name)
        let mut unnamed = vec![];
        for _ in 0..2 {
            let got = api.ok(M::Post, "logged-models", json!({"experiment_id": exp})).await;
            unnamed.push(got["model"]["info"]["name"].as_str().unwrap_or_default().to_string());
        }
        let generated = unnamed[0] != unnamed[1] && unnamed.iter().all(|n| !n.is_empty() && n != "model");
        findings.check(&api, generated, format!("unnamed logged models are called {unnamed:?}"));
        let ghost_model = "m-0123456789abcdef0123456789abcdef";
        let ghost_run = "0123456789abcdef0123456789abcdef";
        let (m, missing) = (m.as_str(), missing.as_str());
        use M::{Delete as D, Get as G, Patch as P, Post as Po};
        #[rustfmt::skip]
        let mut cases = vec![
            // registered models
            case(Po, "registered-models/create", json!({"name": m}), 400, EXISTS, "already exists"),
            case(Po, "registered-models/create", json!({}), 400, INVALID, "'name'"),
            case(Po, "registered-models/create", json!({"name": ""}), 400, INVALID, "'name'"),
            case(Po, "registered-models/rename", json!({"name": m, "new_name": taken}), 400, EXISTS, "already exists"),
            case(Po, "registered-models/rename", json!({"name": m, "new_name": ""}), 400, INVALID, "new_name"),
            case(G, "registered-models/get", json!({"name": missing}), 404, NOT_FOUND, missing),
            case(P, "registered-models/update", json!({"name": missing, "description": "d"}), 404, NOT_FOUND, missing),
            case(Po, "registered-models/rename", json!({"name": missing, "new_name": format!("fresh-{u}")}), 404, NOT_FOUND, missing),
            case(D, "registered-models/delete", json!({"name": missing}), 404, NOT_FOUND, missing),
            case(Po, "registered-models/set-tag", json!({"name": missing, "key": "k", "value": "v"}), 404, NOT_FOUND, missing),
            case(D, "registered-models/delete-tag", json!({"name": missing, "key": "k"}), 404, NOT_FOUND, missing),
            case(Po, "registered-models/get-latest-versions", json!({"name": missing}), 404, NOT_FOUND, missing),
            case(Po, "registered-models/get-latest-versions", json!({"name": m, "stages": ["Bogus"]}), 400, INVALID, "Bogus"),
            // model versions: unknown, deleted (2) and non-numeric versions
            case(Po, "model-versions/create", json!({"name": missing, "source": "s3://b/k"}), 404, NOT_FOUND, missing),
            case(Po, "model-versions/create", json!({"name": m}), 400, INVALID, "source"),
            case(G, "model-versions/get", json!({"name": m, "version": "9"}), 404, NOT_FOUND, "version=9"),
            case(G, "model-versions/get", json!({"name": missing, "version": "1"}), 404, NOT_FOUND, missing),
            case(G, "model-versions/get", json!({"name": m, "version": "2"}), 404, NOT_FOUND, "version=2"),
            case(G, "model-versions/get", json!({"name": m, "version": "abc"}), 400, INVALID, "'abc'"),
            case(G, "model-versions/get", json!({"name": m, "version": "1.0"}), 400, INVALID, "'1.0'"),
            case(G, "model-versions/get", json!({"name": m}), 400, INVALID, "'version'"),
            case(P, "model-versions/update", json!({"name": m, "version": "9", "description": "d"}), 404, NOT_FOUND, "version=9"),
            case(P, "model-versions/update", json!({"name": m, "version": "abc"}), 400, INVALID, "'abc'"),
            case(D, "model-versions/delete", json!({"name": m, "version": "2"}), 404, NOT_FOUND, "version=2"),
            case(D, "model-versions/delete", json!({"name": m, "version": "abc"}), 400, INVALID, "'abc'"),
            case(Po, "model-versions/set-tag", json!({"name": m, "version": "9", "key": "k", "value": "v"}), 404, NOT_FOUND, "version=9"),
            case(D, "model-versions/delete-tag", json!({"name": m, "version": "9", "key": "k"}), 404, NOT_FOUND, "version=9"),
            case(G, "model-versions/get-download-uri", json!({"name": m, "version": "9"}), 404, NOT_FOUND, "version=9"),
            case(G, "model-versions/get-download-uri", json!({"name": m, "version": "abc"}), 400, INVALID, "'abc'"),
            // `models:/m-...` needs its model_id; the model_id must exist
            case(Po, "model-versions/create", json!({"name": m, "source": format!("models:/{model_id}")}), 400, INVALID, "model_id"),
            // (MLflow: 500 INTERNAL_ERROR "Unable to fetch model", which the client retries)
            case(Po, "model-versions/create", json!({"name": m, "source": format!("models:/{ghost_model}"), "model_id": ghost_model}), 404, NOT_FOUND, ghost_model).stricter(true),
            // a `models:/<name>/<version>` source must name a live version
            case(Po, "model-versions/create", json!({"name": m, "source": format!("models:/{missing}/1")}), 404, NOT_FOUND, missing),
            case(Po, "model-versions/create", json!({"name": m, "source": format!("models:/{m}/2")}), 404, NOT_FOUND, "version=2"),
            case(Po, "model-versions/create", json!({"name": taken, "source": format!("models:/{m_dash}/1")}), 200, OK, ""),
            // a runs:/ source of a run that does not exist
            case(Po, "model-versions/create", json!({"name": m, "source": format!("runs:/{ghost_run}/model")}), 400, INVALID, ghost_run),
            // a run_id naming no run is recorded as given, as MLflow does (the source must still match it)
            case(Po, "model-versions/create", json!({"name": taken, "source": format!("runs:/{ghost_run}/model"), "run_id": ghost_run}), 200, OK, ""),
            case(Po, "model-versions/create", json!({"name": taken, "source": "s3://bucket/model", "run_id": ghost_run}), 200, OK, ""),
            case(Po, "logged-models", json!({"experiment_id": exp, "source_run_id": ghost_run}), 200, OK, ""),
            // stages
            case(Po, "model-versions/transition-stage", json!({"name": m, "version": "1", "stage": "Prod"}), 400, INVALID, "Invalid Model Version stage: Prod"),
            case(Po, "model-versions/transition-stage", json!({"name": m, "version": "1", "stage": "Deleted_Internal"}), 400, INVALID, "stage"),
            case(Po, "model-versions/transition-stage", json!({"name": m, "version": "1", "stage": ""}), 400, INVALID, "'stage'"),
            case(Po, "model-versions/transition-stage", json!({"name": m, "version": "9", "stage": "Staging"}), 404, NOT_FOUND, "version=9"),
            case(Po, "model-versions/transition-stage", json!({"name": m, "version": "2", "stage": "Staging"}), 404, NOT_FOUND, "version=2"),
            // aliases: unknown/deleted versions, unknown model, a dangling alias
            case(Po, "registered-models/alias", json!({"name": m, "alias": "prod", "version": "9"}), 404, NOT_FOUND, "version=9"),
            case(Po, "registered-models/alias", json!({"name": m, "alias": "prod", "version": "2"}), 404, NOT_FOUND, "version=2"),
            case(Po, "registered-models/alias", json!({"name": m, "alias": "prod", "version": "abc"}), 400, INVALID, "'abc'"),
            case(Po, "registered-models/alias", json!({"name": missing, "alias": "prod", "version": "1"}), 404, NOT_FOUND, missing),
            case(Po, "registered-models/alias", json!({"name": m, "alias": "", "version": "1"}), 400, INVALID, "'alias'"),
            case(G, "registered-models/alias", json!({"name": m, "alias": "gone"}), 400, INVALID, "alias gone not found"),
            case(G, "registered-models/alias", json!({"name": m, "alias": "nothing"}), 400, INVALID, "alias nothing not found"),
            case(G, "registered-models/alias", json!({"name": missing, "alias": "prod"}), 404, NOT_FOUND, missing),
            case(D, "registered-models/alias", json!({"name": missing, "alias": "prod"}), 404, NOT_FOUND, missing),
            // search
            case(G, "registered-models/search", json!({"filter": "foo = 'x'"}), 400, INVALID, "foo"),
            case(G, "registered-models/search", json!({"order_by": "bogus ASC"}), 400, INVALID, "bogus"),
            case(G, "registered-models/search", json!({"page_token": "garbage"}), 400, INVALID, "page token"),
            case(G, "registered-models/search", json!({"max_results": "1001"}), 400, INVALID, "max_results"),
            case(G, "model-versions/search", json!({"filter": "foo = 'x'"}), 400, INVALID, "foo"),
            case(G, "model-versions/search", json!({"filter": "name = 'a' OR name = 'b'"}), 400, INVALID, "OR"),
            case(G, "model-versions/search", json!({"max_results": "200001"}), 400, INVALID, "max_results"),
            // what MLflow accepts: a rename to the same name is a no-op, deleting a missing
            // alias or tag is fine, get-by-alias `latest` answers the newest live version
            case(Po, "registered-models/rename", json!({"name": m, "new_name": m}), 200, OK, ""),
            case(D, "registered-models/alias", json!({"name": m, "alias": "nothing"}), 200, OK, ""),
            case(D, "registered-models/delete-tag", json!({"name": m, "key": "nothing"}), 200, OK, ""),
            case(D, "model-versions/delete-tag", json!({"name": m, "version": "1", "key": "nothing"}), 200, OK, ""),
            case(G, "registered-models/alias", json!({"name": m, "alias": "latest"}), 200, OK, ""),
        ];
        let long = "x".repeat(256);
        for alias in ["latest", "LATEST", "v1", "V12", "a b", "prod!", &long] {
            let body = json!({"name": m, "alias": alias, "version": "1"});
            cases.push(case(Po, "registered-models/alias", body, 400, INVALID, "alias"));
        }
        findings.cases(&api, &cases).await;

        // None of the refused requests changed the model.
        let mut versions = api.versions_of(m).await;
        versions.sort();
        findings.check(&api, versions == ["1", "3"], format!("versions of {m}: {versions:?}"));
        let got = api.ok(G, "registered-models/get", json!({ "name": m })).await;
        let rm = &got["registered_model"];
        let untouched =
            rm["aliases"].is_null() && rm["tags"].is_null() && rm["latest_versions"][0]["current_stage"] == "None";
        findings.check(&api, untouched, format!("model changed: {rm}"));
        api.healthy().await;
    }
    findings.assert_none();
}

/// MLflow refuses `archive_existing_versions` into a stage other than Staging/Production
/// ("'Archived' is not an Active stage"). It answers 500 INTERNAL_ERROR, which the client
/// retries for minutes; the right answer is 400 INVALID_PARAMETER_VALUE. Factory only.
#[tokio::test]
async fn archive_existing_into_inactive_stage_is_refused() {
    let mut findings = Findings::default();
    for target in targets().into_iter().filter(|t| !is_peer(t)) {
        let api = Api::start(&target).await;
        api.create_model("a").await;
        for _ in 0..2 {
            api.create_version("a", json!({"source": "s3://b/k"})).await;
        }
        api.ok(M::Post, "model-versions/transition-stage", json!({"name": "a", "version": "1", "stage": "Archived"}))
            .await;
        let cases: Vec<Case> = ["Archived", "None"]
            .into_iter()
            .map(|stage| {
                let body = json!({"name": "a", "version": "2", "stage": stage,
                                  "archive_existing_versions": true});
                case(M::Post, "model-versions/transition-stage", body, 400, INVALID, stage)
            })
            .collect();
        findings.cases(&api, &cases).await;
        let got = api.ok(M::Get, "model-versions/get", json!({"name": "a", "version": "2"})).await;
        let stage = &got["model_version"]["current_stage"];
        findings.check(&api, stage == "None", format!("version 2 moved to {stage}"));
    }
    findings.assert_none();
}

/// Our alias/stage history endpoint (factory only): its own error paths.
#[tokio::test]
async fn history_endpoint_errors() {
    for target in targets().into_iter().filter(|t| !is_peer(t)) {
        let api = Api::start(&target).await;
        let url = format!("{}/api/2.0/factory/registered-models/history", api.base);
        let get = |query: Vec<(&'static str, &'static str)>| {
            let req = api.client.get(&url).query(&query);
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        assert_error(&get(vec![]).await, 400, INVALID, "'name'");
        assert_error(&get(vec![("name", "nope")]).await, 404, NOT_FOUND, "nope");
        api.create_model("h").await;
        assert_eq!(get(vec![("name", "h")]).await, (200, json!({"events": []})));
        assert_eq!(get(vec![("name", "h"), ("alias", "prod")]).await, (200, json!({"events": []})));
    }
}

/// Every path-bearing field refuses traversal with 400 INVALID_PARAMETER_VALUE, and nothing
/// is stored.
#[tokio::test]
async fn traversal_through_path_bearing_fields_is_refused() {
    let mut findings = Findings::default();
    for target in targets() {
        let api = Api::start(&target).await;
        let u = uniq();
        let m = format!("m-{u}");
        let (exp, run, own_artifacts) = api.run(&format!("e-{u}")).await;
        let (_, other_run, other_artifacts) = api.run(&format!("e2-{u}")).await;
        api.create_model(&m).await;
        api.create_version(&m, json!({"source": "s3://bucket/model"})).await;

        let mut cases: Vec<Case> = Vec::new();
        let mut refuse = |route: &'static str, body: Value, needle: &str, stricter: bool| {
            cases.push(case(M::Post, route, body, 400, INVALID, needle).stricter(stricter));
        };
        const STRICT: bool = true; // MLflow lets this through; factory refuses it

        // registered model names, as a prefix and as a suffix
        let bad_names = [
            ("../x", false),
            ("a/b", false),
            ("a:b", false),
            ("x/../../etc", false),
            ("%2e%2e", STRICT),
            ("a\0b", STRICT),
            ("..", STRICT),
            ("a\\b", STRICT),
        ];
        for (bad, stricter) in bad_names {
            for name in [format!("{u}{bad}"), format!("{bad}{u}")] {
                let body = json!({ "name": name });
                refuse("registered-models/create", body, "name", stricter);
                let body = json!({"name": m, "new_name": name});
                refuse("registered-models/rename", body, "name", stricter);
            }
        }

        // model version sources, given with the run that owns them
        let sources = [
            ("/etc/passwd".to_string(), false),
            ("file:///etc".into(), false),
            ("file:/etc/passwd".into(), false),
            ("../../x".into(), false),
            ("relative/path".into(), false),
            (format!("runs:/{run}/../../.."), false),
            (format!("{own_artifacts}/../../../x"), false),
            (format!("{own_artifacts}/%2e%2e/%2e%2e/x"), false),
            ("mlflow-artifacts:/1/%2e%2e/x".into(), false),
            ("mlflow-artifacts:/0/../../x".into(), false),
            ("models:/m-0123/../x".into(), false),
            ("http://169.254.169.254/".into(), false),
            ("https://example.com/model".into(), false),
            ("s3://b/k#x".into(), STRICT),
        ];
        for (source, stricter) in &sources {
            let body = json!({"name": m, "source": source, "run_id": run});
            refuse("model-versions/create", body, "source", *stricter);
        }
        // sources outside the run named by run_id (MLflow: "The run_id request parameter
        // must identify the resource that contains the source")
        let foreign = [
            (format!("runs:/{other_run}/model"), Some(&run)),
            (format!("runs:/{run}/model"), None),
            (format!("{other_artifacts}/model"), Some(&run)),
            (format!("{own_artifacts}/model"), None),
        ];
        for (source, run_id) in &foreign {
            let mut body = json!({"name": m, "source": source});
            if let Some(r) = run_id {
                body["run_id"] = json!(r);
            }
            refuse("model-versions/create", body, "source", false);
        }

        // alias names
        for alias in ["../x", "a/b", "%2e%2e", "..", "a\0", "a:b"] {
            let body = json!({"name": m, "alias": alias, "version": "1"});
            refuse("registered-models/alias", body, "alias", false);
        }

        // tag keys, on both entities and at creation
        for key in ["../k", "a/../../k", "/abs", "..", "k\0", "k%2e%2e"] {
            let tags = json!([{ "key": key, "value": "v" }]);
            let bodies = [
                ("registered-models/set-tag", json!({"name": m, "key": key, "value": "v"})),
                ("model-versions/set-tag", json!({"name": m, "version": "1", "key": key, "value": "v"})),
                ("registered-models/create", json!({"name": format!("tagged-{u}"), "tags": tags})),
                ("model-versions/create", json!({"name": m, "source": "s3://b/k", "tags": tags})),
            ];
            for (route, body) in bodies {
                refuse(route, body, "Names may", false);
            }
        }

        // logged model names (the client resolves `runs:/<run>/<name>` by name)
        for name in ["../x", "a/b", "a:b", "%2e%2e"] {
            let body = json!({"experiment_id": exp, "name": name, "source_run_id": run});
            refuse("logged-models", body, "name", false);
        }

        // experiment artifact locations
        let locations = [
            ("file:///tmp/#/../etc", false),
            ("file:///tmp/x/#/../../etc", false),
            ("http://169.254.169.254/", false),
            ("https://evil.example/x", false),
            ("ftp://x/y", false),
            ("mlflow-artifacts:/x/../../y", STRICT),
            ("/tmp/a/../../etc", STRICT),
        ];
        for (i, (loc, stricter)) in locations.iter().enumerate() {
            let body = json!({"name": format!("loc{i}-{u}"), "artifact_location": loc});
            refuse("experiments/create", body, "artifact_location", *stricter);
        }

        // an alias name with traversal is refused when read or deleted too
        for method in [M::Get, M::Delete] {
            let body = json!({"name": m, "alias": "../x"});
            cases.push(case(method, "registered-models/alias", body, 400, INVALID, "alias"));
        }
        findings.cases(&api, &cases).await;

        // Nothing was created or changed.
        let models = api.models_like(&format!("%{u}%")).await;
        findings.check(&api, models == [m.clone()], format!("models created: {models:?}"));
        let versions = api.versions_of(&m).await;
        findings.check(&api, versions == ["1"], format!("versions of {m}: {versions:?}"));
        let got = api.ok(M::Get, "registered-models/get", json!({ "name": m })).await;
        let rm = &got["registered_model"];
        let untouched = rm["aliases"].is_null() && rm["tags"].is_null();
        findings.check(&api, untouched, format!("model changed: {rm}"));
        let got = api.ok(M::Get, "model-versions/get", json!({"name": m, "version": "1"})).await;
        let tags = &got["model_version"]["tags"];
        findings.check(&api, tags.is_null(), format!("version tagged: {tags}"));
        let got = api.ok(M::Post, "logged-models/search", json!({"experiment_ids": [exp]})).await;
        let models = &got["models"];
        findings.check(&api, models.is_null(), format!("logged models created: {models}"));
        let checked = locations.iter().enumerate().filter(|(_, (_, strict))| !(*strict && api.peer));
        for (i, (loc, _)) in checked {
            let name = format!("loc{i}-{u}");
            let query = json!({ "experiment_name": name });
            let (s, _) = api.call(M::Get, "experiments/get-by-name", &query).await;
            findings.check(&api, s == 404, format!("experiment created with artifact_location {loc}"));
        }
        api.healthy().await;
    }
    findings.assert_none();
}

/// With `--app-name basic-auth`, the alias and stage history names the user who moved it.
#[tokio::test]
async fn history_names_the_authenticated_user() {
    let app = testkit::server::spawn_auth_app("sqlite", auth::Permission::Read).await;
    let (u, p) = testkit::server::ADMIN;
    let post = |route: &'static str, body: Value| {
        let app = &app;
        async move {
            let r = app.client.post(app.url(&format!("/api/2.0/mlflow/{route}"))).basic_auth(u, Some(p)).json(&body);
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 200, "{route}");
        }
    };
    post("registered-models/create", json!({"name": "m"})).await;
    post("model-versions/create", json!({"name": "m", "source": "s3://bucket/models/m"})).await;
    post("registered-models/alias", json!({"name": "m", "alias": "prod", "version": "1"})).await;
    post("model-versions/transition-stage", json!({"name": "m", "version": "1", "stage": "Staging"})).await;
    let url = app.url("/api/2.0/factory/registered-models/history?name=m");
    let h: Value = app.client.get(url).basic_auth(u, Some(p)).send().await.unwrap().json().await.unwrap();
    let events = h["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{h}");
    assert!(events.iter().all(|e| e["user_id"] == u), "{h}");
}
