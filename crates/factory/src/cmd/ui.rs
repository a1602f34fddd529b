//! `factory ui install`: the MLflow web UI build (`mlflow/server/js/build/` of the `mlflow` wheel,
//! Apache-2.0) of the release whose REST API `factory server` implements, unpacked into the cache
//! (`~/.cache/factory/ui/mlflow-<version>`), where `factory server` finds it (or `--ui-dir`). The
//! wheel comes from the Python package index, checked against the index's sha256, or from a
//! wheel file already at hand (`--wheel`, offline).

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the UI build sits inside the wheel.
const BUILD_PREFIX: &str = "mlflow/server/js/build/";

#[derive(clap::Args, Debug)]
pub struct UiArgs {
    #[command(subcommand)]
    pub action: UiAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum UiAction {
    /// Take the web UI out of the `mlflow` wheel into the cache (or --dir).
    Install {
        /// Where to unpack it. Default: the folder `factory server` looks in.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A downloaded `mlflow-<version>-py3-none-any.whl` to take it from (no network).
        #[arg(long)]
        wheel: Option<PathBuf>,
        /// The package index (its simple API, PEP 691 JSON form, as pip reads it).
        #[arg(long, env = "PIP_INDEX_URL", default_value = "https://pypi.org/simple")]
        index_url: String,
    },
}

/// Where `factory ui install` puts the UI by default: the user's cache.
pub fn default_dir() -> PathBuf {
    super::cache_dir("ui").join(format!("mlflow-{}", mlflow_api::version::MLFLOW_VERSION))
}

/// Where the container image carries it (Dockerfile, stage `ui`).
const SYSTEM_DIR: &str = "/usr/share/factory/ui";

/// `--ui-dir` as given (it must hold `index.html`), else the first installed of the cache's and
/// the system's.
pub fn resolve(flag: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    match flag {
        Some(dir) if dir.join("index.html").is_file() => Ok(Some(dir.to_path_buf())),
        Some(dir) => bail!("--ui-dir {}: no index.html there (run `factory ui install --dir {0}`)", dir.display()),
        None => Ok([default_dir(), PathBuf::from(SYSTEM_DIR)].into_iter().find(|d| d.join("index.html").is_file())),
    }
}

pub fn run(args: UiArgs) -> anyhow::Result<u8> {
    match args.action {
        UiAction::Install { dir, wheel, index_url } => {
            let dir = dir.unwrap_or_else(default_dir);
            let bytes = match wheel {
                Some(path) => std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                None => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting the async runtime")?;
                    rt.block_on(download(&index_url, mlflow_api::version::MLFLOW_VERSION))?
                }
            };
            let files = unpack(&bytes, &dir)?;
            println!("MLflow {} web UI: {files} files in {}", mlflow_api::version::MLFLOW_VERSION, dir.display());
            Ok(0)
        }
    }
}

/// The part of the index's answer (PEP 691) about one project.
#[derive(serde::Deserialize)]
struct Project {
    files: Vec<ProjectFile>,
}

#[derive(serde::Deserialize)]
struct ProjectFile {
    filename: String,
    url: String,
    hashes: Hashes,
}

#[derive(serde::Deserialize)]
struct Hashes {
    sha256: Option<String>,
}

async fn download(index_url: &str, version: &str) -> anyhow::Result<Vec<u8>> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .context("building the HTTP client")?;
    let page = format!("{}/mlflow/", index_url.trim_end_matches('/'));
    let project: Project = http
        .get(&page)
        .header(reqwest::header::ACCEPT, "application/vnd.pypi.simple.v1+json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("asking {page} (offline? download the wheel and pass --wheel FILE)"))?
        .json()
        .await
        .with_context(|| format!("reading {page}"))?;
    let wanted = format!("mlflow-{version}-py3-none-any.whl");
    let file = project
        .files
        .into_iter()
        .find(|f| f.filename == wanted)
        .with_context(|| format!("{page} lists no {wanted}"))?;
    let sha256 = file.hashes.sha256.with_context(|| format!("{page} gives no sha256 for {wanted}"))?;
    eprintln!("downloading {wanted} ...");
    let bytes = http
        .get(&file.url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("downloading {}", file.url))?
        .bytes()
        .await
        .with_context(|| format!("downloading {}", file.url))?;
    let got = hex(&Sha256::digest(&bytes));
    if !got.eq_ignore_ascii_case(&sha256) {
        bail!("{wanted}: sha256 {got}, the index says {sha256}");
    }
    Ok(bytes.to_vec())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Unpacks the wheel's UI build into `dir` (replacing what was there); returns the file count.
/// Entries are written only under `dir`: names that would leave it are refused.
pub fn unpack(wheel: &[u8], dir: &Path) -> anyhow::Result<usize> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel)).context("reading the wheel (not a zip file?)")?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new().prefix(".ui-").tempdir_in(parent).context("creating a staging folder")?;
    let mut files = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).context("reading the wheel")?;
        let Some(name) = entry.enclosed_name() else { bail!("the wheel holds an unsafe path {:?}", entry.name()) };
        let Ok(rel) = name.strip_prefix(BUILD_PREFIX) else { continue };
        if entry.is_dir() || rel.as_os_str().is_empty() {
            continue;
        }
        let out = staging.path().join(rel);
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).with_context(|| format!("unpacking {}", name.display()))?;
        std::fs::write(&out, data).with_context(|| format!("writing {}", out.display()))?;
        files += 1;
    }
    if !staging.path().join("index.html").is_file() {
        bail!("the wheel holds no web UI build ({BUILD_PREFIX}index.html)");
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).with_context(|| format!("moving the UI into {}", dir.display()))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn wheel(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn unpacks_only_the_ui_build_and_replaces_an_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ui");
        let w = wheel(&[
            ("mlflow/__init__.py", "x"),
            ("mlflow/server/js/build/index.html", "<html>"),
            ("mlflow/server/js/build/static/js/main.js", "js"),
        ]);
        assert_eq!(unpack(&w, &dir).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(dir.join("static/js/main.js")).unwrap(), "js");
        assert!(!dir.join("__init__.py").exists());
        std::fs::write(dir.join("stale.js"), "old").unwrap();
        assert_eq!(unpack(&w, &dir).unwrap(), 2);
        assert!(!dir.join("stale.js").exists());
        assert_eq!(resolve(Some(&dir)).unwrap(), Some(dir.clone()));
    }

    #[test]
    fn refuses_wheels_without_a_ui_or_with_escaping_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ui");
        let e = unpack(&wheel(&[("mlflow/__init__.py", "x")]), &dir).unwrap_err();
        assert!(e.to_string().contains("no web UI build"), "{e}");
        // A name climbing out: refused or skipped, never written outside the folder.
        assert!(unpack(&wheel(&[("mlflow/server/js/build/../../../../evil", "x")]), &dir).is_err());
        assert!(!tmp.path().join("evil").exists() && !dir.exists());
        assert!(unpack(b"not a zip", &dir).is_err());
        assert!(resolve(Some(tmp.path())).unwrap_err().to_string().contains("no index.html"));
    }
}
