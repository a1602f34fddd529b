//! MLflow 3 logged-model routes (`/api/2.0/mlflow/logged-models/...`).

use crate::error::ApiResult;
use crate::json::{Msg, Reply};
use crate::tracking::required_str;
use crate::wire::{self, tags_in, KeyValue};
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/logged-models", post(create))
        .route("/logged-models/search", post(search).get(search))
        .route("/logged-models/{model_id}", get(get_one).patch(finalize).delete(delete_one))
        .route("/logged-models/{model_id}/tags", patch(set_tags))
        .route("/logged-models/{model_id}/tags/{key}", delete(delete_tag))
        .route("/logged-models/{model_id}/params", post(log_params))
}

#[derive(Deserialize)]
struct Create {
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

fn reply(model: &tracking::LoggedModel) -> Reply<Value> {
    Reply(json!({ "model": wire::LoggedModel::from(model) }))
}

async fn create(State(s): State<AppState>, Msg(r): Msg<Create>) -> ApiResult<Reply<Value>> {
    let model = s
        .store
        .logged_models()
        .create(tracking::NewLoggedModel {
            experiment_id: required_str(r.experiment_id, "experiment_id")?,
            name: r.name,
            model_type: r.model_type,
            source_run_id: r.source_run_id,
            params: tags_in(r.params),
            tags: tags_in(r.tags),
        })
        .await?;
    Ok(reply(&model))
}

async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Value>> {
    Ok(reply(&s.store.logged_models().get(&id).await?))
}

#[derive(Deserialize)]
struct Finalize {
    status: Option<String>,
}

async fn finalize(State(s): State<AppState>, Path(id): Path<String>, Msg(r): Msg<Finalize>) -> ApiResult<Reply<Value>> {
    let model = s.store.logged_models().finalize(&id, &required_str(r.status, "status")?).await?;
    Ok(reply(&model))
}

async fn delete_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().delete(&id).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn set_tags(State(s): State<AppState>, Path(id): Path<String>, Msg(r): Msg<Tags>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().set_tags(&id, &tags_in(r.tags)).await?;
    Ok(reply(&s.store.logged_models().get(&id).await?))
}

async fn delete_tag(State(s): State<AppState>, Path((id, key)): Path<(String, String)>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().delete_tag(&id, &key).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    params: Vec<KeyValue>,
}

async fn log_params(State(s): State<AppState>, Path(id): Path<String>, Msg(r): Msg<Params>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().log_params(&id, &tags_in(r.params)).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct OrderBy {
    field_name: Option<String>,
    ascending: Option<bool>,
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "crate::json::opt_int")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    page_token: Option<String>,
}

async fn search(State(s): State<AppState>, Msg(r): Msg<Search>) -> ApiResult<Reply<wire::Paged<wire::LoggedModel>>> {
    let order: Vec<(String, bool)> = r
        .order_by
        .into_iter()
        .map(|o| Ok((required_str(o.field_name, "order_by.field_name")?, o.ascending.unwrap_or(true))))
        .collect::<ApiResult<_>>()?;
    let page = s
        .store
        .logged_models()
        .search(
            &r.experiment_ids,
            r.filter.as_deref().unwrap_or(""),
            &order,
            r.max_results.unwrap_or(100),
            r.page_token.as_deref(),
        )
        .await?;
    Ok(Reply(wire::Paged::of("models", &page)))
}
