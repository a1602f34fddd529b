//! `cargo run -p xtask -- check [WORKSPACE]`: prints every broken ARCHITECTURE.md invariant
//! (see the library) of this workspace, or of the one at `WORKSPACE`, and exits 1 when there
//! is one.

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_else(|| "check".into());
    anyhow::ensure!(task == "check", "unknown task '{task}'; the one task is `check`");
    let root = match std::env::args().nth(2) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let ws = xtask::Workspace::load(&root).context("reading the workspace")?;
    let violations = xtask::check(&ws);
    for v in &violations {
        println!("{v}");
    }
    println!("{} crates checked, {} violations", ws.crates.len(), violations.len());
    if !violations.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
