//! Artifact paths and the other client-given names that become paths: an accepted artifact
//! path never leaves its root, however it is percent-encoded; an experiment's
//! `artifact_location` and metric, param and tag keys are accepted or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

/// Every level of percent-decoding of `p` stays under a root it is joined to.
fn stays_under_root(p: &str) -> bool {
    let mut levels = vec![p.to_string()];
    for _ in 0..8 {
        let last = levels.last().expect("one level");
        let next = percent_decode(last);
        if &next == last {
            break;
        }
        levels.push(next);
    }
    levels.iter().all(|t| {
        let mut depth = 0i64;
        !t.contains('\\')
            && Path::new(t).components().all(|c| match c {
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
            })
    })
}

/// `%XX` → the byte, lossy UTF-8 (what a store or a file system might do with the name).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(path) = mlflow_api::artifact_path::safe_path(text) {
        assert!(stays_under_root(path.as_ref()), "{text:?} -> {path}");
        assert!(stays_under_root(text), "{text:?} accepted");
    }
    let _ = mlflow_api::artifacts::check_artifact_location(text);
    for kind in ["metric", "param", "tag"] {
        if tracking::validate::key(kind, text).is_ok() {
            assert!(stays_under_root(text), "{kind} key {text:?} accepted");
        }
    }
});
