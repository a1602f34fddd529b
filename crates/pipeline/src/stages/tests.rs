use super::exec::{self, Options, Progress};
use super::lock::{Change, Kind, Lock};
use super::*;
use proptest::prelude::*;
use std::path::Path;

fn check_err(text: &str, expect: &[&str]) {
    let e = Definition::parse_toml(text, Path::new("/p/pipeline.toml")).unwrap_err().to_string();
    for x in expect {
        assert!(e.contains(x), "{e:?} should mention {x:?}");
    }
}

const ISSUE_SHAPE: &str = r#"
params = "params.toml"
[drift]
request_logs = ["r"]       # the loop's settings live in the same file; stages ignore them

[stages.prepare]
cmd = "python3 prepare.py"
deps = ["prepare.py", "data/raw.csv"]
params = ["prepare.seed"]
outs = ["data/prepared.csv"]

[stages.train]
cmd = "python3 train.py"
deps = ["train.py", "data/prepared.csv"]
params = ["train.learning_rate", { "other.yaml" = ["x.y"] }]
outs = ["model", { path = "cache", persist = true }]
metrics = "metrics.json"
timeout_secs = 600
"#;

#[test]
fn toml_stages_in_the_shape_of_the_issue() {
    let d = Definition::parse_toml(ISSUE_SHAPE, Path::new("/p/daily.toml")).unwrap();
    assert_eq!(d.lock, Path::new("/p/daily.lock"));
    assert_eq!(d.default_params, "params.toml");
    let names: Vec<&str> = d.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["prepare", "train"]);
    let t = d.stage("train").unwrap();
    assert_eq!(
        t.params,
        vec![
            ParamsUse { file: String::new(), keys: vec!["train.learning_rate".into()] },
            ParamsUse { file: "other.yaml".into(), keys: vec!["x.y".into()] },
        ]
    );
    assert_eq!(
        t.outs,
        vec![
            Out { path: "model".into(), persist: false, metric: false },
            Out { path: "cache".into(), persist: true, metric: false },
            Out { path: "metrics.json".into(), persist: false, metric: true },
        ]
    );
    assert_eq!(t.timeout, Some(Duration::from_secs(600)));
}

#[test]
fn dvc_yaml_reads_as_the_same_stages() {
    let yaml = r#"
vars:
  - model_dir: model
stages:
  prepare:
    cmd: python3 prepare.py
    deps: [prepare.py, data/raw.csv]
    params: [prepare.seed]
    outs: [data/prepared.csv]
  train:
    cmd:
      - python3 train.py
      - echo done
    deps: [train.py, data/prepared.csv]
    params:
      - train.learning_rate
      - other.yaml:
          - x.y
    outs:
      - ${model_dir}
      - cache:
          persist: true
    metrics:
      - metrics.json:
          cache: false
    plots: [plots.csv]
"#;
    let d = Definition::parse_dvc_yaml(yaml, Path::new("/p/dvc.yaml")).unwrap();
    assert_eq!(d.lock, Path::new("/p/dvc.lock"));
    let t = d.resolve(&BTreeMap::new(), false).unwrap().stage("train").unwrap().clone();
    assert_eq!(t.cmd, vec!["python3 train.py", "echo done"]);
    assert_eq!(
        t.outs.iter().map(|o| (o.path.as_str(), o.persist, o.metric)).collect::<Vec<_>>(),
        vec![
            ("model", false, false),
            ("cache", true, false),
            ("metrics.json", false, true),
            ("plots.csv", false, false)
        ]
    );
    let e = Definition::parse_dvc_yaml(
        "stages:\n  a:\n    foreach: [1, 2]\n    do:\n      cmd: x\n",
        Path::new("/p/dvc.yaml"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("foreach"), "{e}");
}

#[test]
fn invalid_stage_files_name_the_problem() {
    check_err(
        "[stages.a]\ncmd = \"x\"\nouts = [\"m\"]\n[stages.b]\ncmd = \"y\"\nouts = [\"m\"]\n",
        &["'m'", "'a'", "'b'"],
    );
    check_err("[stages.a]\ncmd = \"x\"\ndeps = [\"b.out\"]\nouts = [\"a.out\"]\n[stages.b]\ncmd = \"y\"\ndeps = [\"a.out\"]\nouts = [\"b.out\"]\n", &["cycle", "a → b → a"]);
    check_err("[stages.a]\ncmd = \"x\"\nouts = [\"m\"]\ncmnd = \"typo\"\n", &["cmnd"]);
    check_err("[stages.a]\ndeps = [\"x\"]\n", &["cmd"]);
    check_err("[stages.a]\ncmd = \"  \"\n", &["cmd is empty"]);
    check_err("[stages.a]\ncmd = \"x\"\ntimeout_secs = -1\n", &["timeout_secs"]);
    check_err("[stages.a]\ncmd = \"x\"\nouts = [\"*.csv\"]\n", &["glob"]);
    check_err("[stages.a]\ncmd = \"x\"\nparams = [{ \"p.ini\" = [\"k\"] }]\n", &["p.ini", "unknown format"]);
    check_err("[stages.a]\ncmd = \"python ${script}\"\n", &["no var or param named 'script'"]);
    check_err("[stages.\"a/b\"]\ncmd = \"x\"\n", &["stage name"]);
}

#[test]
fn vars_and_loop_values_fill_paths() {
    let text = "[vars]\nscript = \"train.py\"\nFACTORY_TRAINING_DATA = \"data/base.csv\"\n[stages.t]\ncmd = \"python ${script} \\\\${HOME} ${FACTORY_TRAINING_DATA}\"\ndeps = [\"${FACTORY_TRAINING_DATA}\", \"${FACTORY_HOLDOUT_DATA}\"]\n";
    // Unknown FACTORY_* names are the loop's to give: accepted at load time.
    let d = Definition::parse_toml(text, Path::new("/p/x.toml")).unwrap();
    let plain = d.resolve(&BTreeMap::from([("FACTORY_HOLDOUT_DATA".into(), "h.csv".into())]), false).unwrap();
    assert_eq!(plain.stages[0].cmd, vec!["python train.py ${HOME} data/base.csv"]);
    let looped = d
        .resolve(
            &BTreeMap::from([
                ("FACTORY_TRAINING_DATA".into(), "/tmp/c1/training.csv".into()),
                ("FACTORY_HOLDOUT_DATA".into(), "/tmp/c1/holdout.csv".into()),
            ]),
            false,
        )
        .unwrap();
    assert_eq!(looped.stages[0].deps, vec!["/tmp/c1/training.csv", "/tmp/c1/holdout.csv"]);
    assert!(d.resolve(&BTreeMap::new(), false).unwrap_err().to_string().contains("FACTORY_HOLDOUT_DATA"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    // Pipeline files come from git: any text is either stages or a clear error, never a panic.
    #[test]
    fn any_toml_is_stages_or_an_error(text in "\\PC{0,300}") {
        let _ = Definition::parse_toml(&text, Path::new("/p/x.toml"));
        let _ = Definition::parse_dvc_yaml(&text, Path::new("/p/dvc.yaml"));
        let _ = Lock::parse(&text);
    }

    #[test]
    fn stage_shaped_toml_is_stages_or_an_error(
        names in proptest::collection::vec("[a-z]{1,3}", 1..5),
        deps in proptest::collection::vec("[a-z./*]{0,6}", 0..6),
        outs in proptest::collection::vec("[a-z./]{0,6}", 0..6),
        cmd in "[ -~]{0,20}",
    ) {
        let mut text = String::new();
        for (i, n) in names.iter().enumerate() {
            let d: Vec<String> = deps.iter().skip(i).step_by(2).map(|d| format!("{d:?}")).collect();
            let o: Vec<String> = outs.iter().skip(i).step_by(3).map(|o| format!("{o:?}")).collect();
            text.push_str(&format!("[stages.{n}]\ncmd = {cmd:?}\ndeps = [{}]\nouts = [{}]\n", d.join(","), o.join(",")));
        }
        if let Ok(def) = Definition::parse_toml(&text, Path::new("/p/x.toml")) {
            // Whatever was accepted has an order that respects every edge.
            let r = def.resolve(&BTreeMap::new(), true).unwrap();
            let dag = dag::Dag::build(&r.stages).unwrap();
            for (j, ups) in dag.upstream.iter().enumerate() {
                for (i, _) in ups {
                    let pos = |x: usize| dag.order.iter().position(|&y| y == x).unwrap();
                    prop_assert!(pos(*i) < pos(j));
                }
            }
        }
    }
}

// ---- running stages -------------------------------------------------------------------

/// prepare → train → evaluate, with shell commands that count their runs.
const THREE: &str = r#"
params = "params.yaml"
[stages.prepare]
cmd = "echo run >> runs.txt && echo prepare >> ran.log && cat data/raw.csv > prepared.csv && echo seed=$(grep seed params.yaml) >> prepared.csv"
deps = ["data/raw.csv"]
params = ["prepare.seed"]
outs = ["prepared.csv"]
[stages.train]
cmd = "echo train >> ran.log && mkdir -p model && cat prepared.csv > model/weights && grep lr params.yaml >> model/weights && echo training on stderr >&2"
deps = ["prepared.csv"]
params = ["train.lr"]
outs = ["model"]
[stages.evaluate]
cmd = "echo evaluate >> ran.log && echo '{\"rmse\": 1.5, \"n\": {\"rows\": 2}}' > metrics.json"
deps = ["model"]
metrics = "metrics.json"
"#;

fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("data")).unwrap();
    std::fs::write(d.path().join("data/raw.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(d.path().join("params.yaml"), "prepare:\n  seed: 1\ntrain:\n  lr: 0.1\n").unwrap();
    std::fs::write(d.path().join("pipeline.toml"), THREE).unwrap();
    d
}

fn ran(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("ran.log")).unwrap_or_default();
    std::fs::remove_file(dir.join("ran.log")).ok();
    text.lines().map(String::from).collect()
}

fn run(dir: &Path, opts: &Options) -> exec::RunReport {
    let def = Definition::load(&dir.join("pipeline.toml")).unwrap();
    exec::run(&def, opts, &mut |_| {}).unwrap()
}

#[test]
fn second_run_executes_nothing_and_params_rerun_downstream_only() {
    let p = project();
    let dir = p.path();
    let first = run(dir, &Options::default());
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_eq!(ran(dir), ["prepare", "train", "evaluate"]);
    assert_eq!(first.stages[2].metrics, vec![("n.rows".to_string(), 2.0), ("rmse".to_string(), 1.5)]);
    let lock = Lock::read(&dir.join("pipeline.lock")).unwrap();
    assert_eq!(lock.stages["train"].params["params.yaml"]["train.lr"], serde_json::json!(0.1));
    assert_eq!(std::fs::read_to_string(dir.join("pipeline.lock")).unwrap(), first.lock_text);

    let second = run(dir, &Options::default());
    assert!(ran(dir).is_empty(), "nothing re-runs");
    assert!(second.stages.iter().all(|s| !s.ran));

    // A train param: train and (since the model changed) evaluate, not prepare.
    std::fs::write(dir.join("params.yaml"), "prepare:\n  seed: 1\ntrain:\n  lr: 0.2\n").unwrap();
    let def = Definition::load(&dir.join("pipeline.toml")).unwrap();
    let st = exec::status(&def, &Options::default()).unwrap();
    assert!(st[0].changes.is_empty());
    assert_eq!(
        st[1].changes,
        vec![Change::Param { file: "params.yaml".into(), key: "train.lr".into(), kind: Kind::Modified }]
    );
    assert_eq!(st[2].after, vec!["train"]);
    run(dir, &Options::default());
    assert_eq!(ran(dir), ["train", "evaluate"]);

    // A deleted out: its stage runs again; what it reads did not change, so nothing after it.
    std::fs::remove_file(dir.join("metrics.json")).unwrap();
    let st = exec::status(&def, &Options::default()).unwrap();
    assert_eq!(st[2].changes, vec![Change::Out { path: "metrics.json".into(), kind: Kind::Deleted }]);
    run(dir, &Options::default());
    assert_eq!(ran(dir), ["evaluate"]);

    // A re-created identical out upstream: prepare runs, train sees the same bytes and skips.
    std::fs::remove_file(dir.join("prepared.csv")).unwrap();
    run(dir, &Options::default());
    assert_eq!(ran(dir), ["prepare"]);

    // --force-downstream: what comes after a stage that ran runs too.
    run(dir, &Options { targets: vec!["prepare".into()], force: vec!["prepare".into()], ..Options::default() });
    assert_eq!(ran(dir), ["prepare"]);
    let all = Options { force: vec!["prepare".into()], force_downstream: true, ..Options::default() };
    run(dir, &all);
    assert_eq!(ran(dir), ["prepare", "train", "evaluate"]);

    // Targets bring only what they need up to date; force runs them regardless.
    let only =
        run(dir, &Options { targets: vec!["prepare".into()], force: vec!["prepare".into()], ..Options::default() });
    assert_eq!(only.stages.len(), 1);
    assert_eq!(ran(dir), ["prepare"]);
}

#[test]
fn a_failing_stage_stops_the_run_with_its_stderr_tail_and_keeps_the_lock() {
    let p = project();
    let dir = p.path();
    run(dir, &Options::default());
    ran(dir);
    let broken =
        THREE.replace("echo train >> ran.log &&", "echo train >> ran.log && echo 'Traceback: boom' >&2 && exit 3 &&");
    std::fs::write(dir.join("pipeline.toml"), &broken).unwrap();
    let before = std::fs::read_to_string(dir.join("pipeline.lock")).unwrap();
    let mut lines = Vec::new();
    let def = Definition::load(&dir.join("pipeline.toml")).unwrap();
    let logs = dir.join("logs");
    let report = exec::run(&def, &Options { log_dir: Some(logs.clone()), ..Options::default() }, &mut |p| {
        if let Progress::Line { line, stderr: true, .. } = p {
            lines.push(line.to_string());
        }
    })
    .unwrap();
    assert_eq!(ran(dir), ["train"], "evaluate never starts");
    let e = report.error.unwrap();
    match &e {
        StageError::Failed { stage, exit_code, stderr_tail, .. } => {
            assert_eq!((stage.as_str(), *exit_code), ("train", Some(3)));
            assert!(stderr_tail.contains("Traceback: boom"), "{stderr_tail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(lines, ["Traceback: boom"]);
    assert!(std::fs::read_to_string(logs.join("train.log")).unwrap().contains("stderr| Traceback: boom"));
    let after = std::fs::read_to_string(dir.join("pipeline.lock")).unwrap();
    assert_eq!(
        Lock::parse(&after).unwrap().stages["train"].cmd,
        Lock::parse(&before).unwrap().stages["train"].cmd,
        "the failed command is not recorded"
    );
}

#[test]
fn a_stage_past_its_timeout_is_killed_with_its_children() {
    let d = tempfile::tempdir().unwrap();
    let text = "[stages.slow]\ncmd = \"echo started >&2; sleep 30 & sleep 30; echo never\"\nouts = [\"x\"]\ntimeout_secs = 0.5\n";
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    let def = Definition::load(&d.path().join("p.toml")).unwrap();
    let t = std::time::Instant::now();
    let report = exec::run(&def, &Options::default(), &mut |_| {}).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    match report.error.unwrap() {
        StageError::TimedOut { stage, stderr_tail, .. } => {
            assert_eq!(stage, "slow");
            assert_eq!(stderr_tail, "started");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_outs_deps_and_params_are_clear() {
    let d = tempfile::tempdir().unwrap();
    let write = |text: &str| std::fs::write(d.path().join("p.toml"), text).unwrap();
    let err = |text: &str| {
        write(text);
        let def = Definition::load(&d.path().join("p.toml")).unwrap();
        exec::run(&def, &Options::default(), &mut |_| {}).unwrap().error.unwrap().to_string()
    };
    assert!(err("[stages.a]\ncmd = \"true\"\nouts = [\"made\"]\n").contains("did not create its out 'made'"));
    assert!(err("[stages.a]\ncmd = \"true\"\ndeps = [\"nope.csv\"]\n").contains("dep 'nope.csv' does not exist"));
    std::fs::write(d.path().join("params.yaml"), "a: 1\n").unwrap();
    assert!(err("[stages.a]\ncmd = \"true\"\nparams = [\"b.c\"]\n").contains("param 'b.c' is missing from params.yaml"));
}

#[test]
fn stages_see_the_documented_environment() {
    let d = tempfile::tempdir().unwrap();
    let text = "[stages.env]\ncmd = \"env | grep -E '^(FACTORY_|MLFLOW_RUN_CONTEXT)' | sort > env.txt\"\nouts = [\"env.txt\"]\n";
    std::fs::write(d.path().join("p.toml"), text).unwrap();
    let def = Definition::load(&d.path().join("p.toml")).unwrap();
    let opts = Options {
        context: BTreeMap::from([
            ("FACTORY_TRAINING_DATA".into(), "/data/t.csv".into()),
            ("not a name".into(), "x".into()),
        ]),
        run_tags: BTreeMap::from([("factory.cycle_id".into(), "abc".into())]),
        ..Options::default()
    };
    exec::run(&def, &opts, &mut |_| {}).unwrap();
    let env = std::fs::read_to_string(d.path().join("env.txt")).unwrap();
    assert!(env.contains("FACTORY_STAGE=env\n"), "{env}");
    assert!(env.contains("FACTORY_TRAINING_DATA=/data/t.csv\n"), "{env}");
    assert!(env.contains(&format!("FACTORY_PIPELINE_FILE={}\n", d.path().join("p.toml").display())), "{env}");
    assert!(env.contains(r#"MLFLOW_RUN_CONTEXT={"factory.cycle_id":"abc","factory.stage":"env"}"#), "{env}");
}

/// A dependency that is a device or a FIFO is refused with its path, not read forever
/// (`/dev/zero`) or waited on (a FIFO without a writer).
#[cfg(unix)]
#[test]
fn special_files_are_refused_not_read() {
    let started = std::time::Instant::now();
    let err = hash::md5_file(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let err = hash::md5_file(&fifo).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A regular file, through a symlink, is still read.
    std::fs::write(dir.path().join("data.csv"), "a,b\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("data.csv"), dir.path().join("link.csv")).unwrap();
    assert_eq!(hash::md5_file(&dir.path().join("link.csv")).unwrap(), hash::md5_bytes(b"a,b\n"));
}
