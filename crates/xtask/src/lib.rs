//! Repository checks that keep ARCHITECTURE.md true: [`check`] reads the workspace (its
//! dependency graph from `cargo metadata`, its sources with `syn`) and reports every broken
//! invariant of [`rules`]:
//!
//! - core crates link no HTTP/gRPC stack ([`rules::CORE`], [`rules::PROTOCOL`]);
//! - crates named as independent link none of the crates they must not ([`rules::INDEPENDENT`]);
//! - a crate uses from another only what it may ([`rules::ALLOWED_IMPORTS`],
//!   [`rules::FORBIDDEN_PATHS`]);
//! - only binaries parse flags or read the environment (`std::env::var*`, `env!` of anything
//!   but Cargo's build metadata, clap's `env` attributes);
//! - no crate's top-level modules import each other in a circle.
//!
//! The checks run on a [`Workspace`] value, so unit tests feed them synthetic workspaces and
//! see each rule fail; `tests/architecture.rs` runs them on the real one. `cargo run -p xtask
//! -- check` prints the same report.

pub mod rules;
pub mod scan;

use anyhow::Context as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// One package of the workspace as the checks see it.
#[derive(Debug, Clone, Default)]
pub struct Crate {
    pub name: String,
    /// Whether the package is a binary (no library target, or named in [`rules::BINARIES`]).
    pub binary: bool,
    /// Direct normal dependencies, by package name (workspace and external alike).
    pub deps: Vec<String>,
    /// Library sources (paths relative to the crate's `src/`); binary targets' own files
    /// (`main.rs`, `bin/`) are left out of a library package.
    pub sources: Vec<Source>,
}

/// One source file.
#[derive(Debug, Clone)]
pub struct Source {
    /// Relative to the crate's `src/`, with `/` separators, e.g. `gbm/grow.rs`.
    pub path: String,
    pub text: String,
}

/// The packages of the workspace and of their dependency trees.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Workspace members.
    pub crates: Vec<Crate>,
    /// Normal dependencies of every package in the graph (members and external), by name.
    pub graph: BTreeMap<String, BTreeSet<String>>,
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    /// Where: a crate, or `crate/src/file.rs`.
    pub place: String,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.rule, self.place, self.what)
    }
}

impl Workspace {
    /// Reads the workspace at `root` (`cargo metadata` and every `.rs` file under each
    /// member's `src/`).
    pub fn load(root: &Path) -> anyhow::Result<Workspace> {
        let meta = cargo_metadata::MetadataCommand::new().current_dir(root).exec().context("running cargo metadata")?;
        let resolve = meta.resolve.as_ref().context("cargo metadata gave no dependency graph")?;
        let name_of: HashMap<&cargo_metadata::PackageId, &str> =
            meta.packages.iter().map(|p| (&p.id, p.name.as_str())).collect();
        let mut graph = BTreeMap::new();
        for node in &resolve.nodes {
            let normal = node
                .deps
                .iter()
                .filter(|d| d.dep_kinds.iter().any(|k| k.kind == cargo_metadata::DependencyKind::Normal))
                .map(|d| name_of[&d.pkg].to_string())
                .collect::<BTreeSet<_>>();
            graph.entry(name_of[&node.id].to_string()).or_insert_with(BTreeSet::new).extend(normal);
        }
        let mut crates = Vec::new();
        for p in meta.workspace_packages() {
            let has_lib = p.targets.iter().any(|t| t.is_lib());
            let binary = !has_lib || rules::BINARIES.contains(&p.name.as_str());
            let src = p.manifest_path.parent().context("manifest without a folder")?.join("src");
            let mut sources = Vec::new();
            for file in rust_files(src.as_std_path())? {
                let path = file.strip_prefix(src.as_std_path())?.to_string_lossy().replace('\\', "/");
                if !binary && (path == "main.rs" || path.starts_with("bin/")) {
                    continue;
                }
                let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                sources.push(Source { path, text });
            }
            let deps = graph.get(p.name.as_str()).map(|d| d.iter().cloned().collect()).unwrap_or_default();
            crates.push(Crate { name: p.name.to_string(), binary, deps, sources });
        }
        crates.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Workspace { crates, graph })
    }

    fn krate(&self, name: &str) -> Option<&Crate> {
        self.crates.iter().find(|c| c.name == name)
    }

    /// The dependency chain from `from` to `to` over normal dependencies, if `from` links `to`.
    pub fn chain(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            for dep in self.graph.get(at).into_iter().flatten() {
                if dep == from || parent.contains_key(dep.as_str()) {
                    continue;
                }
                parent.insert(dep, at);
                if dep == to {
                    let mut chain = vec![to.to_string()];
                    let mut cur = to;
                    while let Some(&p) = parent.get(cur) {
                        chain.push(p.to_string());
                        cur = p;
                    }
                    chain.reverse();
                    return Some(chain);
                }
                queue.push_back(dep);
            }
        }
        None
    }
}

fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every check; an empty list means ARCHITECTURE.md holds.
pub fn check(ws: &Workspace) -> Vec<Violation> {
    let mut out = Vec::new();
    check_dependencies(ws, &mut out);
    for krate in &ws.crates {
        let scanned: Vec<(&Source, scan::Uses)> = krate
            .sources
            .iter()
            .filter_map(|s| match scan::scan(&s.text) {
                Ok(uses) => Some((s, uses)),
                Err(e) => {
                    out.push(violation("parse", krate, Some(s), format!("does not parse: {e}")));
                    None
                }
            })
            .collect();
        for (source, uses) in &scanned {
            check_imports(ws, krate, source, uses, &mut out);
            if !krate.binary {
                check_environment(krate, source, uses, &mut out);
            }
        }
        check_module_cycles(krate, &scanned, &mut out);
    }
    out
}

fn violation(rule: &'static str, krate: &Crate, source: Option<&Source>, what: String) -> Violation {
    let place = match source {
        Some(s) => format!("crates/{}/src/{}", krate.name, s.path),
        None => krate.name.clone(),
    };
    Violation { rule, place, what }
}

fn check_dependencies(ws: &Workspace, out: &mut Vec<Violation>) {
    for core in rules::CORE {
        let Some(krate) = ws.krate(core) else { continue };
        for proto in rules::PROTOCOL {
            if let Some(chain) = ws.chain(core, proto) {
                let what = format!("core crate links the protocol stack `{proto}` ({})", chain.join(" → "));
                out.push(violation("core", krate, None, what));
            }
        }
    }
    for (name, forbidden, why) in rules::INDEPENDENT {
        let Some(krate) = ws.krate(name) else { continue };
        for other in *forbidden {
            if let Some(chain) = ws.chain(name, other) {
                let what = format!("links `{other}` ({}), but {why}", chain.join(" → "));
                out.push(violation("independent", krate, None, what));
            }
        }
    }
    for krate in ws.crates.iter().filter(|c| !c.binary) {
        for parser in rules::FLAG_PARSERS {
            if krate.deps.iter().any(|d| d == parser) {
                let what = format!("a library depends on `{parser}`: only binaries parse flags");
                out.push(violation("environment", krate, None, what));
            }
        }
    }
}

fn check_imports(ws: &Workspace, krate: &Crate, source: &Source, uses: &scan::Uses, out: &mut Vec<Violation>) {
    for (user, dep, allowed) in rules::ALLOWED_IMPORTS {
        if krate.name != *user {
            continue;
        }
        let dep_ident = dep.replace('-', "_");
        for p in &uses.paths {
            if p.segments.first() == Some(&dep_ident)
                && p.segments.len() > 1
                && !allowed.contains(&p.segments[1].as_str())
            {
                let what = format!("uses `{}`; from `{dep}` it may use only {allowed:?}", p.text());
                out.push(violation("imports", krate, Some(source), what));
            }
        }
    }
    for (name, prefixes) in rules::FORBIDDEN_PATHS {
        if krate.name != *name || krate.binary {
            continue;
        }
        for p in &uses.paths {
            let text = p.text();
            if let Some(prefix) = prefixes.iter().find(|f| text == **f || text.starts_with(&format!("{f}::"))) {
                out.push(violation("imports", krate, Some(source), format!("uses `{text}` (no `{prefix}` here)")));
            }
        }
    }
    let _ = ws;
}

fn check_environment(krate: &Crate, source: &Source, uses: &scan::Uses, out: &mut Vec<Violation>) {
    let place = format!("crates/{}/src/{}", krate.name, source.path);
    let mut found = Vec::new();
    for p in &uses.paths {
        let s = &p.segments;
        let env_fn = |i: usize| s.get(i).is_some_and(|f| rules::ENV_FUNCTIONS.contains(&f.as_str()));
        let direct = s.len() >= 3 && s[s.len() - 3] == "std" && s[s.len() - 2] == "env" && env_fn(s.len() - 1);
        let via_module = s.len() == 2 && s[0] == "env" && env_fn(1);
        if direct || via_module {
            found.push(p.text());
        }
    }
    for var in &uses.env_macros {
        if !var.starts_with(rules::BUILD_VARIABLES) {
            found.push(format!("env!(\"{var}\")"));
        }
    }
    found.extend(uses.env_attributes.iter().cloned());
    for what in found {
        let what = format!("reads the environment (`{what}`): only the binary does; take it as a setting");
        out.push(Violation { rule: "environment", place: place.clone(), what });
    }
}

/// The top-level module a file belongs to (`gbm/grow.rs` → `gbm`), `None` for crate roots.
fn top_module(path: &str) -> Option<String> {
    if matches!(path, "lib.rs" | "main.rs") || path.starts_with("bin/") {
        return None;
    }
    let first = path.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// The module path of a file (`gbm/grow.rs` → `[gbm, grow]`, `gbm/mod.rs` → `[gbm]`).
fn module_path(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Which top-level module a path written in module `at` refers to, if any.
fn target_module(at: &[String], segments: &[String]) -> Option<String> {
    match segments.first().map(String::as_str) {
        Some("crate") => segments.get(1).cloned(),
        Some("super") | Some("self") => {
            let mut base = at.to_vec();
            let mut rest = segments;
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        base.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
            base.first().cloned().or_else(|| rest.first().cloned())
        }
        _ => None,
    }
}

fn check_module_cycles(krate: &Crate, scanned: &[(&Source, scan::Uses)], out: &mut Vec<Violation>) {
    let modules: BTreeSet<String> = krate.sources.iter().filter_map(|s| top_module(&s.path)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (source, uses) in scanned {
        let Some(from) = top_module(&source.path) else { continue };
        for p in &uses.paths {
            let mut at = module_path(&source.path);
            at.extend(p.inline.iter().cloned());
            if let Some(to) = target_module(&at, &p.segments) {
                if to != from && modules.contains(&to) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    for cycle in strongly_connected(&modules, &edges) {
        let known = rules::KNOWN_CYCLES
            .iter()
            .any(|(c, members)| *c == krate.name && members.iter().map(|m| m.to_string()).eq(cycle.iter().cloned()));
        if !known {
            let what = format!("modules import each other in a circle: {}", cycle.join(" ↔ "));
            out.push(violation("module-cycle", krate, None, what));
        }
    }
}

/// The strongly connected components with more than one module (Tarjan), members sorted.
fn strongly_connected(nodes: &BTreeSet<String>, edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for n in nodes {
        if !s.index.contains_key(n.as_str()) {
            visit(&mut s, n);
        }
    }
    s.out.sort();
    s.out
}

#[cfg(test)]
mod tests;
