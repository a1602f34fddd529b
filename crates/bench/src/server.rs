//! Starting a server under test and watching it from `/proc`.
//!
//! Each server runs in its own process group (so `mlflow server`'s uvicorn workers and job
//! runner go with it), with a fresh temp dir holding its SQLite database, artifacts folder and
//! log. A [`ServerGuard`] kills the whole group when dropped (normal end, error, panic); the
//! process groups alive are also registered globally so a Ctrl-C / SIGTERM handler can kill
//! them before the benchmark exits ([`kill_all_registered`]).

use anyhow::{bail, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups (and temp dirs) of the servers alive, for the signal handler.
static LIVE_GROUPS: Mutex<Vec<(i32, PathBuf)>> = Mutex::new(Vec::new());

/// Kills every registered server process group and removes its temp dir (used on Ctrl-C /
/// SIGTERM, when the guards will not be dropped).
pub fn kill_all_registered() {
    let groups = LIVE_GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
    for (pgid, dir) in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        let _ = fs::remove_dir_all(dir);
    }
}

/// What kind of server, which decides its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Factory,
    Mlflow,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Factory => "factory",
            Kind::Mlflow => "mlflow",
        }
    }
}

/// How to start one server.
pub struct Launch {
    pub kind: Kind,
    pub bin: PathBuf,
    /// Extra environment, e.g. `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`.
    pub env: Vec<(String, String)>,
}

/// A running server; dropping it kills its process group and removes its temp dir.
pub struct ServerGuard {
    pub kind: Kind,
    pub base_url: String,
    pub pid: u32,
    /// The command line, for the report.
    pub command: String,
    pub log_path: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl ServerGuard {
    /// Spawns the server on a free 127.0.0.1 port with a fresh SQLite DB and artifacts folder.
    /// The clock for the cold start starts just before the spawn; the returned instant is it.
    pub fn spawn(launch: &Launch) -> anyhow::Result<(ServerGuard, Instant)> {
        let dir = tempfile::Builder::new().prefix(&format!("bench-{}-", launch.kind.name())).tempdir()?;
        let db = dir.path().join("store.db");
        let artifacts = dir.path().join("artifacts");
        let log_path = dir.path().join("server.log");
        let port = free_port()?;
        // SQLAlchemy's (and factory's) convention: sqlite:// + / + absolute path.
        let uri = format!("sqlite:///{}", db.display());
        let mut cmd = Command::new(&launch.bin);
        cmd.arg("server")
            .arg("--backend-store-uri")
            .arg(&uri)
            .arg("--artifacts-destination")
            .arg(&artifacts)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string());
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let command = format!(
            "{}{} server --backend-store-uri {uri} --artifacts-destination {} --host 127.0.0.1 --port {port}",
            launch.env.iter().map(|(k, v)| format!("{k}={v} ")).collect::<String>(),
            launch.bin.display(),
            artifacts.display()
        );
        let log = fs::File::create(&log_path)?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).current_dir(dir.path()).process_group(0);
        let started = Instant::now();
        let child = cmd.spawn().with_context(|| format!("spawning {}", launch.bin.display()))?;
        let pid = child.id();
        if let Ok(mut g) = LIVE_GROUPS.lock() {
            g.push((pid as i32, dir.path().to_path_buf()));
        }
        let guard = ServerGuard {
            kind: launch.kind,
            base_url: format!("http://127.0.0.1:{port}"),
            pid,
            command,
            log_path,
            child,
            _dir: dir,
        };
        Ok((guard, started))
    }

    /// Fails if the server process has already exited (with its log tail).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} server exited early ({status}); log tail:\n{}", self.kind.name(), self.log_tail(30));
        }
        Ok(())
    }

    /// The last `n` lines of the server's stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Resident memory of the server and all its descendants, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let tree = process_tree(self.pid);
        tree.iter().map(|&p| vm_rss_kib(p).unwrap_or(0)).sum::<u64>() as f64 / 1024.0
    }

    /// Number of processes in the server's tree.
    pub fn process_count(&self) -> usize {
        process_tree(self.pid).len()
    }

    /// CPU seconds, context switches and resident memory so far of the live processes (all threads) of the
    /// server's tree.
    pub fn usage(&self) -> Usage {
        let tree = process_tree(self.pid);
        Usage {
            cpu_secs: tree.iter().map(|&p| cpu_secs_of(&format!("/proc/{p}/stat"))).sum(),
            ctx_switches: tree.iter().map(|&p| ctx_switches(p)).sum(),
            rss_mib: tree.iter().map(|&p| vm_rss_kib(p).unwrap_or(0)).sum::<u64>() as f64 / 1024.0,
        }
    }

    /// SIGTERM the group, give it a moment, then SIGKILL it.
    fn kill(&mut self) {
        let pgid = Pid::from_raw(self.pid as i32);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = killpg(pgid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Workers of the group may outlive the leader: always finish with SIGKILL.
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
        if let Ok(mut g) = LIVE_GROUPS.lock() {
            g.retain(|(p, _)| *p != self.pid as i32);
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resource use of a process tree at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu_secs: f64,
    pub ctx_switches: u64,
    pub rss_mib: f64,
}

/// Voluntary + involuntary context switches of all threads of `pid`.
fn ctx_switches(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let mut n = 0;
    for t in tasks.flatten() {
        let Ok(status) = fs::read_to_string(t.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:") || line.starts_with("nonvoluntary_ctxt_switches:") {
                n += line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    n
}

/// A free TCP port on 127.0.0.1 (bound then released; the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `root` and all its descendants, found through the parent pid in `/proc/*/stat`.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(&e.path().join("stat")).and_then(|f| f.get(1).and_then(|s| s.parse().ok()))
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// The fields of a `/proc/<pid>/stat` line after the `(comm)`: index 0 is the state, 1 the ppid,
/// 11 utime, 12 stime (in clock ticks).
fn stat_fields(path: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(path).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// User + system CPU seconds of the process whose stat file is `path` (`/proc/self/stat` works).
pub fn cpu_secs_of(path: &str) -> f64 {
    let Some(f) = stat_fields(Path::new(path)) else {
        return 0.0;
    };
    let ticks: u64 =
        f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0) + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
