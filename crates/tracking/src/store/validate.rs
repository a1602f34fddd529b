//! Input limits and name rules, as MLflow's `mlflow/utils/validation.py` applies them.

use crate::error::{Result, StoreError};

pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 5000;
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_ENTITIES: usize = 1000;

fn invalid(msg: String) -> StoreError {
    StoreError::InvalidParameter(msg)
}

/// Metric, param and tag names: `[/\w.\- :]` characters, at most 250 of them, and they must
/// not resolve to another name when treated as a file path (no `..`, no leading `/`).
pub fn key(kind: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(format!("Missing value for required parameter '{kind} key'")));
    }
    if name.chars().count() > MAX_ENTITY_KEY_LENGTH {
        return Err(invalid(format!(
            "{kind} name '{}...' had length {}, which exceeded length limit of {MAX_ENTITY_KEY_LENGTH}",
            name.chars().take(20).collect::<String>(),
            name.chars().count()
        )));
    }
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':')) {
        return Err(invalid(format!(
            "Invalid {kind} name: '{name}'. Names may only contain alphanumerics, underscores (_), \
             dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    if resolves_elsewhere(name) {
        return Err(invalid(format!(
            "Invalid {kind} name: '{name}'. Names may be treated as files in certain cases, and must \
             not resolve to other names when treated as such."
        )));
    }
    Ok(())
}

/// POSIX `normpath(name) != name`, or it is `.`, or it climbs out, or it is absolute.
fn resolves_elsewhere(name: &str) -> bool {
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return true;
    }
    name.split('/').any(|seg| seg == "." || seg == "..")
}

pub fn value_length(kind: &str, key: &str, value: &str, limit: usize) -> Result<()> {
    let len = value.chars().count();
    if len > limit {
        return Err(invalid(format!(
            "{kind} value '{}...' had length {len}, which exceeded length limit of {limit} (key '{key}')",
            value.chars().take(20).collect::<String>()
        )));
    }
    Ok(())
}

pub fn param(key_: &str, value: &str) -> Result<()> {
    key("param", key_)?;
    value_length("Param", key_, value, MAX_PARAM_VAL_LENGTH)
}

pub fn tag(key_: &str, value: &str) -> Result<()> {
    key("tag", key_)?;
    value_length("Tag", key_, value, MAX_TAG_VAL_LENGTH)
}

pub fn batch_sizes(metrics: usize, params: usize, tags: usize) -> Result<()> {
    let checks = [
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
        ("total entities", metrics + params + tags, MAX_BATCH_ENTITIES),
    ];
    for (what, n, limit) in checks {
        if n > limit {
            return Err(invalid(format!(
                "A batch logging request can contain at most {limit} {what}. Got {n} {what}. \
                 Please split up the request into multiple requests."
            )));
        }
    }
    Ok(())
}

pub fn experiment_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(invalid("Invalid experiment name: ''. Experiment name must be a non-empty string.".into()));
    }
    if name.chars().count() > 500 {
        return Err(invalid(format!(
            "Experiment name had length {}, which exceeded length limit of 500",
            name.chars().count()
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

    #[test]
    fn limits() {
        assert!(param("p", &"x".repeat(6000)).is_ok());
        assert!(param("p", &"x".repeat(6001)).is_err());
        assert!(tag("t", &"x".repeat(8001)).is_err());
        assert!(batch_sizes(1000, 0, 0).is_ok());
        assert!(batch_sizes(1001, 0, 0).is_err());
        assert!(batch_sizes(900, 100, 1).is_err());
    }
}
