//! Request ids: every scoring request has one — the caller's (`X-Request-Id`, the V2 `id`, gRPC
//! `id` or `x-request-id` metadata) or one made here — returned with the answer and written
//! with each row to the request log, so that labels arriving later join the predictions they
//! judge (`factory drift --labels`). A request of several rows logs `<id>:<row>` (0-based) per
//! row, so every logged row has its own key.
//!
//! A caller's id is any text of 1 to 128 characters without control characters (the V2
//! protocol allows any string; an empty one counts as none). The logs quote it as their format
//! needs (JSON string, CSV field). Row keys of different requests can only collide when a
//! caller's own ids do (`a:0` alone and `a` with several rows), which the labels join reports.

use crate::ServeError;

/// The HTTP header (and gRPC metadata key) carrying the id both ways.
pub const HEADER: &str = "x-request-id";
pub const MAX_LEN: usize = 128;

/// The caller's id, checked; `what` names where it came from in the error.
pub fn checked(id: &str, what: &str) -> Result<String, ServeError> {
    if id.chars().count() > MAX_LEN || id.chars().any(char::is_control) {
        return Err(ServeError::Invalid(format!(
            "{what} {:?} is not a request id: at most {MAX_LEN} characters, none of them control characters",
            crate::error::shown(id, 40)
        )));
    }
    Ok(id.to_string())
}

/// A new id (a random UUID, 32 hex digits).
pub fn generate() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The first non-empty id given (each checked, named by its source), else a new one.
pub fn resolve(given: &[(Option<&str>, &str)]) -> Result<String, ServeError> {
    for (id, what) in given {
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            return checked(id, what);
        }
    }
    Ok(generate())
}

/// The key of row `row` of a request of `rows` rows in the request log.
pub fn row_key(id: &str, row: usize, rows: usize) -> String {
    if rows == 1 {
        id.to_string()
    } else {
        format!("{id}:{row}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_checked_and_missing_ones_made() {
        assert_eq!(resolve(&[(None, "a"), (Some("abc-123:x/y@z"), "X-Request-Id")]).unwrap(), "abc-123:x/y@z");
        assert_eq!(resolve(&[(Some("body"), "V2 id"), (Some("header"), "X-Request-Id")]).unwrap(), "body");
        assert_eq!(
            resolve(&[(Some(""), "V2 id"), (Some("header"), "X-Request-Id")]).unwrap(),
            "header",
            "empty is none"
        );
        assert_eq!(resolve(&[(Some("a b, \"c\" é"), "V2 id")]).unwrap(), "a b, \"c\" é", "any text");
        let made = resolve(&[(None, "V2 id")]).unwrap();
        assert_eq!(made.len(), 32);
        assert_ne!(made, generate());
        for bad in ["x\n", "a\u{0}b", &"a".repeat(129)] {
            let e = checked(bad, "X-Request-Id").unwrap_err().to_string();
            assert!(e.starts_with("X-Request-Id") && e.contains("at most 128 characters"), "{e}");
        }
        assert!(checked(&"é".repeat(128), "id").is_ok());
        assert_eq!((row_key("r", 0, 1), row_key("r", 2, 3)), ("r".to_string(), "r:2".to_string()));
    }
}
