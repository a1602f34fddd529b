//! Structured files (TOML, YAML, JSON) read into one value tree (`serde_json::Value`), with
//! the limits untrusted input needs, and DVC's dotted keys (`train.optimizer.lr`, `layers.0`)
//! to pick values out of them. Used for params files, metrics files, `dvc.yaml` and the lock.
//!
//! Why one tree: a stage's params are compared with the lock by value, whatever format either
//! side was written in, so `lr = 0.1` in TOML and `lr: 0.1` in YAML are the same param.

use serde_json::{Map, Number, Value};
use std::path::Path;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

/// Larger files are refused: params, metrics and pipeline files are small by nature.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// Deepest nesting accepted (a deeper document is an attack, not a config).
pub const MAX_DEPTH: usize = 64;
/// Most nodes a YAML document may expand to once its aliases are resolved (the loader copies
/// an anchored node for every alias, so a few lines could otherwise ask for gigabytes).
pub const MAX_YAML_NODES: u64 = 1_000_000;

/// The formats a structured file can be in, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
    Json,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, String> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("toml") => Ok(Format::Toml),
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("json") => Ok(Format::Json),
            _ => Err(format!("{}: unknown format (expected .toml, .yaml, .yml or .json)", path.display())),
        }
    }
}

/// Reads and parses a structured file.
pub fn read(path: &Path) -> Result<Value, String> {
    let format = Format::of(path)?;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{}: {} bytes is more than the {} allowed", path.display(), meta.len(), MAX_FILE_BYTES));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, format).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses text in `format` into a value tree.
pub fn parse(text: &str, format: Format) -> Result<Value, String> {
    let value = match format {
        Format::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
            from_toml(toml::Value::Table(table))?
        }
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string())?,
        Format::Yaml => yaml(text)?,
    };
    check_depth(&value, 0)?;
    Ok(value)
}

fn check_depth(v: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match v {
        Value::Array(a) => a.iter().try_for_each(|x| check_depth(x, depth + 1)),
        Value::Object(o) => o.values().try_for_each(|x| check_depth(x, depth + 1)),
        _ => Ok(()),
    }
}

/// A TOML value as a value tree.
pub fn from_toml(v: toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => float(f)?,
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(from_toml).collect::<Result<_, _>>()?),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| Ok((k, from_toml(v)?))).collect::<Result<Map<_, _>, String>>()?)
        }
    })
}

fn float(f: f64) -> Result<Value, String> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{f} is not a finite number"))
}

/// Counts nesting and alias expansion before the loader builds anything.
#[derive(Default)]
struct Budget {
    depth: usize,
    nodes: u64,
    /// Expanded size of each anchored node, by anchor id.
    anchored: std::collections::HashMap<usize, u64>,
    /// Open collections: (anchor id, node count when opened).
    open: Vec<(usize, u64)>,
    error: Option<String>,
}

impl MarkedEventReceiver for Budget {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.nodes += 1;
                self.depth += 1;
                self.open.push((anchor, self.nodes));
                if self.depth > MAX_DEPTH {
                    self.error = Some(format!("nested deeper than {MAX_DEPTH} levels"));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.depth = self.depth.saturating_sub(1);
                if let Some((anchor, start)) = self.open.pop() {
                    if anchor > 0 {
                        self.anchored.insert(anchor, self.nodes - start + 1);
                    }
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                self.nodes += 1;
                if anchor > 0 {
                    self.anchored.insert(anchor, 1);
                }
            }
            Event::Alias(id) => self.nodes += self.anchored.get(&id).copied().unwrap_or(1),
            _ => {}
        }
        if self.nodes > MAX_YAML_NODES {
            self.error = Some(format!("more than {MAX_YAML_NODES} nodes once aliases are expanded"));
        }
    }
}

fn yaml(text: &str) -> Result<Value, String> {
    let mut budget = Budget::default();
    Parser::new_from_str(text).load(&mut budget, true).map_err(|e| e.to_string())?;
    if let Some(e) = budget.error {
        return Err(e);
    }
    let mut docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => yaml_to_json(docs.remove(0)),
        n => Err(format!("{n} YAML documents in one file (expected one)")),
    }
}

fn yaml_to_json(y: Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Real(s) => {
            let f: f64 = match s.trim_start_matches('+') {
                ".inf" | ".Inf" | ".INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN" => {
                    return Err(format!("{s} is not a finite number"))
                }
                t => t.parse().map_err(|_| format!("'{s}' is not a number"))?,
            };
            float(f)?
        }
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        Yaml::Array(a) => Value::Array(a.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut map = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".into(),
                    other => return Err(format!("mapping key {other:?} is not a scalar")),
                };
                map.insert(key, yaml_to_json(v)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("a value that cannot be read (bad tag or unknown alias)".into()),
    })
}

/// The keys of the top-level mapping `section` of a YAML document, in the order written
/// (the value tree sorts them). Empty when there is no such mapping.
pub fn yaml_keys(text: &str, section: &str) -> Vec<String> {
    let Ok(docs) = YamlLoader::load_from_str(text) else { return Vec::new() };
    let Some(Yaml::Hash(h)) = docs.first().map(|d| &d[section]) else { return Vec::new() };
    h.keys().filter_map(|k| k.as_str().map(String::from)).collect()
}

/// The value at a dotted key: `a.b` is `b` inside `a`; a number picks a list item. A key
/// that exists as written (dots included) wins, as in DVC.
pub fn lookup<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = root.as_object().and_then(|o| o.get(key)) {
        return Some(v);
    }
    let mut cur = root;
    let mut rest = key;
    loop {
        // Longest prefix first, so keys with dots in them still resolve.
        let found = rest.match_indices('.').map(|(i, _)| i).chain([rest.len()]).rev().find_map(|end| {
            let head = &rest[..end];
            let next = match cur {
                Value::Object(o) => o.get(head),
                Value::Array(a) => head.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }?;
            Some((next, end))
        });
        let (next, end) = found?;
        cur = next;
        if end == rest.len() {
            return Some(cur);
        }
        rest = &rest[end + 1..];
    }
}

/// Every leaf number of a metrics file, as `a.b.c` → value (booleans as 0/1).
pub fn numbers(v: &Value) -> Vec<(String, f64)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
        let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        match v {
            Value::Number(n) => {
                if let Some(f) = n.as_f64() {
                    out.push((prefix.to_string(), f));
                }
            }
            Value::Bool(b) => out.push((prefix.to_string(), f64::from(u8::from(*b)))),
            Value::Object(o) => o.iter().for_each(|(k, v)| walk(&join(k), v, out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(&join(&i.to_string()), v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out.retain(|(k, _)| !k.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn check(text: &str, format: Format, expect: Value) {
        assert_eq!(parse(text, format).unwrap(), expect, "{text}");
    }

    #[test]
    fn three_formats_one_tree() {
        let expect = json!({"train": {"lr": 0.1, "epochs": 3, "layers": [8, 4], "name": "gbm", "early": true}});
        check(
            "[train]\nlr = 0.1\nepochs = 3\nlayers = [8, 4]\nname = \"gbm\"\nearly = true\n",
            Format::Toml,
            expect.clone(),
        );
        check(
            "train:\n  lr: 0.1\n  epochs: 3\n  layers: [8, 4]\n  name: gbm\n  early: true\n",
            Format::Yaml,
            expect.clone(),
        );
        check(&expect.to_string(), Format::Json, expect);
        check("", Format::Yaml, Value::Null);
        check("a: 1e-3\nb: -2\nc: ~\n", Format::Yaml, json!({"a": 0.001, "b": -2, "c": null}));
    }

    #[test]
    fn dotted_keys() {
        let v = json!({"train": {"opt": {"lr": 0.1}, "layers": [8, 4]}, "a.b": 1, "x": {"y.z": 2}});
        assert_eq!(lookup(&v, "train.opt.lr"), Some(&json!(0.1)));
        assert_eq!(lookup(&v, "train.layers.1"), Some(&json!(4)));
        assert_eq!(lookup(&v, "train"), Some(&json!({"opt": {"lr": 0.1}, "layers": [8, 4]})));
        assert_eq!(lookup(&v, "a.b"), Some(&json!(1)));
        assert_eq!(lookup(&v, "x.y.z"), Some(&json!(2)));
        assert_eq!(lookup(&v, "train.nope"), None);
        assert_eq!(lookup(&v, "train.layers.7"), None);
        assert_eq!(lookup(&v, ""), None);
    }

    #[test]
    fn hostile_yaml_is_refused() {
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = (b'a' + i) as char;
            let next = (b'a' + i + 1) as char;
            laughs.push_str(&format!("{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = parse(&laughs, Format::Yaml).unwrap_err();
        assert!(err.contains("aliases"), "{err}");
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep, Format::Yaml).unwrap_err().contains("deeper"));
        assert!(parse(&deep, Format::Json).is_err());
        assert!(parse("a: .inf\n", Format::Yaml).unwrap_err().contains("finite"));
        assert!(parse("---\na: 1\n---\nb: 2\n", Format::Yaml).unwrap_err().contains("2 YAML documents"));
        assert!(parse("a: 1\na: 2\n", Format::Yaml).unwrap_err().contains("duplicated"));
    }

    #[test]
    fn metrics_leaves() {
        let v = json!({"rmse": 1.5, "per": {"a": 1, "ok": true}, "name": "x", "l": [2.0]});
        let mut n = numbers(&v);
        n.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(n, vec![("l.0".into(), 2.0), ("per.a".into(), 1.0), ("per.ok".into(), 1.0), ("rmse".into(), 1.5)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        // Untrusted params files: any text either parses or is an error; never a panic.
        #[test]
        fn any_text_parses_or_errors(text in "\\PC{0,200}") {
            for f in [Format::Toml, Format::Yaml, Format::Json] {
                let _ = parse(&text, f);
            }
        }

        #[test]
        fn structured_text_parses_or_errors(text in "[a-z0-9:\\[\\]{}&*,\\-. \n\"'=#]{0,200}") {
            for f in [Format::Toml, Format::Yaml, Format::Json] {
                let _ = parse(&text, f);
            }
        }

        // What a TOML params file says is what lookup finds, in every format.
        #[test]
        fn toml_yaml_json_agree(section in "[a-z][a-z0-9_]{0,8}", key in "[a-z][a-z0-9_]{0,8}",
                                i in any::<i32>(), f in -1.0e6f64..1.0e6, s in "[a-zA-Z0-9 _.-]{0,20}") {
            prop_assume!(key != "f" && key != "s");
            let toml = format!("[{section}]\n{key} = {i}\nf = {f:?}\ns = {s:?}\n");
            let v = parse(&toml, Format::Toml).unwrap();
            let yaml = format!("{section}:\n  {key}: {i}\n  f: {f:?}\n  s: {}\n", serde_json::to_string(&s).unwrap());
            let y = parse(&yaml, Format::Yaml).unwrap();
            let j = parse(&v.to_string(), Format::Json).unwrap();
            prop_assert_eq!(lookup(&v, &format!("{section}.{key}")), Some(&json!(i)));
            prop_assert_eq!(&v, &j);
            prop_assert_eq!(&v, &y);
        }
    }
}
