//! The artifact path check ([`safe_path`]) that both the artifact proxy (`artifacts`) and
//! its permission rule (`access`, which judges the path's experiment and run) go through, so
//! the two always read a path the same way.

use crate::error::{ApiError, ApiResult};
use object_store::path::Path;
use percent_encoding::percent_decode_str;

/// Checks an artifact path and turns it into a store path. Refuses absolute paths, `..` and
/// `.` segments (also when percent-encoded, once or repeatedly), empty segments, backslashes,
/// NUL, `#` and `?`, and Windows drive letters.
///
/// `raw` is the path as the router decoded it (once) and is what gets stored: a file may be
/// called `a%20b.txt`. The further decoding only serves the traversal checks.
pub fn safe_path(raw: &str) -> ApiResult<Path> {
    let bad = |why: &str| ApiError::invalid(format!("Invalid artifact path '{raw}': {why}"));
    check_decoded(raw, &bad)?;
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(Path::default());
    }
    Path::parse(trimmed).map_err(|e| bad(&e.to_string()))
}

fn check_decoded(raw: &str, bad: &dyn Fn(&str) -> ApiError) -> ApiResult<()> {
    let mut decoded = raw.to_string();
    for _ in 0..4 {
        let next = percent_decode_str(&decoded).decode_utf8().map_err(|_| bad("not valid UTF-8"))?.into_owned();
        if next == decoded {
            break;
        }
        decoded = next;
    }
    if decoded.contains('%') && percent_decode_str(&decoded).decode_utf8().map(|d| d != decoded).unwrap_or(true) {
        return Err(bad("too many levels of percent-encoding"));
    }
    if decoded.starts_with('/') || decoded.starts_with('~') {
        return Err(bad("absolute paths are not allowed"));
    }
    if let Some(c) = decoded.chars().find(|c| matches!(c, '\\' | '\0' | '#' | '?') || c.is_control()) {
        return Err(bad(&format!("character {c:?} is not allowed")));
    }
    let trimmed = decoded.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad("'.', '..' and empty path segments are not allowed"));
        }
    }
    if trimmed.len() >= 2 && trimmed.as_bytes()[1] == b':' && trimmed.as_bytes()[0].is_ascii_alphabetic() {
        return Err(bad("drive letters are not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, ok: bool) {
        assert_eq!(safe_path(raw).is_ok(), ok, "{raw}");
    }

    #[test]
    fn names_are_kept_as_given() {
        assert_eq!(safe_path("d/a%20b+c.txt").unwrap().as_ref(), "d/a%20b+c.txt");
        assert_eq!(safe_path("d/x/").unwrap().as_ref(), "d/x");
    }

    #[test]
    fn traversal_is_refused() {
        for good in ["0/abc/artifacts/model/MLmodel", "a b/c.txt", "x/", "", "dir/file.tar.gz", "ünï/çødé"] {
            check(good, true);
        }
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "a/%2e%2e/b",
            "a/%252e%252e/b",
            "%2E%2E/x",
            "a//b",
            "a/./b",
            "a\\..\\b",
            "a#frag",
            "a%23frag",
            "a?x=1",
            "a%3Fx",
            "C:/windows",
            "a\0b",
            "~/x",
            "a/%25252e%25252e%25252f%25252e%25252e/b",
        ] {
            check(bad, false);
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::path::Component;

        /// The path, read as a file system path under a root, with every level of
        /// percent-encoding removed, stays under the root.
        fn stays_under_root(p: &str) -> bool {
            let mut text = p.to_string();
            for _ in 0..8 {
                text = percent_decode_str(&text).decode_utf8_lossy().into_owned();
            }
            [p, text.as_str()].iter().all(|t| {
                let mut depth = 0i64;
                std::path::Path::new(t).components().all(|c| match c {
                    Component::Normal(_) => {
                        depth += 1;
                        true
                    }
                    Component::CurDir => true,
                    Component::ParentDir => {
                        depth -= 1;
                        depth >= 0
                    }
                    Component::RootDir | Component::Prefix(_) => false,
                }) && !t.contains('\\')
            })
        }

        /// Segments that try to climb out, in every spelling, and ordinary ones.
        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("..".to_string()),
                Just(".".to_string()),
                Just(String::new()),
                Just("%2e%2e".to_string()),
                Just("%2E.".to_string()),
                Just("%252e%252e".to_string()),
                Just("%25252e%25252e".to_string()),
                Just("..%2f..".to_string()),
                Just("..%5c..".to_string()),
                Just("..\\..".to_string()),
                Just("%00".to_string()),
                Just("C:".to_string()),
                Just("~".to_string()),
                Just("%".to_string()),
                Just("%%32%65".to_string()),
                "[a-zA-Z0-9_. -]{1,8}",
                "\\PC{1,6}",
            ]
        }

        proptest! {
            #[test]
            fn any_text_is_a_path_under_the_root_or_refused(raw in "\\PC{0,80}") {
                if let Ok(p) = safe_path(&raw) {
                    prop_assert!(stays_under_root(p.as_ref()), "{raw:?} -> {p}");
                }
            }

            #[test]
            fn traversal_spellings_never_escape(segs in prop::collection::vec(segment(), 1..6), lead in any::<bool>()) {
                let raw = format!("{}{}", if lead { "/" } else { "" }, segs.join("/"));
                if let Ok(p) = safe_path(&raw) {
                    prop_assert!(stays_under_root(p.as_ref()), "{raw:?} -> {p}");
                    prop_assert!(stays_under_root(&raw), "{raw:?}");
                }
            }

            /// Ordinary names are accepted and kept as given.
            #[test]
            fn plain_names_are_kept(segs in prop::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9_. -]{0,10}", 1..5)) {
                let raw = segs.join("/");
                prop_assume!(!segs.iter().any(|s| s == "." || s == ".."));
                prop_assert_eq!(safe_path(&raw).map(|p| p.as_ref().to_string()).ok(), Some(raw.clone()));
            }
        }
    }
}
