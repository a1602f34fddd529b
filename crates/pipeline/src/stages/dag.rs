//! The graph of stages: an edge A → B when one of B's deps is (or is inside, or contains)
//! one of A's outs, as in DVC. Building it refuses cycles and outs produced (or overlapped)
//! by two stages, naming both. Rendered as text, Graphviz DOT, SVG or a self-contained HTML
//! page (the SVG plus a table of commands and why each stage would run).

use super::{Stage, StageError};
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::Write;

/// Stages (by index in the definition) and their edges.
#[derive(Debug, Clone)]
pub struct Dag {
    /// Topological order; among ready stages, file order.
    pub order: Vec<usize>,
    /// `upstream[b]` = (a, the path that links them) for each edge a → b.
    pub upstream: Vec<Vec<(usize, String)>>,
}

/// A path without `./` segments or a trailing `/`, for comparing deps with outs.
fn norm(p: &str) -> String {
    p.split('/').filter(|s| !s.is_empty() && *s != ".").collect::<Vec<_>>().join("/")
}

/// Whether `a` and `b` name the same file or one lies inside the other.
fn overlap(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// Whether dep `dep` reads out `out`. A glob is compared one path component at a time, so
/// `data/*` reads out `data/parts` and `data` contains what `data/*.csv` matches, while
/// `data/*.csv` does not read `data/parts/a.csv`.
fn reads(dep: &str, out: &str) -> bool {
    if !super::is_glob(dep) {
        return overlap(dep, out);
    }
    for (d, o) in dep.split('/').zip(out.split('/')) {
        if d == "**" {
            return true;
        }
        if !glob::Pattern::new(d).is_ok_and(|p| p.matches(o)) {
            return false;
        }
    }
    true
}

impl Dag {
    pub fn build(stages: &[Stage]) -> Result<Dag, StageError> {
        let err = |m: String| StageError::Invalid(m);
        let outs: Vec<Vec<String>> = stages.iter().map(|s| s.outs.iter().map(|o| norm(&o.path)).collect()).collect();
        for (i, a) in stages.iter().enumerate() {
            for (x, oa) in outs[i].iter().enumerate() {
                if outs[i][..x].contains(oa) {
                    return Err(err(format!("stage '{}' lists out '{oa}' twice", a.name)));
                }
                for (j, b) in stages.iter().enumerate().skip(i + 1) {
                    for ob in &outs[j] {
                        if oa == ob {
                            return Err(err(format!(
                                "out '{oa}' is produced by two stages: '{}' and '{}'",
                                a.name, b.name
                            )));
                        }
                        if overlap(oa, ob) {
                            return Err(err(format!(
                                "outs overlap: '{oa}' of stage '{}' and '{ob}' of stage '{}'",
                                a.name, b.name
                            )));
                        }
                    }
                }
            }
        }
        let mut upstream: Vec<Vec<(usize, String)>> = vec![Vec::new(); stages.len()];
        for (j, b) in stages.iter().enumerate() {
            for dep in &b.deps {
                let dep = norm(dep);
                for (i, a) in stages.iter().enumerate() {
                    if let Some(o) = outs[i].iter().find(|o| reads(&dep, o)) {
                        if i == j {
                            return Err(err(format!("cycle: stage '{}' depends on its own out '{o}'", a.name)));
                        }
                        if !upstream[j].iter().any(|(k, _)| *k == i) {
                            upstream[j].push((i, o.clone()));
                        }
                    }
                }
            }
        }
        // Kahn's algorithm, smallest index first so the order follows the file.
        let mut indegree: Vec<usize> = upstream.iter().map(Vec::len).collect();
        let mut ready: BinaryHeap<std::cmp::Reverse<usize>> =
            (0..stages.len()).filter(|&i| indegree[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(stages.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for (j, ups) in upstream.iter().enumerate() {
                if ups.iter().any(|(k, _)| *k == i) {
                    indegree[j] -= 1;
                    if indegree[j] == 0 {
                        ready.push(std::cmp::Reverse(j));
                    }
                }
            }
        }
        if order.len() < stages.len() {
            let left: BTreeSet<usize> = (0..stages.len()).filter(|i| !order.contains(i)).collect();
            let cycle = find_cycle(&upstream, &left);
            let names: Vec<&str> = cycle.iter().map(|&i| stages[i].name.as_str()).collect();
            return Err(err(format!("cycle between stages: {}", names.join(" → "))));
        }
        Ok(Dag { order, upstream })
    }

    /// `targets` and every stage they depend on, in run order.
    pub fn with_upstream(&self, targets: &[usize]) -> Vec<usize> {
        let mut keep: BTreeSet<usize> = BTreeSet::new();
        let mut stack: Vec<usize> = targets.to_vec();
        while let Some(i) = stack.pop() {
            if keep.insert(i) {
                stack.extend(self.upstream[i].iter().map(|(k, _)| *k));
            }
        }
        self.order.iter().copied().filter(|i| keep.contains(i)).collect()
    }

    /// Depth of each stage: 0 for stages with no upstream.
    pub fn layers(&self) -> Vec<usize> {
        let mut layer = vec![0; self.upstream.len()];
        for &i in &self.order {
            layer[i] = self.upstream[i].iter().map(|(k, _)| layer[*k] + 1).max().unwrap_or(0);
        }
        layer
    }
}

/// A cycle among `left` (stages Kahn's algorithm could not order), as a closed walk.
fn find_cycle(upstream: &[Vec<(usize, String)>], left: &BTreeSet<usize>) -> Vec<usize> {
    let Some(&start) = left.iter().next() else { return Vec::new() };
    // Walk upstream edges inside `left` until a stage repeats: every stage there has one.
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let Some(&(next, _)) = upstream[cur].iter().find(|(k, _)| left.contains(k)) else { return path };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<usize> = path[pos..].to_vec();
            cycle.reverse(); // upstream walk → run direction
                             // Start at the stage declared first, so the message is stable.
            let first = cycle.iter().enumerate().min_by_key(|(_, s)| **s).map_or(0, |(i, _)| i);
            cycle.rotate_left(first);
            cycle.push(cycle[0]);
            return cycle;
        }
        path.push(next);
        cur = next;
    }
}

/// What a drawing shows about a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub state: NodeState,
    /// One line: why it would run, or how it ended.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    UpToDate,
    /// Its own deps, params, outs or command changed.
    Stale,
    /// Up to date now, but a stage upstream will run first.
    Downstream,
    Frozen,
    Ran,
    Failed,
}

impl NodeState {
    fn colour(self) -> (&'static str, &'static str) {
        match self {
            NodeState::UpToDate => ("#e6f4ea", "#1e8e3e"),
            NodeState::Stale => ("#fef7e0", "#e37400"),
            NodeState::Downstream => ("#fff8e1", "#f9ab00"),
            NodeState::Frozen => ("#eceff1", "#607d8b"),
            NodeState::Ran => ("#e8f0fe", "#1967d2"),
            NodeState::Failed => ("#fce8e6", "#d93025"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NodeState::UpToDate => "up to date",
            NodeState::Stale => "stale",
            NodeState::Downstream => "after upstream",
            NodeState::Frozen => "frozen",
            NodeState::Ran => "ran",
            NodeState::Failed => "failed",
        }
    }
}

/// One line per stage in run order, with its upstream stages and state.
pub fn text(stages: &[Stage], dag: &Dag, info: &[NodeInfo]) -> String {
    let layers = dag.layers();
    let width = stages.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (n, &i) in dag.order.iter().enumerate() {
        let ups: Vec<&str> = dag.upstream[i].iter().map(|(k, _)| stages[*k].name.as_str()).collect();
        let indent = "  ".repeat(layers[i]);
        let from = if ups.is_empty() { String::new() } else { format!("  ◀ {}", ups.join(", ")) };
        let _ = writeln!(
            out,
            "{:>3}. {indent}{:<width$}{from}  [{}] {}",
            n + 1,
            stages[i].name,
            info[i].state.label(),
            info[i].detail
        );
    }
    out
}

/// Graphviz DOT.
pub fn dot(stages: &[Stage], dag: &Dag, info: &[NodeInfo]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::from("digraph pipeline {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for &i in &dag.order {
        let (fill, line) = info[i].state.colour();
        let _ = writeln!(
            out,
            "  {} [fillcolor={}, color={}, tooltip={}];",
            q(&stages[i].name),
            q(fill),
            q(line),
            q(&stages[i].cmd.join(" && "))
        );
    }
    for &j in &dag.order {
        for (i, path) in &dag.upstream[j] {
            let _ = writeln!(out, "  {} -> {} [label={}];", q(&stages[*i].name), q(&stages[j].name), q(path));
        }
    }
    out.push_str("}\n");
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A layered drawing: one row per depth, stages ordered within a row by where their
/// upstream stages sit, edges as curves with the linking path as a tooltip.
pub fn svg(stages: &[Stage], dag: &Dag, info: &[NodeInfo]) -> String {
    const H: f64 = 46.0;
    const GAP_X: f64 = 28.0;
    const GAP_Y: f64 = 64.0;
    const PAD: f64 = 20.0;
    let layers = dag.layers();
    let depth = layers.iter().copied().max().map_or(0, |m| m + 1);
    let width_of = |i: usize| {
        (stages[i].name.chars().count().max(info[i].detail.chars().count().min(28)) as f64 * 7.4 + 28.0).max(110.0)
    };
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for &i in &dag.order {
        rows[layers[i]].push(i);
    }
    let mut x = vec![0.0; stages.len()];
    let mut row_width = vec![0.0f64; depth];
    for (r, row) in rows.iter_mut().enumerate() {
        // Barycentre of upstream stages' centres (already placed), file order for ties.
        let key = |i: usize| {
            let ups = &dag.upstream[i];
            if ups.is_empty() {
                i as f64 * 1e-6
            } else {
                ups.iter().map(|(k, _)| x[*k] + width_of(*k) / 2.0).sum::<f64>() / ups.len() as f64 + i as f64 * 1e-6
            }
        };
        row.sort_by(|a, b| key(*a).total_cmp(&key(*b)));
        let mut cur = 0.0;
        for &i in row.iter() {
            x[i] = cur;
            cur += width_of(i) + GAP_X;
        }
        row_width[r] = (cur - GAP_X).max(0.0);
    }
    let total = row_width.iter().copied().fold(0.0, f64::max);
    for (r, row) in rows.iter().enumerate() {
        let shift = (total - row_width[r]) / 2.0 + PAD;
        for &i in row {
            x[i] += shift;
        }
    }
    let y = |i: usize| PAD + layers[i] as f64 * (H + GAP_Y);
    let (w, h) = (total + 2.0 * PAD, PAD * 2.0 + depth as f64 * (H + GAP_Y) - GAP_Y);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"Helvetica, Arial, sans-serif\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#5f6368\"/></marker></defs>\n"
    );
    for &j in &dag.order {
        for (i, path) in &dag.upstream[j] {
            let (x1, y1) = (x[*i] + width_of(*i) / 2.0, y(*i) + H);
            let (x2, y2) = (x[j] + width_of(j) / 2.0, y(j));
            let mid = (y1 + y2) / 2.0;
            let _ = writeln!(
                out,
                "<path d=\"M {x1:.1} {y1:.1} C {x1:.1} {mid:.1}, {x2:.1} {mid:.1}, {x2:.1} {y2:.1}\" fill=\"none\" stroke=\"#5f6368\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"><title>{} → {}: {}</title></path>",
                esc(&stages[*i].name),
                esc(&stages[j].name),
                esc(path)
            );
        }
    }
    for &i in &dag.order {
        let (fill, line) = info[i].state.colour();
        let detail: String = info[i].detail.chars().take(28).collect();
        let detail = if info[i].detail.chars().count() > 28 { format!("{detail}…") } else { detail };
        let _ = writeln!(
            out,
            "<g><title>{name}\n$ {cmd}\n{state}: {full}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{H}\" rx=\"8\" fill=\"{fill}\" stroke=\"{line}\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\" fill=\"#202124\">{name}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{line}\">{}</text></g>",
            x[i],
            y(i),
            width_of(i),
            x[i] + width_of(i) / 2.0,
            y(i) + 19.0,
            x[i] + width_of(i) / 2.0,
            y(i) + 36.0,
            esc(&if detail.is_empty() { info[i].state.label().to_string() } else { detail }),
            name = esc(&stages[i].name),
            cmd = esc(&stages[i].cmd.join(" && ")),
            state = info[i].state.label(),
            full = esc(&info[i].detail),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A self-contained page: the drawing, a legend and a table of every stage.
pub fn html(title: &str, stages: &[Stage], dag: &Dag, info: &[NodeInfo]) -> String {
    let mut rows = String::new();
    for (n, &i) in dag.order.iter().enumerate() {
        let s = &stages[i];
        let (fill, line) = info[i].state.colour();
        let list = |v: &mut dyn Iterator<Item = String>| {
            v.map(|p| format!("<code>{}</code>", esc(&p))).collect::<Vec<_>>().join("<br>")
        };
        let params: Vec<String> = s
            .params
            .iter()
            .flat_map(|p| {
                let file = if p.file.is_empty() { String::new() } else { format!(" ({})", p.file) };
                if p.keys.is_empty() {
                    vec![format!("* {file}")]
                } else {
                    p.keys.iter().map(|k| format!("{k}{file}")).collect()
                }
            })
            .collect();
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td><b>{}</b></td><td><span class=\"state\" style=\"background:{fill};border-color:{line};color:{line}\">{}</span> {}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            n + 1,
            esc(&s.name),
            info[i].state.label(),
            esc(&info[i].detail),
            esc(&s.cmd.join(" && ")),
            list(&mut s.deps.iter().cloned()),
            list(&mut params.into_iter()),
            list(&mut s.outs.iter().map(|o| o.path.clone())),
        );
    }
    let legend: String = [
        NodeState::UpToDate,
        NodeState::Stale,
        NodeState::Downstream,
        NodeState::Ran,
        NodeState::Failed,
        NodeState::Frozen,
    ]
    .iter()
    .map(|s| {
        let (fill, line) = s.colour();
        format!(
            "<span class=\"state\" style=\"background:{fill};border-color:{line};color:{line}\">{}</span>",
            s.label()
        )
    })
    .collect::<Vec<_>>()
    .join(" ");
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#202124}} table{{border-collapse:collapse;margin-top:20px}}\
         td,th{{border:1px solid #dadce0;padding:6px 10px;vertical-align:top;text-align:left;font-size:13px}} th{{background:#f1f3f4}}\
         .state{{display:inline-block;border:1px solid;border-radius:10px;padding:0 8px;font-size:12px}} code{{font-size:12px}}\
         </style></head><body><h1>{t}</h1><p>{legend}</p>\n{svg}<table><tr><th>#</th><th>stage</th><th>state</th><th>cmd</th><th>deps</th><th>params</th><th>outs</th></tr>\n{rows}</table></body></html>\n",
        t = esc(title),
        svg = svg(stages, dag, info),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Out, Stage};
    use super::*;

    fn stage(name: &str, deps: &[&str], outs: &[&str]) -> Stage {
        Stage {
            name: name.into(),
            cmd: vec![format!("make {name}")],
            deps: deps.iter().map(|s| s.to_string()).collect(),
            params: vec![],
            outs: outs.iter().map(|p| Out { path: p.to_string(), persist: false, metric: false }).collect(),
            desc: None,
            always_changed: false,
            frozen: false,
            timeout: None,
        }
    }

    fn check_err(stages: &[Stage], expect: &[&str]) {
        let e = Dag::build(stages).unwrap_err().to_string();
        for x in expect {
            assert!(e.contains(x), "{e:?} should mention {x:?}");
        }
    }

    #[test]
    fn order_follows_outs_to_deps() {
        // Declared out of order on purpose.
        let s = [
            stage("evaluate", &["model", "data/prepared.csv"], &["metrics.json"]),
            stage("train", &["train.py", "./data/prepared.csv"], &["model"]),
            stage("prepare", &["data/raw"], &["data/prepared.csv"]),
            stage("lonely", &["x"], &["y"]),
        ];
        let dag = Dag::build(&s).unwrap();
        let names: Vec<&str> = dag.order.iter().map(|&i| s[i].name.as_str()).collect();
        assert_eq!(names, ["prepare", "train", "evaluate", "lonely"]);
        assert_eq!(dag.upstream[1], vec![(2, "data/prepared.csv".to_string())]);
        assert_eq!(dag.layers(), vec![2, 1, 0, 0]);
        let up: Vec<&str> = dag.with_upstream(&[1]).iter().map(|&i| s[i].name.as_str()).collect();
        assert_eq!(up, ["prepare", "train"]);
    }

    #[test]
    fn folders_and_globs_link_stages() {
        let s = [
            stage("split", &[], &["data/parts"]),
            stage("one", &["data/parts/a.csv"], &["one.txt"]),
            stage("all", &["data/*"], &["all.txt"]),
            stage("up", &["data"], &["up.txt"]),
            stage("csv", &["data/*.csv", "database.txt"], &["csv.txt"]),
        ];
        let dag = Dag::build(&s).unwrap();
        for (stage, ups) in s.iter().zip(&dag.upstream).skip(1).take(3) {
            assert_eq!(ups.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![0], "{}", stage.name);
        }
        assert!(dag.upstream[4].is_empty(), "data/*.csv does not reach into data/parts");
    }

    #[test]
    fn cycles_and_double_outs_name_both_stages() {
        check_err(&[stage("a", &["y"], &["x"]), stage("b", &["x"], &["y"])], &["cycle", "a → b → a"]);
        check_err(
            &[
                stage("a", &["c.out"], &["a.out"]),
                stage("b", &["a.out"], &["b.out"]),
                stage("c", &["b.out"], &["c.out"]),
            ],
            &["cycle", "a", "b", "c"],
        );
        check_err(&[stage("a", &["x"], &["x"])], &["cycle", "'a'", "own out 'x'"]);
        check_err(&[stage("a", &[], &["m"]), stage("b", &[], &["./m"])], &["'m'", "two stages", "'a'", "'b'"]);
        check_err(&[stage("a", &[], &["data"]), stage("b", &[], &["data/x.csv"])], &["overlap", "'a'", "'b'"]);
        check_err(&[stage("a", &[], &["m", "m/"])], &["twice"]);
    }

    #[test]
    fn drawings_name_every_stage_and_edge() {
        let s =
            [stage("prepare", &[], &["p.csv"]), stage("train", &["p.csv"], &["m"]), stage("eval <x>", &["m"], &["e"])];
        let dag = Dag::build(&s).unwrap();
        let info = vec![
            NodeInfo { state: NodeState::UpToDate, detail: String::new() },
            NodeInfo { state: NodeState::Stale, detail: "param modified: lr".into() },
            NodeInfo { state: NodeState::Downstream, detail: "after train".into() },
        ];
        let t = text(&s, &dag, &info);
        assert!(t.contains("train") && t.contains("◀ prepare") && t.contains("[stale] param modified: lr"), "{t}");
        let d = dot(&s, &dag, &info);
        assert!(d.contains("\"prepare\" -> \"train\" [label=\"p.csv\"]"), "{d}");
        let svg = svg(&s, &dag, &info);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("marker-end").count(), 2);
        assert!(svg.contains("eval &lt;x&gt;") && !svg.contains("eval <x>"));
        let page = html("pipeline", &s, &dag, &info);
        assert!(page.contains("<svg") && page.contains("<table>"));
    }
}
