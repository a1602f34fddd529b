//! The audit log: one JSON object per line, appended (never rewritten) for every control
//! operation, whatever its outcome — refused switches included. It lives next to the state
//! file (`<state-file stem>.audit.jsonl`) and is read back by `GET /audit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::GatewayError;

pub use admin_api::AuditRecord;

/// A record of `op` by `who`, stamped now with a fresh operation id, outcome `ok`.
pub fn record(op: &str, who: &str) -> AuditRecord {
    AuditRecord {
        time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        operation_id: uuid::Uuid::new_v4().simple().to_string(),
        op: op.into(),
        from: None,
        to: None,
        from_version: None,
        to_version: None,
        health: None,
        who: who.into(),
        outcome: "ok".into(),
        detail: None,
        weights: None,
        shadow_percent: None,
    }
}

/// The log file, or an in-memory list when the gateway runs without a state file.
pub struct Audit {
    path: Option<PathBuf>,
    memory: Mutex<Vec<AuditRecord>>,
}

impl Audit {
    pub fn new(path: Option<PathBuf>) -> Audit {
        Audit { path, memory: Mutex::new(Vec::new()) }
    }

    /// The log that goes with a state file: same folder, `<stem>.audit.jsonl`.
    pub fn path_for(state_file: &Path) -> PathBuf {
        let stem = state_file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "gateway".into());
        state_file.with_file_name(format!("{stem}.audit.jsonl"))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends one record (one `write` of one line, then fsync).
    pub fn append(&self, record: &AuditRecord) -> Result<(), GatewayError> {
        let mut memory = self.memory.lock().expect("audit lock");
        let Some(path) = &self.path else {
            memory.push(record.clone());
            return Ok(());
        };
        let mut line = serde_json::to_vec(record).expect("audit record serialises");
        line.push(b'\n');
        let err = |e: std::io::Error| GatewayError::Audit(format!("appending to {}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        f.write_all(&line).map_err(err)?;
        f.sync_data().map_err(err)?;
        Ok(())
    }

    /// Every record, oldest first. A torn last line (crash mid-write) is skipped.
    pub fn read_all(&self) -> Result<Vec<AuditRecord>, GatewayError> {
        let memory = self.memory.lock().expect("audit lock");
        let Some(path) = &self.path else {
            return Ok(memory.clone());
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(GatewayError::Audit(format!("reading {}: {e}", path.display()))),
        };
        Ok(text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::new(Some(Audit::path_for(&dir.path().join("gw.json"))));
        assert!(audit.path().unwrap().ends_with("gw.audit.jsonl"));
        for op in ["switch", "rollback", "weights"] {
            audit.append(&record(op, "tester")).unwrap();
        }
        std::fs::OpenOptions::new().append(true).open(audit.path().unwrap()).unwrap().write_all(b"{\"torn").unwrap();
        let ops: Vec<String> = audit.read_all().unwrap().into_iter().map(|r| r.op).collect();
        assert_eq!(ops, ["switch", "rollback", "weights"]);
    }
}
