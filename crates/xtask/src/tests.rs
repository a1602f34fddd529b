//! The checker fails on purpose: each rule on a small synthetic workspace, broken and fixed.

use super::*;

fn krate(name: &str, deps: &[&str], sources: &[(&str, &str)]) -> Crate {
    Crate {
        name: name.into(),
        binary: rules::BINARIES.contains(&name),
        deps: deps.iter().map(|d| d.to_string()).collect(),
        sources: sources.iter().map(|(p, t)| Source { path: p.to_string(), text: t.to_string() }).collect(),
    }
}

/// A workspace of `crates`; the graph is their direct dependencies plus `extra` edges.
fn workspace(crates: Vec<Crate>, extra: &[(&str, &[&str])]) -> Workspace {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in &crates {
        graph.entry(c.name.clone()).or_default().extend(c.deps.iter().cloned());
    }
    for (from, to) in extra {
        graph.entry(from.to_string()).or_default().extend(to.iter().map(|t| t.to_string()));
    }
    Workspace { crates, graph }
}

/// Checks `ws` and compares the rules and places reported with `expect`.
fn check_ws(ws: &Workspace, expect: &[(&str, &str)]) {
    let got = check(ws);
    let got_keys: Vec<(&str, &str)> = got.iter().map(|v| (v.rule, v.place.as_str())).collect();
    assert_eq!(got_keys, expect, "{got:#?}");
}

#[test]
fn a_clean_workspace_passes() {
    let ws = workspace(
        vec![
            krate(
                "learn",
                &["serde"],
                &[("lib.rs", "mod frame; pub use frame::Frame;"), ("frame.rs", "pub struct Frame;")],
            ),
            krate("factory", &["clap", "learn"], &[("main.rs", "fn main() { let _ = std::env::var(\"X\"); }")]),
        ],
        &[],
    );
    check_ws(&ws, &[]);
}

#[test]
fn a_core_crate_linking_a_protocol_stack_fails_and_names_the_chain() {
    let ws = workspace(vec![krate("tracking", &["sqlx"], &[])], &[("sqlx", &["hyper"])]);
    let v = check(&ws);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "core");
    assert!(v[0].what.contains("tracking → sqlx → hyper"), "{}", v[0]);
}

#[test]
fn a_forbidden_edge_between_crates_fails() {
    let ws = workspace(
        vec![
            krate("pipeline", &["mlflow-client"], &[]),
            krate("mlflow-client", &["tracking"], &[]),
            krate("tracking", &[], &[]),
        ],
        &[],
    );
    let v = check(&ws);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].rule, v[0].place.as_str()), ("independent", "pipeline"));
    assert!(v[0].what.contains("pipeline → mlflow-client → tracking"), "{}", v[0]);
}

#[test]
fn libraries_must_not_parse_flags() {
    let ws = workspace(vec![krate("drift", &["clap"], &[])], &[]);
    check_ws(&ws, &[("environment", "drift")]);
}

#[test]
fn environment_reads_outside_the_binary_fail() {
    for text in [
        "fn f() { std::env::var(\"TOKEN\").ok(); }",
        "use std::env;\nfn f() { env::var_os(\"HOME\"); }",
        "use std::env::var;",
        "fn f() -> &'static str { env!(\"HOME\") }",
        "#[derive(clap::Args)] struct A { #[arg(long, env = \"TOKEN\")] t: String }",
    ] {
        let ws = workspace(vec![krate("pipeline", &[], &[("webhook.rs", text)])], &[]);
        check_ws(&ws, &[("environment", "crates/pipeline/src/webhook.rs")]);
    }
    for allowed in [
        "const V: &str = env!(\"CARGO_PKG_VERSION\");",
        "fn f() { std::env::temp_dir(); }",
        "#[cfg(test)] mod tests { fn f() { std::env::var(\"X\").ok(); } }",
    ] {
        let ws = workspace(vec![krate("pipeline", &[], &[("webhook.rs", allowed)])], &[]);
        check_ws(&ws, &[]);
    }
}

#[test]
fn auth_may_use_only_the_backend_uri_parser_of_tracking() {
    let ok = "use tracking::{parse_backend_uri, Dialect};";
    let ws = workspace(vec![krate("auth", &["tracking"], &[("store.rs", ok)])], &[]);
    check_ws(&ws, &[]);
    let bad = "fn f(r: tracking::Run) {}";
    let ws = workspace(vec![krate("auth", &["tracking"], &[("store.rs", bad)])], &[]);
    check_ws(&ws, &[("imports", "crates/auth/src/store.rs")]);
}

#[test]
fn learn_does_no_io_of_its_own() {
    let ws = workspace(vec![krate("learn", &[], &[("read.rs", "use std::fs::File;")])], &[]);
    check_ws(&ws, &[("imports", "crates/learn/src/read.rs")]);
}

#[test]
fn module_cycles_fail_and_downward_imports_pass() {
    let lib = "mod error; mod frame; mod gbm;";
    let circle = [
        ("lib.rs", lib),
        ("error.rs", "use crate::frame::ColumnKind;"),
        ("frame.rs", "use crate::error::LearnError;"),
        ("gbm/mod.rs", "mod grow; use crate::frame::Frame;"),
        ("gbm/grow.rs", "use super::super::error::LearnError; use super::Tree;"),
    ];
    let ws = workspace(vec![krate("learn", &[], &circle)], &[]);
    let v = check(&ws);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].what.ends_with("error ↔ frame"), "{}", v[0]);

    let fixed =
        [("lib.rs", lib), ("error.rs", ""), ("frame.rs", "use crate::error::LearnError;"), circle[3], circle[4]];
    check_ws(&workspace(vec![krate("learn", &[], &fixed)], &[]), &[]);
    // A test module importing "up" is no circle: test code is not architecture.
    let test_only = [("lib.rs", lib), ("error.rs", "#[cfg(test)] mod tests { use crate::frame::Frame; }"), fixed[2]];
    check_ws(&workspace(vec![krate("learn", &[], &test_only)], &[]), &[]);
}

#[test]
fn module_paths_resolve_super_and_self() {
    let at = |p: &str| module_path(p);
    let s = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(target_module(&at("gbm/grow.rs"), &s("super::tree::Tree")), Some("gbm".into()));
    assert_eq!(target_module(&at("gbm/grow.rs"), &s("super::super::frame::Frame")), Some("frame".into()));
    assert_eq!(target_module(&at("frame.rs"), &s("super::error::E")), Some("error".into()));
    assert_eq!(target_module(&at("gbm/mod.rs"), &s("self::grow::G")), Some("gbm".into()));
    assert_eq!(target_module(&at("frame.rs"), &s("crate::error::E")), Some("error".into()));
    assert_eq!(target_module(&at("frame.rs"), &s("std::fs::File")), None);
}
