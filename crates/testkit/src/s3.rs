//! A real S3-compatible server: `s3s-fs` (installed by `scripts/test.sh`) on a free port over
//! a temp folder, whose subfolders are its buckets. Stopped when dropped.

use crate::process::{free_port, Proc};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "factory-test-key";
pub const SECRET_KEY: &str = "factory-test-secret-0123456789";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The folder served; bucket `b` is `root/b`.
    pub root: tempfile::TempDir,
    _proc: Proc,
}

/// The `s3s-fs` binary: `S3S_FS_BIN`, else on `PATH`, else `~/.cargo/bin/s3s-fs`.
pub fn s3s_fs_bin() -> Option<PathBuf> {
    let on_path = || {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("s3s-fs")).find(|f| f.is_file()))
    };
    let in_cargo = || std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    std::env::var_os("S3S_FS_BIN").map(PathBuf::from).or_else(on_path).or_else(in_cargo).filter(|f| f.is_file())
}

impl S3Server {
    /// Starts s3s-fs and waits until it listens; panics, saying how to install it, when missing.
    pub fn start() -> S3Server {
        let bin = s3s_fs_bin()
            .expect("s3s-fs not found; install it: cargo install s3s-fs --version 0.14.1 --locked --features binary");
        let root = tempfile::tempdir().expect("temp folder");
        // `free_port` only finds a port that was free: a test running alongside may take it
        // before s3s-fs binds it, and then a connection would reach that other process. So
        // s3s-fs must still be running once the port answers; if it exited, try another port.
        for _ in 0..5 {
            let port = free_port();
            let child = std::process::Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", ACCESS_KEY])
                .args(["--secret-key", SECRET_KEY])
                .arg(root.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            let mut proc = Proc::new("s3s-fs", child);
            let started = Instant::now();
            let exited = |p: &mut Proc| p.child.try_wait().map_or(true, |status| status.is_some());
            let listening = loop {
                if exited(&mut proc) {
                    break false;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                    break !exited(&mut proc);
                }
                assert!(started.elapsed() < Duration::from_secs(20), "s3s-fs did not start listening");
                std::thread::sleep(Duration::from_millis(20));
            };
            if listening {
                return S3Server { endpoint: format!("http://127.0.0.1:{port}"), root, _proc: proc };
            }
        }
        panic!("s3s-fs exited at start on 5 free ports in a row")
    }

    /// Makes bucket `name` (a folder of the root).
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir_all(self.root.path().join(name)).expect("create the bucket folder");
    }

    /// The environment MLflow's clients and `factory server` read for this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MLFLOW_S3_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
        ]
    }

    /// The same, as the settings `mlflow_api::artifacts::open_store` takes.
    #[cfg(feature = "server")]
    pub fn settings(&self) -> mlflow_api::artifacts::S3Settings {
        mlflow_api::artifacts::S3Settings {
            endpoint_url: Some(self.endpoint.clone()),
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            session_token: None,
            region: Some(REGION.into()),
        }
    }
}
