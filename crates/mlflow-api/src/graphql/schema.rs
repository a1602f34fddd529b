//! The root fields of MLflow's schema (`graphql_schema_extensions.py`). MLflow answers each
//! with its REST handler's `*_impl`; here each is answered by the REST route itself, sent
//! through the route table with the caller's identity ([`Relay`]), so validation, messages,
//! permissions and withheld fields are the REST API's own.
//!
//! Permissions, as MLflow's `GraphQLAuthorizationMiddleware` applies them: a root field the
//! caller may not read is `null`, with no error; a search of runs or datasets keeps only the
//! experiments the caller may read (`null` when none is left); searched model versions show
//! only readable models (the REST search already filters them).

use super::types::*;
use crate::access::readable;
use crate::auth::Caller;
use crate::json::MAX_JSON_BODY;
use async_graphql::{ComplexObject, Context, Error, Object, Result};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use tower::ServiceExt;

const API: &str = "/api/2.0/mlflow";
const AJAX: &str = "/ajax-api/2.0/mlflow";

/// The route table without the authentication layer: GraphQL's resolvers send their REST
/// requests here, carrying the caller [`crate::auth::layer`] already authenticated.
#[derive(Clone)]
pub struct Inner(pub Router);

/// One GraphQL request's way to the REST routes.
pub(crate) struct Relay {
    router: Router,
    caller: Caller,
    /// Experiments already read in this request (every run of a search names one).
    experiments: Mutex<HashMap<String, Option<Experiment>>>,
}

impl Relay {
    pub(crate) fn new(inner: Inner, caller: Caller) -> Relay {
        Relay { router: inner.0, caller, experiments: Mutex::default() }
    }

    /// A GET route, `input` as its query string.
    async fn get<T: DeserializeOwned>(&self, path: &str, input: &impl Serialize) -> Result<Option<T>> {
        let uri = format!("{path}?{}", query_string(input)?);
        self.send(Method::GET, uri, Body::empty()).await
    }

    /// A POST route, `input` as its JSON body.
    async fn post<T: DeserializeOwned>(&self, path: &str, input: &impl Serialize) -> Result<Option<T>> {
        let body = serde_json::to_vec(input).map_err(|e| Error::new(e.to_string()))?;
        self.send(Method::POST, path.to_string(), Body::from(body)).await
    }

    /// `Ok(None)` when the caller may not read it; the REST error's message when it fails.
    async fn send<T: DeserializeOwned>(&self, method: Method, uri: String, body: Body) -> Result<Option<T>> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| Error::new(e.to_string()))?;
        req.extensions_mut().insert(self.caller.clone());
        let resp = match self.router.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes =
            axum::body::to_bytes(resp.into_body(), MAX_JSON_BODY).await.map_err(|e| Error::new(e.to_string()))?;
        if status == StatusCode::FORBIDDEN {
            return Ok(None);
        }
        if !status.is_success() {
            #[derive(serde::Deserialize)]
            struct Failure {
                message: String,
            }
            let message = serde_json::from_slice::<Failure>(&bytes)
                .map(|f| f.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(Error::new(message));
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::new(format!("unreadable reply: {e}")))
    }

    /// The experiment with this id, read once per request.
    async fn experiment(&self, id: &str) -> Result<Option<Experiment>> {
        if let Some(known) = self.experiments.lock().expect("experiments").get(id) {
            return Ok(known.clone());
        }
        let reply: Option<GetExperimentResponse> =
            self.get(&format!("{API}/experiments/get"), &GetExperimentInput { experiment_id: Some(id.into()) }).await?;
        let experiment = reply.map(|r| r.experiment);
        self.experiments.lock().expect("experiments").insert(id.to_string(), experiment.clone());
        Ok(experiment)
    }

    /// Narrows `ids` to the experiments the caller may read; `false` when some were asked for
    /// and none is left (the answer is then `null`).
    fn readable_experiments(&self, ids: &mut Strings) -> bool {
        let (Some(grants), Some(list)) = (self.caller.grants(), ids.as_mut()) else { return true };
        let asked = list.iter().flatten().count();
        list.retain(|id| id.as_deref().is_some_and(|id| readable(grants, ::auth::permission::EXPERIMENT, id)));
        asked == 0 || !list.is_empty()
    }
}

/// A request message as a query string: repeated keys for lists, nulls left out.
fn query_string(input: &impl Serialize) -> Result<String> {
    let value = serde_json::to_value(input).map_err(|e| Error::new(e.to_string()))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    if let serde_json::Value::Object(fields) = value {
        for (key, v) in fields {
            match v {
                serde_json::Value::Array(items) => {
                    pairs.extend(items.iter().filter_map(scalar).map(|s| (key.clone(), s)));
                }
                v => pairs.extend(scalar(&v).map(|s| (key.clone(), s))),
            }
        }
    }
    serde_html_form::to_string(&pairs).map_err(|e| Error::new(e.to_string()))
}

fn relay<'a>(ctx: &Context<'a>) -> &'a Relay {
    ctx.data_unchecked::<Relay>()
}

/// A field's value, or `null` with its error recorded: MLflow's answer keeps the failed
/// field, as `null`, beside the others (async-graphql would leave a failed field out).
fn settle<T>(ctx: &Context<'_>, result: Result<Option<T>>) -> Option<T> {
    result.unwrap_or_else(|e| {
        ctx.add_error(ctx.set_error_path(async_graphql::ServerError::new(e.message, Some(ctx.item.pos))));
        None
    })
}

/// A root field answered by a GET route: `null` when not readable, the error beside it when
/// the route fails.
async fn answer_get<T: DeserializeOwned>(ctx: &Context<'_>, route: &str, input: impl Serialize) -> Option<T> {
    settle(ctx, relay(ctx).get(&format!("{API}{route}"), &input).await)
}

async fn search_runs(ctx: &Context<'_>, input: Option<SearchRunsInput>) -> Option<SearchRunsResponse> {
    let relay = relay(ctx);
    let mut input = input.unwrap_or_default();
    if !relay.readable_experiments(&mut input.experiment_ids) {
        return None;
    }
    settle(ctx, relay.post(&format!("{API}/runs/search"), &input).await)
}

/// `Query`: MLflow's read-only root fields, and `mlflowSearchRuns` (also a mutation there).
pub struct Query;

#[Object(name = "Query")]
impl Query {
    /// Simple echoing field
    async fn test(&self, input_string: Option<String>) -> Option<Echo> {
        Some(Echo { output: input_string })
    }

    async fn mlflow_get_experiment(
        &self,
        ctx: &Context<'_>,
        input: Option<GetExperimentInput>,
    ) -> Option<GetExperimentResponse> {
        answer_get(ctx, "/experiments/get", input.unwrap_or_default()).await
    }

    async fn mlflow_get_metric_history_bulk_interval(
        &self,
        ctx: &Context<'_>,
        input: Option<GetMetricHistoryBulkIntervalInput>,
    ) -> Option<GetMetricHistoryBulkIntervalResponse> {
        let input = input.unwrap_or_default();
        if input.run_ids.iter().flatten().flatten().next().is_none() {
            // MLflow's resolver calls the handler's `_impl`, past the REST check that some
            // run is named: no runs, no metrics.
            return Some(GetMetricHistoryBulkIntervalResponse::default());
        }
        answer_get(ctx, "/metrics/get-history-bulk-interval", input).await
    }

    async fn mlflow_get_run(&self, ctx: &Context<'_>, input: Option<GetRunInput>) -> Option<GetRunResponse> {
        answer_get(ctx, "/runs/get", input.unwrap_or_default()).await
    }

    async fn mlflow_list_artifacts(
        &self,
        ctx: &Context<'_>,
        input: Option<ListArtifactsInput>,
    ) -> Option<ListArtifactsResponse> {
        answer_get(ctx, "/artifacts/list", input.unwrap_or_default()).await
    }

    async fn mlflow_search_model_versions(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchModelVersionsInput>,
    ) -> Option<SearchModelVersionsResponse> {
        settle(ctx, relay(ctx).post(&format!("{API}/model-versions/search"), &input.unwrap_or_default()).await)
    }

    async fn mlflow_search_runs(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchRunsInput>,
    ) -> Option<SearchRunsResponse> {
        search_runs(ctx, input).await
    }
}

/// `Mutation`: the searches MLflow declares as mutations (their inputs can be long).
pub struct Mutation;

#[Object(name = "Mutation")]
impl Mutation {
    async fn mlflow_search_datasets(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchDatasetsInput>,
    ) -> Option<SearchDatasetsResponse> {
        let relay = relay(ctx);
        let mut input = input.unwrap_or_default();
        if !relay.readable_experiments(&mut input.experiment_ids) {
            return None;
        }
        settle(ctx, relay.post(&format!("{AJAX}/experiments/search-datasets"), &input).await)
    }

    async fn mlflow_search_runs(
        &self,
        ctx: &Context<'_>,
        input: Option<SearchRunsInput>,
    ) -> Option<SearchRunsResponse> {
        search_runs(ctx, input).await
    }

    /// Simple echoing field
    #[graphql(name = "testMutation")]
    async fn test_mutation(&self, input_string: Option<String>) -> Option<EchoMutation> {
        Some(EchoMutation { output: input_string })
    }
}

#[ComplexObject]
impl Run {
    /// The run's experiment.
    async fn experiment(&self, ctx: &Context<'_>) -> Option<Experiment> {
        settle(ctx, relay(ctx).experiment(&self.info.experiment_id).await)
    }

    /// The model versions registered from this run.
    async fn model_versions(&self, ctx: &Context<'_>) -> Option<Vec<ModelVersion>> {
        let run_id = &self.info.run_id;
        if run_id.contains('\'') {
            // Not an id a filter string can quote; no version can name it.
            return Some(Vec::new());
        }
        let input = SearchModelVersionsInput { filter: Some(format!("run_id='{run_id}'")), ..Default::default() };
        let path = format!("{API}/model-versions/search");
        let reply = relay(ctx).post::<SearchModelVersionsResponse>(&path, &input).await;
        settle(ctx, reply).map(|r| r.model_versions)
    }
}
