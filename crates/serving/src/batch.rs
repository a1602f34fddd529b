//! Adaptive batching: concurrent small requests are scored in one model call.
//!
//! Requests go into a queue; one collector task takes the first waiting request, then
//! everything else already queued for the same model (up to `max_batch_rows`), waits up to
//! `max_wait` for more when the batch is still small, and hands the batch to a worker. At
//! most `workers` batches run at once, so under load requests pile up while the workers are
//! busy and the next batch is larger — the batch size adapts to the load, and an idle
//! server with `max_wait = 0` adds no delay at all.
//!
//! Whether this helps depends on how much of a model call is per-call overhead; for the
//! tree models here it does not pay (see docs/serving.md), so `factory serve` leaves it
//! off unless `--batch-max-rows` is given.

use learn::{Column, ColumnData, Frame};
use package::Predictions;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::predictor::LoadedModel;

/// Batching limits.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    pub max_batch_rows: usize,
    pub max_wait: Duration,
    /// Batches scored at the same time (usually the number of cores).
    pub workers: usize,
}

type Reply = oneshot::Sender<Result<(Frame, Predictions), ServeError>>;

struct Job {
    model: Arc<LoadedModel>,
    frame: Frame,
    reply: Reply,
}

/// The queue in front of the model.
pub struct Batcher {
    tx: mpsc::UnboundedSender<Job>,
    pub config: BatchConfig,
}

impl Batcher {
    /// Starts the collector task on the current runtime.
    pub fn start(config: BatchConfig, metrics: Arc<Metrics>) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(collect(rx, config, metrics));
        Batcher { tx, config }
    }

    /// Scores `frame` (already validated) with `model`, possibly together with other
    /// requests; returns the frame with its predictions.
    pub async fn predict(&self, model: Arc<LoadedModel>, frame: Frame) -> Result<(Frame, Predictions), ServeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { model, frame, reply }).map_err(|_| ServeError::NotReady)?;
        rx.await.map_err(|_| ServeError::NotReady)?
    }
}

async fn collect(mut rx: mpsc::UnboundedReceiver<Job>, cfg: BatchConfig, metrics: Arc<Metrics>) {
    let permits = Arc::new(Semaphore::new(cfg.workers.max(1)));
    let mut carry: Option<Job> = None;
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        let mut rows = first.frame.n_rows();
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + cfg.max_wait;
        while rows < cfg.max_batch_rows {
            let next = match rx.try_recv() {
                Ok(j) => Some(j),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if cfg.max_wait.is_zero() => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv()).await.ok().flatten()
                }
            };
            let Some(j) = next else { break };
            if !Arc::ptr_eq(&j.model, &jobs[0].model) || rows + j.frame.n_rows() > cfg.max_batch_rows {
                carry = Some(j);
                break;
            }
            rows += j.frame.n_rows();
            jobs.push(j);
        }
        let metrics = metrics.clone();
        tokio::spawn(async move {
            run(jobs, rows, &metrics);
            drop(permit);
        });
    }
}

/// Scores a batch in one model call and answers every request.
fn run(jobs: Vec<Job>, rows: usize, metrics: &Metrics) {
    metrics.observe_batch(rows);
    if jobs.len() == 1 {
        let job = jobs.into_iter().next().expect("one job");
        let result = job.model.predict(&job.frame);
        let _ = job.reply.send(result.map(|p| (job.frame, p)));
        return;
    }
    let model = jobs[0].model.clone();
    let merged = concat(jobs.iter().map(|j| &j.frame), rows);
    match merged.and_then(|f| model.predict(&f)) {
        Ok(all) => {
            let mut at = 0;
            for job in jobs {
                let n = job.frame.n_rows();
                let _ = job.reply.send(Ok((job.frame, all.slice_rows(at, at + n))));
                at += n;
            }
        }
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(ServeError::Predict(e.to_string())));
            }
        }
    }
}

/// Stacks frames with the same columns (matched by name: CSV keeps the file's order).
fn concat<'a>(frames: impl Iterator<Item = &'a Frame> + Clone, rows: usize) -> Result<Frame, ServeError> {
    let first = frames.clone().next().ok_or(ServeError::NotReady)?;
    let mut columns = Vec::with_capacity(first.columns().len());
    let differ = || ServeError::Predict("batched frames have different columns".into());
    for c in first.columns() {
        let data = match &c.data {
            ColumnData::Numeric(_) => {
                let mut v = Vec::with_capacity(rows);
                for f in frames.clone() {
                    match f.column(&c.name).map(|c| &c.data) {
                        Some(ColumnData::Numeric(x)) => v.extend_from_slice(x),
                        _ => return Err(differ()),
                    }
                }
                ColumnData::Numeric(v)
            }
            ColumnData::Categorical(_) | ColumnData::Text(_) => {
                let mut v = Vec::with_capacity(rows);
                for f in frames.clone() {
                    match f.column(&c.name).map(|c| &c.data) {
                        Some(d) if d.kind() == c.kind() => v.extend_from_slice(d.strings().unwrap_or_default()),
                        _ => return Err(differ()),
                    }
                }
                ColumnData::from_strings(c.kind(), v)
            }
        };
        columns.push(Column { name: c.name.clone(), data });
    }
    Frame::from_columns(columns).map_err(|e| ServeError::Predict(e.to_string()))
}
