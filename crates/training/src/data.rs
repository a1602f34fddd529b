//! Data sources for training: a local CSV path, a URL downloaded once into a cache folder
//! (progress bar, sha256 check), or a dataset the project knows by name. California housing is
//! bundled in the binary (gzip, `data/california_housing.csv.gz`, provenance in `data/README.md`),
//! so training and the demo work offline; a known dataset that is not bundled is downloaded and
//! checked the same way, and offline its error says how to get it. The caller passes the cache
//! folder in (only the binary reads the environment).

use crate::{Result, TrainError};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A dataset known by name: what file it is, its checksum, and where its bytes come from.
#[derive(Debug, PartialEq, Eq)]
pub struct Known {
    pub name: &'static str,
    /// File name in the cache folder.
    pub file_name: &'static str,
    /// sha256 of the file itself (not of its compressed form).
    pub sha256: &'static str,
    /// The file, gzip-compressed, inside the binary.
    pub bundled: Option<&'static [u8]>,
    /// Where to download it when it is not bundled.
    pub url: Option<&'static str>,
    /// One line telling the user how to get the file when neither works (e.g. offline).
    pub hint: &'static str,
}

/// The canonical California housing CSV (the Hands-On ML copy: 20,640 rows, 10 columns,
/// 207 missing `total_bedrooms`, categorical `ocean_proximity`), shipped in the binary.
pub static CALIFORNIA_HOUSING: Known = Known {
    name: "California housing",
    file_name: "housing.csv",
    sha256: "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e",
    bundled: Some(include_bytes!("../data/california_housing.csv.gz")),
    url: None,
    hint: "pass a local CSV with --data PATH",
};

/// Where training data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Url { url: String, sha256: Option<String> },
    Known(&'static Known),
}

impl Source {
    /// `--data` as given: a URL (`http://`, `https://`) or a path. `None` means the bundled
    /// California housing file.
    pub fn from_arg(arg: Option<&str>) -> Source {
        match arg {
            None => Source::Known(&CALIFORNIA_HOUSING),
            Some(a) if a.starts_with("http://") || a.starts_with("https://") => {
                Source::Url { url: a.into(), sha256: None }
            }
            Some(a) => Source::Path(PathBuf::from(a)),
        }
    }
}

/// Opens a data file for reading, decompressing it when its name ends in `.gz`.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = std::fs::File::open(path).map_err(|source| TrainError::Io { path: path.into(), source })?;
    let reader = std::io::BufReader::new(file);
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    })
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io { path: path.into(), source })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A local file for `source`: the path itself, or the file in `cache_dir` (downloaded, or
/// unpacked from the binary, once; checked against its sha256 when one is known).
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
            let target = cache_dir.join(&hex(&Sha256::digest(url.as_bytes()))[..16]).join(name);
            if is_cached(&target, sha256.as_deref()) {
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
        Source::Known(known) => {
            let target = cache_dir.join(&known.sha256[..16]).join(known.file_name);
            if is_cached(&target, Some(known.sha256)) {
                return Ok(target);
            }
            let got = match (known.bundled, known.url) {
                (Some(gz), _) => unpack(gz, &target, known.sha256),
                (None, Some(url)) => download(url, &target, Some(known.sha256), show_progress).await,
                (None, None) => Err("it is not bundled and has no download address".into()),
            };
            got.map_err(|e| TrainError::Data(format!("could not get the {} data ({e}); {}", known.name, known.hint)))?;
            Ok(target)
        }
    }
}

fn is_cached(target: &Path, sha256: Option<&str>) -> bool {
    target.is_file() && sha256.is_none_or(|want| sha256_file(target).is_ok_and(|got| got == want))
}

/// Writes `bytes` to `target` through a temporary file in the same folder, so a failure leaves
/// nothing half-written under the final name.
fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = target.parent().ok_or("bad cache path")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = target.with_extension(format!("part-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, target).map_err(|e| format!("writing {}: {e}", target.display()))
}

/// Unpacks a bundled gzip file into `target` after checking the sha256 of what came out.
fn unpack(gz: &[u8], target: &Path, sha256: &str) -> Result<(), String> {
    let mut body = Vec::with_capacity(gz.len() * 4);
    flate2::read::GzDecoder::new(gz).read_to_end(&mut body).map_err(|e| format!("unpacking: {e}"))?;
    let got = hex(&Sha256::digest(&body));
    if got != sha256 {
        return Err(format!("checksum mismatch: expected sha256 {sha256}, got {got}"));
    }
    write_atomically(target, &body)
}

/// Streams `url` into `target` (via a temporary file, so a failed download leaves nothing),
/// checking the sha256 when one is given.
pub async fn download(url: &str, target: &Path, sha256: Option<&str>, show_progress: bool) -> Result<(), String> {
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
    write_atomically(target, &body)
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

    #[tokio::test]
    async fn bundled_housing_unpacks_without_network() {
        let cache = tempfile::tempdir().unwrap();
        let path = resolve(&Source::from_arg(None), cache.path(), false).await.unwrap();
        assert_eq!(sha256_file(&path).unwrap(), CALIFORNIA_HOUSING.sha256);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("longitude,latitude,"), "{}", &text[..40]);
        assert_eq!(text.lines().count(), 20_641);
        // A damaged cached copy is replaced, not used.
        std::fs::write(&path, "longitude\n1\n").unwrap();
        let again = resolve(&Source::from_arg(None), cache.path(), false).await.unwrap();
        assert_eq!(sha256_file(&again).unwrap(), CALIFORNIA_HOUSING.sha256);
    }

    #[tokio::test]
    async fn known_datasets_download_check_and_hint() {
        static GONE: Known = Known {
            name: "test e-mails",
            file_name: "emails.csv.gz",
            sha256: "75a60fde5c8eb88759d2544c6d6384cb44ae8f9e23c0d7e66eba575c5d6b3104",
            bundled: None,
            url: Some("http://127.0.0.1:9/emails.csv.gz"),
            hint: "download it with network access, or pass --data PATH",
        };
        let cache = tempfile::tempdir().unwrap();
        let err = resolve(&Source::Known(&GONE), cache.path(), false).await.unwrap_err().to_string();
        assert!(err.contains("test e-mails") && err.ends_with("or pass --data PATH") && !err.contains('\n'), "{err}");
        // Reachable and checksummed: fetched once, then served from the cache.
        let body = b"id,label\n1,spam\n".to_vec();
        let url: &'static str = Box::leak(serve(body.clone(), "200 OK").await.into_boxed_str());
        let sum: &'static str = Box::leak(hex(&Sha256::digest(&body)).into_boxed_str());
        let known: &'static Known = Box::leak(Box::new(Known { url: Some(url), sha256: sum, ..GONE }));
        let path = resolve(&Source::Known(known), cache.path(), false).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), body);
        // A bundled copy whose content does not match its checksum is refused.
        let bad: &'static Known = Box::leak(Box::new(Known { bundled: CALIFORNIA_HOUSING.bundled, url: None, ..GONE }));
        let err = resolve(&Source::Known(bad), cache.path(), false).await.unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn data_args() {
        assert_eq!(Source::from_arg(Some("x.csv")), Source::Path("x.csv".into()));
        assert_eq!(Source::from_arg(None), Source::Known(&CALIFORNIA_HOUSING));
        assert!(matches!(Source::from_arg(Some("https://h/x.csv")), Source::Url { sha256: None, .. }));
    }
}
