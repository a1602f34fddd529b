//! [`Serving`]: the protocol-neutral operations every adapter calls — pick the model for a
//! request, score a frame (batching, metrics, request log), report health and metadata,
//! reload. The HTTP routes and the gRPC methods are thin: parse → call one of these → map.

use learn::Frame;
use package::Predictions;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

use crate::batch::{BatchConfig, Batcher};
use crate::drift::DriftSketches;
use crate::error::{LoadError, RunError, ServeError};
use crate::metrics::Metrics;
use crate::predictor::{LoadedModel, Predictor};
use crate::reload::{Loader, Refusal, ReloadOutcome, Reloader};
use crate::request_log::{Entry, RequestLog, RequestLogConfig};
use crate::tensor::{datatype_for, frame_from_tensors, split_wide_inputs, Tensor};

/// Batches at least this large are scored on the blocking pool, not on a request thread.
const BLOCKING_ROWS: usize = 2048;

/// Everything `serve` needs to know, validated by the caller (the binary reads flags and
/// the environment; this crate never does).
#[derive(Debug, Clone)]
pub struct Config {
    /// `models:/name@alias`, `models:/name/N`, `runs:/…`, `models:/m-…`, `mlflow-artifacts:/…`
    /// or a local package folder.
    pub model_uri: String,
    pub tracking_uri: String,
    pub auth: Option<(String, String)>,
    /// The version label to report instead of the registry version (`MODEL_VERSION`).
    pub version_label: Option<String>,
    /// How often to ask the registry whether the alias moved; `None` = never.
    pub poll_interval: Option<Duration>,
    pub max_body_bytes: usize,
    pub request_log: Option<RequestLogConfig>,
    pub batching: Option<BatchConfig>,
    /// How long graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Timeouts and connection limits of the listeners.
    pub limits: listener::Limits,
    /// Largest gRPC message accepted (`None`: `max_body_bytes`).
    pub grpc_max_message_bytes: Option<usize>,
    /// Bearer tokens the admin listener requires (`None`: none, allowed on loopback only).
    pub admin_tokens: Option<admin_api::Tokens>,
    /// A binary classifier's decision threshold: `label` is 1 when the probability is at least
    /// this (in [0, 1]).
    pub threshold: f64,
    /// Online drift: sketch what models with a drift profile score, in windows of this length
    /// kept this long (`None`: off).
    pub drift: Option<sketch::RecorderConfig>,
}

impl Config {
    /// Defaults for everything but the URI: no polling, 16 MiB bodies, no request log, no
    /// batching, 10 s grace, online drift in 5-minute windows kept a day.
    pub fn new(model_uri: impl Into<String>, tracking_uri: impl Into<String>) -> Config {
        Config {
            model_uri: model_uri.into(),
            tracking_uri: tracking_uri.into(),
            auth: None,
            version_label: None,
            poll_interval: None,
            max_body_bytes: 16 << 20,
            request_log: None,
            batching: None,
            shutdown_grace: Duration::from_secs(10),
            limits: listener::Limits::default(),
            grpc_max_message_bytes: None,
            admin_tokens: None,
            threshold: 0.5,
            drift: Some(sketch::RecorderConfig::default()),
        }
    }
}

/// Health as reported by `/health` (plain data; the adapters choose the wire form).
#[derive(Debug, Clone)]
pub struct Health {
    pub model: Option<Arc<LoadedModel>>,
    pub model_uri: String,
    pub refusal: Option<Refusal>,
    pub last_check: Option<SystemTime>,
    pub started_at: SystemTime,
    pub stopping: bool,
}

/// One input or output of a model, as V2 metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMeta {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

/// V2 model metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMeta {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMeta>,
    pub outputs: Vec<TensorMeta>,
}

/// The serving core shared by every protocol.
pub struct Serving {
    pub predictor: Arc<Predictor>,
    pub reloader: Arc<Reloader>,
    pub metrics: Arc<Metrics>,
    pub sketches: Arc<DriftSketches>,
    request_log: Option<RequestLog>,
    batcher: Option<Batcher>,
    pub max_body_bytes: usize,
    pub poll_interval: Option<Duration>,
    pub shutdown_grace: Duration,
    pub limits: listener::Limits,
    pub grpc_max_message_bytes: usize,
    pub admin_tokens: Option<admin_api::Tokens>,
    pub threshold: f64,
    stopping: watch::Sender<bool>,
    started_at: SystemTime,
}

impl Serving {
    /// Builds the core (opens the request log, starts the batcher); loads no model yet.
    /// Call inside a Tokio runtime.
    pub fn new(cfg: Config) -> Result<Arc<Serving>, RunError> {
        let metrics = Arc::new(Metrics::default());
        let predictor = Arc::new(Predictor::default());
        let loader = Loader::new(&cfg.model_uri, &cfg.tracking_uri, cfg.auth.clone(), cfg.version_label.clone())
            .map_err(RunError::Load)?;
        let sketches = Arc::new(DriftSketches::new(cfg.drift));
        let reloader = Arc::new(Reloader::new(loader, predictor.clone(), metrics.clone(), sketches.clone()));
        let request_log = match cfg.request_log {
            Some(log) => {
                let dir = log.dir.clone();
                Some(RequestLog::open(log, metrics.clone()).map_err(|source| RunError::Io {
                    context: format!("opening the request log in {}", dir.display()),
                    source,
                })?)
            }
            None => None,
        };
        let batcher = cfg.batching.filter(|b| b.max_batch_rows > 1).map(|b| Batcher::start(b, metrics.clone()));
        Ok(Arc::new(Serving {
            predictor,
            reloader,
            metrics,
            sketches,
            request_log,
            batcher,
            max_body_bytes: cfg.max_body_bytes,
            poll_interval: cfg.poll_interval,
            shutdown_grace: cfg.shutdown_grace,
            grpc_max_message_bytes: cfg.grpc_max_message_bytes.unwrap_or(cfg.max_body_bytes),
            limits: cfg.limits,
            admin_tokens: cfg.admin_tokens,
            threshold: cfg.threshold,
            stopping: watch::channel(false).0,
            started_at: SystemTime::now(),
        }))
    }

    /// The model serving now.
    pub fn model(&self) -> Result<Arc<LoadedModel>, ServeError> {
        self.predictor.current()
    }

    /// The model serving now, if it is the one named (V2 paths name model and version).
    pub fn model_named(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, ServeError> {
        let m = self.model()?;
        m.check_name(name, version)?;
        Ok(m)
    }

    /// Scores a frame decoded against `model`'s schema with `model` (never with a model
    /// swapped in meanwhile), and logs the rows under `request_id`.
    pub async fn score(
        &self,
        model: &Arc<LoadedModel>,
        frame: Frame,
        request_id: &str,
    ) -> Result<Predictions, ServeError> {
        let rows = frame.n_rows();
        let (frame, predictions) = match &self.batcher {
            Some(b) if rows < b.config.max_batch_rows => {
                model.check_input(&frame)?;
                b.predict(model.clone(), frame).await?
            }
            _ if rows >= BLOCKING_ROWS => {
                let m = model.clone();
                let (frame, p) = tokio::task::spawn_blocking(move || {
                    let p = m.predict(&frame);
                    (frame, p)
                })
                .await
                .map_err(|e| ServeError::Predict(e.to_string()))?;
                self.metrics.observe_batch(rows);
                (frame, p?)
            }
            _ => {
                let p = model.predict(&frame)?;
                self.metrics.observe_batch(rows);
                (frame, p)
            }
        };
        if let Some(recorder) = &model.drift {
            observe(recorder, &frame);
        }
        let mut predictions = predictions;
        // One number per row (a classifier's probability), read once for the labels and the log.
        let classifier = model.binary_classifier();
        let scores = if classifier || self.request_log.is_some() { predictions.scores() } else { Vec::new() };
        let labels = classifier.then(|| self.labels(&scores));
        if let Some(l) = &labels {
            // After the probability: MLflow scoring answers with the first output only, as
            // `mlflow models serve` does for the model's pyfunc; V2 lists both.
            let values = formats::Values::I64(l.clone());
            predictions.outputs.push(formats::Tensor { name: "label".into(), shape: vec![l.len()], values });
            predictions.class_labels.push(None);
        }
        if let Some(log) = &self.request_log {
            log.log(Entry {
                timestamp: SystemTime::now(),
                request_id: request_id.to_string(),
                model: model.clone(),
                frame,
                predictions: scores,
                labels,
            });
        }
        Ok(predictions)
    }

    pub fn health(&self) -> Health {
        Health {
            model: self.predictor.current().ok(),
            model_uri: self.reloader.uri().to_string(),
            refusal: self.reloader.refusal(),
            last_check: self.reloader.last_check(),
            started_at: self.started_at,
            stopping: *self.stopping.borrow(),
        }
    }

    /// Ready to score: a model is loaded and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        self.predictor.is_ready() && !*self.stopping.borrow()
    }

    /// The Prometheus exposition (`GET /metrics` here and on `--metrics-listen`).
    pub fn render_metrics(&self) -> String {
        let model = self.model().ok();
        self.metrics.render(model.as_deref(), self.is_ready(), self.sketches.collector())
    }

    /// A binary classifier's labels from its probabilities of the positive class: 1 where
    /// the probability is at least the threshold (a NaN probability is 0).
    fn labels(&self, probabilities: &[f64]) -> Vec<i64> {
        probabilities.iter().map(|&s| i64::from(s >= self.threshold)).collect()
    }

    /// V2 metadata of the model serving now: an ONNX model's own inputs (name, type,
    /// shape), else one input per column; the model's outputs.
    pub fn metadata(&self, model: &LoadedModel) -> ModelMeta {
        let inputs = match model.model.onnx_inputs() {
            Some(specs) => specs
                .iter()
                .map(|s| TensorMeta { name: s.name.clone(), datatype: s.elem.v2_name(), shape: s.shape.clone() })
                .collect(),
            None => model
                .schema()
                .fields
                .iter()
                .map(|f| TensorMeta { name: f.name.to_string(), datatype: datatype_for(f.kind), shape: vec![-1] })
                .collect(),
        };
        let platform = match model.model.flavor() {
            package::Flavor::Factory => format!("factory-{}", model.model.kind()),
            package::Flavor::Onnx => "onnxruntime_onnx".into(),
            other => other.name().into(),
        };
        ModelMeta {
            name: model.name.clone(),
            versions: vec![model.version.clone()],
            platform,
            inputs,
            outputs: model
                .model
                .outputs()
                .iter()
                .map(|o| TensorMeta { name: o.name.clone(), datatype: o.elem.v2_name(), shape: o.shape.clone() })
                .chain(model.binary_classifier().then(|| TensorMeta {
                    name: "label".into(),
                    datatype: "INT64",
                    shape: vec![-1],
                }))
                .collect(),
        }
    }

    /// The frame a V2 request's tensors give `model`. A tensor named like an ONNX input
    /// that spans several columns (`X` `[n, 8]`) is split into those columns first, so
    /// clients can send exactly what the metadata lists.
    pub fn frame_from_v2(&self, model: &LoadedModel, tensors: Vec<Tensor>) -> Result<Frame, ServeError> {
        let schema = model.schema();
        match model.model.onnx_inputs() {
            None => frame_from_tensors(tensors, schema),
            Some(specs) => frame_from_tensors(split_wide_inputs(specs, schema, tensors)?, schema),
        }
    }

    /// Checks the model URI now and swaps in a new version if there is one.
    pub async fn reload(&self, force: bool) -> ReloadOutcome {
        self.reloader.reload(force).await
    }

    /// Loads the first model; an error here means there is nothing to serve.
    pub async fn load_initial(&self) -> Result<(), LoadError> {
        match self.reload(true).await {
            ReloadOutcome::Refused(r) => Err(LoadError::WarmUp(format!("{}: {}", r.target, r.error))),
            _ => Ok(()),
        }
    }

    /// Turns true when shutdown begins (ends gRPC health watches, fails readiness).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Writes out and closes the request log (blocking; call after the servers stopped).
    pub fn close_request_log(&self) -> std::io::Result<()> {
        self.request_log.as_ref().map_or(Ok(()), RequestLog::close)
    }
}

/// Counts a scored frame in the model's drift sketches (columns by name: a frame decoded for
/// the model holds its columns in the schema's order, as the profile does, so each name is
/// looked for first right after the previous one found).
fn observe(recorder: &sketch::Recorder, frame: &Frame) {
    let columns = frame.columns();
    let next = std::cell::Cell::new(0);
    recorder.observe(frame.n_rows(), |name| {
        let i = next.get();
        let at = match columns.get(i) {
            Some(c) if *c.name == *name => Some(i),
            _ => columns.iter().position(|c| *c.name == *name),
        };
        next.set(at.map_or(i, |a| a + 1));
        match at.map(|a| &columns[a].data) {
            Some(learn::ColumnData::Numeric(v)) => sketch::Values::Numeric(v),
            Some(learn::ColumnData::Categorical(v)) => sketch::Values::Categorical(v),
            _ => sketch::Values::Absent,
        }
    });
}
