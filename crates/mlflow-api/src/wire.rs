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

#[derive(Serialize)]
pub struct RunData {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<KeyValue>,
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

#[derive(Serialize)]
pub struct RunInputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<ModelInput>,
}

#[derive(Serialize)]
pub struct Run {
    pub info: RunInfo,
    pub data: RunData,
    pub inputs: RunInputs,
    pub outputs: RunOutputs,
}

impl From<&t::Run> for Run {
    fn from(r: &t::Run) -> Self {
        Run {
            info: RunInfo::from(&r.info),
            data: RunData {
                metrics: r.metrics.iter().map(Metric::from).collect(),
                params: kvs(&r.params),
                tags: kvs(&r.tags),
            },
            inputs: RunInputs {
                dataset_inputs: r.inputs.iter().map(DatasetInput::from).collect(),
                model_inputs: r.model_inputs.iter().map(|id| ModelInput { model_id: id.clone() }).collect(),
            },
            outputs: RunOutputs {
                model_outputs: r
                    .model_outputs
                    .iter()
                    .map(|o| ModelOutput { model_id: o.model_id.clone(), step: Some(o.step) })
                    .collect(),
            },
        }
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
                        w.run_id = Some(rm.run_id.clone());
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
pub struct RunOutputs {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
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
            description: v.description.clone(),
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
