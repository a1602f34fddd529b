//! Production data for a drift check: the rows `factory serve` logged (its JSON Lines request
//! log, `requests-*.jsonl`) after a watermark, gathered from one or more folders into one
//! CSV that `drift::run` reads.
//!
//! The watermark is the newest row timestamp already checked (RFC 3339, UTC, microseconds, as
//! the request log writes it). A file last modified before the watermark cannot hold newer
//! rows and is not opened. Lines that do not parse (a crash can leave half a line at the end
//! of a file) are counted and skipped.

use crate::PipelineError;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What [`collect`] gathered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub rows: u64,
    /// Feature columns, in the order first seen, then `prediction`, `probability` and
    /// `request_id` when present.
    pub columns: Vec<String>,
    /// Newest timestamp gathered (the next watermark); `None` when nothing was new.
    pub newest: Option<String>,
    /// Model versions that scored the gathered rows.
    pub model_versions: BTreeSet<String>,
    pub files_read: usize,
    pub bad_lines: u64,
}

struct Row {
    timestamp: String,
    features: serde_json::Map<String, Value>,
    prediction: Option<Value>,
    /// A classifier's probability of class 1 (its `prediction` is then the label).
    probability: Option<Value>,
    /// The id `factory serve` logged the row under (the key labels join on).
    request_id: Option<Value>,
}

fn parse_line(line: &str) -> Option<(Row, Option<String>)> {
    let Value::Object(mut o) = serde_json::from_str::<Value>(line).ok()? else { return None };
    let timestamp = o.get("timestamp")?.as_str()?.to_string();
    let Some(Value::Object(features)) = o.remove("features") else { return None };
    let prediction = o.remove("prediction");
    let probability = o.remove("probability");
    let request_id = o.remove("request_id");
    let version = o.get("model_version").and_then(|v| v.as_str()).map(str::to_string);
    Some((Row { timestamp, features, prediction, probability, request_id }, version))
}

fn jsonl_files(dirs: &[PathBuf], since: Option<SystemTime>) -> Result<Vec<PathBuf>, PipelineError> {
    let mut files = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            // A serving process that has not written yet has no folder yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(PipelineError::Io { path: dir.clone(), source }),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("requests-") && name.ends_with(".jsonl")) {
                continue;
            }
            let modified = entry.metadata().ok().and_then(|m| m.modified().ok());
            if let (Some(since), Some(m)) = (since, modified) {
                if m < since {
                    continue;
                }
            }
            files.push(path);
        }
    }
    // Chronological: the request log's file names start with the time they were opened.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then_with(|| a.cmp(b)));
    Ok(files)
}

fn timestamp_time(ts: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(ts).ok().map(SystemTime::from)
}

/// A JSON value as CSV text (quoting is the `csv` writer's): `null` and missing are empty.
fn csv_field(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes every logged row newer than `watermark` from `dirs` to `out` (CSV with a header).
pub fn collect(dirs: &[PathBuf], watermark: Option<&str>, out: &Path) -> Result<Collected, PipelineError> {
    let since = watermark.and_then(timestamp_time);
    let newer = |ts: &str| match (watermark, timestamp_time(ts), since) {
        (None, _, _) => true,
        (Some(_), Some(t), Some(s)) => t > s,
        (Some(w), _, _) => ts > w,
    };
    let mut rows = Vec::new();
    let mut got = Collected::default();
    let mut columns: Vec<String> = Vec::new();
    let (mut has_prediction, mut has_probability, mut has_id) = (false, false, false);
    for path in jsonl_files(dirs, since)? {
        let file = File::open(&path).map_err(|source| PipelineError::Io { path: path.clone(), source })?;
        got.files_read += 1;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| PipelineError::Io { path: path.clone(), source })?;
            if line.trim().is_empty() {
                continue;
            }
            let Some((row, version)) = parse_line(&line) else {
                got.bad_lines += 1;
                continue;
            };
            if !newer(&row.timestamp) {
                continue;
            }
            for k in row.features.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
            has_prediction |= row.prediction.is_some();
            has_probability |= row.probability.is_some();
            has_id |= row.request_id.is_some();
            if let Some(v) = version {
                got.model_versions.insert(v);
            }
            if got.newest.as_deref().is_none_or(|n| timestamp_time(&row.timestamp) > timestamp_time(n)) {
                got.newest = Some(row.timestamp.clone());
            }
            rows.push(row);
        }
    }
    let write_err = |e: csv::Error| PipelineError::Data(format!("{}: {e}", out.display()));
    let mut w = csv::Writer::from_path(out).map_err(write_err)?;
    let mut header = columns.clone();
    for (has, name) in [(has_prediction, "prediction"), (has_probability, "probability"), (has_id, "request_id")] {
        if has {
            header.push(name.into());
        }
    }
    w.write_record(&header).map_err(write_err)?;
    for row in &rows {
        let mut fields: Vec<String> = columns.iter().map(|c| csv_field(row.features.get(c))).collect();
        for (has, value) in
            [(has_prediction, &row.prediction), (has_probability, &row.probability), (has_id, &row.request_id)]
        {
            if has {
                fields.push(csv_field(value.as_ref()));
            }
        }
        w.write_record(&fields).map_err(write_err)?;
    }
    w.flush().map_err(|source| PipelineError::Io { path: out.to_path_buf(), source })?;
    got.rows = rows.len() as u64;
    got.columns = header;
    Ok(got)
}

/// The `*.csv` files of a folder of arriving labels, sorted by name; none when the folder does
/// not exist (yet).
pub fn csv_files_in(dir: &Path) -> Result<Vec<PathBuf>, PipelineError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("csv"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(PipelineError::Io { path: dir.to_path_buf(), source }),
    };
    files.sort();
    Ok(files)
}

/// Writes `base` followed by the rows of every file in `extra` to `out`, matching columns by
/// name (the extra files may order them differently; a column `base` lacks is an error, a
/// column an extra file lacks is left empty). Returns (rows of `base`, rows added).
pub fn concat_csv(base: &Path, extra: &[PathBuf], out: &Path) -> Result<(usize, u64), PipelineError> {
    let data = |path: &Path, e: csv::Error| PipelineError::Data(format!("{}: {e}", path.display()));
    let mut reader = csv::Reader::from_path(base).map_err(|e| data(base, e))?;
    let header = reader.headers().map_err(|e| data(base, e))?.clone();
    let mut writer = csv::Writer::from_path(out).map_err(|e| data(out, e))?;
    writer.write_record(&header).map_err(|e| data(out, e))?;
    let mut base_rows = 0;
    for record in reader.records() {
        writer.write_record(&record.map_err(|e| data(base, e))?).map_err(|e| data(out, e))?;
        base_rows += 1;
    }
    let mut added = 0;
    for path in extra {
        let mut r = csv::Reader::from_path(path).map_err(|e| data(path, e))?;
        let names = r.headers().map_err(|e| data(path, e))?.clone();
        if let Some(unknown) = names.iter().find(|n| !header.iter().any(|h| h == *n)) {
            return Err(PipelineError::Data(format!(
                "{}: column '{unknown}' is not in the training data ({})",
                path.display(),
                base.display()
            )));
        }
        let index: Vec<Option<usize>> = header.iter().map(|h| names.iter().position(|n| n == h)).collect();
        for record in r.records() {
            let record = record.map_err(|e| data(path, e))?;
            let row: Vec<&str> = index.iter().map(|i| i.and_then(|i| record.get(i)).unwrap_or("")).collect();
            writer.write_record(&row).map_err(|e| data(out, e))?;
            added += 1;
        }
    }
    writer.flush().map_err(|source| PipelineError::Io { path: out.to_path_buf(), source })?;
    Ok((base_rows, added))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: &str, income: f64, ocean: &str, version: &str) -> String {
        format!(
            "{{\"timestamp\":\"{ts}\",\"model_version\":\"{version}\",\"prediction\":1.5,\"features\":{{\"median_income\":{income},\"ocean_proximity\":\"{ocean}\",\"total_bedrooms\":null}}}}\n"
        )
    }

    #[test]
    fn gathers_rows_after_the_watermark_from_every_folder() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(
            a.path().join("requests-1-0.jsonl"),
            line("2026-01-01T00:00:00.000001Z", 1.25, "NEAR BAY", "1")
                + &line("2026-01-01T00:00:02.000000Z", 2.25, "IN,LAND", "1")
                + "{\"timestamp\":\"2026-01-01T00:00:03Z\",\"feat",
        )
        .unwrap();
        std::fs::write(b.path().join("requests-2-0.jsonl"), line("2026-01-01T00:00:05.000000Z", 3.25, "X", "2"))
            .unwrap();
        std::fs::write(b.path().join("requests-2-0.csv"), "ignored\n").unwrap();
        let out = a.path().join("current.csv");
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf(), a.path().join("missing")];

        let all = collect(&dirs, None, &out).unwrap();
        assert_eq!(all.rows, 3);
        assert_eq!(all.bad_lines, 1);
        assert_eq!(all.newest.as_deref(), Some("2026-01-01T00:00:05.000000Z"));
        assert_eq!(all.model_versions.iter().cloned().collect::<Vec<_>>(), vec!["1", "2"]);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            text,
            "median_income,ocean_proximity,total_bedrooms,prediction\n1.25,NEAR BAY,,1.5\n2.25,\"IN,LAND\",,1.5\n3.25,X,,1.5\n"
        );

        let since = collect(&dirs, Some("2026-01-01T00:00:02.000000Z"), &out).unwrap();
        assert_eq!(since.rows, 1);
        let none = collect(&dirs, all.newest.as_deref(), &out).unwrap();
        assert_eq!(none.rows, 0);
        assert_eq!(none.newest, None);
    }

    #[test]
    fn request_ids_and_probabilities_are_gathered_for_the_classification_checks() {
        let d = tempfile::tempdir().unwrap();
        let with_id = line("2026-01-01T00:00:01.000000Z", 1.0, "A", "1").replacen(
            "{",
            "{\"request_id\":\"r-1:0\",\"probability\":0.25,",
            1,
        );
        let without = line("2026-01-01T00:00:02.000000Z", 2.0, "B", "1");
        std::fs::write(d.path().join("requests-1-0.jsonl"), with_id + &without).unwrap();
        let out = d.path().join("current.csv");
        let got = collect(&[d.path().to_path_buf()], None, &out).unwrap();
        assert_eq!(got.columns.last().map(String::as_str), Some("request_id"));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "median_income,ocean_proximity,total_bedrooms,prediction,probability,request_id\n1,A,,1.5,0.25,r-1:0\n2,B,,1.5,,\n"
        );
    }

    #[test]
    fn labelled_rows_are_appended_by_column_name() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base.csv");
        std::fs::write(&base, "a,b,y\n1,2,3\n").unwrap();
        let extra = d.path().join("l.csv");
        std::fs::write(&extra, "y,a\n9,7\n8,6\n").unwrap();
        let out = d.path().join("out.csv");
        assert_eq!(concat_csv(&base, std::slice::from_ref(&extra), &out).unwrap(), (1, 2));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a,b,y\n1,2,3\n7,,9\n6,,8\n");
        std::fs::write(&extra, "z\n1\n").unwrap();
        let err = concat_csv(&base, &[extra], &out).unwrap_err().to_string();
        assert!(err.contains("'z'"), "{err}");
    }
}
