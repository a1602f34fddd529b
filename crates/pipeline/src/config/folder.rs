//! The pipeline folder, re-read when its files change; a file that stops parsing keeps its
//! last good version running.

use super::{parse, Overrides, Pipeline, Revision};
use crate::PipelineError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file's content as last seen, and what became of it.
#[derive(Debug, Clone)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
}

/// The pipelines of a folder, reloaded when their files change. A file that fails to
/// parse keeps its last good version running and is reported once per change.
#[derive(Debug, Default)]
pub struct Folder {
    dir: PathBuf,
    overrides: Overrides,
    /// The git commit `dir` holds, given to every pipeline read from it.
    revision: Option<Revision>,
    seen: BTreeMap<PathBuf, Seen>,
    /// Last good pipeline per name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Problems found by the last [`Folder::refresh`], one line per file.
    pub errors: Vec<String>,
}

impl Folder {
    pub fn new(dir: PathBuf, overrides: Overrides) -> Folder {
        Folder { dir, overrides, ..Folder::default() }
    }

    /// Reads from `dir` (a new git commit's checkout) from now on: every file is read again
    /// at the next refresh, and what parses carries `revision`.
    pub fn switch(&mut self, dir: PathBuf, revision: Option<Revision>) {
        self.dir = dir;
        self.revision = revision;
        self.seen.clear();
    }

    /// Commits the loaded pipelines were read at (their checkouts must stay).
    pub fn commits(&self) -> Vec<&str> {
        self.pipelines.values().filter_map(|p| p.revision.as_ref().map(|r| r.commit.as_str())).collect()
    }

    /// Re-reads changed `*.toml` files; returns the names of pipelines added, changed or removed.
    pub fn refresh(&mut self) -> Result<Vec<String>, PipelineError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|source| PipelineError::Io { path: self.dir.clone(), source })?;
        let mut present = Vec::new();
        let mut changed = Vec::new();
        self.errors.clear();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
            present.push(name.clone());
            let meta = entry.metadata().ok();
            let seen =
                Seen { modified: meta.as_ref().and_then(|m| m.modified().ok()), len: meta.map_or(0, |m| m.len()) };
            if self.seen.get(&path).is_some_and(|s| s.modified == seen.modified && s.len == seen.len) {
                continue;
            }
            self.seen.insert(path.clone(), seen);
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse(&name, &text, &self.dir, &self.overrides));
            match parsed {
                Ok(mut p) => {
                    p.source = Some(path.clone());
                    p.revision = self.revision.clone();
                    let commit = self.revision.as_ref().map(|r| r.commit.as_str()).unwrap_or("-");
                    tracing::info!(pipeline = %name, file = %path.display(), commit = %commit, "pipeline loaded");
                    self.pipelines.insert(name.clone(), p);
                    changed.push(name);
                }
                Err(e) => {
                    let kept =
                        if self.pipelines.contains_key(&name) { "; the last good version keeps running" } else { "" };
                    let at = self.revision.as_ref().map(|r| format!(" (commit {})", r.commit)).unwrap_or_default();
                    let msg = format!("{}{at}: {e}{kept}", path.display());
                    tracing::error!("invalid pipeline file {msg}");
                    self.errors.push(msg);
                }
            }
        }
        let gone: Vec<String> = self.pipelines.keys().filter(|k| !present.contains(k)).cloned().collect();
        for name in gone {
            tracing::info!(pipeline = %name, "pipeline file removed");
            self.pipelines.remove(&name);
            self.seen.retain(|p, _| p.file_stem().and_then(|s| s.to_str()) != Some(name.as_str()));
            changed.push(name);
        }
        Ok(changed)
    }
}

/// Loads a folder once (for `--once` and tests).
pub fn load_dir(dir: &Path, overrides: &Overrides) -> Result<Folder, PipelineError> {
    let mut folder = Folder::new(dir.to_path_buf(), overrides.clone());
    folder.refresh()?;
    Ok(folder)
}
