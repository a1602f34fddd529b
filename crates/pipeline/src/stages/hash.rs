//! Content hashes of deps and outs, the same as DVC 3 writes in `dvc.lock`: the md5 of a
//! file's bytes; for a folder, the md5 of the JSON list `[{"md5": …, "relpath": …}, …]`
//! (sorted by path, Python's `json.dumps(…, sort_keys=True)` spelling) followed by `.dir`.
//! A glob hashes like a folder made of the files it matches.
//!
//! Hashing 10,000 files on every `status` would dominate its time, so each file's md5 is
//! remembered with its inode, size and mtime in `.factory/hashes.json` beside the pipeline
//! (DVC keeps the same in its state database) and reused while those do not change. Files
//! modified in the last two seconds are not remembered: a second write within the same
//! mtime tick could otherwise go unseen.

use super::StageError;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What the lock records for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    /// Hex md5; folders and globs end in `.dir`.
    pub md5: String,
    /// Bytes (all files together for a folder or glob).
    pub size: u64,
    /// Number of files, for folders and globs.
    pub nfiles: Option<u64>,
}

/// One remembered file hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Seen {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    md5: String,
}

/// Hashes paths under one folder, remembering file hashes between runs.
pub struct Hasher {
    cache_file: PathBuf,
    seen: HashMap<String, Seen>,
    dirty: bool,
    /// Files hashed (read) and reused from the cache by this hasher, for progress and tests.
    pub read: u64,
    pub reused: u64,
}

const SETTLE: Duration = Duration::from_secs(2);

impl Hasher {
    /// A hasher whose cache lives in `<dir>/.factory/hashes.json`.
    pub fn open(dir: &Path) -> Hasher {
        let cache_file = dir.join(".factory").join("hashes.json");
        let seen = std::fs::read(&cache_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Hasher { cache_file, seen, dirty: false, read: 0, reused: 0 }
    }

    /// Writes the cache back when it changed (temp file + rename). Failing to is not an
    /// error: the cache only saves time.
    pub fn save(&mut self) {
        if !self.dirty {
            return;
        }
        let tmp = self.cache_file.with_extension("json.tmp");
        let ok = self.cache_file.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok())
            && std::fs::write(&tmp, serde_json::to_vec(&self.seen).unwrap_or_default()).is_ok()
            && std::fs::rename(&tmp, &self.cache_file).is_ok();
        if !ok {
            tracing::debug!(file = %self.cache_file.display(), "could not save the hash cache");
        }
        self.dirty = false;
    }

    /// The hash of `rel` (a file, a folder or a glob) under `base`; `None` when a file or
    /// folder does not exist (a glob that matches nothing hashes as an empty folder).
    pub fn hash(&mut self, base: &Path, rel: &str) -> Result<Option<Hashed>, StageError> {
        if super::is_glob(rel) {
            return self.glob(base, rel).map(Some);
        }
        let path = base.join(rel);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StageError::Io { path, source }),
        };
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(&path, "", &mut files)?;
            return self.tree(files).map(Some);
        }
        let md5 = self.file(&path, &meta)?;
        Ok(Some(Hashed { md5, size: meta.len(), nfiles: None }))
    }

    fn glob(&mut self, base: &Path, pattern: &str) -> Result<Hashed, StageError> {
        let full = base.join(pattern);
        let matches =
            glob::glob(&full.to_string_lossy()).map_err(|e| StageError::Invalid(format!("glob '{pattern}': {e}")))?;
        let mut files = Vec::new();
        for m in matches {
            let path = m.map_err(|e| StageError::Io { path: e.path().to_path_buf(), source: e.into() })?;
            let rel = path.strip_prefix(base).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                walk(&path, &rel, &mut files)?;
            } else {
                files.push((rel, path));
            }
        }
        self.tree(files)
    }

    /// DVC's folder digest over (relpath, file) pairs.
    fn tree(&mut self, mut files: Vec<(String, PathBuf)>) -> Result<Hashed, StageError> {
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files.dedup_by(|a, b| a.0 == b.0);
        let mut listing = String::with_capacity(files.len() * 64 + 2);
        listing.push('[');
        let mut size = 0;
        for (i, (rel, path)) in files.iter().enumerate() {
            let meta = std::fs::metadata(path).map_err(|source| StageError::Io { path: path.clone(), source })?;
            size += meta.len();
            let md5 = self.file(path, &meta)?;
            if i > 0 {
                listing.push_str(", ");
            }
            listing.push_str("{\"md5\": \"");
            listing.push_str(&md5);
            listing.push_str("\", \"relpath\": ");
            pyjson::write_str(rel, &mut listing);
            listing.push('}');
        }
        listing.push(']');
        Ok(Hashed {
            md5: format!("{}.dir", hex(&Md5::digest(listing.as_bytes()))),
            size,
            nfiles: Some(files.len() as u64),
        })
    }

    fn file(&mut self, path: &Path, meta: &std::fs::Metadata) -> Result<String, StageError> {
        let key = path.to_string_lossy().into_owned();
        let (ino, mtime_ns) = stamp(meta);
        if let Some(s) = self.seen.get(&key) {
            if s.ino == ino && s.size == meta.len() && s.mtime_ns == mtime_ns {
                self.reused += 1;
                return Ok(s.md5.clone());
            }
        }
        let md5 = md5_file(path)?;
        self.read += 1;
        let settled =
            meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).is_some_and(|age| age > SETTLE);
        if settled {
            self.seen.insert(key, Seen { ino, size: meta.len(), mtime_ns, md5: md5.clone() });
            self.dirty = true;
        } else if self.seen.remove(&key).is_some() {
            self.dirty = true;
        }
        Ok(md5)
    }
}

#[cfg(unix)]
fn stamp(meta: &std::fs::Metadata) -> (u64, i128) {
    use std::os::unix::fs::MetadataExt;
    (meta.ino(), i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()))
}

#[cfg(not(unix))]
fn stamp(meta: &std::fs::Metadata) -> (u64, i128) {
    let ns = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    (0, ns)
}

/// Every file under `dir` (following symlinks), as (`prefix/relpath`, path); version-control
/// folders are skipped, as DVC does, and so is our own `.factory/` (the hash cache would
/// otherwise change the hash of any folder that holds the pipeline).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), StageError> {
    let entries = std::fs::read_dir(dir).map_err(|source| StageError::Io { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| StageError::Io { path: dir.to_path_buf(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => path.is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            if matches!(name.as_str(), ".git" | ".hg" | ".dvc" | ".factory") {
                continue;
            }
            walk(&path, &rel, out)?;
        } else {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// The md5 of a file's bytes, as hex. Only regular files (symlinks followed): a device such
/// as `/dev/zero` would never end, and opening a FIFO waits for a writer.
pub fn md5_file(path: &Path) -> Result<String, StageError> {
    let io = |source| StageError::Io { path: path.to_path_buf(), source };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file or directory")));
    }
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The md5 of some bytes, as hex.
pub fn md5_bytes(b: &[u8]) -> String {
    hex(&Md5::digest(b))
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    #[test]
    fn same_hashes_as_dvc() {
        // Values written by `dvc repro` (DVC 3.67) for the same files.
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "data/raw/x.csv", "a,b\n");
        write(d.path(), "data/raw/y.csv", "c\n");
        let mut h = Hasher::open(d.path());
        let dir = h.hash(d.path(), "data/raw").unwrap().unwrap();
        assert_eq!(dir, Hashed { md5: "9b4c78ce8c233e92bc522dc893dec715.dir".into(), size: 6, nfiles: Some(2) });
        write(d.path(), "prepared.csv", "a,b\nc\n");
        let file = h.hash(d.path(), "prepared.csv").unwrap().unwrap();
        assert_eq!(file, Hashed { md5: "80f76699060cd6a4116629d65ac5b3f4".into(), size: 6, nfiles: None });
        assert_eq!(h.hash(d.path(), "nope.csv").unwrap(), None);
        // A glob over the same files is the same set.
        let g = h.hash(d.path(), "data/raw/*.csv").unwrap().unwrap();
        assert_eq!(g.nfiles, Some(2));
        assert_eq!(h.hash(d.path(), "data/*.parquet").unwrap().unwrap().nfiles, Some(0));
    }

    #[test]
    fn cache_is_reused_until_the_file_changes() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.txt", "one");
        let old = SystemTime::now() - Duration::from_secs(60);
        let f = std::fs::File::options().write(true).open(d.path().join("a.txt")).unwrap();
        f.set_modified(old).unwrap();
        let mut h = Hasher::open(d.path());
        let first = h.hash(d.path(), "a.txt").unwrap().unwrap();
        h.save();
        let mut h = Hasher::open(d.path());
        assert_eq!(h.hash(d.path(), "a.txt").unwrap().unwrap(), first);
        assert_eq!((h.read, h.reused), (0, 1));
        write(d.path(), "a.txt", "two");
        let second = h.hash(d.path(), "a.txt").unwrap().unwrap();
        assert_ne!(second, first);
        assert_eq!(h.read, 1);
    }
}
