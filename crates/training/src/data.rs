//! Data sources for training: a local CSV path, or a URL downloaded once into a user cache
//! with a progress bar and a sha256 check. Offline with nothing cached is a clear error.

use crate::{Result, TrainError};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The canonical California housing CSV (the Hands-On ML copy: 20,640 rows, 10 columns,
/// 207 missing `total_bedrooms`, categorical `ocean_proximity`).
pub const HOUSING_URL: &str =
    "https://raw.githubusercontent.com/ageron/handson-ml2/master/datasets/housing/housing.csv";
pub const HOUSING_SHA256: &str = "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e";

/// Where training data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Url { url: String, sha256: Option<String> },
}

impl Source {
    /// `--data` as given: a URL (`http://`, `https://`) or a path. `None` means the canonical
    /// California housing file.
    pub fn from_arg(arg: Option<&str>) -> Source {
        match arg {
            None => Source::Url { url: HOUSING_URL.into(), sha256: Some(HOUSING_SHA256.into()) },
            Some(a) if a.starts_with("http://") || a.starts_with("https://") => {
                Source::Url { url: a.into(), sha256: None }
            }
            Some(a) => Source::Path(PathBuf::from(a)),
        }
    }
}

/// The user cache folder for downloads (`$XDG_CACHE_HOME/factory/datasets` or `~/.cache/...`).
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("factory").join("datasets")
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io { path: path.into(), source })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A local file for `source`: the path itself, or the cached download (fetched if needed).
pub async fn resolve(source: &Source, cache_dir: &Path, show_progress: bool) -> Result<PathBuf> {
    match source {
        Source::Path(p) => {
            if !p.is_file() {
                return Err(TrainError::Data(format!("--data {}: no such file", p.display())));
            }
            Ok(p.clone())
        }
        Source::Url { url, sha256 } => {
            let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("data.csv");
            let key = &hex(&Sha256::digest(url.as_bytes()))[..16];
            let target = cache_dir.join(key).join(name);
            if target.is_file()
                && sha256.as_deref().is_none_or(|want| sha256_file(&target).is_ok_and(|got| got == want))
            {
                return Ok(target);
            }
            download(url, &target, sha256.as_deref(), show_progress).await.map_err(|e| {
                TrainError::Data(format!(
                    "could not get {url} ({e}); nothing is cached at {}. Pass a local CSV with --data PATH",
                    target.display()
                ))
            })?;
            Ok(target)
        }
    }
}

/// Streams `url` into `target` (via a temporary file, so a failed download leaves nothing),
/// checking the sha256 when one is given.
pub async fn download(url: &str, target: &Path, sha256: Option<&str>, show_progress: bool) -> Result<(), String> {
    let dir = target.parent().ok_or("bad cache path")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        // A server that accepts and then goes quiet must not hang training forever.
        .read_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let bar = if show_progress {
        let bar = indicatif::ProgressBar::new(resp.content_length().unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "downloading {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut hasher = Sha256::new();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        hasher.update(&chunk);
        body.extend_from_slice(&chunk);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let got = hex(&hasher.finalize());
    if let Some(want) = sha256 {
        if got != want {
            return Err(format!("checksum mismatch: expected sha256 {want}, got {got}"));
        }
    }
    let tmp = target.with_extension("part");
    std::fs::write(&tmp, &body).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, target).map_err(|e| format!("writing {}: {e}", target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `body` to every connection; returns the URL.
    async fn serve(body: Vec<u8>, status: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let head =
                        format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}/data/housing.csv")
    }

    #[tokio::test]
    async fn downloads_checks_and_caches() {
        let body = b"a,b\n1,2\n".to_vec();
        let sum = hex(&Sha256::digest(&body));
        let url = serve(body.clone(), "200 OK").await;
        let cache = tempfile::tempdir().unwrap();
        let src = Source::Url { url: url.clone(), sha256: Some(sum.clone()) };
        let path = resolve(&src, cache.path(), false).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), body);
        // Cached: a second resolve works with the server gone (an unreachable URL, same cache key).
        let again = resolve(&src, cache.path(), false).await.unwrap();
        assert_eq!(again, path);
        // Wrong checksum: refused, nothing left behind.
        let bad = Source::Url { url: url.replace("housing", "other"), sha256: Some("00".repeat(32)) };
        let err = resolve(&bad, cache.path(), false).await.unwrap_err().to_string();
        assert!(err.contains("checksum mismatch") && err.contains("--data"), "{err}");
    }

    #[tokio::test]
    async fn offline_without_cache_names_the_flag() {
        let cache = tempfile::tempdir().unwrap();
        let src = Source::Url { url: "http://127.0.0.1:9/housing.csv".into(), sha256: None };
        let err = resolve(&src, cache.path(), false).await.unwrap_err().to_string();
        assert!(err.contains("--data PATH"), "{err}");
        let err = resolve(&Source::Path("/nonexistent.csv".into()), cache.path(), false).await.unwrap_err().to_string();
        assert!(err.contains("--data /nonexistent.csv"), "{err}");
        let url = serve(Vec::new(), "404 Not Found").await;
        let err = resolve(&Source::Url { url, sha256: None }, cache.path(), false).await.unwrap_err().to_string();
        assert!(err.contains("404"), "{err}");
    }

    #[test]
    fn data_args() {
        assert_eq!(Source::from_arg(Some("x.csv")), Source::Path("x.csv".into()));
        assert!(matches!(Source::from_arg(None), Source::Url { sha256: Some(_), .. }));
        assert!(matches!(Source::from_arg(Some("https://h/x.csv")), Source::Url { sha256: None, .. }));
    }
}
