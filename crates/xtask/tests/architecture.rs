//! ARCHITECTURE.md holds for this workspace: the rules of `xtask::rules`, on the real
//! dependency graph and sources.

#[test]
fn the_workspace_keeps_its_architecture() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ws = xtask::Workspace::load(&root).expect("reading the workspace");
    assert!(ws.crates.len() >= 13, "only {} crates found", ws.crates.len());
    let violations = xtask::check(&ws);
    let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "ARCHITECTURE.md is broken:\n{}", report.join("\n"));
}
