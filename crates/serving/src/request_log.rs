//! The request log: every scored row, with its timestamp, the model version that scored it
//! and the prediction — the production data `factory drift` compares with the training set.
//!
//! The request path only moves the request's frame and predictions into a bounded queue
//! (`try_send`, never blocking; a full queue drops the entry and counts it in
//! `factory_request_log_rows_total{outcome="dropped"}`). One writer thread owns the files:
//! it drains the queue, writes, and hands its buffers to the OS whenever the queue is empty,
//! so a crash loses at most what was still queued. [`RequestLog::close`] (called on graceful
//! shutdown, after the servers stopped accepting requests) drains everything, flushes and
//! fsyncs.
//!
//! Files, in the `--request-log` folder, named `requests-<UTC time opened>-<seq>.<ext>` so
//! that a plain sort is chronological; a file is closed and the next one opened once it
//! reaches the size limit, and a CSV file also when the model's columns change:
//!
//! - `.jsonl` — one JSON object per row:
//!   `{"timestamp":"2025-06-01T12:00:00.123456Z","request_id":"6f1c…","model_version":"3",
//!   "prediction":206855.8,"features":{"longitude":-122.23,...,"ocean_proximity":"NEAR BAY"}}`;
//!   a missing value is `null`; a binary classifier's row has `"prediction"` (its label, 0 or
//!   1 by the serving threshold) and `"probability"` (of class 1);
//! - `.csv` — a header with the feature columns in signature order, then the output column
//!   (`prediction`; a classifier's `prediction` and `probability`), `model_version`,
//!   `timestamp` and `request_id`; a missing value is an empty field. This is what
//!   `factory drift --current` reads directly.
//!
//! Numbers are written with the shortest text that reads back to the same `f64`.

use learn::{ColumnData, Frame};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::metrics::Metrics;
use crate::predictor::LoadedModel;

/// Which files the request log writes, and where.
#[derive(Debug, Clone)]
pub struct RequestLogConfig {
    pub dir: PathBuf,
    /// A file is rotated once it holds at least this many bytes.
    pub max_file_bytes: u64,
    pub jsonl: bool,
    pub csv: bool,
    /// Entries (requests) queued before new ones are dropped.
    pub queue_capacity: usize,
}

impl RequestLogConfig {
    /// Both formats, 64 MiB files, 65 536 queued requests.
    pub fn new(dir: PathBuf) -> Self {
        RequestLogConfig { dir, max_file_bytes: 64 << 20, jsonl: true, csv: true, queue_capacity: 65_536 }
    }
}

/// One scored request.
pub struct Entry {
    pub timestamp: SystemTime,
    /// The request's id ([`crate::request_id`]); rows of a multi-row request get `<id>:<row>`.
    pub request_id: String,
    pub model: Arc<LoadedModel>,
    pub frame: Frame,
    pub predictions: Vec<f64>,
    /// A binary classifier's labels (then `predictions` are the probabilities).
    pub labels: Option<Vec<i64>>,
}

enum Msg {
    Entry(Entry),
    Close(mpsc::Sender<io::Result<()>>),
}

/// The request log's queue and writer thread.
pub struct RequestLog {
    tx: SyncSender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl RequestLog {
    /// Creates the folder and starts the writer thread.
    pub fn open(cfg: RequestLogConfig, metrics: Arc<Metrics>) -> io::Result<RequestLog> {
        std::fs::create_dir_all(&cfg.dir)?;
        let (tx, rx) = mpsc::sync_channel(cfg.queue_capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || Writer { cfg, jsonl: None, csv: None }.run(rx))?;
        Ok(RequestLog { tx, thread: Mutex::new(Some(thread)), metrics })
    }

    /// Queues an entry; never blocks.
    pub fn log(&self, entry: Entry) {
        let rows = entry.frame.n_rows();
        match self.tx.try_send(Msg::Entry(entry)) {
            Ok(()) => self.metrics.observe_log(rows, false),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.metrics.observe_log(rows, true),
        }
    }

    /// Writes everything queued so far, fsyncs and stops the writer. Blocks; idempotent.
    pub fn close(&self) -> io::Result<()> {
        let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = mpsc::channel();
        let result = match self.tx.send(Msg::Close(ack_tx)) {
            Ok(()) => ack_rx.recv().unwrap_or_else(|_| Err(io::Error::other("the request log writer stopped"))),
            Err(_) => Err(io::Error::other("the request log writer stopped")),
        };
        let _ = thread.join();
        result
    }
}

/// An open output file.
struct Sink {
    out: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
}

impl Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.bytes += buf.len() as u64;
        self.out.write_all(buf)
    }

    fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Creates a new, not yet existing `requests-<time>-<seq>.<ext>` file.
fn create(dir: &Path, ext: &str) -> io::Result<Sink> {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    loop {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("requests-{stamp}-{seq:05}.{ext}"));
        match File::options().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok(Sink { out: BufWriter::with_capacity(64 << 10, f), path, bytes: 0 }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

struct Writer {
    cfg: RequestLogConfig,
    jsonl: Option<Sink>,
    /// The CSV file and its header line.
    csv: Option<(Sink, String)>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut pending_error = false;
        while let Ok(msg) = rx.recv() {
            let mut next = Some(msg);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Entry(e) => {
                        if let Err(err) = self.write(&e) {
                            if !pending_error {
                                tracing::error!("request log: {err}; rows are being lost");
                            }
                            pending_error = true;
                        } else {
                            pending_error = false;
                        }
                    }
                    Msg::Close(ack) => {
                        let _ = ack.send(self.finish());
                        return;
                    }
                }
                next = rx.try_recv().ok();
            }
            // The queue is empty: hand the buffers to the OS so a crash loses nothing written.
            if let Err(err) = self.flush() {
                tracing::error!("request log: flushing: {err}");
            }
        }
        let _ = self.finish();
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(s) = &mut self.jsonl {
            s.out.flush()?;
        }
        if let Some((s, _)) = &mut self.csv {
            s.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let a = self.jsonl.take().map_or(Ok(()), Sink::finish);
        let b = self.csv.take().map_or(Ok(()), |(s, _)| s.finish());
        a.and(b)
    }

    fn write(&mut self, e: &Entry) -> io::Result<()> {
        let timestamp = humantime::format_rfc3339_micros(e.timestamp).to_string();
        if self.cfg.jsonl {
            let buf = jsonl_rows(e, &timestamp);
            let sink = match &mut self.jsonl {
                Some(s) => s,
                None => self.jsonl.insert(create(&self.cfg.dir, "jsonl")?),
            };
            sink.write(&buf)?;
            if sink.bytes >= self.cfg.max_file_bytes {
                let done = self.jsonl.take().expect("open");
                tracing::info!(path = %done.path.display(), "request log file complete");
                done.finish()?;
            }
        }
        if self.cfg.csv {
            let header = csv_header(e);
            if self.csv.as_ref().is_some_and(|(_, h)| *h != header) {
                let (done, _) = self.csv.take().expect("open");
                done.finish()?;
            }
            let (sink, _) = match &mut self.csv {
                Some(s) => s,
                None => {
                    let mut sink = create(&self.cfg.dir, "csv")?;
                    sink.write(header.as_bytes())?;
                    self.csv.insert((sink, header))
                }
            };
            sink.write(&csv_rows(e, &timestamp))?;
            if sink.bytes >= self.cfg.max_file_bytes {
                let (done, _) = self.csv.take().expect("open");
                tracing::info!(path = %done.path.display(), "request log file complete");
                done.finish()?;
            }
        }
        Ok(())
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn json_f64(x: f64) -> String {
    // serde_json writes NaN/inf as null and finite values in shortest round-trip form.
    serde_json::to_string(&x).expect("floats serialise")
}

/// The JSON Lines for one entry.
fn jsonl_rows(e: &Entry, timestamp: &str) -> Vec<u8> {
    let time = format!("{{\"timestamp\":{},\"request_id\":", json_str(timestamp));
    // Then the label (classifiers) and the score under its name.
    let head = match e.labels {
        Some(_) => format!(",\"model_version\":{},\"prediction\":", json_str(&e.model.version)),
        None => format!(",\"model_version\":{},\"{}\":", json_str(&e.model.version), e.model.output_name()),
    };
    let keys: Vec<String> = e.frame.columns().iter().map(|c| json_str(&c.name)).collect();
    let mut out = Vec::with_capacity(e.frame.n_rows() * 256);
    let rows = e.predictions.len();
    for (row, p) in e.predictions.iter().enumerate() {
        out.extend_from_slice(time.as_bytes());
        out.extend_from_slice(json_str(&crate::request_id::row_key(&e.request_id, row, rows)).as_bytes());
        out.extend_from_slice(head.as_bytes());
        if let Some(labels) = &e.labels {
            out.extend_from_slice(labels[row].to_string().as_bytes());
            out.extend_from_slice(b",\"probability\":");
        }
        out.extend_from_slice(json_f64(*p).as_bytes());
        out.extend_from_slice(b",\"features\":{");
        for (j, (c, key)) in e.frame.columns().iter().zip(&keys).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b':');
            let v = match &c.data {
                ColumnData::Numeric(v) => json_f64(v[row]),
                ColumnData::Categorical(v) | ColumnData::Text(v) => {
                    v[row].as_deref().map_or("null".to_string(), json_str)
                }
            };
            out.extend_from_slice(v.as_bytes());
        }
        out.extend_from_slice(b"}}\n");
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_header(e: &Entry) -> String {
    let mut cols: Vec<String> = e.frame.columns().iter().map(|c| csv_field(&c.name)).collect();
    match e.labels {
        Some(_) => cols.extend(["prediction".into(), "probability".into()]),
        None => cols.push(e.model.output_name().to_string()),
    }
    cols.extend(["model_version".into(), "timestamp".into(), "request_id".into()]);
    cols.join(",") + "\n"
}

fn csv_rows(e: &Entry, timestamp: &str) -> Vec<u8> {
    let tail = format!(",{},{timestamp},", csv_field(&e.model.version));
    let mut out = String::with_capacity(e.frame.n_rows() * 128);
    let rows = e.predictions.len();
    for (row, p) in e.predictions.iter().enumerate() {
        for c in e.frame.columns() {
            match &c.data {
                ColumnData::Numeric(v) if v[row].is_nan() => {}
                ColumnData::Numeric(v) => out.push_str(&v[row].to_string()),
                ColumnData::Categorical(v) | ColumnData::Text(v) => {
                    out.push_str(&v[row].as_deref().map(csv_field).unwrap_or_default())
                }
            }
            out.push(',');
        }
        if let Some(labels) = &e.labels {
            out.push_str(&labels[row].to_string());
            out.push(',');
        }
        out.push_str(&p.to_string());
        out.push_str(&tail);
        out.push_str(&csv_field(&crate::request_id::row_key(&e.request_id, row, rows)));
        out.push('\n');
    }
    out.into_bytes()
}
