//! JSON shapes of MLflow's protos (`service.proto`), converted by hand from the store's
//! plain types. Unset fields are omitted, as the stock server does.

use crate::json::PyFloat;
use serde::{Deserialize, Serialize};
use tracking as t;

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct KeyValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl From<&t::KeyValue> for KeyValue {
    fn from(kv: &t::KeyValue) -> Self {
        KeyValue { key: kv.key.clone(), value: kv.value.clone() }
    }
}

impl From<KeyValue> for t::KeyValue {
    fn from(kv: KeyValue) -> Self {
        t::KeyValue { key: kv.key, value: kv.value }
    }
}

pub fn tags_in(tags: Vec<KeyValue>) -> Vec<t::KeyValue> {
    tags.into_iter().map(Into::into).collect()
}

fn kvs(items: &[t::KeyValue]) -> Vec<KeyValue> {
    items.iter().map(KeyValue::from).collect()
}

#[derive(Serialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    pub artifact_location: String,
    pub lifecycle_stage: &'static str,
    pub last_update_time: i64,
    pub creation_time: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    pub workspace: &'static str,
}

impl From<&t::Experiment> for Experiment {
    fn from(e: &t::Experiment) -> Self {
        Experiment {
            experiment_id: e.experiment_id.clone(),
            name: e.name.clone(),
            artifact_location: e.artifact_location.clone(),
            lifecycle_stage: e.lifecycle_stage.as_str(),
            last_update_time: e.last_update_time,
            creation_time: e.creation_time,
            tags: kvs(&e.tags),
            workspace: "default",
        }
    }
}

#[derive(Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub run_uuid: String,
    pub run_name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: &'static str,
    pub start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: &'static str,
}

impl From<&t::RunInfo> for RunInfo {
    fn from(i: &t::RunInfo) -> Self {
        RunInfo {
            run_id: i.run_id.clone(),
            run_uuid: i.run_id.clone(),
            run_name: i.run_name.clone(),
            experiment_id: i.experiment_id.clone(),
            user_id: i.user_id.clone(),
            status: i.status.as_str(),
            start_time: i.start_time,
            end_time: i.end_time,
            artifact_uri: i.artifact_uri.clone(),
            lifecycle_stage: i.lifecycle_stage.as_str(),
        }
    }
}

#[derive(Serialize)]
pub struct Metric {
    pub key: String,
    pub value: PyFloat,
    pub timestamp: i64,
    pub step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl From<&t::Metric> for Metric {
    fn from(m: &t::Metric) -> Self {
        Metric {
            key: m.key.clone(),
            value: PyFloat(m.value),
            timestamp: m.timestamp,
            step: m.step,
            model_id: m.model_id.clone(),
            dataset_name: m.dataset_name.clone(),
            dataset_digest: m.dataset_digest.clone(),
            run_id: None,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Dataset {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub source_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct DatasetInput {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(default)]
    pub dataset: Dataset,
}

impl From<DatasetInput> for t::DatasetInput {
    fn from(i: DatasetInput) -> Self {
        let d = i.dataset;
        t::DatasetInput {
            tags: tags_in(i.tags),
            dataset: t::Dataset {
                name: d.name,
                digest: d.digest,
                source_type: d.source_type,
                source: d.source,
                schema: d.schema,
                profile: d.profile,
            },
        }
    }
}

impl From<&t::DatasetInput> for DatasetInput {
    fn from(i: &t::DatasetInput) -> Self {
        let d = &i.dataset;
        DatasetInput {
            tags: kvs(&i.tags),
            dataset: Dataset {
                name: d.name.clone(),
                digest: d.digest.clone(),
                source_type: d.source_type.clone(),
                source: d.source.clone(),
                schema: d.schema.clone(),
                profile: d.profile.clone(),
            },
        }
    }
}

/// A run as `service.proto`'s `Run`, serialized straight from the store's run (no copy of
/// its strings: a search page holds hundreds of runs).
pub struct Run<'a>(pub &'a t::Run);

impl<'a> From<&'a t::Run> for Run<'a> {
    fn from(r: &'a t::Run) -> Self {
        Run(r)
    }
}

impl Run<'_> {
    /// The run's JSON text (its serialization cannot fail: every field is a plain value).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("a run always encodes: {e}"))
    }
}

/// Serializes a slice as a JSON array, each item through a borrowed view.
struct Each<'a, T, V>(&'a [T], fn(&'a T) -> V);

impl<'a, T, V: Serialize> Serialize for Each<'a, T, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

#[derive(Serialize)]
struct RunInfoRef<'a> {
    run_id: &'a str,
    run_uuid: &'a str,
    run_name: &'a str,
    experiment_id: &'a str,
    user_id: &'a str,
    status: &'static str,
    start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    artifact_uri: &'a str,
    lifecycle_stage: &'static str,
}

#[derive(Serialize)]
struct KeyValueRef<'a> {
    key: &'a str,
    value: &'a str,
}

fn kv_ref(kv: &t::KeyValue) -> KeyValueRef<'_> {
    KeyValueRef { key: &kv.key, value: &kv.value }
}

#[derive(Serialize)]
struct MetricRef<'a> {
    key: &'a str,
    value: PyFloat,
    timestamp: i64,
    step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_digest: Option<&'a str>,
}

fn metric_ref(m: &t::Metric) -> MetricRef<'_> {
    MetricRef {
        key: &m.key,
        value: PyFloat(m.value),
        timestamp: m.timestamp,
        step: m.step,
        model_id: m.model_id.as_deref(),
        dataset_name: m.dataset_name.as_deref(),
        dataset_digest: m.dataset_digest.as_deref(),
    }
}

#[derive(Serialize)]
struct DatasetRef<'a> {
    name: &'a str,
    digest: &'a str,
    source_type: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
}

#[derive(Serialize)]
struct DatasetInputRef<'a> {
    #[serde(skip_serializing_if = "Each::is_empty")]
    tags: Each<'a, t::KeyValue, KeyValueRef<'a>>,
    dataset: DatasetRef<'a>,
}

fn dataset_input_ref(i: &t::DatasetInput) -> DatasetInputRef<'_> {
    let d = &i.dataset;
    DatasetInputRef {
        tags: Each(&i.tags, kv_ref),
        dataset: DatasetRef {
            name: &d.name,
            digest: &d.digest,
            source_type: &d.source_type,
            source: &d.source,
            schema: d.schema.as_deref(),
            profile: d.profile.as_deref(),
        },
    }
}

#[derive(Serialize)]
struct ModelInputRef<'a> {
    model_id: &'a str,
}

#[derive(Serialize)]
struct ModelOutputRef<'a> {
    model_id: &'a str,
    step: i64,
}

impl<T, V> Each<'_, T, V> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Serialize)]
struct RunDataRef<'a> {
    #[serde(skip_serializing_if = "Each::is_empty")]
    metrics: Each<'a, t::Metric, MetricRef<'a>>,
    #[serde(skip_serializing_if = "Each::is_empty")]
    params: Each<'a, t::KeyValue, KeyValueRef<'a>>,
    #[serde(skip_serializing_if = "Each::is_empty")]
    tags: Each<'a, t::KeyValue, KeyValueRef<'a>>,
}

#[derive(Serialize)]
struct RunInputsRef<'a> {
    #[serde(skip_serializing_if = "Each::is_empty")]
    dataset_inputs: Each<'a, t::DatasetInput, DatasetInputRef<'a>>,
    #[serde(skip_serializing_if = "Each::is_empty")]
    model_inputs: Each<'a, String, ModelInputRef<'a>>,
}

#[derive(Serialize)]
struct RunOutputsRef<'a> {
    #[serde(skip_serializing_if = "Each::is_empty")]
    model_outputs: Each<'a, t::ModelOutput, ModelOutputRef<'a>>,
}

#[derive(Serialize)]
struct RunRef<'a> {
    info: RunInfoRef<'a>,
    data: RunDataRef<'a>,
    inputs: RunInputsRef<'a>,
    outputs: RunOutputsRef<'a>,
}

impl Serialize for Run<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let i = &r.info;
        RunRef {
            info: RunInfoRef {
                run_id: &i.run_id,
                run_uuid: &i.run_id,
                run_name: &i.run_name,
                experiment_id: &i.experiment_id,
                user_id: &i.user_id,
                status: i.status.as_str(),
                start_time: i.start_time,
                end_time: i.end_time,
                artifact_uri: &i.artifact_uri,
                lifecycle_stage: i.lifecycle_stage.as_str(),
            },
            data: RunDataRef {
                metrics: Each(&r.metrics, metric_ref),
                params: Each(&r.params, kv_ref),
                tags: Each(&r.tags, kv_ref),
            },
            inputs: RunInputsRef {
                dataset_inputs: Each(&r.inputs, dataset_input_ref),
                model_inputs: Each(&r.model_inputs, |id| ModelInputRef { model_id: id }),
            },
            outputs: RunOutputsRef {
                model_outputs: Each(&r.model_outputs, |o| ModelOutputRef { model_id: &o.model_id, step: o.step }),
            },
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub artifact_uri: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
}

#[derive(Serialize)]
pub struct LoggedModelData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
}

#[derive(Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

impl From<&t::LoggedModel> for LoggedModel {
    fn from(m: &t::LoggedModel) -> Self {
        LoggedModel {
            info: LoggedModelInfo {
                model_id: m.model_id.clone(),
                experiment_id: m.experiment_id.clone(),
                name: m.name.clone(),
                artifact_uri: m.artifact_location.clone(),
                creation_timestamp_ms: m.creation_timestamp_ms,
                last_updated_timestamp_ms: m.last_updated_timestamp_ms,
                status: m.status.clone(),
                status_message: m.status_message.clone(),
                model_type: m.model_type.clone(),
                source_run_id: m.source_run_id.clone(),
                tags: kvs(&m.tags),
            },
            data: LoggedModelData {
                params: kvs(&m.params),
                metrics: m
                    .metrics
                    .iter()
                    .map(|rm| {
                        let mut w = Metric::from(&rm.metric);
                        // Empty when withheld from the caller (`access::Withheld`).
                        w.run_id = Some(rm.run_id.clone()).filter(|id| !id.is_empty());
                        w
                    })
                    .collect(),
            },
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ModelOutput {
    #[serde(default)]
    pub model_id: String,
    #[serde(default, deserialize_with = "crate::json::opt_int")]
    pub step: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ModelInput {
    #[serde(default)]
    pub model_id: String,
}

#[derive(Serialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub current_stage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
}

impl From<&t::ModelVersion> for ModelVersion {
    fn from(v: &t::ModelVersion) -> Self {
        ModelVersion {
            name: v.name.clone(),
            version: v.version.to_string(),
            creation_timestamp: v.creation_time,
            last_updated_timestamp: v.last_updated_time,
            user_id: v.user_id.clone().filter(|u| !u.is_empty()),
            current_stage: v.current_stage.clone(),
            // MLflow's create handler stores the request's `description`, "" when not given.
            description: Some(v.description.clone().unwrap_or_default()),
            source: v.source.clone(),
            run_id: v.run_id.clone(),
            status: v.status.clone(),
            status_message: v.status_message.clone(),
            tags: kvs(&v.tags),
            run_link: v.run_link.clone(),
            aliases: v.aliases.clone(),
            model_id: v.model_id.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct Alias {
    pub alias: String,
    pub version: String,
}

#[derive(Serialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latest_versions: Vec<ModelVersion>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<Alias>,
}

impl From<&t::RegisteredModel> for RegisteredModel {
    fn from(m: &t::RegisteredModel) -> Self {
        RegisteredModel {
            name: m.name.clone(),
            creation_timestamp: m.creation_time,
            last_updated_timestamp: m.last_updated_time,
            description: m.description.clone(),
            latest_versions: m.latest_versions.iter().map(ModelVersion::from).collect(),
            tags: kvs(&m.tags),
            aliases: m.aliases.iter().map(|(a, v)| Alias { alias: a.clone(), version: v.to_string() }).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct RegistryEvent {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_after: Option<String>,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl From<&t::RegistryEvent> for RegistryEvent {
    fn from(e: &t::RegistryEvent) -> Self {
        RegistryEvent {
            id: e.id,
            name: e.name.clone(),
            kind: e.kind.clone(),
            target: e.target.clone(),
            version_before: e.version_before.map(|v| v.to_string()),
            version_after: e.version_after.map(|v| v.to_string()),
            timestamp: e.time,
            user_id: e.user_id.clone(),
        }
    }
}

/// A page of results under its MLflow field name, plus `next_page_token` when more rows
/// exist. An empty list is omitted, as protobuf's JSON printer omits empty repeated fields.
pub struct Paged<T> {
    pub key: &'static str,
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

impl<T> Paged<T> {
    /// Converts a store page into its wire form.
    pub fn of<'a, S: 'a>(key: &'static str, page: &'a t::Page<S>) -> Self
    where
        T: From<&'a S>,
    {
        Paged { key, items: page.items.iter().map(T::from).collect(), next_page_token: page.next_page_token.clone() }
    }
}

impl<T: Serialize> Serialize for Paged<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if !self.items.is_empty() {
            map.serialize_entry(self.key, &self.items)?;
        }
        if let Some(token) = &self.next_page_token {
            map.serialize_entry("next_page_token", token)?;
        }
        map.end()
    }
}
