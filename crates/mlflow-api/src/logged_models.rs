//! MLflow 3 logged-model routes (`/api/2.0/mlflow/logged-models/...`), each declared once
//! with the rule over its typed request (the model id comes from the path).

use crate::access::{filter_selects, param, readable, tier_open, Need, Withheld};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::{Msg, Reply};
use crate::routes::{Api, Input, DELETE, GET, GET_POST, PATCH, POST};
use crate::tracking::{refill, required_str};
use crate::wire::{self, tags_in, KeyValue};
use crate::AppState;
use ::auth::permission::{Action, EXPERIMENT, LOGGED_MODEL};
use axum::extract::{FromRequestParts, Path, Request};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tracking::search::DatasetRef;
use tracking::{validate, LoggedModelOrder, LoggedModelSearch};

pub fn routes(api: &mut Api) {
    api.rule(POST, "/logged-models", create, |r| {
        Ok(Need::CreateLoggedModel {
            experiment_id: param(&r.experiment_id, "experiment_id")?,
            source_run_id: r.source_run_id.clone(),
        })
    });
    api.listing_with(GET_POST, "/logged-models/search", search, |r| {
        Ok(match filter_selects(r.filter.as_deref(), "source_run_id") {
            true => Need::SearchSelectingRuns,
            false => Need::Anyone,
        })
    });
    api.rule(GET, "/logged-models/{model_id}", get_one, |r| Ok(Need::LoggedModel(r.path.clone(), Action::Read)));
    api.rule(PATCH, "/logged-models/{model_id}", finalize, |r| Ok(Need::LoggedModel(r.path.clone(), Action::Update)));
    api.rule(DELETE, "/logged-models/{model_id}", delete_one, |r| {
        Ok(Need::LoggedModel(r.path.clone(), Action::Delete))
    });
    api.rule(PATCH, "/logged-models/{model_id}/tags", set_tags, |r| {
        Ok(Need::LoggedModel(r.path.clone(), Action::Update))
    });
    api.rule(DELETE, "/logged-models/{model_id}/tags/{key}", delete_tag, |r| {
        Ok(Need::LoggedModel(r.path.0.clone(), Action::Delete))
    });
    api.rule(POST, "/logged-models/{model_id}/params", log_params, |r| {
        Ok(Need::LoggedModel(r.path.clone(), Action::Update))
    });
}

/// A request whose path carries parameters (`P`: the model id, or id and tag key) besides
/// its message `T`.
pub struct Pathed<P, T> {
    pub path: P,
    pub msg: T,
}

impl<P: DeserializeOwned + Send + 'static, T: DeserializeOwned + Send + 'static> Input for Pathed<P, T> {
    async fn parse(req: Request, s: &AppState) -> ApiResult<Self> {
        let (mut parts, body) = req.into_parts();
        let Path(path) =
            Path::<P>::from_request_parts(&mut parts, s).await.map_err(|e| ApiError::invalid(e.body_text()))?;
        let Msg(msg) = Msg::<T>::parse(Request::from_parts(parts, body), s).await?;
        Ok(Pathed { path, msg })
    }
}

/// A message with no fields (the request's parameters are all in its path).
#[derive(Deserialize)]
pub struct NoFields {}

type ById<T> = Pathed<String, T>;

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

fn reply(who: &Caller, mut model: tracking::LoggedModel) -> Reply<Value> {
    Withheld::of(who).logged_model(&mut model);
    Reply(json!({ "model": wire::LoggedModel::from(&model) }))
}

async fn create(s: AppState, who: Caller, Msg(r): Msg<Create>) -> ApiResult<Reply<Value>> {
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
    Ok(reply(&who, model))
}

async fn get_one(s: AppState, who: Caller, r: ById<NoFields>) -> ApiResult<Reply<Value>> {
    Ok(reply(&who, s.store.logged_models().get(&r.path).await?))
}

#[derive(Deserialize)]
struct Finalize {
    status: Option<String>,
}

async fn finalize(s: AppState, who: Caller, r: ById<Finalize>) -> ApiResult<Reply<Value>> {
    let model = s.store.logged_models().finalize(&r.path, &required_str(r.msg.status, "status")?).await?;
    Ok(reply(&who, model))
}

async fn delete_one(s: AppState, _: Caller, r: ById<NoFields>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().delete(&r.path).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn set_tags(s: AppState, who: Caller, r: ById<Tags>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().set_tags(&r.path, &tags_in(r.msg.tags)).await?;
    Ok(reply(&who, s.store.logged_models().get(&r.path).await?))
}

async fn delete_tag(s: AppState, _: Caller, r: Pathed<(String, String), NoFields>) -> ApiResult<Reply<Value>> {
    let (id, key) = &r.path;
    s.store.logged_models().delete_tag(id, key).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    params: Vec<KeyValue>,
}

async fn log_params(s: AppState, _: Caller, r: ById<Params>) -> ApiResult<Reply<Value>> {
    s.store.logged_models().log_params(&r.path, &tags_in(r.msg.params)).await?;
    Ok(Reply(json!({})))
}

#[derive(Deserialize)]
struct OrderBy {
    field_name: Option<String>,
    ascending: Option<bool>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
struct DatasetIn {
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetIn>,
    #[serde(default, deserialize_with = "crate::json::opt_int")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    page_token: Option<String>,
}

// MLflow reads the two lists differently: a `datasets` entry always compares the digest (one
// left out is protobuf's "", which matches metrics logged without a digest), an `order_by`
// entry only a non-empty one.
fn searched_dataset(d: DatasetIn) -> DatasetRef {
    DatasetRef { name: d.dataset_name.unwrap_or_default(), digest: Some(d.dataset_digest.unwrap_or_default()) }
}

fn ordered_dataset(name: String, digest: Option<String>) -> DatasetRef {
    DatasetRef { name, digest: digest.filter(|d| !d.is_empty()) }
}

/// `filter_search_logged_models`: only models in experiments the caller may read, when the
/// logged-model tier is not denied; pages refilled.
async fn search(s: AppState, who: Caller, Msg(r): Msg<Search>) -> ApiResult<Reply<wire::Paged<wire::LoggedModel>>> {
    validate::search(r.experiment_ids.len(), r.order_by.len())?;
    let order_by = r
        .order_by
        .into_iter()
        .map(|o| {
            Ok(LoggedModelOrder {
                field: required_str(o.field_name, "order_by.field_name")?,
                ascending: o.ascending.unwrap_or(true),
                dataset: o.dataset_name.filter(|n| !n.is_empty()).map(|n| ordered_dataset(n, o.dataset_digest)),
            })
        })
        .collect::<ApiResult<_>>()?;
    let max = r.max_results.unwrap_or(100);
    let query = LoggedModelSearch {
        experiment_ids: r.experiment_ids,
        filter: r.filter.unwrap_or_default(),
        datasets: r.datasets.into_iter().map(searched_dataset).collect(),
        order_by,
        max_results: max,
        page_token: None,
    };
    let search = |token: Option<String>, n: i64| {
        let q = LoggedModelSearch { max_results: n, page_token: token, ..query.clone() };
        let store = &s.store;
        async move { store.logged_models().search(&q).await }
    };
    let mut page = search(r.page_token, max).await?;
    if let Some(g) = who.grants() {
        let open = tier_open(g, LOGGED_MODEL);
        let keep = |m: &tracking::LoggedModel| open && readable(g, EXPERIMENT, &m.experiment_id);
        refill(&mut page, max, keep, |t, n| search(Some(t), n)).await?;
    }
    let withheld = Withheld::of(&who);
    page.items.iter_mut().for_each(|m| withheld.logged_model(m));
    Ok(Reply(wire::Paged::of("models", &page)))
}
