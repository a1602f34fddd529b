//! Model registry routes (`/api/2.0/mlflow/registered-models/*`, `model-versions/*`) and our
//! alias/stage history (`/api/2.0/factory/registered-models/history`), each declared once with
//! the rule over its typed request. A registered model's per-user grants are written with it,
//! follow its renames and go with it (`owners`); listings show only what the caller may read.

use crate::access::{filter_selects, param, readable, tier_open, Need, Withheld};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::{Msg, Reply};
use crate::routes::{Api, DELETE, GET, GET_POST, PATCH, POST};
use crate::tracking::{refill, required, required_str};
use crate::wire::{self, tags_in, KeyValue};
use crate::{owners, AppState};
use ::auth::permission::{Action, REGISTERED_MODEL, REGISTERED_MODEL_VERSION};
use ::auth::Grants;
use serde::Deserialize;
use serde_json::{json, Value};
use tracking::validate;

pub fn routes(api: &mut Api) {
    api.rule(POST, "/registered-models/create", create_model, |r| {
        Ok(Need::CreateRegisteredModel(r.name.clone().unwrap_or_default()))
    });
    api.rule(GET, "/registered-models/get", get_model, |r| model(&r.name, Action::Read));
    api.rule(PATCH, "/registered-models/update", update_model, |r| model(&r.name, Action::Update));
    api.rule(POST, "/registered-models/rename", rename_model, |r| model(&r.name, Action::Update));
    api.rule(DELETE, "/registered-models/delete", delete_model, |r| {
        Ok(Need::DeleteRegisteredModel(param(&r.name, "name")?))
    });
    api.listing(GET_POST, "/registered-models/search", search_models);
    api.rule(GET_POST, "/registered-models/get-latest-versions", latest_versions, |r| version(&r.name, Action::Read));
    api.rule(POST, "/registered-models/set-tag", set_model_tag, |r| model(&r.name, Action::Update));
    api.rule(DELETE, "/registered-models/delete-tag", delete_model_tag, |r| model(&r.name, Action::Update));
    api.rule(POST, "/registered-models/alias", set_alias, |r| Ok(Need::Alias(param(&r.name, "name")?, Action::Update)));
    api.rule(DELETE, "/registered-models/alias", delete_alias, |r| {
        Ok(Need::Alias(param(&r.name, "name")?, Action::Delete))
    });
    api.rule(GET, "/registered-models/alias", get_by_alias, |r| version(&r.name, Action::Read));
    api.rule(POST, "/model-versions/create", create_version, |r| {
        Ok(Need::CreateVersion {
            name: param(&r.name, "name")?,
            source: r.source.clone().unwrap_or_default(),
            run_id: r.run_id.clone(),
            model_id: r.model_id.clone(),
        })
    });
    api.rule(GET, "/model-versions/get", get_version, |r| version(&r.name, Action::Read));
    api.rule(PATCH, "/model-versions/update", update_version, |r| version(&r.name, Action::Update));
    api.rule(DELETE, "/model-versions/delete", delete_version, |r| version(&r.name, Action::Delete));
    api.listing_with(GET_POST, "/model-versions/search", search_versions, |r| {
        Ok(match filter_selects(r.filter.as_deref(), "run_id") {
            true => Need::SearchSelectingRuns,
            false => Need::Anyone,
        })
    });
    api.rule(GET, "/model-versions/get-download-uri", download_uri, |r| version(&r.name, Action::Read));
    api.rule(POST, "/model-versions/transition-stage", transition_stage, |r| version(&r.name, Action::Update));
    api.rule(POST, "/model-versions/set-tag", set_version_tag, |r| version(&r.name, Action::Update));
    api.rule(DELETE, "/model-versions/delete-tag", delete_version_tag, |r| version(&r.name, Action::Delete));
}

/// Routes of ours beside MLflow's, under `/api/2.0/factory`.
pub fn factory_routes(api: &mut Api) {
    api.rule(GET, "/registered-models/history", history, |r| model(&r.name, Action::Read));
}

fn model(name: &Option<String>, action: Action) -> ApiResult<Need> {
    Ok(Need::RegisteredModel(param(name, "name")?, action))
}

fn version(name: &Option<String>, action: Action) -> ApiResult<Need> {
    Ok(Need::Version(param(name, "name")?, action))
}

/// `_withhold_denied_latest_versions`: a model the caller reads still hides its versions when
/// the version tier is denied, and the versions it shows what they say about denied tiers.
pub(crate) fn withhold_versions(who: &Caller, models: &mut [tracking::RegisteredModel]) {
    let Some(g) = who.grants() else { return };
    let (versions_open, withheld) = (tier_open(g, REGISTERED_MODEL_VERSION), Withheld::of(who));
    for m in models {
        if !versions_open {
            m.latest_versions.clear();
        }
        m.latest_versions.iter_mut().for_each(|v| withheld.version(v));
    }
}

fn version_readable(g: &Grants, name: &str) -> bool {
    tier_open(g, REGISTERED_MODEL_VERSION) && readable(g, REGISTERED_MODEL, name)
}

fn model_reply(who: &Caller, mut m: tracking::RegisteredModel) -> Reply<Value> {
    withhold_versions(who, std::slice::from_mut(&mut m));
    Reply(json!({ "registered_model": wire::RegisteredModel::from(&m) }))
}

fn version_reply(who: &Caller, mut v: tracking::ModelVersion) -> Reply<Value> {
    Withheld::of(who).version(&mut v);
    Reply(json!({ "model_version": wire::ModelVersion::from(&v) }))
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

async fn create_model(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    validate::registered_model_name(&name)?;
    if let Some(d) = &r.description {
        validate::description(d)?;
    }
    let m = owners::create_registered_model(&s, &who, &name, r.description.as_deref(), &tags_in(r.tags)).await?;
    Ok(model_reply(&who, m))
}

async fn get_model(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    Ok(model_reply(&who, s.store.registered_models().get(&r.name()?).await?))
}

async fn update_model(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    if let Some(d) = &r.description {
        validate::description(d)?;
    }
    Ok(model_reply(&who, s.store.registered_models().update(&name, r.description.as_deref()).await?))
}

async fn rename_model(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let new_name = required_str(r.new_name, "new_name")?;
    validate::registered_model_name(&new_name)?;
    Ok(model_reply(&who, owners::rename_registered_model(&s, &name, &new_name).await?))
}

async fn delete_model(s: AppState, _: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    owners::delete_registered_model(&s, &r.name()?).await?;
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

/// `filter_search_registered_models`: only readable models, pages refilled, versions
/// withheld when the version tier is denied.
async fn search_models(
    s: AppState,
    who: Caller,
    Msg(r): Msg<SearchReq>,
) -> ApiResult<Reply<wire::Paged<wire::RegisteredModel>>> {
    validate::search(0, r.order_by.len())?;
    let (filter, max) = (r.filter.unwrap_or_default(), r.max_results.unwrap_or(100));
    let search = |token: Option<String>, n: i64| {
        let (store, filter, order_by) = (&s.store, &filter, &r.order_by);
        async move { store.registered_models().search(filter, order_by, n, token.as_deref()).await }
    };
    let mut page = search(r.page_token, max).await?;
    if let Some(g) = who.grants() {
        refill(&mut page, max, |m| readable(g, REGISTERED_MODEL, &m.name), |t, n| search(Some(t), n)).await?;
    }
    withhold_versions(&who, &mut page.items);
    Ok(Reply(wire::Paged::of("registered_models", &page)))
}

async fn latest_versions(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let mut versions = s.store.registered_models().latest_versions(&name, &r.stages).await?;
    let withheld = Withheld::of(&who);
    versions.iter_mut().for_each(|v| withheld.version(v));
    let items: Vec<wire::ModelVersion> = versions.iter().map(Into::into).collect();
    Ok(Reply(json!({ "model_versions": items })))
}

async fn set_model_tag(s: AppState, _: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    let tag = tracking::KeyValue { key: required_str(r.key, "key")?, value: required(r.value, "value")? };
    s.store.registered_models().set_tag(&name, &tag).await?;
    Ok(Reply(json!({})))
}

async fn delete_model_tag(s: AppState, _: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    s.store.registered_models().delete_tag(&name, &required_str(r.key, "key")?).await?;
    Ok(Reply(json!({})))
}

async fn set_alias(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = (r.name()?, r.version()?);
    s.store.registered_models().set_alias(&name, &required_str(r.alias, "alias")?, version, who.username()).await?;
    Ok(Reply(json!({})))
}

async fn delete_alias(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    s.store.registered_models().delete_alias(&name, &required_str(r.alias, "alias")?, who.username()).await?;
    Ok(Reply(json!({})))
}

async fn get_by_alias(s: AppState, who: Caller, Msg(mut r): Msg<ModelReq>) -> ApiResult<Reply<Value>> {
    let name = r.name()?;
    Ok(version_reply(&who, s.store.model_versions().by_alias(&name, &required_str(r.alias, "alias")?).await?))
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

async fn create_version(s: AppState, who: Caller, Msg(r): Msg<CreateVersion>) -> ApiResult<Reply<Value>> {
    if let Some(d) = &r.description {
        validate::description(d)?;
    }
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
    Ok(version_reply(&who, v))
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

async fn get_version(s: AppState, who: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    Ok(version_reply(&who, s.store.model_versions().get(&name, version).await?))
}

async fn update_version(s: AppState, who: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    if let Some(d) = &r.description {
        validate::description(d)?;
    }
    Ok(version_reply(&who, s.store.model_versions().update(&name, version, r.description.as_deref()).await?))
}

async fn delete_version(s: AppState, who: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    s.store.model_versions().delete(&name, version, who.username()).await?;
    Ok(Reply(json!({})))
}

/// `filter_search_model_versions`: only versions of readable models, when the version tier is
/// not denied (no refill, as in MLflow).
async fn search_versions(
    s: AppState,
    who: Caller,
    Msg(r): Msg<SearchReq>,
) -> ApiResult<Reply<wire::Paged<wire::ModelVersion>>> {
    validate::search(0, r.order_by.len())?;
    let mut page = s
        .store
        .model_versions()
        .search(
            r.filter.as_deref().unwrap_or(""),
            &r.order_by,
            r.max_results.unwrap_or(10_000),
            r.page_token.as_deref(),
        )
        .await?;
    if let Some(g) = who.grants() {
        page.items.retain(|v| version_readable(g, &v.name));
    }
    let withheld = Withheld::of(&who);
    page.items.iter_mut().for_each(|v| withheld.version(v));
    Ok(Reply(wire::Paged::of("model_versions", &page)))
}

async fn download_uri(s: AppState, _: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    let uri = s.store.model_versions().download_uri(&name, version).await?;
    Ok(Reply(json!({ "artifact_uri": uri })))
}

async fn transition_stage(s: AppState, who: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    let stage = required_str(r.stage, "stage")?;
    let v = s
        .store
        .model_versions()
        .transition_stage(&name, version, &stage, r.archive_existing_versions.unwrap_or(false), who.username())
        .await?;
    Ok(version_reply(&who, v))
}

async fn set_version_tag(s: AppState, _: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
    let (name, version) = r.id()?;
    let tag = tracking::KeyValue { key: required_str(r.key, "key")?, value: required(r.value, "value")? };
    s.store.model_versions().set_tag(&name, version, &tag).await?;
    Ok(Reply(json!({})))
}

async fn delete_version_tag(s: AppState, _: Caller, Msg(mut r): Msg<VersionReq>) -> ApiResult<Reply<Value>> {
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
async fn history(s: AppState, _: Caller, Msg(r): Msg<HistoryReq>) -> ApiResult<Reply<Value>> {
    let name = required_str(r.name, "name")?;
    let events = s.store.registered_models().history(&name, r.alias.as_deref()).await?;
    let items: Vec<wire::RegistryEvent> = events.iter().map(Into::into).collect();
    Ok(Reply(json!({ "events": items })))
}
