//! Input limits and name rules, as MLflow 3.17.2 applies them (`mlflow/utils/validation.py`,
//! the column sizes of its SQL store, the request schemas of `mlflow/server/handlers.py`), with
//! MLflow's messages. Where MLflow has no limit but the database would fail on the input (a 500),
//! the limit here is ours and says so; every one of them is listed in SECURITY.md.
//!
//! A run's over-long param and tag values are refused, or truncated as MLflow does when
//! `MLFLOW_TRUNCATE_LONG_VALUES` is on ([`truncated`], `Store::set_truncate_long_values`; on by
//! default in MLflow, off here: a silent truncation loses data).

use crate::error::{Result, StoreError};

/// `MAX_ENTITY_KEY_LENGTH` (metric, param and tag names).
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
/// `MAX_PARAM_VAL_LENGTH`.
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
/// `MAX_TAG_VAL_LENGTH` (run tags, a run's description included).
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
/// `MAX_EXPERIMENT_NAME_LENGTH`.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// `MAX_EXPERIMENT_TAG_KEY_LENGTH`.
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
/// `MAX_EXPERIMENT_TAG_VAL_LENGTH` (an experiment's description is its `mlflow.note.content` tag).
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20_000;
/// `MAX_MODEL_REGISTRY_TAG_KEY_LENGTH`.
pub const MAX_MODEL_REGISTRY_TAG_KEY_LENGTH: usize = 250;
/// `MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH`.
pub const MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
/// `MAX_METRICS_PER_BATCH`.
pub const MAX_BATCH_METRICS: usize = 1000;
/// `MAX_PARAMS_TAGS_PER_BATCH`.
pub const MAX_BATCH_PARAMS: usize = 100;
/// `MAX_PARAMS_TAGS_PER_BATCH`.
pub const MAX_BATCH_TAGS: usize = 100;
/// `MAX_ENTITIES_PER_BATCH`.
pub const MAX_BATCH_ENTITIES: usize = 1000;
/// `registered_models.name` is `String(256)`.
pub const MAX_REGISTERED_MODEL_NAME_LENGTH: usize = 256;
/// `registered_models.description` and `model_versions.description` are `String(5000)`.
pub const MAX_DESCRIPTION_LENGTH: usize = 5000;
/// `MAX_RUNS_GET_METRIC_HISTORY_BULK` (`handlers.py`).
pub const MAX_RUNS_GET_METRIC_HISTORY_BULK: usize = 100;
/// Ours: experiment ids one search may name (MLflow has no limit; past about 32,000 the
/// query no longer fits SQLite's bound-parameter limit).
pub const MAX_SEARCH_EXPERIMENT_IDS: usize = 10_000;
/// Ours: `order_by` clauses one search may have (each sorts through one more join; SQLite
/// refuses a query past 200 joined tables).
pub const MAX_ORDER_BY_CLAUSES: usize = 50;

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidParameter(msg)
}

/// `invalid_value(path, value, message)`.
fn invalid_value(path: &str, value: &str, message: &str) -> StoreError {
    invalid(format!("Invalid value {} for parameter '{path}' supplied: {message}", pyjson::dumps_str(value)))
}

/// `exceeds_maximum_length(path, limit)`: the message of every length limit.
pub fn length(path: &str, value: &str, limit: usize) -> Result<()> {
    if value.chars().count() > limit {
        return Err(invalid(format!("'{path}' exceeds the maximum length of {limit} characters")));
    }
    Ok(())
}

/// Python's `posixpath.normpath`.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." if initial == 0 && (parts.is_empty() || parts.last() == Some(&"..")) => parts.push(".."),
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let joined = format!("{}{}", "/".repeat(initial), parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// `path_not_unique`: the name would mean another name as a file path.
fn resolves_elsewhere(name: &str) -> bool {
    let norm = normpath(name);
    norm != name || norm == "." || norm.starts_with("..") || norm.starts_with('/')
}

/// Metric, param and tag names (`_validate_metric_name`, `_validate_param_name`,
/// `_validate_tag_name`, then the length): `[/\w.\- :]` characters, not resolving to another
/// name as a file path, at most 250 characters. `kind` is `metric`, `param`, `tag` or `model`.
pub fn key(kind: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(format!("Missing value for required parameter '{kind} key'")));
    }
    let path = if kind == "metric" { "name" } else { "key" };
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':')) {
        return Err(invalid_value(
            path,
            name,
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), \
             colon(:) and slashes (/).",
        ));
    }
    if resolves_elsewhere(name) {
        let message = format!(
            "Names may be treated as files in certain cases, and must not resolve to other names when treated as \
             such. This name would resolve to '{}'",
            normpath(name)
        );
        return Err(invalid_value(path, name, &message));
    }
    let entity = match kind {
        "metric" => "Metric name",
        "param" => "Param key",
        _ => "key",
    };
    length(entity, name, MAX_ENTITY_KEY_LENGTH)
}

/// A value's length (`_validate_length_limit`): `kind` `Param` names it `Param value`, any
/// other kind `value`, as MLflow's messages do. `key` is the value's key (unused by MLflow).
pub fn value_length(kind: &str, _key: &str, value: &str, limit: usize) -> Result<()> {
    length(if kind == "Param" { "Param value" } else { "value" }, value, limit)
}

/// `_validate_length_limit(entity, limit, value, truncate=True)`: `value`, or with `truncate`
/// (MLflow's `MLFLOW_TRUNCATE_LONG_VALUES`) its first `limit` characters (Python's
/// `value[:limit]`, code points) when it is longer; without, a longer value is refused.
pub fn truncated<'a>(entity: &str, value: &'a str, limit: usize, truncate: bool) -> Result<&'a str> {
    if !truncate {
        length(entity, value, limit)?;
        return Ok(value);
    }
    Ok(value.char_indices().nth(limit).map_or(value, |(cut, _)| &value[..cut]))
}

/// `_validate_param`: the key checked, the value truncated to 6000 characters (or refused).
pub fn run_param<'a>(key_: &str, value: &'a str, truncate: bool) -> Result<&'a str> {
    key("param", key_)?;
    truncated("Param value", value, MAX_PARAM_VAL_LENGTH, truncate)
}

/// `_validate_tag(key, value, path)`: the key checked, the value truncated to 8000 characters
/// (or refused as `'<path>.value'`, e.g. `'tags[3].value'` in a batch).
pub fn run_tag<'a>(key_: &str, value: &'a str, path: &str, truncate: bool) -> Result<&'a str> {
    key("tag", key_)?;
    let entity = if path.is_empty() { "value".to_string() } else { format!("{path}.value") };
    truncated(&entity, value, MAX_TAG_VAL_LENGTH, truncate)
}

/// A param where long values are always refused (logged models): [`run_param`] without truncation.
pub fn param(key_: &str, value: &str) -> Result<()> {
    run_param(key_, value, false).map(drop)
}

/// A tag where long values are always refused (logged models, dataset inputs): [`run_tag`]
/// without truncation.
pub fn tag(key_: &str, value: &str) -> Result<()> {
    run_tag(key_, value, "", false).map(drop)
}

/// `_validate_experiment_tag`.
pub fn experiment_tag(key_: &str, value: &str) -> Result<()> {
    key("tag", key_)?;
    length("key", key_, MAX_EXPERIMENT_TAG_KEY_LENGTH)?;
    length("value", value, MAX_EXPERIMENT_TAG_VAL_LENGTH)
}

/// `_validate_registered_model_tag` / `_validate_model_version_tag`.
pub fn registry_tag(key_: &str, value: &str) -> Result<()> {
    key("tag", key_)?;
    length("key", key_, MAX_MODEL_REGISTRY_TAG_KEY_LENGTH)?;
    length("value", value, MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH)
}

/// A run's name as `run_name` (`runs/create`, `runs/update`). Ours: MLflow checks none (its
/// SQLite column takes any length; on PostgreSQL over 250 characters fails in the database);
/// the name is also its `mlflow.runName` tag, so it is held to a tag value's limit.
pub fn run_name(name: &str) -> Result<()> {
    length("run_name", name, MAX_TAG_VAL_LENGTH)
}

/// A registered model's name (`_validate_model_name` is in `registry/mod.rs`; this is its column).
pub fn registered_model_name(name: &str) -> Result<()> {
    length("name", name, MAX_REGISTERED_MODEL_NAME_LENGTH)
}

/// A registered model's or model version's description.
pub fn description(description: &str) -> Result<()> {
    length("description", description, MAX_DESCRIPTION_LENGTH)
}

/// `_validate_param_keys_unique`: every key after its first use is named, as Python's
/// `repr` of a list (keys are `[/\w.\- :]`, so no quote needs escaping).
pub fn unique_param_keys(params: &[crate::model::KeyValue]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let dupes: Vec<String> =
        params.iter().filter(|p| !seen.insert(p.key.as_str())).map(|p| format!("'{}'", p.key)).collect();
    if dupes.is_empty() {
        return Ok(());
    }
    Err(invalid(format!(
        "Duplicate parameter keys have been submitted: [{}]. Please ensure the request contains only one param \
         value per param key.",
        dupes.join(", ")
    )))
}

/// `_validate_batch_log_limits`.
pub fn batch_sizes(metrics: usize, params: usize, tags: usize) -> Result<()> {
    let checks = [
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
        ("metrics, params, and tags", metrics + params + tags, MAX_BATCH_ENTITIES),
    ];
    for (what, n, limit) in checks {
        if n > limit {
            return Err(invalid(format!(
                "A batch logging request can contain at most {limit} {what}. Got {n} {what}. \
                 Please split up {what} across multiple requests and try again."
            )));
        }
    }
    Ok(())
}

/// `_validate_experiment_name` (a blank name is refused too).
pub fn experiment_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid(format!("Invalid experiment name: '{name}'")));
    }
    length("name", name, MAX_EXPERIMENT_NAME_LENGTH)
}

/// The run ids of one `metrics/get-history-bulk-interval` request.
pub fn bulk_run_ids(n: usize) -> Result<()> {
    if n > MAX_RUNS_GET_METRIC_HISTORY_BULK {
        return Err(invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_GET_METRIC_HISTORY_BULK} run_ids. \
             Received {n} run_ids. See the API docs for more information about request parameters."
        )));
    }
    Ok(())
}

/// What one search may name: experiment ids and `order_by` clauses (filters are bounded by
/// [`crate::search::parse_filter`]).
pub fn search(experiment_ids: usize, order_by: usize) -> Result<()> {
    if experiment_ids > MAX_SEARCH_EXPERIMENT_IDS {
        return Err(invalid(format!(
            "A search can name at most {MAX_SEARCH_EXPERIMENT_IDS} experiment_ids. Got {experiment_ids}; \
             split the search into several."
        )));
    }
    if order_by > MAX_ORDER_BY_CLAUSES {
        return Err(invalid(format!(
            "A search can have at most {MAX_ORDER_BY_CLAUSES} order_by clauses. Got {order_by}."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_key(name: &str, ok: bool) {
        assert_eq!(key("metric", name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn keys() {
        for good in ["loss", "a/b", "val loss", "m:1", "x-y.z", "ünïcode"] {
            check_key(good, true);
        }
        let long = "a".repeat(251);
        for bad in ["", "..", "../x", "a/../b", "/abs", "a//b", "a/", ".", "a;b", "a\\b", "a\0", &long] {
            check_key(bad, false);
        }
    }

    fn message(r: Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    /// The messages MLflow 3.17.2 gives (`validation.py`).
    #[test]
    fn mlflows_messages() {
        assert_eq!(
            message(key("param", "a;b")),
            "Invalid value \"a;b\" for parameter 'key' supplied: Names may only contain alphanumerics, underscores \
             (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        );
        assert_eq!(
            message(key("metric", "a/../b")),
            "Invalid value \"a/../b\" for parameter 'name' supplied: Names may be treated as files in certain cases, \
             and must not resolve to other names when treated as such. This name would resolve to 'b'"
        );
        assert_eq!(message(key("param", &"k".repeat(251))), "'Param key' exceeds the maximum length of 250 characters");
        assert_eq!(
            message(param("p", &"x".repeat(6001))),
            "'Param value' exceeds the maximum length of 6000 characters"
        );
        assert_eq!(message(tag("t", &"x".repeat(8001))), "'value' exceeds the maximum length of 8000 characters");
        assert_eq!(message(experiment_name(&"e".repeat(501))), "'name' exceeds the maximum length of 500 characters");
        assert!(message(key("param", "ü;")).contains("\"\\u00fc;\""));
    }

    #[test]
    fn limits() {
        assert!(param("p", &"x".repeat(6000)).is_ok());
        assert!(param("p", &"x".repeat(6001)).is_err());
        assert!(tag("t", &"x".repeat(8000)).is_ok());
        assert!(experiment_tag("t", &"x".repeat(20_000)).is_ok());
        assert!(experiment_tag("t", &"x".repeat(20_001)).is_err());
        assert!(registry_tag("t", &"x".repeat(100_000)).is_ok());
        assert!(registry_tag("t", &"x".repeat(100_001)).is_err());
        assert!(run_name(&"r".repeat(8000)).is_ok() && run_name(&"r".repeat(8001)).is_err());
        assert!(description(&"d".repeat(5000)).is_ok() && description(&"d".repeat(5001)).is_err());
        assert!(batch_sizes(1000, 0, 0).is_ok());
        assert!(batch_sizes(1001, 0, 0).is_err());
        let total = message(batch_sizes(900, 100, 1));
        assert!(total.contains("at most 1000 metrics, params, and tags. Got 1001"), "{total}");
        assert!(bulk_run_ids(100).is_ok() && bulk_run_ids(101).is_err());
        assert!(search(10_000, 50).is_ok());
        assert!(search(10_001, 0).is_err() && search(1, 51).is_err());
    }

    /// `_validate_length_limit(..., truncate=True)`: cut to the limit in characters, or refused
    /// with MLflow's message when `MLFLOW_TRUNCATE_LONG_VALUES` is off.
    #[test]
    fn truncation() {
        let check = |value: &str, truncate: bool, want: std::result::Result<&str, &str>| {
            let got = truncated("Param value", value, 3, truncate).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{value:?} {truncate}");
        };
        check("abc", true, Ok("abc"));
        check("abcd", true, Ok("abc"));
        check("éüöä", true, Ok("éüö"));
        check("abc", false, Ok("abc"));
        check("abcd", false, Err("'Param value' exceeds the maximum length of 3 characters"));
        assert_eq!(run_param("p", &"é".repeat(7000), true).unwrap().chars().count(), 6000);
        assert_eq!(run_tag("t", &"x".repeat(9000), "", true).unwrap().len(), 8000);
        assert_eq!(
            message(run_tag("t", &"x".repeat(8001), "tags[2]", false).map(|_| ())),
            "'tags[2].value' exceeds the maximum length of 8000 characters"
        );
        assert!(run_tag("a;b", "v", "", true).is_err());
    }

    /// `_validate_param_keys_unique`: equal values too; each repeat named once more.
    #[test]
    fn duplicate_param_keys() {
        let kv = |k: &str, v: &str| crate::model::KeyValue::new(k, v);
        assert!(unique_param_keys(&[kv("a", "1"), kv("b", "1")]).is_ok());
        assert_eq!(
            message(unique_param_keys(&[kv("d", "1"), kv("e", "1"), kv("d", "1"), kv("d", "2")])),
            "Duplicate parameter keys have been submitted: ['d', 'd']. Please ensure the request contains only one \
             param value per param key."
        );
    }

    #[test]
    fn normpath_like_python() {
        for (raw, want) in [
            ("a/../b", "b"),
            ("a//b", "a/b"),
            ("/a/./b/", "/a/b"),
            ("../x", "../x"),
            ("", "."),
            ("//a", "//a"),
            ("///a", "/a"),
        ] {
            assert_eq!(normpath(raw), want, "{raw}");
        }
    }
}
