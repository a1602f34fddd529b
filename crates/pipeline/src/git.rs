//! Pipeline folders from git, polled like Kubernetes' git-sync: `--pipelines
//! git+https://host/org/repo.git#branch:subdir` (also `git+file://`, `file://` and a local
//! bare repository's path) keeps a bare mirror under the state folder, fetches the branch
//! every poll and checks each new commit out into its own worktree; the folder's pipelines
//! are then re-read from there with the usual rule: a file that does not parse or validate
//! keeps its last good version running and is reported. `--git-pull` instead runs
//! `git pull --ff-only` in a local clone.
//!
//! Why the `git` binary rather than a Rust implementation (`gix`): it is on every machine and
//! in the container image already, it speaks every transport and credential mechanism teams
//! use (https with tokens, ssh keys and agents, credential helpers, proxies), exactly as their
//! own `git` does, and it keeps a large, fast-moving dependency out of a build that would use
//! a sliver of it. Credentials come from the environment: `FACTORY_GIT_USERNAME` and
//! `FACTORY_GIT_PASSWORD` (a token) through a credential helper that reads them in git's
//! own process, so they never appear in arguments, URLs, logs or runs; ssh uses the usual
//! `GIT_SSH_COMMAND` / agent.

use crate::config::Revision;
use crate::PipelineError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where pipelines come from in git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A repository fetched into a mirror: `url` as git takes it, the branch (`None`: the
    /// remote's default) and the folder inside the repository.
    Remote { url: String, branch: Option<String>, subdir: String },
    /// A local clone updated with `git pull --ff-only` (`--git-pull`); pipelines are read
    /// from `dir` (which may be a folder inside the clone).
    Pull { dir: PathBuf },
}

impl Source {
    /// `git+<url>[#branch[:subdir]]`, `file://…`, or the path of a local bare repository;
    /// `None` when `spec` is a plain folder.
    pub fn parse(spec: &str, git_pull: bool) -> Result<Option<Source>, String> {
        if git_pull {
            if spec.contains("://") {
                return Err(format!("--git-pull takes the path of a local clone, not '{spec}'"));
            }
            return Ok(Some(Source::Pull { dir: PathBuf::from(spec) }));
        }
        let (base, fragment) = match spec.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (spec, None),
        };
        let url = if let Some(rest) = base.strip_prefix("git+") {
            rest.to_string()
        } else if base.starts_with("file://") {
            base.to_string()
        } else if is_bare_repo(Path::new(base)) {
            std::path::absolute(base).map_err(|e| format!("{base}: {e}"))?.display().to_string()
        } else if fragment.is_some() && !Path::new(spec).exists() {
            return Err(format!("'{base}' is neither a git+URL nor a bare repository"));
        } else {
            return Ok(None);
        };
        if url.is_empty() || url.starts_with('-') {
            return Err(format!("'{spec}': no repository URL"));
        }
        let (branch, subdir) = match fragment {
            None => (None, String::new()),
            Some(f) => match f.split_once(':') {
                Some((b, s)) => (Some(b.to_string()).filter(|b| !b.is_empty()), s.trim_matches('/').to_string()),
                None => (Some(f.to_string()).filter(|b| !b.is_empty()), String::new()),
            },
        };
        if branch.as_deref().is_some_and(|b| b.starts_with('-') || b.contains("..")) {
            return Err(format!("'{spec}': '{}' is not a branch name", branch.unwrap_or_default()));
        }
        if subdir.split('/').any(|c| c == "..") {
            return Err(format!("'{spec}': the folder may not leave the repository"));
        }
        Ok(Some(Source::Remote { url, branch, subdir }))
    }

    /// The URL as recorded in runs and logs: without any `user:password@`.
    pub fn display_url(&self) -> String {
        match self {
            Source::Remote { url, .. } => redact(url),
            Source::Pull { dir } => dir.display().to_string(),
        }
    }
}

/// `scheme://user:secret@host/…` → `scheme://host/…`.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() && !rest.contains('/') {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

fn is_bare_repo(p: &Path) -> bool {
    p.join("HEAD").is_file() && p.join("objects").is_dir() && p.join("refs").is_dir()
}

/// A git command with prompts off and the credential helper that reads the environment.
fn git() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_TERMINAL_PROMPT", "0").args([
        "-c",
        "credential.helper=",
        "-c",
        // Runs in git's shell: the secrets are read there, never passed as arguments.
        "credential.helper=!f() { test \"$1\" = get || exit 0; test -n \"$FACTORY_GIT_PASSWORD\" || exit 0; \
         echo \"username=${FACTORY_GIT_USERNAME:-x-access-token}\"; echo \"password=$FACTORY_GIT_PASSWORD\"; }; f",
    ]);
    c
}

fn run(cmd: &mut Command, what: &str) -> Result<String, PipelineError> {
    let out = cmd.output().map_err(|e| PipelineError::Config(format!("{what}: could not run git: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(PipelineError::Config(format!("{what}: {}", redact_all(stderr.trim()))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Any URL in git's messages loses its credentials too.
fn redact_all(text: &str) -> String {
    text.split(' ').map(|w| if w.contains("://") { redact(w) } else { w.to_string() }).collect::<Vec<_>>().join(" ")
}

/// A source being followed: where its current commit is checked out.
#[derive(Debug)]
pub struct Sync {
    pub source: Source,
    root: PathBuf,
    /// The commit last checked out and its pipeline folder.
    pub current: Option<(Revision, PathBuf)>,
}

impl Sync {
    /// `state_dir/git/<name>` holds the mirror and the checkouts.
    pub fn new(source: Source, state_dir: &Path) -> Sync {
        let key = crate::stages::hash::md5_bytes(source.display_url().as_bytes());
        let root = state_dir.join("git").join(&key[..12]);
        Sync { source, root, current: None }
    }

    /// Fetches; when the commit changed, checks it out. Returns the new (revision, folder),
    /// or `None` when nothing changed.
    pub fn poll(&mut self) -> Result<Option<(Revision, PathBuf)>, PipelineError> {
        let (revision, folder) = match &self.source {
            Source::Pull { dir } => {
                if self.current.is_some() {
                    run(git().arg("-C").arg(dir).args(["pull", "--ff-only", "--quiet"]), "git pull")?;
                }
                let commit = run(git().arg("-C").arg(dir).args(["rev-parse", "HEAD"]), "git rev-parse")?;
                let url = run(git().arg("-C").arg(dir).args(["remote", "get-url", "origin"]), "git remote")
                    .map(|u| redact(&u))
                    .unwrap_or_else(|_| dir.display().to_string());
                (Revision { url, commit }, dir.clone())
            }
            Source::Remote { url, branch, subdir } => {
                let mirror = self.root.join("mirror.git");
                if !mirror.join("HEAD").is_file() {
                    std::fs::create_dir_all(&self.root)
                        .map_err(|source| PipelineError::Io { path: self.root.clone(), source })?;
                    run(git().args(["init", "--quiet", "--bare"]).arg(&mirror), "git init")?;
                }
                let what = format!("fetching {}", redact(url));
                let refspec = branch.clone().unwrap_or_else(|| "HEAD".into());
                run(
                    git().arg("-C").arg(&mirror).args([
                        "fetch",
                        "--quiet",
                        "--no-tags",
                        "--depth",
                        "1",
                        "--",
                        url,
                        &refspec,
                    ]),
                    &what,
                )?;
                let commit = run(git().arg("-C").arg(&mirror).args(["rev-parse", "FETCH_HEAD^{commit}"]), &what)?;
                if self.current.as_ref().is_some_and(|(r, _)| r.commit == commit) {
                    return Ok(None);
                }
                let checkout = self.root.join("checkouts").join(&commit);
                if !checkout.join(".git").exists() {
                    let _ = std::fs::remove_dir_all(&checkout);
                    run(git().arg("-C").arg(&mirror).args(["worktree", "prune"]), "git worktree prune")?;
                    run(
                        git()
                            .arg("-C")
                            .arg(&mirror)
                            .args(["worktree", "add", "--quiet", "--detach", "--force"])
                            .arg(&checkout)
                            .arg(&commit),
                        &format!("checking out {commit}"),
                    )?;
                }
                let folder = if subdir.is_empty() { checkout } else { checkout.join(subdir) };
                if !folder.is_dir() {
                    return Err(PipelineError::Config(format!(
                        "{}: no folder '{subdir}' at commit {commit}; the loaded pipelines keep running",
                        redact(url)
                    )));
                }
                (Revision { url: redact(url), commit }, folder)
            }
        };
        if self.current.as_ref().is_some_and(|(r, _)| r.commit == revision.commit) {
            return Ok(None);
        }
        tracing::info!(source = %self.source.display_url(), commit = %revision.commit, "new pipeline commit");
        self.current = Some((revision.clone(), folder.clone()));
        Ok(Some((revision, folder)))
    }

    /// Removes checkouts no pipeline runs from any more (`keep`: commits still in use).
    pub fn prune(&self, keep: &[&str]) {
        let Source::Remote { .. } = self.source else { return };
        let mirror = self.root.join("mirror.git");
        let Ok(entries) = std::fs::read_dir(self.root.join("checkouts")) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let current = self.current.as_ref().is_some_and(|(r, _)| r.commit == name);
            if !current && !keep.contains(&name.as_str()) {
                let _ = run(
                    git().arg("-C").arg(&mirror).args(["worktree", "remove", "--force"]).arg(e.path()),
                    "git worktree remove",
                );
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expect: Option<Source>) {
        assert_eq!(Source::parse(spec, false).unwrap(), expect, "{spec}");
    }

    fn remote(url: &str, branch: Option<&str>, subdir: &str) -> Option<Source> {
        Some(Source::Remote { url: url.into(), branch: branch.map(String::from), subdir: subdir.into() })
    }

    #[test]
    fn source_specs() {
        check(
            "git+https://github.com/acme/ml.git#main:pipelines",
            remote("https://github.com/acme/ml.git", Some("main"), "pipelines"),
        );
        check("git+https://github.com/acme/ml.git", remote("https://github.com/acme/ml.git", None, ""));
        check("git+ssh://git@host/ml.git#release", remote("ssh://git@host/ml.git", Some("release"), ""));
        check("file:///srv/ml.git#:pipes/daily/", remote("file:///srv/ml.git", None, "pipes/daily"));
        check("./pipelines", None);
        let bare = tempfile::tempdir().unwrap();
        assert!(Command::new("git").args(["init", "-q", "--bare"]).arg(bare.path()).status().unwrap().success());
        let spec = format!("{}#main:p", bare.path().display());
        check(&spec, remote(&bare.path().display().to_string(), Some("main"), "p"));
        assert!(Source::parse("git+https://h/r.git#main:../../etc", false).is_err());
        assert!(Source::parse("git+https://h/r.git#--upload-pack=x", false).is_err());
        assert!(Source::parse("/nope/repo#main", false).is_err());
        assert_eq!(Source::parse("./clone", true).unwrap(), Some(Source::Pull { dir: "./clone".into() }));
    }

    #[test]
    fn credentials_never_leave_the_url() {
        assert_eq!(redact("https://bot:s3cret@github.com/acme/ml.git"), "https://github.com/acme/ml.git");
        assert_eq!(redact("https://github.com/acme/ml.git"), "https://github.com/acme/ml.git");
        assert_eq!(
            redact_all("fatal: unable to access 'https://u:p@h/r.git/': 403"),
            "fatal: unable to access 'https://h/r.git/': 403"
        );
    }

    #[test]
    fn the_credential_helper_reads_the_environment() {
        // What git asks a helper for an https remote, answered from FACTORY_GIT_*.
        let out = git()
            .args(["credential", "fill"])
            .env("FACTORY_GIT_PASSWORD", "t0ken")
            .env_remove("FACTORY_GIT_USERNAME")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"protocol=https\nhost=git.example\n\n")?;
                c.wait_with_output()
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("username=x-access-token\n") && text.contains("password=t0ken\n"), "{text}");
    }

    #[test]
    fn follows_a_bare_repository_commit_by_commit() {
        let d = tempfile::tempdir().unwrap();
        let bare = d.path().join("repo.git");
        let work = d.path().join("work");
        let sh = |args: &[&str], cwd: &Path| {
            let ok = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
                .args(args)
                .current_dir(cwd)
                .status()
                .unwrap()
                .success();
            assert!(ok, "{args:?}");
        };
        sh(&["init", "-q", "--bare", bare.to_str().unwrap()], d.path());
        sh(&["clone", "-q", bare.to_str().unwrap(), work.to_str().unwrap()], d.path());
        std::fs::create_dir_all(work.join("p")).unwrap();
        std::fs::write(work.join("p/a.toml"), "one").unwrap();
        sh(&["add", "."], &work);
        sh(&["commit", "-qm", "one"], &work);
        sh(&["push", "-q", "origin", "HEAD:main"], &work);
        let spec = format!("{}#main:p", bare.display());
        let mut sync = Sync::new(Source::parse(&spec, false).unwrap().unwrap(), &d.path().join("state"));
        let (r1, f1) = sync.poll().unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(f1.join("a.toml")).unwrap(), "one");
        assert!(sync.poll().unwrap().is_none(), "same commit: nothing to do");
        std::fs::write(work.join("p/a.toml"), "two").unwrap();
        sh(&["commit", "-qam", "two"], &work);
        sh(&["push", "-q", "origin", "HEAD:main"], &work);
        let (r2, f2) = sync.poll().unwrap().unwrap();
        assert_ne!(r1.commit, r2.commit);
        assert_eq!(std::fs::read_to_string(f2.join("a.toml")).unwrap(), "two");
        assert_eq!(std::fs::read_to_string(f1.join("a.toml")).unwrap(), "one", "the old checkout stays until pruned");
        sync.prune(&[]);
        assert!(!f1.exists() && f2.exists());

        // --git-pull: a local clone, fast-forwarded in place.
        let clone = d.path().join("clone");
        sh(&["clone", "-q", bare.to_str().unwrap(), clone.to_str().unwrap()], d.path());
        let mut pull = Sync::new(
            Source::parse(clone.join("p").to_str().unwrap(), true).unwrap().unwrap(),
            &d.path().join("state"),
        );
        let (p1, folder) = pull.poll().unwrap().unwrap();
        assert_eq!((p1.commit.as_str(), p1.url.as_str()), (r2.commit.as_str(), bare.to_str().unwrap()));
        assert!(pull.poll().unwrap().is_none());
        std::fs::write(work.join("p/a.toml"), "three").unwrap();
        sh(&["commit", "-qam", "three"], &work);
        sh(&["push", "-q", "origin", "HEAD:main"], &work);
        let (p2, _) = pull.poll().unwrap().unwrap();
        assert_ne!(p2.commit, p1.commit);
        assert_eq!(std::fs::read_to_string(folder.join("a.toml")).unwrap(), "three");
    }
}
