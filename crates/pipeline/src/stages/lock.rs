//! The lock file: for every stage that succeeded, its command and the hashes of its deps,
//! params and outs at that moment — DVC's `dvc.lock` (schema 2.0), so an existing DVC
//! project's lock is honoured and DVC reads ours. A stage is stale when what is on disk now
//! differs from its entry; [`changes`] says how, in `dvc status`'s words.

use super::hash::Hashed;
use super::{values, StageError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A whole lock file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lock {
    pub stages: BTreeMap<String, StageLock>,
}

/// One stage's entry (also what is observed on disk now, before comparing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageLock {
    pub cmd: Vec<String>,
    pub deps: Vec<Entry>,
    /// params file → key → value.
    pub params: BTreeMap<String, BTreeMap<String, Value>>,
    pub outs: Vec<Entry>,
}

/// A dep or out: its path and hash (`None`: missing on disk).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub path: String,
    pub hash: Option<Hashed>,
}

impl Lock {
    /// Reads a lock file; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Lock, StageError> {
        if !path.exists() {
            return Ok(Lock::default());
        }
        let text = std::fs::read_to_string(path).map_err(|source| StageError::Io { path: path.into(), source })?;
        Lock::parse(&text).map_err(|e| StageError::Invalid(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Lock, String> {
        #[derive(Deserialize)]
        struct File {
            schema: Option<String>,
            #[serde(default)]
            stages: BTreeMap<String, FileStage>,
        }
        #[derive(Deserialize)]
        struct FileStage {
            cmd: Option<Value>,
            #[serde(default)]
            deps: Vec<FileEntry>,
            #[serde(default)]
            params: BTreeMap<String, BTreeMap<String, Value>>,
            #[serde(default)]
            outs: Vec<FileEntry>,
        }
        #[derive(Deserialize)]
        struct FileEntry {
            path: String,
            md5: Option<String>,
            size: Option<u64>,
            nfiles: Option<u64>,
        }
        let root = values::parse(text, values::Format::Yaml)?;
        if root.is_null() {
            return Ok(Lock::default());
        }
        let f: File = serde_json::from_value(root).map_err(|e| e.to_string())?;
        if let Some(s) = &f.schema {
            if !s.starts_with("2.") {
                return Err(format!("lock schema '{s}' is not supported (expected 2.0)"));
            }
        }
        let entry = |e: FileEntry| Entry {
            hash: e.md5.map(|md5| Hashed { md5, size: e.size.unwrap_or(0), nfiles: e.nfiles }),
            path: e.path,
        };
        let stages = f
            .stages
            .into_iter()
            .map(|(name, s)| {
                let cmd = match s.cmd {
                    Some(Value::String(c)) => vec![c],
                    Some(Value::Array(a)) => a.into_iter().filter_map(|c| c.as_str().map(String::from)).collect(),
                    _ => Vec::new(),
                };
                let st = StageLock {
                    cmd,
                    deps: s.deps.into_iter().map(entry).collect(),
                    params: s.params,
                    outs: s.outs.into_iter().map(entry).collect(),
                };
                (name, st)
            })
            .collect();
        Ok(Lock { stages })
    }

    /// The file's text: stages in `order` (the pipeline's), entries sorted by path as DVC does.
    pub fn render(&self, order: &[&str]) -> String {
        let mut out = String::from("schema: '2.0'\nstages:\n");
        for name in order {
            let Some(s) = self.stages.get(*name) else { continue };
            out.push_str(&format!("  {}:\n", scalar(name)));
            match s.cmd.as_slice() {
                [one] => out.push_str(&format!("    cmd: {}\n", scalar(one))),
                many => {
                    out.push_str("    cmd:\n");
                    for c in many {
                        out.push_str(&format!("    - {}\n", scalar(c)));
                    }
                }
            }
            let entries = |out: &mut String, key: &str, list: &[Entry]| {
                if list.is_empty() {
                    return;
                }
                let mut list: Vec<&Entry> = list.iter().collect();
                list.sort_by(|a, b| a.path.cmp(&b.path));
                out.push_str(&format!("    {key}:\n"));
                for e in list {
                    out.push_str(&format!("    - path: {}\n", scalar(&e.path)));
                    if let Some(h) = &e.hash {
                        out.push_str(&format!("      hash: md5\n      md5: {}\n      size: {}\n", h.md5, h.size));
                        if let Some(n) = h.nfiles {
                            out.push_str(&format!("      nfiles: {n}\n"));
                        }
                    }
                }
            };
            entries(&mut out, "deps", &s.deps);
            if !s.params.is_empty() {
                out.push_str("    params:\n");
                for (file, keys) in &s.params {
                    out.push_str(&format!("      {}:\n", scalar(file)));
                    for (k, v) in keys {
                        // JSON is YAML's flow style: any value round-trips.
                        out.push_str(&format!(
                            "        {}: {}\n",
                            scalar(k),
                            serde_json::to_string(v).unwrap_or_default()
                        ));
                    }
                }
            }
            entries(&mut out, "outs", &s.outs);
        }
        out
    }

    /// Writes atomically (temp file + rename), so a crash never leaves half a lock.
    pub fn write(&self, path: &Path, order: &[&str]) -> Result<(), StageError> {
        let io = |source| StageError::Io { path: path.to_path_buf(), source };
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.render(order)).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// A YAML scalar: plain when it cannot be misread, else double-quoted (JSON's escapes are
/// YAML's).
fn scalar(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./-+=,".contains(c) || c == ' ')
        && !s.ends_with(' ')
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// How something changed since the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    New,
    Modified,
    Deleted,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::New => "new",
            Kind::Modified => "modified",
            Kind::Deleted => "deleted",
        })
    }
}

/// One reason a stage is stale.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Change {
    /// No lock entry: the stage never ran (or its entry was removed).
    NeverRan,
    /// The command differs from the one that ran.
    Command,
    AlwaysChanged,
    /// Asked to run although up to date (`--force`, or the loop's retrain target).
    Forced,
    Dep {
        path: String,
        kind: Kind,
    },
    Param {
        file: String,
        key: String,
        kind: Kind,
    },
    Out {
        path: String,
        kind: Kind,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::NeverRan => f.write_str("never ran"),
            Change::Command => f.write_str("changed command"),
            Change::AlwaysChanged => f.write_str("always changed"),
            Change::Forced => f.write_str("forced"),
            Change::Dep { path, kind } => write!(f, "dep {kind}: {path}"),
            Change::Param { file, key, kind } => write!(f, "param {kind}: {key} ({file})"),
            Change::Out { path, kind } => write!(f, "out {kind}: {path}"),
        }
    }
}

/// What differs between `now` (observed on disk) and `locked`; empty = up to date.
pub fn changes(now: &StageLock, locked: Option<&StageLock>, always_changed: bool) -> Vec<Change> {
    let mut out = Vec::new();
    if always_changed {
        out.push(Change::AlwaysChanged);
    }
    let Some(locked) = locked else {
        out.push(Change::NeverRan);
        return out;
    };
    if now.cmd != locked.cmd {
        out.push(Change::Command);
    }
    let compare = |now: &[Entry], locked: &[Entry], make: &dyn Fn(String, Kind) -> Change, out: &mut Vec<Change>| {
        for e in now {
            let before = locked.iter().find(|l| l.path == e.path);
            let kind = match (&e.hash, before.and_then(|b| b.hash.as_ref())) {
                (None, _) => Some(Kind::Deleted),
                (Some(_), None) => Some(Kind::New),
                (Some(a), Some(b)) if a.md5 != b.md5 => Some(Kind::Modified),
                _ => None,
            };
            if let Some(kind) = kind {
                out.push(make(e.path.clone(), kind));
            }
        }
    };
    compare(&now.deps, &locked.deps, &|path, kind| Change::Dep { path, kind }, &mut out);
    for (file, keys) in &now.params {
        let before = locked.params.get(file);
        for (key, value) in keys {
            let kind = match before.and_then(|b| b.get(key)) {
                None => Some(Kind::New),
                Some(v) if !same_value(v, value) => Some(Kind::Modified),
                _ => None,
            };
            if let Some(kind) = kind {
                out.push(Change::Param { file: file.clone(), key: key.clone(), kind });
            }
        }
    }
    compare(&now.outs, &locked.outs, &|path, kind| Change::Out { path, kind }, &mut out);
    out
}

/// Values equal as data: `1` and `1.0` are the same param (TOML and YAML writers differ).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A lock written by `dvc repro` (DVC 3.67).
    const DVC_LOCK: &str = "schema: '2.0'
stages:
  prepare:
    cmd: cat data/raw/x.csv data/raw/y.csv > prepared.csv
    deps:
    - path: data/raw
      hash: md5
      md5: 9b4c78ce8c233e92bc522dc893dec715.dir
      size: 6
      nfiles: 2
    params:
      params.yaml:
        prepare.seed: 3
    outs:
    - path: prepared.csv
      hash: md5
      md5: 80f76699060cd6a4116629d65ac5b3f4
      size: 6
  train:
    cmd: cp prepared.csv model.bin && printf 1 > metrics.json
    deps:
    - path: prepared.csv
      hash: md5
      md5: 80f76699060cd6a4116629d65ac5b3f4
      size: 6
    params:
      params.yaml:
        train:
          lr: 0.2
    outs:
    - path: metrics.json
      hash: md5
      md5: c4ca4238a0b923820dcc509a6f75849b
      size: 1
    - path: model.bin
      hash: md5
      md5: 80f76699060cd6a4116629d65ac5b3f4
      size: 6
";

    #[test]
    fn reads_dvc_locks_and_round_trips() {
        let lock = Lock::parse(DVC_LOCK).unwrap();
        let train = &lock.stages["train"];
        assert_eq!(train.cmd, vec!["cp prepared.csv model.bin && printf 1 > metrics.json"]);
        assert_eq!(train.params["params.yaml"]["train"], json!({"lr": 0.2}));
        assert_eq!(lock.stages["prepare"].deps[0].hash.as_ref().unwrap().nfiles, Some(2));
        let text = lock.render(&["prepare", "train"]);
        assert_eq!(Lock::parse(&text).unwrap(), lock, "{text}");
        // Our own rendering differs from DVC's only where YAML allows (quoting, flow style).
        assert!(
            text.contains("    - path: data/raw\n      hash: md5\n      md5: 9b4c78ce8c233e92bc522dc893dec715.dir\n")
        );
        assert!(text.contains("        prepare.seed: 3\n"));
    }

    #[test]
    fn scalars_that_would_be_misread_are_quoted() {
        for (s, expect) in [
            ("data/x.csv", "data/x.csv"),
            ("1.0", "\"1.0\""),
            ("yes", "\"yes\""),
            ("a: b", "\"a: b\""),
            ("python x.py > y", "\"python x.py > y\""),
            ("-x", "\"-x\""),
            ("", "\"\""),
        ] {
            assert_eq!(scalar(s), expect);
            assert_eq!(values::parse(&format!("k: {}", scalar(s)), values::Format::Yaml).unwrap()["k"], json!(s));
        }
    }

    fn entry(path: &str, md5: Option<&str>) -> Entry {
        Entry { path: path.into(), hash: md5.map(|m| Hashed { md5: m.into(), size: 1, nfiles: None }) }
    }

    #[test]
    fn why_a_stage_is_stale() {
        let locked = StageLock {
            cmd: vec!["python t.py".into()],
            deps: vec![entry("a", Some("1")), entry("b", Some("2"))],
            params: BTreeMap::from([(
                "params.yaml".into(),
                BTreeMap::from([("lr".into(), json!(0.1)), ("n".into(), json!(3))]),
            )]),
            outs: vec![entry("m", Some("9"))],
        };
        assert_eq!(changes(&locked, Some(&locked), false), vec![]);
        assert_eq!(changes(&locked, None, false), vec![Change::NeverRan]);
        let mut now = locked.clone();
        now.cmd = vec!["python t.py --fast".into()];
        now.deps = vec![entry("a", Some("1")), entry("b", None), entry("c", Some("3"))];
        now.params.get_mut("params.yaml").unwrap().insert("lr".into(), json!(0.2));
        now.params.get_mut("params.yaml").unwrap().insert("n".into(), json!(3.0));
        now.outs = vec![entry("m", Some("8"))];
        let got: Vec<String> = changes(&now, Some(&locked), true).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "always changed",
                "changed command",
                "dep deleted: b",
                "dep new: c",
                "param modified: lr (params.yaml)",
                "out modified: m"
            ]
        );
    }
}
