//! `status` and `run`: observe each stage on disk, compare with the lock, and run the stale
//! ones in order — each command with `sh -c` in the pipeline's folder, its stdout and stderr
//! streamed line by line (to the caller's progress callback and to the stage's log file),
//! killed with its whole process group on timeout. After a command succeeds its deps and
//! outs are hashed and its lock entry written at once, as `dvc repro` does, so a later
//! failure never loses the work before it. Whether a stage is stale is decided when its turn
//! comes, after the stages before it ran: a downstream stage re-runs only if what it reads
//! really changed.

use super::dag::{Dag, NodeInfo, NodeState};
use super::hash::Hasher;
use super::lock::{changes, Change, Entry, Kind, Lock, StageLock};
use super::{values, Definition, Stage, StageError};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of stderr kept for a failure's message.
const TAIL_LINES: usize = 20;

/// How a stage stands before running anything.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageStatus {
    pub name: String,
    /// Its own changes since the lock (empty: up to date by itself).
    pub changes: Vec<Change>,
    /// Stale stages upstream of it (it would run after them if they change what it reads).
    pub after: Vec<String>,
    pub frozen: bool,
}

impl StageStatus {
    pub fn node(&self) -> NodeInfo {
        let (state, detail) = if self.frozen {
            (NodeState::Frozen, String::new())
        } else if !self.changes.is_empty() {
            (NodeState::Stale, self.changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        } else if !self.after.is_empty() {
            (NodeState::Downstream, format!("after {}", self.after.join(", ")))
        } else {
            (NodeState::UpToDate, String::new())
        };
        NodeInfo { state, detail }
    }
}

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stages to bring up to date, with what they depend on (empty: all).
    pub targets: Vec<String>,
    /// Run these stages even when up to date (names; `*` = all selected).
    pub force: Vec<String>,
    /// Run every stage after one that ran, even if what it reads did not change (DVC's
    /// `--force-downstream`).
    pub force_downstream: bool,
    /// Values for `${name}` that win over the file's `vars` (the loop's data paths); those
    /// that are valid variable names are also exported to the commands.
    pub context: BTreeMap<String, String>,
    /// Extra environment for the commands (tracking URI, credentials stay inherited).
    pub env: Vec<(String, String)>,
    /// Tags every MLflow run a command starts gets (through `MLFLOW_RUN_CONTEXT`).
    pub run_tags: BTreeMap<String, String>,
    /// For stages without their own `timeout_secs`.
    pub default_timeout: Option<Duration>,
    /// Where each stage's output is kept as `<stage>.log`.
    pub log_dir: Option<PathBuf>,
}

/// A progress event, for the console.
#[derive(Debug)]
pub enum Progress<'a> {
    Start { index: usize, total: usize, stage: &'a str, why: &'a [Change] },
    Skip { index: usize, total: usize, stage: &'a str, frozen: bool },
    Line { stage: &'a str, stderr: bool, line: &'a str },
    Done { stage: &'a str, seconds: f64 },
}

/// What happened to one stage in a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageOutcome {
    pub name: String,
    pub ran: bool,
    pub ok: bool,
    /// Why it ran (empty when skipped).
    pub why: Vec<Change>,
    pub seconds: f64,
    pub log: Option<PathBuf>,
    /// Numbers read from its metrics files after it ran.
    pub metrics: Vec<(String, f64)>,
}

/// A whole run: each selected stage's outcome, the lock as it now is, and the failure that
/// stopped it, if one did.
#[derive(Debug)]
pub struct RunReport {
    pub stages: Vec<StageOutcome>,
    pub lock: Lock,
    pub lock_text: String,
    pub error: Option<StageError>,
}

impl RunReport {
    pub fn ran(&self) -> Vec<&str> {
        self.stages.iter().filter(|s| s.ran).map(|s| s.name.as_str()).collect()
    }
}

/// The stages with `${…}` filled in, their graph and the selection for `targets`.
fn prepare(def: &Definition, opts: &Options) -> Result<(Definition, Dag, Vec<usize>), StageError> {
    let def = def.resolve(&opts.context, false)?;
    let dag = Dag::build(&def.stages)?;
    let selection = if opts.targets.is_empty() {
        dag.order.clone()
    } else {
        let mut idx = Vec::new();
        for t in &opts.targets {
            let i = def.stages.iter().position(|s| &s.name == t).ok_or_else(|| {
                let names: Vec<&str> = def.stages.iter().map(|s| s.name.as_str()).collect();
                StageError::Invalid(format!("no stage named '{t}' (stages: {})", names.join(", ")))
            })?;
            idx.push(i);
        }
        dag.with_upstream(&idx)
    };
    Ok((def, dag, selection))
}

/// Observes a stage on disk: its command, dep and out hashes, params values (params files
/// parsed once per `files` cache). Params missing from their file are returned as changes
/// (they fail a run).
fn observe(
    def: &Definition,
    s: &Stage,
    hasher: &mut Hasher,
    files: &mut HashMap<String, Value>,
) -> Result<(StageLock, Vec<Change>), StageError> {
    let mut now = StageLock { cmd: s.cmd.clone(), ..StageLock::default() };
    for d in &s.deps {
        now.deps.push(Entry { path: d.clone(), hash: hasher.hash(&def.dir, d)? });
    }
    for o in &s.outs {
        now.outs.push(Entry { path: o.path.clone(), hash: hasher.hash(&def.dir, &o.path)? });
    }
    let mut missing = Vec::new();
    for p in &s.params {
        let file = if p.file.is_empty() { def.default_params.clone() } else { p.file.clone() };
        if !files.contains_key(&file) {
            let path = def.dir.join(&file);
            if !path.is_file() {
                return Err(StageError::Invalid(format!(
                    "stage '{}': params file {} does not exist",
                    s.name,
                    path.display()
                )));
            }
            files.insert(file.clone(), values::read(&path).map_err(StageError::Invalid)?);
        }
        let root = &files[&file];
        let entry = now.params.entry(file.clone()).or_default();
        if p.keys.is_empty() {
            if let Value::Object(o) = root {
                entry.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        for k in &p.keys {
            match values::lookup(root, k) {
                Some(v) => {
                    entry.insert(k.clone(), v.clone());
                }
                None => missing.push(Change::Param { file: file.clone(), key: k.clone(), kind: Kind::Deleted }),
            }
        }
    }
    Ok((now, missing))
}

/// What would run and why, without running anything.
pub fn status(def: &Definition, opts: &Options) -> Result<Vec<StageStatus>, StageError> {
    let (def, dag, selection) = prepare(def, opts)?;
    let lock = Lock::read(&def.lock)?;
    let mut hasher = Hasher::open(&def.dir);
    let mut params_files = HashMap::new();
    let mut out: Vec<StageStatus> = Vec::new();
    let mut pending: BTreeMap<usize, bool> = BTreeMap::new(); // stage → will (or may) run
    for &i in &selection {
        let s = &def.stages[i];
        let (now, mut missing) = observe(&def, s, &mut hasher, &mut params_files)?;
        let mut ch = if s.frozen { Vec::new() } else { changes(&now, lock.stages.get(&s.name), s.always_changed) };
        ch.append(&mut missing);
        let forced = forced(opts, &s.name);
        if forced && ch.is_empty() && !s.frozen {
            ch.push(Change::Forced);
        }
        let after: Vec<String> = dag.upstream[i]
            .iter()
            .filter(|(k, _)| pending.get(k).copied().unwrap_or(false))
            .map(|(k, _)| def.stages[*k].name.clone())
            .collect();
        pending.insert(i, !s.frozen && (!ch.is_empty() || !after.is_empty()));
        out.push(StageStatus { name: s.name.clone(), changes: ch, after, frozen: s.frozen });
    }
    hasher.save();
    Ok(out)
}

fn forced(opts: &Options, name: &str) -> bool {
    opts.force.iter().any(|f| f == "*" || f == name)
}

/// Brings the selected stages up to date. Errors in the definition are `Err`; a failing
/// stage ends the run and is in the report's `error`.
pub fn run(def: &Definition, opts: &Options, on: &mut dyn FnMut(Progress<'_>)) -> Result<RunReport, StageError> {
    let (def, dag, selection) = prepare(def, opts)?;
    let mut ran: Vec<usize> = Vec::new();
    let order: Vec<&str> = def.stages.iter().map(|s| s.name.as_str()).collect();
    let mut lock = Lock::read(&def.lock)?;
    // Entries of stages that no longer exist go; the rest stay until their stage runs.
    lock.stages.retain(|name, _| order.contains(&name.as_str()));
    let mut hasher = Hasher::open(&def.dir);
    let mut outcomes = Vec::new();
    let mut error = None;
    let total = selection.len();
    if let Some(dir) = &opts.log_dir {
        std::fs::create_dir_all(dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
    }
    for (n, &i) in selection.iter().enumerate() {
        let s = &def.stages[i];
        // Read afresh for every stage: a command before it may have rewritten a params file.
        let (now, missing) = observe(&def, s, &mut hasher, &mut HashMap::new())?;
        let mut why = if s.frozen { Vec::new() } else { changes(&now, lock.stages.get(&s.name), s.always_changed) };
        let after_run = opts.force_downstream && dag.upstream[i].iter().any(|(k, _)| ran.contains(k));
        if (forced(opts, &s.name) || after_run) && why.is_empty() && !s.frozen {
            why.push(Change::Forced);
        }
        if why.is_empty() {
            on(Progress::Skip { index: n + 1, total, stage: &s.name, frozen: s.frozen });
            outcomes.push(StageOutcome {
                name: s.name.clone(),
                ran: false,
                ok: true,
                why,
                seconds: 0.0,
                log: None,
                metrics: Vec::new(),
            });
            continue;
        }
        on(Progress::Start { index: n + 1, total, stage: &s.name, why: &why });
        let started = Instant::now();
        let log = opts.log_dir.as_ref().map(|d| d.join(format!("{}.log", s.name)));
        let result = check_inputs(s, &now, missing)
            .and_then(|()| clear_outs(&def, s))
            .and_then(|()| execute(&def, s, opts, log.as_deref(), on))
            .and_then(|()| {
                let (after, _) = observe(&def, s, &mut hasher, &mut HashMap::new())?;
                if let Some(o) = after.outs.iter().find(|o| o.hash.is_none()) {
                    return Err(StageError::Failed {
                        stage: s.name.clone(),
                        status: "success".into(),
                        exit_code: Some(0),
                        stderr_tail: format!("the command did not create its out '{}'", o.path),
                    });
                }
                Ok(after)
            });
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(after) => {
                lock.stages.insert(s.name.clone(), after);
                lock.write(&def.lock, &order)?;
                hasher.save();
                let metrics = s
                    .outs
                    .iter()
                    .filter(|o| o.metric)
                    .filter_map(|o| values::read(&def.dir.join(&o.path)).ok())
                    .flat_map(|v| values::numbers(&v))
                    .collect();
                on(Progress::Done { stage: &s.name, seconds });
                ran.push(i);
                outcomes.push(StageOutcome { name: s.name.clone(), ran: true, ok: true, why, seconds, log, metrics });
            }
            Err(e) => {
                outcomes.push(StageOutcome {
                    name: s.name.clone(),
                    ran: true,
                    ok: false,
                    why,
                    seconds,
                    log,
                    metrics: Vec::new(),
                });
                error = Some(e);
                break;
            }
        }
    }
    hasher.save();
    let lock_text = lock.render(&order);
    Ok(RunReport { stages: outcomes, lock, lock_text, error })
}

/// Missing params or deps stop a stage before its command runs.
fn check_inputs(s: &Stage, now: &StageLock, missing: Vec<Change>) -> Result<(), StageError> {
    if let Some(Change::Param { file, key, .. }) = missing.first() {
        return Err(StageError::Invalid(format!("stage '{}': param '{key}' is missing from {file}", s.name)));
    }
    if let Some(d) = now.deps.iter().find(|d| d.hash.is_none()) {
        return Err(StageError::Invalid(format!(
            "stage '{}': dep '{}' does not exist (and no stage before it creates it)",
            s.name, d.path
        )));
    }
    Ok(())
}

/// Outs are removed before the command runs (unless `persist`), so a stale out can never
/// pass for a fresh one; their folders are created.
fn clear_outs(def: &Definition, s: &Stage) -> Result<(), StageError> {
    for o in &s.outs {
        let path = def.dir.join(&o.path);
        let io = |source| StageError::Io { path: path.clone(), source };
        if !o.persist {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).map_err(io)?,
                Ok(_) => std::fs::remove_file(&path).map_err(io)?,
                Err(_) => {}
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StageError::Io { path: parent.into(), source })?;
        }
    }
    Ok(())
}

/// The environment a stage's commands get (besides the inherited one).
fn stage_env(def: &Definition, s: &Stage, opts: &Options) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = opts
        .context
        .iter()
        .filter(|(k, _)| {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(opts.env.iter().cloned());
    env.push(("FACTORY_STAGE".into(), s.name.clone()));
    env.push(("FACTORY_PIPELINE_FILE".into(), def.file.display().to_string()));
    if !opts.run_tags.is_empty() {
        let mut tags = opts.run_tags.clone();
        tags.insert("factory.stage".into(), s.name.clone());
        env.push(("MLFLOW_RUN_CONTEXT".into(), serde_json::to_string(&tags).unwrap_or_default()));
    }
    env
}

/// Runs a stage's commands one after the other.
fn execute(
    def: &Definition,
    s: &Stage,
    opts: &Options,
    log: Option<&Path>,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<(), StageError> {
    let mut log_file = match log {
        Some(p) => Some(std::fs::File::create(p).map_err(|source| StageError::Io { path: p.into(), source })?),
        None => None,
    };
    let env = stage_env(def, s, opts);
    let timeout = s.timeout.or(opts.default_timeout);
    for cmd in &s.cmd {
        if let Some(f) = log_file.as_mut() {
            let _ = writeln!(f, "$ {cmd}");
        }
        run_one(def, s, cmd, &env, timeout, log_file.as_mut(), on)?;
    }
    Ok(())
}

enum Msg {
    Line(bool, String),
    Closed,
}

fn run_one(
    def: &Definition,
    s: &Stage,
    cmd: &str,
    env: &[(String, String)],
    timeout: Option<Duration>,
    mut log: Option<&mut std::fs::File>,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<(), StageError> {
    let mut command = Command::new("sh");
    command.arg("-c").arg(cmd).current_dir(&def.dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so a timeout can stop everything the command started.
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|source| StageError::Io { path: def.dir.clone(), source })?;
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let mut readers = Vec::new();
    for (is_err, pipe) in [
        (false, child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>)),
        (true, child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>)),
    ] {
        let Some(pipe) = pipe else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                        if tx.send(Msg::Line(is_err, line)).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(Msg::Closed);
        }));
    }
    drop(tx);
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let started = Instant::now();
    let mut open = readers.len();
    let mut status = None;
    let mut timed_out = false;
    let mut exited_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Msg::Line(is_err, line)) => {
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{}{line}", if is_err { "stderr| " } else { "" });
                }
                if is_err {
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    t.push_back(line.clone());
                    if t.len() > TAIL_LINES {
                        t.pop_front();
                    }
                }
                on(Progress::Line { stage: &s.name, stderr: is_err, line: &line });
            }
            Ok(Msg::Closed) => open -= 1,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
        if status.is_none() {
            status = child.try_wait().map_err(|source| StageError::Io { path: def.dir.clone(), source })?;
            if status.is_some() {
                exited_at = Some(Instant::now());
            }
        }
        if status.is_none() && timeout.is_some_and(|t| started.elapsed() > t) {
            timed_out = true;
            kill_group(&mut child);
            status = child.wait().ok();
            exited_at = Some(Instant::now());
        }
        // Done when the command exited and its pipes closed; something it left running in
        // the background holding them gets two seconds, then its group is stopped.
        if status.is_some() && (open == 0 || exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2))) {
            if open > 0 {
                kill_group(&mut child);
            }
            break;
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let stderr_tail = tail.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect::<Vec<_>>().join("\n");
    if timed_out {
        return Err(StageError::TimedOut {
            stage: s.name.clone(),
            seconds: timeout.map_or(0.0, |t| t.as_secs_f64()),
            stderr_tail,
        });
    }
    let status = status.expect("the loop ends only once the command exited");
    if status.success() {
        return Ok(());
    }
    let described = match status.code() {
        Some(c) => format!("exit code {c}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                format!("signal {}", status.signal().unwrap_or(0))
            }
            #[cfg(not(unix))]
            {
                "no exit code".to_string()
            }
        }
    };
    Err(StageError::Failed { stage: s.name.clone(), status: described, exit_code: status.code(), stderr_tail })
}

/// SIGTERM to the command's process group, SIGKILL a second later if it is still there.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        let pgid = Pid::from_raw(child.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if killpg(pgid, None).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = child.kill();
}

/// Prints progress for people, on stderr (stdout stays free for `--json`).
pub fn print_progress(p: Progress<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = match p {
        Progress::Start { index, total, stage, why } => {
            let why: Vec<String> = why.iter().map(ToString::to_string).collect();
            writeln!(err, "[{index}/{total}] {stage}: running ({})", why.join("; "))
        }
        Progress::Skip { index, total, stage, frozen } => {
            writeln!(
                err,
                "[{index}/{total}] {stage}: {}",
                if frozen { "frozen, skipped" } else { "up to date, skipped" }
            )
        }
        Progress::Line { stage, line, .. } => writeln!(err, "  {stage} | {line}"),
        Progress::Done { stage, seconds } => writeln!(err, "  {stage}: done in {seconds:.1} s"),
    };
}
