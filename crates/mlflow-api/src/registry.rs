//! Model registry routes (`/api/2.0/mlflow/registered-models/*`, `model-versions/*`) and our
//! alias/stage history (`/api/2.0/factory/registered-models/history`).

use crate::error::ApiResult;
use crate::json::{Msg, Reply};
use crate::tracking::{required, required_str};
use crate::wire::{self, tags_in, KeyValue};
use crate::AppState;
use axum::extract::State;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registered-models/create", post(create_model))
        .route("/registered-models/get", get(get_model))
        .route("/registered-models/update", patch(update_model))
        .route("/registered-models/rename", post(rename_model))
        .route("/registered-models/delete", delete(delete_model))
        .route("/registered-models/search", get(search_models).post(search_models))
        .route("/registered-models/get-latest-versions", post(latest_versions).get(latest_versions))
        .route("/registered-models/set-tag", post(set_model_tag))
        .route("/registered-models/delete-tag", delete(delete_model_tag))
        .route("/registered-models/alias", post(set_alias).delete(delete_alias).get(get_by_alias))
        .route("/model-versions/create", post(create_version))
        .route("/model-versions/get", get(get_version))
        .route("/model-versions/update", patch(update_version))
        .route("/model-versions/delete", delete(delete_version))
        .route("/model-versions/search", get(search_versions).post(search_versions))
        .route("/model-versions/get-download-uri", get(download_uri))
        .route("/model-versions/transition-stage", post(transition_stage))
        .route("/model-versions/set-tag", post(set_version_tag))
        .route("/model-versions/delete-tag", delete(delete_version_tag))
}

/// Routes of ours beside MLflow's, under `/api/2.0/factory`.
pub fn factory_routes() -> Router<AppState> {
    Router::new().route("/registered-models/history", get(history))
}

fn model_reply(m: &tracking::RegisteredModel) -> Reply<Value> {
    Reply(json!({ "registered_model": wire::RegisteredModel::from(m) }))
}

fn version_reply(v: &tracking::ModelVersion) -> Reply<Value> {
    Reply(json!({ "model_version": wire::ModelVersion::from(v) }))
}

#[derive(Deserialize)]
struct ModelReq {
    name: Option<String>,
    description: Option<String>,
    new_name: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
    key: Option<String>,
    value: Option<String>,
    alias: Option<String>,
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    version: Option<String>,
    #[serde(default)]
    stages: Vec<String>,
}

impl ModelReq {
    fn name(&mut self) -> ApiResult<String> {
        required_str(self.name.take(), "name")
    }
    fn version(&mut self) -> ApiResult<i64> {
        Ok(tracking::parse_version(&required_str(self.version.take(), "version")?)?)
    }
}

async fn create_model(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let m = s.store.registered_models().create(&name, r.description.as_deref(), &tags_in(r.tags)).await?;
    Ok(model_reply(&m))
}

async fn get_model(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    Ok(model_reply(&s.store.registered_models().get(&r.name()?).await?))
}

async fn update_model(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    Ok(model_reply(&s.store.registered_models().update(&name, r.description.as_deref()).await?))
}

async fn rename_model(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let new_name = required_str(r.new_name, "new_name")?;
    Ok(model_reply(&s.store.registered_models().rename(&name, &new_name).await?))
}

async fn delete_model(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    s.store.registered_models().delete(&r.name()?).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct SearchReq {
    filter: Option<String>,
    #[serde(default, deserialize_with = "crate::json::opt_int")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

async fn search_models(
    State(s): State<AppState>,
    Msg(r): Msg<SearchReq>,
) -> ApiResult<Reply<wire::Paged<wire::RegisteredModel>>> {
    let page = s
        .store
        .registered_models()
        .search(r.filter.as_deref().unwrap_or(""), &r.order_by, r.max_results.unwrap_or(100), r.page_token.as_deref())
        .await?;
    Ok(Reply(wire::Paged::of("registered_models", &page)))
}

async fn latest_versions(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let versions = s.store.registered_models().latest_versions(&name, &r.stages).await?;
    let items: Vec<wire::ModelVersion> = versions.iter().map(Into::into).collect();
    Ok(Reply(json!({ "model_versions": items })))
}

async fn set_model_tag(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let tag = tracking::KeyValue { key: required_str(r.key, "key")?, value: required(r.value, "value")? };
    s.store.registered_models().set_tag(&name, &tag).await?;
    Ok(Reply(json!({})))
}

async fn delete_model_tag(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    s.store.registered_models().delete_tag(&name, &required_str(r.key, "key")?).await?;
    Ok(Reply(json!({})))
}

async fn set_alias(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = (r.name()?, r.version()?);
    s.store.registered_models().set_alias(&name, &required_str(r.alias, "alias")?, version, None).await?;
    Ok(Reply(json!({})))
}

async fn delete_alias(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    s.store.registered_models().delete_alias(&name, &required_str(r.alias, "alias")?, None).await?;
    Ok(Reply(json!({})))
}

async fn get_by_alias(State(s): State<AppState>, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    Ok(version_reply(&s.store.model_versions().by_alias(&name, &required_str(r.alias, "alias")?).await?))
}

#[derive(Deserialize)]
struct CreateVersion {
    name: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    run_link: Option<String>,
    description: Option<String>,
    model_id: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create_version(State(s): State<AppState>, Msg(r): Msg<CreateVersion>) -> ApiResult<Reply<Value>> {
    let v = s
        .store
        .model_versions()
        .create(tracking::NewModelVersion {
            name: required_str(r.name, "name")?,
            source: required_str(r.source, "source")?,
            run_id: r.run_id,
            run_link: r.run_link,
            description: r.description,
            model_id: r.model_id,
            tags: tags_in(r.tags),
            user_id: None,
        })
        .await?;
    Ok(version_reply(&v))
}

#[derive(Deserialize)]
struct VersionReq {
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::json::string_opt")]
    version: Option<String>,
    description: Option<String>,
    key: Option<String>,
    value: Option<String>,
    stage: Option<String>,
    #[serde(default, deserialize_with = "crate::json::opt_bool")]
    archive_existing_versions: Option<bool>,
}

impl VersionReq {
    fn id(&mut self) -> ApiResult<(String, i64)> {
        let name = required_str(self.name.take(), "name")?;
        let version = tracking::parse_version(&required_str(self.version.take(), "version")?)?;
        Ok((name, version))
    }
}

async fn get_version(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    Ok(version_reply(&s.store.model_versions().get(&name, version).await?))
}

async fn update_version(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    Ok(version_reply(&s.store.model_versions().update(&name, version, r.description.as_deref()).await?))
}

async fn delete_version(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    s.store.model_versions().delete(&name, version, None).await?;
    Ok(Reply(json!({})))
}

async fn search_versions(
    State(s): State<AppState>,
    Msg(r): Msg<SearchReq>,
) -> ApiResult<Reply<wire::Paged<wire::ModelVersion>>> {
    let page = s
        .store
        .model_versions()
        .search(
            r.filter.as_deref().unwrap_or(""),
            &r.order_by,
            r.max_results.unwrap_or(10_000),
            r.page_token.as_deref(),
        )
        .await?;
    Ok(Reply(wire::Paged::of("model_versions", &page)))
}

async fn download_uri(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    let uri = s.store.model_versions().download_uri(&name, version).await?;
    Ok(Reply(json!({ "artifact_uri": uri })))
}

async fn transition_stage(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    let stage = required_str(r.stage, "stage")?;
    let v = s
        .store
        .model_versions()
        .transition_stage(&name, version, &stage, r.archive_existing_versions.unwrap_or(false), None)
        .await?;
    Ok(version_reply(&v))
}

async fn set_version_tag(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    let tag = tracking::KeyValue { key: required_str(r.key, "key")?, value: required(r.value, "value")? };
    s.store.model_versions().set_tag(&name, version, &tag).await?;
    Ok(Reply(json!({})))
}

async fn delete_version_tag(State(s): State<AppState>, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    s.store.model_versions().delete_tag(&name, version, &required_str(r.key, "key")?).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct HistoryReq {
    name: Option<String>,
    alias: Option<String>,
}

/// Every alias and stage move of a model, oldest first (`?name=...[&alias=prod]`).
async fn history(State(s): State<AppState>, Msg(r): Msg<HistoryReq>) -> ApiResult<Reply<Value>> {
    let name = required_str(r.name, "name")?;
    let events = s.store.registered_models().history(&name, r.alias.as_deref()).await?;
    let items: Vec<wire::RegistryEvent> = events.iter().map(Into::into).collect();
    Ok(Reply(json!({ "events": items })))
}
