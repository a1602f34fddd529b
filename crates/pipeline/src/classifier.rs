//! What a cycle adds for classifiers: the reference scored by the champion (so the served
//! predictions have something to drift from), labels that arrived by request id (so realised
//! performance can be measured), and the triggers that read prediction and performance drift
//! out of the drift report.

use crate::config::{Pipeline, Trigger};
use crate::PipelineError;
use mlflow_client::{Client, ModelUri};
use std::path::{Path, PathBuf};

/// The prediction and probability columns, as `factory serve` logs them and `factory drift`
/// reads them by default.
pub const PREDICTION: &str = "prediction";
pub const PROBABILITY: &str = "probability";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io { path: path.to_path_buf(), source }
}

/// The champion behind the alias, as the cycle judges the served predictions by it.
pub struct Champion {
    /// F1 on its own holdout when it was trained (its run's `f1`): the baseline of the
    /// performance triggers, as the reference is the champion's training data and its F1
    /// there would flatter it.
    pub holdout_f1: Option<f64>,
}

/// Writes `out`: the reference's rows that have a target, the target as 0/1, and the
/// champion's `probability` and `prediction` (label at 0.5, as serve's default threshold).
/// `None` when there is no champion behind the alias or it is not a factory classifier (then
/// the drift check compares features only).
pub async fn score_reference(
    p: &Pipeline,
    client: &Client,
    reference: &Path,
    out: &Path,
) -> Result<Option<Champion>, PipelineError> {
    let r = &p.retrain;
    let uri = ModelUri::Alias { name: r.model_name.clone(), alias: r.alias.clone() };
    let Some((artifact_uri, version)) = client.resolve_existing(&uri).await? else { return Ok(None) };
    let dir = tempfile::tempdir().map_err(io(&std::env::temp_dir()))?;
    client.download_dir(&artifact_uri, dir.path()).await?;
    let pkg = package::load(dir.path()).map_err(|e| PipelineError::Data(format!("the champion: {e}")))?;
    let Some(model) = pkg.model.factory().filter(|m| m.task() == learn::Task::BinaryClassification) else {
        tracing::warn!("the champion is not a factory classifier: prediction drift is not checked");
        return Ok(None);
    };
    let frame = training::run::read_frame(reference)?;
    let (features, y) = training::run::split_target(&frame, &r.target, r.task, r.positive_label.as_deref())?;
    let probability =
        model.predict(&features).map_err(|e| PipelineError::Data(format!("scoring the reference: {e}")))?;
    let file = std::fs::File::create(out).map_err(io(out))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let csv_err = |e: csv::Error| PipelineError::Data(format!("writing {}: {e}", out.display()));
    let mut header: Vec<&str> = features.columns().iter().map(|c| &*c.name).collect();
    header.extend([r.target.as_str(), PROBABILITY, PREDICTION]);
    w.write_record(&header).map_err(csv_err)?;
    for (i, (&target, &prob)) in y.iter().zip(&probability).enumerate() {
        let mut record: Vec<String> = features
            .columns()
            .iter()
            .map(|c| match &c.data {
                learn::ColumnData::Numeric(v) if v[i].is_finite() => v[i].to_string(),
                learn::ColumnData::Numeric(_) => String::new(),
                other => other.strings().and_then(|s| s[i].clone()).unwrap_or_default(),
            })
            .collect();
        record.extend([target.to_string(), prob.to_string(), u8::from(prob >= 0.5).to_string()]);
        w.write_record(&record).map_err(csv_err)?;
    }
    w.flush().map_err(io(out))?;
    let holdout_f1 = match version.as_ref().and_then(|v| v.run_id.as_deref()) {
        Some(run) => client.run_metrics(run).await?.into_iter().find(|(k, _)| k == "f1").map(|(_, v)| v),
        None => None,
    };
    Ok(Some(Champion { holdout_f1 }))
}

/// Gathers the labels that arrived by request id (`drift.labels`: a CSV or a folder of CSVs
/// with the id column and the target) into `out`, the target as 0/1 (the positive label → 1);
/// `None` when there are none.
pub fn gather_labels(p: &Pipeline, id_column: &str, out: &Path) -> Result<Option<PathBuf>, PipelineError> {
    let Some(src) = &p.drift.labels_by_id else { return Ok(None) };
    let files = if src.is_file() { vec![src.clone()] } else { crate::requests::csv_files_in(src)? };
    let target = &p.retrain.target;
    let positive = p.retrain.positive_label.as_deref();
    let mut w = csv::Writer::from_path(out).map_err(|e| PipelineError::Data(format!("{}: {e}", out.display())))?;
    let bad = |path: &Path, e: String| PipelineError::Data(format!("labels {}: {e}", path.display()));
    w.write_record([id_column, target.as_str()]).map_err(|e| bad(out, e.to_string()))?;
    let mut rows = 0u64;
    for file in &files {
        let mut rdr = csv::Reader::from_path(file).map_err(|e| bad(file, e.to_string()))?;
        let header = rdr.headers().map_err(|e| bad(file, e.to_string()))?.clone();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(id), Some(t)) = (col(id_column), col(target)) else {
            return Err(bad(file, format!("needs the columns '{id_column}' and '{target}'")));
        };
        for record in rdr.records() {
            let record = record.map_err(|e| bad(file, e.to_string()))?;
            let value = recode(record.get(t).unwrap_or(""), positive).map_err(|e| bad(file, e))?;
            w.write_record([record.get(id).unwrap_or(""), value]).map_err(|e| bad(out, e.to_string()))?;
            rows += 1;
        }
    }
    w.flush().map_err(io(out))?;
    Ok((rows > 0).then(|| out.to_path_buf()))
}

/// A label as 1 (the positive class), 0, or empty (missing): equal to `positive` as text or
/// as a number; without `positive`, only 0/1 labels are understood (as `factory train` reads
/// a numeric target).
fn recode(value: &str, positive: Option<&str>) -> Result<&'static str, String> {
    let value = value.trim();
    let number = |s: &str| s.trim().parse::<f64>().ok();
    match positive {
        _ if value.is_empty() => Ok(""),
        Some(pos) => {
            let same = value == pos.trim() || number(value).zip(number(pos)).is_some_and(|(a, b)| a == b);
            Ok(if same { "1" } else { "0" })
        }
        None => match number(value) {
            Some(1.0) => Ok("1"),
            Some(0.0) => Ok("0"),
            _ => Err(format!("label '{value}' is not 0 or 1: set retrain.positive_label to the positive class")),
        },
    }
}

/// Why the cycle should retrain, by the pipeline's triggers (empty: it should not). The
/// performance triggers measure F1 against `baseline_f1` (the champion's holdout F1), or
/// without one against the reference's realised F1.
pub fn trigger_reasons(p: &Pipeline, report: &drift::DriftReport, baseline_f1: Option<f64>) -> Vec<String> {
    let mut reasons = Vec::new();
    let drop = p.drift.performance_drop;
    let reference_f1 =
        baseline_f1.or_else(|| report.performance.as_ref().and_then(|perf| perf.reference.as_ref()).and_then(|m| m.f1));
    for trigger in &p.drift.triggers {
        match trigger {
            // The features only: a classifier's outputs (and the target) are the other triggers'.
            Trigger::Data => {
                let outputs = [PREDICTION, PROBABILITY, p.retrain.target.as_str()];
                let features = report.columns.iter().filter(|c| !outputs.contains(&c.name.as_str()));
                reasons.extend(drift::significance(features, p.drift.psi_threshold, p.drift.drift_share));
            }
            Trigger::Prediction => {
                let Some(pd) = report.prediction_drift.as_ref().filter(|pd| pd.drift_detected) else { continue };
                let mut what: Vec<String> = pd
                    .prediction
                    .iter()
                    .chain(&pd.probability)
                    .filter(|o| o.drift_detected)
                    .map(|o| format!("'{}' {} {:.4}", o.column, o.stattest.name(), o.drift_score))
                    .collect();
                if let (Some(a), Some(b)) = (pd.reference_share_of_positives, pd.current_share_of_positives) {
                    what.push(format!("share of positives {a:.3} → {b:.3}"));
                }
                reasons.push(format!("prediction drift: {}", what.join(", ")));
            }
            Trigger::Performance => {
                let current = report.performance.as_ref().and_then(|perf| perf.current.as_ref()).and_then(|m| m.f1);
                if let (Some(r), Some(c)) = (reference_f1, current) {
                    if r - c > drop {
                        reasons.push(format!(
                            "performance drift: F1 {r:.3} (champion's holdout) → {c:.3} (drop > {drop})"
                        ));
                    }
                }
            }
            Trigger::EstimatedPerformance => {
                let estimated = report
                    .estimated_performance
                    .as_ref()
                    .and_then(|e| e.current.as_ref())
                    .map(|e| e.f1.value)
                    .filter(|v| v.is_finite());
                if let (Some(r), Some(c)) = (reference_f1, estimated) {
                    if r - c > drop {
                        reasons.push(format!(
                            "estimated performance drift (CBPE): F1 {r:.3} (champion's holdout) → {c:.3} (drop > {drop})"
                        ));
                    }
                }
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_by_id_are_gathered_with_the_positive_label_as_1() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("labels");
        std::fs::create_dir(&labels).unwrap();
        std::fs::write(labels.join("b.csv"), "label,request_id,other\nham,r2,x\nspam,r3,y\n").unwrap();
        std::fs::write(labels.join("a.csv"), "request_id,label\nr1,spam\nr4,1\n").unwrap();
        std::fs::write(labels.join("notes.txt"), "ignored").unwrap();
        let text = format!(
            "[drift]\nrequest_logs = [\"req\"]\nlabels = \"{}\"\n[retrain]\ntask = \"classification\"\ntarget = \"label\"\n\
             positive_label = \"spam\"\n[rollout]\nserving = \"http://s\"\n",
            labels.display()
        );
        let p = crate::config::parse("p", &text, dir.path(), &Default::default()).unwrap();
        let out = dir.path().join("joined.csv");
        assert_eq!(gather_labels(&p, "request_id", &out).unwrap(), Some(out.clone()));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "request_id,label\nr1,1\nr4,0\nr2,0\nr3,1\n");

        std::fs::write(labels.join("c.csv"), "id,label\nr5,spam\n").unwrap();
        let err = gather_labels(&p, "request_id", &out).unwrap_err().to_string();
        assert!(err.contains("c.csv") && err.contains("'request_id' and 'label'"), "{err}");
    }

    #[test]
    fn labels_are_recoded_as_training_reads_the_target() {
        assert_eq!(recode("spam", Some("spam")), Ok("1"));
        assert_eq!(recode(" ham ", Some("spam")), Ok("0"));
        assert_eq!(recode("1", Some("spam")), Ok("0"));
        assert_eq!(recode("2.0", Some("2")), Ok("1"));
        assert_eq!(recode("1", Some("2")), Ok("0"));
        assert_eq!(recode("1.0", None), Ok("1"));
        assert_eq!(recode("0", None), Ok("0"));
        assert_eq!(recode("", None), Ok(""));
        assert!(recode("spam", None).unwrap_err().contains("retrain.positive_label"));
        assert!(recode("2", None).is_err());
    }
}
