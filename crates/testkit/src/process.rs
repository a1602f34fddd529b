//! The `factory` binary as child processes on free ports: `factory server`, `factory serve`
//! and `factory gateway`, each waited for until it answers and killed when dropped.
//!
//! The binary is `CARGO_BIN_EXE_factory` in `factory`'s own tests (pass it to [`Factory::new`]),
//! else `FACTORY_BIN`, else `factory` in the target folder of the running test
//! ([`Factory::from_env`]): build it first (`cargo build -p factory`), as `scripts/test.sh` does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (for processes that take a port, not a listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

/// A child process, killed (and reaped) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn new(name: &str, child: Child) -> Proc {
        Proc { name: name.into(), child }
    }

    /// Panics when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 60 s) until `url` answers 2xx; panics when `proc` exits first.
pub async fn wait_ok(http: &reqwest::Client, url: &str, proc: &mut Proc) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let answer = http.get(url).timeout(Duration::from_secs(1)).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        proc.assert_running();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} did not come up at {url}", proc.name);
}

/// The `factory` binary and how to start its servers.
#[derive(Debug, Clone)]
pub struct Factory {
    pub bin: PathBuf,
}

impl Factory {
    pub fn new(bin: impl Into<PathBuf>) -> Factory {
        Factory { bin: bin.into() }
    }

    /// `FACTORY_BIN`, else `factory` next to the running test's target folder.
    pub fn from_env() -> Factory {
        if let Some(bin) = std::env::var_os("FACTORY_BIN") {
            return Factory::new(bin);
        }
        // <target>/<profile>/deps/<test binary> → <target>/<profile>/factory
        let exe = std::env::current_exe().expect("current_exe");
        let profile = exe.parent().and_then(Path::parent).expect("test binary in <target>/<profile>/deps");
        let bin = profile.join("factory");
        assert!(
            bin.is_file(),
            "{} is missing: build it first (cargo build -p factory) or set FACTORY_BIN",
            bin.display()
        );
        Factory::new(bin)
    }

    /// `factory <args>` with the variables its subcommands read cleared, logging at `warn`.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        for v in
            ["MODEL_URI", "MODEL_PATH", "PORT", "GRPC_PORT", "MODEL_VERSION", "FACTORY_GATEWAY", "MLFLOW_TRACKING_URI"]
        {
            c.env_remove(v);
        }
        c.env("RUST_LOG", "warn").stdout(Stdio::null());
        c
    }

    /// Starts `command` and waits until `url` answers.
    pub async fn start(&self, name: &str, mut command: Command, url: &str) -> Proc {
        let mut p = Proc::new(name, command.spawn().unwrap_or_else(|e| panic!("start {name}: {e}")));
        wait_ok(&reqwest::Client::new(), url, &mut p).await;
        p
    }

    /// `factory server` over `backend_uri`, artifacts in `artifacts` (a folder or `s3://…`,
    /// with `env` such as [`crate::s3::S3Server::env`]); returns the process and its base URL.
    pub async fn server(&self, backend_uri: &str, artifacts: &str, env: &[(&str, String)]) -> (Proc, String) {
        let port = free_port();
        let mut c = self.command();
        c.args(["server", "--host", "127.0.0.1", "--port", &port.to_string(), "--backend-store-uri", backend_uri])
            .args(["--artifacts-destination", artifacts]);
        c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let base = format!("http://127.0.0.1:{port}");
        (self.start("factory server", c, &format!("{base}/health")).await, base)
    }

    /// `factory serve` of the model folder `model` reporting `version`, HTTP and gRPC on
    /// `port` (see [`free_port`]).
    pub async fn serve(&self, model: &Path, port: u16, version: &str) -> Proc {
        let mut c = self.command();
        c.args(["serve", "--model-path"])
            .arg(model)
            .args(["--port", &port.to_string(), "--grpc-port", &port.to_string(), "--poll-interval-secs", "0"])
            .env("MODEL_VERSION", version);
        self.start("factory serve", c, &format!("http://127.0.0.1:{port}/health")).await
    }

    /// `factory gateway` on `listen` (admin API on `admin`) in front of `blue` and `green`.
    pub async fn gateway(&self, listen: u16, admin: u16, blue: u16, green: u16, state: &Path) -> Proc {
        let addr = |p: u16| format!("127.0.0.1:{p}");
        let mut c = self.command();
        c.args(["gateway", "--listen", &addr(listen), "--admin", &addr(admin)])
            .args(["--blue", &addr(blue), "--green", &addr(green)])
            .arg("--state-file")
            .arg(state)
            .args(["--who", "ci"]);
        self.start("factory gateway", c, &format!("http://127.0.0.1:{admin}/status")).await
    }
}
