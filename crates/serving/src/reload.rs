//! Loading a model from its URI and keeping it current.
//!
//! [`Loader`] knows where the model comes from: a local package folder, or the tracking
//! server (`models:/name@alias`, `models:/name/N`, `runs:/…`, `models:/m-…`,
//! `mlflow-artifacts:/…`). [`Loader::probe`] asks cheaply what the URI points at now (one
//! registry call for an alias, a manifest read for a folder, nothing for fixed URIs);
//! [`Loader::load`] downloads, verifies (package checksums) and warms the model up by
//! scoring the package's input example.
//!
//! [`Reloader`] is the one place that swaps models: on startup, on every poll (the alias may
//! have moved) and on `POST /admin/reload`. A new version is loaded and warmed up in the
//! background while the old one keeps serving, then swapped in atomically. A version that
//! fails to load or to warm up is refused: the old one keeps serving, health reports the
//! refusal, and polls do not retry that same version (an explicit reload does).

use mlflow_client::{Client, ModelUri};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

use crate::drift::DriftSketches;
use crate::error::LoadError;
use crate::metrics::Metrics;
use crate::predictor::{LoadedModel, Predictor};

enum Source {
    Local(PathBuf),
    Server { client: Client, uri: ModelUri },
}

/// Where the model comes from.
pub struct Loader {
    uri_text: String,
    source: Source,
    version_label: Option<String>,
}

/// What the model URI points at right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Identifies the artifact: `name/3` for a registry version, `manifest:<hash>` for a
    /// folder, the URI itself otherwise.
    pub id: String,
    pub registry_version: Option<String>,
    load: Option<ModelUri>,
}

impl Loader {
    /// `uri` as `factory serve --model-uri` takes it; `version_label` is `MODEL_VERSION`.
    pub fn new(
        uri: &str,
        tracking_uri: &str,
        auth: Option<(String, String)>,
        version_label: Option<String>,
    ) -> Result<Loader, LoadError> {
        let registry = |source| LoadError::Registry { context: format!("model URI '{uri}'"), source: Box::new(source) };
        let parsed = ModelUri::parse(uri).map_err(registry)?;
        let source = match parsed {
            ModelUri::Local(dir) => Source::Local(dir),
            other => Source::Server { client: Client::new(tracking_uri, auth).map_err(registry)?, uri: other },
        };
        Ok(Loader { uri_text: uri.to_string(), source, version_label: version_label.filter(|v| !v.is_empty()) })
    }

    pub fn uri(&self) -> &str {
        &self.uri_text
    }

    /// What the URI points at now.
    pub async fn probe(&self) -> Result<Target, LoadError> {
        match &self.source {
            Source::Local(dir) => {
                // A factory package changes with its manifest; a folder the stock client saved
                // (no manifest) with its MLmodel, which MLflow rewrites on every save.
                let manifest = dir.join(package::MANIFEST_FILE);
                let mlmodel = dir.join(package::MLMODEL_FILE);
                let stock = !tokio::fs::try_exists(&manifest).await.unwrap_or(false)
                    && tokio::fs::try_exists(&mlmodel).await.unwrap_or(false);
                let path = if stock { mlmodel } else { manifest };
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|source| LoadError::Io { context: format!("reading {}", path.display()), source })?;
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                Ok(Target { id: format!("manifest:{:016x}", h.finish()), registry_version: None, load: None })
            }
            Source::Server { client, uri } => match uri {
                ModelUri::Alias { name, alias } => {
                    let v = client.model_version_by_alias(name, alias).await.map_err(|source| LoadError::Registry {
                        context: format!("looking up alias '{alias}' of '{name}'"),
                        source: Box::new(source),
                    })?;
                    Ok(Target {
                        id: format!("{name}/{}", v.version),
                        registry_version: Some(v.version.clone()),
                        load: Some(ModelUri::Version { name: name.clone(), version: v.version }),
                    })
                }
                ModelUri::Version { name, version } => Ok(Target {
                    id: format!("{name}/{version}"),
                    registry_version: Some(version.clone()),
                    load: Some(uri.clone()),
                }),
                _ => Ok(Target { id: self.uri_text.clone(), registry_version: None, load: Some(uri.clone()) }),
            },
        }
    }

    /// Downloads (when remote), verifies and warms up the model `target` names.
    pub async fn load(&self, target: &Target) -> Result<LoadedModel, LoadError> {
        let (dir, _download) = match (&self.source, &target.load) {
            (Source::Local(dir), _) => (dir.clone(), None),
            (Source::Server { client, .. }, Some(uri)) => {
                let (artifact_uri, _) = client.resolve(uri).await.map_err(|source| LoadError::Registry {
                    context: format!("resolving {}", target.id),
                    source: Box::new(source),
                })?;
                let tmp = tempfile::tempdir()
                    .map_err(|source| LoadError::Io { context: "creating a download folder".into(), source })?;
                client.download_dir(&artifact_uri, tmp.path()).await.map_err(|source| LoadError::Registry {
                    context: format!("downloading {artifact_uri}"),
                    source: Box::new(source),
                })?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
            (Source::Server { .. }, None) => unreachable!("server targets always carry a URI"),
        };
        let (name, version_label, uri_text, source_id, registry_version) = (
            self.served_name(),
            self.version_label.clone(),
            self.uri_text.clone(),
            target.id.clone(),
            target.registry_version.clone(),
        );
        // Reading, checksumming, parsing and warming up are CPU and disk work: keep them off
        // the request threads.
        tokio::task::spawn_blocking(move || {
            let pkg = package::load(&dir).map_err(|source| LoadError::Package {
                context: format!("loading {}", dir.display()),
                source: Box::new(source),
            })?;
            warm_up(&pkg)?;
            let model_id = pkg.mlmodel.get("model_id").and_then(|v| v.as_str()).map(str::to_string);
            let run_id = pkg.mlmodel.get("run_id").and_then(|v| v.as_str()).map(str::to_string);
            let version =
                version_label.or_else(|| registry_version.clone()).or(model_id).unwrap_or_else(|| "local".into());
            Ok(LoadedModel {
                model: pkg.model,
                name,
                version,
                registry_version,
                uri: uri_text,
                source_id,
                run_id,
                loaded_at: SystemTime::now(),
                profile: pkg.profile.map(Arc::new),
                drift: None,
            })
        })
        .await
        .map_err(|e| LoadError::WarmUp(format!("the loading task failed: {e}")))?
    }

    /// The model name served (V2 paths, health, metrics).
    fn served_name(&self) -> String {
        let last = |s: &str| s.trim_end_matches('/').rsplit('/').next().unwrap_or("model").to_string();
        match &self.source {
            Source::Local(dir) => dir
                .canonicalize()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "model".into()),
            Source::Server { uri, .. } => match uri {
                ModelUri::Alias { name, .. } | ModelUri::Version { name, .. } => name.clone(),
                ModelUri::LoggedModel(id) => id.clone(),
                ModelUri::Run { path, .. } if !path.is_empty() => last(path),
                ModelUri::Run { run_id, .. } => run_id.clone(),
                ModelUri::Artifacts(p) => last(p),
                ModelUri::Local(d) => last(&d.to_string_lossy()),
            },
        }
    }
}

/// Scores the package's input example (or one all-missing row) and checks the result.
fn warm_up(pkg: &package::Package) -> Result<(), LoadError> {
    let frame = pkg.example_frame().unwrap_or_else(|| pkg.model.missing_row());
    let p = pkg.model.predict(&frame).map_err(|e| LoadError::WarmUp(e.to_string()))?;
    if p.rows != frame.n_rows() || !p.all_finite() {
        let shown = serde_json::to_string(&package::output::Mlflow(&p)).unwrap_or_default();
        return Err(LoadError::WarmUp(format!("the model returned {shown} for {} example row(s)", frame.n_rows())));
    }
    Ok(())
}

/// A version the reloader refused (or a failed registry lookup).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The target id (`name/4`, ...) or the model URI when the lookup itself failed.
    pub target: String,
    pub error: String,
    pub at: SystemTime,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadOutcome {
    Unchanged { version: String },
    Reloaded { from: Option<String>, to: String },
    Refused(Refusal),
}

/// Swaps models in the [`Predictor`]; one reload at a time.
pub struct Reloader {
    loader: Loader,
    predictor: Arc<Predictor>,
    metrics: Arc<Metrics>,
    sketches: Arc<DriftSketches>,
    lock: tokio::sync::Mutex<()>,
    refused: Mutex<Option<Refusal>>,
    last_check: Mutex<Option<SystemTime>>,
}

impl Reloader {
    pub fn new(
        loader: Loader,
        predictor: Arc<Predictor>,
        metrics: Arc<Metrics>,
        sketches: Arc<DriftSketches>,
    ) -> Reloader {
        Reloader {
            loader,
            predictor,
            metrics,
            sketches,
            lock: tokio::sync::Mutex::new(()),
            refused: Mutex::new(None),
            last_check: Mutex::new(None),
        }
    }

    pub fn uri(&self) -> &str {
        self.loader.uri()
    }

    /// The last refusal, until a later check finds a good version.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn last_check(&self) -> Option<SystemTime> {
        *self.last_check.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_refusal(&self, r: Option<Refusal>) {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }

    /// Checks the URI and swaps in a new version if it moved. `force` reloads even when the
    /// version did not change and retries a version refused before.
    pub async fn reload(&self, force: bool) -> ReloadOutcome {
        let _one_at_a_time = self.lock.lock().await;
        *self.last_check.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
        let current = self.predictor.current().ok();
        let target = match self.loader.probe().await {
            Ok(t) => t,
            Err(e) => {
                let r = Refusal { target: self.loader.uri().to_string(), error: e.to_string(), at: SystemTime::now() };
                tracing::warn!(error = %r.error, "model check failed; the current model keeps serving");
                self.metrics.observe_reload("refused");
                self.set_refusal(Some(r.clone()));
                return ReloadOutcome::Refused(r);
            }
        };
        if let Some(cur) = &current {
            if !force && cur.source_id == target.id {
                self.set_refusal(None);
                self.metrics.observe_reload("unchanged");
                return ReloadOutcome::Unchanged { version: cur.version.clone() };
            }
        }
        if !force {
            if let Some(r) = self.refusal().filter(|r| r.target == target.id) {
                // Already refused: do not download it again on every poll.
                return ReloadOutcome::Refused(r);
            }
        }
        tracing::info!(target = %target.id, "loading model");
        match self.loader.load(&target).await {
            Ok(mut model) => {
                let to = model.version.clone();
                let engine = model.model.engine();
                model.drift = self.sketches.attach(model.profile.as_ref(), &to);
                let model = Arc::new(model);
                let old = self.predictor.swap(model);
                self.set_refusal(None);
                self.metrics.observe_reload("reloaded");
                let from = old.map(|m| m.version.clone());
                tracing::info!(target = %target.id, version = %to, previous = ?from, %engine, "model serving");
                ReloadOutcome::Reloaded { from, to }
            }
            Err(e) => {
                let r = Refusal { target: target.id, error: e.to_string(), at: SystemTime::now() };
                tracing::error!(target = %r.target, error = %r.error, "new model version refused; the current model keeps serving");
                self.metrics.observe_reload("refused");
                self.set_refusal(Some(r.clone()));
                ReloadOutcome::Refused(r)
            }
        }
    }

    /// Polls every `interval` until `stop` turns true.
    pub async fn poll(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            self.reload(false).await;
        }
    }
}
