//! Labels that arrive after the predictions they judge: a CSV of `(request id, true label)`
//! joined to the current data's `(request id, prediction, probability)` rows by request id,
//! feeding the joined rows into [`Outcomes`] for realised performance.
//!
//! The join is a partitioned hash join, so memory stays bounded whatever the row counts:
//! when both files together exceed the memory budget, both are first split by a hash of the
//! request id into temporary partition files, and each partition is then joined in memory.
//! Every request id must be present and unique on both sides, and every label must find its
//! prediction; anything else is an error that names the file, the row and the id.

use crate::error::{DriftError, Result};
use crate::fields::is_na;
use crate::outcome::{OutcomePlan, OutcomeTally, Outcomes};
use crate::runs::Budget;
use crate::text::word_hash;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Partition files per side at most (each open with a small buffer while splitting).
const MAX_PARTITIONS: u64 = 256;
/// Rows observed between two merges into the shared outcomes.
const BATCH: u64 = 1 << 16;
/// Unknown ids named in the error message.
const EXAMPLES: usize = 5;

/// What to join.
#[derive(Clone, Copy, Debug)]
pub struct JoinSpec<'a> {
    /// The labels CSV.
    pub labels: &'a Path,
    /// The current CSV (predictions).
    pub current: &'a Path,
    /// Request id column, in both files.
    pub id_column: &'a str,
    /// True-label column in the labels file.
    pub target: &'a str,
    /// Prediction column in the current file (absent: derived from the probability).
    pub prediction: Option<&'a str>,
    /// Probability column in the current file.
    pub probability: Option<&'a str>,
    /// Threshold for derived predictions.
    pub threshold: f64,
    /// Memory for the in-memory join of one partition.
    pub memory: usize,
    /// Where partition files go.
    pub temp_dir: Option<&'a Path>,
}

/// How the join went.
#[derive(Clone, Copy, Debug, Default)]
pub struct JoinSummary {
    /// Label rows (each matched a prediction).
    pub labels: u64,
    /// Current rows.
    pub current_rows: u64,
    /// Partitions used (1: joined in memory directly).
    pub partitions: u64,
}

/// One side's row: its number in the file (from 1), its id and up to two more fields.
struct Row {
    line: u64,
    id: Vec<u8>,
    a: Option<Vec<u8>>,
    b: Option<Vec<u8>>,
}

/// Reads a CSV's rows as [`Row`]s of the named columns.
struct Source {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    record: csv::ByteRecord,
    id: usize,
    a: Option<usize>,
    b: Option<usize>,
    line: u64,
}

impl Source {
    fn open(path: &Path, id: &str, a: Option<&str>, b: Option<&str>) -> Result<Source> {
        let file = File::open(path).map_err(|e| DriftError::io(path, e))?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(BufReader::with_capacity(1 << 16, file));
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| DriftError::Csv { path: path.into(), message: e.to_string() })?
            .iter()
            .map(str::to_owned)
            .collect();
        let find = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| DriftError::MissingColumn {
                column: name.to_owned(),
                path: path.into(),
                available: headers.join(", "),
            })
        };
        Ok(Source {
            path: path.into(),
            id: find(id)?,
            a: a.map(find).transpose()?,
            b: b.map(find).transpose()?,
            reader,
            record: csv::ByteRecord::new(),
            line: 0,
        })
    }

    fn next(&mut self) -> Result<Option<Row>> {
        let more = self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(|e| DriftError::Csv { path: self.path.clone(), message: e.to_string() })?;
        if !more {
            return Ok(None);
        }
        self.line += 1;
        let get = |i: Option<usize>| i.and_then(|i| self.record.get(i)).filter(|f| !is_na(f)).map(<[u8]>::to_vec);
        let id = get(Some(self.id))
            .ok_or_else(|| DriftError::MissingRequestId { path: self.path.clone(), row: self.line })?;
        Ok(Some(Row { line: self.line, a: get(self.a), b: get(self.b), id }))
    }
}

/// Joins the labels to the current predictions.
pub fn join(spec: &JoinSpec<'_>, budget: &Arc<Budget>) -> Result<(Outcomes, JoinSummary)> {
    let mut labels = Source::open(spec.labels, spec.id_column, Some(spec.target), None)?;
    let mut current = Source::open(spec.current, spec.id_column, spec.prediction, spec.probability)?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    // Ids, labels and hash-table overhead take a few times the bytes of the fields; the
    // current file's size overstates its share (it holds the features too), which only
    // means more partitions than needed.
    let bytes = 4 * (size(spec.labels) + size(spec.current));
    let partitions = bytes.div_ceil(spec.memory.max(1) as u64).clamp(1, MAX_PARTITIONS);
    let plan = OutcomePlan {
        target: Some(0),
        prediction: spec.prediction.map(|_| 1),
        probability: spec.probability.map(|_| 2),
        threshold: spec.threshold,
    };
    let shared = Mutex::new(Outcomes::new(budget));
    let mut joiner = Joiner { plan, shared: &shared, budget, tally: OutcomeTally::default(), pending: 0 };
    let mut summary = JoinSummary { partitions, ..JoinSummary::default() };
    if partitions == 1 {
        summary.labels = joiner.partition(&mut || labels.next(), &mut || current.next(), spec, &mut summary)?;
    } else {
        let dir = tempfile::Builder::new()
            .prefix("factory-drift-join-")
            .tempdir_in(spec.temp_dir.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir))
            .map_err(|e| DriftError::io(spec.temp_dir.unwrap_or(Path::new("$TMPDIR")), e))?;
        let label_parts = split(&mut labels, dir.path(), "labels", partitions)?;
        let current_parts = split(&mut current, dir.path(), "current", partitions)?;
        for (l, c) in label_parts.iter().zip(&current_parts) {
            let mut lr = PartReader::open(l)?;
            let mut cr = PartReader::open(c)?;
            summary.labels += joiner.partition(&mut || lr.next(), &mut || cr.next(), spec, &mut summary)?;
        }
    }
    joiner.flush()?;
    let mut outcomes = shared.into_inner().expect("outcomes lock");
    outcomes.seal()?;
    Ok((outcomes, summary))
}

struct Joiner<'a> {
    plan: OutcomePlan,
    shared: &'a Mutex<Outcomes>,
    budget: &'a Budget,
    tally: OutcomeTally,
    pending: u64,
}

type Next<'a> = dyn FnMut() -> Result<Option<Row>> + 'a;

impl Joiner<'_> {
    /// Joins one partition's labels and predictions; returns the labels joined.
    fn partition(
        &mut self,
        labels: &mut Next<'_>,
        current: &mut Next<'_>,
        spec: &JoinSpec<'_>,
        summary: &mut JoinSummary,
    ) -> Result<u64> {
        let mut by_id: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        while let Some(row) = labels()? {
            let Some(label) = row.a else {
                return Err(DriftError::MissingLabel {
                    path: spec.labels.into(),
                    row: row.line,
                    column: spec.target.to_owned(),
                });
            };
            if by_id.insert(row.id.clone(), label).is_some() {
                return Err(DriftError::DuplicateRequestId {
                    path: spec.labels.into(),
                    id: String::from_utf8_lossy(&row.id).into_owned(),
                });
            }
        }
        let joined = by_id.len() as u64;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        while let Some(row) = current()? {
            summary.current_rows += 1;
            if let Some(label) = by_id.remove(&row.id) {
                self.tally.observe(&self.plan, Some(&label), row.a.as_deref(), row.b.as_deref());
                self.pending += 1;
                if self.pending >= BATCH {
                    self.flush()?;
                }
            }
            if !seen.insert(row.id.clone()) {
                return Err(DriftError::DuplicateRequestId {
                    path: spec.current.into(),
                    id: String::from_utf8_lossy(&row.id).into_owned(),
                });
            }
        }
        if !by_id.is_empty() {
            let mut examples: Vec<String> = by_id.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
            examples.sort();
            examples.truncate(EXAMPLES);
            return Err(DriftError::UnknownRequestIds {
                labels: spec.labels.into(),
                current: spec.current.into(),
                count: by_id.len() as u64,
                examples: examples.join(", "),
            });
        }
        Ok(joined)
    }

    fn flush(&mut self) -> Result<()> {
        self.pending = 0;
        Outcomes::absorb(self.shared, self.budget, &mut self.tally)
    }
}

/// Writes a source's rows into `n` partition files by a hash of the id.
fn split(source: &mut Source, dir: &Path, name: &str, n: u64) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("{name}-{i}.bin"))).collect();
    let mut writers = paths
        .iter()
        .map(|p| File::create(p).map(|f| BufWriter::with_capacity(1 << 13, f)).map_err(|e| DriftError::io(p, e)))
        .collect::<Result<Vec<_>>>()?;
    while let Some(row) = source.next()? {
        let i = (word_hash(&row.id) % n) as usize;
        let w = &mut writers[i];
        write_row(w, &row).map_err(|e| DriftError::io(&paths[i], e))?;
    }
    for (w, p) in writers.iter_mut().zip(&paths) {
        w.flush().map_err(|e| DriftError::io(p, e))?;
    }
    Ok(paths)
}

/// A missing field's length.
const NONE: u32 = u32::MAX;

fn write_row(w: &mut impl Write, row: &Row) -> std::io::Result<()> {
    w.write_all(&row.line.to_le_bytes())?;
    for f in [Some(&row.id), row.a.as_ref(), row.b.as_ref()] {
        match f {
            Some(f) => {
                let len = u32::try_from(f.len()).map_err(|_| std::io::Error::other("field longer than 4 GiB"))?;
                w.write_all(&len.to_le_bytes())?;
                w.write_all(f)?;
            }
            None => w.write_all(&NONE.to_le_bytes())?,
        }
    }
    Ok(())
}

/// Reads back a partition file written by [`split`].
struct PartReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl PartReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| DriftError::io(path, e))?;
        Ok(PartReader { path: path.into(), input: BufReader::with_capacity(1 << 16, file) })
    }

    fn next(&mut self) -> Result<Option<Row>> {
        let io = |e| DriftError::io(&self.path, e);
        let mut line = [0u8; 8];
        match self.input.read_exact(&mut line) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        let mut field = || -> std::io::Result<Option<Vec<u8>>> {
            let mut len = [0u8; 4];
            self.input.read_exact(&mut len)?;
            let len = u32::from_le_bytes(len);
            if len == NONE {
                return Ok(None);
            }
            let mut buf = vec![0u8; len as usize];
            self.input.read_exact(&mut buf)?;
            Ok(Some(buf))
        };
        let id = field().map_err(io)?.unwrap_or_default();
        let a = field().map_err(io)?;
        let b = field().map_err(io)?;
        Ok(Some(Row { line: u64::from_le_bytes(line), id, a, b }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        let current = dir.join("cur.csv");
        let labels = dir.join("labels.csv");
        let mut c = String::from("request_id,prediction,probability\n");
        let mut l = String::from("request_id,label\n");
        for i in 0..500 {
            c.push_str(&format!("id-{i},{},{}\n", if i % 3 == 0 { "spam" } else { "ham" }, (i % 97) as f64 / 97.0));
            if i % 5 != 0 {
                l.push_str(&format!("id-{},{}\n", 499 - i, if i % 2 == 0 { "spam" } else { "ham" }));
            }
        }
        std::fs::write(&current, c).unwrap();
        std::fs::write(&labels, l).unwrap();
        (current, labels)
    }

    fn spec<'a>(current: &'a Path, labels: &'a Path, memory: usize) -> JoinSpec<'a> {
        JoinSpec {
            labels,
            current,
            id_column: "request_id",
            target: "label",
            prediction: Some("prediction"),
            probability: Some("probability"),
            threshold: 0.5,
            memory,
            temp_dir: None,
        }
    }

    /// Splitting into partition files joins the same rows as the in-memory join.
    #[test]
    fn partitioned_join_equals_in_memory_join() {
        let dir = tempfile::tempdir().unwrap();
        let (current, labels) = files(dir.path());
        let budget = Budget::new(1 << 20, 3, None).unwrap();
        let (a, sa) = join(&spec(&current, &labels, 1 << 30), &budget).unwrap();
        let (b, sb) = join(&spec(&current, &labels, 1000), &budget).unwrap();
        assert_eq!(sa.partitions, 1);
        assert!(sb.partitions > 10, "{} partitions", sb.partitions);
        assert_eq!((sa.labels, sb.labels, sa.current_rows, sb.current_rows), (400, 400, 500, 500));
        for o in [&a, &b] {
            assert_eq!(o.counts.rows, 400);
        }
        let cells = |o: &Outcomes| {
            let mut v: Vec<(String, String, u64)> = Vec::new();
            for (ti, row) in o.counts.cells.iter().enumerate().take(2) {
                for (pi, c) in row.iter().enumerate().take(2) {
                    v.push((o.counts.targets.values[ti].clone(), o.counts.predictions.values[pi].clone(), c.n));
                }
            }
            v.sort();
            v
        };
        assert_eq!(cells(&a), cells(&b));
    }

    #[test]
    fn unknown_and_duplicate_ids_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (current, _) = files(dir.path());
        let budget = Budget::new(1 << 20, 3, None).unwrap();
        let labels = dir.path().join("bad.csv");
        std::fs::write(&labels, "request_id,label\nid-1,spam\nnope,ham\n").unwrap();
        let e = join(&spec(&current, &labels, 1 << 30), &budget).unwrap_err();
        assert!(
            e.to_string().contains("1 label(s) name request ids that are not in") && e.to_string().contains("nope"),
            "{e}"
        );
        std::fs::write(&labels, "request_id,label\nid-1,spam\nid-2,ham\nid-1,ham\n").unwrap();
        let e = join(&spec(&current, &labels, 1000), &budget).unwrap_err();
        assert!(e.to_string().contains("request id 'id-1' occurs more than once"), "{e}");
    }
}
